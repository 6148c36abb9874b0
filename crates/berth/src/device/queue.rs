//! A device's queue (its open fd) as the sinks and the reader use it, whatever
//! opened it, and the event that stops the reader.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;
use tun_rs::{GROTable, SyncDevice, VIRTIO_NET_HDR_LEN};

/// Header bytes no virtio header has (gso_type 0xff). The offload sink puts it
/// in front of every frame; a buffer whose header is still this after the
/// coalescing was merged into another one and is not written.
pub(super) const UNWRITTEN: [u8; VIRTIO_NET_HDR_LEN] = [0xff; VIRTIO_NET_HDR_LEN];

/// One queue of a TUN/TAP device, non-blocking.
pub(super) trait Queue: Send + Sync {
    fn fd(&self) -> BorrowedFd<'_>;

    /// Write one frame as it is (plain framing: no virtio header).
    fn send(&self, frame: &[u8]) -> io::Result<usize>;

    /// Offload only: coalesce `bufs` (each a frame after [`UNWRITTEN`]) into
    /// GSO super-packets and write them, one write each. Returns the writes made;
    /// a failed write drops its packet, as a NIC would (TCP retransmits).
    fn send_coalesced(&self, gro: &mut GROTable, bufs: &mut [Vec<u8>]) -> usize;

    /// One read, without blocking. Plain: one packet into `bufs[0]`. Offload: the
    /// read goes to `raw` (virtio header and up to one super-packet), is split
    /// into packets with complete checksums in `bufs`, and their count returned,
    /// with whether this queue computed their TCP/UDP checksums itself (so
    /// the stack need not verify them: `Stack::receive_batch_offload`).
    /// An error without an OS code is the packet's (it could not be split).
    fn recv(
        &self,
        raw: &mut [u8],
        bufs: &mut [Vec<u8>],
        sizes: &mut [usize],
    ) -> io::Result<(usize, bool)>;

    /// Whether `e`, from waiting on or reading the queue, means that the device
    /// `name` is gone (deleted) rather than failing.
    fn is_gone(&self, name: &str, e: &io::Error) -> bool;
}

/// A device tun-rs opened (by name, in this thread's namespace).
impl Queue for SyncDevice {
    fn fd(&self) -> BorrowedFd<'_> {
        self.as_fd()
    }

    fn send(&self, frame: &[u8]) -> io::Result<usize> {
        SyncDevice::send(self, frame)
    }

    fn send_coalesced(&self, gro: &mut GROTable, bufs: &mut [Vec<u8>]) -> usize {
        let _ = self.send_multiple(gro, bufs, VIRTIO_NET_HDR_LEN);
        bufs.iter().filter(|b| !b.starts_with(&UNWRITTEN)).count()
    }

    fn recv(
        &self,
        raw: &mut [u8],
        bufs: &mut [Vec<u8>],
        sizes: &mut [usize],
    ) -> io::Result<(usize, bool)> {
        // tun-rs does not say which packets it summed: the stack verifies all.
        self.recv_multiple(raw, bufs, sizes, 0).map(|n| (n, false))
    }

    fn is_gone(&self, name: &str, _: &io::Error) -> bool {
        // The kernel may still be unregistering a deleted device.
        (0..10).any(|_| {
            let g = !Path::new("/sys/class/net").join(name).exists();
            if !g {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            g
        })
    }
}

/// Tells the reader thread to stop: an eventfd it polls beside its device, set
/// once and never cleared.
pub(super) struct Stop(OwnedFd);

impl Stop {
    pub(super) fn new() -> io::Result<Stop> {
        // SAFETY: eventfd takes no pointers; a non-negative result is a new fd we own.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd was just returned by eventfd and is owned by nobody else.
        Ok(Stop(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    pub(super) fn trigger(&self) {
        let one = 1u64.to_ne_bytes();
        // SAFETY: writes 8 bytes from a live local buffer to our eventfd. It can
        // fail only when the counter would overflow, i.e. when it is set already.
        let _ = unsafe { libc::write(self.0.as_raw_fd(), one.as_ptr().cast(), one.len()) };
    }
}

/// Wait until `q` is readable (`Ok(true)`) or `stop` is triggered (`Ok(false)`).
/// An error is the fd's (POLLERR once a TUN's device is deleted), apart from
/// any read's.
pub(super) fn wait_readable(q: &dyn Queue, stop: &Stop) -> io::Result<bool> {
    let mut fds = [
        libc::pollfd {
            fd: q.fd().as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: stop.0.as_fd().as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    loop {
        // SAFETY: fds is a live array of two pollfd, and its length is passed.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if fds[1].revents != 0 {
            return Ok(false);
        }
        let ev = fds[0].revents;
        if ev & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0 {
            return Err(io::Error::other(PollError(ev)));
        }
        if ev & libc::POLLIN != 0 {
            return Ok(true);
        }
    }
}

/// poll(2) reported an error condition on the device's fd.
#[derive(Debug)]
pub(super) struct PollError(libc::c_short);

impl std::fmt::Display for PollError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names = [
            (libc::POLLERR, "POLLERR"),
            (libc::POLLHUP, "POLLHUP"),
            (libc::POLLNVAL, "POLLNVAL"),
        ];
        let set: Vec<&str> = names
            .iter()
            .filter(|(bit, _)| self.0 & bit != 0)
            .map(|(_, n)| *n)
            .collect();
        write!(f, "the device's fd reports {}", set.join("|"))
    }
}

impl std::error::Error for PollError {}
