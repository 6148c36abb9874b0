//! iperf3's output: the interval lines, the sender/receiver summary and the
//! `-J` document (start / intervals / end), in iperf3's formats
//! (src/iperf_locale.c, iperf_api.c's iperf_print_intermediate and
//! iperf_print_results, units.c).

use super::proto::Results;
use super::stream::{Interval, Stream};
use serde_json::{json, Map, Value};

pub const SEPARATOR: &str = "- - - - - - - - - - - - - - - - - - - - - - - - -";
const HEADER: &str = "[ ID] Interval           Transfer     Bitrate";
pub const HEADER_RETR: &str = "[ ID] Interval           Transfer     Bitrate         Retr";
pub const HEADER_RETR_CWND: &str =
    "[ ID] Interval           Transfer     Bitrate         Retr  Cwnd";
const HEADER_UDP: &str =
    "[ ID] Interval           Transfer     Bitrate         Jitter    Lost/Total Datagrams";
const HEADER_UDP_SENDER: &str =
    "[ ID] Interval           Transfer     Bitrate         Total Datagrams";

/// units.c's unit_snprintf: adaptive bytes (powers of 1024, `bits` false) or
/// bits (powers of 1000), in four places.
pub fn unit(n: f64, bits: bool) -> String {
    let (mut v, base) = if bits { (n * 8.0, 1000.0) } else { (n, 1024.0) };
    let labels: [&str; 5] = if bits {
        ["bit", "Kbit", "Mbit", "Gbit", "Tbit"]
    } else {
        ["Byte", "KByte", "MByte", "GByte", "TByte"]
    };
    let mut k = 0;
    while v >= base && k < labels.len() - 1 {
        v /= base;
        k += 1;
    }
    if v < 9.995 {
        format!("{v:4.2} {}", labels[k])
    } else if v < 99.95 {
        format!("{v:4.1} {}", labels[k])
    } else {
        format!("{v:4.0} {}", labels[k])
    }
}

/// "1.10 GBytes" as iperf3's Transfer column.
fn bytes_col(n: u64) -> String {
    format!("{}s", unit(n as f64, false))
}

/// "941 Mbits/sec" as iperf3's Bitrate column.
fn rate_col(bytes: u64, secs: f64) -> String {
    let per_sec = if secs > 0.0 { bytes as f64 / secs } else { 0.0 };
    format!("{}s/sec", unit(per_sec, true))
}

/// C's `%.2g`, for loss percentages.
pub fn g2(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return "0".into();
    }
    let exp = x.abs().log10().floor() as i32;
    let s = if !(-4..2).contains(&exp) {
        let s = format!("{x:.1e}");
        // Rust writes 1.0e2; C writes 1e+02.
        let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
        let m = m.trim_end_matches('0').trim_end_matches('.');
        let e: i32 = e.parse().unwrap_or(0);
        return format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs());
    } else {
        let decimals = (1 - exp).max(0) as usize;
        format!("{x:.decimals$}")
    };
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

fn span(st: f64, et: f64) -> String {
    format!("{st:6.2}-{et:<6.2} sec")
}

/// `[  5]` or `[SUM]`.
fn tag(n: Option<u64>) -> String {
    match n {
        Some(n) => format!("[{n:>3}]"),
        None => "[SUM]".into(),
    }
}

/// A line without retransmissions (receiver, or a sum).
pub fn line_plain(n: Option<u64>, st: f64, et: f64, bytes: u64, secs: f64, tail: &str) -> String {
    format!(
        "{} {}  {}  {}                  {tail}",
        tag(n),
        span(st, et),
        bytes_col(bytes),
        rate_col(bytes, secs)
    )
}

/// An interval line of a TCP sender: "[  5]   0.00-1.00   sec  112 MBytes
/// 941 Mbits/sec    0    386 KBytes".
pub fn line_retr_cwnd(
    n: Option<u64>,
    st: f64,
    et: f64,
    bytes: u64,
    retr: u64,
    cwnd: u64,
) -> String {
    format!(
        "{} {}  {}  {}  {retr:>3}   {}s       ",
        tag(n),
        span(st, et),
        bytes_col(bytes),
        rate_col(bytes, et - st),
        unit(cwnd as f64, false)
    )
}

/// A summary line with retransmissions ("… 0             sender").
pub fn line_retr(
    n: Option<u64>,
    st: f64,
    et: f64,
    bytes: u64,
    secs: f64,
    retr: u64,
    tail: &str,
) -> String {
    format!(
        "{} {}  {}  {}  {retr:>3}             {tail}",
        tag(n),
        span(st, et),
        bytes_col(bytes),
        rate_col(bytes, secs)
    )
}

#[allow(clippy::too_many_arguments)]
fn line_udp(
    n: Option<u64>,
    st: f64,
    et: f64,
    bytes: u64,
    secs: f64,
    jitter_ms: f64,
    lost: i64,
    total: i64,
    tail: &str,
) -> String {
    let pct = if total > 0 {
        100.0 * lost as f64 / total as f64
    } else {
        0.0
    };
    format!(
        "{} {}  {}  {}  {jitter_ms:5.3} ms  {lost}/{total} ({}%)  {tail}",
        tag(n),
        span(st, et),
        bytes_col(bytes),
        rate_col(bytes, secs),
        g2(pct)
    )
}

fn line_udp_sender(
    n: Option<u64>,
    st: f64,
    et: f64,
    bytes: u64,
    secs: f64,
    packets: u64,
) -> String {
    format!(
        "{} {}  {}  {}  {packets}  ",
        tag(n),
        span(st, et),
        bytes_col(bytes),
        rate_col(bytes, secs)
    )
}

fn bps(bytes: u64, secs: f64) -> f64 {
    if secs > 0.0 {
        bytes as f64 * 8.0 / secs
    } else {
        0.0
    }
}

/// Which end is speaking.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Role {
    Client,
    Server,
}

/// What a test prints, as it goes (text) or at its end (`-J`).
pub struct Report {
    pub json: bool,
    pub role: Role,
    pub udp: bool,
    /// -i in seconds (0: no interval lines).
    pub interval: f64,
    /// The sender has retransmission counts (a TCP sender here, or the peer's
    /// word in its results).
    pub sender_has_retransmits: bool,
    pub start: Map<String, Value>,
    pub intervals: Vec<Value>,
    pub connected: Vec<Value>,
}

impl Report {
    pub fn new(json: bool, role: Role, interval: f64) -> Report {
        Report {
            json,
            role,
            udp: false,
            interval,
            sender_has_retransmits: false,
            start: Map::new(),
            intervals: Vec::new(),
            connected: Vec::new(),
        }
    }

    /// A text line (nothing with -J).
    pub fn say(&self, line: impl AsRef<str>) {
        if !self.json {
            println!("{}", line.as_ref());
        }
    }

    /// "[  5] local A port P connected to B port Q".
    pub fn connected(&mut self, s: &Stream) {
        let (l, p) = (s.local, s.peer);
        if self.json {
            self.connected.push(json!({
                "socket": s.number,
                "local_host": l.ip().to_string(),
                "local_port": l.port(),
                "remote_host": p.ip().to_string(),
                "remote_port": p.port(),
            }));
        } else {
            println!(
                "[{:>3}] local {} port {} connected to {} port {}",
                s.number,
                l.ip(),
                l.port(),
                p.ip(),
                p.port()
            );
        }
    }

    /// Sample every stream for the interval [st, et] (seconds from the start)
    /// and print its lines, unless it is a short tail with no data (iperf3
    /// drops an interval under a tenth of -i that moved nothing).
    pub fn interval(&mut self, streams: &mut [Stream], st: f64, et: f64) {
        let samples: Vec<Interval> = streams.iter_mut().map(Stream::sample).collect();
        let moved = samples.iter().any(|s| s.bytes > 0);
        if !(et - st >= self.interval * 0.10 || moved) || streams.is_empty() {
            return;
        }
        let secs = et - st;
        let sender = streams[0].sender;
        let retr = self.sender_has_retransmits && sender && !self.udp;
        if !self.json {
            if st == 0.0 {
                println!(
                    "{}",
                    match (self.udp, sender) {
                        (false, _) if self.sender_has_retransmits => HEADER_RETR_CWND,
                        (false, _) => HEADER,
                        (true, true) => HEADER_UDP_SENDER,
                        (true, false) => HEADER_UDP,
                    }
                );
            } else if streams.len() > 1 {
                println!("{SEPARATOR}");
            }
        }
        let mut js = Vec::new();
        for (s, iv) in streams.iter().zip(&samples) {
            let n = Some(s.number);
            let rate = bps(iv.bytes, secs);
            if self.udp && sender {
                js.push(
                    json!({"socket": s.number, "start": st, "end": et, "seconds": secs,
                    "bytes": iv.bytes, "bits_per_second": rate, "packets": iv.packets,
                    "omitted": false, "sender": true}),
                );
                self.say(line_udp_sender(n, st, et, iv.bytes, secs, iv.packets));
            } else if self.udp {
                let pct = if iv.packets > 0 {
                    100.0 * iv.errors as f64 / iv.packets as f64
                } else {
                    0.0
                };
                js.push(
                    json!({"socket": s.number, "start": st, "end": et, "seconds": secs,
                    "bytes": iv.bytes, "bits_per_second": rate, "jitter_ms": iv.jitter * 1000.0,
                    "lost_packets": iv.errors, "packets": iv.packets, "lost_percent": pct,
                    "omitted": false, "sender": false}),
                );
                self.say(line_udp(
                    n,
                    st,
                    et,
                    iv.bytes,
                    secs,
                    iv.jitter * 1000.0,
                    iv.errors,
                    iv.packets as i64,
                    "",
                ));
            } else if retr {
                js.push(
                    json!({"socket": s.number, "start": st, "end": et, "seconds": secs,
                    "bytes": iv.bytes, "bits_per_second": rate, "retransmits": iv.retrans,
                    "snd_cwnd": iv.cwnd, "snd_wnd": iv.snd_wnd, "rtt": iv.rtt,
                    "rttvar": iv.rttvar, "pmtu": iv.pmtu, "omitted": false, "sender": true}),
                );
                self.say(line_retr_cwnd(n, st, et, iv.bytes, iv.retrans, iv.cwnd));
            } else {
                js.push(
                    json!({"socket": s.number, "start": st, "end": et, "seconds": secs,
                    "bytes": iv.bytes, "bits_per_second": rate, "omitted": false,
                    "sender": sender}),
                );
                self.say(line_plain(n, st, et, iv.bytes, secs, ""));
            }
        }
        let bytes: u64 = samples.iter().map(|s| s.bytes).sum();
        let rate = bps(bytes, secs);
        let packets: u64 = samples.iter().map(|s| s.packets).sum();
        let lost: i64 = samples.iter().map(|s| s.errors).sum();
        let jitter = samples.iter().map(|s| s.jitter).sum::<f64>() / samples.len() as f64;
        let retrans: u64 = samples.iter().map(|s| s.retrans).sum();
        let sum = if self.udp && sender {
            if streams.len() > 1 {
                self.say(line_udp_sender(None, st, et, bytes, secs, packets));
            }
            json!({"start": st, "end": et, "seconds": secs, "bytes": bytes,
                "bits_per_second": rate, "packets": packets, "omitted": false, "sender": true})
        } else if self.udp {
            if streams.len() > 1 {
                self.say(line_udp(
                    None,
                    st,
                    et,
                    bytes,
                    secs,
                    jitter * 1000.0,
                    lost,
                    packets as i64,
                    "",
                ));
            }
            let pct = if packets > 0 {
                100.0 * lost as f64 / packets as f64
            } else {
                0.0
            };
            json!({"start": st, "end": et, "seconds": secs, "bytes": bytes,
                "bits_per_second": rate, "jitter_ms": jitter * 1000.0, "lost_packets": lost,
                "packets": packets, "lost_percent": pct, "omitted": false, "sender": false})
        } else if retr {
            if streams.len() > 1 {
                self.say(line_retr(None, st, et, bytes, secs, retrans, ""));
            }
            json!({"start": st, "end": et, "seconds": secs, "bytes": bytes,
                "bits_per_second": rate, "retransmits": retrans, "omitted": false, "sender": true})
        } else {
            if streams.len() > 1 {
                self.say(line_plain(None, st, et, bytes, secs, ""));
            }
            json!({"start": st, "end": et, "seconds": secs, "bytes": bytes,
                "bits_per_second": rate, "omitted": false, "sender": sender})
        };
        if self.json {
            self.intervals.push(json!({"streams": js, "sum": sum}));
        }
    }

    /// The summary after the test: per stream a sender and a receiver line
    /// (the server shows only its own side), the sums with -P, and for -J the
    /// `end` object.
    pub fn summary(&self, streams: &[Stream], local_end: f64, fin: &Finish) -> Value {
        let mut end = Map::new();
        let Some(first) = streams.first() else {
            return Value::Object(end);
        };
        let sender = first.sender;
        let server = self.role == Role::Server;
        // The server shows only its own side of a stream (iperf3's server
        // cannot report the client's).
        let shows_sender = |sender: bool| !server || sender;
        let shows_receiver = |sender: bool| !server || !sender;
        let peer_of = |s: &Stream| {
            fin.peer
                .as_ref()
                .and_then(|r| r.streams.iter().find(|p| p.id == s.id))
        };
        // The first stream's times stand for every stream, as in iperf3.
        let peer_time = peer_of(first)
            .map(|p| p.end_time - p.start_time)
            .filter(|t| *t > 0.0);
        let (sender_time, receiver_time) = if sender {
            (local_end, peer_time.unwrap_or(local_end))
        } else {
            (peer_time.unwrap_or(local_end), local_end)
        };
        let has_retr = !self.udp && fin.sender_has_retransmits;
        if !self.json {
            println!("{SEPARATOR}");
            println!(
                "{}",
                match (self.udp, has_retr) {
                    (true, _) => HEADER_UDP,
                    (false, true) => HEADER_RETR,
                    (false, false) => HEADER,
                }
            );
        }
        let mut js = Vec::new();
        let (mut total_sent, mut total_received, mut total_retr) = (0u64, 0u64, 0u64);
        let (mut sent_packets, mut recv_packets, mut lost, mut jitter_sum) =
            (0i64, 0i64, 0i64, 0.0);
        for s in streams {
            let peer = peer_of(s);
            let c = super::stream::lock(&s.counters);
            let local_packets = if s.sender {
                c.packets as i64
            } else {
                c.recv.packet_count as i64
            };
            let peer_packets = peer.map_or(0, |p| p.packets);
            let (bytes_sent, bytes_received, sp, rp, retr, errors, jitter) = if s.sender {
                (
                    c.bytes,
                    peer.map_or(0, |p| p.bytes),
                    local_packets,
                    peer_packets,
                    s.seen.retrans,
                    peer.map_or(0, |p| p.errors),
                    peer.map_or(0.0, |p| p.jitter),
                )
            } else {
                (
                    peer.map_or(0, |p| p.bytes),
                    c.bytes,
                    peer_packets,
                    local_packets,
                    peer.map_or(0, |p| p.retransmits.max(0) as u64),
                    c.recv.cnt_error,
                    c.recv.jitter,
                )
            };
            let outoforder = c.recv.outoforder;
            drop(c);
            total_sent += bytes_sent;
            total_received += bytes_received;
            total_retr += retr;
            sent_packets += sp;
            recv_packets += rp;
            lost += errors;
            jitter_sum += jitter;
            let n = Some(s.number);
            if self.udp {
                let packets = if sp > 0 { sp } else { rp };
                let pct = if sp > 0 {
                    100.0 * errors as f64 / sp as f64
                } else {
                    0.0
                };
                js.push(
                    json!({"udp": {"socket": s.number, "start": 0.0, "end": sender_time,
                    "seconds": sender_time, "bytes": bytes_sent,
                    "bits_per_second": bps(bytes_sent, sender_time), "jitter_ms": jitter * 1000.0,
                    "lost_packets": errors, "packets": packets, "lost_percent": pct,
                    "out_of_order": outoforder, "sender": sender}}),
                );
                if shows_sender(s.sender) {
                    self.say(line_udp(
                        n,
                        0.0,
                        sender_time,
                        bytes_sent,
                        sender_time,
                        0.0,
                        0,
                        sp,
                        "sender",
                    ));
                }
                if outoforder > 0 {
                    self.say(format!(
                        "[SUM] {:4.1}-{:4.1} sec  {outoforder} datagrams received out-of-order",
                        0.0, sender_time
                    ));
                }
                if shows_receiver(s.sender) {
                    self.say(line_udp(
                        n,
                        0.0,
                        receiver_time,
                        bytes_received,
                        receiver_time,
                        jitter * 1000.0,
                        errors,
                        rp,
                        "receiver",
                    ));
                }
            } else {
                let mut snd = json!({"socket": s.number, "start": 0.0, "end": sender_time,
                    "seconds": sender_time, "bytes": bytes_sent,
                    "bits_per_second": bps(bytes_sent, sender_time), "sender": sender});
                if has_retr {
                    let mean = s.seen.sum_rtt.checked_div(s.seen.count_rtt).unwrap_or(0);
                    if let Value::Object(m) = &mut snd {
                        m.insert("retransmits".into(), json!(retr));
                        m.insert("max_snd_cwnd".into(), json!(s.seen.max_cwnd));
                        m.insert("max_snd_wnd".into(), json!(s.seen.max_snd_wnd));
                        m.insert("max_rtt".into(), json!(s.seen.max_rtt));
                        m.insert("min_rtt".into(), json!(s.seen.min_rtt));
                        m.insert("mean_rtt".into(), json!(mean));
                    }
                }
                js.push(json!({
                    "sender": snd,
                    "receiver": {"socket": s.number, "start": 0.0, "end": receiver_time,
                        "seconds": local_end, "bytes": bytes_received,
                        "bits_per_second": bps(bytes_received, receiver_time), "sender": sender},
                }));
                if shows_sender(s.sender) {
                    self.say(if has_retr {
                        line_retr(n, 0.0, sender_time, bytes_sent, sender_time, retr, "sender")
                    } else {
                        line_plain(n, 0.0, sender_time, bytes_sent, sender_time, "sender")
                    });
                }
                if shows_receiver(s.sender) {
                    self.say(line_plain(
                        n,
                        0.0,
                        receiver_time,
                        bytes_received,
                        receiver_time,
                        "receiver",
                    ));
                }
            }
        }
        end.insert("streams".into(), Value::Array(js));
        let many = streams.len() > 1;
        let sum_sent = json!({"start": 0.0, "end": sender_time, "seconds": sender_time,
            "bytes": total_sent, "bits_per_second": bps(total_sent, sender_time),
            "sender": sender});
        let sum_received = json!({"start": 0.0, "end": receiver_time, "seconds": receiver_time,
            "bytes": total_received, "bits_per_second": bps(total_received, receiver_time),
            "sender": sender});
        let (mut sum_sent, mut sum_received) = (sum_sent, sum_received);
        if self.udp {
            let avg_jitter = jitter_sum / streams.len() as f64;
            let total = if sent_packets > 0 {
                sent_packets
            } else {
                recv_packets
            };
            let pct = |n: i64| {
                if n > 0 {
                    100.0 * lost as f64 / n as f64
                } else {
                    0.0
                }
            };
            end.insert(
                "sum".into(),
                json!({"start": 0.0, "end": receiver_time, "seconds": receiver_time,
                    "bytes": total_sent, "bits_per_second": bps(total_received, receiver_time),
                    "jitter_ms": avg_jitter * 1000.0, "lost_packets": lost, "packets": total,
                    "lost_percent": pct(total), "sender": sender}),
            );
            extend(
                &mut sum_sent,
                json!({"jitter_ms": 0.0, "lost_packets": 0,
                "packets": sent_packets, "lost_percent": 0.0, "sender": true}),
            );
            extend(
                &mut sum_received,
                json!({"jitter_ms": avg_jitter * 1000.0,
                "lost_packets": lost, "packets": recv_packets,
                "lost_percent": pct(recv_packets), "sender": false}),
            );
            if many && shows_sender(sender) {
                self.say(line_udp(
                    None,
                    0.0,
                    sender_time,
                    total_sent,
                    sender_time,
                    0.0,
                    0,
                    sent_packets,
                    "sender",
                ));
            }
            if many && shows_receiver(sender) {
                self.say(line_udp(
                    None,
                    0.0,
                    receiver_time,
                    total_received,
                    receiver_time,
                    avg_jitter * 1000.0,
                    lost,
                    recv_packets,
                    "receiver",
                ));
            }
        } else {
            if has_retr {
                extend(&mut sum_sent, json!({"retransmits": total_retr}));
            }
            if many && shows_sender(sender) {
                self.say(if has_retr {
                    line_retr(
                        None,
                        0.0,
                        sender_time,
                        total_sent,
                        sender_time,
                        total_retr,
                        "sender",
                    )
                } else {
                    line_plain(None, 0.0, sender_time, total_sent, sender_time, "sender")
                });
            }
            if many && shows_receiver(sender) {
                self.say(line_plain(
                    None,
                    0.0,
                    receiver_time,
                    total_received,
                    receiver_time,
                    "receiver",
                ));
            }
        }
        end.insert("sum_sent".into(), sum_sent);
        end.insert("sum_received".into(), sum_received);
        let remote = fin.peer.as_ref();
        end.insert(
            "cpu_utilization_percent".into(),
            json!({
                "host_total": fin.cpu[0], "host_user": fin.cpu[1], "host_system": fin.cpu[2],
                "remote_total": remote.map_or(0.0, |r| r.cpu_total),
                "remote_user": remote.map_or(0.0, |r| r.cpu_user),
                "remote_system": remote.map_or(0.0, |r| r.cpu_system),
            }),
        );
        if !self.udp {
            let mine = fin.congestion.clone();
            let theirs = remote.and_then(|r| r.congestion_used.clone());
            let (snd, rcv) = if sender {
                (mine, theirs)
            } else {
                (theirs, mine)
            };
            if let Some(c) = snd {
                end.insert("sender_tcp_congestion".into(), json!(c));
            }
            if let Some(c) = rcv {
                end.insert("receiver_tcp_congestion".into(), json!(c));
            }
        }
        Value::Object(end)
    }

    /// The whole `-J` document.
    pub fn document(&self, end: Value, error: Option<&str>) -> Value {
        let mut start = self.start.clone();
        start.insert("connected".into(), Value::Array(self.connected.clone()));
        let mut top = json!({
            "start": start,
            "intervals": self.intervals,
            "end": end,
        });
        if let (Some(e), Value::Object(m)) = (error, &mut top) {
            m.insert("error".into(), json!(e));
        }
        top
    }
}

fn extend(v: &mut Value, more: Value) {
    if let (Value::Object(m), Value::Object(more)) = (v, more) {
        m.extend(more);
    }
}

/// What the summary needs beyond the streams.
pub struct Finish {
    pub peer: Option<Results>,
    pub sender_has_retransmits: bool,
    /// This host's CPU use: total, user, system, percent.
    pub cpu: [f64; 3],
    pub congestion: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_as_iperf3_prints_them() {
        assert_eq!(unit(1_181_116_006.0, false), "1.10 GByte");
        assert_eq!(unit(117_440_512.0, false), " 112 MByte");
        assert_eq!(unit(117_647_058.8, true), " 941 Mbit");
        assert_eq!(unit(0.0, true), "0.00 bit");
        assert_eq!(unit(45.5 * 1024.0, false), "45.5 KByte");
        assert_eq!(bytes_col(1024), "1.00 KBytes");
        assert_eq!(rate_col(125_000, 1.0), "1.00 Mbits/sec");
    }

    #[test]
    fn percent_g2_like_printf() {
        assert_eq!(g2(0.0), "0");
        assert_eq!(g2(0.5), "0.5");
        assert_eq!(g2(12.34), "12");
        assert_eq!(g2(1.25), "1.2");
        assert_eq!(g2(100.0), "1e+02");
        assert_eq!(g2(0.00001), "1e-05");
    }

    #[test]
    fn lines_have_iperf3_columns() {
        let l = line_retr(Some(5), 0.0, 10.0, 1_181_116_006, 10.0, 0, "sender");
        assert_eq!(
            l,
            "[  5]   0.00-10.00  sec  1.10 GBytes   945 Mbits/sec    0             sender"
        );
        let l = line_plain(None, 1.0, 2.0, 0, 1.0, "");
        assert!(
            l.starts_with("[SUM]   1.00-2.00   sec  0.00 Bytes  0.00 bits/sec"),
            "{l}"
        );
        let l = line_udp(Some(5), 0.0, 1.0, 130_000, 1.0, 0.012, 1, 100, "receiver");
        assert!(l.ends_with("0.012 ms  1/100 (1%)  receiver"), "{l}");
    }
}
