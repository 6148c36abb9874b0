//! Linux TUN (layer 3) and TAP (layer 2) devices attached to a [`Stack`].
//!
//! [`attach`] opens an existing device or creates one (through the tun-rs crate),
//! takes the MTU from the device, adds an interface to the stack whose frames are
//! written to the device by the pumping thread, and starts a reader thread that
//! hands every frame read from the device to [`Stack::input`]. When the device
//! goes away (deleted, or its fd fails) the reader logs why and shuts the stack
//! down. Dropping the [`Device`] stops the reader.
//!
//! A TUN carries bare IPv4 packets ([`Medium::Ip`]); a TAP carries Ethernet frames
//! ([`Medium::Ethernet`]) and berth answers ARP with its own MAC (by default a
//! locally administered address derived from the IPv4 address, never the MAC the
//! kernel gave the TAP: that one belongs to the kernel's side of the link).

use crate::Stack;
use berth_core::wire::{EthernetAddress, Ipv4Addr, Ipv4Cidr};
use berth_core::{IfaceConfig, IfaceId, Medium};
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;
use tun_rs::{DeviceBuilder, InterruptEvent, Layer, SyncDevice};

/// TUN (IP packets) or TAP (Ethernet frames).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Tun,
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
    pub name: String,
    pub kind: Kind,
    /// Create the device when it does not exist (needs CAP_NET_ADMIN). Without
    /// it a missing device is an error.
    pub create: bool,
    /// berth's address and prefix on this link.
    pub addr: Ipv4Cidr,
    /// Default gateway (must be inside `addr`'s prefix).
    pub gateway: Option<Ipv4Addr>,
    /// berth's MAC on a TAP; default: 02:b7 followed by the IPv4 address.
    pub mac: Option<EthernetAddress>,
}

impl DeviceOptions {
    pub fn new(name: &str, kind: Kind, addr: Ipv4Cidr) -> DeviceOptions {
        DeviceOptions {
            name: name.to_string(),
            kind,
            create: false,
            addr,
            gateway: None,
            mac: None,
        }
    }
}

/// A TUN/TAP device attached to a stack. Dropping it stops the reader thread.
pub struct Device {
    name: String,
    kind: Kind,
    iface: IfaceId,
    mtu: usize,
    mac: Option<EthernetAddress>,
    stop: Arc<InterruptEvent>,
    reader: Option<JoinHandle<io::Result<()>>>,
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
    let dev = Arc::new(open(&o.name, o.kind, o.create)?);
    let mtu = dev
        .mtu()
        .map_err(|e| context(e, &format!("cannot read the MTU of {}", o.name)))?
        as usize;
    let mac = match o.kind {
        Kind::Tun => None,
        Kind::Tap => Some(o.mac.unwrap_or_else(|| default_mac(o.addr.address()))),
    };
    let medium = match mac {
        Some(m) => Medium::Ethernet(m),
        None => Medium::Ip,
    };
    let writer = Arc::clone(&dev);
    let iface = stack.add_device(
        IfaceConfig {
            medium,
            address: o.addr,
            mtu,
        },
        // A full device queue drops the frame, as a NIC would; TCP retransmits.
        Box::new(move |frame| {
            let _ = writer.send(frame);
        }),
    )?;
    if let Some(gw) = o.gateway {
        let any = Ipv4Cidr::new(Ipv4Addr::UNSPECIFIED, 0)
            .ok_or_else(|| io::Error::other("internal: /0 prefix rejected"))?;
        stack.add_route(any, gw)?;
    }
    let stop = Arc::new(InterruptEvent::new()?);
    let reader = {
        let (stack, stop, name) = (stack.clone(), Arc::clone(&stop), o.name.clone());
        let frame_max = mtu + 14 + 4;
        std::thread::Builder::new()
            .name(format!("berth-{}", o.name))
            .spawn(move || read_loop(&stack, &dev, iface, &stop, &name, frame_max))?
    };
    Ok(Device {
        name: o.name.clone(),
        kind: o.kind,
        iface,
        mtu,
        mac,
        stop,
        reader: Some(reader),
    })
}

impl Device {
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn kind(&self) -> Kind {
        self.kind
    }
    /// The stack's interface for this device.
    pub fn iface(&self) -> IfaceId {
        self.iface
    }
    /// IP MTU, as the device reported it.
    pub fn mtu(&self) -> usize {
        self.mtu
    }
    /// berth's MAC on a TAP.
    pub fn mac(&self) -> Option<EthernetAddress> {
        self.mac
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
        let _ = self.stop.trigger();
        if let Some(h) = self.reader.take() {
            let _ = h.join();
        }
    }
}

fn read_loop(
    stack: &Stack,
    dev: &SyncDevice,
    iface: IfaceId,
    stop: &InterruptEvent,
    name: &str,
    frame_max: usize,
) -> io::Result<()> {
    // Batched reads: after one blocking read, drain what else is queued (without
    // blocking) and hand it all to the stack under one lock.
    const BATCH: usize = 32;
    let size = frame_max.max(2048);
    let mut bufs: Vec<Vec<u8>> = (0..BATCH).map(|_| vec![0u8; size]).collect();
    let mut lens = [0usize; BATCH];
    loop {
        match dev.recv_intr(&mut bufs[0], stop) {
            Ok(n) => {
                lens[0] = n;
                let mut k = 1;
                while k < BATCH {
                    match dev.recv(&mut bufs[k]) {
                        Ok(n) => {
                            lens[k] = n;
                            k += 1;
                        }
                        Err(_) => break,
                    }
                }
                stack.input_batch(
                    iface,
                    bufs.iter()
                        .zip(lens.iter())
                        .take(k)
                        .filter_map(|(b, &n)| b.get(..n)),
                );
                if stack.is_shut_down() {
                    return Ok(());
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                if stop.is_trigger() {
                    return Ok(());
                }
            }
            Err(e) => {
                // The kernel may still be unregistering a deleted device.
                let gone = (0..10).any(|_| {
                    let g = !Path::new("/sys/class/net").join(name).exists();
                    if !g {
                        std::thread::sleep(std::time::Duration::from_millis(20));
                    }
                    g
                });
                let why = if gone {
                    format!("device {name} disappeared ({e}); shutting the stack down")
                } else {
                    format!("reading from device {name} failed: {e}; shutting the stack down")
                };
                eprintln!("berth: {why}");
                stack.shutdown();
                return Err(io::Error::new(e.kind(), why));
            }
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
fn open(name: &str, kind: Kind, create: bool) -> io::Result<SyncDevice> {
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
    let dev = DeviceBuilder::new()
        .name(name)
        .layer(layer)
        .inherit_enable_state()
        .build_sync()
        .map_err(|e| open_error(e, name, mode, exists))?;
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
    Ok(dev)
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
