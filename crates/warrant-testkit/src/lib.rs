//! Test-only support for Warrant: a hand-moved [`FixedClock`], builders of valid records, and
//! the store contract suite that every [`Store`] backend runs.
//!
//! A store crate runs the whole suite with one line in a test file:
//!
//! ```ignore
//! async fn fresh_store() -> MyFixture { /* a new, empty store; AsRef<dyn Store> */ }
//! warrant_testkit::store_contract_tests!(fresh_store());
//! ```
//!
//! That expands to one `#[tokio::test]` per check in [`contract`], each on its own fresh store
//! (migrated by the macro), so a failure names the broken rule. A few checks (moving data from
//! one store to another) take two fresh stores: the macro makes both with the same expression.
//! The calling crate needs `tokio` (with `macros` and `rt`) as a dev-dependency.

// This crate only runs inside tests: failing loudly with unwrap/expect/panic is how a check
// reports a broken rule, so the workspace's deny of those lints does not apply here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod audit_tamper;
mod builders;
mod clock;
pub mod contract;
pub mod contract_apis;
pub mod contract_keys;
pub mod contract_log;
pub mod contract_trusts;
pub mod softhsm;

use std::future::Future;

pub use builders::{
    API_AUDIENCE, T0, account, account_id_at, account_name, api, audience, fake_hash, grant,
    keyring_entry, scopes, secret_name, secret_record, signing_key_record, tenant, tenant_name,
};
pub use clock::FixedClock;
use warrant_core::Store;

/// Migrates a fresh store before a check (used by the macros; panics on failure).
#[doc(hidden)]
pub async fn __prepare(store: &dyn Store) {
    if let Err(e) = store.migrate().await {
        panic!("migrate on a fresh store failed: {e:?}");
    }
}

/// Calls `$crate::$inner! { ($($args)*) module { check, … ; pair_check, … } … }` with the name
/// of every check in [`contract`] and [`contract_log`]: the one list both runners share. In each
/// module, checks before the `;` take one fresh store, checks after it two.
#[doc(hidden)]
#[macro_export]
macro_rules! __with_store_checks {
    ($inner:ident ($($args:tt)*)) => {
        $crate::$inner! { ($($args)*)
            contract {
                migrate_is_idempotent,
                fresh_store_is_empty,
                keyring_insert_and_list,
                keyring_duplicate_is_conflict,
                rewrap_replaces_every_wrapped_key_atomically,
                master_key_rotation_rewraps_and_adds_versions,
                tenant_create_and_get,
                tenant_duplicate_name_is_conflict,
                tenant_list_orders_by_name_with_cursor_and_limit,
                tenant_update_persists_alg_and_bumps_revision,
                tenant_update_stale_revision_is_mismatch,
                tenant_update_missing_is_not_found,
                tenant_delete_hides_it,
                tenant_deleted_name_stays_taken,
                tenant_delete_hides_accounts_secrets_and_keys,
                account_create_and_get,
                account_round_trips_every_field,
                account_list_orders_by_id_with_cursor_and_limit,
                account_duplicate_name_or_id_is_conflict,
                account_name_reusable_after_delete,
                account_is_invisible_to_other_tenants,
                account_update_persists_fields_and_bumps_revision,
                account_update_revision_comes_from_expected,
                account_update_stale_revision_is_mismatch,
                account_update_missing_is_not_found,
                account_delete_hides_it_and_its_secrets,
                all_accounts_lists_live_accounts_of_live_tenants,
                secret_add_and_list_ordered_by_name,
                secret_duplicate_live_name_is_conflict,
                secret_revoke_hides_it_and_frees_the_name,
                all_secrets_lists_live_secrets_of_live_accounts,
                touch_secrets_sets_last_used_and_never_moves_back,
                touch_secrets_tolerates_revoked_and_unknown,
                signing_key_round_trips_every_field,
                signing_keys_exclude_removed_and_deleted_tenants,
                signing_keys_ordered_by_activation,
                tenant_signing_keys_newest_first,
                migrations_all_applied_after_migrate,
                import_refuses_a_non_empty_store,
                used_jtis_are_single_use_until_they_expire,
                tenant_update_persists_token_endpoint_audience,
                ;
                export_import_round_trip,
            }
            contract_log {
                revocation_cursors_increase_and_feed_pages,
                revocation_feed_is_per_tenant,
                revocation_head_survives_pruning_the_highest,
                revocation_prune_removes_only_a_prefix,
                revocations_after_spans_tenants,
                concurrent_revocations_get_increasing_cursors,
                audit_append_inserts_records_and_upserts_heads,
                audit_duplicate_seq_is_conflict_and_atomic,
                audit_query_filters_and_pages,
                audit_segment_records_page_by_seq,
                audit_checkpoints_add_list_and_conflict,
                audit_prune_deletes_through_seq_and_sets_anchor,
                ;
                import_refuses_a_store_holding_only_log_rows,
            }
            contract_keys {
                tenant_key_rotation_period_round_trips,
                signing_key_times_update_and_not_found,
                rotate_signing_keys_is_one_transaction,
                ;
            }
            contract_apis {
                api_create_get_and_round_trip_every_field,
                api_duplicate_live_name_or_audience_is_conflict,
                api_list_orders_by_id_with_cursor_and_limit,
                api_update_bumps_revision_and_checks_expected,
                api_delete_hides_it_and_frees_name_and_audience,
                api_is_invisible_to_other_tenants_and_dies_with_its_tenant,
                ;
                apis_export_import_round_trip,
            }
            contract_trusts {
                trust_create_get_round_trip_and_conflicts,
                trust_list_orders_by_id_with_cursor_and_limit,
                trust_update_bumps_revision_and_checks_expected,
                trust_delete_frees_name_and_dies_with_its_tenant,
                ;
                trusts_export_import_round_trip,
            }
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __store_contract_tests_expand {
    (($make:expr) $($module:ident { $($check:ident),* $(,)? ; $($pair:ident),* $(,)? })*) => {
        $($(
            #[::tokio::test]
            async fn $check() {
                let fixture = $make.await;
                let store: &dyn $crate::__reexport::Store = ::core::convert::AsRef::as_ref(&fixture);
                $crate::__prepare(store).await;
                $crate::$module::$check(store).await;
            }
        )*)*
        $($(
            #[::tokio::test]
            async fn $pair() {
                let fixture = $make.await;
                let other_fixture = $make.await;
                let store: &dyn $crate::__reexport::Store = ::core::convert::AsRef::as_ref(&fixture);
                let other: &dyn $crate::__reexport::Store =
                    ::core::convert::AsRef::as_ref(&other_fixture);
                $crate::__prepare(store).await;
                $crate::__prepare(other).await;
                $crate::$module::$pair(store, other).await;
            }
        )*)*
    };
}

/// Expands to one `#[tokio::test]` per store contract check.
///
/// `$make` is an expression evaluated once per test (twice for the checks that take two stores)
/// that yields a future of a fresh, empty store handle: anything that is `AsRef<dyn Store>` (an `Arc<dyn Store>`, or a fixture struct
/// that also keeps a temporary directory alive). The macro migrates it before each check.
#[macro_export]
macro_rules! store_contract_tests {
    ($make:expr $(,)?) => {
        $crate::__with_store_checks! { __store_contract_tests_expand ($make) }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __run_store_contract_expand {
    (($make:ident) $($module:ident { $($check:ident),* $(,)? ; $($pair:ident),* $(,)? })*) => {
        $($(
            {
                let fixture = $make().await;
                let store: &dyn $crate::__reexport::Store = ::core::convert::AsRef::as_ref(&fixture);
                $crate::__prepare(store).await;
                $crate::$module::$check(store).await;
            }
        )*)*
        $($(
            {
                let fixture = $make().await;
                let other_fixture = $make().await;
                let store: &dyn $crate::__reexport::Store = ::core::convert::AsRef::as_ref(&fixture);
                let other: &dyn $crate::__reexport::Store =
                    ::core::convert::AsRef::as_ref(&other_fixture);
                $crate::__prepare(store).await;
                $crate::__prepare(other).await;
                $crate::$module::$pair(store, other).await;
            }
        )*)*
    };
}

/// Runs every store contract check in one test, each on a fresh store from `make` (two for the
/// checks that move data between stores; migrated here). Prefer [`store_contract_tests!`], which reports each check as its own test.
pub async fn run_store_contract<F, Fut, H>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = H>,
    H: AsRef<dyn Store>,
{
    __with_store_checks! { __run_store_contract_expand (make) }
}

#[doc(hidden)]
pub mod __reexport {
    pub use warrant_core::Store;
}
