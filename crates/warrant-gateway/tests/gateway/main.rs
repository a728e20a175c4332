//! The gateway in process, against a fake issuer (discovery, JWKS, revocation feed) and an
//! echoing upstream, both on 127.0.0.1:0.
//!
//! - `support`: the fake issuer, the upstream, and a harness that writes a configuration and
//!   starts the gateway;
//! - `paths`: path canonicalisation, hosts, methods and trust headers (raw requests);
//! - `proxy`: tokens accepted and refused, identity headers, metadata, reload, metrics;
//! - `tls`: HTTPS, and certificate-bound tokens (`cnf.x5t#S256`).

// Test helpers outside #[test] functions: a failed unwrap is a failed test with a location.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod paths;
mod proxy;
mod support;
mod tls;
