//! Start-up for `hsm.modules.*`: open every configured PKCS#11 module, fail closed, and hand
//! them to the core through its HSM port ([`warrant_core::hsm::HsmKeys`]), which tenants whose
//! key source is `{"hsm":{"module":…}}` sign with (docs/hsm.md). Opening them at start-up
//! checks the library, token label and PIN file now, so a broken HSM configuration stops
//! `serve` instead of surfacing at the first token.

use std::sync::Arc;

use anyhow::Context;
use warrant_hsm::{HsmModule, KeyRef, pin_from_file};
use warrant_jose::{Algorithm, RawSigner};

use crate::config::HsmModuleConfig;

/// Opens each module (loading the library, finding the token, logging in, filling the session
/// pool) on a blocking thread, logs its name and slot, and returns them by name. The first
/// failure is an error naming the module; it never contains the PIN.
pub async fn open_configured(
    modules: &[HsmModuleConfig],
) -> anyhow::Result<Vec<(String, HsmModule)>> {
    let modules = modules.to_vec();
    tokio::task::spawn_blocking(move || {
        let mut opened = Vec::with_capacity(modules.len());
        for m in modules {
            let module = pin_from_file(&m.pin_file)
                .and_then(|pin| HsmModule::open(&m.library, &m.token_label, pin, m.sessions))
                .with_context(|| format!("opening the HSM module hsm.modules.{}", m.name))?;
            tracing::info!(
                module = %m.name,
                library = %m.library.display(),
                token = %m.token_label,
                slot = module.slot_id(),
                sessions = m.sessions,
                "HSM module opened"
            );
            opened.push((m.name, module));
        }
        Ok(opened)
    })
    .await
    .context("the HSM start-up task failed")?
}

/// The core's HSM port over the opened modules, by their configured names.
pub struct OpenedModules(Vec<(String, HsmModule)>);

impl OpenedModules {
    pub fn new(modules: Vec<(String, HsmModule)>) -> Self {
        Self(modules)
    }

    fn module(&self, name: &str) -> Result<&HsmModule, String> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, m)| m)
            .ok_or_else(|| format!("no HSM module hsm.modules.{name} is configured"))
    }
}

impl warrant_core::hsm::HsmKeys for OpenedModules {
    fn has_module(&self, module: &str) -> bool {
        self.module(module).is_ok()
    }

    fn key(
        &self,
        module: &str,
        key_label: &str,
        alg: Algorithm,
    ) -> Result<Arc<dyn RawSigner>, String> {
        let key = self
            .module(module)?
            .key(KeyRef::Label(key_label), alg)
            .map_err(|e| format!("hsm.modules.{module}: {e}"))?;
        Ok(Arc::new(key))
    }

    fn generate(
        &self,
        module: &str,
        key_label: &str,
        alg: Algorithm,
    ) -> Result<Arc<dyn RawSigner>, String> {
        let key = self
            .module(module)?
            .generate_key(key_label, alg)
            .map_err(|e| format!("hsm.modules.{module}: {e}"))?;
        Ok(Arc::new(key))
    }
}

/// The port for `Warrant::open_with_hsm` (`None` when no module is configured).
pub fn ports(modules: Vec<(String, HsmModule)>) -> Option<Arc<dyn warrant_core::hsm::HsmKeys>> {
    (!modules.is_empty()).then(|| Arc::new(OpenedModules::new(modules)) as _)
}
