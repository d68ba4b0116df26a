//! Batched datagram I/O on one UDP socket: on Linux one `recvmmsg(2)` takes what the
//! socket holds (up to a batch) and one `sendmmsg(2)` writes a batch, through `nix`'s
//! safe wrappers (`socket::recvmmsg`, `socket::sendmmsg`, `MultiHeaders`); elsewhere one
//! `recv_from`/`send_to` per datagram, as tokio offers them.
//!
//! Why `nix` and not `quinn-udp` (also a maintained safe wrapper, already in the
//! lock file through other crates): quinn-udp is built for QUIC. Its receive path
//! uses `recvmmsg` but reports no truncation (an oversize SIP datagram would be parsed
//! cut short instead of being dropped and counted), its socket setup turns on GRO
//! (datagrams of one sender coalesced into one buffer) and the don't-fragment bit (a
//! SIP message over the path MTU would fail to send), and its send path is GSO (one
//! destination and one size per call) rather than `sendmmsg` (any destinations and
//! sizes, what a proxy's batch of responses and requests is). `nix` maps the two
//! system calls one to one and leaves the socket's options alone.
//!
//! Both calls go through tokio's readiness ([`UdpSocket::try_io`]): a call that would
//! block clears it, so the task waits for the socket's next edge. A receive batch
//! shorter than asked shows that the socket's queue was empty at that moment (the call
//! stops there on a non-blocking socket), so on Linux it clears the readiness too: the
//! next poll registers the waker without another system call that would find nothing
//! (tokio does the same after a short read on a stream). A datagram arriving meanwhile
//! raises a new edge, which tokio does not clear.

use std::io;
use std::net::SocketAddr;

use tokio::net::UdpSocket;

/// Most datagrams taken or written by one system call.
pub(super) const MAX_BATCH: usize = 64;

/// What one receive call got.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Received {
    /// This many datagrams, each in its own slot, their lengths and sources appended
    /// to the caller's list.
    Some(usize),
    /// This many datagrams, fewer than asked: the socket is drained and its readiness
    /// cleared (the next poll registers the waker).
    Drained(usize),
}

/// Receives up to `want` datagrams (at most [`MAX_BATCH`]) from `socket` into the
/// consecutive `slot`-byte slots of `buf`, appending each one's length (at most
/// `slot`; a longer datagram is cut to it) and source to `got`. [`io::ErrorKind::WouldBlock`]
/// when nothing is waiting.
pub(super) fn recv(
    socket: &UdpSocket,
    buf: &mut [u8],
    slot: usize,
    want: usize,
    got: &mut Vec<(usize, SocketAddr)>,
) -> io::Result<Received> {
    let (slot, want) = (slot.max(1), want.clamp(1, MAX_BATCH));
    #[cfg(target_os = "linux")]
    let received = {
        use std::io::{ErrorKind, IoSliceMut};
        use std::os::fd::AsRawFd;

        use nix::sys::socket::{recvmmsg, MsgFlags, MultiHeaders, SockaddrStorage};
        use tokio::io::Interest;

        let start = got.len();
        let result = socket.try_io(Interest::READABLE, || {
            // An array (not a `SmallVec`): the call borrows its elements for as long
            // as the slices they hold, which only a type without a `Drop` allows.
            let mut slices: [[IoSliceMut<'_>; 1]; MAX_BATCH] =
                std::array::from_fn(|_| [IoSliceMut::new(&mut [])]);
            let mut asked = 0;
            for (place, chunk) in slices.iter_mut().zip(buf.chunks_mut(slot).take(want)) {
                *place = [IoSliceMut::new(chunk)];
                asked += 1;
            }
            // The headers hold raw pointers (not `Send`): made per call, two small
            // allocations per batch.
            let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(asked, None);
            let results = recvmmsg(
                socket.as_raw_fd(),
                &mut headers,
                slices.get_mut(..asked).unwrap_or_default().iter_mut(),
                MsgFlags::empty(),
                None,
            )?;
            for message in results {
                // A datagram always has a source; none would be a kernel oddity.
                if let Some(remote) = message.address.as_ref().and_then(linux::socket_addr) {
                    got.push((message.bytes, remote));
                }
            }
            if got.len() - start < asked {
                // Short: the queue is empty; clear the readiness (see the module doc).
                return Err(ErrorKind::WouldBlock.into());
            }
            Ok(())
        });
        let n = got.len() - start;
        match result {
            Ok(()) => Ok(Received::Some(n)),
            Err(e) if e.kind() == ErrorKind::WouldBlock && n > 0 => Ok(Received::Drained(n)),
            Err(e) => Err(e),
        }
    };
    #[cfg(not(target_os = "linux"))]
    let received = {
        let _ = want;
        let (n, remote) = socket.try_recv_from(buf.get_mut(..slot).unwrap_or_default())?;
        got.push((n, remote));
        Ok(Received::Some(1))
    };
    received
}

/// Sends `datagrams` in order from `socket`, each to its address. Returns how many
/// were sent (at least one), or the error of the first: [`io::ErrorKind::WouldBlock`]
/// when the socket's buffer is full. Sends at most [`MAX_BATCH`] per call.
pub(super) fn send(socket: &UdpSocket, datagrams: &[(&[u8], SocketAddr)]) -> io::Result<usize> {
    let datagrams = datagrams.get(..MAX_BATCH).unwrap_or(datagrams);
    let Some((bytes, addr)) = datagrams.first() else {
        return Ok(0);
    };
    if datagrams.len() == 1 || cfg!(not(target_os = "linux")) {
        return socket.try_send_to(bytes, *addr).map(|_| 1);
    }
    #[cfg(target_os = "linux")]
    let sent = linux::send(socket, datagrams);
    #[cfg(not(target_os = "linux"))]
    let sent = Ok(1);
    sent
}

/// `sendmmsg` through `nix`, and the sources `recvmmsg` gives.
#[cfg(target_os = "linux")]
mod linux {
    use std::io::{self, IoSlice};
    use std::net::SocketAddr;
    use std::os::fd::AsRawFd;

    use nix::sys::socket::{sendmmsg, ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage};
    use smallvec::SmallVec;
    use tokio::io::Interest;
    use tokio::net::UdpSocket;

    use super::MAX_BATCH;

    /// No control messages with the datagrams sent.
    const NO_CONTROL: [ControlMessage<'static>; 0] = [];

    /// [`super::send`] of two datagrams or more.
    pub(super) fn send(socket: &UdpSocket, datagrams: &[(&[u8], SocketAddr)]) -> io::Result<usize> {
        let slices: SmallVec<[[IoSlice<'_>; 1]; MAX_BATCH]> = datagrams
            .iter()
            .map(|(bytes, _)| [IoSlice::new(bytes)])
            .collect();
        let addrs: SmallVec<[Option<SockaddrStorage>; MAX_BATCH]> = datagrams
            .iter()
            .map(|(_, addr)| Some(SockaddrStorage::from(*addr)))
            .collect();
        socket.try_io(Interest::WRITABLE, || {
            let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(slices.len(), None);
            let sent = sendmmsg(
                socket.as_raw_fd(),
                &mut headers,
                slices.iter(),
                &addrs[..],
                NO_CONTROL,
                MsgFlags::empty(),
            )?;
            Ok(sent.count())
        })
    }

    /// The source of a received datagram.
    pub(super) fn socket_addr(addr: &SockaddrStorage) -> Option<SocketAddr> {
        if let Some(v4) = addr.as_sockaddr_in() {
            return Some(SocketAddr::from(*v4));
        }
        addr.as_sockaddr_in6().map(|v6| SocketAddr::from(*v6))
    }
}
