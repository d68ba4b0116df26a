//! Bounded load generator: MAR (one AKA vector) and SAR (REGISTRATION, with User-Data)
//! answered per second by the HSS Cx server over loopback TCP, with a SQLite store.
//!
//! ```sh
//! cargo run --release -p hss --example cx_load -- [subscribers] [requests] [concurrency]
//! ```
//! Defaults: 1000 subscribers, 5000 requests of each kind, 32 in flight. The server runs
//! in this process (the same `CxServer` and `Server` as the `hss` binary) on its own
//! runtime threads; the client is an ims-diameter `Peer`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use hss::cx::{CxContext, CxServer};
use hss::secrets::StoreKey;
use hss::store::*;
use ims_diameter::cx::*;
use ims_diameter::peer::{
    Acceptor, BoxFuture, Connector, Handler, Peer, PeerBinding, PeerConfig, PeerState, Server,
};
use ims_diameter::Message;
use ims_sip::auth::milenage::opc;
use ims_sip::auth::{Algorithm, Ha1};
use tokio::sync::Semaphore;

const REALM: &str = "ims.example.net";
const SCSCF: &str = "sip:scscf.ims.example.net:5080";

struct NoRequests;

impl Handler for NoRequests {
    fn handle(&self, req: Message) -> BoxFuture<'_, Message> {
        Box::pin(
            async move { Message::error_answer(&req, "scscf.ims.example.net", REALM, 5012, None) },
        )
    }
}

fn header() -> RequestHeader {
    RequestHeader {
        session_id: "scscf.ims.example.net;1;1".into(),
        origin_host: "scscf.ims.example.net".into(),
        origin_realm: REALM.into(),
        destination_host: None,
        destination_realm: REALM.into(),
    }
}

fn subscriber(i: usize) -> SubscriptionData {
    let impi = format!("user{i}@{REALM}");
    SubscriptionData {
        private_identities: vec![PrivateIdentityData {
            realm: REALM.into(),
            digest_ha1: Some(Ha1::compute(Algorithm::Md5, &impi, REALM, b"secret")),
            aka: Some(AkaSecrets {
                k: [7; 16],
                opc: opc(&[7; 16], &[9; 16]),
                amf: [0x80, 0],
                sqn: None,
            }),
            impi,
        }],
        public_identities: vec![PublicIdentity {
            impu: format!("sip:user{i}@{REALM}"),
            barred: false,
            implicit_set: Some(1),
            service_profile: "default".into(),
        }],
        service_profiles: vec![ServiceProfile {
            name: "default".into(),
            ifcs: vec![InitialFilterCriteria {
                priority: 1,
                trigger_point: Some(TriggerPoint {
                    condition_type_cnf: false,
                    spts: vec![Spt {
                        condition_negated: false,
                        group: 0,
                        condition: SptCondition::Method {
                            method: "INVITE".into(),
                            registration_type: Vec::new(),
                        },
                    }],
                }),
                application_server: ApplicationServer {
                    server_name: "sip:as.ims.example.net".into(),
                    default_handling: DefaultHandling::SessionContinued,
                    service_info: None,
                    include_register_request: false,
                    include_register_response: false,
                },
                profile_part_indicator: None,
            }],
        }],
        ..SubscriptionData::default()
    }
}

async fn run(
    peer: &Peer,
    what: &str,
    requests: usize,
    concurrency: usize,
    make: impl Fn(usize) -> Message,
    ok: impl Fn(&Message) -> bool,
) {
    let sem = Arc::new(Semaphore::new(concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    let start = Instant::now();
    for i in 0..requests {
        let permit = sem.clone().acquire_owned().await.unwrap();
        let peer = peer.clone();
        let m = make(i);
        tasks.spawn(async move {
            let ans = peer.request(m).await;
            drop(permit);
            ans
        });
    }
    let mut good = 0;
    while let Some(r) = tasks.join_next().await {
        if r.unwrap().as_ref().is_ok_and(&ok) {
            good += 1;
        }
    }
    let t = start.elapsed();
    println!(
        "{what}: {requests} requests, {concurrency} in flight, {good} successful, {:.2?}, {:.0}/s",
        t,
        requests as f64 / t.as_secs_f64()
    );
    assert_eq!(good, requests, "{what}: every answer must be a success");
}

/// VmRSS of this process (Linux), for the memory figure.
fn rss() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
        })
        .map_or_else(|| "VmRSS unknown".into(), |v| format!("VmRSS {v}"))
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().unwrap())
        .collect();
    let subscribers = args.first().copied().unwrap_or(1000).max(1);
    let requests = args.get(1).copied().unwrap_or(5000).min(1_000_000);
    let concurrency = args.get(2).copied().unwrap_or(32).clamp(1, 1024);

    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("hss.db").display());
    let (store, server) = server_rt.block_on(async {
        let key = StoreKey::from_hex(&"a5".repeat(32), "bench").unwrap();
        let store = Store::open(&url, 8, key).await.unwrap();
        let t = Instant::now();
        for i in 0..subscribers {
            store
                .create(&format!("s{i}"), &subscriber(i))
                .await
                .unwrap();
        }
        println!(
            "provisioned {subscribers} subscribers in {:.2?}",
            t.elapsed()
        );
        let db: u64 = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok()?.metadata().ok())
            .map(|m| m.len())
            .sum();
        println!(
            "SQLite files: {} kB ({} B per subscriber); process {}",
            db / 1024,
            db / subscribers as u64,
            rss()
        );
        let handler = CxServer::new(CxContext {
            store: store.clone(),
            origin_host: "hss.ims.example.net".into(),
            origin_realm: REALM.into(),
            capabilities: ServerCapabilities::default(),
        });
        let mut cfg = PeerConfig::cx("hss.ims.example.net", REALM);
        cfg.bindings = vec![PeerBinding::new(
            "scscf.ims.example.net",
            vec!["127.0.0.1/32".parse().unwrap()],
        )];
        let server = Server::bind(
            cfg,
            "127.0.0.1:0".parse().unwrap(),
            Acceptor::Tcp,
            Arc::new(handler),
        )
        .await
        .unwrap();
        (store, server)
    });
    let addr = server.local_addr();

    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    client_rt.block_on(async {
        let mut cfg = PeerConfig::cx("scscf.ims.example.net", REALM);
        cfg.allowed_peers = vec!["hss.ims.example.net".into()];
        cfg.request_timeout = Duration::from_secs(30);
        let peer = Peer::connect(cfg, addr, Connector::Tcp, Arc::new(NoRequests));
        tokio::time::timeout(Duration::from_secs(10), peer.wait_for(PeerState::Open))
            .await
            .unwrap();
        let success = |m: &Message| m.result_code() == Some(2001);
        run(
            &peer,
            "MAR (AKA, 1 vector)",
            requests,
            concurrency,
            |i| {
                let n = i % subscribers;
                Mar {
                    header: header(),
                    user_name: format!("user{n}@{REALM}"),
                    supported_features: Vec::new(),
                    public_identity: format!("sip:user{n}@{REALM}"),
                    sip_auth_data_item: SipAuthDataItem {
                        authentication_scheme: Some("Digest-AKAv1-MD5".into()),
                        ..SipAuthDataItem::default()
                    },
                    sip_number_auth_items: 1,
                    server_name: SCSCF.into(),
                }
                .to_message()
            },
            success,
        )
        .await;
        run(
            &peer,
            "SAR (REGISTRATION, User-Data)",
            requests,
            concurrency,
            |i| {
                let n = i % subscribers;
                Sar {
                    header: header(),
                    user_name: Some(format!("user{n}@{REALM}")),
                    supported_features: Vec::new(),
                    public_identities: vec![format!("sip:user{n}@{REALM}")],
                    wildcarded_public_identity: None,
                    server_name: SCSCF.into(),
                    server_assignment_type: ServerAssignmentType::Registration,
                    user_data_already_available: UserDataAlreadyAvailable::NotAvailable,
                    sar_flags: None,
                }
                .to_message()
            },
            success,
        )
        .await;
        peer.disconnect(0).await;
    });
    println!("after the load: {}", rss());
    server_rt.block_on(store.close());
}
