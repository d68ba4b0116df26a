//! Batched UDP reads of the transport (`recvmmsg` on Linux): what many datagrams queued
//! at once become, read in batches by the owner of the UDP ingress.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod transport_support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use ims_sip::transport::{TransportEvent, TransportLayer};
use ims_sip::HeaderName;
use tokio::net::UdpSocket;
use transport_support::*;

fn call_id(event: &TransportEvent) -> String {
    match event {
        TransportEvent::Message(m) => {
            let id = m.message.headers.first_value(&HeaderName::CallId);
            String::from_utf8(id.unwrap_or_default().to_vec()).unwrap()
        }
        TransportEvent::Malformed(m) => panic!("malformed: {}", m.error),
    }
}

/// 150 datagrams (more than one system call takes) queued before the first read, with
/// an oversize one and keep-alives among them: every message comes up once, in the
/// order sent, in batches no larger than asked; the oversize one is dropped and
/// counted, and the slots after it are read right.
#[tokio::test]
async fn many_datagrams_queued_at_once_come_up_in_order_oversize_dropped() {
    let mut cfg = config(&[any_v4()], &[]);
    cfg.limits.max_message_size = 1024;
    let (layer, _rx, mut ingress) = TransportLayer::bind_reading_udp(cfg).await.unwrap();
    let server = layer.local_addrs()[0].1;
    let client = UdpSocket::bind(any_v4()).await.unwrap();
    let count = 150;
    for i in 0..count {
        client
            .send_to(
                &request("UDP", &format!("many-{i}"), &"b".repeat(i % 7)),
                server,
            )
            .await
            .unwrap();
        match i {
            70 => client.send_to(&[b'A'; 1025], server).await.unwrap(),
            100 => client.send_to(b"\r\n\r\n", server).await.unwrap(),
            _ => 0,
        };
    }
    // Let every datagram reach the socket's buffer.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut got = Vec::new();
    let mut batches = Vec::new();
    // Each round takes at least one datagram: bounded.
    for _ in 0..count {
        if got.len() == count {
            break;
        }
        let mut out = Vec::new();
        tokio::time::timeout(WAIT, ingress.recv(&mut out, 64))
            .await
            .expect("datagrams in time");
        assert!(out.len() <= 64, "batch of {}", out.len());
        batches.push(out.len());
        got.extend(out.iter().map(call_id));
    }
    let want: Vec<String> = (0..count).map(|i| format!("many-{i}")).collect();
    assert_eq!(got, want, "in batches {batches:?}");
    assert_eq!(layer.stats().parse_errors.load(Ordering::Relaxed), 1);
    assert_eq!(
        layer.stats().messages_in.load(Ordering::Relaxed),
        count as u64
    );
    // Nothing more waits.
    let mut out = Vec::new();
    let more = tokio::time::timeout(Duration::from_millis(100), ingress.recv(&mut out, 8)).await;
    assert!(more.is_err(), "unexpected {}", out.len());
}

/// A datagram that arrives after the socket was drained (a short batch clears its
/// readiness without another read) still wakes the reader.
#[tokio::test]
async fn a_datagram_after_a_drained_batch_wakes_the_reader() {
    let (layer, _rx, mut ingress) = TransportLayer::bind_reading_udp(config(&[any_v4()], &[]))
        .await
        .unwrap();
    let server = layer.local_addrs()[0].1;
    let client = UdpSocket::bind(any_v4()).await.unwrap();
    for round in 0..20 {
        let sends = round % 3 + 1;
        for i in 0..sends {
            let id = format!("wake-{round}-{i}");
            client
                .send_to(&request("UDP", &id, ""), server)
                .await
                .unwrap();
        }
        let mut got = Vec::new();
        for _ in 0..sends {
            if got.len() == sends {
                break;
            }
            let mut out = Vec::new();
            tokio::time::timeout(WAIT, ingress.recv(&mut out, 64))
                .await
                .expect("woken in time");
            got.extend(out.iter().map(call_id));
        }
        let want: Vec<String> = (0..sends).map(|i| format!("wake-{round}-{i}")).collect();
        assert_eq!(got, want);
    }
}
