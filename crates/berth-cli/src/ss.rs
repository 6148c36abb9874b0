//! Socket tables and counters in the layout of iproute2 `ss` and `nstat`.

use berth_core::{SocketInfo, Stats, TcpInfo};
use std::fmt::Write;

/// Rows in `ss -ani` layout: Netid State Recv-Q Send-Q Local Address:Port Peer
/// Address:Port, and under each TCP connection its tcp_info line (see [`tcp_info`]).
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
    // The header line has no socket; row i of `rows` is line i + 1.
    let infos = std::iter::once(None).chain(rows.iter().map(|r| r.tcp.as_ref()));
    for (l, info) in lines.iter().zip(infos) {
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
        if let Some(t) = info {
            let _ = writeln!(out, "\t {}", tcp_info(t));
        }
    }
    out
}

/// One connection's details in the words of iproute2 `ss -i`: times in
/// milliseconds, cwnd and ssthresh in segments (as Linux keeps them), the rest in
/// bytes. `retrans:now/total` and `ssthresh` appear only when set, as in ss.
pub fn tcp_info(t: &TcpInfo) -> String {
    let mut s = String::new();
    if t.timestamps {
        s.push_str("ts ");
    }
    let mss = t.snd_mss.max(1);
    let _ = write!(
        s,
        "wscale:{},{} rto:{} rtt:{}/{} mss:{} rcvmss:{} cwnd:{}",
        t.snd_wscale,
        t.rcv_wscale,
        ms(t.rto_us),
        ms(t.rtt_us),
        ms(t.rttvar_us),
        t.snd_mss,
        t.rcv_mss,
        t.cwnd / mss
    );
    if let Some(ss) = t.ssthresh {
        let _ = write!(s, " ssthresh:{}", ss / mss);
    }
    let _ = write!(
        s,
        " bytes_sent:{} bytes_acked:{} bytes_received:{} segs_out:{} segs_in:{}",
        t.bytes_sent, t.bytes_acked, t.bytes_received, t.segs_out, t.segs_in
    );
    if t.total_retrans > 0 || t.retransmits > 0 {
        let _ = write!(s, " retrans:{}/{}", t.retransmits, t.total_retrans);
    }
    let _ = write!(s, " snd_wnd:{} rcv_wnd:{}", t.snd_wnd, t.rcv_wnd);
    s
}

/// Microseconds as milliseconds the way ss prints them (`%g`-like: no trailing zeros).
fn ms(us: u64) -> String {
    let v = format!("{}.{:03}", us / 1000, us % 1000);
    v.trim_end_matches('0').trim_end_matches('.').to_string()
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
    fn tcp_info_line_like_ss_i() {
        let info = TcpInfo {
            rtt_us: 1200,
            rttvar_us: 300,
            rto_us: 204_000,
            cwnd: 14480,
            ssthresh: Some(28960),
            snd_mss: 1448,
            rcv_mss: 1448,
            bytes_sent: 100,
            bytes_acked: 90,
            bytes_received: 5,
            total_retrans: 3,
            snd_wnd: 65535,
            rcv_wnd: 262144,
            snd_wscale: 7,
            rcv_wscale: 7,
            timestamps: true,
            ..TcpInfo::default()
        };
        let l = tcp_info(&info);
        assert!(
            l.starts_with("ts wscale:7,7 rto:204 rtt:1.2/0.3 mss:1448"),
            "{l}"
        );
        assert!(l.contains(" cwnd:10 ssthresh:20 bytes_sent:100 bytes_acked:90"));
        assert!(l.contains(" retrans:0/3 snd_wnd:65535 rcv_wnd:262144"));
        let mut row = SocketInfo {
            handle: SocketHandle::from_raw(0, 0),
            kind: SocketKind::Tcp,
            state: "ESTAB",
            recv_q: 0,
            send_q: 0,
            local: SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 50000),
            peer: Some(SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 2), 80)),
            drops: 0,
            tcp: Some(info),
        };
        let t = table(std::slice::from_ref(&row));
        assert_eq!(t.lines().count(), 3);
        assert!(t.lines().nth(2).unwrap().starts_with("\t ts wscale"));
        row.tcp = None;
        assert_eq!(table(&[row]).lines().count(), 2);
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
