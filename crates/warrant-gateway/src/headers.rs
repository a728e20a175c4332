//! What the gateway changes in the headers it forwards (RFC 9110 §7.6.1 hop-by-hop fields,
//! identity headers, `X-Forwarded-*`) and in the responses it relays.
//!
//! Identity headers are the upstream's reason to trust the gateway, so every configured one is
//! removed from what the caller sent — on every route, verified or not, and in any spelling
//! that a CGI-style server would map to the same variable (`x_warrant_sub`) — before the
//! gateway sets them from a verified token. Otherwise a caller could name itself. The same goes
//! for other headers upstreams take from a trusted proxy (`Forwarded`, `X-Forwarded-*`,
//! `X-Real-IP`, client-certificate headers, `X-Original-URL`); see [`remove_untrusted`].

use std::net::IpAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;
use warrant_verify::VerifiedToken;

use crate::config::IdentityHeader;

/// Hop-by-hop fields that never cross a proxy, whatever `Connection` says.
static HOP_BY_HOP: [HeaderName; 6] = [
    header::CONNECTION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    HeaderName::from_static("keep-alive"),
];

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static DPOP: HeaderName = HeaderName::from_static("dpop");

/// Removes the hop-by-hop fields: those `Connection` names, the fixed ones, and every
/// `Proxy-*` field.
pub(crate) fn remove_hop_by_hop(headers: &mut HeaderMap) {
    if headers.contains_key(header::CONNECTION) {
        let named: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
            .collect();
        for name in named {
            headers.remove(name);
        }
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
    if headers.keys().any(|k| k.as_str().starts_with("proxy-")) {
        let proxy: Vec<HeaderName> = headers
            .keys()
            .filter(|k| k.as_str().starts_with("proxy-"))
            .cloned()
            .collect();
        for name in proxy {
            headers.remove(name);
        }
    }
}

/// Headers an upstream (or the framework in front of it) may take as said by a trusted proxy,
/// besides the identity headers and `X-Forwarded-*`: `Forwarded` (RFC 7239), `X-Real-IP`, the
/// client certificate of RFC 9440, and the original-URL overrides of IIS and Symfony/Zend.
const TRUST_HEADERS: [&str; 6] = [
    "forwarded",
    "x-real-ip",
    "client-cert",
    "client-cert-chain",
    "x-original-url",
    "x-rewrite-url",
];

/// Removes what the caller sent that an upstream might believe came from the gateway: every
/// configured identity header, every `X-Forwarded-*` except `X-Forwarded-For` itself (which
/// [`set_forwarded`] appends to), the [`TRUST_HEADERS`], and any header naming a client
/// certificate (`X-Client-Cert`, `X-SSL-Client-Cert`, …).
///
/// Names are compared case-insensitively and with `_` taken as `-`: CGI, WSGI, Rack and PHP
/// servers present both `x-warrant-sub` and `x_warrant_sub` as `HTTP_X_WARRANT_SUB`, so either
/// spelling would pass as the identity header.
pub(crate) fn remove_untrusted(headers: &mut HeaderMap, identity: &[IdentityHeader]) {
    // An empty `Vec` (the common case: nothing to remove) does not allocate.
    let names: Vec<HeaderName> = headers
        .keys()
        .filter(|n| is_untrusted(n.as_str(), identity))
        .cloned()
        .collect();
    for name in names {
        headers.remove(name);
    }
}

/// Whether a (lower-case) header name is one a caller may not send; see [`remove_untrusted`].
fn is_untrusted(name: &str, identity: &[IdentityHeader]) -> bool {
    if name == "x-forwarded-for" {
        return false;
    }
    identity.iter().any(|h| same_name(name, h.name.as_str()))
        || TRUST_HEADERS.iter().any(|t| same_name(name, t))
        || name
            .get(..12)
            .is_some_and(|start| same_name(start, "x-forwarded-"))
        || contains_name(name, "client-cert")
}

/// `a` and `b` are equal with `_` taken as `-` (both already lower case).
fn same_name(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| dash(x) == dash(y))
}

/// `name` contains `part` with `_` taken as `-`.
fn contains_name(name: &str, part: &str) -> bool {
    let (n, p) = (name.as_bytes(), part.as_bytes());
    n.windows(p.len())
        .any(|w| w.iter().zip(p).all(|(&x, &y)| dash(x) == dash(y)))
}

fn dash(c: u8) -> u8 {
    if c == b'_' { b'-' } else { c }
}

/// Sets the identity headers from `token`'s claims. Absent (or `null`) claims, and values that
/// cannot be header values, are skipped.
pub(crate) fn set_identity(
    headers: &mut HeaderMap,
    identity: &[IdentityHeader],
    token: &VerifiedToken,
) {
    for h in identity {
        if let Some(value) = token.claim(&h.claim).and_then(claim_value) {
            headers.insert(h.name.clone(), value);
        }
    }
}

/// A claim as a header value: a string as is, a number in decimal, anything else as compact
/// JSON.
fn claim_value(v: &Value) -> Option<HeaderValue> {
    match v {
        Value::Null => None,
        Value::String(s) => HeaderValue::from_str(s).ok(),
        Value::Number(n) => HeaderValue::from_str(&n.to_string()).ok(),
        other => HeaderValue::from_str(&other.to_string()).ok(),
    }
}

/// Removes the credentials (`Authorization`, `DPoP`), unless the route forwards them.
pub(crate) fn remove_credentials(headers: &mut HeaderMap) {
    headers.remove(header::AUTHORIZATION);
    headers.remove(&DPOP);
}

/// `X-Forwarded-For` (the client's address appended to what came in), `X-Forwarded-Proto`
/// and `X-Forwarded-Host` (replaced).
pub(crate) fn set_forwarded(
    headers: &mut HeaderMap,
    client: IpAddr,
    https: bool,
    host: Option<&HeaderValue>,
) {
    let client = client.to_string();
    let mut values = headers.get_all(&X_FORWARDED_FOR).iter();
    let xff = match (values.next(), values.next()) {
        (None, _) => HeaderValue::from_str(&client).ok(),
        (Some(one), None) => joined([one], &client),
        (Some(a), Some(b)) => {
            let rest: Vec<HeaderValue> = values.cloned().collect();
            joined([a, b].into_iter().chain(rest.iter()), &client)
        }
    };
    headers.remove(&X_FORWARDED_FOR);
    if let Some(v) = xff {
        headers.insert(X_FORWARDED_FOR.clone(), v);
    }
    headers.insert(
        X_FORWARDED_PROTO.clone(),
        HeaderValue::from_static(if https { "https" } else { "http" }),
    );
    match host {
        Some(h) => headers.insert(X_FORWARDED_HOST.clone(), h.clone()),
        None => headers.remove(&X_FORWARDED_HOST),
    };
}

fn joined<'a>(
    values: impl IntoIterator<Item = &'a HeaderValue>,
    client: &str,
) -> Option<HeaderValue> {
    let mut out = Vec::with_capacity(64);
    for v in values {
        out.extend_from_slice(v.as_bytes());
        out.extend_from_slice(b", ");
    }
    out.extend_from_slice(client.as_bytes());
    HeaderValue::from_bytes(&out).ok()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::*;

    fn identity() -> Vec<IdentityHeader> {
        crate::config::DEFAULT_IDENTITY_HEADERS
            .iter()
            .map(|(h, c)| IdentityHeader {
                name: HeaderName::from_static(h),
                claim: (*c).to_owned(),
            })
            .chain([
                IdentityHeader {
                    name: HeaderName::from_static("x-actor"),
                    claim: "act.sub".into(),
                },
                IdentityHeader {
                    name: HeaderName::from_static("x-exp"),
                    claim: "exp".into(),
                },
                IdentityHeader {
                    name: HeaderName::from_static("x-groups"),
                    claim: "groups".into(),
                },
                IdentityHeader {
                    name: HeaderName::from_static("x-bad"),
                    claim: "bad".into(),
                },
            ])
            .collect()
    }

    /// A header map with `fields` appended in order (a repeated name keeps every value).
    fn header_map(fields: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for &(name, value) in fields {
            h.append(name, HeaderValue::from_static(value));
        }
        h
    }

    fn token() -> Arc<VerifiedToken> {
        let claims = json!({
            "iss": "https://id.example.com", "sub": "sa_1", "client_id": "sa_1", "jti": "j1",
            "aud": "a", "exp": 1_800_000_000, "iat": 1_700_000_000, "scope": "a b",
            "act": {"sub": "sa_2"}, "groups": ["x", "y"], "bad": "line\nbreak"
        });
        let serde_json::Value::Object(claims) = claims else {
            unreachable!()
        };
        Arc::new(VerifiedToken {
            iss: "https://id.example.com".into(),
            sub: "sa_1".into(),
            aud: vec!["a".into()],
            client_id: "sa_1".into(),
            jti: "j1".into(),
            exp: 1_800_000_000,
            iat: 1_700_000_000,
            nbf: None,
            scopes: vec!["a".into(), "b".into()],
            tenant: None,
            binding: warrant_verify::Binding::Bearer,
            kid: "k".into(),
            claims,
            act_too_deep: false,
        })
    }

    #[test]
    fn spoofed_identity_headers_are_replaced_or_removed() {
        let mut h = header_map(&[
            ("X-Warrant-Sub", "admin"),
            ("x-warrant-sub", "root"),
            ("x-warrant-tenant", "other"),
            ("x-unrelated", "kept"),
        ]);
        let identity = identity();
        remove_untrusted(&mut h, &identity);
        set_identity(&mut h, &identity, &token());
        let all: Vec<_> = h.get_all("x-warrant-sub").iter().collect();
        assert_eq!(all, ["sa_1"]);
        // No tenant claim in the token: the spoofed value is gone, nothing replaces it.
        assert!(h.get("x-warrant-tenant").is_none());
        assert_eq!(h["x-warrant-scope"], "a b");
        assert_eq!(h["x-warrant-issuer"], "https://id.example.com");
        assert_eq!(h["x-actor"], "sa_2");
        assert_eq!(h["x-exp"], "1800000000");
        assert_eq!(h["x-groups"], r#"["x","y"]"#);
        assert!(h.get("x-bad").is_none());
        assert_eq!(h["x-unrelated"], "kept");
    }

    #[test]
    fn underscore_spellings_and_trust_headers_are_removed() {
        let mut h = header_map(&[
            ("x-forwarded-for", "10.0.0.1"),
            ("x-warrant-subject", "kept"),
            ("x-forwarded", "kept"),
            ("content-type", "text/plain"),
        ]);
        for name in [
            "x_warrant_sub",
            "X_Warrant-Client_ID",
            "x-warrant_tenant",
            "x_actor",
            "forwarded",
            "Forwarded",
            "x-real-ip",
            "x_real_ip",
            "x-forwarded-port",
            "x-forwarded-prefix",
            "x_forwarded_for",
            "x_forwarded_host",
            "X-Forwarded-Proto",
            "x-forwarded-ssl",
            "client-cert",
            "client_cert_chain",
            "x-client-cert",
            "x-ssl-client-cert",
            "ssl_client_cert",
            "x-forwarded-client-cert",
            "x-original-url",
            "x_rewrite_url",
        ] {
            h.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_static("spoofed"),
            );
        }
        remove_untrusted(&mut h, &identity());
        let mut left: Vec<_> = h.keys().map(|k| k.as_str()).collect();
        left.sort_unstable();
        assert_eq!(
            left,
            [
                "content-type",
                "x-forwarded",
                "x-forwarded-for",
                "x-warrant-subject"
            ]
        );
        // Nothing to remove: nothing changes.
        let before = h.clone();
        remove_untrusted(&mut h, &identity());
        assert_eq!(h, before);
    }

    #[test]
    fn hop_by_hop_fields_are_removed() {
        let mut h = header_map(&[
            ("connection", "close, X-Custom-Hop"),
            ("x-custom-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("proxy-authorization", "Basic x"),
            ("proxy-foo", "1"),
            ("te", "trailers"),
            ("trailer", "x"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("content-type", "text/plain"),
        ]);
        remove_hop_by_hop(&mut h);
        let left: Vec<_> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, ["content-type"]);
    }

    #[test]
    fn credentials_and_forwarding() {
        let mut h = header_map(&[
            ("authorization", "Bearer t"),
            ("dpop", "p"),
            ("x-forwarded-for", "10.0.0.1"),
            ("x-forwarded-for", "10.0.0.2"),
            ("x-forwarded-for", "10.0.0.3"),
            ("x-forwarded-proto", "gopher"),
        ]);
        remove_credentials(&mut h);
        let host = HeaderValue::from_static("api.example.com");
        set_forwarded(&mut h, "192.0.2.7".parse().unwrap(), true, Some(&host));
        assert!(h.get("authorization").is_none() && h.get("dpop").is_none());
        assert_eq!(
            h["x-forwarded-for"],
            "10.0.0.1, 10.0.0.2, 10.0.0.3, 192.0.2.7"
        );
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["x-forwarded-host"], "api.example.com");
        let mut fresh = HeaderMap::new();
        set_forwarded(&mut fresh, "::1".parse().unwrap(), false, None);
        assert_eq!(fresh["x-forwarded-for"], "::1");
        assert_eq!(fresh["x-forwarded-proto"], "http");
    }
}
