//! `introspection` tests.
