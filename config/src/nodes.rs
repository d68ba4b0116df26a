//! One configuration struct per node.

use serde::Deserialize;

use crate::budget::BudgetSection;
use crate::cloud_auth::CloudAuthSection;
use crate::cscf::{PcscfSection, ScscfEntry};
use crate::cx::CxClientSection;
use crate::diameter::DiameterSection;
use crate::error::Invalid;
use crate::hss::{ProvisioningSection, SecuritySection, StoreSection};
use crate::load::Validate;
use crate::scscf::{RegistrarSection, SessionSection};
use crate::sections::{HttpSection, NodeSection, SipSection};

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
    /// Policy service (in `cloud-auth`).
    Policyd,
}

impl NodeKind {
    /// Every node, in start order (policy service and HSS first, P-CSCF last).
    pub const ALL: [NodeKind; 5] = [
        NodeKind::Policyd,
        NodeKind::Hss,
        NodeKind::Scscf,
        NodeKind::Icscf,
        NodeKind::Pcscf,
    ];

    /// Binary and config file name: `pcscf`, `icscf`, `scscf`, `hss`, `policyd`.
    pub fn name(self) -> &'static str {
        match self {
            NodeKind::Pcscf => "pcscf",
            NodeKind::Icscf => "icscf",
            NodeKind::Scscf => "scscf",
            NodeKind::Hss => "hss",
            NodeKind::Policyd => "policyd",
        }
    }
}

fn validate_common(node: &NodeSection, http: &HttpSection) -> Result<(), Invalid> {
    node.validate().map_err(|e| e.under("node"))?;
    http.validate().map_err(|e| e.under("http"))
}

/// P-CSCF configuration (`config/dev/pcscf.toml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PcscfConfig {
    /// `[node]`
    pub node: NodeSection,
    /// `[http]`
    pub http: HttpSection,
    /// `[sip]`: listeners toward UEs and the core.
    pub sip: SipSection,
    /// `[pcscf]`: home networks, P-Visited-Network-ID, registration limits.
    #[serde(default)]
    pub pcscf: PcscfSection,
    /// `[cloud_auth]`: Keystone token and policy checks on requests from UEs (required).
    pub cloud_auth: CloudAuthSection,
    /// `[budget]`: what unauthenticated traffic may cost.
    #[serde(default)]
    pub budget: BudgetSection,
}

impl Validate for PcscfConfig {
    fn validate(&self) -> Result<(), Invalid> {
        validate_common(&self.node, &self.http)?;
        self.sip.validate().map_err(|e| e.under("sip"))?;
        self.pcscf.validate().map_err(|e| e.under("pcscf"))?;
        self.budget.validate().map_err(|e| e.under("budget"))?;
        self.cloud_auth
            .validate()
            .map_err(|e| e.under("cloud_auth"))
    }
}

/// I-CSCF configuration (`config/dev/icscf.toml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IcscfConfig {
    /// `[node]`
    pub node: NodeSection,
    /// `[http]`
    pub http: HttpSection,
    /// `[sip]`
    pub sip: SipSection,
    /// `[cx]`: the Diameter client toward the HSS.
    pub cx: CxClientSection,
    /// `[[scscf]]`: the S-CSCFs this I-CSCF may select.
    #[serde(default)]
    pub scscf: Vec<ScscfEntry>,
    /// `[originating]`: who may send requests on behalf of a user (`orig`).
    #[serde(default)]
    pub originating: OriginatingSection,
    /// `[budget]`: what unauthenticated traffic may cost.
    #[serde(default)]
    pub budget: BudgetSection,
}

/// `[originating]` of the I-CSCF: the application servers that may send it requests
/// on behalf of a user, with `orig` in their Route (TS 24.229 §5.3.2.1). The I-CSCF
/// also faces other networks, whose requests must not originate as our users: a
/// request with `orig` from any other source address gets 403.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OriginatingSection {
    /// Source networks trusted with `orig` (CIDR); default loopback only
    /// (`127.0.0.0/8`, `::1/128`).
    #[serde(default = "loopback_nets")]
    pub from: Vec<ipnet::IpNet>,
}

impl Default for OriginatingSection {
    fn default() -> Self {
        OriginatingSection {
            from: loopback_nets(),
        }
    }
}

fn loopback_nets() -> Vec<ipnet::IpNet> {
    ["127.0.0.0/8", "::1/128"]
        .iter()
        .filter_map(|n| n.parse().ok())
        .collect()
}

impl OriginatingSection {
    /// True when `ip` is in a trusted network.
    pub fn trusts(&self, ip: std::net::IpAddr) -> bool {
        self.from.iter().any(|n| n.contains(&ip))
    }
}

impl Validate for IcscfConfig {
    fn validate(&self) -> Result<(), Invalid> {
        validate_common(&self.node, &self.http)?;
        self.sip.validate().map_err(|e| e.under("sip"))?;
        self.cx.validate().map_err(|e| e.under("cx"))?;
        self.budget.validate().map_err(|e| e.under("budget"))?;
        for (i, s) in self.scscf.iter().enumerate() {
            s.validate().map_err(|e| e.under(&format!("scscf[{i}]")))?;
        }
        Ok(())
    }
}

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
    /// `[cx]`: the Diameter Cx client toward the HSS.
    pub cx: CxClientSection,
    /// `[registrar]`: registration and authentication.
    pub registrar: RegistrarSection,
    /// `[session]`: originating and terminating routing of sessions.
    pub session: SessionSection,
    /// `[cloud_auth]`: token and policy checks on registrations (required).
    pub cloud_auth: CloudAuthSection,
    /// `[budget]`: what unauthenticated traffic may cost.
    #[serde(default)]
    pub budget: BudgetSection,
}

impl Validate for ScscfConfig {
    fn validate(&self) -> Result<(), Invalid> {
        validate_common(&self.node, &self.http)?;
        self.sip.validate().map_err(|e| e.under("sip"))?;
        self.cx.validate().map_err(|e| e.under("cx"))?;
        self.registrar
            .validate()
            .map_err(|e| e.under("registrar"))?;
        self.session.validate().map_err(|e| e.under("session"))?;
        self.budget.validate().map_err(|e| e.under("budget"))?;
        self.cloud_auth
            .validate()
            .map_err(|e| e.under("cloud_auth"))
    }
}

/// HSS configuration (`config/dev/hss.toml`).
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
    /// `[diameter]`: the Cx server; without it the HSS serves only the provisioning API.
    pub diameter: Option<DiameterSection>,
}

impl Validate for HssConfig {
    fn validate(&self) -> Result<(), Invalid> {
        validate_common(&self.node, &self.http)?;
        self.store.validate().map_err(|e| e.under("store"))?;
        self.provisioning
            .validate()
            .map_err(|e| e.under("provisioning"))?;
        self.security.validate().map_err(|e| e.under("security"))?;
        if let Some(d) = &self.diameter {
            d.validate().map_err(|e| e.under("diameter"))?;
        }
        Ok(())
    }
}
