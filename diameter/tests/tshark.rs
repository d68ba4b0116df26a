//! Writes our encoded Cx and base messages into a pcap file (Ethernet/IPv4/TCP, port
//! 3868) and has Wireshark's dissector (`tshark`) decode them: the Cx fields must be
//! recognised and no malformed packet or error expert info reported.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/samples.rs"]
mod samples;

use std::process::Command;

use ims_diameter::peer::{cea, cer, PeerConfig};
use ims_diameter::Message;

/// A pcap writer (libpcap format, LINKTYPE_ETHERNET) for TCP segments between two
/// hosts, keeping sequence numbers consistent per direction.
struct Pcap {
    out: Vec<u8>,
    seq: [u32; 2],
    n: u32,
}

impl Pcap {
    fn new() -> Pcap {
        let mut out = Vec::new();
        out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes()); // magic
        out.extend_from_slice(&2u16.to_le_bytes()); // version 2.4
        out.extend_from_slice(&4u16.to_le_bytes());
        out.extend_from_slice(&0i32.to_le_bytes()); // thiszone
        out.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
        out.extend_from_slice(&65535u32.to_le_bytes()); // snaplen
        out.extend_from_slice(&1u32.to_le_bytes()); // Ethernet
        Pcap {
            out,
            seq: [1000, 5000],
            n: 0,
        }
    }

    /// Adds one segment; `dir` 0 is client -> server (port 3868), 1 the reverse.
    fn push(&mut self, dir: usize, payload: &[u8]) {
        let (src_ip, dst_ip) = if dir == 0 {
            ([127, 0, 0, 1], [127, 0, 0, 2])
        } else {
            ([127, 0, 0, 2], [127, 0, 0, 1])
        };
        let (sport, dport) = if dir == 0 {
            (40000u16, 3868u16)
        } else {
            (3868, 40000)
        };
        let mut tcp = Vec::with_capacity(20);
        tcp.extend_from_slice(&sport.to_be_bytes());
        tcp.extend_from_slice(&dport.to_be_bytes());
        tcp.extend_from_slice(&self.seq[dir].to_be_bytes());
        tcp.extend_from_slice(&self.seq[1 - dir].to_be_bytes());
        tcp.extend_from_slice(&[0x50, 0x18]); // data offset 5, PSH|ACK
        tcp.extend_from_slice(&65535u16.to_be_bytes());
        tcp.extend_from_slice(&[0, 0, 0, 0]); // checksum (not validated), urgent
        self.seq[dir] = self.seq[dir].wrapping_add(payload.len() as u32);
        let total = 20 + tcp.len() + payload.len();
        let mut ip = vec![0x45, 0];
        ip.extend_from_slice(&(total as u16).to_be_bytes());
        ip.extend_from_slice(&(self.n as u16).to_be_bytes());
        ip.extend_from_slice(&[0x40, 0, 64, 6, 0, 0]);
        ip.extend_from_slice(&src_ip);
        ip.extend_from_slice(&dst_ip);
        let mut sum: u32 = ip
            .chunks(2)
            .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
            .sum();
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        ip[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
        let mut frame = vec![0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 1, 0x08, 0x00];
        frame.extend_from_slice(&ip);
        frame.extend_from_slice(&tcp);
        frame.extend_from_slice(payload);
        self.n += 1;
        self.out
            .extend_from_slice(&(1_700_000_000 + self.n).to_le_bytes());
        self.out.extend_from_slice(&0u32.to_le_bytes());
        self.out
            .extend_from_slice(&(frame.len() as u32).to_le_bytes());
        self.out
            .extend_from_slice(&(frame.len() as u32).to_le_bytes());
        self.out.extend_from_slice(&frame);
    }
}

fn with_ids(mut m: Message, n: u32) -> Message {
    m.hop_by_hop = n;
    m.end_to_end = 0x1000_0000 + n;
    m
}

#[test]
fn tshark_decodes_our_messages() {
    if Command::new("tshark").arg("--version").output().is_err() {
        println!("SKIPPED: tshark is not installed (scripts/test installs it)");
        return;
    }
    let mut cfg = PeerConfig::cx("cscf.ims.example", "ims.example");
    cfg.allowed_peers = vec!["hss.ims.example".into()];
    let hss = PeerConfig::cx("hss.ims.example", "ims.example");
    let c = with_ids(cer(&cfg), 1);
    let pairs: Vec<(Message, Message)> = vec![
        (c.clone(), cea(&hss, &c, 2001)),
        (samples::uar().to_message(), samples::uaa().to_message()),
        (samples::sar().to_message(), samples::saa().to_message()),
        (samples::lir().to_message(), samples::lia().to_message()),
        (samples::mar().to_message(), samples::maa().to_message()),
        (samples::rtr().to_message(), samples::rta().to_message()),
        (samples::ppr().to_message(), samples::ppa().to_message()),
    ];
    let mut pcap = Pcap::new();
    for (i, (req, ans)) in pairs.into_iter().enumerate() {
        let n = i as u32 + 1;
        let req = with_ids(req, n);
        pcap.push(0, &req.to_bytes());
        let mut ans = ans;
        ans.hop_by_hop = req.hop_by_hop;
        ans.end_to_end = req.end_to_end;
        pcap.push(1, &ans.to_bytes());
    }
    let dir = std::env::temp_dir().join(format!("ims-diameter-tshark-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("cx.pcap");
    std::fs::write(&file, &pcap.out).unwrap();
    let out = Command::new("tshark")
        .args(["-n", "-r"])
        .arg(&file)
        // Wireshark 4.0 has no "diameter.tcp.ports" preference; Decode-As does the same.
        .args(["-V", "-d", "tcp.port==3868,diameter"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    std::fs::write(dir.join("cx.txt"), text.as_bytes()).unwrap();
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for needle in [
        "Command Code: Capabilities-Exchange (257)",
        "Command Code: User-Authorization (300)",
        "Command Code: Server-Assignment (301)",
        "Command Code: Location-Info (302)",
        "Command Code: Multimedia-Auth (303)",
        "Command Code: Registration-Termination (304)",
        "Command Code: Push-Profile (305)",
        "Public-Identity: sip:alice@ims.example",
        "Experimental-Result-Code: DIAMETER_FIRST_REGISTRATION (2001)",
        "Server-Assignment-Type: REGISTRATION (1)",
        "Digest-HA1",
        "Confidentiality-Key",
        "Vendor-Specific-Application-Id",
        "Auth-Application-Id: 3GPP Cx (16777216)",
        "Supported-Vendor-Id: 10415",
        "Product-Name: ims-core",
        "Reason-Code: PERMANENT_TERMINATION (0)",
        "Experimental-Result-Code: DIAMETER_ERROR_USER_UNKNOWN (5001)",
        "Public-Identity: tel:+15551234",
    ] {
        assert!(
            text.contains(needle),
            "tshark output lacks {needle:?}; see {}",
            dir.join("cx.txt").display()
        );
    }
    assert_eq!(
        text.matches("Diameter Protocol").count(),
        14,
        "one Diameter PDU per packet"
    );
    assert!(!text.contains("Malformed"), "malformed packet reported");
    assert!(
        !text.contains("Expert Info (Error"),
        "error expert info reported"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
