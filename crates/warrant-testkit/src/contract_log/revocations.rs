//! Revocations: cursors, the feed, pruning.

use super::*;

/// Cursors are positive and strictly increasing; entries come back with every field (both
/// kinds); the feed pages by `after` and `limit`, ascending, and reports the head even on an
/// empty page; nothing is pruned yet.
pub async fn revocation_cursors_increase_and_feed_pages(store: &dyn Store) {
    let empty = feed(store, "acme", None, 10).await;
    assert_eq!(
        empty,
        StoredFeedPage {
            entries: vec![],
            pruned_through: 0,
            head: 0
        },
        "the feed of an empty store"
    );
    let made = [
        jti("acme", "jti-1", 3_600_000),
        watermark("acme", "svc:ünïcødé/1", 7_200_000),
        jti("acme", &"x".repeat(256), 3_600_000),
        watermark("acme", "svc-2", 1),
        jti("acme", "jti-5", -1),
    ];
    let mut added = Vec::new();
    for r in &made {
        added.push(add(store, r).await);
    }
    let c = cursors(&added);
    assert!(c[0] > 0, "cursors are positive: {c:?}");
    assert!(c.windows(2).all(|w| w[0] < w[1]), "cursors increase: {c:?}");
    let head = c[4];

    let all = feed(store, "acme", None, 100).await;
    assert_eq!(
        all,
        StoredFeedPage {
            entries: added.clone(),
            pruned_through: 0,
            head
        }
    );
    let page = feed(store, "acme", Some(c[1]), 2).await;
    assert_eq!(page.entries, added[2..4].to_vec(), "after the second, two");
    assert_eq!(page.head, head);
    assert_eq!(
        feed(store, "acme", None, 2).await.entries,
        added[..2].to_vec(),
        "a snapshot is limited too"
    );
    assert_eq!(
        feed(store, "acme", Some(c[3]), 100).await.entries,
        added[4..].to_vec()
    );
    assert_eq!(
        feed(store, "acme", Some(0), 100).await.entries,
        added,
        "after 0: everything"
    );
    let past_the_end = feed(store, "acme", Some(head), 100).await;
    assert_eq!(
        past_the_end,
        StoredFeedPage {
            entries: vec![],
            pruned_through: 0,
            head
        },
        "an empty page still reports the head"
    );
}

/// A tenant's feed holds only its entries; the head is the whole store's (another tenant's
/// newer entry moves it); an unknown tenant has an empty feed with the same head.
pub async fn revocation_feed_is_per_tenant(store: &dyn Store) {
    let a1 = add(store, &jti("acme", "a1", 3_600_000)).await;
    let b1 = add(store, &jti("beta", "b1", 3_600_000)).await;
    let a2 = add(store, &watermark("acme", "svc", 3_600_000)).await;
    let b2 = add(store, &watermark("beta", "svc", 3_600_000)).await;

    let acme = feed(store, "acme", None, 100).await;
    assert_eq!(acme.entries, vec![a1.clone(), a2.clone()]);
    assert_eq!(acme.head, b2.cursor, "the head is store-wide");
    let beta = feed(store, "beta", Some(b1.cursor), 100).await;
    assert_eq!(beta.entries, vec![b2.clone()]);
    assert_eq!(beta.head, b2.cursor);
    let acme_after = feed(store, "acme", Some(a2.cursor), 100).await;
    assert_eq!(
        acme_after.entries,
        vec![],
        "beta's newer entry is not acme's"
    );
    assert_eq!(acme_after.head, b2.cursor);
    let nobody = feed(store, "nobody", None, 100).await;
    assert_eq!(
        nobody,
        StoredFeedPage {
            entries: vec![],
            pruned_through: 0,
            head: b2.cursor
        }
    );
}

/// Pruning every entry, the newest included, keeps the head (and `pruned_through`) where they
/// were, and the next cursor is above both: a cursor is never handed out twice.
pub async fn revocation_head_survives_pruning_the_highest(store: &dyn Store) {
    let mut last = 0;
    for i in 0..3 {
        last = add(store, &jti("acme", &format!("j{i}"), 1_000))
            .await
            .cursor;
    }
    assert_eq!(
        ok(
            store.prune_revocations(ms(2_000)).await,
            "prune_revocations"
        ),
        3
    );
    assert_eq!(
        feed(store, "acme", None, 100).await,
        StoredFeedPage {
            entries: vec![],
            pruned_through: last,
            head: last
        }
    );
    assert_eq!(
        feed(store, "acme", Some(last), 100).await.head,
        last,
        "the head after pruning the highest entry"
    );
    assert_eq!(
        ok(store.revocations_after(0, 100).await, "revocations_after"),
        vec![]
    );
    let next = add(store, &jti("beta", "after-prune", 3_600_000)).await;
    assert!(
        next.cursor > last,
        "a cursor was reused after pruning: {} ≤ {last}",
        next.cursor
    );
    assert_eq!(feed(store, "acme", None, 100).await.head, next.cursor);
}

/// Per tenant, pruning removes the longest prefix of entries past their `prune_after` (strictly
/// before now), stopping at the first one still needed even if later ones are prunable, and
/// raises that tenant's `pruned_through` to the last cursor removed. It returns how many it
/// removed; pruning again at the same time removes nothing.
pub async fn revocation_prune_removes_only_a_prefix(store: &dyn Store) {
    add(store, &jti("acme", "a1", 1_000)).await;
    let b1 = add(store, &jti("beta", "b1", 1_000)).await;
    let a2 = add(store, &watermark("acme", "a2", 2_000)).await;
    // Exactly at `now`: not yet prunable.
    let a3 = add(store, &jti("acme", "a3", 5_000)).await;
    let a4 = add(store, &jti("acme", "a4", 1_000)).await;
    let b2 = add(store, &jti("beta", "b2", 9_000)).await;
    let c1 = add(store, &jti("gamma", "c1", 9_000)).await;

    assert_eq!(
        ok(
            store.prune_revocations(ms(5_000)).await,
            "prune_revocations"
        ),
        3,
        "a1, a2 and b1"
    );
    let acme = feed(store, "acme", None, 100).await;
    assert_eq!(
        acme.entries,
        vec![a3.clone(), a4.clone()],
        "a4 is prunable but follows a3, still needed"
    );
    assert_eq!(acme.pruned_through, a2.cursor);
    assert_eq!(acme.head, c1.cursor);
    let beta = feed(store, "beta", None, 100).await;
    assert_eq!(beta.entries, vec![b2.clone()]);
    assert_eq!(beta.pruned_through, b1.cursor);
    assert_eq!(feed(store, "gamma", None, 100).await.pruned_through, 0);
    assert_eq!(
        ok(store.prune_revocations(ms(5_000)).await, "prune again"),
        0
    );
    assert_eq!(
        feed(store, "acme", None, 100).await.pruned_through,
        a2.cursor
    );

    assert_eq!(
        ok(store.prune_revocations(ms(5_001)).await, "prune later"),
        2,
        "a3, then a4"
    );
    let acme = feed(store, "acme", None, 100).await;
    assert_eq!(acme.entries, vec![]);
    assert_eq!(acme.pruned_through, a4.cursor);
    assert_eq!(
        cursors(&ok(
            store.revocations_after(0, 100).await,
            "revocations_after"
        )),
        vec![b2.cursor, c1.cursor]
    );
    // Pruning an earlier time never lowers a mark.
    assert_eq!(ok(store.prune_revocations(ms(0)).await, "prune at T0"), 0);
    assert_eq!(
        feed(store, "acme", None, 100).await.pruned_through,
        a4.cursor
    );
    assert_eq!(
        feed(store, "beta", None, 100).await.pruned_through,
        b1.cursor
    );
}

/// `revocations_after` lists every tenant's entries after a cursor, ascending, at most `limit`.
pub async fn revocations_after_spans_tenants(store: &dyn Store) {
    let mut added = Vec::new();
    for (i, t) in ["acme", "beta", "acme", "gamma", "beta"].iter().enumerate() {
        added.push(add(store, &jti(t, &format!("j{i}"), 3_600_000)).await);
    }
    assert_eq!(
        ok(
            store.revocations_after(0, 100).await,
            "revocations_after(0)"
        ),
        added
    );
    assert_eq!(
        ok(
            store.revocations_after(added[1].cursor, 2).await,
            "revocations_after(second, 2)"
        ),
        added[2..4].to_vec()
    );
    assert_eq!(
        ok(
            store.revocations_after(added[4].cursor, 100).await,
            "revocations_after(last)"
        ),
        vec![]
    );
}

/// Writers adding at once get distinct cursors, increasing in each writer's order, and a
/// reader polling meanwhile never finds a new entry below a cursor it has already seen
/// (cursors follow commit order).
pub async fn concurrent_revocations_get_increasing_cursors(store: &dyn Store) {
    const WRITERS: usize = 6;
    const EACH: usize = 8;
    const TOTAL: usize = WRITERS * EACH;
    let writer = |w: usize| async move {
        let mut mine = Vec::new();
        for i in 0..EACH {
            let tenant = if w.is_multiple_of(2) { "acme" } else { "beta" };
            let r = jti(tenant, &format!("w{w}-{i}"), 3_600_000);
            mine.push(ok(store.add_revocation(&r).await, "concurrent add_revocation").cursor);
        }
        mine
    };
    let reader = async {
        let mut seen: Vec<i64> = Vec::new();
        for _ in 0..100_000 {
            let now = cursors(&ok(
                store.revocations_after(0, 1_000).await,
                "revocations_after while writing",
            ));
            let high = seen.last().copied().unwrap_or(0);
            let late: Vec<_> = now
                .iter()
                .filter(|c| **c < high && !seen.contains(c))
                .collect();
            assert!(
                late.is_empty(),
                "entries {late:?} appeared below cursor {high} after it was seen"
            );
            seen = now;
            if seen.len() == TOTAL {
                return seen;
            }
            tokio::task::yield_now().await;
        }
        panic!(
            "the reader never saw all {TOTAL} entries (saw {})",
            seen.len()
        );
    };
    let (w0, w1, w2, w3, w4, w5, seen) = tokio::join!(
        writer(0),
        writer(1),
        writer(2),
        writer(3),
        writer(4),
        writer(5),
        reader
    );
    let mut all = Vec::new();
    for mine in [w0, w1, w2, w3, w4, w5] {
        assert!(
            mine.windows(2).all(|p| p[0] < p[1]),
            "one writer's cursors must increase: {mine:?}"
        );
        all.extend(mine);
    }
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), TOTAL, "cursors must be distinct");
    assert_eq!(
        seen, all,
        "the reader's final view is every cursor, ascending"
    );
    let acme = feed(store, "acme", None, 1_000).await;
    assert_eq!(acme.entries.len(), TOTAL / 2);
    assert_eq!(acme.head, all[TOTAL - 1]);
}
