//! Checked conversions from rows to core types.

use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use warrant_core::audit::{AuditCheckpoint, SegmentHead, StoredAuditRecord};
use warrant_core::keyring::{KeyPurpose, KeyringEntry};
use warrant_core::model::{
    Api, KeySource, SecretRecord, ServiceAccount, SigningKeyRecord, Tenant, Trust,
};
use warrant_core::revocation::{RevocationEntry, RevocationKind};
use warrant_core::store::codec;
use warrant_core::{
    AccountId, AccountName, ApiId, ApiName, Audience, SecretName, StoreError, TenantName,
    Timestamp, TrustId, TrustName,
};

use crate::store::backend;

/// `fetch_all`, then the checked conversion of every row: the shape of every list query.
pub(crate) trait FetchRows {
    async fn fetch_rows<'c, T>(
        self,
        db: impl sqlx::SqliteExecutor<'c>,
        map: fn(&SqliteRow) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError>;
}

impl FetchRows for sqlx::query::Query<'_, sqlx::Sqlite, sqlx::sqlite::SqliteArguments> {
    async fn fetch_rows<'c, T>(
        self,
        db: impl sqlx::SqliteExecutor<'c>,
        map: fn(&SqliteRow) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        self.fetch_all(db)
            .await
            .map_err(backend)?
            .iter()
            .map(map)
            .collect()
    }
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("invalid {what}"))
}

fn ts(row: &SqliteRow, col: &str) -> Result<Timestamp, StoreError> {
    Ok(Timestamp::from_millis(
        row.try_get::<i64, _>(col).map_err(backend)?,
    ))
}

fn opt_ts(row: &SqliteRow, col: &str) -> Result<Option<Timestamp>, StoreError> {
    Ok(row
        .try_get::<Option<i64>, _>(col)
        .map_err(backend)?
        .map(Timestamp::from_millis))
}

fn text(row: &SqliteRow, col: &str) -> Result<String, StoreError> {
    row.try_get::<String, _>(col).map_err(backend)
}

fn tenant_name(row: &SqliteRow, col: &str) -> Result<TenantName, StoreError> {
    TenantName::parse(&text(row, col)?).map_err(|_| corrupt("tenant name"))
}

pub(crate) fn tenant(row: &SqliteRow) -> Result<Tenant, StoreError> {
    Ok(Tenant {
        name: tenant_name(row, "name")?,
        signing_alg: codec::alg_from_str(&text(row, "signing_alg")?)?,
        key_rotation_period: row
            .try_get::<Option<i64>, _>("key_rotation_period")
            .map_err(backend)?
            .map(|p| u64::try_from(p).map_err(|_| corrupt("key_rotation_period")))
            .transpose()?,
        key_source: KeySource::from_stored(&text(row, "key_source")?)
            .ok_or_else(|| corrupt("key_source"))?,
        token_endpoint_audience: row
            .try_get::<bool, _>("token_endpoint_audience")
            .map_err(backend)?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
        revision: row.try_get("revision").map_err(backend)?,
    })
}

/// A tenant row with its `deleted_at` (for export).
pub(crate) fn tenant_with_deleted(
    row: &SqliteRow,
) -> Result<(Tenant, Option<Timestamp>), StoreError> {
    Ok((tenant(row)?, opt_ts(row, "deleted_at")?))
}

pub(crate) fn account(row: &SqliteRow) -> Result<ServiceAccount, StoreError> {
    let lifetime = |col: &str| -> Result<u64, StoreError> {
        u64::try_from(row.try_get::<i64, _>(col).map_err(backend)?).map_err(|_| corrupt(col))
    };
    Ok(ServiceAccount {
        id: AccountId::parse(&text(row, "id")?).map_err(|_| corrupt("account id"))?,
        tenant: tenant_name(row, "tenant")?,
        name: AccountName::parse(&text(row, "name")?).map_err(|_| corrupt("account name"))?,
        description: text(row, "description")?,
        enabled: row.try_get::<bool, _>("enabled").map_err(backend)?,
        default_audience: match row
            .try_get::<Option<String>, _>("default_audience")
            .map_err(backend)?
        {
            Some(a) => Some(Audience::parse(&a).ok_or_else(|| corrupt("default audience"))?),
            None => None,
        },
        grants: codec::grants_from_json(&text(row, "grants")?)?,
        default_lifetime: lifetime("default_lifetime")?,
        max_lifetime: lifetime("max_lifetime")?,
        claims: codec::claims_from_json(&text(row, "claims")?)?,
        auth_methods: codec::methods_from_json(&text(row, "auth_methods")?)?,
        credentials: codec::credentials_from_json(&text(row, "credentials")?)?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
        revision: row.try_get("revision").map_err(backend)?,
    })
}

/// An account row with its `deleted_at` (for export).
pub(crate) fn account_with_deleted(
    row: &SqliteRow,
) -> Result<(ServiceAccount, Option<Timestamp>), StoreError> {
    Ok((account(row)?, opt_ts(row, "deleted_at")?))
}

pub(crate) fn secret(row: &SqliteRow) -> Result<SecretRecord, StoreError> {
    let hash: Vec<u8> = row.try_get("hash").map_err(backend)?;
    Ok(SecretRecord {
        account_id: AccountId::parse(&text(row, "account_id")?)
            .map_err(|_| corrupt("account id"))?,
        name: SecretName::parse(&text(row, "name")?).map_err(|_| corrupt("secret name"))?,
        hash: hash.try_into().map_err(|_| corrupt("secret hash"))?,
        key_version: u32::try_from(row.try_get::<i64, _>("key_version").map_err(backend)?)
            .map_err(|_| corrupt("key version"))?,
        created_at: ts(row, "created_at")?,
        expires_at: opt_ts(row, "expires_at")?,
        last_used_at: opt_ts(row, "last_used_at")?,
    })
}

/// A secret row with its `revoked_at` (for export).
pub(crate) fn secret_with_revoked(
    row: &SqliteRow,
) -> Result<(SecretRecord, Option<Timestamp>), StoreError> {
    Ok((secret(row)?, opt_ts(row, "revoked_at")?))
}

pub(crate) fn signing_key(row: &SqliteRow) -> Result<SigningKeyRecord, StoreError> {
    Ok(SigningKeyRecord {
        kid: text(row, "kid")?,
        tenant: tenant_name(row, "tenant")?,
        alg: codec::alg_from_str(&text(row, "alg")?)?,
        private_wrapped: row.try_get("private_wrapped").map_err(backend)?,
        hsm_module: row.try_get("hsm_module").map_err(backend)?,
        hsm_label: row.try_get("hsm_label").map_err(backend)?,
        created_at: ts(row, "created_at")?,
        activates_at: ts(row, "activates_at")?,
        retires_at: opt_ts(row, "retires_at")?,
        removed_at: opt_ts(row, "removed_at")?,
    })
}

pub(crate) fn keyring_entry(row: &SqliteRow) -> Result<KeyringEntry, StoreError> {
    Ok(KeyringEntry {
        purpose: KeyPurpose::parse(&text(row, "purpose")?).ok_or_else(|| corrupt("purpose"))?,
        version: u32::try_from(row.try_get::<i64, _>("version").map_err(backend)?)
            .map_err(|_| corrupt("keyring version"))?,
        wrapped: row.try_get("wrapped").map_err(backend)?,
        created_at: ts(row, "created_at")?,
    })
}

fn int(row: &SqliteRow, col: &str) -> Result<i64, StoreError> {
    row.try_get::<i64, _>(col).map_err(backend)
}

fn key_version(row: &SqliteRow) -> Result<u32, StoreError> {
    u32::try_from(int(row, "key_version")?).map_err(|_| corrupt("key version"))
}

pub(crate) fn revocation(row: &SqliteRow) -> Result<RevocationEntry, StoreError> {
    let value = text(row, "value")?;
    let time = int(row, "time")?;
    let kind = match text(row, "type")?.as_str() {
        "jti" => RevocationKind::Jti {
            jti: value,
            exp: time,
        },
        "subject" => RevocationKind::Subject {
            sub: value,
            not_before: time,
        },
        _ => return Err(corrupt("revocation type")),
    };
    Ok(RevocationEntry {
        cursor: int(row, "cursor")?,
        tenant: tenant_name(row, "tenant")?,
        kind,
        created_at: ts(row, "created_at")?,
        prune_after: ts(row, "prune_after")?,
    })
}

/// A `revocations_pruned` row.
pub(crate) fn pruned(row: &SqliteRow) -> Result<(TenantName, i64), StoreError> {
    Ok((tenant_name(row, "tenant")?, int(row, "pruned_through")?))
}

pub(crate) fn audit_record(row: &SqliteRow) -> Result<StoredAuditRecord, StoreError> {
    Ok(StoredAuditRecord {
        id: int(row, "id")?,
        tenant: tenant_name(row, "tenant")?,
        segment: text(row, "segment")?,
        seq: int(row, "seq")?,
        at: ts(row, "at")?,
        subject: row.try_get("subject").map_err(backend)?,
        action: text(row, "action")?,
        outcome: text(row, "outcome")?,
        body: text(row, "body")?,
        hash: text(row, "hash")?,
        key_version: key_version(row)?,
        mac: text(row, "mac")?,
    })
}

pub(crate) fn segment_head(row: &SqliteRow) -> Result<SegmentHead, StoreError> {
    Ok(SegmentHead {
        tenant: tenant_name(row, "tenant")?,
        segment: text(row, "segment")?,
        head_seq: int(row, "head_seq")?,
        head_hash: text(row, "head_hash")?,
        head_mac: text(row, "head_mac")?,
        key_version: key_version(row)?,
        anchor_seq: int(row, "anchor_seq")?,
        anchor_hash: text(row, "anchor_hash")?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
    })
}

pub(crate) fn checkpoint(row: &SqliteRow) -> Result<AuditCheckpoint, StoreError> {
    Ok(AuditCheckpoint {
        tenant: tenant_name(row, "tenant")?,
        segment: text(row, "segment")?,
        seq: int(row, "seq")?,
        hash: text(row, "hash")?,
        at: ts(row, "at")?,
        jws: text(row, "jws")?,
    })
}

pub(crate) fn api(row: &SqliteRow) -> Result<Api, StoreError> {
    Ok(Api {
        id: ApiId::parse(&text(row, "id")?).map_err(|_| corrupt("API id"))?,
        tenant: tenant_name(row, "tenant")?,
        name: ApiName::parse(&text(row, "name")?).map_err(|_| corrupt("API name"))?,
        audience: Audience::parse(&text(row, "audience")?)
            .ok_or_else(|| corrupt("API audience"))?,
        scopes: codec::scopes_from_json(&text(row, "scopes")?)?,
        owner: AccountId::parse(&text(row, "owner")?).map_err(|_| corrupt("API owner"))?,
        description: row
            .try_get::<Option<String>, _>("description")
            .map_err(backend)?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
        revision: row.try_get("revision").map_err(backend)?,
    })
}

/// An API row with its `deleted_at` (for export).
pub(crate) fn api_with_deleted(row: &SqliteRow) -> Result<(Api, Option<Timestamp>), StoreError> {
    Ok((api(row)?, opt_ts(row, "deleted_at")?))
}

pub(crate) fn trust(row: &SqliteRow) -> Result<Trust, StoreError> {
    let account = AccountId::parse(&text(row, "account")?).map_err(|_| corrupt("trust account"))?;
    let mut policy = codec::trust_policy_from_json(&text(row, "policy")?)?;
    policy.account = account.to_string();
    Ok(Trust {
        id: TrustId::parse(&text(row, "id")?).map_err(|_| corrupt("trust id"))?,
        tenant: tenant_name(row, "tenant")?,
        name: TrustName::parse(&text(row, "name")?).map_err(|_| corrupt("trust name"))?,
        policy,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
        revision: row.try_get("revision").map_err(backend)?,
    })
}

/// A trust row with its `deleted_at` (for export).
pub(crate) fn trust_with_deleted(
    row: &SqliteRow,
) -> Result<(Trust, Option<Timestamp>), StoreError> {
    Ok((trust(row)?, opt_ts(row, "deleted_at")?))
}
