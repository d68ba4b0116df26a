//! The initial filter criteria as the S-CSCF evaluates them: TS 29.228 Annex B.2.2
//! (InitialFilterCriteria, TriggerPoint, SPT, ApplicationServer, ProfilePartIndicator)
//! with the enumerated values of tables B.2.2.1 (SessionCase), B.2.3 (DefaultHandling)
//! and B.2.2 (ProfilePartIndicator). Regular expressions are compiled when the profile
//! is read (never while evaluating), through a bounded process-wide cache.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use ims_sip::message::HeaderName;
use regex::bytes::{Regex, RegexBuilder};

/// SPTs in one TriggerPoint at most (evaluation keeps one bit per SPT).
pub const MAX_SPTS_PER_TRIGGER: usize = 64;
/// `Group` values of one SPT at most.
pub const MAX_GROUPS_PER_SPT: usize = 16;
/// A pattern longer than this (bytes) is treated as invalid.
pub const MAX_PATTERN_LEN: usize = 1024;
/// Compiled program size allowed per pattern (regex `size_limit`).
pub const PATTERN_SIZE_LIMIT: usize = 16 * 1024;
/// Lazy-DFA cache allowed per pattern (regex `dfa_size_limit`).
pub const PATTERN_DFA_LIMIT: usize = 32 * 1024;

/// `SessionCase` (TS 29.228 Annex B.2.2, table B.2.2.1; TS 24.229 §5.4.3.2, §5.4.3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionCase {
    /// ORIGINATING_SESSION (0).
    Originating,
    /// TERMINATING_REGISTERED (1).
    TerminatingRegistered,
    /// TERMINATING_UNREGISTERED (2).
    TerminatingUnregistered,
    /// ORIGINATING_UNREGISTERED (3): originating on behalf of an unregistered user.
    OriginatingUnregistered,
    /// ORIGINATING_CDIV (4): originating after call diversion.
    OriginatingCdiv,
}

impl SessionCase {
    /// The enumerated value.
    pub fn code(self) -> u8 {
        match self {
            SessionCase::Originating => 0,
            SessionCase::TerminatingRegistered => 1,
            SessionCase::TerminatingUnregistered => 2,
            SessionCase::OriginatingUnregistered => 3,
            SessionCase::OriginatingCdiv => 4,
        }
    }

    /// True for the originating cases (originating, originating-unregistered,
    /// originating-CDIV).
    pub fn is_originating(self) -> bool {
        matches!(
            self,
            SessionCase::Originating
                | SessionCase::OriginatingUnregistered
                | SessionCase::OriginatingCdiv
        )
    }

    /// From the enumerated value; `None` for values the standard does not define.
    pub fn from_code(code: i64) -> Option<SessionCase> {
        Some(match code {
            0 => SessionCase::Originating,
            1 => SessionCase::TerminatingRegistered,
            2 => SessionCase::TerminatingUnregistered,
            3 => SessionCase::OriginatingUnregistered,
            4 => SessionCase::OriginatingCdiv,
            _ => return None,
        })
    }
}

/// Registration state of the served user, and the `ProfilePartIndicator` of an iFC
/// (TS 29.228 Annex B.2.2: REGISTERED (0), UNREGISTERED (1)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RegistrationState {
    /// REGISTERED (0).
    Registered,
    /// UNREGISTERED (1).
    Unregistered,
}

impl RegistrationState {
    /// The enumerated value.
    pub fn code(self) -> u8 {
        match self {
            RegistrationState::Registered => 0,
            RegistrationState::Unregistered => 1,
        }
    }

    /// From the enumerated value.
    pub fn from_code(code: i64) -> Option<RegistrationState> {
        match code {
            0 => Some(RegistrationState::Registered),
            1 => Some(RegistrationState::Unregistered),
            _ => None,
        }
    }
}

/// `RegistrationType` in the `Extension` of an SPT testing the REGISTER method (TS 29.228
/// Annex B.2.2, table B.2.2A): which REGISTERs the SPT matches. An SPT naming none
/// matches every REGISTER.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RegistrationType {
    /// INITIAL_REGISTRATION (0).
    Initial,
    /// RE_REGISTRATION (1).
    Re,
    /// DE_REGISTRATION (2).
    De,
}

impl RegistrationType {
    /// From the enumerated value.
    pub fn from_code(code: i64) -> Option<RegistrationType> {
        match code {
            0 => Some(RegistrationType::Initial),
            1 => Some(RegistrationType::Re),
            2 => Some(RegistrationType::De),
            _ => None,
        }
    }
}

/// `DefaultHandling`: what the S-CSCF does when the AS cannot be reached (TS 29.228
/// Annex B.2.3; TS 24.229 §5.4.3.2). Absent in the profile means SESSION_CONTINUED.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DefaultHandling {
    /// SESSION_CONTINUED (0): go on with the next iFC.
    #[default]
    SessionContinued,
    /// SESSION_TERMINATED (1): end the request with an error.
    SessionTerminated,
}

impl DefaultHandling {
    /// The enumerated value.
    pub fn code(self) -> u8 {
        match self {
            DefaultHandling::SessionContinued => 0,
            DefaultHandling::SessionTerminated => 1,
        }
    }

    /// From the enumerated value.
    pub fn from_code(code: i64) -> Option<DefaultHandling> {
        match code {
            0 => Some(DefaultHandling::SessionContinued),
            1 => Some(DefaultHandling::SessionTerminated),
            _ => None,
        }
    }
}

/// `ApplicationServer` of an iFC (TS 29.228 Annex B.2.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplicationServer {
    /// `ServerName`: the AS's SIP URI.
    pub server_name: String,
    /// `DefaultHandling`.
    pub default_handling: DefaultHandling,
    /// `ServiceInfo`: transparent data for the AS (TS 24.229 §5.4.3.2: sent in the body
    /// of third-party REGISTERs).
    pub service_info: Option<String>,
    /// `Extension/IncludeRegisterRequest` present.
    pub include_register_request: bool,
    /// `Extension/IncludeRegisterResponse` present.
    pub include_register_response: bool,
}

/// One `InitialFilterCriteria` (TS 29.228 Annex B.2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitialFilterCriteria {
    /// `Priority`: lower values are evaluated first.
    pub priority: i64,
    /// `TriggerPoint`; `None` means the iFC matches every request.
    pub trigger_point: Option<TriggerPoint>,
    /// `ApplicationServer`.
    pub application_server: ApplicationServer,
    /// `ProfilePartIndicator`; `None` means both parts (registered and unregistered).
    pub profile_part: Option<RegistrationState>,
}

/// A `TriggerPoint`: SPTs combined in conjunctive (CNF) or disjunctive (DNF) normal
/// form by their `Group` values (TS 29.228 Annex B.2.2, Annex C).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TriggerPoint {
    cnf: bool,
    spts: Vec<Spt>,
    /// Indices into `spts` per distinct group value, groups in ascending order.
    groups: Vec<Vec<u8>>,
}

/// Why a TriggerPoint cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TriggerPointError {
    /// No SPT (the schema requires at least one).
    #[error("TriggerPoint without SPT")]
    NoSpt,
    /// An SPT without `Group`.
    #[error("SPT without Group")]
    NoGroup,
    /// More than [`MAX_SPTS_PER_TRIGGER`] SPTs.
    #[error("more than {MAX_SPTS_PER_TRIGGER} SPTs in a TriggerPoint")]
    TooManySpts,
    /// An SPT with more than [`MAX_GROUPS_PER_SPT`] `Group` values.
    #[error("more than {MAX_GROUPS_PER_SPT} Group values in an SPT")]
    TooManyGroups,
}

impl TriggerPoint {
    /// A TriggerPoint with `ConditionTypeCNF` = `cnf` over `spts`.
    pub fn new(cnf: bool, spts: Vec<Spt>) -> Result<TriggerPoint, TriggerPointError> {
        if spts.is_empty() {
            return Err(TriggerPointError::NoSpt);
        }
        if spts.len() > MAX_SPTS_PER_TRIGGER {
            return Err(TriggerPointError::TooManySpts);
        }
        let mut ids: Vec<i64> = Vec::new();
        for spt in &spts {
            if spt.groups.is_empty() {
                return Err(TriggerPointError::NoGroup);
            }
            if spt.groups.len() > MAX_GROUPS_PER_SPT {
                return Err(TriggerPointError::TooManyGroups);
            }
            ids.extend(&spt.groups);
        }
        ids.sort_unstable();
        ids.dedup();
        let groups = ids
            .iter()
            .map(|id| {
                (0u8..)
                    .zip(&spts)
                    .filter(|(_, s)| s.groups.contains(id))
                    .map(|(i, _)| i)
                    .collect()
            })
            .collect();
        Ok(TriggerPoint { cnf, spts, groups })
    }

    /// `ConditionTypeCNF`: true for conjunctive normal form (groups ORed inside, ANDed
    /// together), false for disjunctive (ANDed inside, ORed together).
    pub fn is_cnf(&self) -> bool {
        self.cnf
    }

    /// The SPTs in document order.
    pub fn spts(&self) -> &[Spt] {
        &self.spts
    }

    /// Indices into [`TriggerPoint::spts`] per distinct `Group` value, ascending.
    pub(crate) fn groups(&self) -> &[Vec<u8>] {
        &self.groups
    }
}

/// One Service Point Trigger (TS 29.228 Annex B.2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spt {
    /// `ConditionNegated`.
    pub negated: bool,
    /// The `Group` values (an SPT may belong to several groups).
    pub groups: Vec<i64>,
    /// What the SPT tests.
    pub condition: SptCondition,
    /// `Extension/RegistrationType` values: with a `Method` REGISTER condition, the
    /// kinds of REGISTER it matches (empty: all). Ignored for other conditions.
    pub registration_types: Vec<RegistrationType>,
}

/// What an SPT tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SptCondition {
    /// `RequestURI`: matches when the Request-URI equals the content ignoring ASCII
    /// case, or when the content, as a case-insensitive regular expression, matches
    /// somewhere in the Request-URI.
    RequestUri(Pattern),
    /// `Method`: the request's method, compared ignoring ASCII case.
    Method(String),
    /// `SIPHeader`: the header is present (no content), or the content regular
    /// expression matches somewhere in the value of one of its header lines.
    SipHeader {
        /// `Header` (compact forms and case are accepted when matching).
        header: HeaderName,
        /// `Content`.
        content: Option<Pattern>,
    },
    /// `SessionCase`.
    SessionCase(SessionCase),
    /// `SessionDescription`: an SDP line of type `line` is present in an
    /// `application/sdp` body (and its value after `=` matches `content`, if given).
    SessionDescription {
        /// `Line`: the SDP line type, e.g. `m`.
        line: String,
        /// `Content`.
        content: Option<Pattern>,
    },
}

/// A regular expression from a profile, compiled once (byte-oriented, ASCII classes,
/// bounded size). An invalid one is kept with its source so that the SPT using it
/// never matches.
#[derive(Debug, Clone)]
pub struct Pattern {
    source: String,
    case_insensitive: bool,
    regex: Option<Regex>,
}

impl Pattern {
    /// Compiles `source` (or takes it from the process-wide cache of compiled
    /// patterns); on failure logs a warning, when first seen, and keeps an invalid
    /// pattern.
    pub fn new(source: &str, case_insensitive: bool) -> Pattern {
        Pattern {
            source: source.to_owned(),
            case_insensitive,
            regex: compiled(source, case_insensitive),
        }
    }

    /// The expression as written in the profile.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether it compiled.
    pub fn is_valid(&self) -> bool {
        self.regex.is_some()
    }

    /// Whether it matches somewhere in `hay`; `None` when the pattern is invalid.
    pub fn find_in(&self, hay: &[u8]) -> Option<bool> {
        self.regex.as_ref().map(|r| r.is_match(hay))
    }
}

/// Compiled patterns kept at most; when full the cache starts over. Subscribers mostly
/// share a few provisioned service profiles, so every SAR or PPR after the first finds
/// its patterns here instead of compiling them again (~17 µs each).
pub const MAX_CACHED_PATTERNS: usize = 512;

type PatternCache = Mutex<HashMap<(String, bool), Option<Regex>>>;

fn cache() -> &'static PatternCache {
    static CACHE: OnceLock<PatternCache> = OnceLock::new();
    CACHE.get_or_init(PatternCache::default)
}

fn lock(cache: &PatternCache) -> std::sync::MutexGuard<'_, HashMap<(String, bool), Option<Regex>>> {
    // A panic elsewhere while holding the lock leaves a usable map.
    cache
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The compiled form of `source`, `None` when invalid or too long.
fn compiled(source: &str, case_insensitive: bool) -> Option<Regex> {
    let key = (source.to_owned(), case_insensitive);
    if let Some(hit) = lock(cache()).get(&key) {
        return hit.clone();
    }
    let regex = if source.len() > MAX_PATTERN_LEN {
        tracing::warn!(
            len = source.len(),
            "iFC pattern too long; its SPT never matches"
        );
        None
    } else {
        match RegexBuilder::new(source)
            .unicode(false)
            .case_insensitive(case_insensitive)
            .size_limit(PATTERN_SIZE_LIMIT)
            .dfa_size_limit(PATTERN_DFA_LIMIT)
            .nest_limit(64)
            .build()
        {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::warn!(pattern = source, error = %e, "invalid iFC pattern; its SPT never matches");
                None
            }
        }
    };
    let mut map = lock(cache());
    if map.len() >= MAX_CACHED_PATTERNS {
        map.clear();
    }
    map.insert(key, regex.clone());
    regex
}

/// Two patterns are equal when written alike with the same case rule (the compiled
/// form follows from those).
impl PartialEq for Pattern {
    fn eq(&self, other: &Pattern) -> bool {
        self.source == other.source && self.case_insensitive == other.case_insensitive
    }
}

impl Eq for Pattern {}

#[cfg(test)]
mod tests {
    use super::*;

    fn spt(groups: &[i64]) -> Spt {
        Spt {
            negated: false,
            groups: groups.to_vec(),
            condition: SptCondition::Method("INVITE".into()),
            registration_types: Vec::new(),
        }
    }

    #[test]
    fn groups_are_collected_across_spts_in_ascending_order() {
        let tp = TriggerPoint::new(true, vec![spt(&[5]), spt(&[1, 5]), spt(&[1])]).unwrap();
        assert_eq!(tp.groups(), [vec![1, 2], vec![0, 1]]);
    }

    #[test]
    fn trigger_point_bounds() {
        assert_eq!(
            TriggerPoint::new(true, vec![]),
            Err(TriggerPointError::NoSpt)
        );
        assert_eq!(
            TriggerPoint::new(true, vec![spt(&[])]),
            Err(TriggerPointError::NoGroup)
        );
        let many = vec![spt(&[0]); MAX_SPTS_PER_TRIGGER + 1];
        assert_eq!(
            TriggerPoint::new(true, many),
            Err(TriggerPointError::TooManySpts)
        );
        let groups: Vec<i64> = (0..=MAX_GROUPS_PER_SPT as i64).collect();
        assert_eq!(
            TriggerPoint::new(true, vec![spt(&groups)]),
            Err(TriggerPointError::TooManyGroups)
        );
        assert!(TriggerPoint::new(false, vec![spt(&[0]); MAX_SPTS_PER_TRIGGER]).is_ok());
    }

    #[test]
    fn patterns_compile_bounded_and_report_invalid_ones() {
        let p = Pattern::new("^sip:Conf.*", true);
        assert_eq!(p.find_in(b"SIP:conf-1@x"), Some(true));
        assert_eq!(
            Pattern::new("^sip:Conf", false).find_in(b"sip:conf"),
            Some(false)
        );
        assert_eq!(Pattern::new("(", false).find_in(b"("), None);
        assert!(!Pattern::new(&"a".repeat(MAX_PATTERN_LEN + 1), false).is_valid());
        // A pattern whose compiled form exceeds the size limit is refused, not built.
        assert!(!Pattern::new("(?:a{100}){100}", false).is_valid());
        // Non-ASCII literals still match their UTF-8 bytes.
        assert_eq!(
            Pattern::new("é", false).find_in("café".as_bytes()),
            Some(true)
        );
        assert_eq!(Pattern::new("x", false), Pattern::new("x", false));
        assert_ne!(Pattern::new("x", false), Pattern::new("x", true));
    }

    #[test]
    fn the_pattern_cache_is_bounded_and_keeps_case_apart() {
        for i in 0..MAX_CACHED_PATTERNS + 10 {
            assert!(Pattern::new(&format!("^cache-test-{i}$"), false).is_valid());
            assert!(lock(cache()).len() <= MAX_CACHED_PATTERNS);
        }
        let sensitive = Pattern::new("^Cached$", false);
        let insensitive = Pattern::new("^Cached$", true);
        assert_eq!(sensitive.find_in(b"cached"), Some(false));
        assert_eq!(insensitive.find_in(b"cached"), Some(true));
        assert_eq!(
            Pattern::new("^Cached$", false).find_in(b"cached"),
            Some(false)
        );
        assert!(!Pattern::new("(cached", false).is_valid());
        assert!(
            !Pattern::new("(cached", false).is_valid(),
            "invalid stays invalid from the cache"
        );
    }
}
