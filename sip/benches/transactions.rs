//! One proxied REGISTER through the transaction layer (RFC 3261 §17), as the proxy
//! engine drives it: a server transaction for the request, a client transaction for
//! the forwarded copy, its 200 matched and passed up, the 200 sent upstream (kept for
//! retransmission), one retransmitted REGISTER answered from it, and Timers J and K
//! ending both transactions. The messages are parsed beforehand (not measured).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use bytes::Bytes;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use ims_sip::message::build::response_with;
use ims_sip::transaction::{LayerLimits, TimerConfig, TransactionLayer, TuEvent};
use ims_sip::{HeaderName, SipMessage};
use tokio::time::Instant;

fn register(via: &str, branch: &str) -> SipMessage {
    SipMessage::parse(format!(
        "REGISTER sip:ims.example.net SIP/2.0\r\n\
Via: SIP/2.0/UDP {via};branch={branch};rport=5060;received=192.0.2.4\r\n\
Max-Forwards: 70\r\n\
From: <sip:user@ims.example.net>;tag=4fa3\r\n\
To: <sip:user@ims.example.net>\r\n\
Call-ID: apb03a0s09dkjdfglkj49111\r\n\
CSeq: 2 REGISTER\r\n\
Contact: <sip:user@192.0.2.4:5060>;expires=600000\r\n\
Authorization: Digest username=\"user@ims.example.net\", realm=\"ims.example.net\", nonce=\"A34Cm+Fva37UYWpGNB34JP\", algorithm=MD5, uri=\"sip:ims.example.net\", response=\"6629fae49393a05397450978507c4ef1\", qop=auth, nc=00000001, cnonce=\"0a4f113b\"\r\n\
Path: <sip:term@pcscf.ims.example.net;lr>\r\n\
Require: path\r\n\
Content-Length: 0\r\n\r\n"
    ))
    .unwrap()
}

/// The messages of one registration: the REGISTER, our forwarded copy, its 200.
fn messages(n: u64) -> (SipMessage, SipMessage, SipMessage) {
    let request = register("192.0.2.4:5060", &format!("z9hG4bKue{n}"));
    let forwarded = register("192.0.2.10:5060", &format!("z9hG4bKpx{n}"));
    let ok = response_with(
        &forwarded,
        200,
        "OK",
        Some("reg1"),
        &[(
            HeaderName::Contact,
            "<sip:user@192.0.2.4:5060>;expires=600000",
        )],
    );
    (
        request,
        forwarded,
        SipMessage::parse(ok.to_bytes()).unwrap(),
    )
}

fn bench(c: &mut Criterion) {
    let mut layer = TransactionLayer::new(
        TimerConfig::default(),
        LayerLimits::default(),
        |_: &Bytes, _: &u8| Ok(()),
    );
    let mut n = 0u64;
    c.bench_function("REGISTER through server + client transactions", |b| {
        b.iter_batched(
            || {
                n += 1;
                messages(n)
            },
            |(request, forwarded, ok)| {
                layer.receive(request.clone(), 1, false);
                let Some(TuEvent::Request { key, .. }) = layer.poll_event() else {
                    panic!("expected a new server transaction");
                };
                let upstream_ok = response_with(&request, 200, "OK", Some("reg1"), &[]);
                layer.send_request(forwarded, 2, false).unwrap();
                layer.receive(ok, 2, false);
                while layer.poll_event().is_some() {}
                layer.respond(&key, upstream_ok).unwrap();
                layer.receive(request, 1, false);
                layer.handle_timeouts(Instant::now() + Duration::from_secs(64));
                while layer.poll_event().is_some() {}
                assert!(layer.is_empty());
            },
            BatchSize::SmallInput,
        )
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
