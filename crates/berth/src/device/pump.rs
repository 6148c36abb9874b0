//! Frames between a device queue and the stack: the sinks the pumping thread
//! writes through, and the reader thread.

use super::queue::{wait_readable, Queue, Stop, UNWRITTEN};
use super::{add, Counters};
use crate::pcap::PcapFile;
use crate::{DeviceSink, Stack};
use berth_core::IfaceId;
use std::io;
use std::sync::Arc;
use tun_rs::{GROTable, IDEAL_BATCH_SIZE, VIRTIO_NET_HDR_LEN};

/// The largest IP packet, and so the largest GSO super-packet.
pub(super) const SUPER_PACKET: usize = 65_535;

/// Writes every frame at once (TAP, or a TUN without offload).
pub(super) struct PlainSink {
    pub(super) q: Arc<dyn Queue>,
    pub(super) counters: Arc<Counters>,
}

impl DeviceSink for PlainSink {
    fn write(&mut self, frame: &[u8]) {
        // A full device queue drops the frame, as a NIC would; TCP retransmits.
        let _ = self.q.send(frame);
        add(&self.counters.frames_written, 1);
        add(&self.counters.write_calls, 1);
    }
}

/// Captures every frame the stack writes, then hands it on.
pub(super) struct CaptureSink {
    pub(super) inner: Box<dyn DeviceSink>,
    pub(super) pcap: PcapFile,
}

impl DeviceSink for CaptureSink {
    fn write(&mut self, frame: &[u8]) {
        self.pcap.write(frame);
        self.inner.write(frame);
    }

    fn flush(&mut self) {
        self.inner.flush();
    }
}

/// Collects the frames of one drain and writes them at the flush, coalescing
/// consecutive TCP segments of a flow into GSO super-packets (one write each)
/// and writing everything else as it is.
pub(super) struct OffloadSink {
    q: Arc<dyn Queue>,
    counters: Arc<Counters>,
    /// Reused: it keeps its flow tables' allocations.
    gro: GROTable,
    /// Frames after VIRTIO_NET_HDR_LEN bytes of headroom. Each has capacity for a
    /// whole super-packet, because tun-rs coalesces only into buffers that need no
    /// reallocation; kept across flushes, so no allocation per frame once warm.
    bufs: Vec<Vec<u8>>,
    /// Buffers in use.
    len: usize,
}

impl OffloadSink {
    pub(super) fn new(q: Arc<dyn Queue>, counters: Arc<Counters>) -> OffloadSink {
        OffloadSink {
            q,
            counters,
            gro: GROTable::new(),
            bufs: Vec::new(),
            len: 0,
        }
    }
}

impl OffloadSink {
    /// One frame in one writev, counted. A refused write drops the packet, as
    /// a NIC would (TCP retransmits).
    fn write_one(&self, frame: &[u8]) {
        let _ = write_whole(&*self.q, frame);
        add(&self.counters.frames_written, 1);
        add(&self.counters.write_calls, 1);
    }
}

/// virtio-net header of a frame written whole: no GSO, and
/// VIRTIO_NET_HDR_F_DATA_VALID (the stack computed every checksum, so the
/// kernel need not verify them again).
const WHOLE: [u8; VIRTIO_NET_HDR_LEN] = [2, 0, 0, 0, 0, 0, 0, 0, 0, 0];

/// A frame that nothing can be coalesced with (over half a super-packet),
/// written with its header in one writev(2), without copying it first.
fn write_whole(q: &dyn Queue, frame: &[u8]) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    let iov = [
        libc::iovec {
            iov_base: WHOLE.as_ptr() as *mut libc::c_void,
            iov_len: WHOLE.len(),
        },
        libc::iovec {
            iov_base: frame.as_ptr() as *mut libc::c_void,
            iov_len: frame.len(),
        },
    ];
    // SAFETY: both iovecs point into live slices of the given lengths, which
    // writev only reads; the fd is the queue's, open while `q` lives.
    let n = unsafe { libc::writev(q.fd().as_raw_fd(), iov.as_ptr(), 2) };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

impl DeviceSink for OffloadSink {
    fn write(&mut self, frame: &[u8]) {
        if frame.is_empty() {
            return;
        }
        if frame.len() > SUPER_PACKET / 2 {
            // In order: what is collected goes first.
            self.flush();
            self.write_one(frame);
            return;
        }
        if self.len == IDEAL_BATCH_SIZE {
            self.flush();
        }
        if self.len == self.bufs.len() {
            self.bufs
                .push(Vec::with_capacity(2 * VIRTIO_NET_HDR_LEN + SUPER_PACKET));
        }
        let b = &mut self.bufs[self.len];
        b.clear();
        b.extend_from_slice(&UNWRITTEN);
        b.extend_from_slice(frame);
        self.len += 1;
    }

    fn flush(&mut self) {
        if self.len == 0 {
            return;
        }
        if self.len == 1 {
            // Nothing to coalesce with (a request/response exchange writes one
            // segment per drain): one writev, without the GRO table's work.
            self.write_one(&self.bufs[0][VIRTIO_NET_HDR_LEN..]);
            self.len = 0;
            return;
        }
        let calls = self
            .q
            .send_coalesced(&mut self.gro, &mut self.bufs[..self.len]);
        add(&self.counters.frames_written, self.len);
        add(&self.counters.write_calls, calls);
        self.len = 0;
    }
}

/// The reader's view of its device: the reader thread's, or an
/// [`super::ExternalReader`]'s.
pub(super) struct Reader<'a> {
    pub(super) stack: &'a Stack,
    pub(super) q: &'a dyn Queue,
    pub(super) iface: IfaceId,
    pub(super) name: &'a str,
    pub(super) counters: &'a Counters,
    /// A device that goes away ends the reader without a word, and `Ok`: for an
    /// adopted fd (attach_fd) its deletion is how its owner ends the session.
    pub(super) quiet_gone: bool,
    /// Where the frames read are captured.
    pub(super) pcap: Option<&'a PcapFile>,
}

/// The reader's buffers. With offload one read may be a super-packet split
/// into up to `per_read` packets.
pub(super) struct ReadBufs {
    count: usize,
    per_read: usize,
    bufs: Vec<Vec<u8>>,
    sizes: Vec<usize>,
    /// Per packet: the queue computed its TCP/UDP checksum (see `Queue::recv`).
    csum_ok: Vec<bool>,
    /// The raw read: virtio header and up to one super-packet (unused without
    /// offload: then the packet is read straight into bufs[0]).
    raw: Vec<u8>,
}

impl ReadBufs {
    pub(super) fn new(frame_max: usize, offload: bool) -> ReadBufs {
        let (count, per_read) = if offload {
            // Segments carry at least MTU - 120 bytes (IP and TCP headers with
            // every option); 8 bounds tiny MTUs.
            let mss_min = frame_max.saturating_sub(18 + 120).max(8);
            let per_read = SUPER_PACKET.div_ceil(mss_min);
            (IDEAL_BATCH_SIZE.max(per_read), per_read)
        } else {
            (32, 1)
        };
        let size = frame_max.max(2048);
        let raw_len = if offload {
            VIRTIO_NET_HDR_LEN + SUPER_PACKET
        } else {
            0
        };
        ReadBufs {
            count,
            per_read,
            bufs: (0..count).map(|_| vec![0u8; size]).collect(),
            sizes: vec![0usize; count],
            csum_ok: vec![false; count],
            raw: vec![0u8; raw_len],
        }
    }
}

/// What one [`Reader::read_some`] saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadStatus {
    /// A read found the queue empty (EAGAIN): wait for readiness again.
    Drained,
    /// The reads allowed were made (or the buffers filled) with packets
    /// perhaps still queued: read again before waiting.
    More,
    /// The stack is shut down, or the device went away quietly.
    Closed,
}

impl Reader<'_> {
    /// Read until stopped or the device fails: wait until readable, then
    /// [`Reader::read_ready`].
    pub(super) fn run(&self, stop: &Stop, frame_max: usize, offload: bool) -> io::Result<()> {
        let mut b = ReadBufs::new(frame_max, offload);
        loop {
            // Wait apart from reading, so that an error here is the fd's (POLLERR
            // when the device is deleted) and one from a read is a packet's.
            match wait_readable(self.q, stop) {
                Ok(true) => {}
                Ok(false) => return Ok(()),
                Err(e) => return self.failed(e),
            }
            if !self.read_ready(&mut b)? {
                return Ok(());
            }
        }
    }

    /// Read what is queued (without blocking) while buffers are left, and hand
    /// it to the stack under one lock.
    pub(super) fn read_ready(&self, b: &mut ReadBufs) -> io::Result<bool> {
        Ok(self.read_some(b, usize::MAX)? != ReadStatus::Closed)
    }

    /// [`Reader::read_ready`] with at most `max_reads` reads: whether the
    /// queue was seen empty (EAGAIN), may hold more, or the stack is shut down.
    pub(super) fn read_some(&self, b: &mut ReadBufs, max_reads: usize) -> io::Result<ReadStatus> {
        let (count, per_read) = (b.count, b.per_read);
        let (mut n, mut calls) = (0, 0);
        let mut status = ReadStatus::More;
        while count - n >= per_read && calls < max_reads {
            match self.q.recv(&mut b.raw, &mut b.bufs[n..], &mut b.sizes[n..]) {
                Ok((k, ours)) => {
                    b.csum_ok[n..n + k].fill(ours);
                    n += k;
                    calls += 1;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    status = ReadStatus::Drained;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => break,
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof && n == 0 => {
                    return self.failed(e).map(|()| ReadStatus::Closed)
                }
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
                // The packet read could not be split (no OS code): dropped,
                // as a NIC drops a bad frame.
                Err(e) if e.raw_os_error().is_none() => calls += 1,
                // Deliver what was read; the next read reports it again.
                Err(_) if n > 0 => break,
                Err(e) => return self.failed(e).map(|()| ReadStatus::Closed),
            }
        }
        add(&self.counters.read_calls, calls);
        add(&self.counters.frames_read, n);
        if n > 0 {
            let frames = || {
                b.bufs
                    .iter()
                    .zip(b.sizes.iter())
                    .zip(b.csum_ok.iter())
                    .take(n)
                    .filter_map(|((buf, &len), &ok)| Some((buf.get(..len)?, ok)))
            };
            if let Some(p) = self.pcap {
                p.write_all(frames().map(|(f, _)| f));
            }
            self.stack.input_batch_offload(self.iface, frames());
        }
        Ok(if self.stack.is_shut_down() {
            ReadStatus::Closed
        } else {
            status
        })
    }

    /// The device failed: shut the stack down, and say why (unless it is gone
    /// and that is no news).
    pub(super) fn failed(&self, e: io::Error) -> io::Result<()> {
        self.stack.shutdown();
        let name = self.name;
        let gone = self.q.is_gone(name, &e);
        if gone && self.quiet_gone {
            return Ok(());
        }
        let why = if gone {
            format!("device {name} disappeared ({e}); shutting the stack down")
        } else {
            format!("reading from device {name} failed: {e}; shutting the stack down")
        };
        eprintln!("berth: {why}");
        tracing::error!(target: "berth::device", device = %name, error = %e, "device failed; stack shut down");
        Err(io::Error::new(e.kind(), why))
    }
}
