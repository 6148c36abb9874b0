//! The settings of one script run: packetdrill's own address flags
//! (`--ip_version`, `--local_ip`, `--gateway_ip`, `--netmask_ip`,
//! `--remote_ip`, `--mtu`, read from packetdrill's command line) and
//! `--so_flags`, comma-separated `key=value` pairs that override them.
//!
//! packetdrill hands a shared object only its `--so_flags` string, yet the
//! addresses berth's interface must have are the ones packetdrill puts in its
//! packets. So when the process is packetdrill in shared-object mode (its
//! command line has `--so_filename`), [`Options::from_packetdrill`] reads those
//! flags from it; `--so_flags` can still set every one of them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// packetdrill's `--ip_version`: the family of the script's sockets and of the
/// packets on the wire (packetdrill's config.c, "flavor" table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpVersion {
    /// AF_INET sockets, IPv4 packets.
    V4,
    /// AF_INET6 sockets bound to and connecting to IPv4-mapped addresses
    /// (`::ffff:192.0.2.1`), IPv4 packets.
    V4MappedV6,
    /// AF_INET6 sockets, IPv6 packets.
    V6,
}

impl IpVersion {
    pub fn parse(s: &str) -> Option<IpVersion> {
        match s {
            "ipv4" => Some(IpVersion::V4),
            "ipv4-mapped-ipv6" => Some(IpVersion::V4MappedV6),
            "ipv6" => Some(IpVersion::V6),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            IpVersion::V4 => "ipv4",
            IpVersion::V4MappedV6 => "ipv4-mapped-ipv6",
            IpVersion::V6 => "ipv6",
        }
    }

    /// Whether packets on the wire are IPv6.
    pub fn wire_v6(self) -> bool {
        self == IpVersion::V6
    }
}

/// packetdrill's IPv4 defaults (config.c): local in 192.168.0.0/16 (packetdrill
/// draws it at random unless given; berth takes .1), remote 192.0.2.1.
pub const V4_LOCAL: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 1);
pub const V4_GATEWAY: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 2);
pub const V4_PREFIX: u8 = 16;
pub const V4_REMOTE: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// packetdrill's IPv6 defaults (config.c): local in the ULA fd3d:fa7b:d17d::/48
/// (random unless given; berth takes ::1), gateway fd3d:fa7b:d17d:8888::,
/// remote 2001:db8::1. The prefix length is fixed at 48 (no flag sets it).
pub const V6_LOCAL: Ipv6Addr = Ipv6Addr::new(0xfd3d, 0xfa7b, 0xd17d, 0, 0, 0, 0, 1);
pub const V6_GATEWAY: Ipv6Addr = Ipv6Addr::new(0xfd3d, 0xfa7b, 0xd17d, 0x8888, 0, 0, 0, 0);
pub const V6_PREFIX: u8 = 48;
pub const V6_REMOTE: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);

/// Settings of one run. The defaults are packetdrill's, so a script runs with
/// no address flags at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub ip_version: IpVersion,
    /// berth's address: IPv4 unless `ip_version` is ipv6.
    pub local: IpAddr,
    pub prefix: u8,
    pub gateway: IpAddr,
    /// packetdrill's side (only checked for its family: berth routes every
    /// remote address through the gateway).
    pub remote: IpAddr,
    pub mtu: usize,
    pub seed: u64,
    /// TcpConfig::linux() (default) or berth's own defaults.
    pub linux: bool,
    pub wscale: Option<u8>,
    /// Virtual seconds netdev_receive waits for an expected packet.
    pub deadline_secs: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            ip_version: IpVersion::V4,
            local: V4_LOCAL.into(),
            prefix: V4_PREFIX,
            gateway: V4_GATEWAY.into(),
            remote: V4_REMOTE.into(),
            mtu: 1500,
            seed: 0,
            linux: true,
            wscale: None,
            deadline_secs: 300,
        }
    }
}

pub const USAGE: &str = "--so_flags takes comma-separated key=value pairs: \
    ip_version=ipv4|ipv6|ipv4-mapped-ipv6 (ipv4), \
    local=ADDR (192.168.0.1; ipv6: fd3d:fa7b:d17d::1), \
    prefix=N (16; ipv6: 48) or netmask=A.B.C.D, \
    gateway=ADDR (192.168.0.2; ipv6: fd3d:fa7b:d17d:8888::), \
    remote=ADDR (192.0.2.1; ipv6: 2001:db8::1), mtu=N (1500), \
    seed=N (0), profile=linux|berth (linux), wscale=0..14, deadline=SECONDS (300); \
    local_ip, gateway_ip, netmask_ip and remote_ip are packetdrill's names for the same";

/// Where a setting came from, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    SoFlags,
    Command,
}

/// The address settings before the mode's defaults fill the gaps.
#[derive(Default)]
struct Given {
    ip_version: Option<IpVersion>,
    local: Option<(IpAddr, Source)>,
    gateway: Option<(IpAddr, Source)>,
    remote: Option<(IpAddr, Source)>,
    prefix: Option<u8>,
    netmask: Option<Ipv4Addr>,
}

fn say(src: Source, k: &str, v: &str) -> String {
    match src {
        Source::SoFlags => format!("so_flags {k}={v}"),
        Source::Command => format!("packetdrill's --{k}={v}"),
    }
}

fn addr(src: Source, k: &str, v: &str) -> Result<(IpAddr, Source), String> {
    v.parse::<IpAddr>()
        .map(|a| (a, src))
        .map_err(|_| format!("{}: not an IPv4 or IPv6 address; {USAGE}", say(src, k, v)))
}

/// The prefix length of a contiguous IPv4 netmask.
fn netmask_prefix(m: Ipv4Addr) -> Option<u8> {
    let bits = u32::from(m);
    let n = bits.leading_ones();
    (bits.checked_shl(n).unwrap_or(0) == 0).then_some(n as u8)
}

impl Options {
    /// `--so_flags` alone (packetdrill's command line not consulted).
    pub fn parse(flags: &str) -> Result<Options, String> {
        Options::build(&[], flags)
    }

    /// The settings for a run inside packetdrill: packetdrill's address flags
    /// from `args` (its argv, when it runs with `--so_filename`), overridden
    /// by `--so_flags`.
    pub fn from_packetdrill(args: &[String], flags: &str) -> Result<Options, String> {
        let pd = packetdrill_flags(args);
        Options::build(&pd, flags)
    }

    fn build(command: &[(String, String)], flags: &str) -> Result<Options, String> {
        let mut o = Options::default();
        let mut g = Given::default();
        let from_packetdrill = !command.is_empty();
        for (k, v) in command {
            g.set(Source::Command, k, v, &mut o)?;
        }
        for item in flags.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (k, v) = item
                .split_once('=')
                .ok_or_else(|| format!("so_flags item {item:?} has no '='; {USAGE}"))?;
            g.set(Source::SoFlags, k.trim(), v.trim(), &mut o)?;
        }
        g.resolve(&mut o, from_packetdrill)?;
        Ok(o)
    }
}

impl Given {
    fn set(&mut self, src: Source, k: &str, v: &str, o: &mut Options) -> Result<(), String> {
        let bad = |what: &str| format!("{}: {what}; {USAGE}", say(src, k, v));
        match k {
            "ip_version" => {
                self.ip_version = Some(
                    IpVersion::parse(v)
                        .ok_or_else(|| bad("give ipv4, ipv6 or ipv4-mapped-ipv6"))?,
                )
            }
            "local" | "local_ip" => self.local = Some(addr(src, k, v)?),
            "gateway" | "gateway_ip" => self.gateway = Some(addr(src, k, v)?),
            // packetdrill accepts a prefix here (192.0.2.1/24): the address is
            // what matters to berth.
            "remote" | "remote_ip" => {
                let a = v.split_once('/').map_or(v, |(a, _)| a);
                self.remote = Some(addr(src, k, a)?)
            }
            "netmask" | "netmask_ip" => {
                let m: Ipv4Addr = v.parse().map_err(|_| bad("not an IPv4 netmask"))?;
                netmask_prefix(m).ok_or_else(|| bad("not a contiguous netmask"))?;
                self.netmask = Some(m)
            }
            "prefix" => {
                self.prefix = Some(
                    v.parse()
                        .ok()
                        .filter(|p| (1..=128).contains(p))
                        .ok_or_else(|| bad("give 1..=32 (IPv4) or 1..=128 (IPv6)"))?,
                )
            }
            "mtu" => {
                o.mtu = v
                    .parse()
                    .ok()
                    .filter(|m| (576..=65_535).contains(m))
                    .ok_or_else(|| bad("give 576..=65535"))?
            }
            "seed" => o.seed = v.parse().map_err(|_| bad("not a number"))?,
            "profile" => {
                o.linux = match v {
                    "linux" => true,
                    "berth" => false,
                    _ => return Err(bad("give linux or berth")),
                }
            }
            "wscale" => {
                o.wscale = Some(
                    v.parse()
                        .ok()
                        .filter(|w| *w <= 14)
                        .ok_or_else(|| bad("give 0..=14"))?,
                )
            }
            "deadline" => {
                o.deadline_secs = v
                    .parse()
                    .ok()
                    .filter(|d| *d > 0)
                    .ok_or_else(|| bad("give a positive number of seconds"))?
            }
            _ => return Err(format!("unknown so_flags key {k:?}; {USAGE}")),
        }
        Ok(())
    }

    /// Fill the gaps with the mode's defaults and check that every address is
    /// of the mode's family.
    fn resolve(self, o: &mut Options, from_packetdrill: bool) -> Result<(), String> {
        let v = self.ip_version.unwrap_or(IpVersion::V4);
        o.ip_version = v;
        let v6 = v.wire_v6();
        if from_packetdrill && self.local.is_none() {
            // packetdrill draws a random local address when --local_ip is not
            // given, and never tells the shared object which.
            let (d, net) = if v6 {
                (IpAddr::from(V6_LOCAL), "fd3d:fa7b:d17d::/48")
            } else {
                (IpAddr::from(V4_LOCAL), "192.168.0.0/16")
            };
            return Err(format!(
                "packetdrill runs without --local_ip, so it picks a random address in {net} \
                 that berth cannot know: pass --local_ip (berth's default is {d})"
            ));
        }
        let family = |what: &str, given: Option<(IpAddr, Source)>, default: IpAddr| {
            let Some((a, src)) = given else {
                return Ok(default);
            };
            if a.is_ipv6() == v6 {
                return Ok(a);
            }
            let how = match src {
                Source::SoFlags => "so_flags",
                Source::Command => "packetdrill's command line",
            };
            Err(format!(
                "{what} {a} ({how}) is {} but --ip_version={} needs {}: \
                 give an {} address or another ip_version",
                if a.is_ipv6() { "IPv6" } else { "IPv4" },
                v.name(),
                if v6 { "IPv6" } else { "IPv4" },
                if v6 { "IPv6" } else { "IPv4" },
            ))
        };
        let (local, gateway, remote, prefix) = if v6 {
            (
                V6_LOCAL.into(),
                V6_GATEWAY.into(),
                V6_REMOTE.into(),
                V6_PREFIX,
            )
        } else {
            (
                V4_LOCAL.into(),
                V4_GATEWAY.into(),
                V4_REMOTE.into(),
                V4_PREFIX,
            )
        };
        o.local = family("local address", self.local, local)?;
        o.gateway = family("gateway", self.gateway, gateway)?;
        o.remote = family("remote address", self.remote, remote)?;
        // packetdrill ignores --netmask_ip for IPv6 (its prefix is always /48).
        let from_mask = self.netmask.filter(|_| !v6).and_then(netmask_prefix);
        o.prefix = self.prefix.or(from_mask).unwrap_or(prefix);
        let max = if v6 { 128 } else { 32 };
        if o.prefix > max {
            return Err(format!(
                "prefix /{} is too long for an {} address (at most /{max}); {USAGE}",
                o.prefix,
                if v6 { "IPv6" } else { "IPv4" }
            ));
        }
        Ok(())
    }
}

/// The flags packetdrill's getopt_long would read from `args` (its argv,
/// program name first) that concern addresses: `--name=value` or
/// `--name value`. Empty unless `args` is a packetdrill run in shared-object
/// mode (`--so_filename` present).
pub fn packetdrill_flags(args: &[String]) -> Vec<(String, String)> {
    const NAMES: [&str; 6] = [
        "ip_version",
        "local_ip",
        "gateway_ip",
        "netmask_ip",
        "remote_ip",
        "mtu",
    ];
    let so_mode = args
        .iter()
        .skip(1)
        .any(|a| a == "--so_filename" || a.starts_with("--so_filename="));
    if !so_mode {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        let Some(opt) = a.strip_prefix("--") else {
            continue;
        };
        let (name, value) = match opt.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (opt, None),
        };
        if !NAMES.contains(&name) {
            continue;
        }
        let value = match value {
            Some(v) => v,
            None => match it.next() {
                Some(v) => v.clone(),
                None => break,
            },
        };
        out.push((name.to_string(), value));
    }
    out
}

/// This process's argv, as the kernel has it (packetdrill's, when it loaded us).
pub fn own_args() -> Vec<String> {
    std::fs::read("/proc/self/cmdline")
        .map(|b| {
            b.split(|&c| c == 0)
                .filter(|s| !s.is_empty())
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn defaults_and_overrides() {
        assert_eq!(Options::parse("").unwrap(), Options::default());
        let o = Options::parse("local=192.168.0.2, gateway=192.168.0.1,wscale=7,profile=berth")
            .unwrap();
        assert_eq!(o.local, IpAddr::from(Ipv4Addr::new(192, 168, 0, 2)));
        assert_eq!(o.gateway, IpAddr::from(Ipv4Addr::new(192, 168, 0, 1)));
        assert_eq!((o.wscale, o.linux), (Some(7), false));
    }

    #[test]
    fn each_mode_has_packetdrills_defaults() {
        let v6 = Options::parse("ip_version=ipv6").unwrap();
        assert_eq!(v6.ip_version, IpVersion::V6);
        assert_eq!(
            (v6.local, v6.gateway, v6.remote, v6.prefix),
            (
                V6_LOCAL.into(),
                V6_GATEWAY.into(),
                V6_REMOTE.into(),
                V6_PREFIX
            )
        );
        let m = Options::parse("ip_version=ipv4-mapped-ipv6").unwrap();
        assert_eq!(m.ip_version, IpVersion::V4MappedV6);
        assert_eq!((m.local, m.prefix), (V4_LOCAL.into(), 16));
        let o = Options::parse("ip_version=ipv6,local_ip=fd3d:a0b:17d6::1,prefix=64").unwrap();
        assert_eq!(o.local, "fd3d:a0b:17d6::1".parse::<IpAddr>().unwrap());
        assert_eq!(o.prefix, 64);
        let o = Options::parse("netmask_ip=255.255.255.0,remote_ip=192.0.2.1/24").unwrap();
        assert_eq!((o.prefix, o.remote), (24, V4_REMOTE.into()));
    }

    #[test]
    fn packetdrill_command_lines_of_run_all() {
        let v4 = "packetdrill --so_filename=/x.so --so_flags= --ip_version=ipv4 \
                  --local_ip=192.168.0.1 --gateway_ip=192.168.0.1 --netmask_ip=255.255.0.0 \
                  --remote_ip=192.0.2.1 -D TFO_COOKIE=3021b9d889017eeb s.pkt";
        let o = Options::from_packetdrill(&args(v4), "").unwrap();
        assert_eq!(
            (o.ip_version, o.local, o.gateway, o.prefix),
            (IpVersion::V4, V4_LOCAL.into(), V4_LOCAL.into(), 16)
        );
        let v6 = "packetdrill --so_filename /x.so --ip_version=ipv6 --mtu=1520 \
                  --local_ip=fd3d:0a0b:17d6::1 --gateway_ip=fd3d:0a0b:17d6:8888::1 \
                  --remote_ip=fd3d:fa7b:d17d::1 s.pkt";
        let o = Options::from_packetdrill(&args(v6), "seed=3").unwrap();
        assert_eq!(o.ip_version, IpVersion::V6);
        assert_eq!(o.local, "fd3d:a0b:17d6::1".parse::<IpAddr>().unwrap());
        assert_eq!(
            o.gateway,
            "fd3d:a0b:17d6:8888::1".parse::<IpAddr>().unwrap()
        );
        assert_eq!((o.mtu, o.prefix, o.seed), (1520, 48, 3));
        // so_flags win over the command line.
        let o = Options::from_packetdrill(&args(v6), "mtu=1500").unwrap();
        assert_eq!(o.mtu, 1500);
        // Not packetdrill in shared-object mode: the command line is not ours.
        assert!(packetdrill_flags(&args("cargo-test --local_ip=1.2.3.4")).is_empty());
    }

    #[test]
    fn a_random_local_address_is_refused() {
        let e = Options::from_packetdrill(&args("pd --so_filename=x --ip_version=ipv6 s"), "")
            .unwrap_err();
        assert!(
            e.contains("--local_ip") && e.contains("fd3d:fa7b:d17d::1"),
            "{e}"
        );
        // … unless so_flags names it.
        let o = Options::from_packetdrill(
            &args("pd --so_filename=x --ip_version=ipv6 s"),
            "local=fd3d:fa7b:d17d::7",
        )
        .unwrap();
        assert_eq!(o.local, "fd3d:fa7b:d17d::7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn bad_flags_say_what_to_write() {
        for bad in [
            "local",
            "local=1.2.3",
            "mtu=10",
            "wscale=15",
            "colour=red",
            "deadline=0",
            "ip_version=ipv5",
            "netmask=255.0.255.0",
            "prefix=0",
        ] {
            let e = Options::parse(bad).unwrap_err();
            assert!(e.contains("key=value"), "{bad}: {e}");
        }
        for (bad, want) in [
            ("local=fd3d::1", "needs IPv4"),
            ("ip_version=ipv6,gateway=192.168.0.2", "needs IPv6"),
            (
                "ip_version=ipv4-mapped-ipv6,local=::ffff:192.168.0.1",
                "needs IPv4",
            ),
            ("prefix=64", "too long"),
        ] {
            let e = Options::parse(bad).unwrap_err();
            assert!(e.contains(want), "{bad}: {e}");
        }
    }
}
