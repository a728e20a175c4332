//! `revocation` tests.
