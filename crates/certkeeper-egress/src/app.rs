//! The applications' side of a binding: a loopback TCP or Unix-socket listener, the
//! connections it accepts, and the gate that asks the kernel who is connecting
//! (socket diagnostics for TCP, SO_PEERCRED for a Unix socket) and lets through only
//! the uids the certificate's key ACL admits.

use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

/// Decides, from the connecting uid (`None` when the kernel could not name it), whether
/// an application may use a binding: `Err` holds the one line the application reads
/// with its 403.
pub type Gate = Arc<dyn Fn(Option<u32>) -> Result<(), String> + Send + Sync>;

/// Application connections one uid may hold open to one binding.
pub const PER_UID: usize = 256;
/// Application connections a binding holds open in all.
pub const TOTAL: usize = 4096;

/// Where a binding listens.
pub enum Listener {
    /// Loopback TCP.
    Tcp(TcpListener),
    /// A Unix socket at this path.
    Unix(UnixListener, PathBuf),
}

/// An application's connection.
pub enum AppStream {
    /// Over loopback TCP.
    Tcp(TcpStream),
    /// Over a Unix socket.
    Unix(UnixStream),
}

impl Listener {
    /// Accepts the next connection with the uid the kernel says made it (`None` when
    /// the kernel could not tell: the connection is then refused).
    pub async fn accept(&self) -> io::Result<(AppStream, Option<u32>)> {
        match self {
            Listener::Tcp(l) => {
                let (stream, peer) = l.accept().await?;
                let _ = stream.set_nodelay(true);
                let uid = stream
                    .local_addr()
                    .ok()
                    .and_then(|local| certkeeper_agent::sockdiag::tcp_peer_uid(local, peer).ok());
                Ok((AppStream::Tcp(stream), uid))
            }
            Listener::Unix(l, _) => {
                let (stream, _) = l.accept().await?;
                let uid = stream.peer_cred().ok().map(|c| c.uid());
                Ok((AppStream::Unix(stream), uid))
            }
        }
    }

    /// The address as `bindings` shows it.
    pub fn describe(&self) -> String {
        match self {
            Listener::Tcp(l) => l
                .local_addr()
                .map_or_else(|_| "tcp".into(), |a| format!("http://{a}")),
            Listener::Unix(_, path) => format!("unix:{}", path.display()),
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix(_, path) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Binds a binding's listen address: `127.0.0.1:PORT`, `[::1]:PORT` or
/// `unix:/ABSOLUTE/PATH` (see [`certkeeper_agent::server::bind`] for how a Unix socket
/// is made: in a directory no other user may write, with its mode set before it
/// appears at its path).
pub async fn listen(address: &str) -> Result<Listener, String> {
    match address.strip_prefix("unix:") {
        Some(path) => {
            let path = Path::new(path);
            certkeeper_agent::server::bind(path)
                .map(|l| Listener::Unix(l, path.to_path_buf()))
                .map_err(|e| e.to_string())
        }
        None => TcpListener::bind(address)
            .await
            .map(Listener::Tcp)
            .map_err(|e| e.to_string()),
    }
}

/// Answers a refused application with a 403 and the reason, then lets it go. The
/// request is drained briefly so that the application reads the answer rather than a
/// reset.
pub async fn refuse(stream: AppStream, reason: &str) {
    answer_and_close(stream, "403 Forbidden", reason).await;
}

/// Answers an application over its connection limit with a 503, then lets it go.
pub async fn too_many(stream: AppStream, uid: u32) {
    let reason = format!(
        "uid {uid} has {PER_UID} connections open to this binding (or the binding has \
         {TOTAL}); reuse connections or close some"
    );
    answer_and_close(stream, "503 Service Unavailable", &reason).await;
}

async fn answer_and_close(mut stream: AppStream, status: &str, reason: &str) {
    let body = format!("certkeeper: {reason}\n");
    let answer = format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/plain; charset=utf-8\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 4096];
        let mut left: usize = 64 * 1024;
        while left > 0 {
            let n = stream.read(&mut sink).await?;
            if n == 0 {
                break;
            }
            left = left.saturating_sub(n);
        }
        Ok::<_, io::Error>(())
    })
    .await;
}

impl AppStream {
    /// The std socket, to move it to another runtime.
    pub(crate) fn into_std(self) -> io::Result<StdAppStream> {
        match self {
            AppStream::Tcp(s) => s.into_std().map(StdAppStream::Tcp),
            AppStream::Unix(s) => s.into_std().map(StdAppStream::Unix),
        }
    }
}

/// An [`AppStream`] between runtimes.
pub(crate) enum StdAppStream {
    Tcp(std::net::TcpStream),
    Unix(std::os::unix::net::UnixStream),
}

impl AppStream {
    /// Resets the connection (TCP: `SO_LINGER` 0, so closing sends RST): an
    /// application reading an answer the relay had to cut off then sees an error, not
    /// a clean end. A Unix socket has no reset; it just closes.
    pub(crate) fn abort(&self) {
        if let AppStream::Tcp(s) = self {
            let _ = s.set_zero_linger();
        }
    }
}

impl StdAppStream {
    /// Registers the socket with the calling runtime.
    pub(crate) fn into_tokio(self) -> io::Result<AppStream> {
        match self {
            StdAppStream::Tcp(s) => TcpStream::from_std(s).map(AppStream::Tcp),
            StdAppStream::Unix(s) => UnixStream::from_std(s).map(AppStream::Unix),
        }
    }
}

impl AsyncRead for AppStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            AppStream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            AppStream::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for AppStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            AppStream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            AppStream::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            AppStream::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            AppStream::Unix(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            AppStream::Tcp(s) => s.is_write_vectored(),
            AppStream::Unix(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            AppStream::Tcp(s) => Pin::new(s).poll_flush(cx),
            AppStream::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            AppStream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            AppStream::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
