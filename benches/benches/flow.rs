//! Flow update throughput: packets/s through `FlowTable::update` on decoded real traffic,
//! with one table, and sharded over two threads by flow hash as the replay engine does; and
//! with CICFlowMeter features on (checkpoints every 60 s), which the no-features path must
//! not pay for.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use portcullis_benches::{bench_captures, decode_all, load_frames};
use portcullis_common::PacketMeta;
use portcullis_flowtable::{FlowConfig, FlowTable};

fn run_table(packets: &[PacketMeta]) -> usize {
    let mut t = FlowTable::new(FlowConfig::default());
    let mut ended = Vec::new();
    let mut last = portcullis_common::Timestamp(i64::MIN);
    for (i, p) in packets.iter().enumerate() {
        t.update(p, &mut ended);
        if i % 256 == 255 {
            t.expire(p.clock.max(last), &mut ended);
        }
        last = p.clock;
    }
    t.flush(last, &mut ended);
    ended.len()
}

/// `run_table` with features on; the exports are drained every 256 packets, as a worker
/// hands them on with each batch.
fn run_table_features(packets: &[PacketMeta]) -> (usize, usize) {
    let mut t = FlowTable::new(FlowConfig { features: true, checkpoint_secs: 60, ..FlowConfig::default() });
    let (mut ended, mut exports) = (Vec::new(), Vec::new());
    let mut n = 0;
    let mut last = portcullis_common::Timestamp(i64::MIN);
    for (i, p) in packets.iter().enumerate() {
        t.update_exporting(p, &mut ended, &mut exports);
        if i % 256 == 255 {
            t.expire_exporting(p.clock.max(last), &mut ended, &mut exports);
            n += exports.len();
            exports.clear();
        }
        last = p.clock;
    }
    t.flush_exporting(last, &mut ended, &mut exports);
    (ended.len(), n + exports.len())
}

fn flow(c: &mut Criterion) {
    let packets = decode_all(&load_frames(&bench_captures()));
    let expected = run_table(&packets);
    let shards: Vec<Vec<PacketMeta>> = (0..2u64)
        .map(|w| packets.iter().filter(|p| p.key.stable_hash() % 2 == w).copied().collect())
        .collect();
    let mut g = c.benchmark_group("flow_update");
    g.throughput(Throughput::Elements(packets.len() as u64));
    g.bench_function("1_thread", |b| b.iter(|| assert_eq!(run_table(&packets), expected)));
    let (flows, exports) = run_table_features(&packets);
    assert_eq!(flows, expected, "features do not change the flows");
    assert!(exports >= flows, "every flow's final features are exported");
    g.bench_function("1_thread_features", |b| b.iter(|| assert_eq!(run_table_features(&packets), (flows, exports))));
    g.bench_function("2_threads", |b| {
        b.iter(|| {
            let flows: usize = std::thread::scope(|s| {
                let hs: Vec<_> = shards.iter().map(|sh| s.spawn(move || run_table(sh))).collect();
                hs.into_iter().map(|h| h.join().unwrap_or(0)).sum()
            });
            // Sharding by flow hash must not change how many flows there are.
            assert_eq!(flows, expected);
        })
    });
    g.finish();
}

criterion_group!(benches, flow);
criterion_main!(benches);
