use super::{AdminError, AdminPrincipal};
use crate::Warrant;
use crate::ids::TenantName;
use crate::model::{KeyState, SigningKeyRecord};

impl Warrant {
    /// A tenant's signing keys with their state now, newest first.
    pub async fn list_keys(
        &self,
        p: &AdminPrincipal,
        tenant: &TenantName,
    ) -> Result<Vec<(SigningKeyRecord, KeyState)>, AdminError> {
        p.require(tenant)?;
        self.live_tenant(tenant).await?;
        let now = self.clock.now();
        Ok(self
            .store
            .tenant_signing_keys(tenant)
            .await?
            .into_iter()
            .map(|k| {
                let state = k.state_at(now);
                (k, state)
            })
            .collect())
    }
}
