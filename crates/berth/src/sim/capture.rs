//! pcap capture of a simulated link, timestamped with virtual time.

use std::io::{self, Write};

use crate::pcap::{self, LinkType};
use berth_core::time::Instant;

use super::link::Medium;

/// A pcap stream for one link.
pub(crate) struct Capture {
    writer: Box<dyn Write + Send>,
}

impl Capture {
    /// Writes the pcap header (fixed fields: the same run gives the same
    /// bytes on any machine).
    pub fn new(out: Box<dyn Write + Send>, medium: Medium) -> io::Result<Capture> {
        let link = match medium {
            Medium::Ethernet => LinkType::Ethernet,
            Medium::Ip => LinkType::Ip,
        };
        let mut writer = out;
        pcap::write_header(&mut writer, link)?;
        Ok(Capture { writer })
    }

    /// Records one frame seen at virtual time `at`.
    pub fn write(&mut self, at: Instant, frame: &[u8]) -> io::Result<()> {
        let timestamp = std::time::Duration::from_micros(at.total_micros());
        pcap::write_record(&mut self.writer, timestamp, frame)
    }

    /// Flushes and closes the underlying writer.
    pub fn finish(mut self) -> io::Result<()> {
        self.writer.flush()
    }
}
