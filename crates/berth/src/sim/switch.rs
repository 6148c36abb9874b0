//! A learning Ethernet switch (IEEE 802.1D transparent bridging, without
//! spanning tree or ageing: simulated topologies are small and loop-free).

use std::collections::HashMap;

/// Counters of one switch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SwitchStats {
    /// Frames that arrived on any port.
    pub received: u64,
    /// Frames sent out of exactly one port (destination MAC learned).
    pub forwarded: u64,
    /// Frames sent out of every other port (broadcast, multicast, unknown).
    pub flooded: u64,
    /// Frames dropped because the destination sits on the arrival port.
    pub filtered: u64,
    /// Frames dropped for being shorter than an Ethernet header.
    pub runts: u64,
}

/// Switch state: which link each port is, and where each MAC was last seen.
pub(crate) struct Switch {
    /// Link index of each port; the switch is always side B of its links.
    pub ports: Vec<usize>,
    table: HashMap<[u8; 6], usize>,
    pub stats: SwitchStats,
}

/// Where a frame goes after the switch looked at it.
pub(crate) enum Forward {
    Drop,
    One(usize),
    /// Every port except this one (the arrival port).
    FloodExcept(usize),
}

impl Switch {
    pub fn new() -> Switch {
        Switch {
            ports: Vec::new(),
            table: HashMap::new(),
            stats: SwitchStats::default(),
        }
    }

    /// Learns the source of a frame that arrived on `port` and decides where
    /// it goes.
    pub fn forward(&mut self, port: usize, frame: &[u8]) -> Forward {
        self.stats.received += 1;
        let (Some(dst), Some(src)) = (mac_at(frame, 0), mac_at(frame, 6)) else {
            self.stats.runts += 1;
            return Forward::Drop;
        };
        // A group address is never a valid source; don't learn it.
        if src[0] & 1 == 0 {
            self.table.insert(src, port);
        }
        if dst[0] & 1 != 0 {
            self.stats.flooded += 1;
            return Forward::FloodExcept(port);
        }
        match self.table.get(&dst) {
            Some(&out) if out == port => {
                self.stats.filtered += 1;
                Forward::Drop
            }
            Some(&out) => {
                self.stats.forwarded += 1;
                Forward::One(out)
            }
            None => {
                self.stats.flooded += 1;
                Forward::FloodExcept(port)
            }
        }
    }
}

fn mac_at(frame: &[u8], offset: usize) -> Option<[u8; 6]> {
    // A frame needs a whole Ethernet header (with EtherType) to be switched.
    if frame.len() < 14 {
        return None;
    }
    frame.get(offset..offset + 6)?.try_into().ok()
}
