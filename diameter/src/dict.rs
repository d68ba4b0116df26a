//! Dictionaries: the base protocol AVPs of RFC 6733 §4.5 and §8, the Cx/Dx AVPs of
//! 3GPP TS 29.229 §6.3 (vendor 10415), the SIP Digest AVPs of RFC 4740 §9.5 used by Cx,
//! command codes, application ids and result codes (RFC 6733 §7.1, TS 29.229 §6.2).

use crate::avp::Avp;

/// Data format of an AVP (RFC 6733 §4.2 and §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AvpType {
    /// OctetString.
    OctetString,
    /// UTF8String.
    Utf8String,
    /// DiameterIdentity (an FQDN).
    DiameterIdentity,
    /// DiameterURI.
    DiameterUri,
    /// Address.
    Address,
    /// Unsigned32.
    Unsigned32,
    /// Unsigned64.
    Unsigned64,
    /// Integer32.
    Integer32,
    /// Enumerated (an Integer32).
    Enumerated,
    /// Time.
    Time,
    /// Grouped.
    Grouped,
}

/// A dictionary entry: name, code, vendor and whether the M bit is set when sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AvpDef {
    /// AVP name as in the specification.
    pub name: &'static str,
    /// AVP code.
    pub code: u32,
    /// Vendor-ID (None for IETF AVPs).
    pub vendor_id: Option<u32>,
    /// Whether the M bit is set on the AVPs we send.
    pub mandatory: bool,
    /// Data format.
    pub ty: AvpType,
}

/// The 3GPP vendor id.
pub const VENDOR_3GPP: u32 = 10415;

/// The Cx/Dx application id (TS 29.229 §7.1).
pub const CX_APPLICATION_ID: u32 = 16_777_216;
/// The relay application id (RFC 6733 §2.4).
pub const RELAY_APPLICATION_ID: u32 = 0xffff_ffff;
/// The common-messages application id of the base protocol (RFC 6733 §2.4).
pub const COMMON_APPLICATION_ID: u32 = 0;

macro_rules! avps {
    ($vendor:expr; $( $(#[$doc:meta])* $id:ident = $name:literal, $code:literal, $m:literal, $ty:ident; )*) => {
        $( $(#[$doc])* pub const $id: AvpDef = AvpDef {
            name: $name, code: $code, vendor_id: $vendor, mandatory: $m, ty: AvpType::$ty,
        }; )*
        /// Every entry of this dictionary.
        pub const ALL: &[AvpDef] = &[$($id),*];
    };
}

/// Base protocol AVPs (RFC 6733 §4.5, §6, §8) and RFC 4740 Digest AVPs.
pub mod base {
    use super::{AvpDef, AvpType};
    avps! { None;
        /// User-Name (RFC 6733 §8.14).
        USER_NAME = "User-Name", 1, true, Utf8String;
        /// Proxy-State (RFC 6733 §6.7.4).
        PROXY_STATE = "Proxy-State", 33, true, OctetString;
        /// Digest-Realm (RFC 4740 §9.5.1).
        DIGEST_REALM = "Digest-Realm", 104, true, Utf8String;
        /// Digest-QoP (RFC 4740 §9.5.7).
        DIGEST_QOP = "Digest-QoP", 110, true, Utf8String;
        /// Digest-Algorithm (RFC 4740 §9.5.8).
        DIGEST_ALGORITHM = "Digest-Algorithm", 111, true, Utf8String;
        /// Digest-HA1 (RFC 4740 §9.5.18).
        DIGEST_HA1 = "Digest-HA1", 121, true, OctetString;
        /// Host-IP-Address (RFC 6733 §5.3.5).
        HOST_IP_ADDRESS = "Host-IP-Address", 257, true, Address;
        /// Auth-Application-Id (RFC 6733 §6.8).
        AUTH_APPLICATION_ID = "Auth-Application-Id", 258, true, Unsigned32;
        /// Acct-Application-Id (RFC 6733 §6.9).
        ACCT_APPLICATION_ID = "Acct-Application-Id", 259, true, Unsigned32;
        /// Vendor-Specific-Application-Id (RFC 6733 §6.11).
        VENDOR_SPECIFIC_APPLICATION_ID = "Vendor-Specific-Application-Id", 260, true, Grouped;
        /// Session-Id (RFC 6733 §8.8).
        SESSION_ID = "Session-Id", 263, true, Utf8String;
        /// Origin-Host (RFC 6733 §6.3).
        ORIGIN_HOST = "Origin-Host", 264, true, DiameterIdentity;
        /// Supported-Vendor-Id (RFC 6733 §5.3.6).
        SUPPORTED_VENDOR_ID = "Supported-Vendor-Id", 265, true, Unsigned32;
        /// Vendor-Id (RFC 6733 §5.3.3).
        VENDOR_ID = "Vendor-Id", 266, true, Unsigned32;
        /// Firmware-Revision (RFC 6733 §5.3.4).
        FIRMWARE_REVISION = "Firmware-Revision", 267, false, Unsigned32;
        /// Result-Code (RFC 6733 §7.1).
        RESULT_CODE = "Result-Code", 268, true, Unsigned32;
        /// Product-Name (RFC 6733 §5.3.7).
        PRODUCT_NAME = "Product-Name", 269, false, Utf8String;
        /// Disconnect-Cause (RFC 6733 §5.4.3).
        DISCONNECT_CAUSE = "Disconnect-Cause", 273, true, Enumerated;
        /// Auth-Session-State (RFC 6733 §8.11).
        AUTH_SESSION_STATE = "Auth-Session-State", 277, true, Enumerated;
        /// Origin-State-Id (RFC 6733 §8.16).
        ORIGIN_STATE_ID = "Origin-State-Id", 278, true, Unsigned32;
        /// Failed-AVP (RFC 6733 §7.5).
        FAILED_AVP = "Failed-AVP", 279, true, Grouped;
        /// Proxy-Host (RFC 6733 §6.7.3).
        PROXY_HOST = "Proxy-Host", 280, true, DiameterIdentity;
        /// Error-Message (RFC 6733 §7.3).
        ERROR_MESSAGE = "Error-Message", 281, false, Utf8String;
        /// Route-Record (RFC 6733 §6.7.1).
        ROUTE_RECORD = "Route-Record", 282, true, DiameterIdentity;
        /// Destination-Realm (RFC 6733 §6.6).
        DESTINATION_REALM = "Destination-Realm", 283, true, DiameterIdentity;
        /// Proxy-Info (RFC 6733 §6.7.2).
        PROXY_INFO = "Proxy-Info", 284, true, Grouped;
        /// Destination-Host (RFC 6733 §6.5).
        DESTINATION_HOST = "Destination-Host", 293, true, DiameterIdentity;
        /// Error-Reporting-Host (RFC 6733 §7.4).
        ERROR_REPORTING_HOST = "Error-Reporting-Host", 294, false, DiameterIdentity;
        /// Origin-Realm (RFC 6733 §6.4).
        ORIGIN_REALM = "Origin-Realm", 296, true, DiameterIdentity;
        /// Experimental-Result (RFC 6733 §7.6).
        EXPERIMENTAL_RESULT = "Experimental-Result", 297, true, Grouped;
        /// Experimental-Result-Code (RFC 6733 §7.7).
        EXPERIMENTAL_RESULT_CODE = "Experimental-Result-Code", 298, true, Unsigned32;
        /// Inband-Security-Id (RFC 6733 §6.10).
        INBAND_SECURITY_ID = "Inband-Security-Id", 299, true, Unsigned32;
    }
}

/// Cx/Dx AVPs of 3GPP TS 29.229 §6.3 (vendor 10415). The M bit follows Table 6.3.1.
pub mod cx {
    use super::{AvpDef, AvpType, VENDOR_3GPP};
    avps! { Some(VENDOR_3GPP);
        /// Visited-Network-Identifier (§6.3.1).
        VISITED_NETWORK_IDENTIFIER = "Visited-Network-Identifier", 600, true, OctetString;
        /// Public-Identity (§6.3.2).
        PUBLIC_IDENTITY = "Public-Identity", 601, true, Utf8String;
        /// Server-Name (§6.3.3).
        SERVER_NAME = "Server-Name", 602, true, Utf8String;
        /// Server-Capabilities (§6.3.4).
        SERVER_CAPABILITIES = "Server-Capabilities", 603, true, Grouped;
        /// Mandatory-Capability (§6.3.5).
        MANDATORY_CAPABILITY = "Mandatory-Capability", 604, true, Unsigned32;
        /// Optional-Capability (§6.3.6).
        OPTIONAL_CAPABILITY = "Optional-Capability", 605, true, Unsigned32;
        /// User-Data (§6.3.7).
        USER_DATA = "User-Data", 606, true, OctetString;
        /// SIP-Number-Auth-Items (§6.3.8).
        SIP_NUMBER_AUTH_ITEMS = "SIP-Number-Auth-Items", 607, true, Unsigned32;
        /// SIP-Authentication-Scheme (§6.3.9).
        SIP_AUTHENTICATION_SCHEME = "SIP-Authentication-Scheme", 608, true, Utf8String;
        /// SIP-Authenticate (§6.3.10).
        SIP_AUTHENTICATE = "SIP-Authenticate", 609, true, OctetString;
        /// SIP-Authorization (§6.3.11).
        SIP_AUTHORIZATION = "SIP-Authorization", 610, true, OctetString;
        /// SIP-Authentication-Context (§6.3.12).
        SIP_AUTHENTICATION_CONTEXT = "SIP-Authentication-Context", 611, true, OctetString;
        /// SIP-Auth-Data-Item (§6.3.13).
        SIP_AUTH_DATA_ITEM = "SIP-Auth-Data-Item", 612, true, Grouped;
        /// SIP-Item-Number (§6.3.14).
        SIP_ITEM_NUMBER = "SIP-Item-Number", 613, true, Unsigned32;
        /// Server-Assignment-Type (§6.3.15).
        SERVER_ASSIGNMENT_TYPE = "Server-Assignment-Type", 614, true, Enumerated;
        /// Deregistration-Reason (§6.3.16).
        DEREGISTRATION_REASON = "Deregistration-Reason", 615, true, Grouped;
        /// Reason-Code (§6.3.17).
        REASON_CODE = "Reason-Code", 616, true, Enumerated;
        /// Reason-Info (§6.3.18).
        REASON_INFO = "Reason-Info", 617, true, Utf8String;
        /// Charging-Information (§6.3.19).
        CHARGING_INFORMATION = "Charging-Information", 618, true, Grouped;
        /// Primary-Event-Charging-Function-Name (§6.3.20).
        PRIMARY_EVENT_CHARGING_FUNCTION_NAME = "Primary-Event-Charging-Function-Name", 619, true, DiameterUri;
        /// Secondary-Event-Charging-Function-Name (§6.3.21).
        SECONDARY_EVENT_CHARGING_FUNCTION_NAME = "Secondary-Event-Charging-Function-Name", 620, true, DiameterUri;
        /// Primary-Charging-Collection-Function-Name (§6.3.22).
        PRIMARY_CHARGING_COLLECTION_FUNCTION_NAME = "Primary-Charging-Collection-Function-Name", 621, true, DiameterUri;
        /// Secondary-Charging-Collection-Function-Name (§6.3.23).
        SECONDARY_CHARGING_COLLECTION_FUNCTION_NAME = "Secondary-Charging-Collection-Function-Name", 622, true, DiameterUri;
        /// User-Authorization-Type (§6.3.24).
        USER_AUTHORIZATION_TYPE = "User-Authorization-Type", 623, true, Enumerated;
        /// User-Data-Already-Available (§6.3.26).
        USER_DATA_ALREADY_AVAILABLE = "User-Data-Already-Available", 624, true, Enumerated;
        /// Confidentiality-Key (§6.3.27).
        CONFIDENTIALITY_KEY = "Confidentiality-Key", 625, true, OctetString;
        /// Integrity-Key (§6.3.28).
        INTEGRITY_KEY = "Integrity-Key", 626, true, OctetString;
        /// Supported-Features (§6.3.29, TS 29.229 Table 6.3.1: M bit not set).
        SUPPORTED_FEATURES = "Supported-Features", 628, false, Grouped;
        /// Feature-List-ID (§6.3.30).
        FEATURE_LIST_ID = "Feature-List-ID", 629, false, Unsigned32;
        /// Feature-List (§6.3.31).
        FEATURE_LIST = "Feature-List", 630, false, Unsigned32;
        /// Supported-Applications (§6.3.32).
        SUPPORTED_APPLICATIONS = "Supported-Applications", 631, false, Grouped;
        /// Associated-Identities (§6.3.33).
        ASSOCIATED_IDENTITIES = "Associated-Identities", 632, false, Grouped;
        /// Originating-Request (§6.3.34).
        ORIGINATING_REQUEST = "Originating-Request", 633, true, Enumerated;
        /// Wildcarded-Public-Identity (§6.3.35).
        WILDCARDED_PUBLIC_IDENTITY = "Wildcarded-Public-Identity", 634, false, Utf8String;
        /// SIP-Digest-Authenticate (§6.3.36).
        SIP_DIGEST_AUTHENTICATE = "SIP-Digest-Authenticate", 635, false, Grouped;
        /// Wildcarded-IMPU (§6.3.43).
        WILDCARDED_IMPU = "Wildcarded-IMPU", 636, false, Utf8String;
        /// UAR-Flags (§6.3.44).
        UAR_FLAGS = "UAR-Flags", 637, false, Unsigned32;
        /// Loose-Route-Indication (§6.3.45).
        LOOSE_ROUTE_INDICATION = "Loose-Route-Indication", 638, false, Enumerated;
        /// SCSCF-Restoration-Info (§6.3.46).
        SCSCF_RESTORATION_INFO = "SCSCF-Restoration-Info", 639, false, Grouped;
        /// Path (§6.3.47).
        PATH = "Path", 640, false, OctetString;
        /// Contact (§6.3.48).
        CONTACT = "Contact", 641, false, OctetString;
        /// Subscription-Info (§6.3.49).
        SUBSCRIPTION_INFO = "Subscription-Info", 642, false, Grouped;
        /// Call-ID-SIP-Header (§6.3.49.1).
        CALL_ID_SIP_HEADER = "Call-ID-SIP-Header", 643, false, OctetString;
        /// From-SIP-Header (§6.3.49.2).
        FROM_SIP_HEADER = "From-SIP-Header", 644, false, OctetString;
        /// To-SIP-Header (§6.3.49.3).
        TO_SIP_HEADER = "To-SIP-Header", 645, false, OctetString;
        /// Record-Route (§6.3.49.4).
        RECORD_ROUTE = "Record-Route", 646, false, OctetString;
        /// Associated-Registered-Identities (§6.3.50).
        ASSOCIATED_REGISTERED_IDENTITIES = "Associated-Registered-Identities", 647, false, Grouped;
        /// Multiple-Registration-Indication (§6.3.51).
        MULTIPLE_REGISTRATION_INDICATION = "Multiple-Registration-Indication", 648, false, Enumerated;
        /// Restoration-Info (§6.3.52).
        RESTORATION_INFO = "Restoration-Info", 649, false, Grouped;
        /// Session-Priority (§6.3.56).
        SESSION_PRIORITY = "Session-Priority", 650, false, Enumerated;
        /// Identity-with-Emergency-Registration (§6.3.57).
        IDENTITY_WITH_EMERGENCY_REGISTRATION = "Identity-with-Emergency-Registration", 651, false, Grouped;
        /// Priviledged-Sender-Indication (§6.3.58; the spelling is the specification's).
        PRIVILEDGED_SENDER_INDICATION = "Priviledged-Sender-Indication", 652, false, Enumerated;
        /// LIA-Flags (§6.3.59).
        LIA_FLAGS = "LIA-Flags", 653, false, Unsigned32;
        /// Initial-CSeq-Sequence-Number (§6.3.62).
        INITIAL_CSEQ_SEQUENCE_NUMBER = "Initial-CSeq-Sequence-Number", 654, false, Unsigned32;
        /// SAR-Flags (§6.3.63).
        SAR_FLAGS = "SAR-Flags", 655, false, Unsigned32;
    }
}

/// Looks an AVP up in the base and Cx dictionaries.
pub fn lookup(code: u32, vendor_id: Option<u32>) -> Option<&'static AvpDef> {
    let table = match vendor_id {
        None => base::ALL,
        Some(VENDOR_3GPP) => cx::ALL,
        Some(_) => return None,
    };
    table.iter().find(|d| d.code == code)
}

/// Deepest nesting of Grouped AVPs examined (a guard against hostile input).
pub const MAX_GROUP_DEPTH: usize = 8;

/// Checks the AVPs of a request the node cannot process (RFC 6733 §4.1, §7.1): the first
/// AVP with the M bit that this node does not know (DIAMETER_AVP_UNSUPPORTED), a known
/// Grouped AVP whose contents do not decode (the decode error's Result-Code), or Grouped
/// AVPs nested deeper than [`MAX_GROUP_DEPTH`] (DIAMETER_INVALID_AVP_VALUE). Returns the
/// offending AVP (for the Failed-AVP) and the Result-Code.
pub fn check_request_avps(avps: &[Avp]) -> Result<(), (Avp, u32)> {
    fn walk(avps: &[Avp], depth: usize) -> Result<(), (Avp, u32)> {
        for avp in avps {
            match lookup(avp.code, avp.vendor_id) {
                None if avp.is_mandatory() => {
                    return Err((avp.clone(), result::DIAMETER_AVP_UNSUPPORTED))
                }
                Some(def) if def.ty == AvpType::Grouped => {
                    if depth >= MAX_GROUP_DEPTH {
                        return Err((avp.clone(), result::DIAMETER_INVALID_AVP_VALUE));
                    }
                    let inner = avp
                        .grouped_avps()
                        .map_err(|e| (avp.clone(), e.result_code()))?;
                    walk(&inner, depth + 1)?;
                }
                _ => {}
            }
        }
        Ok(())
    }
    walk(avps, 0)
}

/// Command codes (RFC 6733 §3.1, TS 29.229 §6.1).
pub mod command {
    /// Capabilities-Exchange-Request/Answer.
    pub const CAPABILITIES_EXCHANGE: u32 = 257;
    /// Device-Watchdog-Request/Answer.
    pub const DEVICE_WATCHDOG: u32 = 280;
    /// Disconnect-Peer-Request/Answer.
    pub const DISCONNECT_PEER: u32 = 282;
    /// User-Authorization-Request/Answer (UAR/UAA).
    pub const USER_AUTHORIZATION: u32 = 300;
    /// Server-Assignment-Request/Answer (SAR/SAA).
    pub const SERVER_ASSIGNMENT: u32 = 301;
    /// Location-Info-Request/Answer (LIR/LIA).
    pub const LOCATION_INFO: u32 = 302;
    /// Multimedia-Auth-Request/Answer (MAR/MAA).
    pub const MULTIMEDIA_AUTH: u32 = 303;
    /// Registration-Termination-Request/Answer (RTR/RTA).
    pub const REGISTRATION_TERMINATION: u32 = 304;
    /// Push-Profile-Request/Answer (PPR/PPA).
    pub const PUSH_PROFILE: u32 = 305;

    /// The Cx command of a request abbreviation (`UAR`, `SAR`, `LIR`, `MAR`, `RTR`,
    /// `PPR`), as operators write them in configuration.
    pub fn cx_by_abbreviation(abbreviation: &str) -> Option<u32> {
        Some(match abbreviation {
            "UAR" => USER_AUTHORIZATION,
            "SAR" => SERVER_ASSIGNMENT,
            "LIR" => LOCATION_INFO,
            "MAR" => MULTIMEDIA_AUTH,
            "RTR" => REGISTRATION_TERMINATION,
            "PPR" => PUSH_PROFILE,
            _ => return None,
        })
    }
}

/// Result-Code values of RFC 6733 §7.1.
pub mod result {
    /// 2001.
    pub const DIAMETER_SUCCESS: u32 = 2001;
    /// 2002.
    pub const DIAMETER_LIMITED_SUCCESS: u32 = 2002;
    /// 3001.
    pub const DIAMETER_COMMAND_UNSUPPORTED: u32 = 3001;
    /// 3002.
    pub const DIAMETER_UNABLE_TO_DELIVER: u32 = 3002;
    /// 3003.
    pub const DIAMETER_REALM_NOT_SERVED: u32 = 3003;
    /// 3004.
    pub const DIAMETER_TOO_BUSY: u32 = 3004;
    /// 3005.
    pub const DIAMETER_LOOP_DETECTED: u32 = 3005;
    /// 3006.
    pub const DIAMETER_REDIRECT_INDICATION: u32 = 3006;
    /// 3007.
    pub const DIAMETER_APPLICATION_UNSUPPORTED: u32 = 3007;
    /// 3008.
    pub const DIAMETER_INVALID_HDR_BITS: u32 = 3008;
    /// 3009.
    pub const DIAMETER_INVALID_AVP_BITS: u32 = 3009;
    /// 3010.
    pub const DIAMETER_UNKNOWN_PEER: u32 = 3010;
    /// 4001.
    pub const DIAMETER_AUTHENTICATION_REJECTED: u32 = 4001;
    /// 4002.
    pub const DIAMETER_OUT_OF_SPACE: u32 = 4002;
    /// 4003.
    pub const ELECTION_LOST: u32 = 4003;
    /// 5001.
    pub const DIAMETER_AVP_UNSUPPORTED: u32 = 5001;
    /// 5002.
    pub const DIAMETER_UNKNOWN_SESSION_ID: u32 = 5002;
    /// 5003.
    pub const DIAMETER_AUTHORIZATION_REJECTED: u32 = 5003;
    /// 5004.
    pub const DIAMETER_INVALID_AVP_VALUE: u32 = 5004;
    /// 5005.
    pub const DIAMETER_MISSING_AVP: u32 = 5005;
    /// 5006.
    pub const DIAMETER_RESOURCES_EXCEEDED: u32 = 5006;
    /// 5007.
    pub const DIAMETER_CONTRADICTING_AVPS: u32 = 5007;
    /// 5008.
    pub const DIAMETER_AVP_NOT_ALLOWED: u32 = 5008;
    /// 5009.
    pub const DIAMETER_AVP_OCCURS_TOO_MANY_TIMES: u32 = 5009;
    /// 5010.
    pub const DIAMETER_NO_COMMON_APPLICATION: u32 = 5010;
    /// 5011.
    pub const DIAMETER_UNSUPPORTED_VERSION: u32 = 5011;
    /// 5012.
    pub const DIAMETER_UNABLE_TO_COMPLY: u32 = 5012;
    /// 5013.
    pub const DIAMETER_INVALID_BIT_IN_HEADER: u32 = 5013;
    /// 5014.
    pub const DIAMETER_INVALID_AVP_LENGTH: u32 = 5014;
    /// 5015.
    pub const DIAMETER_INVALID_MESSAGE_LENGTH: u32 = 5015;
    /// 5016.
    pub const DIAMETER_INVALID_AVP_BIT_COMBO: u32 = 5016;
    /// 5017.
    pub const DIAMETER_NO_COMMON_SECURITY: u32 = 5017;
}

/// Experimental-Result-Code values of TS 29.229 §6.2 (vendor 10415).
pub mod experimental {
    /// 2001 (§6.2.1.1).
    pub const DIAMETER_FIRST_REGISTRATION: u32 = 2001;
    /// 2002 (§6.2.1.2).
    pub const DIAMETER_SUBSEQUENT_REGISTRATION: u32 = 2002;
    /// 2003 (§6.2.1.3).
    pub const DIAMETER_UNREGISTERED_SERVICE: u32 = 2003;
    /// 2004 (§6.2.1.4).
    pub const DIAMETER_SUCCESS_SERVER_NAME_NOT_STORED: u32 = 2004;
    /// 5001 (§6.2.2.1).
    pub const DIAMETER_ERROR_USER_UNKNOWN: u32 = 5001;
    /// 5002 (§6.2.2.2).
    pub const DIAMETER_ERROR_IDENTITIES_DONT_MATCH: u32 = 5002;
    /// 5003 (§6.2.2.3).
    pub const DIAMETER_ERROR_IDENTITY_NOT_REGISTERED: u32 = 5003;
    /// 5004 (§6.2.2.4).
    pub const DIAMETER_ERROR_ROAMING_NOT_ALLOWED: u32 = 5004;
    /// 5005 (§6.2.2.5).
    pub const DIAMETER_ERROR_IDENTITY_ALREADY_REGISTERED: u32 = 5005;
    /// 5006 (§6.2.2.6).
    pub const DIAMETER_ERROR_AUTH_SCHEME_NOT_SUPPORTED: u32 = 5006;
    /// 5007 (§6.2.2.7).
    pub const DIAMETER_ERROR_IN_ASSIGNMENT_TYPE: u32 = 5007;
    /// 5008 (§6.2.2.8).
    pub const DIAMETER_ERROR_TOO_MUCH_DATA: u32 = 5008;
    /// 5009 (§6.2.2.9).
    pub const DIAMETER_ERROR_NOT_SUPPORTED_USER_DATA: u32 = 5009;
    /// 5011 (§6.2.2.10).
    pub const DIAMETER_ERROR_FEATURE_UNSUPPORTED: u32 = 5011;
    /// 5012 (§6.2.2.11).
    pub const DIAMETER_ERROR_SERVING_NODE_FEATURE_UNSUPPORTED: u32 = 5012;
}

/// Disconnect-Cause values (RFC 6733 §5.4.3).
pub mod disconnect_cause {
    /// REBOOTING.
    pub const REBOOTING: i32 = 0;
    /// BUSY.
    pub const BUSY: i32 = 1;
    /// DO_NOT_WANT_TO_TALK_TO_YOU: the peer must not reconnect.
    pub const DO_NOT_WANT_TO_TALK_TO_YOU: i32 = 2;
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn lookup_finds_base_and_cx_entries() {
        assert_eq!(lookup(263, None).map(|d| d.name), Some("Session-Id"));
        assert_eq!(
            lookup(614, Some(10415)).map(|d| d.name),
            Some("Server-Assignment-Type")
        );
        assert_eq!(lookup(121, None).map(|d| d.name), Some("Digest-HA1"));
        assert!(lookup(614, None).is_none());
        assert!(lookup(601, Some(5535)).is_none());
    }

    #[test]
    fn codes_are_unique_per_dictionary() {
        for table in [base::ALL, cx::ALL] {
            for (i, a) in table.iter().enumerate() {
                assert!(
                    table[i + 1..].iter().all(|b| b.code != a.code),
                    "{}",
                    a.name
                );
            }
        }
    }

    #[test]
    fn refuses_unknown_mandatory_broken_and_too_deep_avps() {
        let unknown_m = Avp {
            code: 9999,
            flags: crate::avp::FLAG_MANDATORY,
            vendor_id: None,
            data: Bytes::from_static(b"x"),
        };
        let unknown_opt = Avp {
            flags: 0,
            ..unknown_m.clone()
        };
        assert_eq!(
            check_request_avps(std::slice::from_ref(&unknown_opt)),
            Ok(())
        );
        assert_eq!(
            check_request_avps(&[unknown_opt.clone(), unknown_m.clone()]),
            Err((unknown_m.clone(), result::DIAMETER_AVP_UNSUPPORTED))
        );
        // Inside a group, the inner AVP is reported.
        let g = Avp::grouped(&base::PROXY_INFO, std::slice::from_ref(&unknown_m));
        assert_eq!(
            check_request_avps(&[g]),
            Err((unknown_m, result::DIAMETER_AVP_UNSUPPORTED))
        );
        // A grouped AVP whose contents do not decode.
        let broken = Avp::new(&base::PROXY_INFO, Bytes::from_static(&[0, 0, 1]));
        assert_eq!(
            check_request_avps(std::slice::from_ref(&broken)),
            Err((broken, result::DIAMETER_INVALID_AVP_LENGTH))
        );
        // Nesting up to the limit is fine, beyond it is refused.
        let mut g = Avp::u32(&base::VENDOR_ID, 1);
        for _ in 0..MAX_GROUP_DEPTH {
            g = Avp::grouped(&base::PROXY_INFO, &[g]);
        }
        assert_eq!(check_request_avps(std::slice::from_ref(&g)), Ok(()));
        let g = Avp::grouped(&base::PROXY_INFO, &[g]);
        assert!(matches!(
            check_request_avps(&[g]),
            Err((_, result::DIAMETER_INVALID_AVP_VALUE))
        ));
    }
}
