//! Property tests of the message model (RFC 3261 §7, §25): generated wire bytes
//! re-serialize byte-exactly, built messages parse back to what was built, and header
//! edits (set / pop_first_value / push_front) parse back to the edited model.
//!
//! The generator writes what RFC 3261 allows and real peers send: compact names,
//! whitespace before the colon, folded lines, comma-joined and separate Vias, IPv6 and
//! tel: URIs, quoted display names holding commas and escaped quotes, digest
//! credentials and challenges with qop lists, binary bodies with a matching
//! Content-Length.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::Bytes;
use proptest::prelude::*;

use ims_sip::message::addr::NameAddr;
use ims_sip::message::auth_params::AuthParams;
use ims_sip::message::uri::Uri;
use ims_sip::message::via::Via;
use ims_sip::{HeaderName, Headers, Method, Request, Response, SipMessage, StartLine};

/// One generated header line.
#[derive(Debug, Clone)]
struct GenHeader {
    /// Name as written on the wire (maybe compact, any case).
    wire_name: String,
    name: HeaderName,
    /// The comma-separated elements (one for single-valued headers).
    elements: Vec<String>,
    /// Separators between elements as written (`,`, ` , `, `,\r\n  `, ...).
    seps: Vec<String>,
    /// Whitespace between name and colon, and after the colon (may fold).
    before_colon: String,
    after_colon: String,
    /// True when the header is a comma-separated list (Via, Contact, Route, ...).
    list: bool,
}

impl GenHeader {
    fn raw_value(&self) -> String {
        let mut v = self.elements[0].clone();
        for (sep, e) in self.seps.iter().zip(&self.elements[1..]) {
            v.push_str(sep);
            v.push_str(e);
        }
        v
    }

    fn wire(&self) -> String {
        format!(
            "{}{}:{}{}\r\n",
            self.wire_name,
            self.before_colon,
            self.after_colon,
            self.raw_value()
        )
    }
}

/// RFC 3261 §7.3.1: folding (`*WSP CRLF 1*WSP`) is equivalent to a single SP. Written
/// from the RFC, not from the parser.
fn unfold(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("\r\n") {
        out.push_str(rest[..i].trim_end_matches([' ', '\t']));
        out.push(' ');
        rest = rest[i + 2..].trim_start_matches([' ', '\t']);
    }
    out.push_str(rest);
    out.trim_matches([' ', '\t']).to_string()
}

#[derive(Debug, Clone)]
enum GenStart {
    Request { method: Method, uri: String },
    Response { code: u16, reason: String },
}

#[derive(Debug, Clone)]
struct GenMessage {
    start: GenStart,
    headers: Vec<GenHeader>,
    body: Vec<u8>,
}

impl GenMessage {
    fn wire(&self) -> Vec<u8> {
        let mut out = match &self.start {
            GenStart::Request { method, uri } => format!("{method} {uri} SIP/2.0\r\n"),
            GenStart::Response { code, reason } => format!("SIP/2.0 {code} {reason}\r\n"),
        }
        .into_bytes();
        for h in &self.headers {
            out.extend_from_slice(h.wire().as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        out
    }
}

// ---- strategies ----------------------------------------------------------------

fn token() -> BoxedStrategy<String> {
    "[a-zA-Z0-9][a-zA-Z0-9.!%*_+`'~-]{0,11}".boxed()
}

fn method() -> BoxedStrategy<Method> {
    prop_oneof![
        Just(Method::Invite),
        Just(Method::Register),
        Just(Method::Options),
        Just(Method::Bye),
        Just(Method::Message),
        Just(Method::Subscribe),
        Just(Method::Notify),
        "[A-Z]{3,10}".prop_map(|m| Method::from_token(m.as_bytes())),
    ]
    .boxed()
}

fn host() -> BoxedStrategy<String> {
    prop_oneof![
        "[a-z][a-z0-9-]{0,8}(\\.[a-z][a-z0-9]{0,6}){1,3}",
        (any::<u8>(), any::<u8>(), any::<u8>()).prop_map(|(a, b, c)| format!("10.{a}.{b}.{c}")),
        (any::<u16>(), any::<u16>()).prop_map(|(a, b)| format!("[2001:db8::{a:x}:{b:x}]")),
    ]
    .boxed()
}

fn port() -> BoxedStrategy<Option<u16>> {
    prop::option::of(1u16..).boxed()
}

fn uri_param() -> BoxedStrategy<String> {
    prop_oneof![
        Just(";lr".to_string()),
        Just(";transport=tcp".to_string()),
        "[a-z]{1,6}(=[a-z0-9]{1,6})?".prop_map(|p| format!(";{p}")),
    ]
    .boxed()
}

/// A SIP, SIPS or tel URI, and its host (or number) for the typed check.
fn uri() -> BoxedStrategy<(String, String)> {
    let sip = (
        prop_oneof![Just("sip"), Just("sips")],
        prop::option::of("[a-z0-9._%+-]{1,10}"),
        host(),
        port(),
        prop::collection::vec(uri_param(), 0..3),
    )
        .prop_map(|(scheme, user, host, port, params)| {
            let mut s = format!("{scheme}:");
            if let Some(u) = user {
                s.push_str(&u);
                s.push('@');
            }
            s.push_str(&host);
            if let Some(p) = port {
                s.push_str(&format!(":{p}"));
            }
            s.push_str(&params.concat());
            (s, host)
        });
    let tel = (
        "\\+[1-9][0-9]{4,12}",
        prop::option::of("[a-z]{2,8}\\.[a-z]{2,3}"),
    )
        .prop_map(|(number, ctx)| {
            let s = match ctx {
                Some(c) => format!("tel:{number};phone-context={c}"),
                None => format!("tel:{number}"),
            };
            (s, number)
        });
    prop_oneof![3 => sip, 1 => tel].boxed()
}

/// `[display] <uri>;params`, with quoted display names holding commas and `\"`.
fn name_addr(tag: bool) -> BoxedStrategy<(String, Option<String>)> {
    let display = prop_oneof![
        Just(None),
        token().prop_map(Some),
        ("[a-zA-Z ,]{0,10}", "[a-zA-Z]{0,5}").prop_map(|(a, b)| Some(format!("\"{a}\\\"{b}, x\""))),
    ];
    let tag = if tag { "[a-z0-9]{4,10}" } else { "" };
    (display, uri(), tag)
        .prop_map(|(display, (uri, _), tag)| {
            let mut s = match &display {
                Some(d) => format!("{d} <{uri}>"),
                None => format!("<{uri}>"),
            };
            if !tag.is_empty() {
                s.push_str(";tag=");
                s.push_str(&tag);
            }
            (s, display)
        })
        .boxed()
}

fn via_element() -> BoxedStrategy<String> {
    (
        prop_oneof![Just("UDP"), Just("TCP"), Just("TLS"), Just("SCTP")],
        host(),
        port(),
        "[a-zA-Z0-9]{1,12}",
        any::<bool>(),
    )
        .prop_map(|(transport, host, port, branch, rport)| {
            let mut s = format!("SIP/2.0/{transport} {host}");
            if let Some(p) = port {
                s.push_str(&format!(":{p}"));
            }
            s.push_str(";branch=z9hG4bK");
            s.push_str(&branch);
            if rport {
                s.push_str(";rport");
            }
            s
        })
        .boxed()
}

fn list_sep() -> BoxedStrategy<String> {
    prop_oneof![
        Just(",".to_string()),
        Just(", ".to_string()),
        Just(" ,\t".to_string()),
        Just(",\r\n ".to_string()),
        Just(" ,\r\n\t  ".to_string()),
    ]
    .boxed()
}

fn after_colon() -> BoxedStrategy<String> {
    prop_oneof![
        4 => Just(" ".to_string()),
        1 => Just("".to_string()),
        1 => Just("\t ".to_string()),
        1 => Just("\r\n ".to_string()),
    ]
    .boxed()
}

/// `names` are the wire spellings to choose from (long and compact, any case).
fn header(
    names: &'static [&'static str],
    name: HeaderName,
    elements: impl Strategy<Value = Vec<String>> + 'static,
    list: bool,
) -> BoxedStrategy<GenHeader> {
    (
        prop::sample::select(names),
        elements,
        prop::collection::vec(list_sep(), 8),
        prop_oneof![3 => Just(""), 1 => Just(" "), 1 => Just("\t")],
        after_colon(),
    )
        .prop_map(
            move |(wire_name, elements, seps, before, after)| GenHeader {
                wire_name: wire_name.to_string(),
                name: name.clone(),
                seps: seps[..elements.len() - 1].to_vec(),
                elements,
                before_colon: before.to_string(),
                after_colon: after,
                list,
            },
        )
        .boxed()
}

fn one(s: impl Strategy<Value = String> + 'static) -> BoxedStrategy<Vec<String>> {
    s.prop_map(|e| vec![e]).boxed()
}

fn digest_credentials() -> BoxedStrategy<String> {
    (
        "[a-z]{1,8}",
        "[a-zA-Z0-9+/=]{8,24}",
        "[0-9a-f]{32}",
        1u32..1000,
    )
        .prop_map(|(user, nonce, response, nc)| {
            format!(
                "Digest username=\"{user}@ims.example.net\", realm=\"ims.example.net\", \
                 nonce=\"{nonce}\", uri=\"sip:ims.example.net\", response=\"{response}\", \
                 algorithm=AKAv1-MD5, qop=auth, nc={nc:08x}, cnonce=\"0a4f113b\""
            )
        })
        .boxed()
}

fn digest_challenge() -> BoxedStrategy<String> {
    ("[a-zA-Z0-9+/=]{8,24}", any::<bool>())
        .prop_map(|(nonce, both)| {
            let qop = if both { "auth,auth-int" } else { "auth" };
            format!(
                "Digest realm=\"ims.example.net\",\r\n nonce=\"{nonce}\", algorithm=AKAv1-MD5, \
             qop=\"{qop}\", stale=FALSE"
            )
        })
        .boxed()
}

fn message() -> BoxedStrategy<GenMessage> {
    let start = prop_oneof![
        (method(), uri()).prop_map(|(method, (uri, _))| GenStart::Request { method, uri }),
        (100u16..700, "[a-zA-Z][a-zA-Z ]{0,20}")
            .prop_map(|(code, reason)| GenStart::Response { code, reason }),
    ];
    (start, method())
        .prop_flat_map(|(start, cseq_method)| {
            let cseq_method = match &start {
                GenStart::Request { method, .. } => method.clone(),
                GenStart::Response { .. } => cseq_method,
            };
            let vias = prop::collection::vec(
                header(
                    &["Via", "v", "VIA", "via"],
                    HeaderName::Via,
                    prop::collection::vec(via_element(), 1..4),
                    true,
                ),
                1..3,
            );
            let fixed = (
                header(
                    &["From", "f", "FROM"],
                    HeaderName::From,
                    one(name_addr(true).prop_map(|a| a.0)),
                    false,
                ),
                header(
                    &["To", "t"],
                    HeaderName::To,
                    one(name_addr(false).prop_map(|a| a.0)),
                    false,
                ),
                header(
                    &["Call-ID", "i", "call-id"],
                    HeaderName::CallId,
                    one("[a-zA-Z0-9]{4,20}@[a-z]{1,8}"),
                    false,
                ),
                header(
                    &["CSeq", "cseq"],
                    HeaderName::CSeq,
                    one((0u32.., Just(cseq_method)).prop_map(|(n, m)| format!("{n} {m}"))),
                    false,
                ),
                header(
                    &["Max-Forwards"],
                    HeaderName::MaxForwards,
                    one((0u8..).prop_map(|n| n.to_string())),
                    false,
                ),
            );
            let optional = (
                prop::option::of(header(
                    &["Contact", "m"],
                    HeaderName::Contact,
                    prop::collection::vec(name_addr(false).prop_map(|a| a.0), 1..3),
                    true,
                )),
                prop::collection::vec(
                    header(
                        &["Route", "Record-Route"],
                        HeaderName::Route,
                        prop::collection::vec(uri().prop_map(|(u, _)| format!("<{u};lr>")), 1..3),
                        true,
                    ),
                    0..3,
                ),
                prop::option::of(header(
                    &["Supported", "k"],
                    HeaderName::Supported,
                    prop::collection::vec(token(), 1..4),
                    true,
                )),
                prop::option::of(header(
                    &["Authorization"],
                    HeaderName::Authorization,
                    one(digest_credentials()),
                    false,
                )),
                prop::option::of(header(
                    &["WWW-Authenticate"],
                    HeaderName::WwwAuthenticate,
                    one(digest_challenge()),
                    false,
                )),
                prop::option::of(
                    ("X-[A-Za-z]{1,8}", "[ -~]{0,30}").prop_map(|(n, v)| GenHeader {
                        name: HeaderName::from_bytes(n.as_bytes()),
                        wire_name: n,
                        elements: vec![v.trim().to_string()],
                        seps: Vec::new(),
                        before_colon: String::new(),
                        after_colon: " ".to_string(),
                        list: false,
                    }),
                ),
            );
            let body = prop::collection::vec(any::<u8>(), 0..300);
            (Just(start), vias, fixed, optional, body, any::<bool>()).prop_map(
                |(start, vias, fixed, optional, body, compact_length)| {
                    let (from, to, call_id, cseq, max_forwards) = fixed;
                    let (contact, routes, supported, auth, challenge, ext) = optional;
                    let mut headers = vias;
                    headers.extend([from, to, call_id, cseq, max_forwards]);
                    headers.extend(contact);
                    // Route/Record-Route: the wire name decides which one it is.
                    headers.extend(routes.into_iter().map(|mut r| {
                        r.name = HeaderName::from_bytes(r.wire_name.as_bytes());
                        r
                    }));
                    headers.extend(supported);
                    headers.extend(auth);
                    headers.extend(challenge);
                    headers.extend(ext);
                    headers.push(GenHeader {
                        wire_name: if compact_length {
                            "l"
                        } else {
                            "Content-Length"
                        }
                        .to_string(),
                        name: HeaderName::ContentLength,
                        elements: vec![body.len().to_string()],
                        seps: Vec::new(),
                        before_colon: String::new(),
                        after_colon: " ".to_string(),
                        list: false,
                    });
                    GenMessage {
                        start,
                        headers,
                        body,
                    }
                },
            )
        })
        .boxed()
}

// ---- checks ---------------------------------------------------------------------

fn check_start(msg: &SipMessage, start: &GenStart) {
    match start {
        GenStart::Request { method, uri } => {
            let req = msg.request().expect("a request");
            assert_eq!(&req.method, method);
            assert_eq!(&req.uri[..], uri.as_bytes());
        }
        GenStart::Response { code, reason } => {
            let resp = msg.response().expect("a response");
            assert_eq!(resp.code, *code);
            assert_eq!(&resp.reason[..], reason.as_bytes());
        }
    }
}

/// The parsed headers match the generated ones, by name, unfolded value, list
/// elements and typed views.
fn check_headers(msg: &SipMessage, gen: &[GenHeader]) {
    assert_eq!(msg.headers.len(), gen.len());
    for (h, g) in msg.headers.iter().zip(gen) {
        assert_eq!(h.name, g.name, "name of {}", g.wire_name);
        let expected = unfold(&g.raw_value());
        assert_eq!(
            h.value_str(),
            Some(expected.as_str()),
            "value of {}",
            g.wire_name
        );
        if g.list {
            let elements: Vec<Bytes> = h.values().collect();
            let want: Vec<&[u8]> = g.elements.iter().map(|e| e.as_bytes()).collect();
            assert_eq!(elements, want, "elements of {}", g.wire_name);
        }
        let text = h.value_str().unwrap();
        match &g.name {
            HeaderName::Via => {
                for (e, want) in h.values().zip(&g.elements) {
                    let via = Via::parse(std::str::from_utf8(&e).unwrap()).unwrap();
                    let branch = want.split(";branch=").nth(1).unwrap().split(';').next();
                    assert_eq!(via.branch(), branch);
                }
            }
            HeaderName::From | HeaderName::To | HeaderName::Contact | HeaderName::Route => {
                for e in h.values() {
                    let addr = NameAddr::parse(std::str::from_utf8(&e).unwrap()).unwrap();
                    Uri::parse(addr.uri).unwrap();
                }
                if g.name == HeaderName::From {
                    assert!(NameAddr::parse(text).unwrap().tag().is_some());
                }
            }
            HeaderName::Authorization => {
                let p = AuthParams::parse(text).unwrap();
                assert_eq!(p.qop_list(), ["auth"]);
                assert!(p.nonce_count().is_some());
            }
            HeaderName::WwwAuthenticate => {
                let p = AuthParams::parse(text).unwrap();
                let qop = p.qop_list();
                assert!(qop == ["auth"] || qop == ["auth", "auth-int"], "{qop:?}");
            }
            _ => {}
        }
    }
}

/// Builds the message through the API: canonical names, elements joined with `, `.
fn build(gen: &GenMessage) -> SipMessage {
    let start = match &gen.start {
        GenStart::Request { method, uri } => {
            StartLine::Request(Request::new(method.clone(), uri.clone()))
        }
        GenStart::Response { code, reason } => {
            StartLine::Response(Response::new(*code, reason.clone()))
        }
    };
    let mut headers = Headers::new();
    for h in &gen.headers {
        if h.name != HeaderName::ContentLength {
            headers.push(h.name.clone(), unfold(&h.elements.join(", ")));
        }
    }
    let mut msg = SipMessage::new(start, headers, Bytes::new());
    msg.set_body(Bytes::from(gen.body.clone()));
    msg
}

/// A header line as the edit model sees it: the name and its elements (or, for
/// non-list headers, the whole value as the only element).
type ModelLine = (HeaderName, Vec<String>);

fn model_of(msg: &SipMessage, lists: &[HeaderName]) -> Vec<ModelLine> {
    msg.headers
        .iter()
        .map(|h| {
            let elements = if lists.contains(&h.name) {
                h.values()
                    .map(|v| String::from_utf8(v.to_vec()).unwrap())
                    .collect()
            } else {
                vec![h.value_str().unwrap().to_string()]
            };
            (h.name.clone(), elements)
        })
        .collect()
}

#[derive(Debug, Clone)]
enum Edit {
    Set(HeaderName, Vec<String>),
    Pop(HeaderName),
    PushFront(HeaderName, String),
}

fn edit() -> BoxedStrategy<Edit> {
    let name = prop::sample::select(vec![
        HeaderName::Via,
        HeaderName::Route,
        HeaderName::RecordRoute,
        HeaderName::Contact,
        HeaderName::Supported,
    ]);
    let value = prop_oneof![
        via_element(),
        uri().prop_map(|(u, _)| format!("<{u};lr>")),
        token(),
    ];
    prop_oneof![
        (name.clone(), prop::collection::vec(value.clone(), 1..3))
            .prop_map(|(n, v)| Edit::Set(n, v)),
        name.clone().prop_map(Edit::Pop),
        (name, value).prop_map(|(n, v)| Edit::PushFront(n, v)),
    ]
    .boxed()
}

/// RFC-level meaning of each edit on the model (see `Headers` docs).
fn apply_to_model(model: &mut Vec<ModelLine>, edit: &Edit) -> Option<String> {
    match edit {
        Edit::Set(name, values) => {
            let first = model.iter().position(|(n, _)| n == name);
            match first {
                Some(pos) => {
                    model[pos].1 = values.clone();
                    let mut i = 0;
                    model.retain(|(n, _)| {
                        let keep = n != name || i == pos;
                        i += 1;
                        keep
                    });
                }
                None => model.push((name.clone(), values.clone())),
            }
            None
        }
        Edit::Pop(name) => {
            let pos = model.iter().position(|(n, _)| n == name)?;
            let first = model[pos].1.remove(0);
            if model[pos].1.is_empty() {
                model.remove(pos);
            }
            Some(first)
        }
        Edit::PushFront(name, value) => {
            let pos = model.iter().position(|(n, _)| n == name).unwrap_or(0);
            model.insert(pos, (name.clone(), vec![value.clone()]));
            None
        }
    }
}

fn apply_to_message(msg: &mut SipMessage, edit: &Edit) -> Option<String> {
    match edit {
        Edit::Set(name, values) => {
            msg.headers.set(name.clone(), values.join(", "));
            None
        }
        Edit::Pop(name) => msg
            .headers
            .pop_first_value(name)
            .map(|v| String::from_utf8(v.to_vec()).unwrap()),
        Edit::PushFront(name, value) => {
            msg.headers.push_front(name.clone(), value.clone());
            None
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// serialize(parse(bytes)) == bytes, and the parse sees what was generated.
    #[test]
    fn wire_bytes_round_trip(gen in message()) {
        let wire = gen.wire();
        let msg = SipMessage::parse(wire.clone()).unwrap();
        prop_assert_eq!(&msg.to_bytes()[..], &wire[..]);
        check_start(&msg, &gen.start);
        check_headers(&msg, &gen.headers);
        prop_assert_eq!(&msg.body()[..], &gen.body[..]);
        msg.validate().unwrap();
    }

    /// parse(serialize(m)) == m for messages built through the API.
    #[test]
    fn built_messages_parse_back(gen in message()) {
        let built = build(&gen);
        let wire = built.to_bytes();
        let parsed = SipMessage::parse(wire.clone()).unwrap();
        check_start(&parsed, &gen.start);
        let lists: Vec<HeaderName> = gen.headers.iter().filter(|h| h.list).map(|h| h.name.clone()).collect();
        prop_assert_eq!(model_of(&parsed, &lists), model_of(&built, &lists));
        prop_assert_eq!(parsed.body(), built.body());
        prop_assert_eq!(&parsed.to_bytes()[..], &wire[..]);
    }

    /// Editing headers yields a message that parses back to the edited model.
    #[test]
    fn edits_parse_back_to_the_edited_model(gen in message(), edits in prop::collection::vec(edit(), 1..5)) {
        let mut msg = SipMessage::parse(gen.wire()).unwrap();
        let mut lists: Vec<HeaderName> = gen.headers.iter().filter(|h| h.list).map(|h| h.name.clone()).collect();
        lists.extend([HeaderName::Via, HeaderName::Route, HeaderName::RecordRoute, HeaderName::Contact, HeaderName::Supported]);
        let mut model = model_of(&msg, &lists);
        for e in &edits {
            // Keep at least one Via: without one the message is not a message.
            let vias: usize = model.iter().filter(|(n, _)| *n == HeaderName::Via).map(|(_, v)| v.len()).sum();
            if matches!(e, Edit::Pop(HeaderName::Via)) && vias < 2 {
                continue;
            }
            let want = apply_to_model(&mut model, e);
            let got = apply_to_message(&mut msg, e);
            prop_assert_eq!(got, want);
        }
        let reparsed = SipMessage::parse(msg.to_bytes()).unwrap();
        prop_assert_eq!(model_of(&reparsed, &lists), model);
        prop_assert_eq!(reparsed.body(), msg.body());
    }
}
