//! The CUDA backend on a real device: the same rows scored by `Backend::Cuda` and by the CPU
//! scorer agree within 1e-5 with identical classes, on a synthetic model in batches that span
//! several double-buffered chunks, and on the shipped model with the shared CIC-IDS2017 flows
//! when they are there. Needs the `cuda` feature and a GPU; says why it skips otherwise
//! (`benches/gpu.sh` runs it on a machine with one).
#![cfg(feature = "cuda")]

use std::path::Path;

use portcullis_inference::dataset::{self, Dataset};
use portcullis_inference::gpu::{probe, CHUNK_ROWS};
use portcullis_inference::synthetic::{self, ForestShape, Rng};
use portcullis_inference::{Backend, FeatureBatch, Scorer};

fn agree(spec: &Path, names: &[&str], batch: &FeatureBatch) {
    let mut gpu = Scorer::load(spec, names, Backend::Cuda).unwrap();
    let mut cpu = Scorer::load(spec, names, Backend::Native).unwrap();
    let a = gpu.score(batch).unwrap().to_vec();
    let b = cpu.score(batch).unwrap().to_vec();
    let dp = gpu.probabilities().iter().zip(cpu.probabilities()).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
    assert!(dp <= 1e-5, "max |GPU - CPU| probability {dp}");
    let mut da = 0.0f32;
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert_eq!(x.class, y.class, "row {i}: GPU {x:?} CPU {y:?}");
        if let (Some(p), Some(q)) = (x.anomaly, y.anomaly) {
            if !(p.is_nan() && q.is_nan()) {
                da = da.max((p - q).abs());
            }
        }
    }
    assert!(da <= 1e-5, "max |GPU - CPU| anomaly score {da}");
    eprintln!("{}: {} rows on {}: max |Δp| {dp:e}, max |Δanomaly| {da:e}", spec.display(), a.len(), probe().unwrap());
}

#[test]
fn the_gpu_scores_as_the_cpu_does() {
    if let Err(why) = probe() {
        eprintln!("skipping: no GPU to run the kernels on ({why})");
        return;
    }
    let width = 8;
    let names: Vec<String> = (0..width).map(|i| format!("f{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut rng = Rng::new(17);
    // Three chunks and a bit: both slots are used twice.
    let n = 3 * CHUNK_ROWS + 5;
    let rows: Vec<f32> = (0..n * width).map(|_| rng.unit() * 100.0).collect();
    let labels: Vec<u32> = rows.chunks(width).map(|r| if r[0] > 40.0 { 1 } else if r[1] > 70.0 { 2 } else { 0 }).collect();
    let dir = tempfile::tempdir().unwrap();
    let spec = synthetic::write_model_dir(dir.path(), &refs, &rows[..2000 * width], &labels[..2000], &["BENIGN", "A", "B"], ForestShape { trees: 30, max_depth: 10, min_rows: 2, seed: 8 }, Some(1.0)).unwrap();
    for len in [1, 64, n] {
        let mut b = FeatureBatch::with_capacity(width, len);
        for (i, r) in rows[..len * width].chunks(width).enumerate() {
            b.push(i as u64, r);
        }
        agree(&spec, &refs, &b);
    }

    let (Some(dir), Some(spec)) = (
        dataset::cicids_dir(),
        portcullis_inference::newest_version(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/models/cicids2017")),
    ) else {
        eprintln!("skipping the shipped model: no CIC-IDS2017 flows under $PORTCULLIS_DATA or no bundled model");
        return;
    };
    let (names, all) = Dataset::read_dir(&dir).unwrap();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    agree(&spec.join("model.yaml"), &refs, &all.batch(1));
}
