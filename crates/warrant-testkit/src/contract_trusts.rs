//! Store contract checks for federation trusts (docs/federation.md): live names unique per
//! tenant, ids never reused, the policy stored whole (JSON) with its account, optimistic
//! revisions, deletion with the tenant, and export / import carrying deleted trusts too.

use serde_json::json;
use warrant_core::federation::TrustPolicy;
use warrant_core::model::{ServiceAccount, Trust};
use warrant_core::{Store, StoreError, TrustId, TrustName};

use crate::builders::{T0, account};
use crate::contract_apis::{at, ok, seed_owner};

/// A policy exercising every field: a static JWKS, nested and dotted claim paths, each check.
fn policy(account: &ServiceAccount, repo: &str) -> TrustPolicy {
    let p = json!({
        "issuer": "https://token.actions.githubusercontent.com",
        "jwks": {"static": {"keys": [{
            "kty": "EC", "crv": "P-256", "alg": "ES256", "kid": "k1",
            "x": "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4",
            "y": "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"
        }]}},
        "audience": "https://warrant.example",
        "conditions": [
            {"claim": "repository", "equals": repo},
            {"claim": "ref", "glob": "refs/heads/*"},
            {"claim": ["kubernetes.io", "namespace"], "one_of": ["ci", "prod"]}
        ],
        "max_age_seconds": 600,
        "single_use": true,
        "account": account.id.as_str(),
        "copy_claims": ["repository", "a.b"],
        "max_lifetime_seconds": 900
    });
    serde_json::from_value(p).unwrap_or_else(|e| panic!("test trust policy: {e}"))
}

/// A live trust of `account`'s tenant named `name`, created at [`T0`], revision 1.
fn trust(account: &ServiceAccount, name: &str) -> Trust {
    Trust {
        id: TrustId::generate(T0).expect("the system random generator failed"),
        tenant: account.tenant.clone(),
        name: TrustName::parse(name).unwrap_or_else(|e| panic!("test trust name {name:?}: {e}")),
        policy: policy(account, "acme/api"),
        created_at: T0,
        updated_at: T0,
        revision: 1,
    }
}

async fn seed(store: &dyn Store, t: Trust) -> Trust {
    ok(
        store.create_trust(&t).await,
        &format!("create_trust({})", t.name),
    );
    t
}

/// Every field comes back as written, by id and by name; an unknown one is `None`; a second
/// live trust of that name is `Conflict`, as is a reused id.
pub async fn trust_create_get_round_trip_and_conflicts(store: &dyn Store) {
    let a = seed_owner(store, "acme").await;
    let t = seed(store, trust(&a, "github")).await;
    assert_eq!(
        ok(store.get_trust(&t.tenant, &t.id).await, "get_trust"),
        Some(t.clone())
    );
    assert_eq!(
        ok(
            store.get_trust_by_name(&t.tenant, &t.name).await,
            "get_trust_by_name"
        ),
        Some(t.clone())
    );
    let unknown = TrustId::generate(T0).expect("random");
    assert_eq!(
        ok(store.get_trust(&t.tenant, &unknown).await, "get_trust"),
        None
    );
    let same_name = trust(&a, "github");
    assert!(matches!(
        store.create_trust(&same_name).await,
        Err(StoreError::Conflict)
    ));
    let mut same_id = trust(&a, "other");
    same_id.id = t.id.clone();
    assert!(matches!(
        store.create_trust(&same_id).await,
        Err(StoreError::Conflict)
    ));
}

/// Lists are ordered by id, paged by cursor and limit.
pub async fn trust_list_orders_by_id_with_cursor_and_limit(store: &dyn Store) {
    let a = seed_owner(store, "acme").await;
    let mut all = Vec::new();
    for n in ["c", "a", "b"] {
        all.push(seed(store, trust(&a, n)).await);
    }
    all.sort_by(|x, y| x.id.cmp(&y.id));
    assert_eq!(
        ok(store.list_trusts(&a.tenant, None, 100).await, "list"),
        all
    );
    let first = ok(store.list_trusts(&a.tenant, None, 2).await, "list");
    assert_eq!(first, all[..2].to_vec());
    let rest = ok(
        store.list_trusts(&a.tenant, Some(&all[1].id), 2).await,
        "list",
    );
    assert_eq!(rest, all[2..].to_vec());
}

/// An update replaces the policy and bumps the revision; a stale revision is
/// `RevisionMismatch`, a deleted trust `NotFound`.
pub async fn trust_update_bumps_revision_and_checks_expected(store: &dyn Store) {
    let a = seed_owner(store, "acme").await;
    let b = account(&a.tenant, "other");
    ok(store.create_account(&b).await, "create_account");
    let t = seed(store, trust(&a, "github")).await;
    let mut next = t.clone();
    next.policy = policy(&b, "acme/web");
    next.policy.jwks = warrant_core::federation::TrustKeys::Discovery;
    next.updated_at = at(5);
    next.revision = 2;
    ok(store.update_trust(&next, 1).await, "update_trust");
    assert_eq!(
        ok(store.get_trust(&t.tenant, &t.id).await, "get"),
        Some(next.clone())
    );
    assert!(matches!(
        store.update_trust(&next, 1).await,
        Err(StoreError::RevisionMismatch)
    ));
    ok(
        store.delete_trust(&t.tenant, &t.id, at(6)).await,
        "delete_trust",
    );
    assert!(matches!(
        store.update_trust(&next, 2).await,
        Err(StoreError::NotFound)
    ));
}

/// Deletion hides the trust and frees its name; a second delete and a delete from another
/// tenant are `NotFound`; deleting the tenant deletes its trusts.
pub async fn trust_delete_frees_name_and_dies_with_its_tenant(store: &dyn Store) {
    let a = seed_owner(store, "acme").await;
    let zeta = seed_owner(store, "zeta").await;
    let t = seed(store, trust(&a, "github")).await;
    assert_eq!(ok(store.get_trust(&zeta.tenant, &t.id).await, "get"), None);
    assert!(matches!(
        store.delete_trust(&zeta.tenant, &t.id, at(1)).await,
        Err(StoreError::NotFound)
    ));
    ok(
        store.delete_trust(&t.tenant, &t.id, at(1)).await,
        "delete_trust",
    );
    assert_eq!(ok(store.get_trust(&t.tenant, &t.id).await, "get"), None);
    assert_eq!(
        ok(
            store.get_trust_by_name(&t.tenant, &t.name).await,
            "get_by_name"
        ),
        None
    );
    assert!(matches!(
        store.delete_trust(&t.tenant, &t.id, at(2)).await,
        Err(StoreError::NotFound)
    ));
    let again = seed(store, trust(&a, "github")).await;
    ok(store.delete_tenant(&a.tenant, at(3)).await, "delete_tenant");
    assert_eq!(ok(store.get_trust(&a.tenant, &again.id).await, "get"), None);
}

/// Export carries live and deleted trusts; import into a fresh store reproduces them exactly.
pub async fn trusts_export_import_round_trip(store: &dyn Store, other: &dyn Store) {
    let a = seed_owner(store, "acme").await;
    let live = seed(store, trust(&a, "github")).await;
    let gone = seed(store, trust(&a, "gone")).await;
    ok(
        store.delete_trust(&gone.tenant, &gone.id, at(7)).await,
        "delete_trust",
    );
    let snapshot = ok(store.export().await, "export");
    let gone_row = Trust {
        revision: 2,
        ..gone.clone()
    };
    let mut want = vec![(live.clone(), None), (gone_row, Some(at(7)))];
    want.sort_by(|x, y| x.0.id.cmp(&y.0.id));
    assert_eq!(snapshot.trusts, want);
    ok(other.import(&snapshot).await, "import");
    assert_eq!(ok(other.export().await, "export").trusts, snapshot.trusts);
    assert_eq!(
        ok(other.list_trusts(&a.tenant, None, 100).await, "list"),
        vec![live]
    );
}
