//! The invalidation feed (`GET /v1/feed`, server-sent events, see `policyd::api`): every
//! policy change wipes the decision cache, so a filter drops stale decisions as soon as
//! the event arrives. While the feed is down the cached decisions stay in use (new ones
//! still need the policy service); on reconnection the `ready` event's revision tells
//! whether anything changed meanwhile, and if so the cache is wiped.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::Shared;

/// Longest SSE line accepted; a longer one drops the connection.
const MAX_LINE: usize = 64 * 1024;
/// First and longest wait before reconnecting.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(200), Duration::from_secs(5));

#[derive(Deserialize)]
struct Revision {
    revision: i64,
}

/// One server-sent event.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Event {
    pub(super) name: String,
    pub(super) data: String,
}

/// Incremental SSE parser (the subset policyd sends: `event:`, `data:`, comments).
#[derive(Default)]
pub(super) struct Parser {
    buf: Vec<u8>,
    event: Event,
}

impl Parser {
    /// Feeds bytes; returns the completed events, or `Err` on an overlong line.
    pub(super) fn push(&mut self, bytes: &[u8]) -> Result<Vec<Event>, ()> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.buf.drain(..=pos).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                let ev = std::mem::take(&mut self.event);
                if !ev.name.is_empty() || !ev.data.is_empty() {
                    out.push(ev);
                }
            } else if let Some(v) = line.strip_prefix("event:") {
                self.event.name = v.trim_start().to_owned();
            } else if let Some(v) = line.strip_prefix("data:") {
                if !self.event.data.is_empty() {
                    self.event.data.push('\n');
                }
                self.event.data.push_str(v.trim_start());
                if self.event.data.len() > MAX_LINE {
                    return Err(());
                }
            }
        }
        if self.buf.len() > MAX_LINE {
            return Err(());
        }
        Ok(out)
    }
}

/// Applies one event to the filter's state.
fn apply(shared: &Shared, ev: &Event) {
    match ev.name.as_str() {
        "ready" => {
            let Ok(r) = serde_json::from_str::<Revision>(&ev.data) else {
                tracing::warn!("malformed ready event; wiping decisions");
                shared.wipe();
                return;
            };
            let known = shared.revision.swap(r.revision, Ordering::AcqRel);
            if known != r.revision {
                tracing::info!(
                    known,
                    now = r.revision,
                    "policies changed while the feed was away; wiping decisions"
                );
                shared.wipe();
            }
        }
        "policy" => {
            if let Ok(r) = serde_json::from_str::<Revision>(&ev.data) {
                shared.revision.fetch_max(r.revision, Ordering::AcqRel);
            }
            tracing::debug!(change = %ev.data, "policy changed; wiping decisions");
            shared.wipe();
        }
        "reset" => {
            tracing::info!("feed reset; wiping decisions");
            shared.wipe();
        }
        _ => {}
    }
}

/// Follows the feed until the filter is dropped, reconnecting with backoff.
pub(super) async fn follow(shared: std::sync::Weak<Shared>, url: String, http: reqwest::Client) {
    let mut wait = BACKOFF.0;
    loop {
        let Some(s) = shared.upgrade() else { return };
        match session(&s, &url, &http).await {
            Ok(()) => wait = BACKOFF.0,
            Err(e) => {
                tracing::warn!(error = %e, "policy feed unavailable; cached decisions stay in use")
            }
        }
        s.feed_up.store(false, Ordering::Release);
        s.metrics.feed_up.set(0);
        drop(s);
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(BACKOFF.1);
    }
}

/// One connection to the feed; `Ok` when it ended after having been up.
async fn session(s: &Arc<Shared>, url: &str, http: &reqwest::Client) -> Result<(), String> {
    let auth = s
        .validator
        .service_auth()
        .await
        .map_err(|e| e.to_string())?;
    let mut response = http
        .get(url)
        .header("X-Auth-Token", auth.token())
        .header("Accept", "text/event-stream")
        .send()
        .await
        .map_err(|e| e.without_url().to_string())?;
    match response.status().as_u16() {
        200 => {}
        401 => {
            s.validator.service_auth_refused(&auth).await;
            return Err("service token refused (401)".into());
        }
        other => return Err(format!("status {other}")),
    }
    let mut parser = Parser::default();
    let mut up = false;
    loop {
        let chunk = match response.chunk().await {
            Ok(Some(c)) => c,
            Ok(None) => break,
            Err(e) => return if up { Ok(()) } else { Err(e.to_string()) },
        };
        let events = parser
            .push(&chunk)
            .map_err(|()| "overlong event line".to_string())?;
        for ev in &events {
            if ev.name == "ready" && !up {
                up = true;
                s.feed_up.store(true, Ordering::Release);
                s.metrics.feed_up.set(1);
                tracing::info!("policy feed connected");
            }
            apply(s, ev);
        }
    }
    if up {
        Ok(())
    } else {
        Err("feed ended before ready".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_events_split_anywhere() {
        let text = b": keep-alive\n\nevent: ready\ndata: {\"revision\":3}\n\nevent: policy\r\ndata: {\"revision\":4}\r\n\r\n";
        for cut in 0..text.len() {
            let mut p = Parser::default();
            let mut events = p.push(&text[..cut]).unwrap();
            events.extend(p.push(&text[cut..]).unwrap());
            assert_eq!(
                events,
                [
                    Event {
                        name: "ready".into(),
                        data: "{\"revision\":3}".into()
                    },
                    Event {
                        name: "policy".into(),
                        data: "{\"revision\":4}".into()
                    },
                ],
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn refuses_an_endless_line() {
        let mut p = Parser::default();
        let junk = vec![b'x'; MAX_LINE / 2];
        assert!(p.push(&junk).is_ok());
        assert!(p.push(&junk).is_ok());
        assert!(p.push(&junk).is_err());
    }
}
