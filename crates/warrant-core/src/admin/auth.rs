//! Admin authentication: a `system`-tenant access token addressed to `{public_url}/admin` with
//! scope `admin` (everything) or `admin:{tenant}` (one tenant).

use serde_json::Value;

use super::AdminError;
use crate::Warrant;
use crate::ids::{AccountId, TenantName};

/// Who is calling the admin API and what they may manage.
#[derive(Debug, Clone)]
pub struct AdminPrincipal {
    pub account_id: AccountId,
    /// Where the request came from (for audit records), set by the server.
    pub client_addr: Option<String>,
    global: bool,
    tenants: Vec<String>,
}

impl AdminPrincipal {
    /// A principal with every right; for operator commands run beside the server.
    pub fn operator(account_id: AccountId) -> Self {
        Self {
            account_id,
            client_addr: None,
            global: true,
            tenants: Vec::new(),
        }
    }

    pub fn is_global(&self) -> bool {
        self.global
    }

    pub fn may_manage(&self, tenant: &TenantName) -> bool {
        self.global || (!tenant.is_system() && self.tenants.iter().any(|t| t == tenant.as_str()))
    }

    pub(crate) fn require(&self, tenant: &TenantName) -> Result<(), AdminError> {
        if self.may_manage(tenant) {
            Ok(())
        } else {
            Err(AdminError::Forbidden(format!(
                "this token's scope does not cover tenant {tenant} (needs admin or admin:{tenant})"
            )))
        }
    }

    pub(crate) fn require_global(&self) -> Result<(), AdminError> {
        if self.global {
            Ok(())
        } else {
            Err(AdminError::Forbidden("this needs the admin scope".into()))
        }
    }
}

impl Warrant {
    /// Verifies an admin bearer token (signature by the `system` tenant, `typ`, `iss`, `aud`,
    /// `exp`/`nbf`, not revoked, an enabled `system` account, an admin scope).
    pub fn authorize_admin(&self, token: &str) -> Result<AdminPrincipal, AdminError> {
        const BAD: AdminError = AdminError::Unauthorized("the access token is invalid or expired");
        let system = TenantName::system();
        let keys = self.keys.get(&system).ok_or(BAD)?;
        let now = self.clock.now().secs();
        let t = self.check_signed(&keys, token, now).map_err(|_| BAD)?;
        if self.is_revoked(&system, &t) {
            return Err(BAD);
        }
        let c = &t.claims;
        let s = |k: &str| c.get(k).and_then(Value::as_str);
        if s("aud") != Some(self.config.admin_audience().as_str()) {
            return Err(BAD);
        }
        // A sender-constrained token (DPoP `cnf.jkt`, certificate `cnf.x5t#S256`) must be
        // presented with its proof (RFC 9449 §7.1, RFC 8705 §3). The admin API takes Bearer
        // tokens only, so it refuses bound tokens rather than accept one without its proof.
        if c.contains_key("cnf") {
            return Err(AdminError::Unauthorized(
                "the admin API accepts unbound Bearer tokens only; this token is sender-constrained",
            ));
        }
        let id = s("sub").and_then(|x| AccountId::parse(x).ok()).ok_or(BAD)?;
        let entry = self.directory.get(&id).ok_or(BAD)?;
        if !entry.account.enabled || !entry.account.tenant.is_system() {
            return Err(BAD);
        }
        let mut global = false;
        let mut tenants = Vec::new();
        for sc in s("scope").unwrap_or("").split(' ') {
            if sc == "admin" {
                global = true;
            } else if let Some(t) = sc.strip_prefix("admin:")
                && t != TenantName::SYSTEM
            {
                tenants.push(t.to_owned());
            }
        }
        if !global && tenants.is_empty() {
            return Err(AdminError::Forbidden(
                "the token has no admin scope (admin or admin:{tenant})".into(),
            ));
        }
        Ok(AdminPrincipal {
            account_id: id,
            client_addr: None,
            global,
            tenants,
        })
    }
}
