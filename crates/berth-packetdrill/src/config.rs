//! `--so_flags`: comma-separated `key=value` settings for one script run.

use std::net::Ipv4Addr;

/// Settings of one run. Defaults match packetdrill's own defaults, so a script
/// runs with no address flags at all: berth is 192.168.0.1/16 with gateway
/// 192.168.0.2 (packetdrill's --local_ip, --gateway_ip and netmask), and the
/// remote end is packetdrill's 192.0.2.1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub local: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
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
            local: Ipv4Addr::new(192, 168, 0, 1),
            prefix: 16,
            gateway: Ipv4Addr::new(192, 168, 0, 2),
            mtu: 1500,
            seed: 0,
            linux: true,
            wscale: None,
            deadline_secs: 300,
        }
    }
}

pub const USAGE: &str = "--so_flags takes comma-separated key=value pairs: \
    local=IPV4 (192.168.0.1), prefix=N (16), gateway=IPV4 (192.168.0.2), mtu=N (1500), \
    seed=N (0), profile=linux|berth (linux), wscale=0..14, deadline=SECONDS (300)";

impl Options {
    pub fn parse(flags: &str) -> Result<Options, String> {
        let mut o = Options::default();
        for item in flags.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (k, v) = item
                .split_once('=')
                .ok_or_else(|| format!("so_flags item {item:?} has no '='; {USAGE}"))?;
            let bad = |what: &str| format!("so_flags {k}={v}: {what}; {USAGE}");
            match k {
                "local" => o.local = v.parse().map_err(|_| bad("not an IPv4 address"))?,
                "gateway" => o.gateway = v.parse().map_err(|_| bad("not an IPv4 address"))?,
                "prefix" => {
                    o.prefix = v
                        .parse()
                        .ok()
                        .filter(|p| (1..=32).contains(p))
                        .ok_or_else(|| bad("give 1..=32"))?
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
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        assert_eq!(Options::parse("").unwrap(), Options::default());
        let o = Options::parse("local=192.168.0.2, gateway=192.168.0.1,wscale=7,profile=berth")
            .unwrap();
        assert_eq!(o.local, Ipv4Addr::new(192, 168, 0, 2));
        assert_eq!(o.gateway, Ipv4Addr::new(192, 168, 0, 1));
        assert_eq!((o.wscale, o.linux), (Some(7), false));
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
        ] {
            let e = Options::parse(bad).unwrap_err();
            assert!(e.contains("key=value"), "{bad}: {e}");
        }
    }
}
