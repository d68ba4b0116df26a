//! The Cx User-Data document: IMSSubscription XML (TS 29.228 §7.7 and Annex E, the
//! schema CxDataType.xsd; element semantics in Annex B.2), sent in SAA and PPR.
//!
//! One document covers the implicit registration set of a public identity: the
//! `PrivateID`, one `ServiceProfile` per distinct profile of the set with its
//! `PublicIdentity` elements (`BarringIndication`, `Identity`, `Extension/IdentityType`)
//! and `InitialFilterCriteria`, and the cloud profile of the subscription in the
//! `IMSSubscription`'s `Extension` (`CloudProfile/ProjectId`, `CloudProfile/UserId`).
//! An SPT on the REGISTER method carries its `RegistrationType` values in the SPT's
//! `Extension` (Annex E `tSePoTriExtension`). All text is escaped; booleans are written
//! `0`/`1`, enumerations by number.

use std::fmt::Write;

use crate::store::{
    InitialFilterCriteria, PublicIdentityInfo, RegistrationType, SptCondition, Subscription,
    TriggerPoint,
};

/// `IdentityType` PUBLIC_USER_IDENTITY (TS 29.228 Annex B.2.2, table B.2.2.2).
const PUBLIC_USER_IDENTITY: u8 = 0;

/// Renders the IMSSubscription of `impi` for the public identities `set` of `sub`.
pub fn ims_subscription(sub: &Subscription, impi: &str, set: &[&PublicIdentityInfo]) -> String {
    let mut w = Xml::default();
    w.out
        .push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<IMSSubscription>");
    w.text("PrivateID", impi);
    let mut profiles: Vec<&str> = Vec::new();
    for p in set {
        if !profiles.contains(&p.identity.service_profile.as_str()) {
            profiles.push(&p.identity.service_profile);
        }
    }
    for name in profiles {
        w.open("ServiceProfile");
        for p in set.iter().filter(|p| p.identity.service_profile == name) {
            w.open("PublicIdentity");
            if p.identity.barred {
                w.text("BarringIndication", "1");
            }
            w.text("Identity", &p.identity.impu);
            w.open("Extension");
            w.num("IdentityType", PUBLIC_USER_IDENTITY);
            w.close("Extension");
            w.close("PublicIdentity");
        }
        let mut ifcs: Vec<&InitialFilterCriteria> = sub
            .service_profiles
            .iter()
            .filter(|s| s.name == name)
            .flat_map(|s| &s.ifcs)
            .collect();
        ifcs.sort_by_key(|i| i.priority);
        for ifc in ifcs {
            w.ifc(ifc);
        }
        w.close("ServiceProfile");
    }
    if sub.cloud.project_id.is_some() || sub.cloud.user_id.is_some() {
        w.open("Extension");
        w.open("CloudProfile");
        if let Some(p) = &sub.cloud.project_id {
            w.text("ProjectId", p);
        }
        if let Some(u) = &sub.cloud.user_id {
            w.text("UserId", u);
        }
        w.close("CloudProfile");
        w.close("Extension");
    }
    w.close("IMSSubscription");
    w.out
}

#[derive(Default)]
struct Xml {
    out: String,
}

impl Xml {
    fn open(&mut self, tag: &str) {
        let _ = write!(self.out, "<{tag}>");
    }

    fn close(&mut self, tag: &str) {
        let _ = write!(self.out, "</{tag}>");
    }

    fn text(&mut self, tag: &str, text: &str) {
        self.open(tag);
        escape_into(&mut self.out, text);
        self.close(tag);
    }

    fn num(&mut self, tag: &str, n: impl std::fmt::Display) {
        let _ = write!(self.out, "<{tag}>{n}</{tag}>");
    }

    fn flag(&mut self, tag: &str, b: bool) {
        self.num(tag, u8::from(b));
    }

    fn ifc(&mut self, ifc: &InitialFilterCriteria) {
        self.open("InitialFilterCriteria");
        self.num("Priority", ifc.priority);
        if let Some(tp) = &ifc.trigger_point {
            self.trigger_point(tp);
        }
        let a = &ifc.application_server;
        self.open("ApplicationServer");
        self.text("ServerName", &a.server_name);
        self.num("DefaultHandling", a.default_handling.code());
        if let Some(i) = &a.service_info {
            self.text("ServiceInfo", i);
        }
        if a.include_register_request || a.include_register_response {
            // TS 29.228 Annex E (Rel-9): tApplicationServerExtension.
            self.open("Extension");
            if a.include_register_request {
                self.out.push_str("<IncludeRegisterRequest/>");
            }
            if a.include_register_response {
                self.out.push_str("<IncludeRegisterResponse/>");
            }
            self.close("Extension");
        }
        self.close("ApplicationServer");
        if let Some(ppi) = ifc.profile_part_indicator {
            self.num("ProfilePartIndicator", ppi.code());
        }
        self.close("InitialFilterCriteria");
    }

    fn trigger_point(&mut self, tp: &TriggerPoint) {
        self.open("TriggerPoint");
        self.flag("ConditionTypeCNF", tp.condition_type_cnf);
        for spt in &tp.spts {
            self.open("SPT");
            self.flag("ConditionNegated", spt.condition_negated);
            self.num("Group", spt.group);
            match &spt.condition {
                SptCondition::RequestUri { request_uri } => self.text("RequestURI", request_uri),
                SptCondition::Method { method, .. } => self.text("Method", method),
                SptCondition::SipHeader { header, content } => {
                    self.open("SIPHeader");
                    self.text("Header", header);
                    if let Some(c) = content {
                        self.text("Content", c);
                    }
                    self.close("SIPHeader");
                }
                SptCondition::SessionCase { session_case } => {
                    self.num("SessionCase", session_case.code());
                }
                SptCondition::SessionDescription { line, content } => {
                    self.open("SessionDescription");
                    self.text("Line", line);
                    if let Some(c) = content {
                        self.text("Content", c);
                    }
                    self.close("SessionDescription");
                }
            }
            if let SptCondition::Method {
                registration_type, ..
            } = &spt.condition
            {
                self.registration_types(registration_type);
            }
            self.close("SPT");
        }
        self.close("TriggerPoint");
    }

    /// The SPT's `Extension` (CxDataType.xsd `tSePoTriExtension`, after the condition)
    /// with one `RegistrationType` per value; nothing when there are none.
    fn registration_types(&mut self, types: &[RegistrationType]) {
        if types.is_empty() {
            return;
        }
        self.open("Extension");
        for t in types {
            self.num("RegistrationType", t.code());
        }
        self.close("Extension");
    }
}

/// Appends `text` with the five XML special characters escaped (XML 1.0 §2.4) and
/// characters XML cannot carry dropped.
fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters are not allowed in XML 1.0 (§2.2): dropped.
            c if c.is_control() && !matches!(c, '\t' | '\n' | '\r') => {}
            c => out.push(c),
        }
    }
}
