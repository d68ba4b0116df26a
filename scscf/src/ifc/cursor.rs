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
