//! The Open state (RFC 6733 §5.6): requests and answers in both directions, the
//! device watchdog (RFC 3539 §3.4), DPR/DPA (§5.4), the checks every incoming request
//! gets before the application sees it (§6.1, §7.1), and duplicate detection (§5.5.4).
//!
//! Watchdog: a timer of Tw (with jitter) restarts on every message received; when it
//! expires a DWR is sent; when it expires again with the DWR unanswered the connection
//! is closed (failover) and, for an initiator, re-opened with backoff. Requests waiting
//! for an answer on a failed connection complete with an error.

use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, Semaphore};
use tokio::time::{sleep_until, Instant};

use super::dup::{DuplicateCache, Seen};
use super::shared::{lock, CloseReason, Outgoing, PeerState, Shared};
use super::state::{Closed, Closing, Link, Open};
use super::{BoxFuture, Handler};
use crate::avp::Avp;
use crate::codec::Frame;
use crate::dict::{
    base, check_request_avps, command, disconnect_cause, result, COMMON_APPLICATION_ID,
};
use crate::message::{Message, FLAG_REQUEST};

/// How the Open loop ends.
enum Exit {
    Closed(CloseReason),
    Closing(i32),
}

impl Open {
    pub(crate) fn new(
        shared: Arc<Shared>,
        link: Link,
        remote_host: String,
        commands: Option<Arc<[u32]>>,
    ) -> Open {
        tracing::info!(peer = %remote_host, "diameter: peer open");
        *lock(&shared.remote_host) = Some(remote_host.clone());
        Shared::bump(&shared.counters.opened);
        Open {
            shared,
            link,
            remote_host,
            commands,
        }
    }

    /// Runs the open connection until it closes; `handler` answers incoming requests.
    pub async fn run(mut self, handler: Arc<dyn Handler>) -> Closed {
        let (out_tx, mut out_rx) = mpsc::channel::<Outgoing>(256);
        if self.shared.is_stopped() {
            // Stopped while connecting: say goodbye at once.
            let _ = out_tx.try_send(Outgoing::Disconnect(disconnect_cause::REBOOTING));
        }
        *lock(&self.shared.link) = Some(out_tx);
        // Open only once requests can be sent: a waiter on Open may send at once.
        self.shared.set_state(PeerState::Open);
        // Answers produced by handler tasks: (Origin-Host, End-to-End, answer).
        let (ans_tx, mut ans_rx) = mpsc::channel::<(String, u32, Message)>(256);
        let mut dup = DuplicateCache::new(self.shared.cfg.duplicate_window);
        let inflight = Arc::new(Semaphore::new(self.shared.cfg.max_inflight_requests));
        let mut dwr_pending = false;
        let mut deadline = Instant::now() + self.shared.cfg.jittered_tw();
        let exit = loop {
            tokio::select! {
                frame = self.link.next() => match frame {
                    None => break Exit::Closed(CloseReason::ConnectionLost),
                    Some(Err(e)) => {
                        tracing::warn!(peer = %self.remote_host, error = %e, "diameter: closing on framing error");
                        break Exit::Closed(CloseReason::Framing);
                    }
                    Some(Ok(frame)) => {
                        deadline = Instant::now() + self.shared.cfg.jittered_tw();
                        dwr_pending = false;
                        match self.on_frame(frame, &mut dup, &inflight, &ans_tx, &handler).await {
                            Ok(None) => {}
                            Ok(Some(reason)) => break Exit::Closed(reason),
                            Err(()) => break Exit::Closed(CloseReason::ConnectionLost),
                        }
                    }
                },
                Some(out) = out_rx.recv() => match out {
                    Outgoing::Request(m) => {
                        if self.send(&m).await.is_err() {
                            break Exit::Closed(CloseReason::ConnectionLost);
                        }
                    }
                    Outgoing::Disconnect(cause) => break Exit::Closing(cause),
                },
                Some((host, e2e, ans)) = ans_rx.recv() => {
                    dup.answered(&host, e2e, &ans);
                    if self.send(&ans).await.is_err() {
                        break Exit::Closed(CloseReason::ConnectionLost);
                    }
                }
                () = sleep_until(deadline) => {
                    if dwr_pending {
                        tracing::warn!(peer = %self.remote_host, "diameter: watchdog expired");
                        break Exit::Closed(CloseReason::WatchdogExpired);
                    }
                    let dwr = self.base_request(command::DEVICE_WATCHDOG);
                    if self.send(&dwr).await.is_err() {
                        break Exit::Closed(CloseReason::ConnectionLost);
                    }
                    Shared::bump(&self.shared.counters.dwr_sent);
                    dwr_pending = true;
                    deadline = Instant::now() + self.shared.cfg.jittered_tw();
                }
            }
        };
        *lock(&self.shared.link) = None;
        lock(&self.shared.pending).clear();
        match exit {
            Exit::Closed(reason) => {
                // Dropping the link closes the transport without flushing: the peer may
                // be the reason a flush would never complete.
                drop(self.link);
                Closed::after(self.shared, reason)
            }
            Exit::Closing(cause) => {
                let mut dpr = self.base_request(command::DISCONNECT_PEER);
                dpr.avps.push(Avp::i32(&base::DISCONNECT_CAUSE, cause));
                self.shared.set_state(PeerState::Closing);
                if self.send(&dpr).await.is_err() {
                    return Closed::after(self.shared, CloseReason::ConnectionLost);
                }
                Closing {
                    shared: self.shared,
                    link: self.link,
                    dpr,
                    reason: CloseReason::LocalDisconnect(cause),
                }
                .receive_dpa()
                .await
            }
        }
    }

    /// Writes one message; a peer that does not read for the exchange timeout is treated
    /// as gone (a stalled writer would otherwise also stall the watchdog).
    async fn send(&mut self, m: &Message) -> Result<(), ()> {
        let t = self.shared.cfg.exchange_timeout;
        match tokio::time::timeout(t, self.link.send(m)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                tracing::warn!(peer = %self.remote_host, error = %e, "diameter: write failed");
                Err(())
            }
            Err(_) => {
                tracing::warn!(peer = %self.remote_host, "diameter: write stalled");
                Err(())
            }
        }
    }

    /// A DWR or DPR with fresh identifiers, Origin-Host/Realm and Origin-State-Id.
    fn base_request(&self, code: u32) -> Message {
        let cfg = &self.shared.cfg;
        let mut m = Message::request(code, COMMON_APPLICATION_ID);
        m.flags = FLAG_REQUEST;
        m.hop_by_hop = self.shared.ids.next_hop_by_hop();
        m.end_to_end = self.shared.ids.next_end_to_end();
        m.avps.push(Avp::utf8(&base::ORIGIN_HOST, &cfg.origin_host));
        m.avps
            .push(Avp::utf8(&base::ORIGIN_REALM, &cfg.origin_realm));
        if code == command::DEVICE_WATCHDOG {
            m.avps
                .push(Avp::u32(&base::ORIGIN_STATE_ID, cfg.origin_state_id));
        }
        m
    }

    fn error(&self, req: &Message, code: u32, failed: Option<&Avp>) -> Message {
        let cfg = &self.shared.cfg;
        Message::error_answer(req, &cfg.origin_host, &cfg.origin_realm, code, failed)
    }

    /// Handles one frame; `Ok(Some(_))` ends the connection, `Err` is a send failure.
    async fn on_frame(
        &mut self,
        frame: Frame,
        dup: &mut DuplicateCache,
        inflight: &Arc<Semaphore>,
        ans_tx: &mpsc::Sender<(String, u32, Message)>,
        handler: &Arc<dyn Handler>,
    ) -> Result<Option<CloseReason>, ()> {
        let m = match frame {
            Frame::Message(m) => m,
            Frame::Invalid { header, error } => {
                if header.flags & FLAG_REQUEST != 0 {
                    let req = header.to_message();
                    let ans = self.error(&req, error.result_code(), None);
                    let metrics = &self.shared.cfg.metrics;
                    metrics.request_received(req.command_code);
                    metrics.answer_sent(&ans, None);
                    self.send(&ans).await?;
                }
                return Ok(None);
            }
        };
        if !m.is_request() {
            self.on_answer(m);
            return Ok(None);
        }
        let cfg = self.shared.cfg.clone();
        match m.command_code {
            command::DEVICE_WATCHDOG => {
                Shared::bump(&self.shared.counters.dwr_received);
                let mut ans = Message::answer_to(&m, &cfg.origin_host, &cfg.origin_realm);
                ans.avps
                    .insert(0, Avp::u32(&base::RESULT_CODE, result::DIAMETER_SUCCESS));
                ans.avps
                    .push(Avp::u32(&base::ORIGIN_STATE_ID, cfg.origin_state_id));
                self.send(&ans).await?;
                return Ok(None);
            }
            command::DISCONNECT_PEER => {
                let cause = m
                    .find(&base::DISCONNECT_CAUSE)
                    .and_then(|a| a.as_i32().ok())
                    .unwrap_or(0);
                let mut ans = Message::answer_to(&m, &cfg.origin_host, &cfg.origin_realm);
                ans.avps
                    .insert(0, Avp::u32(&base::RESULT_CODE, result::DIAMETER_SUCCESS));
                self.send(&ans).await?;
                tracing::info!(peer = %self.remote_host, cause, "diameter: DPR received");
                return Ok(Some(CloseReason::PeerDisconnected(cause)));
            }
            command::CAPABILITIES_EXCHANGE => {
                // §5.6 R-Open + R-Rcv-CER: answer with our capabilities again. The peer
                // cannot rename itself: its Origin-Host was bound when it opened.
                let code = match m.origin_host() {
                    None => result::DIAMETER_MISSING_AVP,
                    Some(h) if h.eq_ignore_ascii_case(&self.remote_host) => {
                        super::cer::common(&cfg, &m)
                    }
                    Some(_) => result::DIAMETER_UNKNOWN_PEER,
                };
                let ans = super::cer::cea(&cfg, &m, code);
                self.send(&ans).await?;
                return Ok(None);
            }
            _ => {}
        }
        let metrics = cfg.metrics.clone();
        metrics.request_received(m.command_code);
        let received = tokio::time::Instant::now();
        let reject = if m.application_id == COMMON_APPLICATION_ID {
            Some((result::DIAMETER_COMMAND_UNSUPPORTED, None))
        } else if !cfg.applications.contains(&m.application_id) {
            Some((result::DIAMETER_APPLICATION_UNSUPPORTED, None))
        } else if self
            .commands
            .as_ref()
            .is_some_and(|allowed| !allowed.contains(&m.command_code))
        {
            // A bound peer asking what its role may not (an I-CSCF's MAR for credentials).
            Some((result::DIAMETER_AUTHORIZATION_REJECTED, None))
        } else {
            check_request_avps(&m.avps)
                .err()
                .map(|(avp, code)| (code, Some(avp)))
        };
        if let Some((code, failed)) = reject {
            tracing::warn!(peer = %self.remote_host, command = m.command_code, app = m.application_id, code, "diameter: request refused");
            let ans = self.error(&m, code, failed.as_ref());
            metrics.answer_sent(&ans, None);
            self.send(&ans).await?;
            return Ok(None);
        }
        let Ok(permit) = inflight.clone().try_acquire_owned() else {
            tracing::warn!(peer = %self.remote_host, "diameter: too many requests in flight");
            let ans = self.error(&m, result::DIAMETER_TOO_BUSY, None);
            metrics.answer_sent(&ans, None);
            self.send(&ans).await?;
            return Ok(None);
        };
        let host = m.origin_host().unwrap_or(&self.remote_host).to_owned();
        match dup.check(&host, m.end_to_end) {
            Seen::InProgress => {
                tracing::debug!(peer = %self.remote_host, e2e = m.end_to_end, "diameter: duplicate in progress dropped");
            }
            Seen::Answered(mut ans) => {
                ans.hop_by_hop = m.hop_by_hop;
                metrics.answer_sent(&ans, None);
                self.send(&ans).await?;
            }
            Seen::New => {
                // Run to completion where it can (issue 12): the handler's answer is
                // polled once here, and a request it answers without waiting (a cache
                // hit) is answered from this task; one that waits for I/O (a store
                // read or write) goes on on a task of its own, and its answer comes
                // back through `ans_tx`.
                let (hbh, e2e) = (m.hop_by_hop, m.end_to_end);
                let h = handler.clone();
                let mut answer: BoxFuture<'static, Message> =
                    Box::pin(async move { h.handle(m).await });
                let ready = answer
                    .as_mut()
                    .poll(&mut Context::from_waker(Waker::noop()));
                match ready {
                    Poll::Ready(ans) => {
                        Shared::bump(&self.shared.counters.answered_inline);
                        let ans = identified(ans, hbh, e2e);
                        metrics.answer_sent(&ans, Some(received.elapsed()));
                        dup.answered(&host, e2e, &ans);
                        drop(permit);
                        self.send(&ans).await?;
                    }
                    Poll::Pending => {
                        Shared::bump(&self.shared.counters.answered_on_task);
                        let tx = ans_tx.clone();
                        tokio::spawn(async move {
                            let ans = identified(answer.await, hbh, e2e);
                            metrics.answer_sent(&ans, Some(received.elapsed()));
                            let _ = tx.send((host, e2e, ans)).await;
                            drop(permit);
                        });
                    }
                }
            }
        }
        Ok(None)
    }

    fn on_answer(&mut self, m: Message) {
        match m.command_code {
            command::DEVICE_WATCHDOG => Shared::bump(&self.shared.counters.dwa_received),
            command::CAPABILITIES_EXCHANGE | command::DISCONNECT_PEER => {}
            _ => match lock(&self.shared.pending).remove(&m.hop_by_hop) {
                Some(tx) => {
                    let _ = tx.send(m);
                }
                None => {
                    tracing::warn!(peer = %self.remote_host, hbh = m.hop_by_hop, "diameter: answer to no pending request dropped");
                }
            },
        }
    }
}

/// `ans` as the answer to the request `hbh`/`e2e`.
fn identified(mut ans: Message, hbh: u32, e2e: u32) -> Message {
    ans.hop_by_hop = hbh;
    ans.end_to_end = e2e;
    ans.flags &= !FLAG_REQUEST;
    ans
}

impl Closed {
    pub(crate) fn after(shared: Arc<Shared>, reason: CloseReason) -> Closed {
        tracing::info!(peer = %shared.name(), ?reason, "diameter: peer closed");
        *lock(&shared.last_reason) = Some(reason.clone());
        shared.set_state(PeerState::Closed);
        Closed {
            shared,
            reason: Some(reason),
        }
    }
}
