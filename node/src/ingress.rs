//! The ingress filter: what a zone may send to a CSCF, and what of it is believed.
//!
//! The node's policy tells the kind of a request ([`RequestKind`]: it knows its own
//! Route values, flow tokens and odi), the [`Classifier`] tells the sender's zone (by
//! its verified TLS client-certificate names, else its address), and
//! [`Ingress::admit`] applies the one table of rules below: a request kind the zone
//! may not send is refused (the policy answers 403, an ACK is dropped), and the
//! identity and charging headers the zone is not trusted with are removed (TS 24.229
//! §4.4, RFC 3325 §5, RFC 5502 §4).
//!
//! | node | zone | may send |
//! |---|---|---|
//! | P-CSCF | access (any sender not in `[zones]`) | REGISTER, initial requests, in-dialog requests on our Record-Route for their own flow |
//! | P-CSCF | core | requests toward a UE (our flow token) |
//! | I-CSCF | core | REGISTER, originating (`orig`), terminating, in-dialog |
//! | I-CSCF | application servers | originating (`orig`), terminating, in-dialog |
//! | I-CSCF | interconnect | REGISTER (a visited network's P-CSCF), terminating |
//! | I-CSCF | unclassified | terminating |
//! | S-CSCF | core | REGISTER, originating (`orig`), terminating, in-dialog, back from an AS (odi) |
//! | S-CSCF | application servers | originating, terminating, in-dialog, back from an AS |
//! | S-CSCF | interconnect | in-dialog |
//!
//! Headers kept: everything from core; P-Asserted-Identity, P-Served-User and the
//! charging headers from application servers; none of [`IDENTITY_HEADERS`] from any
//! other zone.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use ims_config::ZonesSection;
use ims_sip::message::build::response_with;
use ims_sip::proxy::engine::Decision;
use ims_sip::transport::{PeerNames, Source};
use ims_sip::{HeaderName, SipMessage};

use crate::classify::Classifier;
use crate::zone::Zone;

/// The headers only the trust domain may write: identity (RFC 3325, RFC 5502),
/// charging (RFC 7315 §4.5-4.6) and the visited network (RFC 7315 §4.3).
pub const IDENTITY_HEADERS: [HeaderName; 6] = [
    HeaderName::PAssertedIdentity,
    HeaderName::PPreferredIdentity,
    HeaderName::PServedUser,
    HeaderName::PChargingVector,
    HeaderName::PChargingFunctionAddresses,
    HeaderName::PVisitedNetworkId,
];

/// The headers of [`IDENTITY_HEADERS`] an application server is trusted with: it
/// asserts the identity it acts for and the served user (TS 24.229 §5.7.3), and takes
/// part in charging.
const FROM_APPLICATION_SERVERS: [HeaderName; 4] = [
    HeaderName::PAssertedIdentity,
    HeaderName::PServedUser,
    HeaderName::PChargingVector,
    HeaderName::PChargingFunctionAddresses,
];

/// Which CSCF applies the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The edge toward UEs (TS 24.229 §5.2).
    Pcscf,
    /// The entry point of the home network (§5.3).
    Icscf,
    /// Registrar and session control (§5.4).
    Scscf,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Pcscf => "pcscf",
            Role::Icscf => "icscf",
            Role::Scscf => "scscf",
        }
    }
}

/// What a request is, as the receiving node's policy tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// REGISTER.
    Register,
    /// An initial request on behalf of its sender: from a UE at the P-CSCF; with `orig`
    /// in our Route value at the I-CSCF and S-CSCF.
    Originating,
    /// An initial request toward a served user (I-CSCF, S-CSCF).
    Terminating,
    /// A request inside a dialog (To tag; ACK included) that follows its Route set. At
    /// the P-CSCF: from the UE whose flow our Record-Route value (flow token) names.
    InDialog,
    /// Coming back from an application server with our original dialog identifier
    /// (S-CSCF).
    FromApplicationServer,
    /// Toward a UE over the flow our flow token names (P-CSCF).
    TowardUe,
    /// Inside a dialog but not on a Route we inserted for this sender (P-CSCF): nobody
    /// may send it.
    NotOurRoute,
}

impl RequestKind {
    fn name(self) -> &'static str {
        match self {
            RequestKind::Register => "register",
            RequestKind::Originating => "originating",
            RequestKind::Terminating => "terminating",
            RequestKind::InDialog => "in_dialog",
            RequestKind::FromApplicationServer => "from_application_server",
            RequestKind::TowardUe => "toward_ue",
            RequestKind::NotOurRoute => "not_our_route",
        }
    }
}

/// Whether `zone` may send `kind` to `role` (the table in the module docs).
pub fn allows(role: Role, zone: Zone, kind: RequestKind) -> bool {
    use RequestKind as K;
    use Zone as Z;
    match (role, zone) {
        (Role::Pcscf, Z::Access) => matches!(kind, K::Register | K::Originating | K::InDialog),
        (Role::Pcscf, Z::Core) => kind == K::TowardUe,
        (Role::Icscf, Z::Core) => matches!(
            kind,
            K::Register | K::Originating | K::Terminating | K::InDialog
        ),
        (Role::Icscf, Z::ApplicationServer) => {
            matches!(kind, K::Originating | K::Terminating | K::InDialog)
        }
        (Role::Icscf, Z::Interconnect) => matches!(kind, K::Register | K::Terminating),
        (Role::Icscf, Z::Unclassified) => kind == K::Terminating,
        (Role::Scscf, Z::Core) => matches!(
            kind,
            K::Register | K::Originating | K::Terminating | K::InDialog | K::FromApplicationServer
        ),
        (Role::Scscf, Z::ApplicationServer) => matches!(
            kind,
            K::Originating | K::Terminating | K::InDialog | K::FromApplicationServer
        ),
        (Role::Scscf, Z::Interconnect) => kind == K::InDialog,
        _ => false,
    }
}

/// Whether `zone` is trusted with `header` (one of [`IDENTITY_HEADERS`]).
pub fn trusts(zone: Zone, header: &HeaderName) -> bool {
    match zone {
        Zone::Core => true,
        Zone::ApplicationServer => FROM_APPLICATION_SERVERS.contains(header),
        Zone::Access | Zone::Interconnect | Zone::Unclassified => false,
    }
}

/// A request kind its sender's zone may not send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{kind:?} request from the {zone} zone refused")]
pub struct Refused {
    /// The sender's zone.
    pub zone: Zone,
    /// What the request is.
    pub kind: RequestKind,
}

impl Refused {
    /// The answer to a refused request: 403, the same for every reason (nothing is
    /// told about what would have been accepted).
    pub fn response(&self, request: &SipMessage) -> Decision {
        Decision::Respond(response_with(request, 403, "Forbidden", None, &[]))
    }
}

/// Where refused requests are counted: the sender's address and a short reason (the
/// request kind). A node passes its refusal summary (`ims_runtime::budget::Refusals`).
pub type RefusalSink = Arc<dyn Fn(IpAddr, &'static str) + Send + Sync>;

/// One CSCF's ingress filter: its zones and its role.
#[derive(Clone)]
pub struct Ingress {
    role: Role,
    classifier: Classifier,
    /// Where refusals are counted and summarised; `None`: one INFO line each.
    refusals: Option<RefusalSink>,
}

impl std::fmt::Debug for Ingress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingress")
            .field("role", &self.role)
            .field("classifier", &self.classifier)
            .field("summarised", &self.refusals.is_some())
            .finish()
    }
}

impl Ingress {
    /// The filter of `role` with the zones of `[zones]`.
    pub fn new(role: Role, zones: &ZonesSection) -> Ingress {
        Ingress {
            role,
            classifier: Classifier::from_section(zones),
            refusals: None,
        }
    }

    /// The same filter, counting its refusals in `refusals` (a node's refusal summary:
    /// one line per interval and a metric) instead of logging one line per refused
    /// request: a flood from outside the core costs no log line each.
    pub fn with_refusals(
        mut self,
        refusals: impl Fn(IpAddr, &'static str) + Send + Sync + 'static,
    ) -> Ingress {
        self.refusals = Some(Arc::new(refusals));
        self
    }

    /// The zone of a sender at `ip` whose verified TLS client certificate carries
    /// `certificate` (a [`Source`]'s `peer_names`): by the names, else by the address
    /// ([`Classifier`]). A P-CSCF faces UEs: a sender that is none of ours is
    /// [`Zone::Access`].
    pub fn zone(&self, ip: IpAddr, certificate: Option<&PeerNames>) -> Zone {
        match (self.role, self.classifier.classify(ip, certificate)) {
            (Role::Pcscf, Zone::Unclassified) => Zone::Access,
            (_, zone) => zone,
        }
    }

    /// [`Ingress::admit`] for a sender classified by [`Ingress::zone`] alone (the
    /// I-CSCF and S-CSCF): a copy of `request` with the untrusted headers removed, and
    /// whether anything was removed.
    pub fn filter(
        &self,
        request: &SipMessage,
        source: &Source,
        kind: RequestKind,
    ) -> Result<(SipMessage, bool), Refused> {
        let zone = self.zone(source.remote.ip(), source.peer_names.as_ref());
        let mut filtered = request.clone();
        let stripped = self.admit(&mut filtered, source.remote, zone, kind)?;
        Ok((filtered, stripped > 0))
    }

    /// Applies the rules to `request` of `kind` from `remote` in `zone`: refused (and
    /// logged) when the zone may not send it, else the headers the zone is not
    /// trusted with are removed; returns how many were.
    pub fn admit(
        &self,
        request: &mut SipMessage,
        remote: SocketAddr,
        zone: Zone,
        kind: RequestKind,
    ) -> Result<usize, Refused> {
        if !allows(self.role, zone, kind) {
            match &self.refusals {
                Some(refusals) => refusals(remote.ip(), kind.name()),
                None => tracing::info!(
                    node = self.role.name(),
                    %zone,
                    kind = kind.name(),
                    %remote,
                    method = ?request.method(),
                    "request refused at the trust boundary"
                ),
            }
            return Err(Refused { zone, kind });
        }
        Ok(strip_untrusted(request, zone))
    }
}

/// Removes the [`IDENTITY_HEADERS`] `zone` is not trusted with; returns how many
/// header lines went.
pub fn strip_untrusted(request: &mut SipMessage, zone: Zone) -> usize {
    IDENTITY_HEADERS
        .iter()
        .filter(|h| !trusts(zone, h))
        .map(|h| request.headers.remove_all(h))
        .sum()
}

/// `decision` made for the filtered `edited` request: a plain [`Decision::Forward`]
/// would send the request as received, so it becomes a [`Decision::ForwardWith`] of
/// `edited` when the filter changed it (`changed`).
pub fn forward_filtered(decision: Decision, edited: SipMessage, changed: bool) -> Decision {
    match decision {
        Decision::Forward(forward) if changed => Decision::ForwardWith {
            request: edited,
            flow: None,
            forward,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests;
