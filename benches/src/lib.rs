//! Benchmark fixtures: loading real captures into memory once, outside the timed code, so
//! the benchmarks measure decoding and flow tracking rather than disk reads.

use std::path::PathBuf;

use portcullis_common::PacketMeta;
use portcullis_dataplane::{capture_files, CaptureFile, Decoded, Decoder, LinkType};

/// One captured frame held in memory.
#[derive(Debug, Clone)]
pub struct OwnedFrame {
    pub ts: portcullis_common::Timestamp,
    pub link: LinkType,
    pub data: Vec<u8>,
}

/// The captures benchmarks use: the bundled demo, plus every capture under the shared
/// benign, attack, scan and nDPI directories when `$PORTCULLIS_DATA` (default
/// `../shared/data`) has them.
pub fn bench_captures() -> Vec<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut v = vec![root.join("configs/demo/demo.pcap")];
    let data = portcullis_common::shared_data_dir();
    for sub in ["pcaps/benign", "pcaps/attacks", "pcaps/scans", "pcaps/ndpi"] {
        match capture_files(&[data.join(sub)]) {
            Ok(files) => v.extend(files),
            Err(e) => eprintln!("note: {e}; benchmarking without it"),
        }
    }
    v
}

/// Every frame of the given captures (unreadable files are skipped).
pub fn load_frames(files: &[PathBuf]) -> Vec<OwnedFrame> {
    let mut out = Vec::new();
    for f in files {
        let Ok(mut c) = CaptureFile::open(f) else { continue };
        while let Ok(Some(fr)) = c.next_frame() {
            out.push(OwnedFrame { ts: fr.ts, link: fr.link, data: fr.data.to_vec() });
        }
    }
    out
}

/// The decoded packets of `frames`, with a monotonic clock as the replay engine sets it.
pub fn decode_all(frames: &[OwnedFrame]) -> Vec<PacketMeta> {
    let mut d = Decoder::default();
    let mut clock = portcullis_common::Timestamp(i64::MIN);
    let mut out = Vec::with_capacity(frames.len());
    for (i, f) in frames.iter().enumerate() {
        let frame = portcullis_dataplane::Frame { ts: f.ts, orig_len: f.data.len() as u32, link: f.link, data: &f.data, offset: 0 };
        clock = clock.max(f.ts);
        let mut keep = |mut m: PacketMeta| {
            m.clock = clock;
            out.push(m);
        };
        match d.decode(&frame, i as u64 + 1) {
            Decoded::Packet(m) => keep(m),
            Decoded::Tunneled { outer, inner } => {
                keep(outer);
                keep(inner);
            }
            _ => {}
        }
    }
    out
}
