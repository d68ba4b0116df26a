//! One reg event subscription: the dialog the SUBSCRIBE made (RFC 6665 §4.1, RFC 3261
//! §12.1.1: the S-CSCF is the UAS), what it is about, and the NOTIFY it sends in it
//! (RFC 3261 §12.2.1.1: Request-URI the remote target, Route the route set, From/To
//! with the dialog's tags, CSeq one above the last one sent).

use bytes::Bytes;
use ims_sip::message::addr::NameAddr;
use ims_sip::message::cseq::CSeq;
use ims_sip::message::Headers;
use ims_sip::message::{Request, StartLine};
use ims_sip::{HeaderName, Method, SipMessage};

use super::reginfo::CONTENT_TYPE;

/// Who subscribed, as authorized (TS 24.229 §5.4.2.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriberKind {
    /// A public identity of the implicit set (the user's UE).
    User,
    /// The P-CSCF on the user's Path.
    Pcscf,
    /// An application server named in the user's iFCs.
    ApplicationServer,
}

impl SubscriberKind {
    /// Its name in the store and in listings.
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriberKind::User => "user",
            SubscriberKind::Pcscf => "pcscf",
            SubscriberKind::ApplicationServer => "application_server",
        }
    }

    /// The kind named `s` ([`SubscriberKind::as_str`]).
    pub fn parse(s: &str) -> Option<SubscriberKind> {
        [Self::User, Self::Pcscf, Self::ApplicationServer]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// A subscription and its dialog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// The public identity subscribed to (the SUBSCRIBE's Request-URI).
    pub resource: String,
    /// The subscriber's asserted identity.
    pub subscriber: String,
    /// What the subscriber is.
    pub kind: SubscriberKind,
    /// Call-ID of the dialog.
    pub call_id: String,
    /// Our tag (the To tag of our 200, the From tag of our NOTIFYs).
    pub local_tag: String,
    /// The subscriber's tag (its From tag).
    pub remote_tag: String,
    /// Our URI (the SUBSCRIBE's To, without tag): the From of our NOTIFYs.
    pub local_uri: String,
    /// The subscriber's URI (the SUBSCRIBE's From, without tag): the To of our NOTIFYs.
    pub remote_uri: String,
    /// The subscriber's Contact URI: the Request-URI of our NOTIFYs.
    pub remote_target: String,
    /// The Record-Route values of the SUBSCRIBE, in order: the Route of our NOTIFYs.
    pub route_set: Vec<String>,
    /// CSeq of the last NOTIFY sent.
    pub local_cseq: u32,
    /// CSeq of the last SUBSCRIBE received.
    pub remote_cseq: u32,
    /// Version of the next reginfo document (RFC 3680 §5.4: 0 first, one more each).
    pub version: u32,
    /// When the subscription lapses (Unix seconds).
    pub expires_at: u64,
    /// The `id` parameter of the Event header, if any (RFC 6665 §8.2.1).
    pub event_id: Option<String>,
    /// NOTIFYs sent since the row was last written (not stored): the notifier writes a
    /// NOTIFY's CSeq and version only every [`crate::regevent::NOTIFY_WRITE_LAG`]th time.
    pub unwritten: u32,
    /// Restored from the store (not stored): the next NOTIFY carries the full state,
    /// since the CSeq and version jumped over the ones that were not written.
    pub restored: bool,
}

/// Why a SUBSCRIBE cannot make a dialog.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialogError {
    /// A header the dialog needs is missing or malformed.
    #[error("missing or malformed {0}")]
    Header(&'static str),
}

/// The name-addr of a From/To value without its tag, and the tag.
fn without_tag(value: &str) -> Option<(String, Option<String>)> {
    let a = NameAddr::parse(value).ok()?;
    let tag = a.tag().map(str::to_string);
    Some((format!("<{}>", a.uri), tag))
}

/// The URI of a header value (`<uri>;params` or addr-spec).
fn uri_of(value: &str) -> Option<String> {
    NameAddr::parse(value).ok().map(|a| a.uri.to_string())
}

/// The CSeq number of `req`.
pub fn cseq_of(req: &SipMessage) -> Option<u32> {
    req.headers
        .get_str(&HeaderName::CSeq)
        .and_then(|v| CSeq::parse(v.as_bytes()).ok())
        .map(|c| c.seq)
}

/// The `id` parameter of the Event header.
pub fn event_id(req: &SipMessage) -> Option<String> {
    let event = req.headers.get_str(&HeaderName::Event)?;
    event.split(';').skip(1).find_map(|p| {
        let (name, value) = p.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("id")
            .then(|| value.trim().to_string())
    })
}

/// Whether `req` is for the reg event package (RFC 3680 §3).
pub fn is_reg_event(req: &SipMessage) -> bool {
    req.headers.get_str(&HeaderName::Event).is_some_and(|e| {
        e.split(';')
            .next()
            .is_some_and(|p| p.trim().eq_ignore_ascii_case("reg"))
    })
}

/// The dialog identifier of a request the subscriber sends in the dialog (Call-ID,
/// our tag = its To tag, its tag = its From tag).
pub fn dialog_of(req: &SipMessage) -> Option<(String, String, String)> {
    let call_id = req.headers.get_str(&HeaderName::CallId)?.to_string();
    let (_, local) = without_tag(req.headers.get_str(&HeaderName::To)?)?;
    let (_, remote) = without_tag(req.headers.get_str(&HeaderName::From)?)?;
    Some((call_id, local?, remote?))
}

impl Subscription {
    /// The dialog of an initial SUBSCRIBE, with `local_tag` as our tag.
    pub fn from_subscribe(
        req: &SipMessage,
        resource: &str,
        subscriber: &str,
        kind: SubscriberKind,
        local_tag: &str,
        expires_at: u64,
    ) -> Result<Subscription, DialogError> {
        let h =
            |name: &HeaderName, what| req.headers.get_str(name).ok_or(DialogError::Header(what));
        let call_id = h(&HeaderName::CallId, "Call-ID")?.to_string();
        let (remote_uri, remote_tag) =
            without_tag(h(&HeaderName::From, "From")?).ok_or(DialogError::Header("From"))?;
        let remote_tag = remote_tag.ok_or(DialogError::Header("From tag"))?;
        let (local_uri, _) =
            without_tag(h(&HeaderName::To, "To")?).ok_or(DialogError::Header("To"))?;
        let remote_target =
            uri_of(h(&HeaderName::Contact, "Contact")?).ok_or(DialogError::Header("Contact"))?;
        let route_set: Vec<String> = req
            .headers
            .get_all(&HeaderName::RecordRoute)
            .flat_map(|h| h.values().collect::<Vec<_>>())
            .filter_map(|v| std::str::from_utf8(&v).ok().map(|s| s.trim().to_string()))
            .collect();
        Ok(Subscription {
            resource: resource.to_string(),
            subscriber: subscriber.to_string(),
            kind,
            call_id,
            local_tag: local_tag.to_string(),
            remote_tag,
            local_uri,
            remote_uri,
            remote_target,
            route_set,
            local_cseq: 0,
            remote_cseq: cseq_of(req).ok_or(DialogError::Header("CSeq"))?,
            version: 0,
            expires_at,
            event_id: event_id(req),
            unwritten: 0,
            restored: false,
        })
    }

    /// The key of the subscription in the table and the store.
    pub fn key(&self) -> String {
        key(&self.call_id, &self.local_tag, &self.remote_tag)
    }

    /// The next NOTIFY of the dialog (its CSeq taken), with `state` as its
    /// Subscription-State and `body` as its reginfo document; `contact` is our Contact.
    /// Without Via: the engine adds ours when it sends it.
    pub fn notify(&mut self, contact: &str, state: &str, body: &str) -> SipMessage {
        self.local_cseq = self.local_cseq.saturating_add(1);
        let mut headers = Headers::new();
        for r in &self.route_set {
            headers.push(HeaderName::Route, r.clone());
        }
        let event = match &self.event_id {
            Some(id) => format!("reg;id={id}"),
            None => "reg".to_string(),
        };
        let own = |s: String| Bytes::from(s);
        headers.push(HeaderName::MaxForwards, "70");
        headers.push(
            HeaderName::From,
            own(format!("{};tag={}", self.local_uri, self.local_tag)),
        );
        headers.push(
            HeaderName::To,
            own(format!("{};tag={}", self.remote_uri, self.remote_tag)),
        );
        headers.push(HeaderName::CallId, self.call_id.clone());
        headers.push(HeaderName::CSeq, own(format!("{} NOTIFY", self.local_cseq)));
        headers.push(HeaderName::Contact, contact.to_string());
        headers.push(HeaderName::Event, event);
        headers.push(
            HeaderName::Other(Bytes::from_static(b"Subscription-State")),
            state.to_string(),
        );
        headers.push(HeaderName::ContentType, CONTENT_TYPE);
        headers.push(HeaderName::ContentLength, body.len().to_string());
        let start = StartLine::Request(Request::new(Method::Notify, self.remote_target.clone()));
        SipMessage::new(start, headers, Bytes::copy_from_slice(body.as_bytes()))
    }
}

/// The key of a subscription from its dialog identifier.
pub fn key(call_id: &str, local_tag: &str, remote_tag: &str) -> String {
    format!("{call_id}\n{local_tag}\n{remote_tag}")
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn subscribe(extra: &str) -> SipMessage {
        let text = format!(
            "SUBSCRIBE sip:alice@ims.example.net SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1\r\n\
             Record-Route: <sip:tok@127.0.0.1:5060;lr>\r\n\
             Record-Route: <sip:127.0.0.1:5062;lr>\r\n\
             From: <sip:alice@ims.example.net>;tag=ue1\r\nTo: <sip:alice@ims.example.net>\r\n\
             Call-ID: sub-1\r\nCSeq: 7 SUBSCRIBE\r\nContact: <sip:alice@10.0.0.1:5090>\r\n\
             Event: reg\r\n{extra}Content-Length: 0\r\n\r\n"
        );
        SipMessage::parse(text.into_bytes()).unwrap()
    }

    #[test]
    fn dialog_from_subscribe_and_its_notify() {
        let req = subscribe("Expires: 600000\r\n");
        assert!(is_reg_event(&req));
        let mut s = Subscription::from_subscribe(
            &req,
            "sip:alice@ims.example.net",
            "sip:alice@ims.example.net",
            SubscriberKind::User,
            "s1",
            5000,
        )
        .unwrap();
        assert_eq!(
            s.route_set,
            ["<sip:tok@127.0.0.1:5060;lr>", "<sip:127.0.0.1:5062;lr>"]
        );
        assert_eq!(s.remote_cseq, 7);
        let n = s.notify("<sip:127.0.0.1:5080>", "active;expires=600", "<reginfo/>");
        let text = String::from_utf8(n.to_bytes().to_vec()).unwrap();
        assert!(text.starts_with("NOTIFY sip:alice@10.0.0.1:5090 SIP/2.0\r\n"));
        assert!(text
            .contains("Route: <sip:tok@127.0.0.1:5060;lr>\r\nRoute: <sip:127.0.0.1:5062;lr>\r\n"));
        assert!(text.contains("From: <sip:alice@ims.example.net>;tag=s1\r\n"));
        assert!(text.contains("To: <sip:alice@ims.example.net>;tag=ue1\r\n"));
        assert!(text.contains("CSeq: 1 NOTIFY\r\n"));
        assert!(text.contains("Subscription-State: active;expires=600\r\n"));
        let n2 = s.notify("<sip:x>", "active", "");
        assert_eq!(cseq_of(&n2), Some(2));
        assert_eq!(
            dialog_of(&subscribe_in_dialog()).unwrap(),
            ("sub-1".into(), "s1".into(), "ue1".into())
        );
    }

    fn subscribe_in_dialog() -> SipMessage {
        let text = "SUBSCRIBE sip:127.0.0.1:5080 SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK2\r\n\
             From: <sip:alice@ims.example.net>;tag=ue1\r\nTo: <sip:alice@ims.example.net>;tag=s1\r\n\
             Call-ID: sub-1\r\nCSeq: 8 SUBSCRIBE\r\nEvent: reg;id=5\r\nExpires: 0\r\nContent-Length: 0\r\n\r\n";
        SipMessage::parse(text.as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn event_package_and_id() {
        let req = subscribe_in_dialog();
        assert!(is_reg_event(&req));
        assert_eq!(event_id(&req).as_deref(), Some("5"));
        let other = subscribe("").clone();
        assert_eq!(event_id(&other), None);
        let mut presence = subscribe("");
        presence.headers.set(HeaderName::Event, "presence");
        assert!(!is_reg_event(&presence));
        assert!(Subscription::from_subscribe(
            &{
                let mut r = subscribe("");
                r.headers.remove_all(&HeaderName::Contact);
                r
            },
            "a",
            "b",
            SubscriberKind::User,
            "t",
            0
        )
        .is_err());
    }
}
