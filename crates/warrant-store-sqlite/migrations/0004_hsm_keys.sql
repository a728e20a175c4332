-- Signing keys held in an HSM (docs/hsm.md). A tenant's key source says where its new keys are
-- made: 'software' (wrapped under the master key) or 'hsm:<module>' (a configured module's
-- name; libraries, tokens and PINs stay server configuration). An HSM key's row has an empty
-- private_wrapped and names its module and CKA_LABEL instead.
ALTER TABLE tenants ADD COLUMN key_source TEXT NOT NULL DEFAULT 'software';
ALTER TABLE signing_keys ADD COLUMN hsm_module TEXT;
ALTER TABLE signing_keys ADD COLUMN hsm_label TEXT;
