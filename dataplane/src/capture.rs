//! The offline capture source: pcap and pcapng files read through a fixed-size buffer.
//!
//! `pcap-file` parses records from a slice; this module owns the buffering, so frames are
//! handed out as borrowed slices of one reused buffer (no allocation per packet), and it turns
//! a short or damaged file into a [`CaptureError`] that names the file and the byte offset of
//! the record that could not be read.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use pcap_file::pcap::PcapParser;
use pcap_file::pcapng::{blocks::interface_description::InterfaceDescriptionOption, Block, PcapNgParser};
use pcap_file::{DataLink, PcapError, TsResolution};
use portcullis_common::Timestamp;

/// The largest record we accept; libpcap refuses larger ones as corrupt too.
const MAX_RECORD: usize = 256 * 1024;
/// Read granularity. Records straddling the end are moved to the front before a refill.
const BUF_SIZE: usize = 1 << 20;

/// The link layer a frame starts with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkType {
    Ethernet,
    /// BSD loopback: a 4-byte address family in host byte order, then IP.
    Null,
    /// OpenBSD loopback: the same in network byte order.
    Loop,
    /// Raw IPv4 or IPv6, version in the first nibble.
    Raw,
    LinuxSll,
    LinuxSll2,
    Other(u32),
}

impl From<DataLink> for LinkType {
    fn from(d: DataLink) -> Self {
        match d {
            DataLink::ETHERNET => LinkType::Ethernet,
            DataLink::NULL => LinkType::Null,
            DataLink::LOOP => LinkType::Loop,
            DataLink::RAW | DataLink::IPV4 | DataLink::IPV6 => LinkType::Raw,
            DataLink::LINUX_SLL => LinkType::LinuxSll,
            DataLink::LINUX_SLL2 => LinkType::LinuxSll2,
            other => LinkType::Other(u32::from(other)),
        }
    }
}

/// One captured frame, borrowed from the reader's buffer until the next call.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    pub ts: Timestamp,
    /// Length on the wire; `data.len()` is what was captured.
    pub orig_len: u32,
    pub link: LinkType,
    pub data: &'a [u8],
    /// Byte offset of the record in its file, for messages.
    pub offset: u64,
}

/// A failure to read a capture file. Everything read before it stands.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("{path}: cannot open: {source}")]
    Open { path: PathBuf, source: io::Error },
    #[error("{path}: not a pcap or pcapng file ({reason})")]
    NotACapture { path: PathBuf, reason: String },
    #[error("{path}: read error at offset {offset}: {source}")]
    Read { path: PathBuf, offset: u64, source: io::Error },
    #[error("{path}: truncated at offset {offset}: the last record is cut short ({missing} bytes missing or more)")]
    Truncated { path: PathBuf, offset: u64, missing: usize },
    #[error("{path}: corrupt record at offset {offset}: {reason}; the rest of the file is skipped")]
    Corrupt { path: PathBuf, offset: u64, reason: String },
    #[error("cannot list {path}: {source}")]
    List { path: PathBuf, source: io::Error },
    #[error("no capture files (.pcap, .pcapng, .cap, .dmp) found in {path}")]
    NoCaptures { path: PathBuf },
}

/// Expands directories into the capture files below them (by extension, recursively,
/// sorted by path); files named directly are kept as given, in order.
pub fn capture_files(inputs: &[PathBuf]) -> Result<Vec<PathBuf>, CaptureError> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), CaptureError> {
        let rd = std::fs::read_dir(dir).map_err(|source| CaptureError::List { path: dir.into(), source })?;
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out)?;
            } else if matches!(p.extension().and_then(|x| x.to_str()), Some("pcap" | "pcapng" | "cap" | "dmp")) {
                out.push(p);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    for p in inputs {
        if p.is_dir() {
            let mut found = Vec::new();
            walk(p, &mut found)?;
            if found.is_empty() {
                return Err(CaptureError::NoCaptures { path: p.clone() });
            }
            found.sort();
            out.extend(found);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

enum Format {
    Pcap { parser: PcapParser, nanos: bool, link: LinkType },
    PcapNg { parser: PcapNgParser },
}

/// A pcap or pcapng file, read frame by frame.
pub struct CaptureFile {
    path: PathBuf,
    file: File,
    buf: Vec<u8>,
    /// Unparsed bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    /// File offset of `buf[0]`.
    base: u64,
    eof: bool,
    format: Format,
    done: bool,
}

impl std::fmt::Debug for CaptureFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureFile").field("path", &self.path).field("offset", &self.offset()).finish()
    }
}

impl CaptureFile {
    pub fn open(path: impl AsRef<Path>) -> Result<Self, CaptureError> {
        let path = path.as_ref().to_path_buf();
        let file = File::open(&path).map_err(|source| CaptureError::Open { path: path.clone(), source })?;
        let mut cf = CaptureFile {
            path,
            file,
            buf: vec![0; BUF_SIZE],
            start: 0,
            end: 0,
            base: 0,
            eof: false,
            format: Format::PcapNg { parser: placeholder_ng() },
            done: false,
        };
        cf.fill()?;
        let data = &cf.buf[..cf.end];
        let not = |reason: String| CaptureError::NotACapture { path: cf.path.clone(), reason };
        if data.len() < 4 {
            return Err(not(format!("only {} bytes", data.len())));
        }
        let (format, used) = if data[..4] == [0x0a, 0x0d, 0x0d, 0x0a] {
            let (rem, parser) = PcapNgParser::new(data).map_err(|e| not(e.to_string()))?;
            (Format::PcapNg { parser }, data.len() - rem.len())
        } else {
            let (rem, parser) = PcapParser::new(data).map_err(|e| not(e.to_string()))?;
            let h = parser.header();
            let nanos = h.ts_resolution == TsResolution::NanoSecond;
            let link = LinkType::from(h.datalink);
            (Format::Pcap { parser, nanos, link }, data.len() - rem.len())
        };
        cf.format = format;
        cf.start = used;
        Ok(cf)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// File offset of the next unread record.
    pub fn offset(&self) -> u64 {
        self.base + self.start as u64
    }

    /// Bytes of the file consumed so far (for progress reporting).
    pub fn position(&self) -> u64 {
        self.offset()
    }

    /// Moves unparsed bytes to the front and reads more. Returns how many bytes were added.
    fn fill(&mut self) -> Result<usize, CaptureError> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.base += self.start as u64;
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            self.buf.resize(self.buf.len() * 2, 0);
        }
        let mut added = 0;
        while self.end < self.buf.len() {
            match self.file.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => {
                    self.end += n;
                    added += n;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(CaptureError::Read { path: self.path.clone(), offset: self.base + self.end as u64, source })
                }
            }
        }
        Ok(added)
    }

    /// The next frame, `Ok(None)` at a clean end of file. After an error the file is done:
    /// further calls return `Ok(None)`.
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        if self.done {
            return Ok(None);
        }
        let r = self.next_inner();
        if !matches!(r, Ok(Some(_))) {
            self.done = true;
        }
        // Re-borrow: `next_inner` returns positions so the borrow checker sees one borrow.
        match r {
            Ok(Some(p)) => Ok(Some(Frame {
                ts: p.ts,
                orig_len: p.orig_len,
                link: p.link,
                data: &self.buf[p.data_start..p.data_end],
                offset: p.offset,
            })),
            Ok(None) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn next_inner(&mut self) -> Result<Option<Parsed>, CaptureError> {
        loop {
            let offset = self.offset();
            let slice = &self.buf[self.start..self.end];
            let res = match &mut self.format {
                Format::Pcap { parser, nanos, link } => parse_pcap(parser, *nanos, *link, slice),
                Format::PcapNg { parser } => parse_pcapng(parser, slice),
            };
            match res {
                Step::Frame { used, data_start, data_len, ts, orig_len, link } => {
                    let data_start = self.start + data_start;
                    self.start += used;
                    return Ok(Some(Parsed { ts, orig_len, link, data_start, data_end: data_start + data_len, offset }));
                }
                Step::Skip { used } => self.start += used,
                Step::Incomplete => {
                    if self.start == self.end && self.eof {
                        return Ok(None);
                    }
                    if self.eof {
                        let have = self.end - self.start;
                        return Err(CaptureError::Truncated { path: self.path.clone(), offset, missing: needed(&self.buf[self.start..self.end]).saturating_sub(have).max(1) });
                    }
                    self.fill()?;
                }
                Step::Corrupt(reason) => return Err(CaptureError::Corrupt { path: self.path.clone(), offset, reason }),
            }
        }
    }
}

/// For a message: how long the record at the front claims to be, if its header is there.
fn needed(s: &[u8]) -> usize {
    if s.len() >= 16 {
        16 + u32::from_le_bytes([s[8], s[9], s[10], s[11]]).min(MAX_RECORD as u32) as usize
    } else {
        16
    }
}

struct Parsed {
    ts: Timestamp,
    orig_len: u32,
    link: LinkType,
    data_start: usize,
    data_end: usize,
    offset: u64,
}

enum Step {
    Frame { used: usize, data_start: usize, data_len: usize, ts: Timestamp, orig_len: u32, link: LinkType },
    Skip { used: usize },
    Incomplete,
    Corrupt(String),
}

fn parse_pcap(parser: &PcapParser, nanos: bool, link: LinkType, slice: &[u8]) -> Step {
    if slice.len() >= 16 {
        // Check the claimed length before asking the parser to wait for that many bytes, so a
        // garbage length is reported as corruption rather than as a short file.
        let incl = match parser.header().endianness {
            pcap_file::Endianness::Little => u32::from_le_bytes([slice[8], slice[9], slice[10], slice[11]]),
            pcap_file::Endianness::Big => u32::from_be_bytes([slice[8], slice[9], slice[10], slice[11]]),
        };
        if incl as usize > MAX_RECORD {
            return Step::Corrupt(format!("record claims {incl} captured bytes (limit {MAX_RECORD})"));
        }
    }
    match parser.next_raw_packet(slice) {
        Ok((rem, p)) => {
            let used = slice.len() - rem.len();
            let frac = i64::from(p.ts_frac);
            let micros = if nanos { frac / 1000 } else { frac };
            let ts = Timestamp::from_secs_micros(i64::from(p.ts_sec), micros);
            let data_len = p.data.len();
            Step::Frame { used, data_start: used - data_len, data_len, ts, orig_len: p.orig_len, link }
        }
        Err(PcapError::IncompleteBuffer) => Step::Incomplete,
        Err(e) => Step::Corrupt(e.to_string()),
    }
}

fn parse_pcapng(parser: &mut PcapNgParser, slice: &[u8]) -> Step {
    if slice.len() >= 8 {
        let len = u32::from_le_bytes([slice[4], slice[5], slice[6], slice[7]]).max(u32::from_be_bytes([slice[4], slice[5], slice[6], slice[7]]));
        let le = u32::from_le_bytes([slice[4], slice[5], slice[6], slice[7]]);
        let be = u32::from_be_bytes([slice[4], slice[5], slice[6], slice[7]]);
        if le as usize > MAX_RECORD + 64 && be as usize > MAX_RECORD + 64 {
            return Step::Corrupt(format!("block claims {len} bytes (limit {})", MAX_RECORD + 64));
        }
    }
    let base = slice.as_ptr() as usize;
    match parser.next_block(slice) {
        Ok((rem, block)) => {
            let used = slice.len() - rem.len();
            let (raw_ts, orig_len, data, resol, link) = match &block {
                Block::EnhancedPacket(epb) => {
                    let Some(iface) = parser.packet_interface(epb) else {
                        return Step::Corrupt(format!("packet names interface {} that was never described", epb.interface_id));
                    };
                    let resol = iface
                        .options
                        .iter()
                        .find_map(|o| match o {
                            InterfaceDescriptionOption::IfTsResol(r) => Some(*r),
                            _ => None,
                        })
                        .unwrap_or(6);
                    // pcap-file stores the raw 64-bit count as nanoseconds; the unit is ours
                    // to apply from if_tsresol.
                    (epb.timestamp.as_nanos() as u64, epb.original_len, &epb.data, resol, LinkType::from(iface.linktype))
                }
                Block::SimplePacket(spb) => {
                    let link = parser.interfaces().first().map(|i| LinkType::from(i.linktype)).unwrap_or(LinkType::Ethernet);
                    (0, spb.original_len, &spb.data, 6, link)
                }
                _ => return Step::Skip { used },
            };
            let std::borrow::Cow::Borrowed(bytes) = data else {
                return Step::Corrupt("packet data was not borrowed".into());
            };
            let data_start = bytes.as_ptr() as usize - base;
            let ts = Timestamp(raw_to_micros(raw_ts, resol));
            Step::Frame { used, data_start, data_len: bytes.len(), ts, orig_len, link }
        }
        Err(PcapError::IncompleteBuffer) => Step::Incomplete,
        Err(e) => Step::Corrupt(e.to_string()),
    }
}

/// Converts a pcapng timestamp in `if_tsresol` units to microseconds.
fn raw_to_micros(raw: u64, resol: u8) -> i64 {
    let raw = u128::from(raw);
    let micros = if resol & 0x80 == 0 {
        let exp = u32::from(resol.min(30));
        if exp >= 6 {
            raw / 10u128.pow(exp - 6)
        } else {
            raw * 10u128.pow(6 - exp)
        }
    } else {
        let shift = u32::from(resol & 0x7f).min(100);
        (raw * 1_000_000) >> shift
    };
    i64::try_from(micros).unwrap_or(i64::MAX)
}

fn placeholder_ng() -> PcapNgParser {
    // A minimal valid section header, only so `CaptureFile` can be built before the real
    // header is parsed; it is replaced before any record is read.
    const SHB: [u8; 28] = [
        0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 28, 0, 0, 0,
    ];
    PcapNgParser::new(&SHB).expect("static section header parses").1
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn pcap_bytes(records: &[(&[u8], u32)]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&0xa1b2c3d4u32.to_le_bytes());
        v.extend_from_slice(&2u16.to_le_bytes());
        v.extend_from_slice(&4u16.to_le_bytes());
        v.extend_from_slice(&[0; 8]);
        v.extend_from_slice(&65535u32.to_le_bytes());
        v.extend_from_slice(&1u32.to_le_bytes());
        for (i, (data, orig)) in records.iter().enumerate() {
            v.extend_from_slice(&(1000 + i as u32).to_le_bytes());
            v.extend_from_slice(&7u32.to_le_bytes());
            v.extend_from_slice(&(data.len() as u32).to_le_bytes());
            v.extend_from_slice(&orig.to_le_bytes());
            v.extend_from_slice(data);
        }
        v
    }

    fn write_tmp(bytes: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(bytes).unwrap();
        f
    }

    #[test]
    fn reads_records_with_timestamps() {
        let f = write_tmp(&pcap_bytes(&[(b"abcd", 4), (b"efghij", 60)]));
        let mut c = CaptureFile::open(f.path()).unwrap();
        let a = c.next_frame().unwrap().unwrap();
        assert_eq!((a.data, a.ts, a.offset), (&b"abcd"[..], Timestamp::from_secs_micros(1000, 7), 24));
        let b = c.next_frame().unwrap().unwrap();
        assert_eq!((b.data, b.orig_len, b.link), (&b"efghij"[..], 60, LinkType::Ethernet));
        assert!(c.next_frame().unwrap().is_none());
    }

    #[test]
    fn truncated_file_names_offset_after_good_records() {
        let mut bytes = pcap_bytes(&[(b"abcd", 4), (b"efghij", 6)]);
        bytes.truncate(bytes.len() - 3);
        let f = write_tmp(&bytes);
        let mut c = CaptureFile::open(f.path()).unwrap();
        assert!(c.next_frame().unwrap().is_some());
        let err = c.next_frame().unwrap_err();
        assert!(matches!(err, CaptureError::Truncated { offset: 44, .. }), "{err}");
        assert!(err.to_string().contains("offset 44"));
        assert!(c.next_frame().unwrap().is_none());
    }

    #[test]
    fn absurd_record_length_is_corruption_not_truncation() {
        let mut bytes = pcap_bytes(&[(b"abcd", 4)]);
        bytes.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0]);
        let f = write_tmp(&bytes);
        let mut c = CaptureFile::open(f.path()).unwrap();
        assert!(c.next_frame().unwrap().is_some());
        assert!(matches!(c.next_frame(), Err(CaptureError::Corrupt { offset: 44, .. })));
    }

    #[test]
    fn not_a_capture() {
        let f = write_tmp(b"GET / HTTP/1.1\r\n\r\n");
        assert!(matches!(CaptureFile::open(f.path()), Err(CaptureError::NotACapture { .. })));
    }

    #[test]
    fn pcapng_resolutions() {
        assert_eq!(raw_to_micros(1_500_000, 6), 1_500_000);
        assert_eq!(raw_to_micros(1_500_000_000, 9), 1_500_000);
        assert_eq!(raw_to_micros(3, 0), 3_000_000);
        assert_eq!(raw_to_micros(1 << 20, 0x80 | 20), 1_000_000);
    }
}
