//! pcap capture files: the header and packet records the simulator writes (on
//! its virtual clock, `sim::Simulator::capture`), and [`PcapFile`], a capture on
//! the wall clock that several threads write at once — a TUN/TAP device's
//! frames both ways (`device::DeviceOptions::pcap`), or `berth impair`'s.
//!
//! The files are classic pcap (version 2.4, little endian, microsecond
//! timestamps) with link type `LINKTYPE_ETHERNET` (1) or `LINKTYPE_RAW` (101:
//! bare IPv4 and IPv6 packets, the version nibble says which), and a snap
//! length of [`SNAPLEN`] bytes, more than the largest IP packet, so GSO
//! super-packets of up to 64 KiB are kept whole.

use pcap_file::pcap::PcapHeader;
use pcap_file::{DataLink, Endianness, PcapError, TsResolution};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Largest number of bytes kept per frame (tcpdump's default snap length),
/// above the 65,535 bytes of the largest IP packet.
pub const SNAPLEN: u32 = 262_144;

/// How often a [`PcapFile`] writes what it buffered, at the latest.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(100);

/// Bytes a [`PcapFile`] buffers before it writes them out.
const BUFFER: usize = 64 * 1024;

/// What the captured frames are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkType {
    /// Ethernet frames (a TAP device): `LINKTYPE_ETHERNET`.
    Ethernet,
    /// Bare IPv4 or IPv6 packets (a TUN device): `LINKTYPE_RAW`.
    Ip,
}

/// The file header of a capture of `link` (pcap-file's). Every field is fixed (little
/// endian, microseconds), so the same frames give the same bytes on any machine.
fn header(link: LinkType) -> PcapHeader {
    PcapHeader {
        version_major: 2,
        version_minor: 4,
        ts_correction: 0,
        ts_accuracy: 0,
        snaplen: SNAPLEN,
        datalink: match link {
            LinkType::Ethernet => DataLink::ETHERNET,
            LinkType::Ip => DataLink::RAW,
        },
        ts_resolution: TsResolution::MicroSecond,
        endianness: Endianness::Little,
    }
}

/// Write the file header of a capture of `link` to `w`.
pub(crate) fn write_header<W: Write>(w: &mut W, link: LinkType) -> io::Result<()> {
    header(link).write_to(w).map(drop).map_err(to_io)
}

/// Append the record of `frame`, seen at `timestamp` (since the Unix epoch, or
/// the simulation's start), cut to [`SNAPLEN`] bytes: the 16-byte record
/// header of [`header`]'s format (little endian, microseconds), then the data.
pub(crate) fn write_record<W: Write>(
    w: &mut W,
    timestamp: Duration,
    frame: &[u8],
) -> io::Result<()> {
    let kept = &frame[..frame.len().min(SNAPLEN as usize)];
    let mut rec = [0u8; 16];
    let secs = u32::try_from(timestamp.as_secs()).unwrap_or(u32::MAX);
    rec[0..4].copy_from_slice(&secs.to_le_bytes());
    rec[4..8].copy_from_slice(&timestamp.subsec_micros().to_le_bytes());
    rec[8..12].copy_from_slice(&(kept.len() as u32).to_le_bytes());
    let orig_len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
    rec[12..16].copy_from_slice(&orig_len.to_le_bytes());
    w.write_all(&rec)?;
    w.write_all(kept)
}

fn to_io(e: PcapError) -> io::Error {
    match e {
        PcapError::IoError(e) => e,
        other => io::Error::new(io::ErrorKind::InvalidData, other),
    }
}

/// A pcap file that frames are appended to as they pass, timestamped with the
/// wall clock. Clones write to the same file; it is safe to write from several
/// threads (a device's reader and the stack's pumping thread do).
///
/// Writing does not hold up the data path: records go to a 64 KiB buffer,
/// which is written out when full, at least every [`FLUSH_INTERVAL`] by a
/// thread of the capture's own, on [`PcapFile::flush`], and when the last clone
/// is dropped. A write error stops the capture (said once on stderr, and
/// returned by the next [`PcapFile::flush`]); the traffic goes on.
#[derive(Clone)]
pub struct PcapFile {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    state: Mutex<State>,
}

struct State {
    /// `None` once a write failed.
    writer: Option<BufWriter<File>>,
    /// Records buffered since the last flush.
    dirty: bool,
    frames: u64,
    error: Option<io::Error>,
}

impl PcapFile {
    /// Create (or truncate) `path` and write the pcap header for `link`.
    pub fn create(path: impl AsRef<Path>, link: LinkType) -> io::Result<PcapFile> {
        let path = path.as_ref().to_path_buf();
        let what = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
        let file = File::create(&path).map_err(what)?;
        let mut writer = BufWriter::with_capacity(BUFFER, file);
        write_header(&mut writer, link).map_err(what)?;
        let inner = Arc::new(Inner {
            path,
            state: Mutex::new(State {
                writer: Some(writer),
                dirty: true,
                frames: 0,
                error: None,
            }),
        });
        let weak = Arc::downgrade(&inner);
        std::thread::Builder::new()
            .name("berth-pcap".into())
            .spawn(move || flusher(weak))?;
        Ok(PcapFile { inner })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Append `frame`, timestamped now.
    pub fn write(&self, frame: &[u8]) {
        self.write_all([frame]);
    }

    /// Append `frames`, all timestamped now, under one lock (a batch read at once).
    pub fn write_all<'a>(&self, frames: impl IntoIterator<Item = &'a [u8]>) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let mut st = self.inner.lock();
        let st = &mut *st;
        let Some(w) = st.writer.as_mut() else {
            return;
        };
        for f in frames {
            if let Err(e) = write_record(w, now, f) {
                st.fail(&self.inner.path, e);
                return;
            }
            st.frames += 1;
            st.dirty = true;
        }
    }

    /// Frames written so far.
    pub fn frames(&self) -> u64 {
        self.inner.lock().frames
    }

    /// Write out what is buffered. `Err` if this or an earlier write failed
    /// (the capture stopped then).
    pub fn flush(&self) -> io::Result<()> {
        let mut st = self.inner.lock();
        st.flush(&self.inner.path);
        match &st.error {
            Some(e) => Err(io::Error::new(
                e.kind(),
                format!("capture {}: {e}", self.inner.path.display()),
            )),
            None => Ok(()),
        }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A writer that panicked mid-record leaves at worst a cut record.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl State {
    fn flush(&mut self, path: &Path) {
        if !self.dirty {
            return;
        }
        self.dirty = false;
        if let Some(w) = self.writer.as_mut() {
            if let Err(e) = w.flush() {
                self.fail(path, e);
            }
        }
    }

    /// Stop capturing after `e`, and say so once.
    fn fail(&mut self, path: &Path, e: io::Error) {
        eprintln!(
            "berth: capture {}: {e}; capture stopped (the traffic goes on)",
            path.display()
        );
        tracing::error!(target: "berth::pcap", path = %path.display(), error = %e, "capture stopped");
        self.writer = None;
        self.error = Some(e);
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let st = self.state.get_mut().unwrap_or_else(|p| p.into_inner());
        st.flush(&self.path);
    }
}

/// Flush `inner` every [`FLUSH_INTERVAL`] until it is dropped.
fn flusher(inner: Weak<Inner>) {
    loop {
        std::thread::sleep(FLUSH_INTERVAL);
        let Some(i) = inner.upgrade() else {
            return;
        };
        i.lock().flush(&i.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("berth-pcap-{}-{name}", std::process::id()))
    }

    /// (orig_len, data) of every record of a classic little-endian pcap file.
    fn records(bytes: &[u8]) -> Vec<(u32, Vec<u8>)> {
        let u32_at = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().unwrap());
        assert_eq!(u32_at(0), 0xa1b2_c3d4, "magic");
        let mut out = Vec::new();
        let mut i = 24;
        while i < bytes.len() {
            let (incl, orig) = (u32_at(i + 8) as usize, u32_at(i + 12));
            out.push((orig, bytes[i + 16..i + 16 + incl].to_vec()));
            i += 16 + incl;
        }
        out
    }

    #[test]
    fn frames_from_threads_are_whole_records_after_drop() {
        let path = temp("threads");
        let cap = PcapFile::create(&path, LinkType::Ip).unwrap();
        let threads: Vec<_> = (0..4u8)
            .map(|t| {
                let cap = cap.clone();
                std::thread::spawn(move || {
                    for i in 0..100u8 {
                        cap.write(&[0x45, t, i]);
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        // A GSO super-packet: kept whole.
        cap.write_all([&vec![0x45; 65_535][..], &[0x60][..]]);
        assert_eq!(cap.frames(), 402);
        drop(cap);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(
            u32::from_le_bytes(bytes[16..20].try_into().unwrap()),
            SNAPLEN
        );
        assert_eq!(u32::from_le_bytes(bytes[20..24].try_into().unwrap()), 101);
        let recs = records(&bytes);
        assert_eq!(recs.len(), 402);
        assert_eq!(recs[400].0, 65_535);
        assert_eq!(recs[400].1.len(), 65_535);
        for t in 0..4u8 {
            let mine: Vec<u8> = recs
                .iter()
                .filter(|r| r.1.len() == 3 && r.1[1] == t)
                .map(|r| r.1[2])
                .collect();
            assert_eq!(mine, (0..100).collect::<Vec<u8>>(), "thread {t} in order");
        }
    }

    #[test]
    fn the_flusher_writes_without_an_explicit_flush() {
        let path = temp("flusher");
        let cap = PcapFile::create(&path, LinkType::Ethernet).unwrap();
        cap.write(&[0xff; 60]);
        std::thread::sleep(FLUSH_INTERVAL * 4);
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(u32::from_le_bytes(bytes[20..24].try_into().unwrap()), 1);
        assert_eq!(records(&bytes).len(), 1, "flushed while still open");
        assert!(cap.flush().is_ok());
        drop(cap);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_bad_path_is_an_error_naming_it() {
        let e = PcapFile::create("/nonexistent-dir/x.pcap", LinkType::Ip)
            .err()
            .unwrap();
        assert!(e.to_string().contains("/nonexistent-dir/x.pcap"), "{e}");
    }
}
