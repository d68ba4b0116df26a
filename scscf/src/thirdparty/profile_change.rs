//! What a new profile (PPR, TS 29.228 §6.1.4) changes for the application servers told
//! of a registration.
//!
//! TS 24.229 §5.4.1.7 sends third-party REGISTERs after the registration procedures
//! (§5.4.1.2 registration and re-registration, §5.4.1.4 user-initiated and §5.4.1.5
//! network-initiated de-registration); a profile change is none of them, and the
//! standard asks for nothing toward the ASs on it. Left as it is, an AS whose REGISTER
//! iFC the new profile no longer holds would keep the user registered until the
//! registration's expiry passes, and would never hear of its end (the de-registration's
//! iFCs are those of the new profile). So, for each registered identity whose profile
//! changes, the S-CSCF does toward the ASs the new profile drops what a network-
//! initiated de-registration does: a de-REGISTER (Expires 0), to each AS whose REGISTER
//! iFC in the old profile matches a de-registration of the identity and none in the new
//! profile does, in the old profile's priority order. When the PPR takes the registered
//! identity itself out of the implicit set, no iFC of the new profile serves it: every
//! such AS gets its de-REGISTER. The other identities of an implicit set are never named
//! in a third-party REGISTER (its To is the registered identity), so their removal
//! changes nothing for the ASs.
//!
//! An AS that only the new profile names gets nothing now: the standard has no
//! third-party REGISTER for a profile change, and the AS hears of the user at the UE's
//! next re-registration.

use ims_sip::SipMessage;

use crate::ifc::{ApplicationServer, RegistrationType};
use crate::location::Registration;

/// The ASs the registration `old` notified and its new version `new` no longer does,
/// in `old`'s iFC priority order: those whose REGISTER iFC matches `deregister` (the
/// S-CSCF's de-REGISTER of the identity) under `old`'s profile and under no iFC of
/// `new`'s (matched by `ServerName`).
pub fn dropped(
    old: &Registration,
    new: &Registration,
    deregister: &SipMessage,
) -> Vec<ApplicationServer> {
    let notified = |reg: &Registration| -> Vec<ApplicationServer> {
        reg.profile
            .ifcs(&reg.impu)
            .iter()
            .filter(|i| i.matches_register(deregister, RegistrationType::De))
            .map(|i| i.application_server.clone())
            .collect()
    };
    let kept = notified(new);
    let mut out: Vec<ApplicationServer> = Vec::new();
    for server in notified(old) {
        let still = kept.iter().any(|k| k.server_name == server.server_name);
        let twice = out.iter().any(|o| o.server_name == server.server_name);
        if !still && !twice {
            out.push(server);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::profile::UserProfile;
    use crate::thirdparty::request::ThirdPartyRegister;

    const ALICE: &str = "sip:alice@ims.example.net";

    /// A REGISTER iFC of `prio` toward `sip:<name>@x`; `types` the RegistrationTypes
    /// (none: every kind).
    fn register_ifc(prio: i64, name: &str, types: &[u8]) -> String {
        let ext: String = types
            .iter()
            .map(|t| format!("<RegistrationType>{t}</RegistrationType>"))
            .collect();
        let ext = if ext.is_empty() {
            ext
        } else {
            format!("<Extension>{ext}</Extension>")
        };
        format!(
            "<InitialFilterCriteria><Priority>{prio}</Priority><TriggerPoint>\
             <ConditionTypeCNF>1</ConditionTypeCNF><SPT><ConditionNegated>0\
             </ConditionNegated><Group>0</Group><Method>REGISTER</Method>{ext}</SPT>\
             </TriggerPoint><ApplicationServer><ServerName>sip:{name}@x</ServerName>\
             </ApplicationServer></InitialFilterCriteria>"
        )
    }

    /// INVITE only: never asks for third-party REGISTERs.
    fn invite_ifc(prio: i64, name: &str) -> String {
        register_ifc(prio, name, &[]).replace("REGISTER", "INVITE")
    }

    fn registration(identities: &[&str], ifcs: &[String]) -> Registration {
        let ids: String = identities
            .iter()
            .map(|i| format!("<PublicIdentity><Identity>{i}</Identity></PublicIdentity>"))
            .collect();
        let doc = format!(
            "<IMSSubscription><PrivateID>alice@ims.example.net</PrivateID>\
             <ServiceProfile>{ids}{}</ServiceProfile></IMSSubscription>",
            ifcs.concat()
        );
        Registration {
            impu: ALICE.into(),
            impi: "alice@ims.example.net".into(),
            profile: UserProfile::parse(Bytes::from(doc)).unwrap(),
            bindings: Vec::new(),
        }
    }

    fn deregister() -> SipMessage {
        ThirdPartyRegister {
            server: "sip:scscf@x",
            own_uri: "sip:scscf@x",
            impu: ALICE,
            expires: 0,
            register: None,
            body: None,
        }
        .build()
    }

    fn names(servers: &[ApplicationServer]) -> Vec<&str> {
        servers.iter().map(|s| s.server_name.as_str()).collect()
    }

    #[test]
    fn an_as_whose_register_ifc_goes_is_dropped_in_priority_order() {
        let old = registration(
            &[ALICE],
            &[
                register_ifc(1, "as1", &[]),
                register_ifc(2, "as2", &[]),
                register_ifc(3, "as3", &[]),
            ],
        );
        let new = registration(&[ALICE], &[register_ifc(2, "as2", &[])]);
        assert_eq!(
            names(&dropped(&old, &new, &deregister())),
            ["sip:as1@x", "sip:as3@x"]
        );
    }

    #[test]
    fn an_as_kept_moved_or_only_added_gets_nothing() {
        let old = registration(&[ALICE], &[register_ifc(1, "as1", &[])]);
        // as1 moved to another priority, as2 added.
        let new = registration(
            &[ALICE],
            &[register_ifc(2, "as2", &[]), register_ifc(5, "as1", &[])],
        );
        assert!(dropped(&old, &new, &deregister()).is_empty());
        assert!(dropped(&old, &old, &deregister()).is_empty());
    }

    #[test]
    fn an_ifc_that_now_only_matches_sessions_drops_the_as() {
        let old = registration(&[ALICE], &[register_ifc(1, "as1", &[])]);
        let new = registration(&[ALICE], &[invite_ifc(1, "as1")]);
        assert_eq!(names(&dropped(&old, &new, &deregister())), ["sip:as1@x"]);
    }

    #[test]
    fn an_as_not_told_of_deregistrations_is_not_told_now_either() {
        // RegistrationType INITIAL and RE only (0, 1): no de-REGISTER ever.
        let old = registration(
            &[ALICE],
            &[
                register_ifc(1, "as1", &[0, 1]),
                register_ifc(2, "as2", &[2]),
            ],
        );
        let new = registration(&[ALICE], &[]);
        assert_eq!(names(&dropped(&old, &new, &deregister())), ["sip:as2@x"]);
    }

    #[test]
    fn the_registered_identity_taken_out_of_the_set_drops_every_as() {
        let other = "sip:alice-work@ims.example.net";
        let old = registration(
            &[ALICE, other],
            &[register_ifc(1, "as1", &[]), register_ifc(2, "as2", &[])],
        );
        let new = registration(
            &[other],
            &[register_ifc(1, "as1", &[]), register_ifc(2, "as2", &[])],
        );
        assert_eq!(
            names(&dropped(&old, &new, &deregister())),
            ["sip:as1@x", "sip:as2@x"]
        );
        // Another identity of the set going changes nothing for the ASs.
        let new = registration(
            &[ALICE],
            &[register_ifc(1, "as1", &[]), register_ifc(2, "as2", &[])],
        );
        assert!(dropped(&old, &new, &deregister()).is_empty());
    }
}
