//! Trust zones (design brief §7): where a message came from decides what it may claim.

use std::fmt;

/// The zone a sender belongs to, from the receiving node's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Zone {
    /// UEs, toward the P-CSCF. A P-CSCF counts every sender that is not one of ours
    /// as access.
    Access,
    /// Our own P-, I- and S-CSCFs.
    Core,
    /// Application servers named in iFCs.
    ApplicationServer,
    /// Peer networks (their I-CSCFs, IBCFs, a visited network's P-CSCF).
    Interconnect,
    /// Anyone else: trusted with nothing.
    Unclassified,
}

impl Zone {
    /// The name used in logs and the docs.
    pub fn name(self) -> &'static str {
        match self {
            Zone::Access => "access",
            Zone::Core => "core",
            Zone::ApplicationServer => "application_server",
            Zone::Interconnect => "interconnect",
            Zone::Unclassified => "unclassified",
        }
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
