//! A tiny hand-driven network for end-to-end tests of `berth_core::Stack`.
//!
//! `Net` owns several stacks and "segments" (hubs): a frame one stack transmits on
//! an interface is handed to every other interface attached to the same segment.
//! Time is a manual virtual clock; `advance` runs every stack's timers at their
//! `poll_timeout` deadlines, in order, pumping frames in between.
//!
//! A `tap` closure may inspect every frame and decide to deliver, drop, capture (keep
//! it aside in `captured` for the test to replay) or replace it.

#![allow(dead_code)]

pub mod v6;

use berth_core::wire::{
    self, ArpOperation, ArpPacket, ArpRepr, EtherType, EthernetAddress, EthernetFrame,
    EthernetRepr, Icmpv4Packet, Icmpv4Repr, IpProtocol, Ipv4Addr, Ipv4Cidr, Ipv4Packet, Ipv4Repr,
    UdpRepr,
};
use berth_core::{Config, Duration, IfaceConfig, IfaceId, Instant, Medium, Stack};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

/// 192.0.2.n (TEST-NET-1).
pub fn ip(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(192, 0, 2, n)
}

/// 02:00:00:00:00:n (locally administered unicast).
pub fn mac(n: u8) -> EthernetAddress {
    EthernetAddress([0x02, 0, 0, 0, 0, n])
}

pub fn sa(n: u8, port: u16) -> SocketAddr {
    SocketAddr::new(ip(n).into(), port)
}

pub fn any(port: u16) -> SocketAddr {
    SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), port)
}

pub fn sa4(ip: Ipv4Addr, port: u16) -> SocketAddr {
    SocketAddr::new(ip.into(), port)
}

/// The IPv4 address inside `a` (these tests run over IPv4 only).
pub fn v4(a: impl Into<IpAddr>) -> Ipv4Addr {
    match a.into() {
        IpAddr::V4(a) => a,
        IpAddr::V6(a) => panic!("{a}: an IPv6 address in an IPv4 test"),
    }
}

pub fn cidr(addr: Ipv4Addr, prefix: u8) -> Ipv4Cidr {
    Ipv4Cidr::new(addr, prefix).unwrap()
}

pub fn t0() -> Instant {
    Instant::from_millis(1_000)
}

/// A frame seen on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub at: Instant,
    pub node: usize,
    pub iface: IfaceId,
    pub bytes: Vec<u8>,
}

pub enum Action {
    Deliver,
    Drop,
    /// Keep the frame in `Net::captured` instead of delivering it.
    Capture,
    Replace(Vec<u8>),
    /// Drop the frame and hand these bytes back to the interface that sent
    /// it, as a router answers with an ICMP error.
    Reply(Vec<u8>),
}

pub type Tap = Box<dyn FnMut(&Frame) -> Action>;

pub struct Net {
    pub now: Instant,
    pub nodes: Vec<Stack>,
    /// Medium of each node's interfaces, by node then interface index.
    pub media: Vec<Vec<Medium>>,
    segments: Vec<Vec<(usize, IfaceId)>>,
    attach: HashMap<(usize, IfaceId), usize>,
    /// Every frame transmitted by any node, in order.
    pub log: Vec<Frame>,
    pub captured: Vec<Frame>,
    pub tap: Option<Tap>,
}

impl Net {
    pub fn new() -> Net {
        Net {
            now: t0(),
            nodes: Vec::new(),
            media: Vec::new(),
            segments: Vec::new(),
            attach: HashMap::new(),
            log: Vec::new(),
            captured: Vec::new(),
            tap: None,
        }
    }

    pub fn add_node(&mut self, config: Config) -> usize {
        self.nodes.push(Stack::new(config));
        self.media.push(Vec::new());
        self.nodes.len() - 1
    }

    pub fn add_iface(
        &mut self,
        node: usize,
        medium: Medium,
        addr: Ipv4Cidr,
        mtu: usize,
    ) -> IfaceId {
        let id = self.nodes[node]
            .add_interface(IfaceConfig {
                medium,
                address: addr,
                mtu,
            })
            .unwrap();
        assert_eq!(id.0, self.media[node].len());
        self.media[node].push(medium);
        id
    }

    pub fn add_segment(&mut self, members: &[(usize, IfaceId)]) -> usize {
        let s = self.segments.len();
        for m in members {
            assert!(self.attach.insert(*m, s).is_none(), "{m:?} attached twice");
        }
        self.segments.push(members.to_vec());
        s
    }

    /// Two stacks joined by a point-to-point IP link: node 0 is 192.0.2.1/24, node 1
    /// is 192.0.2.2/24.
    pub fn ip_pair(a: Config, b: Config, mtu: usize) -> Net {
        let mut net = Net::new();
        let n0 = net.add_node(a);
        let n1 = net.add_node(b);
        let i0 = net.add_iface(n0, Medium::Ip, cidr(ip(1), 24), mtu);
        let i1 = net.add_iface(n1, Medium::Ip, cidr(ip(2), 24), mtu);
        net.add_segment(&[(n0, i0), (n1, i1)]);
        net
    }

    /// `configs.len()` stacks on one Ethernet hub; node i is 192.0.2.(i+1)/24 with MAC
    /// 02:00:00:00:00:(i+1).
    pub fn eth_lan(configs: Vec<Config>, mtu: usize) -> Net {
        let mut net = Net::new();
        let mut members = Vec::new();
        for (i, c) in configs.into_iter().enumerate() {
            let n = net.add_node(c);
            let k = (i + 1) as u8;
            let id = net.add_iface(n, Medium::Ethernet(mac(k)), cidr(ip(k), 24), mtu);
            members.push((n, id));
        }
        net.add_segment(&members);
        net
    }

    pub fn set_tap(&mut self, tap: impl FnMut(&Frame) -> Action + 'static) {
        self.tap = Some(Box::new(tap));
    }

    pub fn clear_tap(&mut self) {
        self.tap = None;
    }

    /// Hand `bytes` to `node` as if it arrived on `iface`.
    pub fn inject(&mut self, node: usize, iface: IfaceId, bytes: &[u8]) {
        self.nodes[node].receive(self.now, iface, bytes);
    }

    /// Deliver a frame sent by `from` to every other member of its segment.
    fn fanout(&mut self, from: (usize, IfaceId), bytes: &[u8]) {
        let Some(&s) = self.attach.get(&from) else {
            return;
        };
        for i in 0..self.segments[s].len() {
            let (n, ifc) = self.segments[s][i];
            if (n, ifc) != from {
                self.nodes[n].receive(self.now, ifc, bytes);
            }
        }
    }

    /// Move frames until no stack has anything left to send. Returns frames moved.
    pub fn pump(&mut self) -> usize {
        let mut moved = 0;
        loop {
            let mut progressed = false;
            for n in 0..self.nodes.len() {
                while let Some(t) = self.nodes[n].poll_transmit(self.now) {
                    progressed = true;
                    moved += 1;
                    assert!(moved < 2_000_000, "runaway frame exchange");
                    let f = Frame {
                        at: self.now,
                        node: n,
                        iface: t.iface,
                        bytes: t.frame,
                    };
                    let action = match self.tap.as_mut() {
                        Some(tap) => tap(&f),
                        None => Action::Deliver,
                    };
                    match action {
                        Action::Deliver => self.fanout((n, f.iface), &f.bytes),
                        Action::Drop => {}
                        Action::Capture => self.captured.push(f.clone()),
                        Action::Replace(b) => self.fanout((n, f.iface), &b),
                        Action::Reply(b) => self.nodes[n].receive(self.now, f.iface, &b),
                    }
                    self.log.push(f);
                }
            }
            if !progressed {
                return moved;
            }
        }
    }

    /// Pump, and run any timer already due.
    pub fn settle(&mut self) {
        self.advance(Duration::ZERO);
    }

    /// Let `d` of virtual time pass, firing every timer at its own deadline.
    pub fn advance(&mut self, d: Duration) {
        let target = self.now + d;
        self.pump();
        // Rounds in a row at one instant: a timer that stays due after it ran
        // would otherwise spin here forever.
        let mut same_instant = 0u32;
        loop {
            let next = self.nodes.iter().filter_map(|s| s.poll_timeout()).min();
            match next {
                Some(t) if t <= target => {
                    if t <= self.now {
                        same_instant += 1;
                        assert!(same_instant < 100_000, "timer spin at {}", self.now);
                    } else {
                        same_instant = 0;
                    }
                    self.now = self.now.max(t);
                    let now = self.now;
                    for s in &mut self.nodes {
                        if s.poll_timeout().is_some_and(|x| x <= now) {
                            s.handle_timeout(now);
                        }
                    }
                    self.pump();
                }
                _ => break,
            }
        }
        self.now = target;
        for s in &mut self.nodes {
            s.handle_timeout(target);
        }
        self.pump();
    }

    /// Frames logged since index `from`.
    pub fn frames_since(&self, from: usize) -> &[Frame] {
        &self.log[from..]
    }

    /// The IPv4 packet inside a logged frame (strips Ethernet when the sender's
    /// interface is Ethernet; `None` for ARP and other EtherTypes).
    pub fn ip_of<'a>(&self, f: &'a Frame) -> Option<&'a [u8]> {
        ip_packet(self.media[f.node][f.iface.0], &f.bytes)
    }
}

impl Default for Net {
    fn default() -> Self {
        Net::new()
    }
}

// ---- frame helpers ----------------------------------------------------------------

/// The IPv4 packet in `frame` on a link of `medium`.
pub fn ip_packet(medium: Medium, frame: &[u8]) -> Option<&[u8]> {
    match medium {
        Medium::Ip => Some(frame),
        Medium::Ethernet(_) => {
            let f = EthernetFrame::new_checked(frame).ok()?;
            if f.ethertype() != EtherType::Ipv4 {
                return None;
            }
            Some(&frame[wire::ethernet::HEADER_LEN..])
        }
    }
}

/// The ARP packet in an Ethernet frame, if it is one.
pub fn arp_of(frame: &[u8]) -> Option<ArpRepr> {
    let f = EthernetFrame::new_checked(frame).ok()?;
    if f.ethertype() != EtherType::Arp {
        return None;
    }
    ArpRepr::parse(&ArpPacket::new_checked(f.payload()).ok()?).ok()
}

pub fn eth_dst(frame: &[u8]) -> EthernetAddress {
    EthernetFrame::new_checked(frame).unwrap().dst_addr()
}

/// Parsed IPv4 header and the packet's payload (checksum verified).
pub fn parse_ip(pkt: &[u8]) -> Option<(Ipv4Repr, &[u8])> {
    let p = Ipv4Packet::new_checked(pkt).ok()?;
    let r = Ipv4Repr::parse(&p).ok()?;
    let hl = p.header_len();
    Some((r, &pkt[hl..p.total_len()]))
}

/// ICMP message inside an IPv4 packet.
pub fn icmp_of(pkt: &[u8]) -> Option<(Ipv4Repr, Icmpv4Repr<'_>)> {
    let (ipr, payload) = parse_ip(pkt)?;
    if ipr.protocol != IpProtocol::ICMP {
        return None;
    }
    let r = Icmpv4Repr::parse(&Icmpv4Packet::new_checked(payload).ok()?).ok()?;
    Some((ipr, r))
}

/// Build an IPv4 packet (20-byte header, checksum filled).
#[allow(clippy::too_many_arguments)]
pub fn build_ip(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: IpProtocol,
    ident: u16,
    more_frags: bool,
    frag_offset: u16,
    payload: &[u8],
) -> Vec<u8> {
    let repr = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        protocol,
        payload_len: payload.len(),
        ttl: 64,
        dscp_ecn: 0,
        ident,
        dont_frag: false,
        more_frags,
        frag_offset,
    };
    let mut v = vec![0u8; repr.buffer_len()];
    repr.emit(&mut v);
    v[20..].copy_from_slice(payload);
    v
}

/// A whole UDP/IPv4 packet.
pub fn build_udp(src: SocketAddr, dst: SocketAddr, ident: u16, data: &[u8]) -> Vec<u8> {
    let (src_ip, dst_ip) = (v4(src.ip()), v4(dst.ip()));
    let u = UdpRepr {
        src_port: src.port(),
        dst_port: dst.port(),
        payload: data,
    };
    let mut seg = vec![0u8; u.buffer_len()];
    u.emit(&mut seg, &src_ip, &dst_ip);
    build_ip(src_ip, dst_ip, IpProtocol::UDP, ident, false, 0, &seg)
}

/// ICMP message bytes.
pub fn icmp_bytes(r: &Icmpv4Repr) -> Vec<u8> {
    let mut v = vec![0u8; r.buffer_len()];
    r.emit(&mut v);
    v
}

pub fn echo_request(ident: u16, seq_no: u16, data: &[u8]) -> Vec<u8> {
    icmp_bytes(&Icmpv4Repr::EchoRequest {
        ident,
        seq_no,
        data,
    })
}

/// Wrap an IPv4 packet (or ARP) in Ethernet II.
pub fn eth(
    src: EthernetAddress,
    dst: EthernetAddress,
    ethertype: EtherType,
    payload: &[u8],
) -> Vec<u8> {
    let mut v = vec![0u8; wire::ethernet::HEADER_LEN + payload.len()];
    let mut f = EthernetFrame::new_unchecked(&mut v[..]);
    EthernetRepr {
        src_addr: src,
        dst_addr: dst,
        ethertype,
    }
    .emit(&mut f);
    f.payload_mut().copy_from_slice(payload);
    v
}

pub fn arp_frame(
    op: ArpOperation,
    sha: EthernetAddress,
    spa: Ipv4Addr,
    tha: EthernetAddress,
    tpa: Ipv4Addr,
    eth_dst: EthernetAddress,
) -> Vec<u8> {
    let r = ArpRepr {
        operation: op,
        source_hardware_addr: sha,
        source_protocol_addr: spa,
        target_hardware_addr: tha,
        target_protocol_addr: tpa,
    };
    let mut b = [0u8; wire::arp::PACKET_LEN];
    r.emit(&mut b);
    eth(sha, eth_dst, EtherType::Arp, &b)
}

/// Drain every frame a lone stack wants to send (no network attached).
pub fn drain(stack: &mut Stack, now: Instant) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(t) = stack.poll_transmit(now) {
        out.push(t.frame);
    }
    out
}

/// Run a lone stack's timers from `now` to `until` in deadline order, draining
/// what it sends, then once more at `until`.
pub fn run_timers(stack: &mut Stack, now: Instant, until: Instant) {
    let mut t = now;
    while let Some(d) = stack.poll_timeout() {
        if d > until {
            break;
        }
        t = t.max(d);
        stack.handle_timeout(t);
        drain(stack, t);
    }
    stack.handle_timeout(until);
    drain(stack, until);
}

/// Does `stack` (alone, interface 0 of `medium`, address `me`) answer a ping from
/// `peer` (`peer_mac` on Ethernet)? ARP requests for the peer are answered, and the
/// reply is accepted whatever its destination MAC (input may have poisoned the
/// cache legitimately).
pub fn answers_ping(
    stack: &mut Stack,
    now: Instant,
    medium: Medium,
    me: Ipv4Addr,
    peer: Ipv4Addr,
    peer_mac: EthernetAddress,
    seq: u16,
) -> bool {
    let ping = build_ip(
        peer,
        me,
        IpProtocol::ICMP,
        0x7777,
        false,
        0,
        &echo_request(0xbeef, seq, b"still alive?"),
    );
    let frame = match medium {
        Medium::Ip => ping,
        Medium::Ethernet(m) => eth(peer_mac, m, EtherType::Ipv4, &ping),
    };
    stack.receive(now, IfaceId(0), &frame);
    for _round in 0..4 {
        let out = drain(stack, now);
        if out.is_empty() {
            return false;
        }
        for f in out {
            if let Some(a) = arp_of(&f) {
                if let Medium::Ethernet(m) = medium {
                    if a.operation == ArpOperation::Request && a.target_protocol_addr == peer {
                        let reply = arp_frame(ArpOperation::Reply, peer_mac, peer, m, me, m);
                        stack.receive(now, IfaceId(0), &reply);
                    }
                }
                continue;
            }
            let Some(pkt) = ip_packet(medium, &f) else {
                continue;
            };
            if let Some((
                ipr,
                Icmpv4Repr::EchoReply {
                    ident,
                    seq_no,
                    data,
                },
            )) = icmp_of(pkt)
            {
                if ipr.dst_addr == peer
                    && ident == 0xbeef
                    && seq_no == seq
                    && data == b"still alive?"
                {
                    return true;
                }
            }
        }
    }
    false
}

/// A Config with a fixed seed.
/// A seeded config. Duplicate Address Detection is off, so the frame logs of
/// these tests hold only what each test sends (IPv6 tests that exercise DAD
/// turn it on).
pub fn cfg(seed: u64) -> Config {
    Config {
        seed: Some(seed),
        dad_transmits: 0,
        ..Config::default()
    }
}

// ---- TCP helpers --------------------------------------------------------------------

use berth_core::wire::{SeqNumber, TcpFlags, TcpPacket, TcpRepr};
use berth_core::SocketHandle;

/// A TCP segment seen on the wire, owned.
#[derive(Debug, Clone)]
pub struct Seg {
    pub at: Instant,
    pub node: usize,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub seq: SeqNumber,
    pub ack: SeqNumber,
    pub flags: TcpFlags,
    pub window: u16,
    pub payload: Vec<u8>,
    pub mss: Option<u16>,
    pub wscale: Option<u8>,
    pub ts: Option<(u32, u32)>,
}

impl Seg {
    pub fn has(&self, f: TcpFlags) -> bool {
        self.flags.contains(f)
    }
    pub fn is_syn(&self) -> bool {
        self.has(TcpFlags::SYN) && !self.has(TcpFlags::ACK)
    }
    pub fn is_synack(&self) -> bool {
        self.has(TcpFlags::SYN) && self.has(TcpFlags::ACK)
    }
    pub fn is_rst(&self) -> bool {
        self.has(TcpFlags::RST)
    }
    pub fn is_fin(&self) -> bool {
        self.has(TcpFlags::FIN)
    }
    /// A bare ACK: no SYN/FIN/RST, no data.
    pub fn is_pure_ack(&self) -> bool {
        self.payload.is_empty()
            && !self.has(TcpFlags::SYN)
            && !self.has(TcpFlags::FIN)
            && !self.has(TcpFlags::RST)
    }
}

/// Parse the TCP segment inside an IPv4 packet (checksum verified).
pub fn tcp_of(pkt: &[u8]) -> Option<(Ipv4Repr, TcpRepr<'_>)> {
    let (ipr, payload) = parse_ip(pkt)?;
    if ipr.protocol != IpProtocol::TCP {
        return None;
    }
    let p = TcpPacket::new_checked(payload).ok()?;
    let r = TcpRepr::parse(&p, &ipr.src_addr, &ipr.dst_addr).ok()?;
    Some((ipr, r))
}

/// The owned TCP segment of a frame logged by node `node` on a link of `medium`.
pub fn seg_of(medium: Medium, f: &Frame) -> Option<Seg> {
    let pkt = ip_packet(medium, &f.bytes)?;
    let (ipr, r) = tcp_of(pkt)?;
    Some(Seg {
        at: f.at,
        node: f.node,
        src: SocketAddr::new(ipr.src_addr.into(), r.src_port),
        dst: SocketAddr::new(ipr.dst_addr.into(), r.dst_port),
        seq: r.seq_number,
        ack: r.ack_number,
        flags: r.flags,
        window: r.window_len,
        payload: r.payload.to_vec(),
        mss: r.max_seg_size,
        wscale: r.window_scale,
        ts: r.timestamp,
    })
}

/// A whole TCP/IPv4 packet carrying `r`.
pub fn build_tcp(src: impl Into<IpAddr>, dst: impl Into<IpAddr>, r: &TcpRepr) -> Vec<u8> {
    let (src, dst) = (v4(src), v4(dst));
    let mut seg = vec![0u8; r.buffer_len()];
    r.emit(&mut seg, &src, &dst);
    build_ip(src, dst, IpProtocol::TCP, 0x4242, false, 0, &seg)
}

impl Net {
    /// Every TCP segment logged since index `from`.
    pub fn segs_since(&self, from: usize) -> Vec<Seg> {
        self.log[from..]
            .iter()
            .filter_map(|f| seg_of(self.media[f.node][f.iface.0], f))
            .collect()
    }

    pub fn segs(&self) -> Vec<Seg> {
        self.segs_since(0)
    }

    /// Set up a listener on node `server` port `port` (backlog `backlog`).
    pub fn listen(&mut self, server: usize, port: u16, backlog: usize) -> SocketHandle {
        let s = &mut self.nodes[server];
        let l = s.tcp_socket();
        s.tcp_bind(l, any(port)).unwrap();
        s.tcp_listen(l, backlog).unwrap();
        l
    }

    /// Start a connect from node `client` to `to`.
    pub fn connect(&mut self, client: usize, to: SocketAddr) -> SocketHandle {
        let now = self.now;
        let s = &mut self.nodes[client];
        let c = s.tcp_socket();
        s.tcp_connect(now, c, to).unwrap();
        c
    }

    /// Send all of `data` from (node, h), advancing time in 1 ms steps while the send
    /// buffer is full; reading on (rnode, rh) concurrently. Returns what was read
    /// once all of it arrived (or `limit` elapsed).
    pub fn transfer(
        &mut self,
        from: (usize, SocketHandle),
        to: (usize, SocketHandle),
        data: &[u8],
        limit: Duration,
    ) -> Vec<u8> {
        let deadline = self.now + limit;
        let mut sent = 0;
        let mut got = Vec::new();
        let mut buf = vec![0u8; 65536];
        while got.len() < data.len() && self.now < deadline {
            let now = self.now;
            while sent < data.len() {
                match self.nodes[from.0].tcp_send(now, from.1, &data[sent..]) {
                    Ok(n) => sent += n,
                    Err(_) => break,
                }
            }
            self.settle();
            loop {
                match self.nodes[to.0].tcp_recv(self.now, to.1, &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            self.advance(Duration::from_millis(1));
        }
        got
    }

    /// Read everything currently queued on (node, h).
    pub fn read_all(&mut self, node: usize, h: SocketHandle) -> Vec<u8> {
        let mut got = Vec::new();
        let mut buf = vec![0u8; 65536];
        loop {
            match self.nodes[node].tcp_recv(self.now, h, &mut buf) {
                Ok(0) | Err(_) => return got,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    }
}

/// Pattern data for transfers.
pub fn pattern(n: usize, salt: u8) -> Vec<u8> {
    (0..n)
        .map(|i| ((i * 131 + salt as usize * 7 + i / 251) % 251) as u8)
        .collect()
}

/// A connected pair over a point-to-point IP link (MTU 1500): node 0 (192.0.2.1) is
/// the client, node 1 (192.0.2.2) the server listening on port 80.
/// Returns (net, listener, client, accepted server socket).
pub fn tcp_pair(seed: u64) -> (Net, SocketHandle, SocketHandle, SocketHandle) {
    let mut net = Net::ip_pair(cfg(seed), cfg(seed + 1), 1500);
    let l = net.listen(1, 80, 16);
    let c = net.connect(0, sa(2, 80));
    net.settle();
    let (s, _) = net.nodes[1].tcp_accept(l).unwrap();
    (net, l, c, s)
}

/// Recompute the TCP checksum of a whole IPv4 packet (20-byte IP header) in place,
/// after a test edited the segment.
pub fn fix_tcp_checksum(pkt: &mut [u8]) {
    let seg_len = pkt.len() - 20;
    pkt[20 + 16] = 0;
    pkt[20 + 17] = 0;
    let mut sum: u32 = 0;
    let mut add = |b: &[u8]| {
        for c in b.chunks(2) {
            let w = if c.len() == 2 {
                u16::from_be_bytes([c[0], c[1]])
            } else {
                u16::from_be_bytes([c[0], 0])
            };
            sum += w as u32;
        }
    };
    add(&pkt[12..20]);
    add(&[0, 6]);
    add(&(seg_len as u16).to_be_bytes());
    add(&pkt[20..]);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let c = !(sum as u16);
    pkt[36..38].copy_from_slice(&c.to_be_bytes());
}
