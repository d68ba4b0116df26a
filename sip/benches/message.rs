//! SIP message hot path: parse, serialize, parse+serialize and transaction key for
//! realistic IMS traffic (REGISTER with AKA credentials, 401 challenge, INVITE with SDP,
//! 200 OK), plus rsipstack 0.7.14 parsing the same REGISTER for comparison.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ims_sip::message::key::TransactionKey;
use ims_sip::SipMessage;

const REGISTER: &str = "REGISTER sip:ims.mnc001.mcc001.3gppnetwork.org SIP/2.0\r\n\
Via: SIP/2.0/TCP 10.0.2.15:5060;branch=z9hG4bK-524287-1---pcscf77f2;rport, SIP/2.0/UDP [2001:db8:0:1::15]:5060;received=2001:db8:0:1::15;rport=5060;branch=z9hG4bKue8a6d1f\r\n\
Path: <sip:term@pcscf.ims.mnc001.mcc001.3gppnetwork.org;lr>\r\n\
Max-Forwards: 69\r\n\
From: <sip:001010000000001@ims.mnc001.mcc001.3gppnetwork.org>;tag=2948572018\r\n\
To: <sip:001010000000001@ims.mnc001.mcc001.3gppnetwork.org>\r\n\
Call-ID: 1j9FpLxk3uxtm8tn@2001:db8:0:1::15\r\n\
CSeq: 2 REGISTER\r\n\
Contact: <sip:001010000000001@[2001:db8:0:1::15]:5060>;+sip.instance=\"<urn:gsma:imei:35209900-176148-0>\";+g.3gpp.icsi-ref=\"urn%3Aurn-7%3A3gpp-service.ims.icsi.mmtel\";+g.3gpp.smsip;reg-id=1;expires=600000\r\n\
Authorization: Digest username=\"001010000000001@ims.mnc001.mcc001.3gppnetwork.org\", realm=\"ims.mnc001.mcc001.3gppnetwork.org\", nonce=\"W2z1d+6oQ8pQ5T8PjC1mbnh3Y5qGAAB7Hs4Q9Ykb3Ts=\", uri=\"sip:ims.mnc001.mcc001.3gppnetwork.org\", response=\"6629fae49393a05397450978507c4ef1\", algorithm=AKAv1-MD5, cnonce=\"0a4f113b\", qop=auth, nc=00000001, integrity-protected=\"ip-assoc-pending\"\r\n\
Supported: path, gruu, sec-agree\r\n\
Require: sec-agree\r\n\
Proxy-Require: sec-agree\r\n\
Security-Verify: ipsec-3gpp;alg=hmac-sha-1-96;ealg=null;prot=esp;mod=trans;spi-c=2718281;spi-s=3141592;port-c=5062;port-s=5064\r\n\
Allow: INVITE, ACK, CANCEL, BYE, UPDATE, PRACK, MESSAGE, OPTIONS, NOTIFY, REFER\r\n\
P-Access-Network-Info: 3GPP-E-UTRAN-FDD;utran-cell-id-3gpp=0010100010019B01\r\n\
P-Visited-Network-ID: \"ims.mnc001.mcc001.3gppnetwork.org\"\r\n\
P-Charging-Vector: icid-value=\"pcscf.ims-1700000000-123456\";orig-ioi=ims.mnc001.mcc001.3gppnetwork.org\r\n\
User-Agent: IMS-UE/1.0\r\n\
Expires: 600000\r\n\
Content-Length: 0\r\n\
\r\n";

const CHALLENGE: &str = "SIP/2.0 401 Unauthorized\r\n\
Via: SIP/2.0/TCP 10.0.2.15:5060;branch=z9hG4bK-524287-1---pcscf77f2;rport=5060;received=10.0.2.15, SIP/2.0/UDP [2001:db8:0:1::15]:5060;received=2001:db8:0:1::15;rport=5060;branch=z9hG4bKue8a6d1f\r\n\
Path: <sip:term@pcscf.ims.mnc001.mcc001.3gppnetwork.org;lr>\r\n\
From: <sip:001010000000001@ims.mnc001.mcc001.3gppnetwork.org>;tag=2948572018\r\n\
To: <sip:001010000000001@ims.mnc001.mcc001.3gppnetwork.org>;tag=scscf-3f1c9a\r\n\
Call-ID: 1j9FpLxk3uxtm8tn@2001:db8:0:1::15\r\n\
CSeq: 1 REGISTER\r\n\
WWW-Authenticate: Digest realm=\"ims.mnc001.mcc001.3gppnetwork.org\", nonce=\"W2z1d+6oQ8pQ5T8PjC1mbnh3Y5qGAAB7Hs4Q9Ykb3Ts=\", algorithm=AKAv1-MD5, qop=\"auth,auth-int\", ik=\"00112233445566778899aabbccddeeff\", ck=\"ffeeddccbbaa99887766554433221100\"\r\n\
Server: ims-core scscf\r\n\
Content-Length: 0\r\n\
\r\n";

const SDP: &str = "v=0\r\n\
o=- 1700000000 1700000000 IN IP6 2001:db8:0:1::15\r\n\
s=-\r\n\
c=IN IP6 2001:db8:0:1::15\r\n\
t=0 0\r\n\
m=audio 49152 RTP/AVP 116 118 100\r\n\
b=AS:41\r\n\
a=rtpmap:116 AMR-WB/16000/1\r\n\
a=fmtp:116 mode-change-capability=2;max-red=0\r\n\
a=rtpmap:118 AMR/8000/1\r\n\
a=fmtp:118 mode-change-capability=2;max-red=0\r\n\
a=rtpmap:100 telephone-event/16000\r\n\
a=curr:qos local none\r\n\
a=curr:qos remote none\r\n\
a=des:qos mandatory local sendrecv\r\n\
a=des:qos optional remote sendrecv\r\n\
a=sendrecv\r\n";

fn invite() -> String {
    format!(
        "INVITE tel:+15551230002;phone-context=ims.mnc001.mcc001.3gppnetwork.org SIP/2.0\r\n\
Via: SIP/2.0/TCP scscf.ims.mnc001.mcc001.3gppnetwork.org:6060;branch=z9hG4bK8f3c.scscf1, SIP/2.0/TCP pcscf.ims.mnc001.mcc001.3gppnetwork.org:5060;branch=z9hG4bK8f3c.pcscf1;rport=5060, SIP/2.0/UDP [2001:db8:0:1::15]:5060;received=2001:db8:0:1::15;rport=5060;branch=z9hG4bKinv0001\r\n\
Max-Forwards: 67\r\n\
Route: <sip:mmtel.ims.mnc001.mcc001.3gppnetwork.org;lr>, <sip:scscf.ims.mnc001.mcc001.3gppnetwork.org:6060;lr;odi=4dc1f0>\r\n\
Record-Route: <sip:scscf.ims.mnc001.mcc001.3gppnetwork.org:6060;lr>\r\n\
Record-Route: <sip:mo@pcscf.ims.mnc001.mcc001.3gppnetwork.org;lr>\r\n\
From: <sip:001010000000001@ims.mnc001.mcc001.3gppnetwork.org>;tag=a8d2b1c4\r\n\
To: <tel:+15551230002;phone-context=ims.mnc001.mcc001.3gppnetwork.org>\r\n\
Call-ID: 7be2a5d0c1f44c3b@2001:db8:0:1::15\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:001010000000001@[2001:db8:0:1::15]:5060>;+g.3gpp.icsi-ref=\"urn%3Aurn-7%3A3gpp-service.ims.icsi.mmtel\";+sip.instance=\"<urn:gsma:imei:35209900-176148-0>\"\r\n\
P-Asserted-Identity: <sip:+15551230001@ims.mnc001.mcc001.3gppnetwork.org>, <tel:+15551230001>\r\n\
P-Access-Network-Info: 3GPP-E-UTRAN-FDD;utran-cell-id-3gpp=0010100010019B01\r\n\
P-Charging-Vector: icid-value=\"pcscf.ims-1700000001-654321\";orig-ioi=ims.mnc001.mcc001.3gppnetwork.org\r\n\
P-Charging-Function-Addresses: ccf=pri_ccf_address\r\n\
Accept-Contact: *;+g.3gpp.icsi-ref=\"urn%3Aurn-7%3A3gpp-service.ims.icsi.mmtel\"\r\n\
Supported: 100rel, timer, precondition, histinfo\r\n\
Require: sec-agree\r\n\
Allow: INVITE, ACK, CANCEL, BYE, UPDATE, PRACK, MESSAGE, OPTIONS, NOTIFY, REFER\r\n\
Session-Expires: 1800\r\n\
Min-SE: 90\r\n\
User-Agent: IMS-UE/1.0\r\n\
Content-Type: application/sdp\r\n\
Content-Length: {}\r\n\
\r\n\
{SDP}",
        SDP.len()
    )
}

fn ok_200() -> String {
    format!(
        "SIP/2.0 200 OK\r\n\
Via: SIP/2.0/TCP scscf.ims.mnc001.mcc001.3gppnetwork.org:6060;branch=z9hG4bK8f3c.scscf1, SIP/2.0/TCP pcscf.ims.mnc001.mcc001.3gppnetwork.org:5060;branch=z9hG4bK8f3c.pcscf1;rport=5060, SIP/2.0/UDP [2001:db8:0:1::15]:5060;received=2001:db8:0:1::15;rport=5060;branch=z9hG4bKinv0001\r\n\
Record-Route: <sip:scscf.ims.mnc001.mcc001.3gppnetwork.org:6060;lr>\r\n\
Record-Route: <sip:mo@pcscf.ims.mnc001.mcc001.3gppnetwork.org;lr>\r\n\
From: <sip:001010000000001@ims.mnc001.mcc001.3gppnetwork.org>;tag=a8d2b1c4\r\n\
To: <tel:+15551230002;phone-context=ims.mnc001.mcc001.3gppnetwork.org>;tag=b7e1c9\r\n\
Call-ID: 7be2a5d0c1f44c3b@2001:db8:0:1::15\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:+15551230002@[2001:db8:0:2::20]:5060>\r\n\
P-Asserted-Identity: <sip:+15551230002@ims.mnc001.mcc001.3gppnetwork.org>\r\n\
P-Charging-Vector: icid-value=\"pcscf.ims-1700000001-654321\";orig-ioi=ims.mnc001.mcc001.3gppnetwork.org;term-ioi=ims.mnc002.mcc001.3gppnetwork.org\r\n\
Supported: 100rel, timer\r\n\
Session-Expires: 1800;refresher=uac\r\n\
Content-Type: application/sdp\r\n\
Content-Length: {}\r\n\
\r\n\
{SDP}",
        SDP.len()
    )
}

fn bench_ims(c: &mut Criterion) {
    let invite = invite();
    let ok = ok_200();
    let messages: [(&str, Bytes); 4] = [
        ("register", Bytes::from_static(REGISTER.as_bytes())),
        ("401", Bytes::from_static(CHALLENGE.as_bytes())),
        ("invite_sdp", Bytes::from(invite.into_bytes())),
        ("200_ok_sdp", Bytes::from(ok.into_bytes())),
    ];
    for (name, wire) in &messages {
        let parsed = SipMessage::parse(wire.clone()).unwrap();
        assert_eq!(parsed.to_bytes(), *wire, "{name} round-trips");
        let mut group = c.benchmark_group(format!("ims_sip/{name}"));
        group.throughput(Throughput::Bytes(wire.len() as u64));
        group.bench_function("parse", |b| {
            b.iter(|| SipMessage::parse(black_box(wire.clone())).unwrap())
        });
        group.bench_function("serialize", |b| b.iter(|| black_box(&parsed).to_bytes()));
        group.bench_function("parse_serialize", |b| {
            b.iter(|| {
                SipMessage::parse(black_box(wire.clone()))
                    .unwrap()
                    .to_bytes()
            })
        });
        group.bench_function("transaction_key", |b| {
            b.iter(|| TransactionKey::of(black_box(&parsed)).unwrap())
        });
        group.finish();
    }
}

fn bench_rsipstack(c: &mut Criterion) {
    use rsipstack::sip::SipMessage as RsipMessage;
    // Is rsipstack's output byte-exact? For the canonical REGISTER above, and for one
    // with a compact header name and comma-joined Vias (tests/data/register_aka.sip).
    let compact: &[u8] = include_bytes!("../tests/data/register_aka.sip");
    for (name, input) in [
        ("REGISTER", REGISTER.as_bytes()),
        ("register_aka.sip", compact),
    ] {
        let out = RsipMessage::try_from(input).unwrap().to_bytes();
        eprintln!(
            "rsipstack 0.7.14: {name} re-serialization is {} ({} bytes in, {} out)",
            if out == input {
                "byte-exact"
            } else {
                "NOT byte-exact"
            },
            input.len(),
            out.len()
        );
    }
    let mut group = c.benchmark_group("rsipstack/register");
    group.throughput(Throughput::Bytes(REGISTER.len() as u64));
    group.bench_function("parse", |b| {
        b.iter(|| RsipMessage::try_from(black_box(REGISTER)).unwrap())
    });
    group.bench_function("parse_serialize", |b| {
        b.iter(|| {
            RsipMessage::try_from(black_box(REGISTER))
                .unwrap()
                .to_bytes()
        })
    });
    group.finish();
}

criterion_group!(benches, bench_ims, bench_rsipstack);
criterion_main!(benches);
