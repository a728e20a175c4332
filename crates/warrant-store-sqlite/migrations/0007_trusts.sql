-- Federation trusts (issue 8, docs/federation.md): an external issuer's tokens may act as an
-- account under the conditions of `policy` (warrant-core federation::TrustPolicy as JSON, its
-- `account` the same id as the column). Deleted trusts keep their row: an id is never reused;
-- a live name is unique per tenant.
CREATE TABLE trusts (
    id          TEXT    PRIMARY KEY,
    tenant      TEXT    NOT NULL REFERENCES tenants (name),
    name        TEXT    NOT NULL,
    issuer      TEXT    NOT NULL,
    account     TEXT    NOT NULL REFERENCES service_accounts (id),
    policy      TEXT    NOT NULL, -- JSON (store::codec::trust_policy_to_json)
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    revision    INTEGER NOT NULL,
    deleted_at  INTEGER
);
CREATE UNIQUE INDEX trusts_live_name ON trusts (tenant, name) WHERE deleted_at IS NULL;
CREATE INDEX trusts_tenant ON trusts (tenant, id);
