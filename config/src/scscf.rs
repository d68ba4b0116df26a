//! Sections only the S-CSCF has: `[registrar]` (TS 24.229 §5.4.1) and `[session]`
//! (TS 24.229 §5.4.3).

use serde::Deserialize;

use crate::error::Invalid;
use crate::load::Validate;

/// `[registrar]`: the S-CSCF registrar (TS 24.229 §5.4.1, RFC 3261 §10.3).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrarSection {
    /// Our SIP URI, sent as Server-Name in MAR/SAR (TS 29.229 §6.3.9) and the base of the
    /// Service-Route, e.g. `sip:scscf.ims.example.net:5080`.
    pub server_name: String,
    /// Shortest registration accepted, seconds (shorter: 423 with Min-Expires).
    #[serde(default = "default_min_expires")]
    pub min_expires: u32,
    /// Longest registration granted, seconds (longer requests are shortened).
    #[serde(default = "default_max_expires")]
    pub max_expires: u32,
    /// Granted when the REGISTER names no expiry.
    #[serde(default = "default_expires")]
    pub default_expires: u32,
    /// Seconds a challenge nonce stays valid (then `stale=true`).
    #[serde(default = "default_nonce_lifetime")]
    pub nonce_lifetime: u64,
    /// Outstanding challenges kept in memory at most.
    #[serde(default = "default_max_pending")]
    pub max_pending_challenges: usize,
    /// Bindings store: `sqlite://path` (created on first start) or `postgres://...`.
    #[serde(default = "default_store")]
    pub store: String,
    /// Several S-CSCFs share `store` (a pool on PostgreSQL, `docs/scale-out.md`): a
    /// registration not in memory is read from the store (a user taken over from a
    /// failed S-CSCF), and taken over with a SAR naming this S-CSCF. Default false.
    #[serde(default)]
    pub pool: bool,
    /// Seconds this S-CSCF's lease in the store lasts; renewed every third of it. The
    /// registrations of an S-CSCF whose lease ran out are taken over by another.
    /// 3 to 3600, default 15.
    #[serde(default = "default_lease_secs")]
    pub lease_secs: u64,
    /// Registrations taken over at most per sweep (one sweep per renewal), each with a
    /// SAR: bounds the burst at the HSS after a failure. 1 to 900, default 200.
    #[serde(default = "default_takeover_batch")]
    pub takeover_batch: usize,
    /// File holding the GRUU key (64 hex digits; RFC 5627 temporary GRUUs are sealed
    /// with it), generated with mode 0600 when missing, refused if group or others may
    /// access it. The S-CSCFs of a pool share it. Unset: a random key per start, so
    /// the temporary GRUUs handed out before a restart no longer reach anyone.
    #[serde(default)]
    pub gruu_key_file: Option<std::path::PathBuf>,
}

fn default_min_expires() -> u32 {
    60
}
fn default_max_expires() -> u32 {
    7200
}
fn default_expires() -> u32 {
    3600
}
fn default_nonce_lifetime() -> u64 {
    60
}
fn default_max_pending() -> usize {
    100_000
}
fn default_lease_secs() -> u64 {
    15
}
fn default_takeover_batch() -> usize {
    200
}
fn default_store() -> String {
    "sqlite://data/scscf/bindings.db".to_string()
}

/// `min_expires` at least 1 and at most `max_expires`, `default_expires` between them
/// (`[registrar]` and `[regevent]`).
fn expiry_bounds(min: u32, max: u32, default: u32) -> Result<(), Invalid> {
    if min == 0 || min > max {
        return Err(Invalid::new(
            "min_expires",
            "must be at least 1 and at most max_expires",
        ));
    }
    if !(min..=max).contains(&default) {
        return Err(Invalid::new(
            "default_expires",
            "must lie between min_expires and max_expires",
        ));
    }
    Ok(())
}

impl Validate for RegistrarSection {
    fn validate(&self) -> Result<(), Invalid> {
        let lower = self.server_name.to_ascii_lowercase();
        if !(lower.starts_with("sip:") || lower.starts_with("sips:"))
            || self.server_name.contains(char::is_whitespace)
        {
            return Err(Invalid::new("server_name", "must be a sip: or sips: URI"));
        }
        expiry_bounds(self.min_expires, self.max_expires, self.default_expires)?;
        if self.nonce_lifetime == 0 {
            return Err(Invalid::new("nonce_lifetime", "must be at least 1"));
        }
        if self.max_pending_challenges == 0 {
            return Err(Invalid::new("max_pending_challenges", "must be at least 1"));
        }
        if !(3..=3600).contains(&self.lease_secs) {
            return Err(Invalid::new("lease_secs", "must be 3 to 3600"));
        }
        if !(1..=900).contains(&self.takeover_batch) {
            return Err(Invalid::new("takeover_batch", "must be 1 to 900"));
        }
        if !["sqlite:", "postgres://", "postgresql://"]
            .iter()
            .any(|p| self.store.to_ascii_lowercase().starts_with(p))
        {
            return Err(Invalid::new(
                "store",
                "must be a sqlite: or postgres:// URL",
            ));
        }
        Ok(())
    }
}

/// `[session]`: how the S-CSCF routes initial requests (TS 24.229 §5.4.3).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionSection {
    /// SIP URI of the I-CSCF of the home network, pre-loaded as Route on originating
    /// requests toward a home domain or a tel URI (§5.4.3.2: the callee's home network
    /// is reached through its I-CSCF), e.g. `sip:127.0.0.1:5070;lr`.
    pub icscf: String,
    /// Domains of the home network (compared with the Request-URI host); empty means
    /// `[node] domain` alone.
    #[serde(default)]
    pub home_domains: Vec<String>,
    /// Milliseconds an application server has to give a first response (even `100
    /// Trying`) before the S-CSCF applies the iFC's DefaultHandling (TS 24.229
    /// §5.4.3.2, §5.4.3.3), 100 to 60000; default 2000.
    #[serde(default = "default_as_timeout_ms")]
    pub as_timeout_ms: u64,
    /// Seconds the profile of an identity served in the unregistered state (SAR
    /// UNREGISTERED_USER, TS 29.228 §6.1.2) is kept before the HSS is told to release
    /// it (SAR TIMEOUT_DEREGISTRATION), 10 to 86400; default 600.
    #[serde(default = "default_unregistered_ttl_secs")]
    pub unregistered_ttl_secs: u64,
    /// Most unregistered profiles kept at once (at least 1; default 100000): beyond,
    /// each request for another such identity asks the HSS again.
    #[serde(default = "default_max_unregistered_profiles")]
    pub max_unregistered_profiles: usize,
}

fn default_as_timeout_ms() -> u64 {
    2000
}

fn default_unregistered_ttl_secs() -> u64 {
    600
}

fn default_max_unregistered_profiles() -> usize {
    100_000
}

impl Validate for SessionSection {
    fn validate(&self) -> Result<(), Invalid> {
        let lower = self.icscf.to_ascii_lowercase();
        if !(lower.starts_with("sip:") || lower.starts_with("sips:"))
            || self.icscf.len() < 5
            || self.icscf.contains(char::is_whitespace)
        {
            return Err(Invalid::new("icscf", "must be a sip: or sips: URI"));
        }
        if let Some(i) = self
            .home_domains
            .iter()
            .position(|d| d.trim().is_empty() || d.contains(char::is_whitespace))
        {
            return Err(Invalid::new(
                format!("home_domains[{i}]"),
                "must be a domain",
            ));
        }
        if !(100..=60_000).contains(&self.as_timeout_ms) {
            return Err(Invalid::new(
                "as_timeout_ms",
                "must be between 100 and 60000 milliseconds",
            ));
        }
        if !(10..=86_400).contains(&self.unregistered_ttl_secs) {
            return Err(Invalid::new(
                "unregistered_ttl_secs",
                "must be between 10 and 86400 seconds",
            ));
        }
        if self.max_unregistered_profiles == 0 {
            return Err(Invalid::new(
                "max_unregistered_profiles",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::{parse_str, ConfigError, ScscfConfig};

    const BASE: &str = "[node]\nname = \"s\"\ndomain = \"ims.example.net\"\n\
        [http]\nlisten = \"127.0.0.1:0\"\n[sip]\nudp = [\"127.0.0.1:0\"]\n\
        [session]\nicscf = \"sip:127.0.0.1:5070;lr\"\n\
        [cloud_auth]\nmode = \"off\"\n[cx]\nhss = [\"127.0.0.1:3868\"]\norigin_host = \"scscf.ims.example.net\"\n\
        origin_realm = \"ims.example.net\"\ndestination_host = \"hss.ims.example.net\"\n\
        destination_realm = \"ims.example.net\"\n";

    fn parse(registrar: &str) -> Result<ScscfConfig, ConfigError> {
        parse_str(
            &format!(
                "{BASE}[registrar]\nserver_name = \"sip:scscf.ims.example.net:5080\"\n{registrar}"
            ),
            std::path::Path::new("scscf.toml"),
        )
    }

    fn invalid_key(r: Result<ScscfConfig, ConfigError>) -> String {
        match r {
            Err(ConfigError::Invalid { invalid, .. }) => invalid.key,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn defaults_are_a_working_registrar() {
        let c = parse("").unwrap();
        assert_eq!(
            (
                c.registrar.min_expires,
                c.registrar.default_expires,
                c.registrar.max_expires
            ),
            (60, 3600, 7200)
        );
        assert!(c.registrar.store.starts_with("sqlite://"));
        assert_eq!(c.cx.watchdog_secs, 30);
    }

    #[test]
    fn bad_values_name_their_key() {
        assert_eq!(
            invalid_key(parse("min_expires = 9000\n")),
            "registrar.min_expires"
        );
        assert_eq!(
            invalid_key(parse("default_expires = 10\n")),
            "registrar.default_expires"
        );
        assert_eq!(
            invalid_key(parse("store = \"mysql://x\"\n")),
            "registrar.store"
        );
        let bad_name = parse_str::<ScscfConfig>(
            &format!("{BASE}[registrar]\nserver_name = \"scscf.ims.example.net\"\n"),
            std::path::Path::new("scscf.toml"),
        );
        assert_eq!(invalid_key(bad_name), "registrar.server_name");
        let bad_tw = parse_str::<ScscfConfig>(
            &format!(
                "{}watchdog_secs = 2\n[registrar]\nserver_name = \"sip:s\"\n",
                BASE
            ),
            std::path::Path::new("scscf.toml"),
        );
        assert_eq!(invalid_key(bad_tw), "cx.watchdog_secs");
    }

    #[test]
    fn session_section_is_checked() {
        let c = parse("").unwrap();
        assert_eq!(c.session.icscf, "sip:127.0.0.1:5070;lr");
        assert!(c.session.home_domains.is_empty());
        assert_eq!(c.session.as_timeout_ms, 2000);
        let slow = BASE.replace("[session]\n", "[session]\nas_timeout_ms = 50\n");
        let r = parse_str::<ScscfConfig>(
            &format!("{slow}[registrar]\nserver_name = \"sip:s\"\n"),
            std::path::Path::new("scscf.toml"),
        );
        assert_eq!(invalid_key(r), "session.as_timeout_ms");
        assert_eq!(c.session.unregistered_ttl_secs, 600);
        assert_eq!(c.session.max_unregistered_profiles, 100_000);
        for (key, value) in [
            ("unregistered_ttl_secs", "5"),
            ("unregistered_ttl_secs", "86401"),
            ("max_unregistered_profiles", "0"),
        ] {
            let odd = BASE.replace("[session]\n", &format!("[session]\n{key} = {value}\n"));
            let r = parse_str::<ScscfConfig>(
                &format!("{odd}[registrar]\nserver_name = \"sip:s\"\n"),
                std::path::Path::new("scscf.toml"),
            );
            assert_eq!(invalid_key(r), format!("session.{key}"), "{key} = {value}");
        }
        let bad = BASE.replace("sip:127.0.0.1:5070;lr", "127.0.0.1:5070");
        let r = parse_str::<ScscfConfig>(
            &format!("{bad}[registrar]\nserver_name = \"sip:s\"\n"),
            std::path::Path::new("scscf.toml"),
        );
        assert_eq!(invalid_key(r), "session.icscf");
        let domains = BASE.replace(
            "[session]\n",
            "[session]\nhome_domains = [\"ims.example.net\", \" \"]\n",
        );
        let r = parse_str::<ScscfConfig>(
            &format!("{domains}[registrar]\nserver_name = \"sip:s\"\n"),
            std::path::Path::new("scscf.toml"),
        );
        assert_eq!(invalid_key(r), "session.home_domains[1]");
    }
}

/// `[regevent]`: the reg event package notifier (RFC 3680, TS 24.229 §5.4.2.1).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegEventSection {
    /// Shortest subscription accepted, seconds (shorter: 423 with Min-Expires);
    /// default 60.
    #[serde(default = "default_sub_min")]
    pub min_expires: u32,
    /// Longest subscription granted, seconds (longer ones are shortened); default
    /// 600000, what TS 24.229 §5.1.1.3 has a UE ask for.
    #[serde(default = "default_sub_max")]
    pub max_expires: u32,
    /// Granted when the SUBSCRIBE has no Expires; default 3761 (RFC 3680 §4.3).
    #[serde(default = "default_sub_expires")]
    pub default_expires: u32,
    /// Subscriptions held at most (beyond: 503); default 100000.
    #[serde(default = "default_max_subscriptions")]
    pub max_subscriptions: usize,
    /// Subscriptions per identity subscribed to at most (beyond: the subscriber's own
    /// oldest one ends, or 403); default 8.
    #[serde(default = "default_max_per_identity")]
    pub max_per_identity: usize,
    /// End every subscription with a NOTIFY (`terminated;reason=deactivated`) when
    /// the S-CSCF stops (SIGTERM): for an S-CSCF taken out of service. Default `false`:
    /// the subscriptions stay in the store and go on after a restart.
    #[serde(default)]
    pub terminate_on_shutdown: bool,
}

impl Default for RegEventSection {
    fn default() -> Self {
        RegEventSection {
            min_expires: default_sub_min(),
            max_expires: default_sub_max(),
            default_expires: default_sub_expires(),
            max_subscriptions: default_max_subscriptions(),
            max_per_identity: default_max_per_identity(),
            terminate_on_shutdown: false,
        }
    }
}

fn default_sub_min() -> u32 {
    60
}
fn default_sub_max() -> u32 {
    600_000
}
fn default_sub_expires() -> u32 {
    3761
}
fn default_max_subscriptions() -> usize {
    100_000
}
fn default_max_per_identity() -> usize {
    8
}

impl Validate for RegEventSection {
    fn validate(&self) -> Result<(), Invalid> {
        expiry_bounds(self.min_expires, self.max_expires, self.default_expires)?;
        if self.max_subscriptions == 0 || self.max_per_identity == 0 {
            return Err(Invalid::new(
                "max_subscriptions",
                "max_subscriptions and max_per_identity must be at least 1",
            ));
        }
        Ok(())
    }
}

/// `[api]`: the S-CSCF's operator API on its `[http]` listener (`GET
/// /api/v1/registrations/{impu}`), HTTPS with `[http.tls]` as the node's other
/// endpoints. Without a token the API is not served.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScscfApiSection {
    /// The admin token accepted as `Authorization: Bearer`. Prefer `admin_token_file`.
    pub admin_token: Option<String>,
    /// File holding the admin token (mode 0600; surrounding whitespace ignored), read at
    /// each call, e.g. the HSS's `[provisioning] admin_token_file` for one operator
    /// token.
    pub admin_token_file: Option<std::path::PathBuf>,
}

impl Validate for ScscfApiSection {
    fn validate(&self) -> Result<(), Invalid> {
        if self
            .admin_token
            .as_deref()
            .is_some_and(|t| t.trim().len() < 16)
        {
            return Err(Invalid::new(
                "admin_token",
                "must be at least 16 characters",
            ));
        }
        Ok(())
    }
}
