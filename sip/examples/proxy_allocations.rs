//! Heap allocations the proxy engine makes per proxied registration (issue 12: the cost
//! left per message is the number of allocations, not the allocator). A
//! [`ProxyEngine`] on loopback forwards IMS-sized REGISTERs to a registrar stand-in
//! answering each with a 200; dhat's global allocator counts every allocation in the
//! process while a measured batch runs. The UE's REGISTERs are formatted before the
//! batch, and what the stand-in allocates per answer is measured apart and taken off,
//! so the figure is the engine's (with tokio's share for its sockets and tasks): one
//! REGISTER in, forwarded, its 200 in and forwarded back.
//!
//! ```text
//! cargo run --release -p ims-sip --example proxy_allocations [-- REGISTERS [DHAT_FILE]]
//! ```
//!
//! With a file name, a DHAT profile (allocation sites with their counts, for the whole
//! run) is written there.
//!
//! Counts, unlike CPU time, do not depend on what else the machine runs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ims_sip::proxy::engine::{EngineConfig, ProxyEngine};
use ims_sip::transport::TransportConfig;
use tokio::net::UdpSocket;

#[path = "support/registration.rs"]
mod registration;
use registration::{answer, register, registrar, ToRegistrar};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

/// Registrations sent in one burst before waiting for their 200s.
const BURST: usize = 50;

/// Allocations (count, bytes) so far.
fn allocated() -> (u64, u64) {
    let s = dhat::HeapStats::get();
    (s.total_blocks, s.total_bytes)
}

/// Sends `count` REGISTERs from `ue` through `proxy` in bursts and waits for their
/// 200s; returns how many were answered and the allocations (count, bytes) meanwhile.
async fn run(
    ue: &UdpSocket,
    proxy: SocketAddr,
    buf: &mut [u8],
    first: usize,
    count: usize,
) -> (u64, u64, u64) {
    let me = ue.local_addr().unwrap();
    let requests: Vec<String> = (first..first + count).map(|n| register(me, n)).collect();
    let before = allocated();
    let mut answered = 0u64;
    for burst in requests.chunks(BURST) {
        for r in burst {
            ue.send_to(r.as_bytes(), proxy).await.unwrap();
        }
        for _ in burst {
            let got = tokio::time::timeout(Duration::from_secs(5), ue.recv_from(buf));
            match got.await {
                Ok(Ok((n, _))) if buf[..n].starts_with(b"SIP/2.0 200") => answered += 1,
                _ => break,
            }
        }
    }
    let after = allocated();
    (answered, after.0 - before.0, after.1 - before.1)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let registrations: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(5_000);
    let _profiler = match std::env::args().nth(2) {
        Some(file) => dhat::Profiler::builder().file_name(file).build(),
        None => dhat::Profiler::builder().testing().build(),
    };

    let uas = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let target = format!("sip:{};transport=udp", uas.local_addr().unwrap());
    let sample = Arc::new(Mutex::new(Vec::new()));
    tokio::spawn(registrar(uas, sample.clone()));
    let transport = TransportConfig {
        udp: vec!["127.0.0.1:0".parse().unwrap()],
        ..TransportConfig::default()
    };
    let engine = ProxyEngine::start(transport, EngineConfig::default(), ToRegistrar { target })
        .await
        .unwrap();
    let proxy = engine.transport().local_addrs()[0].1;
    let ue = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut buf = vec![0u8; 65_535];

    // A warm-up batch (tables and buffers grown), then the measured one.
    run(&ue, proxy, &mut buf, 0, 1_000).await;
    let (answered, blocks, bytes) = run(&ue, proxy, &mut buf, 1_000_000, registrations).await;

    // The stand-in's own allocations per answer, measured on a forwarded REGISTER.
    let forwarded = sample.lock().unwrap().clone();
    let rounds = 1_000u64;
    let before = allocated();
    for _ in 0..rounds {
        std::hint::black_box(answer(&forwarded));
    }
    let after = allocated();
    let (stand_in_blocks, stand_in_bytes) = (
        (after.0 - before.0) as f64 / rounds as f64,
        (after.1 - before.1) as f64 / rounds as f64,
    );

    let n = answered.max(1) as f64;
    println!("registrations answered 200: {answered} of {registrations}");
    println!(
        "stand-in registrar per answer: {stand_in_blocks:.1} allocations, {stand_in_bytes:.0} bytes (taken off)"
    );
    println!(
        "engine per proxied registration (REGISTER and its 200, in and out): {:.1} allocations, {:.0} bytes allocated",
        blocks as f64 / n - stand_in_blocks,
        bytes as f64 / n - stand_in_bytes
    );
}
