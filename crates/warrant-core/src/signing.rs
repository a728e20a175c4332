//! Signing keys held ready: per tenant, every key not yet removed, parsed once (signers
//! prepared once), and the view valid now — the signer, the published public keys and the JWKS
//! document pre-serialised (the JWKS endpoint serves bytes, it does not build them).
//!
//! Keys change state at times stored with them (`lifecycle` computes those times). The view
//! carries the interval it is valid for; `KeyRegistry::get` compares the time with its end
//! (one comparison on the token path) and, once a boundary has passed, rebuilds that tenant's
//! view from the keys already parsed — no store access, no re-parsing, no reload.

pub mod lifecycle;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use warrant_jose::{Algorithm, Jwk, JwkSet, JwsSigner, PublicKey, RawSigner, SigningKey};

use crate::keyring::MasterKey;
use crate::model::{KeyState, SigningKeyRecord};
use crate::{Clock, CoreConfig, CoreError, TenantName, Timestamp};

/// The media type of RFC 9068 access tokens, as the JOSE `typ` header carries it.
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// HSM keys found on their tokens, by tenant and kid (what `Warrant::resolve_hsm_keys` could
/// reach; a key missing here is left out of its tenant's set).
pub(crate) type HsmSigners = HashMap<(TenantName, String), Arc<dyn RawSigner>>;

/// One tenant's keys at a moment.
#[derive(Debug)]
pub struct TenantKeys {
    pub tenant: TenantName,
    /// `{public_url}/t/{tenant}`.
    pub issuer: String,
    /// The key that signs now (`None` if the tenant has no active key: issuance fails closed).
    pub signer: Option<Arc<JwsSigner>>,
    /// The same key with the audit checkpoint `typ`.
    pub checkpoint_signer: Option<Arc<JwsSigner>>,
    /// Every published key (next, active, retired), for verification.
    pub public: Vec<PublicKey>,
    /// `{"keys":[…]}` of the published keys.
    pub jwks_json: Arc<str>,
    /// Algorithms of the published keys, for discovery metadata.
    pub algs: Vec<Algorithm>,
    /// This view holds from `valid_from` (inclusive) to `valid_until` (exclusive; `None`: no
    /// key changes state later). Outside it, the registry builds a new view.
    pub valid_from: Option<Timestamp>,
    pub valid_until: Option<Timestamp>,
}

impl TenantKeys {
    fn holds_at(&self, now: Timestamp) -> bool {
        self.valid_until.is_none_or(|end| now < end) && self.valid_from.is_none_or(|s| now >= s)
    }
}

/// One key, parsed once.
struct ReadyKey {
    signer: Arc<JwsSigner>,
    checkpoint_signer: Arc<JwsSigner>,
    public: PublicKey,
    jwk: Jwk,
}

/// A tenant's keys not yet removed when loaded, and the view in use.
struct TenantSet {
    tenant: TenantName,
    issuer: String,
    /// The records' times (private parts dropped), sorted by activation; `ready` matches
    /// (`None`: an HSM key that could not be found, neither published nor signing).
    times: Vec<SigningKeyRecord>,
    ready: Vec<Option<ReadyKey>>,
    view: RwLock<Arc<TenantKeys>>,
}

impl TenantSet {
    fn view_at(&self, now: Timestamp) -> Result<TenantKeys, CoreError> {
        let mut signing: Option<usize> = None;
        let mut public = Vec::new();
        let mut jwks = JwkSet::default();
        let mut algs = Vec::new();
        for (i, (r, k)) in self.times.iter().zip(&self.ready).enumerate() {
            let state = r.state_at(now);
            if state == KeyState::Removed {
                continue;
            }
            if state == KeyState::Active {
                // sorted by activation: the latest active key wins (an HSM key that could not
                // be found included: then nothing signs, rather than an older key)
                signing = Some(i);
            }
            let Some(k) = k else { continue };
            public.push(k.public.clone());
            jwks.keys.push(k.jwk.clone());
            if !algs.contains(&r.alg) {
                algs.push(r.alg);
            }
        }
        let jwks_json: Arc<str> = serde_json::to_string(&jwks)
            .map_err(|e| CoreError::Config(format!("jwks: {e}")))?
            .into();
        let valid_from = self
            .times
            .iter()
            .flat_map(|k| [Some(k.activates_at), k.retires_at, k.removed_at])
            .flatten()
            .filter(|t| *t <= now)
            .max();
        let signing = signing.and_then(|i| self.ready[i].as_ref());
        Ok(TenantKeys {
            tenant: self.tenant.clone(),
            issuer: self.issuer.clone(),
            signer: signing.map(|k| k.signer.clone()),
            checkpoint_signer: signing.map(|k| k.checkpoint_signer.clone()),
            public,
            jwks_json,
            algs,
            valid_from,
            valid_until: lifecycle::next_boundary(&self.times, now),
        })
    }

    /// The view at `now`: the one held if it is still valid (the usual case: one read lock and
    /// one comparison), else a new one built from the parsed keys.
    fn at(&self, now: Timestamp) -> Arc<TenantKeys> {
        let held = crate::read(&self.view).clone();
        if held.holds_at(now) {
            return held;
        }
        match self.view_at(now) {
            Ok(v) => {
                let v = Arc::new(v);
                tracing::info!(tenant = %self.tenant, "signing keys changed state");
                *crate::write(&self.view) = v.clone();
                v
            }
            Err(e) => {
                // Serialising a JWKS of keys that serialised before does not fail; if it
                // did, keep serving the last view rather than none.
                tracing::error!(tenant = %self.tenant, error = %e, "signing key view");
                held
            }
        }
    }
}

/// Every live tenant's keys, switched by time.
pub(crate) struct KeyRegistry {
    clock: Arc<dyn Clock>,
    tenants: RwLock<HashMap<TenantName, Arc<TenantSet>>>,
}

impl std::fmt::Debug for KeyRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRegistry").finish_non_exhaustive()
    }
}

impl KeyRegistry {
    pub(crate) fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            tenants: RwLock::default(),
        }
    }

    /// The tenant's keys as they are now.
    pub(crate) fn get(&self, tenant: &TenantName) -> Option<Arc<TenantKeys>> {
        let set = crate::read(&self.tenants).get(tenant).cloned()?;
        Some(set.at(self.clock.now()))
    }

    /// Every live tenant's keys, as they are now.
    pub(crate) fn all(&self) -> Vec<Arc<TenantKeys>> {
        let sets: Vec<Arc<TenantSet>> = crate::read(&self.tenants).values().cloned().collect();
        let now = self.clock.now();
        sets.iter().map(|s| s.at(now)).collect()
    }

    /// The stored times of a tenant's loaded keys (for deciding on scheduled rotation
    /// without reading the store).
    pub(crate) fn times(&self, tenant: &TenantName) -> Option<Vec<SigningKeyRecord>> {
        Some(crate::read(&self.tenants).get(tenant)?.times.clone())
    }

    /// Rebuilds the registry from the stored keys of live tenants (keys not removed at `now`).
    pub(crate) fn load(
        &self,
        master: &MasterKey,
        config: &CoreConfig,
        records: &[SigningKeyRecord],
        hsm: &HsmSigners,
        now: Timestamp,
    ) -> Result<(), CoreError> {
        let mut grouped: HashMap<&TenantName, Vec<&SigningKeyRecord>> = HashMap::new();
        for r in records {
            grouped.entry(&r.tenant).or_default().push(r);
        }
        let mut map = HashMap::new();
        for (tenant, mut recs) in grouped {
            recs.sort_by_key(|r| r.activates_at);
            let mut times = Vec::new();
            let mut ready = Vec::new();
            for r in recs {
                if r.state_at(now) == KeyState::Removed {
                    continue;
                }
                ready.push(
                    match (&r.hsm_module, hsm.get(&(r.tenant.clone(), r.kid.clone()))) {
                        (None, _) => Some(parse(master, r)?),
                        (Some(_), Some(k)) => ready_key(k.clone())
                            .inspect_err(|e| {
                                tracing::error!(tenant = %r.tenant, kid = %r.kid, error = %e,
                                    "HSM signing key unusable: the tenant cannot sign with it");
                            })
                            .ok(),
                        // logged where the lookup failed
                        (Some(_), None) => None,
                    },
                );
                times.push(SigningKeyRecord {
                    private_wrapped: Vec::new(),
                    ..r.clone()
                });
            }
            let mut set = TenantSet {
                tenant: tenant.clone(),
                issuer: config.issuer(tenant),
                times,
                ready,
                view: RwLock::new(Arc::new(TenantKeys {
                    tenant: tenant.clone(),
                    issuer: config.issuer(tenant),
                    signer: None,
                    checkpoint_signer: None,
                    public: Vec::new(),
                    jwks_json: Arc::from("{\"keys\":[]}"),
                    algs: Vec::new(),
                    valid_from: None,
                    valid_until: Some(now),
                })),
            };
            set.view = RwLock::new(Arc::new(set.view_at(now)?));
            map.insert(tenant.clone(), Arc::new(set));
        }
        *crate::write(&self.tenants) = map;
        Ok(())
    }
}

/// A key (in memory, or held elsewhere: an HSM), ready: one key behind both signers.
fn ready_key(key: Arc<dyn RawSigner>) -> Result<ReadyKey, CoreError> {
    let jwk = key.public_jwk().clone();
    let public = PublicKey::from_jwk(&jwk).map_err(CoreError::crypto)?;
    Ok(ReadyKey {
        checkpoint_signer: Arc::new(
            JwsSigner::from_raw(key.clone(), crate::audit::CHECKPOINT_TYP)
                .map_err(CoreError::crypto)?,
        ),
        signer: Arc::new(JwsSigner::from_raw(key, ACCESS_TOKEN_TYP).map_err(CoreError::crypto)?),
        public,
        jwk,
    })
}

fn parse(master: &MasterKey, r: &SigningKeyRecord) -> Result<ReadyKey, CoreError> {
    let der = master.unwrap(
        &r.private_wrapped,
        &SigningKeyRecord::wrap_aad(&r.tenant, &r.kid),
    )?;
    let key = SigningKey::from_pkcs8(r.alg, &der).map_err(CoreError::crypto)?;
    ready_key(Arc::new(key))
}

/// Creates a new key record for `tenant`, published from `now` and signing from
/// `activates_at`.
pub(crate) fn new_key_record(
    master: &MasterKey,
    tenant: &TenantName,
    alg: Algorithm,
    now: Timestamp,
    activates_at: Timestamp,
) -> Result<SigningKeyRecord, CoreError> {
    let (key, der) = SigningKey::generate(alg).map_err(CoreError::crypto)?;
    let kid = key.kid().to_owned();
    Ok(SigningKeyRecord {
        private_wrapped: master.wrap(&der, &SigningKeyRecord::wrap_aad(tenant, &kid))?,
        hsm_module: None,
        hsm_label: None,
        kid,
        tenant: tenant.clone(),
        alg,
        created_at: now,
        activates_at,
        retires_at: None,
        removed_at: None,
    })
}

/// A key record for a key just generated in an HSM: no wrapped bytes, the module and label.
pub(crate) fn new_hsm_key_record(
    key: &dyn RawSigner,
    module: &str,
    label: &str,
    tenant: &TenantName,
    now: Timestamp,
    activates_at: Timestamp,
) -> SigningKeyRecord {
    SigningKeyRecord {
        kid: key.kid().to_owned(),
        tenant: tenant.clone(),
        alg: key.alg(),
        private_wrapped: Vec::new(),
        hsm_module: Some(module.to_owned()),
        hsm_label: Some(label.to_owned()),
        created_at: now,
        activates_at,
        retires_at: None,
        removed_at: None,
    }
}
