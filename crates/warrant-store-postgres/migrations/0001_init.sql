-- Warrant schema v1 (PostgreSQL). Times are BIGINT milliseconds since the Unix epoch, UTC.
-- Names and ids are compared and ordered in byte order (COLLATE "C"), whatever the database's
-- default collation, so that listings and cursors agree with the SQLite store.

CREATE TABLE keyring (
    purpose     TEXT COLLATE "C" NOT NULL,
    version     BIGINT           NOT NULL,
    wrapped     BYTEA            NOT NULL,
    created_at  BIGINT           NOT NULL,
    PRIMARY KEY (purpose, version)
);

-- Deleted tenants keep their row: a name is never reused (verifiers may cache its issuer).
CREATE TABLE tenants (
    name        TEXT COLLATE "C" PRIMARY KEY,
    signing_alg TEXT             NOT NULL,
    created_at  BIGINT           NOT NULL,
    updated_at  BIGINT           NOT NULL,
    revision    BIGINT           NOT NULL,
    deleted_at  BIGINT
);

-- Deleted accounts keep their row: an id is never reused; a live name is unique per tenant.
CREATE TABLE service_accounts (
    id               TEXT COLLATE "C" PRIMARY KEY,
    tenant           TEXT COLLATE "C" NOT NULL REFERENCES tenants (name),
    name             TEXT COLLATE "C" NOT NULL,
    description      TEXT             NOT NULL,
    enabled          BOOLEAN          NOT NULL,
    default_audience TEXT,
    grants           TEXT             NOT NULL, -- JSON [{"audience","scopes":[…]}] (store::codec)
    default_lifetime BIGINT           NOT NULL, -- seconds
    max_lifetime     BIGINT           NOT NULL, -- seconds
    claims           TEXT             NOT NULL, -- JSON object (store::codec)
    auth_methods     TEXT             NOT NULL, -- JSON array of method names (store::codec)
    created_at       BIGINT           NOT NULL,
    updated_at       BIGINT           NOT NULL,
    revision         BIGINT           NOT NULL,
    deleted_at       BIGINT
);
CREATE UNIQUE INDEX service_accounts_live_name
    ON service_accounts (tenant, name) WHERE deleted_at IS NULL;
CREATE INDEX service_accounts_tenant ON service_accounts (tenant, id);

-- Only the HMAC of a secret is stored, with the hashing-key version that made it.
CREATE TABLE secrets (
    account_id   TEXT COLLATE "C" NOT NULL REFERENCES service_accounts (id),
    name         TEXT COLLATE "C" NOT NULL,
    hash         BYTEA            NOT NULL,
    key_version  BIGINT           NOT NULL,
    created_at   BIGINT           NOT NULL,
    expires_at   BIGINT,
    last_used_at BIGINT,
    revoked_at   BIGINT
);
CREATE UNIQUE INDEX secrets_live_name ON secrets (account_id, name) WHERE revoked_at IS NULL;

-- The private key is AES-256-GCM-wrapped under the master key's key-encryption key.
CREATE TABLE signing_keys (
    kid             TEXT COLLATE "C" PRIMARY KEY,
    tenant          TEXT COLLATE "C" NOT NULL REFERENCES tenants (name),
    alg             TEXT             NOT NULL,
    private_wrapped BYTEA            NOT NULL,
    created_at      BIGINT           NOT NULL,
    activates_at    BIGINT           NOT NULL,
    retires_at      BIGINT,
    removed_at      BIGINT
);
CREATE INDEX signing_keys_tenant ON signing_keys (tenant, activates_at);
