//! A DHCPv4 client (RFC 2131, options of RFC 2132) for a berth interface:
//! DISCOVER / OFFER / REQUEST / ACK, an ARP probe of the ACKed address and a
//! DECLINE if another host answers it (RFC 5227), NAK handling, renewal at
//! T1 (unicast to the server), rebinding at T2 (broadcast), expiry, and
//! RELEASE when stopped.
//! A lease sets the interface's address and connected route, the default
//! route via the first router, and the stack's DNS servers.
//!
//! [`Client`] is the protocol, sans-IO on a core stack (the simulator drives
//! it in virtual time); [`Dhcp`] runs one in a thread on a [`Stack`].
//!
//! ```no_run
//! use berth::dhcp::{Dhcp, DhcpConfig};
//! # fn main() -> std::io::Result<()> {
//! # let stack = berth::Stack::new(berth::Config::default());
//! # let iface = berth::IfaceId(0);
//! // `iface` was added with address 0.0.0.0/32 (a TAP, say).
//! let dhcp = Dhcp::start(&stack, iface, DhcpConfig::default())?;
//! let lease = dhcp.wait_lease(std::time::Duration::from_secs(30))?;
//! println!("{} via {:?}, DNS {:?}", lease.address, lease.router, lease.dns_servers);
//! dhcp.release(); // RELEASE, address removed
//! # Ok(()) }
//! ```

mod client;

pub use client::{
    Client, DhcpConfig, Event, Lease, State, DEFAULT_DECLINE_WAIT, DEFAULT_PROBES,
    DEFAULT_PROBE_INTERVAL,
};

use crate::runtime::Stack;
use berth_core::IfaceId;
use std::io;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// What the client thread shares with its handle.
#[derive(Default)]
struct Shared {
    lease: Mutex<Option<Lease>>,
    changed: Condvar,
    stop: AtomicBool,
}

type OnEvent = Box<dyn FnMut(&Event) + Send>;

/// A DHCP client running in its own thread on a stack's interface. Dropping
/// it (or [`Dhcp::release`]) releases the lease and takes the address off.
pub struct Dhcp {
    stack: Stack,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<Option<Client>>>,
}

impl Dhcp {
    /// Start acquiring a lease for `iface` (which should have address
    /// 0.0.0.0/32 until then).
    pub fn start(stack: &Stack, iface: IfaceId, config: DhcpConfig) -> io::Result<Dhcp> {
        Dhcp::start_with(stack, iface, config, |_| {})
    }

    /// [`Dhcp::start`], calling `on_event` from the client's thread for every
    /// [`Event`] (to print the lease, say).
    pub fn start_with(
        stack: &Stack,
        iface: IfaceId,
        mut config: DhcpConfig,
        on_event: impl FnMut(&Event) + Send + 'static,
    ) -> io::Result<Dhcp> {
        if config.seed.is_none() {
            config.seed = Some(crate::runtime::os_seed());
        }
        let client = stack.call(|core, now| Client::new(core, now, iface, &config))?;
        let shared = Arc::new(Shared::default());
        let (st, sh) = (stack.clone(), Arc::clone(&shared));
        let on_event: OnEvent = Box::new(on_event);
        let thread = std::thread::Builder::new()
            .name("berth-dhcp".into())
            .spawn(move || run(st, sh, client, on_event))?;
        Ok(Dhcp {
            stack: stack.clone(),
            shared,
            thread: Some(thread),
        })
    }

    /// The lease in force, if any.
    pub fn lease(&self) -> Option<Lease> {
        self.shared
            .lease
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Wait up to `timeout` for a lease; `TimedOut` if none comes.
    pub fn wait_lease(&self, timeout: Duration) -> io::Result<Lease> {
        let g = self.shared.lease.lock().unwrap_or_else(|p| p.into_inner());
        let (g, _) = self
            .shared
            .changed
            .wait_timeout_while(g, timeout, |l| l.is_none())
            .unwrap_or_else(|p| p.into_inner());
        g.clone().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no DHCP lease within {timeout:?}: is a server on the link?"),
            )
        })
    }

    /// Stop: RELEASE the lease (RFC 2131 §4.4.6), take the address and
    /// default route off, stop the thread.
    pub fn release(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let Some(t) = self.thread.take() else { return };
        self.shared.stop.store(true, Ordering::SeqCst);
        self.stack.notify();
        if let Ok(Some(mut client)) = t.join() {
            let _ = self.stack.call(|core, now| {
                client.release(core, now);
                Ok(())
            });
        }
        *self.shared.lease.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.shared.changed.notify_all();
    }
}

impl Drop for Dhcp {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The client's thread: poll it when its socket is ready or its deadline
/// passes; publish what happens. Returns the client to be released, or
/// `None` once the stack is shut down.
fn run(
    stack: Stack,
    shared: Arc<Shared>,
    mut client: Client,
    mut on_event: OnEvent,
) -> Option<Client> {
    loop {
        if shared.stop.load(Ordering::SeqCst) {
            return Some(client);
        }
        let deadline = client.poll_timeout().map(|t| stack.std_instant(t));
        let r = stack.blocking(deadline, |core, now| {
            if shared.stop.load(Ordering::SeqCst) {
                return Ok(Vec::new());
            }
            let events = client.poll(core, now);
            if events.is_empty() {
                Err(io::ErrorKind::WouldBlock.into())
            } else {
                Ok(events)
            }
        });
        let events = match r {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            // The stack is shut down: nothing to release through.
            Err(_) => return None,
        };
        for e in &events {
            // The callback first: a `wait_lease` that returns has seen it run.
            on_event(e);
            publish(&stack, &shared, e);
        }
    }
}

/// Record the lease and point the stack's resolver at its DNS servers.
fn publish(stack: &Stack, shared: &Shared, e: &Event) {
    let mut lease = shared.lease.lock().unwrap_or_else(|p| p.into_inner());
    let old_dns: Vec<IpAddr> = lease
        .as_ref()
        .map(|l| l.dns_servers.iter().map(|&a| a.into()).collect())
        .unwrap_or_default();
    match e {
        Event::Bound(l) | Event::Renewed(l) => {
            if !l.dns_servers.is_empty() {
                let ips: Vec<IpAddr> = l.dns_servers.iter().map(|&a| a.into()).collect();
                stack.set_dns_servers(&ips);
            }
            *lease = Some(l.clone());
        }
        Event::Nak(_) | Event::Expired => {
            // Forget the servers only if they are still the lease's.
            let now: Vec<IpAddr> = stack.dns_servers().iter().map(|s| s.ip()).collect();
            if !old_dns.is_empty() && now == old_dns {
                stack.set_dns_servers(&[]);
            }
            *lease = None;
        }
        // Nothing was configured: the client starts over after a wait.
        Event::Declined { .. } => {}
    }
    shared.changed.notify_all();
}
