//! Verifying a tenant's audit log: online (with the audit keys) or offline (an export, with
//! the public keys its checkpoints need).
