//! The request filter on SIP requests (RFC 8898 carriage, design brief §5):
//!
//! | outcome | answer |
//! |---|---|
//! | no Bearer credential | `401`, `WWW-Authenticate: Bearer realm=..., authz_server=...` |
//! | malformed, unknown, expired or revoked token | `401`, the same with `error="invalid_token"` |
//! | denied by policy | `403 Forbidden` |
//! | no decision to be had (Keystone or the policy service down, nothing cached) | `403 Forbidden (no authorization decision)`: fail closed |
//!
//! [`strip_bearer`] removes the credential before a request leaves our own nodes.

use std::sync::Arc;

use ims_sip::message::build::{new_tag, response_with};
use ims_sip::{HeaderName, SipMessage};

use super::bearer::{self, Bearer};
use super::{Question, Refusal, RequestFilter};
use crate::keystone::TokenInfo;

/// The filter with the SIP-side settings.
#[derive(Debug, Clone)]
pub struct SipFilter {
    filter: RequestFilter,
    realm: String,
    authz_server: String,
    methods: Vec<String>,
}

/// The bearer token of a request, if it carries exactly one well-formed Bearer credential.
pub fn bearer_of(request: &SipMessage) -> Bearer<'_> {
    bearer::find(
        request
            .headers
            .get_all(&HeaderName::Authorization)
            .filter_map(|h| h.value_str()),
    )
}

fn is_bearer_field(h: &ims_sip::Header) -> bool {
    h.name.matches(&HeaderName::Authorization)
        && bearer::is_bearer(&String::from_utf8_lossy(h.value()))
}

/// Whether the message has any Bearer `Authorization` field, well-formed or not.
pub fn has_bearer(message: &SipMessage) -> bool {
    message.headers.iter().any(is_bearer_field)
}

/// Removes every Bearer `Authorization` field, well-formed or not (Digest credentials
/// stay); returns how many were removed. The one function every node uses before a
/// request leaves our own nodes (toward a UE, an application server, another network).
pub fn strip_bearer(message: &mut SipMessage) -> usize {
    message.headers.retain(|h| !is_bearer_field(h))
}

impl SipFilter {
    /// `realm` and `authz_server` go into challenges; `methods` are the SIP methods that
    /// need a token (upper case, `"*"` for all).
    pub fn new(
        filter: RequestFilter,
        realm: String,
        authz_server: String,
        methods: Vec<String>,
    ) -> SipFilter {
        SipFilter {
            filter,
            realm,
            authz_server,
            methods,
        }
    }

    /// The underlying filter (metrics, feed state).
    pub fn filter(&self) -> &RequestFilter {
        &self.filter
    }

    /// Whether requests of this method need a token and a decision (`"*"` in the
    /// methods: every method).
    pub fn applies_to(&self, request: &SipMessage) -> bool {
        request.method().is_some_and(|m| {
            self.methods
                .iter()
                .any(|x| x == ims_config::ALL_METHODS || x == m.as_str())
        })
    }

    /// The token's subject, or the answer refusing the request.
    pub async fn authenticate(&self, request: &SipMessage) -> Result<Arc<TokenInfo>, SipMessage> {
        let token = match bearer_of(request) {
            Bearer::Absent => None,
            Bearer::Token(t) => Some(t),
            Bearer::Malformed => {
                tracing::info!("malformed bearer credential refused");
                return Err(self.refusal(request, &Refusal::InvalidToken));
            }
        };
        self.filter
            .authenticate(token)
            .await
            .map_err(|r| self.refusal(request, &r))
    }

    /// Decides `q` for `who`, or the answer refusing the request.
    pub async fn authorize(
        &self,
        request: &SipMessage,
        who: &TokenInfo,
        q: &Question<'_>,
    ) -> Result<(), SipMessage> {
        self.filter
            .authorize(who, q)
            .await
            .map_err(|r| {
                tracing::info!(verb = q.verb, target = q.target, refusal = %r, "request refused by cloud authorization");
                self.refusal(request, &r)
            })
    }

    /// The answer for a refusal.
    pub fn refusal(&self, request: &SipMessage, refusal: &Refusal) -> SipMessage {
        let challenge = |error: Option<&str>| {
            let c = bearer::challenge(&self.realm, &self.authz_server, error);
            response_with(
                request,
                401,
                "Unauthorized",
                Some(&new_tag()),
                &[(HeaderName::WwwAuthenticate, c.as_str())],
            )
        };
        match refusal {
            Refusal::NoToken => challenge(None),
            Refusal::InvalidToken => challenge(Some("invalid_token")),
            Refusal::Denied => response_with(request, 403, "Forbidden", Some(&new_tag()), &[]),
            Refusal::Undecidable(_) => response_with(
                request,
                403,
                "Forbidden (no authorization decision)",
                Some(&new_tag()),
                &[],
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REGISTER: &str = "REGISTER sip:ims.example.net SIP/2.0\r\n\
        Via: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bK1\r\n\
        From: <sip:alice@ims.example.net>;tag=1\r\n\
        To: <sip:alice@ims.example.net>\r\n\
        Call-ID: c1\r\nCSeq: 1 REGISTER\r\n\
        Authorization: Digest username=\"alice@ims.example.net\", realm=\"ims.example.net\", nonce=\"\", uri=\"sip:ims.example.net\", response=\"\"\r\n\
        Authorization: Bearer gAAAA-tok_en\r\n\
        Content-Length: 0\r\n\r\n";

    #[test]
    fn strips_the_bearer_and_keeps_the_digest() {
        let mut m = SipMessage::parse(REGISTER.as_bytes().to_vec()).unwrap();
        assert_eq!(bearer_of(&m), Bearer::Token("gAAAA-tok_en"));
        assert_eq!(strip_bearer(&mut m), 1);
        assert_eq!(bearer_of(&m), Bearer::Absent);
        let left: Vec<_> = m.headers.get_all(&HeaderName::Authorization).collect();
        assert_eq!(left.len(), 1);
        assert!(left[0].value_str().unwrap().starts_with("Digest "));
        assert!(!has_bearer(&m));
    }

    #[test]
    fn strips_malformed_and_repeated_bearers_too() {
        let text = REGISTER.replace(
            "Authorization: Bearer gAAAA-tok_en\r\n",
            "Authorization: Bearer\r\nauthorization: BEARER a b\r\nAuthorization:\tbearer\tx\r\n",
        );
        let mut m = SipMessage::parse(text.into_bytes()).unwrap();
        assert!(has_bearer(&m));
        assert_eq!(strip_bearer(&mut m), 3);
        assert!(!has_bearer(&m));
    }
}
