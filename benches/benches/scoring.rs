//! Flow scoring throughput (flows/s) at batch sizes 1, 64, 1024 and 16384, on both
//! backends: the shipped classifier (`configs/models/cicids2017/<latest>/model.yaml`) when
//! it exists, else a synthetic forest grown on the shared CICIDS2017 rows (or on random rows
//! without them). Rows are the shared CSVs' when present. The latency at a fixed offered
//! rate is measured by `cargo run --release -p portcullis-inference --example offered_load`.

use std::path::{Path, PathBuf};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use portcullis_inference::dataset::{self, Dataset};
use portcullis_inference::synthetic::{self, Rng};
use portcullis_inference::{newest_version, Backend, FeatureBatch, ModelSpec, Scorer};

fn shipped_model() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/models/cicids2017");
    newest_version(&root).map(|d| d.join("model.yaml"))
}

/// Rows and the extractor's names: the shared CSVs, or random rows of 83 features.
fn rows() -> (Vec<String>, Dataset) {
    if let Some(dir) = dataset::cicids_dir() {
        let names = dataset::header_feature_names(&dir).expect("HEADER.csv");
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut d = Dataset::default();
        for f in dataset::csv_files(&dir) {
            d.read_csv(&f, &refs, usize::MAX).expect("CSV");
        }
        return (names, d);
    }
    eprintln!("note: no shared CICIDS2017 rows; benchmarking on random rows");
    let names: Vec<String> = (0..83).map(|i| format!("f{i}")).collect();
    let mut rng = Rng::new(5);
    let n = 20_000;
    let values = (0..n * 83).map(|_| rng.unit() * 1000.0).collect();
    let labels = (0..n).map(|i| if i % 3 == 0 { "ATTACK".into() } else { "BENIGN".into() }).collect();
    (names, Dataset { width: 83, values, labels })
}

fn scoring(c: &mut Criterion) {
    let (names, data) = rows();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let tmp = tempfile::tempdir().expect("tempdir");
    let spec_path = match shipped_model() {
        Some(p) => {
            eprintln!("scoring with the shipped model {}", p.display());
            p
        }
        None => {
            eprintln!("no shipped model: scoring with a synthetic forest of 100 trees");
            synthetic::stand_in_model(tmp.path(), &refs, &data).expect("model")
        }
    };
    let mut spec = ModelSpec::load(&spec_path).expect("model.yaml");
    // Classifier alone: the autoencoder is measured in its own group.
    let with_anomaly = spec.clone();
    spec.anomaly = None;

    let n = data.len();
    let batch = |size: usize, k: usize| {
        let mut b = FeatureBatch::with_capacity(data.width, size);
        for i in 0..size {
            let r = (k * size + i) % n;
            b.push(r as u64, data.row(r));
        }
        b
    };
    let mut g = c.benchmark_group("score_classifier");
    g.sample_size(20).measurement_time(std::time::Duration::from_secs(3));
    // tract's tree operator takes milliseconds a row on the shipped forest: it is measured
    // at the small sizes only, where a batch still takes well under a second.
    for (backend, threads, sizes) in [
        (Backend::Native, 1, &[1usize, 64, 1024, 16384][..]),
        (Backend::Native, 2, &[16384][..]),
        (Backend::Tract, 1, &[1, 64][..]),
    ] {
        let mut scorer = Scorer::from_spec(spec.clone(), &refs, backend).expect("scorer");
        scorer.set_threads(threads);
        eprintln!("{scorer:?}");
        for &size in sizes {
            let batches: Vec<FeatureBatch> = (0..(65_536 / size).clamp(1, 64)).map(|k| batch(size, k)).collect();
            let mut k = 0;
            g.throughput(Throughput::Elements(size as u64));
            g.bench_with_input(BenchmarkId::new(format!("{backend:?}/threads={threads}"), size), &size, |b, _| {
                b.iter(|| {
                    k = (k + 1) % batches.len();
                    scorer.score(&batches[k]).expect("score").len()
                })
            });
        }
    }
    g.finish();

    if with_anomaly.anomaly_path().is_some() {
        let mut g = c.benchmark_group("score_classifier_and_autoencoder");
        g.sample_size(20).measurement_time(std::time::Duration::from_secs(3));
        let mut scorer = Scorer::from_spec(with_anomaly, &refs, Backend::Native).expect("scorer");
        for size in [1usize, 64, 1024, 16384] {
            let b = batch(size, 0);
            g.throughput(Throughput::Elements(size as u64));
            g.bench_with_input(BenchmarkId::new("Native+tract", size), &size, |bch, _| {
                bch.iter(|| scorer.score(&b).expect("score").len())
            });
        }
        g.finish();
    }
}

criterion_group!(benches, scoring);
criterion_main!(benches);
