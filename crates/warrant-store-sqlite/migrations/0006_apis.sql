-- Registered APIs (issue 8): an audience, the scopes it defines, the account that owns it.
-- Deleted APIs keep their row: an id is never reused; a live name and a live audience are each
-- unique per tenant.
CREATE TABLE apis (
    id          TEXT    PRIMARY KEY,
    tenant      TEXT    NOT NULL REFERENCES tenants (name),
    name        TEXT    NOT NULL,
    audience    TEXT    NOT NULL,
    scopes      TEXT    NOT NULL, -- JSON array of scope tokens (store::codec)
    owner       TEXT    NOT NULL REFERENCES service_accounts (id),
    description TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    revision    INTEGER NOT NULL,
    deleted_at  INTEGER
);
CREATE UNIQUE INDEX apis_live_name ON apis (tenant, name) WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX apis_live_audience ON apis (tenant, audience) WHERE deleted_at IS NULL;
CREATE INDEX apis_tenant ON apis (tenant, id);
