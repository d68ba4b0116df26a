//! The user profile the HSS sends in SAA/PPR User-Data: an IMSSubscription document
//! (TS 29.228 Annex E). The registrar reads only the implicit registration set (the
//! `PublicIdentity/Identity` values of the service profiles, barred ones apart,
//! TS 29.228 §6.5.1, TS 24.229 §5.4.1.2.2 on P-Associated-URI); the raw document is kept
//! for iFC evaluation.

use bytes::Bytes;

/// Public identities read from one profile at most.
pub const MAX_IDENTITIES: usize = 256;

/// Why a User-Data document is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    /// Not UTF-8.
    #[error("User-Data is not UTF-8")]
    NotUtf8,
    /// No `<IMSSubscription>` root.
    #[error("User-Data is not an IMSSubscription")]
    NotSubscription,
    /// A `<PublicIdentity>` without a closed `<Identity>`.
    #[error("malformed PublicIdentity")]
    Malformed,
    /// More than [`MAX_IDENTITIES`] public identities.
    #[error("too many public identities")]
    TooMany,
}

/// A service profile as the S-CSCF keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserProfile {
    /// The IMSSubscription XML as received.
    pub raw: Bytes,
    /// The non-barred public identities, in document order, without duplicates.
    pub associated: Vec<String>,
    /// The barred public identities.
    pub barred: Vec<String>,
}

/// The text between `<tag>` and `</tag>` after `from`, and the index after the end tag.
fn element<'a>(s: &'a str, tag: &str, from: usize) -> Option<(usize, &'a str, usize)> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let rest = s.get(from..)?;
    let start = rest.find(&open)? + from;
    let body_start = start + open.len();
    let end = s.get(body_start..)?.find(&close)? + body_start;
    Some((start, s.get(body_start..end)?, end + close.len()))
}

/// Replaces the five predefined XML entities (XML 1.0 §4.6).
fn unescape(s: &str) -> String {
    s.trim()
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

impl UserProfile {
    /// Reads the public identities of an IMSSubscription document.
    pub fn parse(raw: Bytes) -> Result<UserProfile, ProfileError> {
        let text = std::str::from_utf8(&raw).map_err(|_| ProfileError::NotUtf8)?;
        if !text.contains("<IMSSubscription") {
            return Err(ProfileError::NotSubscription);
        }
        let mut associated = Vec::new();
        let mut barred = Vec::new();
        let mut at = 0;
        while let Some((_, body, next)) = element(text, "PublicIdentity", at) {
            at = next;
            let (_, id, _) = element(body, "Identity", 0).ok_or(ProfileError::Malformed)?;
            let id = unescape(id);
            let is_barred = element(body, "BarringIndication", 0)
                .is_some_and(|(_, v, _)| matches!(v.trim(), "1" | "true"));
            let list = if is_barred {
                &mut barred
            } else {
                &mut associated
            };
            if !list.contains(&id) {
                list.push(id);
            }
            if associated.len() + barred.len() > MAX_IDENTITIES {
                return Err(ProfileError::TooMany);
            }
        }
        Ok(UserProfile {
            raw,
            associated,
            barred,
        })
    }

    /// Whether `impu` belongs to the implicit registration set (barred or not).
    pub fn contains(&self, impu: &str) -> bool {
        self.associated
            .iter()
            .chain(&self.barred)
            .any(|i| i == impu)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><IMSSubscription>\
        <PrivateID>alice@ims.example.net</PrivateID><ServiceProfile>\
        <PublicIdentity><Identity>sip:alice@ims.example.net</Identity></PublicIdentity>\
        <PublicIdentity><BarringIndication>1</BarringIndication>\
        <Identity>sip:alice-barred@ims.example.net</Identity></PublicIdentity>\
        <PublicIdentity><Identity> tel:+15551230001 </Identity></PublicIdentity>\
        <InitialFilterCriteria><Priority>0</Priority></InitialFilterCriteria>\
        </ServiceProfile><ServiceProfile>\
        <PublicIdentity><Identity>sip:a&amp;b@ims.example.net</Identity></PublicIdentity>\
        <PublicIdentity><Identity>sip:alice@ims.example.net</Identity></PublicIdentity>\
        </ServiceProfile></IMSSubscription>";

    #[test]
    fn implicit_set_spans_profiles_and_leaves_barred_apart() {
        let p = UserProfile::parse(Bytes::from_static(DOC.as_bytes())).unwrap();
        assert_eq!(
            p.associated,
            [
                "sip:alice@ims.example.net",
                "tel:+15551230001",
                "sip:a&b@ims.example.net"
            ]
        );
        assert_eq!(p.barred, ["sip:alice-barred@ims.example.net"]);
        assert!(p.contains("sip:alice-barred@ims.example.net"));
        assert!(!p.contains("sip:bob@ims.example.net"));
        assert_eq!(&p.raw[..], DOC.as_bytes());
    }

    #[test]
    fn refuses_other_documents() {
        assert_eq!(
            UserProfile::parse(Bytes::from_static(b"<x/>")),
            Err(ProfileError::NotSubscription)
        );
        assert_eq!(
            UserProfile::parse(Bytes::from_static(&[0xff, 0xfe])),
            Err(ProfileError::NotUtf8)
        );
        let broken = "<IMSSubscription><PublicIdentity><Identity>sip:a@b</PublicIdentity>";
        assert_eq!(
            UserProfile::parse(Bytes::from(broken)),
            Err(ProfileError::Malformed)
        );
    }

    #[test]
    fn bounds_the_number_of_identities() {
        let mut doc = String::from("<IMSSubscription><ServiceProfile>");
        for i in 0..=MAX_IDENTITIES {
            doc.push_str(&format!(
                "<PublicIdentity><Identity>sip:u{i}@x</Identity></PublicIdentity>"
            ));
        }
        doc.push_str("</ServiceProfile></IMSSubscription>");
        assert_eq!(
            UserProfile::parse(Bytes::from(doc)),
            Err(ProfileError::TooMany)
        );
    }
}
