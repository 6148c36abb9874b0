//! Pings from the namespace to other hosts, sent again from the host.
//!
//! berth answers pings to its own addresses (the gateway) itself. Echo
//! requests to any other address reach a raw ICMP socket of the forwarding
//! stack (raw sockets see every ICMP message, forwarded ones included); they
//! are sent from the host through [`HostPinger`] (an unprivileged ICMP socket,
//! or a raw one as root), and each reply comes back into the namespace from
//! the address that answered, through a transparent raw socket bound to it.
//!
//! Bounded: at most `QUEUE` requests wait to be sent (more are dropped), and
//! the pinger's table holds one entry per sequence number on the wire.

use super::hostping::{EchoReply, HostPinger};
use berth::{RawSocket, Stack};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;

const QUEUE: usize = 256;

/// One echo request from the namespace.
struct Request {
    dst: IpAddr,
    ident: u16,
    seq: u16,
    payload: Vec<u8>,
}

/// Counts for the exit summary and tests.
#[derive(Debug, Default)]
pub struct IcmpStats {
    pub requests: AtomicU64,
    pub replies: AtomicU64,
    pub dropped: AtomicU64,
}

/// Start relaying pings of both families: `guest4`/`guest6` are the
/// namespace's addresses (replies go there).
pub fn start(
    stack: &Stack,
    rt: &tokio::runtime::Handle,
    guest4: Ipv4Addr,
    guest6: Option<Ipv6Addr>,
) -> io::Result<Arc<IcmpStats>> {
    let stats = Arc::new(IcmpStats::default());
    let warned = Arc::new(AtomicBool::new(false));
    let families: Vec<(bool, IpAddr)> = std::iter::once((false, IpAddr::V4(guest4)))
        .chain(guest6.map(|g| (true, IpAddr::V6(g))))
        .collect();
    for (v6, guest) in families {
        let raw = if v6 {
            RawSocket::new_v6(stack, 58)?
        } else {
            RawSocket::new(stack, 1)?
        };
        let (tx, rx) = mpsc::channel::<Request>(QUEUE);
        let (stats_r, stack_r) = (Arc::clone(&stats), stack.clone());
        // A task, not a thread blocked on the stack: blocked threads are
        // woken by every event of the stack.
        let raw = berth::tokio::RawSocket::from_std(raw);
        rt.spawn(async move { read_requests(&stack_r, raw, v6, tx, &stats_r).await });
        let (stack, stats, warned) = (stack.clone(), Arc::clone(&stats), Arc::clone(&warned));
        rt.spawn(async move { send_and_answer(stack, v6, guest, rx, stats, warned).await });
    }
    Ok(stats)
}

/// Echo requests to other hosts, read from the stack's raw socket until the
/// stack shuts down.
async fn read_requests(
    stack: &Stack,
    raw: berth::tokio::RawSocket,
    v6: bool,
    tx: mpsc::Sender<Request>,
    stats: &IcmpStats,
) {
    let mut buf = vec![0u8; 65_536];
    while let Ok((n, _src, dst)) = raw.recv_from_to(&mut buf).await {
        let Some(req) = parse_request(&buf[..n], v6, dst) else {
            continue;
        };
        // berth answers for its own addresses.
        if stack.with_core(|c, _| c.is_local_addr(dst)) {
            continue;
        }
        stats.requests.fetch_add(1, Ordering::Relaxed);
        if tx.try_send(req).is_err() {
            stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// An echo request (type 8 / 128, code 0) as the raw socket gives it: IPv4
/// with its header, ICMPv6 without.
fn parse_request(pkt: &[u8], v6: bool, dst: IpAddr) -> Option<Request> {
    let icmp = if v6 {
        pkt
    } else {
        let ihl = usize::from(pkt.first()? & 0x0f) * 4;
        pkt.get(ihl..)?
    };
    let want = if v6 { 128 } else { 8 };
    if icmp.len() < 8 || icmp[0] != want || icmp[1] != 0 {
        return None;
    }
    Some(Request {
        dst,
        ident: u16::from_be_bytes([icmp[4], icmp[5]]),
        seq: u16::from_be_bytes([icmp[6], icmp[7]]),
        payload: icmp[8..].to_vec(),
    })
}

async fn send_and_answer(
    stack: Stack,
    v6: bool,
    guest: IpAddr,
    mut rx: mpsc::Receiver<Request>,
    stats: Arc<IcmpStats>,
    warned: Arc<AtomicBool>,
) {
    let pinger = match HostPinger::open(v6) {
        Ok(p) => Arc::new(p),
        Err(e) => {
            // Said once, when the namespace first pings another host.
            while let Some(_req) = rx.recv().await {
                stats.dropped.fetch_add(1, Ordering::Relaxed);
                if !warned.swap(true, Ordering::Relaxed) {
                    eprintln!("berth run: pings to other hosts are not relayed: {e}");
                }
            }
            return;
        }
    };
    let answers = {
        let (pinger, stats) = (Arc::clone(&pinger), Arc::clone(&stats));
        tokio::spawn(async move {
            while let Ok(r) = pinger.recv().await {
                if answer(&stack, v6, guest, &r).is_ok() {
                    stats.replies.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    while let Some(req) = rx.recv().await {
        let _ = pinger.send(req.dst, req.ident, req.seq, &req.payload).await;
    }
    answers.abort();
}

/// The echo reply into the namespace, from the host that answered.
fn answer(stack: &Stack, v6: bool, guest: IpAddr, r: &EchoReply) -> io::Result<()> {
    let mut msg = Vec::with_capacity(8 + r.payload.len());
    msg.extend_from_slice(&[if v6 { 129 } else { 0 }, 0, 0, 0]);
    msg.extend_from_slice(&r.ident.to_be_bytes());
    msg.extend_from_slice(&r.seq.to_be_bytes());
    msg.extend_from_slice(&r.payload);
    let sock = if v6 {
        // The stack fills in ICMPv6 checksums (RFC 3542 §3.1).
        RawSocket::new_v6(stack, 58)?
    } else {
        let c = berth_wire::checksum::checksum(&msg);
        msg[2..4].copy_from_slice(&c.to_be_bytes());
        RawSocket::new(stack, 1)?
    };
    sock.set_transparent(true)?;
    sock.bind(r.src)?;
    sock.send_to(&msg, guest)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_echo_requests_are_taken() {
        let dst: IpAddr = "198.51.100.7".parse().unwrap();
        let mut v4 = vec![0x45u8; 20];
        v4.extend_from_slice(&[8, 0, 0, 0, 0x12, 0x34, 0, 7, b'h', b'i']);
        let r = parse_request(&v4, false, dst).unwrap();
        assert_eq!(
            (r.ident, r.seq, r.payload.as_slice()),
            (0x1234, 7, &b"hi"[..])
        );
        v4[20] = 0; // an echo reply
        assert!(parse_request(&v4, false, dst).is_none());
        assert!(parse_request(&v4[..24], false, dst).is_none());
        let v6 = [128u8, 0, 0, 0, 0, 1, 0, 2];
        let r = parse_request(&v6, true, dst).unwrap();
        assert_eq!((r.ident, r.seq), (1, 2));
        assert!(parse_request(&[], false, dst).is_none());
    }
}
