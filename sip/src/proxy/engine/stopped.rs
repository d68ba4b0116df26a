//! Noticing that the engine stopped by itself. Its tasks run until the [`ProxyEngine`]
//! is dropped, so one that ends early panicked (a policy hook, a bug) or lost a channel:
//! the transport still answers nothing, or answers without proxying, while the process
//! lives on. A node awaits [`ProxyEngine::stopped`] beside its shutdown signal and exits
//! non-zero, so that a supervisor restarts it instead of `/health` saying ok.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::Poll;

use super::ProxyEngine;

/// One of the engine's tasks ended before the engine was dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the SIP proxy engine's {task} task {how}")]
pub struct EngineStopped {
    /// Which task: `core` (the one that proxies) or `send` (writes that wait).
    pub task: &'static str,
    /// How it ended: `panicked`, `was cancelled` or `returned`.
    pub how: &'static str,
}

impl ProxyEngine {
    /// Resolves when one of the engine's tasks has ended; pending for as long as the
    /// engine works. Cancel-safe: it only polls the tasks' join handles (a task reported
    /// once is not reported again).
    pub async fn stopped(&mut self) -> EngineStopped {
        poll_fn(|cx| {
            for i in 0..self.tasks.len() {
                let (task, handle) = &mut self.tasks[i];
                if let Poll::Ready(result) = Pin::new(handle).poll(cx) {
                    let how = match result {
                        Ok(()) => "returned",
                        Err(e) if e.is_panic() => "panicked",
                        Err(_) => "was cancelled",
                    };
                    let task = *task;
                    // A finished handle must not be polled again.
                    self.tasks.swap_remove(i);
                    return Poll::Ready(EngineStopped { task, how });
                }
            }
            Poll::Pending
        })
        .await
    }
}

impl ProxyEngine {
    /// A check that is true while every task of the engine runs (a node's readiness:
    /// false once one ended, before the node notices through [`ProxyEngine::stopped`]).
    pub fn running_check(&self) -> impl Fn() -> bool + Send + Sync + 'static {
        let handles: Vec<tokio::task::AbortHandle> =
            self.tasks.iter().map(|(_, t)| t.abort_handle()).collect();
        move || handles.iter().all(|h| !h.is_finished())
    }
}
