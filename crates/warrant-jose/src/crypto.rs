//! The small set of primitives the rest of Warrant needs, so that only this crate names the
//! crypto backend.

use aws_lc_rs::rand::SecureRandom as _;
use aws_lc_rs::{aead, digest, hkdf, hmac, rand};
use zeroize::Zeroizing;

use crate::JoseError;

/// Fills `out` from the system CSPRNG.
pub fn fill_random(out: &mut [u8]) -> Result<(), JoseError> {
    rand::SystemRandom::new()
        .fill(out)
        .map_err(|_| JoseError::Crypto)
}

/// `N` random bytes.
pub fn random_array<const N: usize>() -> Result<[u8; N], JoseError> {
    let mut out = [0u8; N];
    fill_random(&mut out)?;
    Ok(out)
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// An HMAC-SHA256 key, prepared once (the key schedule is not redone per message).
#[derive(Clone)]
pub struct HmacKey(hmac::Key);

impl HmacKey {
    pub fn new(key: &[u8]) -> Self {
        Self(hmac::Key::new(hmac::HMAC_SHA256, key))
    }

    pub fn sign(&self, data: &[u8]) -> [u8; 32] {
        let tag = hmac::sign(&self.0, data);
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }
}

impl std::fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HmacKey(<redacted>)")
    }
}

/// Constant-time equality of two byte strings (length is not secret).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && aws_lc_rs::constant_time::verify_slices_are_equal(a, b).is_ok()
}

struct Len32;
impl hkdf::KeyType for Len32 {
    fn len(&self) -> usize {
        32
    }
}

/// HKDF-SHA256 (RFC 5869) to a 32-byte key.
pub fn hkdf_sha256(ikm: &[u8], salt: &[u8], info: &[u8]) -> Result<Zeroizing<[u8; 32]>, JoseError> {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(ikm);
    let info = [info];
    let okm = prk.expand(&info, Len32).map_err(|_| JoseError::Crypto)?;
    let mut out = Zeroizing::new([0u8; 32]);
    okm.fill(out.as_mut()).map_err(|_| JoseError::Crypto)?;
    Ok(out)
}

const NONCE_LEN: usize = 12;

/// AES-256-GCM seal with a random nonce; output is `nonce ‖ ciphertext ‖ tag`. `aad` binds the
/// ciphertext to its purpose (for example the key id), so a wrapped key cannot be swapped.
pub fn aes_gcm_seal(key: &[u8; 32], plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, JoseError> {
    let unbound = aead::UnboundKey::new(&aead::AES_256_GCM, key).map_err(|_| JoseError::Crypto)?;
    let key = aead::LessSafeKey::new(unbound);
    let nonce_bytes = random_array::<NONCE_LEN>()?;
    let mut buf = plaintext.to_vec();
    key.seal_in_place_append_tag(
        aead::Nonce::assume_unique_for_key(nonce_bytes),
        aead::Aad::from(aad),
        &mut buf,
    )
    .map_err(|_| JoseError::Crypto)?;
    let mut out = Vec::with_capacity(NONCE_LEN + buf.len());
    out.extend_from_slice(&nonce_bytes);
    out.extend_from_slice(&buf);
    Ok(out)
}

/// Opens what [`aes_gcm_seal`] produced; fails on any tampering or a wrong key or `aad`.
pub fn aes_gcm_open(
    key: &[u8; 32],
    sealed: &[u8],
    aad: &[u8],
) -> Result<Zeroizing<Vec<u8>>, JoseError> {
    if sealed.len() < NONCE_LEN + 16 {
        return Err(JoseError::Crypto);
    }
    let unbound = aead::UnboundKey::new(&aead::AES_256_GCM, key).map_err(|_| JoseError::Crypto)?;
    let key = aead::LessSafeKey::new(unbound);
    let (nonce, ct) = sealed.split_at(NONCE_LEN);
    let nonce = aead::Nonce::try_assume_unique_for_key(nonce).map_err(|_| JoseError::Crypto)?;
    let mut buf = Zeroizing::new(ct.to_vec());
    let plain_len = key
        .open_in_place(nonce, aead::Aad::from(aad), buf.as_mut())
        .map_err(|_| JoseError::Crypto)?
        .len();
    buf.truncate(plain_len);
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aes_gcm_round_trip_and_tamper() {
        let key = [7u8; 32];
        let sealed = aes_gcm_seal(&key, b"secret", b"kid-1").unwrap();
        assert_eq!(
            &aes_gcm_open(&key, &sealed, b"kid-1").unwrap()[..],
            b"secret"
        );
        assert!(aes_gcm_open(&key, &sealed, b"kid-2").is_err());
        let mut bad = sealed.clone();
        bad[20] ^= 1;
        assert!(aes_gcm_open(&key, &bad, b"kid-1").is_err());
        assert!(aes_gcm_open(&[8u8; 32], &sealed, b"kid-1").is_err());
    }

    #[test]
    fn constant_time_eq_works() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
