//! Grouped and enumerated Cx AVP values (TS 29.229 §6.3).

use bytes::Bytes;

use super::common::{CxError, Reader};
use crate::avp::Avp;
use crate::dict::{base, cx};

macro_rules! cx_enum {
    ($(#[$doc:meta])* $name:ident { $( $(#[$vdoc:meta])* $v:ident = $n:literal, )* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $( $(#[$vdoc])* $v = $n, )* }
        impl $name {
            /// The value for an Enumerated code, if defined.
            pub fn from_i32(v: i32) -> Option<$name> {
                match v { $( $n => Some($name::$v), )* _ => None }
            }
        }
    };
}

cx_enum! {
    /// Server-Assignment-Type (§6.3.15).
    ServerAssignmentType {
        /// NO_ASSIGNMENT.
        NoAssignment = 0,
        /// REGISTRATION.
        Registration = 1,
        /// RE_REGISTRATION.
        ReRegistration = 2,
        /// UNREGISTERED_USER.
        UnregisteredUser = 3,
        /// TIMEOUT_DEREGISTRATION.
        TimeoutDeregistration = 4,
        /// USER_DEREGISTRATION.
        UserDeregistration = 5,
        /// TIMEOUT_DEREGISTRATION_STORE_SERVER_NAME.
        TimeoutDeregistrationStoreServerName = 6,
        /// USER_DEREGISTRATION_STORE_SERVER_NAME.
        UserDeregistrationStoreServerName = 7,
        /// ADMINISTRATIVE_DEREGISTRATION.
        AdministrativeDeregistration = 8,
        /// AUTHENTICATION_FAILURE.
        AuthenticationFailure = 9,
        /// AUTHENTICATION_TIMEOUT.
        AuthenticationTimeout = 10,
        /// DEREGISTRATION_TOO_MUCH_DATA.
        DeregistrationTooMuchData = 11,
        /// AAA_USER_DATA_REQUEST.
        AaaUserDataRequest = 12,
        /// PGW_UPDATE.
        PgwUpdate = 13,
        /// RESTORATION.
        Restoration = 14,
    }
}

cx_enum! {
    /// User-Authorization-Type (§6.3.24).
    UserAuthorizationType {
        /// REGISTRATION.
        Registration = 0,
        /// DE_REGISTRATION.
        DeRegistration = 1,
        /// REGISTRATION_AND_CAPABILITIES.
        RegistrationAndCapabilities = 2,
    }
}

cx_enum! {
    /// User-Data-Already-Available (§6.3.26).
    UserDataAlreadyAvailable {
        /// USER_DATA_NOT_AVAILABLE.
        NotAvailable = 0,
        /// USER_DATA_ALREADY_AVAILABLE.
        AlreadyAvailable = 1,
    }
}

cx_enum! {
    /// Reason-Code (§6.3.17).
    ReasonCode {
        /// PERMANENT_TERMINATION.
        PermanentTermination = 0,
        /// NEW_SERVER_ASSIGNED.
        NewServerAssigned = 1,
        /// SERVER_CHANGE.
        ServerChange = 2,
        /// REMOVE_S-CSCF.
        RemoveScscf = 3,
    }
}

/// Supported-Features (TS 29.229 §6.3.29).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupportedFeatures {
    /// Vendor-Id.
    pub vendor_id: u32,
    /// Feature-List-ID.
    pub feature_list_id: u32,
    /// Feature-List (bit mask).
    pub feature_list: u32,
}

impl SupportedFeatures {
    pub(crate) fn to_avp(&self) -> Avp {
        Avp::grouped(
            &cx::SUPPORTED_FEATURES,
            &[
                Avp::u32(&base::VENDOR_ID, self.vendor_id),
                Avp::u32(&cx::FEATURE_LIST_ID, self.feature_list_id),
                Avp::u32(&cx::FEATURE_LIST, self.feature_list),
            ],
        )
    }

    pub(crate) fn read_all(r: &Reader<'_>) -> Result<Vec<SupportedFeatures>, CxError> {
        r.groups(&cx::SUPPORTED_FEATURES, |g| {
            Ok(SupportedFeatures {
                vendor_id: g.u32(&base::VENDOR_ID)?,
                feature_list_id: g.u32(&cx::FEATURE_LIST_ID)?,
                feature_list: g.u32(&cx::FEATURE_LIST)?,
            })
        })
    }
}

/// Server-Capabilities (TS 29.229 §6.3.4).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServerCapabilities {
    /// Mandatory-Capability values.
    pub mandatory: Vec<u32>,
    /// Optional-Capability values.
    pub optional: Vec<u32>,
    /// Server-Name values.
    pub server_names: Vec<String>,
}

impl ServerCapabilities {
    pub(crate) fn to_avp(&self) -> Avp {
        let mut v: Vec<Avp> = Vec::new();
        v.extend(
            self.mandatory
                .iter()
                .map(|c| Avp::u32(&cx::MANDATORY_CAPABILITY, *c)),
        );
        v.extend(
            self.optional
                .iter()
                .map(|c| Avp::u32(&cx::OPTIONAL_CAPABILITY, *c)),
        );
        v.extend(
            self.server_names
                .iter()
                .map(|s| Avp::utf8(&cx::SERVER_NAME, s)),
        );
        Avp::grouped(&cx::SERVER_CAPABILITIES, &v)
    }

    pub(crate) fn read(r: &Reader<'_>) -> Result<Option<ServerCapabilities>, CxError> {
        r.opt_group(&cx::SERVER_CAPABILITIES, |g| {
            let u32s = |def| {
                g.all(def)
                    .map(|a| {
                        a.as_u32().map_err(|error| CxError::InvalidAvp {
                            avp: a.clone(),
                            error,
                        })
                    })
                    .collect::<Result<Vec<u32>, CxError>>()
            };
            Ok(ServerCapabilities {
                mandatory: u32s(&cx::MANDATORY_CAPABILITY)?,
                optional: u32s(&cx::OPTIONAL_CAPABILITY)?,
                server_names: g.strings(&cx::SERVER_NAME)?,
            })
        })
    }
}

/// SIP-Digest-Authenticate (TS 29.229 §6.3.36) with the RFC 4740 Digest AVPs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipDigestAuthenticate {
    /// Digest-Realm.
    pub realm: String,
    /// Digest-Algorithm (absent means MD5).
    pub algorithm: Option<String>,
    /// Digest-QoP.
    pub qop: Option<String>,
    /// Digest-HA1 (hex, as the HSS stores it).
    pub ha1: Bytes,
}

/// SIP-Auth-Data-Item (TS 29.229 §6.3.13).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SipAuthDataItem {
    /// SIP-Item-Number.
    pub item_number: Option<u32>,
    /// SIP-Authentication-Scheme ("Digest-AKAv1-MD5", "SIP Digest", "Unknown" ...).
    pub authentication_scheme: Option<String>,
    /// SIP-Authenticate (RAND || AUTN for AKA).
    pub authenticate: Option<Bytes>,
    /// SIP-Authorization (XRES for AKA; RAND || AUTS on re-synchronisation in a MAR).
    pub authorization: Option<Bytes>,
    /// SIP-Authentication-Context.
    pub authentication_context: Option<Bytes>,
    /// Confidentiality-Key.
    pub confidentiality_key: Option<Bytes>,
    /// Integrity-Key.
    pub integrity_key: Option<Bytes>,
    /// SIP-Digest-Authenticate.
    pub digest: Option<SipDigestAuthenticate>,
}

impl SipAuthDataItem {
    pub(crate) fn to_avp(&self) -> Avp {
        let mut v = Vec::new();
        if let Some(n) = self.item_number {
            v.push(Avp::u32(&cx::SIP_ITEM_NUMBER, n));
        }
        if let Some(s) = &self.authentication_scheme {
            v.push(Avp::utf8(&cx::SIP_AUTHENTICATION_SCHEME, s));
        }
        let octets = [
            (&cx::SIP_AUTHENTICATE, &self.authenticate),
            (&cx::SIP_AUTHORIZATION, &self.authorization),
            (
                &cx::SIP_AUTHENTICATION_CONTEXT,
                &self.authentication_context,
            ),
            (&cx::CONFIDENTIALITY_KEY, &self.confidentiality_key),
            (&cx::INTEGRITY_KEY, &self.integrity_key),
        ];
        for (def, val) in octets {
            if let Some(b) = val {
                v.push(Avp::new(def, b.clone()));
            }
        }
        if let Some(d) = &self.digest {
            let mut g = vec![Avp::utf8(&base::DIGEST_REALM, &d.realm)];
            if let Some(a) = &d.algorithm {
                g.push(Avp::utf8(&base::DIGEST_ALGORITHM, a));
            }
            if let Some(q) = &d.qop {
                g.push(Avp::utf8(&base::DIGEST_QOP, q));
            }
            g.push(Avp::new(&base::DIGEST_HA1, d.ha1.clone()));
            v.push(Avp::grouped(&cx::SIP_DIGEST_AUTHENTICATE, &g));
        }
        Avp::grouped(&cx::SIP_AUTH_DATA_ITEM, &v)
    }

    pub(crate) fn read_all(r: &Reader<'_>) -> Result<Vec<SipAuthDataItem>, CxError> {
        r.groups(&cx::SIP_AUTH_DATA_ITEM, |g| {
            Ok(SipAuthDataItem {
                item_number: g.opt_u32(&cx::SIP_ITEM_NUMBER)?,
                authentication_scheme: g.opt_string(&cx::SIP_AUTHENTICATION_SCHEME)?,
                authenticate: g.opt_bytes(&cx::SIP_AUTHENTICATE),
                authorization: g.opt_bytes(&cx::SIP_AUTHORIZATION),
                authentication_context: g.opt_bytes(&cx::SIP_AUTHENTICATION_CONTEXT),
                confidentiality_key: g.opt_bytes(&cx::CONFIDENTIALITY_KEY),
                integrity_key: g.opt_bytes(&cx::INTEGRITY_KEY),
                digest: g.opt_group(&cx::SIP_DIGEST_AUTHENTICATE, |d| {
                    Ok(SipDigestAuthenticate {
                        realm: d.string(&base::DIGEST_REALM)?,
                        algorithm: d.opt_string(&base::DIGEST_ALGORITHM)?,
                        qop: d.opt_string(&base::DIGEST_QOP)?,
                        ha1: d.req(&base::DIGEST_HA1)?.data.clone(),
                    })
                })?,
            })
        })
    }
}

/// Deregistration-Reason (TS 29.229 §6.3.16).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeregistrationReason {
    /// Reason-Code.
    pub reason_code: ReasonCode,
    /// Reason-Info.
    pub reason_info: Option<String>,
}

impl DeregistrationReason {
    pub(crate) fn to_avp(&self) -> Avp {
        let mut v = vec![Avp::i32(&cx::REASON_CODE, self.reason_code as i32)];
        if let Some(i) = &self.reason_info {
            v.push(Avp::utf8(&cx::REASON_INFO, i));
        }
        Avp::grouped(&cx::DEREGISTRATION_REASON, &v)
    }

    pub(crate) fn read(r: &Reader<'_>) -> Result<DeregistrationReason, CxError> {
        r.opt_group(&cx::DEREGISTRATION_REASON, |g| {
            Ok(DeregistrationReason {
                reason_code: g.enumerated(&cx::REASON_CODE, ReasonCode::from_i32)?,
                reason_info: g.opt_string(&cx::REASON_INFO)?,
            })
        })?
        .ok_or(CxError::MissingAvp(&cx::DEREGISTRATION_REASON))
    }
}

/// Charging-Information (TS 29.229 §6.3.19).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChargingInformation {
    /// Primary-Event-Charging-Function-Name.
    pub primary_event_charging_function: Option<String>,
    /// Secondary-Event-Charging-Function-Name.
    pub secondary_event_charging_function: Option<String>,
    /// Primary-Charging-Collection-Function-Name.
    pub primary_charging_collection_function: Option<String>,
    /// Secondary-Charging-Collection-Function-Name.
    pub secondary_charging_collection_function: Option<String>,
}

impl ChargingInformation {
    fn fields(&self) -> [(&'static crate::dict::AvpDef, &Option<String>); 4] {
        [
            (
                &cx::PRIMARY_EVENT_CHARGING_FUNCTION_NAME,
                &self.primary_event_charging_function,
            ),
            (
                &cx::SECONDARY_EVENT_CHARGING_FUNCTION_NAME,
                &self.secondary_event_charging_function,
            ),
            (
                &cx::PRIMARY_CHARGING_COLLECTION_FUNCTION_NAME,
                &self.primary_charging_collection_function,
            ),
            (
                &cx::SECONDARY_CHARGING_COLLECTION_FUNCTION_NAME,
                &self.secondary_charging_collection_function,
            ),
        ]
    }

    pub(crate) fn to_avp(&self) -> Avp {
        let v: Vec<Avp> = self
            .fields()
            .into_iter()
            .filter_map(|(def, val)| val.as_deref().map(|s| Avp::utf8(def, s)))
            .collect();
        Avp::grouped(&cx::CHARGING_INFORMATION, &v)
    }

    pub(crate) fn read(r: &Reader<'_>) -> Result<Option<ChargingInformation>, CxError> {
        r.opt_group(&cx::CHARGING_INFORMATION, |g| {
            Ok(ChargingInformation {
                primary_event_charging_function: g
                    .opt_string(&cx::PRIMARY_EVENT_CHARGING_FUNCTION_NAME)?,
                secondary_event_charging_function: g
                    .opt_string(&cx::SECONDARY_EVENT_CHARGING_FUNCTION_NAME)?,
                primary_charging_collection_function: g
                    .opt_string(&cx::PRIMARY_CHARGING_COLLECTION_FUNCTION_NAME)?,
                secondary_charging_collection_function: g
                    .opt_string(&cx::SECONDARY_CHARGING_COLLECTION_FUNCTION_NAME)?,
            })
        })
    }
}

/// Associated-Identities (TS 29.229 §6.3.33): the private identities sharing the
/// public identities.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AssociatedIdentities {
    /// User-Name values.
    pub user_names: Vec<String>,
}

impl AssociatedIdentities {
    pub(crate) fn to_avp(&self) -> Avp {
        let v: Vec<Avp> = self
            .user_names
            .iter()
            .map(|u| Avp::utf8(&base::USER_NAME, u))
            .collect();
        Avp::grouped(&cx::ASSOCIATED_IDENTITIES, &v)
    }

    pub(crate) fn read(r: &Reader<'_>) -> Result<Option<AssociatedIdentities>, CxError> {
        r.opt_group(&cx::ASSOCIATED_IDENTITIES, |g| {
            Ok(AssociatedIdentities {
                user_names: g.strings(&base::USER_NAME)?,
            })
        })
    }
}
