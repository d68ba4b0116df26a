//! A Diameter Cx server answering UAR from test data, standing in for the HSS in the
//! P-CSCF/I-CSCF tests: `alice@ims.example.net` has an S-CSCF assigned (Server-Name
//! `sip:scscf.ims.example.net:5080`), `bob@ims.example.net` gets Server-Capabilities
//! (mandatory 1, optional 2), anyone else is DIAMETER_ERROR_USER_UNKNOWN. It keeps the
//! UARs it received.

use std::sync::{Arc, Mutex};

use ims_diameter::cx::{AnswerHeader, CxResult, ServerCapabilities, Uaa, Uar};
use ims_diameter::dict::experimental;
use ims_diameter::peer::{Acceptor, BoxFuture, Handler, PeerBinding, PeerConfig, Server};
use ims_diameter::Message;

/// The UAR-answering HSS.
#[derive(Debug, Default)]
pub struct UarHss {
    /// Every UAR received, in order.
    pub uars: Mutex<Vec<Uar>>,
}

impl UarHss {
    /// The UARs received so far.
    pub fn uars(&self) -> Vec<Uar> {
        self.uars.lock().map(|u| u.clone()).unwrap_or_default()
    }
}

impl Handler for UarHss {
    fn handle(&self, request: Message) -> BoxFuture<'_, Message> {
        Box::pin(async move {
            let uar = match Uar::from_message(&request) {
                Ok(uar) => uar,
                Err(error) => {
                    return error.answer(&request, "hss.ims.example.net", "ims.example.net")
                }
            };
            if let Ok(mut uars) = self.uars.lock() {
                uars.push(uar.clone());
            }
            let (code, server_name, caps) = match uar.user_name.as_str() {
                "alice@ims.example.net" => (
                    experimental::DIAMETER_FIRST_REGISTRATION,
                    Some("sip:scscf.ims.example.net:5080".to_string()),
                    None,
                ),
                "bob@ims.example.net" => (
                    experimental::DIAMETER_FIRST_REGISTRATION,
                    None,
                    Some(ServerCapabilities {
                        mandatory: vec![1],
                        optional: vec![2],
                        server_names: Vec::new(),
                    }),
                ),
                _ => (experimental::DIAMETER_ERROR_USER_UNKNOWN, None, None),
            };
            let header = AnswerHeader::for_request(
                &uar.header,
                "hss.ims.example.net",
                "ims.example.net",
                CxResult::experimental(code),
            );
            Uaa {
                header,
                supported_features: Vec::new(),
                server_name,
                server_capabilities: caps,
            }
            .to_answer(&request)
        })
    }
}

/// Starts the server on a free loopback port, accepting the Cx peer `client_host`.
pub async fn start(client_host: &str) -> std::io::Result<(Server, Arc<UarHss>)> {
    let hss = Arc::new(UarHss::default());
    let mut cfg = PeerConfig::cx("hss.ims.example.net", "ims.example.net");
    let loopback = "127.0.0.1/32".parse().map_err(std::io::Error::other)?;
    cfg.bindings = vec![PeerBinding::new(client_host, vec![loopback])];
    let server = Server::bind(
        cfg,
        "127.0.0.1:0".parse().map_err(std::io::Error::other)?,
        Acceptor::Tcp,
        hss.clone(),
    )
    .await?;
    Ok((server, hss))
}
