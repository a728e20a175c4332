//! Signing keys held ready: per tenant, the signer in use and the published public keys with
//! the JWKS document pre-serialised (the JWKS endpoint serves bytes, it does not build them).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use warrant_jose::{Algorithm, JwkSet, JwsSigner, PublicKey, SigningKey};

use crate::keyring::MasterKey;
use crate::model::{KeyState, SigningKeyRecord};
use crate::{CoreConfig, CoreError, TenantName, Timestamp};

/// The media type of RFC 9068 access tokens, as the JOSE `typ` header carries it.
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

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
}

#[derive(Debug, Default)]
pub(crate) struct KeyRegistry {
    tenants: RwLock<HashMap<TenantName, Arc<TenantKeys>>>,
}

impl KeyRegistry {
    pub(crate) fn get(&self, tenant: &TenantName) -> Option<Arc<TenantKeys>> {
        crate::read(&self.tenants).get(tenant).cloned()
    }

    /// Every live tenant's keys.
    pub(crate) fn all(&self) -> Vec<Arc<TenantKeys>> {
        crate::read(&self.tenants).values().cloned().collect()
    }

    /// Rebuilds the registry from the stored keys of live tenants.
    pub(crate) fn load(
        &self,
        master: &MasterKey,
        config: &CoreConfig,
        records: &[SigningKeyRecord],
        now: Timestamp,
    ) -> Result<(), CoreError> {
        let mut grouped: HashMap<&TenantName, Vec<&SigningKeyRecord>> = HashMap::new();
        for r in records {
            grouped.entry(&r.tenant).or_default().push(r);
        }
        let mut map = HashMap::new();
        for (tenant, mut recs) in grouped {
            recs.sort_by_key(|r| r.activates_at);
            let mut signer = None;
            let mut checkpoint_signer = None;
            let mut public = Vec::new();
            let mut jwks = JwkSet::default();
            let mut algs = Vec::new();
            for r in recs {
                let state = r.state_at(now);
                if state == KeyState::Removed {
                    continue;
                }
                let der = master.unwrap(
                    &r.private_wrapped,
                    &SigningKeyRecord::wrap_aad(&r.tenant, &r.kid),
                )?;
                let key = SigningKey::from_pkcs8(r.alg, &der).map_err(CoreError::crypto)?;
                let jwk = key.public_jwk().clone();
                public.push(PublicKey::from_jwk(&jwk).map_err(CoreError::crypto)?);
                jwks.keys.push(jwk);
                if !algs.contains(&r.alg) {
                    algs.push(r.alg);
                }
                if state == KeyState::Active {
                    // sorted by activation: the latest active key wins
                    let again = SigningKey::from_pkcs8(r.alg, &der).map_err(CoreError::crypto)?;
                    checkpoint_signer = Some(Arc::new(
                        JwsSigner::new(again, crate::audit::CHECKPOINT_TYP)
                            .map_err(CoreError::crypto)?,
                    ));
                    signer = Some(Arc::new(
                        JwsSigner::new(key, ACCESS_TOKEN_TYP).map_err(CoreError::crypto)?,
                    ));
                }
            }
            let jwks_json: Arc<str> = serde_json::to_string(&jwks)
                .map_err(|e| CoreError::Config(format!("jwks: {e}")))?
                .into();
            map.insert(
                tenant.clone(),
                Arc::new(TenantKeys {
                    tenant: tenant.clone(),
                    issuer: config.issuer(tenant),
                    signer,
                    checkpoint_signer,
                    public,
                    jwks_json,
                    algs,
                }),
            );
        }
        *crate::write(&self.tenants) = map;
        Ok(())
    }
}

/// Creates a new key record for `tenant`, active from `now`.
pub(crate) fn new_key_record(
    master: &MasterKey,
    tenant: &TenantName,
    alg: Algorithm,
    now: Timestamp,
) -> Result<SigningKeyRecord, CoreError> {
    let (key, der) = SigningKey::generate(alg).map_err(CoreError::crypto)?;
    let kid = key.kid().to_owned();
    Ok(SigningKeyRecord {
        private_wrapped: master.wrap(&der, &SigningKeyRecord::wrap_aad(tenant, &kid))?,
        kid,
        tenant: tenant.clone(),
        alg,
        created_at: now,
        activates_at: now,
        retires_at: None,
        removed_at: None,
    })
}
