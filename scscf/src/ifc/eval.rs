//! Evaluating initial filter criteria against a request (TS 29.228 Annex B.2.2 and
//! Annex C; TS 24.229 §5.4.3.2 originating, §5.4.3.3 terminating; TS 23.218 §6.4).
//!
//! * An iFC applies only to the part of the profile its `ProfilePartIndicator` names
//!   (absent: both) and matches when it has no TriggerPoint or its TriggerPoint holds.
//! * CNF (`ConditionTypeCNF` = 1): every group holds, a group holding when any of its
//!   SPTs does. DNF (0): some group holds, a group holding when all its SPTs do. An SPT
//!   in several groups is evaluated once.
//! * An SPT whose regular expression did not compile never matches, negated or not.
//! * Only requests are evaluated: a response matches no iFC.
//! * A `Method` REGISTER SPT with `RegistrationType` values matches only the kinds of
//!   REGISTER it names ([`InitialFilterCriteria::matches_register`], TS 24.229
//!   §5.4.1.7); outside third-party registration the values are not consulted.

use ims_sip::message::{HeaderName, SipMessage};

use super::model::{
    InitialFilterCriteria, RegistrationState, RegistrationType, SessionCase, Spt, SptCondition,
    TriggerPoint,
};

/// What an evaluation is for: the session case, and the kind of REGISTER when
/// third-party registration asks (`None` otherwise).
type Context = (SessionCase, Option<RegistrationType>);

impl InitialFilterCriteria {
    /// Whether this iFC applies to `req` for the served user in `state` and `case`.
    pub fn matches(&self, req: &SipMessage, case: SessionCase, state: RegistrationState) -> bool {
        self.matches_in(req, case, state, None)
    }

    /// Whether this iFC asks for a third-party REGISTER (TS 24.229 §5.4.1.7) for the
    /// UE's `req` (or the one the S-CSCF stands in for), a registration of kind `kind`:
    /// evaluated in the originating case for the registered part of the profile
    /// (TS 29.228 Annex C), the `RegistrationType` of REGISTER SPTs consulted.
    pub fn matches_register(&self, req: &SipMessage, kind: RegistrationType) -> bool {
        self.matches_in(
            req,
            SessionCase::Originating,
            RegistrationState::Registered,
            Some(kind),
        )
    }

    fn matches_in(
        &self,
        req: &SipMessage,
        case: SessionCase,
        state: RegistrationState,
        kind: Option<RegistrationType>,
    ) -> bool {
        if !req.is_request() {
            return false;
        }
        if self.profile_part.is_some_and(|part| part != state) {
            return false;
        }
        self.trigger_point
            .as_ref()
            .is_none_or(|tp| tp.matches_in(req, (case, kind)))
    }
}

/// The iFCs of `ifcs` (in priority order, as [`crate::profile::ServiceProfile`] keeps
/// them) that apply to `req`, in that order.
pub fn matching<'p>(
    ifcs: &'p [InitialFilterCriteria],
    req: &SipMessage,
    case: SessionCase,
    state: RegistrationState,
) -> Vec<&'p InitialFilterCriteria> {
    ifcs.iter()
        .filter(|ifc| ifc.matches(req, case, state))
        .collect()
}

impl TriggerPoint {
    /// Whether the trigger point holds for `req` in session case `case`.
    pub fn matches(&self, req: &SipMessage, case: SessionCase) -> bool {
        self.matches_in(req, (case, None))
    }

    fn matches_in(&self, req: &SipMessage, (case, kind): Context) -> bool {
        // One bit per SPT (at most 64): evaluated, and its result.
        let mut done = 0u64;
        let mut value = 0u64;
        let spts = self.spts();
        let mut spt = |i: u8| -> bool {
            let Some(bit) = 1u64.checked_shl(u32::from(i)) else {
                // Not reached: TriggerPoint::new caps SPTs at 64.
                return spts
                    .get(usize::from(i))
                    .is_some_and(|s| s.matches_in(req, (case, kind)));
            };
            if done & bit == 0 {
                done |= bit;
                if spts
                    .get(usize::from(i))
                    .is_some_and(|s| s.matches_in(req, (case, kind)))
                {
                    value |= bit;
                }
            }
            value & bit != 0
        };
        if self.is_cnf() {
            self.groups().iter().all(|g| g.iter().any(|&i| spt(i)))
        } else {
            self.groups().iter().any(|g| g.iter().all(|&i| spt(i)))
        }
    }
}

impl Spt {
    /// Whether this SPT holds for `req` (negation applied).
    pub fn matches(&self, req: &SipMessage, case: SessionCase) -> bool {
        self.matches_in(req, (case, None))
    }

    fn matches_in(&self, req: &SipMessage, (case, kind): Context) -> bool {
        let hit = self.condition.test(req, case).map(|hit| {
            hit && match (&self.condition, kind) {
                (SptCondition::Method(m), Some(kind)) if m.eq_ignore_ascii_case("REGISTER") => {
                    self.registration_types.is_empty() || self.registration_types.contains(&kind)
                }
                _ => true,
            }
        });
        match hit {
            Some(hit) => hit != self.negated,
            None => false,
        }
    }
}

impl SptCondition {
    /// The raw test, before negation; `None` when it cannot be evaluated (invalid
    /// pattern, or `req` is not a request).
    fn test(&self, req: &SipMessage, case: SessionCase) -> Option<bool> {
        match self {
            SptCondition::RequestUri(p) => {
                let uri = &req.request()?.uri;
                Some(
                    uri.eq_ignore_ascii_case(p.source().as_bytes()) || p.find_in(uri) == Some(true),
                )
            }
            SptCondition::Method(m) => Some(req.method()?.as_str().eq_ignore_ascii_case(m)),
            SptCondition::SipHeader { header, content } => {
                let mut lines = req.headers.get_all(header);
                match content {
                    None => Some(lines.next().is_some()),
                    Some(p) if !p.is_valid() => None,
                    Some(p) => Some(lines.any(|h| p.find_in(h.value()) == Some(true))),
                }
            }
            SptCondition::SessionCase(c) => Some(*c == case),
            SptCondition::SessionDescription { line, content } => {
                if content.as_ref().is_some_and(|p| !p.is_valid()) {
                    return None;
                }
                Some(sdp_lines(req).any(|(kind, value)| {
                    kind == line.as_bytes()
                        && content
                            .as_ref()
                            .is_none_or(|p| p.find_in(value) == Some(true))
                }))
            }
        }
    }
}

/// The `(type, value)` of each line of an `application/sdp` body (RFC 8866 §5); nothing
/// for other bodies.
fn sdp_lines(req: &SipMessage) -> impl Iterator<Item = (&[u8], &[u8])> {
    let is_sdp = req
        .headers
        .get_str(&HeaderName::ContentType)
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/sdp"));
    let body: &[u8] = if is_sdp { req.body() } else { &[] };
    body.split(|&b| b == b'\n').filter_map(|l| {
        let l = l.strip_suffix(b"\r").unwrap_or(l);
        let mut parts = l.splitn(2, |&b| b == b'=');
        Some((parts.next()?, parts.next()?))
    })
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::profile::UserProfile;

    const ALICE: &str = "sip:alice@ims.example.net";
    const ORIG: SessionCase = SessionCase::Originating;
    const REG: RegistrationState = RegistrationState::Registered;

    /// The iFCs of a profile whose only service profile holds `ifcs` (XML).
    fn profile(ifcs: &str) -> Vec<InitialFilterCriteria> {
        let doc = format!(
            "<IMSSubscription><ServiceProfile><PublicIdentity><Identity>{ALICE}</Identity>\
             </PublicIdentity>{ifcs}</ServiceProfile></IMSSubscription>"
        );
        UserProfile::parse(Bytes::from(doc))
            .unwrap()
            .ifcs(ALICE)
            .to_vec()
    }

    /// One iFC with priority 0 and the given TriggerPoint (XML, may be empty).
    fn ifc(prio: i64, tp: &str, extra: &str) -> String {
        format!(
            "<InitialFilterCriteria><Priority>{prio}</Priority>{tp}<ApplicationServer>\
             <ServerName>sip:as{prio}@x</ServerName></ApplicationServer>{extra}\
             </InitialFilterCriteria>"
        )
    }

    fn tp(cnf: bool, spts: &[(&[i64], bool, &str)]) -> String {
        let mut s = format!(
            "<TriggerPoint><ConditionTypeCNF>{}</ConditionTypeCNF>",
            u8::from(cnf)
        );
        for (groups, negated, cond) in spts {
            s.push_str(&format!(
                "<SPT><ConditionNegated>{}</ConditionNegated>",
                u8::from(*negated)
            ));
            for g in *groups {
                s.push_str(&format!("<Group>{g}</Group>"));
            }
            s.push_str(cond);
            s.push_str("</SPT>");
        }
        s + "</TriggerPoint>"
    }

    /// A TriggerPoint with one SPT `<outer><first>value</first><Content>..</Content></outer>`.
    fn with_content(outer: &str, first: &str, value: &str, content: Option<&str>) -> String {
        let c = content
            .map(|c| format!("<Content>{c}</Content>"))
            .unwrap_or_default();
        let cond = format!("<{outer}><{first}>{value}</{first}>{c}</{outer}>");
        tp(true, &[(&[0], false, &cond)])
    }

    /// Whether a single-iFC profile with this TriggerPoint matches `req`.
    fn hits(tp_xml: &str, req: &SipMessage, case: SessionCase) -> bool {
        let ifcs = profile(&ifc(0, tp_xml, ""));
        assert_eq!(ifcs.len(), 1, "iFC not read: {tp_xml}");
        ifcs[0].matches(req, case, REG)
    }

    fn request(method: &str, uri: &str, headers: &str, body: &str) -> SipMessage {
        let raw = format!(
            "{method} {uri} SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
             Max-Forwards: 70\r\nTo: <{uri}>\r\nFrom: <{ALICE}>;tag=1\r\nCall-ID: c\r\n\
             CSeq: 1 {method}\r\n{headers}Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        SipMessage::parse(Bytes::from(raw)).unwrap()
    }

    fn invite() -> SipMessage {
        request(
            "INVITE",
            "sip:Bob@ims.example.net",
            "P-Asserted-Identity: <sip:alice@ims.example.net>\r\n\
             Accept-Contact: *;+g.3gpp.icsi-ref=\"mmtel\"\r\n\
             a: *;video\r\nContent-Type: Application/SDP; charset=utf-8\r\n",
            "v=0\r\nm=audio 4000 RTP/AVP 0\r\nm=video 4002 RTP/AVP 96\n",
        )
    }

    const INVITE_: &str = "<Method>INVITE</Method>";
    const MESSAGE: &str = "<Method>MESSAGE</Method>";
    const BYE: &str = "<Method>BYE</Method>";

    #[test]
    fn cnf_ors_inside_groups_and_ands_across() {
        let req = invite();
        // (INVITE or MESSAGE) and (BYE or INVITE): true.
        let both = [
            (&[0][..], false, INVITE_),
            (&[0][..], false, MESSAGE),
            (&[1][..], false, BYE),
            (&[1][..], false, INVITE_),
        ];
        assert!(hits(&tp(true, &both), &req, ORIG));
        // (INVITE or MESSAGE) and (BYE): false.
        let one = [
            (&[0][..], false, INVITE_),
            (&[0][..], false, MESSAGE),
            (&[1][..], false, BYE),
        ];
        assert!(!hits(&tp(true, &one), &req, ORIG));
    }

    #[test]
    fn dnf_ands_inside_groups_and_ors_across() {
        let req = invite();
        // (INVITE and MESSAGE) or (BYE): false.
        let none = [
            (&[0][..], false, INVITE_),
            (&[0][..], false, MESSAGE),
            (&[1][..], false, BYE),
        ];
        assert!(!hits(&tp(false, &none), &req, ORIG));
        // (INVITE and MESSAGE) or (INVITE): true.
        let some = [
            (&[0][..], false, INVITE_),
            (&[0][..], false, MESSAGE),
            (&[1][..], false, INVITE_),
        ];
        assert!(hits(&tp(false, &some), &req, ORIG));
        // The same SPTs, (INVITE, BYE) and (MESSAGE, INVITE): false as DNF, true as CNF.
        let same = [
            (&[0][..], false, INVITE_),
            (&[0][..], false, BYE),
            (&[1][..], false, MESSAGE),
            (&[1][..], false, INVITE_),
        ];
        assert!(!hits(&tp(false, &same), &req, ORIG));
        assert!(hits(&tp(true, &same), &req, ORIG));
    }

    #[test]
    fn an_spt_in_several_groups_counts_in_each() {
        let req = invite();
        // DNF: group 0 = {INVITE, MESSAGE}, group 1 = {INVITE}: group 1 holds.
        let shared = [(&[0, 1][..], false, INVITE_), (&[0][..], false, MESSAGE)];
        assert!(hits(&tp(false, &shared), &req, ORIG));
        // CNF: group 0 = {MESSAGE, INVITE}, group 1 = {INVITE}: both hold.
        let shared = [(&[0][..], false, MESSAGE), (&[0, 1][..], false, INVITE_)];
        assert!(hits(&tp(true, &shared), &req, ORIG));
        // CNF: group 1 = {MESSAGE} alone fails.
        let shared = [(&[0, 1][..], false, MESSAGE), (&[0][..], false, INVITE_)];
        assert!(!hits(&tp(true, &shared), &req, ORIG));
    }

    #[test]
    fn negation_inverts_an_spt() {
        let req = invite();
        assert!(!hits(&tp(true, &[(&[0], true, INVITE_)]), &req, ORIG));
        assert!(hits(&tp(true, &[(&[0], true, MESSAGE)]), &req, ORIG));
        // INVITE and not terminating-unregistered.
        let spts = [
            (&[0][..], false, INVITE_),
            (&[1][..], true, "<SessionCase>2</SessionCase>"),
        ];
        assert!(hits(&tp(true, &spts), &req, ORIG));
        assert!(!hits(
            &tp(true, &spts),
            &req,
            SessionCase::TerminatingUnregistered
        ));
    }

    #[test]
    fn method_is_compared_ignoring_case_and_exactly() {
        let req = invite();
        assert!(hits(
            &tp(true, &[(&[0], false, "<Method>invite</Method>")]),
            &req,
            ORIG
        ));
        assert!(!hits(
            &tp(true, &[(&[0], false, "<Method>INV</Method>")]),
            &req,
            ORIG
        ));
        let ext = request("PUBLISHX", ALICE, "", "");
        assert!(hits(
            &tp(true, &[(&[0], false, "<Method>publishx</Method>")]),
            &ext,
            ORIG
        ));
    }

    #[test]
    fn register_triggers_match_the_registration_types_they_name() {
        use RegistrationType::{De, Initial, Re};
        let register = request("REGISTER", "sip:ims.example.net", "", "");
        let spt = |types: &[u8]| {
            let ext: String = types
                .iter()
                .map(|t| format!("<RegistrationType>{t}</RegistrationType>"))
                .collect();
            let ext = if ext.is_empty() {
                ext
            } else {
                format!("<Extension>{ext}</Extension>")
            };
            profile(&ifc(
                0,
                &tp(
                    true,
                    &[(&[0], false, &format!("<Method>REGISTER</Method>{ext}"))],
                ),
                "",
            ))
            .remove(0)
        };
        let all = spt(&[]);
        let initial_and_de = spt(&[0, 2]);
        let re = spt(&[1]);
        for kind in [Initial, Re, De] {
            assert!(all.matches_register(&register, kind), "{kind:?}");
        }
        assert!(initial_and_de.matches_register(&register, Initial));
        assert!(!initial_and_de.matches_register(&register, Re));
        assert!(initial_and_de.matches_register(&register, De));
        assert!(re.matches_register(&register, Re));
        assert!(!re.matches_register(&register, Initial));
        // Session evaluation does not consult the types, and other methods never match.
        assert!(re.matches(&register, ORIG, REG));
        assert!(!re.matches_register(&invite(), Re));
        // An unknown RegistrationType makes the iFC unusable: left out of the profile.
        let bad = "<Method>REGISTER</Method><Extension><RegistrationType>7\
                   </RegistrationType></Extension>";
        assert!(profile(&ifc(0, &tp(true, &[(&[0], false, bad)]), "")).is_empty());
    }

    #[test]
    fn request_uri_literal_or_case_insensitive_regex() {
        let req = invite();
        let spt = |u: &str| {
            tp(
                true,
                &[(&[0], false, &format!("<RequestURI>{u}</RequestURI>"))],
            )
        };
        assert!(hits(&spt("SIP:bob@IMS.example.net"), &req, ORIG));
        assert!(hits(&spt("^sip:bob@"), &req, ORIG));
        assert!(!hits(&spt("^sip:carol@"), &req, ORIG));
        // A literal URI that is not a valid regex still matches itself.
        let tel = request("INVITE", "tel:+1(555)", "", "");
        assert!(hits(&spt("tel:+1(555)"), &tel, ORIG));
        assert!(!hits(&spt("tel:+1(556)"), &tel, ORIG));
        // `+` as a regex quantifier would miss, the literal comparison does not.
        let tel = request("INVITE", "tel:+15551230001", "", "");
        assert!(hits(&spt("tel:+15551230001"), &tel, ORIG));
    }

    #[test]
    fn sip_header_presence_and_content_per_line() {
        let req = invite();
        let h =
            |name: &str, content: Option<&str>| with_content("SIPHeader", "Header", name, content);
        assert!(hits(&h("p-asserted-identity", None), &req, ORIG));
        assert!(!hits(&h("P-Preferred-Identity", None), &req, ORIG));
        assert!(hits(
            &h("X-Unknown", None),
            &request("INVITE", ALICE, "x-unknown: 1\r\n", ""),
            ORIG
        ));
        // Content is searched in each line; compact `a` lines count as Accept-Contact.
        assert!(hits(
            &h("Accept-Contact", Some("icsi-ref=\"mmtel\"")),
            &req,
            ORIG
        ));
        assert!(hits(&h("Accept-Contact", Some("^\\*;video$")), &req, ORIG));
        assert!(!hits(&h("Accept-Contact", Some("audio")), &req, ORIG));
        // Content is case-sensitive unless the pattern says otherwise.
        assert!(!hits(&h("Accept-Contact", Some("VIDEO")), &req, ORIG));
        assert!(hits(&h("Accept-Contact", Some("(?i)VIDEO")), &req, ORIG));
        // Negated content on an absent header holds.
        let neg = tp(
            true,
            &[(
                &[0],
                true,
                "<SIPHeader><Header>Subject</Header><Content>x</Content></SIPHeader>",
            )],
        );
        assert!(hits(&neg, &req, ORIG));
    }

    #[test]
    fn session_case_spt() {
        let req = invite();
        for code in 0..=4 {
            let spt = tp(
                true,
                &[(&[0], false, &format!("<SessionCase>{code}</SessionCase>"))],
            );
            for case in [
                SessionCase::Originating,
                SessionCase::TerminatingRegistered,
                SessionCase::TerminatingUnregistered,
                SessionCase::OriginatingUnregistered,
                SessionCase::OriginatingCdiv,
            ] {
                assert_eq!(hits(&spt, &req, case), i64::from(case.code()) == code);
            }
        }
    }

    #[test]
    fn session_description_line_and_content() {
        let req = invite();
        let sd = |line: &str, content: Option<&str>| {
            with_content("SessionDescription", "Line", line, content)
        };
        assert!(hits(&sd("m", None), &req, ORIG));
        assert!(!hits(&sd("b", None), &req, ORIG));
        assert!(hits(&sd("m", Some("^audio ")), &req, ORIG));
        // The last line ends in a bare LF.
        assert!(hits(&sd("m", Some("^video 4002 RTP/AVP 96$")), &req, ORIG));
        assert!(!hits(&sd("m", Some("^text")), &req, ORIG));
        // Not an SDP body: no lines.
        let other = request(
            "MESSAGE",
            ALICE,
            "Content-Type: text/plain\r\n",
            "m=audio\r\n",
        );
        assert!(!hits(&sd("m", None), &other, ORIG));
        let untyped = request("MESSAGE", ALICE, "", "m=audio\r\n");
        assert!(!hits(&sd("m", None), &untyped, ORIG));
    }

    #[test]
    fn invalid_regex_never_matches_even_negated() {
        let req = invite();
        let bad = "<SIPHeader><Header>Accept-Contact</Header><Content>(</Content></SIPHeader>";
        assert!(!hits(&tp(true, &[(&[0], false, bad)]), &req, ORIG));
        assert!(!hits(&tp(true, &[(&[0], true, bad)]), &req, ORIG));
        let bad_sd = "<SessionDescription><Line>m</Line><Content>[</Content></SessionDescription>";
        assert!(!hits(&tp(true, &[(&[0], true, bad_sd)]), &req, ORIG));
        // In DNF another group still carries the trigger point.
        assert!(hits(
            &tp(false, &[(&[0], false, bad), (&[1], false, INVITE_)]),
            &req,
            ORIG
        ));
        let ifcs = profile(&ifc(0, &tp(true, &[(&[0], false, bad)]), ""));
        let SptCondition::SipHeader {
            content: Some(p), ..
        } = &ifcs[0].trigger_point.as_ref().unwrap().spts()[0].condition
        else {
            unreachable!("SIPHeader read")
        };
        assert!(!p.is_valid());
        assert_eq!(p.source(), "(");
    }

    #[test]
    fn no_trigger_point_always_matches_requests_only() {
        let ifcs = profile(&ifc(0, "", ""));
        assert!(ifcs[0].trigger_point.is_none());
        for req in [
            invite(),
            request("MESSAGE", ALICE, "", ""),
            request("OPTIONS", "sip:x", "", ""),
        ] {
            assert!(ifcs[0].matches(
                &req,
                SessionCase::OriginatingCdiv,
                RegistrationState::Unregistered
            ));
        }
        let response = SipMessage::parse(Bytes::from_static(
            b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nTo: <sip:b@x>;tag=2\r\n\
              From: <sip:a@x>;tag=1\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
        ))
        .unwrap();
        assert!(!ifcs[0].matches(&response, ORIG, REG));
    }

    #[test]
    fn profile_part_indicator_selects_registered_or_unregistered_part() {
        let req = invite();
        let ifcs = profile(&format!(
            "{}{}{}",
            ifc(1, "", "<ProfilePartIndicator>0</ProfilePartIndicator>"),
            ifc(2, "", "<ProfilePartIndicator>1</ProfilePartIndicator>"),
            ifc(3, "", "")
        ));
        let prios = |state| -> Vec<i64> {
            matching(&ifcs, &req, ORIG, state)
                .iter()
                .map(|i| i.priority)
                .collect()
        };
        assert_eq!(prios(RegistrationState::Registered), [1, 3]);
        assert_eq!(prios(RegistrationState::Unregistered), [2, 3]);
    }

    #[test]
    fn matching_keeps_priority_order_whatever_the_document_order() {
        let req = invite();
        let ifcs = profile(&format!(
            "{}{}{}{}",
            ifc(30, "", ""),
            ifc(-5, "", ""),
            ifc(10, &tp(true, &[(&[0], false, MESSAGE)]), ""),
            ifc(20, "", "")
        ));
        let prios: Vec<i64> = matching(&ifcs, &req, ORIG, REG)
            .iter()
            .map(|i| i.priority)
            .collect();
        assert_eq!(prios, [-5, 20, 30]);
    }
}
