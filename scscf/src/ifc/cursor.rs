//! Where the S-CSCF is in a served user's iFC chain between application server hops
//! (TS 24.229 §5.4.3.2 steps on AS routing, §5.4.3.3; TS 23.218 §6.4): the S-CSCF sends
//! the request to the AS of the first matching iFC with a Route back to itself carrying
//! an original dialog identifier (odi); when the AS returns the request, the S-CSCF
//! goes on with the next unexecuted iFC, evaluated against the request as the AS
//! returned it (the AS may have changed it).
//!
//! The position is the (priority, ordinal among equal priorities) of the last iFC whose
//! AS was visited, not an index: a profile pushed (PPR) between two hops still resumes
//! after the right priority. [`IfcCursor::encode`] gives a short token of digits, `.`
//! and `-` (safe in a SIP URI parameter); [`IfcCursor::decode`] accepts only that
//! canonical form, at most [`MAX_ENCODED_LEN`] bytes, and never panics. The token is
//! not authenticated: whoever builds the odi around it must protect it (an AS or a UE
//! could otherwise skip iFCs).

use ims_sip::message::SipMessage;

use super::model::{InitialFilterCriteria, RegistrationState, SessionCase};

/// Longest encoded cursor accepted by [`IfcCursor::decode`].
pub const MAX_ENCODED_LEN: usize = 48;

/// The position of one iFC in a priority-ordered list: its priority and, for the
/// (non-conformant) case of equal priorities, its rank among them in document order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IfcPosition {
    /// `Priority` of the iFC.
    pub priority: i64,
    /// 0 for the first iFC with this priority, 1 for the next, ...
    pub ordinal: u16,
}

/// The state of iFC evaluation for one request: the session case, the served user's
/// registration state, and the last iFC whose AS was visited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IfcCursor {
    /// Session case being served.
    pub session_case: SessionCase,
    /// Registration state of the served user (for `ProfilePartIndicator`).
    pub registration: RegistrationState,
    /// Last iFC executed; `None` before the first.
    pub last: Option<IfcPosition>,
}

/// Why an encoded cursor is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CursorError {
    /// Longer than [`MAX_ENCODED_LEN`].
    #[error("iFC cursor longer than {MAX_ENCODED_LEN} bytes")]
    TooLong,
    /// Not the canonical form written by [`IfcCursor::encode`].
    #[error("malformed iFC cursor")]
    Malformed,
}

impl IfcCursor {
    /// The cursor before the first iFC.
    pub fn start(session_case: SessionCase, registration: RegistrationState) -> IfcCursor {
        IfcCursor {
            session_case,
            registration,
            last: None,
        }
    }

    /// The first iFC after this cursor's position that matches `req`, with the cursor
    /// to carry in the odi toward its AS. `ifcs` in priority order, as
    /// [`crate::profile::ServiceProfile::ifcs`] keeps them. `None`: no iFC left, the
    /// request goes on to its destination.
    pub fn next<'p>(
        &self,
        ifcs: &'p [InitialFilterCriteria],
        req: &SipMessage,
    ) -> Option<(IfcCursor, &'p InitialFilterCriteria)> {
        let mut previous: Option<IfcPosition> = None;
        for ifc in ifcs {
            let ordinal = match previous {
                Some(p) if p.priority == ifc.priority => p.ordinal.saturating_add(1),
                _ => 0,
            };
            let here = IfcPosition {
                priority: ifc.priority,
                ordinal,
            };
            previous = Some(here);
            if self.last.is_some_and(|last| here <= last) {
                continue;
            }
            if ifc.matches(req, self.session_case, self.registration) {
                let cursor = IfcCursor {
                    last: Some(here),
                    ..*self
                };
                return Some((cursor, ifc));
            }
        }
        None
    }

    /// The canonical token: session case and registration state digits, then
    /// `.priority.ordinal` once an iFC has been executed (`00`, `10.20.0`, `01.-5.1`).
    pub fn encode(&self) -> String {
        let head = format!("{}{}", self.session_case.code(), self.registration.code());
        match self.last {
            None => head,
            Some(p) => format!("{head}.{}.{}", p.priority, p.ordinal),
        }
    }

    /// Reads a token written by [`IfcCursor::encode`]; anything else is refused.
    pub fn decode(token: &str) -> Result<IfcCursor, CursorError> {
        if token.len() > MAX_ENCODED_LEN {
            return Err(CursorError::TooLong);
        }
        let mut parts = token.split('.');
        let head = parts.next().unwrap_or_default().as_bytes();
        let [case, state] = head else {
            return Err(CursorError::Malformed);
        };
        let digit = |b: &u8| -> Option<i64> { b.is_ascii_digit().then(|| i64::from(b - b'0')) };
        let session_case = digit(case)
            .and_then(SessionCase::from_code)
            .ok_or(CursorError::Malformed)?;
        let registration = digit(state)
            .and_then(RegistrationState::from_code)
            .ok_or(CursorError::Malformed)?;
        let last = match (parts.next(), parts.next(), parts.next()) {
            (None, _, _) => None,
            (Some(priority), Some(ordinal), None) => Some(IfcPosition {
                priority: priority.parse().map_err(|_| CursorError::Malformed)?,
                ordinal: ordinal.parse().map_err(|_| CursorError::Malformed)?,
            }),
            _ => return Err(CursorError::Malformed),
        };
        let cursor = IfcCursor {
            session_case,
            registration,
            last,
        };
        // Only the canonical spelling (no `+`, leading zeros, `-0`).
        if cursor.encode() != token {
            return Err(CursorError::Malformed);
        }
        Ok(cursor)
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use proptest::prelude::*;

    use super::*;
    use crate::profile::UserProfile;

    const ALICE: &str = "sip:alice@ims.example.net";

    fn ifcs(prios_and_methods: &[(i64, &str)]) -> Vec<InitialFilterCriteria> {
        let mut doc = format!(
            "<IMSSubscription><ServiceProfile><PublicIdentity><Identity>{ALICE}</Identity>\
             </PublicIdentity>"
        );
        for (prio, method) in prios_and_methods {
            doc.push_str(&format!(
                "<InitialFilterCriteria><Priority>{prio}</Priority><TriggerPoint>\
                 <ConditionTypeCNF>1</ConditionTypeCNF><SPT><Group>0</Group>\
                 <Method>{method}</Method></SPT></TriggerPoint><ApplicationServer>\
                 <ServerName>sip:{method}{prio}@as</ServerName></ApplicationServer>\
                 </InitialFilterCriteria>"
            ));
        }
        doc.push_str("</ServiceProfile></IMSSubscription>");
        UserProfile::parse(Bytes::from(doc))
            .unwrap()
            .ifcs(ALICE)
            .to_vec()
    }

    fn request(method: &str) -> SipMessage {
        SipMessage::parse(Bytes::from(format!(
            "{method} sip:bob@x SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
             Max-Forwards: 70\r\nTo: <sip:bob@x>\r\nFrom: <{ALICE}>;tag=1\r\nCall-ID: c\r\n\
             CSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n"
        )))
        .unwrap()
    }

    /// The server names visited walking the chain with an odi round trip per hop.
    fn walk(ifcs: &[InitialFilterCriteria], req: &SipMessage) -> Vec<String> {
        let mut cursor = IfcCursor::start(SessionCase::Originating, RegistrationState::Registered);
        let mut visited = Vec::new();
        while let Some((next, ifc)) = cursor.next(ifcs, req) {
            visited.push(ifc.application_server.server_name.clone());
            cursor = IfcCursor::decode(&next.encode()).unwrap();
            assert!(visited.len() <= ifcs.len(), "the walk must end");
        }
        visited
    }

    #[test]
    fn walks_matching_ifcs_in_priority_order_once_each() {
        let list = ifcs(&[
            (30, "INVITE"),
            (10, "INVITE"),
            (20, "MESSAGE"),
            (40, "INVITE"),
        ]);
        assert_eq!(
            walk(&list, &request("INVITE")),
            ["sip:INVITE10@as", "sip:INVITE30@as", "sip:INVITE40@as"]
        );
        assert_eq!(walk(&list, &request("MESSAGE")), ["sip:MESSAGE20@as"]);
        assert!(walk(&list, &request("BYE")).is_empty());
    }

    #[test]
    fn equal_priorities_are_each_visited_in_document_order() {
        let list = ifcs(&[(5, "INVITE"), (5, "MESSAGE"), (5, "INVITE"), (1, "INVITE")]);
        assert_eq!(
            walk(&list, &request("INVITE")),
            ["sip:INVITE1@as", "sip:INVITE5@as", "sip:INVITE5@as"]
        );
        let start = IfcCursor::start(SessionCase::Originating, RegistrationState::Registered);
        let (c1, _) = start.next(&list, &request("INVITE")).unwrap();
        let (c2, _) = c1.next(&list, &request("INVITE")).unwrap();
        let (c3, _) = c2.next(&list, &request("INVITE")).unwrap();
        assert_eq!(
            c2.last,
            Some(IfcPosition {
                priority: 5,
                ordinal: 0
            })
        );
        assert_eq!(
            c3.last,
            Some(IfcPosition {
                priority: 5,
                ordinal: 2
            })
        );
        assert_eq!(c3.encode(), "00.5.2");
    }

    #[test]
    fn the_returned_request_is_evaluated_again() {
        // The AS of priority 10 turned the INVITE into a MESSAGE (any change counts).
        let list = ifcs(&[(10, "INVITE"), (20, "INVITE"), (30, "MESSAGE")]);
        let start = IfcCursor::start(SessionCase::Originating, RegistrationState::Registered);
        let (after_first, first) = start.next(&list, &request("INVITE")).unwrap();
        assert_eq!(first.priority, 10);
        let (_, second) = after_first.next(&list, &request("MESSAGE")).unwrap();
        assert_eq!(second.priority, 30);
    }

    #[test]
    fn a_profile_changed_between_hops_resumes_after_the_priority() {
        let before = ifcs(&[(10, "INVITE"), (20, "INVITE")]);
        let after = ifcs(&[(5, "INVITE"), (15, "INVITE"), (20, "INVITE")]);
        let start = IfcCursor::start(SessionCase::Originating, RegistrationState::Registered);
        let (cursor, _) = start.next(&before, &request("INVITE")).unwrap();
        let (_, next) = cursor.next(&after, &request("INVITE")).unwrap();
        assert_eq!(next.priority, 15);
    }

    #[test]
    fn encodes_every_field() {
        let c = IfcCursor {
            session_case: SessionCase::OriginatingCdiv,
            registration: RegistrationState::Unregistered,
            last: Some(IfcPosition {
                priority: i64::MIN,
                ordinal: u16::MAX,
            }),
        };
        let token = c.encode();
        assert_eq!(token, "41.-9223372036854775808.65535");
        assert!(token.len() <= MAX_ENCODED_LEN);
        assert_eq!(IfcCursor::decode(&token), Ok(c));
        let start = IfcCursor::start(
            SessionCase::TerminatingRegistered,
            RegistrationState::Registered,
        );
        assert_eq!(start.encode(), "10");
        assert_eq!(IfcCursor::decode("10"), Ok(start));
    }

    #[test]
    fn refuses_hostile_tokens() {
        for bad in [
            "",
            "0",
            "000",
            "50",
            "02",
            "a0",
            "00.",
            "00.1",
            "00.1.",
            "00.1.2.3",
            "00.+1.0",
            "00.01.0",
            "00.1.01",
            "00.-0.0",
            "00.1.65536",
            "00.9223372036854775808.0",
            "00.1.-1",
            "00..0",
            " 00",
            "00 .1.0",
            "٣0",
            "00.1.٣",
        ] {
            assert_eq!(
                IfcCursor::decode(bad),
                Err(CursorError::Malformed),
                "{bad:?}"
            );
        }
        assert_eq!(
            IfcCursor::decode(&"0".repeat(MAX_ENCODED_LEN + 1)),
            Err(CursorError::TooLong)
        );
    }

    proptest! {
        #[test]
        fn decode_never_panics_and_accepts_only_what_it_writes_back(s in ".{0,64}") {
            if let Ok(c) = IfcCursor::decode(&s) {
                prop_assert_eq!(c.encode(), s);
            }
        }

        #[test]
        fn every_cursor_round_trips(case in 0i64..5, state in 0i64..2, last in proptest::option::of((any::<i64>(), any::<u16>()))) {
            let c = IfcCursor {
                session_case: SessionCase::from_code(case).unwrap(),
                registration: RegistrationState::from_code(state).unwrap(),
                last: last.map(|(priority, ordinal)| IfcPosition { priority, ordinal }),
            };
            prop_assert_eq!(IfcCursor::decode(&c.encode()), Ok(c));
        }
    }
}
