//! Diameter codec hot path: encode and decode of MAR/MAA and SAR/SAA (the SAA with a
//! ~2 kB IMSSubscription User-Data), as the HSS and S-CSCF do per registration.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "../tests/common/samples.rs"]
#[allow(dead_code)]
mod samples;

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ims_diameter::cx::{Maa, Mar, Saa, Sar};
use ims_diameter::Message;

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("cx");
    let cases: [(&str, Message); 4] = [
        ("MAR", samples::mar().to_message()),
        ("MAA", samples::maa().to_message()),
        ("SAR", samples::sar().to_message()),
        ("SAA", samples::saa().to_message()),
    ];
    for (name, msg) in &cases {
        let bytes = msg.to_bytes();
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        g.bench_function(format!("{name}/encode"), |b| {
            let mut buf = BytesMut::with_capacity(4096);
            b.iter(|| {
                buf.clear();
                black_box(msg).encode(&mut buf);
            })
        });
        g.bench_function(format!("{name}/decode"), |b| {
            b.iter(|| Message::decode(black_box(bytes.clone())).unwrap())
        });
    }
    // Typed round trip: struct -> bytes -> struct, as a peer sees a request or answer.
    g.bench_function("MAR+MAA/typed-round-trip", |b| {
        let (mar, maa) = (samples::mar(), samples::maa());
        b.iter(|| {
            let m =
                Mar::from_message(&Message::decode(mar.to_message().to_bytes()).unwrap()).unwrap();
            let a =
                Maa::from_message(&Message::decode(maa.to_message().to_bytes()).unwrap()).unwrap();
            black_box((m, a))
        })
    });
    g.bench_function("SAR+SAA/typed-round-trip", |b| {
        let (sar, saa) = (samples::sar(), samples::saa());
        b.iter(|| {
            let s =
                Sar::from_message(&Message::decode(sar.to_message().to_bytes()).unwrap()).unwrap();
            let a =
                Saa::from_message(&Message::decode(saa.to_message().to_bytes()).unwrap()).unwrap();
            black_box((s, a))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
