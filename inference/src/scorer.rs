//! The `Scorer`: a loaded model (classifier and optional autoencoder) that turns a batch of
//! extractor rows into one `Score` per flow, with the backend chosen once at load.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use tract_onnx::prelude::*;

use crate::spec::{FeatureMap, ModelSpec};
use crate::tree::{Ablation, ClassLabels, TreeEnsemble};
use crate::InferenceError;

/// Which implementation evaluates the classifier. Chosen once when the scorer is built;
/// matched once per batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// tract-onnx's CPU implementation of the ONNX graph.
    Tract,
    /// This crate's flat evaluator of the graph's `TreeEnsembleClassifier` (checked against
    /// tract in the tests). The autoencoder always runs on tract.
    #[default]
    Native,
    /// The kernels of `kernels/cuda/` on the GPU (feature `cuda`): the classifier and the
    /// autoencoder, converted from the same ONNX files at load. Explanations stay on the CPU.
    Cuda,
}

impl FromStr for Backend {
    type Err = InferenceError;
    fn from_str(s: &str) -> Result<Backend, InferenceError> {
        match s {
            "tract" => Ok(Backend::Tract),
            "native" | "cpu" => Ok(Backend::Native),
            "cuda" => Ok(Backend::Cuda),
            other => Err(InferenceError::Spec(format!("unknown backend {other:?} (tract, native, cuda)"))),
        }
    }
}

/// The backend an operator asks for (`--backend`, `ml.backend`); [`choose_backend`] turns it
/// into a [`Backend`] once at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackendChoice {
    /// CUDA when the feature is built in, the libraries load and a device exists; else the
    /// CPU's native evaluator, saying why.
    #[default]
    Auto,
    /// The native tree evaluator (autoencoder on tract).
    Cpu,
    /// tract for both models.
    Tract,
    /// CUDA, or an error saying why not.
    Cuda,
}

impl FromStr for BackendChoice {
    type Err = InferenceError;
    fn from_str(s: &str) -> Result<BackendChoice, InferenceError> {
        match s {
            "auto" => Ok(BackendChoice::Auto),
            "cpu" | "native" => Ok(BackendChoice::Cpu),
            "tract" => Ok(BackendChoice::Tract),
            "cuda" => Ok(BackendChoice::Cuda),
            other => Err(InferenceError::Spec(format!("unknown backend {other:?} (auto, cpu, tract, cuda)"))),
        }
    }
}

/// The backend for `choice` and, for `auto` and `cuda`, the one line to tell the operator
/// which device scores and, on a fallback, why it is the CPU ("scoring on the CPU: no CUDA
/// device"). `cuda` when CUDA cannot run here is an error.
pub fn choose_backend(choice: BackendChoice) -> Result<(Backend, Option<String>), InferenceError> {
    match choice {
        BackendChoice::Cpu => Ok((Backend::Native, None)),
        BackendChoice::Tract => Ok((Backend::Tract, None)),
        BackendChoice::Cuda => {
            let d = crate::gpu::probe()?;
            Ok((Backend::Cuda, Some(format!("scoring on the GPU: {d}"))))
        }
        BackendChoice::Auto => Ok(match crate::gpu::probe() {
            Ok(d) => (Backend::Cuda, Some(format!("scoring on the GPU: {d}"))),
            Err(why) => (Backend::Native, Some(format!("scoring on the CPU: {why}"))),
        }),
    }
}

/// Exported flows to score: fixed-width extractor rows, row-major, with their flow ids.
/// Reused across batches: `clear` keeps the allocation.
#[derive(Debug, Clone, Default)]
pub struct FeatureBatch {
    width: usize,
    values: Vec<f32>,
    ids: Vec<u64>,
}

impl FeatureBatch {
    /// An empty batch of rows `width` wide with room for `rows` rows.
    pub fn with_capacity(width: usize, rows: usize) -> FeatureBatch {
        FeatureBatch { width, values: Vec::with_capacity(width * rows), ids: Vec::with_capacity(rows) }
    }

    /// Appends one row. Panics when the row is not `width` wide: that is a wiring bug
    /// between extractor and scorer, not data.
    #[inline]
    pub fn push(&mut self, id: u64, row: &[f32]) {
        assert_eq!(row.len(), self.width, "feature row width");
        self.values.extend_from_slice(row);
        self.ids.push(id);
    }

    pub fn clear(&mut self) {
        self.values.clear();
        self.ids.clear();
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn width(&self) -> usize {
        self.width
    }

    pub fn ids(&self) -> &[u64] {
        &self.ids
    }

    pub fn row(&self, i: usize) -> &[f32] {
        &self.values[i * self.width..(i + 1) * self.width]
    }
}

/// The verdict of the model on one flow.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    /// Index into `ModelSpec::classes` of the most probable class.
    pub class: u16,
    /// Its probability.
    pub probability: f32,
    /// Mean squared reconstruction error of the autoencoder, when the model has one.
    pub anomaly: Option<f32>,
    /// True when the class is not benign and its probability reaches the classifier
    /// threshold, or the anomaly score reaches the anomaly threshold.
    pub alert: bool,
}

/// One feature's part in an alert.
#[derive(Debug, Clone, PartialEq)]
pub struct Contribution {
    /// The feature's name (a model feature, hence an extractor name).
    pub feature: String,
    /// Its value in the flow.
    pub value: f32,
    /// Tree model: how much the alerting class's probability drops when this feature is set
    /// to its reference value. Autoencoder: this feature's squared reconstruction error.
    pub weight: f32,
}

/// Where the tree explanation's reference values came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reference {
    /// `reference` in `model.yaml` (benign medians computed by the trainer).
    ModelSpec,
    /// Given at run time with `Scorer::set_reference`.
    Calibration,
    /// Neither was given: features are compared with zero, a weak baseline.
    Zeros,
}

/// Why a flow alerted: the top contributing features of each model that alerted.
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    pub class: Vec<Contribution>,
    pub anomaly: Vec<Contribution>,
    pub reference: Reference,
}

/// Batches smaller than this are scored on the calling thread whatever `set_threads` says:
/// below it, starting threads costs more than it saves.
pub const PARALLEL_MIN_ROWS: usize = 2048;

type Plan = Arc<TypedRunnableModel<TypedModel>>;

enum Classifier {
    Tract(Plan),
    Native,
    /// Classifier and autoencoder on the GPU.
    #[cfg(feature = "cuda")]
    Cuda(Box<crate::gpu::CudaScorer>),
}

#[derive(Debug)]
struct Anomaly {
    plan: Plan,
    /// True when the graph outputs a reconstruction [N, F]; false when it outputs a score.
    reconstructs: bool,
    /// For a graph that outputs a score: the same graph cut at its per-feature squared
    /// errors, run only to explain an alert.
    per_feature: Option<Plan>,
}

/// A loaded model. Scoring reuses its buffers: the only allocations per batch are tract's
/// input tensor and outputs.
pub struct Scorer {
    spec: ModelSpec,
    map: FeatureMap,
    backend: Backend,
    classifier: Classifier,
    tree: TreeEnsemble,
    anomaly: Option<Anomaly>,
    benign: usize,
    n_classes: usize,
    input: Vec<f32>,
    probs: Vec<f32>,
    errors: Vec<f32>,
    scores: Vec<Score>,
    reference: Vec<f32>,
    reference_kind: Reference,
    ablation: Ablation,
    threads: usize,
}

impl std::fmt::Debug for Scorer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scorer")
            .field("model", &self.spec.name)
            .field("version", &self.spec.version)
            .field("backend", &self.backend)
            .field("trees", &self.tree.size())
            .field("anomaly", &self.anomaly.is_some())
            .finish()
    }
}

fn plan(path: &Path, width: usize) -> Result<Plan, InferenceError> {
    plan_to(path, width, None)
}

/// Plans the graph for any batch size, optionally with `output` (an intermediate tensor) as
/// its only output.
fn plan_to(path: &Path, width: usize, output: Option<&str>) -> Result<Plan, InferenceError> {
    let err = |e: TractError| InferenceError::Onnx { path: path.to_owned(), message: format!("{e:#}") };
    let mut model = tract_onnx::onnx().model_for_path(path).map_err(err)?;
    if let Some(o) = output {
        model.set_output_names([o]).map_err(err)?;
    }
    // One plan for every batch size: the batch dimension stays symbolic.
    let n = model.symbols.sym("N");
    model.set_input_fact(0, f32::fact([n.to_dim(), width.to_dim()]).into()).map_err(err)?;
    let plan = model.into_optimized().and_then(|m| m.into_runnable()).map_err(err)?;
    Ok(Arc::new(plan))
}

impl Anomaly {
    /// Appends the anomaly score of every row of `x` (`w` wide) to `out`.
    fn errors(&self, x: &[f32], w: usize, out: &mut Vec<f32>) -> Result<(), InferenceError> {
        let run = |e: TractError| InferenceError::Run(format!("{e:#}"));
        let n = x.len() / w;
        let t = Tensor::from_shape(&[n, w], x).map_err(run)?;
        let y = self.plan.run(tvec!(t.into_tvalue())).map_err(run)?;
        let y = y[0].as_slice::<f32>().map_err(run)?;
        if self.reconstructs {
            for (x, y) in x.chunks_exact(w).zip(y.chunks_exact(w)) {
                let se: f32 = x.iter().zip(y).map(|(a, b)| (a - b) * (a - b)).sum();
                out.push(se / w as f32);
            }
        } else if y.len() == n {
            out.extend_from_slice(y);
        } else {
            return Err(InferenceError::Run(format!("anomaly graph gave {} values for {n} rows", y.len())));
        }
        Ok(())
    }
}

impl Scorer {
    /// Loads `model.yaml` and the graphs beside it, checks the features against the
    /// extractor's names and plans the graphs for any batch size.
    pub fn load(spec_path: &Path, extractor: &[&str], backend: Backend) -> Result<Scorer, InferenceError> {
        Scorer::from_spec(ModelSpec::load(spec_path)?, extractor, backend)
    }

    /// As `load`, for a spec already read.
    pub fn from_spec(spec: ModelSpec, extractor: &[&str], backend: Backend) -> Result<Scorer, InferenceError> {
        spec.validate()?;
        let map = spec.feature_map(extractor)?;
        let width = map.model_width();
        let cpath = spec.classifier_path();
        let tree = TreeEnsemble::load(&cpath)?;
        let onnx_err = |message: String| InferenceError::Onnx { path: cpath.clone(), message };
        if tree.n_classes() != spec.classes.len() {
            return Err(onnx_err(format!("{} classes in the graph, {} in model.yaml", tree.n_classes(), spec.classes.len())));
        }
        if let ClassLabels::Strings(names) = tree.labels() {
            if *names != spec.classes {
                return Err(onnx_err(format!("graph classes {names:?} differ from model.yaml's {:?}", spec.classes)));
            }
        }
        if tree.n_features_used() > width {
            return Err(onnx_err(format!("graph reads feature {} of {width}", tree.n_features_used() - 1)));
        }
        let classifier = match backend {
            Backend::Tract => Classifier::Tract(plan(&cpath, width)?),
            Backend::Native => Classifier::Native,
            Backend::Cuda => cuda_classifier(&spec, &cpath, &tree, width)?,
        };
        let anomaly = match spec.anomaly_path() {
            Some(p) => {
                let plan = plan(&p, width)?;
                let out = plan.model().output_fact(0).map_err(|e| InferenceError::Onnx { path: p.clone(), message: format!("{e:#}") })?;
                let reconstructs = out.shape.rank() == 2 && out.shape[1] == width.to_dim();
                let per_feature = match reconstructs {
                    true => None,
                    false => per_feature_errors(&p).map(|name| plan_to(&p, width, Some(&name))).transpose()?,
                };
                Some(Anomaly { plan, reconstructs, per_feature })
            }
            None => None,
        };
        let (reference, reference_kind) = match &spec.reference {
            Some(r) => (r.clone(), Reference::ModelSpec),
            None => (vec![0.0; width], Reference::Zeros),
        };
        Ok(Scorer {
            benign: spec.benign,
            n_classes: spec.classes.len(),
            spec,
            map,
            backend,
            classifier,
            tree,
            anomaly,
            input: Vec::new(),
            probs: Vec::new(),
            errors: Vec::new(),
            scores: Vec::new(),
            reference,
            reference_kind,
            ablation: Ablation::default(),
            threads: 1,
        })
    }

    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Splits batches of at least [`PARALLEL_MIN_ROWS`] rows across `n` threads (scoped to
    /// the call; default 1). For a scorer that owns the cores it runs on, such as the
    /// batcher's thread; the replay's workers each score their own flows and keep 1.
    pub fn set_threads(&mut self, n: usize) {
        self.threads = n.max(1);
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Width of the extractor rows this scorer takes.
    pub fn extractor_width(&self) -> usize {
        self.map.extractor_width()
    }

    /// True when the model has an autoencoder.
    pub fn has_anomaly(&self) -> bool {
        self.anomaly.is_some()
    }

    /// Sets the reference row (extractor columns, e.g. benign medians) that tree
    /// explanations perturb towards, overriding `model.yaml`'s.
    pub fn set_reference(&mut self, extractor_row: &[f32]) {
        self.reference.resize(self.map.model_width(), 0.0);
        self.map.gather(extractor_row, &mut self.reference);
        self.reference_kind = Reference::Calibration;
    }

    /// The scores of the last batch scored.
    pub fn last_scores(&self) -> &[Score] {
        &self.scores
    }

    /// Class probabilities of the last batch scored, `n_classes` per row.
    pub fn probabilities(&self) -> &[f32] {
        &self.probs
    }

    /// Scores every row of the batch. The returned slice is valid until the next call.
    pub fn score(&mut self, batch: &FeatureBatch) -> Result<&[Score], InferenceError> {
        assert_eq!(batch.width(), self.map.extractor_width(), "batch width differs from the extractor's");
        let n = batch.len();
        let w = self.map.model_width();
        let c = self.n_classes;
        self.probs.resize(n * c, 0.0);
        self.errors.clear();
        if n == 0 {
            self.scores.clear();
            return Ok(&self.scores);
        }
        #[cfg(feature = "cuda")]
        if let Classifier::Cuda(gpu) = &mut self.classifier {
            // Rows are gathered straight into the device's pinned buffers, and the
            // autoencoder runs there too.
            let map = &self.map;
            let errors = match self.anomaly.is_some() {
                true => {
                    self.errors.resize(n, 0.0);
                    Some(&mut self.errors[..])
                }
                false => None,
            };
            gpu.score(n, |i, row| map.gather(batch.row(i), row), &mut self.probs, errors)?;
            return Ok(self.finish_scores(n));
        }
        self.input.resize(n * w, 0.0);
        for i in 0..n {
            self.map.gather(batch.row(i), &mut self.input[i * w..(i + 1) * w]);
        }
        let run = |e: TractError| InferenceError::Run(format!("{e:#}"));
        // Large batches are cut into one contiguous part per thread; every part is scored
        // exactly as a batch of its own would be, so the split never changes a score.
        let parts = if self.threads > 1 && n >= PARALLEL_MIN_ROWS { self.threads } else { 1 };
        let per = n.div_ceil(parts);
        match &self.classifier {
            Classifier::Native if parts == 1 => self.tree.predict(&self.input, w, &mut self.probs),
            Classifier::Native => {
                let tree = &self.tree;
                std::thread::scope(|s| {
                    for (x, p) in self.input.chunks(per * w).zip(self.probs.chunks_mut(per * c)) {
                        s.spawn(move || tree.predict(x, w, p));
                    }
                });
            }
            Classifier::Tract(plan) => {
                let t = Tensor::from_shape(&[n, w], &self.input).map_err(run)?;
                let out = plan.run(tvec!(t.into_tvalue())).map_err(run)?;
                let p = out.get(1).ok_or_else(|| InferenceError::Run("classifier has no probabilities output".into()))?;
                let p = p.as_slice::<f32>().map_err(run)?;
                if p.len() != n * c {
                    return Err(InferenceError::Run(format!("classifier gave {} probabilities for {n}×{c}", p.len())));
                }
                self.probs.copy_from_slice(p);
            }
            #[cfg(feature = "cuda")]
            Classifier::Cuda(_) => unreachable!("scored above"),
        }
        if let Some(a) = &self.anomaly {
            if parts == 1 {
                a.errors(&self.input, w, &mut self.errors)?;
            } else {
                let input = &self.input;
                let results: Vec<Result<Vec<f32>, InferenceError>> = std::thread::scope(|s| {
                    let handles: Vec<_> = input
                        .chunks(per * w)
                        .map(|x| {
                            s.spawn(move || {
                                let mut e = Vec::with_capacity(x.len() / w);
                                a.errors(x, w, &mut e).map(|()| e)
                            })
                        })
                        .collect();
                    handles.into_iter().map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
                });
                for r in results {
                    self.errors.extend_from_slice(&r?);
                }
            }
        }
        Ok(self.finish_scores(n))
    }

    /// The scores of `n` rows from `probs` and `errors`: the most probable class and the
    /// thresholds, the same whatever the backend.
    fn finish_scores(&mut self, n: usize) -> &[Score] {
        let c = self.n_classes;
        let th = &self.spec.thresholds;
        self.scores.clear();
        for i in 0..n {
            let p = &self.probs[i * c..(i + 1) * c];
            // First maximum, so ties resolve the same way on both backends.
            let (mut best, mut bp) = (0, p[0]);
            for (k, &v) in p.iter().enumerate().skip(1) {
                if v > bp {
                    best = k;
                    bp = v;
                }
            }
            let anomaly = self.errors.get(i).copied();
            let class_alert = best != self.benign && bp >= th.min_probability[best];
            let anomaly_alert = matches!((anomaly, th.anomaly), (Some(a), Some(t)) if a >= t);
            self.scores.push(Score { class: best as u16, probability: bp, anomaly, alert: class_alert || anomaly_alert });
        }
        &self.scores
    }

    /// Explains row `row` of `batch` (scored or not): for the classifier, each feature read on
    /// the flow's decision paths is set to its reference value in turn and the drop in the
    /// alerting class's probability is its weight; for the autoencoder, the per-feature
    /// squared reconstruction errors. The `top` largest of each are kept. Meant for alerting
    /// flows only: it re-walks, per path feature, the trees whose path reads it (a few
    /// ensemble evaluations' worth).
    pub fn explain(&mut self, batch: &FeatureBatch, row: usize, top: usize) -> Result<Explanation, InferenceError> {
        let w = self.map.model_width();
        let mut x = vec![0.0; w];
        self.map.gather(batch.row(row), &mut x);
        let c = self.n_classes;
        let mut p = vec![0.0; c];
        self.tree.predict_one(&x, &mut p);
        let mut best = 0;
        for k in 1..c {
            if p[k] > p[best] {
                best = k;
            }
        }
        let mut class = Vec::new();
        if best != self.benign {
            let mut ablated = Vec::new();
            self.tree.ablate(&x, &self.reference, best, &mut self.ablation, &mut ablated);
            for (f, q) in ablated {
                class.push(Contribution { feature: self.spec.features[f].clone(), value: x[f], weight: p[best] - q });
            }
            rank(&mut class, top);
        }
        let mut anomaly = Vec::new();
        if let Some(a) = &self.anomaly {
            let run = |e: TractError| InferenceError::Run(format!("{e:#}"));
            let t = || Tensor::from_shape(&[1, w], &x).map_err(run);
            if a.reconstructs {
                let out = a.plan.run(tvec!(t()?.into_tvalue())).map_err(run)?;
                let y = out[0].as_slice::<f32>().map_err(run)?;
                for f in 0..w {
                    let d = x[f] - y[f];
                    anomaly.push(Contribution { feature: self.spec.features[f].clone(), value: x[f], weight: d * d });
                }
            } else if let Some(plan) = &a.per_feature {
                let out = plan.run(tvec!(t()?.into_tvalue())).map_err(run)?;
                let e = out[0].as_slice::<f32>().map_err(run)?;
                for f in 0..w.min(e.len()) {
                    anomaly.push(Contribution { feature: self.spec.features[f].clone(), value: x[f], weight: e[f] });
                }
            }
            rank(&mut anomaly, top);
        }
        Ok(Explanation { class, anomaly, reference: self.reference_kind })
    }
}

/// The GPU classifier (and autoencoder) for a model, or why not.
#[cfg(feature = "cuda")]
fn cuda_classifier(spec: &ModelSpec, cpath: &Path, tree: &TreeEnsemble, width: usize) -> Result<Classifier, InferenceError> {
    use crate::gpu::layout::{DeviceForest, DeviceMlp};
    let forest = DeviceForest::from_ensemble(tree, cpath)?;
    let mlp = spec.anomaly_path().map(|p| DeviceMlp::load(&p, width)).transpose()?;
    Ok(Classifier::Cuda(Box::new(crate::gpu::CudaScorer::new(forest, mlp, width)?)))
}

#[cfg(not(feature = "cuda"))]
fn cuda_classifier(_: &ModelSpec, _: &Path, _: &TreeEnsemble, _: usize) -> Result<Classifier, InferenceError> {
    Err(crate::gpu::GpuError::NotCompiled.into())
}

/// The tensor of per-feature squared errors in an autoencoder graph that outputs one score:
/// the first input of the node producing the output, when that node averages (`ReduceMean`,
/// or `MatMul` with a column of 1/F as the trainer writes it).
fn per_feature_errors(path: &Path) -> Option<String> {
    let proto = tract_onnx::onnx().proto_model_for_path(path).ok()?;
    let g = proto.graph.as_ref()?;
    let out = &g.output.first()?.name;
    let node = g.node.iter().find(|n| n.output.iter().any(|o| o == out))?;
    matches!(node.op_type.as_str(), "ReduceMean" | "MatMul").then(|| node.input.first().cloned()).flatten()
}

fn rank(v: &mut Vec<Contribution>, top: usize) {
    v.sort_by(|a, b| b.weight.abs().total_cmp(&a.weight.abs()).then_with(|| a.feature.cmp(&b.feature)));
    v.truncate(top);
}
