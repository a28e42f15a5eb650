//! The console's once-a-second flow sample, per worker: the bytes, packets and flows of every
//! source address (`FlowTable::per_source`) and the 200 largest flows (`FlowTable::largest`),
//! over tables of 10,000 to 1,000,000 live UDP flows, opened either by 100 sources (a scan) or
//! each by a source of its own (a spoofed flood, the worst case for the per-source map). The
//! map uses hashbrown's hasher, as the daemon's workers do.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use portcullis_common::{FlowKey, PacketMeta, Timestamp};
use portcullis_flowtable::{FlowConfig, FlowTable};

/// The flows the console's flow pane takes from each worker (portcullis's FLOWS_PER_WORKER).
const LARGEST: usize = 200;

fn table(flows: u32, sources: u32) -> FlowTable {
    let mut t = FlowTable::new(FlowConfig { memcap: 4 << 30, ..FlowConfig::default() });
    let mut ended = Vec::new();
    let dst = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    for i in 0..flows {
        let src = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i % sources));
        let key = FlowKey::new(src, dst, 1024 + (i / sources % 60000) as u16, 53, 17);
        let p = PacketMeta::new(Timestamp::from_secs_micros(1, 0), key, 60 + i % 1400);
        t.update(&p, &mut ended);
    }
    assert_eq!((t.len(), ended.len()), (flows as usize, 0), "every flow is live");
    t
}

fn flow_sample(c: &mut Criterion) {
    let mut g = c.benchmark_group("flow_sample");
    g.sample_size(10);
    for flows in [10_000u32, 100_000, 1_000_000] {
        for (name, sources) in [("scan_100_sources", 100), ("flood_one_source_each", flows)] {
            let t = table(flows, sources);
            g.throughput(Throughput::Elements(u64::from(flows)));
            g.bench_with_input(BenchmarkId::new(name, flows), &t, |b, t| {
                let mut largest = Vec::new();
                b.iter(|| {
                    let mut sources = HashMap::with_hasher(hashbrown::DefaultHashBuilder::default());
                    t.per_source(&mut sources);
                    t.largest(LARGEST, &mut largest);
                    (sources.len(), largest.len())
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, flow_sample);
criterion_main!(benches);
