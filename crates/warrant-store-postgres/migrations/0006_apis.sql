-- Registered APIs (issue 8): an audience, the scopes it defines, the account that owns it.
-- Deleted APIs keep their row: an id is never reused; a live name and a live audience are each
-- unique per tenant.
CREATE TABLE apis (
    id          TEXT COLLATE "C" PRIMARY KEY,
    tenant      TEXT COLLATE "C" NOT NULL REFERENCES tenants (name),
    name        TEXT COLLATE "C" NOT NULL,
    audience    TEXT COLLATE "C" NOT NULL,
    scopes      TEXT    NOT NULL, -- JSON array of scope tokens (store::codec)
    owner       TEXT COLLATE "C" NOT NULL REFERENCES service_accounts (id),
    description TEXT,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL,
    revision    BIGINT  NOT NULL,
    deleted_at  BIGINT
);
CREATE UNIQUE INDEX apis_live_name ON apis (tenant, name) WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX apis_live_audience ON apis (tenant, audience) WHERE deleted_at IS NULL;
CREATE INDEX apis_tenant ON apis (tenant, id);
