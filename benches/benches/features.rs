//! CICFlowMeter feature extraction throughput: packets/s through `FlowFeatures::update`
//! alone (each packet's flow looked up before timing), and through the whole CIC flow
//! splitter (`CicFlowTable::push`: hash lookup, boundaries, features) on decoded real traffic.

use std::collections::HashMap;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use portcullis_benches::{bench_captures, decode_all, load_frames};
use portcullis_common::PacketMeta;
use portcullis_flowtable::{CicConfig, CicFlowTable, FlowFeatures};

/// Feeds every packet to its flow's accumulator; returns the packets counted by all flows,
/// which must equal the packets fed.
fn run_update(packets: &[PacketMeta], flow_of: &[usize], flows: &mut [Option<FlowFeatures>]) -> u64 {
    flows.iter_mut().for_each(|f| *f = None);
    for (p, &i) in packets.iter().zip(flow_of) {
        match &mut flows[i] {
            Some(f) => f.update(p),
            slot => *slot = Some(FlowFeatures::new(p)),
        }
    }
    flows.iter().flatten().map(|f| f.packets()).sum()
}

fn run_splitter(packets: &[PacketMeta]) -> (usize, u64) {
    let mut t = CicFlowTable::new(CicConfig { min_packets: 1, ..CicConfig::default() });
    let mut out = Vec::with_capacity(1024);
    for p in packets {
        t.push(p, &mut out);
    }
    t.finish(&mut out);
    (out.len(), out.iter().map(|f| f.features.packets()).sum())
}

fn features(c: &mut Criterion) {
    let packets = decode_all(&load_frames(&bench_captures()));
    let mut ids = HashMap::new();
    let flow_of: Vec<usize> = packets
        .iter()
        .map(|p| {
            let n = ids.len();
            *ids.entry(p.key.canonical().0).or_insert(n)
        })
        .collect();
    let mut flows = vec![None; ids.len()];
    eprintln!("{} packets in {} tuples", packets.len(), ids.len());
    let expected = run_splitter(&packets);

    let mut g = c.benchmark_group("cic_features");
    g.throughput(Throughput::Elements(packets.len() as u64));
    g.bench_function("update", |b| b.iter(|| assert_eq!(run_update(&packets, &flow_of, &mut flows), packets.len() as u64)));
    g.bench_function("splitter", |b| b.iter(|| assert_eq!(run_splitter(&packets), expected)));
    g.finish();
}

criterion_group!(benches, features);
criterion_main!(benches);
