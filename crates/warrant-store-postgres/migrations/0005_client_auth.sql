-- Secretless and sender-constrained clients (issue 6). An account's public credentials
-- (private_key_jwt keys or jwks_uri, tls_client_auth rule, self-signed certificate
-- thumbprints, DPoP requirement) are one JSON object (store::codec::credentials_to_json).
ALTER TABLE service_accounts ADD COLUMN credentials TEXT NOT NULL DEFAULT '{}';
-- Whether client assertions may name the token endpoint as their audience (rfc7523bis opt-in).
ALTER TABLE tenants ADD COLUMN token_endpoint_audience BOOLEAN NOT NULL DEFAULT FALSE;
-- Single-use identifiers (client assertion and DPoP proof `jti`s) across every replica: a row
-- lives until the identifier could no longer be accepted anyway; an expired row may be reused.
CREATE TABLE used_jtis (
    tenant      TEXT   NOT NULL,
    kind        TEXT   NOT NULL, -- 'client_assertion' | 'dpop'
    jti         TEXT   NOT NULL, -- as the caller composes it (client id and jti for assertions)
    expires_at  BIGINT NOT NULL, -- ms
    PRIMARY KEY (tenant, kind, jti)
);
CREATE INDEX used_jtis_expiry ON used_jtis (expires_at);
