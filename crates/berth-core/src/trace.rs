//! `tracing` events of the stack, for whoever installs a subscriber (the `berth`
//! command does with `RUST_LOG`); without one they cost a cached check each.
//!
//! Targets:
//! - `berth::tcp` (debug): every TCP state change with the four-tuple
//!   (`local`, `remote`, `from`, `to`, in `ss`'s state names), and a
//!   connection's end with its error (`ECONNRESET`, `ETIMEDOUT`, …);
//! - `berth::drop` (debug): every packet the stack dropped or ignored, with the
//!   drop counter's name (as in [`crate::Stats`]), its description as the
//!   reason, and what was being handled (the frame's interface, addresses and
//!   protocol, or "timer"). Found by comparing the counters before and after
//!   each received frame and each run of timers — only while the target is
//!   enabled, so the counters stay the one place that knows a drop.

use crate::iface::IfaceId;
use crate::stats::Stats;
use crate::tcp::TcpState;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Target of TCP state changes and connection errors.
pub(crate) const TCP: &str = "berth::tcp";
/// Target of dropped packets.
pub(crate) const DROP: &str = "berth::drop";

/// A TCP connection moved from state `from` to `to`.
pub(crate) fn tcp_state(local: SocketAddr, remote: SocketAddr, from: TcpState, to: TcpState) {
    if from != to {
        tracing::debug!(target: TCP, %local, %remote, from = %from.ss_name(), to = %to.ss_name(), "state change");
    }
}

/// A TCP connection ended with `errno` (not 0).
pub(crate) fn tcp_error(local: SocketAddr, remote: SocketAddr, errno: i32) {
    let error = crate::error::kind_of(errno);
    tracing::debug!(target: TCP, %local, %remote, errno, ?error, "connection failed");
}

/// Whether a counter counts packets dropped or ignored, by its description.
fn is_drop(name: &str, desc: &str) -> bool {
    const WORDS: [&str; 7] = [
        "dropped",
        "ignored",
        "ignores",
        "given up",
        "not sent",
        "not answered",
        "suppressed",
    ];
    WORDS.iter().any(|w| desc.contains(w)) || matches!(name, "tcp_no_socket" | "tcp_out_of_window")
}

/// The counters before one step of the stack, kept only while `berth::drop`
/// is enabled.
pub(crate) struct DropWatch(Option<Box<Stats>>);

impl DropWatch {
    #[inline]
    pub(crate) fn start(stats: &Stats) -> DropWatch {
        if tracing::enabled!(target: DROP, tracing::Level::DEBUG) {
            DropWatch(Some(Box::new(stats.clone())))
        } else {
            DropWatch(None)
        }
    }

    /// One event for every drop counter that grew since [`DropWatch::start`],
    /// saying what was handled (`what` runs only then).
    #[inline]
    pub(crate) fn finish<D: fmt::Display>(self, stats: &Stats, what: impl FnOnce() -> D) {
        if let Some(before) = self.0 {
            report(&before, stats, &what());
        }
    }
}

#[cold]
fn report(before: &Stats, after: &Stats, what: &dyn fmt::Display) {
    for ((name, desc, was), (_, _, is)) in before.iter().zip(after.iter()) {
        if is > was && is_drop(name, desc) {
            tracing::debug!(target: DROP, counter = %name, count = is - was, reason = %desc, "{what}");
        }
    }
}

/// A frame as a drop event names it: interface, then addresses and protocol
/// of its IP packet when it has one (never fails: the frame is the peer's).
pub(crate) struct Frame<'a> {
    pub iface: IfaceId,
    pub ethernet: bool,
    pub bytes: &'a [u8],
}

impl fmt::Display for Frame<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "frame on interface {}, {} bytes",
            self.iface.0,
            self.bytes.len()
        )?;
        let ip = if self.ethernet {
            match self.bytes.get(12..14) {
                Some([0x08, 0x06]) => return write!(f, ": ARP"),
                Some([0x08, 0x00] | [0x86, 0xdd]) => &self.bytes[14..],
                _ => return Ok(()),
            }
        } else {
            self.bytes
        };
        let addrs = match ip.first().map(|b| b >> 4) {
            Some(4) => ip.get(12..20).zip(ip.get(9)).map(|(a, &p)| {
                let src = Ipv4Addr::new(a[0], a[1], a[2], a[3]);
                let dst = Ipv4Addr::new(a[4], a[5], a[6], a[7]);
                (IpAddr::V4(src), IpAddr::V4(dst), p)
            }),
            Some(6) => ip.get(8..40).zip(ip.get(6)).map(|(a, &p)| {
                let v6 = |b: &[u8]| {
                    let mut o = [0u8; 16];
                    o.copy_from_slice(b);
                    IpAddr::V6(Ipv6Addr::from(o))
                };
                (v6(&a[..16]), v6(&a[16..]), p)
            }),
            _ => None,
        };
        match addrs {
            Some((src, dst, proto)) => write!(f, ": {src} -> {dst} protocol {proto}"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_counters_are_told_by_their_description() {
        let s = Stats::default();
        let drops: Vec<&str> = s
            .iter()
            .filter(|(n, d, _)| is_drop(n, d))
            .map(|(n, _, _)| n)
            .collect();
        for n in [
            "ip_in_bad_checksum",
            "tcp_no_socket",
            "udp_no_ports",
            "tcp_listen_drops",
            "arp_resolve_failed",
            "icmp_out_rate_limited",
        ] {
            assert!(drops.contains(&n), "{n} is a drop");
        }
        for n in [
            "ip_in_receives",
            "tcp_out_segs",
            "tcp_active_opens",
            "ndp_dad_ok",
        ] {
            assert!(!drops.contains(&n), "{n} is not a drop");
        }
    }

    #[test]
    fn frames_are_described_without_panicking() {
        let mut ip = vec![0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0];
        ip.extend_from_slice(&[192, 0, 2, 1, 192, 0, 2, 2]);
        let f = Frame {
            iface: IfaceId(0),
            ethernet: false,
            bytes: &ip,
        };
        assert_eq!(
            f.to_string(),
            "frame on interface 0, 20 bytes: 192.0.2.1 -> 192.0.2.2 protocol 17"
        );
        let mut eth = vec![0u8; 12];
        eth.extend_from_slice(&[0x08, 0x06]);
        let f = Frame {
            iface: IfaceId(1),
            ethernet: true,
            bytes: &eth,
        };
        assert!(f.to_string().ends_with(": ARP"));
        for cut in 0..ip.len() {
            for ethernet in [false, true] {
                let f = Frame {
                    iface: IfaceId(0),
                    ethernet,
                    bytes: &ip[..cut],
                };
                assert!(f.to_string().starts_with("frame on interface 0"));
            }
        }
    }
}
