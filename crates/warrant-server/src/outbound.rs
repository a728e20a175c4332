//! Outbound HTTPS under one server-wide policy (DESIGN.md, "Outbound requests"): the only
//! requests Warrant makes on its own, to fetch a JWKS from a URL an account or a trust names.
//!
//! A URL registered by a tenant admin must not become a way to probe the network Warrant sits
//! in (server-side request forgery), so every request is:
//!
//! - `https` only, with no credentials in the URL;
//! - sent only to addresses that are public, or inside `outbound.allow_networks`. The host is
//!   resolved here ([`tokio::net::lookup_host`]) and the connection goes to the addresses that
//!   passed the check: the check and the connection use the same answer, so a DNS name that
//!   re-binds to `127.0.0.1` between the two cannot slip through. Literal IP hosts are
//!   checked before the request. Unspecified, multicast and broadcast addresses are refused
//!   even when an allowed network covers them;
//! - never redirected (a 3xx is an error), never proxied;
//! - at most [`MAX_BODY`] bytes of body (`Content-Length` checked first, then the stream cut);
//! - done within the policy's timeout (5 s), resolution and body included.
//!
//! Server certificates are verified against the platform's roots plus `outbound.ca_file`.
//! Fetched bodies are never logged or echoed; errors name the host and the cause, for
//! operators.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use warrant_core::client_auth::jwks_cache::{FetchError, JwksFetcher};

/// The largest body read from an outbound request.
pub const MAX_BODY: usize = 64 * 1024;

/// The default time limit of one outbound request, resolution and body included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// An IP network in CIDR notation (`10.0.0.0/8`, `fd00::/8`; a bare address is a single host).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    /// Whether `ip` is inside this network (an IPv4-mapped IPv6 address counts as its IPv4
    /// address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Network {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not a network like 10.0.0.0/8 or fd00::/8");
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) if p.bytes().all(|b| b.is_ascii_digit()) => p.parse().map_err(|_| bad())?,
            Some(_) => return Err(bad()),
        };
        if prefix > max {
            return Err(bad());
        }
        Ok(Network { addr, prefix })
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// The outbound policy (configuration `outbound.*`).
#[derive(Clone)]
pub struct OutboundPolicy {
    /// Non-public networks that may be reached anyway (`outbound.allow_networks`; none by
    /// default). Tests allow `127.0.0.0/8`.
    pub allow_networks: Vec<Network>,
    /// Extra trusted roots, PEM (the contents of `outbound.ca_file`), added to the platform's.
    pub ca_pem: Option<Vec<u8>>,
    /// Time limit of one request, resolution and body included (`outbound.timeout`, 5 s).
    pub timeout: Duration,
}

impl Default for OutboundPolicy {
    fn default() -> Self {
        OutboundPolicy {
            allow_networks: Vec::new(),
            ca_pem: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

impl fmt::Debug for OutboundPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutboundPolicy")
            .field("allow_networks", &self.allow_networks)
            .field("ca_pem", &self.ca_pem.as_ref().map(|_| "<pem>"))
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl OutboundPolicy {
    /// Whether a connection to `ip` is allowed.
    pub fn permits(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        if ip.is_unspecified() || ip.is_multicast() || ip == IpAddr::V4(Ipv4Addr::BROADCAST) {
            return false;
        }
        is_public(ip) || self.allow_networks.iter().any(|n| n.contains(ip))
    }
}

/// Whether `ip` is a globally reachable unicast address: not loopback, private, shared
/// (CGNAT), link-local, unique-local, documentation, benchmarking, reserved or multicast, and
/// not an IPv6 form (mapped, NAT64, 6to4) of such an IPv4 address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => is_public_v4(a),
        IpAddr::V6(a) => is_public_v6(a),
    }
}

fn is_public_v4(a: Ipv4Addr) -> bool {
    let o = a.octets();
    let reserved = o[0] == 0 // "this network"
        || o[0] == 10
        || o[0] == 127
        || (o[0] == 100 && (o[1] & 0xc0) == 64) // shared address space (CGNAT), RFC 6598
        || (o[0] == 169 && o[1] == 254)
        || (o[0] == 172 && (o[1] & 0xf0) == 16)
        || (o[0] == 192 && o[1] == 168)
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF protocol assignments
        || (o[0] == 192 && o[1] == 0 && o[2] == 2) // documentation
        || (o[0] == 198 && o[1] == 51 && o[2] == 100)
        || (o[0] == 203 && o[1] == 0 && o[2] == 113)
        || (o[0] == 198 && (o[1] & 0xfe) == 18) // benchmarking
        || o[0] >= 224; // multicast, reserved, broadcast
    !reserved
}

fn is_public_v6(a: Ipv6Addr) -> bool {
    if let Some(v4) = a.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let s = a.segments();
    let low_v4 = || {
        let [.., x, y] = s;
        Ipv4Addr::from((u32::from(x) << 16) | u32::from(y))
    };
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        // NAT64 (RFC 6052): the IPv4 address it reaches
        return is_public_v4(low_v4());
    }
    if s[..3] == [0x64, 0xff9b, 1] {
        // Local-use NAT64 (RFC 8215, 64:ff9b:1::/48): translated inside this network, so never
        // public whatever the embedded address.
        return false;
    }
    if s[0] == 0x2002 {
        // 6to4 (RFC 3056): the IPv4 address in bits 16..48
        return is_public_v4(Ipv4Addr::from((u32::from(s[1]) << 16) | u32::from(s[2])));
    }
    let reserved = s[..6] == [0; 6] // ::, ::1 and the deprecated IPv4-compatible ::/96
        || a.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local, RFC 4193
        || (s[0] & 0xffc0) == 0xfe80 // link-local
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x2001 && s[1] < 0x0200) // IETF protocol assignments, Teredo among them
        || s[..4] == [0x0100, 0, 0, 0]; // discard-only
    !reserved
}

/// A DNS resolver that returns only the addresses the policy permits: reqwest connects to
/// what this returns, so the check and the connection see the same answer.
struct PolicyResolver {
    policy: Arc<OutboundPolicy>,
}

impl reqwest::dns::Resolve for PolicyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = Arc::clone(&self.policy);
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|a| policy.permits(a.ip()))
                .collect();
            if allowed.is_empty() {
                let msg = match found.first() {
                    Some(a) => format!(
                        "{host} resolves to {} (not allowed by the outbound policy)",
                        a.ip()
                    ),
                    None => format!("{host} has no address"),
                };
                return Err(msg.into());
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// [`JwksFetcher`] over HTTPS, under an [`OutboundPolicy`].
#[derive(Debug, Clone)]
pub struct HttpJwksFetcher {
    client: reqwest::Client,
    policy: Arc<OutboundPolicy>,
}

impl HttpJwksFetcher {
    /// A client for `policy`. Fails when `ca_pem` holds no usable certificate.
    pub fn new(policy: OutboundPolicy) -> Result<Self, FetchError> {
        let policy = Arc::new(policy);
        let mut builder = reqwest::Client::builder()
            .https_only(true)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(policy.timeout)
            .connect_timeout(policy.timeout)
            .user_agent(concat!("warrant/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(PolicyResolver {
                policy: Arc::clone(&policy),
            });
        if let Some(pem) = &policy.ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| FetchError(format!("outbound.ca_file: {e}")))?;
            if certs.is_empty() {
                return Err(FetchError(
                    "outbound.ca_file: no certificate in the file".into(),
                ));
            }
            builder = builder.tls_certs_merge(certs);
        }
        let client = builder
            .build()
            .map_err(|e| FetchError(format!("outbound client: {}", chain(&e))))?;
        Ok(HttpJwksFetcher { client, policy })
    }

    /// GET `uri` under the policy; the body.
    pub async fn get(&self, uri: &str) -> Result<Vec<u8>, FetchError> {
        let url = reqwest::Url::parse(uri).map_err(|_| FetchError("not a URL".into()))?;
        let host = url.host_str().unwrap_or("").to_owned();
        let fail = |what: String| FetchError(format!("GET https://{host}: {what}"));
        if url.scheme() != "https" {
            return Err(FetchError(format!(
                "{}: only https is fetched",
                url.scheme()
            )));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(fail("credentials in the URL".into()));
        }
        // A literal address is connected to without resolution: check it here.
        if let Ok(ip) = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            && !self.policy.permits(ip)
        {
            return Err(fail(format!("{ip} is not allowed by the outbound policy")));
        }
        match tokio::time::timeout(self.policy.timeout, self.read(url)).await {
            Ok(result) => result.map_err(fail),
            Err(_) => Err(fail(format!("timed out after {:?}", self.policy.timeout))),
        }
    }

    async fn read(&self, url: reqwest::Url) -> Result<Vec<u8>, String> {
        let mut response = self
            .client
            .get(url)
            .header(
                reqwest::header::ACCEPT,
                "application/jwk-set+json, application/json",
            )
            .send()
            .await
            .map_err(|e| chain(&e))?;
        let status = response.status();
        if status.is_redirection() {
            return Err(format!("{status}: redirects are not followed"));
        }
        if !status.is_success() {
            return Err(format!("{status}"));
        }
        if response
            .content_length()
            .is_some_and(|n| n > MAX_BODY as u64)
        {
            return Err(format!("the body is larger than {MAX_BODY} bytes"));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| chain(&e))? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(format!("the body is larger than {MAX_BODY} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

#[async_trait::async_trait]
impl JwksFetcher for HttpJwksFetcher {
    async fn fetch(&self, uri: &str) -> Result<Vec<u8>, FetchError> {
        self.get(uri).await
    }
}

/// An error and its causes on one line (reqwest's own message is only the outermost).
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn private_and_special_addresses_are_not_public() {
        for a in [
            "0.0.0.0",
            "64:ff9b:1::808:808",
            "0.1.2.3",
            "10.1.2.3",
            "127.0.0.1",
            "127.255.255.254",
            "100.64.0.1",
            "100.127.255.255",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "192.0.0.8",
            "192.0.2.1",
            "198.18.0.1",
            "198.51.100.1",
            "203.0.113.1",
            "224.0.0.1",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::127.0.0.1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "2002:7f00:1::",
            "2002:a9fe:a9fe::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "2001:db8::1",
            "2001::1",
            "100::1",
        ] {
            assert!(!is_public(ip(a)), "{a}");
            assert!(!OutboundPolicy::default().permits(ip(a)), "{a}");
        }
        for a in [
            "1.1.1.1",
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.0",
            "172.15.0.1",
            "172.32.0.1",
            "192.169.0.1",
            "2606:4700:4700::1111",
            "2a00:1450::1",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::",
        ] {
            assert!(is_public(ip(a)), "{a}");
        }
    }

    #[test]
    fn allowed_networks() {
        let policy = OutboundPolicy {
            allow_networks: vec!["127.0.0.0/8".parse().unwrap(), "fd00::/8".parse().unwrap()],
            ..OutboundPolicy::default()
        };
        for a in [
            "127.0.0.1",
            "127.9.9.9",
            "::ffff:127.0.0.1",
            "fd00::1",
            "8.8.8.8",
        ] {
            assert!(policy.permits(ip(a)), "{a}");
        }
        for a in ["10.0.0.1", "::1", "fe80::1", "0.0.0.0", "::"] {
            assert!(!policy.permits(ip(a)), "{a}");
        }
        let all = OutboundPolicy {
            allow_networks: vec!["0.0.0.0/0".parse().unwrap()],
            ..OutboundPolicy::default()
        };
        assert!(all.permits(ip("10.0.0.1")));
        // never a destination, even when allowed
        assert!(!all.permits(ip("0.0.0.0")));
        assert!(!all.permits(ip("224.0.0.1")));
        assert!(!all.permits(ip("255.255.255.255")));
    }

    #[test]
    fn networks_parse() {
        let n: Network = "10.0.0.0/8".parse().unwrap();
        assert_eq!(n.to_string(), "10.0.0.0/8");
        assert!(n.contains(ip("10.255.0.1")) && !n.contains(ip("11.0.0.1")));
        let host: Network = "192.168.1.5".parse().unwrap();
        assert!(host.contains(ip("192.168.1.5")) && !host.contains(ip("192.168.1.6")));
        assert!("::1/128".parse::<Network>().unwrap().contains(ip("::1")));
        for bad in [
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/",
            "10.0.0/8",
            "x",
            "10.0.0.0/+8",
            "",
        ] {
            assert!(bad.parse::<Network>().is_err(), "{bad}");
        }
    }
}
