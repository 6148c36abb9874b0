//! Linux TUN (layer 3) and TAP (layer 2) devices attached to a [`Stack`].
//!
//! [`attach`] opens an existing device or creates one (through the tun-rs crate),
//! takes the MTU from the device, adds an interface to the stack whose frames are
//! written to the device by the pumping thread, and starts a reader thread that
//! hands the frames read from the device to [`Stack::input_batch`]. When the device
//! goes away (deleted, or its fd fails) the reader logs why and shuts the stack
//! down. Dropping the [`Device`] stops the reader (it waits in poll(2) on the
//! device's fd and an eventfd that Drop sets).
//!
//! [`attach_fd`] does the same with a TUN queue opened elsewhere: `berth run`
//! opens one in a child's network namespace and passes the fd over SCM_RIGHTS.
//! tun-rs adopts only fds without IFF_VNET_HDR, so berth reads and writes that
//! fd itself (read(2)/write(2), `fd.rs`) with tun-rs's GSO helpers for the
//! virtio header; the sinks and the reader are the same (`pump.rs`, over a
//! `Queue`: one device fd, whoever opened it). The caller gives the MTU
//! ([`DeviceOptions::mtu`]): a device in another namespace cannot be asked.
//!
//! A TUN carries bare IP packets of both families ([`Medium::Ip`]: the version
//! nibble says which); a TAP carries Ethernet frames ([`Medium::Ethernet`],
//! EtherType 0x0800, 0x0806 or 0x86DD) and berth answers ARP and IPv6 neighbour
//! solicitations with its own MAC (by default a locally administered address
//! derived from the IPv4 address, never the MAC the kernel gave the TAP: that
//! one belongs to the kernel's side of the link). Nothing here filters by
//! family; the stack dispatches each frame. Every interface has an IPv6
//! link-local address; [`DeviceOptions::ipv6`] adds more, and
//! [`DeviceOptions::autoconf`] takes them from router advertisements (SLAAC).
//!
//! **Batching.** A syscall per packet is what limits a TUN, so a TUN is opened
//! with offload ([`DeviceOptions::offload`], on by default: IFF_VNET_HDR with
//! TUN_F_CSUM/TSO4/TSO6), as wireguard-go does:
//! - writes: the frames one drain of the stack produces are collected and written
//!   at its end with tun-rs's `send_multiple` (or its GRO table, for an adopted
//!   fd), which coalesces consecutive TCP segments of a flow into one GSO
//!   super-packet (one write for up to 64 KiB; the kernel segments it again, or
//!   keeps it whole for local delivery);
//! - reads: the kernel may hand over GSO super-packets and packets whose checksum
//!   it left to us (CHECKSUM_PARTIAL); tun-rs's `recv_multiple` (or `gso_split`)
//!   splits them into MTU-sized packets with complete checksums, which go to the
//!   stack in one batch together with whatever else is queued. An adopted fd
//!   (`berth run`'s) is read with one readv into the virtio header, the first
//!   packet buffer and the super-packet buffer, so a packet that needs no
//!   splitting lands where the stack reads it, uncopied; and the packets whose
//!   TCP/UDP checksum it completed or computed itself go to the stack flagged
//!   so (`Stack::input_batch_offload`): the stack does not sum them a second
//!   time, as Linux trusts CHECKSUM_PARTIAL. Anything else (a raw socket's
//!   packet, a fragment) is verified as always.
//!
//! At a large MTU (65520, `berth run`'s) a TCP segment is nearly 64 KiB itself,
//! so there is little to coalesce or split; the buffers are sized for the MTU
//! and for a whole super-packet, so nothing is truncated either way.
//!
//! A TAP (tun-rs offload is for layer 3), `offload: false`, or a TUN on which
//! offload cannot be switched on (the open fails; berth says why on stderr and
//! opens it again without) take the plain path: one write per frame, reads of one
//! packet each, still handed over in batches. [`Device::stats`] counts frames and
//! syscalls both ways, so batching is visible.
//!
//! **Capture.** With [`DeviceOptions::pcap`] every frame between the device and
//! the stack, both ways, is appended to a pcap file ([`crate::pcap::PcapFile`]:
//! `LINKTYPE_ETHERNET` on a TAP, `LINKTYPE_RAW` — bare IPv4 and IPv6 — on a
//! TUN), as the stack sees it: what the stack writes before it is coalesced
//! into GSO super-packets (so, at most the MTU plus the link header each), and
//! what it reads after super-packets were split and their checksums completed;
//! never the virtio header. A frame above the MTU that the stack rejects is
//! still captured, as tcpdump shows what a NIC drops. Writing is buffered and
//! flushed at least every 100 ms and when the [`Device`] is dropped.
mod fd;
mod pump;
mod queue;

use crate::pcap::{LinkType, PcapFile};
use crate::{DeviceSink, Stack};
use berth_core::wire::{EthernetAddress, Ipv4Addr, Ipv4Cidr, Ipv6Addr, Ipv6Cidr};
use berth_core::{IfaceConfig, IfaceId, Medium};
pub use pump::ReadStatus;
use pump::{CaptureSink, OffloadSink, PlainSink, Reader};
use queue::{Queue, Stop};
use std::io;
use std::net::IpAddr;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use tun_rs::{DeviceBuilder, Layer, SyncDevice};

/// TUN (IP packets) or TAP (Ethernet frames).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Layer 3: the device carries bare IP packets.
    Tun,
    /// Layer 2: the device carries Ethernet frames (berth answers ARP and NDP).
    Tap,
}

impl Kind {
    fn mode(self) -> &'static str {
        match self {
            Kind::Tun => "tun",
            Kind::Tap => "tap",
        }
    }
}

/// How to open a device and configure berth's interface on it.
#[derive(Debug, Clone)]
pub struct DeviceOptions {
    /// The device's name (e.g. `tun0`).
    pub name: String,
    /// TUN or TAP.
    pub kind: Kind,
    /// Create the device when it does not exist (needs CAP_NET_ADMIN). Without
    /// it a missing device is an error.
    pub create: bool,
    /// berth's address and prefix on this link.
    pub addr: Ipv4Cidr,
    /// Default gateway (must be inside `addr`'s prefix).
    pub gateway: Option<Ipv4Addr>,
    /// IPv6 addresses and prefixes beside the link-local one (on a TAP each is
    /// tentative for about a second, until Duplicate Address Detection passes).
    pub ipv6: Vec<Ipv6Cidr>,
    /// IPv6 default gateway (must be inside one of `ipv6`'s prefixes).
    pub gateway6: Option<Ipv6Addr>,
    /// Take router advertisements: addresses from their prefixes (SLAAC) and a
    /// default route via the router, as Linux's accept_ra=1, autoconf=1.
    pub autoconf: bool,
    /// berth's MAC on a TAP; default: 02:b7 followed by the IPv4 address.
    pub mac: Option<EthernetAddress>,
    /// Batch through IFF_VNET_HDR offload on a TUN (default on; a TAP ignores
    /// it). When the device refuses it, berth says so and goes on without.
    /// [`attach_fd`] ignores it: the fd's framing decides.
    pub offload: bool,
    /// berth's IP MTU on this link; `None`: the device's. [`attach`] takes one
    /// up to the device's; [`attach_fd`] needs it (the MTU the caller gave the
    /// device), as a device in another network namespace cannot be asked.
    pub mtu: Option<usize>,
    /// No reader thread: the caller reads the device through
    /// [`Device::take_reader`] (e.g. from an async runtime, so that the tasks
    /// a batch of packets wakes run on the reading thread, without a hop).
    pub external_reader: bool,
    /// Capture every frame in and out of the device into this pcap file
    /// (created or truncated; see "Capture" in the module docs).
    pub pcap: Option<PathBuf>,
}

impl DeviceOptions {
    /// Options for the existing device `name` of `kind`, with berth's address
    /// `addr` on it: offload on, the device's MTU, everything else off or empty.
    pub fn new(name: &str, kind: Kind, addr: Ipv4Cidr) -> DeviceOptions {
        DeviceOptions {
            name: name.to_string(),
            kind,
            create: false,
            addr,
            gateway: None,
            ipv6: Vec::new(),
            gateway6: None,
            autoconf: false,
            mac: None,
            offload: true,
            mtu: None,
            external_reader: false,
            pcap: None,
        }
    }
}

/// Frames and the syscalls that carried them since the device was attached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeviceStats {
    /// Frames the stack handed to the device.
    pub frames_written: u64,
    /// write(2) calls that carried them: fewer than the frames when TCP segments
    /// were coalesced into GSO super-packets.
    pub write_calls: u64,
    /// Frames handed to the stack (super-packets counted after splitting).
    pub frames_read: u64,
    /// read(2) calls that returned a packet.
    pub read_calls: u64,
}

#[derive(Default)]
struct Counters {
    frames_written: AtomicU64,
    write_calls: AtomicU64,
    frames_read: AtomicU64,
    read_calls: AtomicU64,
}

fn add(c: &AtomicU64, n: usize) {
    c.fetch_add(n as u64, Ordering::Relaxed);
}

impl Counters {
    fn get(&self) -> DeviceStats {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        DeviceStats {
            frames_written: g(&self.frames_written),
            write_calls: g(&self.write_calls),
            frames_read: g(&self.frames_read),
            read_calls: g(&self.read_calls),
        }
    }
}

/// A handle on a [`Device`]'s counters that can be kept apart from it (in
/// another thread or task): cloning it is cheap, reading it takes no lock.
#[derive(Clone)]
pub struct StatsHandle(Arc<Counters>);

impl StatsHandle {
    /// Frames and syscalls so far, both ways (as [`Device::stats`]).
    pub fn get(&self) -> DeviceStats {
        self.0.get()
    }
    /// Frames read plus frames written: changes whenever a packet crossed.
    pub fn frames(&self) -> u64 {
        self.0.frames_read.load(Ordering::Relaxed) + self.0.frames_written.load(Ordering::Relaxed)
    }
}

impl std::fmt::Debug for StatsHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.get().fmt(f)
    }
}

/// A TUN/TAP device attached to a stack. Dropping it stops the reader thread.
pub struct Device {
    name: String,
    kind: Kind,
    iface: IfaceId,
    mtu: usize,
    mac: Option<EthernetAddress>,
    offload: bool,
    counters: Arc<Counters>,
    stop: Arc<Stop>,
    reader: Option<JoinHandle<io::Result<()>>>,
    /// With [`DeviceOptions::external_reader`], until taken.
    external: Option<ExternalReader>,
    external_mode: bool,
    stack: Stack,
    pcap: Option<PcapFile>,
}

/// Reads a device whose owner drives it ([`DeviceOptions::external_reader`]):
/// wait until [`ExternalReader::fd`] is readable (it is non-blocking), then
/// call [`ExternalReader::read_ready`], which reads what is queued and hands
/// it to the stack in batches, on the calling thread. An edge-triggered
/// owner (tokio's `AsyncFd`) may use [`ExternalReader::read_some`] instead,
/// and wait again only after [`ReadStatus::Drained`].
pub struct ExternalReader {
    stack: Stack,
    q: Arc<dyn Queue>,
    iface: IfaceId,
    name: String,
    counters: Arc<Counters>,
    quiet_gone: bool,
    bufs: pump::ReadBufs,
    pcap: Option<PcapFile>,
}

impl ExternalReader {
    /// The device's descriptor, to wait on for readability.
    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.q.fd()
    }

    /// Read everything queued now into the stack. `Ok(false)` when the stack
    /// is shut down or the device went away quietly (see [`attach_fd`]); `Err`
    /// when the device failed (the stack is shut down then too).
    pub fn read_ready(&mut self) -> io::Result<bool> {
        loop {
            match self.read_some(usize::MAX)? {
                ReadStatus::Drained => return Ok(true),
                ReadStatus::More => {}
                ReadStatus::Closed => return Ok(false),
            }
        }
    }

    /// At most `max_reads` reads (each one packet, or one GSO super-packet
    /// split), handed to the stack together. [`ReadStatus::Drained`] only when
    /// a read found the queue empty: after `More` packets may still be queued,
    /// and an edge-triggered poller would not report them again.
    pub fn read_some(&mut self, max_reads: usize) -> io::Result<ReadStatus> {
        let r = pump::Reader {
            stack: &self.stack,
            q: &*self.q,
            iface: self.iface,
            name: &self.name,
            counters: &self.counters,
            quiet_gone: self.quiet_gone,
            pcap: self.pcap.as_ref(),
        };
        r.read_some(&mut self.bufs, max_reads)
    }
}

/// Open (or create) a TUN device and attach it to `stack` as `addr`.
pub fn attach_tun(
    stack: &Stack,
    name: &str,
    addr: Ipv4Cidr,
    gateway: Option<Ipv4Addr>,
) -> io::Result<Device> {
    let mut o = DeviceOptions::new(name, Kind::Tun, addr);
    o.gateway = gateway;
    attach(stack, &o)
}

/// Open (or create) a TAP device and attach it to `stack` as `addr`.
pub fn attach_tap(
    stack: &Stack,
    name: &str,
    addr: Ipv4Cidr,
    gateway: Option<Ipv4Addr>,
) -> io::Result<Device> {
    let mut o = DeviceOptions::new(name, Kind::Tap, addr);
    o.gateway = gateway;
    attach(stack, &o)
}

/// Open the device described by `o` and attach it to `stack`.
pub fn attach(stack: &Stack, o: &DeviceOptions) -> io::Result<Device> {
    let (dev, offload) = open(&o.name, o.kind, o.create, o.offload && o.kind == Kind::Tun)?;
    let dev_mtu = dev
        .mtu()
        .map_err(|e| context(e, &format!("cannot read the MTU of {}", o.name)))?
        as usize;
    let mtu = match o.mtu {
        Some(m) if m > dev_mtu => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("MTU {m} is above {}'s MTU of {dev_mtu}", o.name),
            ))
        }
        Some(m) => m,
        None => dev_mtu,
    };
    start(stack, Arc::new(dev), offload, mtu, o, false)
}

/// Attach an open TUN queue fd (IFF_TUN|IFF_NO_PI, with IFF_VNET_HDR when
/// `vnet_hdr`) to `stack`, e.g. one a child opened in its own network namespace
/// and passed over SCM_RIGHTS. Then it is like [`attach`]: the same batching
/// (with `vnet_hdr`; berth sets the device's offload mask to match the framing,
/// as it does for a device it opens), reader thread and counters.
///
/// `o.kind` must be [`Kind::Tun`] and `o.mtu` the MTU the device was given
/// (packets larger than it are dropped on the way in);
/// `o.name` only names the device in messages and the thread; `o.create` and
/// `o.offload` are ignored. The fd is checked (TUNGETIFF) to be a TUN queue
/// whose IFF_VNET_HDR agrees with `vnet_hdr`; IFF_NO_PI cannot be checked.
/// The device's link should be up, and given time to get ready (see [`attach`]).
///
/// When the device goes away (deleted in its namespace) the reader shuts the
/// stack down without a word and [`Device::wait`] returns `Ok`. An open TUN fd
/// holds the network namespace it was opened in, so the namespace's last
/// process exiting ends nothing: the caller watches that process and drops the
/// [`Device`] (which stops the reader). The fd is closed, and with it the
/// device and the namespace go, once the stack, which writes through it, is
/// dropped too.
pub fn attach_fd(
    stack: &Stack,
    fd: OwnedFd,
    vnet_hdr: bool,
    o: &DeviceOptions,
) -> io::Result<Device> {
    let name = &o.name;
    if o.kind != Kind::Tun {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name}: attach_fd takes a TUN queue, not a TAP one"),
        ));
    }
    let mtu = o.mtu.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name}: attach_fd needs the device's MTU (DeviceOptions::mtu)"),
        )
    })?;
    if mtu > pump::SUPER_PACKET {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name}: MTU {mtu} is above the largest IP packet"),
        ));
    }
    let q = fd::TunFd::adopt(fd, vnet_hdr).map_err(|e| context(e, name))?;
    start(stack, Arc::new(q), vnet_hdr, mtu, o, true)
}

/// Add the interface for queue `q` to `stack` and start the reader.
fn start(
    stack: &Stack,
    q: Arc<dyn Queue>,
    offload: bool,
    mtu: usize,
    o: &DeviceOptions,
    quiet_gone: bool,
) -> io::Result<Device> {
    let mac = match o.kind {
        Kind::Tun => None,
        Kind::Tap => Some(o.mac.unwrap_or_else(|| default_mac(o.addr.address()))),
    };
    let medium = match mac {
        Some(m) => Medium::Ethernet(m),
        None => Medium::Ip,
    };
    let pcap = match &o.pcap {
        Some(path) => {
            let link = match o.kind {
                Kind::Tun => LinkType::Ip,
                Kind::Tap => LinkType::Ethernet,
            };
            let p = PcapFile::create(path, link)
                .map_err(|e| context(e, "cannot create the capture"))?;
            Some(p)
        }
        None => None,
    };
    let counters = Arc::new(Counters::default());
    let mut sink: Box<dyn DeviceSink> = if offload {
        Box::new(OffloadSink::new(Arc::clone(&q), Arc::clone(&counters)))
    } else {
        Box::new(PlainSink {
            q: Arc::clone(&q),
            counters: Arc::clone(&counters),
        })
    };
    if let Some(p) = &pcap {
        sink = Box::new(CaptureSink {
            inner: sink,
            pcap: p.clone(),
        });
    }
    let iface = stack.add_device_sink(
        IfaceConfig {
            medium,
            address: o.addr,
            mtu,
        },
        sink,
    )?;
    for &a in &o.ipv6 {
        stack
            .add_address(iface, a)
            .map_err(|e| context(e, &format!("cannot add {a} to {}", o.name)))?;
    }
    for gw in [o.gateway.map(IpAddr::V4), o.gateway6.map(IpAddr::V6)]
        .into_iter()
        .flatten()
    {
        stack
            .set_default_gateway(gw)
            .map_err(|e| context(e, &format!("gateway {gw}")))?;
    }
    if o.autoconf {
        stack.set_autoconf(iface)?;
    }
    let stop = Arc::new(Stop::new()?);
    let frame_max = mtu + 14 + 4;
    let (reader, external) = if o.external_reader {
        let ext = ExternalReader {
            stack: stack.clone(),
            q,
            iface,
            name: o.name.clone(),
            counters: Arc::clone(&counters),
            quiet_gone,
            bufs: pump::ReadBufs::new(frame_max, offload),
            pcap: pcap.clone(),
        };
        (None, Some(ext))
    } else {
        let (stack, stop, name) = (stack.clone(), Arc::clone(&stop), o.name.clone());
        let counters = Arc::clone(&counters);
        let pcap = pcap.clone();
        let t = std::thread::Builder::new()
            .name(format!("berth-{}", o.name))
            .spawn(move || {
                let r = Reader {
                    stack: &stack,
                    q: &*q,
                    iface,
                    name: &name,
                    counters: &counters,
                    quiet_gone,
                    pcap: pcap.as_ref(),
                };
                r.run(&stop, frame_max, offload)
            })?;
        (Some(t), None)
    };
    Ok(Device {
        name: o.name.clone(),
        kind: o.kind,
        iface,
        mtu,
        mac,
        offload,
        counters,
        stop,
        reader,
        external,
        external_mode: o.external_reader,
        stack: stack.clone(),
        pcap,
    })
}

impl Device {
    /// The device's name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// TUN or TAP.
    pub fn kind(&self) -> Kind {
        self.kind
    }
    /// The stack's interface for this device.
    pub fn iface(&self) -> IfaceId {
        self.iface
    }
    /// berth's IP MTU on the link (by default the device's).
    pub fn mtu(&self) -> usize {
        self.mtu
    }
    /// berth's MAC on a TAP.
    pub fn mac(&self) -> Option<EthernetAddress> {
        self.mac
    }
    /// Whether writes and reads go through IFF_VNET_HDR offload (batched).
    pub fn offload(&self) -> bool {
        self.offload
    }
    /// The capture of [`DeviceOptions::pcap`], to flush or count.
    pub fn pcap(&self) -> Option<&PcapFile> {
        self.pcap.as_ref()
    }
    /// Frames and syscalls so far, both ways.
    pub fn stats(&self) -> DeviceStats {
        self.counters.get()
    }
    /// The same counters as a handle that outlives a borrow of the device.
    pub fn stats_handle(&self) -> StatsHandle {
        StatsHandle(Arc::clone(&self.counters))
    }
    /// Whether the reader thread still runs (false once the device failed).
    pub fn is_running(&self) -> bool {
        match &self.reader {
            Some(h) => !h.is_finished(),
            // Read by its owner: running while the stack is.
            None if self.external_mode => !self.stack.is_shut_down(),
            None => false,
        }
    }

    /// The reader of a device attached with [`DeviceOptions::external_reader`]
    /// (once; `None` otherwise).
    pub fn take_reader(&mut self) -> Option<ExternalReader> {
        self.external.take()
    }

    /// Block until the reader stops: `Err` says why the device failed.
    pub fn wait(&mut self) -> io::Result<()> {
        match self.reader.take() {
            Some(h) => h
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("device reader panicked"))),
            None => Ok(()),
        }
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        self.stop.trigger();
        if let Some(h) = self.reader.take() {
            let _ = h.join();
        }
        // Frames the stack writes later (it may outlive the device) are
        // flushed by the capture's own thread, or when the stack is dropped.
        if let Some(p) = &self.pcap {
            let _ = p.flush();
        }
    }
}

/// 02:b7:a.b.c.d — locally administered, unicast.
fn default_mac(a: Ipv4Addr) -> EthernetAddress {
    let o = a.octets();
    EthernetAddress([0x02, 0xb7, o[0], o[1], o[2], o[3]])
}

fn context(e: io::Error, what: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// Open `name`, creating it if allowed, with errors that say what is missing.
/// With `offload` (TUN only) try IFF_VNET_HDR first; the bool says whether it is on.
fn open(name: &str, kind: Kind, create: bool, offload: bool) -> io::Result<(SyncDevice, bool)> {
    let mode = kind.mode();
    if name.is_empty() || name.len() > 15 || name.contains(['/', ' ']) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bad device name {name:?} (1 to 15 characters, no '/' or space)"),
        ));
    }
    if !Path::new("/dev/net/tun").exists() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            "cannot open /dev/net/tun: no such device node — load the tun module \
             (modprobe tun) or, in a container, pass --device /dev/net/tun",
        ));
    }
    let exists = Path::new("/sys/class/net").join(name).exists();
    if !exists && !create {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "no network device {name}: create it first (ip tuntap add dev {name} mode {mode}) \
                 or let berth create it (--create)"
            ),
        ));
    }
    let layer = match kind {
        Kind::Tun => Layer::L3,
        Kind::Tap => Layer::L2,
    };
    let build = |offload: bool| {
        DeviceBuilder::new()
            .name(name)
            .layer(layer)
            .inherit_enable_state()
            .offload(offload)
            .build_sync()
    };
    let (dev, offload) = match build(offload) {
        Ok(d) => {
            let on = offload && d.tcp_gso();
            (d, on)
        }
        Err(e) if offload => {
            let d = build(false).map_err(|e| open_error(e, name, mode, exists))?;
            eprintln!(
                "berth: {name}: TUN offload (IFF_VNET_HDR) refused ({e}); \
                 going on without: one write per packet"
            );
            (d, false)
        }
        Err(e) => return Err(open_error(e, name, mode, exists)),
    };
    dev.set_nonblocking(true)?;
    if !is_up(name) {
        dev.enabled(true).map_err(|e| {
            context(
                e,
                &format!(
                    "cannot bring {name} up (ip link set {name} up) — run as root or give CAP_NET_ADMIN"
                ),
            )
        })?;
    }
    wait_link_ready(name);
    Ok((dev, offload))
}

/// Wait (at most 1 s) until the kernel has activated the device's transmit queue.
/// Bringing a device up is finished asynchronously by the kernel's link watcher;
/// frames written before that are dropped (they show in the device's tx_dropped), so
/// e.g. the reply to a first ping would be lost. The link watcher also moves
/// `operstate` off "down", which is what we watch. Where sysfs does not show this
/// namespace's devices, there is nothing to watch and we go on.
fn wait_link_ready(name: &str) {
    let path = Path::new("/sys/class/net").join(name).join("operstate");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    while std::time::Instant::now() < deadline {
        match std::fs::read_to_string(&path) {
            Ok(s) if s.trim() == "down" => {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            _ => return,
        }
    }
}

fn open_error(e: io::Error, name: &str, mode: &str, exists: bool) -> io::Error {
    let what = if exists {
        format!("cannot attach to {mode} device {name}")
    } else {
        format!("cannot create {mode} device {name}")
    };
    let hint = match e.raw_os_error() {
        // EPERM, EACCES
        Some(1 | 13) => " — run as root or give CAP_NET_ADMIN \
             (or create the device for your user: ip tuntap add dev NAME mode MODE user $USER)"
            .replace("NAME", name)
            .replace("MODE", mode),
        // EBUSY
        Some(16) => " — the device is busy (another process has it open)".to_string(),
        // EINVAL
        Some(22) if exists => {
            format!(" — {name} exists but is not a {mode} device (or has other flags)")
        }
        _ => String::new(),
    };
    io::Error::new(e.kind(), format!("{what} via /dev/net/tun: {e}{hint}"))
}

/// IFF_UP in /sys/class/net/NAME/flags.
fn is_up(name: &str) -> bool {
    std::fs::read_to_string(Path::new("/sys/class/net").join(name).join("flags"))
        .ok()
        .and_then(|s| u32::from_str_radix(s.trim().trim_start_matches("0x"), 16).ok())
        .is_some_and(|f| f & 1 != 0)
}
