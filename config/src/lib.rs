//! Typed, validated configuration shared by every node of the IMS core.
//!
//! Each node has one struct ([`PcscfConfig`], [`IcscfConfig`], [`ScscfConfig`],
//! [`HssConfig`], [`PolicydConfig`]) read from a TOML file. Unknown keys are rejected, and every error names
//! the file and the dotted key that is wrong, e.g.
//! `config/dev/pcscf.toml: sip.tls[0]: invalid socket address syntax`.
//!
//! Relative paths inside a configuration (certificates, data files) are resolved against
//! the working directory of the node. `${NAME}` and `${NAME:-default}` are replaced by
//! environment variables before parsing; the dev configs use `${IMS_DATA_DIR:-data}`,
//! which `imsctl up --data-dir` sets.

mod budget;
mod cloud_auth;
mod cscf;
mod cx;
mod diameter;
mod env;
mod error;
mod host_port;
mod hss;
mod icscf;
mod load;
mod nodes;
mod policyd;
mod scscf;
mod sections;
mod zones;

pub use budget::BudgetSection;
pub use cloud_auth::{CloudAuthMode, CloudAuthSection, ALL_METHODS};
pub use cscf::{PcscfSection, ScscfEntry, MEMORY_STORE};
pub use cx::{CxClientSection, HssEntry, HssPeer, HssPeerEntry};
pub use diameter::{CapabilitiesSection, DiameterPeerSection, DiameterSection, DiameterTlsSection};
pub use error::{ConfigError, Invalid};
pub use host_port::HostPort;
pub use hss::{ProvisioningSection, SecuritySection, StoreSection};
pub use icscf::RegistrationSection;
pub use load::{load, parse_str, Validate};
pub use nodes::{HssConfig, IcscfConfig, NodeKind, PcscfConfig, ScscfConfig};
pub use policyd::{KeystoneSection, PolicySection, PolicydConfig};
pub use scscf::{RegEventSection, RegistrarSection, ScscfApiSection, SessionSection};
pub use sections::{
    available_cores, AutoWorkers, DnsSection, HepSection, HttpSection, HttpTlsSection,
    LimitsSection, LogFormat, NodeSection, SipFaceSection, SipSection, TlsSection, Workers,
};
pub use zones::ZonesSection;
