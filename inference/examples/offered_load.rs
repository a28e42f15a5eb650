//! Latency from flow export to score at a fixed offered rate: producer threads send rows of
//! the shared CICIDS2017 CSVs (or random rows) through a `Batcher` at a total of `--rate`
//! flows/s for `--secs` seconds, and the export-to-score p50/p99 are printed.
//!
//! cargo run --release -p portcullis-inference --example offered_load -- \
//!     [--rate 50000] [--secs 5] [--producers 2] [--max-batch 1024] [--max-age-us 2000] \
//!     [--backend native|tract] [--drop] [--model configs/models/cicids2017/V/model.yaml]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use portcullis_inference::dataset::{self, Dataset};
use portcullis_inference::synthetic::{self, Rng};
use portcullis_inference::{newest_version, Backend, Batcher, BatcherConfig, Scorer, WhenFull};

const F: usize = 83;

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().unwrap_or_else(|_| panic!("bad value for {name}")))
        .unwrap_or(default)
}

fn shipped_model() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/models/cicids2017");
    newest_version(&root).map(|d| d.join("model.yaml"))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rate: f64 = arg(&args, "--rate", 50_000.0);
    let secs: f64 = arg(&args, "--secs", 5.0);
    let producers: usize = arg(&args, "--producers", 2);
    let backend: Backend = arg(&args, "--backend", Backend::Native);
    let config = BatcherConfig {
        max_batch: arg(&args, "--max-batch", 1024),
        max_age: Duration::from_micros(arg(&args, "--max-age-us", 2000)),
        channel_capacity: arg(&args, "--capacity", 16384),
        when_full: if args.iter().any(|a| a == "--drop") { WhenFull::Drop } else { WhenFull::Block },
        explain_top: 5,
        explain_max: arg(&args, "--explain-max", 16),
    };

    let (names, data) = match dataset::cicids_dir() {
        Some(dir) => {
            let names = dataset::header_feature_names(&dir).expect("HEADER.csv");
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            let mut d = Dataset::default();
            for f in dataset::csv_files(&dir) {
                d.read_csv(&f, &refs, usize::MAX).expect("CSV");
            }
            (names, d)
        }
        None => {
            println!("note: no shared CICIDS2017 rows; offering random rows");
            let mut rng = Rng::new(3);
            let n = 10_000;
            let values = (0..n * F).map(|_| rng.unit() * 1000.0).collect();
            let labels = (0..n).map(|i| if i % 4 == 0 { "ATTACK".into() } else { "BENIGN".into() }).collect();
            ((0..F).map(|i| format!("f{i}")).collect(), Dataset { width: F, values, labels })
        }
    };
    assert_eq!(names.len(), F);
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let tmp = tempfile::tempdir().expect("tempdir");
    let model: PathBuf = match args.iter().position(|a| a == "--model").map(|i| PathBuf::from(&args[i + 1])).or_else(shipped_model) {
        Some(p) => p,
        None => {
            println!("note: no shipped model; scoring with a synthetic 100-tree forest");
            synthetic::stand_in_model(tmp.path(), &refs, &data).expect("model")
        }
    };
    let scorer = Scorer::load(&model, &refs, backend).expect("model");
    println!("{scorer:?}");
    let (mut batcher, producer) = Batcher::<F>::new(scorer, config).expect("batcher");

    let per_producer = rate / producers as f64;
    let deadline = Duration::from_secs_f64(secs);
    let rows: Vec<[f32; F]> = (0..data.len()).map(|i| data.row(i).try_into().expect("83 wide")).collect();
    let start = Instant::now();
    let (stats, alerts_explained) = std::thread::scope(|s| {
        for p in 0..producers {
            let producer = producer.clone();
            let rows = &rows;
            s.spawn(move || {
                // Send whatever the schedule says is due, then sleep a little: the offered
                // rate holds on average, in bursts of a few rows as a flow table's exports do.
                let mut sent = 0u64;
                let mut i = p * 7919;
                loop {
                    let elapsed = start.elapsed();
                    if elapsed >= deadline {
                        break;
                    }
                    let due = (elapsed.as_secs_f64() * per_producer) as u64;
                    while sent < due {
                        i = (i + 1) % rows.len();
                        producer.send(((p as u64) << 48) | sent, Instant::now(), &rows[i]);
                        sent += 1;
                    }
                    std::thread::sleep(Duration::from_micros(50));
                }
            });
        }
        drop(producer);
        let mut explained = 0usize;
        let stats = batcher.run(|b| explained += b.explanations.len()).expect("scoring");
        (stats, explained)
    });
    let wall = start.elapsed().as_secs_f64();
    println!(
        "offered {rate:.0} flows/s for {secs} s with {producers} producers, backend {backend:?}, max_batch {}, max_age {:?}, when_full {:?}",
        config.max_batch, config.max_age, config.when_full
    );
    println!(
        "scored {} flows in {} batches ({:.0} flows/s; {} on size, {} on age), dropped {}, alerts {} ({} explained, {} over the per-batch limit)",
        stats.flows,
        stats.batches,
        stats.flows as f64 / wall,
        stats.flushed_on_size,
        stats.flushed_on_age,
        stats.dropped,
        stats.alerts,
        alerts_explained,
        stats.unexplained
    );
    println!(
        "export-to-score latency: p50 {} µs, p99 {} µs, max {} µs",
        stats.latency_p50_us, stats.latency_p99_us, stats.latency_max_us
    );
}
