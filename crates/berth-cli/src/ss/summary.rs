//! `ss -s`: iproute2's summary (Total, the TCP line, the Transport table),
//! then what berth adds: the listener queues, stack-wide memory in the words
//! of /proc/net/sockstat, and the non-zero counters.

use super::Row;
use berth_core::MemoryUsage;
use std::fmt::Write;

/// The summary of `rows`, with the server's counters and, when it reports
/// them, its memory (`{"cmd":"memory"}`).
pub fn summary(
    rows: &[Row],
    stats: &serde_json::Value,
    memory: Option<&serde_json::Value>,
) -> String {
    // A listener's half-open connections are not sockets yet (Linux's
    // request socks are not counted in sockstat either).
    let socks: Vec<&Row> = rows.iter().filter(|r| !r.is_half_open()).collect();
    let count = |f: &dyn Fn(&Row) -> bool| socks.iter().filter(|r| f(r)).count();
    let tcp = |r: &Row| r.netid == "tcp";
    let closed = |r: &Row| r.state == "CLOSE" || r.state == "UNCONN";
    let mut out = format!("Total: {}\n", socks.len());
    let _ = writeln!(
        out,
        "TCP:   {} (estab {}, closed {}, orphaned {}, timewait {})",
        count(&tcp),
        // Linux's CurrEstab: ESTABLISHED and CLOSE-WAIT.
        count(&|r| tcp(r) && (r.state == "ESTAB" || r.state == "CLOSE-WAIT")),
        count(&|r| tcp(r) && closed(r)),
        // TIME-WAIT connections are not orphans (Linux counts them apart).
        count(&|r| tcp(r) && r.is_orphan() && r.state != "TIME-WAIT"),
        count(&|r| tcp(r) && r.state == "TIME-WAIT"),
    );
    out.push('\n');
    out.push_str("Transport Total     IP        IPv6\n");
    // Per family: IPv4, IPv6. TCP counts the hashed sockets (not closed).
    let fam = |f: &dyn Fn(&Row) -> bool| {
        (
            count(&|r| f(r) && !r.is_ipv6()),
            count(&|r| f(r) && r.is_ipv6()),
        )
    };
    let raw = fam(&|r| r.netid == "raw");
    let udp = fam(&|r| r.netid == "udp");
    let tcp_hashed = fam(&|r| tcp(r) && !closed(r));
    let inet = (raw.0 + udp.0 + tcp_hashed.0, raw.1 + udp.1 + tcp_hashed.1);
    let n = |k: &str| {
        memory
            .and_then(|m| m.get(k))
            .and_then(|v| v.as_u64())
            .unwrap_or(0) as usize
    };
    let frag6 = n("frag6_pending");
    let frag = (n("frag_pending").saturating_sub(frag6), frag6);
    for (name, (v4, v6)) in [
        ("RAW", raw),
        ("UDP", udp),
        ("TCP", tcp_hashed),
        ("INET", inet),
        ("FRAG", frag),
    ] {
        let _ = writeln!(out, "{name}\t  {:<9} {v4:<9} {v6:<9}", v4 + v6);
    }
    out.push('\n');
    let _ = writeln!(
        out,
        "TCP queues: listen {}, synrecv {} (half-open, in listeners' SYN queues)",
        count(&|r| tcp(r) && r.state == "LISTEN"),
        rows.iter().filter(|r| r.is_half_open()).count(),
    );
    if let Some(m) = memory {
        out.push_str(&memory_lines(m));
    }
    out.push('\n');
    if let Some(serde_json::Value::Object(m)) = stats.get("stats") {
        let nz: Vec<_> = m
            .iter()
            .filter_map(|(k, v)| v.as_u64().filter(|&n| n != 0).map(|n| (k, n)))
            .collect();
        let w = nz.iter().map(|c| c.0.len()).max().unwrap_or(0);
        for (k, v) in nz {
            let _ = writeln!(out, "  {k:<w$} {v:>10}");
        }
    }
    out
}

pub fn memory_json(m: &MemoryUsage) -> serde_json::Value {
    let limits = |l: &berth_core::MemLimits| serde_json::json!([l.low, l.pressure, l.high]);
    serde_json::json!({
        "page_size": berth_core::PAGE_SIZE,
        "tcp_bytes": m.tcp_bytes,
        "tcp_pages": m.tcp_pages,
        "tcp_peak": m.tcp_peak,
        "tcp_mem": limits(&m.tcp_limits),
        "tcp_ceiling": m.tcp_ceiling(),
        "tcp_pressure": m.tcp_pressure,
        "udp_bytes": m.udp_bytes,
        "udp_pages": m.udp_pages,
        "udp_peak": m.udp_peak,
        "udp_mem": limits(&m.udp_limits),
        "udp_ceiling": m.udp_ceiling(),
        "udp_pressure": m.udp_pressure,
        "frag_bytes": m.frag_bytes,
        "frag_limit": m.frag_limit,
        "frag_pending": m.frag_pending,
        "frag6_pending": m.frag6_pending,
    })
}

/// The memory lines of `ss -s`: sockstat's `mem` in pages (TCP, UDP), FRAG
/// in bytes, the limits and whether TCP is under memory pressure.
fn memory_lines(m: &serde_json::Value) -> String {
    let n = |k: &str| m.get(k).and_then(|v| v.as_u64()).unwrap_or(0);
    let lim = |k: &str| {
        m.get(k)
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .map(|x| x.as_u64().unwrap_or(0).to_string())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default()
    };
    let yes = |k: &str| {
        if m.get(k).and_then(|v| v.as_bool()) == Some(true) {
            "yes"
        } else {
            "no"
        }
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Memory (pages of {} bytes; limits low pressure high):",
        n("page_size")
    );
    let _ = writeln!(
        out,
        "  TCP: mem {} ({} bytes, peak {}) tcp_mem {} pressure {}",
        n("tcp_pages"),
        n("tcp_bytes"),
        n("tcp_peak"),
        lim("tcp_mem"),
        yes("tcp_pressure")
    );
    let _ = writeln!(
        out,
        "  UDP: mem {} ({} bytes, peak {}) udp_mem {}",
        n("udp_pages"),
        n("udp_bytes"),
        n("udp_peak"),
        lim("udp_mem")
    );
    let _ = writeln!(
        out,
        "  FRAG: inuse {} memory {} (limit {})",
        n("frag_pending"),
        n("frag_bytes"),
        n("frag_limit")
    );
    out
}
