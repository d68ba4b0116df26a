//! What the P-CSCF reads of an `application/reginfo+xml` NOTIFY body (RFC 3680 §5.4):
//! the registrations and contacts that ended. Read with `quick_xml`'s pull parser
//! (no document tree: the body is bounded and only two elements matter); anything
//! else in the document (extensions, `unknown-param`, display names) is skipped.

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

/// Largest body read, in bytes: a reginfo document for one implicit set is a few KiB.
pub const MAX_BODY: usize = 64 * 1024;
/// `<registration>` elements read at most.
const MAX_REGISTRATIONS: usize = 256;
/// `<contact>` elements read at most per registration.
const MAX_CONTACTS: usize = 256;

/// Why a body is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReginfoError {
    /// Larger than [`MAX_BODY`].
    #[error("reginfo body too large")]
    TooLarge,
    /// Not well-formed XML, or a `<registration>` without `aor`/`state`.
    #[error("malformed reginfo: {0}")]
    Malformed(String),
}

/// One `<registration>` as far as the P-CSCF cares.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RegistrationEnd {
    /// Its `aor`.
    pub aor: String,
    /// `state="terminated"`: no contact of the identity is bound any more.
    pub terminated: bool,
    /// The URIs of its contacts whose `state` is `terminated` (deactivated, expired,
    /// rejected, unregistered, probation).
    pub ended_contacts: Vec<String>,
}

fn attr(e: &BytesStart<'_>, name: &[u8]) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.local_name().as_ref() == name)
        .and_then(|a| a.unescape_value().ok().map(|v| v.trim().to_string()))
}

/// The registrations of `body` with the contacts that ended.
pub fn parse(body: &[u8]) -> Result<Vec<RegistrationEnd>, ReginfoError> {
    if body.len() > MAX_BODY {
        return Err(ReginfoError::TooLarge);
    }
    let text = std::str::from_utf8(body).map_err(|e| ReginfoError::Malformed(e.to_string()))?;
    let mut reader = Reader::from_str(text);
    reader.config_mut().trim_text(true);
    let mut out: Vec<RegistrationEnd> = Vec::new();
    // The contact being read: its state is terminated; its URI comes in `<uri>`.
    let mut contact_ended = false;
    let mut in_uri = false;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| ReginfoError::Malformed(e.to_string()))?;
        match event {
            Event::Start(e) | Event::Empty(e) => match e.local_name().as_ref() {
                b"registration" => {
                    if out.len() >= MAX_REGISTRATIONS {
                        return Err(ReginfoError::Malformed("too many registrations".into()));
                    }
                    let aor = attr(&e, b"aor").ok_or_else(|| {
                        ReginfoError::Malformed("registration without aor".into())
                    })?;
                    let state = attr(&e, b"state").ok_or_else(|| {
                        ReginfoError::Malformed("registration without state".into())
                    })?;
                    out.push(RegistrationEnd {
                        aor,
                        terminated: state == "terminated",
                        ended_contacts: Vec::new(),
                    });
                }
                b"contact" => {
                    contact_ended = attr(&e, b"state").as_deref() == Some("terminated");
                }
                b"uri" => in_uri = true,
                _ => {}
            },
            Event::Text(t) if in_uri && contact_ended => {
                let uri = t
                    .unescape()
                    .map_err(|e| ReginfoError::Malformed(e.to_string()))?;
                let Some(reg) = out.last_mut() else {
                    return Err(ReginfoError::Malformed(
                        "contact outside registration".into(),
                    ));
                };
                if reg.ended_contacts.len() >= MAX_CONTACTS {
                    return Err(ReginfoError::Malformed("too many contacts".into()));
                }
                reg.ended_contacts.push(uri.trim().to_string());
            }
            Event::End(e) => match e.local_name().as_ref() {
                b"uri" => in_uri = false,
                b"contact" => contact_ended = false,
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"<?xml version="1.0"?>
<reginfo xmlns="urn:ietf:params:xml:ns:reginfo" version="3" state="partial">
  <registration aor="sip:alice@ims.example.net" id="a1" state="active">
    <contact id="c1" state="terminated" event="deactivated">
      <uri>sip:alice@10.0.0.1:5062</uri>
    </contact>
    <contact id="c2" state="active" event="registered">
      <uri>sip:alice@10.0.0.2:5062</uri>
    </contact>
  </registration>
  <registration aor="tel:+15551230001" id="a2" state="terminated"/>
</reginfo>"#;

    #[test]
    fn ended_registrations_and_contacts_are_read() {
        let regs = parse(DOC.as_bytes()).unwrap();
        assert_eq!(
            regs,
            vec![
                RegistrationEnd {
                    aor: "sip:alice@ims.example.net".into(),
                    terminated: false,
                    ended_contacts: vec!["sip:alice@10.0.0.1:5062".into()],
                },
                RegistrationEnd {
                    aor: "tel:+15551230001".into(),
                    terminated: true,
                    ended_contacts: vec![],
                },
            ]
        );
    }

    #[test]
    fn hostile_bodies_are_refused() {
        assert_eq!(
            parse(&vec![b' '; MAX_BODY + 1]),
            Err(ReginfoError::TooLarge)
        );
        for bad in [
            "<reginfo><registration state=\"active\"/></reginfo>",
            "<reginfo><registration aor=\"x\" state=\"active\"></reginfo>",
            "<reginfo><contact state=\"terminated\"><uri>x</uri></contact></reginfo>",
        ] {
            assert!(parse(bad.as_bytes()).is_err(), "{bad}");
        }
        let many = format!(
            "<reginfo>{}</reginfo>",
            "<registration aor=\"x\" state=\"active\"/>".repeat(MAX_REGISTRATIONS + 1)
        );
        assert!(parse(many.as_bytes()).is_err());
    }
}
