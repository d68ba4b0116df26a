//! Duplicate request detection (RFC 6733 §5.5.4 and §6.2): requests are keyed by
//! End-to-End Identifier and Origin-Host within a bounded window; a duplicate of an
//! answered request gets the same answer again.

use std::collections::{HashMap, VecDeque};

use crate::message::Message;

/// What the cache knows of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// First time: process it.
    New,
    /// Still being processed: drop the duplicate.
    InProgress,
    /// Answered: send this answer again.
    Answered(Message),
}

/// Bounded window of recent requests.
#[derive(Debug)]
pub struct DuplicateCache {
    capacity: usize,
    order: VecDeque<(String, u32)>,
    entries: HashMap<(String, u32), Option<Message>>,
}

impl DuplicateCache {
    /// A window of the last `capacity` requests.
    pub fn new(capacity: usize) -> DuplicateCache {
        DuplicateCache {
            capacity,
            order: VecDeque::new(),
            entries: HashMap::new(),
        }
    }

    /// Looks a request up and records it if new.
    pub fn check(&mut self, origin_host: &str, end_to_end: u32) -> Seen {
        let key = (origin_host.to_owned(), end_to_end);
        match self.entries.get(&key) {
            Some(Some(ans)) => return Seen::Answered(ans.clone()),
            Some(None) => return Seen::InProgress,
            None => {}
        }
        if self.capacity == 0 {
            return Seen::New;
        }
        while self.order.len() >= self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.entries.remove(&old);
            }
        }
        self.order.push_back(key.clone());
        self.entries.insert(key, None);
        Seen::New
    }

    /// Records the answer sent for a request still in the window.
    pub fn answered(&mut self, origin_host: &str, end_to_end: u32, answer: &Message) {
        if let Some(slot) = self.entries.get_mut(&(origin_host.to_owned(), end_to_end)) {
            *slot = Some(answer.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_and_replays_within_window() {
        let mut c = DuplicateCache::new(2);
        assert_eq!(c.check("a", 1), Seen::New);
        assert_eq!(c.check("a", 1), Seen::InProgress);
        assert_eq!(c.check("b", 1), Seen::New, "origin host is part of the key");
        let ans = Message::request(300, 0);
        c.answered("a", 1, &ans);
        assert_eq!(c.check("a", 1), Seen::Answered(ans));
        // The window holds two entries: a third evicts the oldest.
        assert_eq!(c.check("c", 1), Seen::New);
        assert_eq!(c.check("a", 1), Seen::New);
    }
}
