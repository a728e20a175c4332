use super::*;

const FILE: &str = "/etc/warrant/gateway.toml";

const ISSUER: &str = r#"
[[issuers]]
issuer = "https://id.example.com/t/prod"
feed_client_id = "sa_feed"
feed_client_secret_env = "FEED_SECRET"
"#;

const ROUTE: &str = r#"
[[routes]]
name = "orders"
path_prefix = "/orders"
upstream = "http://127.0.0.1:9000"
audience = "https://orders.example.com"
"#;

fn env(name: &str) -> Option<String> {
    (name == "FEED_SECRET").then(|| "s3cret-value\n".to_owned())
}

fn parse(text: &str) -> Result<GatewayConfig, ConfigError> {
    GatewayConfig::parse(Path::new(FILE), text, &env)
}

fn error(text: &str) -> ConfigError {
    match parse(text) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e,
    }
}

fn minimal(extra: &str) -> String {
    format!("listen = \"127.0.0.1:8443\"\n{extra}{ISSUER}{ROUTE}")
}

#[test]
fn the_example_file_loads() {
    let text = include_str!("../../../../docs/gateway.example.toml");
    let dir = tempfile::tempdir().unwrap();
    // The example's files do not exist here: point them at temporary ones.
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, "").unwrap();
    let secret = dir.path().join("feed");
    std::fs::write(&secret, "s3cret\n").unwrap();
    let text = text
        .replace("/etc/warrant/ca.pem", &ca.display().to_string())
        .replace("/run/secrets/feed", &secret.display().to_string());
    let c = GatewayConfig::parse(&dir.path().join("gateway.toml"), &text, &env)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(c.verifies());
    assert_eq!(c.public_url.as_deref(), Some("https://api.example.com"));
    assert!(c.tls.is_some());
}

#[test]
fn defaults() {
    let c = parse(&minimal("")).unwrap();
    assert_eq!(c.listen, "127.0.0.1:8443".parse().unwrap());
    assert_eq!(c.stale_feed_limit, Duration::from_secs(60));
    assert_eq!(c.leeway, Duration::from_secs(30));
    assert_eq!(c.connect_timeout, Duration::from_secs(5));
    assert_eq!(c.upstream_timeout, Duration::from_secs(30));
    assert_eq!(c.identity_headers.len(), DEFAULT_IDENTITY_HEADERS.len());
    let feed = c.issuers[0].feed.as_ref().unwrap();
    assert_eq!(feed.client_id, "sa_feed");
    assert_eq!(feed.client_secret, "s3cret-value");
    let r = &c.routes[0];
    assert!(r.verify && !r.strip_prefix && !r.forward_authorization);
    assert_eq!(r.requirement.audiences, ["https://orders.example.com"]);
    assert_eq!(r.upstream.authority.as_str(), "127.0.0.1:9000");
    assert_eq!(r.upstream.base_path, "");
}

#[test]
fn durations_take_units_or_seconds() {
    let c = parse(&minimal(
        "stale_feed_limit = \"2m\"\nleeway = 10\nconnect_timeout = \"500ms\"\nupstream_timeout = \"90\"\n",
    ))
    .unwrap();
    assert_eq!(c.stale_feed_limit, Duration::from_secs(120));
    assert_eq!(c.leeway, Duration::from_secs(10));
    assert_eq!(c.connect_timeout, Duration::from_millis(500));
    assert_eq!(c.upstream_timeout, Duration::from_secs(90));
    let e = error(&minimal("leeway = \"10 parsecs\"\n"));
    assert_eq!(e.key, "leeway");
    assert_eq!(error(&minimal("leeway = \"10m\"\n")).key, "leeway");
}

#[test]
fn unknown_keys_are_errors_that_name_the_line() {
    let e = error(&minimal("listn = \"x\"\n"));
    assert!(e.message.contains("listn"), "{e}");
    assert!(e.to_string().starts_with(FILE), "{e}");
    let e = error(&format!("{}\nretries = 3\n", minimal("")));
    assert!(
        e.message.contains("retries") && e.message.contains("line"),
        "{e}"
    );
    let e = error(&minimal(
        "[tls]\ncert = \"a\"\nkey = \"b\"\nclientca = \"c\"\n",
    ));
    assert!(e.message.contains("clientca"), "{e}");
}

#[test]
fn errors_never_quote_a_secret() {
    // A secret pasted inline under a key that does not exist is not echoed back.
    let text = minimal("").replace(
        "feed_client_secret_env = \"FEED_SECRET\"",
        "feed_client_secret = \"do-not-print-me\"",
    );
    let e = error(&text);
    assert!(!e.to_string().contains("do-not-print-me"), "{e}");
    let c = parse(&minimal("")).unwrap();
    assert!(!format!("{c:?}").contains("s3cret-value"));
}

#[test]
fn feed_credentials_are_required_unless_revocation_is_off() {
    let no_secret = minimal("").replace("feed_client_secret_env = \"FEED_SECRET\"\n", "");
    assert_eq!(error(&no_secret).key, "issuers[0].feed_client_secret_file");
    let no_id = minimal("").replace("feed_client_id = \"sa_feed\"\n", "");
    assert_eq!(error(&no_id).key, "issuers[0].feed_client_id");
    let unset = minimal("").replace("FEED_SECRET", "NOT_SET_ANYWHERE");
    let e = error(&unset);
    assert_eq!(e.key, "issuers[0].feed_client_secret_env");
    let missing_file = minimal("").replace(
        "feed_client_secret_env = \"FEED_SECRET\"",
        "feed_client_secret_file = \"no-such-file\"",
    );
    let e = error(&missing_file);
    assert!(e.message.contains("/etc/warrant/no-such-file"), "{e}");
    let off = format!(
        "listen = \"127.0.0.1:8443\"\n[[issuers]]\nissuer = \"https://id.example.com\"\nrevocation = false\n{ROUTE}"
    );
    assert!(parse(&off).unwrap().issuers[0].feed.is_none());
    let off_with_feed = minimal("").replace("[[issuers]]\n", "[[issuers]]\nrevocation = false\n");
    assert_eq!(error(&off_with_feed).key, "issuers[0].revocation");
}

#[test]
fn issuer_urls_must_be_https_or_loopback() {
    let plain = minimal("").replace(
        "https://id.example.com/t/prod",
        "http://id.example.com/t/prod",
    );
    assert_eq!(error(&plain).key, "issuers[0].issuer");
    let local = minimal("").replace(
        "https://id.example.com/t/prod",
        "http://127.0.0.1:8080/t/prod",
    );
    assert!(parse(&local).is_ok());
    let twice = format!("{}{ISSUER}", minimal(""));
    assert_eq!(error(&twice).key, "issuers[1].issuer");
}

#[test]
fn a_verified_route_needs_an_issuer_and_an_audience() {
    let no_issuer = format!("listen = \"127.0.0.1:8443\"\n{ROUTE}");
    assert_eq!(error(&no_issuer).key, "issuers");
    let no_audience = minimal("").replace("audience = \"https://orders.example.com\"\n", "");
    assert_eq!(error(&no_audience).key, "routes[0].audience");
    let empty = minimal("").replace("\"https://orders.example.com\"", "[]");
    assert_eq!(error(&empty).key, "routes[0].audience");
    let public = "listen = \"127.0.0.1:8443\"\n[[routes]]\nname = \"p\"\npath_prefix = \"/\"\n\
                  upstream = \"http://127.0.0.1:9000\"\nverify = false\n";
    assert!(!parse(public).unwrap().verifies());
    let pointless = format!("{public}scopes_all = [\"a\"]\n");
    assert_eq!(error(&pointless).key, "routes[0].verify");
}

#[test]
fn routes_are_validated() {
    let twice = format!("{}{ROUTE}", minimal(""));
    assert_eq!(error(&twice).key, "routes[1].name");
    let same_place = format!(
        "{}{}",
        minimal(""),
        ROUTE.replace("\"orders\"", "\"other\"")
    );
    assert_eq!(error(&same_place).key, "routes[1].path_prefix");
    let relative = minimal("").replace("\"/orders\"", "\"orders\"");
    assert_eq!(error(&relative).key, "routes[0].path_prefix");
    // Requests are matched on their canonical path: a prefix no canonical path can have is an
    // error, not a route that silently never matches.
    for bad in [
        "/%6Frders",
        "/a/../orders",
        "/./orders",
        "//orders",
        "/orders;v=1",
        "/a%2Fb",
        "/a\\\\b",
        "/a%zz",
    ] {
        let text = minimal("").replace("\"/orders\"", &format!("\"{bad}\""));
        assert_eq!(error(&text).key, "routes[0].path_prefix", "{bad}");
    }
    for bad in [
        "https://127.0.0.1:9000",
        "127.0.0.1:9000",
        "http://127.0.0.1:9000/?a=b",
        "ftp://x",
    ] {
        let text = minimal("").replace("http://127.0.0.1:9000", bad);
        assert_eq!(error(&text).key, "routes[0].upstream", "{bad}");
    }
    let port = minimal("").replace(
        "[[routes]]\n",
        "[[routes]]\nhost = \"api.example.com:443\"\n",
    );
    assert_eq!(error(&port).key, "routes[0].host");
    let bad_scope = minimal("").replace("[[routes]]\n", "[[routes]]\nscopes_all = [\"a b\"]\n");
    assert_eq!(error(&bad_scope).key, "routes[0].scopes_all");
}

#[test]
fn route_details() {
    let text = minimal("").replace(
        "[[routes]]\n",
        "[[routes]]\nhost = \"API.Example.com\"\nstrip_prefix = true\n\
         claims = { tenant = \"prod\", client_id = [\"sa_a\", \"sa_b\"], \"act.sub\" = \"sa_x\", level = 3, nested = { deep = true } }\n",
    )
    .replace("\"/orders\"", "\"/orders/\"")
    .replace("audience = \"https://orders.example.com\"", "audience = [\"a\", \"b\"]");
    let c = parse(&text).unwrap();
    let r = &c.routes[0];
    assert_eq!(r.host.as_deref(), Some("api.example.com"));
    let dot =
        parse(&minimal("").replace("[[routes]]\n", "[[routes]]\nhost = \"API.example.com.\"\n"))
            .unwrap();
    assert_eq!(dot.routes[0].host.as_deref(), Some("api.example.com"));
    assert_eq!(r.path_prefix, "/orders");
    assert!(r.strip_prefix);
    assert_eq!(r.requirement.audiences, ["a", "b"]);
    let claims: Vec<(&str, &Vec<Value>)> = r
        .requirement
        .claims
        .iter()
        .map(|c| (c.claim.as_str(), &c.one_of))
        .collect();
    assert_eq!(
        claims,
        [
            ("act.sub", &vec![Value::from("sa_x")]),
            ("client_id", &vec![Value::from("sa_a"), Value::from("sa_b")]),
            ("level", &vec![Value::from(3)]),
            ("nested.deep", &vec![Value::from(true)]),
            ("tenant", &vec![Value::from("prod")]),
        ]
    );
    let bad_claim = minimal("").replace("[[routes]]\n", "[[routes]]\nclaims = { tenant = [] }\n");
    assert!(error(&bad_claim).key.starts_with("routes[0].claims"));
}

#[test]
fn identity_headers_replace_the_defaults() {
    let c = parse(&minimal(
        "[identity_headers]\n\"X-Caller\" = \"sub\"\n\"x-actor\" = \"act.sub\"\n",
    ))
    .unwrap();
    let names: Vec<(&str, &str)> = c
        .identity_headers
        .iter()
        .map(|h| (h.name.as_str(), h.claim.as_str()))
        .collect();
    assert_eq!(names, [("x-caller", "sub"), ("x-actor", "act.sub")]);
    for bad in [
        "\"authorization\" = \"sub\"",
        "\"x forwarded\" = \"sub\"",
        "\"x-a\" = \"\"",
        "\"proxy-x\" = \"sub\"",
    ] {
        let e = error(&minimal(&format!("[identity_headers]\n{bad}\n")));
        assert!(e.key.starts_with("identity_headers."), "{bad}: {e}");
    }
}

#[test]
fn addresses_and_public_url() {
    assert_eq!(
        error(&minimal("").replace("127.0.0.1:8443", "localhost")).key,
        "listen"
    );
    assert_eq!(
        error(&minimal("metrics_listen = \"9464\"\n")).key,
        "metrics_listen"
    );
    let c = parse(&minimal("public_url = \"https://API.example.com/\"\n")).unwrap();
    assert_eq!(c.public_url.as_deref(), Some("https://api.example.com"));
    for bad in ["api.example.com", "https://api.example.com/base", "ftp://x"] {
        let e = error(&minimal(&format!("public_url = \"{bad}\"\n")));
        assert_eq!(e.key, "public_url", "{bad}");
    }
}

#[test]
fn relative_paths_are_taken_from_the_file_directory() {
    let c = parse(&minimal(
        "[tls]\ncert = \"gw.pem\"\nkey = \"/abs/key.pem\"\n",
    ))
    .unwrap();
    let tls = c.tls.unwrap();
    assert_eq!(tls.cert, Path::new("/etc/warrant/gw.pem"));
    assert_eq!(tls.key, Path::new("/abs/key.pem"));
}

#[test]
fn verifier_settings_compare_what_the_verifier_is_built_from() {
    let a = parse(&minimal("")).unwrap();
    let b = parse(&minimal("upstream_timeout = \"5s\"\n").replace("/orders", "/other")).unwrap();
    assert_eq!(a.verifier_settings(), b.verifier_settings());
    let c = parse(&minimal("leeway = \"5s\"\n")).unwrap();
    assert_ne!(a.verifier_settings(), c.verifier_settings());
}
