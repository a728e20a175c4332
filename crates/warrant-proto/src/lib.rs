//! Wire types for Warrant: what crosses HTTP, and nothing else.
//!
//! Both the server and the clients (CLI, verifier, gateway) use these types, so a field renamed
//! here is renamed on both sides. Field names are snake_case; times are RFC 3339 UTC strings;
//! durations are integer `*_seconds` (DESIGN.md, "Names and formats").

pub mod admin;
pub mod oauth;
