//! Warrant's Store on PostgreSQL: the shared database for several replicas.
//!
//! It owns its SQL, its migrations (`migrations/`, applied in order and recorded in
//! `schema_migrations`, each in one transaction under a transaction-scoped advisory lock so that
//! replicas starting at once apply a migration exactly once) and checked row conversions into
//! core types. It keeps the same schema as the SQLite store in PostgreSQL's dialect: BIGINT
//! millisecond times, BYTEA blobs, names and ids in byte order (`COLLATE "C"`), and composite
//! fields as the JSON text of `warrant_core::store::codec`, so both stores hold identical values.
//! It connects to the schema named by the connection's `search_path` (the URL's `options`, or
//! [`PostgresStore::connect_with`]).
//!
//! What it is not: a cache, nor a TLS client (it connects over loopback or a trusted network
//! only). The server reads accounts and keys into memory at start and after each change; the
//! store is read on writes only.

mod apis;
mod audit;
mod migrate;
mod revocations;
mod rows;
mod store;
mod tenant_table;
mod trusts;

pub use migrate::MIGRATIONS;
pub use sqlx::postgres::PgConnectOptions;
pub use store::PostgresStore;
