//! The location service of the S-CSCF registrar: the registrations (one per registered
//! public identity, with its implicit set and profile) and their contact bindings, and
//! the RFC 3261 §10.3 rules for changing them from a REGISTER:
//!
//! * one binding per contact, keyed by `+sip.instance` and `reg-id` (RFC 5626 §6: a
//!   REGISTER with the same instance and reg-id replaces the flow's binding), by
//!   `+sip.instance` alone (RFC 5627 §7.1.2.2: one binding per instance), else by the
//!   contact URI (§10.3 step 6);
//! * expiry from the contact's `expires` parameter, else the Expires header, else the
//!   default; below the minimum -> 423 with Min-Expires (§10.3 step 7, RFC 3261 §21.4.17),
//!   above the maximum -> shortened;
//! * Call-ID/CSeq ordering: the same Call-ID with a CSeq not above the stored one is
//!   refused without change (§10.3 step 7: 500);
//! * `Contact: *` with Expires 0 removes every binding (§10.3 step 6); any other use of
//!   `*` is a 400.
//!
//! Times are Unix seconds passed in as `now`, so expiry is tested without sleeping.

use std::collections::HashMap;

use bytes::Bytes;
use ims_sip::message::addr::NameAddr;
use ims_sip::message::cseq::CSeq;
use ims_sip::message::delta_seconds::delta_seconds;
use ims_sip::{HeaderName, SipMessage};

use crate::profile::UserProfile;

/// Contacts accepted in one REGISTER at most.
pub const MAX_CONTACTS_PER_REQUEST: usize = 16;
/// Bindings kept per registered identity at most (a REGISTER adding more is refused).
pub const MAX_BINDINGS: usize = 32;

/// One contact bound to a public identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// What identifies the binding: `instance:<id>;reg-id=<n>`, `instance:<id>`, or
    /// `uri:<contact URI>`.
    pub key: String,
    /// The Contact value as registered, without its `expires` parameter.
    pub contact: String,
    /// The Path the REGISTER carried (RFC 3327), topmost first: the route to the UE.
    pub path: Vec<String>,
    /// Call-ID of the last REGISTER that refreshed the binding.
    pub call_id: String,
    /// Its CSeq number.
    pub cseq: u32,
    /// When the binding lapses (Unix seconds).
    pub expires_at: u64,
    /// The CSeq of the REGISTER that started the binding's current set of temporary
    /// GRUUs ([`crate::gruu`]); `None` when the UE asked for no GRUU (no `Supported:
    /// gruu`) or the binding has no `+sip.instance`.
    pub gruu_first_cseq: Option<u32>,
}

/// A registered public identity: who registered it, its implicit set and profile, and
/// its bindings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// The public identity registered (the To of the REGISTER).
    pub impu: String,
    /// The private identity that authenticated.
    pub impi: String,
    /// The profile from the SAA (or the last PPR).
    pub profile: UserProfile,
    /// The contacts, in registration order.
    pub bindings: Vec<Binding>,
}

impl Registration {
    /// The implicit registration set to announce in P-Associated-URI: the profile's
    /// non-barred identities, the registered one first.
    pub fn associated_uris(&self) -> Vec<String> {
        let mut out = vec![self.impu.clone()];
        out.extend(
            self.profile
                .associated
                .iter()
                .filter(|u| **u != self.impu)
                .cloned(),
        );
        out
    }

    /// Drops bindings lapsed at `now`; returns how many went.
    pub fn expire(&mut self, now: u64) -> usize {
        let before = self.bindings.len();
        self.bindings.retain(|b| b.expires_at > now);
        before - self.bindings.len()
    }
}

/// Why a REGISTER cannot change the bindings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContactError {
    /// A Contact, Expires or CSeq header is malformed, or `*` misused (400).
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    /// The expiry asked is below the minimum (423 with Min-Expires).
    #[error("interval too brief")]
    TooBrief,
    /// Same Call-ID and a CSeq not above the stored one (RFC 3261 §10.3 step 7: 500).
    #[error("out-of-order REGISTER")]
    OutOfOrder,
    /// More contacts than [`MAX_CONTACTS_PER_REQUEST`] or [`MAX_BINDINGS`] (403).
    #[error("too many contacts")]
    TooMany,
}

/// The registrar's expiry limits (seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpiryLimits {
    /// Shortest accepted.
    pub min: u32,
    /// Longest granted.
    pub max: u32,
    /// Granted when none is asked.
    pub default: u32,
}

/// What a REGISTER asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContactRequest {
    /// No Contact: a query for the current bindings (RFC 3261 §10.2.3).
    Fetch,
    /// `Contact: *` with Expires 0: remove every binding.
    RemoveAll,
    /// Add, refresh or remove (expires 0) these contacts.
    Update(Vec<ContactUpdate>),
}

/// One contact to add, refresh (expires > 0) or remove (expires 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactUpdate {
    /// The binding key (see [`Binding::key`]).
    pub key: String,
    /// The Contact value without `expires`.
    pub contact: String,
    /// Seconds granted (0: remove), already bounded by the limits.
    pub expires: u32,
}

fn unquote(v: &str) -> &str {
    v.trim().trim_start_matches('"').trim_end_matches('"')
}

fn binding_key(a: &NameAddr<'_>) -> String {
    let instance = a.param("+sip.instance").flatten().map(unquote);
    let reg_id = a.param("reg-id").flatten();
    match (instance, reg_id) {
        (Some(i), Some(r)) => format!("instance:{i};reg-id={r}"),
        (Some(i), None) => format!("instance:{i}"),
        _ => format!("uri:{}", a.uri),
    }
}

fn without_expires(a: &NameAddr<'_>) -> String {
    let mut out = String::new();
    if let Some(d) = a.display {
        out.push_str(d);
        out.push(' ');
    }
    out.push('<');
    out.push_str(a.uri);
    out.push('>');
    for p in a
        .params
        .iter()
        .filter(|p| !p.name.eq_ignore_ascii_case("expires"))
    {
        out.push(';');
        out.push_str(p.name);
        if let Some(v) = p.value {
            out.push('=');
            out.push_str(v);
        }
    }
    out
}

/// RFC 3261 §20.19: values above 2^32-1 are taken as 2^32-1 ([`delta_seconds`]).
fn parse_seconds(v: &str) -> Result<u32, ContactError> {
    delta_seconds(v).ok_or(ContactError::BadRequest(
        "expires is not a number of seconds",
    ))
}

/// The Expires header of `req`, if any.
pub fn expires_header(req: &SipMessage) -> Result<Option<u32>, ContactError> {
    req.headers
        .get_str(&HeaderName::Expires)
        .map(parse_seconds)
        .transpose()
}

/// Reads the Contact headers of a REGISTER and the expiry of each (RFC 3261 §10.3
/// steps 6-7). A non-zero expiry below `limits.min` is [`ContactError::TooBrief`].
pub fn read_contacts(
    req: &SipMessage,
    limits: ExpiryLimits,
) -> Result<ContactRequest, ContactError> {
    let header_expires = expires_header(req)?;
    let mut entries = Vec::new();
    let mut star = false;
    for h in req.headers.get_all(&HeaderName::Contact) {
        for v in h.values() {
            let text = std::str::from_utf8(&v)
                .map_err(|_| ContactError::BadRequest("Contact is not UTF-8"))?;
            let a =
                NameAddr::parse(text).map_err(|_| ContactError::BadRequest("malformed Contact"))?;
            if a.uri == "*" {
                star = true;
                continue;
            }
            if entries.len() >= MAX_CONTACTS_PER_REQUEST {
                return Err(ContactError::TooMany);
            }
            let asked = match a.param("expires").flatten() {
                Some(e) => Some(parse_seconds(e)?),
                None => header_expires,
            };
            let expires = match asked {
                Some(0) => 0,
                Some(e) if e < limits.min => return Err(ContactError::TooBrief),
                Some(e) => e.min(limits.max),
                None => limits.default,
            };
            entries.push(ContactUpdate {
                key: binding_key(&a),
                contact: without_expires(&a),
                expires,
            });
        }
    }
    if star {
        // §10.3 step 6: `*` only alone and with Expires: 0.
        if !entries.is_empty() || header_expires != Some(0) {
            return Err(ContactError::BadRequest(
                "Contact: * needs Expires: 0 and no other contact",
            ));
        }
        return Ok(ContactRequest::RemoveAll);
    }
    if entries.is_empty() {
        return Ok(ContactRequest::Fetch);
    }
    Ok(ContactRequest::Update(entries))
}

/// Call-ID, CSeq number and Path of a REGISTER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestMeta {
    /// Call-ID.
    pub call_id: String,
    /// CSeq number.
    pub cseq: u32,
    /// Path values, topmost first (RFC 3327 §5.3).
    pub path: Vec<String>,
    /// The REGISTER says `Supported: gruu` (RFC 5627 §4.1): its bindings with an
    /// instance get GRUUs.
    pub gruu: bool,
}

impl RequestMeta {
    /// Reads Call-ID, CSeq and Path.
    pub fn of(req: &SipMessage) -> Result<RequestMeta, ContactError> {
        let call_id = req
            .headers
            .get_str(&HeaderName::CallId)
            .ok_or(ContactError::BadRequest("no Call-ID"))?
            .to_string();
        let cseq = req
            .headers
            .get_str(&HeaderName::CSeq)
            .and_then(|v| CSeq::parse(v.as_bytes()).ok())
            .ok_or(ContactError::BadRequest("bad CSeq"))?
            .seq;
        let path = req
            .headers
            .get_all(&HeaderName::Path)
            .flat_map(|h| h.values().collect::<Vec<Bytes>>())
            .filter_map(|v| std::str::from_utf8(&v).ok().map(str::to_string))
            .collect();
        let gruu = crate::gruu::supports_gruu(req);
        Ok(RequestMeta {
            call_id,
            cseq,
            path,
            gruu,
        })
    }
}

/// Applies `updates` to `bindings` at `now` (RFC 3261 §10.3 steps 7-8): refused as a
/// whole if one of them is out of order, so nothing changes on error.
pub fn apply(
    bindings: &[Binding],
    updates: &[ContactUpdate],
    meta: &RequestMeta,
    now: u64,
) -> Result<Vec<Binding>, ContactError> {
    let mut out: Vec<Binding> = bindings.to_vec();
    for u in updates {
        let existing = out.iter().position(|b| b.key == u.key);
        if let Some(i) = existing {
            let b = out.get(i).ok_or(ContactError::OutOfOrder)?;
            if b.call_id == meta.call_id && meta.cseq <= b.cseq {
                return Err(ContactError::OutOfOrder);
            }
            if u.expires == 0 {
                out.remove(i);
                continue;
            }
        } else if u.expires == 0 {
            continue;
        }
        // RFC 5627 §5.3: the temporary GRUUs handed out under one Call-ID stay valid
        // together; a new Call-ID (a rebooted UE) starts a new set.
        let gruu_first_cseq = (meta.gruu && u.key.starts_with("instance:")).then(|| {
            existing
                .and_then(|i| out.get(i))
                .filter(|b| b.call_id == meta.call_id)
                .and_then(|b| b.gruu_first_cseq)
                .unwrap_or(meta.cseq)
        });
        let binding = Binding {
            key: u.key.clone(),
            contact: u.contact.clone(),
            path: meta.path.clone(),
            call_id: meta.call_id.clone(),
            cseq: meta.cseq,
            expires_at: now.saturating_add(u64::from(u.expires)),
            gruu_first_cseq,
        };
        match existing.and_then(|i| out.get_mut(i)) {
            Some(slot) => *slot = binding,
            None => out.push(binding),
        }
    }
    if out.len() > MAX_BINDINGS {
        return Err(ContactError::TooMany);
    }
    Ok(out)
}

/// The registrations held in memory: by registered identity, with an index from every
/// identity of an implicit set to the registration holding it.
#[derive(Debug, Default)]
pub struct Location {
    by_impu: HashMap<String, Registration>,
    alias: HashMap<String, String>,
    /// Bindings over all registrations (kept as they change: `/health` reads it after
    /// every REGISTER).
    contacts: usize,
}

impl Location {
    /// The registration covering `impu` (registered itself, or in its implicit set).
    pub fn get(&self, impu: &str) -> Option<&Registration> {
        let key = self.alias.get(impu).map_or(impu, String::as_str);
        self.by_impu.get(key)
    }

    /// The registration of registered identity `impu` itself (not of an identity of its
    /// implicit set).
    pub fn registered(&self, impu: &str) -> Option<&Registration> {
        self.by_impu.get(impu)
    }

    /// Stores `reg` (replacing any registration of the same identity); a registration
    /// without bindings is removed instead.
    pub fn put(&mut self, reg: Registration) {
        self.remove(&reg.impu.clone());
        if reg.bindings.is_empty() {
            return;
        }
        for a in reg.profile.associated.iter().chain(&reg.profile.barred) {
            self.alias.insert(a.clone(), reg.impu.clone());
        }
        self.alias.insert(reg.impu.clone(), reg.impu.clone());
        self.contacts += reg.bindings.len();
        self.by_impu.insert(reg.impu.clone(), reg);
    }

    /// Removes the registration covering `impu`, returning it.
    pub fn remove(&mut self, impu: &str) -> Option<Registration> {
        let key = self
            .alias
            .get(impu)
            .cloned()
            .unwrap_or_else(|| impu.to_string());
        let reg = self.by_impu.remove(&key)?;
        self.contacts = self.contacts.saturating_sub(reg.bindings.len());
        let ids = reg.profile.associated.iter().chain(&reg.profile.barred);
        for id in ids.chain(std::iter::once(&reg.impu)) {
            if self.alias.get(id) == Some(&key) {
                self.alias.remove(id);
            }
        }
        Some(reg)
    }

    /// The registered identities of private identity `impi`.
    pub fn impus_of(&self, impi: &str) -> Vec<String> {
        self.by_impu
            .values()
            .filter(|r| r.impi == impi)
            .map(|r| r.impu.clone())
            .collect()
    }

    /// The registered identities with a binding lapsed at `now`.
    pub fn lapsed(&self, now: u64) -> Vec<String> {
        self.by_impu
            .values()
            .filter(|r| r.bindings.iter().any(|b| b.expires_at <= now))
            .map(|r| r.impu.clone())
            .collect()
    }

    /// Removes the bindings lapsed at `now` of the registered identities `impus`;
    /// returns the registrations left with none (now removed) and those that lost some
    /// (updated, to persist).
    pub fn expire(&mut self, impus: &[String], now: u64) -> (Vec<Registration>, Vec<Registration>) {
        let (mut gone, mut changed) = (Vec::new(), Vec::new());
        for impu in impus {
            let Some(reg) = self.by_impu.get(impu) else {
                continue;
            };
            if !reg.bindings.iter().any(|b| b.expires_at <= now) {
                continue;
            }
            let Some(mut reg) = self.remove(impu) else {
                continue;
            };
            reg.expire(now);
            if reg.bindings.is_empty() {
                gone.push(reg);
            } else {
                self.put(reg.clone());
                changed.push(reg);
            }
        }
        (gone, changed)
    }

    /// Number of bindings held.
    pub fn contacts(&self) -> usize {
        self.contacts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: ExpiryLimits = ExpiryLimits {
        min: 60,
        max: 7200,
        default: 3600,
    };

    fn register(extra: &str) -> SipMessage {
        let text = format!(
            "REGISTER sip:ims.example.net SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n\
             From: <sip:alice@ims.example.net>;tag=1\r\nTo: <sip:alice@ims.example.net>\r\n\
             Call-ID: c1\r\nCSeq: 5 REGISTER\r\n{extra}Content-Length: 0\r\n\r\n"
        );
        SipMessage::parse(text.into_bytes()).unwrap()
    }

    fn updates(req: &SipMessage) -> Vec<ContactUpdate> {
        match read_contacts(req, LIMITS).unwrap() {
            ContactRequest::Update(u) => u,
            other => panic!("not an update: {other:?}"),
        }
    }

    #[test]
    fn expiry_from_param_then_header_then_default_bounded() {
        let r = register(
            "Contact: <sip:a@10.0.0.1>;expires=120, <sip:b@10.0.0.1>\r\n\
             Contact: <sip:c@10.0.0.1>;expires=99999\r\nExpires: 300\r\n",
        );
        let u = updates(&r);
        assert_eq!(
            u.iter().map(|c| c.expires).collect::<Vec<_>>(),
            [120, 300, 7200]
        );
        assert_eq!(u[0].contact, "<sip:a@10.0.0.1>");
        let d = updates(&register("Contact: <sip:a@10.0.0.1>\r\n"));
        assert_eq!(d[0].expires, 3600);
        // Beyond 2^32-1 is 2^32-1 (RFC 3261 §20.19), then bounded; not a number is 400.
        let huge = register(
            "Contact: <sip:a@10.0.0.1>;expires=99999999999999999999\r\n\
             Contact: <sip:b@10.0.0.1>\r\nExpires: 18446744073709551616\r\n",
        );
        assert_eq!(
            updates(&huge).iter().map(|c| c.expires).collect::<Vec<_>>(),
            [7200, 7200]
        );
        let bad = register("Contact: <sip:a@10.0.0.1>;expires=-5\r\n");
        assert!(matches!(
            read_contacts(&bad, LIMITS),
            Err(ContactError::BadRequest(_))
        ));
    }

    #[test]
    fn too_brief_is_refused_but_zero_removes() {
        let r = register("Contact: <sip:a@10.0.0.1>\r\nExpires: 30\r\n");
        assert_eq!(read_contacts(&r, LIMITS), Err(ContactError::TooBrief));
        let r = register("Contact: <sip:a@10.0.0.1>;expires=0\r\n");
        assert_eq!(updates(&r)[0].expires, 0);
    }

    #[test]
    fn star_only_alone_with_expires_zero() {
        let ok = register("Contact: *\r\nExpires: 0\r\n");
        assert_eq!(read_contacts(&ok, LIMITS), Ok(ContactRequest::RemoveAll));
        let bad = register("Contact: *\r\nExpires: 60\r\n");
        assert!(matches!(
            read_contacts(&bad, LIMITS),
            Err(ContactError::BadRequest(_))
        ));
        let bad = register("Contact: *, <sip:a@x>\r\nExpires: 0\r\n");
        assert!(read_contacts(&bad, LIMITS).is_err());
        assert_eq!(
            read_contacts(&register(""), LIMITS),
            Ok(ContactRequest::Fetch)
        );
    }

    #[test]
    fn keys_by_instance_and_reg_id_else_uri() {
        let r = register(
            "Contact: <sip:a@10.0.0.1>;+sip.instance=\"<urn:uuid:1>\";reg-id=1\r\n\
             Contact: <sip:b@10.0.0.1>;+sip.instance=\"<urn:uuid:2>\"\r\n\
             Contact: <sip:c@10.0.0.1;transport=tcp>;q=0.5\r\n",
        );
        let u = updates(&r);
        assert_eq!(u[0].key, "instance:<urn:uuid:1>;reg-id=1");
        assert_eq!(u[1].key, "instance:<urn:uuid:2>");
        assert_eq!(u[2].key, "uri:sip:c@10.0.0.1;transport=tcp");
        assert_eq!(u[2].contact, "<sip:c@10.0.0.1;transport=tcp>;q=0.5");
    }

    fn meta(call_id: &str, cseq: u32) -> RequestMeta {
        RequestMeta {
            call_id: call_id.into(),
            cseq,
            path: vec!["<sip:pcscf;lr>".into()],
            gruu: false,
        }
    }

    #[test]
    fn same_instance_and_reg_id_replaces_the_binding() {
        let first = updates(&register(
            "Contact: <sip:a@10.0.0.1>;+sip.instance=\"<urn:uuid:1>\";reg-id=1\r\n",
        ));
        let b = apply(&[], &first, &meta("c1", 1), 1000).unwrap();
        let moved = updates(&register(
            "Contact: <sip:a@10.0.0.9>;+sip.instance=\"<urn:uuid:1>\";reg-id=1\r\n",
        ));
        let b = apply(&b, &moved, &meta("c2", 1), 1010).unwrap();
        assert_eq!(b.len(), 1);
        assert!(b[0].contact.contains("10.0.0.9"));
        assert_eq!(b[0].expires_at, 1010 + 3600);
        let other_flow = updates(&register(
            "Contact: <sip:a@10.0.0.9>;+sip.instance=\"<urn:uuid:1>\";reg-id=2\r\n",
        ));
        assert_eq!(
            apply(&b, &other_flow, &meta("c2", 2), 1010).unwrap().len(),
            2
        );
    }

    #[test]
    fn call_id_cseq_ordering() {
        let u = updates(&register("Contact: <sip:a@10.0.0.1>\r\n"));
        let b = apply(&[], &u, &meta("c1", 5), 1000).unwrap();
        assert_eq!(
            apply(&b, &u, &meta("c1", 5), 1001),
            Err(ContactError::OutOfOrder)
        );
        assert_eq!(
            apply(&b, &u, &meta("c1", 4), 1001),
            Err(ContactError::OutOfOrder)
        );
        assert!(apply(&b, &u, &meta("c1", 6), 1001).is_ok());
        // Another Call-ID (a rebooted UE) may use any CSeq.
        assert!(apply(&b, &u, &meta("c9", 1), 1001).is_ok());
    }

    #[test]
    fn expires_zero_removes_only_that_contact() {
        let two = updates(&register("Contact: <sip:a@x>, <sip:b@x>\r\n"));
        let b = apply(&[], &two, &meta("c1", 1), 0).unwrap();
        let rm = updates(&register("Contact: <sip:a@x>;expires=0\r\n"));
        let b = apply(&b, &rm, &meta("c1", 2), 0).unwrap();
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].key, "uri:sip:b@x");
        assert_eq!(b[0].path, ["<sip:pcscf;lr>"]);
    }

    fn profile(ids: &[&str]) -> UserProfile {
        UserProfile {
            raw: Bytes::new(),
            associated: ids.iter().map(|s| s.to_string()).collect(),
            barred: Vec::new(),
            ..UserProfile::default()
        }
    }

    #[test]
    fn location_indexes_the_implicit_set_and_expires() {
        let mut loc = Location::default();
        let u = updates(&register(
            "Contact: <sip:a@x>;expires=60, <sip:b@x>;expires=120\r\n",
        ));
        let reg = Registration {
            impu: "sip:alice@ims.example.net".into(),
            impi: "alice@ims.example.net".into(),
            profile: profile(&["sip:alice@ims.example.net", "tel:+1555"]),
            bindings: apply(&[], &u, &meta("c1", 1), 1000).unwrap(),
        };
        loc.put(reg);
        assert_eq!(
            loc.get("tel:+1555").unwrap().impu,
            "sip:alice@ims.example.net"
        );
        assert_eq!(
            loc.get("tel:+1555").unwrap().associated_uris(),
            ["sip:alice@ims.example.net", "tel:+1555"]
        );
        assert_eq!(loc.contacts(), 2);
        assert_eq!(loc.impus_of("alice@ims.example.net").len(), 1);
        assert!(loc.lapsed(1059).is_empty());
        let lapsed = loc.lapsed(1060);
        assert_eq!(lapsed, ["sip:alice@ims.example.net"]);
        assert_eq!(
            loc.expire(&lapsed, 1059),
            (vec![], vec![]),
            "nothing lapsed yet"
        );
        let (gone, changed) = loc.expire(&lapsed, 1060);
        assert!(gone.is_empty());
        assert_eq!(changed.len(), 1);
        assert_eq!(loc.contacts(), 1);
        assert!(
            loc.registered("tel:+1555").is_none(),
            "only the registered identity"
        );
        assert!(loc.registered("sip:alice@ims.example.net").is_some());
        let (gone, _) = loc.expire(&loc.lapsed(1120), 1120);
        assert_eq!(gone.len(), 1);
        assert!(loc.get("tel:+1555").is_none());
        assert_eq!(loc.contacts(), 0);
    }
}
