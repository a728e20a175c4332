//! Master-key rotation: re-wraps everything the master key protects under a new one.
//!
//! The master key wraps keys, never data: the keyring (secret-hashing and audit keys, by
//! version) and every signing key. Rotation unwraps each of them with the old master key and
//! wraps the same bytes under the new one, so nothing already stored changes meaning: a secret
//! hash names its hashing-key version, an audit record and a segment head name their audit-key
//! version, a checkpoint was signed by a signing key that keeps its kid and its key pair.
//!
//! With `add_versions`, rotation also adds a new secret-hashing and a new audit key version,
//! generated now and only ever wrapped by the new master key. The highest version is current
//! ([`VersionedKeys`](crate::keyring::VersionedKeys)), so secrets created and audit records
//! written after the rotation use keys the old master key never protected: someone holding the
//! old master key and an old copy of the database learns nothing about them.
//!
//! Everything is written by one [`Store::rewrap`] transaction: it all changes or nothing does.
//! The store refuses it if a key was added since it was read (a replica left running), rather
//! than leave that key wrapped under the old master key.

use crate::keyring::{KeyPurpose, KeyringEntry, MasterKey, Rewrap};
use crate::model::SigningKeyRecord;
use crate::store::Store;
use crate::{CoreError, StoreError, Timestamp};

/// What a rotation re-wrapped and added.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RotationReport {
    /// Keyring entries re-wrapped (every purpose and version).
    pub keyring_entries: usize,
    /// Signing keys re-wrapped (every tenant's, retired, removed and deleted tenants' too).
    pub signing_keys: usize,
    /// New key versions, wrapped under the new master key only.
    pub added: Vec<(KeyPurpose, u32)>,
}

/// Re-wraps every key in `store` from `old` to `new` in one transaction and, with
/// `add_versions`, adds a new secret-hashing and a new audit key version.
///
/// Fails, changing nothing, if `old` does not open every key, if `new` is the same key as
/// `old`, or if the store changed meanwhile (`StoreError::RevisionMismatch`).
pub async fn rotate_master_key(
    store: &dyn Store,
    old: &MasterKey,
    new: &MasterKey,
    now: Timestamp,
    add_versions: bool,
) -> Result<RotationReport, CoreError> {
    // `export` is the one read that includes removed keys and deleted tenants' keys.
    let snapshot = store.export().await?;
    let Some(first) = snapshot.keyring.first() else {
        return Err(CoreError::Config(
            "the keyring is empty: there is nothing to rotate (has `warrant serve` run?)".into(),
        ));
    };
    if new
        .unwrap(
            &first.wrapped,
            &KeyringEntry::aad(first.purpose, first.version),
        )
        .is_ok()
    {
        return Err(CoreError::Config(
            "the new master key is the one already in use".into(),
        ));
    }
    let wrong_old = || {
        CoreError::Config(
            "the current master key does not open this database's keys; nothing was changed".into(),
        )
    };

    let mut rewrap = Rewrap::default();
    for e in &snapshot.keyring {
        let aad = KeyringEntry::aad(e.purpose, e.version);
        let raw = old.unwrap(&e.wrapped, &aad).map_err(|_| wrong_old())?;
        rewrap.keyring.push(KeyringEntry {
            wrapped: new.wrap(&raw, &aad)?,
            ..e.clone()
        });
    }
    for k in &snapshot.signing_keys {
        if k.hsm_module.is_some() {
            continue; // held in an HSM: nothing wrapped under the master key
        }
        let aad = SigningKeyRecord::wrap_aad(&k.tenant, &k.kid);
        let der = old
            .unwrap(&k.private_wrapped, &aad)
            .map_err(|_| wrong_old())?;
        rewrap
            .signing_keys
            .push((k.tenant.clone(), k.kid.clone(), new.wrap(&der, &aad)?));
    }
    if add_versions {
        for purpose in [KeyPurpose::SecretHashing, KeyPurpose::Audit] {
            let latest = snapshot
                .keyring
                .iter()
                .filter(|e| e.purpose == purpose)
                .map(|e| e.version)
                .max()
                .unwrap_or(0);
            let version = latest.checked_add(1).ok_or_else(|| {
                CoreError::Config(format!(
                    "the {} key version is at its maximum",
                    purpose.as_str()
                ))
            })?;
            rewrap
                .added
                .push(KeyringEntry::generate(new, purpose, version, now)?);
        }
    }

    store.rewrap(&rewrap).await.map_err(|e| match e {
        StoreError::RevisionMismatch => CoreError::Config(
            "a key was added while rotating (is a server still running?); nothing was changed"
                .into(),
        ),
        other => CoreError::Store(other),
    })?;
    Ok(RotationReport {
        keyring_entries: rewrap.keyring.len(),
        signing_keys: rewrap.signing_keys.len(),
        added: rewrap
            .added
            .iter()
            .map(|e| (e.purpose, e.version))
            .collect(),
    })
}
