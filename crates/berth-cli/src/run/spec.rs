//! Flag values of `berth run`: port forwards (`-p`) and the namespace's
//! address layout (`--net`, `--net6`), checked with errors that say what to
//! write instead.
//!
//! The layout is slirp4netns's, so scripts written for it carry over: in the
//! subnet, .2 is the gateway (and the host), .3 the DNS forwarder, .100 the
//! namespace (slirp4netns(1), "Default configuration" and `--configure`); for
//! IPv6 fd00::/64 with ::2, ::3 and ::100 (slirp4netns's
//! tests/test-slirp4netns-cidr6.sh expects fd00::100/64 by default).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Transport of a port forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Proto {
    Tcp,
    Udp,
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        })
    }
}

/// `-p [HOSTIP:]HOSTPORT:GUESTPORT[/tcp|/udp]`: listen on `host`, connect
/// to the namespace's `guest_port`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortForward {
    pub proto: Proto,
    pub host: SocketAddr,
    pub guest_port: u16,
}

impl fmt::Display for PortForward {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}/{}", self.host, self.guest_port, self.proto)
    }
}

/// Parses `-p`. Without HOSTIP the host side listens on every IPv4 address
/// (0.0.0.0), as `podman run -p` and docker do, rootless or not; give
/// `127.0.0.1:8080:80` to keep a forward local. The default protocol is TCP.
pub fn parse_port_forward(s: &str) -> Result<PortForward, String> {
    let t = s.trim();
    let (spec, proto) = match t.rsplit_once('/') {
        None => (t, Proto::Tcp),
        Some((spec, p)) if p.eq_ignore_ascii_case("tcp") => (spec, Proto::Tcp),
        Some((spec, p)) if p.eq_ignore_ascii_case("udp") => (spec, Proto::Udp),
        Some((_, p)) => {
            return Err(format!(
                "-p {s}: unknown protocol '{p}'; write /tcp or /udp (for both, give -p twice)"
            ))
        }
    };
    let (host_ip, ports): (IpAddr, &str) = if let Some(v6) = spec.strip_prefix('[') {
        let Some((ip, rest)) = v6.split_once("]:") else {
            return Err(format!(
                "-p {s}: an IPv6 host address is written [ADDR]:HOSTPORT:GUESTPORT, \
                 e.g. [::1]:8080:80"
            ));
        };
        let ip: Ipv6Addr = ip
            .parse()
            .map_err(|_| format!("-p {s}: '{ip}' is not an IPv6 address"))?;
        (ip.into(), rest)
    } else {
        match spec.matches(':').count() {
            1 => (Ipv4Addr::UNSPECIFIED.into(), spec),
            2 => {
                let (ip, rest) = spec.split_once(':').unwrap_or_default();
                let ip: Ipv4Addr = ip.parse().map_err(|_| {
                    format!(
                        "-p {s}: '{ip}' is not an IPv4 address; write e.g. 127.0.0.1:8080:80 \
                         (an IPv6 one in brackets, [::1]:8080:80)"
                    )
                })?;
                (ip.into(), rest)
            }
            0 => {
                return Err(format!(
                    "-p {s}: give the host port and the namespace port, e.g. -p 8080:80"
                ))
            }
            _ => {
                return Err(format!(
                    "-p {s}: too many ':'; an IPv6 host address goes in brackets, \
                     e.g. [::1]:8080:80"
                ))
            }
        }
    };
    let (hp, gp) = ports.split_once(':').unwrap_or((ports, ""));
    let host_port = port(hp, "host", s)?;
    let guest_port = port(gp, "namespace", s)?;
    Ok(PortForward {
        proto,
        host: SocketAddr::new(host_ip, host_port),
        guest_port,
    })
}

fn port(p: &str, side: &str, whole: &str) -> Result<u16, String> {
    if p.contains('-') {
        return Err(format!(
            "-p {whole}: port ranges are not supported; give -p once per port"
        ));
    }
    match p.parse::<u16>() {
        Ok(0) | Err(_) => Err(format!(
            "-p {whole}: '{p}' is not a {side} port (1-65535); write e.g. -p 8080:80"
        )),
        Ok(n) => Ok(n),
    }
}

/// The namespace's IPv4 layout (`--net`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetLayout {
    /// Network address and prefix length.
    pub net: (Ipv4Addr, u8),
    /// The namespace's address: network + 100.
    pub guest: Ipv4Addr,
    /// The gateway, which is also the host: network + 2.
    pub gateway: Ipv4Addr,
    /// The DNS forwarder: network + 3.
    pub dns: Ipv4Addr,
}

impl Default for NetLayout {
    /// 10.0.2.0/24, as slirp4netns.
    fn default() -> Self {
        let net = Ipv4Addr::new(10, 0, 2, 0);
        NetLayout::new(net, 24)
    }
}

impl NetLayout {
    fn new(net: Ipv4Addr, prefix: u8) -> Self {
        let at = |n: u32| Ipv4Addr::from(u32::from(net) + n);
        NetLayout {
            net: (net, prefix),
            guest: at(100),
            gateway: at(2),
            dns: at(3),
        }
    }
}

impl fmt::Display for NetLayout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.net.0, self.net.1)
    }
}

/// IPv4 ranges a namespace subnet must not overlap: "this network",
/// loopback (RFC 1122 §3.2.1.3), multicast and reserved (RFC 5771, RFC 1112 §4).
const V4_FORBIDDEN: [(Ipv4Addr, u8, &str); 3] = [
    (Ipv4Addr::new(0, 0, 0, 0), 8, "\"this network\" 0.0.0.0/8"),
    (Ipv4Addr::new(127, 0, 0, 0), 8, "loopback 127.0.0.0/8"),
    (
        Ipv4Addr::new(224, 0, 0, 0),
        3,
        "multicast and reserved 224.0.0.0/3",
    ),
];

/// Parses `--net CIDR`: a network address with prefix 1-25, so that .100
/// fits (slirp4netns enforces the same, tests/test-slirp4netns-cidr.sh).
pub fn parse_net(s: &str) -> Result<NetLayout, String> {
    let (a, p) = s.trim().split_once('/').ok_or_else(|| {
        format!("--net {s}: give a network with its prefix length, e.g. 192.0.2.0/24")
    })?;
    let addr: Ipv4Addr = a
        .parse()
        .map_err(|_| format!("--net {s}: '{a}' is not an IPv4 address; write e.g. 192.0.2.0/24"))?;
    let prefix: u8 = match p.parse() {
        Ok(n @ 1..=25) => n,
        _ => {
            return Err(format!(
                "--net {s}: the prefix length must be 1-25, so that the namespace's \
                 address (network + 100) fits; write e.g. {a}/24"
            ))
        }
    };
    let mask = u32::MAX << (32 - prefix);
    let net = Ipv4Addr::from(u32::from(addr) & mask);
    if net != addr {
        return Err(format!(
            "--net {s}: give the network address, {net}/{prefix}, not an address inside it"
        ));
    }
    for (f, fp, what) in V4_FORBIDDEN {
        let m = u32::MAX << (32 - prefix.min(fp));
        if u32::from(net) & m == u32::from(f) & m {
            return Err(format!(
                "--net {s} overlaps {what}; pick a private or documentation range, \
                 e.g. 10.0.2.0/24 or 192.0.2.0/24"
            ));
        }
    }
    Ok(NetLayout::new(net, prefix))
}

/// The namespace's IPv6 layout (`--net6`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetLayout6 {
    pub net: (Ipv6Addr, u8),
    /// network + ::100.
    pub guest: Ipv6Addr,
    /// network + ::2, also the host.
    pub gateway: Ipv6Addr,
    /// network + ::3.
    pub dns: Ipv6Addr,
}

impl Default for NetLayout6 {
    /// fd00::/64, as slirp4netns (a ULA, RFC 4193).
    fn default() -> Self {
        NetLayout6::new(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0), 64)
    }
}

impl NetLayout6 {
    fn new(net: Ipv6Addr, prefix: u8) -> Self {
        let at = |n: u128| Ipv6Addr::from(u128::from(net) + n);
        NetLayout6 {
            net: (net, prefix),
            guest: at(0x100),
            gateway: at(2),
            dns: at(3),
        }
    }
}

impl fmt::Display for NetLayout6 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.net.0, self.net.1)
    }
}

/// IPv6 ranges a namespace subnet must not overlap (RFC 4291 §2.4): ::/8
/// (unspecified, loopback, IPv4-mapped), link-local and multicast.
const V6_FORBIDDEN: [(Ipv6Addr, u8, &str); 3] = [
    (
        Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 0),
        8,
        "::/8 (loopback, IPv4-mapped)",
    ),
    (
        Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0),
        10,
        "link-local fe80::/10",
    ),
    (
        Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0),
        8,
        "multicast ff00::/8",
    ),
];

/// Parses `--net6 CIDR`: a network address with prefix 8-119, so that ::100
/// (9 bits) fits. slirp4netns accepts 8-128; above 119 its ::100 would fall
/// outside the subnet, so we refuse instead.
pub fn parse_net6(s: &str) -> Result<NetLayout6, String> {
    let (a, p) = s.trim().split_once('/').ok_or_else(|| {
        format!("--net6 {s}: give a network with its prefix length, e.g. fd00::/64")
    })?;
    let addr: Ipv6Addr = a
        .parse()
        .map_err(|_| format!("--net6 {s}: '{a}' is not an IPv6 address; write e.g. fd00::/64"))?;
    let prefix: u8 = match p.parse() {
        Ok(n @ 8..=119) => n,
        _ => {
            return Err(format!(
                "--net6 {s}: the prefix length must be 8-119, so that the namespace's \
                 address (network + ::100) fits; write e.g. {a}/64"
            ))
        }
    };
    let mask = u128::MAX << (128 - prefix);
    let net = Ipv6Addr::from(u128::from(addr) & mask);
    if net != addr {
        return Err(format!(
            "--net6 {s}: give the network address, {net}/{prefix}, not an address inside it"
        ));
    }
    for (f, fp, what) in V6_FORBIDDEN {
        let m = u128::MAX << (128 - prefix.min(fp));
        if u128::from(net) & m == u128::from(f) & m {
            return Err(format!(
                "--net6 {s} overlaps {what}; pick a unique local range (RFC 4193), \
                 e.g. fd00::/64"
            ));
        }
    }
    Ok(NetLayout6::new(net, prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fwd(proto: Proto, host: &str, guest_port: u16) -> PortForward {
        PortForward {
            proto,
            host: host.parse().unwrap(),
            guest_port,
        }
    }

    #[test]
    fn spec_port_forward_forms() {
        let p = |s: &str| parse_port_forward(s).unwrap();
        assert_eq!(p("8080:80"), fwd(Proto::Tcp, "0.0.0.0:8080", 80));
        assert_eq!(p("8080:80/tcp"), fwd(Proto::Tcp, "0.0.0.0:8080", 80));
        assert_eq!(p("5353:53/udp"), fwd(Proto::Udp, "0.0.0.0:5353", 53));
        assert_eq!(p("5353:53/UDP"), fwd(Proto::Udp, "0.0.0.0:5353", 53));
        assert_eq!(
            p("127.0.0.1:8080:80"),
            fwd(Proto::Tcp, "127.0.0.1:8080", 80)
        );
        assert_eq!(p("[::1]:8080:80/udp"), fwd(Proto::Udp, "[::1]:8080", 80));
        assert_eq!(p("[::]:1:65535"), fwd(Proto::Tcp, "[::]:1", 65535));
        assert_eq!(p(" 8080:80 ").to_string(), "0.0.0.0:8080:80/tcp");
    }

    #[test]
    fn spec_port_forward_errors_say_what_to_write() {
        let e = |s: &str| parse_port_forward(s).unwrap_err();
        assert!(e("80").contains("-p 8080:80"), "{}", e("80"));
        assert!(e("8080:80/sctp").contains("/tcp or /udp"));
        assert!(e("::1:8080:80").contains("brackets"));
        assert!(e("[::1:8080:80").contains("[ADDR]:HOSTPORT:GUESTPORT"));
        assert!(e("[fe80::zz]:8080:80").contains("not an IPv6 address"));
        assert!(e("localhost:8080:80").contains("not an IPv4 address"));
        assert!(e("8000-8010:80").contains("ranges"));
        assert!(e("0:80").contains("not a host port"));
        assert!(e("8080:0").contains("not a namespace port"));
        assert!(e("8080:65536").contains("1-65535"));
        assert!(e("8080:").contains("namespace port"));
        assert!(e("[::1]:8080").contains("namespace port"));
    }

    #[test]
    fn spec_net_default_is_slirp4netns_layout() {
        let l = NetLayout::default();
        assert_eq!(l.net, (Ipv4Addr::new(10, 0, 2, 0), 24));
        assert_eq!(l.guest, Ipv4Addr::new(10, 0, 2, 100));
        assert_eq!(l.gateway, Ipv4Addr::new(10, 0, 2, 2));
        assert_eq!(l.dns, Ipv4Addr::new(10, 0, 2, 3));
        assert_eq!(parse_net("10.0.2.0/24"), Ok(l));
        assert_eq!(l.to_string(), "10.0.2.0/24");
    }

    #[test]
    fn spec_net_other_subnets() {
        let l = parse_net("192.0.2.0/24").unwrap();
        assert_eq!(l.guest, Ipv4Addr::new(192, 0, 2, 100));
        assert_eq!(l.gateway, Ipv4Addr::new(192, 0, 2, 2));
        assert_eq!(l.dns, Ipv4Addr::new(192, 0, 2, 3));
        // slirp4netns's own example: 10.0.135.128/25 puts the namespace at .228.
        let l = parse_net("10.0.135.128/25").unwrap();
        assert_eq!(l.guest, Ipv4Addr::new(10, 0, 135, 228));
        assert_eq!(l.gateway, Ipv4Addr::new(10, 0, 135, 130));
        let l = parse_net("10.0.0.0/8").unwrap();
        assert_eq!(l.guest, Ipv4Addr::new(10, 0, 0, 100));
    }

    #[test]
    fn spec_net_errors_say_what_to_write() {
        let e = |s: &str| parse_net(s).unwrap_err();
        assert!(e("10.0.2.0").contains("prefix length"));
        assert!(e("foo/24").contains("not an IPv4 address"));
        assert!(e("10.0.2.0/26").contains("1-25"));
        assert!(e("10.0.2.0/0").contains("1-25"));
        assert!(e("10.0.2.0/x").contains("1-25"));
        assert!(e("10.0.2.100/24").contains("10.0.2.0/24, not an address inside it"));
        assert!(e("127.0.0.0/16").contains("loopback"));
        assert!(e("0.0.0.0/8").contains("this network"));
        assert!(e("224.1.0.0/16").contains("multicast"));
        assert!(e("240.0.0.0/24").contains("multicast and reserved"));
        // A short prefix covering loopback is refused too.
        assert!(e("0.0.0.0/1").contains("0.0.0.0/8"));
    }

    #[test]
    fn spec_net6_default_is_slirp4netns_layout() {
        let l = NetLayout6::default();
        assert_eq!(l.net, ("fd00::".parse().unwrap(), 64));
        assert_eq!(l.guest, "fd00::100".parse::<Ipv6Addr>().unwrap());
        assert_eq!(l.gateway, "fd00::2".parse::<Ipv6Addr>().unwrap());
        assert_eq!(l.dns, "fd00::3".parse::<Ipv6Addr>().unwrap());
        assert_eq!(parse_net6("fd00::/64"), Ok(l));
        assert_eq!(l.to_string(), "fd00::/64");
        let l = parse_net6("2001:db8:1::/48").unwrap();
        assert_eq!(l.guest, "2001:db8:1::100".parse::<Ipv6Addr>().unwrap());
        let l = parse_net6("fd00:a1e1:1724:1a::/119").unwrap();
        assert_eq!(
            l.guest,
            "fd00:a1e1:1724:1a::100".parse::<Ipv6Addr>().unwrap()
        );
    }

    #[test]
    fn spec_net6_errors_say_what_to_write() {
        let e = |s: &str| parse_net6(s).unwrap_err();
        assert!(e("64").contains("prefix length"));
        assert!(e("fd00::2").contains("prefix length"));
        assert!(e("foo/64").contains("not an IPv6 address"));
        assert!(e("fd00::/129").contains("8-119"));
        assert!(e("fd00::/120").contains("8-119"));
        assert!(e("fd00::/7").contains("8-119"));
        assert!(e("fd00::1/64").contains("fd00::/64, not an address inside it"));
        assert!(e("::/8").contains("loopback"));
        assert!(e("fe80::/64").contains("link-local"));
        assert!(e("ff02::/16").contains("multicast"));
    }
}
