//! Runs every tests/packetdrill/*.pkt against the cdylib with a small
//! interpreter for the part of packetdrill's language those scripts use, in
//! each of packetdrill's three `--ip_version`s (see [`Mode`]): one test per
//! mode, run one after another.
//!
//! Semantics follow packetdrill (run.c, run_packet.c, run_system_call.c):
//! - `+t` is relative to the current time, except that consecutive inbound
//!   packets are anchored on the previous packet's script time;
//! - `t...e` on a system call means it starts at t and returns at e; it runs
//!   on a second thread while later events proceed;
//! - inbound sequence numbers are the script's own (the remote ISN is what
//!   the script says); outbound ones are relative to berth's ISN, learned from
//!   its SYN or SYN-ACK; inbound ack numbers are mapped back;
//! - outbound: TS val is not checked, TS ecr is; `win` and options are only
//!   checked when given (`<...>` skips options, no list means none);
//! - times are checked to within 4 ms (`--tolerance_usecs` changes it);
//! - an outbound packet longer than the segment berth sent takes the
//!   following segments too, as packetdrill aggregates them into one TSO
//!   packet (first sequence number, last flags and time).
//!
//! A line the interpreter does not understand fails the script.

mod common;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::*;

/// packetdrill's three `--ip_version`s (config.c's "flavor" table): the
/// family of the script's sockets and of the packets on the wire. A script is
/// family-neutral: `socket(..., ...)`, `bind(3, ..., ...)` and the packets
/// take their addresses from the mode, as packetdrill takes them from its
/// command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// AF_INET sockets, IPv4 packets.
    V4,
    /// AF_INET6 sockets on IPv4-mapped addresses, IPv4 packets.
    Mapped,
    /// AF_INET6 sockets, IPv6 packets.
    V6,
}

/// run_all.py's IPv6 addresses (its --local_ip, --gateway_ip, --remote_ip);
/// it runs IPv6 with --mtu=1520 so that the MSS is 1460 as over IPv4.
const V6_LOCAL: Ipv6Addr = Ipv6Addr::new(0xfd3d, 0x0a0b, 0x17d6, 0, 0, 0, 0, 1);
const V6_REMOTE: Ipv6Addr = Ipv6Addr::new(0xfd3d, 0xfa7b, 0xd17d, 0, 0, 0, 0, 1);

impl Mode {
    const ALL: [Mode; 3] = [Mode::V4, Mode::Mapped, Mode::V6];

    /// packetdrill's --ip_version value.
    fn name(self) -> &'static str {
        match self {
            Mode::V4 => "ipv4",
            Mode::Mapped => "ipv4-mapped-ipv6",
            Mode::V6 => "ipv6",
        }
    }

    /// The adapter's --so_flags for this mode (what packetdrill's own flags
    /// would tell it inside packetdrill).
    fn so_flags(self) -> &'static str {
        match self {
            Mode::V4 => "",
            Mode::Mapped => "ip_version=ipv4-mapped-ipv6",
            Mode::V6 => {
                "ip_version=ipv6,mtu=1520,local=fd3d:a0b:17d6::1,\
                 gateway=fd3d:a0b:17d6:8888::1,remote=fd3d:fa7b:d17d::1"
            }
        }
    }

    fn wire_v6(self) -> bool {
        self == Mode::V6
    }

    /// berth's address on the wire.
    fn local(self) -> IpAddr {
        match self {
            Mode::V6 => V6_LOCAL.into(),
            _ => LOCAL_IP.into(),
        }
    }

    /// packetdrill's address on the wire.
    fn remote(self) -> IpAddr {
        match self {
            Mode::V6 => V6_REMOTE.into(),
            _ => REMOTE_IP.into(),
        }
    }

    fn domain(self) -> i32 {
        match self {
            Mode::V4 => libc::AF_INET,
            _ => libc::AF_INET6,
        }
    }

    /// An address as the script's sockets see it (packetdrill's live_bind_ip
    /// and live_connect_ip).
    fn socket_addr(self, ip: IpAddr, port: u16) -> SocketAddr {
        match (self, ip) {
            (Mode::Mapped, IpAddr::V4(a)) => SocketAddr::new(a.to_ipv6_mapped().into(), port),
            _ => SocketAddr::new(ip, port),
        }
    }
}

const LOCAL_PORT: u16 = 8080;
const DEFAULT_REMOTE_PORT: u16 = 40000;
const SETTLE: Duration = Duration::from_secs(5);

// ------------------------------------------------------------------ syntax

#[derive(Debug, Clone, Copy, PartialEq)]
enum Time {
    Abs(i64),
    Rel(i64),
    Any,
    AbsRange(i64, i64),
    RelRange(i64, i64),
}

#[derive(Debug, Clone, PartialEq)]
enum Opt {
    Nop,
    Eol,
    Mss(u16),
    Ws(u8),
    SackOk,
    Ts(u32, u32),
    Sack(Vec<(u32, u32)>),
}

#[derive(Debug, Clone)]
struct Packet {
    inbound: bool,
    ports: Option<(u16, u16)>,
    flags: u8,
    seq: u32,
    len: u16,
    ack: Option<u32>,
    win: Option<u16>,
    urg: Option<u16>,
    /// None: `<...>`, options not checked.
    opts: Option<Vec<Opt>>,
}

#[derive(Debug, Clone, PartialEq)]
enum Expr {
    Ellipsis,
    Int(i64),
    Word(String),
    /// A string literal, `"reno"` (TCP_CONGESTION's value).
    Str(String),
    Or(Vec<Expr>),
    List(Vec<Expr>),
    Struct(Vec<(String, Expr)>),
}

#[derive(Debug, Clone)]
struct Call {
    name: String,
    args: Vec<Expr>,
    /// Return time for a blocking call, in the same mode as the start time.
    end: Option<i64>,
    result: i64,
    errno: Option<String>,
}

/// An inbound ICMP error quoting a TCP segment berth sent on the default
/// four-tuple: `< icmp unreachable CODE [mtu N] [seq:end(len)]` (packetdrill's
/// icmp_packet_spec; the quoted IP header and 8 bytes of TCP header, the
/// sequence number in berth's space as outbound packets write it). Type and
/// code stay names until the run: packetdrill looks them up in the ICMPv4 or
/// the ICMPv6 table by the run's IP version (icmp_packet.c).
#[derive(Debug, Clone, PartialEq)]
struct Icmp {
    ty: String,
    /// A name from the type's table, or `code_N`'s number.
    code: Option<Code>,
    mtu: Option<u16>,
    seq: u32,
    len: u16,
}

#[derive(Debug, Clone, PartialEq)]
enum Code {
    Name(String),
    Num(u8),
}

#[derive(Debug, Clone)]
enum Action {
    Packet(Packet),
    Icmp(Icmp),
    Call(Call),
}

#[derive(Debug, Clone)]
struct Event {
    line: usize,
    time: Time,
    action: Action,
}

#[derive(Debug)]
struct Script {
    tolerance_us: i64,
    events: Vec<Event>,
}

fn parse_secs(s: &str) -> Result<i64, String> {
    let t = s.trim();
    let ok = !t.is_empty() && t.chars().all(|c| c.is_ascii_digit() || c == '.');
    let v: f64 = if ok {
        t.parse().map_err(|_| format!("bad time {s:?}"))?
    } else {
        return Err(format!("bad time {s:?}"));
    };
    Ok((v * 1e6).round() as i64)
}

/// Returns the event time and, for a system call, its end time.
fn parse_time(tok: &str) -> Result<(Time, Option<i64>), String> {
    if tok == "*" {
        return Ok((Time::Any, None));
    }
    let (start, end) = match tok.split_once("...") {
        Some((a, b)) => (a, Some(parse_secs(b)?)),
        None => (tok, None),
    };
    if let Some((a, b)) = start.split_once('~') {
        let t = match (a.strip_prefix('+'), b.strip_prefix('+')) {
            (Some(a), Some(b)) => Time::RelRange(parse_secs(a)?, parse_secs(b)?),
            (None, None) => Time::AbsRange(parse_secs(a)?, parse_secs(b)?),
            _ => return Err(format!("mixed relative and absolute range {tok:?}")),
        };
        return Ok((t, end));
    }
    let t = match start.strip_prefix('+') {
        Some(r) => Time::Rel(parse_secs(r)?),
        None => Time::Abs(parse_secs(start)?),
    };
    Ok((t, end))
}

fn parse_u32(s: &str, what: &str) -> Result<u32, String> {
    s.trim()
        .parse::<u32>()
        .map_err(|_| format!("bad {what} {s:?}"))
}

fn parse_flags(tok: &str) -> Result<u8, String> {
    if tok == "-" {
        return Ok(0);
    }
    let mut f = 0;
    for c in tok.chars() {
        f |= match c {
            'S' => SYN,
            'F' => FIN,
            'R' => RST,
            'P' => PSH,
            '.' => ACK,
            _ => return Err(format!("unsupported TCP flag {c:?} in {tok:?}")),
        };
    }
    Ok(f)
}

fn parse_opts(body: &str) -> Result<Option<Vec<Opt>>, String> {
    if body.trim() == "..." {
        return Ok(None);
    }
    let mut out = Vec::new();
    for part in body.split(',') {
        let w: Vec<&str> = part.split_whitespace().collect();
        let o = match w.as_slice() {
            ["nop"] => Opt::Nop,
            ["eol"] => Opt::Eol,
            ["sackOK"] => Opt::SackOk,
            ["mss", n] => Opt::Mss(n.parse().map_err(|_| format!("bad mss {n:?}"))?),
            ["wscale", n] => Opt::Ws(n.parse().map_err(|_| format!("bad wscale {n:?}"))?),
            ["TS", "val", v, "ecr", e] => Opt::Ts(parse_u32(v, "TS val")?, parse_u32(e, "TS ecr")?),
            ["sack", blocks @ ..] if !blocks.is_empty() => Opt::Sack(
                blocks
                    .iter()
                    .map(|b| {
                        let (l, r) = b.split_once(':').ok_or(format!("bad sack block {b:?}"))?;
                        Ok((parse_u32(l, "sack left")?, parse_u32(r, "sack right")?))
                    })
                    .collect::<Result<_, String>>()?,
            ),
            _ => return Err(format!("unsupported TCP option {:?}", part.trim())),
        };
        out.push(o);
    }
    Ok(Some(out))
}

fn parse_packet(rest: &str) -> Result<Packet, String> {
    let inbound = rest.starts_with('<');
    let body = rest[1..].trim();
    let (head, opts) = match body.find('<') {
        Some(i) => {
            let tail = body[i + 1..].trim_end();
            let inner = tail
                .strip_suffix('>')
                .ok_or("TCP options list without closing '>'")?;
            (&body[..i], parse_opts(inner)?)
        }
        None => (body, Some(Vec::new())),
    };
    let mut toks: Vec<&str> = head.split_whitespace().collect();
    let mut ports = None;
    if let Some((a, b)) = toks.first().and_then(|t| t.split_once('>')) {
        let p = |s: &str| s.parse::<u16>().map_err(|_| format!("bad port {s:?}"));
        ports = Some((p(a)?, p(b)?));
        toks.remove(0);
    }
    let mut it = toks.into_iter();
    let flags = parse_flags(it.next().ok_or("packet without flags")?)?;
    let seqtok = it.next().ok_or("packet without sequence numbers")?;
    let (start, rest) = seqtok
        .split_once(':')
        .ok_or(format!("bad sequence {seqtok:?}"))?;
    let (end, len) = rest
        .split_once('(')
        .ok_or(format!("bad sequence {seqtok:?}"))?;
    let len = len
        .strip_suffix(')')
        .ok_or(format!("bad sequence {seqtok:?}"))?;
    let (seq, end, len) = (
        parse_u32(start, "seq")?,
        parse_u32(end, "end seq")?,
        parse_u32(len, "length")?,
    );
    if end != seq.wrapping_add(len) || len > 65535 {
        return Err(format!(
            "inconsistent sequence numbers and payload size in {seqtok:?}"
        ));
    }
    let (mut ack, mut win, mut urg) = (None, None, None);
    while let Some(k) = it.next() {
        let v = it.next().ok_or(format!("{k} without a value"))?;
        match k {
            "ack" => ack = Some(parse_u32(v, "ack")?),
            "win" => win = Some(v.parse().map_err(|_| format!("bad win {v:?}"))?),
            "urg" => urg = Some(v.parse().map_err(|_| format!("bad urg {v:?}"))?),
            _ => return Err(format!("unsupported packet field {k:?}")),
        }
    }
    if inbound && opts.is_none() {
        return Err("<...> for TCP options can only be used with outbound packets".into());
    }
    Ok(Packet {
        inbound,
        ports,
        flags,
        seq,
        len: len as u16,
        ack,
        win,
        urg,
        opts,
    })
}

/// packetdrill's icmpv4_unreachable_codes.
const UNREACHABLE_CODES: [&str; 16] = [
    "net_unreachable",
    "host_unreachable",
    "protocol_unreachable",
    "port_unreachable",
    "frag_needed",
    "source_route_failed",
    "net_unknown",
    "host_unknown",
    "source_host_isolated",
    "net_prohibited",
    "host_prohibited",
    "net_unreachable_for_tos",
    "host_unreachable_for_tos",
    "packet_filtered",
    "precedence_violation",
    "precedence_cutoff",
];

/// packetdrill's icmpv6_unreachable_codes (RFC 4443 3.1).
const UNREACHABLE_CODES_V6: [&str; 5] = [
    "no_route",
    "admin_prohibited",
    "not_neighbour",
    "address_unreachable",
    "port_unreachable",
];

/// packetdrill's icmpv6_time_exceed_codes.
const TIME_EXCEEDED_CODES_V6: [&str; 2] = ["exceeded_hop_limit", "exceeded_frag_time"];

impl Icmp {
    /// (type, code) in ICMPv4 or ICMPv6, as packetdrill's icmp_packet.c finds
    /// them; an error says why this script cannot run in that IP version.
    fn resolve(&self, v6: bool) -> Result<(u8, u8), String> {
        let family = if v6 { "ICMPv6" } else { "ICMPv4" };
        let (kind, codes): (u8, &[&str]) = match (self.ty.as_str(), v6) {
            ("unreachable", false) => (3, &UNREACHABLE_CODES),
            ("time_exceeded", false) => (11, &[]),
            ("unreachable", true) => (1, &UNREACHABLE_CODES_V6),
            ("packet_too_big", true) => (2, &[]),
            ("time_exceeded", true) => (3, &TIME_EXCEEDED_CODES_V6),
            (t, _) => return Err(format!("{family} has no ICMP type {t:?}")),
        };
        let code = match &self.code {
            None => 0,
            Some(Code::Num(n)) => *n,
            Some(Code::Name(c)) => codes
                .iter()
                .position(|x| x == c)
                .ok_or(format!("{family} {} has no code {c:?}", self.ty))?
                as u8,
        };
        // packetdrill: an MTU only for fragmentation needed or packet too big.
        if self.mtu.is_some() && !matches!((v6, kind, code), (false, 3, 4) | (true, 2, 0)) {
            return Err(format!(
                "an mtu is only valid for {}",
                if v6 {
                    "packet_too_big"
                } else {
                    "unreachable frag_needed"
                }
            ));
        }
        Ok((kind, code))
    }
}

/// `icmp TYPE [CODE] [mtu N] [seq:end(len)]` after the direction.
fn parse_icmp(rest: &str) -> Result<Icmp, String> {
    if !rest.starts_with('<') {
        return Err("outbound ICMP packets are not supported".into());
    }
    let body = rest[1..].trim();
    let (head, echoed) = match body.split_once('[') {
        Some((h, e)) => (
            h,
            Some(
                e.trim_end()
                    .strip_suffix(']')
                    .ok_or("echoed segment without closing ']'")?,
            ),
        ),
        None => (body, None),
    };
    let mut w = head.split_whitespace();
    if w.next() != Some("icmp") {
        return Err("expected 'icmp'".into());
    }
    let ty = w.next().ok_or("ICMP without a type")?.to_string();
    let mut code = None;
    let mut mtu = None;
    while let Some(t) = w.next() {
        if t == "mtu" {
            let v = w.next().ok_or("mtu without a value")?;
            mtu = Some(v.parse().map_err(|_| format!("bad mtu {v:?}"))?);
        } else if code.is_some() {
            return Err(format!("a second ICMP code {t:?}"));
        } else if let Some(n) = t.strip_prefix("code_") {
            code = Some(Code::Num(
                n.parse().map_err(|_| format!("bad ICMP code {t:?}"))?,
            ));
        } else {
            code = Some(Code::Name(t.to_string()));
        }
    }
    let (seq, len) = match echoed {
        None => (0, 0),
        Some(e) => {
            let e = e.trim();
            let (start, rest) = e.split_once(':').ok_or(format!("bad echoed {e:?}"))?;
            let (end, len) = rest.split_once('(').ok_or(format!("bad echoed {e:?}"))?;
            let len = len.strip_suffix(')').ok_or(format!("bad echoed {e:?}"))?;
            let (seq, end, len) = (
                parse_u32(start, "seq")?,
                parse_u32(end, "end seq")?,
                parse_u32(len, "length")?,
            );
            if end != seq.wrapping_add(len) || len > 65535 {
                return Err(format!("inconsistent echoed segment {e:?}"));
            }
            (seq, len as u16)
        }
    };
    let icmp = Icmp {
        ty,
        code,
        mtu,
        seq,
        len,
    };
    // Valid in at least one IP version; which one the run is decides later.
    if let (Err(e4), Err(e6)) = (icmp.resolve(false), icmp.resolve(true)) {
        return Err(format!("{e4}; {e6}"));
    }
    Ok(icmp)
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ell,
    Int(i64),
    Word(String),
    Str(String),
    Sym(char),
}

fn lex(s: &str) -> Result<Vec<Tok>, String> {
    let c: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < c.len() {
        let ch = c[i];
        if ch.is_whitespace() {
            i += 1;
        } else if c[i..].starts_with(&['.', '.', '.']) {
            out.push(Tok::Ell);
            i += 3;
        } else if ch.is_ascii_digit()
            || (ch == '-' && c.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            let st = i;
            i += 1;
            while i < c.len() && (c[i].is_ascii_alphanumeric()) {
                i += 1;
            }
            let t: String = c[st..i].iter().collect();
            let v = if let Some(h) = t.strip_prefix("0x") {
                i64::from_str_radix(h, 16)
            } else {
                t.parse()
            };
            out.push(Tok::Int(v.map_err(|_| format!("bad number {t:?}"))?));
        } else if ch.is_ascii_alphabetic() || ch == '_' {
            let st = i;
            while i < c.len() && (c[i].is_ascii_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            out.push(Tok::Word(c[st..i].iter().collect()));
        } else if ch == '"' {
            let st = i + 1;
            i = st;
            while i < c.len() && c[i] != '"' {
                if c[i] == '\\' {
                    return Err("escapes in string literals are not supported".into());
                }
                i += 1;
            }
            if i == c.len() {
                return Err("unterminated string literal".into());
            }
            out.push(Tok::Str(c[st..i].iter().collect()));
            i += 1;
        } else if "[]{}(),|=".contains(ch) {
            out.push(Tok::Sym(ch));
            i += 1;
        } else {
            return Err(format!("unexpected character {ch:?}"));
        }
    }
    Ok(out)
}

struct ExprParser {
    toks: Vec<Tok>,
    pos: usize,
}

impl ExprParser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn expect(&mut self, c: char) -> Result<(), String> {
        match self.next() {
            Some(Tok::Sym(x)) if x == c => Ok(()),
            t => Err(format!("expected {c:?}, found {t:?}")),
        }
    }

    fn expr(&mut self) -> Result<Expr, String> {
        let first = self.primary()?;
        let mut alts = vec![first];
        while self.peek() == Some(&Tok::Sym('|')) {
            self.pos += 1;
            alts.push(self.primary()?);
        }
        Ok(if alts.len() == 1 {
            alts.pop().expect("one alternative")
        } else {
            Expr::Or(alts)
        })
    }

    fn list(&mut self, close: char) -> Result<Vec<Expr>, String> {
        let mut v = Vec::new();
        if self.peek() == Some(&Tok::Sym(close)) {
            self.pos += 1;
            return Ok(v);
        }
        loop {
            v.push(self.expr()?);
            match self.next() {
                Some(Tok::Sym(',')) => continue,
                Some(Tok::Sym(c)) if c == close => return Ok(v),
                t => return Err(format!("expected ',' or {close:?}, found {t:?}")),
            }
        }
    }

    fn primary(&mut self) -> Result<Expr, String> {
        match self.next() {
            Some(Tok::Ell) => Ok(Expr::Ellipsis),
            Some(Tok::Int(v)) => Ok(Expr::Int(v)),
            Some(Tok::Word(w)) => Ok(Expr::Word(w)),
            Some(Tok::Str(v)) => Ok(Expr::Str(v)),
            Some(Tok::Sym('[')) => Ok(Expr::List(self.list(']')?)),
            Some(Tok::Sym('{')) => {
                let mut fields = Vec::new();
                loop {
                    let name = match self.next() {
                        Some(Tok::Word(w)) => w,
                        t => return Err(format!("expected a field name, found {t:?}")),
                    };
                    self.expect('=')?;
                    fields.push((name, self.expr()?));
                    match self.next() {
                        Some(Tok::Sym(',')) => continue,
                        Some(Tok::Sym('}')) => return Ok(Expr::Struct(fields)),
                        t => return Err(format!("expected ',' or '}}', found {t:?}")),
                    }
                }
            }
            t => Err(format!("unexpected {t:?} in arguments")),
        }
    }
}

const SUPPORTED_CALLS: [&str; 14] = [
    "socket",
    "bind",
    "listen",
    "accept",
    "connect",
    "read",
    "recv",
    "write",
    "send",
    "close",
    "shutdown",
    "getsockopt",
    "setsockopt",
    "fcntl",
];

fn parse_call(rest: &str) -> Result<Call, String> {
    let open = rest.find('(').ok_or("system call without '('")?;
    let name = rest[..open].trim().to_string();
    if !SUPPORTED_CALLS.contains(&name.as_str()) {
        return Err(format!("unsupported system call {name:?}"));
    }
    let mut depth = 0;
    let mut close = None;
    for (i, ch) in rest[open..].char_indices() {
        match ch {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    close = Some(open + i);
                    break;
                }
            }
            _ => {}
        }
    }
    let close = close.ok_or("unbalanced parentheses")?;
    let mut p = ExprParser {
        toks: lex(&rest[open + 1..close])?,
        pos: 0,
    };
    let args = if p.toks.is_empty() {
        Vec::new()
    } else {
        p.list_until_end()?
    };
    let after = rest[close + 1..].trim();
    let after = after
        .strip_prefix('=')
        .ok_or(format!("expected '= result' after {name}(...)"))?
        .trim();
    // Result, optional errno symbol, optional parenthesised note.
    let (main, _note) = match after.find('(') {
        Some(i) => {
            let note = after[i..].trim();
            if !note.ends_with(')') {
                return Err(format!("bad note {note:?}"));
            }
            (after[..i].trim(), Some(note))
        }
        None => (after, None),
    };
    let mut w = main.split_whitespace();
    let r = w.next().ok_or("missing result")?;
    let result = if let Some(h) = r.strip_prefix("0x") {
        i64::from_str_radix(h, 16)
    } else {
        r.parse()
    }
    .map_err(|_| format!("bad result {r:?}"))?;
    let errno = w.next().map(str::to_string);
    if let Some(extra) = w.next() {
        return Err(format!("unexpected {extra:?} after the result"));
    }
    if result == -1 && errno.is_none() {
        return Err("a -1 result needs an errno name".into());
    }
    if let Some(e) = &errno {
        errno_value(e).ok_or(format!("unknown errno {e:?}"))?;
    }
    Ok(Call {
        name,
        args,
        end: None,
        result,
        errno,
    })
}

impl ExprParser {
    fn list_until_end(&mut self) -> Result<Vec<Expr>, String> {
        let mut v = vec![self.expr()?];
        while let Some(t) = self.next() {
            if t != Tok::Sym(',') {
                return Err(format!("expected ',' between arguments, found {t:?}"));
            }
            v.push(self.expr()?);
        }
        Ok(v)
    }
}

fn strip_comments(text: &str) -> Result<Vec<(usize, String)>, String> {
    let mut out = Vec::new();
    let mut in_block = false;
    for (n, raw) in text.lines().enumerate() {
        let mut line = String::new();
        let mut rest = raw;
        loop {
            if in_block {
                match rest.find("*/") {
                    Some(i) => {
                        rest = &rest[i + 2..];
                        in_block = false;
                    }
                    None => break,
                }
            } else {
                let lc = rest.find("//");
                let bc = rest.find("/*");
                match (lc, bc) {
                    (Some(l), b) if b.is_none_or(|b| l < b) => {
                        line.push_str(&rest[..l]);
                        break;
                    }
                    (_, Some(b)) => {
                        line.push_str(&rest[..b]);
                        rest = &rest[b + 2..];
                        in_block = true;
                    }
                    _ => {
                        line.push_str(rest);
                        break;
                    }
                }
            }
        }
        out.push((n + 1, line));
    }
    if in_block {
        return Err("unterminated /* comment".into());
    }
    Ok(out)
}

fn parse_script(text: &str) -> Result<Script, String> {
    let mut script = Script {
        tolerance_us: 4000,
        events: Vec::new(),
    };
    for (line, l) in strip_comments(text)? {
        let l = l.trim();
        if l.is_empty() {
            continue;
        }
        let err = |e: String| format!("line {line}: {e}: {l:?}");
        if let Some(opt) = l.strip_prefix("--") {
            if !script.events.is_empty() {
                return Err(err("options must come before the events".into()));
            }
            match opt.split_once('=') {
                Some(("tolerance_usecs", v)) => {
                    script.tolerance_us =
                        v.trim().parse().map_err(|_| err("bad tolerance".into()))?
                }
                _ => return Err(err("unsupported option".into())),
            }
            continue;
        }
        if l.starts_with('`') {
            return Err(err("shell commands are not supported".into()));
        }
        let (tok, rest) = l
            .split_once(char::is_whitespace)
            .ok_or_else(|| err("event without action".into()))?;
        let (time, end) = parse_time(tok).map_err(err)?;
        let rest = rest.trim();
        let action = if rest.starts_with('<') || rest.starts_with('>') {
            if end.is_some() {
                return Err(err("'...' end time on a packet".into()));
            }
            if rest[1..].trim_start().starts_with("icmp ") {
                if matches!(time, Time::Any | Time::AbsRange(..) | Time::RelRange(..)) {
                    return Err(err(
                        "time ranges and '*' are for outbound packets only".into()
                    ));
                }
                Action::Icmp(parse_icmp(rest).map_err(err)?)
            } else {
                Action::Packet(parse_packet(rest).map_err(err)?)
            }
        } else {
            if matches!(time, Time::Any | Time::AbsRange(..) | Time::RelRange(..)) {
                return Err(err(
                    "time ranges and '*' are for outbound packets only".into()
                ));
            }
            let mut c = parse_call(rest).map_err(err)?;
            c.end = end;
            Action::Call(c)
        };
        if let Action::Packet(p) = &action {
            if p.inbound && matches!(time, Time::Any | Time::AbsRange(..) | Time::RelRange(..)) {
                return Err(err(
                    "time ranges and '*' are for outbound packets only".into()
                ));
            }
            if p.inbound && p.win.is_none() {
                return Err(err("inbound packet without 'win'".into()));
            }
        }
        if script.events.is_empty() && time != Time::Abs(0) {
            return Err(err("first event should be at time 0".into()));
        }
        script.events.push(Event { line, time, action });
    }
    if script.events.is_empty() {
        return Err("script has no events".into());
    }
    Ok(script)
}

// --------------------------------------------------------------- symbols

fn errno_value(name: &str) -> Option<i32> {
    Some(match name {
        "EPERM" => libc::EPERM,
        "ENOENT" => libc::ENOENT,
        "EINTR" => libc::EINTR,
        "EACCES" => libc::EACCES,
        "EBADF" => libc::EBADF,
        "EAGAIN" | "EWOULDBLOCK" => libc::EAGAIN,
        "ENOMEM" => libc::ENOMEM,
        "EFAULT" => libc::EFAULT,
        "EINVAL" => libc::EINVAL,
        "EPIPE" => libc::EPIPE,
        "ENOSYS" => libc::ENOSYS,
        "ENOTSOCK" => libc::ENOTSOCK,
        "ENOPROTOOPT" => libc::ENOPROTOOPT,
        "EOPNOTSUPP" => libc::EOPNOTSUPP,
        "EAFNOSUPPORT" => libc::EAFNOSUPPORT,
        "EADDRINUSE" => libc::EADDRINUSE,
        "EADDRNOTAVAIL" => libc::EADDRNOTAVAIL,
        "ENETUNREACH" => libc::ENETUNREACH,
        "ECONNABORTED" => libc::ECONNABORTED,
        "ECONNRESET" => libc::ECONNRESET,
        "EISCONN" => libc::EISCONN,
        "ENOTCONN" => libc::ENOTCONN,
        "ETIMEDOUT" => libc::ETIMEDOUT,
        "ECONNREFUSED" => libc::ECONNREFUSED,
        "EHOSTUNREACH" => libc::EHOSTUNREACH,
        "EALREADY" => libc::EALREADY,
        "EINPROGRESS" => libc::EINPROGRESS,
        "EPROTO" => libc::EPROTO,
        _ => return None,
    })
}

fn errno_name(v: i32) -> String {
    const NAMES: [&str; 28] = [
        "EPERM",
        "ENOENT",
        "EINTR",
        "EACCES",
        "EPROTO",
        "EBADF",
        "EAGAIN",
        "ENOMEM",
        "EFAULT",
        "EINVAL",
        "EPIPE",
        "ENOSYS",
        "ENOTSOCK",
        "ENOPROTOOPT",
        "EOPNOTSUPP",
        "EAFNOSUPPORT",
        "EADDRINUSE",
        "EADDRNOTAVAIL",
        "ENETUNREACH",
        "ECONNABORTED",
        "ECONNRESET",
        "EISCONN",
        "ENOTCONN",
        "ETIMEDOUT",
        "ECONNREFUSED",
        "EHOSTUNREACH",
        "EALREADY",
        "EINPROGRESS",
    ];
    NAMES
        .iter()
        .find(|n| errno_value(n) == Some(v))
        .map(|n| n.to_string())
        .unwrap_or(format!("errno {v}"))
}

fn symbol(name: &str) -> Option<i64> {
    if let Some(e) = errno_value(name) {
        return Some(e as i64);
    }
    Some(match name {
        "AF_INET" => libc::AF_INET,
        "AF_INET6" => libc::AF_INET6,
        "SOCK_STREAM" => libc::SOCK_STREAM,
        "SOCK_DGRAM" => libc::SOCK_DGRAM,
        "SOCK_NONBLOCK" => libc::SOCK_NONBLOCK,
        "SOCK_CLOEXEC" => libc::SOCK_CLOEXEC,
        "IPPROTO_TCP" | "SOL_TCP" => libc::IPPROTO_TCP,
        "IPPROTO_UDP" => libc::IPPROTO_UDP,
        "SOL_SOCKET" => libc::SOL_SOCKET,
        "SO_REUSEADDR" => libc::SO_REUSEADDR,
        "SO_ERROR" => libc::SO_ERROR,
        "SO_LINGER" => libc::SO_LINGER,
        "SO_RCVBUF" => libc::SO_RCVBUF,
        "SO_SNDBUF" => libc::SO_SNDBUF,
        "SO_KEEPALIVE" => libc::SO_KEEPALIVE,
        "TCP_NODELAY" => libc::TCP_NODELAY,
        "TCP_MAXSEG" => libc::TCP_MAXSEG,
        "TCP_KEEPIDLE" => libc::TCP_KEEPIDLE,
        "TCP_KEEPINTVL" => libc::TCP_KEEPINTVL,
        "TCP_KEEPCNT" => libc::TCP_KEEPCNT,
        "TCP_CONGESTION" => libc::TCP_CONGESTION,
        "F_GETFL" => libc::F_GETFL,
        "F_SETFL" => libc::F_SETFL,
        "O_RDONLY" => libc::O_RDONLY,
        "O_WRONLY" => libc::O_WRONLY,
        "O_RDWR" => libc::O_RDWR,
        "O_NONBLOCK" => libc::O_NONBLOCK,
        "SHUT_RD" => libc::SHUT_RD,
        "SHUT_WR" => libc::SHUT_WR,
        "SHUT_RDWR" => libc::SHUT_RDWR,
        "MSG_PEEK" => libc::MSG_PEEK,
        "MSG_DONTWAIT" => libc::MSG_DONTWAIT,
        _ => return None,
    } as i64)
}

fn int(e: &Expr) -> Result<i64, String> {
    match e {
        Expr::Int(v) => Ok(*v),
        Expr::Word(w) => symbol(w).ok_or(format!("unknown symbol {w}")),
        Expr::Or(alts) => alts.iter().try_fold(0, |acc, a| Ok(acc | int(a)?)),
        other => Err(format!("expected an integer, found {other:?}")),
    }
}

/// `[v]`: a one-element array holding an int.
fn int_array(e: &Expr) -> Result<i64, String> {
    match e {
        Expr::List(v) if v.len() == 1 => int(&v[0]),
        other => Err(format!("expected [int], found {other:?}")),
    }
}

// --------------------------------------------------------------- running

/// A system call ready to run on the call thread: descriptors already mapped.
#[derive(Debug, Clone)]
enum Prepared {
    Socket(i32, i32, i32),
    Bind(i32),
    Listen(i32, i32),
    Accept(i32),
    Connect(i32),
    Read(i32, usize),
    Recv(i32, usize, i32),
    Write(i32, usize),
    Send(i32, usize, i32),
    Close(i32),
    Shutdown(i32, i32),
    Getsockopt(i32, i32, i32, usize),
    Setsockopt(i32, i32, i32, Vec<u8>),
    Fcntl(i32, i32, usize),
}

struct Outcome {
    ret: Ret,
    /// getsockopt's bytes.
    out: Vec<u8>,
    end_us: i64,
}

fn execute(d: &Drill, p: &Prepared, mode: Mode) -> (Ret, Vec<u8>) {
    let mut out = Vec::new();
    let r = match *p {
        Prepared::Socket(a, b, c) => d.socket(a, b, c),
        Prepared::Bind(fd) => d.bind_addr(fd, mode.socket_addr(mode.local(), LOCAL_PORT)),
        Prepared::Listen(fd, n) => d.listen(fd, n),
        Prepared::Accept(fd) => d.accept(fd).map(|(fd, ..)| fd),
        Prepared::Connect(fd) => d.connect_addr(fd, mode.socket_addr(mode.remote(), LOCAL_PORT)),
        Prepared::Read(fd, n) => d.read(fd, &mut vec![0; n]),
        Prepared::Recv(fd, n, fl) => d.recv(fd, &mut vec![0; n], fl),
        Prepared::Write(fd, n) => d.write(fd, &vec![0; n]),
        Prepared::Send(fd, n, fl) => d.send(fd, &vec![0; n], fl),
        Prepared::Close(fd) => d.close(fd),
        Prepared::Shutdown(fd, how) => d.shutdown(fd, how),
        Prepared::Getsockopt(fd, l, n, cap) => match d.getsockopt(fd, l, n, cap) {
            Ok(b) => {
                out = b;
                Ok(0)
            }
            Err(e) => Err(e),
        },
        Prepared::Setsockopt(fd, l, n, ref v) => d.setsockopt_bytes(fd, l, n, v),
        Prepared::Fcntl(fd, cmd, arg) => d.fcntl(fd, cmd, arg),
    };
    (r, out)
}

struct PendingCall {
    line: usize,
    call: Call,
    end_us: i64,
    p: Pending<Outcome>,
}

#[derive(Default)]
struct Conn {
    local_isn: Option<u32>,
    /// berth's TS val minus the script's, from the last outbound packet.
    ts_offset: Option<u32>,
}

struct Runner<'a> {
    d: Arc<Drill>,
    mode: Mode,
    script: &'a Script,
    start: i64,
    /// The previous event's script time and whether it was an inbound packet.
    last: Option<(i64, bool)>,
    fds: HashMap<i64, i32>,
    conns: HashMap<(u16, u16), Conn>,
    /// (remote port, local port) of packets written without ports.
    default_tuple: Option<(u16, u16)>,
    pending: Option<PendingCall>,
    ip_id: u16,
}

impl Runner<'_> {
    fn now(&self) -> i64 {
        self.d.now_us() - self.start
    }

    fn check_time(&self, what: &str, want: i64, got: i64) -> Result<(), String> {
        if (got - want).abs() > self.script.tolerance_us {
            return Err(format!(
                "timing error: expected {what} at {:.6} sec but happened at {:.6} sec; tolerance {:.6} sec",
                want as f64 / 1e6,
                got as f64 / 1e6,
                self.script.tolerance_us as f64 / 1e6
            ));
        }
        Ok(())
    }

    fn wait_until(&self, t: i64) -> Result<(), String> {
        let now = self.now();
        if t > now {
            let us = u32::try_from(t - now).map_err(|_| "wait too long".to_string())?;
            self.d
                .usleep(us)
                .map_err(|e| format!("usleep failed: errno {e}"))?;
        }
        Ok(())
    }

    fn run(&mut self) -> Result<(), String> {
        let script = self.script;
        for ev in &script.events {
            self.event(ev)
                .map_err(|e| format!("line {}: {e}", ev.line))?;
            self.reap()?;
        }
        if let Some(p) = &self.pending {
            let line = p.line;
            if p.p
                .settle(SETTLE)
                .map_err(|e| format!("line {line}: {e}"))?
                == Activity::Blocked
            {
                return Err(format!(
                    "line {line}: blocking {} never returned",
                    p.call.name
                ));
            }
            self.reap()?;
        }
        Ok(())
    }

    /// Check a blocking call that has returned since the last event.
    fn reap(&mut self) -> Result<(), String> {
        let Some(p) = &self.pending else {
            return Ok(());
        };
        match p.p.settle(SETTLE) {
            Err(e) => return Err(format!("line {}: {e}", p.line)),
            Ok(Activity::Blocked) => return Ok(()),
            Ok(Activity::Returned) => {}
        }
        let p = self.pending.take().expect("pending call");
        let o =
            p.p.join(SETTLE)
                .map_err(|e| format!("line {}: {e}", p.line))?;
        self.check_time(
            &format!("{} return", p.call.name),
            p.end_us,
            o.end_us - self.start,
        )
        .map_err(|e| format!("line {}: {e}", p.line))?;
        self.check_result(&p.call, &o)
            .map_err(|e| format!("line {}: {e}", p.line))
    }

    fn event(&mut self, ev: &Event) -> Result<(), String> {
        let inbound = match &ev.action {
            Action::Packet(p) => p.inbound,
            Action::Icmp(_) => true,
            Action::Call(_) => false,
        };
        // packetdrill's adjust_relative_event_times.
        let offset = match self.last {
            Some((t, true)) if inbound => t,
            _ => self.now(),
        };
        let (t, t_end) = match ev.time {
            Time::Abs(t) => (t, t),
            Time::Rel(t) => (offset + t, offset + t),
            Time::AbsRange(a, b) => (a, b),
            Time::RelRange(a, b) => (offset + a, offset + b),
            Time::Any => (i64::MIN, i64::MAX),
        };
        self.last = Some((t, inbound));
        match &ev.action {
            Action::Packet(p) if p.inbound => {
                self.wait_until(t)?;
                self.check_time("inbound packet", t, self.now())?;
                self.inject(p)
            }
            Action::Packet(p) => self.expect_outbound(p, ev.time, t, t_end),
            Action::Icmp(i) => {
                self.wait_until(t)?;
                self.check_time("inbound ICMP packet", t, self.now())?;
                self.inject_icmp(i)
            }
            Action::Call(c) => {
                self.wait_until(t)?;
                self.check_time("system call start", t, self.now())?;
                let end = c.end.map(|e| {
                    if matches!(ev.time, Time::Rel(_)) {
                        offset + e
                    } else {
                        e
                    }
                });
                self.syscall(ev.line, c, end)
            }
        }
    }

    fn tuple(&mut self, p: &Packet) -> (u16, u16) {
        match p.ports {
            Some((a, b)) if p.inbound => (a, b),
            Some((a, b)) => (b, a),
            None => *self
                .default_tuple
                .get_or_insert((DEFAULT_REMOTE_PORT, LOCAL_PORT)),
        }
    }

    fn inject(&mut self, p: &Packet) -> Result<(), String> {
        let (rport, lport) = self.tuple(p);
        let conn = self.conns.entry((rport, lport)).or_default();
        let isn = conn.local_isn;
        let map_local = |v: u32| -> Result<u32, String> {
            isn.map(|i| v.wrapping_add(i)).ok_or("inbound packet refers to berth's sequence space before berth sent a SYN or SYN-ACK".to_string())
        };
        let ack = if p.flags & ACK != 0 {
            map_local(p.ack.unwrap_or(0))?
        } else {
            p.ack.unwrap_or(0)
        };
        let mut opts = Vec::new();
        for o in p.opts.as_deref().unwrap_or(&[]) {
            opts.push(match o {
                Opt::Nop => TcpOpt::Nop,
                Opt::Eol => TcpOpt::Eol,
                Opt::Mss(m) => TcpOpt::Mss(*m),
                Opt::Ws(w) => TcpOpt::Ws(*w),
                Opt::SackOk => TcpOpt::SackOk,
                Opt::Ts(v, e) => {
                    let e = match (e, conn.ts_offset) {
                        (0, _) | (_, None) => *e,
                        (e, Some(off)) => e.wrapping_add(off),
                    };
                    TcpOpt::Ts(*v, e)
                }
                Opt::Sack(b) => TcpOpt::Sack(
                    b.iter()
                        .map(|&(l, r)| Ok((map_local(l)?, map_local(r)?)))
                        .collect::<Result<_, String>>()?,
                ),
            });
        }
        let bytes = encode_opts(&opts);
        if !bytes.len().is_multiple_of(4) || bytes.len() > 40 {
            return Err(format!(
                "TCP options take {} bytes: not whole 32-bit words up to 40",
                bytes.len()
            ));
        }
        self.ip_id = self.ip_id.wrapping_add(1);
        let mut s = Seg::inbound(rport, lport, p.seq, ack, p.flags, p.win.unwrap_or(0))
            .between(self.mode.remote(), self.mode.local());
        s.ip_id = self.ip_id;
        s.df = false;
        s.urg = p.urg.unwrap_or(0);
        s.opts = bytes;
        s.payload = vec![0; p.len as usize];
        let r = self.d.netdev_send(&s.to_bytes());
        if r < 0 {
            return Err(format!("netdev_send failed: {r}"));
        }
        Ok(())
    }

    /// packetdrill's new_icmp_packet and map_inbound_icmp_tcp_packet: from the
    /// remote address, quoting a segment berth sent on the default four-tuple.
    fn inject_icmp(&mut self, i: &Icmp) -> Result<(), String> {
        let (rport, lport) = *self
            .default_tuple
            .get_or_insert((DEFAULT_REMOTE_PORT, LOCAL_PORT));
        let isn = self
            .conns
            .get(&(rport, lport))
            .and_then(|c| c.local_isn)
            .ok_or("ICMP quotes berth's sequence space before berth sent a SYN or SYN-ACK")?;
        let v6 = self.mode.wire_v6();
        let (kind, code) = i.resolve(v6)?;
        let (local, remote) = (self.mode.local(), self.mode.remote());
        // The quoted segment: berth's IP header and the first 8 bytes of TCP.
        let mut quoted = ip_header(local, remote, 6, 20 + i.len as usize, 0, 64);
        quoted.extend_from_slice(&lport.to_be_bytes());
        quoted.extend_from_slice(&rport.to_be_bytes());
        quoted.extend_from_slice(&i.seq.wrapping_add(isn).to_be_bytes());
        let mut icmp = vec![kind, code, 0, 0];
        if v6 {
            // RFC 4443 3.2: Packet Too Big carries a 32-bit MTU.
            icmp.extend_from_slice(&u32::from(i.mtu.unwrap_or(0)).to_be_bytes());
        } else {
            // RFC 1191: the next-hop MTU in the low 16 bits.
            icmp.extend_from_slice(&[0, 0]);
            icmp.extend_from_slice(&i.mtu.unwrap_or(0).to_be_bytes());
        }
        icmp.extend_from_slice(&quoted);
        let proto = if v6 { 58 } else { 1 };
        // ICMPv6's checksum covers the pseudo-header (RFC 4443 2.3).
        let c = if v6 {
            checksum(&[&pseudo_header(remote, local, proto, icmp.len()), &icmp])
        } else {
            checksum(&[&icmp])
        };
        icmp[2..4].copy_from_slice(&c.to_be_bytes());
        let mut p = ip_header(remote, local, proto, icmp.len(), 0, 64);
        if !v6 {
            self.ip_id = self.ip_id.wrapping_add(1);
            p[4..6].copy_from_slice(&self.ip_id.to_be_bytes());
            p[10..12].copy_from_slice(&[0, 0]);
            let c = checksum(&[&p]);
            p[10..12].copy_from_slice(&c.to_be_bytes());
        }
        p.extend_from_slice(&icmp);
        let r = self.d.netdev_send(&p);
        if r < 0 {
            return Err(format!("netdev_send failed: {r}"));
        }
        Ok(())
    }

    fn expect_outbound(
        &mut self,
        p: &Packet,
        time: Time,
        t: i64,
        t_end: i64,
    ) -> Result<(), String> {
        let (bytes, at) = self
            .d
            .netdev_receive()
            .ok_or("expected an outbound packet; berth sent none before the adapter's deadline")?;
        let mut at = at - self.start;
        let mut live =
            Seg::parse(&bytes).map_err(|e| format!("outbound packet: {e}: {bytes:02x?}"))?;
        // packetdrill (run_packet.c, do_outbound_script_packet) aggregates
        // sequential outbound segments of one connection until they reach the
        // payload the script expects, as one TSO/GSO packet: the first one's
        // sequence number, the last one's flags, header fields and time.
        while live.payload.len() < p.len as usize {
            let Some((bytes, t)) = self.d.netdev_receive() else {
                break;
            };
            let next =
                Seg::parse(&bytes).map_err(|e| format!("outbound packet: {e}: {bytes:02x?}"))?;
            let end = live.seq.wrapping_add(live.payload.len() as u32);
            if (next.sport, next.dport) != (live.sport, live.dport) || next.seq != end {
                return Err(format!(
                    "expected {} bytes in sequential segments: {} then {}",
                    p.len,
                    describe(&live),
                    describe(&next)
                ));
            }
            let mut payload = std::mem::take(&mut live.payload);
            payload.extend_from_slice(&next.payload);
            let seq = live.seq;
            live = next;
            live.seq = seq;
            live.payload = payload;
            at = t - self.start;
        }
        let desc = describe(&live);
        let fail = |e: String| format!("{e}\n    live packet at {:.6}: {desc}", at as f64 / 1e6);
        match time {
            Time::Any => {}
            Time::AbsRange(..) | Time::RelRange(..) => {
                let tol = self.script.tolerance_us;
                if at < t - tol || at > t_end + tol {
                    return Err(fail(format!(
                        "timing error: expected outbound packet in {:.6}~{:.6} sec but happened at {:.6} sec",
                        t as f64 / 1e6,
                        t_end as f64 / 1e6,
                        at as f64 / 1e6
                    )));
                }
            }
            _ => self.check_time("outbound packet", t, at).map_err(fail)?,
        }
        if (live.src, live.dst) != (self.mode.local(), self.mode.remote()) {
            return Err(fail(format!("addresses {} > {}", live.src, live.dst)));
        }
        // A SYN written without ports is a new active open: adopt its ports.
        if p.ports.is_none() && p.flags == SYN && live.dport == LOCAL_PORT {
            self.default_tuple = Some((live.dport, live.sport));
        }
        let (rport, lport) = self.tuple(p);
        if (live.sport, live.dport) != (lport, rport) {
            return Err(fail(format!("ports: expected {lport}>{rport}")));
        }
        if live.flags != p.flags {
            return Err(fail(format!(
                "flags: expected {} but got {}",
                flags_str(p.flags),
                flags_str(live.flags)
            )));
        }
        let conn = self.conns.entry((rport, lport)).or_default();
        if p.flags & SYN != 0 {
            conn.local_isn = Some(live.seq.wrapping_sub(p.seq));
        }
        // A RST answering a segment of an unknown connection uses raw numbers.
        let isn = *conn.local_isn.get_or_insert(0);
        if live.seq != p.seq.wrapping_add(isn) {
            return Err(fail(format!(
                "seq: expected {} but got {}",
                p.seq,
                live.seq.wrapping_sub(isn)
            )));
        }
        if live.payload.len() != p.len as usize {
            return Err(fail(format!(
                "payload: expected {} bytes but got {}",
                p.len,
                live.payload.len()
            )));
        }
        if p.flags & ACK != 0 && Some(live.ack) != p.ack {
            return Err(fail(format!(
                "ack: expected {} but got {}",
                p.ack.unwrap_or(0),
                live.ack
            )));
        }
        if let Some(w) = p.win {
            if live.win != w {
                return Err(fail(format!("window: expected {w} but got {}", live.win)));
            }
        }
        if let Some(u) = p.urg {
            if live.urg != u {
                return Err(fail(format!(
                    "urgent pointer: expected {u} but got {}",
                    live.urg
                )));
            }
        }
        let Some(want) = &p.opts else { return Ok(()) };
        let got = live.options().map_err(|e| fail(format!("options: {e}")))?;
        let mut ok = got.len() == want.len();
        let mut ts_off = None;
        for (g, w) in got.iter().zip(want) {
            ok &= match (g, w) {
                (TcpOpt::Nop, Opt::Nop)
                | (TcpOpt::Eol, Opt::Eol)
                | (TcpOpt::SackOk, Opt::SackOk) => true,
                (TcpOpt::Mss(a), Opt::Mss(b)) => a == b,
                (TcpOpt::Ws(a), Opt::Ws(b)) => a == b,
                (TcpOpt::Ts(gv, ge), Opt::Ts(wv, we)) => {
                    ts_off = Some(gv.wrapping_sub(*wv));
                    ge == we
                }
                (TcpOpt::Sack(a), Opt::Sack(b)) => a == b,
                _ => false,
            };
        }
        if !ok {
            return Err(fail(format!("TCP options: expected <{}>", opts_str(want))));
        }
        if ts_off.is_some() {
            conn.ts_offset = ts_off;
        }
        Ok(())
    }

    fn fd(&self, e: Option<&Expr>) -> Result<i32, String> {
        let v = int(e.ok_or("missing descriptor argument")?)?;
        self.fds
            .get(&v)
            .copied()
            .ok_or(format!("descriptor {v} is not open in this script"))
    }

    fn prepare(&self, c: &Call) -> Result<Prepared, String> {
        let a = &c.args;
        let arity = |n: usize| -> Result<(), String> {
            if a.len() != n {
                return Err(format!(
                    "{} takes {n} arguments here, got {}",
                    c.name,
                    a.len()
                ));
            }
            Ok(())
        };
        let ellipsis = |i: usize| -> Result<(), String> {
            match a.get(i) {
                Some(Expr::Ellipsis) => Ok(()),
                other => Err(format!(
                    "argument {} of {}: only '...' is supported, got {other:?}",
                    i + 1,
                    c.name
                )),
            }
        };
        let n = |i: usize| int(&a[i]);
        Ok(match c.name.as_str() {
            "socket" => {
                arity(3)?;
                let dom = if a[0] == Expr::Ellipsis {
                    self.mode.domain() as i64
                } else {
                    n(0)?
                };
                Prepared::Socket(dom as i32, n(1)? as i32, n(2)? as i32)
            }
            "bind" | "connect" | "accept" => {
                arity(3)?;
                ellipsis(1)?;
                ellipsis(2)?;
                let fd = self.fd(a.first())?;
                match c.name.as_str() {
                    "bind" => Prepared::Bind(fd),
                    "connect" => Prepared::Connect(fd),
                    _ => Prepared::Accept(fd),
                }
            }
            "listen" => {
                arity(2)?;
                Prepared::Listen(self.fd(a.first())?, n(1)? as i32)
            }
            "read" | "write" => {
                arity(3)?;
                ellipsis(1)?;
                let (fd, len) = (self.fd(a.first())?, n(2)? as usize);
                if c.name == "read" {
                    Prepared::Read(fd, len)
                } else {
                    Prepared::Write(fd, len)
                }
            }
            "recv" | "send" => {
                arity(4)?;
                ellipsis(1)?;
                let (fd, len, fl) = (self.fd(a.first())?, n(2)? as usize, n(3)? as i32);
                if c.name == "recv" {
                    Prepared::Recv(fd, len, fl)
                } else {
                    Prepared::Send(fd, len, fl)
                }
            }
            "close" => {
                arity(1)?;
                Prepared::Close(self.fd(a.first())?)
            }
            "shutdown" => {
                arity(2)?;
                Prepared::Shutdown(self.fd(a.first())?, n(1)? as i32)
            }
            "getsockopt" => {
                arity(5)?;
                int_array(&a[3])?;
                let cap = int_array(&a[4])?;
                Prepared::Getsockopt(
                    self.fd(a.first())?,
                    n(1)? as i32,
                    n(2)? as i32,
                    cap as usize,
                )
            }
            "setsockopt" => {
                arity(5)?;
                let val = match &a[3] {
                    Expr::Struct(f) => {
                        let get = |k: &str| {
                            f.iter()
                                .find(|(n, _)| n == k)
                                .map(|(_, e)| int(e))
                                .ok_or(format!("linger without {k}"))?
                        };
                        let l = libc::linger {
                            l_onoff: get("onoff")? as i32,
                            l_linger: get("linger")? as i32,
                        };
                        let mut v = l.l_onoff.to_ne_bytes().to_vec();
                        v.extend_from_slice(&l.l_linger.to_ne_bytes());
                        v
                    }
                    Expr::Str(v) => v.as_bytes().to_vec(),
                    e => (int_array(e)? as i32).to_ne_bytes().to_vec(),
                };
                if n(4)? as usize != val.len() {
                    return Err(format!(
                        "setsockopt length {} for a {}-byte value",
                        n(4)?,
                        val.len()
                    ));
                }
                Prepared::Setsockopt(self.fd(a.first())?, n(1)? as i32, n(2)? as i32, val)
            }
            "fcntl" => {
                if a.len() != 2 && a.len() != 3 {
                    return Err("fcntl takes 2 or 3 arguments".into());
                }
                let arg = if a.len() == 3 { n(2)? as usize } else { 0 };
                Prepared::Fcntl(self.fd(a.first())?, n(1)? as i32, arg)
            }
            other => return Err(format!("unsupported system call {other}")),
        })
    }

    fn syscall(&mut self, line: usize, c: &Call, end: Option<i64>) -> Result<(), String> {
        if let Some(p) = &self.pending {
            return Err(format!(
                "{} started while the blocking {} from line {} is still running",
                c.name, p.call.name, p.line
            ));
        }
        let prepared = self.prepare(c)?;
        let d = self.d.clone();
        let mode = self.mode;
        let pend = spawn_call(move || {
            let (ret, out) = execute(&d, &prepared, mode);
            Outcome {
                ret,
                out,
                end_us: d.now_us(),
            }
        });
        match pend.settle(SETTLE)? {
            Activity::Blocked => match end {
                Some(e) => {
                    self.pending = Some(PendingCall {
                        line,
                        call: c.clone(),
                        end_us: e,
                        p: pend,
                    });
                    Ok(())
                }
                None => Err(format!(
                    "{} blocked; the script expects it to return at once",
                    c.name
                )),
            },
            Activity::Returned => {
                let o = pend.join(SETTLE)?;
                if let Some(e) = end {
                    self.check_time(&format!("{} return", c.name), e, o.end_us - self.start)?;
                }
                self.check_result(c, &o)
            }
        }
    }

    fn check_result(&mut self, c: &Call, o: &Outcome) -> Result<(), String> {
        let want_err = c
            .errno
            .as_deref()
            .map(|e| errno_value(e).expect("errno checked when parsed"));
        match (o.ret, want_err) {
            (Err(got), Some(want)) if c.result == -1 => {
                if got != want {
                    return Err(format!(
                        "{} returned -1 with {} but expected -1 {}",
                        c.name,
                        errno_name(got),
                        errno_name(want)
                    ));
                }
                return Ok(());
            }
            (Err(got), _) => {
                return Err(format!(
                    "{} returned -1 with {} but expected {}",
                    c.name,
                    errno_name(got),
                    c.result
                ))
            }
            (Ok(v), _) if c.result == -1 => {
                return Err(format!(
                    "{} returned {v} but expected -1 {}",
                    c.name,
                    c.errno.as_deref().unwrap_or("")
                ))
            }
            (Ok(_), _) => {}
        }
        let v = o.ret.expect("success checked above");
        match c.name.as_str() {
            // New descriptors: the script names them, the adapter picks them.
            "socket" | "accept" => {
                self.fds.insert(c.result, v as i32);
            }
            _ if v != c.result => {
                return Err(format!("{} returned {v} but expected {}", c.name, c.result))
            }
            "close" => {
                let script_fd = int(&c.args[0])?;
                self.fds.remove(&script_fd);
            }
            "getsockopt" => {
                let want = int_array(&c.args[3])?;
                let want_len = int_array(&c.args[4])?;
                if o.out.len() as i64 != want_len {
                    return Err(format!(
                        "getsockopt length {} but expected {want_len}",
                        o.out.len()
                    ));
                }
                let mut b = [0u8; 8];
                b[..o.out.len().min(8)].copy_from_slice(&o.out[..o.out.len().min(8)]);
                let got = i32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as i64;
                if got != want {
                    return Err(format!("getsockopt value {got} but expected {want}"));
                }
            }
            _ => {}
        }
        Ok(())
    }
}

fn opts_str(o: &[Opt]) -> String {
    o.iter()
        .map(|o| match o {
            Opt::Nop => "nop".to_string(),
            Opt::Eol => "eol".to_string(),
            Opt::Mss(m) => format!("mss {m}"),
            Opt::Ws(w) => format!("wscale {w}"),
            Opt::SackOk => "sackOK".to_string(),
            Opt::Ts(v, e) => format!("TS val {v} ecr {e}"),
            Opt::Sack(b) => format!(
                "sack {}",
                b.iter()
                    .map(|(l, r)| format!("{l}:{r}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// A live packet in tcpdump-like words (absolute numbers).
fn describe(s: &Seg) -> String {
    let mut o = format!(
        "{}:{} > {}:{} {} seq {} ack {} win {} len {}",
        s.src,
        s.sport,
        s.dst,
        s.dport,
        flags_str(s.flags),
        s.seq,
        s.ack,
        s.win,
        s.payload.len()
    );
    match s.options() {
        Ok(opts) if !opts.is_empty() => {
            let _ = write!(o, " <{opts:?}>");
        }
        Ok(_) => {}
        Err(e) => {
            let _ = write!(o, " <bad options: {e}>");
        }
    }
    o
}

/// How a script went in one mode.
#[derive(Debug, PartialEq)]
enum Ran {
    Passed,
    /// It cannot run in this mode, and why (packetdrill would refuse it too).
    Skipped(String),
}

/// Why `script` (named `name`) cannot run in `mode`, if it cannot: run_all.py
/// runs `*v4.pkt` only over IPv4 and `*v6.pkt` only over IPv6, and packetdrill
/// rejects an ICMP type or code that the mode's ICMP does not have.
fn cannot_run(name: &str, script: &Script, mode: Mode) -> Option<String> {
    if name.ends_with("v4.pkt") && mode.wire_v6() {
        return Some("named *v4.pkt: IPv4 only, as run_all.py runs it".into());
    }
    if name.ends_with("v6.pkt") && !mode.wire_v6() {
        return Some("named *v6.pkt: IPv6 only, as run_all.py runs it".into());
    }
    script.events.iter().find_map(|e| match &e.action {
        Action::Icmp(i) => i.resolve(mode.wire_v6()).err().map(|why| {
            format!(
                "line {}: {why} (packetdrill rejects the script in this mode too)",
                e.line
            )
        }),
        _ => None,
    })
}

fn run_file(path: &Path, mode: Mode) -> Result<Ran, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("read: {e}"))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    run_named(&name, &text, mode)
}

fn run_named(name: &str, text: &str, mode: Mode) -> Result<Ran, String> {
    let script = parse_script(text)?;
    if let Some(why) = cannot_run(name, &script, mode) {
        return Ok(Ran::Skipped(why));
    }
    let d = Drill::load(mode.so_flags());
    let start = d.now_us();
    let mut r = Runner {
        d,
        mode,
        script: &script,
        start,
        last: None,
        fds: HashMap::new(),
        conns: HashMap::new(),
        default_tuple: None,
        pending: None,
        ip_id: 0,
    };
    r.run().map(|()| Ran::Passed)
}

/// Run a script that must run in `mode`.
fn run_text(text: &str, mode: Mode) -> Result<(), String> {
    match run_named("inline.pkt", text, mode)? {
        Ran::Passed => Ok(()),
        Ran::Skipped(why) => Err(format!("cannot run in {}: {why}", mode.name())),
    }
}

/// Scripts known not to run in a mode (each says why when the test runs). A
/// skip not listed here fails the test, so none goes unnoticed.
const KNOWN_SKIPS: [(&str, Mode); 2] = [
    // ICMPv4's host_unreachable has no ICMPv6 code of that name (RFC 4443's
    // nearest is address_unreachable): icmp-soft-error-timeout-v6.pkt.
    ("icmp-soft-error-timeout.pkt", Mode::V6),
    // frag_needed is ICMPv4's; ICMPv6 says packet_too_big:
    // icmp-unreachable-v6.pkt.
    ("icmp-unreachable.pkt", Mode::V6),
];

/// A skip the script's name declares (run_all.py's rule) or KNOWN_SKIPS lists.
fn declared_skip(name: &str, mode: Mode) -> bool {
    (name.ends_with("v4.pkt") && mode.wire_v6())
        || (name.ends_with("v6.pkt") && !mode.wire_v6())
        || KNOWN_SKIPS.contains(&(name, mode))
}

/// The script runs of the three modes one after another: three at once would
/// triple the load on CI's cores under the timing-sensitive scripts.
static ONE_MODE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn run_scripts(mode: Mode) {
    let _serial = ONE_MODE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/packetdrill");
    let filter = std::env::var("BERTH_PKT").ok();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "pkt"))
        .filter(|p| {
            filter
                .as_deref()
                .is_none_or(|f| p.to_string_lossy().contains(f))
        })
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no .pkt scripts in {}", dir.display());
    let m = mode.name();
    let mut failed = Vec::new();
    let mut skipped = 0;
    for p in &paths {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let r = std::panic::catch_unwind(|| run_file(p, mode)).unwrap_or_else(|e| {
            Err(format!(
                "panicked: {}",
                e.downcast_ref::<String>()
                    .cloned()
                    .or(e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default()
            ))
        });
        match r {
            Ok(Ran::Passed) => println!("ok   {m} {name}"),
            Ok(Ran::Skipped(why)) if declared_skip(&name, mode) => {
                skipped += 1;
                println!("skip {m} {name}: {why}");
            }
            Ok(Ran::Skipped(why)) => {
                println!("FAIL {m} {name}: cannot run: {why}");
                failed.push(format!(
                    "{name}: cannot run in {m} ({why}); make it family-neutral or list it \
                     in KNOWN_SKIPS with the reason"
                ));
            }
            Err(e) => {
                println!("FAIL {m} {name}: {e}");
                failed.push(format!("{name}: {e}"));
            }
        }
    }
    println!(
        "{m}: {} passed, {} failed, {skipped} skipped",
        paths.len() - failed.len() - skipped,
        failed.len()
    );
    assert!(
        failed.is_empty(),
        "{} of {} scripts failed in {m}:\n{}",
        failed.len(),
        paths.len(),
        failed.join("\n")
    );
}

#[test]
fn packetdrill_scripts_ipv4() {
    run_scripts(Mode::V4);
}

#[test]
fn packetdrill_scripts_ipv4_mapped_ipv6() {
    run_scripts(Mode::Mapped);
}

#[test]
fn packetdrill_scripts_ipv6() {
    run_scripts(Mode::V6);
}

// The interpreter's own honesty: what it cannot parse is an error.
#[test]
fn parser_rejects_what_it_does_not_know() {
    let bad = [
        "0 frobnicate(3) = 0",
        "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 < S 0:0(0) win 100 <mss 1000, fastopen>",
        "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 < Q 0:0(0) win 100",
        "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 < S 0:5(0) win 100",
        "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 < S 0:0(0)",
        "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 < S 0:0(0) win 100 <...>",
        "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = -1",
        "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = -1 EWHATEVER",
        "0 `echo hi`",
        "1 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3",
        "--no_such_option=1\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3",
        "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3 junk",
        "0 socket(..., SOCK_STREAM, IPPROTO_TCP = 3",
        "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 > icmp unreachable port_unreachable",
        "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 < icmp unreachable no_such_code",
        "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 < icmp unreachable port_unreachable mtu 9",
        "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 < icmp redirect",
        "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 < icmp unreachable [1:5(3)]",
        "0 setsockopt(3, SOL_TCP, TCP_CONGESTION, \"reno, 4) = 0",
        "",
    ];
    for s in bad {
        assert!(parse_script(s).is_err(), "accepted {s:?}");
    }
    let ok = "--tolerance_usecs=10000\n/* block\ncomment */ 0 socket(..., SOCK_STREAM|SOCK_NONBLOCK, IPPROTO_TCP) = 3 // c\n\
              +0...0.2 accept(3, ..., ...) = 4\n+.1 < 40001>8080 S. 0:0(0) ack 1 win 5792 <mss 1460,sackOK,TS val 1 ecr 2,nop,wscale 7>\n\
              * > P. 1:11(10) ack 1 <...>\n+0~+.2 > R 11:11(0)\n+0 fcntl(3, F_GETFL) = 0x2 (flags O_RDWR)\n\
              +0 read(4, ..., 10) = -1 EAGAIN (Resource temporarily unavailable)\n\
              +0 setsockopt(4, SOL_SOCKET, SO_LINGER, {onoff=1, linger=0}, 8) = 0\n\
              +0 < . 1:1(0) ack 1 win 100 <sack 5:10 20:30,nop,nop>\n\
              +0 setsockopt(3, SOL_TCP, TCP_CONGESTION, \"reno\", 4) = 0";
    let s = parse_script(ok).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.tolerance_us, 10_000);
    assert_eq!(s.events.len(), 10);
    match &s.events[9].action {
        Action::Call(c) => assert_eq!(c.args[3], Expr::Str("reno".into())),
        a => panic!("{a:?}"),
    }
    assert_eq!(s.events[1].time, Time::Rel(0));
    match &s.events[1].action {
        Action::Call(c) => assert_eq!(c.end, Some(200_000)),
        a => panic!("{a:?}"),
    }
    match &s.events[2].action {
        Action::Packet(p) => {
            assert_eq!(
                (p.ports, p.flags, p.ack, p.win),
                (Some((40001, 8080)), SYN | ACK, Some(1), Some(5792))
            );
            assert_eq!(p.opts.as_ref().map(Vec::len), Some(5));
        }
        a => panic!("{a:?}"),
    }
    assert_eq!(s.events[3].time, Time::Any);
    assert_eq!(s.events[4].time, Time::RelRange(0, 200_000));
}

#[test]
fn parser_reads_icmp() {
    let s = parse_script(
        "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n\
         +0 < icmp unreachable frag_needed mtu 1200 [1:1001(1000)]\n\
         +0 < icmp unreachable code_13\n+0 < icmp time_exceeded [5:5(0)]\n\
         +0 < icmp unreachable port_unreachable\n\
         +0 < icmp packet_too_big mtu 1280 [1:1001(1000)]\n\
         +0 < icmp unreachable address_unreachable",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let icmp: Vec<_> = s
        .events
        .iter()
        .filter_map(|e| match &e.action {
            Action::Icmp(i) => Some(i.clone()),
            _ => None,
        })
        .collect();
    let got = |v6: bool| -> Vec<_> {
        icmp.iter()
            .map(|i| (i.resolve(v6).ok(), i.mtu, i.seq, i.len))
            .collect()
    };
    assert_eq!(
        got(false),
        [
            (Some((3, 4)), Some(1200), 1, 1000),
            (Some((3, 13)), None, 0, 0),
            (Some((11, 0)), None, 5, 0),
            (Some((3, 3)), None, 0, 0),
            (None, Some(1280), 1, 1000),
            (None, None, 0, 0),
        ]
    );
    // The same names in ICMPv6 (RFC 4443), as packetdrill's icmpv6 tables.
    assert_eq!(
        got(true),
        [
            (None, Some(1200), 1, 1000),
            (Some((1, 13)), None, 0, 0),
            (Some((3, 0)), None, 5, 0),
            (Some((1, 4)), None, 0, 0),
            (Some((2, 0)), Some(1280), 1, 1000),
            (Some((1, 3)), None, 0, 0),
        ]
    );
}

// The interpreter's own honesty, against the stack: each script is wrong in
// one detail and must fail there.
#[test]
fn interpreter_catches_wrong_expectations() {
    let open = "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0
+0 bind(3, ..., ...) = 0
+0 listen(3, 1) = 0
";
    let hs = "+0 < S 0:0(0) win 32792 <mss 1000,sackOK,nop,nop,nop,wscale 7>
+0 > S. 0:0(0) ack 1 <mss 1460,nop,nop,sackOK,nop,wscale 8>
+.1 < . 1:1(0) ack 1 win 257
+0 accept(3, ..., ...) = 4
";
    let good = format!("{open}{hs}+0 write(4, ..., 10) = 10\n+0 > P. 1:11(10) ack 1\n");
    // Three segments (MSS 1000) matched as one, as packetdrill aggregates them.
    let tso = format!("{open}{hs}+0 write(4, ..., 3000) = 3000\n+0 > P. 1:3001(3000) ack 1\n");
    for mode in Mode::ALL {
        let m = mode.name();
        run_text(&good, mode).unwrap_or_else(|e| panic!("{m}: the reference script fails: {e}"));
        run_text(&tso, mode).unwrap_or_else(|e| panic!("{m}: an aggregated flight fails: {e}"));
    }
    let wrong = [
        ("flags", format!("{open}+0 < S 0:0(0) win 32792 <mss 1000,nop,wscale 7>\n+0 > S 0:0(0) ack 1 <...>\n")),
        ("ack", format!("{open}+0 < S 0:0(0) win 32792 <mss 1000,nop,wscale 7>\n+0 > S. 0:0(0) ack 2 <...>\n")),
        ("wscale", format!("{open}+0 < S 0:0(0) win 32792 <mss 1000,nop,wscale 7>\n+0 > S. 0:0(0) ack 1 <mss 1460,nop,wscale 7>\n")),
        ("no options", format!("{open}+0 < S 0:0(0) win 32792 <mss 1000,nop,wscale 7>\n+0 > S. 0:0(0) ack 1\n")),
        ("window", format!("{open}+0 < S 0:0(0) win 32792 <mss 1000,nop,wscale 7>\n+0 > S. 0:0(0) ack 1 win 1 <...>\n")),
        ("timing", format!("{open}+0 < S 0:0(0) win 32792 <mss 1000,nop,wscale 7>\n+.01 > S. 0:0(0) ack 1 <...>\n")),
        ("seq", format!("{open}{hs}+0 write(4, ..., 10) = 10\n+0 > P. 2:12(10) ack 1\n")),
        ("length", format!("{open}{hs}+0 write(4, ..., 10) = 10\n+0 > P. 1:10(9) ack 1\n")),
        ("aggregated flags", format!("{open}{hs}+0 write(4, ..., 3000) = 3000\n+0 > . 1:3001(3000) ack 1\n")),
        ("aggregated length", format!("{open}{hs}+0 write(4, ..., 3000) = 3000\n+0 > P. 1:2501(2500) ack 1\n")),
        ("retransmit time", format!("{open}{hs}+0 write(4, ..., 10) = 10\n+0 > P. 1:11(10) ack 1\n+.5 > P. 1:11(10) ack 1\n")),
        ("result", format!("{open}{hs}+0 write(4, ..., 10) = 9\n")),
        ("errno", format!("{open}{hs}+0 fcntl(4, F_SETFL, O_RDWR|O_NONBLOCK) = 0\n+0 read(4, ..., 10) = -1 EBADF (Bad file descriptor)\n")),
        ("blocks", format!("{open}+0 accept(3, ..., ...) = 4\n")),
        ("end time", format!("{open}+0...0.05 accept(3, ..., ...) = 4\n{hs}")),
        ("fd", format!("{open}+0 close(7) = 0\n")),
        ("getsockopt", format!("{open}+0 getsockopt(3, SOL_SOCKET, SO_ERROR, [5], [4]) = 0\n")),
        ("congestion name", format!("{open}+0 setsockopt(3, SOL_TCP, TCP_CONGESTION, \"vegas\", 5) = 0\n")),
        ("string length", format!("{open}+0 setsockopt(3, SOL_TCP, TCP_CONGESTION, \"reno\", 5) = 0\n")),
    ];
    for mode in Mode::ALL {
        let m = mode.name();
        for (what, script) in &wrong {
            match run_text(script, mode) {
                Ok(()) => panic!("{m}: a script wrong in its {what} passed:\n{script}"),
                Err(e) => println!("{m} {what}: {e}"),
            }
        }
    }
}
