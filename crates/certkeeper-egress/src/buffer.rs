//! Byte buffers and writes shared by the relay's two upstream paths.

use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};

/// Bytes read and not yet used, in a buffer that grows up to a limit.
pub(crate) struct Buffer {
    /// An error met after some bytes had been read in the same call, for the next
    /// call: a socket reports an error (a reset) once, and the read after it ends
    /// as if the peer had closed cleanly.
    error: Option<io::Error>,
    data: Vec<u8>,
    start: usize,
    end: usize,
    max: usize,
}

impl Buffer {
    pub(crate) fn new(initial: usize, max: usize) -> Self {
        Buffer {
            error: None,
            data: vec![0; initial],
            start: 0,
            end: 0,
            max,
        }
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.data[self.start..self.end]
    }

    pub(crate) fn len(&self) -> usize {
        self.end - self.start
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.start == self.end
    }

    pub(crate) fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Whether more can be read in: moves what is left to the front, or grows.
    pub(crate) fn make_room(&mut self) -> bool {
        if self.end < self.data.len() {
            return true;
        }
        if self.start > 0 {
            self.data.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            return true;
        }
        if self.data.len() < self.max {
            let grown = (self.data.len() * 2).min(self.max);
            self.data.resize(grown, 0);
            return true;
        }
        false
    }

    /// Reads once into the free space (0: end of stream; an error when the buffer is
    /// full).
    pub(crate) fn poll_fill<R: AsyncRead + Unpin>(
        &mut self,
        io: &mut R,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>> {
        if let Some(e) = self.error.take() {
            return Poll::Ready(Err(e));
        }
        if !self.make_room() {
            return Poll::Ready(Err(io::Error::other("buffer full")));
        }
        let mut buf = ReadBuf::new(&mut self.data[self.end..]);
        match Pin::new(io).poll_read(cx, &mut buf) {
            Poll::Ready(Ok(())) => {
                let n = buf.filled().len();
                self.end += n;
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Drops every byte held and any error kept: for another connection.
    pub(crate) fn reset(&mut self) {
        self.start = 0;
        self.end = 0;
        self.error = None;
    }

    /// Whether an error is kept for the next read.
    pub(crate) fn has_error(&self) -> bool {
        self.error.is_some()
    }

    /// Keeps `e` for the next read.
    pub(crate) fn keep_error(&mut self, e: io::Error) {
        self.error.get_or_insert(e);
    }

    /// Reads what has arrived until there is nothing more ready, `enough` bytes are
    /// held, or there is no more room; if nothing has arrived, waits for it when
    /// `wait`, else returns 0.
    pub(crate) async fn fill<R: AsyncRead + Unpin>(
        &mut self,
        io: &mut R,
        enough: usize,
        wait: bool,
    ) -> io::Result<usize> {
        poll_fn(|cx| {
            let mut got = 0;
            while self.len() < enough && self.make_room() {
                match self.poll_fill(io, cx) {
                    Poll::Ready(Ok(0)) => break,
                    Poll::Ready(Ok(n)) => got += n,
                    Poll::Ready(Err(e)) if got == 0 => return Poll::Ready(Err(e)),
                    Poll::Ready(Err(e)) => {
                        self.error = Some(e);
                        break;
                    }
                    Poll::Pending if got == 0 && wait => return Poll::Pending,
                    Poll::Pending => break,
                }
            }
            Poll::Ready(Ok(got))
        })
        .await
    }
}

/// Writes `a` then `b`, in as few writes as the socket takes.
/// The most header fields a head may have.
pub(crate) const MAX_FIELDS: usize = 128;

/// Appends `content-length: N`.
pub(crate) fn push_length(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(b"content-length: ");
    out.extend_from_slice(n.to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Writes `a` then `b`, in as few writes as the socket takes.
pub(crate) async fn write_both<W: AsyncWrite + Unpin>(
    w: &mut W,
    mut a: &[u8],
    mut b: &[u8],
) -> io::Result<()> {
    while !a.is_empty() || !b.is_empty() {
        let n = write_some(w, a, b).await?;
        advance(&mut a, &mut b, n)?;
    }
    Ok(())
}

/// [`write_both`] with `limit` for each write rather than for all of them, as
/// nginx's `send_timeout`: an application that reads slowly but steadily gets all
/// of a large answer; one that stops reading for `limit` is let go.
pub(crate) async fn write_both_paced<W: AsyncWrite + Unpin>(
    w: &mut W,
    mut a: &[u8],
    mut b: &[u8],
    timer: &mut Deadline,
    limit: std::time::Duration,
) -> io::Result<()> {
    while !a.is_empty() || !b.is_empty() {
        let at = tokio::time::Instant::now() + limit;
        let n = timer
            .run(at, write_some(w, a, b))
            .await
            .unwrap_or_else(|| Err(io::ErrorKind::TimedOut.into()))?;
        advance(&mut a, &mut b, n)?;
    }
    Ok(())
}

/// One write of what is left of `a` then `b` (vectored when both are left).
async fn write_some<W: AsyncWrite + Unpin>(w: &mut W, a: &[u8], b: &[u8]) -> io::Result<usize> {
    if a.is_empty() {
        w.write(b).await
    } else if b.is_empty() {
        w.write(a).await
    } else {
        w.write_vectored(&[IoSlice::new(a), IoSlice::new(b)]).await
    }
}

/// Moves past the `n` bytes a write took, from `a` first.
fn advance(a: &mut &[u8], b: &mut &[u8], n: usize) -> io::Result<()> {
    if n == 0 {
        return Err(io::ErrorKind::WriteZero.into());
    }
    let from_a = n.min(a.len());
    *a = &a[from_a..];
    *b = &b[n - from_a..];
    Ok(())
}

/// One timer per connection, moved for each wait rather than made anew: making a
/// tokio timer and waiting on it registers it in the runtime's timer wheel, and
/// dropping it takes it out again (two locked updates per wait on the relay's
/// busiest path), while moving a registered timer later is one atomic update.
pub(crate) struct Deadline(std::pin::Pin<Box<tokio::time::Sleep>>);

impl Deadline {
    pub(crate) fn new() -> Self {
        let far = tokio::time::Instant::now() + std::time::Duration::from_secs(86_400);
        Deadline(Box::pin(tokio::time::sleep_until(far)))
    }

    /// `fut`'s output, or `None` when `at` comes first. A future ready at once
    /// touches no timer.
    pub(crate) async fn run<F: std::future::Future>(
        &mut self,
        at: tokio::time::Instant,
        fut: F,
    ) -> Option<F::Output> {
        let mut fut = std::pin::pin!(fut);
        let mut armed = false;
        poll_fn(|cx| {
            if let Poll::Ready(out) = fut.as_mut().poll(cx) {
                return Poll::Ready(Some(out));
            }
            if !armed {
                armed = true;
                if self.0.deadline() != at {
                    self.0.as_mut().reset(at);
                }
            }
            match self.0.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            }
        })
        .await
    }
}
