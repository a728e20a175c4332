//! `audit` tests.
