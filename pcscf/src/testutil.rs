//! Test helpers: real flows from a loopback transport, and REGISTER/200 pairs.

use std::time::Duration;

use ims_sip::transport::{Flow, TransportConfig, TransportEvent, TransportLayer};
use ims_sip::SipMessage;
use tokio::net::UdpSocket;

/// A request with the mandatory headers after `start_and_extra` (a request line and
/// optional header lines).
pub fn sip(start_and_extra: &str) -> SipMessage {
    let method = start_and_extra.split(' ').next().unwrap_or("OPTIONS");
    SipMessage::parse(format!(
        "{start_and_extra}Via: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bKt\r\n\
         From: <sip:alice@ims.example.net>;tag=a\r\nTo: <sip:alice@ims.example.net>\r\n\
         Call-ID: t@x\r\nCSeq: 1 {method}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ))
    .unwrap()
}

/// `n` distinct UDP flows into a loopback transport (kept open for the test).
pub async fn flows(n: usize) -> Vec<Flow> {
    let config = TransportConfig {
        udp: vec!["127.0.0.1:0".parse().unwrap()],
        ..TransportConfig::default()
    };
    let (layer, mut events) = TransportLayer::bind(config).await.unwrap();
    let addr = layer.local_addrs()[0].1;
    let mut out = Vec::new();
    for _ in 0..n {
        let ue = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        ue.send_to(&sip("OPTIONS sip:x SIP/2.0\r\n").to_bytes(), addr)
            .await
            .unwrap();
        let event = tokio::time::timeout(Duration::from_secs(5), events.recv())
            .await
            .unwrap()
            .unwrap();
        let TransportEvent::Message(m) = event else {
            panic!("not a message")
        };
        out.push(m.source.flow);
    }
    // Keep the listener alive while the flows are used.
    std::mem::forget(events);
    std::mem::forget(layer);
    out
}

/// A REGISTER from alice with one contact, and the registrar's 200 granting `expires`
/// seconds, with another UE's contact, Service-Route and P-Associated-URI.
pub fn register_200(expires: u32) -> (SipMessage, SipMessage) {
    register_200_raw(&format!(";expires={expires}"), "")
}

/// [`register_200`] with the UE's contact parameters `params` (e.g. `;expires=...`) and
/// extra header lines `extra` (e.g. `Expires: ...\r\n`) in the 200, as a hostile
/// registrar might write them. Panics when the 200 does not parse.
pub fn register_200_raw(params: &str, extra: &str) -> (SipMessage, SipMessage) {
    let req = sip("REGISTER sip:ims.example.net SIP/2.0\r\n\
         Contact: <sip:alice@127.0.0.1:5062>;expires=3600\r\n");
    let ok = SipMessage::parse(format!(
        "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bKt\r\n\
         From: <sip:alice@ims.example.net>;tag=a\r\nTo: <sip:alice@ims.example.net>;tag=r\r\n\
         Call-ID: t@x\r\nCSeq: 1 REGISTER\r\n{extra}\
         Contact: <sip:alice@127.0.0.1:5062>{params}, <sip:alice@10.0.0.9:5060>;expires=100\r\n\
         Service-Route: <sip:orig@scscf.ims.example.net:5080;lr>\r\n\
         P-Associated-URI: <sip:alice@ims.example.net>, <tel:+15551230001>\r\n\
         Content-Length: 0\r\n\r\n"
    ))
    .unwrap();
    (req, ok)
}
