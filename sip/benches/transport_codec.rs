//! Stream framing throughput: concatenated messages in one buffer, and the same bytes
//! arriving in small segments.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ims_sip::transport::codec::SipStreamCodec;
use tokio_util::codec::Decoder;

const MSG: &[u8] = b"INVITE sip:bob@ims.example.com SIP/2.0\r\n\
Via: SIP/2.0/TCP pcscf.ims.example.com:5060;branch=z9hG4bK776asdhds\r\n\
Via: SIP/2.0/TCP ue.example.com:5060;received=192.0.2.4;rport=5060;branch=z9hG4bKnashds8\r\n\
Max-Forwards: 69\r\n\
To: <sip:bob@ims.example.com>\r\n\
From: <sip:alice@ims.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@192.0.2.4:5060;transport=tcp>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 40\r\n\r\n\
v=0\r\no=- 0 0 IN IP4 192.0.2.4\r\ns=-\r\nt=0 0\r\n";

fn frames(input: &[u8], chunk: usize) -> usize {
    let mut codec = SipStreamCodec::new(65_535);
    let mut buf = BytesMut::with_capacity(input.len());
    let mut n = 0;
    for part in input.chunks(chunk) {
        buf.extend_from_slice(part);
        while let Some(_frame) = codec.decode(&mut buf).unwrap() {
            n += 1;
        }
    }
    n
}

fn bench(c: &mut Criterion) {
    let input: Vec<u8> = MSG.repeat(100);
    let mut group = c.benchmark_group("transport_codec");
    group.throughput(Throughput::Bytes(input.len() as u64));
    group.bench_function("100 messages, one buffer", |b| {
        b.iter(|| assert_eq!(frames(&input, input.len()), 100))
    });
    group.bench_function("100 messages, 64-byte segments", |b| {
        b.iter(|| assert_eq!(frames(&input, 64), 100))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
