//! Budgets for traffic that is not (yet) authenticated, shared by the CSCFs: what one
//! source or one identity may cost us before it has proved anything.
//!
//! * [`TokenBuckets`]: a token bucket per key (a source address): `rate` tokens per
//!   second, at most `burst` saved up.
//! * [`Backoff`]: a failure counter per key (a source, a private identity) with
//!   exponential back-off once `after_failures` failures in a row were seen; a success
//!   resets it.
//! * [`RecentSet`]: keys remembered for a while (a negative cache).
//! * [`Refusals`]: refused requests counted and logged as one summary line per
//!   interval instead of one line per request.
//!
//! Every map is an LRU of fixed capacity ([`hashlink::LruCache`]): a new key beyond the
//! capacity evicts the least recently used one, so memory stays bounded whatever the
//! number of sources or identities. An evicted bucket or failure record starts afresh,
//! which favours the evicted key: filling the map takes as many distinct keys as its
//! capacity. Every primitive counts in a [`BudgetMetrics`] (`/metrics`).
//!
//! Time is tokio's [`Instant`], so tests run on the paused clock.

use std::collections::BTreeMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use hashlink::LruCache;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::time::Instant;

pub use crate::sip::{Rejection, Rejections};

type Labels = Vec<(String, String)>;

fn label(key: &str, value: &str) -> Labels {
    vec![(key.to_string(), value.to_string())]
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update below is a few await-free steps: a poisoned lock holds usable state.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The counters of every budget of a node, registered once on its `/metrics`:
/// `budget_refused_total{budget}`, `budget_backoffs_total{budget}`,
/// `budget_tracked{budget}` (keys held) and `budget_events_total{event}` (what a node
/// counts beside, e.g. UARs sent, decoy challenges).
#[derive(Debug, Clone, Default)]
pub struct BudgetMetrics {
    refused: Family<Labels, Counter>,
    backoffs: Family<Labels, Counter>,
    tracked: Family<Labels, Gauge>,
    events: Family<Labels, Counter>,
    rejections: Rejections,
}

impl BudgetMetrics {
    /// Registers the counters in `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "budget_refused",
            "Requests refused by a budget (over its rate, or backed off)",
            self.refused.clone(),
        );
        registry.register(
            "budget_backoffs",
            "Back-offs started after repeated failures",
            self.backoffs.clone(),
        );
        registry.register(
            "budget_tracked",
            "Keys (sources, identities) a budget holds",
            self.tracked.clone(),
        );
        registry.register(
            "budget_events",
            "Events counted beside the budgets",
            self.events.clone(),
        );
    }

    /// Counts one `event`.
    pub fn event(&self, event: &str) {
        self.events.get_or_create(&label("event", event)).inc();
    }

    /// How many `event`s were counted.
    pub fn events(&self, event: &str) -> u64 {
        self.events.get_or_create(&label("event", event)).get()
    }

    /// How many requests budget `name` refused.
    pub fn refused(&self, name: &str) -> u64 {
        self.refused.get_or_create(&label("budget", name)).get()
    }

    /// The node's SIP rejections by reason, which the budgets (`budget`) and the
    /// ingress filter's refusal sink (`zone`, [`Refusals::sink`]) count; exported as
    /// `sip_requests_rejected_total` beside the engine's counters.
    pub fn rejections(&self) -> Rejections {
        self.rejections.clone()
    }

    fn refuse(&self, name: &str) {
        self.rejections.count(Rejection::Budget);
        self.refused.get_or_create(&label("budget", name)).inc();
    }

    fn backoff(&self, name: &str) {
        self.backoffs.get_or_create(&label("budget", name)).inc();
    }

    /// Sets `budget_tracked{budget=<name>}` to `n` keys held (also for a node's own
    /// bounded maps beside the budgets).
    pub fn track(&self, name: &str, n: usize) {
        self.tracked
            .get_or_create(&label("budget", name))
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }
}

/// A rate: `per_second` tokens a second, at most `burst` saved up.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Tokens added per second.
    pub per_second: f64,
    /// Most tokens held (and what a new key starts with).
    pub burst: f64,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// A token bucket per key, at most `capacity` keys.
#[derive(Debug)]
pub struct TokenBuckets<K: Hash + Eq> {
    name: &'static str,
    rate: Rate,
    map: Mutex<LruCache<K, Bucket>>,
    metrics: BudgetMetrics,
}

impl<K: Hash + Eq> TokenBuckets<K> {
    /// Buckets named `name` (the `budget` label) of `rate`, for at most `capacity` keys.
    pub fn new(name: &'static str, rate: Rate, capacity: usize, metrics: BudgetMetrics) -> Self {
        TokenBuckets {
            name,
            rate,
            map: Mutex::new(LruCache::new(capacity.max(1))),
            metrics,
        }
    }

    /// Takes one token of `key`'s bucket at `now`; when it is empty, `Err` with the time
    /// until the next token (counted as refused).
    pub fn take(&self, key: K, now: Instant) -> Result<(), Duration> {
        let mut map = lock(&self.map);
        let full = Bucket {
            tokens: self.rate.burst,
            at: now,
        };
        // Taken out and put back: the key becomes the most recently used, and an insert
        // beyond the capacity evicts the least recently used.
        let mut bucket = map.remove(&key).unwrap_or(full);
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate.per_second).min(self.rate.burst);
        bucket.at = now;
        let result = if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let missing = 1.0 - bucket.tokens;
            let wait = if self.rate.per_second > 0.0 {
                missing / self.rate.per_second
            } else {
                3600.0
            };
            Err(Duration::from_secs_f64(wait.min(3600.0)))
        };
        map.insert(key, bucket);
        let held = map.len();
        drop(map);
        self.metrics.track(self.name, held);
        if result.is_err() {
            self.metrics.refuse(self.name);
        }
        result
    }
}

/// When back-off starts and how long it lasts: after `after_failures` failures in a
/// row, `base` doubled for each further failure, at most `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffPolicy {
    /// Failures in a row tolerated before backing off (at least 1).
    pub after_failures: u32,
    /// The first back-off.
    pub base: Duration,
    /// The longest back-off.
    pub max: Duration,
}

impl BackoffPolicy {
    /// The back-off after `failures` failures in a row, if any.
    pub fn delay(&self, failures: u32) -> Option<Duration> {
        let over = failures.checked_sub(self.after_failures.max(1))?;
        let factor = 1u32.checked_shl(over.min(31)).unwrap_or(u32::MAX);
        Some(self.base.saturating_mul(factor).min(self.max))
    }
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    until: Option<Instant>,
}

/// A failure counter with back-off per key, at most `capacity` keys; each failure is
/// counted as `budget_events_total{event=<name>}`.
#[derive(Debug)]
pub struct Backoff<K: Hash + Eq> {
    name: &'static str,
    policy: BackoffPolicy,
    map: Mutex<LruCache<K, Failures>>,
    metrics: BudgetMetrics,
}

impl<K: Hash + Eq> Backoff<K> {
    /// Counters named `name` following `policy`, for at most `capacity` keys.
    pub fn new(
        name: &'static str,
        policy: BackoffPolicy,
        capacity: usize,
        metrics: BudgetMetrics,
    ) -> Self {
        Backoff {
            name,
            policy,
            map: Mutex::new(LruCache::new(capacity.max(1))),
            metrics,
        }
    }

    /// How long `key` stays backed off at `now`, if it is (counted as refused).
    pub fn blocked(&self, key: &K, now: Instant) -> Option<Duration> {
        let left = lock(&self.map)
            .get(key)
            .and_then(|f| f.until)
            .and_then(|until| until.checked_duration_since(now))
            .filter(|d| !d.is_zero());
        if left.is_some() {
            self.metrics.refuse(self.name);
        }
        left
    }

    /// Records a failure of `key` at `now`; returns the back-off it starts, if any.
    pub fn failure(&self, key: K, now: Instant) -> Option<Duration> {
        let mut map = lock(&self.map);
        let mut f = map.remove(&key).unwrap_or(Failures {
            count: 0,
            until: None,
        });
        f.count = f.count.saturating_add(1);
        let delay = self.policy.delay(f.count);
        if let Some(d) = delay {
            f.until = Some(now + d);
        }
        map.insert(key, f);
        let held = map.len();
        drop(map);
        self.metrics.track(self.name, held);
        self.metrics.event(self.name);
        if delay.is_some() {
            self.metrics.backoff(self.name);
        }
        delay
    }

    /// Records a success of `key`: its failures are forgotten.
    pub fn success(&self, key: &K) {
        let mut map = lock(&self.map);
        map.remove(key);
        let held = map.len();
        drop(map);
        self.metrics.track(self.name, held);
    }
}

/// Keys remembered for `ttl`, at most `capacity` of them.
#[derive(Debug)]
pub struct RecentSet<K: Hash + Eq> {
    name: &'static str,
    ttl: Duration,
    map: Mutex<LruCache<K, Instant>>,
    metrics: BudgetMetrics,
}

impl<K: Hash + Eq> RecentSet<K> {
    /// A set named `name` keeping keys `ttl`, at most `capacity`.
    pub fn new(name: &'static str, ttl: Duration, capacity: usize, metrics: BudgetMetrics) -> Self {
        RecentSet {
            name,
            ttl,
            map: Mutex::new(LruCache::new(capacity.max(1))),
            metrics,
        }
    }

    /// Remembers `key` from `now`.
    pub fn insert(&self, key: K, now: Instant) {
        if self.ttl.is_zero() {
            return;
        }
        let mut map = lock(&self.map);
        map.insert(key, now + self.ttl);
        let held = map.len();
        drop(map);
        self.metrics.track(self.name, held);
    }

    /// True when `key` was inserted less than `ttl` before `now`.
    pub fn contains(&self, key: &K, now: Instant) -> bool {
        let mut map = lock(&self.map);
        match map.get(key) {
            Some(&until) if until > now => true,
            Some(_) => {
                map.remove(key);
                false
            }
            None => false,
        }
    }
}

/// Most distinct sources a summary window tells apart; the rest are counted together.
const SUMMARY_SOURCES: usize = 1024;
/// Sources named in a summary line.
const SUMMARY_TOP: usize = 5;

#[derive(Debug)]
struct Window {
    total: u64,
    sources: LruCache<IpAddr, u64>,
    other_sources: u64,
    reasons: BTreeMap<&'static str, u64>,
}

impl Window {
    fn new() -> Window {
        Window {
            total: 0,
            sources: LruCache::new(SUMMARY_SOURCES),
            other_sources: 0,
            reasons: BTreeMap::new(),
        }
    }
}

/// Refused requests, logged as one summary line per interval (at INFO) instead of one
/// line per request, and counted in `budget_refused_total`-style metrics by reason
/// (`budget_events_total{event="refused:<reason>"}`).
#[derive(Debug)]
pub struct Refusals {
    node: &'static str,
    window: Mutex<Window>,
    metrics: BudgetMetrics,
}

impl Refusals {
    /// Refusals of node `node`.
    pub fn new(node: &'static str, metrics: BudgetMetrics) -> Arc<Refusals> {
        Arc::new(Refusals {
            node,
            window: Mutex::new(Window::new()),
            metrics,
        })
    }

    /// Counts one request from `source` refused for `reason` (a short constant such as
    /// `"rate"`, `"backoff"`, `"unknown user"`).
    pub fn refused(&self, source: IpAddr, reason: &'static str) {
        self.metrics.event(&format!("refused:{reason}"));
        let mut w = lock(&self.window);
        w.total += 1;
        *w.reasons.entry(reason).or_insert(0) += 1;
        if let Some(n) = w.sources.get_mut(&source) {
            *n += 1;
        } else if w.sources.len() < SUMMARY_SOURCES {
            w.sources.insert(source, 1);
        } else {
            w.other_sources += 1;
        }
    }

    /// [`Refusals::refused`] as a function, for the ingress filter, which counts its
    /// refusals here without depending on this crate (`ims_node::Ingress::with_refusals`):
    /// each is also a SIP rejection for reason `zone` ([`BudgetMetrics::rejections`]).
    pub fn sink(self: &Arc<Self>) -> impl Fn(IpAddr, &'static str) + Send + Sync + 'static {
        let me = self.clone();
        move |source, reason| {
            me.metrics.rejections.count(Rejection::Zone);
            me.refused(source, reason)
        }
    }

    /// The summary of the window so far, which starts a new one; `None` when nothing
    /// was refused.
    pub fn take_summary(&self) -> Option<String> {
        let w = std::mem::replace(&mut *lock(&self.window), Window::new());
        if w.total == 0 {
            return None;
        }
        let mut top: Vec<(IpAddr, u64)> = w.sources.iter().map(|(a, n)| (*a, *n)).collect();
        top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let named: Vec<String> = top
            .iter()
            .take(SUMMARY_TOP)
            .map(|(a, n)| format!("{a} ({n})"))
            .collect();
        let reasons: Vec<String> = w.reasons.iter().map(|(r, n)| format!("{r} {n}")).collect();
        let more = if w.other_sources > 0 { "+" } else { "" };
        Some(format!(
            "refused {} requests from {}{more} sources, top: {}; reasons: {}",
            w.total,
            top.len(),
            named.join(", "),
            reasons.join(", ")
        ))
    }

    /// Logs the summary every `interval` (nothing when nothing was refused), until the
    /// returned task is aborted.
    pub fn spawn_reporter(self: &Arc<Self>, interval: Duration) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval.max(Duration::from_millis(100)));
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Some(line) = me.take_summary() {
                    tracing::info!(node = me.node, secs = interval.as_secs(), "{line}");
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    #[tokio::test(start_paused = true)]
    async fn a_bucket_allows_its_burst_then_its_rate() {
        let m = BudgetMetrics::default();
        let b = TokenBuckets::new(
            "t",
            Rate {
                per_second: 2.0,
                burst: 3.0,
            },
            16,
            m.clone(),
        );
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(b.take(ip(9), t0).is_ok());
        }
        let wait = b.take(ip(9), t0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        // Another source has its own bucket.
        assert!(b.take(ip(1), t0).is_ok());
        tokio::time::advance(Duration::from_millis(500)).await;
        assert!(b.take(ip(9), Instant::now()).is_ok());
        assert!(b.take(ip(9), Instant::now()).is_err());
        // Ten seconds refill at most the burst.
        tokio::time::advance(Duration::from_secs(10)).await;
        let now = Instant::now();
        let ok = (0..10).filter(|_| b.take(ip(9), now).is_ok()).count();
        assert_eq!(ok, 3);
        assert_eq!(m.refused("t"), 2 + 7);
        // Each refusal is a SIP rejection for reason `budget`.
        assert_eq!(m.rejections().get(Rejection::Budget), 2 + 7);
        assert_eq!(m.rejections().get(Rejection::Zone), 0);
    }

    #[test]
    fn buckets_are_bounded_and_evict_the_least_recent() {
        let m = BudgetMetrics::default();
        let rate = Rate {
            per_second: 0.0,
            burst: 1.0,
        };
        let b = TokenBuckets::new("t", rate, 4, m);
        let now = Instant::now();
        for i in 0..100u8 {
            assert!(b.take(ip(i), now).is_ok());
        }
        assert_eq!(lock(&b.map).len(), 4);
        // 99 is still held (empty); 0 was evicted and starts afresh.
        assert!(b.take(ip(99), now).is_err());
        assert!(b.take(ip(0), now).is_ok());
    }

    #[test]
    fn backoff_doubles_up_to_its_max_and_a_success_resets() {
        let p = BackoffPolicy {
            after_failures: 3,
            base: Duration::from_secs(1),
            max: Duration::from_secs(5),
        };
        assert_eq!(p.delay(2), None);
        assert_eq!(p.delay(3), Some(Duration::from_secs(1)));
        assert_eq!(p.delay(4), Some(Duration::from_secs(2)));
        assert_eq!(p.delay(5), Some(Duration::from_secs(4)));
        assert_eq!(p.delay(6), Some(Duration::from_secs(5)));
        assert_eq!(p.delay(u32::MAX), Some(Duration::from_secs(5)));
    }

    #[tokio::test(start_paused = true)]
    async fn backoff_blocks_for_its_delay() {
        let m = BudgetMetrics::default();
        let p = BackoffPolicy {
            after_failures: 2,
            base: Duration::from_secs(1),
            max: Duration::from_secs(60),
        };
        let b = Backoff::new("f", p, 16, m.clone());
        let key = "alice@ims.example.net".to_string();
        let now = Instant::now();
        assert_eq!(b.failure(key.clone(), now), None);
        assert_eq!(b.blocked(&key, now), None);
        assert_eq!(b.failure(key.clone(), now), Some(Duration::from_secs(1)));
        assert_eq!(b.blocked(&key, now), Some(Duration::from_secs(1)));
        tokio::time::advance(Duration::from_millis(1000)).await;
        assert_eq!(b.blocked(&key, Instant::now()), None);
        assert_eq!(
            b.failure(key.clone(), Instant::now()),
            Some(Duration::from_secs(2))
        );
        b.success(&key);
        assert_eq!(b.blocked(&key, Instant::now()), None);
        assert_eq!(b.failure(key, Instant::now()), None);
        assert_eq!(m.refused("f"), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn recent_keys_lapse_after_their_ttl() {
        let s = RecentSet::new("n", Duration::from_secs(30), 2, BudgetMetrics::default());
        let now = Instant::now();
        s.insert("a", now);
        assert!(s.contains(&"a", now));
        tokio::time::advance(Duration::from_secs(30)).await;
        assert!(!s.contains(&"a", Instant::now()));
        s.insert("a", Instant::now());
        s.insert("b", Instant::now());
        s.insert("c", Instant::now());
        assert!(!s.contains(&"a", Instant::now()));
        assert!(s.contains(&"c", Instant::now()));
    }

    #[test]
    fn a_summary_names_the_top_sources_and_starts_a_new_window() {
        let r = Refusals::new("pcscf", BudgetMetrics::default());
        assert_eq!(r.take_summary(), None);
        for _ in 0..7 {
            r.refused(ip(9), "rate");
        }
        r.refused(ip(8), "backoff");
        let line = r.take_summary().unwrap();
        assert_eq!(
            line,
            "refused 8 requests from 2 sources, top: 127.0.0.9 (7), 127.0.0.8 (1); reasons: backoff 1, rate 7"
        );
        assert_eq!(r.take_summary(), None);
    }

    #[test]
    fn the_ingress_sink_counts_zone_rejections() {
        let m = BudgetMetrics::default();
        let r = Refusals::new("scscf", m.clone());
        let sink = r.sink();
        sink(ip(9), "register");
        sink(ip(9), "orig");
        assert_eq!(m.rejections().get(Rejection::Zone), 2);
        assert_eq!(m.rejections().get(Rejection::Budget), 0);
        assert!(r.take_summary().unwrap().contains("register 1"));
    }
}
