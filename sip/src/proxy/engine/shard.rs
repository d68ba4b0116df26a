//! Shards of one engine ([`super::EngineConfig::shards`], issue 12 item 2): several
//! `core` tasks, each with its own UDP sockets (one per listener, bound to the same
//! address with `SO_REUSEPORT`), transaction layer, response contexts, timers and
//! decisions under way. The policy, the configuration and the counters are shared.
//!
//! Where a message goes:
//! * a datagram reaches the shard whose socket the kernel picked by a hash of its
//!   source and destination addresses and ports: a UAC's requests of one transaction
//!   (retransmissions, its CANCEL and ACK) come from the same socket to the same
//!   address (RFC 3261 §18.1.1, §9.1, §17.1.1.3), so they reach the same shard;
//! * a TCP or TLS connection's messages all go to shard `connection id % shards`
//!   ([`crate::transport::TransportLayer::bind_shards`]);
//! * a response belongs to the shard that sent the request: the branch of our Via names
//!   it ([`push_tag`]: `z9hG4bK` then `S` and two hex digits). Over UDP the shard sent
//!   the request from its own client socket, whose port our Via names
//!   ([`crate::transport::TransportLayer::for_client_requests`]), so a next hop that
//!   answers to the Via reaches the shard's socket; one that answers to the listener
//!   instead (or a request sent over a flow) may reach any of our sockets: a response
//!   that reaches another shard is handed to its owner once, over a bounded channel;
//! * the INVITE server transactions are listed in a map shared by the shards
//!   ([`Owners`]): a CANCEL, an ACK or an INVITE retransmission that reaches a shard
//!   without that transaction is handed to the shard that has it (a UAC behind a NAT
//!   that rebinds, or a previous hop that sends from several ports). Other requests
//!   are not looked up: a non-INVITE retransmission from another port than the
//!   original is served as a new transaction, as by two proxies behind a load
//!   balancer.
//!
//! A handed-over message is handled where it arrives, never handed on again. When the
//! owner's channel is full it is dropped (UDP peers retransmit) and counted.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::mpsc;

use super::stats::EngineStats;
use crate::message::key::TransactionKey;
use crate::message::via::{Via, BRANCH_MAGIC};
use crate::transport::Source;
use crate::{HeaderName, Method, SipMessage};

/// The most shards an engine runs (what the branch tag and the counters hold).
pub const MAX_SHARDS: usize = 32;

/// What follows the magic cookie in the branch of a sharded engine's Via.
const TAG: char = 'S';

/// Stripes of [`Owners`]: shards seldom wait for each other on one lock.
const STRIPES: usize = 16;

/// A message handed from the shard it reached to the shard that owns its transaction.
pub(super) struct Handover {
    pub(super) message: SipMessage,
    pub(super) source: Source,
}

/// One shard's view of its siblings.
pub(super) struct Shard {
    /// This shard's index.
    pub(super) index: usize,
    /// Every shard's handover channel, by index (this one's included).
    peers: Arc<[mpsc::Sender<Handover>]>,
    /// The INVITE server transactions of every shard.
    owners: Arc<Owners>,
}

impl Shard {
    /// The shards of an engine of `count` (1 to [`MAX_SHARDS`]): each one's [`Shard`]
    /// and the receiver of its handover channel (of `queue` messages).
    pub(super) fn all(count: usize, queue: usize) -> Vec<(Shard, mpsc::Receiver<Handover>)> {
        let (senders, receivers): (Vec<_>, Vec<_>) =
            (0..count).map(|_| mpsc::channel(queue.max(1))).unzip();
        let peers: Arc<[mpsc::Sender<Handover>]> = senders.into();
        let owners = Arc::new(Owners::default());
        receivers
            .into_iter()
            .enumerate()
            .map(|(index, rx)| {
                let shard = Shard {
                    index,
                    peers: peers.clone(),
                    owners: owners.clone(),
                };
                (shard, rx)
            })
            .collect()
    }

    /// True when the engine runs more than one shard.
    pub(super) fn is_sharded(&self) -> bool {
        self.peers.len() > 1
    }

    /// Writes the start of a branch of ours: the magic cookie, then this shard's tag
    /// when the engine is sharded (so that the branch is today's with one shard).
    pub(super) fn push_branch_start(&self, out: &mut String) {
        out.push_str(BRANCH_MAGIC);
        if self.is_sharded() {
            push_tag(out, self.index);
        }
    }

    /// The other shard `message` belongs to, if any: for a response, the shard its top
    /// Via's branch names; for an INVITE, ACK or CANCEL whose INVITE server transaction
    /// is not `local`, the shard that has it. `key` is the message's transaction key.
    pub(super) fn owner_elsewhere(
        &self,
        message: &SipMessage,
        key: &TransactionKey,
        local: impl FnOnce(&TransactionKey) -> bool,
    ) -> Option<usize> {
        let owner = if message.is_request() {
            if !matches!(
                message.method(),
                Some(Method::Invite | Method::Ack | Method::Cancel)
            ) {
                return None;
            }
            let invite = key.with_method(Method::Invite);
            if local(&invite) {
                return None;
            }
            self.owners.owner(&invite)?
        } else {
            let top = message.headers.first_value(&HeaderName::Via)?;
            let via = Via::parse(std::str::from_utf8(&top).ok()?).ok()?;
            tag_of(via.branch()?)?
        };
        (owner != self.index && owner < self.peers.len()).then_some(owner)
    }

    /// Hands `handover` to shard `to`; dropped (and counted) when its channel is full.
    pub(super) fn hand_over(&self, to: usize, handover: Handover, stats: &EngineStats) {
        let Some(peer) = self.peers.get(to) else {
            return;
        };
        let response = !handover.message.is_request();
        match peer.try_send(handover) {
            Ok(()) => {
                EngineStats::inc(&stats.handovers);
                if response {
                    EngineStats::inc(&stats.response_handovers);
                }
            }
            Err(_) => {
                EngineStats::inc(&stats.handovers_dropped);
                tracing::debug!(to, "handover queue full: message dropped");
            }
        }
    }

    /// Records that this shard has the INVITE server transaction `key`.
    pub(super) fn own(&self, key: &TransactionKey) {
        if self.is_sharded() && key.method() == &Method::Invite {
            self.owners.insert(key, self.index);
        }
    }

    /// Forgets `key` when this shard had it (its transaction ended).
    pub(super) fn disown(&self, key: &TransactionKey) {
        if self.is_sharded() && key.method() == &Method::Invite {
            self.owners.remove(key, self.index);
        }
    }
}

/// Appends the tag naming `shard` to a branch being written after its magic cookie.
fn push_tag(out: &mut String, shard: usize) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(TAG);
    for nibble in [(shard >> 4) & 0xf, shard & 0xf] {
        out.push(char::from(HEX.get(nibble).copied().unwrap_or(b'0')));
    }
}

/// The shard a branch of ours names ([`push_tag`]), if it names one.
fn tag_of(branch: &str) -> Option<usize> {
    let rest = branch.strip_prefix(BRANCH_MAGIC)?.strip_prefix(TAG)?;
    let digits = rest.get(..2)?;
    usize::from_str_radix(digits, 16).ok()
}

/// The INVITE server transactions of every shard, by key: which shard has each.
/// Bounded by the shards' transaction tables (an entry lives as long as its
/// transaction).
struct Owners {
    stripes: Vec<Mutex<HashMap<TransactionKey, usize>>>,
    hasher: RandomState,
}

impl Default for Owners {
    fn default() -> Self {
        Owners {
            stripes: (0..STRIPES).map(|_| Mutex::default()).collect(),
            hasher: RandomState::new(),
        }
    }
}

impl Owners {
    fn stripe(&self, key: &TransactionKey) -> Option<&Mutex<HashMap<TransactionKey, usize>>> {
        let hash = self.hasher.hash_one(key);
        let len = self.stripes.len() as u64;
        usize::try_from(hash % len.max(1))
            .ok()
            .and_then(|i| self.stripes.get(i))
    }

    fn owner(&self, key: &TransactionKey) -> Option<usize> {
        let stripe = self.stripe(key)?;
        let map = stripe.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(key).copied()
    }

    fn insert(&self, key: &TransactionKey, shard: usize) {
        if let Some(stripe) = self.stripe(key) {
            let mut map = stripe.lock().unwrap_or_else(PoisonError::into_inner);
            map.insert(key.clone(), shard);
        }
    }

    fn remove(&self, key: &TransactionKey, shard: usize) {
        if let Some(stripe) = self.stripe(key) {
            let mut map = stripe.lock().unwrap_or_else(PoisonError::into_inner);
            if map.get(key) == Some(&shard) {
                map.remove(key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tag_names_the_shard_and_only_ours_parse() {
        for shard in [0, 1, 15, 16, MAX_SHARDS - 1] {
            let mut branch = String::from(BRANCH_MAGIC);
            push_tag(&mut branch, shard);
            branch.push_str("0123abcd.ffff");
            assert_eq!(tag_of(&branch), Some(shard), "{branch}");
        }
        assert_eq!(tag_of("z9hG4bK0123abcd"), None);
        assert_eq!(tag_of("z9hG4bKS"), None);
        assert_eq!(tag_of("z9hG4bKSzz12"), None);
        assert_eq!(tag_of("xyzS01"), None);
    }

    #[test]
    fn an_owner_is_forgotten_only_by_itself() {
        let owners = Owners::default();
        let key = TransactionKey::rfc3261(
            bytes::Bytes::from_static(b"z9hG4bK1"),
            bytes::Bytes::from_static(b"ua:5060"),
            Method::Invite,
        );
        owners.insert(&key, 1);
        owners.remove(&key, 0);
        assert_eq!(owners.owner(&key), Some(1));
        owners.remove(&key, 1);
        assert_eq!(owners.owner(&key), None);
    }
}
