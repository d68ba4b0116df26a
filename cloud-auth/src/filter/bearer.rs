//! The bearer credential as SIP carries it (RFC 8898 §2, syntax of RFC 6750 §2.1):
//! `Authorization: Bearer <b64token>`, and the `WWW-Authenticate: Bearer` challenge with
//! `realm`, `authz_server` and, for a refused token, `error="invalid_token"`
//! (RFC 8898 §2.3, RFC 6750 §3).

use ims_sip::message::build::quoted_string as quoted;

use crate::keystone::MAX_TOKEN_LEN;

/// What a request's `Authorization` header fields hold for the Bearer scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bearer<'a> {
    /// No field with the Bearer scheme.
    Absent,
    /// A Bearer field that is not `Bearer 1*SP b64token`, or several Bearer fields.
    Malformed,
    /// The token.
    Token(&'a str),
}

/// `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn is_b64token(s: &str) -> bool {
    let body = s.trim_end_matches('=');
    !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
}

/// The Bearer credential among a request's `Authorization` field values (other schemes,
/// such as the IMS Digest credential beside it, are skipped).
pub fn find<'a>(values: impl IntoIterator<Item = &'a str>) -> Bearer<'a> {
    let mut found = Bearer::Absent;
    for value in values {
        let value = value.trim();
        let (scheme, rest) = value.split_once([' ', '\t']).unwrap_or((value, ""));
        if !scheme.eq_ignore_ascii_case("bearer") {
            continue;
        }
        if found != Bearer::Absent {
            return Bearer::Malformed;
        }
        let token = rest.trim();
        found = if token.len() <= MAX_TOKEN_LEN && is_b64token(token) {
            Bearer::Token(token)
        } else {
            Bearer::Malformed
        };
    }
    found
}

/// Whether an `Authorization` field value uses the Bearer scheme (to strip it): the same
/// scheme test as [`find`], so that whatever counts as a Bearer credential, well-formed
/// or not, is stripped.
pub fn is_bearer(value: &str) -> bool {
    let value = value.trim();
    let scheme = value.split([' ', '\t']).next().unwrap_or_default();
    scheme.eq_ignore_ascii_case("bearer")
}

/// The `WWW-Authenticate` value of a Bearer challenge: `error` is `None` when the request
/// carried no token, `Some("invalid_token")` when its token was refused.
pub fn challenge(realm: &str, authz_server: &str, error: Option<&str>) -> String {
    let mut v = format!(
        "Bearer realm={}, authz_server={}",
        quoted(realm),
        quoted(authz_server)
    );
    if let Some(e) = error {
        v.push_str(", error=");
        v.push_str(&quoted(e));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_bearer_beside_a_digest_credential() {
        let digest = r#"Digest username="alice@ims.example.net", realm="ims.example.net""#;
        assert_eq!(
            find([digest, "Bearer gAAAAABn-x_y.z~1+/=="]),
            Bearer::Token("gAAAAABn-x_y.z~1+/==")
        );
        assert_eq!(find(["bearer   abc"]), Bearer::Token("abc"));
        assert_eq!(find([digest]), Bearer::Absent);
        assert_eq!(find([]), Bearer::Absent);
    }

    #[test]
    fn refuses_what_is_not_one_b64token() {
        assert_eq!(find(["Bearer"]), Bearer::Malformed);
        assert_eq!(find(["Bearer a b"]), Bearer::Malformed);
        assert_eq!(find(["Bearer ==="]), Bearer::Malformed);
        assert_eq!(find(["Bearer a\"b"]), Bearer::Malformed);
        assert_eq!(find(["Bearer a", "Bearer b"]), Bearer::Malformed);
        let long = format!("Bearer {}", "a".repeat(MAX_TOKEN_LEN + 1));
        assert_eq!(find([long.as_str()]), Bearer::Malformed);
        // A scheme that merely starts with "Bearer" is another scheme.
        assert_eq!(find(["Bearerx abc"]), Bearer::Absent);
    }

    #[test]
    fn tells_bearer_fields_apart() {
        assert!(is_bearer("Bearer abc"));
        assert!(is_bearer("  BEARER\tabc"));
        assert!(!is_bearer("Digest username=\"a\""));
        assert!(!is_bearer("Bearerx"));
        assert!(!is_bearer("Bear"));
    }

    #[test]
    fn challenges_follow_rfc_8898() {
        assert_eq!(
            challenge("ims.example.net", "http://127.0.0.1:5000/v3", None),
            r#"Bearer realm="ims.example.net", authz_server="http://127.0.0.1:5000/v3""#
        );
        assert_eq!(
            challenge("a\"b", "s", Some("invalid_token")),
            r#"Bearer realm="a\"b", authz_server="s", error="invalid_token""#
        );
    }
}
