//! Reassembly throughput in bytes/s for one direction: a 4 MiB stream in 1448-byte segments
//! (a typical MSS with timestamps) delivered in order (the zero-copy path), and with every
//! pair of segments swapped (every other segment waits in the out-of-order store). Each run
//! checks the length and a checksum of what was delivered, so a fast wrong version fails.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use portcullis_stream::{Reassembler, StreamConfig, StreamStats, TcpFlags};

const MSS: usize = 1448;
const LEN: usize = 4 << 20;
const ISN: u32 = 0xffff_0000; // wraps inside the run

/// (sequence number, payload range) per segment, in sending order.
fn segments(swapped: bool) -> Vec<(u32, std::ops::Range<usize>)> {
    let mut segs: Vec<_> = (0..LEN)
        .step_by(MSS)
        .map(|off| {
            (
                ISN.wrapping_add(1).wrapping_add(off as u32),
                off..(off + MSS).min(LEN),
            )
        })
        .collect();
    if swapped {
        for pair in segs.chunks_mut(2) {
            pair.reverse();
        }
    }
    segs
}

/// Feeds the stream; returns (bytes delivered, a checksum of the deliveries' offsets and end
/// bytes). With `full`, also collects every delivered byte, for the one-off check.
fn run(
    data: &[u8],
    segs: &[(u32, std::ops::Range<usize>)],
    out: &mut Vec<u8>,
    mut full: Option<&mut Vec<u8>>,
) -> (u64, u64) {
    let cfg = StreamConfig {
        depth: 0,
        ..StreamConfig::default()
    };
    let mut stats = StreamStats::default();
    let mut r = Reassembler::new();
    r.segment(&cfg, ISN, TcpFlags(TcpFlags::SYN), &[], out, &mut stats);
    let (mut total, mut sum) = (0u64, 0u64);
    for (seq, range) in segs {
        let payload = &data[range.clone()];
        let d = r.segment(
            &cfg,
            *seq,
            TcpFlags(TcpFlags::ACK),
            payload,
            out,
            &mut stats,
        );
        let bytes = d.bytes(payload, out);
        if let (Some(first), Some(last)) = (bytes.first(), bytes.last()) {
            sum = sum.wrapping_mul(31).wrapping_add(d.offset);
            sum = sum.wrapping_add(u64::from(*first) << 8 | u64::from(*last));
        }
        if let Some(f) = full.as_deref_mut() {
            f.extend_from_slice(bytes);
        }
        total += d.len as u64;
    }
    (total, sum)
}

fn stream(c: &mut Criterion) {
    let data: Vec<u8> = (0..LEN)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761) as u8)
        .collect();
    let in_order = segments(false);
    let swapped = segments(true);
    let mut out = Vec::new();
    // Once, outside the timing: both orders rebuild the stream exactly.
    let mut expected = Vec::new();
    for segs in [&in_order, &swapped] {
        let mut all = Vec::new();
        let got = run(&data, segs, &mut out, Some(&mut all));
        assert!(got.0 == LEN as u64 && all == data, "reassembly is wrong");
        expected.push(got);
    }
    let mut g = c.benchmark_group("stream_reassembly");
    g.throughput(Throughput::Bytes(LEN as u64));
    g.bench_function("in_order", |b| {
        b.iter(|| assert_eq!(run(&data, &in_order, &mut out, None), expected[0]))
    });
    g.bench_function("pairs_swapped", |b| {
        b.iter(|| assert_eq!(run(&data, &swapped, &mut out, None), expected[1]))
    });
    g.finish();
}

criterion_group!(benches, stream);
criterion_main!(benches);
