//! Decode throughput: frames/s through `Decoder::decode` on real captures held in memory.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use portcullis_benches::{bench_captures, load_frames};
use portcullis_dataplane::{Decoded, Decoder, Frame};

fn decode(c: &mut Criterion) {
    let frames = load_frames(&bench_captures());
    let expected = portcullis_benches::decode_all(&frames).len();
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(frames.len() as u64));
    g.bench_function(format!("{}_frames", frames.len()), |b| {
        b.iter(|| {
            let mut d = Decoder::default();
            let mut packets = 0usize;
            for (i, f) in frames.iter().enumerate() {
                let fr = Frame { ts: f.ts, orig_len: f.data.len() as u32, link: f.link, data: &f.data, offset: 0 };
                match d.decode(&fr, i as u64) {
                    Decoded::Packet(m) => {
                        packets += 1;
                        std::hint::black_box(m);
                    }
                    Decoded::Tunneled { outer, inner } => {
                        packets += 2;
                        std::hint::black_box((outer, inner));
                    }
                    _ => {}
                }
            }
            // A fast wrong decoder fails here rather than posting a good number.
            assert_eq!(packets, expected);
        })
    });
    g.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
