//! The body of a third-party REGISTER (TS 24.229 §5.4.1.7A): the iFC's `ServiceInfo` as
//! `application/3gpp-ims+xml` (TS 24.229 §7.6), the UE's REGISTER and our 200 OK to it
//! as `message/sip` when the iFC asks (`IncludeRegisterRequest`,
//! `IncludeRegisterResponse`); a `multipart/mixed` body (RFC 2046 §5.1.3) when there is
//! more than one, none when there is nothing to carry. Written by hand: three fixed
//! part types, a few lines each.

use bytes::Bytes;
use ims_sip::SipMessage;
use quick_xml::escape::escape;

use crate::ifc::ApplicationServer;

/// Content type of the ServiceInfo part (TS 24.229 §7.6).
pub const IMS_XML: &str = "application/3gpp-ims+xml";
/// Content type of an included SIP message (RFC 3261 §27.5).
pub const MESSAGE_SIP: &str = "message/sip";

/// A body and its Content-Type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Body {
    /// The Content-Type header value.
    pub content_type: String,
    /// The bytes.
    pub bytes: Bytes,
}

/// The body the iFC's `server` asks for, given the UE's `register` and our `ok` to it
/// (absent for a registration change the network made: nothing to include then).
pub fn build(
    server: &ApplicationServer,
    register: Option<&SipMessage>,
    ok: Option<&SipMessage>,
) -> Option<Body> {
    let mut parts: Vec<(&str, Bytes)> = Vec::new();
    if let Some(info) = &server.service_info {
        parts.push((IMS_XML, Bytes::from(service_info(info))));
    }
    if server.include_register_request {
        if let Some(r) = register {
            parts.push((MESSAGE_SIP, r.to_bytes()));
        }
    }
    if server.include_register_response {
        if let Some(r) = ok {
            parts.push((MESSAGE_SIP, r.to_bytes()));
        }
    }
    match parts.len() {
        0 => None,
        1 => parts.pop().map(|(t, bytes)| Body {
            content_type: t.to_string(),
            bytes,
        }),
        _ => Some(multipart(&parts)),
    }
}

/// The `ims-3gpp` document carrying `info` in its `service-info` element (TS 24.229
/// §7.6.2), `info` escaped as XML text (`quick_xml`).
fn service_info(info: &str) -> String {
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<ims-3gpp version=\"1\"><service-info>",
    );
    out.push_str(&escape(info));
    out.push_str("</service-info></ims-3gpp>\r\n");
    out
}

/// `parts` as one `multipart/mixed` body, with a boundary none of them contains
/// (RFC 2046 §5.1.1).
fn multipart(parts: &[(&str, Bytes)]) -> Body {
    let boundary = boundary_for(parts, rand::random::<u64>);
    let mut out = Vec::new();
    for (content_type, bytes) in parts {
        out.extend_from_slice(
            format!("--{boundary}\r\nContent-Type: {content_type}\r\n\r\n").as_bytes(),
        );
        out.extend_from_slice(bytes);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    Body {
        content_type: format!("multipart/mixed;boundary={boundary}"),
        bytes: Bytes::from(out),
    }
}

/// A random boundary absent from every part; lengthened (at most 8 times) in the
/// unlikely case a part holds it.
fn boundary_for(parts: &[(&str, Bytes)], mut random: impl FnMut() -> u64) -> String {
    let mut boundary = format!("3pty-{:016x}", random());
    for _ in 0..8 {
        let hit = parts.iter().any(|(_, b)| contains(b, boundary.as_bytes()));
        if !hit {
            break;
        }
        boundary.push_str(&format!("{:016x}", random()));
    }
    boundary
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ifc::DefaultHandling;

    fn server(info: Option<&str>, request: bool, response: bool) -> ApplicationServer {
        ApplicationServer {
            server_name: "sip:as@x".into(),
            default_handling: DefaultHandling::SessionContinued,
            service_info: info.map(str::to_owned),
            include_register_request: request,
            include_register_response: response,
        }
    }

    fn msg(first: &str) -> SipMessage {
        let raw = format!(
            "{first}\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nTo: <sip:a@x>\r\nFrom: <sip:a@x>;tag=1\r\n\
             Call-ID: c\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n"
        );
        SipMessage::parse(Bytes::from(raw)).unwrap()
    }

    #[test]
    fn nothing_to_carry_means_no_body() {
        let reg = msg("REGISTER sip:x SIP/2.0");
        assert_eq!(build(&server(None, false, false), Some(&reg), None), None);
        // Asked for, but a network de-registration has no REGISTER to include.
        assert_eq!(build(&server(None, true, true), None, None), None);
    }

    #[test]
    fn service_info_alone_is_a_single_escaped_ims_xml_body() {
        let b = build(&server(Some("a<b&c"), false, false), None, None).unwrap();
        assert_eq!(b.content_type, IMS_XML);
        let text = std::str::from_utf8(&b.bytes).unwrap();
        assert!(
            text.contains(
                "<ims-3gpp version=\"1\"><service-info>a&lt;b&amp;c</service-info></ims-3gpp>"
            ),
            "{text}"
        );
    }

    #[test]
    fn the_register_alone_is_message_sip() {
        let reg = msg("REGISTER sip:x SIP/2.0");
        let ok = msg("SIP/2.0 200 OK");
        let b = build(&server(None, true, false), Some(&reg), Some(&ok)).unwrap();
        assert_eq!(b.content_type, MESSAGE_SIP);
        assert_eq!(b.bytes, reg.to_bytes());
        let b = build(&server(None, false, true), Some(&reg), Some(&ok)).unwrap();
        assert_eq!(b.bytes, ok.to_bytes());
    }

    #[test]
    fn several_parts_make_a_multipart_mixed_body_in_order() {
        let reg = msg("REGISTER sip:x SIP/2.0");
        let ok = msg("SIP/2.0 200 OK");
        let b = build(&server(Some("svc"), true, true), Some(&reg), Some(&ok)).unwrap();
        let boundary = b
            .content_type
            .strip_prefix("multipart/mixed;boundary=")
            .unwrap();
        let text = std::str::from_utf8(&b.bytes).unwrap();
        let parts: Vec<&str> = text.split(&format!("--{boundary}")).collect();
        // Preamble (empty), three parts, then the closing "--\r\n".
        assert_eq!(parts.len(), 5, "{text}");
        assert_eq!(parts[0], "");
        assert!(parts[1].starts_with("\r\nContent-Type: application/3gpp-ims+xml\r\n\r\n<?xml"));
        assert!(
            parts[2].starts_with("\r\nContent-Type: message/sip\r\n\r\nREGISTER sip:x SIP/2.0\r\n")
        );
        assert!(parts[3].starts_with("\r\nContent-Type: message/sip\r\n\r\nSIP/2.0 200 OK\r\n"));
        assert_eq!(parts[4], "--\r\n");
    }

    #[test]
    fn the_boundary_never_occurs_in_a_part() {
        let taken = Bytes::from_static(b"...3pty-0000000000000001...");
        let parts = [(MESSAGE_SIP, taken)];
        let mut values = [1u64, 2].into_iter();
        let b = boundary_for(&parts, || values.next().unwrap_or(3));
        assert_eq!(b, "3pty-00000000000000010000000000000002");
    }
}
