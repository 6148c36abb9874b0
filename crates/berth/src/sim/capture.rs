//! pcap capture of a simulated link, timestamped with virtual time.

use std::io::{self, Write};

use berth_core::time::Instant;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::{DataLink, Endianness, PcapError, TsResolution};

use super::link::Medium;

/// Largest number of bytes kept per frame (tcpdump's default snap length).
const SNAPLEN: u32 = 262_144;

/// A pcap stream for one link.
pub(crate) struct Capture {
    writer: PcapWriter<Box<dyn Write + Send>>,
}

impl Capture {
    /// Writes the pcap header. Every header field is fixed (little endian,
    /// microseconds) so the same run gives the same bytes on any machine.
    pub fn new(out: Box<dyn Write + Send>, medium: Medium) -> io::Result<Capture> {
        let header = PcapHeader {
            version_major: 2,
            version_minor: 4,
            ts_correction: 0,
            ts_accuracy: 0,
            snaplen: SNAPLEN,
            datalink: match medium {
                Medium::Ethernet => DataLink::ETHERNET,
                Medium::Ip => DataLink::RAW,
            },
            ts_resolution: TsResolution::MicroSecond,
            endianness: Endianness::Little,
        };
        let writer = PcapWriter::with_header(out, header).map_err(to_io)?;
        Ok(Capture { writer })
    }

    /// Records one frame seen at virtual time `at`.
    pub fn write(&mut self, at: Instant, frame: &[u8]) -> io::Result<()> {
        let kept = &frame[..frame.len().min(SNAPLEN as usize)];
        let orig_len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        let timestamp = std::time::Duration::from_micros(at.total_micros());
        self.writer
            .write_packet(&PcapPacket::new(timestamp, orig_len, kept))
            .map(drop)
            .map_err(to_io)
    }

    /// Flushes and closes the underlying writer.
    pub fn finish(self) -> io::Result<()> {
        self.writer.into_writer().flush()
    }
}

fn to_io(e: PcapError) -> io::Error {
    match e {
        PcapError::IoError(e) => e,
        other => io::Error::new(io::ErrorKind::InvalidData, other),
    }
}
