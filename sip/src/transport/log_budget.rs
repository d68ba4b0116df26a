//! A bound on the log lines peers can cause. Malformed messages, oversize datagrams,
//! failed handshakes and refused connections each deserve a line, but a flood of them
//! must not become a flood of log lines (disk, journal rate limits hiding the lines that
//! matter): at most `burst` lines per window, the rest counted, and one line with the
//! count when the next window opens.

use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::TransportStats;

/// Lines written per window before the rest are counted instead.
const BURST: u32 = 20;
/// Length of a window.
const WINDOW: Duration = Duration::from_secs(10);

/// The log budget of one transport layer, shared by its listeners and connections.
#[derive(Debug)]
pub(super) struct LogBudget {
    state: Mutex<Window>,
}

#[derive(Debug)]
struct Window {
    start: Option<Instant>,
    used: u32,
    suppressed: u64,
}

impl LogBudget {
    pub(super) fn new() -> LogBudget {
        LogBudget {
            state: Mutex::new(Window {
                start: None,
                used: 0,
                suppressed: 0,
            }),
        }
    }

    /// Whether a line about a peer's input may be written now; when not, it is counted
    /// in `suppressed` (the transport's `log_lines_suppressed`).
    pub(super) fn allow(&self, suppressed: &AtomicU64) -> bool {
        let (allowed, reported) = self.allow_at(Instant::now());
        if let Some(count) = reported {
            tracing::warn!(
                count,
                window_secs = WINDOW.as_secs(),
                "log lines about peers' input suppressed in the last window"
            );
        }
        if !allowed {
            TransportStats::inc(suppressed);
        }
        allowed
    }

    /// `(allowed, lines suppressed in the window that just closed, if any)`.
    fn allow_at(&self, now: Instant) -> (bool, Option<u64>) {
        let mut w = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let mut reported = None;
        let expired = w
            .start
            .is_none_or(|start| now.saturating_duration_since(start) >= WINDOW);
        if expired {
            if w.suppressed > 0 {
                reported = Some(w.suppressed);
            }
            *w = Window {
                start: Some(now),
                used: 0,
                suppressed: 0,
            };
        }
        if w.used < BURST {
            w.used += 1;
            (true, reported)
        } else {
            w.suppressed += 1;
            (false, reported)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_written_the_rest_counted_and_reported_when_the_next_window_opens() {
        let budget = LogBudget::new();
        let t0 = Instant::now();
        let allowed = (0..100)
            .filter(|i| budget.allow_at(t0 + Duration::from_millis(*i)).0)
            .count();
        assert_eq!(allowed, BURST as usize);
        // Still the same window: nothing reported, still refused.
        assert_eq!(budget.allow_at(t0 + WINDOW / 2), (false, None));
        // The next window: allowed again, with the count of the last one.
        let next = budget.allow_at(t0 + WINDOW + Duration::from_millis(1));
        assert_eq!(next, (true, Some(100 - u64::from(BURST) + 1)));
        // And reported once only.
        assert_eq!(budget.allow_at(t0 + WINDOW * 3 / 2), (true, None));
    }
}
