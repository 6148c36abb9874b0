//! Parsers for flag values: percentages, durations, rates, addresses.

use berth_core::wire::{IpCidr, Ipv4Addr, Ipv4Cidr, Ipv6Addr, Ipv6Cidr};
use std::net::IpAddr;
use std::time::Duration;

/// `--addr`: an address and prefix of either family, e.g. 192.0.2.2/24 or
/// 2001:db8::2/64.
pub fn cidr(s: &str) -> Result<IpCidr, String> {
    s.trim().parse::<IpCidr>().map_err(|_| {
        format!("'{s}' is not an address with prefix; write e.g. 192.0.2.2/24 or 2001:db8::2/64")
    })
}

/// `--gateway`: an address of either family.
pub fn ip(s: &str) -> Result<IpAddr, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("'{s}' is not an IP address; write e.g. 192.0.2.1 or 2001:db8::1"))
}

/// The addresses of berth's interface on a device, from repeated `--addr` and
/// `--gateway` flags: one IPv4 address (every berth interface has one), any
/// number of IPv6 ones, at most one default gateway per family, each inside a
/// prefix of its family.
#[derive(Debug, Clone, PartialEq)]
pub struct HostAddrs {
    pub v4: Ipv4Cidr,
    pub v6: Vec<Ipv6Cidr>,
    pub gateway: Option<Ipv4Addr>,
    pub gateway6: Option<Ipv6Addr>,
}

impl HostAddrs {
    /// Check the flags; the error says what to give instead.
    pub fn from_flags(addrs: &[IpCidr], gateways: &[IpAddr]) -> Result<HostAddrs, String> {
        let mut v4: Option<Ipv4Cidr> = None;
        let mut v6: Vec<Ipv6Cidr> = Vec::new();
        for a in addrs {
            match *a {
                IpCidr::Ipv4(c) => {
                    if let Some(first) = v4 {
                        return Err(format!(
                            "--addr {first} and --addr {c}: a device takes one IPv4 address; \
                             keep one (IPv6 addresses may be given any number of times)"
                        ));
                    }
                    v4 = Some(c);
                }
                IpCidr::Ipv6(c) => {
                    if v6.iter().any(|x| x.address() == c.address()) {
                        return Err(format!("--addr {c} is given twice; give it once"));
                    }
                    v6.push(c);
                }
            }
        }
        let Some(v4) = v4 else {
            return Err(
                "give an IPv4 --addr too, e.g. --addr 192.0.2.2/24: every berth \
                        interface has one IPv4 address, and IPv6 ones beside it \
                        (--addr 2001:db8::2/64)"
                    .into(),
            );
        };
        let (mut gateway, mut gateway6) = (None, None);
        for &g in gateways {
            match g {
                IpAddr::V4(g) => {
                    if let Some(first) = gateway {
                        return Err(format!(
                            "--gateway {first} and --gateway {g}: one default gateway per \
                             family; keep one"
                        ));
                    }
                    if !v4.contains(g) || g == v4.address() {
                        return Err(format!(
                            "--gateway {g} is not a neighbour inside --addr {v4}; give the \
                             router's address in that prefix"
                        ));
                    }
                    gateway = Some(g);
                }
                IpAddr::V6(g) => {
                    if let Some(first) = gateway6 {
                        return Err(format!(
                            "--gateway {first} and --gateway {g}: one default gateway per \
                             family; keep one"
                        ));
                    }
                    // A link-local router (what RAs name) is on-link anyway.
                    let link_local = berth_core::wire::ipv6::is_link_local(&g);
                    if !link_local && !v6.iter().any(|c| c.contains(g) && c.address() != g) {
                        return Err(format!(
                            "--gateway {g} is not inside any IPv6 --addr prefix; add the \
                             prefix it is in (e.g. --addr 2001:db8::2/64 for 2001:db8::1), \
                             or learn the router from its advertisements with --autoconf"
                        ));
                    }
                    gateway6 = Some(g);
                }
            }
        }
        Ok(HostAddrs {
            v4,
            v6,
            gateway,
            gateway6,
        })
    }

    /// Every address, IPv4 first, as `ip addr` would list them.
    pub fn all(&self) -> Vec<IpCidr> {
        let mut v = vec![IpCidr::Ipv4(self.v4)];
        v.extend(self.v6.iter().map(|&c| IpCidr::Ipv6(c)));
        v
    }

    /// The device options for these addresses.
    #[cfg(target_os = "linux")]
    pub fn device_options(
        &self,
        name: &str,
        kind: berth::device::Kind,
    ) -> berth::device::DeviceOptions {
        let mut o = berth::device::DeviceOptions::new(name, kind, self.v4);
        o.ipv6 = self.v6.clone();
        o.gateway = self.gateway;
        o.gateway6 = self.gateway6;
        o
    }
}

/// `--backlog` of every command that listens (serve, sim transfer, sim echo):
/// one range and one message everywhere. The stack caps a listen backlog at
/// SOMAXCONN (4096, Linux's default net.core.somaxconn), so a larger value
/// would be silently cut; 0 is refused rather than read as 1 as Linux does.
pub fn backlog(s: &str) -> Result<usize, String> {
    let max = berth_core::tcp::SOMAXCONN;
    match s.trim().parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "'{s}' is not a listen backlog; give 1 to {max} (the accept queue length; \
             berth caps it at SOMAXCONN, {max}, as Linux does by default)"
        )),
    }
}

/// A percentage: "1%", "0.5%", or a bare number, which is percent too
/// ("0.5" is 0.5 %, not 50 %) → the probability 0.01, 0.005, 0.005 that
/// `LinkConfig` and `Impairments` take.
pub fn percent(s: &str) -> Result<f64, String> {
    let t = s.trim().trim_end_matches('%').trim_end();
    let v: f64 = t.parse().map_err(|_| {
        format!("'{s}' is not a percentage; write e.g. 1% or 0.5% (a bare number is percent too)")
    })?;
    if !(0.0..=100.0).contains(&v) {
        return Err(format!("'{s}' is outside 0%..100%"));
    }
    Ok(v / 100.0)
}

/// "20ms", "1s", "250us", "1.5s" (humantime syntax; a bare 0 is zero).
pub fn duration(s: &str) -> Result<Duration, String> {
    if s.trim() == "0" {
        return Ok(Duration::ZERO);
    }
    if let Some(secs) = s.strip_suffix('s').and_then(|n| n.parse::<f64>().ok()) {
        if secs.is_finite() && secs >= 0.0 {
            return Ok(Duration::from_secs_f64(secs));
        }
    }
    humantime::parse_duration(s)
        .map_err(|e| format!("'{s}' is not a duration ({e}); write e.g. 20ms, 1s or 250us"))
}

/// A rate in tc(8) units: bit, kbit, mbit, gbit (bits per second) and bps, kbps,
/// mbps, gbps (bytes per second), decimal multipliers; a bare number is bit/s.
pub fn rate(s: &str) -> Result<u64, String> {
    let t = s.trim().to_ascii_lowercase();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let v: f64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a rate; write e.g. 100mbit, 1gbit or 500kbit"))?;
    let mult = match unit {
        "" | "bit" => 1.0,
        "kbit" => 1e3,
        "mbit" => 1e6,
        "gbit" => 1e9,
        "bps" => 8.0,
        "kbps" => 8e3,
        "mbps" => 8e6,
        "gbps" => 8e9,
        _ => {
            return Err(format!(
                "unknown rate unit '{unit}' in '{s}'; use bit, kbit, mbit, gbit (bits/s) or bps, kbps, mbps, gbps (bytes/s)"
            ))
        }
    };
    let bps = v * mult;
    if !(1.0..=1e12).contains(&bps) {
        return Err(format!("rate '{s}' must be between 1 bit/s and 1 Tbit/s"));
    }
    Ok(bps as u64)
}

/// A byte count with optional k/m/g suffix (binary: KiB, MiB, GiB).
pub fn bytes(s: &str) -> Result<u64, String> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.trim_end_matches("ib").trim_end_matches('b');
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1u64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    let v: u64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a size; write e.g. 1500, 64k or 10m"))?;
    v.checked_mul(mult)
        .ok_or_else(|| format!("'{s}' is too large"))
}

/// Impairment flags shared by `berth sim …` (simulated links) and `berth impair`
/// (a real forwarder): both apply the simulator's semantics, documented in
/// `berth::sim`.
#[derive(clap::Args, Clone)]
pub struct ImpairmentFlags {
    /// Frame loss per direction in percent, e.g. 1% or 0.5% (a bare number is
    /// percent too: 0.5 is 0.5%, not 50%).
    #[arg(long, value_name = "PERCENT", value_parser = percent, default_value = "0%")]
    pub loss: f64,
    /// One-way delay, e.g. 20ms.
    #[arg(long, value_parser = duration, default_value = "0")]
    pub delay: Duration,
    /// Extra delay per frame, uniform in [0, jitter], e.g. 5ms.
    #[arg(long, value_parser = duration, default_value = "0")]
    pub jitter: Duration,
    /// Duplicated frames in percent, e.g. 1% (a bare number is percent too).
    #[arg(long, value_name = "PERCENT", value_parser = percent, default_value = "0%")]
    pub dup: f64,
    /// Frames held back by max(delay, 1ms) so later ones overtake them, in
    /// percent, e.g. 2% (a bare number is percent too).
    #[arg(long, value_name = "PERCENT", value_parser = percent, default_value = "0%")]
    pub reorder: f64,
    /// Bandwidth limit per direction, e.g. 100mbit (tc units).
    #[arg(long, value_parser = rate)]
    pub rate: Option<u64>,
    /// Queue in front of the rate limiter, e.g. 256k.
    #[arg(long, value_parser = bytes, default_value = "1m")]
    pub queue: u64,
    /// Seed for every random choice; the same seed makes the same choices.
    /// `sim` defaults to 1 (reproducible); `impair` on a real network draws one
    /// from the operating system unless given.
    #[arg(long)]
    pub seed: Option<u64>,
}

impl ImpairmentFlags {
    /// The seed of a simulation: given, or 1.
    pub fn sim_seed(&self) -> u64 {
        self.seed.unwrap_or(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backlog_takes_1_to_somaxconn() {
        assert_eq!(backlog("1"), Ok(1));
        assert_eq!(backlog(" 4096 "), Ok(4096));
        for bad in ["0", "4097", "70000", "-1", "lots", ""] {
            let e = backlog(bad).unwrap_err();
            assert!(e.contains("give 1 to 4096"), "{bad}: {e}");
        }
    }

    fn c(s: &str) -> IpCidr {
        cidr(s).unwrap()
    }

    fn g(s: &str) -> IpAddr {
        ip(s).unwrap()
    }

    #[test]
    fn host_addresses_of_both_families() {
        let h = HostAddrs::from_flags(
            &[
                c("192.0.2.2/24"),
                c("2001:db8::2/64"),
                c("2001:db8:1::2/64"),
            ],
            &[g("2001:db8::1"), g("192.0.2.1")],
        )
        .unwrap();
        assert_eq!(h.v4, "192.0.2.2/24".parse().unwrap());
        assert_eq!(h.v6.len(), 2);
        assert_eq!(h.gateway, Some(Ipv4Addr::new(192, 0, 2, 1)));
        assert_eq!(h.gateway6, Some("2001:db8::1".parse().unwrap()));
        assert_eq!(h.all()[1], c("2001:db8::2/64"));
        // One IPv4 address alone is as before.
        let h = HostAddrs::from_flags(&[c("192.0.2.2/24")], &[]).unwrap();
        assert!(h.v6.is_empty() && h.gateway.is_none() && h.gateway6.is_none());
    }

    #[test]
    fn bad_host_addresses_say_what_to_do() {
        let err = |a: &[&str], gw: &[&str]| {
            let a: Vec<IpCidr> = a.iter().map(|s| c(s)).collect();
            let gw: Vec<IpAddr> = gw.iter().map(|s| g(s)).collect();
            HostAddrs::from_flags(&a, &gw).unwrap_err()
        };
        assert!(err(&["2001:db8::2/64"], &[]).contains("--addr 192.0.2.2/24"));
        assert!(err(&["192.0.2.2/24", "198.51.100.2/24"], &[]).contains("keep one"));
        assert!(err(&["192.0.2.2/24", "2001:db8::2/64", "2001:db8::2/64"], &[]).contains("twice"));
        assert!(err(&["192.0.2.2/24"], &["192.0.2.1", "192.0.2.3"])
            .contains("one default gateway per family"));
        assert!(err(&["192.0.2.2/24"], &["198.51.100.1"]).contains("inside --addr 192.0.2.2/24"));
        assert!(err(&["192.0.2.2/24"], &["2001:db8::1"]).contains("--autoconf"));
        assert!(err(&["192.0.2.2/24", "2001:db8::2/64"], &["2001:db8:5::1"])
            .contains("not inside any IPv6 --addr prefix"));
        // A link-local router needs no prefix of its own.
        let a = [c("192.0.2.2/24"), c("2001:db8::2/64")];
        let ok = HostAddrs::from_flags(&a, &[g("fe80::1")]).unwrap();
        assert_eq!(ok.gateway6, Some("fe80::1".parse().unwrap()));
        assert!(cidr("2001:db8::2").unwrap_err().contains("2001:db8::2/64"));
        assert!(cidr("192.0.2.2/33").is_err());
        assert!(ip("fe80::1%eth0").unwrap_err().contains("e.g."));
    }

    #[test]
    fn percentages() {
        assert_eq!(percent("1%").unwrap(), 0.01);
        assert_eq!(percent("0.5%").unwrap(), 0.005);
        assert_eq!(percent("2").unwrap(), 0.02);
        // A bare number is percent, never a probability.
        assert_eq!(percent("0.5").unwrap(), 0.005);
        assert_eq!(percent(" 0.5 % ").unwrap(), 0.005);
        assert!(percent("101%").is_err());
        assert!(percent("-1%").is_err());
        assert!(percent("lots").unwrap_err().contains("e.g. 1%"));
    }

    #[test]
    fn durations() {
        assert_eq!(duration("20ms").unwrap(), Duration::from_millis(20));
        assert_eq!(duration("1s").unwrap(), Duration::from_secs(1));
        assert_eq!(duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(duration("250us").unwrap(), Duration::from_micros(250));
        assert_eq!(duration("0").unwrap(), Duration::ZERO);
        assert!(duration("20").unwrap_err().contains("20ms"));
    }

    #[test]
    fn rates() {
        assert_eq!(rate("100mbit").unwrap(), 100_000_000);
        assert_eq!(rate("1gbit").unwrap(), 1_000_000_000);
        assert_eq!(rate("1.5Mbit").unwrap(), 1_500_000);
        assert_eq!(rate("10mbps").unwrap(), 80_000_000);
        assert_eq!(rate("9600").unwrap(), 9600);
        assert!(rate("10furlongs")
            .unwrap_err()
            .contains("unknown rate unit"));
        assert!(rate("0mbit").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(bytes("1500").unwrap(), 1500);
        assert_eq!(bytes("64k").unwrap(), 65536);
        assert_eq!(bytes("10MiB").unwrap(), 10 << 20);
        assert!(bytes("x").is_err());
    }
}
