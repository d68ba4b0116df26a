//! Probes ports from inside a network namespace (`ip netns exec <ns> netns-probe ...`),
//! for `tests/tests/deployment_netns.rs`: which TCP ports accept a connection, which UDP
//! SIP ports answer an OPTIONS, and a node's HTTPS `/health`.
//!
//! `tcp ADDR...` and `sip-udp ADDR...` print one line per address, `ADDR open`, `ADDR
//! refused` (a TCP reset, an ICMP port unreachable: nothing listens), `ADDR silent`
//! (nothing within the timeout: what a firewall that drops does) or `ADDR error`,
//! probing all addresses at once. `https ADDR PATH CA` prints the body of a
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
        Probe::Tcp { addrs } => report(&addrs, |a| {
            verdict(TcpStream::connect_timeout(&a, limit).map(|_| ()))
        }),
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

/// What a probe's outcome says of the port.
fn verdict(outcome: std::io::Result<()>) -> &'static str {
    use std::io::ErrorKind;
    match outcome {
        Ok(()) => "open",
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => "refused",
        Err(e) if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) => "silent",
        Err(_) => "error",
    }
}

/// Probes every address on a thread of its own and prints `ADDR <verdict>`.
fn report(addrs: &[SocketAddr], probe: impl Fn(SocketAddr) -> &'static str + Sync) -> ExitCode {
    let probe = &probe;
    let results: Vec<(SocketAddr, &str)> = std::thread::scope(|s| {
        let handles: Vec<_> = addrs
            .iter()
            .map(|&a| s.spawn(move || (a, probe(a))))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or((SocketAddr::from(([0, 0, 0, 0], 0)), "error"))
            })
            .collect()
    });
    for (a, verdict) in results {
        println!("{a} {verdict}");
    }
    ExitCode::SUCCESS
}

/// Sends a SIP OPTIONS to `to` over UDP: `open` if any datagram comes back within
/// `limit`.
fn sip_answers(to: SocketAddr, limit: Duration) -> &'static str {
    let Ok(socket) = UdpSocket::bind("0.0.0.0:0") else {
        return "error";
    };
    if socket.connect(to).is_err() || socket.set_read_timeout(Some(limit)).is_err() {
        return "error";
    }
    let Ok(local) = socket.local_addr() else {
        return "error";
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
    if let Err(e) = socket.send(options.as_bytes()) {
        return verdict(Err(e));
    }
    let mut buf = [0u8; 2048];
    verdict(socket.recv(&mut buf).map(|_| ()))
}
