//! `tls_session`: a caller hands the agent a TCP connection it made to a partner, and
//! the agent makes the TLS session on it with a key the caller may use, then carries
//! the session's plaintext between the partner and the caller's agent connection.
//!
//! This is for the partners only OpenSSL answers (a certificate asked for after the
//! handshake, old TLS): OpenSSL cannot sign through the agent's socket the way
//! rustls does, so the session is made where the key is. The caller connects (through
//! its own proxy, from its own network position); the agent never dials anything for
//! a caller, so it cannot be made to reach what the caller could not.
//!
//! The TLS library lives in `certkeeper-egress`, which depends on this crate: it plugs
//! in as a [`SessionMaker`] (`certkeeper agent` registers it).

use std::future::Future;
use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::pin::Pin;
use std::time::Duration;

use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags,
    SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketType,
};
use rustls_pki_types::CertificateDer;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::UnixStream;

use crate::protocol::Session;
use crate::server::Identity;

/// How long the session may carry nothing either way before the agent closes it.
pub const IDLE: Duration = Duration::from_secs(300);

/// A TLS session's plaintext side.
pub trait Duplex: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Duplex for T {}

/// A session made: what its handshake settled, its plaintext side, and whether the
/// partner has asked for the certificate since the handshake.
pub struct Made {
    /// What the handshake settled (`report` is filled in by the agent).
    pub session: Session,
    /// The plaintext side.
    pub stream: Box<dyn Duplex>,
    /// What the partner has asked of the client certificate since the handshake,
    /// so far.
    pub report: Box<dyn Fn() -> crate::protocol::SessionReport + Send + Sync>,
}

/// Makes TLS sessions for `tls_session` requests.
pub trait SessionMaker: Send + Sync {
    /// A TLS session over `socket` with `identity`, as `request` says; `allow` is
    /// asked each time the partner asks for the certificate, before it is presented
    /// (whether the caller may still use the key, the use audited; `false` ends the
    /// session). The error is the reason in words ("refused the TLS handshake with
    /// alert ...").
    fn make(
        &self,
        socket: tokio::net::TcpStream,
        identity: Identity,
        request: SessionRequest,
        allow: Box<dyn Fn() -> bool + Send + Sync>,
    ) -> Pin<Box<dyn Future<Output = Result<Made, String>> + Send>>;
}

/// What the caller asked for, checked and decoded.
#[derive(Debug, Clone)]
pub struct SessionRequest {
    /// The partner's host, as in the URL.
    pub host: String,
    /// Its port, for messages.
    pub port: u16,
    /// Whom to trust for the partner's certificate.
    pub anchors: SessionAnchors,
    /// ALPN protocols to offer.
    pub alpn: Vec<Vec<u8>>,
    /// `--legacy-tls`.
    pub legacy: bool,
}

/// The trust of a session, resolved by the agent.
#[derive(Debug, Clone)]
pub enum SessionAnchors {
    /// The system's roots.
    System,
    /// These anchors (the home's root store, or a CA the caller named).
    Der(Vec<CertificateDer<'static>>),
    /// Nothing checked.
    Insecure,
}

/// Sends `socket` over `stream` as the one byte that follows a `tls_session`'s
/// `{"send": "socket"}`.
pub fn send_socket(stream: impl AsFd, socket: BorrowedFd<'_>) -> std::io::Result<()> {
    let fds = [socket];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(std::io::Error::other("no room for the descriptor"));
    }
    let sent = rustix::net::sendmsg(
        stream,
        &[IoSlice::new(b"S")],
        &mut control,
        SendFlags::NOSIGNAL,
    )?;
    if sent != 1 {
        return Err(std::io::Error::other(
            "the byte carrying the socket was not sent",
        ));
    }
    Ok(())
}

/// Receives the one byte with one descriptor attached. Anything else (no descriptor,
/// several, a truncated control message) is refused, and every descriptor that came
/// is closed (they are `OwnedFd`s, received close-on-exec).
pub(crate) async fn receive_socket(stream: &UnixStream) -> Result<OwnedFd, String> {
    let (bytes, flags, mut fds) = loop {
        stream.readable().await.map_err(|e| e.to_string())?;
        let got = stream.try_io(tokio::io::Interest::READABLE, || {
            let mut byte = [0u8; 1];
            let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
            let mut control = RecvAncillaryBuffer::new(&mut space);
            let msg = rustix::net::recvmsg(
                stream,
                &mut [IoSliceMut::new(&mut byte)],
                &mut control,
                RecvFlags::CMSG_CLOEXEC,
            )?;
            let mut fds = Vec::new();
            for message in control.drain() {
                if let RecvAncillaryMessage::ScmRights(received) = message {
                    fds.extend(received);
                }
            }
            Ok((msg.bytes, msg.flags, fds))
        });
        match got {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e.to_string()),
            Ok(got) => break got,
        }
    };
    if bytes != 1 {
        return Err("the connection ended before the socket was sent".into());
    }
    if flags.contains(ReturnFlags::CTRUNC) || fds.len() != 1 {
        return Err("send exactly one socket with the byte after {\"send\": \"socket\"}".into());
    }
    Ok(fds.remove(0))
}

/// The handed-over descriptor as a TCP connection, after checking that it is one:
/// a connected stream socket of the IPv4 or IPv6 family.
pub(crate) fn tcp_socket(fd: OwnedFd) -> Result<tokio::net::TcpStream, String> {
    let refuse = |what: &str| Err(format!("the descriptor sent is not {what}"));
    match rustix::net::sockopt::socket_type(&fd) {
        Ok(SocketType::STREAM) => {}
        _ => return refuse("a stream socket"),
    }
    match rustix::net::sockopt::socket_domain(&fd) {
        Ok(AddressFamily::INET | AddressFamily::INET6) => {}
        _ => return refuse("a TCP socket"),
    }
    match rustix::net::getpeername(&fd) {
        Ok(Some(_)) => {}
        _ => return refuse("a connected socket"),
    }
    let tcp = std::net::TcpStream::from(fd);
    tcp.set_nonblocking(true).map_err(|e| e.to_string())?;
    tokio::net::TcpStream::from_std(tcp).map_err(|e| e.to_string())
}

/// Carries plaintext between the caller and the session until the partner's side
/// ends (the caller's end of writing is passed on as a TLS close), either side fails,
/// or nothing moves either way for [`IDLE`].
pub(crate) async fn pump(caller: UnixStream, session: Box<dyn Duplex>) {
    pump_within(caller, session, IDLE).await;
}

async fn pump_within(mut caller: UnixStream, session: Box<dyn Duplex>, idle: Duration) {
    let (mut from_caller, mut to_caller) = caller.split();
    let (mut from_partner, mut to_partner) = tokio::io::split(session);
    let moved = std::sync::Mutex::new(tokio::time::Instant::now());
    let up = copy(&mut from_caller, &mut to_partner, &moved, idle);
    let down = copy(&mut from_partner, &mut to_caller, &moved, idle);
    tokio::pin!(up, down);
    tokio::select! {
        // The partner is done (or failed): nothing more can come back.
        _ = &mut down => {}
        // The caller is done sending: wait for the rest of the answer, then stop.
        result = &mut up => {
            if result.is_ok() {
                let _ = down.await;
            }
        }
    }
}

/// Copies until the end, then shuts the writer down. A read that waits `idle` ends
/// the copy only when nothing moved the other way either (`moved`: the last time a
/// byte moved either way); a write must finish within `idle`.
async fn copy(
    reader: &mut (impl AsyncRead + Unpin),
    writer: &mut (impl AsyncWrite + Unpin),
    moved: &std::sync::Mutex<tokio::time::Instant>,
    idle: Duration,
) -> std::io::Result<()> {
    let last = || *moved.lock().unwrap_or_else(|p| p.into_inner());
    let timed_out = || std::io::Error::from(std::io::ErrorKind::TimedOut);
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = loop {
            match tokio::time::timeout_at(last() + idle, reader.read(&mut buf)).await {
                Ok(read) => break read?,
                // The other way moved meanwhile: keep waiting from then.
                Err(_) if last().elapsed() < idle => continue,
                Err(_) => return Err(timed_out()),
            }
        };
        if n == 0 {
            let _ = tokio::time::timeout(idle, writer.shutdown()).await;
            return Ok(());
        }
        *moved.lock().unwrap_or_else(|p| p.into_inner()) = tokio::time::Instant::now();
        tokio::time::timeout(idle, async {
            writer.write_all(&buf[..n]).await?;
            writer.flush().await
        })
        .await
        .map_err(|_| timed_out())??;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A partner that trickles its answer while the caller, its request sent, says
    /// nothing: the session lives as long as bytes move either way.
    #[tokio::test(start_paused = true)]
    async fn a_session_lives_while_either_way_moves_and_ends_when_neither_does() {
        let (caller, mut app) = UnixStream::pair().unwrap();
        let (session, mut partner) = tokio::io::duplex(1024);
        let pumping = tokio::spawn(pump_within(
            caller,
            Box::new(session),
            Duration::from_secs(10),
        ));
        app.write_all(b"request").await.unwrap();
        let mut got = [0u8; 7];
        partner.read_exact(&mut got).await.unwrap();
        // 5 bytes, 6 s apart: 30 s in all, three times the idle limit.
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_secs(6)).await;
            partner.write_all(b"x").await.unwrap();
            let mut byte = [0u8; 1];
            app.read_exact(&mut byte).await.unwrap();
        }
        assert!(!pumping.is_finished());
        // Then nothing either way: ended after the idle limit.
        tokio::time::sleep(Duration::from_secs(11)).await;
        tokio::task::yield_now().await;
        assert!(pumping.is_finished());
    }

    #[tokio::test]
    async fn a_connected_tcp_socket_is_taken_and_anything_else_refused() {
        let (ours, theirs) = UnixStream::pair().unwrap();
        // A connected TCP socket.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let tcp = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        send_socket(&ours, tcp.as_fd()).unwrap();
        let fd = receive_socket(&theirs).await.unwrap();
        assert!(tcp_socket(fd).is_ok());
        // A Unix socket, a listening socket, a file: refused.
        let (unix, _other) = std::os::unix::net::UnixStream::pair().unwrap();
        send_socket(&ours, unix.as_fd()).unwrap();
        let fd = receive_socket(&theirs).await.unwrap();
        assert_eq!(
            tcp_socket(fd).unwrap_err(),
            "the descriptor sent is not a TCP socket"
        );
        send_socket(&ours, listener.as_fd()).unwrap();
        let fd = receive_socket(&theirs).await.unwrap();
        assert_eq!(
            tcp_socket(fd).unwrap_err(),
            "the descriptor sent is not a connected socket"
        );
        let file = std::fs::File::open("/dev/null").unwrap();
        send_socket(&ours, file.as_fd()).unwrap();
        let fd = receive_socket(&theirs).await.unwrap();
        assert_eq!(
            tcp_socket(fd).unwrap_err(),
            "the descriptor sent is not a stream socket"
        );
        // A byte with no descriptor: refused.
        use std::io::Write;
        let mut plain = ours.into_std().unwrap();
        plain.set_nonblocking(false).unwrap();
        plain.write_all(b"S").unwrap();
        assert!(receive_socket(&theirs).await.is_err());
        // The caller gone: refused.
        drop(plain);
        assert!(receive_socket(&theirs).await.is_err());
    }
}
