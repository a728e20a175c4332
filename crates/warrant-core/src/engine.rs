use std::sync::{Arc, RwLock};

use crate::audit::{AuditLog, AuditSettings};
use crate::directory::Directory;
use crate::keyring::{HashingKeys, KeyPurpose, MasterKey, VersionedKeys};
use crate::revocation::RevocationSet;
use crate::signing::KeyRegistry;
use crate::store::Change;
use crate::{Clock, CoreError, Store, TenantName, Timestamp};

/// How long after its expiry a single-use identifier is kept (replica clock skew).
const PRUNE_MARGIN_SECS: i64 = 300;

/// Server-wide settings the core needs (already validated by the caller).
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// Base URL without a trailing slash; issuers are `{public_url}/t/{tenant}`.
    pub public_url: String,
    /// Upper bound on any token's lifetime, seconds (default 3600).
    pub max_token_lifetime: u64,
    /// `Cache-Control: max-age` of the JWKS, seconds (default 300).
    pub jwks_max_age: u64,
    /// The audit log's retention and timing.
    pub audit: AuditSettings,
}

impl CoreConfig {
    pub fn issuer(&self, tenant: &TenantName) -> String {
        format!("{}/t/{}", self.public_url, tenant)
    }

    /// The audience of admin tokens.
    pub fn admin_audience(&self) -> String {
        format!("{}/admin", self.public_url)
    }
}

/// The engine: holds the ports, the unwrapped keyring and the in-memory views (directory of
/// clients, signing keys) that the token hot path reads without touching the store.
pub struct Warrant {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) master: MasterKey,
    pub(crate) config: CoreConfig,
    pub(crate) hashing: RwLock<Arc<HashingKeys>>,
    pub(crate) directory: Directory,
    /// Trusts and APIs per tenant, for the exchange grants.
    pub(crate) policies: crate::policy_cache::PolicyCache,
    pub(crate) keys: Arc<KeyRegistry>,
    pub(crate) jti: crate::grants::JtiSource,
    pub(crate) revocations: RevocationSet,
    /// The highest revocation cursor applied here; feed streams wait on it.
    pub(crate) revocation_head: tokio::sync::watch::Sender<i64>,
    /// One catch-up at a time (a second caller waits, then finds nothing new).
    pub(crate) revocation_sync: tokio::sync::Mutex<()>,
    pub(crate) audit: AuditLog,
    /// One signing-key rotation or revocation at a time here (the store's bootstrap lock
    /// excludes other replicas): each decides from the keys it reads.
    pub(crate) key_writes: tokio::sync::Mutex<()>,
    /// Configured HSM modules (`None`: none configured; a tenant whose keys are in an HSM then
    /// has no signer and its issuance fails closed).
    pub(crate) hsm: Option<Arc<dyn crate::hsm::HsmKeys>>,
    /// Keys of accounts registered by `jwks_uri` (unset: this server fetches nothing, and
    /// such accounts cannot authenticate). Set once at start-up, see [`Warrant::fetch_client_keys_with`].
    pub(crate) client_jwks: std::sync::OnceLock<crate::client_auth::jwks_cache::JwksCache>,
    /// Stateless DPoP nonces (RFC 9449 §8), keyed from the master key so replicas agree.
    pub(crate) dpop_nonces: crate::dpop::NonceKey,
    /// Single-use identifiers, group-committed (`client_auth/replay.rs`).
    pub(crate) replay: crate::client_auth::replay::ReplayCache,
}

impl std::fmt::Debug for Warrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Warrant")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Warrant {
    /// Opens the engine over a migrated store: creates what first start needs (keyring, the
    /// `system` and `default` tenants, their keys, the admin account), then loads the
    /// in-memory views. Returns the admin credentials if they were created now.
    pub async fn open(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        master: MasterKey,
        config: CoreConfig,
    ) -> Result<(Self, crate::BootstrapOutcome), CoreError> {
        Self::open_with_hsm(store, clock, master, config, None).await
    }

    /// [`Self::open`] with the server's HSM modules, which tenants whose key source is an HSM
    /// sign with (docs/hsm.md).
    pub async fn open_with_hsm(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        master: MasterKey,
        config: CoreConfig,
        hsm: Option<Arc<dyn crate::hsm::HsmKeys>>,
    ) -> Result<(Self, crate::BootstrapOutcome), CoreError> {
        let outcome = crate::bootstrap::bootstrap(&*store, &*clock, &master, &config).await?;
        let entries = store.keyring().await?;
        let hashing = HashingKeys::load(&master, &entries)?;
        let audit_keys = Arc::new(VersionedKeys::load_purpose(
            &master,
            &entries,
            KeyPurpose::Audit,
        )?);
        let keys = Arc::new(KeyRegistry::new(clock.clone()));
        let audit = AuditLog::start(
            store.clone(),
            clock.clone(),
            audit_keys,
            keys.clone(),
            config.audit.clone(),
        )?;
        let dpop_nonces = crate::dpop::NonceKey::new(&*master.derive(b"warrant dpop nonce v1")?);
        let replay = crate::client_auth::replay::ReplayCache::start(store.clone(), clock.clone());
        let this = Self {
            store,
            clock,
            master,
            config,
            hashing: RwLock::new(Arc::new(hashing)),
            directory: Directory::default(),
            policies: Default::default(),
            keys,
            jti: crate::grants::JtiSource::new().map_err(CoreError::crypto)?,
            revocations: RevocationSet::default(),
            revocation_head: tokio::sync::watch::Sender::new(0),
            revocation_sync: tokio::sync::Mutex::new(()),
            audit,
            key_writes: tokio::sync::Mutex::new(()),
            hsm,
            client_jwks: std::sync::OnceLock::new(),
            dpop_nonces,
            replay,
        };
        this.reload_all().await?;
        Ok((this, outcome))
    }

    /// Lets accounts register their `private_key_jwt` keys by `jwks_uri`: fetched through
    /// `fetcher` (the server's outbound policy), cached `ttl_secs`, and re-fetched for an
    /// unknown `kid` at most once per `min_refetch_secs`. Only the first call has an effect.
    pub fn fetch_client_keys_with(
        &self,
        fetcher: Arc<dyn crate::client_auth::jwks_cache::JwksFetcher>,
        ttl_secs: u64,
        min_refetch_secs: u64,
    ) {
        let _ = self
            .client_jwks
            .set(crate::client_auth::jwks_cache::JwksCache::new(
                fetcher,
                ttl_secs,
                min_refetch_secs,
            ));
    }

    /// The key of this deployment's DPoP nonces (every replica derives the same one).
    pub fn dpop_nonce_key(&self) -> &crate::dpop::NonceKey {
        &self.dpop_nonces
    }

    /// Removes single-use identifiers (assertion and DPoP `jti`s) that expired five minutes
    /// ago: the margin keeps a replica whose clock runs fast from pruning an entry that a
    /// replica whose clock runs slow would still accept.
    pub async fn prune_used_jtis(&self) -> Result<u64, CoreError> {
        let before = self.clock.now().secs().saturating_sub(PRUNE_MARGIN_SECS);
        Ok(self
            .store
            .prune_used_jtis(Timestamp::from_secs(before))
            .await?)
    }

    /// Rebuilds every in-memory view from the store.
    pub async fn reload_all(&self) -> Result<(), CoreError> {
        self.policies.clear();
        self.directory.load_all(&*self.store).await?;
        self.reload_keys().await?;
        self.sync_revocations().await
    }

    pub(crate) async fn reload_keys(&self) -> Result<(), CoreError> {
        let now = self.clock.now();
        let records = self.store.signing_keys(now).await?;
        let hsm_keys = self.resolve_hsm_keys(&records, now).await;
        self.keys
            .load(&self.master, &self.config, &records, &hsm_keys, now)
            .map_err(|e| {
                tracing::error!(error = %e, "signing keys could not be loaded");
                e
            })
    }

    /// Looks up, on a blocking thread, the HSM key of every record held in an HSM and not
    /// removed. A key that cannot be found (unknown module, missing label, token gone) is
    /// logged and left out: that tenant's key is then neither published nor signing, so its
    /// issuance fails closed while other tenants are unaffected.
    async fn resolve_hsm_keys(
        &self,
        records: &[crate::model::SigningKeyRecord],
        now: Timestamp,
    ) -> crate::signing::HsmSigners {
        let wanted: Vec<(TenantName, String, String, String, warrant_jose::Algorithm)> = records
            .iter()
            .filter(|r| r.state_at(now) != crate::model::KeyState::Removed)
            .filter_map(|r| {
                Some((
                    r.tenant.clone(),
                    r.kid.clone(),
                    r.hsm_module.clone()?,
                    r.hsm_label.clone()?,
                    r.alg,
                ))
            })
            .collect();
        if wanted.is_empty() {
            return crate::signing::HsmSigners::default();
        }
        let hsm = self.hsm.clone();
        let found = crate::hsm::blocking(move || {
            let mut found = crate::signing::HsmSigners::default();
            for (tenant, kid, module, label, alg) in wanted {
                let key = match &hsm {
                    Some(h) if h.has_module(&module) => {
                        h.key(&module, &label, alg).and_then(|k| {
                            if k.kid() == kid {
                                Ok(k)
                            } else {
                                Err(format!("the key labelled {label:?} is not the key {kid}"))
                            }
                        })
                    }
                    _ => Err(format!("no HSM module {module:?} is configured")),
                };
                match key {
                    Ok(k) => {
                        found.insert((tenant, kid), k);
                    }
                    Err(e) => {
                        tracing::error!(tenant = %tenant, kid = %kid, module = %module, label = %label, error = %e,
                            "HSM signing key unavailable: the tenant cannot sign with it");
                    }
                }
            }
            Ok(found)
        })
        .await;
        found.unwrap_or_else(|e| {
            tracing::error!(error = %e, "HSM signing keys could not be looked up");
            crate::signing::HsmSigners::default()
        })
    }

    pub fn config(&self) -> &CoreConfig {
        &self.config
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The audit log (the server records issuance and refusals through it).
    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    /// Replaces the audit log with one that records nothing. Only the benchmark calls this, to
    /// measure what durable auditing costs; no configuration reaches it.
    #[doc(hidden)]
    pub fn discard_audit_for_benchmark(&mut self) {
        self.audit = AuditLog::discard_for_benchmark();
    }

    pub(crate) fn hashing(&self) -> Arc<HashingKeys> {
        crate::read(&self.hashing).clone()
    }

    /// The tenant's signing and verification keys, if the tenant exists.
    pub fn tenant_keys(&self, tenant: &TenantName) -> Option<Arc<crate::TenantKeys>> {
        self.keys.get(tenant)
    }

    /// Refreshes the in-memory views after a change made here or announced by another replica.
    pub async fn apply(&self, change: &Change) -> Result<(), CoreError> {
        match change {
            Change::Account { tenant, id } => self.directory.reload(&*self.store, tenant, id).await,
            Change::Tenant { name } => {
                self.policies.forget(name);
                if self.store.get_tenant(name).await?.is_none() {
                    self.directory.remove_tenant(name);
                }
                self.reload_keys().await
            }
            Change::Revocations => self.sync_revocations().await,
            Change::Policies { tenant } => {
                self.policies.forget(tenant);
                Ok(())
            }
        }
    }

    /// After a write here: refresh this replica, then tell the others.
    pub(crate) async fn changed(&self, change: Change) -> Result<(), CoreError> {
        self.apply(&change).await?;
        if let Err(e) = self.store.publish(&change).await {
            // Others catch up at their next full reload; the write itself stands.
            tracing::warn!(error = %e, change = %change.encode(), "could not notify other replicas");
        }
        Ok(())
    }

    /// Writes last-used times gathered in memory; the server calls this about once a minute
    /// and at shutdown, so authentication never writes to the store.
    pub async fn flush_last_used(&self) -> Result<usize, CoreError> {
        let batch = self.directory.take_dirty_last_used();
        if batch.is_empty() {
            return Ok(0);
        }
        self.store.touch_secrets(&batch).await?;
        Ok(batch.len())
    }
}
