//! The store contract suite: what every [`Store`] must do, as executable checks.
//!
//! Each check is a `pub async fn name(store: &dyn Store)` that expects a fresh, migrated, empty
//! store and panics (with the expected and the actual value) on the first deviation; the checks
//! that move data between stores take two (`store`, `other`). Run them all with
//! [`crate::store_contract_tests!`] (one `#[tokio::test]` per check) or
//! [`crate::run_store_contract`] (all in one test).
//!
//! Unordered results (`keyring`, `all_accounts`, `all_secrets`, `signing_keys` across tenants)
//! are sorted before comparing; documented orders are compared as returned.

use std::fmt::Debug;

use serde_json::{Map, Value, json};
use warrant_core::keyring::{KeyPurpose, KeyringEntry};
use warrant_core::model::{AuthMethod, SecretRecord, ServiceAccount, SigningKeyRecord, Tenant};
use warrant_core::store::StoreResult;
use warrant_core::{AccountId, Snapshot, Store, StoreError, TenantName, Timestamp};
use warrant_jose::Algorithm;

use crate::builders::{
    T0, account, account_id_at, account_name, audience, fake_hash, grant, keyring_entry,
    secret_name, secret_record, signing_key_record, tenant, tenant_name,
};

// ---------------------------------------------------------------------------------------------
// helpers

/// The error a check expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    Conflict,
    NotFound,
    RevisionMismatch,
}

fn ok<T>(r: StoreResult<T>, what: &str) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{what}: expected Ok, got Err({e:?})"),
    }
}

fn err<T: Debug>(r: StoreResult<T>, want: Want, what: &str) {
    let got = match &r {
        Err(StoreError::Conflict) => Some(Want::Conflict),
        Err(StoreError::NotFound) => Some(Want::NotFound),
        Err(StoreError::RevisionMismatch) => Some(Want::RevisionMismatch),
        _ => None,
    };
    if got != Some(want) {
        panic!("{what}: expected Err({want:?}), got {r:?}");
    }
}

fn ms(t: Timestamp, delta_ms: i64) -> Timestamp {
    Timestamp::from_millis(t.millis() + delta_ms)
}

fn by_id(mut v: Vec<ServiceAccount>) -> Vec<ServiceAccount> {
    v.sort_by(|a, b| a.id.cmp(&b.id));
    v
}

fn by_account_and_name(mut v: Vec<SecretRecord>) -> Vec<SecretRecord> {
    v.sort_by(|a, b| (&a.account_id, &a.name).cmp(&(&b.account_id, &b.name)));
    v
}

fn by_kid(mut v: Vec<SigningKeyRecord>) -> Vec<SigningKeyRecord> {
    v.sort_by(|a, b| a.kid.cmp(&b.kid));
    v
}

/// `KeyringEntry` has no `PartialEq`: compare it as a tuple.
fn keyring_view(v: &[KeyringEntry]) -> Vec<(&'static str, u32, Vec<u8>, Timestamp)> {
    let mut out: Vec<_> = v
        .iter()
        .map(|e| {
            (
                e.purpose.as_str(),
                e.version,
                e.wrapped.clone(),
                e.created_at,
            )
        })
        .collect();
    out.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    out
}

async fn seed_tenant(store: &dyn Store, name: &str) -> Tenant {
    let t = tenant(name);
    ok(
        store.create_tenant(&t).await,
        &format!("create_tenant({name})"),
    );
    t
}

async fn seed_account(store: &dyn Store, tenant: &TenantName, name: &str) -> ServiceAccount {
    let a = account(tenant, name);
    ok(
        store.create_account(&a).await,
        &format!("create_account({tenant}/{name})"),
    );
    a
}

async fn seed_secret(store: &dyn Store, account: &AccountId, name: &str) -> SecretRecord {
    let s = secret_record(account, name);
    ok(
        store.add_secret(&s).await,
        &format!("add_secret({account}/{name})"),
    );
    s
}

async fn seed_key(store: &dyn Store, k: SigningKeyRecord) -> SigningKeyRecord {
    ok(
        store.add_signing_key(&k).await,
        &format!("add_signing_key({})", k.kid),
    );
    k
}

/// Custom claims exercising every JSON type, nesting, unicode, escapes and a 2^53+1 integer.
pub fn rich_claims() -> Map<String, Value> {
    let v = json!({
        "team": "platform",
        "level": 3,
        "negative": -42,
        "ratio": 0.25,
        "big": 9_007_199_254_740_993_i64,
        "on": true,
        "off": false,
        "none": null,
        "unicode": "ünïcødé ✓ 日本語 🚀",
        "escapes": "a\"b\\c\nd\te",
        "nested": {
            "list": [1, "two", {"three": [false, null, 3.5]}],
            "empty_object": {},
            "empty_list": [],
        },
    });
    match v {
        Value::Object(m) => m,
        _ => unreachable!("a JSON object literal"),
    }
}

/// An account whose every field differs from the builder default.
pub fn rich_account(tenant: &TenantName, name: &str) -> ServiceAccount {
    ServiceAccount {
        description: "Déploiement « CI » — 日本語 🚀\nline two \"quoted\" back\\slash 'single'"
            .into(),
        enabled: false,
        default_audience: Some(audience("urn:example:deploy")),
        // Not in audience order: a store must keep the order it was given.
        grants: vec![
            grant("https://z.example/api/v1", "deploy:write read admin"),
            grant("urn:example:deploy", "x"),
            grant("https://a.example", "read"),
        ],
        default_lifetime: 1,
        max_lifetime: 86_400 * 365,
        claims: rich_claims(),
        auth_methods: vec![
            AuthMethod::PrivateKeyJwt,
            AuthMethod::TlsClientAuth,
            AuthMethod::SelfSignedTlsClientAuth,
        ],
        credentials: rich_credentials(),
        created_at: ms(T0, 1),
        updated_at: ms(T0, 999),
        revision: 7,
        ..account(tenant, name)
    }
}

/// Credentials with every member set (a store keeps them as they are).
pub fn rich_credentials() -> warrant_core::model::AccountCredentials {
    let (key, _) = warrant_jose::SigningKey::generate(warrant_jose::Algorithm::EdDsa)
        .unwrap_or_else(|e| panic!("generate a key: {e:?}"));
    warrant_core::model::AccountCredentials {
        jwks: Some(warrant_jose::JwkSet {
            keys: vec![key.public_jwk().clone()],
        }),
        jwks_uri: None,
        tls_client_auth: Some(warrant_core::client_auth::CertificateMatch::SanUri(
            "spiffe://example.org/ns/prod/sa/api".into(),
        )),
        self_signed_certificates: vec![
            "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU".into(),
            "bJ3rTwL8xqXj2jMmXy4Ixw3Ix8nEDTjY7wX3l-ZKMbU".into(),
        ],
        dpop_required: true,
    }
}

// ---------------------------------------------------------------------------------------------
// single-use identifiers (client assertion and DPoP `jti`s)

/// `use_once` is true the first time and false while the entry lives, per (tenant, kind, jti);
/// an expired entry may be used again; pruning removes only expired entries.
pub async fn used_jtis_are_single_use_until_they_expire(store: &dyn Store) {
    let a = tenant_name("acme");
    let b = tenant_name("beta");
    let now = ms(T0, 0);
    let until = ms(T0, 60_000);
    let once = |t: &TenantName, kind: &'static str, jti: &'static str, at: Timestamp| {
        let t = t.clone();
        async move { ok(store.use_once(&t, kind, jti, until, at).await, "use_once") }
    };
    assert!(once(&a, "dpop", "j1", now).await, "first use");
    assert!(!once(&a, "dpop", "j1", now).await, "a replay");
    assert!(
        !once(&a, "dpop", "j1", ms(T0, 59_999)).await,
        "a replay before expiry"
    );
    assert!(
        once(&a, "client_assertion", "j1", now).await,
        "kinds are apart"
    );
    assert!(once(&b, "dpop", "j1", now).await, "tenants are apart");
    assert!(once(&a, "dpop", "j2", now).await, "another jti");
    // A jti far longer than any real one, with odd characters, is still an exact key.
    assert!(once(&a, "dpop", "sa_01:é'\";--", now).await);
    assert!(!once(&a, "dpop", "sa_01:é'\";--", now).await);
    assert_eq!(ok(store.prune_used_jtis(now).await, "prune"), 0);
    // Past its expiry the entry is gone for good: reusable, and pruned.
    let later = ms(T0, 120_000);
    let reuse = |at| store.use_once(&a, "dpop", "j1", later, at);
    assert!(
        ok(reuse(ms(T0, 60_000)).await, "use_once"),
        "reusable once expired"
    );
    assert!(
        !ok(reuse(ms(T0, 60_000)).await, "use_once"),
        "and single use again"
    );
    let pruned = ok(store.prune_used_jtis(ms(T0, 61_000)).await, "prune");
    assert_eq!(
        pruned, 4,
        "expired entries are pruned, the renewed one stays"
    );
    assert!(
        !ok(reuse(ms(T0, 61_000)).await, "use_once"),
        "the renewed entry survived"
    );
    assert!(once(&b, "dpop", "j1", ms(T0, 61_000)).await);

    // A batch answers each identifier as it would be answered alone, in order: a repeat inside
    // the batch and an entry recorded earlier are replays.
    let used = |t: &TenantName, jti: &str| warrant_core::store::UsedJti {
        tenant: t.clone(),
        kind: "client_assertion",
        jti: jti.to_owned(),
        expires_at: ms(T0, 600_000),
    };
    let at = ms(T0, 62_000);
    assert!(ok(
        store
            .use_once(&a, "client_assertion", "pre", ms(T0, 600_000), at)
            .await,
        "use_once"
    ));
    let batch = [
        used(&a, "b1"),
        used(&a, "b2"),
        used(&a, "b1"),
        used(&b, "b1"),
        used(&a, "pre"),
    ];
    assert_eq!(
        ok(store.use_once_batch(&batch, at).await, "use_once_batch"),
        [true, true, false, true, false]
    );
    assert_eq!(
        ok(
            store.use_once_batch(&batch[..2], at).await,
            "use_once_batch"
        ),
        [false, false],
        "the batch was committed"
    );
    assert_eq!(
        ok(store.use_once_batch(&[], at).await, "use_once_batch"),
        Vec::<bool>::new()
    );
}

/// A tenant's `token_endpoint_audience` opt-in persists through update and read.
pub async fn tenant_update_persists_token_endpoint_audience(store: &dyn Store) {
    let t = seed_tenant(store, "acme").await;
    assert!(!t.token_endpoint_audience);
    let next = Tenant {
        token_endpoint_audience: true,
        revision: t.revision + 1,
        ..t.clone()
    };
    ok(
        store.update_tenant(&next, t.revision).await,
        "update_tenant",
    );
    let got = ok(store.get_tenant(&t.name).await, "get_tenant");
    assert_eq!(got.map(|g| g.token_endpoint_audience), Some(true));
}

// ---------------------------------------------------------------------------------------------
// migrations and an empty store

/// `migrate` may run again on a migrated store, with or without data, and keeps the data.
pub async fn migrate_is_idempotent(store: &dyn Store) {
    ok(store.migrate().await, "migrate on a migrated store");
    let t = seed_tenant(store, "acme").await;
    let a = seed_account(store, &t.name, "ci").await;
    ok(store.migrate().await, "migrate with data");
    ok(store.migrate().await, "migrate a third time");
    assert_eq!(
        ok(store.get_tenant(&t.name).await, "get_tenant"),
        Some(t.clone())
    );
    assert_eq!(
        ok(store.get_account(&t.name, &a.id).await, "get_account"),
        Some(a)
    );
}

/// A fresh migrated store holds nothing: no keyring, tenants, accounts, secrets or keys.
pub async fn fresh_store_is_empty(store: &dyn Store) {
    assert!(ok(store.keyring().await, "keyring").is_empty(), "keyring");
    assert_eq!(
        ok(store.list_tenants(None, 100).await, "list_tenants"),
        vec![]
    );
    assert_eq!(ok(store.all_accounts().await, "all_accounts"), vec![]);
    assert_eq!(ok(store.all_secrets().await, "all_secrets"), vec![]);
    assert_eq!(ok(store.signing_keys(T0).await, "signing_keys"), vec![]);
    assert_eq!(
        ok(
            store.get_tenant(&tenant_name("default")).await,
            "get_tenant"
        ),
        None
    );
    let snapshot = ok(store.export().await, "export");
    assert!(snapshot.is_empty(), "export of a fresh store: {snapshot:?}");
}

/// After `migrate`, every migration the build knows is applied: ascending versions from 1, each
/// with a name and a plausible millisecond time; migrating again changes none of them.
pub async fn migrations_all_applied_after_migrate(store: &dyn Store) {
    // 2020-01-01 and 2100-01-01 in ms: a time in seconds (or microseconds) falls outside.
    const SANE: std::ops::Range<i64> = 1_577_836_800_000..4_102_444_800_000;
    let got = ok(store.migrations().await, "migrations");
    assert!(
        got.iter().any(|m| m.version == 1),
        "migration 1 is missing: {got:?}"
    );
    for m in &got {
        let Some(at) = m.applied_at else {
            panic!("migration {m:?} is pending after migrate");
        };
        assert!(!m.name.is_empty(), "migration {} has no name", m.version);
        assert!(
            SANE.contains(&at.millis()),
            "migration {m:?}: applied_at is not a time in ms"
        );
    }
    for w in got.windows(2) {
        assert!(
            w[0].version < w[1].version,
            "versions not ascending: {got:?}"
        );
    }
    ok(store.migrate().await, "migrate again");
    assert_eq!(
        ok(
            store.migrations().await,
            "migrations after a second migrate"
        ),
        got,
        "a second migrate must not re-apply or re-date a migration"
    );
}

// ---------------------------------------------------------------------------------------------
// keyring

/// Inserted entries come back with every field (purpose, version, bytes, ms time).
pub async fn keyring_insert_and_list(store: &dyn Store) {
    let mut e1 = keyring_entry(KeyPurpose::SecretHashing, 1);
    e1.created_at = ms(T0, 1);
    let mut e2 = keyring_entry(KeyPurpose::SecretHashing, 2);
    e2.created_at = ms(T0, 86_400_000 + 2);
    let mut e3 = keyring_entry(KeyPurpose::Audit, 1);
    e3.created_at = ms(T0, 3);
    let mut e4 = keyring_entry(KeyPurpose::SecretHashing, u32::MAX);
    e4.wrapped = (0..=255u8).rev().collect();
    for e in [&e2, &e3, &e4, &e1] {
        ok(
            store.insert_keyring_entry(e).await,
            &format!(
                "insert_keyring_entry({}, {})",
                e.purpose.as_str(),
                e.version
            ),
        );
    }
    let got = ok(store.keyring().await, "keyring");
    assert_eq!(keyring_view(&got), keyring_view(&[e1, e2, e3, e4]));
}

/// A second entry with the same purpose and version is `Conflict` and changes nothing; the same
/// version under another purpose is fine.
pub async fn keyring_duplicate_is_conflict(store: &dyn Store) {
    let e = keyring_entry(KeyPurpose::SecretHashing, 1);
    ok(store.insert_keyring_entry(&e).await, "insert_keyring_entry");
    let mut dup = keyring_entry(KeyPurpose::SecretHashing, 1);
    dup.wrapped = vec![9, 9, 9];
    dup.created_at = ms(T0, 5_000);
    err(
        store.insert_keyring_entry(&dup).await,
        Want::Conflict,
        "insert_keyring_entry with a taken purpose and version",
    );
    let other = keyring_entry(KeyPurpose::Audit, 1);
    ok(
        store.insert_keyring_entry(&other).await,
        "insert_keyring_entry(audit, 1)",
    );
    let got = ok(store.keyring().await, "keyring");
    assert_eq!(keyring_view(&got), keyring_view(&[e, other]));
}

// ---------------------------------------------------------------------------------------------
// tenants

/// A created tenant reads back exactly; an unknown name reads as `None`.
pub async fn tenant_create_and_get(store: &dyn Store) {
    let t1 = Tenant {
        signing_alg: Algorithm::EdDsa,
        created_at: ms(T0, 1),
        updated_at: ms(T0, 60_007),
        revision: 3,
        ..tenant("acme")
    };
    let t2 = tenant("a-2");
    ok(store.create_tenant(&t1).await, "create_tenant(acme)");
    ok(store.create_tenant(&t2).await, "create_tenant(a-2)");
    assert_eq!(
        ok(store.get_tenant(&t1.name).await, "get_tenant(acme)"),
        Some(t1)
    );
    assert_eq!(
        ok(store.get_tenant(&t2.name).await, "get_tenant(a-2)"),
        Some(t2)
    );
    assert_eq!(
        ok(
            store.get_tenant(&tenant_name("acme2")).await,
            "get_tenant(acme2)"
        ),
        None
    );
}

/// A live tenant's name is `Conflict` and the original is unchanged.
pub async fn tenant_duplicate_name_is_conflict(store: &dyn Store) {
    let t = seed_tenant(store, "acme").await;
    let dup = Tenant {
        signing_alg: Algorithm::EdDsa,
        created_at: ms(T0, 10_000),
        updated_at: ms(T0, 10_000),
        revision: 9,
        ..tenant("acme")
    };
    err(
        store.create_tenant(&dup).await,
        Want::Conflict,
        "create_tenant with a live tenant's name",
    );
    assert_eq!(
        ok(store.get_tenant(&t.name).await, "get_tenant"),
        Some(t.clone())
    );
    assert_eq!(
        ok(store.list_tenants(None, 10).await, "list_tenants"),
        vec![t]
    );
}

/// Live tenants in byte order of name, strictly after the cursor, at most `limit`.
pub async fn tenant_list_orders_by_name_with_cursor_and_limit(store: &dyn Store) {
    for n in [
        "delta", "alpha", "charlie", "a0", "echo", "bravo", "a-1", "zz-9",
    ] {
        seed_tenant(store, n).await;
    }
    // '-' < '0' < 'a': plain byte order, whatever the database's collation.
    let all: Vec<Tenant> = [
        "a-1", "a0", "alpha", "bravo", "charlie", "delta", "echo", "zz-9",
    ]
    .into_iter()
    .map(tenant)
    .collect();
    assert_eq!(
        ok(
            store.list_tenants(None, 100).await,
            "list_tenants(None, 100)"
        ),
        all
    );
    assert_eq!(
        ok(store.list_tenants(None, 3).await, "list_tenants(None, 3)"),
        all[..3].to_vec()
    );
    assert_eq!(
        ok(store.list_tenants(None, 8).await, "list_tenants(None, 8)"),
        all
    );
    let b = tenant_name("b");
    assert_eq!(
        ok(
            store.list_tenants(Some(&b), 100).await,
            "list_tenants(b, 100)"
        ),
        all[3..].to_vec(),
        "the cursor need not name a tenant"
    );
    let alpha = tenant_name("alpha");
    assert_eq!(
        ok(
            store.list_tenants(Some(&alpha), 2).await,
            "list_tenants(alpha, 2)"
        ),
        all[3..5].to_vec(),
        "the cursor itself is excluded"
    );
    let last = tenant_name("zz-9");
    assert_eq!(
        ok(
            store.list_tenants(Some(&last), 10).await,
            "list_tenants(zz-9, 10)"
        ),
        vec![]
    );
    // Paging with limit 3 visits every tenant once.
    let mut paged = Vec::new();
    let mut cursor: Option<TenantName> = None;
    for _ in 0..10 {
        let page = ok(
            store.list_tenants(cursor.as_ref(), 3).await,
            "list_tenants page",
        );
        assert!(page.len() <= 3, "a page longer than the limit: {page:?}");
        let Some(last) = page.last() else { break };
        cursor = Some(last.name.clone());
        paged.extend(page);
    }
    assert_eq!(paged, all);
}

/// A deleted tenant is gone from `get_tenant` and `list_tenants`; deleting it again, or an
/// unknown tenant, is `NotFound`.
pub async fn tenant_delete_hides_it(store: &dyn Store) {
    let acme = seed_tenant(store, "acme").await;
    let beta = seed_tenant(store, "beta").await;
    let zeta = seed_tenant(store, "zeta").await;
    ok(
        store.delete_tenant(&beta.name, ms(T0, 1_000)).await,
        "delete_tenant(beta)",
    );
    assert_eq!(
        ok(store.get_tenant(&beta.name).await, "get_tenant(beta)"),
        None
    );
    assert_eq!(
        ok(store.list_tenants(None, 100).await, "list_tenants"),
        vec![acme.clone(), zeta.clone()]
    );
    assert_eq!(
        ok(
            store.list_tenants(Some(&acme.name), 100).await,
            "list_tenants(acme)"
        ),
        vec![zeta.clone()]
    );
    assert_eq!(
        ok(store.get_tenant(&acme.name).await, "get_tenant(acme)"),
        Some(acme),
        "another tenant is untouched"
    );
    err(
        store.delete_tenant(&beta.name, ms(T0, 2_000)).await,
        Want::NotFound,
        "delete_tenant of a deleted tenant",
    );
    err(
        store
            .delete_tenant(&tenant_name("nope"), ms(T0, 2_000))
            .await,
        Want::NotFound,
        "delete_tenant of an unknown tenant",
    );
}

/// `update_tenant` stores every algorithm, sets `updated_at`, takes the revision from
/// `expected_revision` (not from the record) and leaves `created_at` and other tenants alone.
pub async fn tenant_update_persists_alg_and_bumps_revision(store: &dyn Store) {
    let acme = seed_tenant(store, "acme").await;
    let beta = seed_tenant(store, "beta").await;
    let mut current = acme.clone();
    for (i, alg) in [
        Algorithm::Rs256,
        Algorithm::Ps256,
        Algorithm::EdDsa,
        Algorithm::Es256,
    ]
    .into_iter()
    .enumerate()
    {
        let next = Tenant {
            signing_alg: alg,
            updated_at: ms(T0, 60_000 * (i as i64 + 1) + 7),
            revision: 99,          // not what the store keeps
            created_at: ms(T0, 5), // not editable
            ..current.clone()
        };
        ok(
            store.update_tenant(&next, current.revision).await,
            &format!("update_tenant({alg})"),
        );
        let want = Tenant {
            revision: current.revision + 1,
            created_at: acme.created_at,
            ..next
        };
        assert_eq!(
            ok(store.get_tenant(&acme.name).await, "get_tenant(acme)"),
            Some(want.clone()),
            "after update_tenant({alg})"
        );
        current = want;
    }
    assert_eq!(
        ok(store.list_tenants(None, 10).await, "list_tenants"),
        vec![current, beta.clone()]
    );
    assert_eq!(
        ok(store.get_tenant(&beta.name).await, "get_tenant(beta)"),
        Some(beta),
        "another tenant is untouched"
    );
}

/// A stale (or future) expected revision is `RevisionMismatch` and changes nothing.
pub async fn tenant_update_stale_revision_is_mismatch(store: &dyn Store) {
    let t = seed_tenant(store, "acme").await;
    let v2 = Tenant {
        signing_alg: Algorithm::Ps256,
        updated_at: ms(T0, 1_000),
        revision: t.revision + 1,
        ..t.clone()
    };
    ok(store.update_tenant(&v2, t.revision).await, "update_tenant");
    for expected in [t.revision, t.revision + 5, 0] {
        let lost = Tenant {
            signing_alg: Algorithm::Rs256,
            updated_at: ms(T0, 2_000),
            revision: expected + 1,
            ..t.clone()
        };
        err(
            store.update_tenant(&lost, expected).await,
            Want::RevisionMismatch,
            &format!(
                "update_tenant expecting revision {expected} (stored: {})",
                v2.revision
            ),
        );
    }
    assert_eq!(ok(store.get_tenant(&t.name).await, "get_tenant"), Some(v2));
}

/// Updating a deleted or never-created tenant is `NotFound`; the deleted one stays deleted.
pub async fn tenant_update_missing_is_not_found(store: &dyn Store) {
    let t = seed_tenant(store, "acme").await;
    ok(
        store.delete_tenant(&t.name, ms(T0, 1_000)).await,
        "delete_tenant",
    );
    // Deleting bumped the stored revision: try both the old and the new one.
    for expected in [t.revision, t.revision + 1] {
        let next = Tenant {
            signing_alg: Algorithm::Rs256,
            updated_at: ms(T0, 2_000),
            ..t.clone()
        };
        err(
            store.update_tenant(&next, expected).await,
            Want::NotFound,
            &format!("update_tenant of a deleted tenant expecting {expected}"),
        );
    }
    let never = tenant("never");
    err(
        store.update_tenant(&never, never.revision).await,
        Want::NotFound,
        "update_tenant of an unknown tenant",
    );
    assert_eq!(ok(store.get_tenant(&t.name).await, "get_tenant"), None);
    assert_eq!(
        ok(store.list_tenants(None, 10).await, "list_tenants"),
        vec![]
    );
}

/// A deleted tenant's name is never reused: creating it again is `Conflict`.
pub async fn tenant_deleted_name_stays_taken(store: &dyn Store) {
    let t = seed_tenant(store, "acme").await;
    ok(
        store.delete_tenant(&t.name, ms(T0, 1_000)).await,
        "delete_tenant",
    );
    let again = Tenant {
        created_at: ms(T0, 2_000),
        updated_at: ms(T0, 2_000),
        ..tenant("acme")
    };
    err(
        store.create_tenant(&again).await,
        Want::Conflict,
        "create_tenant with a deleted tenant's name",
    );
    assert_eq!(ok(store.get_tenant(&t.name).await, "get_tenant"), None);
    assert_eq!(
        ok(store.list_tenants(None, 10).await, "list_tenants"),
        vec![]
    );
}

/// Deleting a tenant deletes its accounts (all reads), their secrets and hides its keys from
/// `signing_keys`; other tenants are untouched.
pub async fn tenant_delete_hides_accounts_secrets_and_keys(store: &dyn Store) {
    let acme = seed_tenant(store, "acme").await;
    let other = seed_tenant(store, "other").await;
    let a1 = seed_account(store, &acme.name, "a1").await;
    let a2 = seed_account(store, &acme.name, "a2").await;
    let b1 = seed_account(store, &other.name, "b1").await;
    seed_secret(store, &a1.id, "initial").await;
    seed_secret(store, &a2.id, "initial").await;
    let sb = seed_secret(store, &b1.id, "initial").await;
    seed_key(store, signing_key_record(&acme.name, "k-acme")).await;
    let kb = seed_key(store, signing_key_record(&other.name, "k-other")).await;

    ok(
        store.delete_tenant(&acme.name, ms(T0, 1_000)).await,
        "delete_tenant(acme)",
    );

    for a in [&a1, &a2] {
        assert_eq!(
            ok(store.get_account(&acme.name, &a.id).await, "get_account"),
            None,
            "an account of a deleted tenant by id"
        );
        assert_eq!(
            ok(
                store.get_account_by_name(&acme.name, &a.name).await,
                "get_account_by_name"
            ),
            None,
            "an account of a deleted tenant by name"
        );
        assert_eq!(
            ok(store.list_secrets(&a.id).await, "list_secrets"),
            vec![],
            "secrets of an account of a deleted tenant"
        );
    }
    assert_eq!(
        ok(
            store.list_accounts(&acme.name, None, 100).await,
            "list_accounts"
        ),
        vec![]
    );
    assert_eq!(
        ok(store.all_accounts().await, "all_accounts"),
        vec![b1.clone()]
    );
    assert_eq!(ok(store.all_secrets().await, "all_secrets"), vec![sb]);
    assert_eq!(
        ok(store.signing_keys(ms(T0, 2_000)).await, "signing_keys"),
        vec![kb]
    );
    assert_eq!(
        ok(
            store.get_account(&other.name, &b1.id).await,
            "get_account(b1)"
        ),
        Some(b1)
    );
}

// ---------------------------------------------------------------------------------------------
// service accounts

/// A created account reads back exactly by id and by name; unknown ones read as `None`.
pub async fn account_create_and_get(store: &dyn Store) {
    let t = seed_tenant(store, "acme").await;
    let a = seed_account(store, &t.name, "ci").await;
    assert_eq!(
        ok(store.get_account(&t.name, &a.id).await, "get_account"),
        Some(a.clone())
    );
    assert_eq!(
        ok(
            store.get_account_by_name(&t.name, &a.name).await,
            "get_account_by_name"
        ),
        Some(a.clone())
    );
    assert_eq!(
        ok(
            store.get_account(&t.name, &account_id_at(T0)).await,
            "get_account(unknown id)"
        ),
        None
    );
    assert_eq!(
        ok(
            store
                .get_account_by_name(&t.name, &account_name("cd"))
                .await,
            "get_account_by_name(unknown)"
        ),
        None
    );
    assert_eq!(
        ok(
            store.list_accounts(&t.name, None, 10).await,
            "list_accounts"
        ),
        vec![a.clone()]
    );
    assert_eq!(ok(store.all_accounts().await, "all_accounts"), vec![a]);
}

/// Every field of an account survives every read path: unicode and escapes in the
/// description, `enabled = false`, both `default_audience` cases, ordered grants, nested
/// claims, lifetimes up to `u64`-ish sizes, auth-method lists and millisecond times.
pub async fn account_round_trips_every_field(store: &dyn Store) {
    let t = seed_tenant(store, "acme").await;
    let rich = rich_account(&t.name, "rich");
    let bare = ServiceAccount {
        description: String::new(),
        enabled: true,
        default_audience: None,
        grants: vec![],
        default_lifetime: 0,
        max_lifetime: u64::from(u32::MAX) + 7,
        claims: Map::new(),
        auth_methods: vec![AuthMethod::ClientSecretBasic],
        created_at: Timestamp::from_millis(1),
        updated_at: Timestamp::from_millis(4_102_444_799_999),
        revision: i64::from(i32::MAX) + 1,
        ..account(&t.name, "bare")
    };
    for a in [&rich, &bare] {
        ok(
            store.create_account(a).await,
            &format!("create_account({})", a.name),
        );
    }
    for a in [&rich, &bare] {
        assert_eq!(
            ok(store.get_account(&t.name, &a.id).await, "get_account"),
            Some(a.clone())
        );
        assert_eq!(
            ok(
                store.get_account_by_name(&t.name, &a.name).await,
                "get_account_by_name"
            ),
            Some(a.clone())
        );
    }
    let both = by_id(vec![rich, bare]);
    assert_eq!(
        ok(
            store.list_accounts(&t.name, None, 10).await,
            "list_accounts"
        ),
        both
    );
    assert_eq!(by_id(ok(store.all_accounts().await, "all_accounts")), both);
}

/// A tenant's live accounts in id order, strictly after the cursor, at most `limit`; never
/// another tenant's, never a deleted one.
pub async fn account_list_orders_by_id_with_cursor_and_limit(store: &dyn Store) {
    let acme = seed_tenant(store, "acme").await;
    let other = seed_tenant(store, "other").await;
    let mut mine = Vec::new();
    // ids made at different times, created out of id order
    for (i, secs) in [(0, 50), (1, 10), (2, 40), (3, 20), (4, 30), (5, 25)] {
        let a = ServiceAccount {
            id: account_id_at(T0.plus_secs(secs)),
            ..account(&acme.name, &format!("acct-{i}"))
        };
        ok(store.create_account(&a).await, "create_account");
        mine.push(a);
    }
    for n in ["x", "y"] {
        seed_account(store, &other.name, n).await;
    }
    let gone = mine.remove(2);
    ok(
        store.delete_account(&acme.name, &gone.id, ms(T0, 1)).await,
        "delete_account",
    );
    let mine = by_id(mine);

    assert_eq!(
        ok(
            store.list_accounts(&acme.name, None, 100).await,
            "list_accounts"
        ),
        mine
    );
    assert_eq!(
        ok(
            store.list_accounts(&acme.name, None, 2).await,
            "list_accounts limit 2"
        ),
        mine[..2].to_vec()
    );
    assert_eq!(
        ok(
            store.list_accounts(&acme.name, Some(&mine[1].id), 2).await,
            "list_accounts after #1 limit 2"
        ),
        mine[2..4].to_vec()
    );
    assert_eq!(
        ok(
            store.list_accounts(&acme.name, Some(&mine[4].id), 10).await,
            "list_accounts after the last"
        ),
        vec![]
    );
    let mut paged = Vec::new();
    let mut cursor: Option<AccountId> = None;
    for _ in 0..10 {
        let page = ok(
            store.list_accounts(&acme.name, cursor.as_ref(), 2).await,
            "list_accounts page",
        );
        assert!(page.len() <= 2, "a page longer than the limit: {page:?}");
        let Some(last) = page.last() else { break };
        cursor = Some(last.id.clone());
        paged.extend(page);
    }
    assert_eq!(paged, mine);
    let theirs = ok(
        store.list_accounts(&other.name, None, 100).await,
        "list_accounts(other)",
    );
    assert_eq!(theirs.len(), 2, "{theirs:?}");
    assert!(theirs.iter().all(|a| a.tenant == other.name), "{theirs:?}");
    assert_eq!(
        ok(
            store.list_accounts(&tenant_name("nope"), None, 100).await,
            "list_accounts(unknown tenant)"
        ),
        vec![]
    );
}

/// A live name is unique within a tenant (`Conflict`), not across tenants; an id is unique
/// across all tenants (`Conflict`).
pub async fn account_duplicate_name_or_id_is_conflict(store: &dyn Store) {
    let acme = seed_tenant(store, "acme").await;
    let other = seed_tenant(store, "other").await;
    let a = seed_account(store, &acme.name, "ci").await;
    let same_name = ServiceAccount {
        description: "second".into(),
        ..account(&acme.name, "ci")
    };
    err(
        store.create_account(&same_name).await,
        Want::Conflict,
        "create_account with a live name of the tenant",
    );
    let same_id = ServiceAccount {
        id: a.id.clone(),
        ..account(&acme.name, "cd")
    };
    err(
        store.create_account(&same_id).await,
        Want::Conflict,
        "create_account with a taken id",
    );
    let same_id_elsewhere = ServiceAccount {
        id: a.id.clone(),
        ..account(&other.name, "cd")
    };
    err(
        store.create_account(&same_id_elsewhere).await,
        Want::Conflict,
        "create_account with an id taken in another tenant",
    );
    assert_eq!(
        ok(
            store.list_accounts(&acme.name, None, 10).await,
            "list_accounts(acme)"
        ),
        vec![a.clone()]
    );
    assert_eq!(
        ok(
            store.get_account_by_name(&acme.name, &a.name).await,
            "get_account_by_name"
        ),
        Some(a.clone())
    );
    let elsewhere = seed_account(store, &other.name, "ci").await;
    assert_eq!(
        ok(
            store
                .get_account_by_name(&other.name, &elsewhere.name)
                .await,
            "get_account_by_name(other)"
        ),
        Some(elsewhere.clone())
    );
    assert_eq!(
        ok(
            store.get_account_by_name(&acme.name, &a.name).await,
            "get_account_by_name(acme)"
        ),
        Some(a.clone())
    );
    assert_eq!(
        by_id(ok(store.all_accounts().await, "all_accounts")),
        by_id(vec![a, elsewhere])
    );
}

/// After a delete the name is free for a new account (new id); the old id stays gone and is
/// never reused.
pub async fn account_name_reusable_after_delete(store: &dyn Store) {
    let t = seed_tenant(store, "acme").await;
    let old = seed_account(store, &t.name, "ci").await;
    ok(
        store.delete_account(&t.name, &old.id, ms(T0, 1_000)).await,
        "delete_account",
    );
    let new = ServiceAccount {
        description: "the second ci".into(),
        created_at: ms(T0, 2_000),
        updated_at: ms(T0, 2_000),
        ..account(&t.name, "ci")
    };
    ok(
        store.create_account(&new).await,
        "create_account with a freed name",
    );
    assert_ne!(new.id, old.id);
    assert_eq!(
        ok(
            store.get_account(&t.name, &old.id).await,
            "get_account(old id)"
        ),
        None
    );
    assert_eq!(
        ok(
            store.get_account(&t.name, &new.id).await,
            "get_account(new id)"
        ),
        Some(new.clone())
    );
    assert_eq!(
        ok(
            store.get_account_by_name(&t.name, &new.name).await,
            "get_account_by_name"
        ),
        Some(new.clone())
    );
    assert_eq!(
        ok(
            store.list_accounts(&t.name, None, 10).await,
            "list_accounts"
        ),
        vec![new.clone()]
    );
    assert_eq!(ok(store.all_accounts().await, "all_accounts"), vec![new]);
    let reuse = ServiceAccount {
        id: old.id.clone(),
        ..account(&t.name, "other-name")
    };
    err(
        store.create_account(&reuse).await,
        Want::Conflict,
        "create_account with a deleted account's id",
    );
}

/// A tenant cannot see, update or delete another tenant's account.
pub async fn account_is_invisible_to_other_tenants(store: &dyn Store) {
    let acme = seed_tenant(store, "acme").await;
    let other = seed_tenant(store, "other").await;
    let a = seed_account(store, &acme.name, "ci").await;
    assert_eq!(
        ok(
            store.get_account(&other.name, &a.id).await,
            "get_account(wrong tenant)"
        ),
        None
    );
    assert_eq!(
        ok(
            store.get_account_by_name(&other.name, &a.name).await,
            "get_account_by_name(wrong tenant)"
        ),
        None
    );
    assert_eq!(
        ok(
            store.list_accounts(&other.name, None, 10).await,
            "list_accounts(wrong tenant)"
        ),
        vec![]
    );
    let moved = ServiceAccount {
        tenant: other.name.clone(),
        description: "hijacked".into(),
        revision: a.revision + 1,
        ..a.clone()
    };
    err(
        store.update_account(&moved, a.revision).await,
        Want::NotFound,
        "update_account naming the wrong tenant",
    );
    err(
        store.delete_account(&other.name, &a.id, ms(T0, 1)).await,
        Want::NotFound,
        "delete_account naming the wrong tenant",
    );
    assert_eq!(
        ok(store.get_account(&acme.name, &a.id).await, "get_account"),
        Some(a.clone()),
        "the account is untouched"
    );
    assert_eq!(ok(store.all_accounts().await, "all_accounts"), vec![a]);
}

/// `update_account` with the current revision replaces every editable field and stores
/// `expected + 1`; it can clear optional fields again.
pub async fn account_update_persists_fields_and_bumps_revision(store: &dyn Store) {
    let t = seed_tenant(store, "acme").await;
    let a = seed_account(store, &t.name, "ci").await;
    let next = ServiceAccount {
        revision: a.revision + 1,
        ..rich_account(&t.name, "ci")
    };
    let next = ServiceAccount {
        id: a.id.clone(),
        created_at: a.created_at,
        updated_at: ms(T0, 60_001),
        ..next
    };
    ok(
        store.update_account(&next, a.revision).await,
        "update_account",
    );
    assert_eq!(
        ok(store.get_account(&t.name, &a.id).await, "get_account"),
        Some(next.clone())
    );
    assert_eq!(
        ok(
            store.get_account_by_name(&t.name, &a.name).await,
            "get_account_by_name"
        ),
        Some(next.clone())
    );
    assert_eq!(
        ok(
            store.list_accounts(&t.name, None, 10).await,
            "list_accounts"
        ),
        vec![next.clone()]
    );
    assert_eq!(
        ok(store.all_accounts().await, "all_accounts"),
        vec![next.clone()]
    );

    // Back to plain values: None and empty must replace Some and non-empty.
    let third = ServiceAccount {
        description: String::new(),
        enabled: true,
        default_audience: None,
        grants: vec![grant("https://b.example", "one two three")],
        default_lifetime: 300,
        max_lifetime: 900,
        claims: Map::new(),
        auth_methods: AuthMethod::SECRET_METHODS.to_vec(),
        updated_at: ms(T0, 120_002),
        revision: next.revision + 1,
        ..next.clone()
    };
    ok(
        store.update_account(&third, next.revision).await,
        "second update_account",
    );
    assert_eq!(
        ok(store.get_account(&t.name, &a.id).await, "get_account"),
        Some(third.clone())
    );
    assert_eq!(ok(store.all_accounts().await, "all_accounts"), vec![third]);
}

/// The stored revision is `expected_revision + 1`, whatever the record's own field says.
pub async fn account_update_revision_comes_from_expected(store: &dyn Store) {
    let t = seed_tenant(store, "acme").await;
    let a = ServiceAccount {
        revision: 41,
        ..account(&t.name, "ci")
    };
    ok(store.create_account(&a).await, "create_account");
    let next = ServiceAccount {
        description: "changed".into(),
        revision: 41, // not bumped by the caller
        ..a.clone()
    };
    ok(store.update_account(&next, 41).await, "update_account");
    assert_eq!(
        ok(store.get_account(&t.name, &a.id).await, "get_account"),
        Some(ServiceAccount {
            revision: 42,
            ..next
        })
    );
}

/// A stale (or future) expected revision is `RevisionMismatch` and changes nothing.
pub async fn account_update_stale_revision_is_mismatch(store: &dyn Store) {
    let t = seed_tenant(store, "acme").await;
    let a = seed_account(store, &t.name, "ci").await;
    let v2 = ServiceAccount {
        description: "v2".into(),
        revision: a.revision + 1,
        ..a.clone()
    };
    ok(
        store.update_account(&v2, a.revision).await,
        "update_account",
    );
    for expected in [a.revision, a.revision + 5, 0] {
        let lost = ServiceAccount {
            description: format!("lost update from revision {expected}"),
            enabled: false,
            revision: expected + 1,
            ..a.clone()
        };
        err(
            store.update_account(&lost, expected).await,
            Want::RevisionMismatch,
            &format!(
                "update_account expecting revision {expected} (stored: {})",
                v2.revision
            ),
        );
    }
    assert_eq!(
        ok(store.get_account(&t.name, &a.id).await, "get_account"),
        Some(v2)
    );
}

/// Updating a deleted or never-created account is `NotFound`.
pub async fn account_update_missing_is_not_found(store: &dyn Store) {
    let t = seed_tenant(store, "acme").await;
    let a = seed_account(store, &t.name, "ci").await;
    ok(
        store.delete_account(&t.name, &a.id, ms(T0, 1_000)).await,
        "delete_account",
    );
    for expected in [a.revision, a.revision + 1] {
        let next = ServiceAccount {
            description: "too late".into(),
            revision: expected + 1,
            ..a.clone()
        };
        err(
            store.update_account(&next, expected).await,
            Want::NotFound,
            &format!("update_account of a deleted account expecting {expected}"),
        );
    }
    let never = account(&t.name, "never");
    err(
        store.update_account(&never, never.revision).await,
        Want::NotFound,
        "update_account of an unknown account",
    );
    assert_eq!(
        ok(store.get_account(&t.name, &a.id).await, "get_account"),
        None
    );
    assert_eq!(ok(store.all_accounts().await, "all_accounts"), vec![]);
}

/// `delete_account` hides the account and its secrets; a second delete, or an unknown id, is
/// `NotFound`.
pub async fn account_delete_hides_it_and_its_secrets(store: &dyn Store) {
    let t = seed_tenant(store, "acme").await;
    let a = seed_account(store, &t.name, "ci").await;
    let b = seed_account(store, &t.name, "cd").await;
    seed_secret(store, &a.id, "initial").await;
    seed_secret(store, &a.id, "next").await;
    let sb = seed_secret(store, &b.id, "initial").await;
    ok(
        store.delete_account(&t.name, &a.id, ms(T0, 1_000)).await,
        "delete_account",
    );
    assert_eq!(
        ok(store.get_account(&t.name, &a.id).await, "get_account"),
        None
    );
    assert_eq!(
        ok(
            store.get_account_by_name(&t.name, &a.name).await,
            "get_account_by_name"
        ),
        None
    );
    assert_eq!(
        ok(
            store.list_accounts(&t.name, None, 10).await,
            "list_accounts"
        ),
        vec![b.clone()]
    );
    assert_eq!(
        ok(store.all_accounts().await, "all_accounts"),
        vec![b.clone()]
    );
    assert_eq!(
        ok(store.list_secrets(&a.id).await, "list_secrets(deleted)"),
        vec![]
    );
    assert_eq!(
        ok(store.list_secrets(&b.id).await, "list_secrets(other)"),
        vec![sb.clone()]
    );
    assert_eq!(ok(store.all_secrets().await, "all_secrets"), vec![sb]);
    err(
        store.delete_account(&t.name, &a.id, ms(T0, 2_000)).await,
        Want::NotFound,
        "a second delete_account",
    );
    err(
        store
            .delete_account(&t.name, &account_id_at(T0), ms(T0, 2_000))
            .await,
        Want::NotFound,
        "delete_account of an unknown id",
    );
    assert_eq!(
        ok(store.get_account(&t.name, &b.id).await, "get_account(b)"),
        Some(b)
    );
}

/// `all_accounts` is every live account of every live tenant.
pub async fn all_accounts_lists_live_accounts_of_live_tenants(store: &dyn Store) {
    let a = seed_tenant(store, "a").await;
    let b = seed_tenant(store, "b").await;
    let c = seed_tenant(store, "c").await;
    let a1 = seed_account(store, &a.name, "one").await;
    let a2 = seed_account(store, &a.name, "two").await;
    let a3 = seed_account(store, &a.name, "three").await;
    let b1 = seed_account(store, &b.name, "one").await;
    seed_account(store, &c.name, "one").await;
    ok(
        store.delete_account(&a.name, &a2.id, ms(T0, 1)).await,
        "delete_account",
    );
    ok(
        store.delete_tenant(&c.name, ms(T0, 2)).await,
        "delete_tenant",
    );
    assert_eq!(
        by_id(ok(store.all_accounts().await, "all_accounts")),
        by_id(vec![a1, a3, b1])
    );
}

// ---------------------------------------------------------------------------------------------
// secrets

/// Secrets read back exactly (hash bytes, key version, optional times), ordered by name, only
/// the account's own.
pub async fn secret_add_and_list_ordered_by_name(store: &dyn Store) {
    let t = seed_tenant(store, "acme").await;
    let a = seed_account(store, &t.name, "ci").await;
    let b = seed_account(store, &t.name, "cd").await;
    let next = SecretRecord {
        expires_at: Some(ms(T0, 30 * 86_400_000 + 7)),
        last_used_at: Some(ms(T0, 5)),
        key_version: u32::MAX,
        created_at: ms(T0, 3),
        ..secret_record(&a.id, "next")
    };
    let initial = SecretRecord {
        hash: [0u8; 32],
        ..secret_record(&a.id, "initial")
    };
    let b10 = SecretRecord {
        hash: [0xff; 32],
        key_version: 2,
        ..secret_record(&a.id, "b-10")
    };
    let b2 = SecretRecord {
        expires_at: Some(Timestamp::from_millis(1)),
        ..secret_record(&a.id, "b-2")
    };
    for s in [&next, &initial, &b10, &b2] {
        ok(
            store.add_secret(s).await,
            &format!("add_secret({})", s.name),
        );
    }
    let theirs = seed_secret(store, &b.id, "initial").await;
    // byte order: "b-10" < "b-2" < "initial" < "next"
    let mine = vec![b10, b2, initial, next];
    assert_eq!(ok(store.list_secrets(&a.id).await, "list_secrets"), mine);
    assert_eq!(
        ok(store.list_secrets(&b.id).await, "list_secrets(other)"),
        vec![theirs.clone()]
    );
    assert_eq!(
        ok(
            store.list_secrets(&account_id_at(T0)).await,
            "list_secrets(unknown)"
        ),
        vec![]
    );
    let mut all = mine;
    all.push(theirs);
    assert_eq!(
        by_account_and_name(ok(store.all_secrets().await, "all_secrets")),
        by_account_and_name(all)
    );
}

/// A live secret name is unique per account (`Conflict`), not across accounts.
pub async fn secret_duplicate_live_name_is_conflict(store: &dyn Store) {
    let t = seed_tenant(store, "acme").await;
    let a = seed_account(store, &t.name, "ci").await;
    let b = seed_account(store, &t.name, "cd").await;
    let s = seed_secret(store, &a.id, "initial").await;
    let dup = SecretRecord {
        hash: fake_hash("another"),
        key_version: 2,
        created_at: ms(T0, 1_000),
        ..secret_record(&a.id, "initial")
    };
    err(
        store.add_secret(&dup).await,
        Want::Conflict,
        "add_secret with a live name of the account",
    );
    assert_eq!(ok(store.list_secrets(&a.id).await, "list_secrets"), vec![s]);
    let elsewhere = seed_secret(store, &b.id, "initial").await;
    assert_eq!(
        ok(store.list_secrets(&b.id).await, "list_secrets(other)"),
        vec![elsewhere]
    );
}

/// A revoked secret is gone from every read; revoking it again, or an unknown one, is
/// `NotFound`; its name can be added again.
pub async fn secret_revoke_hides_it_and_frees_the_name(store: &dyn Store) {
    let t = seed_tenant(store, "acme").await;
    let a = seed_account(store, &t.name, "ci").await;
    let b = seed_account(store, &t.name, "cd").await;
    let initial = seed_secret(store, &a.id, "initial").await;
    let next = seed_secret(store, &a.id, "next").await;
    let sb = seed_secret(store, &b.id, "initial").await;
    ok(
        store
            .revoke_secret(&a.id, &initial.name, ms(T0, 1_000))
            .await,
        "revoke_secret",
    );
    assert_eq!(
        ok(store.list_secrets(&a.id).await, "list_secrets"),
        vec![next.clone()]
    );
    assert_eq!(
        ok(
            store.list_secrets(&b.id).await,
            "list_secrets(other account)"
        ),
        vec![sb.clone()],
        "the same name on another account is untouched"
    );
    assert_eq!(
        by_account_and_name(ok(store.all_secrets().await, "all_secrets")),
        by_account_and_name(vec![next.clone(), sb.clone()])
    );
    err(
        store
            .revoke_secret(&a.id, &initial.name, ms(T0, 2_000))
            .await,
        Want::NotFound,
        "a second revoke_secret",
    );
    err(
        store
            .revoke_secret(&a.id, &secret_name("ghost"), ms(T0, 2_000))
            .await,
        Want::NotFound,
        "revoke_secret of an unknown name",
    );
    err(
        store
            .revoke_secret(&account_id_at(T0), &next.name, ms(T0, 2_000))
            .await,
        Want::NotFound,
        "revoke_secret of an unknown account",
    );
    let again = SecretRecord {
        hash: fake_hash("again"),
        key_version: 3,
        created_at: ms(T0, 3_000),
        ..secret_record(&a.id, "initial")
    };
    ok(
        store.add_secret(&again).await,
        "add_secret with a revoked name",
    );
    assert_eq!(
        ok(store.list_secrets(&a.id).await, "list_secrets"),
        vec![again.clone(), next.clone()]
    );
    ok(
        store.revoke_secret(&a.id, &again.name, ms(T0, 4_000)).await,
        "revoke_secret of the re-added secret",
    );
    assert_eq!(
        ok(store.list_secrets(&a.id).await, "list_secrets"),
        vec![next]
    );
}

/// `all_secrets` is every live secret of every live account.
pub async fn all_secrets_lists_live_secrets_of_live_accounts(store: &dyn Store) {
    let t = seed_tenant(store, "acme").await;
    let u = seed_tenant(store, "umbrella").await;
    let a = seed_account(store, &t.name, "a").await;
    let b = seed_account(store, &t.name, "b").await;
    let c = seed_account(store, &u.name, "c").await;
    let a1 = seed_secret(store, &a.id, "one").await;
    let a2 = seed_secret(store, &a.id, "two").await;
    seed_secret(store, &b.id, "one").await;
    let c1 = seed_secret(store, &c.id, "one").await;
    ok(
        store.revoke_secret(&a.id, &a2.name, ms(T0, 1)).await,
        "revoke_secret",
    );
    ok(
        store.delete_account(&t.name, &b.id, ms(T0, 2)).await,
        "delete_account",
    );
    assert_eq!(
        by_account_and_name(ok(store.all_secrets().await, "all_secrets")),
        by_account_and_name(vec![a1, c1])
    );
}

/// `touch_secrets` sets `last_used_at` to the latest time seen and never moves it back; it
/// changes nothing else.
pub async fn touch_secrets_sets_last_used_and_never_moves_back(store: &dyn Store) {
    let t = seed_tenant(store, "acme").await;
    let a = seed_account(store, &t.name, "ci").await;
    let b = seed_account(store, &t.name, "cd").await;
    let s1 = seed_secret(store, &a.id, "one").await;
    let s2 = SecretRecord {
        last_used_at: Some(ms(T0, 10_000)),
        expires_at: Some(ms(T0, 86_400_000)),
        ..secret_record(&a.id, "two")
    };
    ok(store.add_secret(&s2).await, "add_secret(two)");
    let s3 = seed_secret(store, &a.id, "three").await;
    let sb = seed_secret(store, &b.id, "one").await;

    ok(store.touch_secrets(&[]).await, "touch_secrets(empty)");
    ok(
        store
            .touch_secrets(&[
                (a.id.clone(), s1.name.clone(), ms(T0, 5_001)),
                (a.id.clone(), s2.name.clone(), ms(T0, 3_000)),
            ])
            .await,
        "touch_secrets",
    );
    let s1_v1 = SecretRecord {
        last_used_at: Some(ms(T0, 5_001)),
        ..s1.clone()
    };
    assert_eq!(
        ok(store.list_secrets(&a.id).await, "list_secrets"),
        vec![s1_v1.clone(), s3.clone(), s2.clone()],
        "one is set; two keeps its later time; three is untouched"
    );
    assert_eq!(
        ok(
            store.list_secrets(&b.id).await,
            "list_secrets(other account)"
        ),
        vec![sb.clone()],
        "the same secret name on another account is untouched"
    );

    ok(
        store
            .touch_secrets(&[
                (a.id.clone(), s2.name.clone(), ms(T0, 20_005)),
                (a.id.clone(), s1.name.clone(), ms(T0, 1_000)),
            ])
            .await,
        "touch_secrets",
    );
    let s2_v1 = SecretRecord {
        last_used_at: Some(ms(T0, 20_005)),
        ..s2.clone()
    };
    assert_eq!(
        ok(store.list_secrets(&a.id).await, "list_secrets"),
        vec![s1_v1, s3.clone(), s2_v1.clone()],
        "two moves forward; one does not move back"
    );

    // Several uses of one secret in a batch: the latest wins, whatever the order.
    ok(
        store
            .touch_secrets(&[
                (a.id.clone(), s1.name.clone(), ms(T0, 100_000)),
                (a.id.clone(), s1.name.clone(), ms(T0, 90_000)),
                (b.id.clone(), sb.name.clone(), ms(T0, 7)),
            ])
            .await,
        "touch_secrets",
    );
    let s1_v2 = SecretRecord {
        last_used_at: Some(ms(T0, 100_000)),
        ..s1
    };
    assert_eq!(
        ok(store.list_secrets(&a.id).await, "list_secrets"),
        vec![s1_v2.clone(), s3.clone(), s2_v1.clone()]
    );
    let sb_v1 = SecretRecord {
        last_used_at: Some(ms(T0, 7)),
        ..sb
    };
    assert_eq!(
        by_account_and_name(ok(store.all_secrets().await, "all_secrets")),
        by_account_and_name(vec![s1_v2, s2_v1, s3, sb_v1])
    );
}

/// A batch may name secrets revoked (or accounts deleted) since their use, or never known: the
/// batch still succeeds, updates the live ones, and revoked ones stay revoked.
pub async fn touch_secrets_tolerates_revoked_and_unknown(store: &dyn Store) {
    let t = seed_tenant(store, "acme").await;
    let a = seed_account(store, &t.name, "ci").await;
    let gone = seed_account(store, &t.name, "gone").await;
    let old = seed_secret(store, &a.id, "initial").await;
    ok(
        store.revoke_secret(&a.id, &old.name, ms(T0, 1)).await,
        "revoke_secret",
    );
    let renewed = SecretRecord {
        hash: fake_hash("renewed"),
        ..secret_record(&a.id, "initial")
    };
    ok(store.add_secret(&renewed).await, "add_secret");
    let revoked = seed_secret(store, &a.id, "revoked").await;
    ok(
        store.revoke_secret(&a.id, &revoked.name, ms(T0, 2)).await,
        "revoke_secret",
    );
    let gs = seed_secret(store, &gone.id, "initial").await;
    ok(
        store.delete_account(&t.name, &gone.id, ms(T0, 3)).await,
        "delete_account",
    );
    ok(
        store
            .touch_secrets(&[
                (a.id.clone(), revoked.name.clone(), ms(T0, 10_000)),
                (gone.id.clone(), gs.name.clone(), ms(T0, 10_000)),
                (a.id.clone(), secret_name("ghost"), ms(T0, 10_000)),
                (account_id_at(T0), secret_name("initial"), ms(T0, 10_000)),
                (a.id.clone(), renewed.name.clone(), ms(T0, 10_000)),
            ])
            .await,
        "touch_secrets naming revoked and unknown secrets",
    );
    let renewed_v1 = SecretRecord {
        last_used_at: Some(ms(T0, 10_000)),
        ..renewed
    };
    assert_eq!(
        ok(store.list_secrets(&a.id).await, "list_secrets"),
        vec![renewed_v1.clone()]
    );
    assert_eq!(
        ok(
            store.list_secrets(&gone.id).await,
            "list_secrets(deleted account)"
        ),
        vec![]
    );
    assert_eq!(
        ok(store.all_secrets().await, "all_secrets"),
        vec![renewed_v1]
    );
}

// ---------------------------------------------------------------------------------------------
// signing keys

/// Every field of a key survives both read paths (algorithm, blob, all four times, and an HSM
/// key's module and label).
pub async fn signing_key_round_trips_every_field(store: &dyn Store) {
    let t = seed_tenant(store, "acme").await;
    // an HSM key: no wrapped bytes, the module and label instead
    let hsm = SigningKeyRecord {
        private_wrapped: Vec::new(),
        hsm_module: Some("main".into()),
        hsm_label: Some("warrant-acme-1764000000000".into()),
        ..signing_key_record(&t.name, "kid-hsm")
    };
    let full = SigningKeyRecord {
        alg: Algorithm::EdDsa,
        private_wrapped: vec![0x00, 0xff, 0x00, 0x7f, 0x80, 0x0a, 0x0d, 0x00],
        created_at: ms(T0, 1),
        activates_at: ms(T0, 2),
        retires_at: Some(ms(T0, 86_400_003)),
        removed_at: Some(ms(T0, 2 * 86_400_004)),
        ..signing_key_record(&t.name, "kid-Full_1.x")
    };
    let bare = SigningKeyRecord {
        activates_at: ms(T0, 3_600_005),
        ..signing_key_record(&t.name, "k2")
    };
    seed_key(store, full.clone()).await;
    seed_key(store, bare.clone()).await;
    seed_key(store, hsm.clone()).await;
    assert_eq!(
        ok(
            store.tenant_signing_keys(&t.name).await,
            "tenant_signing_keys"
        ),
        vec![bare.clone(), full.clone(), hsm.clone()]
    );
    assert_eq!(
        by_kid(ok(store.signing_keys(T0).await, "signing_keys")),
        by_kid(vec![full, bare, hsm])
    );
}

/// `signing_keys(now)` leaves out keys with `removed_at ≤ now` and keys of deleted tenants;
/// it keeps next, active and retired keys.
pub async fn signing_keys_exclude_removed_and_deleted_tenants(store: &dyn Store) {
    let now = ms(T0, 10_000_000);
    let acme = seed_tenant(store, "acme").await;
    let beta = seed_tenant(store, "beta").await;
    let gone = seed_tenant(store, "gone").await;
    let k =
        |t: &Tenant, kid: &str, act: i64, ret: Option<i64>, rem: Option<i64>| SigningKeyRecord {
            activates_at: ms(now, act),
            retires_at: ret.map(|d| ms(now, d)),
            removed_at: rem.map(|d| ms(now, d)),
            ..signing_key_record(&t.name, kid)
        };
    let removed_before = seed_key(
        store,
        k(&acme, "removed-before", -9_000, Some(-5_000), Some(-1)),
    )
    .await;
    let removed_now = seed_key(
        store,
        k(&acme, "removed-now", -8_000, Some(-4_000), Some(0)),
    )
    .await;
    let removed_soon = seed_key(
        store,
        k(&acme, "removed-soon", -7_000, Some(-3_000), Some(1)),
    )
    .await;
    let retired = seed_key(store, k(&acme, "retired", -6_000, Some(-2_000), None)).await;
    let active = seed_key(store, k(&acme, "active", -2_000, None, None)).await;
    let next = seed_key(store, k(&acme, "next", 5_000, None, None)).await;
    let beta_key = seed_key(store, k(&beta, "beta-active", -1, None, None)).await;
    let gone_key = seed_key(store, k(&gone, "gone-active", -1, None, None)).await;

    let acme_keys = by_kid(vec![
        removed_before.clone(),
        removed_now.clone(),
        removed_soon.clone(),
        retired.clone(),
        active.clone(),
        next.clone(),
    ]);
    let all_live = by_kid(vec![
        removed_before.clone(),
        removed_now.clone(),
        removed_soon.clone(),
        retired.clone(),
        active.clone(),
        next.clone(),
        beta_key.clone(),
        gone_key.clone(),
    ]);
    assert_eq!(
        by_kid(ok(
            store.signing_keys(ms(now, -20_000)).await,
            "signing_keys(long before)"
        )),
        all_live
    );
    ok(
        store.delete_tenant(&gone.name, ms(T0, 1)).await,
        "delete_tenant",
    );
    assert_eq!(
        by_kid(ok(store.signing_keys(now).await, "signing_keys(now)")),
        by_kid(vec![
            removed_soon.clone(),
            retired.clone(),
            active.clone(),
            next.clone(),
            beta_key.clone(),
        ])
    );
    assert_eq!(
        by_kid(ok(
            store.signing_keys(ms(now, 1)).await,
            "signing_keys(now + 1 ms)"
        )),
        by_kid(vec![retired, active, next, beta_key])
    );
    // tenant_signing_keys is not filtered by time
    assert_eq!(
        by_kid(ok(
            store.tenant_signing_keys(&acme.name).await,
            "tenant_signing_keys"
        )),
        acme_keys
    );
}

/// Within each tenant, `signing_keys` returns keys in order of activation.
pub async fn signing_keys_ordered_by_activation(store: &dyn Store) {
    let acme = seed_tenant(store, "acme").await;
    let beta = seed_tenant(store, "beta").await;
    let mut inserted = Vec::new();
    for (t, kid, act) in [
        (&beta, "b-2", 2_000),
        (&acme, "a-3", 3_000),
        (&acme, "a-1", 1_000),
        (&beta, "b-1", 500),
        (&acme, "a-2", 2_000),
        (&beta, "b-3", 9_000),
    ] {
        let key = SigningKeyRecord {
            activates_at: ms(T0, act),
            ..signing_key_record(&t.name, kid)
        };
        inserted.push(seed_key(store, key).await);
    }
    let got = ok(store.signing_keys(T0).await, "signing_keys");
    assert_eq!(by_kid(got.clone()), by_kid(inserted));
    for (t, want) in [
        (&acme, ["a-1", "a-2", "a-3"]),
        (&beta, ["b-1", "b-2", "b-3"]),
    ] {
        let order: Vec<&str> = got
            .iter()
            .filter(|k| k.tenant == t.name)
            .map(|k| k.kid.as_str())
            .collect();
        assert_eq!(order, want, "keys of {} in activation order", t.name);
    }
}

/// `tenant_signing_keys` is every key of the tenant, removed ones too, newest activation first.
pub async fn tenant_signing_keys_newest_first(store: &dyn Store) {
    let acme = seed_tenant(store, "acme").await;
    let beta = seed_tenant(store, "beta").await;
    let k = |t: &Tenant, kid: &str, act: i64, rem: Option<i64>| SigningKeyRecord {
        activates_at: ms(T0, act),
        retires_at: rem.map(|r| ms(T0, r - 1)),
        removed_at: rem.map(|r| ms(T0, r)),
        ..signing_key_record(&t.name, kid)
    };
    let k1 = seed_key(store, k(&acme, "k1", 0, Some(10))).await;
    let k3 = seed_key(store, k(&acme, "k3", 2_000, None)).await;
    let k2 = seed_key(store, k(&acme, "k2", 1_000, Some(1_500))).await;
    let k4 = seed_key(store, k(&acme, "k4", 86_400_000, None)).await;
    let b1 = seed_key(store, k(&beta, "b1", 1_500, None)).await;
    assert_eq!(
        ok(
            store.tenant_signing_keys(&acme.name).await,
            "tenant_signing_keys(acme)"
        ),
        vec![k4, k3, k2, k1]
    );
    assert_eq!(
        ok(
            store.tenant_signing_keys(&beta.name).await,
            "tenant_signing_keys(beta)"
        ),
        vec![b1]
    );
    assert_eq!(
        ok(
            store.tenant_signing_keys(&tenant_name("nope")).await,
            "tenant_signing_keys(unknown)"
        ),
        vec![]
    );
}

// ---------------------------------------------------------------------------------------------
// export and import

/// What [`seed_everything`] made that the checks look at again.
struct Seeded {
    acme: Tenant,
    gone: Tenant,
    gone_deleted_at: Timestamp,
    rich: ServiceAccount,
    plain: ServiceAccount,
    doomed: ServiceAccount,
    doomed_deleted_at: Timestamp,
    gone_account: ServiceAccount,
}

/// Fills a store with every kind of row, deleted and revoked ones included: live and deleted
/// tenants, live and deleted accounts (one deleted name reused by a live account), live and
/// revoked secrets (one name revoked twice with the same creation time, then live again), with
/// expiry and last use, keyring entries, and signing keys (one removed, one of the deleted
/// tenant). Inserted out of any natural order.
async fn seed_everything(store: &dyn Store) -> Seeded {
    let mut hk2 = keyring_entry(KeyPurpose::SecretHashing, 2);
    hk2.created_at = ms(T0, 86_400_002);
    hk2.wrapped = (0..=255u8).rev().collect();
    let mut hk1 = keyring_entry(KeyPurpose::SecretHashing, 1);
    hk1.created_at = ms(T0, 1);
    let au1 = keyring_entry(KeyPurpose::Audit, 1);
    for e in [&hk2, &au1, &hk1] {
        ok(store.insert_keyring_entry(e).await, "insert_keyring_entry");
    }

    let zeta = Tenant {
        signing_alg: Algorithm::EdDsa,
        key_rotation_period: Some(90 * 86_400),
        key_source: Default::default(),
        created_at: ms(T0, 7),
        updated_at: ms(T0, 60_007),
        revision: 3,
        ..tenant("zeta")
    };
    ok(store.create_tenant(&zeta).await, "create_tenant(zeta)");
    let gone = seed_tenant(store, "gone").await;
    let acme = seed_tenant(store, "acme").await;

    let rich = rich_account(&acme.name, "deploy");
    ok(store.create_account(&rich).await, "create_account(deploy)");
    let plain = seed_account(store, &acme.name, "ci").await;
    let plain_v2 = ServiceAccount {
        description: "updated".into(),
        grants: vec![grant("https://b.example", "b a")],
        updated_at: ms(T0, 50_000),
        revision: 2,
        ..plain.clone()
    };
    ok(
        store.update_account(&plain_v2, 1).await,
        "update_account(ci)",
    );
    let doomed = seed_account(store, &acme.name, "doomed").await;
    let zeta_account = seed_account(store, &zeta.name, "svc").await;
    let gone_account = seed_account(store, &gone.name, "old").await;

    let primary = SecretRecord {
        key_version: 2,
        expires_at: Some(ms(T0, 90 * 86_400_000)),
        last_used_at: Some(ms(T0, 5_000)),
        ..secret_record(&rich.id, "primary")
    };
    ok(store.add_secret(&primary).await, "add_secret(primary)");
    let old = seed_secret(store, &rich.id, "old").await;
    ok(
        store
            .revoke_secret(&rich.id, &old.name, ms(T0, 1_001))
            .await,
        "revoke_secret(old)",
    );
    // The same name, creation time and account three times: two revoked, one live.
    for (seed, revoked) in [
        ("first", Some(2_002)),
        ("second", Some(2_001)),
        ("live", None),
    ] {
        let s = SecretRecord {
            hash: fake_hash(seed),
            ..secret_record(&plain.id, "rotating")
        };
        ok(store.add_secret(&s).await, "add_secret(rotating)");
        if let Some(at) = revoked {
            ok(
                store.revoke_secret(&plain.id, &s.name, ms(T0, at)).await,
                "revoke_secret(rotating)",
            );
        }
    }
    seed_secret(store, &doomed.id, "initial").await;
    seed_secret(store, &zeta_account.id, "initial").await;
    seed_secret(store, &gone_account.id, "initial").await;
    ok(
        store
            .touch_secrets(&[(rich.id.clone(), primary.name.clone(), ms(T0, 7_007))])
            .await,
        "touch_secrets",
    );

    let keys = [
        SigningKeyRecord {
            activates_at: ms(T0, 86_400_000),
            ..signing_key_record(&acme.name, "acme-next")
        },
        SigningKeyRecord {
            activates_at: ms(T0, -86_400_000),
            retires_at: Some(ms(T0, -3_600_000)),
            removed_at: Some(ms(T0, -1)),
            ..signing_key_record(&acme.name, "acme-removed")
        },
        signing_key_record(&acme.name, "acme-current"),
        SigningKeyRecord {
            alg: Algorithm::EdDsa,
            ..signing_key_record(&zeta.name, "zeta-1")
        },
        signing_key_record(&gone.name, "gone-1"),
    ];
    for k in keys {
        seed_key(store, k).await;
    }

    let doomed_deleted_at = ms(T0, 3_003);
    ok(
        store
            .delete_account(&acme.name, &doomed.id, doomed_deleted_at)
            .await,
        "delete_account(doomed)",
    );
    // A live account takes the deleted one's name.
    seed_account(store, &acme.name, "doomed").await;
    let gone_deleted_at = ms(T0, 4_004);
    ok(
        store.delete_tenant(&gone.name, gone_deleted_at).await,
        "delete_tenant(gone)",
    );
    let rich = ok(store.get_account(&acme.name, &rich.id).await, "get_account")
        .expect("the rich account is live");
    let plain = ok(
        store.get_account(&acme.name, &plain.id).await,
        "get_account",
    )
    .expect("the plain account is live");
    Seeded {
        acme,
        gone,
        gone_deleted_at,
        rich,
        plain,
        doomed,
        doomed_deleted_at,
        gone_account,
    }
}

/// Every live read of `a` and `b` agrees.
async fn assert_same_live_view(a: &dyn Store, b: &dyn Store) {
    assert_eq!(
        keyring_view(&ok(b.keyring().await, "keyring")),
        keyring_view(&ok(a.keyring().await, "keyring")),
        "keyring"
    );
    let tenants = ok(a.list_tenants(None, 1_000).await, "list_tenants");
    assert_eq!(
        ok(b.list_tenants(None, 1_000).await, "list_tenants"),
        tenants
    );
    assert_eq!(
        by_id(ok(b.all_accounts().await, "all_accounts")),
        by_id(ok(a.all_accounts().await, "all_accounts"))
    );
    assert_eq!(
        by_account_and_name(ok(b.all_secrets().await, "all_secrets")),
        by_account_and_name(ok(a.all_secrets().await, "all_secrets"))
    );
    for now in [ms(T0, -86_400_000), T0, ms(T0, 2 * 86_400_000)] {
        assert_eq!(
            by_kid(ok(b.signing_keys(now).await, "signing_keys")),
            by_kid(ok(a.signing_keys(now).await, "signing_keys")),
        );
    }
    for t in &tenants {
        let accounts = ok(a.list_accounts(&t.name, None, 1_000).await, "list_accounts");
        assert_eq!(
            ok(b.list_accounts(&t.name, None, 1_000).await, "list_accounts"),
            accounts,
            "accounts of {}",
            t.name
        );
        for acc in &accounts {
            assert_eq!(
                ok(b.list_secrets(&acc.id).await, "list_secrets"),
                ok(a.list_secrets(&acc.id).await, "list_secrets"),
                "secrets of {}/{}",
                t.name,
                acc.name
            );
        }
        assert_eq!(
            ok(b.tenant_signing_keys(&t.name).await, "tenant_signing_keys"),
            ok(a.tenant_signing_keys(&t.name).await, "tenant_signing_keys"),
            "keys of {}",
            t.name
        );
    }
}

/// `export` returns every row, deleted and revoked ones included, and the revocation and audit
/// logs; `import` into a fresh store (all or nothing) makes a store whose `export` is equal and
/// which behaves the same: deleted names and ids stay taken, deleted rows stay invisible, live
/// reads agree, revocation cursors and audit ids continue above the imported ones.
pub async fn export_import_round_trip(store: &dyn Store, other: &dyn Store) {
    let seeded = seed_everything(store).await;
    let seeded_log = crate::contract_log::seed_log(store).await;
    let snapshot = ok(store.export().await, "export");

    // The snapshot holds every row, with the deletion and revocation times.
    assert_eq!(snapshot.keyring.len(), 3, "keyring: {:?}", snapshot.keyring);
    assert_eq!(snapshot.tenants.len(), 3, "tenants: {:?}", snapshot.tenants);
    assert!(
        snapshot.tenants.contains(&(seeded.acme.clone(), None)),
        "the live tenant acme: {:?}",
        snapshot.tenants
    );
    let deleted: Vec<_> = snapshot
        .tenants
        .iter()
        .filter(|(t, _)| t.name == seeded.gone.name)
        .map(|(_, at)| *at)
        .collect();
    assert_eq!(deleted, vec![Some(seeded.gone_deleted_at)], "tenant gone");
    assert_eq!(
        snapshot.accounts.len(),
        6,
        "accounts: {:?}",
        snapshot.accounts
    );
    for live in [&seeded.rich, &seeded.plain] {
        assert!(
            snapshot.accounts.contains(&(live.clone(), None)),
            "the live account {}: {:?}",
            live.name,
            snapshot.accounts
        );
    }
    for (acc, at) in [
        (&seeded.doomed, seeded.doomed_deleted_at),
        (&seeded.gone_account, seeded.gone_deleted_at),
    ] {
        let found: Vec<_> = snapshot
            .accounts
            .iter()
            .filter(|(a, _)| a.id == acc.id)
            .map(|(_, deleted)| *deleted)
            .collect();
        assert_eq!(found, vec![Some(at)], "the deleted account {}", acc.name);
    }
    assert_eq!(snapshot.secrets.len(), 8, "secrets: {:?}", snapshot.secrets);
    let revoked = snapshot
        .secrets
        .iter()
        .filter(|(_, at)| at.is_some())
        .count();
    assert_eq!(revoked, 5, "revoked secrets: {:?}", snapshot.secrets);
    assert!(
        snapshot
            .secrets
            .iter()
            .any(|(s, at)| s.last_used_at == Some(ms(T0, 7_007)) && at.is_none()),
        "the touched secret: {:?}",
        snapshot.secrets
    );
    assert_eq!(
        snapshot.signing_keys.len(),
        5,
        "signing keys: {:?}",
        snapshot.signing_keys
    );
    assert_eq!(
        ok(store.export().await, "a second export"),
        snapshot,
        "two exports of an unchanged store differ"
    );

    // An empty snapshot loads nothing and leaves the store importable.
    ok(other.import(&Snapshot::default()).await, "import(empty)");
    assert!(ok(other.export().await, "export").is_empty());
    // A snapshot that fails on its last row (a store imports checkpoints last) loads nothing.
    let mut broken = snapshot.clone();
    broken
        .audit_checkpoints
        .push(snapshot.audit_checkpoints[0].clone());
    let failed = other.import(&broken).await;
    assert!(
        failed.is_err(),
        "import of a snapshot with a duplicate checkpoint: {failed:?}"
    );
    let after_failure = ok(other.export().await, "export after a failed import");
    assert!(
        after_failure.is_empty(),
        "a failed import left rows behind: {after_failure:?}"
    );

    ok(other.import(&snapshot).await, "import");
    assert_eq!(
        ok(other.export().await, "export of the imported store"),
        snapshot
    );
    assert_same_live_view(store, other).await;
    crate::contract_log::check_log_round_trip(store, other, &snapshot, &seeded_log).await;

    // Behaviour survives the move.
    err(
        other.create_tenant(&tenant("gone")).await,
        Want::Conflict,
        "create_tenant with a deleted tenant's name in the imported store",
    );
    assert_eq!(
        ok(
            other.get_tenant(&seeded.gone.name).await,
            "get_tenant(gone)"
        ),
        None
    );
    for (t, acc) in [
        (&seeded.acme.name, &seeded.doomed),
        (&seeded.gone.name, &seeded.gone_account),
    ] {
        assert_eq!(
            ok(other.get_account(t, &acc.id).await, "get_account"),
            None,
            "the deleted account {t}/{}",
            acc.name
        );
    }
    let reuse_id = ServiceAccount {
        name: account_name("fresh-name"),
        id: seeded.doomed.id.clone(),
        ..seeded.plain.clone()
    };
    err(
        other.create_account(&reuse_id).await,
        Want::Conflict,
        "create_account with a deleted account's id in the imported store",
    );
    assert_eq!(
        ok(
            other.get_account(&seeded.acme.name, &seeded.rich.id).await,
            "get_account(rich)"
        ),
        Some(seeded.rich.clone())
    );
    err(
        other
            .add_secret(&SecretRecord {
                hash: fake_hash("clash"),
                ..secret_record(&seeded.plain.id, "rotating")
            })
            .await,
        Want::Conflict,
        "add_secret with a live secret's name in the imported store",
    );
    // The imported store takes new writes like any other.
    ok(
        other
            .update_account(
                &ServiceAccount {
                    revision: seeded.plain.revision + 1,
                    ..seeded.plain.clone()
                },
                seeded.plain.revision,
            )
            .await,
        "update_account in the imported store",
    );
}

/// `import` into a store holding any row (only a keyring entry; deleted and revoked rows) is
/// `Conflict`, even if no row of the snapshot collides, and changes nothing.
pub async fn import_refuses_a_non_empty_store(store: &dyn Store) {
    let t = tenant("incoming");
    let a = account(&t.name, "svc");
    let incoming = Snapshot {
        keyring: vec![keyring_entry(KeyPurpose::Audit, 9)],
        tenants: vec![(t.clone(), None)],
        accounts: vec![(a.clone(), None)],
        secrets: vec![(secret_record(&a.id, "initial"), None)],
        signing_keys: vec![signing_key_record(&t.name, "incoming-1")],
        ..Default::default()
    };

    ok(
        store
            .insert_keyring_entry(&keyring_entry(KeyPurpose::SecretHashing, 1))
            .await,
        "insert_keyring_entry",
    );
    let before = ok(store.export().await, "export");
    err(
        store.import(&incoming).await,
        Want::Conflict,
        "import into a store holding only a keyring entry",
    );
    err(
        store.import(&Snapshot::default()).await,
        Want::Conflict,
        "import of an empty snapshot into a non-empty store",
    );
    assert_eq!(
        ok(store.export().await, "export"),
        before,
        "import changed the store"
    );

    let old = seed_tenant(store, "old").await;
    let acc = seed_account(store, &old.name, "ci").await;
    seed_secret(store, &acc.id, "initial").await;
    seed_key(store, signing_key_record(&old.name, "old-1")).await;
    ok(
        store.delete_tenant(&old.name, ms(T0, 1_000)).await,
        "delete_tenant",
    );
    let before = ok(store.export().await, "export");
    err(
        store.import(&incoming).await,
        Want::Conflict,
        "import into a store holding only deleted and revoked rows and a keyring",
    );
    err(
        store.import(&before).await,
        Want::Conflict,
        "import of a store's own export",
    );
    assert_eq!(
        ok(store.export().await, "export"),
        before,
        "import changed the store"
    );
    assert_eq!(
        ok(store.get_tenant(&t.name).await, "get_tenant(incoming)"),
        None
    );
}

/// Before the first `migrate` (no `schema_migrations` table yet) every migration the store's
/// crate knows (`known`: its `MIGRATIONS`) is pending; afterwards every one is applied. Takes a
/// store that has *not* been migrated, so it is not part of the macro's list.
pub async fn migrations_pending_before_first_migrate(
    store: &dyn Store,
    known: &[(i64, &str, &str)],
) {
    let pending = store
        .migrations()
        .await
        .expect("migrations of an empty database");
    let want: Vec<warrant_core::MigrationState> = known
        .iter()
        .map(|(version, name, _)| warrant_core::MigrationState {
            version: *version,
            name: (*name).to_owned(),
            applied_at: None,
        })
        .collect();
    assert_eq!(pending, want);
    store.migrate().await.expect("migrate");
    let applied = store.migrations().await.expect("migrations after migrate");
    assert_eq!(
        applied.iter().map(|m| m.version).collect::<Vec<_>>(),
        want.iter().map(|m| m.version).collect::<Vec<_>>()
    );
    assert!(
        applied.iter().all(|m| m.applied_at.is_some()),
        "pending after migrate: {applied:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// master-key rotation

/// Keyring entries (as [`keyring_view`]) and signing keys' (kid, wrapped bytes) by kid.
type WrappedView = (
    Vec<(&'static str, u32, Vec<u8>, Timestamp)>,
    Vec<(String, Vec<u8>)>,
);

/// Every wrapped key of the store (keyring entries, then signing keys by kid), removed keys and
/// deleted tenants' keys included.
async fn wrapped_view(store: &dyn Store) -> WrappedView {
    let snapshot = ok(store.export().await, "export");
    let mut keys: Vec<_> = snapshot
        .signing_keys
        .iter()
        .map(|k| (k.kid.clone(), k.private_wrapped.clone()))
        .collect();
    keys.sort();
    (keyring_view(&snapshot.keyring), keys)
}

/// `rewrap` replaces the wrapped bytes of every keyring entry (by purpose and version) and
/// signing key (by tenant and kid) — a deleted tenant's and a removed key too — and inserts the
/// added entries, in one transaction: a missing entry or kid (`NotFound`), an entry or key it
/// does not name (`RevisionMismatch`) or an added entry that exists (`Conflict`) leaves
/// everything as it was.
pub async fn rewrap_replaces_every_wrapped_key_atomically(store: &dyn Store) {
    use warrant_core::keyring::Rewrap;

    let alpha = seed_tenant(store, "alpha").await;
    let gone = seed_tenant(store, "gone").await;
    let hashing = keyring_entry(KeyPurpose::SecretHashing, 1);
    let audit = keyring_entry(KeyPurpose::Audit, 1);
    for e in [&hashing, &audit] {
        ok(store.insert_keyring_entry(e).await, "insert_keyring_entry");
    }
    let live = seed_key(store, signing_key_record(&alpha.name, "kid-live")).await;
    let mut removed = signing_key_record(&alpha.name, "kid-removed");
    removed.retires_at = Some(ms(T0, 1_000));
    removed.removed_at = Some(ms(T0, 2_000));
    let removed = seed_key(store, removed).await;
    let orphan = seed_key(store, signing_key_record(&gone.name, "kid-gone")).await;
    ok(
        store.delete_tenant(&gone.name, ms(T0, 3_000)).await,
        "delete_tenant(gone)",
    );
    let before = wrapped_view(store).await;

    let rewrapped = |e: &KeyringEntry| KeyringEntry {
        wrapped: [b"new:".as_slice(), &e.wrapped].concat(),
        ..e.clone()
    };
    let key = |k: &SigningKeyRecord| {
        (
            k.tenant.clone(),
            k.kid.clone(),
            [b"new:".as_slice(), &k.private_wrapped].concat(),
        )
    };
    let full = Rewrap {
        keyring: vec![rewrapped(&hashing), rewrapped(&audit)],
        signing_keys: vec![key(&live), key(&removed), key(&orphan)],
        added: vec![
            keyring_entry(KeyPurpose::SecretHashing, 2),
            keyring_entry(KeyPurpose::Audit, 2),
        ],
    };

    // A kid that does not exist: nothing changes.
    let mut missing_kid = full.clone();
    missing_kid
        .signing_keys
        .push((alpha.name.clone(), "kid-nope".into(), vec![1, 2, 3]));
    err(
        store.rewrap(&missing_kid).await,
        Want::NotFound,
        "rewrap(unknown kid)",
    );
    assert_eq!(wrapped_view(store).await, before, "a failed rewrap wrote");
    // A kid under the wrong tenant is missing too.
    let mut wrong_tenant = full.clone();
    wrong_tenant.signing_keys[0].0 = tenant_name("gone");
    err(
        store.rewrap(&wrong_tenant).await,
        Want::NotFound,
        "rewrap(kid under another tenant)",
    );
    assert_eq!(wrapped_view(store).await, before, "a failed rewrap wrote");
    // A keyring version that does not exist.
    let mut missing_entry = full.clone();
    missing_entry
        .keyring
        .push(keyring_entry(KeyPurpose::Audit, 7));
    err(
        store.rewrap(&missing_entry).await,
        Want::NotFound,
        "rewrap(unknown keyring version)",
    );
    assert_eq!(wrapped_view(store).await, before, "a failed rewrap wrote");
    // Leaving a key out would leave it wrapped under the old master key.
    let mut partial = full.clone();
    partial.signing_keys.pop();
    err(
        store.rewrap(&partial).await,
        Want::RevisionMismatch,
        "rewrap(a signing key left out)",
    );
    assert_eq!(wrapped_view(store).await, before, "a failed rewrap wrote");
    let mut partial = full.clone();
    partial.keyring.pop();
    err(
        store.rewrap(&partial).await,
        Want::RevisionMismatch,
        "rewrap(a keyring entry left out)",
    );
    assert_eq!(wrapped_view(store).await, before, "a failed rewrap wrote");
    // An added version that exists.
    let mut taken = full.clone();
    taken.added.push(keyring_entry(KeyPurpose::Audit, 1));
    err(
        store.rewrap(&taken).await,
        Want::Conflict,
        "rewrap(an added version that exists)",
    );
    assert_eq!(wrapped_view(store).await, before, "a failed rewrap wrote");

    ok(store.rewrap(&full).await, "rewrap");
    let (keyring, keys) = wrapped_view(store).await;
    let mut want_keyring = full.keyring.clone();
    want_keyring.extend(full.added.iter().cloned());
    assert_eq!(keyring, keyring_view(&want_keyring));
    let mut want_keys: Vec<_> = full
        .signing_keys
        .iter()
        .map(|(_, kid, w)| (kid.clone(), w.clone()))
        .collect();
    want_keys.sort();
    assert_eq!(keys, want_keys);
    // Only the wrapped bytes changed: every other field of a key is as it was.
    let mut got = by_kid(ok(store.tenant_signing_keys(&alpha.name).await, "keys"));
    for k in &mut got {
        k.private_wrapped = k.private_wrapped.split_off(4);
    }
    assert_eq!(got, by_kid(vec![live, removed]));
}

/// `rotate_master_key` re-wraps every key under the new master key (same key bytes: old hashes
/// and MACs still verify), adds a new secret-hashing and audit version wrapped by the new key
/// only, and with a wrong old key (or the same key twice) fails and changes nothing.
pub async fn master_key_rotation_rewraps_and_adds_versions(store: &dyn Store) {
    use warrant_core::keyring::{MasterKey, VersionedKeys};
    use warrant_core::master_rotation::rotate_master_key;

    let (old, _) = MasterKey::generate().unwrap();
    let (new, _) = MasterKey::generate().unwrap();
    let (stranger, _) = MasterKey::generate().unwrap();
    let alpha = seed_tenant(store, "alpha").await;
    for purpose in [KeyPurpose::SecretHashing, KeyPurpose::Audit] {
        for version in [1, 2] {
            let e = KeyringEntry::generate(&old, purpose, version, T0).unwrap();
            ok(store.insert_keyring_entry(&e).await, "insert_keyring_entry");
        }
    }
    let mut retired = signing_key_record(&alpha.name, "kid-old");
    retired.removed_at = Some(ms(T0, 5));
    retired.private_wrapped = old
        .wrap(
            b"retired der",
            &SigningKeyRecord::wrap_aad(&alpha.name, "kid-old"),
        )
        .unwrap();
    seed_key(store, retired).await;
    let mut live = signing_key_record(&alpha.name, "kid-new");
    live.private_wrapped = old
        .wrap(
            b"live der",
            &SigningKeyRecord::wrap_aad(&alpha.name, "kid-new"),
        )
        .unwrap();
    seed_key(store, live).await;
    let before = wrapped_view(store).await;
    let raw = |master: &MasterKey, view: &WrappedView| {
        let mut out = Vec::new();
        for (purpose, version, wrapped, _) in &view.0 {
            let p = KeyPurpose::parse(purpose).unwrap();
            out.push(
                master
                    .unwrap(wrapped, &KeyringEntry::aad(p, *version))
                    .map(|r| r.to_vec()),
            );
        }
        for (kid, wrapped) in &view.1 {
            out.push(
                master
                    .unwrap(wrapped, &SigningKeyRecord::wrap_aad(&alpha.name, kid))
                    .map(|r| r.to_vec()),
            );
        }
        out.into_iter().collect::<Result<Vec<_>, _>>()
    };
    let plain = raw(&old, &before).expect("the old key opens the seeded keys");

    assert!(
        rotate_master_key(store, &stranger, &new, ms(T0, 10), true)
            .await
            .is_err(),
        "rotation with a wrong old key succeeded"
    );
    assert_eq!(wrapped_view(store).await, before, "a failed rotation wrote");
    assert!(
        rotate_master_key(store, &old, &old, ms(T0, 10), true)
            .await
            .is_err(),
        "rotation to the same key succeeded"
    );
    assert_eq!(wrapped_view(store).await, before, "a failed rotation wrote");

    let report = rotate_master_key(store, &old, &new, ms(T0, 10), true)
        .await
        .unwrap();
    assert_eq!(report.keyring_entries, 4);
    assert_eq!(report.signing_keys, 2);
    assert_eq!(
        report.added,
        vec![(KeyPurpose::SecretHashing, 3), (KeyPurpose::Audit, 3)]
    );
    let after = wrapped_view(store).await;
    assert_eq!(after.0.len(), 6, "two versions added: {:?}", after.0);
    let added: Vec<_> = after.0.iter().filter(|e| e.1 == 3).cloned().collect();
    let kept = (
        after
            .0
            .iter()
            .filter(|e| e.1 != 3)
            .cloned()
            .collect::<Vec<_>>(),
        after.1.clone(),
    );
    assert_eq!(
        raw(&new, &kept).expect("the new key opens every key"),
        plain
    );
    assert!(raw(&old, &kept).is_err(), "the old key still opens a key");
    assert!(
        raw(&old, &(added.clone(), Vec::new())).is_err(),
        "the old key opens an added version"
    );
    let entries = ok(store.keyring().await, "keyring");
    for purpose in [KeyPurpose::SecretHashing, KeyPurpose::Audit] {
        let keys = VersionedKeys::load_purpose(&new, &entries, purpose).unwrap();
        assert_eq!(keys.current(), 3, "the added version is current");
        assert!(keys.get(1).is_some() && keys.get(2).is_some());
    }
    assert!(VersionedKeys::load(&old, &entries).is_err());
}
