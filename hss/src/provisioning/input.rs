//! What a client writes, checked field by field before it reaches the store. Passwords
//! become digest HA1 here (RFC 2617 §3.2.2.2, with [`Ha1::compute`]); OP becomes OPc
//! (TS 35.206 §4.1, with [`milenage::opc`]). Neither the password, nor K, OP or OPc is
//! ever logged or returned.

use std::collections::HashSet;

use ims_sip::auth::milenage::{self, Block};
use ims_sip::auth::{Algorithm, Ha1, Sqn};
use serde::{Deserialize, Deserializer};
use utoipa::ToSchema;

use crate::store::{
    default_profile, AkaSecrets, CloudProfile, PrivateIdentityData, PublicIdentity, ServiceProfile,
    Subscription, SubscriptionData,
};

/// A field that is not acceptable: answered with 400 naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct FieldError {
    /// Path of the field, e.g. `private_identities[0].aka.k`.
    pub field: String,
    /// Why it is refused.
    pub reason: String,
}

impl FieldError {
    /// `field` is wrong because of `reason`.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// A subscriber as written by `POST` and `PUT`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscriberInput {
    /// Subscription id (letters, digits, `.`, `_`, `-`, `@`, `+`); generated when absent.
    #[serde(default)]
    pub id: Option<String>,
    /// Keystone project and user.
    #[serde(default)]
    pub cloud: CloudProfile,
    /// Private identities with their credentials (at least one).
    pub private_identities: Vec<PrivateIdentityInput>,
    /// Public identities (at least one); the first is the default public identity.
    /// Identities written without `implicit_set` are in the implicit registration set
    /// of the first (so all of them, when none has a number).
    pub public_identities: Vec<PublicIdentityInput>,
    /// Service profiles; a profile named `default` without iFCs is added when an identity
    /// uses it and it is not listed.
    #[serde(default)]
    pub service_profiles: Vec<ServiceProfile>,
    /// Visited networks where roaming is allowed.
    #[serde(default)]
    pub roaming_networks: Vec<String>,
}

/// `PATCH`: each section given replaces the stored one; absent sections stay.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscriberPatch {
    /// Keystone project and user.
    #[serde(default)]
    pub cloud: Option<CloudProfile>,
    /// Private identities; one listed without credentials keeps its stored ones.
    #[serde(default)]
    pub private_identities: Option<Vec<PrivateIdentityInput>>,
    /// Public identities (written as in [`SubscriberInput`]).
    #[serde(default)]
    pub public_identities: Option<Vec<PublicIdentityInput>>,
    /// Service profiles.
    #[serde(default)]
    pub service_profiles: Option<Vec<ServiceProfile>>,
    /// Roaming networks.
    #[serde(default)]
    pub roaming_networks: Option<Vec<String>>,
}

/// A private identity as written.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PrivateIdentityInput {
    /// The IMPI, e.g. `alice@ims.example.net`.
    pub impi: String,
    /// Digest realm; defaults to the HSS's home domain.
    #[serde(default)]
    pub realm: Option<String>,
    /// Password for SIP Digest; only its HA1 is stored.
    #[serde(default)]
    pub password: Option<String>,
    /// AKA keys.
    #[serde(default)]
    pub aka: Option<AkaInput>,
}

/// A public identity as written.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublicIdentityInput {
    /// `sip:`, `sips:` or `tel:` URI.
    pub impu: String,
    /// Barring-Indication (TS 29.228 §6.5.2.1.1).
    #[serde(default)]
    pub barred: bool,
    /// Implicit registration set (TS 23.228 §4.3.3.3, TS 29.228 §6.5): identities with
    /// the same number register and de-register together, and the S-CSCF learns all of
    /// them (User-Data, P-Associated-URI). Absent: the set of the first public identity
    /// listed; when the first has none either, the identities without a number form one
    /// set together. `null`: a set of its own.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>, nullable)]
    pub implicit_set: Option<Option<i64>>,
    /// Name of the service profile this identity uses (default `default`).
    #[serde(default = "default_profile")]
    pub service_profile: String,
}

/// A field that is present, `null` or not: tells an explicit `null` from an absent one.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<i64>>, D::Error> {
    Option::<i64>::deserialize(d).map(Some)
}

/// The public identities to store: each one written without `implicit_set` takes the
/// set of the first identity, or, when the first has no number, the smallest number no
/// identity of `list` gives (TS 23.228 §4.3.3.3: registering one registers the set).
fn public_identities(list: Vec<PublicIdentityInput>) -> Vec<PublicIdentity> {
    let default_set = match list.first().and_then(|p| p.implicit_set) {
        Some(Some(n)) => n,
        _ => {
            let taken: HashSet<i64> = list
                .iter()
                .filter_map(|p| p.implicit_set.flatten())
                .collect();
            (1..).find(|n| !taken.contains(n)).unwrap_or(i64::MAX)
        }
    };
    list.into_iter()
        .map(|p| PublicIdentity {
            impu: p.impu,
            barred: p.barred,
            implicit_set: p.implicit_set.unwrap_or(Some(default_set)),
            service_profile: p.service_profile,
        })
        .collect()
}

/// AKA credentials as written (hex).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AkaInput {
    /// K, 32 hex digits.
    pub k: String,
    /// OPc, 32 hex digits (give OPc or OP).
    #[serde(default)]
    pub opc: Option<String>,
    /// OP, 32 hex digits; OPc is derived from it and stored instead.
    #[serde(default)]
    pub op: Option<String>,
    /// AMF, 4 hex digits (default `8000`).
    #[serde(default)]
    pub amf: Option<String>,
    /// Initial SQN_HE (default 0 for a new identity; absent on update keeps it).
    #[serde(default)]
    pub sqn: Option<u64>,
}

fn block(text: &str, field: &str) -> Result<Block, FieldError> {
    hex::decode(text)
        .ok()
        .and_then(|v| Block::try_from(v).ok())
        .ok_or_else(|| FieldError::new(field, "must be 32 hex digits"))
}

fn no_space(text: &str, field: &str, what: &str) -> Result<(), FieldError> {
    if text.is_empty()
        || text.len() > 255
        || text.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(FieldError::new(
            field,
            format!("must be {what} (1-255 characters, no spaces)"),
        ));
    }
    Ok(())
}

/// Checks a subscription id.
pub fn check_id(id: &str) -> Result<(), FieldError> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-@+".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(FieldError::new(
            "id",
            "must be 1-128 letters, digits or . _ - @ +",
        ))
    }
}

impl PrivateIdentityInput {
    fn into_data(self, i: usize, default_realm: &str) -> Result<PrivateIdentityData, FieldError> {
        let f = |name: &str| format!("private_identities[{i}].{name}");
        no_space(&self.impi, &f("impi"), "a private identity")?;
        let realm = self.realm.unwrap_or_else(|| default_realm.to_string());
        no_space(&realm, &f("realm"), "a realm")?;
        let digest_ha1 = match self.password {
            Some(p) if p.is_empty() => {
                return Err(FieldError::new(f("password"), "must not be empty"))
            }
            Some(p) => Some(Ha1::compute(
                Algorithm::Md5,
                &self.impi,
                &realm,
                p.as_bytes(),
            )),
            None => None,
        };
        let aka = match self.aka {
            None => None,
            Some(a) => {
                let k = block(&a.k, &f("aka.k"))?;
                let opc = match (a.opc, a.op) {
                    (Some(opc), None) => block(&opc, &f("aka.opc"))?,
                    (None, Some(op)) => milenage::opc(&k, &block(&op, &f("aka.op"))?),
                    _ => {
                        return Err(FieldError::new(
                            f("aka.opc"),
                            "give exactly one of opc and op",
                        ))
                    }
                };
                let amf_text = a.amf.unwrap_or_else(|| "8000".to_string());
                let amf = hex::decode(&amf_text)
                    .ok()
                    .and_then(|v| <[u8; 2]>::try_from(v).ok())
                    .ok_or_else(|| FieldError::new(f("aka.amf"), "must be 4 hex digits"))?;
                let sqn = a
                    .sqn
                    .map(|s| {
                        Sqn::new(s)
                            .ok_or_else(|| FieldError::new(f("aka.sqn"), "must be below 2^48"))
                    })
                    .transpose()?;
                Some(AkaSecrets { k, opc, amf, sqn })
            }
        };
        Ok(PrivateIdentityData {
            impi: self.impi,
            realm,
            digest_ha1,
            aka,
        })
    }
}

fn private_identities(
    list: Vec<PrivateIdentityInput>,
    realm: &str,
) -> Result<Vec<PrivateIdentityData>, FieldError> {
    if list.is_empty() {
        return Err(FieldError::new(
            "private_identities",
            "at least one is needed",
        ));
    }
    list.into_iter()
        .enumerate()
        .map(|(i, p)| p.into_data(i, realm))
        .collect()
}

fn check_public_identities(list: &[PublicIdentityInput]) -> Result<(), FieldError> {
    if list.is_empty() {
        return Err(FieldError::new(
            "public_identities",
            "at least one is needed",
        ));
    }
    for (i, p) in list.iter().enumerate() {
        let field = format!("public_identities[{i}].impu");
        no_space(&p.impu, &field, "a sip:, sips: or tel: URI")?;
        let lower = p.impu.to_ascii_lowercase();
        let scheme_ok = ["sip:", "sips:", "tel:"]
            .iter()
            .any(|s| lower.starts_with(s) && lower.len() > s.len());
        if !scheme_ok {
            return Err(FieldError::new(field, "must be a sip:, sips: or tel: URI"));
        }
    }
    Ok(())
}

fn check_profiles(list: &[ServiceProfile]) -> Result<(), FieldError> {
    for (i, p) in list.iter().enumerate() {
        no_space(&p.name, &format!("service_profiles[{i}].name"), "a name")?;
        for (j, ifc) in p.ifcs.iter().enumerate() {
            let field = format!("service_profiles[{i}].ifcs[{j}].application_server.server_name");
            let lower = ifc.application_server.server_name.to_ascii_lowercase();
            if !(lower.starts_with("sip:") || lower.starts_with("sips:")) {
                return Err(FieldError::new(field, "must be a sip: or sips: URI"));
            }
        }
    }
    Ok(())
}

fn check_roaming(list: &[String]) -> Result<(), FieldError> {
    for (i, n) in list.iter().enumerate() {
        no_space(n, &format!("roaming_networks[{i}]"), "a network identifier")?;
    }
    Ok(())
}

fn check_cloud(c: &CloudProfile) -> Result<(), FieldError> {
    if let Some(p) = &c.project_id {
        no_space(p, "cloud.project_id", "a project id")?;
    }
    if let Some(u) = &c.user_id {
        no_space(u, "cloud.user_id", "a user id")?;
    }
    Ok(())
}

/// Adds the implicit empty `default` profile when an identity uses it.
fn with_default_profile(mut data: SubscriptionData) -> SubscriptionData {
    let default = default_profile();
    let used = data
        .public_identities
        .iter()
        .any(|p| p.service_profile == default);
    if used && !data.service_profiles.iter().any(|p| p.name == default) {
        data.service_profiles.push(ServiceProfile {
            name: default,
            ifcs: Vec::new(),
        });
    }
    data
}

impl SubscriberInput {
    /// Validated store data; `realm` is the default digest realm.
    pub fn into_data(self, realm: &str) -> Result<SubscriptionData, FieldError> {
        if let Some(id) = &self.id {
            check_id(id)?;
        }
        check_cloud(&self.cloud)?;
        check_public_identities(&self.public_identities)?;
        check_profiles(&self.service_profiles)?;
        check_roaming(&self.roaming_networks)?;
        Ok(with_default_profile(SubscriptionData {
            cloud: self.cloud,
            private_identities: private_identities(self.private_identities, realm)?,
            public_identities: public_identities(self.public_identities),
            service_profiles: self.service_profiles,
            roaming_networks: self.roaming_networks,
        }))
    }
}

impl SubscriberPatch {
    /// `current` with the sections of this patch replaced, validated.
    pub fn apply(self, current: Subscription, realm: &str) -> Result<SubscriptionData, FieldError> {
        let cloud = self.cloud.unwrap_or(current.cloud);
        check_cloud(&cloud)?;
        let private = match self.private_identities {
            Some(list) => private_identities(list, realm)?,
            None => current
                .private_identities
                .into_iter()
                .map(|p| PrivateIdentityData {
                    impi: p.impi,
                    realm: p.realm,
                    digest_ha1: None,
                    aka: None,
                })
                .collect(),
        };
        let public = match self.public_identities {
            Some(list) => {
                check_public_identities(&list)?;
                public_identities(list)
            }
            None => current
                .public_identities
                .into_iter()
                .map(|p| p.identity)
                .collect(),
        };
        let profiles = self.service_profiles.unwrap_or(current.service_profiles);
        check_profiles(&profiles)?;
        let roaming = self.roaming_networks.unwrap_or(current.roaming_networks);
        check_roaming(&roaming)?;
        Ok(with_default_profile(SubscriptionData {
            cloud,
            private_identities: private,
            public_identities: public,
            service_profiles: profiles,
            roaming_networks: roaming,
        }))
    }
}
