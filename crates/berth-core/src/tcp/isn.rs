//! Initial sequence numbers per RFC 6528: ISN = M + F(localip, localport, remoteip,
//! remoteport, secretkey), with M a 4 µs clock and F a keyed hash (SipHash-2-4).

use crate::table::FourTuple;
use crate::time::Instant;
use berth_wire::SeqNumber;
use siphasher::sip::SipHasher24;
use std::hash::Hasher;

#[derive(Debug, Clone)]
pub(crate) struct IsnGenerator {
    k0: u64,
    k1: u64,
}

impl IsnGenerator {
    pub fn new(k0: u64, k1: u64) -> Self {
        IsnGenerator { k0, k1 }
    }

    pub fn isn(&self, now: Instant, t: &FourTuple) -> SeqNumber {
        let mut h = SipHasher24::new_with_keys(self.k0, self.k1);
        t.hash_into(&mut h);
        let f = h.finish() as u32;
        let m = (now.total_micros() / 4) as u32;
        SeqNumber(f.wrapping_add(m))
    }

    /// Two more keys for another use of the same secret (SYN cookies), so the
    /// stack draws no extra random numbers and its other choices stay put.
    pub fn subkeys(&self, label: &[u8]) -> (u64, u64) {
        let mut a = SipHasher24::new_with_keys(self.k0, self.k1);
        a.write(label);
        a.write_u8(0);
        let mut b = SipHasher24::new_with_keys(self.k0, self.k1);
        b.write(label);
        b.write_u8(1);
        (a.finish(), b.finish())
    }

    /// Offset of the timestamp clock for a connection (RFC 7323 §7.1): a keyed hash
    /// of the four-tuple, as Linux does. Random per four-tuple, so TSval reveals no
    /// host clock, but the same for every incarnation of a four-tuple, so a new SYN
    /// carries a newer timestamp than the old connection's and may reopen its
    /// TIME-WAIT (RFC 6191). A random offset per connection would make half of those
    /// SYNs look old.
    pub fn ts_offset(&self, t: &FourTuple) -> u32 {
        let mut h = SipHasher24::new_with_keys(self.k1, self.k0);
        h.write(b"tsoff");
        t.hash_into(&mut h);
        h.finish() as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_wire::Ipv4Addr;

    #[test]
    fn keyed_per_tuple_and_clocked() {
        let g = IsnGenerator::new(1, 2);
        let t1 = FourTuple::from((
            Ipv4Addr::new(192, 0, 2, 1),
            1000,
            Ipv4Addr::new(192, 0, 2, 2),
            80,
        ));
        let t2 = FourTuple::from((
            Ipv4Addr::new(192, 0, 2, 1),
            1001,
            Ipv4Addr::new(192, 0, 2, 2),
            80,
        ));
        let now = Instant::from_millis(0);
        assert_ne!(g.isn(now, &t1), g.isn(now, &t2));
        // Advances with the 4 µs clock.
        let later = Instant::from_micros(4000);
        assert_eq!(g.isn(later, &t1) - g.isn(now, &t1), 1000);
        // Another secret gives another sequence.
        assert_ne!(IsnGenerator::new(3, 4).isn(now, &t1), g.isn(now, &t1));
    }
}
