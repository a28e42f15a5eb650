//! Backends against each other, determinism, explanations, on synthetic rows always and on
//! the shared CICIDS2017 rows (and the shipped model) when present.

use std::path::{Path, PathBuf};

use portcullis_inference::dataset::{self, Dataset};
use portcullis_inference::synthetic::{self, ForestShape, Rng};
use portcullis_inference::{Backend, FeatureBatch, InferenceError, Reference, Scorer};

fn names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("f{i}")).collect()
}

/// Random rows with a label that depends on a few features, so the forest learns something.
fn random_rows(n: usize, width: usize, seed: u64) -> (Vec<f32>, Vec<u32>) {
    let mut rng = Rng::new(seed);
    let mut rows = Vec::with_capacity(n * width);
    let mut labels = Vec::with_capacity(n);
    for _ in 0..n {
        let start = rows.len();
        for _ in 0..width {
            rows.push(rng.unit() * 100.0);
        }
        let r = &rows[start..];
        labels.push(if r[0] > 30.0 { 1 } else if r[1] + r[2] > 50.0 { 2 } else { 0 });
    }
    (rows, labels)
}

fn batch_of(rows: &[f32], width: usize) -> FeatureBatch {
    let mut b = FeatureBatch::with_capacity(width, rows.len() / width);
    for (i, r) in rows.chunks(width).enumerate() {
        b.push(i as u64, r);
    }
    b
}

/// Scores `batch` with both backends and checks: identical classes, probabilities within
/// 1e-5, identical alerts. Returns the number of rows compared.
fn assert_backends_agree(spec: &Path, extractor: &[&str], batch: &FeatureBatch) -> usize {
    let mut tract = Scorer::load(spec, extractor, Backend::Tract).unwrap();
    let mut native = Scorer::load(spec, extractor, Backend::Native).unwrap();
    let a = tract.score(batch).unwrap().to_vec();
    let b = native.score(batch).unwrap().to_vec();
    assert_eq!(a.len(), batch.len());
    let (pa, pb) = (tract.probabilities(), native.probabilities());
    let max = pa.iter().zip(pb).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
    assert!(max <= 1e-5, "max |tract - native| = {max}");
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert_eq!(x.class, y.class, "row {i}: tract {x:?} native {y:?}");
        assert_eq!(x.alert, y.alert, "row {i}");
        assert_eq!(x.anomaly, y.anomaly, "row {i}: the autoencoder runs on tract in both");
    }
    a.len()
}

#[test]
fn tract_and_native_agree_on_synthetic_rows() {
    let width = 12;
    let names = names(width);
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let (rows, labels) = random_rows(3000, width, 7);
    let dir = tempfile::tempdir().unwrap();
    let shape = ForestShape { trees: 20, max_depth: 10, min_rows: 2, seed: 1 };
    let spec = synthetic::write_model_dir(dir.path(), &refs, &rows, &labels, &["BENIGN", "A", "B"], shape, Some(50.0)).unwrap();
    let (test, _) = random_rows(2000, width, 8);
    let n = assert_backends_agree(&spec, &refs, &batch_of(&test, width));
    assert_eq!(n, 2000);
}

#[test]
fn a_binary_forest_uses_the_two_column_layout_on_both_backends() {
    // Leaves that only score class 0 trigger the binary-layout rule of the operator.
    let width = 4;
    let names = names(width);
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let (rows, labels) = random_rows(500, width, 3);
    let labels: Vec<u32> = labels.iter().map(|&l| (l != 0) as u32).collect();
    let mut m = synthetic::forest(&rows, width, &labels, 2, ForestShape { trees: 5, max_depth: 6, min_rows: 2, seed: 4 });
    let node = &mut m.graph.as_mut().unwrap().node[0];
    // Keep only the class-0 entries of the leaves.
    let get = |n: &tract_onnx::pb::NodeProto, k: &str| n.attribute.iter().position(|a| a.name == k).unwrap();
    let (it, inn, iid, iw) = (get(node, "class_treeids"), get(node, "class_nodeids"), get(node, "class_ids"), get(node, "class_weights"));
    let keep: Vec<bool> = node.attribute[iid].ints.iter().map(|&c| c == 0).collect();
    for k in [it, inn, iid] {
        let v: Vec<i64> = node.attribute[k].ints.iter().zip(&keep).filter(|(_, k)| **k).map(|(v, _)| *v).collect();
        node.attribute[k].ints = v;
    }
    let v: Vec<f32> = node.attribute[iw].floats.iter().zip(&keep).filter(|(_, k)| **k).map(|(v, _)| *v).collect();
    node.attribute[iw].floats = v;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("classifier.onnx"), synthetic::encode(&m)).unwrap();
    let yaml = format!("name: b\nversion: 1\nfeatures: {{names: [{}]}}\nclassifier: {{classes: [BENIGN, ATTACK]}}\n", refs.join(", "));
    std::fs::write(dir.path().join("model.yaml"), yaml).unwrap();
    let spec = dir.path().join("model.yaml");
    assert_backends_agree(&spec, &refs, &batch_of(&rows, width));
    let mut s = Scorer::load(&spec, &refs, Backend::Native).unwrap();
    s.score(&batch_of(&rows[..width], width)).unwrap();
    let p = s.probabilities();
    assert!((p[0] + p[1] - 1.0).abs() < 1e-6, "{p:?}");
}

#[test]
fn scores_do_not_depend_on_batch_size_or_repetition() {
    let width = 8;
    let names = names(width);
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let (rows, labels) = random_rows(1000, width, 11);
    let dir = tempfile::tempdir().unwrap();
    let spec = synthetic::write_model_dir(dir.path(), &refs, &rows, &labels, &["BENIGN", "A", "B"], ForestShape { trees: 10, max_depth: 8, min_rows: 2, seed: 2 }, None).unwrap();
    for backend in [Backend::Native, Backend::Tract] {
        let mut s = Scorer::load(&spec, &refs, backend).unwrap();
        let whole = s.score(&batch_of(&rows, width)).unwrap().to_vec();
        assert_eq!(whole, s.score(&batch_of(&rows, width)).unwrap().to_vec(), "{backend:?} twice");
        let mut pieces = Vec::new();
        for chunk in rows.chunks(width * 37) {
            pieces.extend_from_slice(s.score(&batch_of(chunk, width)).unwrap());
        }
        // The autoencoder's matrix products may block differently by batch size, so its score
        // is compared with a tolerance; the classifier must be exact.
        for (a, b) in whole.iter().zip(&pieces) {
            assert_eq!((a.class, a.probability, a.alert), (b.class, b.probability, b.alert), "{backend:?}");
            let (x, y) = (a.anomaly.unwrap(), b.anomaly.unwrap());
            assert!((x - y).abs() <= 1e-4 * x.abs().max(1.0), "{backend:?}: {x} vs {y}");
        }
        assert!(whole.iter().any(|s| s.alert) && whole.iter().any(|s| !s.alert));
    }
}

#[test]
fn splitting_a_large_batch_across_threads_changes_no_score() {
    let width = 8;
    let names = names(width);
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    // Odd-sized, above the parallel threshold, so the parts differ in length.
    let n = portcullis_inference::PARALLEL_MIN_ROWS * 2 + 7;
    let (rows, labels) = random_rows(n, width, 21);
    let dir = tempfile::tempdir().unwrap();
    let spec = synthetic::write_model_dir(dir.path(), &refs, &rows, &labels, &["BENIGN", "A", "B"], ForestShape { trees: 12, max_depth: 8, min_rows: 2, seed: 4 }, None).unwrap();
    let mut one = Scorer::load(&spec, &refs, Backend::Native).unwrap();
    let mut three = Scorer::load(&spec, &refs, Backend::Native).unwrap();
    three.set_threads(3);
    let batch = batch_of(&rows, width);
    let a = one.score(&batch).unwrap().to_vec();
    let b = three.score(&batch).unwrap().to_vec();
    assert_eq!(a.len(), n);
    assert_eq!(b.len(), n);
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert_eq!((x.class, x.probability, x.alert), (y.class, y.probability, y.alert), "row {i}");
        let (p, q) = (x.anomaly.unwrap(), y.anomaly.unwrap());
        assert!((p - q).abs() <= 1e-4 * p.abs().max(1.0), "row {i}: {p} vs {q}");
    }
}

#[test]
fn a_model_wanting_a_feature_the_extractor_lacks_is_refused() {
    let width = 4;
    let names = names(width);
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let (rows, labels) = random_rows(200, width, 5);
    let dir = tempfile::tempdir().unwrap();
    let spec = synthetic::write_model_dir(dir.path(), &refs, &rows, &labels, &["BENIGN", "A", "B"], ForestShape { trees: 2, max_depth: 4, min_rows: 2, seed: 2 }, None).unwrap();
    let extractor = ["f0", "f1", "f2_renamed", "f3"];
    match Scorer::load(&spec, &extractor, Backend::Native) {
        Err(InferenceError::FeatureMismatch { index, expected, found }) => {
            assert_eq!((index, expected.as_str(), found.as_str()), (2, "f2_renamed", "f2"));
        }
        other => panic!("expected a feature mismatch, got {other:?}"),
    }
    // A model using a subset of a wider extractor row is fine, and reads the right columns.
    let wide = ["x", "f0", "y", "f1", "f2", "f3", "z"];
    let mut s = Scorer::load(&spec, &wide, Backend::Native).unwrap();
    let mut t = Scorer::load(&spec, &refs, Backend::Native).unwrap();
    let mut wide_batch = FeatureBatch::with_capacity(7, 200);
    for (i, r) in rows.chunks(width).enumerate() {
        wide_batch.push(i as u64, &[-1.0, r[0], -2.0, r[1], r[2], r[3], -3.0]);
    }
    assert_eq!(s.score(&wide_batch).unwrap(), t.score(&batch_of(&rows, width)).unwrap());
}

#[test]
fn alerts_are_explained_by_the_features_that_decided_them() {
    let width = 6;
    let names = names(width);
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let (rows, labels) = random_rows(2000, width, 21);
    let dir = tempfile::tempdir().unwrap();
    let spec = synthetic::write_model_dir(dir.path(), &refs, &rows, &labels, &["BENIGN", "A", "B"], ForestShape { trees: 30, max_depth: 10, min_rows: 2, seed: 3 }, Some(1e9)).unwrap();
    let mut s = Scorer::load(&spec, &refs, Backend::Native).unwrap();
    // Benign reference: label 0 needs f0 <= 30 and f1 + f2 <= 50.
    s.set_reference(&[-50.0, -50.0, -50.0, 0.0, 0.0, 0.0]);
    let b = batch_of(&[90.0, 0.0, 0.0, 5.0, -5.0, 7.0], width);
    let score = s.score(&b).unwrap()[0];
    assert!(score.alert && score.class == 1, "{score:?}");
    let e = s.explain(&b, 0, 3).unwrap();
    assert_eq!(e.reference, Reference::Calibration);
    assert_eq!(e.class[0].feature, "f0", "{e:?}");
    assert_eq!(e.class[0].value, 90.0);
    assert!(e.class[0].weight > 0.3, "{e:?}");
    assert_eq!(e.anomaly.len(), 3);
    assert!(e.anomaly.windows(2).all(|w| w[0].weight >= w[1].weight));
}

fn cicids() -> Option<(PathBuf, Vec<String>)> {
    let Some(dir) = dataset::cicids_dir() else {
        eprintln!("skipping: flows/cicids2017-improved-5000 not under $PORTCULLIS_DATA");
        return None;
    };
    let names = dataset::header_feature_names(&dir).unwrap();
    Some((dir, names))
}

/// Every CSV's first `per_file` rows, with the class index of its label.
fn load_rows(dir: &Path, names: &[&str], per_file: usize) -> (Dataset, Vec<String>, Vec<u32>) {
    let mut d = Dataset::default();
    for f in dataset::csv_files(dir) {
        d.read_csv(&f, names, per_file).unwrap();
    }
    let mut classes: Vec<String> = vec!["BENIGN".into()];
    let mut labels = Vec::new();
    for l in &d.labels {
        let l = if l.contains("Attempted") { "BENIGN" } else { l.as_str() };
        let i = classes.iter().position(|c| c == l).unwrap_or_else(|| {
            classes.push(l.to_owned());
            classes.len() - 1
        });
        labels.push(i as u32);
    }
    (d, classes, labels)
}

#[test]
fn tract_and_native_agree_on_cicids_rows() {
    let Some((dir, names)) = cicids() else { return };
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let (train, classes, labels) = load_rows(&dir, &refs, 100);
    let classes: Vec<&str> = classes.iter().map(String::as_str).collect();
    let tmp = tempfile::tempdir().unwrap();
    let shape = ForestShape { trees: 8, max_depth: 12, min_rows: 2, seed: 9 };
    let spec = synthetic::write_model_dir(tmp.path(), &refs, &train.values, &labels, &classes, shape, None).unwrap();
    // Test on every 8th row of every file (a debug build is slow), not only the rows the
    // forest grew on.
    let (all, _, _) = load_rows(&dir, &refs, usize::MAX);
    let sample: Vec<f32> = all.values.chunks(all.width).step_by(8).flatten().copied().collect();
    let n = assert_backends_agree(&spec, &refs, &batch_of(&sample, all.width));
    assert!(n > 5_000, "{n} rows");
}

#[test]
fn the_shipped_model_agrees_across_backends_on_cicids_rows() {
    let Some((dir, names)) = cicids() else { return };
    // $PORTCULLIS_MODEL names a model.yaml elsewhere (e.g. the training branch's).
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/models/cicids2017");
    if let Some(p) = std::env::var_os("PORTCULLIS_MODEL") {
        let (all, _, _) = load_rows(&dir, &names.iter().map(String::as_str).collect::<Vec<_>>(), usize::MAX);
        let spec = PathBuf::from(p);
        let features = portcullis_inference::ModelSpec::load(&spec).unwrap();
        eprintln!("comparing backends on {} with {} features", spec.display(), features.features.len());
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        assert_backends_agree(&spec, &refs, &strided(&all, STRIDE));
        return;
    }
    let Some(spec) = portcullis_inference::newest_version(&root).map(|d| d.join("model.yaml")) else {
        eprintln!("skipping: no shipped model under {}", root.display());
        return;
    };
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let (all, _, _) = load_rows(&dir, &refs, usize::MAX);
    let n = assert_backends_agree(&spec, &refs, &strided(&all, STRIDE));
    assert!(n * STRIDE >= all.len() && n > 1_000, "{n} of {} rows", all.len());
}

/// Every how many shared rows the shipped model's backends are compared: tract's tree
/// operator takes about 4 ms a row with the 650-tree v3, so all ~50,000 rows would take
/// minutes (this test is the last to finish in CI); every 16th row of every class file,
/// 2,714 of the 43,419, still covers each class's whole time range.
const STRIDE: usize = 16;

fn strided(d: &Dataset, stride: usize) -> FeatureBatch {
    let mut b = FeatureBatch::with_capacity(d.width, d.len() / stride + 1);
    for i in (0..d.len()).step_by(stride) {
        b.push(i as u64, d.row(i));
    }
    b
}

#[test]
fn ablation_rewalking_only_affected_trees_equals_whole_ensemble_reevaluation() {
    let width = 8;
    let names = names(width);
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let (rows, labels) = random_rows(1500, width, 33);
    let dir = tempfile::tempdir().unwrap();
    let shape = ForestShape { trees: 40, max_depth: 7, min_rows: 2, seed: 5 };
    synthetic::write_model_dir(dir.path(), &refs, &rows, &labels, &["BENIGN", "A", "B"], shape, None).unwrap();
    let forest = portcullis_inference::TreeEnsemble::load(&dir.path().join("classifier.onnx")).unwrap();
    let reference = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0];
    let (mut work, mut got) = (portcullis_inference::Ablation::default(), Vec::new());
    let mut p = vec![0.0; 3];
    let mut checked = 0;
    for row in rows.chunks(width).take(200) {
        for class in 0..3 {
            forest.ablate(row, &reference, class, &mut work, &mut got);
            assert!(!got.is_empty() && got.windows(2).all(|w| w[0].0 < w[1].0), "{got:?}");
            for &(f, q) in &got {
                let mut x = row.to_vec();
                x[f] = reference[f];
                forest.predict_one(&x, &mut p);
                assert!((p[class] - q).abs() <= 1e-5, "feature {f} class {class}: whole {} ablated {q}", p[class]);
                checked += 1;
            }
        }
    }
    assert!(checked > 600, "{checked}");
}
