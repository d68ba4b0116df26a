//! One configuration struct per node.

use serde::Deserialize;

use crate::error::Invalid;
use crate::hss::{ProvisioningSection, SecuritySection, StoreSection};
use crate::load::Validate;
use crate::scscf::{CxClientSection, RegistrarSection};
use crate::sections::{HttpSection, NodeSection, RouteSection, SipSection};

/// Which node a configuration belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// Proxy-CSCF.
    Pcscf,
    /// Interrogating-CSCF.
    Icscf,
    /// Serving-CSCF.
    Scscf,
    /// Home Subscriber Server.
    Hss,
}

impl NodeKind {
    /// Every node, in start order (HSS first, P-CSCF last).
    pub const ALL: [NodeKind; 4] = [
        NodeKind::Hss,
        NodeKind::Scscf,
        NodeKind::Icscf,
        NodeKind::Pcscf,
    ];

    /// Binary and config file name: `pcscf`, `icscf`, `scscf`, `hss`.
    pub fn name(self) -> &'static str {
        match self {
            NodeKind::Pcscf => "pcscf",
            NodeKind::Icscf => "icscf",
            NodeKind::Scscf => "scscf",
            NodeKind::Hss => "hss",
        }
    }
}

fn validate_common(node: &NodeSection, http: &HttpSection) -> Result<(), Invalid> {
    node.validate().map_err(|e| e.under("node"))?;
    http.validate().map_err(|e| e.under("http"))
}

macro_rules! sip_node_config {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            /// `[node]`
            pub node: NodeSection,
            /// `[http]`
            pub http: HttpSection,
            /// `[sip]`
            pub sip: SipSection,
            /// `[route]`: where requests go when no Route header says otherwise.
            pub route: Option<RouteSection>,
        }

        impl Validate for $name {
            fn validate(&self) -> Result<(), Invalid> {
                validate_common(&self.node, &self.http)?;
                self.sip.validate().map_err(|e| e.under("sip"))?;
                if let Some(r) = &self.route {
                    r.validate().map_err(|e| e.under("route"))?;
                }
                Ok(())
            }
        }
    };
}

sip_node_config!(
    /// P-CSCF configuration (`config/dev/pcscf.toml`).
    PcscfConfig
);
sip_node_config!(
    /// I-CSCF configuration (`config/dev/icscf.toml`).
    IcscfConfig
);
/// S-CSCF configuration (`config/dev/scscf.toml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScscfConfig {
    /// `[node]`
    pub node: NodeSection,
    /// `[http]`
    pub http: HttpSection,
    /// `[sip]`
    pub sip: SipSection,
    /// `[route]`: where requests go when no Route header says otherwise.
    pub route: Option<RouteSection>,
    /// `[cx]`: the Diameter Cx client toward the HSS.
    pub cx: CxClientSection,
    /// `[registrar]`: registration and authentication.
    pub registrar: RegistrarSection,
}

impl Validate for ScscfConfig {
    fn validate(&self) -> Result<(), Invalid> {
        validate_common(&self.node, &self.http)?;
        self.sip.validate().map_err(|e| e.under("sip"))?;
        if let Some(r) = &self.route {
            r.validate().map_err(|e| e.under("route"))?;
        }
        self.cx.validate().map_err(|e| e.under("cx"))?;
        self.registrar.validate().map_err(|e| e.under("registrar"))
    }
}

/// HSS configuration (`config/dev/hss.toml`). The Diameter section arrives with the Cx
/// stack.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HssConfig {
    /// `[node]`
    pub node: NodeSection,
    /// `[http]`: also serves the provisioning API under `/api/v1/`.
    pub http: HttpSection,
    /// `[store]`: the subscriber database.
    pub store: StoreSection,
    /// `[provisioning]`: the REST API and its admin token.
    #[serde(default)]
    pub provisioning: ProvisioningSection,
    /// `[security]`: the key protecting AKA secrets at rest.
    pub security: SecuritySection,
}

impl Validate for HssConfig {
    fn validate(&self) -> Result<(), Invalid> {
        validate_common(&self.node, &self.http)?;
        self.store.validate().map_err(|e| e.under("store"))?;
        self.provisioning
            .validate()
            .map_err(|e| e.under("provisioning"))?;
        self.security.validate().map_err(|e| e.under("security"))
    }
}
