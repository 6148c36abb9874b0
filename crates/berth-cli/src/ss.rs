//! Socket tables and counters in the layout of iproute2 `ss` and `nstat`.

use berth_core::{SocketInfo, Stats};
use std::fmt::Write;

/// Rows in `ss -an` layout: Netid State Recv-Q Send-Q Local Address:Port Peer Address:Port.
pub fn table(rows: &[SocketInfo]) -> String {
    let mut lines: Vec<[String; 6]> = vec![[
        "Netid".into(),
        "State".into(),
        "Recv-Q".into(),
        "Send-Q".into(),
        "Local Address:Port".into(),
        "Peer Address:Port".into(),
    ]];
    for r in rows {
        let peer = match r.peer {
            Some(p) => p.to_string(),
            None => "0.0.0.0:*".to_string(),
        };
        lines.push([
            r.kind.netid().into(),
            r.state.into(),
            r.recv_q.to_string(),
            r.send_q.to_string(),
            r.local.to_string(),
            peer,
        ]);
    }
    let mut w = [0usize; 6];
    for l in &lines {
        for (i, c) in l.iter().enumerate() {
            w[i] = w[i].max(c.len());
        }
    }
    let mut out = String::new();
    for l in &lines {
        let line = format!(
            "{:<w0$} {:<w1$} {:>w2$} {:>w3$} {:<w4$} {:<w5$}",
            l[0],
            l[1],
            l[2],
            l[3],
            l[4],
            l[5],
            w0 = w[0],
            w1 = w[1],
            w2 = w[2],
            w3 = w[3],
            w4 = w[4],
            w5 = w[5]
        );
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

/// Non-zero counters, one per line: name, value, description.
pub fn counters(stats: &Stats) -> String {
    let mut out = String::new();
    let nz: Vec<_> = stats.non_zero().collect();
    let w = nz.iter().map(|c| c.0.len()).max().unwrap_or(0);
    for (name, doc, v) in nz {
        let _ = writeln!(out, "  {name:<w$} {v:>10}  {doc}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_core::{SocketHandle, SocketKind};
    use std::net::{Ipv4Addr, SocketAddrV4};

    #[test]
    fn layout() {
        let rows = vec![
            SocketInfo {
                handle: SocketHandle::from_raw(0, 0),
                kind: SocketKind::Udp,
                state: "UNCONN",
                recv_q: 1234,
                send_q: 0,
                local: SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 7),
                peer: None,
                drops: 0,
                tcp: None,
            },
            SocketInfo {
                handle: SocketHandle::from_raw(1, 0),
                kind: SocketKind::Udp,
                state: "ESTAB",
                recv_q: 0,
                send_q: 0,
                local: SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 50000),
                peer: Some(SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 2), 7)),
                drops: 0,
                tcp: None,
            },
        ];
        let t = table(&rows);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("Netid State "));
        assert!(lines[1].contains("udp   UNCONN   1234      0 0.0.0.0:7"));
        assert!(lines[1].trim_end().ends_with("0.0.0.0:*"));
        assert!(lines[2].contains("192.0.2.1:50000"));
        assert!(lines[2].trim_end().ends_with("192.0.2.2:7"));
    }

    #[test]
    fn only_non_zero_counters() {
        let mut s = Stats::default();
        assert_eq!(counters(&s), "");
        s.udp_no_ports = 2;
        let c = counters(&s);
        assert_eq!(c.lines().count(), 1);
        assert!(c.contains("udp_no_ports"));
        assert!(c.contains(" 2 "));
    }
}
