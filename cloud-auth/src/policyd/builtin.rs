//! The built-in global policies (design brief §6), created on first start:
//!
//! - `enable` (constraints I and II) decides the management API. Verbs `policy:read` and
//!   `policy:write`; target `target.type` (`global`/`customer`), `target.tenant` (owner of a
//!   customer policy), `target.protected` (`True` for `enable` and `self-protect`). The cloud
//!   admin is a **system-scoped token with role `admin`** (Keystone's secure-RBAC cloud
//!   administrator); role `admin` on a project, even the `admin` project, makes a tenant
//!   admin of that project only. The cloud admin reads everything and writes global
//!   policies only; a tenant admin reads the globals and reads and writes its own tenant's
//!   customer policies; nobody writes a protected policy.
//! - `restrict` (constraint III): a subject reaches the resources of its own tenant
//!   (`project_id` equals `target.tenant`), or of a tenant whose customer policy `inbound`
//!   lets it in ("unless a policy says otherwise"). The cloud admin may change it.
//! - `provision` decides the HSS provisioning API (verbs `subscriber:read` and
//!   `subscriber:write`; `target.tenant` the subscriber's tenant, `target.type`
//!   `customer` for a subscriber of a tenant, `global` for one of none): the cloud admin
//!   reads every subscriber and writes the tenant-less ones; a tenant admin reads and
//!   writes its own tenant's. The cloud admin may change it (e.g. to write everywhere).
//! - `self-protect` (constraint IV): only tokens with role `service` subscribe to the
//!   invalidation feed and ask verify questions (the cloud admin may ask too), so only the
//!   policy service drives request filters.

use serde_json::json;

use super::model::{EnforcerKind, Spec};

/// Name of the management policy.
pub const ENABLE: &str = "enable";
/// Name of the tenancy boundary.
pub const RESTRICT: &str = "restrict";
/// Name of the policy guarding the feed and verify.
pub const SELF_PROTECT: &str = "self-protect";
/// Name of the policy of the HSS provisioning API.
pub const PROVISION: &str = "provision";

/// The built-ins nobody may write: they are what keeps constraints I, II and IV true.
pub const PROTECTED: &[&str] = &[ENABLE, SELF_PROTECT];

/// The built-in globals and their content.
pub fn builtins() -> [(&'static str, Spec); 4] {
    [
        (
            ENABLE,
            Spec {
                enforcer: EnforcerKind::Default,
                rules: json!({
                    "cloud_admin": "role:admin and system_scope:all",
                    "owner_admin": "role:admin and project_id:%(target.tenant)s",
                    "unprotected": "not 'True':%(target.protected)s",
                    "policy:read": "rule:cloud_admin or rule:owner_admin \
                                    or (role:admin and 'global':%(target.type)s)",
                    "policy:write": "rule:unprotected and \
                                     ((rule:cloud_admin and 'global':%(target.type)s) \
                                      or (rule:owner_admin and 'customer':%(target.type)s))",
                }),
            },
        ),
        (
            RESTRICT,
            Spec {
                enforcer: EnforcerKind::OpOr,
                rules: json!([
                    {"enforcer": "default", "rules": {"default": "project_id:%(target.tenant)s"}},
                    "tenant:inbound",
                ]),
            },
        ),
        (
            PROVISION,
            Spec {
                enforcer: EnforcerKind::Default,
                rules: json!({
                    "cloud_admin": "role:admin and system_scope:all",
                    "owner_admin": "role:admin and 'customer':%(target.type)s \
                                    and project_id:%(target.tenant)s",
                    "subscriber:read": "rule:cloud_admin or rule:owner_admin",
                    "subscriber:write": "(rule:cloud_admin and 'global':%(target.type)s) \
                                         or rule:owner_admin",
                }),
            },
        ),
        (
            SELF_PROTECT,
            Spec {
                enforcer: EnforcerKind::Default,
                rules: json!({
                    "cloud_admin": "role:admin and system_scope:all",
                    "feed:subscribe": "role:service",
                    "policy:verify": "role:service or rule:cloud_admin",
                }),
            },
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_are_valid() {
        for (name, spec) in builtins() {
            spec.validate().unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}
