//! The user profile the HSS sends in SAA/PPR User-Data: an IMSSubscription document
//! (TS 29.228 §7.7, Annex E; element semantics in Annex B.2), read with a bounded XML
//! parser ([`crate::ifc::xml`]).
//!
//! * The implicit registration set: the `PublicIdentity/Identity` values of all service
//!   profiles, barred ones apart (TS 29.228 §6.5.1, TS 24.229 §5.4.1.2.2 on
//!   P-Associated-URI).
//! * Each `ServiceProfile` with its identities and initial filter criteria, in priority
//!   order (Annex B.2.2: lower `Priority` first; equal priorities keep document order).
//!   An iFC the schema does not allow is left out with a warning (see
//!   [`crate::ifc::parse`]); the rest of the profile stays usable for registration.
//! * The cloud profile (`IMSSubscription/Extension/CloudProfile/{ProjectId,UserId}`,
//!   this project's extension written by `hss/src/cx/user_data.rs`).
//!
//! The raw document is kept as received (the store persists it and re-reads it).

use bytes::Bytes;

use crate::ifc::parse::{read_ifc, IfcReadError};
use crate::ifc::xml::{self, Element, XmlError};
use crate::ifc::InitialFilterCriteria;

/// Public identities read from one profile at most.
pub const MAX_IDENTITIES: usize = 256;
/// Largest User-Data document accepted (bytes).
pub const MAX_DOCUMENT: usize = 256 * 1024;
/// `ServiceProfile` elements read from one document at most.
pub const MAX_SERVICE_PROFILES: usize = 64;
/// `InitialFilterCriteria` read from one document at most (all service profiles).
pub const MAX_IFCS: usize = 256;
/// SPTs read from one document at most (all iFCs): bounds the compiled patterns.
pub const MAX_SPTS: usize = 512;
/// Longest identity, server name, tenant or user id kept (bytes).
pub const MAX_NAME: usize = 1024;

/// Why a User-Data document is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    /// Not UTF-8.
    #[error("User-Data is not UTF-8")]
    NotUtf8,
    /// No `<IMSSubscription>` root.
    #[error("User-Data is not an IMSSubscription")]
    NotSubscription,
    /// Not well-formed XML, or a `<PublicIdentity>` without an `<Identity>`.
    #[error("malformed IMSSubscription")]
    Malformed,
    /// More than [`MAX_IDENTITIES`] public identities.
    #[error("too many public identities")]
    TooMany,
    /// Larger than [`MAX_DOCUMENT`].
    #[error("User-Data of {size} bytes exceeds {MAX_DOCUMENT}")]
    TooLarge {
        /// The document's size.
        size: usize,
    },
    /// Past another bound (named): XML depth, element count or text length, service
    /// profiles, iFCs, SPTs, groups, name length.
    #[error("User-Data exceeds the {0} limit")]
    Limit(&'static str),
}

/// One `ServiceProfile`: the public identities it serves and their iFCs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceProfile {
    /// Its public identities (barred ones included), in document order.
    pub identities: Vec<String>,
    /// Its initial filter criteria, by ascending `Priority`.
    pub ifcs: Vec<InitialFilterCriteria>,
}

/// A user profile as the S-CSCF keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserProfile {
    /// The IMSSubscription XML as received.
    pub raw: Bytes,
    /// The non-barred public identities, in document order, without duplicates.
    pub associated: Vec<String>,
    /// The barred public identities.
    pub barred: Vec<String>,
    /// The service profiles, in document order.
    pub service_profiles: Vec<ServiceProfile>,
    /// The Keystone project the subscription belongs to (`CloudProfile/ProjectId`).
    pub tenant: Option<String>,
    /// The Keystone user it is bound to (`CloudProfile/UserId`).
    pub bound_user: Option<String>,
}

/// Counts what a document has used of the per-document bounds.
#[derive(Default)]
struct Budget {
    ifcs: usize,
    spts: usize,
}

impl UserProfile {
    /// Reads an IMSSubscription document.
    pub fn parse(raw: Bytes) -> Result<UserProfile, ProfileError> {
        if raw.len() > MAX_DOCUMENT {
            return Err(ProfileError::TooLarge { size: raw.len() });
        }
        let text = std::str::from_utf8(&raw).map_err(|_| ProfileError::NotUtf8)?;
        let root = xml::parse(text).map_err(|e| match e {
            XmlError::Limit(what) => ProfileError::Limit(what),
            XmlError::Malformed(why) => {
                tracing::debug!(%why, "User-Data is not well-formed XML");
                ProfileError::Malformed
            }
        })?;
        if root.name != "IMSSubscription" {
            return Err(ProfileError::NotSubscription);
        }
        let mut profile = UserProfile {
            raw: Bytes::new(),
            ..UserProfile::default()
        };
        let mut budget = Budget::default();
        for sp in root.children("ServiceProfile") {
            if profile.service_profiles.len() == MAX_SERVICE_PROFILES {
                return Err(ProfileError::Limit("ServiceProfile"));
            }
            let sp = profile.read_service_profile(sp, &mut budget)?;
            profile.service_profiles.push(sp);
        }
        if let Some(cloud) = root
            .child("Extension")
            .and_then(|x| x.child("CloudProfile"))
        {
            profile.tenant = optional_name(cloud, "ProjectId")?;
            profile.bound_user = optional_name(cloud, "UserId")?;
        }
        profile.raw = raw;
        Ok(profile)
    }

    fn read_service_profile(
        &mut self,
        el: &Element,
        budget: &mut Budget,
    ) -> Result<ServiceProfile, ProfileError> {
        let mut sp = ServiceProfile::default();
        for pi in el.children("PublicIdentity") {
            let id = pi.child_text("Identity").ok_or(ProfileError::Malformed)?;
            if id.len() > MAX_NAME {
                return Err(ProfileError::Limit("identity length"));
            }
            let is_barred = pi
                .child_text("BarringIndication")
                .is_some_and(|v| matches!(v, "1" | "true"));
            let list = if is_barred {
                &mut self.barred
            } else {
                &mut self.associated
            };
            if !list.iter().any(|i| i == id) {
                list.push(id.to_owned());
            }
            if self.associated.len() + self.barred.len() > MAX_IDENTITIES {
                return Err(ProfileError::TooMany);
            }
            sp.identities.push(id.to_owned());
        }
        for ifc in el.children("InitialFilterCriteria") {
            budget.ifcs += 1;
            if budget.ifcs > MAX_IFCS {
                return Err(ProfileError::Limit("InitialFilterCriteria"));
            }
            match read_ifc(ifc) {
                Ok(ifc) => {
                    budget.spts += ifc.trigger_point.as_ref().map_or(0, |t| t.spts().len());
                    if budget.spts > MAX_SPTS {
                        return Err(ProfileError::Limit("SPT"));
                    }
                    if ifc.application_server.server_name.len() > MAX_NAME {
                        return Err(ProfileError::Limit("ServerName length"));
                    }
                    sp.ifcs.push(ifc);
                }
                Err(IfcReadError::Limit(what)) => return Err(ProfileError::Limit(what)),
                Err(e @ IfcReadError::Unusable(_)) => {
                    tracing::warn!(identities = ?sp.identities, error = %e, "iFC left out of the profile");
                }
            }
        }
        // Stable: equal priorities (which TS 29.228 forbids) keep document order.
        sp.ifcs.sort_by_key(|i| i.priority);
        Ok(sp)
    }

    /// Whether `impu` belongs to the implicit registration set (barred or not).
    pub fn contains(&self, impu: &str) -> bool {
        self.associated
            .iter()
            .chain(&self.barred)
            .any(|i| i == impu)
    }

    /// The service profile serving `impu` (exact identity match).
    pub fn service_profile(&self, impu: &str) -> Option<&ServiceProfile> {
        self.service_profiles
            .iter()
            .find(|sp| sp.identities.iter().any(|i| i == impu))
    }

    /// The iFCs of the service profile serving `impu`, in priority order; empty when
    /// no profile serves it.
    pub fn ifcs(&self, impu: &str) -> &[InitialFilterCriteria] {
        self.service_profile(impu).map_or(&[], |sp| &sp.ifcs)
    }
}

/// The trimmed text of child `name`, `None` when absent or empty.
fn optional_name(el: &Element, name: &str) -> Result<Option<String>, ProfileError> {
    match el.child_text(name) {
        None | Some("") => Ok(None),
        Some(v) if v.len() > MAX_NAME => Err(ProfileError::Limit("CloudProfile length")),
        Some(v) => Ok(Some(v.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ifc::{DefaultHandling, RegistrationState, SptCondition};

    const DOC: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><IMSSubscription>\
        <PrivateID>alice@ims.example.net</PrivateID><ServiceProfile>\
        <PublicIdentity><Identity>sip:alice@ims.example.net</Identity></PublicIdentity>\
        <PublicIdentity><BarringIndication>1</BarringIndication>\
        <Identity>sip:alice-barred@ims.example.net</Identity></PublicIdentity>\
        <PublicIdentity><Identity> tel:+15551230001 </Identity></PublicIdentity>\
        <InitialFilterCriteria><Priority>0</Priority></InitialFilterCriteria>\
        </ServiceProfile><ServiceProfile>\
        <PublicIdentity><Identity>sip:a&amp;b@ims.example.net</Identity></PublicIdentity>\
        <PublicIdentity><Identity>sip:alice@ims.example.net</Identity></PublicIdentity>\
        </ServiceProfile></IMSSubscription>";

    #[test]
    fn implicit_set_spans_profiles_and_leaves_barred_apart() {
        let p = UserProfile::parse(Bytes::from_static(DOC.as_bytes())).unwrap();
        assert_eq!(
            p.associated,
            [
                "sip:alice@ims.example.net",
                "tel:+15551230001",
                "sip:a&b@ims.example.net"
            ]
        );
        assert_eq!(p.barred, ["sip:alice-barred@ims.example.net"]);
        assert!(p.contains("sip:alice-barred@ims.example.net"));
        assert!(!p.contains("sip:bob@ims.example.net"));
        assert_eq!(&p.raw[..], DOC.as_bytes());
    }

    #[test]
    fn refuses_other_documents() {
        assert_eq!(
            UserProfile::parse(Bytes::from_static(b"<x/>")),
            Err(ProfileError::NotSubscription)
        );
        assert_eq!(
            UserProfile::parse(Bytes::from_static(&[0xff, 0xfe])),
            Err(ProfileError::NotUtf8)
        );
        let broken = "<IMSSubscription><PublicIdentity><Identity>sip:a@b</PublicIdentity>";
        assert_eq!(
            UserProfile::parse(Bytes::from(broken)),
            Err(ProfileError::Malformed)
        );
    }

    #[test]
    fn bounds_the_number_of_identities() {
        let mut doc = String::from("<IMSSubscription><ServiceProfile>");
        for i in 0..=MAX_IDENTITIES {
            doc.push_str(&format!(
                "<PublicIdentity><Identity>sip:u{i}@x</Identity></PublicIdentity>"
            ));
        }
        doc.push_str("</ServiceProfile></IMSSubscription>");
        assert_eq!(
            UserProfile::parse(Bytes::from(doc)),
            Err(ProfileError::TooMany)
        );
    }

    fn wrap(service_profile_body: &str) -> String {
        format!(
            "<IMSSubscription><ServiceProfile><PublicIdentity><Identity>sip:a@x</Identity>\
             </PublicIdentity>{service_profile_body}</ServiceProfile></IMSSubscription>"
        )
    }

    fn ifc(prio: &str, body: &str) -> String {
        format!("<InitialFilterCriteria><Priority>{prio}</Priority>{body}</InitialFilterCriteria>")
    }

    const AS: &str = "<ApplicationServer><ServerName>sip:as@x</ServerName></ApplicationServer>";

    #[test]
    fn reads_ifcs_application_server_and_cloud_profile() {
        let doc = "<?xml version=\"1.0\"?><IMSSubscription><PrivateID>a@x</PrivateID>\
            <ServiceProfile><PublicIdentity><Identity>sip:a@x</Identity></PublicIdentity>\
            <InitialFilterCriteria><Priority>7</Priority><TriggerPoint>\
            <ConditionTypeCNF>true</ConditionTypeCNF><SPT><Group>3</Group><Group>1</Group>\
            <Method>INVITE</Method><Extension><RegistrationType>0</RegistrationType></Extension>\
            </SPT></TriggerPoint><ApplicationServer><ServerName> sip:as@x </ServerName>\
            <DefaultHandling>1</DefaultHandling><ServiceInfo> opaque&amp;data </ServiceInfo>\
            <Extension><IncludeRegisterResponse/></Extension></ApplicationServer>\
            <ProfilePartIndicator>1</ProfilePartIndicator></InitialFilterCriteria>\
            </ServiceProfile><Extension><CloudProfile><ProjectId> p1 </ProjectId>\
            </CloudProfile></Extension></IMSSubscription>";
        let p = UserProfile::parse(Bytes::from(doc)).unwrap();
        assert_eq!(p.tenant.as_deref(), Some("p1"));
        assert_eq!(p.bound_user, None);
        let [ifc] = p.ifcs("sip:a@x") else {
            panic!("one iFC expected: {:?}", p.ifcs("sip:a@x"))
        };
        assert_eq!(ifc.priority, 7);
        assert_eq!(ifc.profile_part, Some(RegistrationState::Unregistered));
        let a = &ifc.application_server;
        assert_eq!(a.server_name, "sip:as@x");
        assert_eq!(a.default_handling, DefaultHandling::SessionTerminated);
        assert_eq!(a.service_info.as_deref(), Some(" opaque&data "));
        assert!(!a.include_register_request);
        assert!(a.include_register_response);
        let tp = ifc.trigger_point.as_ref().unwrap();
        assert!(tp.is_cnf());
        assert_eq!(tp.spts().len(), 1);
        assert_eq!(tp.spts()[0].groups, [3, 1]);
        assert!(!tp.spts()[0].negated, "ConditionNegated defaults to false");
        assert_eq!(
            tp.spts()[0].condition,
            SptCondition::Method("INVITE".into())
        );
        assert!(p.ifcs("sip:other@x").is_empty());
        assert!(p.service_profile("sip:other@x").is_none());
    }

    #[test]
    fn ifcs_belong_to_the_service_profile_of_the_identity() {
        let doc = format!(
            "<IMSSubscription><ServiceProfile><PublicIdentity><Identity>sip:a@x</Identity>\
             </PublicIdentity>{}</ServiceProfile><ServiceProfile><PublicIdentity>\
             <BarringIndication>1</BarringIndication><Identity>sip:b@x</Identity>\
             </PublicIdentity>{}{}</ServiceProfile></IMSSubscription>",
            ifc("1", AS),
            ifc("9", AS),
            ifc("2", AS)
        );
        let p = UserProfile::parse(Bytes::from(doc)).unwrap();
        let prios = |impu| p.ifcs(impu).iter().map(|i| i.priority).collect::<Vec<_>>();
        assert_eq!(prios("sip:a@x"), [1]);
        assert_eq!(
            prios("sip:b@x"),
            [2, 9],
            "barred identities keep their profile"
        );
    }

    #[test]
    fn unusable_ifcs_are_left_out_and_the_rest_kept() {
        let tp = |inner: &str| format!("<TriggerPoint>{inner}</TriggerPoint>{AS}");
        let spt = "<SPT><Group>0</Group><Method>INVITE</Method></SPT>";
        let bad = [
            ifc("x", AS),
            ifc("1", ""),
            ifc("1", "<ApplicationServer><ServerName> </ServerName></ApplicationServer>"),
            ifc("1", "<ApplicationServer><ServerName>s</ServerName><DefaultHandling>2</DefaultHandling></ApplicationServer>"),
            ifc("1", &format!("{AS}<ProfilePartIndicator>2</ProfilePartIndicator>")),
            ifc("1", &tp(spt)),
            ifc("1", &tp("<ConditionTypeCNF>yes</ConditionTypeCNF>")),
            ifc("1", &tp("<ConditionTypeCNF>1</ConditionTypeCNF>")),
            ifc("1", &tp("<ConditionTypeCNF>1</ConditionTypeCNF><SPT><Method>INVITE</Method></SPT>")),
            ifc("1", &tp("<ConditionTypeCNF>1</ConditionTypeCNF><SPT><Group>a</Group><Method>INVITE</Method></SPT>")),
            ifc("1", &tp("<ConditionTypeCNF>1</ConditionTypeCNF><SPT><Group>0</Group></SPT>")),
            ifc("1", &tp("<ConditionTypeCNF>1</ConditionTypeCNF><SPT><Group>0</Group><SessionCase>5</SessionCase></SPT>")),
            ifc("1", &tp("<ConditionTypeCNF>1</ConditionTypeCNF><SPT><Group>0</Group><Method/></SPT>")),
            ifc("1", &tp("<ConditionTypeCNF>1</ConditionTypeCNF><SPT><Group>0</Group><SIPHeader><Content>x</Content></SIPHeader></SPT>")),
            ifc("1", &tp("<ConditionTypeCNF>1</ConditionTypeCNF><SPT><Group>0</Group><SessionDescription/></SPT>")),
            ifc("1", &tp("<ConditionTypeCNF>1</ConditionTypeCNF><SPT><ConditionNegated>2</ConditionNegated><Group>0</Group><Method>A</Method></SPT>")),
        ];
        let doc = wrap(&(bad.concat() + &ifc("5", AS)));
        let p = UserProfile::parse(Bytes::from(doc)).unwrap();
        let kept: Vec<i64> = p.ifcs("sip:a@x").iter().map(|i| i.priority).collect();
        assert_eq!(kept, [5]);
        assert_eq!(p.associated, ["sip:a@x"]);
    }

    #[test]
    fn refuses_oversized_and_malformed_documents() {
        let big = vec![b' '; MAX_DOCUMENT + 1];
        assert_eq!(
            UserProfile::parse(Bytes::from(big)),
            Err(ProfileError::TooLarge {
                size: MAX_DOCUMENT + 1
            })
        );
        for doc in [
            "",
            "<IMSSubscription>",
            "<IMSSubscription></ServiceProfile>",
            "<IMSSubscription>&bogus;</IMSSubscription>",
            "<!DOCTYPE IMSSubscription [<!ENTITY a \"aaaa\">]><IMSSubscription/>",
            "<IMSSubscription/><IMSSubscription/>",
        ] {
            assert_eq!(
                UserProfile::parse(Bytes::from(doc)),
                Err(ProfileError::Malformed),
                "{doc:?}"
            );
        }
        let deep = format!(
            "<IMSSubscription>{}</IMSSubscription>",
            "<a>".repeat(20) + &"</a>".repeat(20)
        );
        assert_eq!(
            UserProfile::parse(Bytes::from(deep)),
            Err(ProfileError::Limit("element depth"))
        );
    }

    #[test]
    fn bounds_ifcs_spts_groups_profiles_and_names() {
        let many_ifcs = wrap(&ifc("1", AS).repeat(MAX_IFCS + 1));
        assert_eq!(
            UserProfile::parse(Bytes::from(many_ifcs)),
            Err(ProfileError::Limit("InitialFilterCriteria"))
        );
        assert!(UserProfile::parse(Bytes::from(wrap(&ifc("1", AS).repeat(MAX_IFCS)))).is_ok());
        let spt = "<SPT><Group>0</Group><Method>INVITE</Method></SPT>";
        let tp = |n: usize| {
            format!(
                "<TriggerPoint><ConditionTypeCNF>1</ConditionTypeCNF>{}</TriggerPoint>{AS}",
                spt.repeat(n)
            )
        };
        assert_eq!(
            UserProfile::parse(Bytes::from(wrap(&ifc("1", &tp(65))))),
            Err(ProfileError::Limit("SPTs per TriggerPoint"))
        );
        let full = ifc("1", &tp(64)).repeat(MAX_SPTS / 64 + 1);
        assert_eq!(
            UserProfile::parse(Bytes::from(wrap(&full))),
            Err(ProfileError::Limit("SPT"))
        );
        let groups = "<Group>0</Group>".repeat(17);
        let g = format!("<TriggerPoint><ConditionTypeCNF>1</ConditionTypeCNF><SPT>{groups}<Method>A</Method></SPT></TriggerPoint>{AS}");
        assert_eq!(
            UserProfile::parse(Bytes::from(wrap(&ifc("1", &g)))),
            Err(ProfileError::Limit("Groups per SPT"))
        );
        let profiles = "<ServiceProfile/>".repeat(MAX_SERVICE_PROFILES + 1);
        assert_eq!(
            UserProfile::parse(Bytes::from(format!(
                "<IMSSubscription>{profiles}</IMSSubscription>"
            ))),
            Err(ProfileError::Limit("ServiceProfile"))
        );
        let long = format!(
            "<IMSSubscription><Extension><CloudProfile><ProjectId>{}</ProjectId></CloudProfile></Extension></IMSSubscription>",
            "p".repeat(MAX_NAME + 1)
        );
        assert_eq!(
            UserProfile::parse(Bytes::from(long)),
            Err(ProfileError::Limit("CloudProfile length"))
        );
        let empty = "<IMSSubscription><Extension><CloudProfile><ProjectId/><UserId> </UserId></CloudProfile></Extension></IMSSubscription>";
        let p = UserProfile::parse(Bytes::from(empty)).unwrap();
        assert_eq!((p.tenant, p.bound_user), (None, None));
    }
}
