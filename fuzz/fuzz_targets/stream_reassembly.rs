//! Fuzzes one direction of TCP reassembly. The input is a configuration and a sequence of
//! segments and ACKs (format below, also written by `scripts/stream_seeds.py` from real
//! captures). Checked on every call: no panic; deliveries never go back and are contiguous
//! unless flagged as a gap; nothing is delivered past the depth; the memory gauge equals what is
//! buffered and stays within the per-stream cap; and, when payloads are generated from their
//! sequence numbers (so all copies of a byte agree), every delivered byte is the right one.
//!
//! Input: an 8-byte header, then operations until the input ends.
//! - header: `depth` (0 = unlimited, else ×64 bytes), `max_ooo_bytes` ((v+1)×16),
//!   `max_ooo_segments` (v%32+1), option bits (0-2 overlap policy, 3 midstream, 4 small memcap,
//!   5 generated payloads), then the ISN as u32 little-endian.
//! - operation: kind (bit 0: 1 = ACK from the other side, 0 = segment), sequence number as a
//!   u32 LE offset from the ISN, TCP flags, payload length as u16 LE (at most 1500); for a
//!   segment without generated payloads, that many payload bytes follow.
//!
//! Running it needs a nightly toolchain and `cargo install cargo-fuzz`; seeds go outside the
//! repository:
//! `python3 fuzz/scripts/stream_seeds.py /tmp/stream_seeds && cd fuzz &&
//! cargo +nightly fuzz run stream_reassembly /tmp/stream_corpus /tmp/stream_seeds`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_stream::{OverlapPolicy, Reassembler, StreamConfig, StreamStats, TcpFlags};

const POLICIES: [OverlapPolicy; 6] = [
    OverlapPolicy::First,
    OverlapPolicy::Bsd,
    OverlapPolicy::Linux,
    OverlapPolicy::OldLinux,
    OverlapPolicy::Solaris,
    OverlapPolicy::Last,
];

/// The byte every copy of sequence number `seq` carries in generated mode.
fn generated(seq: u32) -> u8 {
    (seq.wrapping_mul(2_654_435_761) >> 24) as u8
}

struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let Some(h) = input.take(4) else { return };
    let Some(isn) = input.u32() else { return };
    let mut cfg = StreamConfig {
        depth: u64::from(h[0]) * 64,
        max_ooo_bytes: (usize::from(h[1]) + 1) * 16,
        max_ooo_segments: usize::from(h[2] % 32) + 1,
        overlap_policy: POLICIES[usize::from(h[3] & 7) % POLICIES.len()],
        midstream: h[3] & 8 != 0,
        ..StreamConfig::default()
    };
    if h[3] & 16 != 0 {
        cfg.memcap = (cfg.max_ooo_bytes / 2) as u64;
    }
    let generate = h[3] & 32 != 0;

    let mut r = Reassembler::new();
    let mut stats = StreamStats::default();
    let mut out = Vec::new();
    let mut payload_buf = Vec::new();
    let mut end = 0u64; // where the last delivery ended
    let mut total = 0u64;
    while let (Some(kind), Some(rel), Some(flags), Some(len)) =
        (input.u8(), input.u32(), input.u8(), input.u16())
    {
        let seq = isn.wrapping_add(rel);
        let len = usize::from(len.min(1500));
        let mut payload: &[u8] = &[];
        let d = if kind & 1 == 1 {
            r.ack(&cfg, seq, &mut out, &mut stats)
        } else {
            let flags = TcpFlags(flags);
            if generate {
                let data_seq = if flags.has(TcpFlags::SYN) {
                    seq.wrapping_add(1)
                } else {
                    seq
                };
                payload_buf.clear();
                payload_buf.extend((0..len as u32).map(|i| generated(data_seq.wrapping_add(i))));
                payload = &payload_buf;
            } else {
                let Some(p) = input.take(len) else { break };
                payload = p;
            }
            r.segment(&cfg, seq, flags, payload, &mut out, &mut stats)
        };
        let bytes = d.bytes(payload, &out);
        assert_eq!(bytes.len(), d.len);
        if !d.is_empty() {
            assert!(
                d.offset >= end,
                "delivery at {} goes back before {}",
                d.offset,
                end
            );
            assert_eq!(
                d.gap,
                d.offset > end,
                "gap flag at {} after {}",
                d.offset,
                end
            );
            end = d.end();
            total += d.len as u64;
            if generate {
                let base = r.base_seq().expect("delivered without a start");
                for (i, &b) in bytes.iter().enumerate() {
                    let s = base.wrapping_add((d.offset + i as u64) as u32);
                    assert_eq!(
                        b,
                        generated(s),
                        "wrong byte at offset {}",
                        d.offset + i as u64
                    );
                }
            }
        }
        if cfg.depth != 0 {
            assert!(end <= cfg.depth && total <= cfg.depth);
        }
        assert_eq!(stats.reassembly_memuse, r.buffered_bytes() as u64);
        assert!(r.buffered_bytes() <= cfg.max_ooo_bytes);
    }
    r.release(&mut stats);
    assert_eq!(stats.reassembly_memuse, 0);
});
