//! Parsing token-endpoint input: the form body (RFC 6749 §3.1, §3.2) and HTTP Basic client
//! credentials (RFC 6749 §2.3.1: form-encoded before base64, so they are form-decoded after).

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use crate::error::OAuthError;

/// Parameters that may repeat (RFC 8707 §2, RFC 8693 §2.1).
const REPEATABLE: &[&str] = &["resource", "audience"];
/// At most this many parameters; more is not a token request.
const MAX_PARAMS: usize = 64;

/// The decoded form, in order. Empty values are treated as omitted (RFC 6749 §3.1).
#[derive(Default)]
pub(crate) struct Params(Vec<(String, String)>);

/// Names only: values include `client_secret` and tokens.
impl std::fmt::Debug for Params {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Params")
            .field(&self.0.iter().map(|(k, _)| k).collect::<Vec<_>>())
            .finish()
    }
}

impl Params {
    pub(crate) fn parse(body: &[u8]) -> Result<Self, OAuthError> {
        let mut out: Vec<(String, String)> = Vec::new();
        for (k, v) in form_urlencoded::parse(body) {
            if v.is_empty() {
                continue;
            }
            if !REPEATABLE.contains(&k.as_ref()) && out.iter().any(|(ek, _)| *ek == k) {
                return Err(OAuthError::invalid_request(format!(
                    "the parameter {} is repeated",
                    truncate(&k, 40)
                )));
            }
            if out.len() >= MAX_PARAMS {
                return Err(OAuthError::invalid_request("too many parameters"));
            }
            out.push((k.into_owned(), v.into_owned()));
        }
        Ok(Self(out))
    }

    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The first `n` characters of attacker-controlled text, for messages and logs.
pub(super) fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// `application/x-www-form-urlencoded` decoding of one component: `+` is a space, `%XX` a byte.
fn form_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Client credentials from `Authorization: Basic …`. `Err` for anything malformed (the caller
/// answers 401 `invalid_client` with a challenge).
pub(crate) fn parse_basic(value: &[u8]) -> Result<(String, String), ()> {
    let value = std::str::from_utf8(value).map_err(|_| ())?;
    let (scheme, rest) = value.split_once(' ').ok_or(())?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(());
    }
    let decoded = BASE64.decode(rest.trim()).map_err(|_| ())?;
    let decoded = String::from_utf8(decoded).map_err(|_| ())?;
    let (id, secret) = decoded.split_once(':').ok_or(())?;
    let id = form_decode(id).ok_or(())?;
    let secret = form_decode(secret).ok_or(())?;
    if id.is_empty() || secret.is_empty() {
        return Err(());
    }
    Ok((id, secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_parameters_refused_except_resource() {
        assert!(Params::parse(b"grant_type=a&grant_type=b").is_err());
        let p = Params::parse(b"resource=a&resource=b&audience=c&scope=").unwrap();
        assert_eq!(p.all("resource").collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(p.get("scope"), None, "empty means omitted");
    }

    #[test]
    fn basic_is_form_decoded() {
        let h = format!("Basic {}", BASE64.encode("sa%5F1:p+w%3A"));
        assert_eq!(
            parse_basic(h.as_bytes()),
            Ok(("sa_1".into(), "p w:".into()))
        );
        assert!(parse_basic(b"Basic !!!").is_err());
        assert!(parse_basic(b"Bearer abc").is_err());
        assert!(parse_basic(format!("Basic {}", BASE64.encode("nocolon")).as_bytes()).is_err());
        assert!(parse_basic(format!("Basic {}", BASE64.encode("a:%zz")).as_bytes()).is_err());
        assert!(parse_basic(format!("Basic {}", BASE64.encode(":secret")).as_bytes()).is_err());
    }
}
