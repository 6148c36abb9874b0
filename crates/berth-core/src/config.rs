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
    pub icmp_burst: u32,
    /// TTL for packets the stack originates (Linux ip_default_ttl 64).
    pub default_ttl: u8,
    /// Default receive-queue bytes per UDP or raw socket (Linux rmem_default 212992).
    pub socket_recv_buffer: usize,
    /// Give up on a partially reassembled datagram after this long (Linux ipfrag_time 30 s).
    pub reassembly_timeout: Duration,
    /// Memory for all partial datagrams together (Linux ipfrag_high_thresh 4 MiB).
    pub reassembly_mem: usize,
    /// ARP: retransmit an unanswered request after this long, this many times.
    pub arp_retry_interval: Duration,
    pub arp_retries: u32,
    /// How long a resolved neighbour stays valid (Linux base_reachable_time ≈ 30 s;
    /// gc_stale_time 60 s).
    pub arp_reachable_time: Duration,
    /// Packets kept while a neighbour is being resolved (Linux unres_qlen: 101, the
    /// frames that fit unres_qlen_bytes). Enough for a fragmented 64 KiB datagram.
    pub arp_queue_len: usize,
    /// Most neighbour entries kept (Linux gc_thresh3 1024).
    pub arp_cache_size: usize,
    /// TCP settings.
    pub tcp: crate::tcp::TcpConfig,
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
            arp_queue_len: 101,
            arp_cache_size: 1024,
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
    pub medium: Medium,
    pub address: Ipv4Cidr,
    pub mtu: usize,
}
