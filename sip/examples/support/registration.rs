//! An IMS REGISTER as a UE sends it, a policy forwarding it and a registrar stand-in
//! answering it, for the engine's examples.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use ims_sip::message::build::response_with;
use ims_sip::proxy::engine::{Decision, Forward, Policy};
use ims_sip::transport::Source;
use ims_sip::{HeaderName, SipMessage};
use tokio::net::UdpSocket;

/// Forwards every request to the registrar stand-in.
pub struct ToRegistrar {
    /// The stand-in's URI.
    pub target: String,
}

impl Policy for ToRegistrar {
    async fn decide(&self, _request: &SipMessage, _source: &Source) -> Decision {
        Decision::Forward(Forward {
            targets: vec![self.target.clone()],
            ..Forward::default()
        })
    }
}

/// An IMS REGISTER of ~1 KB, as a UE sends its second one (with credentials).
pub fn register(ue: SocketAddr, n: usize) -> String {
    format!(
        "REGISTER sip:ims.example.net SIP/2.0\r\n\
Via: SIP/2.0/UDP {ue};branch=z9hG4bKmem{n};rport\r\n\
Max-Forwards: 70\r\n\
From: <sip:user{n}@ims.example.net>;tag=4fa3{n}\r\n\
To: <sip:user{n}@ims.example.net>\r\n\
Call-ID: apb03a0s09dkjdfglkj49111-{n}\r\n\
CSeq: 2 REGISTER\r\n\
Contact: <sip:user{n}@{ue}>;+sip.instance=\"<urn:gsma:imei:35209900-176148-0>\";reg-id=1;expires=600000\r\n\
Authorization: Digest username=\"user{n}@ims.example.net\", realm=\"ims.example.net\", nonce=\"A34Cm+Fva37UYWpGNB34JP\", algorithm=MD5, uri=\"sip:ims.example.net\", response=\"6629fae49393a05397450978507c4ef1\", qop=auth, nc=00000001, cnonce=\"0a4f113b\"\r\n\
Path: <sip:term@pcscf.ims.example.net;lr>\r\n\
Require: path\r\n\
Supported: path, gruu\r\n\
P-Visited-Network-ID: \"visited.example.net\"\r\n\
P-Charging-Vector: icid-value=\"AyretyU0dm+6O2IrT5tAFrbHLso={n}\"\r\n\
Content-Length: 0\r\n\r\n"
    )
}

/// Answers every request it receives with a registrar's 200 ([`answer`]); the first
/// request is kept in `first` as received.
pub async fn registrar(socket: UdpSocket, first: Arc<Mutex<Vec<u8>>>) {
    let mut buf = vec![0u8; 65_535];
    while let Ok((n, from)) = socket.recv_from(&mut buf).await {
        {
            let mut kept = first.lock().unwrap();
            if kept.is_empty() {
                kept.extend_from_slice(&buf[..n]);
            }
        }
        if let Some(ok) = answer(&buf[..n]) {
            let _ = socket.send_to(&ok, from).await;
        }
    }
}

/// A registrar's 200 to the REGISTER in `datagram`, encoded.
pub fn answer(datagram: &[u8]) -> Option<Vec<u8>> {
    let request = SipMessage::parse(datagram.to_vec()).ok()?;
    let contact = request
        .headers
        .get_str(&HeaderName::Contact)
        .unwrap_or_default()
        .to_string();
    let ok = response_with(
        &request,
        200,
        "OK",
        Some("reg1"),
        &[
            (HeaderName::Contact, &contact),
            (
                HeaderName::ServiceRoute,
                "<sip:orig@scscf.ims.example.net:5080;lr>",
            ),
            (
                HeaderName::PAssociatedUri,
                "<sip:user@ims.example.net>, <tel:+15551234567>",
            ),
        ],
    );
    Some(ok.to_bytes().to_vec())
}
