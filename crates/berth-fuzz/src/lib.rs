//! Whole-stack fuzz harness for berth-core (issue 11, item 5).
//!
//! [`run`] reads its input as a sequence of operations on one [`Stack`]: frames
//! the harness builds with berth-wire (correct checksums, sequence numbers near
//! what a connection expects, so the fuzzer reaches deep TCP code), raw bytes,
//! time steps and socket calls. After every operation it drains the stack's
//! output, playing the peers' part where needed (answering ARP, learning the
//! sequence numbers the stack uses), and checks
//! [`Stack::check_invariants`]. At the end the stack must still answer a ping.
//! Any violation panics, which is what libFuzzer (and `cargo test`) report.
//!
//! Both families: the stack has 192.0.2.1/24 and 2001:db8::1/64 (and its
//! link-local address), the start state has connections of each, and a mode
//! the input toggles makes the frame builders and socket calls use IPv6
//! (neighbour discovery, ICMPv6 errors and NDP messages, fragment headers, raw
//! IPv6 packets with extension headers: see `v6.rs`). The harness answers the
//! stack's neighbour solicitations as it answers ARP and learns from its IPv6
//! output as from its IPv4 output.
//!
//! The same function serves the cargo-fuzz targets `stack_ethernet` and
//! `stack_ip` (in `fuzz/`) and the regression test over the committed corpus
//! (`tests/corpus.rs`).

use berth_core::{
    Config, CongestionAlgorithm, IfaceConfig, IfaceId, Instant, Medium as CoreMedium, MemLimits,
    SocketHandle, Stack, SynCookies,
};
use berth_wire::{
    ArpOperation, ArpPacket, ArpRepr, DstUnreachable, EtherType, EthernetAddress, EthernetFrame,
    EthernetRepr, Icmpv4Packet, Icmpv4Repr, IpProtocol, Ipv4Addr, Ipv4Cidr, Ipv4Packet, Ipv4Repr,
    Ipv6Cidr, SeqNumber, TcpFlags, TcpPacket, TcpRepr, TimeExceeded, UdpRepr,
};
use std::collections::VecDeque;
use std::net::{IpAddr, Ipv6Addr, Shutdown, SocketAddr, SocketAddrV4};
use std::time::Duration;

mod v6;

/// Which link the stack's one interface has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Medium {
    /// Ethernet II with ARP (a TAP device).
    Ethernet,
    /// Bare IP packets, IPv4 and IPv6 (a TUN device).
    Ip,
}

/// The stack's address; peers are other hosts of 192.0.2.0/24.
pub const STACK_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const STACK_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x01]);
/// The peer the final ping comes from (also the setup's client connection's peer).
const PING_PEER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
/// The stack's IPv6 address (2001:db8::1/64) and the IPv6 ping peer.
pub const STACK_IP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
const PING_PEER6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
const LISTEN_PORT: u16 = 80;
/// Every listen() the harness makes uses this backlog, so the accept-queue bound
/// in `check_invariants` (backlog + 1) is never lowered under queued children.
const BACKLOG: usize = 2;
/// Operations per input: bounds one execution's time.
const MAX_OPS: usize = 512;
const MAX_FLOWS: usize = 16;
const MAX_SENT: usize = 16;

/// Run one input. Panics if an invariant breaks or the stack stops answering ping.
pub fn run(medium: Medium, data: &[u8]) {
    let mut input = Input { data, pos: 0 };
    let mut h = Harness::new(medium, input.u8());
    h.check(|| "setup".into());
    let mut ops = 0;
    // BERTH_FUZZ_TRACE=1: print each operation and the sockets after it (triage).
    let trace = std::env::var_os("BERTH_FUZZ_TRACE").is_some();
    while !input.is_empty() && ops < MAX_OPS {
        let op = input.u8();
        if trace {
            eprintln!(
                "op {ops}: {} at byte {} (t={:?})",
                op % OPS,
                input.pos,
                h.now
            );
        }
        h.step(op, &mut input);
        h.drain();
        h.check(|| format!("op {ops} (operation {})", op % OPS));
        if trace {
            for row in h.stack.sockets() {
                eprintln!("    {row:?}");
            }
        }
        ops += 1;
    }
    h.final_ping();
}

/// The fuzzer's bytes, read front to back; past the end every read is 0.
struct Input<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Input<'_> {
    fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }
    fn u8(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }
    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }
    fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    fn bool(&mut self) -> bool {
        self.u8() & 1 == 1
    }
    /// Up to `max` bytes taken from the input as they are.
    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = (self.u8() as usize).min(max);
        let start = self.pos.min(self.data.len());
        let end = (start + n).min(self.data.len());
        self.pos = start + n;
        self.data[start..end].to_vec()
    }
    /// A payload length: mostly small, sometimes a full segment or more.
    fn len(&mut self) -> usize {
        match self.u8() {
            b @ 0..=199 => b as usize,
            b @ 200..=249 => (b as usize - 199) * 64,
            b => (b as usize - 249) * 1460,
        }
    }
}

/// A TCP connection as its peer (the harness) sees it, learned from both sides.
#[derive(Debug, Clone, Copy)]
struct Flow {
    /// The stack's end and the peer's end (one family).
    local: SocketAddr,
    remote: SocketAddr,
    /// Highest sequence number the stack has used (seq + length of its segments).
    stack_nxt: SeqNumber,
    /// The stack's latest cumulative ACK: what it expects from the peer.
    stack_ack: Option<SeqNumber>,
    /// What the peer sends next.
    peer_nxt: SeqNumber,
    /// The stack's latest TSval, to echo.
    ts_recent: u32,
    /// The window the stack last advertised (unscaled field).
    stack_wnd: u16,
}

struct Harness {
    stack: Stack,
    medium: Medium,
    iface: IfaceId,
    now: Instant,
    /// Answer the stack's ARP requests and neighbour solicitations for peers
    /// (the fuzzer may turn it off).
    arp_answer: bool,
    /// Build IPv6 frames and make IPv6 socket calls (the fuzzer toggles it).
    v6: bool,
    tcp: Vec<SocketHandle>,
    udp: Vec<SocketHandle>,
    raw: Vec<SocketHandle>,
    flows: Vec<Flow>,
    /// The stack's latest IP packets (both families), for ICMP errors quoting them.
    sent: VecDeque<Vec<u8>>,
    peer_ts: u32,
    ip_ident: u16,
    /// The final pings' replies (IPv4, IPv6), when seen in the output.
    ping_seen: bool,
    ping6_seen: bool,
}

fn peer_ip(b: u8) -> Ipv4Addr {
    // Mostly on-link peers; now and then an address no route reaches.
    match b % 8 {
        7 => Ipv4Addr::new(198, 51, 100, b),
        _ => Ipv4Addr::new(192, 0, 2, 2 + (b % 6)),
    }
}

/// A peer address of the family the harness is in.
fn peer_of(v6: bool, b: u8) -> IpAddr {
    if v6 {
        v6::peer_ip6(b).into()
    } else {
        peer_ip(b).into()
    }
}

fn mac_of(ip: Ipv4Addr) -> EthernetAddress {
    let o = ip.octets();
    EthernetAddress([0x02, 0x00, o[0], o[1], o[2], o[3]])
}

impl Harness {
    fn new(medium: Medium, flags: u8) -> Harness {
        // The first byte picks the TCP features, so every combination gets fuzzed.
        let mut config = Config {
            seed: Some(0x5eed),
            socket_recv_buffer: 4096,
            reassembly_mem: 64 << 10,
            arp_queue_len: 8,
            ..Config::default()
        };
        // Stack-wide limits low enough that a few connections reach pressure
        // and the high mark (16 and 8 pages).
        config.tcp_mem = MemLimits::new(4, 8, 16).expect("limits");
        config.udp_mem = MemLimits::new(2, 4, 8).expect("limits");
        let t = &mut config.tcp;
        // SYN cookies always when SACK and timestamps are both on (options
        // ride in the timestamp), never when both are off, else on overflow
        // (the listener's SYN queue holds 8).
        t.syncookies = match flags & 3 {
            0 => SynCookies::Always,
            3 => SynCookies::Off,
            _ => SynCookies::OnOverflow,
        };
        t.recv_buffer = 16 << 10;
        t.send_buffer = 16 << 10;
        t.rmem_max = 64 << 10;
        t.wmem_max = 64 << 10;
        t.sack = flags & 1 == 0;
        t.timestamps = flags & 2 == 0;
        t.window_scaling = flags & 4 == 0;
        t.rack = flags & 8 == 0;
        t.tlp = flags & 16 == 0;
        t.frto = flags & 32 == 0;
        t.pacing = flags & 64 == 0;
        t.congestion = if flags & 128 == 0 {
            CongestionAlgorithm::Cubic
        } else {
            CongestionAlgorithm::Reno
        };
        let mut stack = Stack::new(config);
        let iface = stack
            .add_interface(IfaceConfig {
                medium: match medium {
                    Medium::Ethernet => CoreMedium::Ethernet(STACK_MAC),
                    Medium::Ip => CoreMedium::Ip,
                },
                address: Ipv4Cidr::new(STACK_IP, 24).expect("/24"),
                mtu: 1500,
            })
            .expect("interface");
        let now = Instant::from_millis(1000);
        stack
            .add_address(now, iface, Ipv6Cidr::new(STACK_IP6, 64).expect("/64"))
            .expect("IPv6 address");
        let mut h = Harness {
            stack,
            medium,
            iface,
            now,
            arp_answer: true,
            v6: false,
            tcp: Vec::new(),
            udp: Vec::new(),
            raw: Vec::new(),
            flows: Vec::new(),
            sent: VecDeque::new(),
            peer_ts: 1,
            ip_ident: 1,
            ping_seen: false,
            ping6_seen: false,
        };
        h.setup();
        h
    }

    /// Start state: a listener, UDP and raw sockets, an established client
    /// connection and an accepted server connection; the same for IPv6.
    fn setup(&mut self) {
        let s = &mut self.stack;
        let l = s.tcp_socket();
        s.tcp_bind(l, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, LISTEN_PORT))
            .expect("bind");
        s.tcp_listen(l, BACKLOG).expect("listen");
        self.tcp.push(l);
        let u = s.udp_socket();
        s.udp_bind(u, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 53))
            .expect("udp bind");
        self.udp.push(u);
        let u = s.udp_socket();
        s.udp_connect(u, SocketAddrV4::new(PING_PEER, 7))
            .expect("udp connect");
        self.udp.push(u);
        self.raw
            .push(s.raw_socket(IpProtocol::ICMP).expect("raw icmp"));
        self.raw
            .push(s.raw_socket(IpProtocol(253)).expect("raw 253"));
        // The peer answers the client's SYN with every option.
        self.active_open(SocketAddrV4::new(PING_PEER, 8080).into());
        // A passive open from another peer, accepted.
        let remote = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 3), 40000);
        self.passive_open(
            l,
            SocketAddrV4::new(STACK_IP, LISTEN_PORT).into(),
            remote.into(),
        );
        self.setup_v6();
        while self.stack.poll_event().is_some() {}
    }

    /// A peer at `remote` opens a connection to listener `l` at `local`; the
    /// stack's end is accepted.
    fn passive_open(&mut self, l: SocketHandle, local: SocketAddr, remote: SocketAddr) {
        let i = self.new_flow(local, remote);
        self.send_tcp_simple(i, TcpFlags::SYN, true, &[]);
        self.drain();
        self.send_tcp_simple(i, TcpFlags::ACK, false, &[]);
        self.drain();
        if let Ok((a, _)) = self.stack.tcp_accept(l) {
            self.tcp.push(a);
        }
    }

    /// A connection the stack opened to `remote`, answered with a SYN-ACK.
    fn active_open(&mut self, remote: SocketAddr) {
        let now = self.now;
        let c = self.stack.tcp_socket();
        self.stack.tcp_connect(now, c, remote).expect("connect");
        self.tcp.push(c);
        self.drain();
        if let Some(i) = self.flows.iter().position(|f| f.remote == remote) {
            self.send_tcp_simple(i, TcpFlags::SYN | TcpFlags::ACK, true, &[]);
            self.drain();
        }
    }

    /// The checks after every step; `what` names the step for the panic message.
    fn check(&self, what: impl Fn() -> String) {
        if let Err(e) = self.stack.check_invariants() {
            panic!("invariant broken after {}: {e}", what());
        }
        // The memory ceiling: the charge now and at its peak stays within
        // tcp_mem high + the forced slack, udp_mem high and the reassembly cap.
        let m = self.stack.memory();
        if !m.within_limits() || m.tcp_peak > m.tcp_ceiling() || m.udp_peak > m.udp_ceiling() {
            panic!("memory over its ceiling after {}: {m:?}", what());
        }
    }

    // ---- driving the stack ------------------------------------------------------

    fn advance(&mut self, d: Duration) {
        self.now += d;
        // Run every timer due by now; bounded, in case a timer re-arms at `now`.
        for _ in 0..10_000 {
            match self.stack.poll_timeout() {
                Some(t) if t <= self.now => self.stack.handle_timeout(self.now),
                _ => break,
            }
            self.drain();
        }
    }

    /// Put an IP packet on the link (in an Ethernet frame on Ethernet).
    fn inject_ip(&mut self, pkt: &[u8]) {
        if pkt.first().is_some_and(|b| b >> 4 == 6) {
            return self.inject_ip6(pkt);
        }
        let src = Ipv4Packet::new_checked(pkt)
            .map(|p| p.src_addr())
            .unwrap_or(PING_PEER);
        let frame = match self.medium {
            Medium::Ip => pkt.to_vec(),
            Medium::Ethernet => eth(mac_of(src), STACK_MAC, EtherType::Ipv4, pkt),
        };
        self.stack.receive(self.now, self.iface, &frame);
    }

    /// Take everything the stack sent and learn from it as its peers would.
    fn drain(&mut self) {
        let mut budget = 100_000;
        while let Some(t) = self.stack.poll_transmit(self.now) {
            budget -= 1;
            assert!(budget > 0, "the stack transmits without end");
            let ip = match self.medium {
                Medium::Ip => t.frame,
                Medium::Ethernet => {
                    let f = EthernetFrame::new_checked(&t.frame[..]).expect("stack frame");
                    match f.ethertype() {
                        EtherType::Arp => {
                            let arp = ArpRepr::parse(
                                &ArpPacket::new_checked(f.payload()).expect("stack ARP"),
                            )
                            .expect("stack ARP parses");
                            self.answer_arp(&arp);
                            continue;
                        }
                        EtherType::Ipv4 | EtherType::Ipv6 => f.payload().to_vec(),
                        other => panic!("stack sent ethertype {other:?}"),
                    }
                }
            };
            self.learn(&ip);
        }
    }

    fn answer_arp(&mut self, req: &ArpRepr) {
        if !self.arp_answer || req.operation != ArpOperation::Request {
            return;
        }
        let ip = req.target_protocol_addr;
        if ip == STACK_IP || !Ipv4Cidr::new(STACK_IP, 24).expect("/24").contains(ip) {
            return;
        }
        let reply = ArpRepr {
            operation: ArpOperation::Reply,
            source_hardware_addr: mac_of(ip),
            source_protocol_addr: ip,
            target_hardware_addr: STACK_MAC,
            target_protocol_addr: STACK_IP,
        };
        self.inject_arp(&reply, STACK_MAC);
    }

    fn inject_arp(&mut self, arp: &ArpRepr, dst: EthernetAddress) {
        let mut buf = [0u8; berth_wire::arp::PACKET_LEN];
        arp.emit(&mut buf);
        let frame = eth(arp.source_hardware_addr, dst, EtherType::Arp, &buf);
        self.stack.receive(self.now, self.iface, &frame);
    }

    /// Learn sequence numbers from the stack's TCP segments; spot ping replies.
    /// Raw sockets (IP_HDRINCL too) send whatever the caller gave them, so
    /// what does not parse is not the stack's fault and is passed over.
    fn learn(&mut self, ip: &[u8]) {
        if ip.first().is_some_and(|b| b >> 4 == 6) {
            return self.learn6(ip);
        }
        let Ok(p) = Ipv4Packet::new_checked(ip) else {
            return;
        };
        let Ok(repr) = Ipv4Repr::parse(&p) else {
            return;
        };
        self.sent.push_back(ip.to_vec());
        if self.sent.len() > MAX_SENT {
            self.sent.pop_front();
        }
        if repr.is_fragment() {
            return;
        }
        let payload = &ip[p.header_len()..p.total_len()];
        match repr.protocol {
            IpProtocol::TCP => {
                let Ok(seg) = TcpPacket::new_checked(payload)
                    .and_then(|t| TcpRepr::parse(&t, &repr.src_addr, &repr.dst_addr))
                else {
                    return;
                };
                let local = SocketAddrV4::new(repr.src_addr, seg.src_port);
                let remote = SocketAddrV4::new(repr.dst_addr, seg.dst_port);
                self.learn_tcp(local.into(), remote.into(), &seg);
            }
            IpProtocol::ICMP => {
                if let Ok(Icmpv4Repr::EchoReply { ident, seq_no, .. }) =
                    Icmpv4Packet::new_checked(payload).and_then(|p| Icmpv4Repr::parse(&p))
                {
                    if (ident, seq_no) == (0xbe57, 0x1234) && repr.dst_addr == PING_PEER {
                        self.ping_seen = true;
                    }
                }
            }
            _ => {}
        }
    }

    /// Follow one of the stack's TCP segments (either family).
    fn learn_tcp(&mut self, local: SocketAddr, remote: SocketAddr, seg: &TcpRepr) {
        if seg.flags.contains(TcpFlags::RST) {
            return;
        }
        let i = match self.find_flow(local, remote) {
            Some(i) => i,
            None => self.new_flow(local, remote),
        };
        let f = &mut self.flows[i];
        let end = seg.seq_number + seg.segment_len();
        if seg.flags.contains(TcpFlags::SYN) || end > f.stack_nxt {
            f.stack_nxt = end;
        }
        if seg.flags.contains(TcpFlags::ACK) {
            f.stack_ack = Some(seg.ack_number);
        }
        if let Some((val, _)) = seg.timestamp {
            f.ts_recent = val;
        }
        f.stack_wnd = seg.window_len;
    }

    fn find_flow(&self, local: SocketAddr, remote: SocketAddr) -> Option<usize> {
        self.flows
            .iter()
            .position(|f| f.local == local && f.remote == remote)
    }

    fn new_flow(&mut self, local: SocketAddr, remote: SocketAddr) -> usize {
        if self.flows.len() >= MAX_FLOWS {
            self.flows.remove(0);
        }
        let isn = SeqNumber(0x1000_0000u32.wrapping_mul(self.flows.len() as u32 + 1) ^ 0xabcd);
        self.flows.push(Flow {
            local,
            remote,
            stack_nxt: SeqNumber(0),
            stack_ack: None,
            peer_nxt: isn,
            ts_recent: 0,
            stack_wnd: 0,
        });
        self.flows.len() - 1
    }

    // ---- building frames ----------------------------------------------------------

    fn ip_packet(
        &mut self,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        protocol: IpProtocol,
        payload: &[u8],
    ) -> Vec<u8> {
        self.ip_ident = self.ip_ident.wrapping_add(1);
        let repr = Ipv4Repr {
            src_addr: src,
            dst_addr: dst,
            protocol,
            payload_len: payload.len(),
            ttl: 64,
            dscp_ecn: 0,
            ident: self.ip_ident,
            dont_frag: false,
            more_frags: false,
            frag_offset: 0,
        };
        let mut pkt = vec![0u8; 20 + payload.len()];
        pkt[20..].copy_from_slice(payload);
        repr.emit(&mut pkt);
        pkt
    }

    /// A TCP segment in an IP packet of the endpoints' family.
    fn tcp_packet(&mut self, src: SocketAddr, dst: SocketAddr, seg: &TcpRepr) -> Vec<u8> {
        let mut buf = vec![0u8; seg.buffer_len()];
        seg.emit(&mut buf, &src.ip(), &dst.ip());
        self.transport_packet(src.ip(), dst.ip(), IpProtocol::TCP, &buf)
    }

    /// An IP packet of `src`'s family (flows never mix families; a mixed pair
    /// is sent as IPv6 with the IPv4 address mapped).
    fn transport_packet(
        &mut self,
        src: IpAddr,
        dst: IpAddr,
        protocol: IpProtocol,
        payload: &[u8],
    ) -> Vec<u8> {
        match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => self.ip_packet(s, d, protocol, payload),
            _ => v6::ip6_packet(v6::to_v6(src), v6::to_v6(dst), protocol, 64, payload),
        }
    }

    /// A well-formed segment on flow `i` at the peer's next sequence number,
    /// acknowledging everything the stack sent; SYNs carry every option.
    fn send_tcp_simple(&mut self, i: usize, flags: TcpFlags, syn_opts: bool, data: &[u8]) {
        let f = self.flows[i];
        let mut seg = TcpRepr::new(f.remote.port(), f.local.port(), f.peer_nxt, flags);
        seg.ack_number = f.stack_nxt;
        seg.window_len = 65535;
        seg.payload = data;
        if self.stack.config().tcp.timestamps {
            self.peer_ts += 1;
            seg.timestamp = Some((self.peer_ts, f.ts_recent));
        }
        if syn_opts {
            seg.max_seg_size = Some(1460);
            seg.window_scale = Some(7);
            seg.sack_permitted = true;
        }
        self.flows[i].peer_nxt = f.peer_nxt + seg.segment_len();
        let pkt = self.tcp_packet(f.remote, f.local, &seg);
        self.inject_ip(&pkt);
    }

    /// A fuzzer-shaped segment: to a known flow or to a listener port from a new
    /// peer; sequence and acknowledgment numbers relative to what the flow
    /// expects, plus offsets; any flags and options; a payload.
    fn fuzz_tcp(&mut self, input: &mut Input) -> Option<Vec<u8>> {
        let sel = input.u8();
        let i = if sel < 200 && !self.flows.is_empty() {
            sel as usize % self.flows.len()
        } else {
            let port = match sel % 4 {
                0 | 1 => LISTEN_PORT,
                2 => 8080,
                _ => input.u16(),
            };
            let remote = SocketAddr::new(
                peer_of(self.v6, input.u8()),
                30000 + (input.u8() as u16 % 32),
            );
            let local = SocketAddr::new(self.stack_ip(), port);
            match self.find_flow(local, remote) {
                Some(i) => i,
                None => self.new_flow(local, remote),
            }
        };
        let f = self.flows[i];
        let flags = match input.u8() % 12 {
            0..=3 => TcpFlags::ACK,
            4 => TcpFlags::ACK | TcpFlags::PSH,
            5 => TcpFlags::SYN,
            6 => TcpFlags::SYN | TcpFlags::ACK,
            7 => TcpFlags::FIN | TcpFlags::ACK,
            8 => TcpFlags::RST,
            9 => TcpFlags::RST | TcpFlags::ACK,
            _ => TcpFlags(input.u16() & 0x1ff),
        };
        let mode = input.u8();
        // Sequence number: the peer's next, the stack's ACK point, or anything;
        // then a small signed offset, sometimes a window-sized one.
        let base = match mode & 3 {
            0 | 1 => f.peer_nxt,
            2 => f.stack_ack.unwrap_or(f.peer_nxt),
            _ => SeqNumber(input.u32()),
        };
        let off = input.u8() as i8 as i32;
        let off = if mode & 4 != 0 { off * 1024 } else { off };
        let seq = SeqNumber(base.0.wrapping_add(off as u32));
        let ack_base = if mode & 8 != 0 {
            SeqNumber(input.u32())
        } else {
            f.stack_nxt
        };
        let aoff = input.u8() as i8 as i32;
        let aoff = if mode & 16 != 0 { aoff * 512 } else { aoff };
        let ack = SeqNumber(ack_base.0.wrapping_add(aoff as u32));
        let mut seg = TcpRepr::new(f.remote.port(), f.local.port(), seq, flags);
        seg.ack_number = ack;
        seg.window_len = match mode >> 5 {
            0..=3 => 65535,
            4 => 0,
            _ => input.u16(),
        };
        let opts = input.u8();
        if opts & 1 != 0 {
            seg.max_seg_size = Some(input.u16());
        }
        if opts & 2 != 0 {
            seg.window_scale = Some(input.u8() % 16);
        }
        if opts & 4 != 0 {
            seg.sack_permitted = true;
        }
        if opts & 8 != 0 {
            // Timestamps: the next TSval echoing the stack's, or anything.
            if opts & 16 != 0 {
                seg.timestamp = Some((input.u32(), input.u32()));
            } else {
                self.peer_ts = self.peer_ts.wrapping_add(input.u8() as u32);
                seg.timestamp = Some((self.peer_ts, f.ts_recent));
            }
        }
        if opts & 32 != 0 {
            // SACK blocks over the stack's data: below its snd_nxt.
            let n = 1 + input.u8() as usize % 4;
            for b in seg.sack_ranges.iter_mut().take(n) {
                let back = input.u16() as usize;
                let len = input.u16() as usize;
                let left = f.stack_nxt - back;
                *b = Some((left, left + len));
            }
        }
        if opts & 64 != 0 {
            seg.urgent_pointer = input.u16();
        }
        let payload = vec![b'p'; input.len()];
        seg.payload = &payload;
        if seq == f.peer_nxt {
            self.flows[i].peer_nxt = seq + seg.segment_len();
        }
        Some(self.tcp_packet(f.remote, f.local, &seg))
    }

    fn fuzz_udp(&mut self, input: &mut Input) -> Vec<u8> {
        let dst_port = match input.u8() % 4 {
            0 | 1 => 53,
            2 => self
                .stack
                .udp_local_addr(self.udp[1 % self.udp.len()])
                .map(|a| a.port())
                .unwrap_or(9),
            _ => input.u16(),
        };
        let src = SocketAddr::new(
            peer_of(self.v6, input.u8()),
            match input.u8() % 3 {
                0 => 7,
                1 => 5353,
                _ => input.u16(),
            },
        );
        let payload = vec![b'u'; input.len()];
        let repr = UdpRepr {
            src_port: src.port(),
            dst_port,
            payload: &payload,
        };
        let mut buf = vec![0u8; repr.buffer_len()];
        // Now and then to everyone: the broadcast, or IPv6's all-nodes group.
        let dst = match (input.u8().is_multiple_of(8), src.ip()) {
            (true, IpAddr::V4(_)) => IpAddr::V4(Ipv4Addr::new(192, 0, 2, 255)),
            (true, IpAddr::V6(_)) => IpAddr::V6(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1)),
            (false, _) => self.stack_ip(),
        };
        repr.emit(&mut buf, &src.ip(), &dst);
        self.transport_packet(src.ip(), dst, IpProtocol::UDP, &buf)
    }

    /// The stack's address in the harness's family.
    fn stack_ip(&self) -> IpAddr {
        if self.v6 {
            STACK_IP6.into()
        } else {
            STACK_IP.into()
        }
    }

    /// An ICMP message to the stack: an error quoting one of its recent packets
    /// (its header and some of its payload), or an echo request.
    fn fuzz_icmp(&mut self, input: &mut Input) -> Option<Vec<u8>> {
        if self.v6 {
            return self.fuzz_icmp6(input);
        }
        let kind = input.u8();
        if kind % 8 == 7 {
            let data = input.bytes(64);
            let repr = Icmpv4Repr::EchoRequest {
                ident: input.u16(),
                seq_no: input.u16(),
                data: &data,
            };
            let mut buf = vec![0u8; repr.buffer_len()];
            repr.emit(&mut buf);
            return Some(self.ip_packet(peer_ip(input.u8()), STACK_IP, IpProtocol::ICMP, &buf));
        }
        let orig = self.recent_sent(input.u8(), 4)?;
        let p = Ipv4Packet::new_checked(&orig[..]).ok()?;
        let header = Ipv4Repr::parse(&p).ok()?;
        let quoted = 8 + input.u8() as usize % 64;
        let data = &orig[p.header_len()..(p.header_len() + quoted).min(orig.len())];
        let repr = match kind % 8 {
            0 => Icmpv4Repr::DstUnreachable {
                reason: DstUnreachable::FragRequired {
                    next_hop_mtu: input.u16(),
                },
                header,
                data,
            },
            1 => Icmpv4Repr::DstUnreachable {
                reason: DstUnreachable::PortUnreachable,
                header,
                data,
            },
            2 => Icmpv4Repr::DstUnreachable {
                reason: DstUnreachable::HostUnreachable,
                header,
                data,
            },
            3 => Icmpv4Repr::DstUnreachable {
                reason: DstUnreachable::ProtoUnreachable,
                header,
                data,
            },
            4 => Icmpv4Repr::DstUnreachable {
                reason: DstUnreachable::Other(input.u8() % 16),
                header,
                data,
            },
            5 => Icmpv4Repr::TimeExceeded {
                reason: TimeExceeded::TtlExpired,
                header,
                data,
            },
            _ => Icmpv4Repr::DstUnreachable {
                reason: DstUnreachable::NetUnreachable,
                header,
                data,
            },
        };
        let mut buf = vec![0u8; repr.buffer_len()];
        repr.emit(&mut buf);
        let from = if kind & 8 != 0 {
            Ipv4Addr::new(192, 0, 2, 254)
        } else {
            header.dst_addr
        };
        Some(self.ip_packet(from, STACK_IP, IpProtocol::ICMP, &buf))
    }

    /// One of the stack's recent packets of IP version `version`, picked by `b`.
    fn recent_sent(&self, b: u8, version: u8) -> Option<Vec<u8>> {
        let of: Vec<_> = self
            .sent
            .iter()
            .rev()
            .filter(|p| p.first().is_some_and(|x| x >> 4 == version))
            .collect();
        (!of.is_empty()).then(|| of[b as usize % of.len()].clone())
    }

    /// Fragments of a packet the harness builds (TCP or UDP), cut at
    /// fuzzer-chosen 8-byte boundaries, some sent twice or overlapping, in any order.
    fn fuzz_fragments(&mut self, input: &mut Input) {
        let whole = if input.bool() {
            self.fuzz_udp(input)
        } else {
            match self.fuzz_tcp(input) {
                Some(p) => p,
                None => return,
            }
        };
        if whole.first().is_some_and(|b| b >> 4 == 6) {
            return self.fragments6(&whole, input);
        }
        let p = Ipv4Packet::new_checked(&whole[..]).expect("built packet");
        let repr = Ipv4Repr::parse(&p).expect("built packet parses");
        let payload = whole[20..].to_vec();
        for (s, e) in cut_fragments(payload.len(), input) {
            let fr = Ipv4Repr {
                payload_len: e - s,
                more_frags: e < payload.len(),
                frag_offset: s as u16,
                ..repr
            };
            let mut pkt = vec![0u8; 20 + e - s];
            pkt[20..].copy_from_slice(&payload[s..e]);
            fr.emit(&mut pkt);
            self.inject_ip(&pkt);
            if input.u8().is_multiple_of(16) {
                self.inject_ip(&pkt);
            }
        }
    }

    fn fuzz_arp(&mut self, input: &mut Input) {
        let sel = input.u8();
        let sender = match sel % 4 {
            3 => Ipv4Addr::from(input.u32()),
            _ => peer_ip(input.u8()),
        };
        let mac = if sel & 4 != 0 {
            EthernetAddress([0x02, 0, 0, 0, input.u8(), input.u8()])
        } else {
            mac_of(sender)
        };
        let arp = ArpRepr {
            operation: if sel & 8 != 0 {
                ArpOperation::Reply
            } else {
                ArpOperation::Request
            },
            source_hardware_addr: mac,
            source_protocol_addr: sender,
            target_hardware_addr: if sel & 8 != 0 {
                STACK_MAC
            } else {
                EthernetAddress([0; 6])
            },
            target_protocol_addr: if sel & 16 != 0 {
                peer_ip(input.u8())
            } else {
                STACK_IP
            },
        };
        let dst = if sel & 32 != 0 {
            STACK_MAC
        } else {
            EthernetAddress::BROADCAST
        };
        self.inject_arp(&arp, dst);
    }

    // ---- the operations -----------------------------------------------------------

    fn step(&mut self, op: u8, input: &mut Input) {
        match op % OPS {
            0..=5 => {
                if let Some(p) = self.fuzz_tcp(input) {
                    self.inject_ip(&p);
                }
            }
            6 => {
                // The peer acknowledges everything on a flow, maybe with data:
                // lets connections make progress.
                if !self.flows.is_empty() {
                    let i = input.u8() as usize % self.flows.len();
                    let flags = if input.u8().is_multiple_of(8) {
                        TcpFlags::FIN | TcpFlags::ACK
                    } else {
                        TcpFlags::ACK
                    };
                    let data = vec![b'd'; input.len()];
                    self.send_tcp_simple(i, flags, false, &data);
                }
            }
            7 => {
                let p = self.fuzz_udp(input);
                self.inject_ip(&p);
            }
            8 => {
                if let Some(p) = self.fuzz_icmp(input) {
                    self.inject_ip(&p);
                }
            }
            9 => self.fuzz_fragments(input),
            10 => {
                if self.medium == Medium::Ethernet {
                    self.fuzz_arp(input);
                }
            }
            11 => {
                // Raw bytes on the link.
                let b = input.bytes(255);
                self.stack.receive(self.now, self.iface, &b);
            }
            12 if self.v6 => {
                let p = self.raw_ip6(input);
                self.inject_ip(&p);
            }
            12 => {
                // A raw IP packet: an arbitrary header and payload, the checksum
                // fixed so that it gets past the first check.
                let mut b = input.bytes(255);
                // fill_checksum needs the whole header (IHL) in the buffer.
                if b.len() >= 20 && usize::from(b[0] & 0xf) * 4 <= b.len() && input.bool() {
                    let src = peer_ip(b[15]).octets();
                    b[12..16].copy_from_slice(&src);
                    b[16..20].copy_from_slice(&STACK_IP.octets());
                    let mut p = Ipv4Packet::new_unchecked(&mut b[..]);
                    p.fill_checksum();
                }
                self.inject_ip(&b);
            }
            13..=15 => {
                let d = match input.u8() {
                    0..=49 => Duration::from_millis(1),
                    50..=99 => Duration::from_millis(40),
                    100..=149 => Duration::from_millis(200),
                    150..=199 => Duration::from_secs(1),
                    200..=219 => Duration::from_secs(10),
                    220..=239 => Duration::from_secs(61),
                    240..=247 => Duration::from_secs(130),
                    248..=251 => Duration::from_secs(7300),
                    _ => Duration::from_micros(input.u32() as u64),
                };
                self.advance(d);
            }
            16 => {
                // Straight to the next timer.
                if let Some(t) = self.stack.poll_timeout() {
                    let d = t.saturating_duration_since(self.now);
                    self.advance(d);
                }
            }
            17 => {
                // Bit 0: answer ARP and neighbour solicitations; bit 1: IPv6.
                let b = input.u8();
                self.arp_answer = b & 1 == 1;
                self.v6 = b & 2 != 0;
            }
            _ => self.api(input),
        }
    }

    fn pick(v: &[SocketHandle], b: u8) -> Option<SocketHandle> {
        (!v.is_empty()).then(|| v[b as usize % v.len()])
    }

    /// A socket call; errors are expected and ignored (the invariants judge).
    fn api(&mut self, input: &mut Input) {
        let now = self.now;
        let call = input.u8();
        let sel = input.u8();
        let t = Self::pick(&self.tcp, sel);
        let u = Self::pick(&self.udp, sel);
        let r = Self::pick(&self.raw, sel);
        let v6 = self.v6;
        // The unspecified address of the family: [::] binds dual-stack.
        let any: IpAddr = if v6 {
            Ipv6Addr::UNSPECIFIED.into()
        } else {
            Ipv4Addr::UNSPECIFIED.into()
        };
        let s = &mut self.stack;
        match call % 32 {
            0 => {
                let h = s.tcp_socket();
                let remote = SocketAddr::new(peer_of(v6, input.u8()), 8000 + input.u8() as u16 % 4);
                let _ = s.tcp_connect(now, h, remote);
                self.tcp.push(h);
            }
            1 => {
                let h = s.tcp_socket();
                let port = 80 + input.u8() as u16 % 4;
                let _ = s.tcp_set_reuse_addr(h, input.bool());
                if v6 {
                    let _ = s.tcp_set_only_v6(h, input.bool());
                }
                let _ = s.tcp_bind(h, SocketAddr::new(any, port));
                let _ = s.tcp_listen(h, BACKLOG);
                self.tcp.push(h);
            }
            2 | 3 => {
                if let Some(h) = t {
                    if let Ok((c, _)) = s.tcp_accept(h) {
                        self.tcp.push(c);
                    }
                }
            }
            4..=6 => {
                if let Some(h) = t {
                    let data = vec![b's'; input.len() * (1 + input.u8() as usize % 8)];
                    let _ = s.tcp_send(now, h, &data);
                }
            }
            7 | 8 => {
                if let Some(h) = t {
                    let mut buf = vec![0u8; 1 + input.len() * 4];
                    let _ = s.tcp_recv(now, h, &mut buf);
                }
            }
            9 => {
                if let Some(h) = t {
                    let how = match input.u8() % 3 {
                        0 => Shutdown::Read,
                        1 => Shutdown::Write,
                        _ => Shutdown::Both,
                    };
                    let _ = s.tcp_shutdown(now, h, how);
                }
            }
            10 => {
                if let Some(h) = t {
                    let _ = s.close_at(now, h);
                }
            }
            11 => {
                // abort(): SO_LINGER 0, then close — a reset.
                if let Some(h) = t {
                    let _ = s.tcp_set_linger(h, Some(Duration::ZERO));
                    let _ = s.close_at(now, h);
                }
            }
            12 => {
                if let Some(h) = t {
                    let _ = s.tcp_set_nodelay(now, h, input.bool());
                }
            }
            13 => {
                if let Some(h) = t {
                    let alg = if input.bool() {
                        CongestionAlgorithm::Reno
                    } else {
                        CongestionAlgorithm::Cubic
                    };
                    let _ = s.tcp_set_congestion(h, alg);
                }
            }
            14 => {
                if let Some(h) = t {
                    let rb = input.u16() as usize * 4;
                    let sb = input.u16() as usize * 4;
                    let which = input.u8();
                    let _ = s.tcp_set_buffers(
                        h,
                        (which & 1 != 0).then_some(rb),
                        (which & 2 != 0).then_some(sb),
                    );
                }
            }
            15 => {
                if let Some(h) = t {
                    let on = input.bool();
                    let idle = Duration::from_secs(1 + input.u8() as u64);
                    let intvl = Duration::from_secs(1 + input.u8() as u64 % 16);
                    let cnt = 1 + input.u8() as u32 % 4;
                    let _ = s.tcp_set_keepalive(now, h, on, Some(idle), Some(intvl), Some(cnt));
                }
            }
            16 => {
                if let Some(h) = t {
                    let _ = s.tcp_set_maxseg(h, input.u16());
                }
            }
            17 => {
                if let Some(h) = t {
                    let _ = s.tcp_set_ttl(h, input.u8());
                    let _ = s.tcp_take_error(h);
                }
            }
            18 => {
                if let Some(h) = t {
                    let mut buf = vec![0u8; 1 + input.len()];
                    let _ = s.tcp_peek(h, &mut buf);
                    let _ = s.tcp_info(h);
                }
            }
            19 => {
                let h = s.udp_socket();
                let _ = s.udp_set_reuse_addr(h, input.bool());
                let port = match input.u8() % 3 {
                    0 => 53,
                    1 => 0,
                    _ => 5000 + input.u8() as u16 % 4,
                };
                if v6 {
                    let _ = s.udp_set_only_v6(h, input.bool());
                }
                let _ = s.udp_bind(h, SocketAddr::new(any, port));
                self.udp.push(h);
            }
            20 => {
                if let Some(h) = u {
                    let peer = SocketAddr::new(peer_of(v6, input.u8()), input.u16());
                    if input.bool() {
                        let _ = s.udp_connect(h, peer);
                    } else {
                        let _ = s.udp_disconnect(h);
                    }
                }
            }
            21 | 22 => {
                if let Some(h) = u {
                    let data = vec![b'U'; input.len() * (1 + input.u8() as usize % 4)];
                    let dst = SocketAddr::new(peer_of(v6, input.u8()), 1 + input.u8() as u16);
                    if input.bool() {
                        let _ = s.udp_send(now, h, &data);
                    } else {
                        let _ = s.udp_send_to(now, h, &data, dst);
                    }
                }
            }
            23 => {
                if let Some(h) = u {
                    let mut buf = vec![0u8; input.len()];
                    let _ = s.udp_recv_from(h, &mut buf);
                }
            }
            24 => {
                if let Some(h) = u {
                    let _ = s.udp_set_recv_buffer(h, input.u16() as usize);
                }
            }
            25 => {
                if let Some(h) = u {
                    let _ = s.close_at(now, h);
                }
            }
            26 => {
                let proto = match (input.u8() % 4, v6) {
                    (0, false) => IpProtocol::ICMP,
                    (0, true) => IpProtocol::ICMPV6,
                    (1, _) => IpProtocol::TCP,
                    (2, false) => IpProtocol(255),
                    (2, true) => IpProtocol::UDP,
                    _ => IpProtocol(253),
                };
                let made = if v6 {
                    s.raw_socket_v6(proto)
                } else {
                    s.raw_socket(proto)
                };
                if let Ok(h) = made {
                    if input.bool() {
                        let me: IpAddr = if v6 {
                            STACK_IP6.into()
                        } else {
                            STACK_IP.into()
                        };
                        let _ = s.raw_bind(h, me);
                    }
                    self.raw.push(h);
                }
            }
            27 => {
                if let Some(h) = r {
                    let data = input.bytes(255);
                    let _ = s.raw_set_hdrincl(h, input.bool());
                    let _ = s.raw_send_to(now, h, &data, peer_of(v6, input.u8()));
                }
            }
            28 => {
                if let Some(h) = r {
                    let mut buf = vec![0u8; input.len()];
                    let _ = s.raw_recv_from(h, &mut buf);
                }
            }
            29 => {
                if let Some(h) = r {
                    let _ = s.close_at(now, h);
                }
            }
            30 => s.set_icmp_echo_reply(input.bool()),
            _ => {
                // Read the operator's view, as `berth ss` does.
                let _ = s.sockets();
                while s.poll_event().is_some() {}
            }
        }
    }

    /// The stack must still answer a ping from a peer on the link, over IPv4
    /// and, while its address is usable (DAD may have found it duplicate), IPv6.
    fn final_ping(&mut self) {
        self.stack.set_icmp_echo_reply(true);
        self.arp_answer = true;
        // Refill the ICMP rate limiter's bucket.
        self.advance(Duration::from_secs(1));
        self.drain();
        if self.medium == Medium::Ethernet {
            // The pinging host announces itself, as a real one would ARP first.
            let req = ArpRepr {
                operation: ArpOperation::Request,
                source_hardware_addr: mac_of(PING_PEER),
                source_protocol_addr: PING_PEER,
                target_hardware_addr: EthernetAddress([0; 6]),
                target_protocol_addr: STACK_IP,
            };
            self.inject_arp(&req, EthernetAddress::BROADCAST);
            self.drain();
        }
        self.ping_seen = false;
        let echo = Icmpv4Repr::EchoRequest {
            ident: 0xbe57,
            seq_no: 0x1234,
            data: b"still alive?",
        };
        let mut buf = vec![0u8; echo.buffer_len()];
        echo.emit(&mut buf);
        let pkt = self.ip_packet(PING_PEER, STACK_IP, IpProtocol::ICMP, &buf);
        self.inject_ip(&pkt);
        self.drain();
        assert!(
            self.ping_seen,
            "the stack did not answer a ping at the end; stats: {:?}",
            self.stack.stats()
        );
        self.check(|| "the final ping".into());
        self.final_ping6();
    }
}

/// Operations `step` knows (op byte modulo this); 18 and up are socket calls.
const OPS: u8 = 24;

fn eth(
    src: EthernetAddress,
    dst: EthernetAddress,
    ethertype: EtherType,
    payload: &[u8],
) -> Vec<u8> {
    let mut f = vec![0u8; 14 + payload.len()];
    let repr = EthernetRepr {
        src_addr: src,
        dst_addr: dst,
        ethertype,
    };
    let mut frame = EthernetFrame::new_unchecked(&mut f[..]);
    repr.emit(&mut frame);
    frame.payload_mut().copy_from_slice(payload);
    f
}

/// Where to cut a payload of `len` bytes into fragments: up to six pieces at
/// fuzzer-chosen 8-byte boundaries, some starting 8 bytes early (overlaps),
/// rotated into any order.
fn cut_fragments(len: usize, input: &mut Input) -> Vec<(usize, usize)> {
    let n = 1 + input.u8() as usize % 6;
    let mut frags = Vec::new();
    let mut off = 0usize;
    for k in 0..n {
        if off >= len {
            break;
        }
        let piece = if k + 1 == n {
            len - off
        } else {
            (8 * (1 + input.u8() as usize % 32)).min(len - off)
        };
        // Start a little earlier now and then: an overlap.
        let start = if input.u8().is_multiple_of(8) {
            off.saturating_sub(8)
        } else {
            off
        };
        frags.push((start, off + piece));
        off += piece;
    }
    let rot = input.u8() as usize;
    let nf = frags.len();
    (0..nf).map(|j| frags[(j + rot) % nf]).collect()
}
