//! HSS-initiated requests (TS 29.228 §6.1.3, §6.1.4): Registration-Termination-Request
//! when an operator de-registers or deletes a subscriber, Push-Profile-Request when the
//! profile of a registered subscriber changes.
//!
//! The request goes to the assigned S-CSCF over its open connection: the Diameter
//! Origin-Host of the S-CSCF is taken to be the host part of its Server-Name SIP URI
//! (`sip:scscf.ims.example.net:5080` → `scscf.ims.example.net`). When that peer is not
//! connected the state change stays and the failure is logged.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use ims_diameter::cx::{DeregistrationReason, Ppa, Ppr, ReasonCode, RequestHeader, Rta, Rtr};
use ims_diameter::peer::Server;
use ims_diameter::Message;

use super::{implicit_set, user_data};
use crate::provisioning::{DeregisterReason, SubscriberEvents};
use crate::store::{PublicIdentityInfo, RegistrationState, Subscription};

/// Sends RTR and PPR to S-CSCFs connected to any of the HSS's listeners.
pub struct Push {
    servers: Arc<Vec<Server>>,
    origin_host: String,
    origin_realm: String,
    sessions: AtomicU64,
}

impl Push {
    /// Pushes through the connections accepted by `servers`.
    pub fn new(servers: Arc<Vec<Server>>, origin_host: &str, origin_realm: &str) -> Push {
        Push {
            servers,
            origin_host: origin_host.to_owned(),
            origin_realm: origin_realm.to_owned(),
            sessions: AtomicU64::new(0),
        }
    }

    fn header(&self, scscf_host: &str) -> RequestHeader {
        let n = self.sessions.fetch_add(1, Ordering::Relaxed);
        let boot = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        RequestHeader {
            // RFC 6733 §8.8: <DiameterIdentity>;<high 32 bits>;<low 32 bits>.
            session_id: format!("{};{boot};{n}", self.origin_host),
            origin_host: self.origin_host.clone(),
            origin_realm: self.origin_realm.clone(),
            destination_host: Some(scscf_host.to_owned()),
            destination_realm: self.origin_realm.clone(),
        }
    }

    async fn send(&self, scscf: &str, what: &'static str, msg: Message) -> Option<Message> {
        let host = diameter_host(scscf);
        let Some(peer) = self.servers.iter().find_map(|s| s.peer(host)) else {
            tracing::warn!(%scscf, %host, what, "S-CSCF not connected: request not sent");
            return None;
        };
        match peer.request(msg).await {
            Ok(ans) => Some(ans),
            Err(e) => {
                tracing::warn!(%scscf, what, error = %e, "no answer from the S-CSCF");
                None
            }
        }
    }

    /// Sends an RTR for every S-CSCF holding identities of `sub`, with `reason`.
    pub async fn terminate(&self, sub: &Subscription, reason: ReasonCode) {
        let impi = first_impi(sub);
        for (scscf, set) in assigned_sets(sub) {
            let rtr = Rtr {
                header: self.header(diameter_host(&scscf)),
                user_name: impi.clone(),
                associated_identities: None,
                supported_features: Vec::new(),
                public_identities: set.iter().map(|p| p.identity.impu.clone()).collect(),
                deregistration_reason: DeregistrationReason {
                    reason_code: reason,
                    reason_info: None,
                },
            };
            if let Some(ans) = self.send(&scscf, "RTR", rtr.to_message()).await {
                match Rta::from_message(&ans) {
                    Ok(rta) => tracing::info!(%scscf, result = ?rta.header.result, "RTA"),
                    Err(e) => tracing::warn!(%scscf, error = %e, "malformed RTA"),
                }
            }
        }
    }

    /// Sends a PPR with the new User-Data for every registered implicit set of `sub`.
    pub async fn push_profile(&self, sub: &Subscription) {
        let impi = first_impi(sub);
        for (scscf, set) in assigned_sets(sub) {
            let ppr = Ppr {
                header: self.header(diameter_host(&scscf)),
                user_name: impi.clone(),
                supported_features: Vec::new(),
                user_data: Some(Bytes::from(user_data::ims_subscription(sub, &impi, &set))),
                charging_information: None,
                sip_auth_data_item: None,
            };
            if let Some(ans) = self.send(&scscf, "PPR", ppr.to_message()).await {
                match Ppa::from_message(&ans) {
                    Ok(ppa) => tracing::info!(%scscf, result = ?ppa.header.result, "PPA"),
                    Err(e) => tracing::warn!(%scscf, error = %e, "malformed PPA"),
                }
            }
        }
    }
}

impl SubscriberEvents for Push {
    fn deleted(self: Arc<Self>, before: Subscription) {
        tokio::spawn(async move {
            self.terminate(&before, ReasonCode::PermanentTermination)
                .await;
        });
    }

    fn deregistered(self: Arc<Self>, before: Subscription, reason: DeregisterReason) {
        let code = match reason {
            DeregisterReason::PermanentTermination => ReasonCode::PermanentTermination,
            DeregisterReason::NewServerAssigned => ReasonCode::NewServerAssigned,
            DeregisterReason::ServerChange => ReasonCode::ServerChange,
            DeregisterReason::RemoveScscf => ReasonCode::RemoveScscf,
        };
        tokio::spawn(async move { self.terminate(&before, code).await });
    }

    fn changed(self: Arc<Self>, after: Subscription) {
        tokio::spawn(async move { self.push_profile(&after).await });
    }
}

/// The Diameter host of an S-CSCF named by its SIP URI: the host part.
pub fn diameter_host(server_name: &str) -> &str {
    let rest = server_name
        .strip_prefix("sips:")
        .or_else(|| server_name.strip_prefix("sip:"))
        .unwrap_or(server_name);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let end = rest.find([':', ';', '?', '/']).unwrap_or(rest.len());
    rest.get(..end).unwrap_or(rest)
}

fn first_impi(sub: &Subscription) -> String {
    sub.private_identities
        .first()
        .map(|p| p.impi.clone())
        .unwrap_or_default()
}

/// The implicit sets of `sub` held by an S-CSCF (registered or unregistered), with it.
fn assigned_sets(sub: &Subscription) -> Vec<(String, Vec<&PublicIdentityInfo>)> {
    let mut out: Vec<(String, Vec<&PublicIdentityInfo>)> = Vec::new();
    for p in &sub.public_identities {
        let Some(scscf) = &p.registration.scscf else {
            continue;
        };
        let seen = out
            .iter()
            .any(|(_, s)| s.iter().any(|q| q.identity.impu == p.identity.impu));
        if p.registration.state == RegistrationState::NotRegistered || seen {
            continue;
        }
        out.push((scscf.clone(), implicit_set(sub, &p.identity.impu)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::diameter_host;

    #[test]
    fn diameter_host_is_the_uri_host() {
        assert_eq!(
            diameter_host("sip:scscf.ims.example.net:5080"),
            "scscf.ims.example.net"
        );
        assert_eq!(
            diameter_host("sip:scscf.example;transport=tcp"),
            "scscf.example"
        );
        assert_eq!(diameter_host("sips:s@scscf.example"), "scscf.example");
        assert_eq!(diameter_host("scscf.example"), "scscf.example");
    }
}
