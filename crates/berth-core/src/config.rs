//! Stack and interface configuration.

use crate::time::Duration;
use berth_wire::{EthernetAddress, Ipv4Cidr};
use std::ops::RangeInclusive;

/// Stack-wide settings. `Default` follows Linux defaults where one exists.
#[derive(Debug, Clone)]
pub struct Config {
    /// Seed for every random choice: the ISN secret (RFC 6528), timestamp
    /// offsets, ephemeral ports (RFC 6056), IP identification. The same seed and
    /// the same inputs give the same outputs. `None` (the default): the runtime
    /// (`berth::Stack::new`) draws one from the operating system, so a stack on a
    /// real device is unpredictable; the sans-IO core itself, which reads no
    /// random source, then uses 0.
    pub seed: Option<u64>,
    /// Ephemeral port range; RFC 6056 recommends 49152–65535 (IANA dynamic ports).
    pub ephemeral_ports: RangeInclusive<u16>,
    /// Answer ICMP echo requests automatically (Linux: net.ipv4.icmp_echo_ignore_all=0).
    pub icmp_echo_reply: bool,
    /// ICMP error rate limit: tokens per second and burst (Linux icmp_msgs_per_sec /
    /// icmp_msgs_burst: 1000 and 50).
    pub icmp_rate_per_sec: u32,
    /// ICMP error burst (see `icmp_rate_per_sec`).
    pub icmp_burst: u32,
    /// TTL for packets the stack originates (Linux ip_default_ttl 64).
    pub default_ttl: u8,
    /// Default receive-queue bytes per UDP or raw socket (Linux rmem_default 212992).
    pub socket_recv_buffer: usize,
    /// Give up on a partially reassembled datagram after this long (Linux ipfrag_time 30 s).
    pub reassembly_timeout: Duration,
    /// Memory for all partial datagrams together (Linux ipfrag_high_thresh 4 MiB).
    pub reassembly_mem: usize,
    /// ARP: retransmit an unanswered request after this long, this many times
    /// (RetransTimer; the neighbour cache sends 1 + `arp_retries` broadcasts).
    pub arp_retry_interval: Duration,
    /// ARP request retransmissions (see `arp_retry_interval`).
    pub arp_retries: u32,
    /// How long a confirmed neighbour stays REACHABLE (BaseReachableTime, RFC 4861
    /// §6.3.2; Linux base_reachable_time ≈ 30 s, gc_stale_time 60 s).
    pub arp_reachable_time: Duration,
    /// Draw each entry's reachable time from 0.5–1.5 × `arp_reachable_time`
    /// (RFC 4861 §6.3.2, Linux). Default `false`: exactly `arp_reachable_time`.
    pub arp_reachable_random: bool,
    /// Unicast ARP requests probing a STALE neighbour before it is FAILED (NUD,
    /// RFC 4861 §7.3.3; Linux ucast_probes 3). Default 0: no probing; a neighbour
    /// not confirmed within its reachable time is resolved afresh by broadcast
    /// when next used (RFC 1122 §2.3.2.1 "timeout").
    pub arp_ucast_probes: u32,
    /// Wait in DELAY before the first unicast probe (DELAY_FIRST_PROBE_TIME 5 s,
    /// Linux delay_first_probe_time).
    pub arp_delay_first_probe: Duration,
    /// Every ARP packet from a neighbour (request, gratuitous ARP, broadcast
    /// reply) confirms it REACHABLE, as RFC 826's merge refreshes the entry.
    /// `false` (Linux): only a unicast reply confirms; the others record the
    /// address as STALE.
    pub arp_merge_confirms: bool,
    /// Packets kept while a neighbour is being resolved (Linux unres_qlen: 101, the
    /// frames that fit unres_qlen_bytes). Enough for a fragmented 64 KiB datagram.
    pub arp_queue_len: usize,
    /// Most neighbour entries kept (Linux gc_thresh3 1024).
    pub arp_cache_size: usize,
    /// Neighbor solicitations sent for Duplicate Address Detection of each
    /// IPv6 address on Ethernet (RFC 4862 §5.1 DupAddrDetectTransmits; Linux
    /// dad_transmits 1). 0 turns DAD off: addresses are usable at once.
    pub dad_transmits: u32,
    /// Stack-wide TCP memory, pages of [`PAGE_SIZE`] (Linux net.ipv4.tcp_mem):
    /// receive queues, out-of-order data and send buffers of every connection,
    /// accepted or waiting in an accept queue. See [`MemLimits`].
    pub tcp_mem: MemLimits,
    /// Stack-wide datagram memory, pages (Linux net.ipv4.udp_mem): the receive
    /// queues of UDP sockets and, in berth, raw sockets too (Linux leaves raw
    /// sockets unaccounted; berth bounds every queue).
    pub udp_mem: MemLimits,
    /// A learnt path MTU is forgotten after this long (RFC 8201 §4: at least
    /// 5 minutes; Linux ip_rt_mtu_expires 10 minutes).
    pub pmtu_expires: Duration,
    /// Most destinations with a learnt path MTU; the oldest is evicted.
    pub pmtu_cache_size: usize,
    /// TCP settings.
    pub tcp: crate::tcp::TcpConfig,
}

/// Size of the page the memory limits count in (Linux's PAGE_SIZE on x86-64).
pub const PAGE_SIZE: usize = 4096;

/// Memory limits in pages, as the three numbers of Linux's tcp_mem / udp_mem.
///
/// Above `pressure` the stack enters memory pressure and leaves it only below
/// `low` (Linux tcp_enter_memory_pressure / tcp_leave_memory_pressure); above
/// `high` nothing new is allocated: data is dropped and counted, send() returns
/// WouldBlock. Linux sizes these from RAM (tcp_mem ≈ 1/16, 1/12, 1/8 of free
/// buffer pages); a user-space stack lives in one process among others, so
/// berth's defaults are fixed and modest (see [`MemLimits::TCP_DEFAULT`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemLimits {
    /// Below this, no pressure (`tcp_mem[0]`), in bytes.
    pub low: usize,
    /// Above this, memory pressure: buffers shrink (`tcp_mem[1]`), in bytes.
    pub pressure: usize,
    /// Hard limit: sends and receives beyond it are refused (`tcp_mem[2]`), in bytes.
    pub high: usize,
}

impl MemLimits {
    /// 96 / 128 / 192 MiB: a dozen bulk connections at full autotuned buffers
    /// (rmem_max 6 MiB + wmem_max 8 MiB) before pressure, thousands of idle ones.
    pub const TCP_DEFAULT: MemLimits = MemLimits {
        low: 24_576,
        pressure: 32_768,
        high: 49_152,
    };
    /// 96 / 128 / 192 MiB of datagram queues: about 900 sockets with full
    /// default (212,992-byte) queues.
    pub const UDP_DEFAULT: MemLimits = MemLimits {
        low: 24_576,
        pressure: 32_768,
        high: 49_152,
    };

    /// Limits from pages; they must rise: 0 < low ≤ pressure ≤ high.
    pub fn new(low: usize, pressure: usize, high: usize) -> Result<MemLimits, String> {
        if low == 0 || low > pressure || pressure > high {
            return Err(format!(
                "memory limits {low},{pressure},{high} must satisfy 0 < low <= pressure <= high (pages of {PAGE_SIZE} bytes)"
            ));
        }
        Ok(MemLimits {
            low,
            pressure,
            high,
        })
    }

    /// `high` in bytes.
    pub fn high_bytes(&self) -> usize {
        self.high.saturating_mul(PAGE_SIZE)
    }
}

impl std::str::FromStr for MemLimits {
    type Err = String;
    /// "LOW,PRESSURE,HIGH" in pages, as `sysctl net.ipv4.tcp_mem` takes them
    /// (spaces or commas between the numbers).
    fn from_str(s: &str) -> Result<MemLimits, String> {
        let parts: Vec<&str> = s
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|p| !p.is_empty())
            .collect();
        let [low, pressure, high] = parts.as_slice() else {
            return Err(format!(
                "'{s}': give three page counts LOW,PRESSURE,HIGH, e.g. 24576,32768,49152"
            ));
        };
        let num = |p: &str| {
            p.parse::<usize>()
                .map_err(|_| format!("'{p}' in '{s}' is not a page count (a whole number)"))
        };
        MemLimits::new(num(low)?, num(pressure)?, num(high)?)
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            seed: None,
            ephemeral_ports: 49152..=65535,
            icmp_echo_reply: true,
            icmp_rate_per_sec: 1000,
            icmp_burst: 50,
            default_ttl: 64,
            socket_recv_buffer: 212_992,
            reassembly_timeout: Duration::from_secs(30),
            reassembly_mem: 4 << 20,
            arp_retry_interval: Duration::from_secs(1),
            arp_retries: 3,
            arp_reachable_time: Duration::from_secs(60),
            arp_reachable_random: false,
            arp_ucast_probes: 0,
            arp_delay_first_probe: Duration::from_secs(5),
            arp_merge_confirms: true,
            arp_queue_len: 101,
            arp_cache_size: 1024,
            dad_transmits: 1,
            pmtu_expires: Duration::from_secs(600),
            pmtu_cache_size: 1024,
            tcp_mem: MemLimits::TCP_DEFAULT,
            udp_mem: MemLimits::UDP_DEFAULT,
            tcp: crate::tcp::TcpConfig::default(),
        }
    }
}

/// What an interface carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Medium {
    /// Ethernet II frames with ARP (a TAP device, a simulated switch).
    Ethernet(EthernetAddress),
    /// Bare IPv4 packets (a TUN device, a point-to-point link).
    Ip,
}

/// One interface: its medium, address/prefix and MTU (IP packet size, link header
/// excluded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IfaceConfig {
    /// Link type: bare IP packets or Ethernet frames.
    pub medium: Medium,
    /// The interface's IPv4 address and prefix.
    pub address: Ipv4Cidr,
    /// IP MTU of the link.
    pub mtu: usize,
}
