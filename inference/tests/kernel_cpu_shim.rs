//! The CUDA kernels' arithmetic, checked without a GPU: `kernels/cuda/*.cu` compiled as C++
//! against the CPU shim (feature `cpu-shim`, on for this crate's tests) score the same rows as
//! the CPU scorer, from models converted at load by `gpu::layout`. Probabilities and anomaly
//! scores must agree within 1e-5 and the classes exactly; on synthetic models always, on the
//! shipped model and the shared CIC-IDS2017 flows when they are there.

use std::path::Path;

use portcullis_inference::dataset::{self, Dataset};
use portcullis_inference::gpu::layout::{DeviceForest, DeviceMlp, MlpOp};
use portcullis_inference::gpu::{shim, GpuError};
use portcullis_inference::synthetic::{self, ForestShape, Rng};
use portcullis_inference::{Backend, FeatureBatch, ModelSpec, Scorer, TreeEnsemble};

/// The largest |a - b|, NaN equal to NaN (a NaN on one side only is infinitely far).
fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| match (x.is_nan(), y.is_nan()) {
            (true, true) => 0.0,
            (false, false) if x == y => 0.0,
            (false, false) => (x - y).abs(),
            _ => f32::INFINITY,
        })
        .fold(0.0, f32::max)
}

fn argmax(p: &[f32]) -> usize {
    // First maximum, as the scorer breaks ties.
    let mut best = 0;
    for k in 1..p.len() {
        if p[k] > p[best] {
            best = k;
        }
    }
    best
}

/// What the kernels (on the CPU shim) make of `batch` under the model `spec`.
struct ShimScores {
    probs: Vec<f32>,
    anomaly: Option<Vec<f32>>,
}

fn shim_scores(spec_path: &Path, extractor: &[&str], batch: &FeatureBatch) -> ShimScores {
    let spec = ModelSpec::load(spec_path).unwrap();
    let map = spec.feature_map(extractor).unwrap();
    let w = map.model_width();
    let mut rows = vec![0.0; batch.len() * w];
    for i in 0..batch.len() {
        map.gather(batch.row(i), &mut rows[i * w..(i + 1) * w]);
    }
    let tree = TreeEnsemble::load(&spec.classifier_path()).unwrap();
    let forest = DeviceForest::from_ensemble(&tree, &spec.classifier_path()).unwrap();
    let mut probs = vec![0.0; batch.len() * forest.n_classes as usize];
    shim::forest_predict(&forest, &rows, w, &mut probs);
    let anomaly = spec.anomaly_path().map(|p| {
        let mlp = DeviceMlp::load(&p, w).unwrap();
        let mut e = vec![0.0; batch.len()];
        shim::mlp_score(&mlp, &rows, &mut e);
        e
    });
    ShimScores { probs, anomaly }
}

/// Compares the shim with `scorer` on `batch`; returns (rows, max |Δp|, max |Δanomaly|).
fn compare(spec: &Path, extractor: &[&str], batch: &FeatureBatch, backend: Backend) -> (usize, f32, f32) {
    let mut scorer = Scorer::load(spec, extractor, backend).unwrap();
    let scores = scorer.score(batch).unwrap().to_vec();
    let want = scorer.probabilities().to_vec();
    let got = shim_scores(spec, extractor, batch);
    let c = want.len() / batch.len();
    let dp = max_abs_diff(&got.probs, &want);
    assert!(dp <= 1e-5, "{backend:?}: max |kernel - CPU| probability {dp}");
    for (i, s) in scores.iter().enumerate() {
        assert_eq!(argmax(&got.probs[i * c..(i + 1) * c]), usize::from(s.class), "{backend:?} row {i}");
    }
    let da = match (&got.anomaly, scorer.has_anomaly()) {
        (Some(e), true) => {
            let cpu: Vec<f32> = scores.iter().map(|s| s.anomaly.unwrap()).collect();
            let d = max_abs_diff(e, &cpu);
            assert!(d <= 1e-5, "{backend:?}: max |kernel - CPU| anomaly score {d}");
            d
        }
        (None, false) => 0.0,
        other => panic!("the autoencoder is on one side only: {other:?}"),
    };
    (batch.len(), dp, da)
}

fn batch_of(rows: &[f32], width: usize) -> FeatureBatch {
    let mut b = FeatureBatch::with_capacity(width, rows.len() / width);
    for (i, r) in rows.chunks(width).enumerate() {
        b.push(i as u64, r);
    }
    b
}

#[test]
fn kernels_on_the_cpu_shim_match_tract_on_synthetic_models() {
    let width = 10;
    let names: Vec<String> = (0..width).map(|i| format!("f{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut rng = Rng::new(5);
    let n = 3000;
    let mut rows = Vec::with_capacity(n * width);
    let mut labels = Vec::with_capacity(n);
    for _ in 0..n {
        let r: Vec<f32> = (0..width).map(|_| rng.unit() * 200.0 - 50.0).collect();
        labels.push(if r[0] > 60.0 { 1 } else if r[1] + r[2] > 100.0 { 2 } else { 0 });
        rows.extend(r);
    }
    let dir = tempfile::tempdir().unwrap();
    let shape = ForestShape { trees: 25, max_depth: 9, min_rows: 2, seed: 3 };
    let spec = synthetic::write_model_dir(dir.path(), &refs, &rows, &labels, &["BENIGN", "A", "B"], shape, Some(1.0)).unwrap();
    let batch = batch_of(&rows, width);
    let (n_tract, dp, da) = compare(&spec, &refs, &batch, Backend::Tract);
    let (n_native, ..) = compare(&spec, &refs, &batch, Backend::Native);
    assert_eq!((n_tract, n_native), (n, n));
    eprintln!("synthetic: {n} rows, max |Δp| {dp:e}, max |Δanomaly| {da:e}");
}

#[test]
fn an_op_without_a_kernel_step_is_a_typed_error_naming_it() {
    let width = 4;
    let mut m = synthetic::autoencoder(width, 3, &[1.0; 4], 1);
    let g = m.graph.as_mut().unwrap();
    let relu = g.node.iter_mut().find(|n| n.op_type == "Relu").unwrap();
    relu.op_type = "Softplus".into();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("anomaly.onnx");
    std::fs::write(&p, synthetic::encode(&m)).unwrap();
    match DeviceMlp::load(&p, width) {
        Err(e @ GpuError::UnsupportedOp { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("Softplus") && msg.contains("anomaly.onnx"), "{msg}");
        }
        other => panic!("expected UnsupportedOp, got {other:?}"),
    }
}

#[test]
fn the_autoencoder_program_fuses_layers_and_the_error() {
    let width = 6;
    let mut rng = Rng::new(2);
    let scale: Vec<f32> = (0..width).map(|_| 1.0 + rng.unit()).collect();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("anomaly.onnx");
    std::fs::write(&p, synthetic::encode(&synthetic::autoencoder(width, 4, &scale, 9))).unwrap();
    let mlp = DeviceMlp::load(&p, width).unwrap();
    // Mul (scaling), MatMul+Add+Relu, MatMul+Add, Sub+Mul+MatMul: four steps.
    let codes: Vec<u32> = mlp.ops.iter().map(|o: &MlpOp| o.code).collect();
    use portcullis_inference::gpu::layout::op;
    assert_eq!(codes, [op::BINARY, op::DENSE, op::DENSE, op::SQERR], "{:?}", mlp.ops);
    assert!(mlp.in_bounds());
    // Scratch: the scaled row and one layer's output at a time, plus the reconstruction.
    assert!(mlp.scratch <= 3 * width, "{} floats", mlp.scratch);
}

#[test]
fn kernels_on_the_cpu_shim_match_the_cpu_scorer_on_the_shipped_model_and_cicids_flows() {
    let Some(dir) = dataset::cicids_dir() else {
        eprintln!("skipping: flows/cicids2017-improved-5000 not under $PORTCULLIS_DATA");
        return;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/models/cicids2017");
    let Some(spec) = portcullis_inference::newest_version(&root).map(|d| d.join("model.yaml")) else {
        eprintln!("skipping: no shipped model under {}", root.display());
        return;
    };
    let (names, all) = Dataset::read_dir(&dir).unwrap();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    // Every flow against the native forest (itself checked against tract) and tract's
    // autoencoder; every 16th against tract's tree operator, which takes milliseconds a row.
    let (n_all, dp_native, da) = compare(&spec, &refs, &all.batch(1), Backend::Native);
    let (n_tract, dp_tract, _) = compare(&spec, &refs, &all.batch(16), Backend::Tract);
    assert!(n_all > 10_000 && n_tract > 2_000, "{n_all} and {n_tract} flows");
    eprintln!(
        "{}: {n_all} flows vs native+tract: max |Δp| {dp_native:e}, max |Δanomaly| {da:e}; {n_tract} flows vs tract: max |Δp| {dp_tract:e}",
        spec.display()
    );
}
