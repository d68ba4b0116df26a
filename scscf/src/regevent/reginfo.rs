//! The `application/reginfo+xml` document of the reg event package (RFC 3680 §5.4):
//! a model of what a NOTIFY reports and its XML writer.
//!
//! Written by hand over `quick_xml`'s escaping: the document is small and flat, and a
//! serde mapping would need wrappers for every attribute-or-element choice of the
//! schema; the writer's output is validated against the RFC's schema in the tests
//! (`scscf/tests/reginfo.xsd`).

use std::fmt::Write;

use quick_xml::escape::escape;

use crate::gruu::ContactGruus;

/// The reginfo namespace (RFC 3680 §5.4).
pub const NAMESPACE: &str = "urn:ietf:params:xml:ns:reginfo";
/// The namespace of the GRUU extension (RFC 5628 §5), prefix `gr`.
pub const GRUU_NAMESPACE: &str = "urn:ietf:params:xml:ns:gruuinfo";
/// The MIME type of the body.
pub const CONTENT_TYPE: &str = "application/reginfo+xml";

/// State of a `<registration>` (RFC 3680 §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationState {
    /// No active contact yet.
    Init,
    /// At least one active contact.
    Active,
    /// No active contact any more.
    Terminated,
}

impl RegistrationState {
    fn as_str(self) -> &'static str {
        match self {
            RegistrationState::Init => "init",
            RegistrationState::Active => "active",
            RegistrationState::Terminated => "terminated",
        }
    }
}

/// State of a `<contact>` (RFC 3680 §5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContactState {
    /// Bound.
    Active,
    /// No longer bound.
    Terminated,
}

/// The event that brought a contact into its state (RFC 3680 §5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContactEvent {
    /// Added by a REGISTER.
    Registered,
    /// Added administratively (by a profile change, not a REGISTER).
    Created,
    /// Refreshed by a REGISTER.
    Refreshed,
    /// Its expiry was shortened by the network.
    Shortened,
    /// Lapsed without refresh.
    Expired,
    /// Removed by the network, re-registration expected (TS 24.229 §5.4.1.5).
    Deactivated,
    /// Removed by the network, re-registration expected later (`retry-after`).
    Probation,
    /// Removed by a REGISTER (expires 0).
    Unregistered,
    /// Removed by the network, no re-registration expected (TS 24.229 §5.4.1.5).
    Rejected,
}

impl ContactEvent {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            ContactEvent::Registered => "registered",
            ContactEvent::Created => "created",
            ContactEvent::Refreshed => "refreshed",
            ContactEvent::Shortened => "shortened",
            ContactEvent::Expired => "expired",
            ContactEvent::Deactivated => "deactivated",
            ContactEvent::Probation => "probation",
            ContactEvent::Unregistered => "unregistered",
            ContactEvent::Rejected => "rejected",
        }
    }

    /// The state this event leaves a contact in (RFC 3680 §5.3's state machine).
    pub fn state(self) -> ContactState {
        match self {
            ContactEvent::Registered
            | ContactEvent::Created
            | ContactEvent::Refreshed
            | ContactEvent::Shortened => ContactState::Active,
            _ => ContactState::Terminated,
        }
    }
}

/// One `<contact>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactInfo {
    /// Stable id of the binding within its registration.
    pub id: String,
    /// What happened to it.
    pub event: ContactEvent,
    /// Seconds left, for an active contact.
    pub expires: Option<u64>,
    /// Seconds before re-registering, for `probation`.
    pub retry_after: Option<u64>,
    /// Its `q` parameter, as written.
    pub q: Option<String>,
    /// The contact URI.
    pub uri: String,
    /// Its display name, if any.
    pub display_name: Option<String>,
    /// The other Contact parameters (`+sip.instance`, `reg-id`, feature tags), value
    /// unquoted (RFC 3680 §5.4 `unknown-param`).
    pub unknown_params: Vec<(String, Option<String>)>,
    /// Its public and temporary GRUU (RFC 5628 `<gr:pub-gruu>`, `<gr:temp-gruu>`).
    pub gruus: Option<ContactGruus>,
}

impl ContactInfo {
    /// Its state.
    pub fn state(&self) -> ContactState {
        self.event.state()
    }
}

/// One `<registration>`: an address-of-record and its contacts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationInfo {
    /// The public identity.
    pub aor: String,
    /// Stable id of the registration.
    pub id: String,
    /// Its state.
    pub state: RegistrationState,
    /// Its contacts (all of them in a full document, the changed ones in a partial).
    pub contacts: Vec<ContactInfo>,
}

/// A whole document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reginfo {
    /// Increases by one with each document of a subscription, from 0.
    pub version: u32,
    /// Full state, or partial (the changes since the previous version).
    pub full: bool,
    /// The registrations reported.
    pub registrations: Vec<RegistrationInfo>,
}

fn attr(out: &mut String, name: &str, value: &str) {
    let _ = write!(out, " {name}=\"{}\"", escape(value));
}

impl Reginfo {
    /// The XML document.
    pub fn to_xml(&self) -> String {
        let mut out = String::with_capacity(256 + 256 * self.registrations.len());
        out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<reginfo");
        attr(&mut out, "xmlns", NAMESPACE);
        let gruus = self
            .registrations
            .iter()
            .any(|r| r.contacts.iter().any(|c| c.gruus.is_some()));
        if gruus {
            attr(&mut out, "xmlns:gr", GRUU_NAMESPACE);
        }
        let _ = write!(out, " version=\"{}\"", self.version);
        attr(
            &mut out,
            "state",
            if self.full { "full" } else { "partial" },
        );
        out.push_str(">\n");
        for r in &self.registrations {
            out.push_str(" <registration");
            attr(&mut out, "aor", &r.aor);
            attr(&mut out, "id", &r.id);
            attr(&mut out, "state", r.state.as_str());
            out.push_str(">\n");
            for c in &r.contacts {
                write_contact(&mut out, c);
            }
            out.push_str(" </registration>\n");
        }
        out.push_str("</reginfo>\n");
        out
    }
}

fn write_contact(out: &mut String, c: &ContactInfo) {
    out.push_str("  <contact");
    attr(out, "id", &c.id);
    let state = match c.state() {
        ContactState::Active => "active",
        ContactState::Terminated => "terminated",
    };
    attr(out, "state", state);
    attr(out, "event", c.event.as_str());
    if let Some(e) = c.expires {
        let _ = write!(out, " expires=\"{e}\"");
    }
    if let Some(r) = c.retry_after {
        let _ = write!(out, " retry-after=\"{r}\"");
    }
    if let Some(q) = &c.q {
        attr(out, "q", q);
    }
    out.push_str(">\n   <uri>");
    out.push_str(&escape(c.uri.as_str()));
    out.push_str("</uri>\n");
    if let Some(d) = &c.display_name {
        let _ = writeln!(
            out,
            "   <display-name>{}</display-name>",
            escape(d.as_str())
        );
    }
    for (name, value) in &c.unknown_params {
        out.push_str("   <unknown-param");
        attr(out, "name", name);
        match value {
            Some(v) => {
                let _ = writeln!(out, ">{}</unknown-param>", escape(v.as_str()));
            }
            None => out.push_str("/>\n"),
        }
    }
    if let Some(g) = &c.gruus {
        out.push_str("   <gr:pub-gruu");
        attr(out, "uri", &g.public);
        out.push_str("/>\n   <gr:temp-gruu");
        attr(out, "uri", &g.temporary);
        let _ = writeln!(out, " first-cseq=\"{}\"/>", g.first_cseq);
    }
    out.push_str("  </contact>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact(event: ContactEvent) -> ContactInfo {
        ContactInfo {
            id: "c1".into(),
            event,
            expires: (event.state() == ContactState::Active).then_some(3600),
            retry_after: None,
            q: None,
            uri: "sip:alice@10.0.0.1:5060;transport=tcp".into(),
            display_name: None,
            unknown_params: vec![
                ("+sip.instance".into(), Some("<urn:uuid:1&2>".into())),
                ("+g.3gpp.smsip".into(), None),
            ],
            gruus: None,
        }
    }

    #[test]
    fn full_document_with_escaped_values() {
        let doc = Reginfo {
            version: 0,
            full: true,
            registrations: vec![RegistrationInfo {
                aor: "sip:alice@ims.example.net".into(),
                id: "r1".into(),
                state: RegistrationState::Active,
                contacts: vec![contact(ContactEvent::Registered)],
            }],
        };
        let xml = doc.to_xml();
        assert!(xml.contains(
            "<reginfo xmlns=\"urn:ietf:params:xml:ns:reginfo\" version=\"0\" state=\"full\">"
        ));
        assert!(xml.contains(
            "<registration aor=\"sip:alice@ims.example.net\" id=\"r1\" state=\"active\">"
        ));
        assert!(xml.contains(
            "<contact id=\"c1\" state=\"active\" event=\"registered\" expires=\"3600\">"
        ));
        assert!(xml.contains(
            "<unknown-param name=\"+sip.instance\">&lt;urn:uuid:1&amp;2&gt;</unknown-param>"
        ));
        assert!(xml.contains("<unknown-param name=\"+g.3gpp.smsip\"/>"));
    }

    #[test]
    fn every_event_has_its_state() {
        use ContactEvent::*;
        for (e, s) in [
            (Registered, ContactState::Active),
            (Created, ContactState::Active),
            (Refreshed, ContactState::Active),
            (Shortened, ContactState::Active),
            (Expired, ContactState::Terminated),
            (Deactivated, ContactState::Terminated),
            (Probation, ContactState::Terminated),
            (Unregistered, ContactState::Terminated),
            (Rejected, ContactState::Terminated),
        ] {
            assert_eq!(e.state(), s, "{e:?}");
            let doc = Reginfo {
                version: 3,
                full: false,
                registrations: vec![RegistrationInfo {
                    aor: "tel:+1555".into(),
                    id: "r".into(),
                    state: RegistrationState::Terminated,
                    contacts: vec![contact(e)],
                }],
            };
            let xml = doc.to_xml();
            assert!(xml.contains(&format!("event=\"{}\"", e.as_str())));
            assert!(xml.contains("state=\"partial\""));
        }
    }

    #[test]
    fn every_document_is_valid_against_the_rfc_schema() {
        use ContactEvent::*;
        let mut full = contact(Registered);
        full.display_name = Some("Alice & <co>".into());
        full.q = Some("0.5".into());
        let mut probation = contact(Probation);
        probation.retry_after = Some(30);
        let contacts = [
            full,
            contact(Created),
            contact(Refreshed),
            contact(Shortened),
            contact(Expired),
            contact(Deactivated),
            probation,
            contact(Unregistered),
            contact(Rejected),
        ];
        for (i, c) in contacts.into_iter().enumerate() {
            for state in [
                RegistrationState::Init,
                RegistrationState::Active,
                RegistrationState::Terminated,
            ] {
                let doc = Reginfo {
                    version: u32::try_from(i).unwrap(),
                    full: i == 0,
                    registrations: vec![RegistrationInfo {
                        aor: "sip:alice@ims.example.net".into(),
                        id: "r1".into(),
                        state,
                        contacts: vec![c.clone()],
                    }],
                };
                let xml = doc.to_xml();
                ims_e2e::reginfo::validate(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
            }
        }
        // With the GRUU extension (RFC 5628): valid against its schema too, which
        // reginfo.xsd imports, so a malformed element is refused, not skipped.
        let mut with_gruus = contact(Registered);
        with_gruus.gruus = Some(ContactGruus {
            public: "sip:alice@ims.example.net;gr=urn:uuid:1".into(),
            temporary: "sip:tgruu.abc_-9@127.0.0.1:5080;gr".into(),
            first_cseq: 7,
        });
        let doc = Reginfo {
            version: 1,
            full: true,
            registrations: vec![RegistrationInfo {
                aor: "sip:alice@ims.example.net".into(),
                id: "r1".into(),
                state: RegistrationState::Active,
                contacts: vec![with_gruus, contact(Refreshed)],
            }],
        };
        let xml = doc.to_xml();
        assert!(
            xml.contains(" xmlns:gr=\"urn:ietf:params:xml:ns:gruuinfo\""),
            "{xml}"
        );
        assert!(xml.contains("<gr:pub-gruu uri=\"sip:alice@ims.example.net;gr=urn:uuid:1\"/>"));
        assert!(xml.contains(
            "<gr:temp-gruu uri=\"sip:tgruu.abc_-9@127.0.0.1:5080;gr\" first-cseq=\"7\"/>"
        ));
        ims_e2e::reginfo::validate(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
        let bad = xml.replace(" first-cseq=\"7\"", "");
        assert!(ims_e2e::reginfo::validate(&bad).is_err(), "{bad}");
        let empty = Reginfo {
            version: 9,
            full: true,
            registrations: Vec::new(),
        };
        ims_e2e::reginfo::validate(&empty.to_xml()).unwrap();
        // The validator refuses what the schema does not allow.
        let bad = empty.to_xml().replace("state=\"full\"", "state=\"whole\"");
        assert!(ims_e2e::reginfo::validate(&bad).is_err());
    }
}
