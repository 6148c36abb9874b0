//! A [`TcpStream`] split into a read half and a write half, borrowed
//! ([`TcpStream::split`]) or owned ([`TcpStream::into_split`]), as in
//! `tokio::net::tcp`.
//!
//! Both halves reach the same core socket; a read waits for readable and a
//! write for writable readiness, each with its own waker list, so a task blocked
//! reading never holds up one writing.

use super::TcpStream;
use std::error::Error;
use std::fmt;
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The read half of a borrowed [`TcpStream::split`].
#[derive(Debug)]
pub struct ReadHalf<'a>(pub(super) &'a TcpStream);

/// The write half of a borrowed [`TcpStream::split`]; `poll_shutdown` sends FIN.
#[derive(Debug)]
pub struct WriteHalf<'a>(pub(super) &'a TcpStream);

/// The read half of [`TcpStream::into_split`], movable to another task.
#[derive(Debug)]
pub struct OwnedReadHalf {
    pub(super) inner: Arc<TcpStream>,
}

/// The write half of [`TcpStream::into_split`], movable to another task.
/// Dropping it shuts the write direction down (FIN), unless
/// [`OwnedWriteHalf::forget`].
#[derive(Debug)]
pub struct OwnedWriteHalf {
    pub(super) inner: Arc<TcpStream>,
    pub(super) shutdown_on_drop: bool,
}

/// [`OwnedReadHalf::reunite`] was given halves of two different streams; both
/// are handed back.
#[derive(Debug)]
pub struct ReuniteError(pub OwnedReadHalf, pub OwnedWriteHalf);

impl fmt::Display for ReuniteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("tried to reunite halves that are not from the same socket")
    }
}

impl Error for ReuniteError {}

/// `reunite` for both halves' methods of that name.
fn reunite(read: OwnedReadHalf, mut write: OwnedWriteHalf) -> Result<TcpStream, ReuniteError> {
    if !Arc::ptr_eq(&read.inner, &write.inner) {
        return Err(ReuniteError(read, write));
    }
    write.shutdown_on_drop = false;
    drop(write);
    // The only other reference was the write half's, just dropped.
    Arc::try_unwrap(read.inner).map_err(|inner| {
        // Unreachable while the halves are the only owners; keep the stream
        // alive rather than panic.
        ReuniteError(
            OwnedReadHalf {
                inner: inner.clone(),
            },
            OwnedWriteHalf {
                inner,
                shutdown_on_drop: false,
            },
        )
    })
}

impl OwnedReadHalf {
    /// Put the stream back together; `ReuniteError` if `write` is the half of
    /// another stream.
    pub fn reunite(self, write: OwnedWriteHalf) -> Result<TcpStream, ReuniteError> {
        reunite(self, write)
    }

    /// See [`TcpStream::peek`].
    pub async fn peek(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.peek(buf).await
    }

    /// See [`TcpStream::poll_peek`].
    pub fn poll_peek(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<usize>> {
        self.inner.poll_peek(cx, buf)
    }

    /// See [`TcpStream::readable`].
    pub async fn readable(&self) -> io::Result<()> {
        self.inner.readable().await
    }

    /// See [`TcpStream::try_read`].
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.try_read(buf)
    }

    /// getpeername(2).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
    }

    /// getsockname(2).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

impl OwnedWriteHalf {
    /// Put the stream back together; `ReuniteError` if `read` is the half of
    /// another stream.
    pub fn reunite(self, read: OwnedReadHalf) -> Result<TcpStream, ReuniteError> {
        reunite(read, self)
    }

    /// Drop this half without shutting the write direction down.
    pub fn forget(mut self) {
        self.shutdown_on_drop = false;
    }

    /// See [`TcpStream::writable`].
    pub async fn writable(&self) -> io::Result<()> {
        self.inner.writable().await
    }

    /// See [`TcpStream::try_write`].
    pub fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        self.inner.try_write(buf)
    }

    /// getpeername(2).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
    }

    /// getsockname(2).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

impl Drop for OwnedWriteHalf {
    fn drop(&mut self) {
        if self.shutdown_on_drop {
            // Already closed or reset: nothing left to shut down.
            let _ = self.inner.shutdown_std(Shutdown::Write);
        }
    }
}

impl AsRef<TcpStream> for ReadHalf<'_> {
    fn as_ref(&self) -> &TcpStream {
        self.0
    }
}

impl AsRef<TcpStream> for WriteHalf<'_> {
    fn as_ref(&self) -> &TcpStream {
        self.0
    }
}

impl AsRef<TcpStream> for OwnedReadHalf {
    fn as_ref(&self) -> &TcpStream {
        &self.inner
    }
}

impl AsRef<TcpStream> for OwnedWriteHalf {
    fn as_ref(&self) -> &TcpStream {
        &self.inner
    }
}

// The read side of the stream and both kinds of read half: one implementation.
macro_rules! async_read_via_stream {
    ($ty:ty, $s:ident => $stream:expr) => {
        impl AsyncRead for $ty {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                let $s = self;
                $stream.poll_read_buf(cx, buf)
            }
        }
    };
}

async_read_via_stream!(TcpStream, s => s);
async_read_via_stream!(ReadHalf<'_>, s => s.0);
async_read_via_stream!(OwnedReadHalf, s => s.inner);

// The write side of the stream and both kinds of write half: one implementation.
macro_rules! async_write_via_stream {
    ($ty:ty, $s:ident => $stream:expr) => {
        impl AsyncWrite for $ty {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                let $s = self;
                $stream.poll_write_slice(cx, buf)
            }

            /// Written bytes are already in the stack's send buffer.
            fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }

            fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                let $s = self;
                Poll::Ready($stream.shutdown_std(Shutdown::Write))
            }
        }
    };
}

async_write_via_stream!(TcpStream, s => s);
async_write_via_stream!(WriteHalf<'_>, s => s.0);
async_write_via_stream!(OwnedWriteHalf, s => s.inner);
