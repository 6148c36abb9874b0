//! iperf3's wire protocol, as iperf 3.x speaks it (src/iperf_api.c,
//! iperf_client_api.c, iperf_server_api.c, iperf_tcp.c, iperf_udp.c):
//!
//! - the control connection (TCP to the server's port) starts with the client's
//!   37-byte cookie (36 characters of `a-z2-7` and a NUL);
//! - then one signed byte at a time says what comes next (the states below);
//!   parameters and results are JSON objects, each after its length as a 4-byte
//!   big-endian integer;
//! - every data stream starts with the same cookie (TCP), or (UDP) with a 4-byte
//!   datagram from the client that the server answers with a 4-byte one;
//! - UDP datagrams start with sec, usec (the sender's clock) and a packet
//!   count, big-endian: 12 bytes, or 16 with a 64-bit count.
//!
//! Everything read here comes from a peer: lengths are bounded and every field
//! is checked; nothing panics on what a peer sends.

use serde_json::{json, Map, Value};
use std::io::{self, Read, Write};

/// Bytes of the cookie, its NUL included (iperf.h COOKIE_SIZE).
pub const COOKIE_SIZE: usize = 37;

/// One control message: the state the sender moves to (iperf_api.h).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i8)]
pub enum State {
    TestStart = 1,
    TestRunning = 2,
    TestEnd = 4,
    ParamExchange = 9,
    CreateStreams = 10,
    ServerTerminate = 11,
    ClientTerminate = 12,
    ExchangeResults = 13,
    DisplayResults = 14,
    IperfStart = 15,
    IperfDone = 16,
    AccessDenied = -1,
    ServerError = -2,
}

impl State {
    /// The state a control byte names, or `None` for one iperf3 does not send.
    pub fn from_byte(b: u8) -> Option<State> {
        Some(match b as i8 {
            1 => State::TestStart,
            2 => State::TestRunning,
            4 => State::TestEnd,
            9 => State::ParamExchange,
            10 => State::CreateStreams,
            11 => State::ServerTerminate,
            12 => State::ClientTerminate,
            13 => State::ExchangeResults,
            14 => State::DisplayResults,
            15 => State::IperfStart,
            16 => State::IperfDone,
            -1 => State::AccessDenied,
            -2 => State::ServerError,
            _ => return None,
        })
    }

    /// The byte on the wire.
    pub fn byte(self) -> u8 {
        self as i8 as u8
    }
}

/// What the client sends as a UDP stream's first datagram (iperf.h
/// UDP_CONNECT_MSG, written as a host-order int: "9876" on little-endian
/// machines). Servers do not look at its contents.
pub const UDP_CONNECT_MSG: [u8; 4] = *b"9876";

/// The server's answer (UDP_CONNECT_REPLY as a little-endian int: "6789").
pub const UDP_CONNECT_REPLY: [u8; 4] = *b"6789";

/// Whether a datagram is the server's answer to the connect datagram: the
/// current reply, or the legacy 987654321 that older servers send (iperf.h
/// LEGACY_UDP_CONNECT_REPLY), from a machine of either byte order.
pub fn is_udp_connect_reply(d: &[u8]) -> bool {
    let Ok(b) = <[u8; 4]>::try_from(d) else {
        return false;
    };
    let legacy = 987_654_321u32;
    b == UDP_CONNECT_REPLY || b == legacy.to_le_bytes() || b == legacy.to_be_bytes()
}

/// A fresh cookie: 36 characters of iperf3's alphabet and a NUL.
pub fn make_cookie(seed: u64) -> [u8; COOKIE_SIZE] {
    const CHARS: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut out = [0u8; COOKIE_SIZE];
    // splitmix64 of the seed (never zero, xorshift's fixed point).
    let mut x = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x = (x ^ (x >> 31)) | 1;
    for c in out.iter_mut().take(COOKIE_SIZE - 1) {
        // xorshift64*: plenty for a session identifier.
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        *c = CHARS[(x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 59) as usize];
    }
    out
}

/// The cookie as text (up to its NUL), for `-J`'s `start.cookie`.
pub fn cookie_text(c: &[u8; COOKIE_SIZE]) -> String {
    let end = c.iter().position(|&b| b == 0).unwrap_or(COOKIE_SIZE);
    String::from_utf8_lossy(&c[..end]).into_owned()
}

/// The longest JSON message accepted from a peer. Parameters and results are
/// a few hundred bytes; a server's full output (`--get-server-output`) can be
/// longer, never this long.
pub const MAX_JSON: usize = 4 << 20;

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// Send a JSON object: its length (4 bytes, big-endian), then the text.
pub fn write_json(w: &mut impl Write, v: &Value) -> io::Result<()> {
    let text = serde_json::to_vec(v).map_err(io::Error::other)?;
    let len = u32::try_from(text.len()).map_err(|_| bad("JSON message too long"))?;
    let mut msg = Vec::with_capacity(4 + text.len());
    msg.extend_from_slice(&len.to_be_bytes());
    msg.extend_from_slice(&text);
    w.write_all(&msg)
}

/// Read one JSON object written by [`write_json`] (or iperf3's JSON_write).
pub fn read_json(r: &mut impl Read) -> io::Result<Map<String, Value>> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_JSON {
        return Err(bad(format!(
            "the peer announced a {len}-byte JSON message; at most {MAX_JSON} are accepted"
        )));
    }
    let mut text = vec![0u8; len];
    r.read_exact(&mut text)?;
    parse_object(&text)
}

/// A JSON object from a peer's bytes.
pub fn parse_object(text: &[u8]) -> io::Result<Map<String, Value>> {
    match serde_json::from_slice::<Value>(text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(bad("the peer's JSON message is not an object")),
        Err(e) => Err(bad(format!("the peer's JSON message does not parse: {e}"))),
    }
}

/// A non-negative integer field at most `max` (cJSON writes integral values
/// without a fraction; a fraction is cut, as cJSON's valueint does).
fn uint(m: &Map<String, Value>, key: &str, max: u64) -> io::Result<Option<u64>> {
    let Some(v) = m.get(key) else {
        return Ok(None);
    };
    let n = v
        .as_u64()
        .or_else(|| {
            v.as_f64()
                .filter(|f| *f >= 0.0 && f.is_finite())
                .map(|f| f as u64)
        })
        .ok_or_else(|| bad(format!("\"{key}\" is not a non-negative number")))?;
    if n > max {
        return Err(bad(format!("\"{key}\" is {n}, more than {max}")));
    }
    Ok(Some(n))
}

/// A signed integer field (`-1` means "not available" in results).
fn int(m: &Map<String, Value>, key: &str) -> io::Result<Option<i64>> {
    let Some(v) = m.get(key) else {
        return Ok(None);
    };
    v.as_i64()
        .or_else(|| v.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
        .map(Some)
        .ok_or_else(|| bad(format!("\"{key}\" is not a number")))
}

fn float(m: &Map<String, Value>, key: &str) -> io::Result<Option<f64>> {
    let Some(v) = m.get(key) else {
        return Ok(None);
    };
    v.as_f64()
        .filter(|f| f.is_finite())
        .map(Some)
        .ok_or_else(|| bad(format!("\"{key}\" is not a number")))
}

/// A string field of at most 256 bytes.
fn string(m: &Map<String, Value>, key: &str) -> io::Result<Option<String>> {
    match m.get(key) {
        None => Ok(None),
        Some(Value::String(s)) if s.len() <= 256 => Ok(Some(s.clone())),
        Some(Value::String(_)) => Err(bad(format!("\"{key}\" is longer than 256 bytes"))),
        Some(_) => Err(bad(format!("\"{key}\" is not a string"))),
    }
}

/// Most parallel streams a test may ask for (iperf3's own limit is 128).
pub const MAX_STREAMS: u64 = 128;
/// Largest TCP block (iperf.h MAX_BLOCKSIZE).
pub const MAX_TCP_BLOCK: u64 = 1 << 20;
/// Largest UDP block (MAX_UDP_BLOCKSIZE: an IPv4 datagram's payload).
pub const MAX_UDP_BLOCK: u64 = 65_507;
/// Default TCP block (DEFAULT_TCP_BLKSIZE).
pub const DEFAULT_TCP_BLOCK: usize = 128 * 1024;
/// UDP block when the control connection's MSS is unknown (DEFAULT_UDP_BLKSIZE).
pub const DEFAULT_UDP_BLOCK: usize = 1460;
/// UDP's default bitrate (UDP_RATE: 1 Mbit/s).
pub const DEFAULT_UDP_RATE: u64 = 1024 * 1024;

/// The test's parameters, as the client sends them after PARAM_EXCHANGE.
#[derive(Clone, Debug, PartialEq)]
pub struct Params {
    pub udp: bool,
    /// Seconds of the test (0 with -n).
    pub time: u64,
    /// Bytes to transfer (-n; 0: by time).
    pub bytes: u64,
    /// Blocks to transfer (-k; 0: by time or bytes).
    pub blocks: u64,
    /// TCP_MAXSEG (-M; 0: default).
    pub mss: u64,
    pub nodelay: bool,
    pub parallel: u64,
    pub reverse: bool,
    pub bidirectional: bool,
    /// SO_SNDBUF and SO_RCVBUF (-w; 0: default).
    pub window: u64,
    /// Bytes per write / datagram (-l; 0: the default for the protocol).
    pub len: u64,
    /// Bits per second per stream (-b; 0: unlimited).
    pub bandwidth: u64,
    pub congestion: Option<String>,
    /// The sender's congestion control, when the client is the sender.
    pub congestion_used: Option<String>,
    pub udp_counters_64bit: bool,
    pub client_version: Option<String>,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            udp: false,
            time: 10,
            bytes: 0,
            blocks: 0,
            mss: 0,
            nodelay: false,
            parallel: 1,
            reverse: false,
            bidirectional: false,
            window: 0,
            len: 0,
            bandwidth: 0,
            congestion: None,
            congestion_used: None,
            udp_counters_64bit: false,
            client_version: None,
        }
    }
}

impl Params {
    /// The object iperf3's send_parameters writes.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert(
            if self.udp { "udp" } else { "tcp" }.into(),
            Value::Bool(true),
        );
        m.insert("omit".into(), json!(0));
        m.insert("time".into(), json!(self.time));
        m.insert("num".into(), json!(self.bytes));
        m.insert("blockcount".into(), json!(self.blocks));
        if self.mss > 0 {
            m.insert("MSS".into(), json!(self.mss));
        }
        if self.nodelay {
            m.insert("nodelay".into(), Value::Bool(true));
        }
        m.insert("parallel".into(), json!(self.parallel));
        if self.reverse {
            m.insert("reverse".into(), Value::Bool(true));
        }
        if self.window > 0 {
            m.insert("window".into(), json!(self.window));
        }
        if self.len > 0 {
            m.insert("len".into(), json!(self.len));
        }
        if self.bandwidth > 0 {
            m.insert("bandwidth".into(), json!(self.bandwidth));
        }
        if let Some(c) = &self.congestion {
            m.insert("congestion".into(), json!(c));
        }
        if let Some(c) = &self.congestion_used {
            m.insert("congestion_used".into(), json!(c));
        }
        if self.udp_counters_64bit {
            m.insert("udp_counters_64bit".into(), json!(1));
        }
        m.insert(
            "client_version".into(),
            json!(self.client_version.as_deref().unwrap_or(VERSION)),
        );
        Value::Object(m)
    }

    /// A peer's parameters, checked: what berth perf cannot do is an error
    /// that says so, every number is bounded.
    pub fn from_json(m: &Map<String, Value>) -> io::Result<Params> {
        if m.contains_key("sctp") {
            return Err(bad("SCTP tests are not supported by berth perf"));
        }
        let udp = m.contains_key("udp");
        if !udp && !m.contains_key("tcp") {
            return Err(bad("the parameters name no protocol (\"tcp\" or \"udp\")"));
        }
        if uint(m, "omit", 86_400)?.unwrap_or(0) > 0 {
            return Err(bad("omitting seconds (-O) is not supported by berth perf"));
        }
        let parallel = uint(m, "parallel", MAX_STREAMS)?.unwrap_or(1);
        if parallel == 0 {
            return Err(bad("\"parallel\" is 0; a test needs at least one stream"));
        }
        let max_len = if udp { MAX_UDP_BLOCK } else { MAX_TCP_BLOCK };
        let len = uint(m, "len", max_len)?.unwrap_or(0);
        if udp && len > 0 && len < 16 {
            return Err(bad(format!("UDP block size {len} is below 16 bytes")));
        }
        let mss = uint(m, "MSS", 65_495)?.unwrap_or(0);
        if mss > 0 && mss < 88 {
            return Err(bad(format!("MSS {mss} is below 88")));
        }
        Ok(Params {
            udp,
            time: uint(m, "time", 86_400)?.unwrap_or(0),
            bytes: uint(m, "num", u64::MAX / 2)?.unwrap_or(0),
            blocks: uint(m, "blockcount", u64::MAX / 2)?.unwrap_or(0),
            mss,
            nodelay: m.contains_key("nodelay"),
            parallel,
            reverse: m.contains_key("reverse"),
            bidirectional: m.contains_key("bidirectional"),
            window: uint(m, "window", 1 << 30)?.unwrap_or(0),
            len,
            bandwidth: uint(m, "bandwidth", 1 << 50)?.unwrap_or(0),
            congestion: string(m, "congestion")?,
            congestion_used: string(m, "congestion_used")?,
            udp_counters_64bit: m.contains_key("udp_counters_64bit"),
            client_version: string(m, "client_version")?,
        })
    }

    /// Bytes per write or datagram.
    pub fn block(&self, udp_default: usize) -> usize {
        match (self.len, self.udp) {
            (0, false) => DEFAULT_TCP_BLOCK,
            (0, true) => udp_default,
            (n, _) => n as usize,
        }
    }

    /// Bits per second per stream (UDP defaults to 1 Mbit/s).
    pub fn rate(&self) -> u64 {
        match (self.bandwidth, self.udp) {
            (0, true) => DEFAULT_UDP_RATE,
            (b, _) => b,
        }
    }
}

/// What berth perf says it is, where iperf3 says "iperf 3.12".
pub const VERSION: &str = concat!("berth perf ", env!("CARGO_PKG_VERSION"));

/// One stream's totals in the results exchange.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamResult {
    pub id: u64,
    pub bytes: u64,
    /// -1: not known (a receiver, or a sender without tcp_info).
    pub retransmits: i64,
    /// Seconds (iperf3 sends the smoothed jitter in seconds).
    pub jitter: f64,
    pub errors: i64,
    pub packets: i64,
    pub start_time: f64,
    pub end_time: f64,
}

/// One side's results.
#[derive(Clone, Debug, PartialEq)]
pub struct Results {
    pub cpu_total: f64,
    pub cpu_user: f64,
    pub cpu_system: f64,
    /// 1: the sender has retransmission counts; 0: not; -1: this side received.
    pub sender_has_retransmits: i64,
    pub congestion_used: Option<String>,
    pub streams: Vec<StreamResult>,
}

impl Results {
    pub fn to_json(&self) -> Value {
        let streams: Vec<Value> = self
            .streams
            .iter()
            .map(|s| {
                json!({
                    "id": s.id,
                    "bytes": s.bytes,
                    "retransmits": s.retransmits,
                    "jitter": s.jitter,
                    "errors": s.errors,
                    "packets": s.packets,
                    "start_time": s.start_time,
                    "end_time": s.end_time,
                })
            })
            .collect();
        let mut v = json!({
            "cpu_util_total": self.cpu_total,
            "cpu_util_user": self.cpu_user,
            "cpu_util_system": self.cpu_system,
            "sender_has_retransmits": self.sender_has_retransmits,
            "streams": streams,
        });
        if let (Some(c), Value::Object(m)) = (&self.congestion_used, &mut v) {
            m.insert("congestion_used".into(), json!(c));
        }
        v
    }

    /// A peer's results, every field iperf3's get_results requires checked.
    pub fn from_json(m: &Map<String, Value>) -> io::Result<Results> {
        let need = |k: &str| bad(format!("the peer's results lack \"{k}\""));
        let cpu = |k: &str| float(m, k)?.ok_or_else(|| need(k));
        let streams = match m.get("streams") {
            Some(Value::Array(a)) if a.len() as u64 <= 2 * MAX_STREAMS => a,
            Some(Value::Array(_)) => return Err(bad("the peer's results list too many streams")),
            _ => return Err(need("streams")),
        };
        let mut out = Vec::with_capacity(streams.len());
        for s in streams {
            let Value::Object(s) = s else {
                return Err(bad("a stream in the peer's results is not an object"));
            };
            let req = |k: &str| int(s, k)?.ok_or_else(|| need(k));
            out.push(StreamResult {
                id: uint(s, "id", u32::MAX as u64)?.ok_or_else(|| need("id"))?,
                bytes: uint(s, "bytes", u64::MAX / 2)?.ok_or_else(|| need("bytes"))?,
                retransmits: req("retransmits")?,
                jitter: float(s, "jitter")?.ok_or_else(|| need("jitter"))?,
                errors: req("errors")?,
                packets: req("packets")?,
                start_time: float(s, "start_time")?.unwrap_or(0.0),
                end_time: float(s, "end_time")?.unwrap_or(0.0),
            });
        }
        Ok(Results {
            cpu_total: cpu("cpu_util_total")?,
            cpu_user: cpu("cpu_util_user")?,
            cpu_system: cpu("cpu_util_system")?,
            sender_has_retransmits: int(m, "sender_has_retransmits")?
                .ok_or_else(|| need("sender_has_retransmits"))?,
            congestion_used: string(m, "congestion_used")?,
            streams: out,
        })
    }
}

/// The header of a UDP datagram: the sender's clock and the packet count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpHeader {
    pub sec: u32,
    pub usec: u32,
    pub count: u64,
}

impl UdpHeader {
    /// Write into the first 12 (or 16, with 64-bit counters) bytes of `buf`.
    pub fn put(&self, buf: &mut [u8], wide: bool) {
        let n = if wide { 16 } else { 12 };
        if buf.len() < n {
            return;
        }
        buf[0..4].copy_from_slice(&self.sec.to_be_bytes());
        buf[4..8].copy_from_slice(&self.usec.to_be_bytes());
        if wide {
            buf[8..16].copy_from_slice(&self.count.to_be_bytes());
        } else {
            buf[8..12].copy_from_slice(&(self.count as u32).to_be_bytes());
        }
    }

    /// Read from a datagram; `None` if it is shorter than the header.
    pub fn get(buf: &[u8], wide: bool) -> Option<UdpHeader> {
        let word = |i: usize| -> Option<u32> {
            Some(u32::from_be_bytes(buf.get(i..i + 4)?.try_into().ok()?))
        };
        let count = if wide {
            u64::from_be_bytes(buf.get(8..16)?.try_into().ok()?)
        } else {
            word(8)? as u64
        };
        Some(UdpHeader {
            sec: word(0)?,
            usec: word(4)?,
            count,
        })
    }
}

/// A UDP receiver's counters, kept as iperf_udp_recv keeps them: the highest
/// packet count seen, losses from gaps (one taken back per late arrival),
/// out-of-order arrivals, and RFC 1889 jitter.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct UdpRecv {
    pub packet_count: u64,
    pub cnt_error: i64,
    pub outoforder: u64,
    /// Seconds.
    pub jitter: f64,
    prev_transit: Option<f64>,
}

impl UdpRecv {
    /// A datagram with `count` sent at `sent` (seconds) arrived at `arrived`.
    pub fn on_packet(&mut self, count: u64, sent: f64, arrived: f64) {
        if count > self.packet_count {
            if count > self.packet_count + 1 {
                self.cnt_error = self
                    .cnt_error
                    .saturating_add((count - 1 - self.packet_count) as i64);
            }
            self.packet_count = count;
        } else {
            self.outoforder += 1;
            if self.cnt_error > 0 {
                self.cnt_error -= 1;
            }
        }
        let transit = arrived - sent;
        let prev = self.prev_transit.unwrap_or(transit);
        self.jitter += ((transit - prev).abs() - self.jitter) / 16.0;
        self.prev_transit = Some(transit);
    }
}

/// Read exactly one control byte's state.
pub fn state_of(b: u8) -> io::Result<State> {
    State::from_byte(b).ok_or_else(|| bad(format!("unknown control message {}", b as i8)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_and_negative_ones_are_signed() {
        for s in [
            State::TestStart,
            State::TestEnd,
            State::ParamExchange,
            State::IperfDone,
            State::AccessDenied,
            State::ServerError,
        ] {
            assert_eq!(State::from_byte(s.byte()), Some(s));
        }
        assert_eq!(State::AccessDenied.byte(), 0xff);
        assert_eq!(State::ServerError.byte(), 0xfe);
        assert!(state_of(3).is_err(), "RESULT_REQUEST is never sent");
    }

    #[test]
    fn cookie_is_36_letters_and_a_nul() {
        let c = make_cookie(42);
        assert_eq!(c[36], 0);
        assert!(c[..36]
            .iter()
            .all(|b| b"abcdefghijklmnopqrstuvwxyz234567".contains(b)));
        assert_eq!(cookie_text(&c).len(), 36);
        assert_ne!(make_cookie(42), make_cookie(43));
    }

    #[test]
    fn json_messages_are_length_prefixed_and_bounded() {
        let mut buf = Vec::new();
        write_json(&mut buf, &json!({"tcp": true, "time": 1})).unwrap();
        assert_eq!(&buf[..4], &(buf.len() as u32 - 4).to_be_bytes());
        let m = read_json(&mut &buf[..]).unwrap();
        assert_eq!(m["time"], json!(1));
        // A huge announced length is refused before anything is allocated.
        let huge = [0xffu8, 0xff, 0xff, 0xff];
        let e = read_json(&mut &huge[..]).unwrap_err();
        assert!(e.to_string().contains("at most"), "{e}");
        // Cut short, not an object, not JSON.
        assert!(read_json(&mut &buf[..buf.len() - 1]).is_err());
        assert!(parse_object(b"[1]").is_err());
        assert!(parse_object(b"{").is_err());
    }

    #[test]
    fn parameters_as_iperf3_writes_them() {
        // What iperf 3.12 sends for `-c HOST -u -b 10M -l 1000 -P 2 -R -t 1`.
        let m = parse_object(
            br#"{"udp":true,"omit":0,"time":1,"num":0,"blockcount":0,"parallel":2,"reverse":true,"len":1000,"bandwidth":10000000,"pacing_timer":1000,"client_version":"3.12"}"#,
        )
        .unwrap();
        let p = Params::from_json(&m).unwrap();
        assert!(p.udp && p.reverse && !p.bidirectional);
        assert_eq!(
            (p.time, p.parallel, p.len, p.bandwidth),
            (1, 2, 1000, 10_000_000)
        );
        assert_eq!(p.block(1448), 1000);
        // And back: the keys iperf3's get_parameters reads.
        let back = Params::from_json(p.to_json().as_object().unwrap()).unwrap();
        assert_eq!(back.time, 1);
        assert_eq!(back.parallel, 2);
        assert!(back.reverse);
        let tcp = Params::default();
        assert_eq!(tcp.block(1448), DEFAULT_TCP_BLOCK);
        assert_eq!(tcp.rate(), 0);
        assert_eq!(Params { udp: true, ..tcp }.rate(), DEFAULT_UDP_RATE);
    }

    #[test]
    fn bad_parameters_are_errors_not_panics() {
        let err = |s: &str| {
            Params::from_json(&parse_object(s.as_bytes()).unwrap())
                .unwrap_err()
                .to_string()
        };
        assert!(err(r#"{"tcp":true,"parallel":100000}"#).contains("parallel"));
        assert!(err(r#"{"tcp":true,"parallel":0}"#).contains("at least one"));
        assert!(err(r#"{"tcp":true,"len":-5}"#).contains("len"));
        assert!(err(r#"{"tcp":true,"time":"ten"}"#).contains("time"));
        assert!(err(r#"{"udp":true,"len":100000}"#).contains("len"));
        assert!(err(r#"{"time":1}"#).contains("protocol"));
        assert!(err(r#"{"sctp":true}"#).contains("SCTP"));
        assert!(err(r#"{"tcp":true,"omit":2}"#).contains("-O"));
        assert!(err(r#"{"tcp":true,"MSS":10}"#).contains("88"));
        let long = "x".repeat(300);
        assert!(err(&format!(r#"{{"tcp":true,"congestion":"{long}"}}"#)).contains("256"));
    }

    #[test]
    fn results_round_trip_and_missing_fields_fail() {
        let r = Results {
            cpu_total: 1.5,
            cpu_user: 1.0,
            cpu_system: 0.5,
            sender_has_retransmits: 1,
            congestion_used: Some("cubic".into()),
            streams: vec![StreamResult {
                id: 1,
                bytes: 1000,
                retransmits: 3,
                jitter: 0.0,
                errors: 0,
                packets: 0,
                start_time: 0.0,
                end_time: 1.0,
            }],
        };
        let back = Results::from_json(r.to_json().as_object().unwrap()).unwrap();
        assert_eq!(back, r);
        let m = parse_object(br#"{"cpu_util_total":1,"cpu_util_user":1,"cpu_util_system":0,"sender_has_retransmits":1,"streams":[{"id":1,"bytes":5}]}"#).unwrap();
        assert!(Results::from_json(&m)
            .unwrap_err()
            .to_string()
            .contains("retransmits"));
        let m = parse_object(br#"{"cpu_util_total":1}"#).unwrap();
        assert!(Results::from_json(&m).is_err());
    }

    #[test]
    fn udp_header_both_widths() {
        let h = UdpHeader {
            sec: 1_700_000_000,
            usec: 999_999,
            count: 0x1_0000_0002,
        };
        let mut b = [0u8; 16];
        h.put(&mut b, true);
        assert_eq!(UdpHeader::get(&b, true), Some(h));
        h.put(&mut b, false);
        assert_eq!(UdpHeader::get(&b, false).unwrap().count, 2);
        assert_eq!(&b[8..12], &[0, 0, 0, 2]);
        assert_eq!(UdpHeader::get(&b[..11], false), None);
    }

    #[test]
    fn udp_connect_replies_old_and_new() {
        assert!(is_udp_connect_reply(b"6789"));
        assert!(is_udp_connect_reply(&987_654_321u32.to_le_bytes()));
        assert!(is_udp_connect_reply(&987_654_321u32.to_be_bytes()));
        assert!(!is_udp_connect_reply(b"67890"));
        assert!(!is_udp_connect_reply(&UDP_CONNECT_MSG));
        assert!(!is_udp_connect_reply(&123_456_789u32.to_le_bytes()));
    }

    #[test]
    fn udp_loss_reordering_and_jitter_as_iperf3_counts() {
        let mut r = UdpRecv::default();
        r.on_packet(1, 0.0, 0.010);
        r.on_packet(2, 0.1, 0.110);
        r.on_packet(4, 0.3, 0.310); // 3 missing
        assert_eq!((r.packet_count, r.cnt_error, r.outoforder), (4, 1, 0));
        r.on_packet(3, 0.2, 0.330); // late: not lost after all
        assert_eq!((r.packet_count, r.cnt_error, r.outoforder), (4, 0, 1));
        // Constant transit: no jitter until the late one.
        assert!(r.jitter > 0.0 && r.jitter < 0.01);
    }
}
