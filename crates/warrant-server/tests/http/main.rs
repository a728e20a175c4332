//! HTTP tests of the server, through `app(state)` on a real SQLite database in a temp dir and an
//! injected clock. Every issued token is checked by our verifier and by an independent JOSE
//! implementation (the `jsonwebtoken` crate on its RustCrypto backend).
//!
//! Modules: `harness` (the test environment), `discovery` (metadata and JWKS), `token` (the
//! token endpoint: success, policy, every bad input), `credentials` (secret rotation, expiry,
//! disable/delete, tenant isolation), `limits` (rate limits), `admin` (the admin API), `apis` (registered APIs and the grant rule), `trusts` (federation trusts and `trusts/test`),
//! `algorithms` (RS256/PS256 tenants beside ES256/EdDSA; changing a tenant's algorithm),
//! `restart` (state survives a restart), `introspection` and `revocation` (RFC 7662, RFC 7009,
//! the feed and its stream), `audit` (records, query, verify, export), `audit_writer` (group commit under load, no token
//! without its record, aggregation of refusals), `rotation` (the signing-key lifecycle on a moved
//! clock: publish before use, keep until expiry, `--now`, revocation, scheduled rotation), `tls` (HTTPS
//! on the accept loop, client certificates from the handshake and from trusted proxies).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod admin;
mod algorithms;
mod apis;
mod audit;
mod audit_writer;
mod credentials;
mod discovery;
mod dpop;
mod exchange;
mod exchange_limits;
mod harness;
mod introspection;
mod limits;
mod mtls;
mod outbound;
mod private_key_jwt;
mod restart;
mod revocation;
mod rotation;
mod tls;
mod token;
mod trusts;
