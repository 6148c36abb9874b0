//! iproute2 `ss`'s filter language: `state`/`exclude` with its state names and
//! groups, then an expression over `sport`/`dport`/`src`/`dst`
//! (`ss -t state established '( dport = :80 or sport = :80 )'`).
//!
//! As in iproute2's grammar (misc/ssfilter.y), `and`, `or` and juxtaposition
//! combine left to right without precedence (`a or b and c` is
//! `(a or b) and c`); `!`/`not` binds to the next term; parentheses group.
//! Ordering operators (`<`, `>`, `<=`, `>=`) compare ports, so they are for
//! `sport`/`dport`; `src`/`dst` take `=` (or nothing) and `!=`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Kernel socket states (include/net/tcp_states.h), as bits of a state set.
pub mod st {
    pub const ESTABLISHED: u16 = 1 << 1;
    pub const SYN_SENT: u16 = 1 << 2;
    pub const SYN_RECV: u16 = 1 << 3;
    pub const FIN_WAIT1: u16 = 1 << 4;
    pub const FIN_WAIT2: u16 = 1 << 5;
    pub const TIME_WAIT: u16 = 1 << 6;
    pub const CLOSE: u16 = 1 << 7;
    pub const CLOSE_WAIT: u16 = 1 << 8;
    pub const LAST_ACK: u16 = 1 << 9;
    pub const LISTEN: u16 = 1 << 10;
    pub const CLOSING: u16 = 1 << 11;
    /// Every state (iproute2 SS_ALL).
    pub const ALL: u16 = (1 << 12) - 2;
    /// What `ss` shows by default (SS_CONN): not listening, closed,
    /// TIME-WAIT or SYN-RECV.
    pub const CONN: u16 = ALL & !(LISTEN | CLOSE | TIME_WAIT | SYN_RECV);
}

/// The state bit of a row's state column (`ESTAB`, `LISTEN`, `UNCONN`, …).
pub fn state_bit(column: &str) -> u16 {
    match column {
        "ESTAB" => st::ESTABLISHED,
        "SYN-SENT" => st::SYN_SENT,
        "SYN-RECV" => st::SYN_RECV,
        "FIN-WAIT-1" => st::FIN_WAIT1,
        "FIN-WAIT-2" => st::FIN_WAIT2,
        "TIME-WAIT" => st::TIME_WAIT,
        "CLOSE-WAIT" => st::CLOSE_WAIT,
        "LAST-ACK" => st::LAST_ACK,
        "LISTEN" => st::LISTEN,
        "CLOSING" => st::CLOSING,
        // UNCONN (datagram sockets, and iproute2's name for a closed TCP
        // socket) and berth's CLOSE.
        _ => st::CLOSE,
    }
}

/// A state name or group of iproute2's `state`/`exclude` (case-insensitive).
pub fn scan_state(name: &str) -> Result<u16, String> {
    let bits = match name.to_ascii_lowercase().as_str() {
        "established" => st::ESTABLISHED,
        "syn-sent" => st::SYN_SENT,
        "syn-recv" | "syn-rcv" => st::SYN_RECV,
        "fin-wait-1" => st::FIN_WAIT1,
        "fin-wait-2" => st::FIN_WAIT2,
        "time-wait" => st::TIME_WAIT,
        "closed" | "close" | "unconnected" => st::CLOSE,
        "close-wait" => st::CLOSE_WAIT,
        "last-ack" => st::LAST_ACK,
        "listening" => st::LISTEN,
        "closing" => st::CLOSING,
        "all" => st::ALL,
        "connected" => st::ALL & !(st::CLOSE | st::LISTEN),
        "synchronized" => st::ALL & !(st::CLOSE | st::LISTEN | st::SYN_SENT),
        "bucket" => st::SYN_RECV | st::TIME_WAIT,
        "big" => st::ALL & !(st::SYN_RECV | st::TIME_WAIT),
        _ => {
            return Err(format!(
                "wrong state name: {name}; try established, syn-sent, syn-recv, fin-wait-1, \
                 fin-wait-2, time-wait, closed, close-wait, last-ack, listening, closing, or a \
                 group: all, connected, synchronized, bucket, big"
            ))
        }
    };
    Ok(bits)
}

/// A socket as the filter sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoints {
    /// Local address (unspecified for a wildcard) and port (0: none).
    pub local: (IpAddr, u16),
    /// Peer address and port (unspecified / 0 without a peer).
    pub peer: (IpAddr, u16),
}

/// An address condition: `ADDR`, `ADDR/PREFIX`, `*`, with or without `:PORT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostCond {
    /// Address and prefix length, if one was given.
    pub net: Option<(IpAddr, u8)>,
    /// Port, if one was given.
    pub port: Option<u16>,
}

impl HostCond {
    fn matches(&self, (addr, port): (IpAddr, u16)) -> bool {
        if self.port.is_some_and(|p| p != port) {
            return false;
        }
        match self.net {
            None => true,
            Some((net, len)) => prefix_match(addr, net, len),
        }
    }
}

/// `addr` inside `net/len`; an IPv4-mapped IPv6 address matches an IPv4
/// prefix (iproute2's inet2_addr_match).
fn prefix_match(addr: IpAddr, net: IpAddr, len: u8) -> bool {
    let bits = |a: IpAddr| -> (u128, u8) {
        match a {
            IpAddr::V4(v) => (u128::from(u32::from(v)) << 96, 32),
            IpAddr::V6(v) => (u128::from(v), 128),
        }
    };
    let addr = match (addr, net) {
        (IpAddr::V6(v), IpAddr::V4(_)) => match v.to_ipv4_mapped() {
            Some(m) => IpAddr::V4(m),
            None => return false,
        },
        (a, _) => a,
    };
    if addr.is_ipv4() != net.is_ipv4() {
        return false;
    }
    let ((a, _), (n, width)) = (bits(addr), bits(net));
    let len = u32::from(len.min(width));
    if len == 0 {
        return true;
    }
    let mask = u128::MAX << (128 - len);
    a & mask == n & mask
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Src,
    Dst,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
}

/// A parsed filter expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// `src`/`dst` (`=`) or `sport`/`dport` with `=`: the host condition.
    Host(Side, HostCond),
    /// `sport`/`dport` compared with a port.
    Port(Side, Cmp, u16),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
}

impl Expr {
    pub fn matches(&self, s: &Endpoints) -> bool {
        let side = |d: Side| match d {
            Side::Src => s.local,
            Side::Dst => s.peer,
        };
        match self {
            Expr::Host(d, h) => h.matches(side(*d)),
            Expr::Port(d, c, p) => {
                let port = side(*d).1;
                match c {
                    Cmp::Eq => port == *p,
                    Cmp::Ne => port != *p,
                    Cmp::Lt => port < *p,
                    Cmp::Gt => port > *p,
                    Cmp::Le => port <= *p,
                    Cmp::Ge => port >= *p,
                }
            }
            Expr::Not(e) => !e.matches(s),
            Expr::And(a, b) => a.matches(s) && b.matches(s),
            Expr::Or(a, b) => a.matches(s) || b.matches(s),
        }
    }
}

/// The whole filter: a state set and an optional expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// States given with `state`/`exclude`; `None`: the flags decide (-a, -l).
    pub states: Option<u16>,
    pub expr: Option<Expr>,
}

/// Parse the words after the flags (`state established ( dport = :80 )`).
pub fn parse(words: &[String]) -> Result<Filter, String> {
    let mut states: Option<u16> = None;
    let mut rest = words;
    while let [kw, tail @ ..] = rest {
        let exclude = match kw.as_str() {
            "state" => false,
            "exclude" | "excl" => true,
            _ => break,
        };
        let [name, tail @ ..] = tail else {
            return Err(format!(
                "`{kw}` needs a state name, e.g. `{kw} established`"
            ));
        };
        let bits = scan_state(name)?;
        states = Some(match (exclude, states) {
            (false, s) => s.unwrap_or(0) | bits,
            (true, s) => s.unwrap_or(st::ALL) & !bits,
        });
        rest = tail;
    }
    let tokens = lex(&rest.join(" "));
    let mut p = Parser { t: &tokens, i: 0 };
    let expr = if tokens.is_empty() {
        None
    } else {
        let e = p.list()?;
        if let Some(t) = p.peek() {
            return Err(format!("unexpected `{t}` in the filter"));
        }
        Some(e)
    };
    Ok(Filter { states, expr })
}

/// Words, with `(`, `)` and the comparison operators split off even when
/// written without spaces (`dport>=:1024`).
fn lex(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut chars = s.chars().peekable();
    let flush = |w: &mut String, out: &mut Vec<String>| {
        if !w.is_empty() {
            out.push(std::mem::take(w));
        }
    };
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => flush(&mut word, &mut out),
            '(' | ')' => {
                flush(&mut word, &mut out);
                out.push(c.to_string());
            }
            '!' | '=' | '<' | '>' | '&' | '|' => {
                flush(&mut word, &mut out);
                let mut op = c.to_string();
                if let Some(&n) = chars.peek() {
                    let two = matches!(
                        (c, n),
                        ('!', '=') | ('=', '=') | ('<', '=') | ('>', '=') | ('&', '&') | ('|', '|')
                    );
                    if two {
                        op.push(n);
                        chars.next();
                    }
                }
                out.push(op);
            }
            _ => word.push(c),
        }
    }
    flush(&mut word, &mut out);
    out
}

struct Parser<'a> {
    t: &'a [String],
    i: usize,
}

enum Tok {
    Not,
    And,
    Or,
    Open,
    Close,
    Side(Side, bool),
    Op(Cmp),
    Word,
}

fn classify(w: &str) -> Tok {
    match w {
        "!" | "not" => Tok::Not,
        "&" | "&&" | "and" => Tok::And,
        "|" | "||" | "or" => Tok::Or,
        "(" => Tok::Open,
        ")" => Tok::Close,
        "src" => Tok::Side(Side::Src, false),
        "dst" => Tok::Side(Side::Dst, false),
        "sport" => Tok::Side(Side::Src, true),
        "dport" => Tok::Side(Side::Dst, true),
        "=" | "==" | "eq" => Tok::Op(Cmp::Eq),
        "!=" | "ne" | "neq" => Tok::Op(Cmp::Ne),
        "<" | "lt" => Tok::Op(Cmp::Lt),
        ">" | "gt" => Tok::Op(Cmp::Gt),
        "<=" | "le" | "leq" => Tok::Op(Cmp::Le),
        ">=" | "ge" | "geq" => Tok::Op(Cmp::Ge),
        _ => Tok::Word,
    }
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<&'a str> {
        self.t.get(self.i).map(String::as_str)
    }

    fn next(&mut self) -> Option<&'a str> {
        let all: &'a [String] = self.t;
        let t = all.get(self.i).map(String::as_str);
        self.i += 1;
        t
    }

    /// exprlist: terms joined by `and`/`or`/nothing, left to right.
    fn list(&mut self) -> Result<Expr, String> {
        let mut acc = self.term()?;
        while let Some(t) = self.peek() {
            match classify(t) {
                Tok::Close => break,
                Tok::Or => {
                    self.i += 1;
                    acc = Expr::Or(Box::new(acc), Box::new(self.term()?));
                }
                Tok::And => {
                    self.i += 1;
                    acc = Expr::And(Box::new(acc), Box::new(self.term()?));
                }
                _ => acc = Expr::And(Box::new(acc), Box::new(self.term()?)),
            }
        }
        Ok(acc)
    }

    fn term(&mut self) -> Result<Expr, String> {
        let Some(t) = self.next() else {
            return Err("the filter ends where a condition should be, e.g. `dport = :80`".into());
        };
        match classify(t) {
            Tok::Not => Ok(Expr::Not(Box::new(self.term()?))),
            Tok::Open => {
                if self.peek().is_some_and(|t| t == ")") {
                    return Err("empty `( )` in the filter".into());
                }
                let e = self.list()?;
                match self.next() {
                    Some(")") => Ok(e),
                    _ => Err("missing `)` in the filter".into()),
                }
            }
            Tok::Side(side, port) => self.condition(t.to_string(), side, port),
            _ => Err(format!(
                "unexpected `{t}` in the filter; a condition starts with sport, dport, src or \
                 dst (e.g. `dport = :80`, `src 192.0.2.0/24`)"
            )),
        }
    }

    fn condition(&mut self, kw: String, side: Side, port: bool) -> Result<Expr, String> {
        let cmp = match self.peek().map(classify) {
            Some(Tok::Op(c)) => {
                self.i += 1;
                c
            }
            _ => Cmp::Eq,
        };
        let Some(arg) = self.next() else {
            return Err(format!("`{kw}` needs a value, e.g. `{kw} = :80`"));
        };
        if !matches!(classify(arg), Tok::Word) {
            return Err(format!("`{kw}` needs a value before `{arg}`"));
        }
        let arg = arg.to_string();
        if port {
            let p = parse_port(&arg)
                .ok_or_else(|| format!("\"{arg}\" does not look like a port; write e.g. :80"))?;
            return Ok(match (p, cmp) {
                (None, Cmp::Eq) => Expr::Host(
                    side,
                    HostCond {
                        net: None,
                        port: None,
                    },
                ),
                (None, Cmp::Ne) => Expr::Not(Box::new(Expr::Host(
                    side,
                    HostCond {
                        net: None,
                        port: None,
                    },
                ))),
                (None, _) => return Err(format!("`{kw}` cannot compare with `*`; give a port")),
                (Some(p), c) => Expr::Port(side, c, p),
            });
        }
        let h = parse_host(&arg)?;
        match cmp {
            Cmp::Eq => Ok(Expr::Host(side, h)),
            Cmp::Ne => Ok(Expr::Not(Box::new(Expr::Host(side, h)))),
            _ => Err(format!(
                "`{kw}` takes = or != (ordering compares ports: use sport/dport, e.g. `sport >= :1024`)"
            )),
        }
    }
}

/// `:80`, `80`, `*`, `:*`: the port (`None` for any).
fn parse_port(s: &str) -> Option<Option<u16>> {
    let s = s.strip_prefix(':').unwrap_or(s);
    if s == "*" {
        return Some(None);
    }
    s.parse::<u16>().ok().map(Some)
}

/// `ADDR`, `ADDR/PREFIX`, `[V6]`, `[V6]/PREFIX`, `*`, each with or without
/// `:PORT`; `:PORT` alone.
pub fn parse_host(s: &str) -> Result<HostCond, String> {
    let bad = || {
        format!(
            "an address is expected rather than \"{s}\": write ADDR, ADDR/PREFIX, ADDR:PORT, \
             [IPV6]:PORT, *:PORT or :PORT"
        )
    };
    // A whole IPv6 address or prefix without brackets has no port.
    if let Some(net) = parse_net(s) {
        return Ok(HostCond {
            net: Some(net),
            port: None,
        });
    }
    let (addr, port) = if let Some(rest) = s.strip_prefix('[') {
        let (a, after) = rest.split_once(']').ok_or_else(bad)?;
        // "[2001:db8::1]/64:80": the prefix follows the bracket.
        let (prefix, port) = match after.split_once(':') {
            Some((pre, p)) => (pre, Some(p)),
            None => (after, None),
        };
        (format!("{a}{prefix}"), port)
    } else {
        match s.rsplit_once(':') {
            Some((a, p)) => (a.to_string(), Some(p)),
            None => (s.to_string(), None),
        }
    };
    let port = match port {
        None => None,
        Some(p) => parse_port(p).ok_or_else(bad)?,
    };
    let net = match addr.as_str() {
        "" | "*" => None,
        a => Some(parse_net(a).ok_or_else(bad)?),
    };
    Ok(HostCond { net, port })
}

/// `192.0.2.1`, `192.0.2.0/24`, `2001:db8::/32`: address and prefix length.
fn parse_net(s: &str) -> Option<(IpAddr, u8)> {
    let (a, len) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l.parse::<u8>().ok()?)),
        None => (s, None),
    };
    let ip: IpAddr = a.parse().ok()?;
    let width = if ip.is_ipv4() { 32 } else { 128 };
    let len = len.unwrap_or(width);
    (len <= width).then_some((ip, len))
}

/// An address column as iproute2 writes it (`192.0.2.2:7`, `[2001:db8::2]:7`,
/// `*:7`, `0.0.0.0:*`, `[::]:*`) back to address and port (0 for `*`).
pub fn parse_column(s: &str) -> Option<(IpAddr, u16)> {
    let (host, port) = s.rsplit_once(':')?;
    let port = if port == "*" { 0 } else { port.parse().ok()? };
    let ip = match host {
        "*" => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        h if h.starts_with('[') => h
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .ok()?,
        h => h.parse::<Ipv4Addr>().ok()?.into(),
    };
    Some((ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_string).collect()
    }

    fn f(s: &str) -> Filter {
        parse(&words(s)).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn sock(local: &str, peer: &str) -> Endpoints {
        Endpoints {
            local: parse_column(local).expect("local"),
            peer: parse_column(peer).expect("peer"),
        }
    }

    fn matches(filter: &str, local: &str, peer: &str) -> bool {
        f(filter)
            .expr
            .is_some_and(|e| e.matches(&sock(local, peer)))
    }

    #[test]
    fn states_and_groups_as_iproute2() {
        assert_eq!(f("state established").states, Some(st::ESTABLISHED));
        assert_eq!(
            f("state established state time-wait").states,
            Some(st::ESTABLISHED | st::TIME_WAIT)
        );
        assert_eq!(f("exclude listening").states, Some(st::ALL & !st::LISTEN));
        assert_eq!(f("state bucket").states, Some(st::SYN_RECV | st::TIME_WAIT));
        assert_eq!(
            f("state connected").states,
            Some(st::ALL & !(st::CLOSE | st::LISTEN))
        );
        assert_eq!(
            f("state synchronized").states,
            Some(st::ALL & !(st::CLOSE | st::LISTEN | st::SYN_SENT))
        );
        assert_eq!(f("state big").states.map(|s| s & st::TIME_WAIT), Some(0));
        assert_eq!(f("state all").states, Some(st::ALL));
        for name in [
            "syn-sent",
            "syn-recv",
            "fin-wait-1",
            "fin-wait-2",
            "closed",
            "close-wait",
            "last-ack",
            "closing",
        ] {
            let s = f(&format!("state {name}")).states.unwrap_or(0);
            assert_eq!(s.count_ones(), 1, "{name}");
        }
        assert_eq!(f("").states, None);
        assert_eq!(state_bit("ESTAB"), st::ESTABLISHED);
        assert_eq!(state_bit("UNCONN"), st::CLOSE);
        assert_eq!(st::CONN & (st::LISTEN | st::TIME_WAIT | st::SYN_RECV), 0);
    }

    #[test]
    fn ports_addresses_and_operators() {
        let est = ("192.0.2.2:80", "192.0.2.1:40000");
        let m = |flt: &str| matches(flt, est.0, est.1);
        assert!(m("sport = :80"));
        assert!(m("sport == 80"));
        assert!(m("sport eq :80"));
        assert!(!m("sport != :80"));
        assert!(m("dport neq :80"));
        assert!(m("dport > :1024") && m("dport gt :1024") && m("dport >= :40000"));
        assert!(!m("dport < :40000") && m("dport le :40000") && m("dport lt :40001"));
        assert!(m("dport ge :40000") && m("sport <= :80"));
        assert!(m("dst 192.0.2.1") && m("dst = 192.0.2.0/24") && m("src 192.0.2.2:80"));
        assert!(!m("dst 198.51.100.0/24") && !m("src 192.0.2.2:81"));
        assert!(m("src *:80") && m("dst *") && m("dst :40000") && m("src 0.0.0.0/0"));
        assert!(m("dst != 198.51.100.1"));
        // Glued operators and parentheses.
        assert!(m("(sport>=:80)") && m("!(dport=:80)"));
    }

    #[test]
    fn and_or_not_parentheses_left_to_right() {
        let m = |flt: &str| matches(flt, "192.0.2.2:80", "192.0.2.1:40000");
        assert!(m("( dport = :80 or sport = :80 )"));
        assert!(!m("( dport = :80 or sport = :81 )"));
        assert!(m("sport = :80 and dport = :40000"));
        assert!(m("sport = :80 dport = :40000"));
        assert!(!m("sport = :80 && dport = :1"));
        assert!(m("sport = :1 || sport = :80"));
        assert!(m("not sport = :1") && !m("! sport = :80"));
        // iproute2's grammar has no precedence: (a or b) and c.
        assert!(!m("sport = :80 or dport = :1 and dport = :2"));
        assert!(m("sport = :80 or ( dport = :1 and dport = :2 )"));
        let filt = f("state established ( dport = :80 or sport = :80 )");
        assert_eq!(filt.states, Some(st::ESTABLISHED));
        assert!(filt.expr.is_some());
    }

    #[test]
    fn ipv6_and_mapped_addresses() {
        let m = |flt: &str| matches(flt, "[2001:db8::2]:7", "[2001:db8::1]:5000");
        assert!(m("dst 2001:db8::1") && m("dst [2001:db8::1]:5000") && m("src 2001:db8::/32"));
        assert!(m("dst [2001:db8::]/64:5000") && !m("dst [2001:db8::1]:5001"));
        assert!(!m("dst 192.0.2.1"));
        // An IPv4-mapped peer matches an IPv4 prefix.
        assert!(matches(
            "dst 192.0.2.0/24",
            "[::ffff:192.0.2.2]:7",
            "[::ffff:192.0.2.1]:5000"
        ));
        // The dual-stack wildcard `*:7` is [::]:7.
        assert!(matches("sport = :7", "*:7", "*:*"));
        assert_eq!(
            parse_column("[::]:*"),
            Some((IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0))
        );
    }

    #[test]
    fn bad_filters_say_what_is_wrong() {
        let err = |s: &str| {
            parse(&words(s))
                .err()
                .unwrap_or_else(|| panic!("{s} parsed"))
        };
        assert!(err("state establishd").contains("wrong state name: establishd"));
        assert!(err("state").contains("needs a state name"));
        assert!(err("dport = :http").contains("does not look like a port"));
        assert!(err("dport = :99999").contains("does not look like a port"));
        assert!(err("( dport = :80").contains("missing `)`"));
        assert!(err("dport = :80 )").contains("unexpected `)`"));
        assert!(err("dport =").contains("needs a value"));
        assert!(err("dport = :80 or").contains("ends where a condition"));
        assert!(err("foo").contains("a condition starts with sport"));
        assert!(err("dst < 192.0.2.1").contains("takes = or !="));
        assert!(err("dst 192.0.2.300").contains("an address is expected"));
        assert!(err("src 192.0.2.0/33").contains("an address is expected"));
        assert!(err("( )").contains("empty"));
        assert!(err("dport < *").contains("cannot compare"));
    }
}
