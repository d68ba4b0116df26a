//! What a change of a registration means for the reg event package: the full state of
//! an implicit set (RFC 3680 §5.4, TS 24.229 §5.4.2.1.2: one `<registration>` per
//! non-barred identity of the set, each with every contact) and the partial state
//! between two versions of a registration (§5.4.2.1.2: only what changed), with the
//! contact events of RFC 3680 §5.3 chosen by what caused the change.

use std::collections::HashSet;

use ims_diameter::cx::ReasonCode;
use ims_sip::message::addr::NameAddr;
use sha2::{Digest, Sha256};

use super::reginfo::{ContactEvent, ContactInfo, RegistrationInfo, RegistrationState};
use crate::gruu::{ContactGruus, Gruus};
use crate::location::{Binding, Registration};

/// What changed a registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// A REGISTER of the UE (initial, re- or de-registration).
    Register,
    /// Bindings lapsed.
    Expiry,
    /// The HSS de-registered the user (RTR, TS 29.228 §6.1.3), with its reason.
    Network(ReasonCode),
    /// The HSS pushed a new profile (PPR, TS 29.228 §6.1.4): identities added to or
    /// removed from the implicit set.
    Profile,
}

impl Cause {
    /// The event of a contact this cause removes: TS 24.229 §5.4.1.5 for the network's
    /// de-registration (`rejected` when the user may not re-register, i.e.
    /// PERMANENT_TERMINATION, else `deactivated`: the UE is expected to register again).
    pub fn removal(self) -> ContactEvent {
        match self {
            Cause::Register => ContactEvent::Unregistered,
            Cause::Expiry => ContactEvent::Expired,
            Cause::Network(ReasonCode::PermanentTermination) | Cause::Profile => {
                ContactEvent::Rejected
            }
            Cause::Network(_) => ContactEvent::Deactivated,
        }
    }
}

/// A short stable id of `text` (registration ids from the identity, contact ids from
/// the binding key): the same in every NOTIFY, and after a restart.
fn id_of(prefix: &str, text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    format!("{prefix}{}", hex::encode(&digest[..6]))
}

fn unquote(v: &str) -> &str {
    let v = v.trim();
    v.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(v)
}

/// The GRUUs of a binding for the identity reported, when it has some.
type GruusOf<'a> = dyn Fn(&Binding) -> Option<ContactGruus> + 'a;

/// How the GRUUs of `reg`'s bindings are reported under identity `aor` (RFC 5628).
fn gruus_for<'a>(
    gruus: Option<&'a Gruus>,
    reg: Option<&'a Registration>,
    aor: &'a str,
) -> impl Fn(&Binding) -> Option<ContactGruus> + 'a {
    move |b: &Binding| gruus?.of(reg?, aor, b)
}

/// A binding as a `<contact>` with `event` (active ones with their seconds left), with
/// the GRUUs `gruus` gives it.
pub fn contact_info(
    b: &Binding,
    event: ContactEvent,
    now: u64,
    gruus: &GruusOf<'_>,
) -> ContactInfo {
    let active = event.state() == super::reginfo::ContactState::Active;
    let expires = active.then(|| b.expires_at.saturating_sub(now));
    let mut info = ContactInfo {
        id: id_of("c", &b.key),
        event,
        expires,
        retry_after: None,
        q: None,
        uri: b.contact.clone(),
        display_name: None,
        unknown_params: Vec::new(),
        gruus: gruus(b),
    };
    // The stored value is a name-addr the registrar wrote (`without_expires`).
    if let Ok(a) = NameAddr::parse(&b.contact) {
        info.uri = a.uri.to_string();
        info.display_name = a
            .display
            .map(|d| unquote(d).to_string())
            .filter(|d| !d.is_empty());
        for p in a.params.iter() {
            if p.name.eq_ignore_ascii_case("q") {
                info.q = p.value.map(str::to_string);
            } else {
                let value = p.value.map(|v| unquote(v).to_string());
                info.unknown_params.push((p.name.to_string(), value));
            }
        }
    }
    info
}

/// The identities a registration reports: its non-barred implicit set, the registered
/// one first.
pub fn reported(reg: &Registration) -> Vec<String> {
    reg.associated_uris()
}

/// The full state of `reg` (`None`: not registered: `resource` alone, terminated), with
/// the contacts' GRUUs when `gruus` is given.
pub fn full_state(
    reg: Option<&Registration>,
    resource: &str,
    now: u64,
    gruus: Option<&Gruus>,
) -> Vec<RegistrationInfo> {
    let Some(reg) = reg else {
        return vec![RegistrationInfo {
            aor: resource.to_string(),
            id: id_of("r", resource),
            state: RegistrationState::Terminated,
            contacts: Vec::new(),
        }];
    };
    reported(reg)
        .into_iter()
        .map(|aor| {
            let contacts: Vec<ContactInfo> = {
                let of = gruus_for(gruus, Some(reg), &aor);
                reg.bindings
                    .iter()
                    .map(|b| contact_info(b, ContactEvent::Registered, now, &of))
                    .collect()
            };
            RegistrationInfo {
                id: id_of("r", &aor),
                state: if contacts.is_empty() {
                    RegistrationState::Terminated
                } else {
                    RegistrationState::Active
                },
                contacts,
                aor,
            }
        })
        .collect()
}

/// The contacts that changed from `old` to `new` bindings.
fn contact_changes(
    old: &[Binding],
    new: &[Binding],
    cause: Cause,
    added: ContactEvent,
    now: u64,
    gruus: &GruusOf<'_>,
) -> Vec<ContactInfo> {
    let mut out = Vec::new();
    for b in new {
        match old.iter().find(|o| o.key == b.key) {
            None => out.push(contact_info(b, added, now, gruus)),
            Some(o) if o == b => {}
            // A REGISTER refreshes (whatever expiry it asks); anything else that
            // brings a binding's end closer shortens it.
            Some(o) if cause != Cause::Register && b.expires_at < o.expires_at => {
                out.push(contact_info(b, ContactEvent::Shortened, now, gruus));
            }
            Some(_) => out.push(contact_info(b, ContactEvent::Refreshed, now, gruus)),
        }
    }
    for o in old.iter().filter(|o| !new.iter().any(|b| b.key == o.key)) {
        out.push(contact_info(o, cause.removal(), now, gruus));
    }
    out
}

/// The partial state between `old` and `new` (either `None`: not registered) of one
/// implicit set, caused by `cause`: each identity whose contacts or state changed, with
/// the contacts that changed (with their GRUUs when `gruus` is given).
pub fn changes(
    old: Option<&Registration>,
    new: Option<&Registration>,
    cause: Cause,
    now: u64,
    gruus: Option<&Gruus>,
) -> Vec<RegistrationInfo> {
    let old_ids: Vec<String> = old.map(reported).unwrap_or_default();
    let new_ids: Vec<String> = new.map(reported).unwrap_or_default();
    let old_set: HashSet<&str> = old_ids.iter().map(String::as_str).collect();
    let none: &[Binding] = &[];
    let old_b = old.map_or(none, |r| r.bindings.as_slice());
    let new_b = new.map_or(none, |r| r.bindings.as_slice());
    let mut out = Vec::new();
    for aor in &new_ids {
        let of = gruus_for(gruus, new.or(old), aor);
        let (contacts, state) = if old_set.contains(aor.as_str()) {
            let c = contact_changes(old_b, new_b, cause, ContactEvent::Registered, now, &of);
            (c, RegistrationState::Active)
        } else {
            // New in the set: all its contacts appear (by a REGISTER, or by the
            // profile: administratively created).
            let added = if cause == Cause::Profile {
                ContactEvent::Created
            } else {
                ContactEvent::Registered
            };
            let c = contact_changes(none, new_b, cause, added, now, &of);
            (c, RegistrationState::Active)
        };
        if !contacts.is_empty() {
            out.push(RegistrationInfo {
                aor: aor.clone(),
                id: id_of("r", aor),
                state,
                contacts,
            });
        }
    }
    for aor in old_ids.iter().filter(|a| !new_ids.contains(a)) {
        let of = gruus_for(gruus, old, aor);
        out.push(RegistrationInfo {
            aor: aor.clone(),
            id: id_of("r", aor),
            state: RegistrationState::Terminated,
            contacts: contact_changes(old_b, none, cause, ContactEvent::Registered, now, &of),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::reg;

    fn events(infos: &[RegistrationInfo]) -> Vec<(String, RegistrationState, Vec<&str>)> {
        infos
            .iter()
            .map(|r| {
                let e = r.contacts.iter().map(|c| c.event.as_str()).collect();
                (r.aor.clone(), r.state, e)
            })
            .collect()
    }

    #[test]
    fn contacts_carry_their_gruus_when_the_ue_asked() {
        let gruus = Gruus::new([1; 32], "127.0.0.1:5080");
        let mut r = reg("sip:alice@x", &[("sip:a@10.0.0.1", 5000)]);
        // No GRUU asked: none reported.
        let full = full_state(Some(&r), "sip:alice@x", 1000, Some(&gruus));
        assert!(full[0].contacts[0].gruus.is_none());
        r.bindings[0].gruu_first_cseq = Some(3);
        let full = full_state(Some(&r), "sip:alice@x", 1000, Some(&gruus));
        let g = full[0].contacts[0].gruus.clone().unwrap();
        assert_eq!(g.public, "sip:alice@x;gr=urn:uuid:1");
        assert_eq!(g.first_cseq, 3);
        assert_eq!(
            Some(g.temporary.clone()),
            gruus.temporary("sip:alice@x", "urn:uuid:1", "call-1", 7)
        );
        // The tel URI of the set reports the registered SIP identity's GRUUs.
        assert_eq!(full[1].aor, "tel:+1555");
        assert_eq!(full[1].contacts[0].gruus, Some(g.clone()));
        // A change reports them too, a removed contact with the GRUUs it had.
        let c = changes(None, Some(&r), Cause::Register, 1000, Some(&gruus));
        assert_eq!(c[0].contacts[0].gruus, Some(g.clone()));
        let c = changes(Some(&r), None, Cause::Expiry, 1000, Some(&gruus));
        assert_eq!(c[0].contacts[0].gruus, Some(g));
    }

    #[test]
    fn full_state_reports_every_identity_of_the_set() {
        let r = reg("sip:alice@x", &[("sip:a@10.0.0.1", 5000)]);
        let full = full_state(Some(&r), "sip:alice@x", 1000, None);
        assert_eq!(full.len(), 2, "alice and tel:+1555");
        assert_eq!(full[0].aor, "sip:alice@x");
        assert_eq!(full[1].aor, "tel:+1555");
        let c = &full[0].contacts[0];
        assert_eq!(c.uri, "sip:a@10.0.0.1");
        assert_eq!(c.expires, Some(4000));
        assert_eq!(
            c.unknown_params,
            [(
                "+sip.instance".to_string(),
                Some("<urn:uuid:1>".to_string())
            )]
        );
        assert_eq!(full[0].contacts[0].id, full[1].contacts[0].id);
        let none = full_state(None, "sip:alice@x", 1000, None);
        assert_eq!(none[0].state, RegistrationState::Terminated);
    }

    #[test]
    fn register_refresh_and_removal() {
        let one = reg("sip:alice@x", &[("sip:a@10.0.0.1", 5000)]);
        let initial = changes(None, Some(&one), Cause::Register, 1000, None);
        assert_eq!(
            events(&initial)[0],
            (
                "sip:alice@x".into(),
                RegistrationState::Active,
                vec!["registered"]
            )
        );
        let mut refreshed = one.clone();
        refreshed.bindings[0].expires_at = 6000;
        let re = changes(Some(&one), Some(&refreshed), Cause::Register, 1000, None);
        assert_eq!(events(&re)[0].2, ["refreshed"]);
        // A re-registration asking a shorter expiry is still a refresh.
        let mut shorter = one.clone();
        shorter.bindings[0].expires_at = 2000;
        let re = changes(Some(&one), Some(&shorter), Cause::Register, 1000, None);
        assert_eq!(events(&re)[0].2, ["refreshed"]);
        let nothing = changes(Some(&one), Some(&one), Cause::Register, 1000, None);
        assert!(nothing.is_empty(), "no change, no registration element");
        let gone = changes(Some(&one), None, Cause::Register, 1000, None);
        assert_eq!(
            events(&gone),
            [
                (
                    "sip:alice@x".into(),
                    RegistrationState::Terminated,
                    vec!["unregistered"]
                ),
                (
                    "tel:+1555".into(),
                    RegistrationState::Terminated,
                    vec!["unregistered"]
                ),
            ]
        );
        assert_eq!(gone[0].contacts[0].expires, None);
    }

    #[test]
    fn one_contact_of_two_removed_keeps_the_registration_active() {
        let two = reg(
            "sip:alice@x",
            &[("sip:a@10.0.0.1", 5000), ("sip:b@10.0.0.2", 5000)],
        );
        let mut one = two.clone();
        one.bindings.remove(1);
        let c = changes(Some(&two), Some(&one), Cause::Expiry, 5000, None);
        assert_eq!(
            events(&c)[0],
            (
                "sip:alice@x".into(),
                RegistrationState::Active,
                vec!["expired"]
            )
        );
    }

    #[test]
    fn the_network_deactivates_or_rejects() {
        let one = reg("sip:alice@x", &[("sip:a@10.0.0.1", 5000)]);
        for (reason, event) in [
            (ReasonCode::PermanentTermination, "rejected"),
            (ReasonCode::NewServerAssigned, "deactivated"),
            (ReasonCode::ServerChange, "deactivated"),
            (ReasonCode::RemoveScscf, "deactivated"),
        ] {
            let c = changes(Some(&one), None, Cause::Network(reason), 1000, None);
            assert_eq!(events(&c)[0].2, [event], "{reason:?}");
            assert_eq!(c[0].state, RegistrationState::Terminated);
        }
        let c = changes(Some(&one), None, Cause::Expiry, 1000, None);
        assert_eq!(events(&c)[0].2, ["expired"]);
    }

    #[test]
    fn a_shortened_binding() {
        let one = reg("sip:alice@x", &[("sip:a@10.0.0.1", 5000)]);
        let mut short = one.clone();
        short.bindings[0].expires_at = 1500;
        let c = changes(Some(&one), Some(&short), Cause::Profile, 1000, None);
        assert_eq!(events(&c)[0].2, ["shortened"]);
        assert_eq!(c[0].contacts[0].expires, Some(500));
    }

    #[test]
    fn a_profile_change_adds_and_removes_identities() {
        let one = reg("sip:alice@x", &[("sip:a@10.0.0.1", 5000)]);
        let mut other = one.clone();
        other.profile.associated = vec!["sip:alice@x".into(), "sip:alias@x".into()];
        let c = changes(Some(&one), Some(&other), Cause::Profile, 1000, None);
        assert_eq!(
            events(&c),
            [
                (
                    "sip:alias@x".into(),
                    RegistrationState::Active,
                    vec!["created"]
                ),
                (
                    "tel:+1555".into(),
                    RegistrationState::Terminated,
                    vec!["rejected"]
                ),
            ]
        );
    }
}
