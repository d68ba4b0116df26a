//! Session routing of the S-CSCF (TS 24.229 §5.4.3): what happens to an initial
//! request other than REGISTER once the proxy engine has validated it and removed our
//! Route value (RFC 3261 §16.3, §16.4).
//!
//! | module | what | standard |
//! |---|---|---|
//! | [`case`] | originating or terminating, and the served user | TS 24.229 §5.4.3.1, TS 29.228 Annex F |
//! | [`originating`] | the caller must be registered and not barred (403); after its application servers, record-route toward the callee's home network (I-CSCF) or by Request-URI | TS 24.229 §5.4.3.2 |
//! | [`terminating`] | registered callee, or unregistered with a profile from SAR UNREGISTERED_USER; barred or not ours: 404; after its application servers, record-route and fork to every registered contact along its Path; none: 480; retargeted by an AS: on by Request-URI | TS 24.229 §5.4.3.3, RFC 3327 §5.3 |
//! | [`as_routing`] | the served user's iFCs in priority order: Route to the AS and back to us with the odi, DefaultHandling | TS 24.229 §5.4.3.2-3 steps 3-4, TS 29.228 Annex C/F |
//! | [`odi`] | the authenticated original dialog identifier | TS 24.229 §5.4.3.2 step 4, TS 23.218 §6.4 |
//! | [`carried`] | the caller's Bearer token kept while the request visits an AS (the AS never sees it) | design brief §5-§6 |
//!
//! Requests inside a dialog never get here: they follow their Route set
//! ([`crate::policy`]). A request that comes back from an AS with our odi Route is
//! resumed where it was ([`resume`]): no new case recognition and no second
//! `check_session` (the odi proves this S-CSCF already admitted it), but the next AS
//! is checked like every AS hop (`as:<name>`, [`crate::cloud_auth::check_as_routing`]),
//! with the caller's Bearer token put back ([`carried`]).

pub mod as_routing;
pub mod carried;
pub mod case;
pub mod odi;
pub mod originating;
pub mod terminating;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cloud_auth::filter::sip::SipFilter;
use ims_sip::message::build::response_with;
use ims_sip::message::identity::request_uri_identity;
use ims_sip::message::uri::Uri;
use ims_sip::proxy::engine::Decision;
use ims_sip::SipMessage;

use crate::cloud_auth::{check_as_routing, check_session};
use crate::gruu::{Gruus, Target};
use crate::ifc::RegistrationState;
use crate::location::Registration;
use crate::registrar::unix_now;
use as_routing::{is_as_failure, next_hop, odi_of, Served};
use carried::{key_of, CarriedTokens};
use case::{recognise, CaseError, SessionCase};
use odi::OdiKeys;

/// What session routing is configured with (`[session]`, and our own address).
#[derive(Debug, Clone)]
pub struct SessionSettings {
    /// Route value of the home network's I-CSCF, e.g. `<sip:127.0.0.1:5070;lr>`.
    pub icscf_route: String,
    /// Domains of the home network, lower case.
    pub home_domains: Vec<String>,
    /// Our `host[:port]` as an application server reaches us back, e.g.
    /// `127.0.0.1:5080` (the advertised SIP address).
    pub own_host: String,
    /// How long an application server has to answer at all (`[session]
    /// as_timeout_ms`).
    pub as_timeout: Duration,
    /// The keys of our original dialog identifiers.
    pub odi: OdiKeys,
    /// Bearer tokens of requests visiting application servers.
    pub carried: Arc<CarriedTokens>,
    /// The registrar's GRUUs: a Request-URI that is one reaches only its instance's
    /// contacts ([`crate::gruu`]).
    pub gruus: Arc<Gruus>,
}

/// `<uri;lr>` (or `<uri>` when it already says `lr`): a Route value for a SIP URI.
pub fn loose_route(uri: &str) -> String {
    if uri.to_ascii_lowercase().contains(";lr") {
        format!("<{uri}>")
    } else {
        format!("<{uri};lr>")
    }
}

impl SessionSettings {
    /// Settings from `[session]`; `node_domain` when no home domain is listed. Our own
    /// host defaults to `node_domain`, the AS timeout to 2 s, the odi and GRUU keys are
    /// random.
    pub fn new(icscf: &str, home_domains: &[String], node_domain: &str) -> SessionSettings {
        let domains = if home_domains.is_empty() {
            vec![node_domain.to_string()]
        } else {
            home_domains.to_vec()
        };
        SessionSettings {
            icscf_route: loose_route(icscf),
            home_domains: domains.iter().map(|d| d.to_ascii_lowercase()).collect(),
            own_host: node_domain.to_string(),
            as_timeout: Duration::from_secs(2),
            odi: OdiKeys::random(),
            carried: Arc::default(),
            gruus: Arc::new(Gruus::random(node_domain)),
        }
    }

    /// True when the Request-URI is a tel URI or a SIP(S) URI of a home domain: the
    /// callee's home network is ours, reached through our I-CSCF (no ENUM here, so a
    /// tel URI is looked up in our HSS too).
    pub fn is_home(&self, request: &SipMessage) -> bool {
        request
            .request()
            .and_then(|r| std::str::from_utf8(&r.uri).ok())
            .is_some_and(|uri| self.is_home_uri(uri))
    }

    /// Where the Request-URI points when it is a GRUU (RFC 5627 §5.4).
    pub fn gruu_target(&self, request: &SipMessage) -> Option<Target> {
        let uri = std::str::from_utf8(&request.request()?.uri).ok()?;
        self.gruus.target(uri)
    }

    /// The identity the Request-URI addresses: the owner of a GRUU of ours, else the
    /// Request-URI as an address-of-record.
    pub fn addressed_identity(&self, request: &SipMessage) -> Option<String> {
        match self.gruu_target(request) {
            Some(target) => target.aor().map(str::to_string),
            None => request_uri_identity(request),
        }
    }

    /// True when `uri` is a tel URI or a SIP(S) URI of a home domain: an identity our
    /// HSS may know.
    pub fn is_home_uri(&self, uri: &str) -> bool {
        let Ok(uri) = Uri::parse(uri) else {
            return false;
        };
        uri.scheme.eq_ignore_ascii_case("tel")
            || self
                .home_domains
                .iter()
                .any(|d| d.eq_ignore_ascii_case(uri.host))
    }
}

/// What session routing needs to know of the served users (the registrar, in the
/// node).
pub trait Subscribers: Send + Sync {
    /// The registration here covering `impu`.
    fn registration(&self, impu: &str) -> Option<Registration>;

    /// The registration covering `impu` that another S-CSCF of the pool served, taken
    /// over from the shared store (TS 23.380 §4: this S-CSCF was selected because that
    /// one failed). `None` by default (no pool), and when the store has none.
    fn restore(&self, impu: &str) -> impl Future<Output = Option<Registration>> + Send {
        let _ = impu;
        std::future::ready(None)
    }

    /// The profile of `impu`, not registered here, for the unregistered session cases:
    /// SAR UNREGISTERED_USER (TS 29.228 §6.1.2, TS 24.229 §5.4.3.3), as a
    /// registration without bindings. `None` for a user the HSS does not know, or when
    /// it cannot be asked.
    fn unregistered(&self, impu: &str) -> impl Future<Output = Option<Registration>> + Send;

    /// The cloud-authorization filter, when `[cloud_auth]` is on.
    fn cloud_auth(&self) -> Option<&SipFilter>;
}

/// An answer built from the request.
pub(crate) fn answer(request: &SipMessage, code: u16, reason: &str) -> Decision {
    Decision::Respond(response_with(request, code, reason, None, &[]))
}

/// Routes a new initial request outside a dialog: back from an application server
/// when `popped_route` carries our odi ([`resume`]); else its session case recognised,
/// the served user looked up (registered here, else its unregistered profile for an
/// identity of ours), checked by cloud authorization ([`check_session`]), and on
/// through the served user's iFC chain.
pub async fn decide(
    settings: &SessionSettings,
    subscribers: &impl Subscribers,
    request: &SipMessage,
    popped_route: Option<&Bytes>,
) -> Decision {
    if let Some(route) = popped_route.filter(|r| odi_of(r).is_some()) {
        return resume(settings, subscribers, request, route).await;
    }
    let case = match recognise(request, popped_route) {
        Ok(case) => case,
        Err(error @ CaseError::NoAssertedIdentity) => {
            tracing::info!(%error, "originating request refused");
            return answer(request, 403, "Forbidden");
        }
        Err(error @ CaseError::BadRequestUri) => {
            tracing::info!(%error, "terminating request refused");
            return answer(request, 416, "Unsupported URI Scheme");
        }
    };
    // A GRUU (RFC 5627 §5.4, TS 24.229 §5.4.3.3): the request is for its owner, who
    // must be registered (480 otherwise); a temporary GRUU we cannot open was never
    // valid (404).
    let gruu = match &case {
        SessionCase::Terminating { .. } => settings.gruu_target(request),
        SessionCase::Originating { .. } => None,
    };
    let case = match gruu.as_ref().map(Target::aor) {
        None => case,
        Some(None) => {
            tracing::info!("request for a GRUU that is not ours");
            return answer(request, 404, "Not Found");
        }
        Some(Some(aor)) => SessionCase::Terminating {
            served_user: aor.to_string(),
        },
    };
    let served_user = case.served_user();
    let (registration, state) = match subscribers.registration(served_user) {
        Some(registration) => (Some(registration), RegistrationState::Registered),
        None if gruu.is_some() => match subscribers.restore(served_user).await {
            Some(registration) => (Some(registration), RegistrationState::Registered),
            None => {
                tracing::info!(%served_user, "request for a GRUU of a user not registered");
                return answer(request, 480, "Temporarily Unavailable");
            }
        },
        None if settings.is_home_uri(served_user) => match subscribers.restore(served_user).await {
            Some(registration) => (Some(registration), RegistrationState::Registered),
            None => (
                subscribers.unregistered(served_user).await,
                RegistrationState::Unregistered,
            ),
        },
        None => (None, RegistrationState::Unregistered),
    };
    if let Some(filter) = subscribers.cloud_auth().filter(|f| f.applies_to(request)) {
        if let Err(refusal) = check_session(filter, request, &case, registration.as_ref()).await {
            return Decision::Respond(refusal);
        }
    }
    let served = match case {
        SessionCase::Originating { served_user } => {
            originating::served(request, &served_user, registration, state)
        }
        SessionCase::Terminating { served_user } => {
            terminating::served(settings, request, &served_user, registration, state)
        }
    };
    match served {
        Ok(served) => through_services(settings, subscribers, served, request).await,
        Err(not_served) => answer(request, not_served.code, not_served.reason),
    }
}

/// Goes on with a request at the place the odi of our Route value `route` names: it
/// came back from the application server (or the AS failed and DefaultHandling is
/// SESSION_CONTINUED), with the caller's Bearer token put back when we kept one
/// ([`carried`]). A missing, forged or foreign odi gets 403; a served user no longer
/// registered, 403 (originating) or 480 (terminating).
pub async fn resume(
    settings: &SessionSettings,
    subscribers: &impl Subscribers,
    request: &SipMessage,
    route: &[u8],
) -> Decision {
    let token = odi_of(route).unwrap_or_default();
    let odi = match settings.odi.check(&token, unix_now()) {
        Ok(odi) => odi,
        Err(error) => {
            tracing::info!(%error, "request with a bad original dialog identifier refused");
            return answer(request, 403, "Forbidden");
        }
    };
    let registration = match odi.cursor.registration {
        RegistrationState::Registered => match subscribers.registration(&odi.served_user) {
            Some(registration) => Some(registration),
            None => subscribers.restore(&odi.served_user).await,
        },
        RegistrationState::Unregistered => subscribers.unregistered(&odi.served_user).await,
    };
    let Some(registration) = registration else {
        let originating = odi.cursor.session_case.is_originating();
        tracing::info!(served_user = %odi.served_user, originating, "served user gone between application servers");
        return if originating {
            answer(request, 403, "Forbidden - not registered")
        } else {
            answer(request, 480, "Temporarily Unavailable")
        };
    };
    let served = Served {
        served_user: odi.served_user,
        cursor: odi.cursor,
        registration,
    };
    let restored = settings.carried.restore(request, key_of(route).as_deref());
    let decision = through_services(
        settings,
        subscribers,
        served,
        restored.as_ref().unwrap_or(request),
    )
    .await;
    match (decision, restored) {
        // Forwarded unchanged: unchanged from the request with its token put back.
        (Decision::Forward(forward), Some(request)) => Decision::ForwardWith {
            request,
            flow: None,
            forward,
        },
        (decision, _) => decision,
    }
}

/// What the policy does when every branch toward an application server failed with
/// `code` and the iFC's DefaultHandling is SESSION_CONTINUED (the forward's
/// `on_failure` carries our Route value `route`, with the odi): a 408 or 5xx skips to
/// the next iFC ([`resume`] on the request as sent to that AS); anything else is the
/// AS's answer and goes to the caller (`None`).
pub async fn on_as_failure(
    settings: &SessionSettings,
    subscribers: &impl Subscribers,
    request: &SipMessage,
    route: &str,
    code: u16,
) -> Option<Decision> {
    if !is_as_failure(code) {
        return None;
    }
    tracing::info!(
        code,
        "application server failed: DefaultHandling SESSION_CONTINUED, next iFC"
    );
    Some(resume(settings, subscribers, request, route.as_bytes()).await)
}

/// The next application server of `served`'s chain for `request`, checked by cloud
/// authorization (`as:<name>`); or, when none is left, on to the destination. A
/// terminating request whose Request-URI an application server changed was diverted:
/// the rest of the terminating iFCs are skipped and the diverting user's
/// originating-CDIV iFCs run instead (TS 24.229 §5.4.3.3 step 4, TS 23.218 §6.5).
async fn through_services(
    settings: &SessionSettings,
    subscribers: &impl Subscribers,
    served: Served,
    request: &SipMessage,
) -> Decision {
    let served = terminating::diverted(settings, served, request);
    match next_hop(settings, &served, request) {
        Ok(Some(hop)) => {
            if let Some(filter) = subscribers.cloud_auth().filter(|f| f.applies_to(request)) {
                let profile = &served.registration.profile;
                let user = &served.served_user;
                if let Err(refusal) =
                    check_as_routing(filter, request, user, profile, &hop.server_name).await
                {
                    return Decision::Respond(refusal);
                }
            }
            Decision::ForwardWith {
                request: hop.request,
                flow: None,
                forward: hop.forward,
            }
        }
        Ok(None) if served.is_originating() => {
            originating::onward(settings, request, &served.served_user)
        }
        Ok(None) => terminating::onward(settings, request, &served),
        Err(error) => {
            tracing::warn!(%error, served_user = %served.served_user, "cannot route to the application server");
            answer(request, 500, "Server Internal Error")
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::location::Binding;
    use crate::profile::UserProfile;
    use cloud_auth::filter::sip::has_bearer;

    /// Settings with a fixed odi key and our host `scscf.test:5080`.
    pub(crate) fn settings() -> SessionSettings {
        let mut s = SessionSettings::new("sip:127.0.0.1:5070", &[], "IMS.example.net");
        s.own_host = "scscf.test:5080".into();
        s.odi = OdiKeys::new([3; 32]);
        s
    }

    pub(crate) fn request(method: &str, ruri: &str, extra: &str) -> SipMessage {
        SipMessage::parse(format!(
            "{method} {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n\
             Max-Forwards: 69\r\nFrom: <sip:alice@ims.example.net>;tag=1\r\n\
             To: <sip:bob@ims.example.net>\r\nCall-ID: c\r\nCSeq: 1 {method}\r\n{extra}\
             Content-Length: 0\r\n\r\n"
        ))
        .unwrap()
    }

    /// The status of an answer.
    pub(crate) fn code(d: Decision) -> u16 {
        match d {
            Decision::Respond(r) => r.status().unwrap(),
            other => panic!("not answered: {other:?}"),
        }
    }

    /// An iFC (XML) sending `method` requests of SessionCase `case` (any when `None`)
    /// to `server` with DefaultHandling `handling`.
    pub(crate) fn ifc(
        prio: i64,
        method: &str,
        case: Option<u8>,
        server: &str,
        handling: u8,
    ) -> String {
        let case = case
            .map(|c| format!("<SPT><Group>1</Group><SessionCase>{c}</SessionCase></SPT>"))
            .unwrap_or_default();
        format!(
            "<InitialFilterCriteria><Priority>{prio}</Priority><TriggerPoint>\
             <ConditionTypeCNF>1</ConditionTypeCNF><SPT><Group>0</Group>\
             <Method>{method}</Method></SPT>{case}</TriggerPoint><ApplicationServer>\
             <ServerName>{server}</ServerName><DefaultHandling>{handling}</DefaultHandling>\
             </ApplicationServer></InitialFilterCriteria>"
        )
    }

    /// `impu` registered with one binding per `(contact, path)`; `barred` in its
    /// implicit set, barred.
    pub(crate) fn registration(
        impu: &str,
        barred: &str,
        contacts: &[(&str, &str)],
    ) -> Registration {
        registration_with(impu, barred, contacts, "")
    }

    /// [`registration`] whose service profile holds `ifcs` (XML).
    pub(crate) fn registration_with(
        impu: &str,
        barred: &str,
        contacts: &[(&str, &str)],
        ifcs: &str,
    ) -> Registration {
        let xml = format!(
            "<IMSSubscription><ServiceProfile>\
             <PublicIdentity><Identity>{impu}</Identity></PublicIdentity>\
             <PublicIdentity><BarringIndication>1</BarringIndication>\
             <Identity>{barred}</Identity></PublicIdentity>{ifcs}\
             </ServiceProfile></IMSSubscription>"
        );
        Registration {
            impu: impu.into(),
            impi: "user@ims.example.net".into(),
            profile: UserProfile::parse(Bytes::from(xml)).unwrap(),
            bindings: contacts
                .iter()
                .enumerate()
                .map(|(i, (contact, path))| Binding {
                    key: format!("uri:{i}"),
                    contact: contact.to_string(),
                    path: vec![path.to_string()],
                    call_id: "reg".into(),
                    cseq: 1,
                    expires_at: u64::MAX,
                    gruu_first_cseq: None,
                })
                .collect(),
        }
    }

    /// Registered users, the profiles the HSS gives for unregistered ones (counting
    /// the SARs), and a cloud-authorization filter.
    #[derive(Default)]
    struct TestSubscribers {
        registered: Vec<Registration>,
        unregistered: Vec<Registration>,
        sars: AtomicUsize,
        filter: Option<SipFilter>,
    }

    impl Subscribers for TestSubscribers {
        fn registration(&self, impu: &str) -> Option<Registration> {
            self.registered
                .iter()
                .find(|r| r.profile.contains(impu))
                .cloned()
        }

        async fn unregistered(&self, impu: &str) -> Option<Registration> {
            self.sars.fetch_add(1, Ordering::Relaxed);
            self.unregistered
                .iter()
                .find(|r| r.profile.contains(impu))
                .map(|r| Registration {
                    bindings: Vec::new(),
                    ..r.clone()
                })
        }

        fn cloud_auth(&self) -> Option<&SipFilter> {
            self.filter.as_ref()
        }
    }

    const AS1: &str = "sip:as1.ims.example.net";
    const AS2: &str = "sip:127.0.0.1:5090";
    const PAI: &str = "P-Asserted-Identity: <sip:alice@ims.example.net>\r\n";

    fn orig_route() -> Bytes {
        Bytes::from_static(b"<sip:orig@127.0.0.1:5080;lr>")
    }

    /// Alice (registered, two originating iFCs for INVITE: AS1 SESSION_TERMINATED, AS2
    /// SESSION_CONTINUED) and Bob (registered, no iFC).
    fn alice_and_bob() -> TestSubscribers {
        let ifcs = format!(
            "{}{}{}",
            ifc(10, "INVITE", Some(0), AS1, 1),
            ifc(20, "INVITE", Some(0), AS2, 0),
            ifc(30, "INVITE", Some(1), "sip:term.ims.example.net", 0)
        );
        TestSubscribers {
            registered: vec![
                registration_with(
                    "sip:alice@ims.example.net",
                    "sip:alice-barred@ims.example.net",
                    &[("<sip:alice@127.0.0.1:7001>", "<sip:A@127.0.0.1:5060;lr>")],
                    &ifcs,
                ),
                registration(
                    "sip:bob@ims.example.net",
                    "sip:bob-barred@ims.example.net",
                    &[("<sip:bob@127.0.0.1:7002>", "<sip:B@127.0.0.1:5060;lr>")],
                ),
            ],
            ..TestSubscribers::default()
        }
    }

    fn forward(d: Decision) -> ims_sip::proxy::engine::Forward {
        sent(d).1
    }

    /// The request as forwarded (edited or not) and the forward.
    fn sent(d: Decision) -> (Option<SipMessage>, ims_sip::proxy::engine::Forward) {
        match d {
            Decision::Forward(f) => (None, f),
            Decision::ForwardWith {
                request, forward, ..
            } => (Some(request), forward),
            other => panic!("not forwarded: {other:?}"),
        }
    }

    /// The P-Served-User of a request sent to an AS.
    fn served_user_header(d: Decision) -> String {
        let (request, _) = sent(d);
        let request = request.expect("an AS hop edits the request");
        let value = request.headers.get_str(&ims_sip::HeaderName::PServedUser);
        value.expect("P-Served-User").to_string()
    }

    /// The odi of a forward to an AS.
    fn odi_route(f: &ims_sip::proxy::engine::Forward) -> String {
        odi_of(f.preload_routes[1].as_bytes()).expect("our odi Route under the AS's")
    }

    #[test]
    fn settings_default_to_the_node_domain_and_add_lr() {
        let s = SessionSettings::new("sip:127.0.0.1:5070", &[], "IMS.example.net");
        assert_eq!(s.icscf_route, "<sip:127.0.0.1:5070;lr>");
        assert_eq!(s.home_domains, ["ims.example.net"]);
        assert_eq!(s.own_host, "IMS.example.net");
        assert_eq!(s.as_timeout, Duration::from_secs(2));
        let s = SessionSettings::new("sip:i;lr", &["a.net".into()], "b.net");
        assert_eq!(s.icscf_route, "<sip:i;lr>");
        assert_eq!(s.home_domains, ["a.net"]);
        assert!(s.is_home(&request("INVITE", "sip:x@A.net", "")));
        assert!(s.is_home(&request("INVITE", "tel:+1555", "")));
        assert!(!s.is_home(&request("INVITE", "sip:x@b.net", "")));
    }

    #[tokio::test]
    async fn the_case_decides_which_side_routes() {
        let subs = alice_and_bob();
        let s = settings();
        // Originating for Bob (no iFC): to the I-CSCF.
        let bob_pai = "P-Asserted-Identity: <sip:bob@ims.example.net>\r\n";
        let req = request("INVITE", "sip:alice@ims.example.net", bob_pai);
        let f = forward(decide(&s, &subs, &req, Some(&orig_route())).await);
        assert_eq!(f.preload_routes, ["<sip:127.0.0.1:5070;lr>"]);
        // Terminating for Bob: to his contact.
        let req = request("INVITE", "sip:bob@ims.example.net", PAI);
        let Decision::ForwardWith { forward, .. } = decide(&s, &subs, &req, None).await else {
            panic!("terminating is forwarded");
        };
        assert_eq!(forward.targets, ["sip:bob@127.0.0.1:7002"]);
        // No asserted identity on the originating side: 403.
        let anon = request("INVITE", "sip:bob@ims.example.net", "");
        assert_eq!(
            code(decide(&s, &subs, &anon, Some(&orig_route())).await),
            403
        );
        let odd = request("INVITE", "mailto:bob@ims.example.net", "");
        assert_eq!(code(decide(&s, &subs, &odd, None).await), 416);
    }

    #[tokio::test]
    async fn a_gruu_reaches_only_its_instance() {
        let mut s = settings();
        s.gruus = Arc::new(Gruus::new([4; 32], "scscf.test:5080"));
        let bob = "sip:bob@ims.example.net";
        let mut subs = alice_and_bob();
        subs.registered[1] = registration(
            bob,
            "sip:bob-barred@ims.example.net",
            &[
                (
                    "<sip:bob@127.0.0.1:7002>;+sip.instance=\"<urn:uuid:b1>\"",
                    "<sip:B1@127.0.0.1:5060;lr>",
                ),
                (
                    "<sip:bob@127.0.0.1:7003>;+sip.instance=\"<urn:uuid:b2>\"",
                    "<sip:B2@127.0.0.1:5060;lr>",
                ),
            ],
        );
        for b in &mut subs.registered[1].bindings {
            b.gruu_first_cseq = Some(1);
        }
        let targets = |d: Decision| forward(d).targets;
        // Without a GRUU: forked to both; to the public GRUU of one: that one alone.
        let req = request("MESSAGE", bob, PAI);
        assert_eq!(targets(decide(&s, &subs, &req, None).await).len(), 2);
        let req = request("MESSAGE", &format!("{bob};gr=urn:uuid:b1"), PAI);
        assert_eq!(
            targets(decide(&s, &subs, &req, None).await),
            ["sip:bob@127.0.0.1:7002"]
        );
        // To the temporary GRUU of the other: that one alone, served as bob (his
        // terminating iFCs; not a diversion).
        let temp = s.gruus.temporary(bob, "urn:uuid:b2", "reg", 1).unwrap();
        let req = request("MESSAGE", &temp, PAI);
        assert_eq!(
            targets(decide(&s, &subs, &req, None).await),
            ["sip:bob@127.0.0.1:7003"]
        );
        // An instance bob has not registered: 480; a temporary GRUU of another key, or
        // of a set that ended: 404 and 480; a GRUU of a user not registered: 480, no SAR.
        let req = request("MESSAGE", &format!("{bob};gr=urn:uuid:b9"), PAI);
        assert_eq!(code(decide(&s, &subs, &req, None).await), 480);
        let foreign = Gruus::new([5; 32], "scscf.test:5080");
        let req = request(
            "MESSAGE",
            &foreign.temporary(bob, "urn:uuid:b2", "reg", 1).unwrap(),
            PAI,
        );
        assert_eq!(code(decide(&s, &subs, &req, None).await), 404);
        let stale = s
            .gruus
            .temporary(bob, "urn:uuid:b2", "reg-before", 1)
            .unwrap();
        let req = request("MESSAGE", &stale, PAI);
        assert_eq!(code(decide(&s, &subs, &req, None).await), 480);
        let carol = "sip:carol@ims.example.net;gr=urn:uuid:c1";
        let req = request("MESSAGE", carol, PAI);
        assert_eq!(code(decide(&s, &subs, &req, None).await), 480);
        assert_eq!(subs.sars.load(Ordering::Relaxed), 0);
        // Alice sends to bob's temporary GRUU: by its Request-URI (to the S-CSCF that
        // issued it), not to the I-CSCF, whose HSS knows no such identity, even when
        // the S-CSCF's host is in a home domain; her Bearer token goes on (the request
        // stays in the core).
        let with_token = format!("{PAI}Authorization: Bearer abc\r\n");
        let req = request("MESSAGE", &temp, &with_token);
        let (edited, f) = sent(decide(&s, &subs, &req, Some(&orig_route())).await);
        assert!(f.preload_routes.is_empty(), "{f:?}");
        assert!(has_bearer(edited.as_ref().unwrap_or(&req)));
        s.gruus = Arc::new(Gruus::new([4; 32], "ims.example.net:5080"));
        let home_host = s.gruus.temporary(bob, "urn:uuid:b2", "reg", 1).unwrap();
        let req = request("MESSAGE", &home_host, PAI);
        let f = forward(decide(&s, &subs, &req, Some(&orig_route())).await);
        assert!(f.preload_routes.is_empty(), "{f:?}");
        let req = request("MESSAGE", &format!("{bob};gr=urn:uuid:b1"), PAI);
        let f = forward(decide(&s, &subs, &req, Some(&orig_route())).await);
        assert_eq!(f.preload_routes, ["<sip:127.0.0.1:5070;lr>"]);
    }

    #[tokio::test]
    async fn an_originating_call_visits_each_application_server_then_the_icscf() {
        let subs = alice_and_bob();
        let s = settings();
        let req = request("INVITE", "sip:bob@ims.example.net", PAI);
        let first = forward(decide(&s, &subs, &req, Some(&orig_route())).await);
        assert_eq!(first.preload_routes[0], format!("<{AS1};lr>"));
        assert!(first.preload_routes[1].starts_with("<sip:scscf.test:5080;lr;orig;odi="));
        assert_eq!(first.on_failure, None, "AS1 is SESSION_TERMINATED");

        // AS1 sends it back with our Route: the second AS (the MESSAGE-only and
        // terminating iFCs do not match).
        let back = Bytes::from(first.preload_routes[1].clone());
        let second = forward(decide(&s, &subs, &req, Some(&back)).await);
        assert_eq!(second.preload_routes[0], format!("<{AS2};lr>"));
        assert_eq!(
            second.on_failure.as_deref(),
            Some(second.preload_routes[1].as_str())
        );
        assert!(odi_route(&second).len() > 8);

        // Back from AS2: no iFC left, on to the callee's home network.
        let back = Bytes::from(second.preload_routes[1].clone());
        let last = forward(decide(&s, &subs, &req, Some(&back)).await);
        assert_eq!(last.preload_routes, ["<sip:127.0.0.1:5070;lr>"]);
        assert!(last.record_route && last.on_failure.is_none());
    }

    #[tokio::test]
    async fn a_b2bua_may_return_in_a_new_dialog_but_a_forged_odi_is_refused() {
        let subs = alice_and_bob();
        let s = settings();
        let req = request("INVITE", "sip:bob@ims.example.net", PAI);
        let first = forward(decide(&s, &subs, &req, Some(&orig_route())).await);
        // A routing B2BUA sends the request on in its own dialog: new Call-ID and
        // From tag, our odi Route. It resumes at the second AS.
        let mut new_dialog = request("INVITE", "sip:bob@ims.example.net", PAI);
        new_dialog
            .headers
            .set(ims_sip::HeaderName::CallId, "b2bua-leg-2");
        new_dialog.headers.set(
            ims_sip::HeaderName::From,
            "<sip:alice@ims.example.net>;tag=b2",
        );
        let back = Bytes::from(first.preload_routes[1].clone());
        let second = forward(decide(&s, &subs, &new_dialog, Some(&back)).await);
        assert_eq!(second.preload_routes[0], format!("<{AS2};lr>"));
        let forged = Bytes::from_static(b"<sip:scscf.test:5080;lr;orig;odi=MDAAc2lwOmFAYg>");
        assert_eq!(code(decide(&s, &subs, &req, Some(&forged)).await), 403);
        // Another S-CSCF's key.
        let mut other = settings();
        other.odi = OdiKeys::new([4; 32]);
        assert_eq!(code(decide(&other, &subs, &req, Some(&back)).await), 403);
    }

    #[tokio::test]
    async fn default_handling_continued_skips_a_failed_application_server() {
        let subs = alice_and_bob();
        let s = settings();
        let req = request("INVITE", "sip:bob@ims.example.net", PAI);
        let first = forward(decide(&s, &subs, &req, Some(&orig_route())).await);
        let back = Bytes::from(first.preload_routes[1].clone());
        let second = forward(decide(&s, &subs, &req, Some(&back)).await);
        let tag = second.on_failure.clone().unwrap();
        // AS2 timed out (408) or failed (5xx): on to the I-CSCF.
        for failure in [408, 500, 503] {
            let next = on_as_failure(&s, &subs, &req, &tag, failure).await;
            let next = forward(next.expect("SESSION_CONTINUED goes on"));
            assert_eq!(next.preload_routes, ["<sip:127.0.0.1:5070;lr>"]);
        }
        // Any other answer is the AS's own: it goes to the caller.
        assert!(on_as_failure(&s, &subs, &req, &tag, 486).await.is_none());
        assert!(on_as_failure(&s, &subs, &req, &tag, 603).await.is_none());
    }

    #[tokio::test]
    async fn terminating_unregistered_services_reach_their_application_server() {
        let voicemail = ifc(1, "INVITE", Some(2), "sip:vm.ims.example.net", 0);
        let mut subs = alice_and_bob();
        subs.unregistered = vec![
            registration_with(
                "sip:carol@ims.example.net",
                "sip:carol-barred@ims.example.net",
                &[],
                &voicemail,
            ),
            registration(
                "sip:dave@ims.example.net",
                "sip:dave-barred@ims.example.net",
                &[],
            ),
        ];
        let s = settings();
        let req = request("INVITE", "sip:carol@ims.example.net", PAI);
        let f = forward(decide(&s, &subs, &req, None).await);
        assert_eq!(f.preload_routes[0], "<sip:vm.ims.example.net;lr>");
        let token = odi_route(&f);
        assert!(f.preload_routes[1].starts_with("<sip:scscf.test:5080;lr;odi="));
        assert_eq!(
            s.odi.check(&token, unix_now()).unwrap().cursor.encode(),
            "21.1.0"
        );
        // A MESSAGE matches no unregistered service: 480.
        let msg = request("MESSAGE", "sip:carol@ims.example.net", PAI);
        assert_eq!(code(decide(&s, &subs, &msg, None).await), 480);
        // Dave has no services at all, Erin is unknown to the HSS: 480.
        for callee in ["sip:dave@ims.example.net", "sip:erin@ims.example.net"] {
            let req = request("INVITE", callee, PAI);
            assert_eq!(code(decide(&s, &subs, &req, None).await), 480, "{callee}");
        }
        // A barred identity: 404.
        let barred = request("INVITE", "sip:carol-barred@ims.example.net", PAI);
        assert_eq!(code(decide(&s, &subs, &barred, None).await), 404);
        let sars = subs.sars.load(Ordering::Relaxed);
        // Not ours: 404 without asking the HSS.
        let foreign = request("INVITE", "sip:carol@other.example.org", PAI);
        assert_eq!(code(decide(&s, &subs, &foreign, None).await), 404);
        assert_eq!(subs.sars.load(Ordering::Relaxed), sars);
    }

    #[tokio::test]
    async fn a_diverting_application_server_starts_the_originating_cdiv_chain() {
        const CDIV_AS: &str = "sip:cdiv.ims.example.net";
        const LATER_TERM_AS: &str = "sip:term2.ims.example.net";
        const ORIG_CDIV_AS: &str = "sip:occ.ims.example.net";
        let ifcs = format!(
            "{}{}{}",
            ifc(1, "INVITE", Some(1), CDIV_AS, 0),
            ifc(2, "INVITE", Some(1), LATER_TERM_AS, 0),
            ifc(3, "INVITE", Some(4), ORIG_CDIV_AS, 0),
        );
        let mut subs = alice_and_bob();
        subs.registered[1] = registration_with(
            "sip:bob@ims.example.net",
            "sip:bob-barred@ims.example.net",
            &[("<sip:bob@127.0.0.1:7002>", "<sip:B@127.0.0.1:5060;lr>")],
            &ifcs,
        );
        let s = settings();
        let req = request("INVITE", "sip:bob@ims.example.net", PAI);
        let first = decide(&s, &subs, &req, None).await;
        assert_eq!(
            served_user_header(first.clone()),
            "<sip:bob@ims.example.net>;sescase=term;regstate=reg"
        );
        let back = Bytes::from(forward(first).preload_routes[1].clone());
        // Returned unchanged: the next terminating AS.
        let f = forward(decide(&s, &subs, &req, Some(&back)).await);
        assert_eq!(f.preload_routes[0], format!("<{LATER_TERM_AS};lr>"));

        // Returned for Carol instead (call forwarding): the rest of Bob's terminating
        // iFCs are skipped; his originating-CDIV iFC runs, for Bob.
        let diverted = request("INVITE", "sip:carol@ims.example.net", PAI);
        let to_occ = decide(&s, &subs, &diverted, Some(&back)).await;
        assert_eq!(
            served_user_header(to_occ.clone()),
            "<sip:bob@ims.example.net>;sescase=orig-cdiv;regstate=reg"
        );
        let f = forward(to_occ);
        assert_eq!(f.preload_routes[0], format!("<{ORIG_CDIV_AS};lr>"));
        assert!(f.preload_routes[1].contains(";orig;odi="), "{f:?}");
        let token = odi_route(&f);
        assert_eq!(
            s.odi.check(&token, unix_now()).unwrap().cursor.encode(),
            "40.3.0"
        );
        // Back from that AS: on by Request-URI through the I-CSCF.
        let back = Bytes::from(f.preload_routes[1].clone());
        let f = forward(decide(&s, &subs, &diverted, Some(&back)).await);
        assert_eq!(f.preload_routes, ["<sip:127.0.0.1:5070;lr>"]);
        assert!(f.record_route);
    }

    #[tokio::test]
    async fn an_application_server_may_originate_for_an_unregistered_user() {
        const ORIG_UNREG_AS: &str = "sip:barring.ims.example.net";
        let mut subs = alice_and_bob();
        subs.unregistered = vec![
            registration_with(
                "sip:carol@ims.example.net",
                "sip:carol-barred@ims.example.net",
                &[],
                &format!(
                    "{}{}",
                    ifc(1, "INVITE", Some(0), "sip:registered-only.example.net", 0),
                    ifc(2, "INVITE", Some(3), ORIG_UNREG_AS, 0)
                ),
            ),
            registration(
                "sip:dave@ims.example.net",
                "sip:dave-barred@ims.example.net",
                &[],
            ),
        ];
        let s = settings();
        let on_behalf = |user: &str| {
            request(
                "INVITE",
                "sip:bob@ims.example.net",
                &format!(
                    "P-Asserted-Identity: <sip:as@ims.example.net>\r\n\
                     P-Served-User: <{user}>;sescase=orig;regstate=unreg\r\n"
                ),
            )
        };
        // Carol is not registered: her ORIGINATING_UNREGISTERED iFC, not the
        // ORIGINATING one.
        let carol = on_behalf("sip:carol@ims.example.net");
        let first = decide(&s, &subs, &carol, Some(&orig_route())).await;
        assert_eq!(
            served_user_header(first.clone()),
            "<sip:carol@ims.example.net>;sescase=orig;regstate=unreg"
        );
        let f = forward(first);
        assert_eq!(f.preload_routes[0], format!("<{ORIG_UNREG_AS};lr>"));
        let back = Bytes::from(f.preload_routes[1].clone());
        let sars = subs.sars.load(Ordering::Relaxed);
        let last = forward(decide(&s, &subs, &carol, Some(&back)).await);
        assert_eq!(last.preload_routes, ["<sip:127.0.0.1:5070;lr>"]);
        assert_eq!(
            subs.sars.load(Ordering::Relaxed),
            sars + 1,
            "resumed with the unregistered profile"
        );
        // Dave has no services: straight on toward the callee.
        let dave = forward(
            decide(
                &s,
                &subs,
                &on_behalf("sip:dave@ims.example.net"),
                Some(&orig_route()),
            )
            .await,
        );
        assert_eq!(dave.preload_routes, ["<sip:127.0.0.1:5070;lr>"]);
        // Unknown to the HSS, barred, or of another network: 403, the last without a SAR.
        for user in [
            "sip:erin@ims.example.net",
            "sip:carol-barred@ims.example.net",
        ] {
            let req = on_behalf(user);
            assert_eq!(
                code(decide(&s, &subs, &req, Some(&orig_route())).await),
                403,
                "{user}"
            );
        }
        let sars = subs.sars.load(Ordering::Relaxed);
        let foreign = on_behalf("sip:carol@other.example.org");
        assert_eq!(
            code(decide(&s, &subs, &foreign, Some(&orig_route())).await),
            403
        );
        assert_eq!(subs.sars.load(Ordering::Relaxed), sars);
    }

    /// A filter whose Keystone and policy service do not answer (nothing listens on
    /// port 9 of loopback): a request without a token gets its 401 without them. It
    /// checks REGISTER and INVITE only.
    fn unreachable_filter() -> SipFilter {
        filter_with_methods(Some("[\"REGISTER\", \"INVITE\"]"))
    }

    /// [`unreachable_filter`] with `methods` (TOML), the default when `None`.
    fn filter_with_methods(methods: Option<&str>) -> SipFilter {
        let methods = methods.map_or(String::new(), |m| format!("methods = {m}\n"));
        let toml = format!(
            "[node]\nname = \"s\"\ndomain = \"ims.example.net\"\n\
            [http]\nlisten = \"127.0.0.1:0\"\n[sip]\nudp = [\"127.0.0.1:0\"]\n\
            [session]\nicscf = \"sip:127.0.0.1:5070;lr\"\n\
            [cloud_auth]\nmode = \"on\"\npolicy_url = \"http://127.0.0.1:9\"\n{methods}\
            [cloud_auth.keystone]\nurl = \"http://127.0.0.1:9/v3\"\nservice_user = \"s\"\n\
            service_password = \"p\"\n\
            [cx]\nhss = [\"127.0.0.1:3868\"]\norigin_host = \"scscf.ims.example.net\"\n\
            origin_realm = \"ims.example.net\"\ndestination_host = \"hss.ims.example.net\"\n\
            destination_realm = \"ims.example.net\"\n\
            [registrar]\nserver_name = \"sip:scscf.ims.example.net:5080\"\n"
        );
        let config: ims_config::ScscfConfig =
            ims_config::parse_str(&toml, std::path::Path::new("scscf.toml")).unwrap();
        cloud_auth::filter::setup::from_section(&config.cloud_auth, "ims.example.net", "scscf")
            .unwrap()
            .unwrap()
    }

    #[tokio::test]
    async fn each_application_server_hop_is_checked_by_cloud_authorization() {
        let mut subs = alice_and_bob();
        let s = settings();
        let req = request("INVITE", "sip:bob@ims.example.net", PAI);
        let first = forward(decide(&s, &subs, &req, Some(&orig_route())).await);
        let back = Bytes::from(first.preload_routes[1].clone());
        let tag = {
            let second = forward(decide(&s, &subs, &req, Some(&back)).await);
            second.on_failure.unwrap()
        };
        subs.filter = Some(unreachable_filter());
        // Returned from AS1 (no check_session again): the hop to AS2 needs a token.
        let refused = decide(&s, &subs, &req, Some(&back)).await;
        let Decision::Respond(r) = refused else {
            panic!("the AS hop is refused");
        };
        assert_eq!(r.status(), Some(401));
        assert!(r
            .headers
            .get_str(&ims_sip::HeaderName::WwwAuthenticate)
            .is_some_and(|c| c.starts_with("Bearer")));
        // After AS2 failed there is no AS left: the hop to the I-CSCF is no AS routing
        // (the initial request passed check_session on its first pass).
        let skipped = on_as_failure(&s, &subs, &req, &tag, 408).await;
        assert!(matches!(skipped, Some(Decision::Forward(_))), "{skipped:?}");
        // With a token but no Keystone to validate it: fail closed.
        let with_token = request(
            "INVITE",
            "sip:bob@ims.example.net",
            &format!("{PAI}Authorization: Bearer abc\r\n"),
        );
        assert_eq!(code(decide(&s, &subs, &with_token, Some(&back)).await), 403);
        // A MESSAGE is not a method this filter checks (`methods` names INVITE).
        let msg = request("MESSAGE", "sip:bob@ims.example.net", PAI);
        assert!(matches!(
            decide(&s, &subs, &msg, Some(&orig_route())).await,
            Decision::Forward(_)
        ));
        // With the default methods ("*"), it is: no token, 401.
        subs.filter = Some(filter_with_methods(None));
        let refused = decide(&s, &subs, &msg, Some(&orig_route())).await;
        assert_eq!(code(refused), 401);
        for method in [
            "SUBSCRIBE",
            "REFER",
            "PUBLISH",
            "OPTIONS",
            "NOTIFY",
            "INFO",
            "FOO",
        ] {
            let req = request(method, "sip:bob@ims.example.net", PAI);
            let answer = decide(&s, &subs, &req, Some(&orig_route())).await;
            assert_eq!(code(answer), 401, "{method} outside a dialog");
        }
    }

    /// The S-CSCF as seen by the AS and after: no Bearer toward the AS, the same token
    /// back on the request that returns (then to the I-CSCF, a node of ours), none toward
    /// another network or a callee's contacts.
    #[tokio::test]
    async fn the_bearer_token_never_reaches_an_application_server_or_another_network() {
        let subs = alice_and_bob();
        let s = settings();
        let auth = "Authorization: Bearer gAAAA-caller\r\n";
        let req = request("INVITE", "sip:bob@ims.example.net", &format!("{PAI}{auth}"));
        let (to_as1, first) = sent(decide(&s, &subs, &req, Some(&orig_route())).await);
        let mut to_as1 = to_as1.expect("edited for the AS");
        assert!(!has_bearer(&to_as1), "AS1 got the token: {to_as1:?}");
        // The ASs send it back without P-Served-User (nothing else to edit).
        to_as1.headers.remove_all(&ims_sip::HeaderName::PServedUser);
        assert!(first.preload_routes[1].contains(";bkey="), "{first:?}");
        // AS1 sends it back (without the token): AS2 does not get it either...
        let back = Bytes::from(first.preload_routes[1].clone());
        let (to_as2, second) = sent(decide(&s, &subs, &to_as1, Some(&back)).await);
        assert!(!has_bearer(&to_as2.expect("edited for the AS")));
        // ...and after AS2 the request goes to our I-CSCF with the caller's token.
        let back = Bytes::from(second.preload_routes[1].clone());
        let (onward, last) = sent(decide(&s, &subs, &to_as1, Some(&back)).await);
        assert_eq!(last.preload_routes, ["<sip:127.0.0.1:5070;lr>"]);
        let onward = onward.expect("the token put back");
        assert_eq!(
            cloud_auth::filter::sip::bearer_of(&onward),
            cloud_auth::filter::bearer::Bearer::Token("gAAAA-caller")
        );
        // The same after AS2 failed (SESSION_CONTINUED): the request as sent to AS2.
        let tag = second.on_failure.clone().expect("AS2 is SESSION_CONTINUED");
        let (onward, _) = sent(
            on_as_failure(&s, &subs, &to_as1, &tag, 408)
                .await
                .expect("goes on"),
        );
        assert!(has_bearer(&onward.expect("the token put back")));
        // A key that is not ours (or expired) puts nothing back.
        let forged = first.preload_routes[1].replace(";bkey=", ";bkey=00");
        let (to_as2, _) = sent(decide(&s, &subs, &to_as1, Some(&Bytes::from(forged))).await);
        assert!(!has_bearer(&to_as2.expect("edited")));

        // Bob (no iFC) calls another network: no token leaves.
        let bob = "P-Asserted-Identity: <sip:bob@ims.example.net>\r\n";
        let out = request(
            "MESSAGE",
            "sip:carol@other.example",
            &format!("{bob}{auth}"),
        );
        let (sent_out, f) = sent(decide(&s, &subs, &out, Some(&orig_route())).await);
        assert!(f.preload_routes.is_empty());
        assert!(!has_bearer(&sent_out.expect("stripped")));
        // Toward Bob's contact (terminating): none either.
        let to_bob = request(
            "MESSAGE",
            "sip:bob@ims.example.net",
            &format!("{PAI}{auth}"),
        );
        let (sent_in, _) = sent(decide(&s, &subs, &to_bob, None).await);
        assert!(!has_bearer(&sent_in.expect("edited")));
    }
}
