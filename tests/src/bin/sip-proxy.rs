//! A stateful SIP proxy (RFC 3261 §16) built from `ims-sip` alone: the proxy engine with
//! [`DefaultRouting`], for end-to-end tests against real SIP peers.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use ims_sip::proxy::engine::{DefaultRouting, EngineConfig, ProxyEngine};
use ims_sip::transport::{TlsServerSource, TransportConfig};

/// Command line.
#[derive(Debug, Parser)]
#[command(
    name = "sip-proxy",
    version,
    about = "Stateful SIP proxy over the ims-sip proxy engine"
)]
struct Args {
    /// UDP listener (repeatable).
    #[arg(long)]
    udp: Vec<SocketAddr>,
    /// TCP listener (repeatable).
    #[arg(long)]
    tcp: Vec<SocketAddr>,
    /// TLS listener (repeatable); needs --tls-cert and --tls-key.
    #[arg(long)]
    tls: Vec<SocketAddr>,
    /// TLS certificate chain (PEM).
    #[arg(long)]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long)]
    tls_key: Option<PathBuf>,
    /// Timer T1 in milliseconds (Timers B and F are 64*T1).
    #[arg(long, default_value_t = 500)]
    t1_ms: u64,
    /// Record-Route (on by default).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    record_route: bool,
    /// Shards of the proxy engine (each with its own UDP sockets, `SO_REUSEPORT`,
    /// transactions and timers); `0`: one per core.
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// With several workers: the UDP port of shard 0's client socket (shard `i` binds
    /// this plus `i`); unset: ports the kernel picks.
    #[arg(long)]
    shard_ports: Option<u16>,
    /// Route value pre-loaded on requests without Route, e.g.
    /// `<sip:127.0.0.1:5070;transport=tcp;lr>`.
    #[arg(long)]
    outbound: Option<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(error) => {
            eprintln!("sip-proxy: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(args))
}

async fn run(args: Args) -> ExitCode {
    let tls_server = match (args.tls_cert, args.tls_key) {
        (Some(cert), Some(key)) => Some(TlsServerSource::Pem {
            cert,
            key,
            client_ca: None,
        }),
        _ => None,
    };
    let transport = TransportConfig {
        udp: args.udp,
        tcp: args.tcp,
        tls: args.tls,
        tls_server,
        shard_ports: args.shard_ports,
        ..TransportConfig::default()
    };
    let mut config = EngineConfig::default();
    config.timers.t1 = Duration::from_millis(args.t1_ms);
    config.shards = match args.workers {
        0 => std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
        n => n,
    };
    let policy = DefaultRouting {
        outbound: args.outbound,
        record_route: args.record_route,
    };
    let engine = match ProxyEngine::start(transport, config, policy).await {
        Ok(engine) => engine,
        Err(error) => {
            eprintln!("sip-proxy: {error}");
            return ExitCode::FAILURE;
        }
    };
    for (kind, addr) in engine.transport().local_addrs() {
        eprintln!("sip-proxy: listening on {kind} {addr}");
    }
    for (addr, _) in engine.transport().client_addrs() {
        eprintln!("sip-proxy: shard client port UDP {addr}");
    }
    let code = match stopped().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("sip-proxy: {error}");
            ExitCode::FAILURE
        }
    };
    // What bench/proxy_load.py reads: how many messages crossed shards.
    let stats = engine.stats();
    let count = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!(
        "sip-proxy: handovers {} responses {} dropped {} client_port_dropped {}",
        count(&stats.handovers),
        count(&stats.response_handovers),
        count(&stats.handovers_dropped),
        count(&stats.client_port_dropped),
    );
    code
}

/// Waits for SIGINT or SIGTERM.
async fn stopped() -> std::io::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result,
        _ = term.recv() => Ok(()),
    }
}
