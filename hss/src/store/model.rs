//! What the HSS stores about a subscriber (TS 29.228 §6.5 and Annex B): a subscription
//! holding private identities with their credentials, public identities with their
//! registration state, service profiles with initial filter criteria, roaming networks,
//! and the cloud profile (Keystone project, optional user).

use ims_sip::auth::milenage::Block;
use ims_sip::auth::{Ha1, Sqn};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The cloud tenant a subscription belongs to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloudProfile {
    /// Keystone project id.
    #[serde(default)]
    pub project_id: Option<String>,
    /// Keystone user id, if the subscriber is bound to one user.
    #[serde(default)]
    pub user_id: Option<String>,
}

/// AKA secrets as written: K and OPc (TS 35.206), AMF, and optionally SQN_HE.
#[derive(Clone, PartialEq, Eq)]
pub struct AkaSecrets {
    /// Subscriber key K.
    pub k: Block,
    /// OPc (derive it from OP with [`ims_sip::auth::milenage::opc`]).
    pub opc: Block,
    /// Authentication management field.
    pub amf: [u8; 2],
    /// SQN_HE to start from; `None` keeps the stored one (0 for a new identity).
    pub sqn: Option<Sqn>,
}

impl std::fmt::Debug for AkaSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AkaSecrets")
            .field("amf", &hex::encode(self.amf))
            .field("sqn", &self.sqn)
            .finish_non_exhaustive()
    }
}

/// A private identity (IMPI) as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivateIdentityData {
    /// The IMPI, e.g. `alice@ims.example.net` (TS 23.003 §13.3).
    pub impi: String,
    /// Digest realm the HA1 was computed for.
    pub realm: String,
    /// Digest HA1 (RFC 2617 §3.2.2.2); `None` on update keeps the stored one.
    pub digest_ha1: Option<Ha1>,
    /// AKA secrets; `None` on update keeps the stored ones.
    pub aka: Option<AkaSecrets>,
}

/// A public identity (IMPU) and where it belongs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublicIdentity {
    /// `sip:` or `tel:` URI.
    pub impu: String,
    /// Barring-Indication (TS 29.228 §6.5.2.1.1 `BarringIndication`).
    #[serde(default)]
    pub barred: bool,
    /// Implicit registration set: identities with the same number register together
    /// (TS 23.228 §4.3.3.3); `None` is a set of its own.
    #[serde(default)]
    pub implicit_set: Option<i64>,
    /// Name of the service profile of the subscription this identity uses.
    #[serde(default = "default_profile")]
    pub service_profile: String,
}

/// The profile name used when none is given.
pub fn default_profile() -> String {
    "default".to_string()
}

/// Everything written for one subscription.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscriptionData {
    /// Keystone project and user.
    pub cloud: CloudProfile,
    /// Private identities and credentials.
    pub private_identities: Vec<PrivateIdentityData>,
    /// Public identities.
    pub public_identities: Vec<PublicIdentity>,
    /// Service profiles referenced by the public identities.
    pub service_profiles: Vec<ServiceProfile>,
    /// Visited network identifiers where roaming is allowed.
    pub roaming_networks: Vec<String>,
}

/// IMS-User-State of a public identity (TS 29.229 §6.3.7; TS 29.228 §6.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RegistrationState {
    /// No S-CSCF serves the identity.
    #[default]
    NotRegistered,
    /// Registered through an S-CSCF.
    Registered,
    /// Not registered, but an S-CSCF holds it for unregistered services.
    Unregistered,
}

impl RegistrationState {
    /// The IMS-User-State value stored in the database.
    pub fn code(self) -> i64 {
        match self {
            RegistrationState::NotRegistered => 0,
            RegistrationState::Registered => 1,
            RegistrationState::Unregistered => 2,
        }
    }

    /// From the stored value.
    pub fn from_code(code: i64) -> Option<RegistrationState> {
        match code {
            0 => Some(RegistrationState::NotRegistered),
            1 => Some(RegistrationState::Registered),
            2 => Some(RegistrationState::Unregistered),
            _ => None,
        }
    }
}

/// S-CSCF assignment and registration state of a public identity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Registration {
    /// The state.
    pub state: RegistrationState,
    /// SIP URI of the assigned S-CSCF (Server-Name), if any.
    pub scscf: Option<String>,
}

/// A public identity with its registration, as read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PublicIdentityInfo {
    /// The identity.
    #[serde(flatten)]
    pub identity: PublicIdentity,
    /// Its S-CSCF assignment and state.
    pub registration: Registration,
}

/// What is known about AKA credentials without revealing them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AkaInfo {
    /// AMF, 4 hex digits.
    pub amf: String,
    /// Current SQN_HE.
    pub sqn: u64,
}

/// Which credentials an IMPI has; never the secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuthInfo {
    /// A digest HA1 is stored.
    pub digest: bool,
    /// AKA credentials are stored.
    pub aka: Option<AkaInfo>,
}

/// A private identity as read: no secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PrivateIdentityInfo {
    /// The IMPI.
    pub impi: String,
    /// Digest realm.
    pub realm: String,
    /// Which credentials exist.
    pub auth: AuthInfo,
}

/// A stored subscription, as read: secrets are never part of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Subscription {
    /// Subscription id.
    pub id: String,
    /// Keystone project and user.
    pub cloud: CloudProfile,
    /// Private identities.
    pub private_identities: Vec<PrivateIdentityInfo>,
    /// Public identities with their registration.
    pub public_identities: Vec<PublicIdentityInfo>,
    /// Service profiles.
    pub service_profiles: Vec<ServiceProfile>,
    /// Visited networks where roaming is allowed.
    pub roaming_networks: Vec<String>,
    /// Creation time, Unix seconds.
    pub created_at: i64,
    /// Last change, Unix seconds.
    pub updated_at: i64,
}

/// Decrypted credentials of one IMPI, for the Cx MAR handler (TS 29.228 §6.3.3).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The IMPI.
    pub impi: String,
    /// Subscription it belongs to.
    pub subscription_id: String,
    /// Digest realm.
    pub realm: String,
    /// Digest HA1, if provisioned.
    pub digest_ha1: Option<Ha1>,
    /// K, OPc, AMF and SQN_HE, if provisioned.
    pub aka: Option<AkaCredentials>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("impi", &self.impi)
            .field("realm", &self.realm)
            .field("digest", &self.digest_ha1.is_some())
            .field("aka", &self.aka.is_some())
            .finish()
    }
}

/// Stored AKA credentials (TS 33.102 §6.3): K, OPc, AMF and the current SQN_HE.
#[derive(Clone, PartialEq, Eq)]
pub struct AkaCredentials {
    /// Subscriber key K.
    pub k: Block,
    /// OPc.
    pub opc: Block,
    /// AMF.
    pub amf: [u8; 2],
    /// SQN_HE as stored.
    pub sqn: Sqn,
}

/// Service profile (TS 29.228 Annex B.2.2 `ServiceProfile`) with its iFCs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceProfile {
    /// Name, unique in the subscription.
    pub name: String,
    /// Initial filter criteria, in any order (priority decides).
    #[serde(default)]
    pub ifcs: Vec<InitialFilterCriteria>,
}

/// `InitialFilterCriteria` (TS 29.228 Annex B.2.2, TS 29.228 Annex C for the logic).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InitialFilterCriteria {
    /// `Priority`: lower is evaluated first.
    pub priority: i64,
    /// `TriggerPoint`; absent means the iFC always matches.
    #[serde(default)]
    pub trigger_point: Option<TriggerPoint>,
    /// `ApplicationServer`.
    pub application_server: ApplicationServer,
    /// `ProfilePartIndicator`: which registration state the iFC applies to.
    #[serde(default)]
    pub profile_part_indicator: Option<ProfilePartIndicator>,
}

/// `TriggerPoint`: SPTs combined in conjunctive (CNF) or disjunctive (DNF) normal form,
/// grouped by their `Group` number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TriggerPoint {
    /// `ConditionTypeCNF`: true for CNF (AND of ORed groups), false for DNF.
    pub condition_type_cnf: bool,
    /// The service point triggers.
    pub spts: Vec<Spt>,
}

/// A service point trigger (`SPT`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Spt {
    /// `ConditionNegated`.
    #[serde(default)]
    pub condition_negated: bool,
    /// `Group`.
    #[serde(default)]
    pub group: i64,
    /// What the SPT tests.
    #[serde(flatten)]
    pub condition: SptCondition,
}

/// The test of one SPT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum SptCondition {
    /// `RequestURI`: regular expression on the Request-URI.
    RequestUri {
        /// The expression.
        request_uri: String,
    },
    /// `Method`: the SIP method.
    Method {
        /// The method, e.g. `INVITE`.
        method: String,
        /// `Extension/RegistrationType` (TS 29.228 Annex B.2.2, Annex C): with method
        /// `REGISTER` only, the kinds of registration the SPT matches (at most two,
        /// none listed twice); empty (the default) matches all three.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        registration_type: Vec<RegistrationType>,
    },
    /// `SIPHeader`: presence of a header, or a regular expression on its content.
    SipHeader {
        /// Header name.
        header: String,
        /// Expression on the content; absent tests presence.
        #[serde(default)]
        content: Option<String>,
    },
    /// `SessionCase`.
    SessionCase {
        /// The case.
        session_case: SessionCase,
    },
    /// `SessionDescription`: an SDP line and optionally its content.
    SessionDescription {
        /// SDP line type, e.g. `m`.
        line: String,
        /// Expression on the line's content.
        #[serde(default)]
        content: Option<String>,
    },
}

/// `SessionCase` values (TS 29.228 Annex B.2.2, table B.2.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SessionCase {
    /// 0
    Originating,
    /// 1
    TerminatingRegistered,
    /// 2
    TerminatingUnregistered,
    /// 3
    OriginatingUnregistered,
    /// 4
    OriginatingCdiv,
}

impl SessionCase {
    /// The enumerated value of TS 29.228.
    pub fn code(self) -> i64 {
        match self {
            SessionCase::Originating => 0,
            SessionCase::TerminatingRegistered => 1,
            SessionCase::TerminatingUnregistered => 2,
            SessionCase::OriginatingUnregistered => 3,
            SessionCase::OriginatingCdiv => 4,
        }
    }

    /// From the enumerated value.
    pub fn from_code(code: i64) -> Option<SessionCase> {
        [
            SessionCase::Originating,
            SessionCase::TerminatingRegistered,
            SessionCase::TerminatingUnregistered,
            SessionCase::OriginatingUnregistered,
            SessionCase::OriginatingCdiv,
        ]
        .into_iter()
        .find(|c| c.code() == code)
    }
}

/// `RegistrationType` values (TS 29.228 Annex B.2.2): which REGISTER
/// requests a `Method` REGISTER SPT matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RegistrationType {
    /// 0: an initial registration.
    InitialRegistration,
    /// 1: a re-registration.
    ReRegistration,
    /// 2: a de-registration (UE-initiated or by the network).
    DeRegistration,
}

impl RegistrationType {
    /// All values, in the order of their codes.
    pub const ALL: [RegistrationType; 3] = [
        RegistrationType::InitialRegistration,
        RegistrationType::ReRegistration,
        RegistrationType::DeRegistration,
    ];

    /// The enumerated value of TS 29.228.
    pub fn code(self) -> i64 {
        match self {
            RegistrationType::InitialRegistration => 0,
            RegistrationType::ReRegistration => 1,
            RegistrationType::DeRegistration => 2,
        }
    }

    /// From the enumerated value.
    pub fn from_code(code: i64) -> Option<RegistrationType> {
        RegistrationType::ALL.into_iter().find(|t| t.code() == code)
    }
}

/// `ApplicationServer` of an iFC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplicationServer {
    /// `ServerName`: SIP URI of the AS.
    pub server_name: String,
    /// `DefaultHandling` when the AS cannot be reached.
    #[serde(default)]
    pub default_handling: DefaultHandling,
    /// `ServiceInfo`, passed to the AS in the third-party REGISTER body.
    #[serde(default)]
    pub service_info: Option<String>,
    /// `IncludeRegisterRequest` (Rel-9+).
    #[serde(default)]
    pub include_register_request: bool,
    /// `IncludeRegisterResponse` (Rel-9+).
    #[serde(default)]
    pub include_register_response: bool,
}

/// `DefaultHandling` (TS 29.228 Annex B.2.2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DefaultHandling {
    /// 0: continue the session without the AS.
    #[default]
    SessionContinued,
    /// 1: terminate the session.
    SessionTerminated,
}

impl DefaultHandling {
    /// The enumerated value.
    pub fn code(self) -> i64 {
        match self {
            DefaultHandling::SessionContinued => 0,
            DefaultHandling::SessionTerminated => 1,
        }
    }

    /// From the enumerated value.
    pub fn from_code(code: i64) -> Option<DefaultHandling> {
        match code {
            0 => Some(DefaultHandling::SessionContinued),
            1 => Some(DefaultHandling::SessionTerminated),
            _ => None,
        }
    }
}

/// `ProfilePartIndicator` (TS 29.228 Annex B.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ProfilePartIndicator {
    /// 0: applies while registered.
    Registered,
    /// 1: applies while unregistered.
    Unregistered,
}

impl ProfilePartIndicator {
    /// The enumerated value.
    pub fn code(self) -> i64 {
        match self {
            ProfilePartIndicator::Registered => 0,
            ProfilePartIndicator::Unregistered => 1,
        }
    }

    /// From the enumerated value.
    pub fn from_code(code: i64) -> Option<ProfilePartIndicator> {
        match code {
            0 => Some(ProfilePartIndicator::Registered),
            1 => Some(ProfilePartIndicator::Unregistered),
            _ => None,
        }
    }
}
