//! stunnel (package `stunnel4`) in client mode, to put TLS in front of SIPp, which has
//! no TLS of its own.

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::wait_for;

/// Kills a child that is not a process-group leader (SIPp, stunnel) when dropped.
pub struct Kill(pub Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Why stunnel could not be started.
#[derive(Debug)]
pub struct StunnelError(pub String);

/// Starts stunnel in client mode: plain TCP on `accept`, TLS to `connect`, verifying
/// the server's chain against `ca` and its certificate for 127.0.0.1. Waits (bounded)
/// until it listens.
pub fn start(
    dir: &Path,
    accept: SocketAddr,
    connect: SocketAddr,
    ca: &Path,
) -> Result<Kill, StunnelError> {
    start_in(None, dir, accept, connect, ca, "127.0.0.1")
}

/// [`start`] in the network namespace `netns` (`ip netns exec`) when given, checking
/// that the server's certificate names the address `check_ip`.
pub fn start_in(
    netns: Option<&str>,
    dir: &Path,
    accept: SocketAddr,
    connect: SocketAddr,
    ca: &Path,
    check_ip: &str,
) -> Result<Kill, StunnelError> {
    let conf = dir.join(format!("stunnel-{}.conf", accept.port()));
    std::fs::write(
        &conf,
        format!(
            "foreground = yes\npid =\noutput = {log}\n[sip]\nclient = yes\naccept = {accept}\n\
             connect = {connect}\nCAfile = {ca}\nverifyChain = yes\ncheckIP = {check_ip}\n",
            log = dir.join("stunnel.log").display(),
            ca = ca.display()
        ),
    )
    .map_err(|e| StunnelError(format!("writing {}: {e}", conf.display())))?;
    let mut command = match netns {
        // `ip netns exec` execs stunnel: the child's pid is stunnel's.
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, "stunnel"]);
            c
        }
        None => Command::new("stunnel"),
    };
    let child = command
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| StunnelError(format!("stunnel does not start (package stunnel4): {e}")))?;
    let guard = Kill(child);
    let up = wait_for(Duration::from_secs(10), || match netns {
        Some(ns) => crate::netns::listening(ns, "tcp", accept).then_some(()),
        None => TcpStream::connect_timeout(&accept, Duration::from_millis(200))
            .ok()
            .map(|_| ()),
    });
    match up {
        Some(()) => Ok(guard),
        None => Err(StunnelError(format!("stunnel did not listen on {accept}"))),
    }
}
