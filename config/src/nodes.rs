//! One configuration struct per node.

use serde::Deserialize;

use crate::budget::BudgetSection;
use crate::cloud_auth::CloudAuthSection;
use crate::cscf::{PcscfSection, ScscfEntry};
use crate::cx::CxClientSection;
use crate::diameter::DiameterSection;
use crate::error::Invalid;
use crate::hss::{ProvisioningSection, SecuritySection, StoreSection};
use crate::icscf::RegistrationSection;
use crate::load::Validate;
use crate::scscf::{RegEventSection, RegistrarSection, ScscfApiSection, SessionSection};
use crate::sections::{HttpSection, NodeSection, SipSection};
use crate::zones::ZonesSection;

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
    /// `[zones]`: where the core is (requests toward UEs are taken only from it).
    #[serde(default)]
    pub zones: ZonesSection,
}

impl Validate for PcscfConfig {
    fn validate(&self) -> Result<(), Invalid> {
        validate_common(&self.node, &self.http)?;
        self.sip.validate().map_err(|e| e.under("sip"))?;
        self.pcscf.validate().map_err(|e| e.under("pcscf"))?;
        self.budget.validate().map_err(|e| e.under("budget"))?;
        self.zones.validate().map_err(|e| e.under("zones"))?;
        self.zones
            .validate_names_with(&self.sip)
            .map_err(|e| e.under("zones"))?;
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
    /// `[zones]`: where our CSCFs, application servers and peer networks are.
    #[serde(default)]
    pub zones: ZonesSection,
    /// `[budget]`: what unauthenticated traffic may cost.
    #[serde(default)]
    pub budget: BudgetSection,
    /// `[registration]`: the S-CSCF remembered for a challenged REGISTER.
    #[serde(default)]
    pub registration: RegistrationSection,
}

impl Validate for IcscfConfig {
    fn validate(&self) -> Result<(), Invalid> {
        validate_common(&self.node, &self.http)?;
        self.sip.validate().map_err(|e| e.under("sip"))?;
        self.cx.validate().map_err(|e| e.under("cx"))?;
        self.budget.validate().map_err(|e| e.under("budget"))?;
        self.registration
            .validate()
            .map_err(|e| e.under("registration"))?;
        for (i, s) in self.scscf.iter().enumerate() {
            s.validate().map_err(|e| e.under(&format!("scscf[{i}]")))?;
        }
        self.zones.validate().map_err(|e| e.under("zones"))?;
        self.zones
            .validate_names_with(&self.sip)
            .map_err(|e| e.under("zones"))
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
    /// `[zones]`: where our CSCFs, application servers and peer networks are.
    #[serde(default)]
    pub zones: ZonesSection,
    /// `[regevent]`: the reg event package notifier.
    #[serde(default)]
    pub regevent: RegEventSection,
    /// `[api]`: the operator API (registrations and reg event subscriptions).
    #[serde(default)]
    pub api: ScscfApiSection,
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
        self.regevent.validate().map_err(|e| e.under("regevent"))?;
        self.budget.validate().map_err(|e| e.under("budget"))?;
        self.zones.validate().map_err(|e| e.under("zones"))?;
        self.zones
            .validate_names_with(&self.sip)
            .map_err(|e| e.under("zones"))?;
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
