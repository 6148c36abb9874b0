//! Joining two kernel TCP connections with splice(2): bytes go socket →
//! pipe → socket inside the kernel, never through a user-space buffer. Used
//! for port forwards from the host's loopback (see [`super::nsock`]).
//!
//! Each direction has its own pipe. The pipe holds at most [`PIPE`] bytes, so
//! a slow receiver stops the reading (its sender's window closes) instead of
//! anything piling up. A FIN is passed on as a FIN (shutdown of the write
//! side); an error in either direction ends both, and the caller resets the
//! connections.

use nix::fcntl::{fcntl, splice, FcntlArg, OFlag, SpliceFFlags};
use nix::sys::socket::{shutdown, Shutdown};
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use tokio::io::Interest;
use tokio::net::TcpStream;

/// Pipe size asked for (F_SETPIPE_SZ); fewer, larger splices. Unprivileged
/// users over fs.pipe-user-pages-soft get the default 64 KiB instead.
const PIPE: usize = 1 << 20;

/// Copy both ways until both directions have ended: bytes (a → b, b → a).
pub async fn both_ways(a: &TcpStream, b: &TcpStream) -> io::Result<(u64, u64)> {
    tokio::try_join!(one_way(a, b), one_way(b, a))
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd, usize)> {
    let (r, w) = nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC)?;
    let cap = match fcntl(&w, FcntlArg::F_SETPIPE_SZ(PIPE as libc::c_int)) {
        Ok(n) => usize::try_from(n).unwrap_or(PIPE),
        Err(_) => fcntl(&w, FcntlArg::F_GETPIPE_SZ)
            .ok()
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(4096),
    };
    Ok((r, w, cap))
}

fn move_bytes(from: impl AsFd, to: impl AsFd, len: usize) -> io::Result<usize> {
    let flags = SpliceFFlags::SPLICE_F_NONBLOCK | SpliceFFlags::SPLICE_F_MOVE;
    loop {
        match splice(from.as_fd(), None, to.as_fd(), None, len, flags) {
            Err(nix::errno::Errno::EINTR) => continue,
            r => return r.map_err(io::Error::from),
        }
    }
}

async fn one_way(src: &TcpStream, dst: &TcpStream) -> io::Result<u64> {
    let (pr, pw, cap) = pipe()?;
    let mut held = 0usize;
    let mut total = 0u64;
    let mut eof = false;
    loop {
        if !eof && held < cap {
            let got = if held == 0 {
                // The pipe is empty, so EAGAIN can only mean the socket has
                // nothing: let tokio clear its readiness.
                src.try_io(Interest::READABLE, || move_bytes(src, &pw, cap))
            } else {
                // EAGAIN may come from a full pipe (its slots can fill before
                // `cap` bytes): says nothing about the socket, so readiness
                // stays, and the pipe is drained first.
                match move_bytes(src, &pw, cap - held) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(usize::MAX),
                    r => r,
                }
            };
            match got {
                Ok(0) => eof = true,
                Ok(usize::MAX) => {}
                Ok(n) => held += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    src.readable().await?;
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        if held > 0 {
            match dst.try_io(Interest::WRITABLE, || move_bytes(&pr, dst, held)) {
                Ok(n) => {
                    held -= n;
                    total += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => dst.writable().await?,
                Err(e) => return Err(e),
            }
        } else if eof {
            match shutdown(dst.as_raw_fd(), Shutdown::Write) {
                Ok(()) | Err(nix::errno::Errno::ENOTCONN) => return Ok(total),
                Err(e) => return Err(e.into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A pair of connected loopback streams: (client, server).
    async fn pair() -> (TcpStream, TcpStream) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let (c, s) = tokio::join!(TcpStream::connect(addr), l.accept());
        (c.unwrap(), s.unwrap().0)
    }

    #[tokio::test(flavor = "current_thread")]
    async fn bytes_and_half_closes_cross_in_both_directions() {
        // client ⇄ (a | splice | b) ⇄ server
        let (mut client, a) = pair().await;
        let (b, mut server) = pair().await;
        let relay = tokio::spawn(async move { both_ways(&a, &b).await });
        let up: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
        let down: Vec<u8> = (0..2_000_000u32).map(|i| (i * 13 + 5) as u8).collect();
        let (up2, down2) = (up.clone(), down.clone());
        let c = tokio::spawn(async move {
            let (mut r, mut w) = client.split();
            let send = async {
                w.write_all(&up2).await.unwrap();
                w.shutdown().await.unwrap();
            };
            let mut got = Vec::new();
            let recv = r.read_to_end(&mut got);
            let (_, n) = tokio::join!(send, recv);
            n.unwrap();
            got
        });
        let s = tokio::spawn(async move {
            let (mut r, mut w) = server.split();
            let mut got = Vec::new();
            // The server reads to EOF first: the client's FIN arrived as one.
            r.read_to_end(&mut got).await.unwrap();
            w.write_all(&down2).await.unwrap();
            w.shutdown().await.unwrap();
            got
        });
        let (at_client, at_server) = (c.await.unwrap(), s.await.unwrap());
        assert!(at_server == up, "client → server bytes differ");
        assert!(at_client == down, "server → client bytes differ");
        let (n_up, n_down) = relay.await.unwrap().unwrap();
        assert_eq!((n_up, n_down), (up.len() as u64, down.len() as u64));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_reset_ends_the_relay_with_an_error() {
        let (client, a) = pair().await;
        let (b, _server) = pair().await;
        let relay = tokio::spawn(async move { both_ways(&a, &b).await });
        #[allow(deprecated)]
        client.set_linger(Some(std::time::Duration::ZERO)).unwrap();
        drop(client);
        let r = tokio::time::timeout(std::time::Duration::from_secs(5), relay)
            .await
            .expect("the relay ends")
            .unwrap();
        assert!(r.is_err(), "a reset is an error: {r:?}");
    }
}
