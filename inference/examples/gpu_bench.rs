//! Throughput and per-batch latency of the CUDA backend (`benches/gpu.sh` runs it on a machine
//! with a GPU). For each batch size it first checks that the GPU's classes equal the CPU
//! scorer's on that batch (a fast wrong kernel fails here), then scores the batch repeatedly
//! for about a second and prints flows/s and the p50/p99 latency of one `Scorer::score` call
//! (gather into pinned memory, copies, both kernels, copies back). Rows are the shared
//! CIC-IDS2017 flows, repeated to fill a batch.
//!
//! `gpu_bench [--model DIR] [--sizes 64,256,...] [--probe]`; `--probe` only says whether a GPU
//! is usable (exit 0) or why not (exit 2). Exits 2, saying why, when no GPU is usable.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use portcullis_inference::dataset::{self, Dataset};
use portcullis_inference::gpu::probe;
use portcullis_inference::{Backend, FeatureBatch, Scorer};

const TARGET_FLOWS_PER_S: f64 = 50e6;
const TARGET_P99_US: u64 = 2_000;

fn main() -> ExitCode {
    let mut model: Option<PathBuf> = None;
    let mut sizes: Vec<usize> = (6..=16).map(|p| 1usize << p).collect();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--model" => model = args.next().map(PathBuf::from),
            "--sizes" => sizes = args.next().unwrap_or_default().split(',').filter_map(|s| s.trim().parse().ok()).collect(),
            "--probe" => {
                return match probe() {
                    Ok(d) => {
                        println!("{d}");
                        ExitCode::SUCCESS
                    }
                    Err(why) => {
                        eprintln!("no usable GPU: {why}");
                        ExitCode::from(2)
                    }
                };
            }
            other => {
                eprintln!("unknown argument {other}; usage: gpu_bench [--model DIR] [--sizes 64,256,...] [--probe]");
                return ExitCode::from(2);
            }
        }
    }
    let device = match probe() {
        Ok(d) => d,
        Err(why) => {
            eprintln!("no usable GPU: {why}; nothing measured");
            return ExitCode::from(2);
        }
    };
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../configs/models/cicids2017");
    let Some(model) = model.or_else(|| portcullis_inference::newest_version(&root)) else {
        eprintln!("no model: pass --model DIR");
        return ExitCode::from(2);
    };
    let Some(data) = dataset::cicids_dir() else {
        eprintln!("no flows: flows/cicids2017-improved-5000 not under $PORTCULLIS_DATA");
        return ExitCode::from(2);
    };
    let names = dataset::header_feature_names(&data).expect("HEADER.csv");
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut flows = Dataset::default();
    for f in dataset::csv_files(&data) {
        flows.read_csv(&f, &refs, usize::MAX).expect("CSV");
    }
    let spec = model.join("model.yaml");
    let mut gpu = Scorer::load(&spec, &refs, Backend::Cuda).expect("loading the model on the GPU");
    let mut cpu = Scorer::load(&spec, &refs, Backend::Native).expect("loading the model on the CPU");
    println!("{device}; model {}; {} distinct flows", model.display(), flows.len());
    println!("{:>8} {:>14} {:>10} {:>10}  targets: >= 50 M flows/s, p99 <= 2 ms", "batch", "flows/s", "p50 µs", "p99 µs");
    for &size in &sizes {
        let mut batch = FeatureBatch::with_capacity(flows.width, size);
        for i in 0..size {
            batch.push(i as u64, flows.row(i % flows.len()));
        }
        let want: Vec<u16> = cpu.score(&batch).expect("CPU").iter().map(|s| s.class).collect();
        let got: Vec<u16> = gpu.score(&batch).expect("GPU").iter().map(|s| s.class).collect();
        assert_eq!(got, want, "GPU and CPU classes differ at batch size {size}");
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram");
        let (mut rows, started) = (0usize, Instant::now());
        while started.elapsed() < Duration::from_secs(1) || h.len() < 20 {
            let t = Instant::now();
            let s = gpu.score(&batch).expect("GPU");
            std::hint::black_box(s);
            h.record((t.elapsed().as_micros() as u64).max(1)).expect("in range");
            rows += size;
        }
        let rate = rows as f64 / started.elapsed().as_secs_f64();
        let (p50, p99) = (h.value_at_quantile(0.5), h.value_at_quantile(0.99));
        let met = match (rate >= TARGET_FLOWS_PER_S, p99 <= TARGET_P99_US) {
            (true, true) => "both targets met",
            (true, false) => "throughput met, p99 over 2 ms",
            (false, true) => "p99 met, under 50 M flows/s",
            (false, false) => "neither target met",
        };
        println!("{size:>8} {rate:>14.0} {p50:>10} {p99:>10}  {met}");
    }
    ExitCode::SUCCESS
}
