//! Warrant's Store on SQLite: the embedded default for one machine.
//!
//! It owns its SQL, its migrations (`migrations/`, applied in order and recorded in
//! `schema_migrations`) and checked row conversions into core types. The database runs in WAL
//! mode with a busy timeout and `synchronous=FULL`, so concurrent readers never block the writer
//! and a committed change survives a crash. What it is not: a cache. The server reads accounts
//! and keys into memory at start and after each change; the store is read on writes only.

mod apis;
mod audit;
mod backup;
mod migrate;
mod revocations;
mod rows;
mod store;
mod tenant_table;
mod trusts;

pub use migrate::MIGRATIONS;
pub use store::SqliteStore;
