//! The HSM port: signing keys held on a PKCS#11 token, reached through modules the server
//! configures (`hsm.modules.<name>`). The core names a module and a key label, never a
//! library, slot or PIN; `warrant-cli` implements this over `warrant-hsm` (the core stays free
//! of PKCS#11). See docs/hsm.md.

use std::sync::Arc;

use warrant_jose::{Algorithm, RawSigner};

/// Finds and generates keys on configured HSM modules. Every method **blocks** (a round trip
/// to the token): the core calls them inside `tokio::task::spawn_blocking`. Errors are safe to
/// log (module, label, PKCS#11 code; never a PIN).
pub trait HsmKeys: Send + Sync {
    /// Whether `module` is configured (and was opened at start-up).
    fn has_module(&self, module: &str) -> bool;
    /// The private key labelled `key_label` on `module`, checked to sign `alg`.
    fn key(
        &self,
        module: &str,
        key_label: &str,
        alg: Algorithm,
    ) -> Result<Arc<dyn RawSigner>, String>;
    /// Generates a key pair labelled `key_label` on `module` (never extractable).
    fn generate(
        &self,
        module: &str,
        key_label: &str,
        alg: Algorithm,
    ) -> Result<Arc<dyn RawSigner>, String>;
}

/// Runs a blocking HSM call off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| format!("the HSM task failed: {e}"))?
}
