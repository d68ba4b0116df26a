//! The node's tokio runtime, with as many worker threads as the node has parallel work.
//!
//! A SIP node's engine is one task per shard (`[sip] workers`, default 1) that receives,
//! decides and sends on the thread it runs on: further worker threads would only move
//! that task and its helpers between cores (a thread switch per hop), so a SIP node's
//! runtime has one worker thread per shard unless `[node] threads` says otherwise. The
//! HSS and `policyd` keep one per core. `TOKIO_WORKER_THREADS`, when set, wins over both.

/// The environment variable that overrides the worker threads of every node.
pub const WORKER_THREADS_ENV: &str = "TOKIO_WORKER_THREADS";

/// A multi-threaded runtime with `threads` worker threads (at least one), or with
/// `TOKIO_WORKER_THREADS` of them when that is set.
pub fn node_runtime(threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if std::env::var_os(WORKER_THREADS_ENV).is_none() {
        builder.worker_threads(threads.max(1));
    }
    builder.build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runtime_has_the_threads_asked() {
        // The test process does not set TOKIO_WORKER_THREADS (nextest and cargo test
        // pass the environment through; CI sets none).
        if std::env::var_os(WORKER_THREADS_ENV).is_some() {
            return;
        }
        for threads in [1, 3] {
            let rt = node_runtime(threads).unwrap();
            assert_eq!(rt.metrics().num_workers(), threads);
        }
        assert_eq!(node_runtime(0).unwrap().metrics().num_workers(), 1);
    }
}
