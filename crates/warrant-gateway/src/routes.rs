//! The route table: which route a request belongs to, and the RFC 9728 metadata each verified
//! route publishes.
//!
//! Among the routes whose `host` matches the request's (or that name no host), the longest
//! `path_prefix` wins; at equal length a route naming the host wins over one that names none.
//! Prefixes match on segment boundaries: `/orders` matches `/orders` and `/orders/1`, not
//! `/ordersX`.
//!
//! Routes match the canonical path ([`crate::path::canonical_path`]: encoded unreserved
//! characters decoded, other escapes upper-cased; `.`/`..` segments, `;`, `//`, encoded `/` or
//! `\` refused with 400 before any route is looked up), and the upstream receives exactly that
//! canonical path (under its base path, minus the prefix with `strip_prefix`) — the path that
//! was matched is the path that is served. Matching is case-sensitive: a prefix must be written
//! as the upstream spells it, and an upstream that folds case must not rely on case-different
//! prefixes to tell routes apart. Hosts match case-insensitively, without the port and one
//! trailing dot ([`match_host`]).

use std::sync::Arc;

use crate::config::{GatewayConfig, RouteConfig};

/// The RFC 9728 §3 well-known path, into which a resource's path is appended.
pub const METADATA_PATH: &str = "/.well-known/oauth-protected-resource";

/// One route, ready for requests.
#[derive(Debug)]
pub(crate) struct Route {
    pub(crate) name: Arc<str>,
    pub(crate) config: RouteConfig,
    /// `/.well-known/oauth-protected-resource{path_prefix}` (no suffix for the root prefix).
    pub(crate) metadata_path: String,
    /// The full metadata URL, when `public_url` fixes the origin.
    pub(crate) metadata_url: Option<String>,
    /// `scopes_all` then `scopes_any`, without repeats.
    pub(crate) scopes: Vec<String>,
}

impl Route {
    /// The path the upstream receives: the request's canonical path (the one the route
    /// matched), minus the prefix with `strip_prefix`, under the upstream's base path; then the
    /// query, unchanged.
    pub(crate) fn upstream_path_and_query(&self, path: &str, query: Option<&str>) -> String {
        let mut rest = path;
        if self.config.strip_prefix && self.config.path_prefix != "/" {
            rest = path.get(self.config.path_prefix.len()..).unwrap_or("");
        }
        let base = &self.config.upstream.base_path;
        let mut out =
            String::with_capacity(base.len() + rest.len() + 2 + query.map_or(0, |q| q.len()));
        out.push_str(base);
        if !rest.starts_with('/') {
            out.push('/');
        }
        out.push_str(rest);
        if let Some(q) = query {
            out.push('?');
            out.push_str(q);
        }
        out
    }

    /// The resource identifier (RFC 9728 §1.2): the origin and the prefix (just the origin for
    /// the root prefix, RFC 9728 §3.1's terminating slash removed).
    pub(crate) fn resource(&self, origin: &str) -> String {
        if self.config.path_prefix == "/" {
            origin.to_owned()
        } else {
            format!("{origin}{}", self.config.path_prefix)
        }
    }

    /// The metadata URL for `origin` (used when `public_url` is not set).
    pub(crate) fn metadata_url_for(&self, origin: &str) -> String {
        format!("{origin}{}", self.metadata_path)
    }

    fn host_matches(&self, host: &str) -> bool {
        self.config
            .host
            .as_deref()
            .is_none_or(|h| h.eq_ignore_ascii_case(host))
    }
}

/// The routes, most specific first.
#[derive(Debug)]
pub(crate) struct RouteTable {
    routes: Vec<Route>,
}

impl RouteTable {
    pub(crate) fn new(config: &GatewayConfig) -> Self {
        let mut routes: Vec<Route> = config
            .routes
            .iter()
            .map(|r| {
                let metadata_path = if r.path_prefix == "/" {
                    METADATA_PATH.to_owned()
                } else {
                    format!("{METADATA_PATH}{}", r.path_prefix)
                };
                let mut scopes: Vec<String> = Vec::new();
                for s in r
                    .requirement
                    .scopes_all
                    .iter()
                    .chain(&r.requirement.scopes_any)
                {
                    if !scopes.contains(s) {
                        scopes.push(s.clone());
                    }
                }
                Route {
                    name: Arc::from(r.name.as_str()),
                    metadata_url: config
                        .public_url
                        .as_deref()
                        .map(|origin| format!("{origin}{metadata_path}")),
                    metadata_path,
                    config: r.clone(),
                    scopes,
                }
            })
            .collect();
        // Longest prefix first; at equal length, a route naming a host before one that does not.
        routes.sort_by(|a, b| {
            b.config
                .path_prefix
                .len()
                .cmp(&a.config.path_prefix.len())
                .then(b.config.host.is_some().cmp(&a.config.host.is_some()))
        });
        Self { routes }
    }

    /// The route for a request to `host` (as [`match_host`] gives it) and the canonical `path`.
    pub(crate) fn find(&self, host: &str, path: &str) -> Option<&Route> {
        self.routes
            .iter()
            .find(|r| r.host_matches(host) && prefix_matches(&r.config.path_prefix, path))
    }

    /// The verified route whose RFC 9728 metadata lives at `path` for `host`.
    pub(crate) fn metadata(&self, host: &str, path: &str) -> Option<&Route> {
        if !path.starts_with(METADATA_PATH) {
            return None;
        }
        self.routes
            .iter()
            .find(|r| r.config.verify && r.host_matches(host) && r.metadata_path == path)
    }
}

/// Whether `prefix` (normalised: no trailing `/` except the root) covers `path` on a segment
/// boundary.
pub(crate) fn prefix_matches(prefix: &str, path: &str) -> bool {
    if prefix == "/" {
        return true;
    }
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

/// The host as routes match it: without the port and without one trailing dot
/// (`API.example.com.:8443` → `API.example.com`; routes compare it case-insensitively).
pub(crate) fn match_host(authority: &str) -> &str {
    let host = host_without_port(authority);
    host.strip_suffix('.').unwrap_or(host)
}

/// Whether `authority` (a `Host` header value or an absolute-form target's authority) is a
/// plain `host[:port]`: a DNS name or IPv4 address (non-empty labels of letters, digits, `-`
/// and `_`, optionally one trailing dot) or a bracketed IPv6 literal, then an optional decimal
/// port. Userinfo, percent-encoding and anything else are refused.
pub(crate) fn valid_authority(authority: &str) -> bool {
    let (host, port) = if authority.starts_with('[') {
        match authority.find(']') {
            Some(end) => (&authority[..=end], &authority[end + 1..]),
            None => return false,
        }
    } else {
        match authority.find(':') {
            Some(colon) => (&authority[..colon], &authority[colon..]),
            None => (authority, ""),
        }
    };
    let port_ok = port.is_empty()
        || port.strip_prefix(':').is_some_and(|p| {
            !p.is_empty()
                && p.len() <= 5
                && p.bytes().all(|c| c.is_ascii_digit())
                && p.parse::<u16>().is_ok()
        });
    if !port_ok {
        return false;
    }
    if let Some(inner) = host.strip_prefix('[') {
        let inner = inner.strip_suffix(']').unwrap_or("");
        return !inner.is_empty()
            && inner
                .bytes()
                .all(|c| c.is_ascii_hexdigit() || c == b':' || c == b'.');
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        })
}

/// The host of a `Host` header value or URI authority, without the port (`[::1]:8443` →
/// `[::1]`).
pub(crate) fn host_without_port(authority: &str) -> &str {
    if authority.starts_with('[') {
        return match authority.find(']') {
            Some(end) => &authority[..=end],
            None => authority,
        };
    }
    match authority.rsplit_once(':') {
        Some((host, _)) => host,
        None => authority,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn table(routes: &str) -> RouteTable {
        let text = format!(
            "listen = \"127.0.0.1:0\"\npublic_url = \"https://api.example.com\"\n\
             [[issuers]]\nissuer = \"https://id.example.com\"\nrevocation = false\n{routes}"
        );
        let config = GatewayConfig::parse(Path::new("/etc/gateway.toml"), &text, &|_| None)
            .unwrap_or_else(|e| panic!("{e}"));
        RouteTable::new(&config)
    }

    fn route(name: &str, host: Option<&str>, prefix: &str) -> String {
        let host = host.map_or(String::new(), |h| format!("host = \"{h}\"\n"));
        format!(
            "[[routes]]\nname = \"{name}\"\n{host}path_prefix = \"{prefix}\"\n\
             upstream = \"http://127.0.0.1:9000\"\naudience = \"a\"\n"
        )
    }

    fn found<'a>(t: &'a RouteTable, host: &str, path: &str) -> Option<&'a str> {
        t.find(host, path).map(|r| &*r.name)
    }

    #[test]
    fn the_longest_prefix_wins() {
        let t = table(
            &[
                route("root", None, "/"),
                route("orders", None, "/orders"),
                route("items", None, "/orders/items/"),
            ]
            .concat(),
        );
        assert_eq!(found(&t, "x", "/"), Some("root"));
        assert_eq!(found(&t, "x", "/orders"), Some("orders"));
        assert_eq!(found(&t, "x", "/orders/1"), Some("orders"));
        assert_eq!(found(&t, "x", "/orders/items"), Some("items"));
        assert_eq!(found(&t, "x", "/orders/items/9"), Some("items"));
        assert_eq!(found(&t, "x", "/orders/itemsX"), Some("orders"));
    }

    #[test]
    fn prefixes_match_on_segment_boundaries() {
        let t = table(&route("orders", None, "/orders"));
        assert_eq!(found(&t, "x", "/orders"), Some("orders"));
        assert_eq!(found(&t, "x", "/orders/"), Some("orders"));
        assert_eq!(found(&t, "x", "/ordersX"), None);
        assert_eq!(found(&t, "x", "/order"), None);
        assert_eq!(found(&t, "x", "/"), None);
    }

    #[test]
    fn hosts_match_case_insensitively_and_win_ties() {
        let t = table(
            &[
                route("any", None, "/orders"),
                route("api", Some("API.example.com"), "/orders"),
                route("other", Some("other.example.com"), "/"),
            ]
            .concat(),
        );
        assert_eq!(found(&t, "api.EXAMPLE.com", "/orders/1"), Some("api"));
        assert_eq!(found(&t, "www.example.com", "/orders/1"), Some("any"));
        assert_eq!(found(&t, "other.example.com", "/orders"), Some("any"));
        assert_eq!(found(&t, "other.example.com", "/x"), Some("other"));
        assert_eq!(found(&t, "www.example.com", "/x"), None);
    }

    #[test]
    fn upstream_paths() {
        let text = "[[routes]]\nname = \"s\"\npath_prefix = \"/svc\"\n\
                    upstream = \"http://127.0.0.1:9000/base/\"\nstrip_prefix = true\naudience = \"a\"\n\
                    [[routes]]\nname = \"k\"\npath_prefix = \"/keep\"\n\
                    upstream = \"http://127.0.0.1:9000\"\naudience = \"a\"\n";
        let t = table(text);
        let s = t.find("x", "/svc/a").unwrap();
        assert_eq!(
            s.upstream_path_and_query("/svc/a", Some("q=1")),
            "/base/a?q=1"
        );
        assert_eq!(s.upstream_path_and_query("/svc", None), "/base/");
        let k = t.find("x", "/keep/a").unwrap();
        assert_eq!(k.upstream_path_and_query("/keep/a", None), "/keep/a");
    }

    #[test]
    fn metadata_paths() {
        let t = table(&[route("root", None, "/"), route("orders", None, "/orders")].concat());
        let m = t
            .metadata("x", "/.well-known/oauth-protected-resource/orders")
            .unwrap();
        assert_eq!(&*m.name, "orders");
        assert_eq!(
            m.metadata_url.as_deref(),
            Some("https://api.example.com/.well-known/oauth-protected-resource/orders")
        );
        assert_eq!(
            m.resource("https://api.example.com"),
            "https://api.example.com/orders"
        );
        let r = t
            .metadata("x", "/.well-known/oauth-protected-resource")
            .unwrap();
        assert_eq!(&*r.name, "root");
        assert_eq!(
            r.resource("https://api.example.com"),
            "https://api.example.com"
        );
        assert!(
            t.metadata("x", "/.well-known/oauth-protected-resource/other")
                .is_none()
        );
    }

    /// The route a request path reaches, the way the proxy looks it up.
    fn routed<'a>(t: &'a RouteTable, host: &str, path: &str) -> Result<Option<&'a str>, ()> {
        let path = crate::path::canonical_path(path).map_err(|_| ())?;
        Ok(found(t, match_host(host), &path))
    }

    #[test]
    fn routes_match_the_canonical_path() {
        let t = table(
            &[
                route("public", None, "/"),
                route("api", None, "/api"),
                route("admin", None, "/api/admin"),
            ]
            .concat(),
        );
        assert_eq!(routed(&t, "x", "/api/%61dmin/delete"), Ok(Some("admin")));
        assert_eq!(routed(&t, "x", "/api/%61%64%6D%69%6E"), Ok(Some("admin")));
        assert_eq!(routed(&t, "x", "/%61dmin"), Ok(Some("public")));
        assert_eq!(routed(&t, "x", "/%61pi/admin"), Ok(Some("admin")));
        // Refused (400) rather than routed to /api or /.
        for p in [
            "/api/admin;x/delete",
            "/api/x/../admin",
            "/api/%2e%2e/api/admin",
            "/api%2fadmin",
            "/api//admin",
            "/api\\admin",
        ] {
            assert_eq!(routed(&t, "x", p), Err(()), "{p}");
        }
    }

    #[test]
    fn strip_prefix_cannot_escape_the_base_path() {
        let t = table(
            "[[routes]]\nname = \"s\"\npath_prefix = \"/svc\"\n\
             upstream = \"http://127.0.0.1:9000/base\"\nstrip_prefix = true\naudience = \"a\"\n",
        );
        assert_eq!(routed(&t, "x", "/svc/../../other"), Err(()));
        assert_eq!(routed(&t, "x", "/svc/%2e%2e/%2E%2E/other"), Err(()));
        let path = crate::path::canonical_path("/svc/%7euser").unwrap();
        let s = t.find("x", &path).unwrap();
        assert_eq!(
            s.upstream_path_and_query(&path, Some("a=%2e")),
            "/base/~user?a=%2e"
        );
    }

    #[test]
    fn hosts_match_without_a_trailing_dot() {
        let t = table(
            &[
                route("any", None, "/"),
                route("api", Some("api.example.com"), "/"),
                route("dot", Some("dot.example.com."), "/"),
            ]
            .concat(),
        );
        assert_eq!(routed(&t, "api.example.com.", "/x"), Ok(Some("api")));
        assert_eq!(routed(&t, "API.Example.COM.:8443", "/x"), Ok(Some("api")));
        assert_eq!(routed(&t, "dot.example.com", "/x"), Ok(Some("dot")));
        assert_eq!(routed(&t, "dot.example.com.", "/x"), Ok(Some("dot")));
        assert_eq!(routed(&t, "www.example.com", "/x"), Ok(Some("any")));
    }

    #[test]
    fn valid_authorities() {
        for a in [
            "api.example.com",
            "api.example.com.",
            "API.example.com:8443",
            "127.0.0.1:80",
            "[::1]",
            "[::1]:8443",
            "localhost",
            "under_score.internal",
        ] {
            assert!(valid_authority(a), "{a}");
        }
        for a in [
            "",
            "user@api.example.com",
            "user:pw@api.example.com",
            "api.example.com..",
            ".api.example.com",
            "api..example.com",
            "api.example.com:",
            "api.example.com:99999",
            "api.example.com:8x",
            "api.example.com:80:80",
            "api%2eexample.com",
            "api.example.com/x",
            "api example.com",
            "[::1",
            "[]",
            "[::1]x",
            ":8080",
        ] {
            assert!(!valid_authority(a), "{a}");
        }
    }

    #[test]
    fn ports_are_dropped_from_hosts() {
        assert_eq!(host_without_port("api.example.com:8443"), "api.example.com");
        assert_eq!(host_without_port("api.example.com"), "api.example.com");
        assert_eq!(host_without_port("[::1]:8443"), "[::1]");
        assert_eq!(host_without_port("[::1]"), "[::1]");
    }
}
