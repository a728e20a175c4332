//! The master key and the keyring it wraps.
//!
//! One 32-byte master key per deployment. It never encrypts data directly: a key-encryption key
//! is derived from it (HKDF) and wraps the keyring stored in the database — random
//! secret-hashing keys (versioned) and signing keys. Every secret hash names the version of the
//! hashing key it used, so rotating the master key only re-wraps the keyring
//! ([`crate::master_rotation`]).

use std::collections::HashMap;

use warrant_jose::crypto::{self, HmacKey};
use zeroize::Zeroizing;

use crate::CoreError;

/// The deployment's master key. `Debug` redacts; zeroized on drop.
pub struct MasterKey {
    kek: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

impl MasterKey {
    /// A fresh random master key and its text form (unpadded base64url of 32 bytes).
    pub fn generate() -> Result<(Self, Zeroizing<String>), CoreError> {
        let raw = Zeroizing::new(crypto::random_array::<32>().map_err(CoreError::crypto)?);
        let text = Zeroizing::new(warrant_jose::b64::encode(raw.as_ref()));
        Ok((Self::from_bytes(raw.as_ref())?, text))
    }

    /// Parses the text form. The error never contains the input.
    pub fn parse(text: &str) -> Result<Self, CoreError> {
        let raw = Zeroizing::new(warrant_jose::b64::decode(text.trim()).ok_or(
            CoreError::Config("the master key is not unpadded base64url".into()),
        )?);
        if raw.len() != 32 {
            return Err(CoreError::Config(
                "the master key must be 32 bytes (43 base64url characters)".into(),
            ));
        }
        Self::from_bytes(&raw)
    }

    fn from_bytes(raw: &[u8]) -> Result<Self, CoreError> {
        let kek = crypto::hkdf_sha256(raw, b"warrant", b"warrant keyring wrap v1")
            .map_err(CoreError::crypto)?;
        Ok(Self { kek })
    }

    /// A 32-byte key for `purpose` (HKDF from the master key), the same on every replica.
    pub(crate) fn derive(&self, purpose: &[u8]) -> Result<Zeroizing<[u8; 32]>, CoreError> {
        crypto::hkdf_sha256(self.kek.as_ref(), b"warrant derive", purpose)
            .map_err(CoreError::crypto)
    }

    pub fn wrap(&self, plaintext: &[u8], aad: &str) -> Result<Vec<u8>, CoreError> {
        crypto::aes_gcm_seal(&self.kek, plaintext, aad.as_bytes()).map_err(CoreError::crypto)
    }

    /// Fails if the data was wrapped under another master key or tampered with.
    pub fn unwrap(&self, sealed: &[u8], aad: &str) -> Result<Zeroizing<Vec<u8>>, CoreError> {
        crypto::aes_gcm_open(&self.kek, sealed, aad.as_bytes()).map_err(|_| {
            CoreError::Config(
                "the master key does not match this database (a keyring entry failed to decrypt)"
                    .into(),
            )
        })
    }
}

/// What a keyring entry is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyPurpose {
    SecretHashing,
    Audit,
}

impl KeyPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyPurpose::SecretHashing => "secret-hashing",
            KeyPurpose::Audit => "audit",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "secret-hashing" => Some(KeyPurpose::SecretHashing),
            "audit" => Some(KeyPurpose::Audit),
            _ => None,
        }
    }
}

/// A stored, wrapped keyring entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyringEntry {
    pub purpose: KeyPurpose,
    pub version: u32,
    pub wrapped: Vec<u8>,
    pub created_at: crate::Timestamp,
}

impl KeyringEntry {
    pub fn aad(purpose: KeyPurpose, version: u32) -> String {
        format!("keyring:{}:{version}", purpose.as_str())
    }

    pub fn generate(
        master: &MasterKey,
        purpose: KeyPurpose,
        version: u32,
        now: crate::Timestamp,
    ) -> Result<Self, CoreError> {
        let raw = Zeroizing::new(crypto::random_array::<32>().map_err(CoreError::crypto)?);
        Ok(Self {
            purpose,
            version,
            wrapped: master.wrap(raw.as_ref(), &Self::aad(purpose, version))?,
            created_at: now,
        })
    }
}

/// The unwrapped HMAC keys of one purpose by version; new hashes and records use the latest,
/// old ones keep naming the version that made them.
#[derive(Debug, Default)]
pub struct VersionedKeys {
    keys: HashMap<u32, HmacKey>,
    current: u32,
}

/// The secret-hashing keys.
pub type HashingKeys = VersionedKeys;

impl VersionedKeys {
    /// The secret-hashing keys (at least one must exist).
    pub fn load(master: &MasterKey, entries: &[KeyringEntry]) -> Result<Self, CoreError> {
        Self::load_purpose(master, entries, KeyPurpose::SecretHashing)
    }

    pub fn load_purpose(
        master: &MasterKey,
        entries: &[KeyringEntry],
        purpose: KeyPurpose,
    ) -> Result<Self, CoreError> {
        let mut out = Self::default();
        for e in entries.iter().filter(|e| e.purpose == purpose) {
            let raw = master.unwrap(&e.wrapped, &KeyringEntry::aad(e.purpose, e.version))?;
            out.keys.insert(e.version, HmacKey::new(&raw));
            out.current = out.current.max(e.version);
        }
        if out.keys.is_empty() {
            return Err(CoreError::Config(format!(
                "the keyring has no {} key",
                purpose.as_str()
            )));
        }
        Ok(out)
    }

    pub fn current(&self) -> u32 {
        self.current
    }

    pub fn get(&self, version: u32) -> Option<&HmacKey> {
        self.keys.get(&version)
    }
}

/// The writes of one master-key rotation, applied by [`crate::Store::rewrap`] in one
/// transaction: every wrapped key in the store, re-wrapped under the new master key, and the
/// new key versions that only the new master key ever wrapped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rewrap {
    /// Every keyring entry, matched by purpose and version; only `wrapped` is written.
    pub keyring: Vec<KeyringEntry>,
    /// Every signing key: its tenant, kid and new `private_wrapped`.
    pub signing_keys: Vec<(crate::TenantName, String, Vec<u8>)>,
    /// New keyring entries (new versions) to insert.
    pub added: Vec<KeyringEntry>,
}
