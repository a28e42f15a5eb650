//! Properties against the simplest model there is: the original byte string. A stream is cut
//! into random segments that arrive reordered, duplicated, merged into overlapping
//! retransmissions or lost; whatever is delivered must be the original's bytes at the offsets
//! claimed, contiguous unless a gap is flagged.

use portcullis_stream::{Reassembler, StreamConfig, StreamStats, TcpFlags};
use proptest::prelude::*;

const ACK: TcpFlags = TcpFlags(TcpFlags::ACK);
const SYN: TcpFlags = TcpFlags(TcpFlags::SYN);

/// A segment as sent: stream offset and length.
#[derive(Clone, Copy, Debug)]
struct Seg {
    off: usize,
    len: usize,
}

/// Cuts `len` bytes into segments of the given sizes (cycled), in order.
fn cut(len: usize, sizes: &[usize]) -> Vec<Seg> {
    let mut segs = Vec::new();
    let mut off = 0;
    let mut i = 0;
    while off < len {
        let n = sizes[i % sizes.len()].min(len - off);
        segs.push(Seg { off, len: n });
        off += n;
        i += 1;
    }
    segs
}

/// Local reordering: each segment is sent `delay` places late, at most.
fn reorder(segs: &[Seg], delays: &[usize]) -> Vec<Seg> {
    let mut keyed: Vec<(usize, Seg)> = segs
        .iter()
        .enumerate()
        .map(|(i, s)| (i + delays[i % delays.len()], *s))
        .collect();
    keyed.sort_by_key(|(k, _)| *k);
    keyed.into_iter().map(|(_, s)| s).collect()
}

/// Follows every delivery of one direction and checks it against the original.
struct Checker<'a> {
    data: &'a [u8],
    end: u64,
    delivered: usize,
}

impl Checker<'_> {
    fn take(&mut self, d: portcullis_stream::Delivered, payload: &[u8], out: &[u8]) {
        if d.is_empty() {
            return;
        }
        assert!(
            d.offset >= self.end,
            "offset {} goes back before {}",
            d.offset,
            self.end
        );
        assert_eq!(
            d.gap,
            d.offset > self.end,
            "gap flag at {} after {}",
            d.offset,
            self.end
        );
        let off = d.offset as usize;
        assert_eq!(
            d.bytes(payload, out),
            &self.data[off..off + d.len],
            "bytes at {off}"
        );
        self.end = d.end();
        self.delivered += d.len;
    }
}

fn isn() -> impl Strategy<Value = u32> {
    // Half of the streams start just before the sequence space wraps.
    prop_oneof![any::<u32>(), (0u32..4096).prop_map(|k| u32::MAX - k)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Reordered, duplicated and overlapping-retransmitted segments within the caps: the
    /// deliveries concatenate to the original exactly, with contiguous offsets and no gaps.
    #[test]
    fn reordered_and_duplicated_segments_rebuild_the_stream(
        data in prop::collection::vec(any::<u8>(), 1..3000),
        isn in isn(),
        sizes in prop::collection::vec(1usize..300, 1..8),
        delays in prop::collection::vec(0usize..5, 1..8),
        dups in prop::collection::vec((any::<prop::sample::Index>(), 1usize..3, 0usize..10), 0..6),
    ) {
        let segs = cut(data.len(), &sizes);
        let mut sent = reorder(&segs, &delays);
        // Retransmissions: a run of 1-2 consecutive segments resent as one, some places later,
        // so they overlap buffered or delivered data partially or wholly.
        for (at, n, later) in dups {
            let i = at.index(segs.len());
            let last = (i + n - 1).min(segs.len() - 1);
            let merged = Seg { off: segs[i].off, len: segs[last].off + segs[last].len - segs[i].off };
            let pos = (i + later).min(sent.len());
            sent.insert(pos, merged);
        }
        let cfg = StreamConfig::default();
        let (mut r, mut stats, mut out) = (Reassembler::new(), StreamStats::default(), Vec::new());
        r.segment(&cfg, isn, SYN, b"", &mut out, &mut stats);
        let mut c = Checker { data: &data, end: 0, delivered: 0 };
        for s in &sent {
            let seq = isn.wrapping_add(1).wrapping_add(s.off as u32);
            let payload = &data[s.off..s.off + s.len];
            let d = r.segment(&cfg, seq, ACK, payload, &mut out, &mut stats);
            c.take(d, payload, &out);
            prop_assert_eq!(stats.reassembly_memuse, r.buffered_bytes() as u64);
        }
        prop_assert_eq!(c.delivered, data.len());
        prop_assert_eq!(r.buffered_bytes(), 0);
        prop_assert_eq!(stats.reassembly_gap, 0);
        prop_assert_eq!(stats.overlap_diff_data, 0);
        prop_assert_eq!(stats.reassembly_memuse, 0);
    }

    /// Lost segments, small caps and ACKs from the receiver (who got everything): whatever is
    /// delivered is the original at its offset, gaps are flagged, and the final ACK brings the
    /// stream to its end with nothing left buffered.
    #[test]
    fn losses_and_caps_never_deliver_wrong_bytes(
        data in prop::collection::vec(any::<u8>(), 1..3000),
        isn in isn(),
        sizes in prop::collection::vec(1usize..300, 1..8),
        delays in prop::collection::vec(0usize..6, 1..8),
        lost in prop::collection::vec(any::<bool>(), 1..16),
        ack_every in 1usize..8,
        max_ooo_bytes in 1usize..1000,
        max_ooo_segments in 1usize..8,
        depth in prop_oneof![Just(0u64), 1u64..4000],
    ) {
        let segs = cut(data.len(), &sizes);
        let sent = reorder(&segs, &delays);
        let cfg = StreamConfig { depth, max_ooo_bytes, max_ooo_segments, ..StreamConfig::default() };
        let (mut r, mut stats, mut out) = (Reassembler::new(), StreamStats::default(), Vec::new());
        r.segment(&cfg, isn, SYN, b"", &mut out, &mut stats);
        let mut c = Checker { data: &data, end: 0, delivered: 0 };
        // The receiver's cumulative ACK: it got every segment sent so far, lost or not.
        let mut got = vec![false; data.len() + 1];
        let mut acked = 0usize;
        for (i, s) in sent.iter().enumerate() {
            got[s.off..s.off + s.len].iter_mut().for_each(|g| *g = true);
            if !lost[i % lost.len()] {
                let seq = isn.wrapping_add(1).wrapping_add(s.off as u32);
                let payload = &data[s.off..s.off + s.len];
                let d = r.segment(&cfg, seq, ACK, payload, &mut out, &mut stats);
                c.take(d, payload, &out);
            }
            while acked < data.len() && got[acked] {
                acked += 1;
            }
            if i % ack_every == 0 {
                let d = r.ack(&cfg, isn.wrapping_add(1).wrapping_add(acked as u32), &mut out, &mut stats);
                c.take(d, &[], &out);
            }
            prop_assert_eq!(stats.reassembly_memuse, r.buffered_bytes() as u64);
            prop_assert!(r.buffered_bytes() <= max_ooo_bytes);
        }
        // The last ACK may cover several holes: one run per call, until nothing is left.
        loop {
            let d = r.ack(&cfg, isn.wrapping_add(1).wrapping_add(data.len() as u32), &mut out, &mut stats);
            if d.is_empty() {
                break;
            }
            c.take(d, &[], &out);
        }
        let limit = if depth == 0 { data.len() } else { data.len().min(depth as usize) };
        prop_assert!(c.delivered <= limit);
        prop_assert_eq!(r.next_offset() as usize, limit);
        prop_assert_eq!(r.buffered_bytes(), 0);
        prop_assert_eq!(r.depth_reached(), depth != 0 && depth as usize <= data.len());
        prop_assert_eq!(stats.stream_depth_reached, u64::from(r.depth_reached()));
        if stats.reassembly_gap == 0 {
            prop_assert_eq!(c.delivered, limit);
        }
        r.release(&mut stats);
        prop_assert_eq!(stats.reassembly_memuse, 0);
    }
}
