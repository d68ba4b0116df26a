//! A CANCEL received by a stateful proxy (RFC 3261 §16.10, §9.2).
//!
//! The CANCEL is matched to the INVITE server transaction it targets by
//! [`invite_key`]. When a response context is found, the CANCEL is answered 200 and
//! the context cancels its pending branches ([`handle_cancel`]). When none is found,
//! §16.10 asks the element to forward the CANCEL statelessly; that is the glue
//! layer's call (it may answer 481 Call/Transaction Does Not Exist instead, as a UAS
//! would under §9.2).

use crate::message::build::response_with;
use crate::message::key::TransactionKey;
use crate::{Method, ParseError, SipMessage};

use super::response_context::{Actions, ResponseContext};

/// The key of the INVITE server transaction a CANCEL targets (§9.2): the CANCEL's own
/// key with the method INVITE (same top Via branch and sent-by, or for RFC 2543 peers
/// the same Request-URI, tags, Call-ID, CSeq number and top Via).
pub fn invite_key(cancel: &SipMessage) -> Result<TransactionKey, ParseError> {
    Ok(TransactionKey::of(cancel)?.with_method(Method::Invite))
}

/// What to do with a CANCEL that matched a response context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancelOutcome {
    /// `200 OK` for the CANCEL, sent on the CANCEL's own server transaction (§16.10).
    pub ok: SipMessage,
    /// What the INVITE's response context does: CANCELs for pending branches and,
    /// when nothing is pending, the 487 for the INVITE.
    pub actions: Actions,
}

/// Answers a CANCEL for `ctx`'s server transaction and cancels its pending branches
/// (§16.10). The 200 carries the context's To tag (§9.2).
pub fn handle_cancel(ctx: &mut ResponseContext, cancel: &SipMessage) -> CancelOutcome {
    let ok = response_with(cancel, 200, "OK", Some(ctx.local_tag()), &[]);
    CancelOutcome {
        ok,
        actions: ctx.cancel(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::build::cancel as build_cancel;
    use bytes::Bytes;

    const INVITE: &[u8] = b"INVITE sip:b@y SIP/2.0\r\n\
Via: SIP/2.0/UDP ua.example.com;branch=z9hG4bKabc\r\nFrom: <sip:a@x>;tag=1\r\n\
To: <sip:b@y>\r\nCall-ID: c\r\nCSeq: 7 INVITE\r\nContent-Length: 0\r\n\r\n";

    #[test]
    fn cancel_key_matches_the_invite() {
        let invite = SipMessage::parse(Bytes::from_static(INVITE)).unwrap();
        let cancel = build_cancel(&invite).unwrap();
        assert_eq!(
            invite_key(&cancel).unwrap(),
            TransactionKey::of(&invite).unwrap()
        );
        // A CANCEL with another branch does not.
        let mut other = cancel.clone();
        other.headers.set(
            crate::HeaderName::Via,
            "SIP/2.0/UDP ua.example.com;branch=z9hG4bKzzz",
        );
        assert_ne!(
            invite_key(&other).unwrap(),
            TransactionKey::of(&invite).unwrap()
        );
    }
}
