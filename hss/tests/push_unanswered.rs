//! What the HSS does when an S-CSCF never answers its Push-Profile-Request (Kamailio 5.6's
//! S-CSCF does not): the HSS's Cx listener and `Push` in process, an S-CSCF peer over TCP
//! on loopback that takes the PPR and never answers it. Every wait is bounded.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "common/cx.rs"]
mod cx_fixture;

use std::sync::Arc;
use std::time::Duration;

use cx_fixture::*;
use hss::cx::push::Push;
use hss::store::RegistrationState;
use ims_diameter::cx::*;
use ims_diameter::dict::{experimental, result};
use ims_diameter::peer::{
    Acceptor, BoxFuture, Connector, Handler, Peer, PeerBinding, PeerConfig, PeerState, Server,
};
use ims_diameter::Message;
use tokio::sync::mpsc;

const HSS_HOST: &str = "hss.ims.example.net";
const SCSCF_HOST: &str = "scscf.ims.example.net";
const BOUND: Duration = Duration::from_secs(15);

async fn bounded<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(BOUND, f)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// An S-CSCF that hands every request to the test and answers none (as Kamailio 5.6
/// does with PPR).
struct Silent(mpsc::UnboundedSender<CxRequest>);

impl Handler for Silent {
    fn handle(&self, req: Message) -> BoxFuture<'_, Message> {
        if let Ok(r) = CxRequest::from_message(&req) {
            let _ = self.0.send(r);
        }
        Box::pin(std::future::pending())
    }
}

/// The change is in the store before the PPR leaves (the API writes, then tells `Push`);
/// the unanswered PPR ends after the HSS's request timeout with nothing undone: the
/// change stays, the set stays registered at the S-CSCF, the connection stays open and
/// serves Cx, and the S-CSCF gets the new profile with its next SAR that asks for
/// User-Data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_ppr_leaves_the_change_and_the_registration() {
    let db = common::TestDb::sqlite().await;
    let store = db.store.clone();
    provision(&store).await;
    let mut cfg = PeerConfig::cx(HSS_HOST, HOME);
    cfg.bindings = vec![PeerBinding::new(
        SCSCF_HOST,
        vec!["127.0.0.1/32".parse().unwrap()],
    )];
    // The binary keeps ims-diameter's default (10 s); shorter here, same path.
    cfg.request_timeout = Duration::from_secs(1);
    let server = Server::bind(
        cfg,
        "127.0.0.1:0".parse().unwrap(),
        Acceptor::Tcp,
        Arc::new(server(&store)),
    )
    .await
    .unwrap();
    let addr = server.local_addr();
    let push = Push::new(Arc::new(vec![server]), HSS_HOST, HOME);

    let mut client = PeerConfig::cx(SCSCF_HOST, HOME);
    client.allowed_peers = vec![HSS_HOST.into()];
    let (tx, mut pushed) = mpsc::unbounded_channel();
    let scscf = Peer::connect(client, addr, Connector::Tcp, Arc::new(Silent(tx)));
    bounded("open", scscf.wait_for(PeerState::Open)).await;
    let ask = |m: Message| {
        let scscf = scscf.clone();
        async move { bounded("answer", scscf.request(m)).await.unwrap() }
    };
    let saa = Saa::from_message(
        &ask(sar(
            Some(ALICE_IMPI),
            &[ALICE],
            SCSCF,
            ServerAssignmentType::Registration,
        )
        .to_message())
        .await,
    )
    .unwrap();
    assert_eq!(saa.header.result, CxResult::Base(result::DIAMETER_SUCCESS));

    // The operator changes alice (as PUT/PATCH does: the store first, then the PPR).
    let mut data = alice();
    data.cloud.project_id = Some("p2".into());
    store.update("alice", &data).await.unwrap();
    let sub = store.get("alice").await.unwrap().unwrap();
    bounded("the PPR to give up", push.push_profile(&sub)).await;
    let Ok(CxRequest::Ppr(ppr)) = pushed.try_recv() else {
        panic!("the S-CSCF got no PPR");
    };
    let xml = String::from_utf8(ppr.user_data.unwrap().to_vec()).unwrap();
    assert!(xml.contains("<ProjectId>p2</ProjectId>"), "{xml}");

    // Nothing undone, nothing torn down.
    let after = store.get("alice").await.unwrap().unwrap();
    assert_eq!(after.cloud.project_id.as_deref(), Some("p2"), "change kept");
    for impu in [ALICE, ALICE_TEL] {
        let reg = store.registration(impu).await.unwrap().unwrap();
        assert_eq!(reg.state, RegistrationState::Registered, "{impu}");
        assert_eq!(reg.scscf.as_deref(), Some(SCSCF), "{impu}");
    }
    assert_eq!(scscf.state(), PeerState::Open);
    let uaa =
        Uaa::from_message(&ask(uar(ALICE_IMPI, ALICE, HOME, None).to_message()).await).unwrap();
    assert_eq!(
        uaa.header.result,
        CxResult::experimental(experimental::DIAMETER_SUBSEQUENT_REGISTRATION)
    );
    // The S-CSCF's next SAR asking for User-Data gets the change.
    let saa = Saa::from_message(
        &ask(sar(
            Some(ALICE_IMPI),
            &[ALICE],
            SCSCF,
            ServerAssignmentType::ReRegistration,
        )
        .to_message())
        .await,
    )
    .unwrap();
    let xml = String::from_utf8(saa.user_data.unwrap().to_vec()).unwrap();
    assert!(xml.contains("<ProjectId>p2</ProjectId>"), "{xml}");
    scscf.disconnect(0).await;
    db.cleanup().await;
}
