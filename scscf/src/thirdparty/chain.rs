//! The third-party REGISTERs of one registration event (TS 24.229 §5.4.1.7): one to
//! each application server whose REGISTER iFC matched, in iFC priority order, one after
//! the other: the next leaves once the previous one has its final response, or has
//! failed or timed out (Timer F).
//!
//! TS 24.229 §5.4.1.7 asks for a third-party REGISTER "to each AS" that matches, and
//! TS 29.228 Annex C and TS 23.218 §6.2 have the S-CSCF check the triggers in their
//! order of priority; neither says whether the REGISTERs may overlap. We send them one
//! at a time so that the order the operator gave (priority) is the order in which the
//! ASs learn of the registration, and so that a failure with DefaultHandling
//! SESSION_TERMINATED ([`super::handling`]) is known before any later AS hears of a
//! registration that is about to end: the chain stops there, and the network-initiated
//! de-registration that follows (TS 24.229 §5.4.1.5) notifies the ASs whose iFCs match
//! it, each with a de-REGISTER (Expires 0), in priority order as well.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use ims_sip::proxy::engine::OriginateError;
use ims_sip::SipMessage;

use super::request::ThirdPartyRegister;
use super::{body, handling, AsFailure};
use crate::ifc::{ApplicationServer, RegistrationType};

/// The final response to a request, or why there is none.
pub type SendFuture = Pin<Box<dyn Future<Output = Result<SipMessage, OriginateError>> + Send>>;

/// Sends a request (complete but for our Via) and resolves to its final response: the
/// S-CSCF's [`ims_sip::proxy::engine::Originator`] (a stand-in in tests).
pub type SendRequest = Arc<dyn Fn(SipMessage) -> SendFuture + Send + Sync>;

/// The third-party REGISTERs of one registration event, not sent yet.
#[derive(Debug, Clone)]
pub struct Chain {
    /// The registered public identity (To; the registration's key).
    pub impu: String,
    /// The kind of registration (a de-registration never de-registers on failure).
    pub kind: RegistrationType,
    /// Expires of every REGISTER (0 for a de-registration).
    pub expires: u64,
    /// The UE's REGISTER, when the UE made the change.
    pub register: Option<SipMessage>,
    /// Our 200 OK to it.
    pub ok: Option<SipMessage>,
    /// The ASs to send to, in iFC priority order (at most the profile's iFCs:
    /// [`crate::profile::MAX_IFCS`]).
    pub servers: Vec<ApplicationServer>,
}

impl Chain {
    /// The REGISTER to `server`, sent as `own_uri`: built when its turn comes, so a
    /// chain waiting holds its inputs once, not one request per AS.
    fn request(&self, server: &ApplicationServer, own_uri: &str) -> SipMessage {
        ThirdPartyRegister {
            server: &server.server_name,
            own_uri,
            impu: &self.impu,
            expires: self.expires,
            register: self.register.as_ref(),
            body: body::build(server, self.register.as_ref(), self.ok.as_ref()),
        }
        .build()
    }

    /// Sends the REGISTERs through `send`, in order, each after the previous one's
    /// outcome. Stops at the first AS whose failure de-registers the user
    /// ([`handling::deregisters`]) and returns it; the later ASs get nothing.
    pub async fn run(&self, own_uri: &str, send: &SendRequest) -> Option<AsFailure> {
        let kind = self.kind;
        for (i, server) in self.servers.iter().enumerate() {
            let outcome = send(self.request(server, own_uri)).await;
            let name = &server.server_name;
            match &outcome {
                Ok(r) => {
                    tracing::debug!(server = %name, code = r.status(), ?kind, "third-party REGISTER answered")
                }
                Err(e) => {
                    tracing::info!(server = %name, error = %e, ?kind, "third-party REGISTER failed")
                }
            }
            if handling::deregisters(kind, server.default_handling, &outcome) {
                let skipped = self.servers.len() - i - 1;
                tracing::info!(impu = %self.impu, server = %name, ?kind, skipped, "third-party registration stopped: the AS's failure de-registers the user");
                return Some(AsFailure {
                    impu: self.impu.clone(),
                    server: name.clone(),
                });
            }
        }
        None
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Mutex;

    use bytes::Bytes;
    use ims_sip::HeaderName;

    use super::*;
    use crate::ifc::DefaultHandling;

    /// What went out: (Request-URI, Expires) of each request.
    pub(crate) type Sent = Arc<Mutex<Vec<(String, String)>>>;

    /// A stand-in for the SIP engine: records the Request-URI and Expires of each
    /// request and answers with `code_for` the AS (`Err` for no answer).
    pub(crate) fn recording_sender(
        code_for: impl Fn(&str) -> Result<u16, OriginateError> + Send + Sync + 'static,
    ) -> (SendRequest, Sent) {
        let sent = Arc::new(Mutex::new(Vec::new()));
        let log = sent.clone();
        let send: SendRequest = Arc::new(move |req: SipMessage| {
            let uri = req
                .request()
                .map(|r| String::from_utf8_lossy(&r.uri).into_owned())
                .unwrap_or_default();
            let expires = req
                .headers
                .get_str(&HeaderName::Expires)
                .unwrap_or_default()
                .to_string();
            log.lock().unwrap().push((uri.clone(), expires));
            let answer = code_for(&uri).map(answer);
            Box::pin(async move { answer }) as SendFuture
        });
        (send, sent)
    }

    pub(crate) fn answer(code: u16) -> SipMessage {
        let raw = format!(
            "SIP/2.0 {code} X\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nTo: <sip:a@x>;tag=2\r\n\
             From: <sip:s>;tag=1\r\nCall-ID: c\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n"
        );
        SipMessage::parse(Bytes::from(raw)).unwrap()
    }

    pub(crate) fn server(name: &str, handling: DefaultHandling) -> ApplicationServer {
        ApplicationServer {
            server_name: name.to_string(),
            default_handling: handling,
            service_info: None,
            include_register_request: false,
            include_register_response: false,
        }
    }

    fn chain(kind: RegistrationType, servers: Vec<ApplicationServer>) -> Chain {
        Chain {
            impu: "sip:alice@ims.example.net".into(),
            kind,
            expires: if kind == RegistrationType::De { 0 } else { 600 },
            register: None,
            ok: None,
            servers,
        }
    }

    const TERM: DefaultHandling = DefaultHandling::SessionTerminated;
    const CONT: DefaultHandling = DefaultHandling::SessionContinued;

    #[tokio::test]
    async fn sends_in_the_given_order_and_carries_on_past_session_continued_failures() {
        let (send, sent) = recording_sender(|uri| match uri {
            "sip:as2@x" => Ok(500),
            "sip:as3@x" => Err(OriginateError::Timeout),
            _ => Ok(200),
        });
        let c = chain(
            RegistrationType::Initial,
            ["sip:as1@x", "sip:as2@x", "sip:as3@x", "sip:as4@x"]
                .map(|s| server(s, CONT))
                .to_vec(),
        );
        assert_eq!(c.run("sip:scscf@x", &send).await, None);
        let got: Vec<_> = sent.lock().unwrap().iter().map(|s| s.0.clone()).collect();
        assert_eq!(got, ["sip:as1@x", "sip:as2@x", "sip:as3@x", "sip:as4@x"]);
    }

    #[tokio::test]
    async fn a_session_terminated_failure_stops_the_chain() {
        for failure in [Ok(500), Ok(408), Err(OriginateError::Timeout)] {
            let (send, sent) = recording_sender(move |uri| match uri {
                "sip:as2@x" => failure.clone(),
                _ => Ok(200),
            });
            let c = chain(
                RegistrationType::Re,
                vec![
                    server("sip:as1@x", TERM),
                    server("sip:as2@x", TERM),
                    server("sip:as3@x", TERM),
                ],
            );
            let stopped = c.run("sip:scscf@x", &send).await;
            assert_eq!(
                stopped,
                Some(AsFailure {
                    impu: "sip:alice@ims.example.net".into(),
                    server: "sip:as2@x".into()
                })
            );
            let got: Vec<_> = sent.lock().unwrap().iter().map(|s| s.0.clone()).collect();
            assert_eq!(got, ["sip:as1@x", "sip:as2@x"], "as3 never hears of it");
        }
    }

    #[tokio::test]
    async fn a_deregistration_goes_to_every_as_whatever_fails() {
        let (send, sent) = recording_sender(|_| Ok(500));
        let c = chain(
            RegistrationType::De,
            vec![server("sip:as1@x", TERM), server("sip:as2@x", TERM)],
        );
        assert_eq!(c.run("sip:scscf@x", &send).await, None);
        let got = sent.lock().unwrap().clone();
        assert_eq!(
            got,
            [
                ("sip:as1@x".to_string(), "0".to_string()),
                ("sip:as2@x".to_string(), "0".to_string())
            ]
        );
    }
}
