//! Heap bytes a proxied registration holds in the engine while its transactions wait
//! out their timers (issue 12 item 4). A [`ProxyEngine`] on loopback forwards IMS-sized
//! REGISTERs (with Authorization and Path) to a registrar stand-in that answers each
//! with a 200 carrying Contact, Service-Route and P-Associated-URI. Once every 200 is
//! back at the UE, the server transactions sit in Completed (Timer J) and the client
//! transactions in Completed (Timer K). The heap (counted by dhat's global allocator)
//! is read before the load, right after it (both live), once the client transactions
//! have ended (server side only), and after every timer has run out (nothing may be
//! left: no leak).
//!
//! ```text
//! cargo run --release -p ims-sip --example transaction_memory [-- REGISTERS [DHAT_FILE]]
//! ```
//!
//! T1 is 1 s here (Timer J 64 s) and T4 20 s, so that a slow (debug, loaded) run still
//! reads the heap with every transaction live; what each state holds does not depend
//! on the timer values. Over UDP with the default timers a server transaction waits
//! 32 s and a client transaction 5 s, so a soak at R registrations/s holds
//! R x (32 s x server side + 5 s x client side): the "soak-equivalent" line is that
//! per registration of the 32 s window. The run takes about 70 s.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::sync::atomic::Ordering;
use std::time::Duration;

use ims_sip::proxy::engine::{EngineConfig, ProxyEngine};
use ims_sip::transaction::TimerConfig;
use ims_sip::transport::TransportConfig;
use tokio::net::UdpSocket;

#[path = "support/registration.rs"]
mod registration;
use registration::{register, registrar, ToRegistrar};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

/// Registrations sent in one burst before waiting for their 200s.
const BURST: usize = 100;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let registrations: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(5_000);
    // With a file name, a DHAT profile of the heap (by allocation site, at its peak:
    // the transactions' wait states) is written there and the timers are not waited for.
    let profile = std::env::args().nth(2);
    let _profiler = match &profile {
        Some(file) => dhat::Profiler::builder().file_name(file).build(),
        None => dhat::Profiler::builder().testing().build(),
    };

    let uas = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let target = format!("sip:{};transport=udp", uas.local_addr().unwrap());
    tokio::spawn(registrar(uas, Default::default()));
    let config = EngineConfig {
        timers: TimerConfig {
            t1: Duration::from_secs(1),
            t4: Duration::from_secs(20),
            ..TimerConfig::default()
        },
        ..EngineConfig::default()
    };
    let transport = TransportConfig {
        udp: vec!["127.0.0.1:0".parse().unwrap()],
        ..TransportConfig::default()
    };
    let engine = ProxyEngine::start(transport, config, ToRegistrar { target })
        .await
        .unwrap();
    let proxy = engine.transport().local_addrs()[0].1;
    let ue = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let me = ue.local_addr().unwrap();
    let mut buf = vec![0u8; 65_535];
    let live = || engine.stats().transactions_active.load(Ordering::Relaxed);

    let before = dhat::HeapStats::get().curr_bytes;
    let started = std::time::Instant::now();
    let mut answered = 0;
    for start in (0..registrations).step_by(BURST) {
        let end = (start + BURST).min(registrations);
        for n in start..end {
            ue.send_to(register(me, n).as_bytes(), proxy).await.unwrap();
        }
        for _ in start..end {
            let got = tokio::time::timeout(Duration::from_secs(5), ue.recv_from(&mut buf)).await;
            match got {
                Ok(Ok((n, _))) if buf[..n].starts_with(b"SIP/2.0 200") => answered += 1,
                _ => break,
            }
        }
    }
    // Let the last 200 reach the UE before reading the heap.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let both = dhat::HeapStats::get().curr_bytes.saturating_sub(before);
    println!(
        "registrations answered 200: {answered} of {registrations} in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let per = |bytes: usize| bytes / registrations.max(1);
    println!(
        "server + client transactions live ({}): {both} bytes, {} per registration",
        live(),
        per(both)
    );
    if profile.is_some() {
        return;
    }
    // Timer K (T4) ends the client transactions; the server ones wait on.
    let loaded = std::time::Instant::now();
    tokio::time::sleep(Duration::from_secs(21)).await;
    let server = dhat::HeapStats::get().curr_bytes.saturating_sub(before);
    let client = both.saturating_sub(server);
    println!(
        "server side only ({} live): {server} bytes, {} per registration; so the client side holds {} per registration",
        live(),
        per(server),
        per(client)
    );
    println!(
        "soak-equivalent (32 s server + 5 s client, per registration of the 32 s window): {} bytes",
        per(server) + per(client) * 5 / 32
    );
    // Timer J (64*T1) runs out; nothing may stay but the tables' capacity.
    tokio::time::sleep(Duration::from_secs(66).saturating_sub(loaded.elapsed())).await;
    let after = dhat::HeapStats::get().curr_bytes;
    println!(
        "after the timers: {} live transactions, heap {} bytes above the start",
        live(),
        after.saturating_sub(before)
    );
}
