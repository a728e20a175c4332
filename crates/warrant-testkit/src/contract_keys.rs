//! Store contract checks for the signing-key lifecycle (docs/key-rotation.md): a tenant's
//! rotation period, one key's retirement and removal times, and a rotation written in one
//! transaction.

use warrant_core::model::{KeySource, SigningKeyRecord, Tenant};
use warrant_core::store::StoreResult;
use warrant_core::{KeyTimes, Store, StoreError, Timestamp};

use crate::builders::{T0, signing_key_record, tenant, tenant_name};

fn ok<T>(r: StoreResult<T>, what: &str) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{what}: expected Ok, got Err({e:?})"),
    }
}

fn at(ms: i64) -> Timestamp {
    Timestamp::from_millis(T0.millis() + ms)
}

async fn seed(store: &dyn Store, name: &str) -> Tenant {
    let t = tenant(name);
    ok(store.create_tenant(&t).await, "create_tenant");
    t
}

async fn key_of(store: &dyn Store, t: &Tenant, kid: &str) -> Option<SigningKeyRecord> {
    ok(
        store.tenant_signing_keys(&t.name).await,
        "tenant_signing_keys",
    )
    .into_iter()
    .find(|k| k.kid == kid)
}

/// `key_rotation_period` round-trips through create, get, list and update (set and cleared).
pub async fn tenant_key_rotation_period_round_trips(store: &dyn Store) {
    let t = Tenant {
        key_rotation_period: Some(30 * 86_400),
        key_source: KeySource::Hsm {
            module: "main".into(),
        },
        ..tenant("acme")
    };
    ok(store.create_tenant(&t).await, "create_tenant");
    assert_eq!(
        ok(store.get_tenant(&t.name).await, "get_tenant"),
        Some(t.clone())
    );
    assert_eq!(
        ok(store.list_tenants(None, 10).await, "list_tenants"),
        vec![t.clone()]
    );
    for (rev, period) in [(1, None), (2, Some(u64::from(u32::MAX) + 7))] {
        let next = Tenant {
            key_rotation_period: period,
            key_source: KeySource::Software,
            updated_at: at(rev),
            revision: rev + 1,
            ..t.clone()
        };
        ok(store.update_tenant(&next, rev).await, "update_tenant");
        assert_eq!(
            ok(store.get_tenant(&t.name).await, "get_tenant"),
            Some(next),
            "after setting key_rotation_period to {period:?}"
        );
    }
}

/// `update_signing_key_times` sets and clears both times of one key of one tenant; an unknown
/// kid, or another tenant's kid, is `NotFound`.
pub async fn signing_key_times_update_and_not_found(store: &dyn Store) {
    let acme = seed(store, "acme").await;
    let beta = seed(store, "beta").await;
    let k = signing_key_record(&acme.name, "k1");
    ok(store.add_signing_key(&k).await, "add_signing_key");
    let b = signing_key_record(&beta.name, "b1");
    ok(store.add_signing_key(&b).await, "add_signing_key");
    let (ret, rem) = (Some(at(1_000)), Some(at(5_000)));
    ok(
        store
            .update_signing_key_times(&acme.name, "k1", ret, rem)
            .await,
        "update_signing_key_times",
    );
    let want = SigningKeyRecord {
        retires_at: ret,
        removed_at: rem,
        ..k.clone()
    };
    assert_eq!(key_of(store, &acme, "k1").await, Some(want));
    ok(
        store
            .update_signing_key_times(&acme.name, "k1", None, None)
            .await,
        "update_signing_key_times (clear)",
    );
    assert_eq!(key_of(store, &acme, "k1").await, Some(k));
    for (t, kid) in [(&acme, "nope"), (&acme, "b1")] {
        let r = store.update_signing_key_times(&t.name, kid, ret, rem).await;
        assert!(
            matches!(r, Err(StoreError::NotFound)),
            "update_signing_key_times({kid}): expected NotFound, got {r:?}"
        );
    }
    assert_eq!(key_of(store, &beta, "b1").await, Some(b));
}

/// `rotate_signing_keys` inserts the new key and updates the old ones together; if any part
/// fails (an unknown kid, a duplicate new kid) nothing is written.
pub async fn rotate_signing_keys_is_one_transaction(store: &dyn Store) {
    let acme = seed(store, "acme").await;
    let old = signing_key_record(&acme.name, "old");
    ok(store.add_signing_key(&old).await, "add_signing_key");
    let new = SigningKeyRecord {
        created_at: at(10),
        activates_at: at(360_000),
        ..signing_key_record(&acme.name, "new")
    };
    let retire = KeyTimes {
        kid: "old".into(),
        retires_at: Some(at(360_000)),
        removed_at: Some(at(3_720_000)),
    };

    // An unknown kid among the updates: neither the insert nor the other update stays.
    let unknown = KeyTimes {
        kid: "ghost".into(),
        retires_at: None,
        removed_at: Some(at(1)),
    };
    let r = store
        .rotate_signing_keys(&acme.name, Some(&new), &[retire.clone(), unknown])
        .await;
    assert!(
        matches!(r, Err(StoreError::NotFound)),
        "rotate with an unknown kid: expected NotFound, got {r:?}"
    );
    assert_eq!(
        ok(store.tenant_signing_keys(&acme.name).await, "keys"),
        vec![old.clone()],
        "a failed rotation wrote something"
    );

    ok(
        store
            .rotate_signing_keys(&acme.name, Some(&new), std::slice::from_ref(&retire))
            .await,
        "rotate_signing_keys",
    );
    let retired = SigningKeyRecord {
        retires_at: retire.retires_at,
        removed_at: retire.removed_at,
        ..old.clone()
    };
    assert_eq!(
        ok(store.tenant_signing_keys(&acme.name).await, "keys"),
        vec![new.clone(), retired.clone()]
    );

    // The same new kid again: Conflict, and the update that came with it is not applied.
    let undo = KeyTimes {
        kid: "old".into(),
        retires_at: None,
        removed_at: None,
    };
    let r = store
        .rotate_signing_keys(&acme.name, Some(&new), std::slice::from_ref(&undo))
        .await;
    assert!(
        matches!(r, Err(StoreError::Conflict)),
        "rotate with an existing kid: expected Conflict, got {r:?}"
    );
    assert_eq!(key_of(store, &acme, "old").await, Some(retired));

    // Updates alone (revoking a pending key restores its predecessor).
    ok(
        store.rotate_signing_keys(&acme.name, None, &[undo]).await,
        "rotate_signing_keys without a new key",
    );
    assert_eq!(key_of(store, &acme, "old").await, Some(old));
    assert!(
        ok(
            store.tenant_signing_keys(&tenant_name("nope")).await,
            "keys"
        )
        .is_empty()
    );
}
