//! The send buffer.

use std::borrow::Cow;

/// Smallest ring allocated.
const MIN_RING: usize = 256;

/// Send buffer: a ring holding unacknowledged and unsent data starting at `snd_una`.
/// A ring, not a Vec compacted now and then, so acknowledging never moves bytes; it
/// grows (doubling) up to the socket's send buffer size.
#[derive(Debug, Default)]
pub(crate) struct SendBuf {
    buf: Vec<u8>,
    head: usize,
    len: usize,
}

impl SendBuf {
    pub fn len(&self) -> usize {
        self.len
    }
    /// `len` bytes from `off`; borrowed unless the range wraps around the ring.
    pub fn slice(&self, off: usize, len: usize) -> Cow<'_, [u8]> {
        let cap = self.buf.len();
        if len == 0 || cap == 0 {
            return Cow::Borrowed(&[]);
        }
        let start = (self.head + off) % cap;
        if start + len <= cap {
            Cow::Borrowed(&self.buf[start..start + len])
        } else {
            let first = cap - start;
            let mut v = Vec::with_capacity(len);
            v.extend_from_slice(&self.buf[start..]);
            v.extend_from_slice(&self.buf[..len - first]);
            Cow::Owned(v)
        }
    }
    pub(crate) fn push(&mut self, d: &[u8]) {
        if d.is_empty() {
            return;
        }
        if self.len + d.len() > self.buf.len() {
            // Small first: a request/response connection writes a few bytes
            // and goes idle (freeing the ring) every round trip; a ring this
            // small comes from the allocator's thread cache and is cheap to
            // zero (4 KiB was a malloc, a memset and a free per round trip).
            // Bulk senders double their way up once.
            let new_cap = (self.buf.len() * 2)
                .max((self.len + d.len()).next_power_of_two())
                .max(MIN_RING);
            let mut nb = Vec::with_capacity(new_cap);
            let first = self.len.min(self.buf.len() - self.head);
            nb.extend_from_slice(&self.buf[self.head..self.head + first]);
            nb.extend_from_slice(&self.buf[..self.len - first]);
            nb.resize(new_cap, 0);
            self.buf = nb;
            self.head = 0;
        }
        let cap = self.buf.len();
        let tail = (self.head + self.len) % cap;
        let first = d.len().min(cap - tail);
        self.buf[tail..tail + first].copy_from_slice(&d[..first]);
        self.buf[..d.len() - first].copy_from_slice(&d[first..]);
        self.len += d.len();
    }
    pub(crate) fn consume(&mut self, n: usize) {
        let n = n.min(self.len);
        if self.buf.is_empty() {
            return;
        }
        self.head = (self.head + n) % self.buf.len();
        self.len -= n;
        if self.len == 0 {
            self.head = 0;
            // An idle connection holds no send memory (as Linux frees acked skbs);
            // large buffers of busy bulk connections are kept to avoid re-zeroing.
            if self.buf.len() <= 64 * 1024 {
                self.buf = Vec::new();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SendBuf;

    #[test]
    fn ring_wraps_grows_and_slices() {
        let mut b = SendBuf::default();
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        b.push(&data[..3000]);
        assert_eq!(b.len(), 3000);
        b.consume(2500);
        // Wraps inside the 4096-byte ring.
        b.push(&data[3000..6000]);
        assert_eq!(b.len(), 3500);
        assert_eq!(&*b.slice(0, 3500), &data[2500..6000]);
        assert_eq!(&*b.slice(1000, 100), &data[3500..3600]);
        // Grows while wrapped, keeping order.
        b.push(&data[6000..10_000]);
        assert_eq!(&*b.slice(0, 7500), &data[2500..10_000]);
        b.consume(7500);
        assert_eq!(b.len(), 0);
        assert!(b.slice(0, 0).is_empty());
    }
}
