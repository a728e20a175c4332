//! Store contract checks for registered APIs (docs/apis.md): live names and audiences unique
//! per tenant, ids never reused, optimistic revisions, deletion with the tenant, and export /
//! import carrying deleted APIs too.

use warrant_core::model::{Api, ServiceAccount};
use warrant_core::store::StoreResult;
use warrant_core::{ApiId, ApiName, Store, StoreError, Timestamp};

use crate::builders::{T0, account, api, scopes, tenant, tenant_name};

pub(crate) fn ok<T>(r: StoreResult<T>, what: &str) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{what}: expected Ok, got Err({e:?})"),
    }
}

fn conflict<T: std::fmt::Debug>(r: StoreResult<T>, what: &str) {
    assert!(
        matches!(r, Err(StoreError::Conflict)),
        "{what}: expected Err(Conflict), got {r:?}"
    );
}

/// `ms` after [`T0`].
pub(crate) fn at(ms: i64) -> Timestamp {
    Timestamp::from_millis(T0.millis() + ms)
}

fn name(s: &str) -> ApiName {
    ApiName::parse(s).unwrap_or_else(|e| panic!("test API name {s:?}: {e}"))
}

/// A tenant `t` (made if missing) with a new account `owner`.
pub(crate) async fn seed_owner(store: &dyn Store, t: &str) -> ServiceAccount {
    let tn = tenant_name(t);
    if ok(store.get_tenant(&tn).await, "get_tenant").is_none() {
        ok(store.create_tenant(&tenant(t)).await, "create_tenant");
    }
    let a = account(&tn, "owner");
    ok(store.create_account(&a).await, "create_account");
    a
}

async fn seed_api(store: &dyn Store, a: Api) -> Api {
    ok(
        store.create_api(&a).await,
        &format!("create_api({})", a.name),
    );
    a
}

/// Every field comes back as written, by id and by name; an unknown one is `None`.
pub async fn api_create_get_and_round_trip_every_field(store: &dyn Store) {
    let owner = seed_owner(store, "acme").await;
    let mut a = api(
        &owner,
        "deploy",
        "https://deploy.example/v1?x=1",
        "deploy:read deploy:write",
    );
    a.description = Some("Déploiement — \"quoted\" \\ unicode ✓".into());
    a.created_at = at(1);
    a.updated_at = at(2);
    a.revision = 3;
    let a = seed_api(store, a).await;
    let plain = seed_api(store, api(&owner, "plain", "urn:example:plain", "x")).await;
    assert_eq!(
        ok(store.get_api(&a.tenant, &a.id).await, "get_api"),
        Some(a.clone())
    );
    assert_eq!(
        ok(
            store.get_api_by_name(&a.tenant, &a.name).await,
            "get_api_by_name"
        ),
        Some(a.clone())
    );
    assert_eq!(
        ok(store.get_api(&plain.tenant, &plain.id).await, "get_api"),
        Some(plain.clone())
    );
    let unknown = ApiId::generate(T0).expect("randomness");
    assert_eq!(
        ok(store.get_api(&a.tenant, &unknown).await, "get_api"),
        None
    );
    assert_eq!(
        ok(
            store.get_api_by_name(&a.tenant, &name("nope")).await,
            "get_api_by_name"
        ),
        None
    );
}

/// A live API's name or audience cannot be taken again in its tenant, nor its id anywhere.
pub async fn api_duplicate_live_name_or_audience_is_conflict(store: &dyn Store) {
    let owner = seed_owner(store, "acme").await;
    let first = seed_api(store, api(&owner, "deploy", "https://deploy.example", "a")).await;
    conflict(
        store
            .create_api(&api(&owner, "deploy", "https://other.example", "a"))
            .await,
        "same name",
    );
    conflict(
        store
            .create_api(&api(&owner, "other", "https://deploy.example", "a"))
            .await,
        "same audience",
    );
    let mut same_id = api(&owner, "third", "https://third.example", "a");
    same_id.id = first.id.clone();
    conflict(store.create_api(&same_id).await, "same id");
    // Another tenant may use the same name and audience.
    let elsewhere = seed_owner(store, "zeta").await;
    seed_api(
        store,
        api(&elsewhere, "deploy", "https://deploy.example", "a"),
    )
    .await;
    assert_eq!(
        ok(store.list_apis(&owner.tenant, None, 100).await, "list_apis"),
        vec![first]
    );
}

/// Lists are the tenant's live APIs ordered by id, after the cursor, at most `limit`.
pub async fn api_list_orders_by_id_with_cursor_and_limit(store: &dyn Store) {
    let owner = seed_owner(store, "acme").await;
    let mut made = Vec::new();
    for i in 0..5 {
        let mut a = api(
            &owner,
            &format!("api-{i}"),
            &format!("https://a{i}.example"),
            "s",
        );
        a.id = ApiId::generate(at(5_000 - i * 1_000)).expect("randomness");
        made.push(seed_api(store, a).await);
    }
    made.sort_by(|a, b| a.id.cmp(&b.id));
    let all = ok(store.list_apis(&owner.tenant, None, 100).await, "list_apis");
    assert_eq!(all, made);
    let first = ok(store.list_apis(&owner.tenant, None, 2).await, "list_apis");
    assert_eq!(first, made[..2].to_vec());
    let next = ok(
        store.list_apis(&owner.tenant, Some(&first[1].id), 2).await,
        "list_apis",
    );
    assert_eq!(next, made[2..4].to_vec());
    let last = ok(
        store.list_apis(&owner.tenant, Some(&next[1].id), 2).await,
        "list_apis",
    );
    assert_eq!(last, made[4..].to_vec());
}

/// An update writes scopes, owner, description and time with `expected + 1`; a stale
/// revision is `RevisionMismatch` (nothing written), a deleted API `NotFound`.
pub async fn api_update_bumps_revision_and_checks_expected(store: &dyn Store) {
    let owner = seed_owner(store, "acme").await;
    let other = account(&owner.tenant, "other");
    ok(store.create_account(&other).await, "create_account");
    let a = seed_api(
        store,
        api(&owner, "deploy", "https://deploy.example", "a b"),
    )
    .await;
    let next = Api {
        scopes: scopes("a c"),
        owner: other.id.clone(),
        description: Some("now".into()),
        updated_at: at(9_000),
        // Not editable: the store keeps the stored values.
        revision: 2,
        ..a.clone()
    };
    ok(store.update_api(&next, 1).await, "update_api");
    assert_eq!(
        ok(store.get_api(&a.tenant, &a.id).await, "get_api"),
        Some(next.clone())
    );
    let stale = Api {
        description: None,
        ..next.clone()
    };
    assert!(
        matches!(
            store.update_api(&stale, 1).await,
            Err(StoreError::RevisionMismatch)
        ),
        "a stale revision"
    );
    assert_eq!(
        ok(store.get_api(&a.tenant, &a.id).await, "get_api"),
        Some(next.clone())
    );
    ok(
        store.delete_api(&a.tenant, &a.id, at(10_000)).await,
        "delete_api",
    );
    assert!(
        matches!(store.update_api(&next, 2).await, Err(StoreError::NotFound)),
        "update of a deleted API"
    );
}

/// Deletion hides the API and frees its name and audience; its id stays taken; a second
/// deletion is `NotFound`.
pub async fn api_delete_hides_it_and_frees_name_and_audience(store: &dyn Store) {
    let owner = seed_owner(store, "acme").await;
    let a = seed_api(store, api(&owner, "deploy", "https://deploy.example", "a")).await;
    ok(
        store.delete_api(&a.tenant, &a.id, at(1)).await,
        "delete_api",
    );
    assert_eq!(ok(store.get_api(&a.tenant, &a.id).await, "get_api"), None);
    assert_eq!(
        ok(
            store.get_api_by_name(&a.tenant, &a.name).await,
            "get_api_by_name"
        ),
        None
    );
    assert_eq!(
        ok(store.list_apis(&a.tenant, None, 100).await, "list_apis"),
        vec![]
    );
    assert!(
        matches!(
            store.delete_api(&a.tenant, &a.id, at(2)).await,
            Err(StoreError::NotFound)
        ),
        "second delete"
    );
    let again = seed_api(store, api(&owner, "deploy", "https://deploy.example", "b")).await;
    assert_eq!(
        ok(
            store.get_api_by_name(&a.tenant, &a.name).await,
            "get_api_by_name"
        ),
        Some(again)
    );
    let mut reused = api(&owner, "other", "https://other.example", "a");
    reused.id = a.id.clone();
    conflict(store.create_api(&reused).await, "a deleted API's id");
}

/// Another tenant never sees an API; deleting the tenant deletes its APIs.
pub async fn api_is_invisible_to_other_tenants_and_dies_with_its_tenant(store: &dyn Store) {
    let owner = seed_owner(store, "acme").await;
    let a = seed_api(store, api(&owner, "deploy", "https://deploy.example", "a")).await;
    let zeta = seed_owner(store, "zeta").await;
    assert_eq!(
        ok(store.get_api(&zeta.tenant, &a.id).await, "get_api"),
        None
    );
    assert_eq!(
        ok(
            store.get_api_by_name(&zeta.tenant, &a.name).await,
            "get_api_by_name"
        ),
        None
    );
    assert!(
        matches!(
            store.delete_api(&zeta.tenant, &a.id, at(1)).await,
            Err(StoreError::NotFound)
        ),
        "delete from another tenant"
    );
    ok(
        store.delete_tenant(&owner.tenant, at(2)).await,
        "delete_tenant",
    );
    assert_eq!(
        ok(store.get_api(&owner.tenant, &a.id).await, "get_api"),
        None
    );
    let snapshot = ok(store.export().await, "export");
    assert_eq!(snapshot.apis, vec![(a, Some(at(2)))]);
}

/// Export carries live and deleted APIs; import into a fresh store reproduces them exactly,
/// deleted ones stay invisible and their ids stay taken.
pub async fn apis_export_import_round_trip(store: &dyn Store, other: &dyn Store) {
    let owner = seed_owner(store, "acme").await;
    let mut live = api(&owner, "deploy", "https://deploy.example", "b a");
    live.description = Some("the deploy API".into());
    let live = seed_api(store, live).await;
    let gone = seed_api(store, api(&owner, "gone", "https://gone.example", "x")).await;
    ok(
        store.delete_api(&gone.tenant, &gone.id, at(7)).await,
        "delete_api",
    );
    let snapshot = ok(store.export().await, "export");
    // Deletion bumps the revision, as for accounts.
    let gone_row = Api {
        revision: 2,
        ..gone.clone()
    };
    let mut want = vec![(live.clone(), None), (gone_row, Some(at(7)))];
    want.sort_by(|a, b| a.0.id.cmp(&b.0.id));
    assert_eq!(snapshot.apis, want);
    ok(other.import(&snapshot).await, "import");
    assert_eq!(ok(other.export().await, "export").apis, snapshot.apis);
    assert_eq!(
        ok(other.list_apis(&owner.tenant, None, 100).await, "list_apis"),
        vec![live]
    );
    let mut reused = api(&owner, "again", "https://again.example", "a");
    reused.id = gone.id.clone();
    conflict(
        other.create_api(&reused).await,
        "an imported deleted API's id",
    );
    assert_eq!(
        ok(other.get_api(&gone.tenant, &gone.id).await, "get_api"),
        None
    );
}
