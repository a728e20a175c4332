//! Client secrets: `wrt_` + 43 base62 characters (≥ 256 bits) + the CRC32 of those 43
//! characters in base62, left-padded to 6. The prefix lets secret scanners find a leaked one;
//! the checksum makes a typo fail before any lookup.

use zeroize::Zeroizing;

use crate::keyring::HashingKeys;

const PREFIX: &str = "wrt_";
const BODY_LEN: usize = 43;
const CRC_LEN: usize = 6;
pub const SECRET_LEN: usize = PREFIX.len() + BODY_LEN + CRC_LEN;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A client secret in clear. `Debug` redacts it; memory is zeroized on drop.
pub struct ClientSecret(Zeroizing<String>);

impl std::fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientSecret(<redacted>)")
    }
}

fn crc_base62(body: &str) -> String {
    let mut n = crc32fast::hash(body.as_bytes()) as u64;
    let mut out = [b'0'; CRC_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    out.iter().map(|&b| b as char).collect()
}

impl ClientSecret {
    /// A fresh random secret (rejection sampling keeps base62 uniform).
    pub fn generate() -> Result<Self, warrant_jose::JoseError> {
        let mut s = Zeroizing::new(String::with_capacity(SECRET_LEN));
        s.push_str(PREFIX);
        let mut n = 0;
        while n < BODY_LEN {
            let buf: [u8; 64] = warrant_jose::crypto::random_array()?;
            for b in buf {
                if n < BODY_LEN && b < 248 {
                    s.push(BASE62[(b % 62) as usize] as char);
                    n += 1;
                }
            }
        }
        let crc = crc_base62(&s[PREFIX.len()..]);
        s.push_str(&crc);
        Ok(Self(s))
    }

    /// Accepts a secret only if its shape and checksum are right.
    pub fn parse(s: &str) -> Option<Self> {
        if s.len() != SECRET_LEN || !s.starts_with(PREFIX) || !s.is_ascii() {
            return None;
        }
        let body = &s[PREFIX.len()..PREFIX.len() + BODY_LEN];
        let crc = &s[PREFIX.len() + BODY_LEN..];
        if !body.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return None;
        }
        warrant_jose::crypto::constant_time_eq(crc.as_bytes(), crc_base62(body).as_bytes())
            .then(|| Self(Zeroizing::new(s.to_owned())))
    }

    /// The value, for showing once to the admin who created it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// HMAC-SHA256 under the given hashing-key version.
    pub fn hash(&self, keys: &HashingKeys, version: u32) -> Option<[u8; 32]> {
        keys.get(version).map(|k| k.sign(self.0.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_parse_and_typos_fail() {
        let s = ClientSecret::generate().unwrap();
        assert_eq!(s.expose().len(), 53);
        assert!(s.expose().starts_with("wrt_"));
        assert!(ClientSecret::parse(s.expose()).is_some());
        let mut typo = s.expose().to_string().into_bytes();
        typo[10] = if typo[10] == b'a' { b'b' } else { b'a' };
        assert!(ClientSecret::parse(std::str::from_utf8(&typo).unwrap()).is_none());
        assert!(ClientSecret::parse("").is_none());
        assert!(ClientSecret::parse("wrt_short").is_none());
        assert_eq!(format!("{s:?}"), "ClientSecret(<redacted>)");
    }
}
