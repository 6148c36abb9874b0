//! DHCPv4 messages (RFC 2131 §2) and the options a client needs (RFC 2132).
//!
//! [`DhcpPacket`] is the view over the fixed BOOTP part; [`DhcpRepr`] the
//! value with the options parsed (message type, server identifier, requested
//! address, subnet mask, routers, DNS servers, lease time, T1, T2, message),
//! options overloaded into `file`/`sname` (option 52) included. Address lists
//! keep their first [`AddrList::CAP`] addresses; nothing is allocated.

use crate::ethernet::EthernetAddress;
use crate::{be16, be32, ip4, put16, put32, Error, Result};
use std::net::Ipv4Addr;

/// The server's port (RFC 2131 §4.1).
pub const SERVER_PORT: u16 = 67;
/// The client's port.
pub const CLIENT_PORT: u16 = 68;
/// The fixed part up to the options, magic cookie included.
pub const HEADER_LEN: usize = 240;
/// Smallest message a BOOTP relay or server must accept (RFC 1542 §2.1):
/// what berth pads to.
pub const MIN_LEN: usize = 300;
/// The magic cookie in front of the options (RFC 2131 §3).
pub const MAGIC: u32 = 0x6382_5363;

const OP_REQUEST: u8 = 1;
const OP_REPLY: u8 = 2;
const HTYPE_ETHERNET: u8 = 1;
const FLAG_BROADCAST: u16 = 0x8000;

/// Option codes (RFC 2132).
pub mod opt {
    /// Padding (§3.1).
    pub const PAD: u8 = 0;
    /// Subnet mask (§3.3).
    pub const SUBNET_MASK: u8 = 1;
    /// Routers, in order of preference (§3.5).
    pub const ROUTER: u8 = 3;
    /// DNS servers, in order of preference (§3.8).
    pub const DNS_SERVER: u8 = 6;
    /// Host name (§3.14).
    pub const HOST_NAME: u8 = 12;
    /// Requested IP address (§9.1).
    pub const REQUESTED_IP: u8 = 50;
    /// IP address lease time, seconds (§9.2).
    pub const LEASE_TIME: u8 = 51;
    /// Option overload: more options in `file` (1), `sname` (2) or both (3) (§9.3).
    pub const OVERLOAD: u8 = 52;
    /// DHCP message type (§9.6).
    pub const MESSAGE_TYPE: u8 = 53;
    /// Server identifier (§9.7).
    pub const SERVER_ID: u8 = 54;
    /// Parameter request list (§9.8).
    pub const PARAMETER_REQUEST_LIST: u8 = 55;
    /// Message, e.g. why a NAK (§9.9).
    pub const MESSAGE: u8 = 56;
    /// Maximum DHCP message size (§9.10).
    pub const MAX_MESSAGE_SIZE: u8 = 57;
    /// Renewal (T1) time, seconds (§9.11).
    pub const RENEWAL_TIME: u8 = 58;
    /// Rebinding (T2) time, seconds (§9.12).
    pub const REBINDING_TIME: u8 = 59;
    /// Client identifier (§9.14).
    pub const CLIENT_ID: u8 = 61;
    /// End of the options (§3.2).
    pub const END: u8 = 255;
}

/// DHCP message types (RFC 2132 §9.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageType {
    /// Client broadcast to locate servers.
    Discover,
    /// Server offer of an address.
    Offer,
    /// Client request: select an offer, renew, rebind or confirm.
    Request,
    /// Client: the offered address is in use.
    Decline,
    /// Server: configuration granted, with the lease.
    Ack,
    /// Server: the request is refused; start over.
    Nak,
    /// Client gives the address back.
    Release,
    /// Client asks for parameters only.
    Inform,
}

impl MessageType {
    fn from_u8(v: u8) -> Option<MessageType> {
        Some(match v {
            1 => MessageType::Discover,
            2 => MessageType::Offer,
            3 => MessageType::Request,
            4 => MessageType::Decline,
            5 => MessageType::Ack,
            6 => MessageType::Nak,
            7 => MessageType::Release,
            8 => MessageType::Inform,
            _ => return None,
        })
    }
    fn to_u8(self) -> u8 {
        match self {
            MessageType::Discover => 1,
            MessageType::Offer => 2,
            MessageType::Request => 3,
            MessageType::Decline => 4,
            MessageType::Ack => 5,
            MessageType::Nak => 6,
            MessageType::Release => 7,
            MessageType::Inform => 8,
        }
    }
    /// Sent by a server (BOOTREPLY); the others by a client.
    pub fn is_reply(self) -> bool {
        matches!(
            self,
            MessageType::Offer | MessageType::Ack | MessageType::Nak
        )
    }
}

/// A short list of IPv4 addresses (routers, DNS servers) without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AddrList {
    addrs: [Option<Ipv4Addr>; AddrList::CAP],
}

impl AddrList {
    /// How many addresses are kept; further ones are ignored.
    pub const CAP: usize = 4;

    /// A list of the first [`AddrList::CAP`] of `addrs`.
    pub fn new(addrs: &[Ipv4Addr]) -> AddrList {
        let mut l = AddrList::default();
        for (slot, a) in l.addrs.iter_mut().zip(addrs) {
            *slot = Some(*a);
        }
        l
    }
    /// The addresses, in order.
    pub fn iter(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        self.addrs.iter().map_while(|a| *a)
    }
    /// The first address.
    pub fn first(&self) -> Option<Ipv4Addr> {
        self.addrs[0]
    }
    /// No address.
    pub fn is_empty(&self) -> bool {
        self.addrs[0].is_none()
    }
    /// Number of addresses.
    pub fn len(&self) -> usize {
        self.iter().count()
    }
    fn from_option(data: &[u8]) -> Result<AddrList> {
        if data.is_empty() || !data.len().is_multiple_of(4) {
            return Err(Error::BadOption);
        }
        let mut l = AddrList::default();
        for (slot, chunk) in l.addrs.iter_mut().zip(data.chunks_exact(4)) {
            *slot = Some(ip4(chunk, 0));
        }
        Ok(l)
    }
}

/// A view over a DHCP message: the BOOTP fields and the options area.
#[derive(Debug, Clone)]
pub struct DhcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> DhcpPacket<T> {
    /// Wrap without checking (accessors may panic on a short buffer).
    pub fn new_unchecked(buffer: T) -> Self {
        DhcpPacket { buffer }
    }
    /// Checks the fixed part and the magic cookie are present.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if be32(b, 236) != MAGIC {
            return Err(Error::Malformed);
        }
        Ok(DhcpPacket { buffer })
    }
    /// op: 1 BOOTREQUEST, 2 BOOTREPLY.
    pub fn op(&self) -> u8 {
        self.buffer.as_ref()[0]
    }
    /// Hardware address type (1: Ethernet).
    pub fn htype(&self) -> u8 {
        self.buffer.as_ref()[1]
    }
    /// Hardware address length.
    pub fn hlen(&self) -> u8 {
        self.buffer.as_ref()[2]
    }
    /// Transaction ID, chosen by the client.
    pub fn xid(&self) -> u32 {
        be32(self.buffer.as_ref(), 4)
    }
    /// Seconds since the client began.
    pub fn secs(&self) -> u16 {
        be16(self.buffer.as_ref(), 8)
    }
    /// The flags word (bit 15: BROADCAST).
    pub fn flags(&self) -> u16 {
        be16(self.buffer.as_ref(), 10)
    }
    /// Client address (in BOUND, RENEWING, REBINDING).
    pub fn ciaddr(&self) -> Ipv4Addr {
        ip4(self.buffer.as_ref(), 12)
    }
    /// "Your" address: what the server offers or grants.
    pub fn yiaddr(&self) -> Ipv4Addr {
        ip4(self.buffer.as_ref(), 16)
    }
    /// Next server (bootstrap).
    pub fn siaddr(&self) -> Ipv4Addr {
        ip4(self.buffer.as_ref(), 20)
    }
    /// Relay agent.
    pub fn giaddr(&self) -> Ipv4Addr {
        ip4(self.buffer.as_ref(), 24)
    }
    /// The first six octets of chaddr.
    pub fn chaddr(&self) -> EthernetAddress {
        let b = self.buffer.as_ref();
        let mut m = [0u8; 6];
        m.copy_from_slice(&b[28..34]);
        EthernetAddress(m)
    }
    /// The options after the magic cookie.
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
}

/// A DHCP message as a value: the fields and options a client uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DhcpRepr<'a> {
    /// The DHCP message type (option 53); it sets op.
    pub message_type: MessageType,
    /// Transaction ID.
    pub xid: u32,
    /// Seconds since the client began acquiring or renewing.
    pub secs: u16,
    /// The BROADCAST flag: answer by broadcast, the client cannot take unicast
    /// yet (RFC 2131 §4.1).
    pub broadcast: bool,
    /// Client address.
    pub ciaddr: Ipv4Addr,
    /// "Your" address.
    pub yiaddr: Ipv4Addr,
    /// Next server.
    pub siaddr: Ipv4Addr,
    /// Relay agent.
    pub giaddr: Ipv4Addr,
    /// Client hardware address (Ethernet).
    pub chaddr: EthernetAddress,
    /// Option 50.
    pub requested_ip: Option<Ipv4Addr>,
    /// Option 54.
    pub server_id: Option<Ipv4Addr>,
    /// Option 1.
    pub subnet_mask: Option<Ipv4Addr>,
    /// Option 3.
    pub routers: AddrList,
    /// Option 6.
    pub dns_servers: AddrList,
    /// Option 51, seconds.
    pub lease_time: Option<u32>,
    /// Option 58, seconds.
    pub renewal_time: Option<u32>,
    /// Option 59, seconds.
    pub rebinding_time: Option<u32>,
    /// Option 55: the option codes the client asks for.
    pub parameter_request_list: Option<&'a [u8]>,
    /// Option 57.
    pub max_message_size: Option<u16>,
    /// Option 12.
    pub host_name: Option<&'a [u8]>,
    /// Option 56: a server's explanation (with a NAK).
    pub message: Option<&'a [u8]>,
}

impl<'a> DhcpRepr<'a> {
    /// A message with every option absent and addresses 0.0.0.0.
    pub fn new(message_type: MessageType, xid: u32, chaddr: EthernetAddress) -> DhcpRepr<'a> {
        DhcpRepr {
            message_type,
            xid,
            secs: 0,
            broadcast: false,
            ciaddr: Ipv4Addr::UNSPECIFIED,
            yiaddr: Ipv4Addr::UNSPECIFIED,
            siaddr: Ipv4Addr::UNSPECIFIED,
            giaddr: Ipv4Addr::UNSPECIFIED,
            chaddr,
            requested_ip: None,
            server_id: None,
            subnet_mask: None,
            routers: AddrList::default(),
            dns_servers: AddrList::default(),
            lease_time: None,
            renewal_time: None,
            rebinding_time: None,
            parameter_request_list: None,
            max_message_size: None,
            host_name: None,
            message: None,
        }
    }

    /// Parse a message: Ethernet hardware addresses only (`Unsupported`
    /// otherwise), a message type present and agreeing with op (`Malformed`),
    /// every option inside its area (`BadOption`).
    pub fn parse(p: &DhcpPacket<&'a [u8]>) -> Result<DhcpRepr<'a>> {
        let b: &'a [u8] = p.buffer;
        if p.htype() != HTYPE_ETHERNET || p.hlen() != 6 {
            return Err(Error::Unsupported);
        }
        let mut r = DhcpRepr::new(MessageType::Discover, p.xid(), p.chaddr());
        r.secs = p.secs();
        r.broadcast = p.flags() & FLAG_BROADCAST != 0;
        r.ciaddr = p.ciaddr();
        r.yiaddr = p.yiaddr();
        r.siaddr = p.siaddr();
        r.giaddr = p.giaddr();
        let mut message_type = None;
        let mut overload = 0u8;
        walk_options(&b[HEADER_LEN..], &mut r, &mut message_type, &mut overload)?;
        // RFC 2132 §9.3: `file` (108..236) first, then `sname` (44..108).
        if overload & 1 != 0 {
            walk_options(&b[108..236], &mut r, &mut message_type, &mut 0)?;
        }
        if overload & 2 != 0 {
            walk_options(&b[44..108], &mut r, &mut message_type, &mut 0)?;
        }
        let t = message_type.ok_or(Error::Malformed)?;
        let op = if t.is_reply() { OP_REPLY } else { OP_REQUEST };
        if p.op() != op {
            return Err(Error::Malformed);
        }
        r.message_type = t;
        Ok(r)
    }

    fn options_len(&self) -> usize {
        let addr = |o: Option<Ipv4Addr>| if o.is_some() { 6 } else { 0 };
        let list = |l: &AddrList| if l.is_empty() { 0 } else { 2 + 4 * l.len() };
        let secs = |o: Option<u32>| if o.is_some() { 6 } else { 0 };
        let bytes = |o: Option<&[u8]>| o.map_or(0, |d| 2 + d.len().min(255));
        3 + addr(self.requested_ip)
            + addr(self.server_id)
            + addr(self.subnet_mask)
            + list(&self.routers)
            + list(&self.dns_servers)
            + secs(self.lease_time)
            + secs(self.renewal_time)
            + secs(self.rebinding_time)
            + bytes(self.parameter_request_list)
            + if self.max_message_size.is_some() {
                4
            } else {
                0
            }
            + bytes(self.host_name)
            + bytes(self.message)
            + 1
    }

    /// Bytes [`DhcpRepr::emit`] writes: at least [`MIN_LEN`].
    pub fn buffer_len(&self) -> usize {
        (HEADER_LEN + self.options_len()).max(MIN_LEN)
    }

    /// Write the message into `buf` (at least [`DhcpRepr::buffer_len`] long);
    /// the rest of `buf` is zeroed (padding).
    pub fn emit(&self, buf: &mut [u8]) {
        buf.fill(0);
        buf[0] = if self.message_type.is_reply() {
            OP_REPLY
        } else {
            OP_REQUEST
        };
        buf[1] = HTYPE_ETHERNET;
        buf[2] = 6;
        put32(buf, 4, self.xid);
        put16(buf, 8, self.secs);
        put16(buf, 10, if self.broadcast { FLAG_BROADCAST } else { 0 });
        buf[12..16].copy_from_slice(&self.ciaddr.octets());
        buf[16..20].copy_from_slice(&self.yiaddr.octets());
        buf[20..24].copy_from_slice(&self.siaddr.octets());
        buf[24..28].copy_from_slice(&self.giaddr.octets());
        buf[28..34].copy_from_slice(&self.chaddr.0);
        put32(buf, 236, MAGIC);
        let mut w = OptWriter {
            buf,
            at: HEADER_LEN,
        };
        w.put(opt::MESSAGE_TYPE, &[self.message_type.to_u8()]);
        let addrs = [
            (opt::REQUESTED_IP, self.requested_ip),
            (opt::SERVER_ID, self.server_id),
            (opt::SUBNET_MASK, self.subnet_mask),
        ];
        for (code, a) in addrs {
            if let Some(a) = a {
                w.put(code, &a.octets());
            }
        }
        for (code, l) in [
            (opt::ROUTER, &self.routers),
            (opt::DNS_SERVER, &self.dns_servers),
        ] {
            if !l.is_empty() {
                let mut data = [0u8; 4 * AddrList::CAP];
                for (i, a) in l.iter().enumerate() {
                    data[4 * i..4 * i + 4].copy_from_slice(&a.octets());
                }
                w.put(code, &data[..4 * l.len()]);
            }
        }
        let times = [
            (opt::LEASE_TIME, self.lease_time),
            (opt::RENEWAL_TIME, self.renewal_time),
            (opt::REBINDING_TIME, self.rebinding_time),
        ];
        for (code, t) in times {
            if let Some(t) = t {
                w.put(code, &t.to_be_bytes());
            }
        }
        if let Some(l) = self.parameter_request_list {
            w.put(opt::PARAMETER_REQUEST_LIST, l);
        }
        if let Some(m) = self.max_message_size {
            w.put(opt::MAX_MESSAGE_SIZE, &m.to_be_bytes());
        }
        if let Some(h) = self.host_name {
            w.put(opt::HOST_NAME, h);
        }
        if let Some(m) = self.message {
            w.put(opt::MESSAGE, m);
        }
        w.buf[w.at] = opt::END;
    }
}

struct OptWriter<'b> {
    buf: &'b mut [u8],
    at: usize,
}

impl OptWriter<'_> {
    /// One option; data longer than 255 octets is cut (an option's length is
    /// one octet).
    fn put(&mut self, code: u8, data: &[u8]) {
        let data = &data[..data.len().min(255)];
        self.buf[self.at] = code;
        self.buf[self.at + 1] = data.len() as u8;
        self.buf[self.at + 2..self.at + 2 + data.len()].copy_from_slice(data);
        self.at += 2 + data.len();
    }
}

fn exact<const N: usize>(data: &[u8]) -> Result<[u8; N]> {
    data.try_into().map_err(|_| Error::BadOption)
}

/// Read the options in `area` into `r` (RFC 2132 §2: code, length, data;
/// PAD and END without length). Unknown options are skipped.
fn walk_options<'a>(
    area: &'a [u8],
    r: &mut DhcpRepr<'a>,
    message_type: &mut Option<MessageType>,
    overload: &mut u8,
) -> Result<()> {
    let mut at = 0;
    while let Some(&code) = area.get(at) {
        match code {
            opt::PAD => {
                at += 1;
                continue;
            }
            opt::END => return Ok(()),
            _ => {}
        }
        let &len = area.get(at + 1).ok_or(Error::BadOption)?;
        let data = area
            .get(at + 2..at + 2 + len as usize)
            .ok_or(Error::BadOption)?;
        at += 2 + len as usize;
        let addr = |d: &[u8]| exact::<4>(d).map(Ipv4Addr::from);
        let secs = |d: &[u8]| exact::<4>(d).map(u32::from_be_bytes);
        match code {
            opt::MESSAGE_TYPE => {
                let [t] = exact::<1>(data)?;
                *message_type = Some(MessageType::from_u8(t).ok_or(Error::Malformed)?);
            }
            opt::OVERLOAD => *overload = exact::<1>(data)?[0],
            opt::REQUESTED_IP => r.requested_ip = Some(addr(data)?),
            opt::SERVER_ID => r.server_id = Some(addr(data)?),
            opt::SUBNET_MASK => r.subnet_mask = Some(addr(data)?),
            opt::ROUTER => r.routers = AddrList::from_option(data)?,
            opt::DNS_SERVER => r.dns_servers = AddrList::from_option(data)?,
            opt::LEASE_TIME => r.lease_time = Some(secs(data)?),
            opt::RENEWAL_TIME => r.renewal_time = Some(secs(data)?),
            opt::REBINDING_TIME => r.rebinding_time = Some(secs(data)?),
            opt::PARAMETER_REQUEST_LIST => r.parameter_request_list = Some(data),
            opt::MAX_MESSAGE_SIZE => r.max_message_size = Some(u16::from_be_bytes(exact(data)?)),
            opt::HOST_NAME => r.host_name = Some(data),
            opt::MESSAGE => r.message = Some(data),
            _ => {}
        }
    }
    // RFC 2131 §4.1 requires END; a missing one at the very end is tolerated
    // (some servers pad without it), options cut inside are not (above).
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 9]);

    fn offer() -> DhcpRepr<'static> {
        let mut r = DhcpRepr::new(MessageType::Offer, 0xdead_beef, MAC);
        r.yiaddr = Ipv4Addr::new(192, 0, 2, 50);
        r.server_id = Some(Ipv4Addr::new(192, 0, 2, 1));
        r.subnet_mask = Some(Ipv4Addr::new(255, 255, 255, 0));
        r.routers = AddrList::new(&[Ipv4Addr::new(192, 0, 2, 1)]);
        r.dns_servers = AddrList::new(&[Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 0, 2, 2)]);
        r.lease_time = Some(120);
        r.renewal_time = Some(10);
        r.rebinding_time = Some(20);
        r.message = Some(b"hello");
        r
    }

    fn emit(r: &DhcpRepr<'_>) -> Vec<u8> {
        let mut b = vec![0u8; r.buffer_len()];
        r.emit(&mut b);
        b
    }

    #[test]
    fn round_trip_and_layout() {
        let r = offer();
        let b = emit(&r);
        assert_eq!(b.len(), MIN_LEN);
        assert_eq!(&b[..3], &[2, 1, 6]);
        assert_eq!(&b[236..240], &[99, 130, 83, 99]);
        assert_eq!(&b[240..243], &[53, 1, 2]);
        let p = DhcpPacket::new_checked(&b[..]).unwrap();
        assert_eq!(DhcpRepr::parse(&p).unwrap(), r);
        let mut d = DhcpRepr::new(MessageType::Discover, 1, MAC);
        d.broadcast = true;
        d.parameter_request_list = Some(&[1, 3, 6, 51, 58, 59]);
        let b = emit(&d);
        assert_eq!(&b[10..12], &[0x80, 0]);
        assert_eq!(b[0], 1);
        let p = DhcpPacket::new_checked(&b[..]).unwrap();
        assert_eq!(DhcpRepr::parse(&p).unwrap(), d);
    }

    #[test]
    fn overloaded_file_field_is_read() {
        let mut b = emit(&DhcpRepr::new(MessageType::Ack, 5, MAC));
        // Option 52 = 1 in the options area, the lease time in `file`.
        b[243..246].copy_from_slice(&[52, 1, 1]);
        b[246] = 255;
        b[108..115].copy_from_slice(&[51, 4, 0, 0, 0, 60, 255]);
        let p = DhcpPacket::new_checked(&b[..]).unwrap();
        assert_eq!(DhcpRepr::parse(&p).unwrap().lease_time, Some(60));
    }

    #[test]
    fn malformed_messages_are_errors() {
        let b = emit(&offer());
        for n in 0..HEADER_LEN {
            assert_eq!(
                DhcpPacket::new_checked(&b[..n]).err(),
                Some(Error::Truncated)
            );
        }
        fn parse(b: &[u8]) -> Result<DhcpRepr<'_>> {
            DhcpPacket::new_checked(b).and_then(|p| DhcpRepr::parse(&p))
        }
        let mut bad = b.clone();
        bad[236] = 0;
        assert_eq!(parse(&bad), Err(Error::Malformed));
        let mut bad = b.clone();
        bad[0] = 1; // BOOTREQUEST carrying an OFFER
        assert_eq!(parse(&bad), Err(Error::Malformed));
        let mut bad = b.clone();
        bad[2] = 16;
        assert_eq!(parse(&bad), Err(Error::Unsupported));
        let mut bad = b.clone();
        bad[242] = 9; // no such message type
        assert_eq!(parse(&bad), Err(Error::Malformed));
        let mut bad = b.clone();
        bad[241] = 2; // message type of two octets
        assert_eq!(parse(&bad), Err(Error::BadOption));
        // An option running past the end.
        let mut cut = b[..250].to_vec();
        cut[243] = 1;
        cut[244] = 40;
        assert_eq!(parse(&cut), Err(Error::BadOption));
        // A router list of 5 octets.
        let mut r = offer();
        r.routers = AddrList::default();
        let mut bad = emit(&r);
        let end = bad[240..].iter().position(|&c| c == 255).unwrap() + 240;
        bad[end..end + 8].copy_from_slice(&[3, 5, 1, 2, 3, 4, 5, 255]);
        assert_eq!(parse(&bad), Err(Error::BadOption));
        // No message type: plain BOOTP, not DHCP.
        let mut bad = b.clone();
        bad[240] = 0;
        bad[241] = 0;
        bad[242] = 0;
        assert_eq!(parse(&bad), Err(Error::Malformed));
    }
}
