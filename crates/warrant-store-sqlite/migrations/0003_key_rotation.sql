-- Scheduled signing-key rotation (docs/key-rotation.md): seconds between activations of a
-- tenant's successive keys; NULL = manual rotation only.
ALTER TABLE tenants ADD COLUMN key_rotation_period BIGINT;
