//! Probes ports from inside a network namespace (`ip netns exec <ns> netns-probe ...`),
//! for `tests/tests/deployment_netns.rs`: which TCP ports accept a connection, which UDP
//! SIP ports answer an OPTIONS, and a node's HTTPS `/health`.
//!
//! `tcp ADDR...` and `sip-udp ADDR...` print one line per address, `ADDR open` or
//! `ADDR closed` (refused, unreachable, or silent within the timeout: a port an nftables
//! rule drops), probing all addresses at once. `https ADDR PATH CA` prints the body of a
//! 200 answer, the server checked against the CA in the PEM file `CA`, or exits 1.

use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

/// Command line.
#[derive(Debug, Parser)]
#[command(about = "Port probes for the network-namespace deployment test")]
struct Args {
    /// How long a probe waits for a connection or an answer, in milliseconds.
    #[arg(long, default_value_t = 1500)]
    timeout_ms: u64,
    #[command(subcommand)]
    probe: Probe,
}

/// What to probe.
#[derive(Debug, Subcommand)]
enum Probe {
    /// TCP connect to each address.
    Tcp { addrs: Vec<SocketAddr> },
    /// A SIP OPTIONS over UDP to each address; open if anything answers.
    SipUdp { addrs: Vec<SocketAddr> },
    /// GET https://ADDR/PATH trusting CA only.
    Https {
        addr: SocketAddr,
        path: String,
        ca: PathBuf,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    let limit = Duration::from_millis(args.timeout_ms);
    match args.probe {
        Probe::Tcp { addrs } => report(&addrs, |a| TcpStream::connect_timeout(&a, limit).is_ok()),
        Probe::SipUdp { addrs } => report(&addrs, |a| sip_answers(a, limit)),
        Probe::Https { addr, path, ca } => match ims_e2e::https_get(addr, &path, &ca) {
            Some(body) => {
                println!("{body}");
                ExitCode::SUCCESS
            }
            None => ExitCode::FAILURE,
        },
    }
}

/// Probes every address on a thread of its own and prints `ADDR open|closed`.
fn report(addrs: &[SocketAddr], probe: impl Fn(SocketAddr) -> bool + Sync) -> ExitCode {
    let probe = &probe;
    let results: Vec<(SocketAddr, bool)> = std::thread::scope(|s| {
        let handles: Vec<_> = addrs
            .iter()
            .map(|&a| s.spawn(move || (a, probe(a))))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or((SocketAddr::from(([0, 0, 0, 0], 0)), false))
            })
            .collect()
    });
    for (a, open) in results {
        println!("{a} {}", if open { "open" } else { "closed" });
    }
    ExitCode::SUCCESS
}

/// True if a SIP OPTIONS sent to `to` over UDP gets any datagram back within `limit`.
fn sip_answers(to: SocketAddr, limit: Duration) -> bool {
    let Ok(socket) = UdpSocket::bind("0.0.0.0:0") else {
        return false;
    };
    if socket.connect(to).is_err() || socket.set_read_timeout(Some(limit)).is_err() {
        return false;
    }
    let Ok(local) = socket.local_addr() else {
        return false;
    };
    let options = format!(
        "OPTIONS sip:{to} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch=z9hG4bK-probe-{port}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:probe@{local}>;tag=probe\r\n\
         To: <sip:{to}>\r\n\
         Call-ID: probe-{port}@{local}\r\n\
         CSeq: 1 OPTIONS\r\n\
         Contact: <sip:probe@{local}>\r\n\
         Content-Length: 0\r\n\r\n",
        port = local.port()
    );
    if socket.send(options.as_bytes()).is_err() {
        return false;
    }
    let mut buf = [0u8; 2048];
    socket.recv(&mut buf).is_ok_and(|n| n > 0)
}
