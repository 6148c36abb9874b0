//! A TUN queue opened elsewhere — typically in another network namespace, and
//! passed over SCM_RIGHTS — read and written here with read(2)/write(2). tun-rs
//! adopts only fds without IFF_VNET_HDR, so the virtio header is handled here,
//! with tun-rs's GSO helpers, the way its own `recv_multiple`/`send_multiple` do.

use super::queue::{PollError, Queue, UNWRITTEN};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use tun_rs::{GROTable, VirtioNetHdr, VIRTIO_NET_HDR_LEN};

// From linux/virtio_net.h (tun-rs does not export them).
const GSO_NONE: u8 = 0;
const GSO_UDP_L4: u8 = 5;
const GSO_ECN: u8 = 0x80;
const F_NEEDS_CSUM: u8 = 1;

/// An adopted TUN queue.
pub(super) struct TunFd {
    fd: OwnedFd,
    vnet_hdr: bool,
    /// The kernel took UDP segmentation offload too (Linux 6.2+).
    udp_gso: bool,
}

impl TunFd {
    /// Check that `fd` is a TUN queue whose IFF_VNET_HDR is `vnet_hdr`, set the
    /// device's offload mask to match (as tun-rs does when it opens a device),
    /// and make the fd non-blocking.
    pub(super) fn adopt(fd: OwnedFd, vnet_hdr: bool) -> io::Result<TunFd> {
        let raw = fd.as_raw_fd();
        // SAFETY: ifreq is plain C data, valid zeroed.
        let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
        // SAFETY: TUNGETIFF writes one ifreq into `req`, which lives across the call.
        if unsafe { libc::ioctl(raw, libc::TUNGETIFF, &mut req) } < 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("not an attached TUN queue (TUNGETIFF: {e})"),
            ));
        }
        // SAFETY: TUNGETIFF filled the flags member of the union.
        let flags = i32::from(unsafe { req.ifr_ifru.ifru_flags });
        if flags & libc::IFF_TUN == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the fd is a TAP queue, not a TUN one",
            ));
        }
        if (flags & libc::IFF_VNET_HDR != 0) != vnet_hdr {
            let (has, not) = if vnet_hdr {
                ("lacks", "")
            } else {
                ("has", "out")
            };
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("the TUN fd {has} IFF_VNET_HDR, but it was passed as one with{not} it"),
            ));
        }
        let udp_gso = if vnet_hdr {
            // The header size is the device's; ours is the plain virtio_net_hdr.
            let size = VIRTIO_NET_HDR_LEN as libc::c_int;
            // SAFETY: TUNSETVNETHDRSZ reads one c_int through the pointer, live across the call.
            if unsafe { libc::ioctl(raw, libc::TUNSETVNETHDRSZ, &size) } < 0 {
                return Err(os_error("TUNSETVNETHDRSZ"));
            }
            let tcp = libc::TUN_F_CSUM | libc::TUN_F_TSO4 | libc::TUN_F_TSO6;
            let udp = libc::TUN_F_USO4 | libc::TUN_F_USO6;
            if set_offload(raw, tcp | udp).is_ok() {
                true
            } else {
                set_offload(raw, tcp).map_err(|_| os_error("TUNSETOFFLOAD"))?;
                false
            }
        } else {
            // The mask is the device's: one left from an earlier offload user
            // would have the kernel send super-packets this framing cannot carry.
            set_offload(raw, 0).map_err(|_| os_error("TUNSETOFFLOAD"))?;
            false
        };
        // SAFETY: fcntl on an fd we own, no pointers.
        let fl = unsafe { libc::fcntl(raw, libc::F_GETFL) };
        // SAFETY: as above.
        if fl < 0 || unsafe { libc::fcntl(raw, libc::F_SETFL, fl | libc::O_NONBLOCK) } < 0 {
            return Err(os_error("O_NONBLOCK"));
        }
        Ok(TunFd {
            fd,
            vnet_hdr,
            udp_gso,
        })
    }

    fn write(&self, b: &[u8]) -> io::Result<usize> {
        // SAFETY: writes from a live slice of the given length to our fd.
        let n = unsafe { libc::write(self.fd.as_raw_fd(), b.as_ptr().cast(), b.len()) };
        usize::try_from(n).map_err(|_| io::Error::last_os_error())
    }

    /// readv into three buffers in turn (see `recv`).
    fn read_scattered(&self, a: &mut [u8], b: &mut [u8], c: &mut [u8]) -> io::Result<usize> {
        let iov = [
            libc::iovec {
                iov_base: a.as_mut_ptr().cast(),
                iov_len: a.len(),
            },
            libc::iovec {
                iov_base: b.as_mut_ptr().cast(),
                iov_len: b.len(),
            },
            libc::iovec {
                iov_base: c.as_mut_ptr().cast(),
                iov_len: c.len(),
            },
        ];
        // SAFETY: the iovecs point to three live, disjoint, mutably borrowed
        // slices of their lengths; readv writes only inside them.
        let n = unsafe { libc::readv(self.fd.as_raw_fd(), iov.as_ptr(), iov.len() as libc::c_int) };
        match usize::try_from(n) {
            Err(_) => Err(io::Error::last_os_error()),
            Ok(0) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "end of file on the TUN fd",
            )),
            Ok(n) => Ok(n),
        }
    }

    fn read(&self, b: &mut [u8]) -> io::Result<usize> {
        // SAFETY: reads into a live slice of the given length from our fd.
        let n = unsafe { libc::read(self.fd.as_raw_fd(), b.as_mut_ptr().cast(), b.len()) };
        match usize::try_from(n) {
            Err(_) => Err(io::Error::last_os_error()),
            // A TUN read never returns 0 while the device is there.
            Ok(0) if !b.is_empty() => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "end of file on the TUN fd",
            )),
            Ok(n) => Ok(n),
        }
    }
}

fn set_offload(fd: libc::c_int, mask: libc::c_uint) -> io::Result<()> {
    // SAFETY: TUNSETOFFLOAD takes its argument by value.
    if unsafe { libc::ioctl(fd, libc::TUNSETOFFLOAD, libc::c_ulong::from(mask)) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn os_error(what: &str) -> io::Error {
    let e = io::Error::last_os_error();
    io::Error::new(e.kind(), format!("{what} on the TUN fd: {e}"))
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

impl Queue for TunFd {
    fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    fn send(&self, frame: &[u8]) -> io::Result<usize> {
        if !self.vnet_hdr {
            return self.write(frame);
        }
        // A header saying "nothing to do" (all zero) in front of the frame.
        let hdr = [0u8; VIRTIO_NET_HDR_LEN];
        let iov = [
            libc::iovec {
                iov_base: hdr.as_ptr() as *mut libc::c_void,
                iov_len: hdr.len(),
            },
            libc::iovec {
                iov_base: frame.as_ptr() as *mut libc::c_void,
                iov_len: frame.len(),
            },
        ];
        // SAFETY: both iovecs point to live buffers of their lengths; writev only reads them.
        let n =
            unsafe { libc::writev(self.fd.as_raw_fd(), iov.as_ptr(), iov.len() as libc::c_int) };
        usize::try_from(n).map_err(|_| io::Error::last_os_error())
    }

    fn send_coalesced(&self, gro: &mut GROTable, bufs: &mut [Vec<u8>]) -> usize {
        if !self.vnet_hdr {
            for b in bufs.iter() {
                let _ = self.write(&b[VIRTIO_NET_HDR_LEN..]);
            }
            return bufs.len();
        }
        // Coalesces and writes the virtio headers; as in tun-rs's send_multiple,
        // a batch it refuses (it cannot be, as built) is dropped whole.
        if gro
            .apply_gro(bufs, VIRTIO_NET_HDR_LEN, self.udp_gso)
            .is_err()
        {
            return 0;
        }
        let mut calls = 0;
        for b in bufs.iter().filter(|b| !b.starts_with(&UNWRITTEN)) {
            calls += 1;
            // A refused write drops its packet, as a NIC would; once the device
            // is gone, the rest would be refused too.
            if let Err(e) = self.write(b) {
                if e.raw_os_error() == Some(libc::EBADFD) {
                    break;
                }
            }
        }
        calls
    }

    fn recv(
        &self,
        raw: &mut [u8],
        bufs: &mut [Vec<u8>],
        sizes: &mut [usize],
    ) -> io::Result<(usize, bool)> {
        if !self.vnet_hdr {
            let b = bufs.first_mut().ok_or_else(|| bad("no buffer"))?;
            sizes[0] = self.read(b)?;
            return Ok((1, false));
        }
        let Some(first) = bufs.first_mut() else {
            return Err(bad("no buffer"));
        };
        let first_len = first.len();
        // One scattered read: the header, then the packet straight into
        // bufs[0], and what does not fit there (a GSO super-packet) into raw
        // after room for bufs[0]'s part. A packet that fits, the common case,
        // is then not copied at all (at MTU 65520 that copy was a third of
        // the user-space copying of a bulk transfer).
        let mut hdr = [0u8; VIRTIO_NET_HDR_LEN];
        let rest = raw.get_mut(first_len..).unwrap_or_default();
        let n = self.read_scattered(&mut hdr, first, rest)?;
        let len = n
            .checked_sub(VIRTIO_NET_HDR_LEN)
            .filter(|&l| l > 0)
            .ok_or_else(|| bad("read shorter than the virtio header"))?;
        let hdr = VirtioNetHdr::decode(&hdr)?;
        if hdr.gso_type == GSO_NONE && len <= first_len {
            let ours = complete_if_partial(&hdr, &mut bufs[0][..len])?;
            sizes[0] = len;
            return Ok((1, ours));
        }
        // A super-packet: made whole in raw, then split into bufs.
        if len > raw.len() {
            return Err(bad("super-packet larger than the read buffer"));
        }
        let head = len.min(first_len);
        raw[..head].copy_from_slice(&bufs[0][..head]);
        split(hdr, &mut raw[..len], bufs, sizes)
    }

    fn is_gone(&self, _name: &str, e: &io::Error) -> bool {
        // A TUN fd whose device was deleted: POLLERR, and EBADFD on read.
        e.raw_os_error() == Some(libc::EBADFD)
            || e.kind() == io::ErrorKind::UnexpectedEof
            || e.get_ref().is_some_and(|i| i.is::<PollError>())
    }
}

/// The packet of one read with its virtio header: GSO super-packets split into
/// `bufs`, a checksum left to us (CHECKSUM_PARTIAL) completed. Returns how many
/// packets. tun-rs's handle_virtio_read (after wireguard-go's), which it keeps
/// to itself.
fn split(
    mut hdr: VirtioNetHdr,
    pkt: &mut [u8],
    bufs: &mut [Vec<u8>],
    sizes: &mut [usize],
) -> io::Result<(usize, bool)> {
    let len = pkt.len();
    if hdr.gso_type == GSO_NONE {
        let ours = complete_if_partial(&hdr, pkt)?;
        let out = bufs
            .first_mut()
            .and_then(|b| b.get_mut(..len))
            .ok_or_else(|| bad("packet larger than the MTU"))?;
        out.copy_from_slice(pkt);
        sizes[0] = len;
        return Ok((1, ours));
    }
    let is_v6 = match pkt.first().map(|b| b >> 4) {
        Some(4) => false,
        Some(6) => true,
        _ => return Err(bad("GSO packet of unknown IP version")),
    };
    // The kernel's hdr_len may cover a whole first packet (on its forwarding
    // path), so take the transport header's own length.
    let start = usize::from(hdr.csum_start);
    let th_len = if hdr.gso_type & !GSO_ECN == GSO_UDP_L4 {
        8
    } else {
        let off = pkt
            .get(start + 12)
            .ok_or_else(|| bad("GSO packet too short"))?;
        let l = usize::from(off >> 4) * 4;
        if l < 20 {
            return Err(bad("TCP header length below 20"));
        }
        l
    };
    hdr.hdr_len = u16::try_from(start + th_len)
        .ok()
        .filter(|&h| usize::from(h) <= len)
        .ok_or_else(|| bad("GSO packet shorter than its headers"))?;
    // gso_split checks the rest (type against version, checksum offset, room),
    // and sums each segment's transport checksum from scratch, at the place
    // the header names: the segments' own when that is their TCP/UDP field.
    let n = tun_rs::gso_split(pkt, hdr, bufs, sizes, 0, is_v6)?;
    let ours = n > 0
        && is_transport_checksum(
            &bufs[0][..sizes[0]],
            hdr.csum_start.into(),
            hdr.csum_offset.into(),
        );
    Ok((n, ours))
}

/// A packet that needs no splitting: its checksum completed if the kernel
/// left it to us (CHECKSUM_PARTIAL). Whether that was its own TCP/UDP
/// checksum, so the stack need not verify it again.
fn complete_if_partial(hdr: &VirtioNetHdr, pkt: &mut [u8]) -> io::Result<bool> {
    if hdr.flags & F_NEEDS_CSUM == 0 {
        return Ok(false);
    }
    let (start, offset) = (hdr.csum_start.into(), hdr.csum_offset.into());
    complete_checksum(pkt, start, offset)?;
    Ok(is_transport_checksum(pkt, start, offset))
}

/// Whether the checksum completed at `start + offset` is the packet's own
/// TCP or UDP checksum: `start` right after an IPv4 header (or an IPv6 one
/// with no extension header) naming that protocol, `offset` its checksum
/// field. Only then may the stack skip verifying it; a header that points
/// elsewhere (nothing the kernel sends) leaves it to be verified.
fn is_transport_checksum(pkt: &[u8], start: usize, offset: usize) -> bool {
    let (l4_at, proto) = match pkt.first().map(|b| b >> 4) {
        Some(4) => (usize::from(pkt[0] & 0x0f) * 4, pkt.get(9)),
        Some(6) => (40, pkt.get(6)),
        _ => return false,
    };
    let field = match proto {
        Some(6) => 16,
        Some(17) => 6,
        _ => return false,
    };
    start == l4_at && offset == field
}

/// Put the Internet checksum of `pkt[start..]` at `start + offset`, where the
/// kernel left the pseudo-header's sum (Linux's skb_checksum_help).
fn complete_checksum(pkt: &mut [u8], start: usize, offset: usize) -> io::Result<()> {
    let at = start + offset;
    let field = pkt
        .get_mut(at..at + 2)
        .ok_or_else(|| bad("checksum offset beyond the packet"))?;
    let initial = u16::from_be_bytes([field[0], field[1]]);
    field.fill(0);
    let sum = !tun_rs::checksum(&pkt[start..], initial.into());
    // 0 and 0xffff are the same sum; 0 would mean "none" to UDP.
    let sum = if sum == 0 { 0xffff } else { sum };
    pkt[at..at + 2].copy_from_slice(&sum.to_be_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one's-complement sum, folded, of big-endian 16-bit words.
    fn sum16(words: impl IntoIterator<Item = u16>) -> u16 {
        let mut s: u32 = words.into_iter().map(u32::from).sum();
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        s as u16
    }

    /// An IPv4/UDP packet 192.0.2.2:9 -> 192.0.2.1:7 with the checksum field
    /// holding the pseudo-header's sum, as the kernel leaves it (CHECKSUM_PARTIAL).
    fn partial_udp(payload: &[u8]) -> Vec<u8> {
        let udp_len = 8 + payload.len() as u16;
        let mut p = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0];
        p.extend_from_slice(&[192, 0, 2, 2, 192, 0, 2, 1]);
        p[2..4].copy_from_slice(&(20 + udp_len).to_be_bytes());
        p.extend_from_slice(&[0, 9, 0, 7]);
        p.extend_from_slice(&udp_len.to_be_bytes());
        let pseudo = sum16([0xc000, 0x0202, 0xc000, 0x0201, 17, udp_len]);
        p.extend_from_slice(&pseudo.to_be_bytes());
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn completes_a_partial_checksum() {
        let hdr = VirtioNetHdr {
            flags: F_NEEDS_CSUM,
            csum_start: 20,
            csum_offset: 6,
            ..VirtioNetHdr::default()
        };
        let mut pkt = partial_udp(b"berth, hello");
        let (mut bufs, mut sizes) = (vec![vec![0u8; 1500]], vec![0]);
        // Completed here, so the stack need not check it again.
        assert_eq!(
            split(hdr, &mut pkt, &mut bufs, &mut sizes).ok(),
            Some((1, true))
        );
        let out = &bufs[0][..sizes[0]];
        assert_eq!(out.len(), pkt.len());
        // Over the pseudo-header and the datagram, the sum is all ones.
        let udp_len = (out.len() - 20) as u16;
        let words = out[20..]
            .chunks(2)
            .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
        let pseudo = [0xc000, 0x0202, 0xc000, 0x0201, 17, udp_len];
        assert_eq!(sum16(pseudo.into_iter().chain(words)), 0xffff);
    }

    /// recv's scattered read gives what one read and `split` give: for a
    /// plain packet (straight into bufs[0]) and for a UDP super-packet larger
    /// than bufs[0] (made whole in raw, then split), over a Unix datagram
    /// pair standing in for the TUN (one record per read, as a TUN).
    #[test]
    fn scattered_reads_match_one_read_and_split() {
        let (ours, peer) = std::os::unix::net::UnixDatagram::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        let q = TunFd {
            fd: OwnedFd::from(ours),
            vnet_hdr: true,
            udp_gso: true,
        };
        let plain = VirtioNetHdr {
            flags: F_NEEDS_CSUM,
            csum_start: 20,
            csum_offset: 6,
            ..VirtioNetHdr::default()
        };
        let payload: Vec<u8> = (0..3000u32).map(|i| (i * 7) as u8).collect();
        let gso = VirtioNetHdr {
            gso_type: GSO_UDP_L4,
            gso_size: 1000,
            hdr_len: 28,
            ..plain
        };
        // What one TUN read returns: the virtio header, then the packet.
        let record = |hdr: VirtioNetHdr, pkt: &[u8]| {
            let mut rec = vec![0u8; VIRTIO_NET_HDR_LEN];
            hdr.encode(&mut rec).unwrap();
            rec.extend_from_slice(pkt);
            rec
        };
        let fresh = || {
            (
                vec![vec![0u8; 1500]; 4],
                vec![0usize; 4],
                vec![0u8; VIRTIO_NET_HDR_LEN + 65_535],
            )
        };
        for (hdr, pkt) in [
            (plain, partial_udp(b"berth, hello")),
            (gso, partial_udp(&payload)),
        ] {
            peer.send(&record(hdr, &pkt)).unwrap();
            let (mut bufs, mut sizes, mut raw) = fresh();
            let (n, ours) = q.recv(&mut raw, &mut bufs, &mut sizes).unwrap();
            let (mut want, mut want_sizes, _) = fresh();
            let mut copy = pkt.clone();
            let m = split(hdr, &mut copy, &mut want, &mut want_sizes).unwrap();
            assert_eq!((n, ours), m);
            assert_eq!(n, if hdr.gso_type == GSO_NONE { 1 } else { 3 });
            assert!(ours, "checksums computed here");
            for i in 0..n {
                assert_eq!(bufs[i][..sizes[i]], want[i][..want_sizes[i]], "packet {i}");
            }
        }
        // No NEEDS_CSUM (a packet a raw socket wrote): the stack verifies it;
        // nor one whose checksum offset is not the transport's field.
        for flags_offset in [(0, 6), (F_NEEDS_CSUM, 4)] {
            let hdr = VirtioNetHdr {
                flags: flags_offset.0,
                csum_offset: flags_offset.1,
                ..plain
            };
            peer.send(&record(hdr, &partial_udp(b"raw"))).unwrap();
            let (mut bufs, mut sizes, mut raw) = fresh();
            let got = q.recv(&mut raw, &mut bufs, &mut sizes).unwrap();
            assert_eq!(got, (1, false), "{hdr:?}");
        }
        // Nothing more queued.
        let (mut bufs, mut sizes, mut raw) = fresh();
        let e = q.recv(&mut raw, &mut bufs, &mut sizes).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
    }

    #[test]
    fn bad_headers_are_errors_not_panics() {
        let (mut bufs, mut sizes) = (vec![vec![0u8; 1500]; 4], vec![0; 4]);
        let mut pkt = partial_udp(b"x");
        let beyond = VirtioNetHdr {
            flags: F_NEEDS_CSUM,
            csum_start: 60,
            csum_offset: 16,
            ..VirtioNetHdr::default()
        };
        assert!(split(beyond, &mut pkt, &mut bufs, &mut sizes).is_err());
        let gso = VirtioNetHdr {
            gso_type: 1,
            gso_size: 100,
            csum_start: 200,
            csum_offset: 16,
            ..VirtioNetHdr::default()
        };
        assert!(split(gso, &mut pkt, &mut bufs, &mut sizes).is_err());
        assert!(split(gso, &mut [], &mut bufs, &mut sizes).is_err());
        // Larger than the buffers.
        let mut big = vec![0x45; 2000];
        assert!(split(VirtioNetHdr::default(), &mut big, &mut bufs, &mut sizes).is_err());
    }
}
