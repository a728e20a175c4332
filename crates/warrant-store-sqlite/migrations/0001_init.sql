-- Warrant schema v1 (SQLite). Times are integer milliseconds since the Unix epoch, UTC.

CREATE TABLE keyring (
    purpose     TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    wrapped     BLOB    NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (purpose, version)
);

-- Deleted tenants keep their row: a name is never reused (verifiers may cache its issuer).
CREATE TABLE tenants (
    name        TEXT    PRIMARY KEY,
    signing_alg TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    revision    INTEGER NOT NULL,
    deleted_at  INTEGER
);

-- Deleted accounts keep their row: an id is never reused; a live name is unique per tenant.
CREATE TABLE service_accounts (
    id               TEXT    PRIMARY KEY,
    tenant           TEXT    NOT NULL REFERENCES tenants (name),
    name             TEXT    NOT NULL,
    description      TEXT    NOT NULL,
    enabled          INTEGER NOT NULL,
    default_audience TEXT,
    grants           TEXT    NOT NULL, -- JSON [{"audience","scopes":[…]}]
    default_lifetime INTEGER NOT NULL, -- seconds
    max_lifetime     INTEGER NOT NULL, -- seconds
    claims           TEXT    NOT NULL, -- JSON object
    auth_methods     TEXT    NOT NULL, -- JSON array of method names
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    revision         INTEGER NOT NULL,
    deleted_at       INTEGER
);
CREATE UNIQUE INDEX service_accounts_live_name
    ON service_accounts (tenant, name) WHERE deleted_at IS NULL;
CREATE INDEX service_accounts_tenant ON service_accounts (tenant, id);

-- Only the HMAC of a secret is stored, with the hashing-key version that made it.
CREATE TABLE secrets (
    account_id   TEXT    NOT NULL REFERENCES service_accounts (id),
    name         TEXT    NOT NULL,
    hash         BLOB    NOT NULL,
    key_version  INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    last_used_at INTEGER,
    revoked_at   INTEGER
);
CREATE UNIQUE INDEX secrets_live_name ON secrets (account_id, name) WHERE revoked_at IS NULL;

-- The private key is AES-256-GCM-wrapped under the master key's key-encryption key.
CREATE TABLE signing_keys (
    kid             TEXT    PRIMARY KEY,
    tenant          TEXT    NOT NULL REFERENCES tenants (name),
    alg             TEXT    NOT NULL,
    private_wrapped BLOB    NOT NULL,
    created_at      INTEGER NOT NULL,
    activates_at    INTEGER NOT NULL,
    retires_at      INTEGER,
    removed_at      INTEGER
);
CREATE INDEX signing_keys_tenant ON signing_keys (tenant, activates_at);
