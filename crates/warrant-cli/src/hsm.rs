//! Start-up for `hsm.modules.*`: open every configured PKCS#11 module, fail closed.
//!
//! Nothing signs with these modules yet (tenant key settings cannot name an HSM key; see
//! docs/hsm.md). Opening them at start-up still checks the library, token label and PIN file
//! now, so a broken HSM configuration stops `serve` instead of surfacing at the first token.

use anyhow::Context;
use warrant_hsm::{HsmModule, pin_from_file};

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
                "HSM module opened (not used for signing yet)"
            );
            opened.push((m.name, module));
        }
        Ok(opened)
    })
    .await
    .context("the HSM start-up task failed")?
}
