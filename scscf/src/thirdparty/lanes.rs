//! Where the [`Chain`]s run: one lane per registered identity, so that the chains of
//! one identity run one after the other in the order of their events (an AS never gets
//! a registration's REGISTER after the de-REGISTER that ended it, because an earlier
//! chain waited on a slow AS), the lanes of different identities at the same time.
//!
//! Bounded: at most `max` lanes run at once (each has at most one REGISTER waiting for
//! its final response), a new identity's event past that is dropped with a warning; and
//! at most [`PER_IDENTITY`] events wait behind a running chain: past that the oldest
//! waiting one is dropped (the later events carry the newer state).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, Semaphore};

use super::chain::{Chain, SendRequest};
use super::AsFailure;

/// Events of one identity waiting behind its running chain at most.
pub const PER_IDENTITY: usize = 4;

/// The lanes, shared (`Arc`) by the tasks that run them.
pub struct Lanes {
    own_uri: String,
    send: SendRequest,
    failures: mpsc::Sender<AsFailure>,
    slots: Arc<Semaphore>,
    /// Identities whose lane runs, with the chains waiting in it.
    waiting: Mutex<HashMap<String, VecDeque<Chain>>>,
}

impl std::fmt::Debug for Lanes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lanes")
            .field("own_uri", &self.own_uri)
            .field("free", &self.slots.available_permits())
            .finish_non_exhaustive()
    }
}

impl Lanes {
    /// Lanes sending as `own_uri` through `send`, at most `max` at once; the ASs whose
    /// failure de-registers the user go to `failures`.
    pub fn new(
        own_uri: String,
        send: SendRequest,
        failures: mpsc::Sender<AsFailure>,
        max: usize,
    ) -> Arc<Lanes> {
        Arc::new(Lanes {
            own_uri,
            send,
            failures,
            slots: Arc::new(Semaphore::new(max)),
            waiting: Mutex::new(HashMap::new()),
        })
    }

    fn waiting(&self) -> std::sync::MutexGuard<'_, HashMap<String, VecDeque<Chain>>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `chain` once the chains of its identity before it have run (at once when
    /// there are none), in a task of its own: the caller (the 200 OK) never waits.
    pub fn submit(self: &Arc<Lanes>, chain: Chain) {
        if chain.servers.is_empty() {
            return;
        }
        let mut waiting = self.waiting();
        if let Some(queue) = waiting.get_mut(&chain.impu) {
            if queue.len() >= PER_IDENTITY {
                if let Some(old) = queue.pop_front() {
                    tracing::warn!(impu = %old.impu, kind = ?old.kind, "third-party REGISTERs dropped: too many events of the identity waiting");
                }
            }
            queue.push_back(chain);
            return;
        }
        let Ok(slot) = self.slots.clone().try_acquire_owned() else {
            tracing::warn!(impu = %chain.impu, kind = ?chain.kind, "third-party REGISTERs dropped: too many in flight");
            return;
        };
        waiting.insert(chain.impu.clone(), VecDeque::new());
        drop(waiting);
        let me = self.clone();
        tokio::spawn(async move {
            // The 200 OK to the UE is on its way first.
            tokio::task::yield_now().await;
            let mut next = Some(chain);
            while let Some(chain) = next {
                if let Some(failure) = chain.run(&me.own_uri, &me.send).await {
                    if let Err(e) = me.failures.try_send(failure) {
                        tracing::warn!(error = %e, "de-registration after an AS failure not queued");
                    }
                }
                next = me.next_of(&chain.impu);
            }
            drop(slot);
        });
    }

    /// The next chain of `impu`'s lane; `None` closes the lane.
    fn next_of(&self, impu: &str) -> Option<Chain> {
        let mut waiting = self.waiting();
        let next = waiting.get_mut(impu).and_then(VecDeque::pop_front);
        if next.is_none() {
            waiting.remove(impu);
        }
        next
    }

    /// Identities whose lane runs (tests).
    #[cfg(test)]
    fn running(&self) -> usize {
        self.waiting().len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use ims_sip::proxy::engine::OriginateError;
    use ims_sip::{HeaderName, SipMessage};
    use tokio::sync::oneshot;

    use super::*;
    use crate::ifc::{DefaultHandling, RegistrationType};
    use crate::thirdparty::chain::tests::{answer, server};
    use crate::thirdparty::chain::SendFuture;

    type Pending = (
        String,
        String,
        oneshot::Sender<Result<SipMessage, OriginateError>>,
    );

    /// A stand-in for the SIP engine whose answers the test gives: each request comes
    /// out of the receiver as (Request-URI, To, where to answer).
    fn held_sender() -> (SendRequest, mpsc::UnboundedReceiver<Pending>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let send: SendRequest = Arc::new(move |req: SipMessage| {
            let uri = req
                .request()
                .map(|r| String::from_utf8_lossy(&r.uri).into_owned())
                .unwrap_or_default();
            let to = req
                .headers
                .get_str(&HeaderName::To)
                .unwrap_or_default()
                .to_string();
            let (done, answer) = oneshot::channel();
            let _ = tx.send((uri, to, done));
            Box::pin(async move { answer.await.unwrap_or(Err(OriginateError::NotRunning)) })
                as SendFuture
        });
        (send, rx)
    }

    fn chain(impu: &str, kind: RegistrationType, servers: &[&str]) -> Chain {
        Chain {
            impu: impu.into(),
            kind,
            expires: 0,
            register: None,
            ok: None,
            servers: servers
                .iter()
                .map(|s| server(s, DefaultHandling::SessionTerminated))
                .collect(),
        }
    }

    /// Nothing more is sent for a while (the tasks have run as far as they can).
    async fn quiet(rx: &mut mpsc::UnboundedReceiver<Pending>) -> bool {
        tokio::time::timeout(Duration::from_millis(50), rx.recv())
            .await
            .is_err()
    }

    async fn next(rx: &mut mpsc::UnboundedReceiver<Pending>) -> Pending {
        tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("a request")
            .expect("the sender lives")
    }

    const ALICE: &str = "sip:alice@x";
    const BOB: &str = "sip:bob@x";

    #[tokio::test]
    async fn the_next_as_waits_for_the_previous_final_response() {
        let (send, mut rx) = held_sender();
        let (failures, _f) = mpsc::channel(4);
        let lanes = Lanes::new("sip:s".into(), send, failures, 8);
        lanes.submit(chain(
            ALICE,
            RegistrationType::Initial,
            &["sip:as1", "sip:as2"],
        ));
        let (uri, _, done) = next(&mut rx).await;
        assert_eq!(uri, "sip:as1");
        assert!(quiet(&mut rx).await, "as2 waits for as1's answer");
        done.send(Ok(answer(200))).unwrap();
        let (uri, _, done) = next(&mut rx).await;
        assert_eq!(uri, "sip:as2");
        done.send(Ok(answer(200))).unwrap();
        assert!(quiet(&mut rx).await);
        assert_eq!(lanes.running(), 0, "the lane closes");
    }

    #[tokio::test]
    async fn a_later_event_of_the_identity_waits_for_the_earlier_chain_others_do_not() {
        let (send, mut rx) = held_sender();
        let (failures, _f) = mpsc::channel(4);
        let lanes = Lanes::new("sip:s".into(), send, failures, 8);
        lanes.submit(chain(
            ALICE,
            RegistrationType::Initial,
            &["sip:as1", "sip:as2"],
        ));
        let (uri, to, as1) = next(&mut rx).await;
        assert_eq!((uri.as_str(), to.as_str()), ("sip:as1", "<sip:alice@x>"));
        // Alice de-registers while as1 has not answered; Bob registers.
        lanes.submit(chain(ALICE, RegistrationType::De, &["sip:as1", "sip:as2"]));
        lanes.submit(chain(BOB, RegistrationType::Initial, &["sip:as1"]));
        let (uri, to, bob) = next(&mut rx).await;
        assert_eq!((uri.as_str(), to.as_str()), ("sip:as1", "<sip:bob@x>"));
        bob.send(Ok(answer(200))).unwrap();
        assert!(quiet(&mut rx).await, "alice's de-REGISTERs wait");
        as1.send(Ok(answer(200))).unwrap();
        let mut order = Vec::new();
        for _ in 0..3 {
            let (uri, to, done) = next(&mut rx).await;
            order.push(uri);
            assert_eq!(to, "<sip:alice@x>");
            done.send(Ok(answer(200))).unwrap();
        }
        // Her registration's REGISTER to as2, then her de-REGISTERs.
        assert_eq!(order, ["sip:as2", "sip:as1", "sip:as2"]);
        assert!(quiet(&mut rx).await);
    }

    #[tokio::test]
    async fn a_failure_that_deregisters_is_handed_over_and_the_lane_goes_on() {
        let (send, mut rx) = held_sender();
        let (failures, mut failed) = mpsc::channel(4);
        let lanes = Lanes::new("sip:s".into(), send, failures, 8);
        lanes.submit(chain(ALICE, RegistrationType::Re, &["sip:as1", "sip:as2"]));
        lanes.submit(chain(ALICE, RegistrationType::De, &["sip:as1", "sip:as2"]));
        let (_, _, done) = next(&mut rx).await;
        done.send(Ok(answer(500))).unwrap();
        let f = tokio::time::timeout(Duration::from_secs(5), failed.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(f.server, "sip:as1");
        // as2 never gets the re-registration, only the de-registration queued behind.
        let mut order = Vec::new();
        for _ in 0..2 {
            let (uri, _, done) = next(&mut rx).await;
            order.push(uri);
            done.send(Ok(answer(200))).unwrap();
        }
        assert_eq!(order, ["sip:as1", "sip:as2"]);
        assert!(quiet(&mut rx).await);
    }

    #[tokio::test]
    async fn bounded_in_lanes_and_in_events_waiting() {
        let (send, mut rx) = held_sender();
        let (failures, _f) = mpsc::channel(4);
        let lanes = Lanes::new("sip:s".into(), send, failures, 1);
        lanes.submit(chain(ALICE, RegistrationType::Initial, &["sip:first"]));
        let (_, _, first) = next(&mut rx).await;
        // No lane left for Bob: dropped.
        lanes.submit(chain(BOB, RegistrationType::Initial, &["sip:as1"]));
        // Alice: PER_IDENTITY + 1 events waiting; the oldest goes.
        for i in 0..=PER_IDENTITY {
            let name = format!("sip:w{i}");
            lanes.submit(chain(ALICE, RegistrationType::Re, &[name.as_str()]));
        }
        first.send(Ok(answer(200))).unwrap();
        let mut order = Vec::new();
        for _ in 0..PER_IDENTITY {
            let (uri, to, done) = next(&mut rx).await;
            assert_eq!(to, "<sip:alice@x>");
            order.push(uri);
            done.send(Ok(answer(200))).unwrap();
        }
        let want: Vec<String> = (1..=PER_IDENTITY).map(|i| format!("sip:w{i}")).collect();
        assert_eq!(order, want);
        assert!(quiet(&mut rx).await, "bob's event was dropped");
        assert_eq!(lanes.running(), 0);
        // The lane is free again: Bob gets through now.
        lanes.submit(chain(BOB, RegistrationType::Initial, &["sip:as1"]));
        let (_, to, _) = next(&mut rx).await;
        assert_eq!(to, "<sip:bob@x>");
    }
}
