//! Builders of valid domain records with plain defaults; tests change the fields they care
//! about with struct update syntax or by assignment.

use serde_json::Map;
use warrant_core::keyring::{KeyPurpose, KeyringEntry};
use warrant_core::model::{
    Api, AuthMethod, Grant, SecretRecord, ServiceAccount, SigningKeyRecord, Tenant,
};
use warrant_core::{
    AccountId, AccountName, ApiId, ApiName, Audience, ScopeSet, SecretName, TenantName, Timestamp,
};
use warrant_jose::Algorithm;

/// The builders' time: 2025-11-26T03:24:19.123Z. Not a whole second, so that a store that
/// drops milliseconds is caught.
pub const T0: Timestamp = Timestamp::from_millis(1_764_127_459_123);

/// The audience of the default grant.
pub const API_AUDIENCE: &str = "https://api.example";

pub fn tenant_name(s: &str) -> TenantName {
    TenantName::parse(s).unwrap_or_else(|e| panic!("test tenant name {s:?}: {e}"))
}

pub fn account_name(s: &str) -> AccountName {
    AccountName::parse(s).unwrap_or_else(|e| panic!("test account name {s:?}: {e}"))
}

pub fn secret_name(s: &str) -> SecretName {
    SecretName::parse(s).unwrap_or_else(|e| panic!("test secret name {s:?}: {e}"))
}

pub fn audience(s: &str) -> Audience {
    Audience::parse(s).unwrap_or_else(|| panic!("test audience {s:?} is invalid"))
}

/// A space-delimited scope list.
pub fn scopes(s: &str) -> ScopeSet {
    ScopeSet::parse_delimited(s).unwrap_or_else(|| panic!("test scopes {s:?} are invalid"))
}

pub fn grant(aud: &str, scope_list: &str) -> Grant {
    Grant {
        audience: audience(aud),
        scopes: scopes(scope_list),
    }
}

/// A fresh random account id whose time part is `at` (ids made at later times sort later).
pub fn account_id_at(at: Timestamp) -> AccountId {
    AccountId::generate(at).expect("the system random generator failed")
}

/// A live ES256 tenant created at [`T0`], revision 1.
pub fn tenant(name: &str) -> Tenant {
    Tenant {
        name: tenant_name(name),
        signing_alg: Algorithm::Es256,
        key_rotation_period: None,
        key_source: Default::default(),
        token_endpoint_audience: false,
        created_at: T0,
        updated_at: T0,
        revision: 1,
    }
}

/// A valid, enabled account with a fresh id: one grant (`https://api.example`, `read write`),
/// no default audience, lifetimes 600/3600 s, the secret auth methods, created at [`T0`],
/// revision 1.
pub fn account(tenant: &TenantName, name: &str) -> ServiceAccount {
    ServiceAccount {
        id: account_id_at(T0),
        tenant: tenant.clone(),
        name: account_name(name),
        description: String::new(),
        enabled: true,
        default_audience: None,
        grants: vec![grant(API_AUDIENCE, "read write")],
        default_lifetime: 600,
        max_lifetime: 3600,
        claims: Map::new(),
        auth_methods: AuthMethod::SECRET_METHODS.to_vec(),
        credentials: Default::default(),
        created_at: T0,
        updated_at: T0,
        revision: 1,
    }
}

/// A fake 32-byte HMAC derived from `seed` (distinct seeds give distinct hashes); it holds a
/// zero byte and a 0xff byte so that a store mangling binary data is caught.
pub fn fake_hash(seed: &str) -> [u8; 32] {
    let mut h = [0u8; 32];
    let mut acc: u32 = 2_166_136_261;
    for b in seed.bytes() {
        acc = (acc ^ u32::from(b)).wrapping_mul(16_777_619);
    }
    for (i, byte) in h.iter_mut().enumerate() {
        acc = (acc ^ i as u32).wrapping_mul(16_777_619);
        *byte = (acc >> 24) as u8;
    }
    h[0] = 0x00;
    h[31] = 0xff;
    h
}

/// A live secret of `account_id` made with hashing-key version 1 at [`T0`], no expiry, never
/// used.
pub fn secret_record(account_id: &AccountId, name: &str) -> SecretRecord {
    SecretRecord {
        account_id: account_id.clone(),
        name: secret_name(name),
        hash: fake_hash(&format!("{account_id}/{name}")),
        key_version: 1,
        created_at: T0,
        expires_at: None,
        last_used_at: None,
    }
}

/// A keyring entry with fake wrapped bytes (not decryptable: for store tests only; use
/// [`KeyringEntry::generate`] for a real one).
pub fn keyring_entry(purpose: KeyPurpose, version: u32) -> KeyringEntry {
    let mut wrapped = vec![0x00, 0xff, 0x80];
    wrapped.extend_from_slice(KeyringEntry::aad(purpose, version).as_bytes());
    KeyringEntry {
        purpose,
        version,
        wrapped,
        created_at: T0,
    }
}

/// An ES256 signing key of `tenant`, created and active from [`T0`], with fake wrapped bytes
/// (not a usable key: for store tests only).
pub fn signing_key_record(tenant: &TenantName, kid: &str) -> SigningKeyRecord {
    let mut private_wrapped: Vec<u8> = (0..=255u8).collect();
    private_wrapped.extend_from_slice(SigningKeyRecord::wrap_aad(tenant, kid).as_bytes());
    SigningKeyRecord {
        kid: kid.to_owned(),
        tenant: tenant.clone(),
        alg: Algorithm::Es256,
        private_wrapped,
        hsm_module: None,
        hsm_label: None,
        created_at: T0,
        activates_at: T0,
        retires_at: None,
        removed_at: None,
    }
}

/// A live API of `owner`'s tenant, named `name`, for `aud` with the scopes `scope_list`,
/// created at [`T0`], revision 1, with a fresh id.
pub fn api(owner: &ServiceAccount, name: &str, aud: &str, scope_list: &str) -> Api {
    Api {
        id: ApiId::generate(T0).expect("the system random generator failed"),
        tenant: owner.tenant.clone(),
        name: ApiName::parse(name).unwrap_or_else(|e| panic!("test API name {name:?}: {e}")),
        audience: audience(aud),
        scopes: scopes(scope_list),
        owner: owner.id.clone(),
        description: None,
        created_at: T0,
        updated_at: T0,
        revision: 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builders_are_valid() {
        let t = tenant("acme");
        let a = account(&t.name, "ci");
        assert!(a.default_lifetime <= a.max_lifetime);
        assert_eq!(a.grants.len(), 1);
        assert_eq!(a.grants[0].scopes.to_delimited(), "read write");
        assert_ne!(account(&t.name, "ci").id, a.id);
        assert_ne!(fake_hash("a"), fake_hash("b"));
        let s = secret_record(&a.id, "initial");
        assert_eq!(s.account_id, a.id);
        let k = signing_key_record(&t.name, "k1");
        assert_eq!(k.state_at(T0), warrant_core::model::KeyState::Active);
        assert!(account_id_at(T0) < account_id_at(T0.plus_secs(1)));
    }
}
