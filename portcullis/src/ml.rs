//! The flow model in the engine: finding and loading it, scoring the feature exports of a
//! worker's batch, and what a model alert says.
//!
//! Each worker owns a [`Scorer`] and scores the exports its flow table produced for one
//! batch in one call, at the end of the batch. A score is a pure function of the flow's
//! features, and a flow's exports all come from the worker that owns it in the flow's own
//! time order, so the alerts (and which of them a flow already raised) do not depend on the
//! number of workers or on how packets were batched. The inference crate's `Batcher` (a
//! scoring thread fed by every worker, flushing on size or wall-clock age) was not used: its
//! batches depend on timing, it explains at most `explain_max` alerts per batch (so which
//! alerts carry explanations would vary from run to run), and its results arrive on another
//! thread, after the writer may have written the batch they belong to.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use portcullis_common::{PacketMeta, Timestamp};
use portcullis_eve::{AlertRule, MlFeature, MlVerdict};
use portcullis_flowtable::{FeatureExport, FlowRecord, FlowSnapshot, FlowTable, Update, FEATURE_NAMES, N_FEATURES};
use portcullis_inference::{choose_backend, newest_version, Backend, BackendChoice, Contribution, DriftCounts, DriftReference, FeatureBatch, InferenceError, Scorer};

/// The `gid` of every model alert: no Suricata rule uses it (Suricata's own generators stop
/// well below), so a consumer tells model alerts from rule alerts by it.
pub const ML_GID: u32 = 9000;
/// A classifier alert's `signature_id` is this plus the class's index in `model.yaml`.
pub const ML_SID_BASE: u32 = 9_000_000;
/// The `signature_id` of an anomaly alert (the autoencoder flagged a flow the classifier
/// did not).
pub const ML_ANOMALY_SID: u32 = 9_000_999;
/// `alert.category` of a classifier alert.
pub const CATEGORY_CLASSIFIER: &str = "Machine learning: flow classifier";
/// `alert.category` of an anomaly alert.
pub const CATEGORY_ANOMALY: &str = "Machine learning: anomaly";
/// Features named in an alert's explanation.
const TOP_FEATURES: usize = 5;

/// What every worker shares about the loaded model: its identity, its class names and
/// thresholds, and the alert signatures written for it.
#[derive(Debug)]
pub struct MlModel {
    /// The directory the model was loaded from.
    pub dir: PathBuf,
    pub name: String,
    pub version: String,
    pub classes: Vec<String>,
    benign: usize,
    /// Per class: the probability at which the classifier's verdict alerts.
    min_probability: Vec<f32>,
    anomaly_threshold: Option<f32>,
    /// "ML <class>" per class, then "ML anomaly".
    signatures: Vec<String>,
    /// The training distribution live flows are compared with (`drift.yaml`), or why there
    /// is none.
    pub drift: Result<Arc<DriftReference>, String>,
    /// What scores it: `cpu`, `tract` or `cuda`.
    pub backend: &'static str,
}

/// Which of the model's detectors raised an alert, and so which signature it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MlKind {
    /// The classifier's most probable class (an index into `MlModel::classes`) is an attack
    /// class at or above its threshold.
    Class(u16),
    /// The autoencoder's score reached its threshold and the classifier did not alert.
    Anomaly,
}

impl MlModel {
    fn index(&self, kind: MlKind) -> usize {
        match kind {
            MlKind::Class(c) => usize::from(c),
            MlKind::Anomaly => self.classes.len(),
        }
    }

    /// The alert "rule" of a model alert: gid [`ML_GID`], a stable sid per class, the class
    /// name as the signature.
    pub fn rule(&self, kind: MlKind, severity: u8) -> AlertRule<'_> {
        let (sid, category) = match kind {
            MlKind::Class(c) => (ML_SID_BASE + u32::from(c), CATEGORY_CLASSIFIER),
            MlKind::Anomaly => (ML_ANOMALY_SID, CATEGORY_ANOMALY),
        };
        AlertRule { gid: ML_GID, sid, rev: 1, msg: &self.signatures[self.index(kind)], category, severity, metadata: &[] }
    }

    /// Severity from the model's thresholds: 1 for a class probability in the upper half of
    /// the range from the class's threshold to 1, else 2; an anomaly alert 2 at twice its
    /// threshold or more, else 3.
    fn severity(&self, kind: MlKind, probability: f32, anomaly: Option<f32>) -> u8 {
        match kind {
            MlKind::Class(c) => {
                let t = self.min_probability[usize::from(c)];
                if probability >= (1.0 + t) / 2.0 {
                    1
                } else {
                    2
                }
            }
            MlKind::Anomaly => match (anomaly, self.anomaly_threshold) {
                (Some(a), Some(t)) if a >= 2.0 * t => 2,
                _ => 3,
            },
        }
    }

    /// What the model's thresholds make of a score, if it alerts.
    fn decide(&self, class: u16, probability: f32, anomaly: Option<f32>) -> Option<MlKind> {
        let c = usize::from(class);
        if c != self.benign && probability >= self.min_probability.get(c).copied().unwrap_or(1.0) {
            return Some(MlKind::Class(class));
        }
        match (anomaly, self.anomaly_threshold) {
            (Some(a), Some(t)) if a >= t => Some(MlKind::Anomaly),
            _ => None,
        }
    }
}

/// The scoring backend `load_model` uses, chosen once per process by [`select_backend`];
/// unset (library callers, tests), the CPU's native evaluator.
static BACKEND: OnceLock<(Backend, BackendChoice)> = OnceLock::new();

/// Chooses where flows are scored, once at start: for `auto`, CUDA when it is built in and a
/// driver and device are present, else the CPU, with one line on stderr saying which and
/// why. `cuda` without a usable GPU is an error. Later calls keep the first choice.
pub fn select_backend(choice: BackendChoice) -> Result<Backend, InferenceError> {
    if let Some(&(b, _)) = BACKEND.get() {
        return Ok(b);
    }
    let (backend, line) = choose_backend(choice)?;
    if let Some(l) = line {
        eprintln!("{l}");
    }
    Ok(BACKEND.get_or_init(|| (backend, choice)).0)
}

/// A model that could not be loaded, with where it was looked for.
#[derive(Debug, thiserror::Error)]
#[error("cannot load the model in {dir}: {source}")]
pub struct ModelError {
    pub dir: PathBuf,
    #[source]
    pub source: InferenceError,
}

/// Loads the model in `dir` (a directory holding `model.yaml`, or the `model.yaml` itself)
/// once per worker. Refused, naming the first difference, when the model's features are not
/// among the flow table's [`FEATURE_NAMES`].
pub fn load_model(dir: &Path, workers: usize) -> Result<(Arc<MlModel>, Vec<Scorer>), ModelError> {
    let spec_path = if dir.is_dir() { dir.join("model.yaml") } else { dir.to_path_buf() };
    let err = |source| ModelError { dir: dir.to_path_buf(), source };
    let mut scorers = Vec::with_capacity(workers.max(1));
    let (mut backend, choice) = BACKEND.get().copied().unwrap_or((Backend::Native, BackendChoice::Cpu));
    for _ in 0..workers.max(1) {
        match Scorer::load(&spec_path, &FEATURE_NAMES, backend) {
            Ok(s) => scorers.push(s),
            // `auto` picked the GPU, but this model cannot run there (an op without a kernel
            // step): the CPU scores it, said once.
            Err(InferenceError::Gpu(why)) if choice == BackendChoice::Auto && scorers.is_empty() => {
                eprintln!("scoring on the CPU after all: {why}");
                backend = Backend::Native;
                scorers.push(Scorer::load(&spec_path, &FEATURE_NAMES, backend).map_err(err)?);
            }
            Err(e) => return Err(err(e)),
        }
    }
    let spec = scorers[0].spec();
    let mut signatures: Vec<String> = spec.classes.iter().map(|c| format!("ML {c}")).collect();
    signatures.push("ML anomaly".into());
    let drift = match DriftReference::for_model(spec) {
        Ok(Some(r)) => Ok(Arc::new(r)),
        Ok(None) => Err(portcullis_inference::NO_REFERENCE.to_string()),
        Err(e) => Err(format!("its drift reference does not load: {e}")),
    };
    let model = MlModel {
        drift,
        backend: match backend {
            Backend::Native => "cpu",
            Backend::Tract => "tract",
            Backend::Cuda => "cuda",
        },
        dir: dir.to_path_buf(),
        name: spec.name.clone(),
        version: spec.version.clone(),
        classes: spec.classes.clone(),
        benign: spec.benign,
        min_probability: spec.thresholds.min_probability.clone(),
        anomaly_threshold: spec.thresholds.anomaly.filter(|_| scorers[0].has_anomaly()),
        signatures,
    };
    Ok((Arc::new(model), scorers))
}

/// The newest model bundled with Portcullis: the highest version directory holding a
/// `model.yaml` under `configs/models/cicids2017/` of the checkout the executable was built
/// in or runs from (its ancestors, then the working directory).
pub fn bundled_model_dir() -> Option<PathBuf> {
    let rel = Path::new("configs/models/cicids2017");
    let mut roots: Vec<PathBuf> = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        roots.extend(exe.ancestors().skip(1).map(Path::to_path_buf));
    }
    roots.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."));
    if let Ok(cwd) = std::env::current_dir() {
        roots.push(cwd);
    }
    roots.iter().map(|r| r.join(rel)).filter(|d| d.is_dir()).find_map(|d| newest_version(&d))
}

/// At most `count` model alerts per (source address, detector) within `seconds` of the
/// first: Suricata's `threshold: type limit, track by_src`, so a scan of thousands of ports
/// raises a few alerts rather than one per probe. The source is the flow's initiator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertLimit {
    pub count: u32,
    pub seconds: u32,
}

impl Default for AlertLimit {
    fn default() -> Self {
        AlertLimit { count: 10, seconds: 60 }
    }
}

/// The writer's windows for [`AlertLimit`], fed in output order so that what is suppressed
/// does not depend on the number of workers.
#[derive(Debug, Default)]
pub(crate) struct AlertLimiter {
    /// (source, detector) → (window start, alerts in the window).
    windows: HashMap<([u8; 16], MlKind), (Timestamp, u32)>,
}

/// Windows kept before expired ones are swept out.
const LIMITER_SWEEP: usize = 1 << 16;

impl AlertLimiter {
    /// Whether the alert of `kind` from `src` at `at` is written.
    pub fn admit(&mut self, limit: Option<AlertLimit>, src: [u8; 16], kind: MlKind, at: Timestamp) -> bool {
        let Some(l) = limit.filter(|l| l.count > 0) else { return true };
        let span = i64::from(l.seconds) * 1_000_000;
        if self.windows.len() >= LIMITER_SWEEP {
            self.windows.retain(|_, (start, _)| at.0 - start.0 < span);
        }
        let w = self.windows.entry((src, kind)).or_insert((at, 0));
        if at.0 - w.0 .0 >= span {
            *w = (at, 0);
        }
        w.1 += 1;
        w.1 <= l.count
    }
}

/// A model alert, as a worker hands it to the writer.
#[derive(Debug)]
pub(crate) struct MlAlert {
    /// The model that raised it (models can be swapped while the daemon runs).
    pub model: Arc<MlModel>,
    /// When the features were exported: the checkpoint's packet time, or the flow's end.
    pub at: Timestamp,
    /// The packet that made a checkpoint due; none for a flow's final export.
    pub pcap_cnt: Option<u64>,
    pub flow: FlowSnapshot,
    pub kind: MlKind,
    pub severity: u8,
    pub class: u16,
    pub probability: f32,
    pub anomaly: Option<f32>,
    pub flow_ended: bool,
    pub top: Vec<Contribution>,
}

impl MlAlert {
    pub fn verdict<'a>(&'a self, model: &'a MlModel) -> MlVerdict<'a> {
        MlVerdict {
            model: &model.name,
            version: &model.version,
            detector: match self.kind {
                MlKind::Class(_) => "classifier",
                MlKind::Anomaly => "anomaly",
            },
            class: model.classes.get(usize::from(self.class)).map_or("", String::as_str),
            probability: self.probability,
            anomaly_score: self.anomaly,
            flow_ended: self.flow_ended,
            top_features: self.top.iter().map(|c| MlFeature { name: &c.feature, value: c.value, weight: c.weight }).collect(),
        }
    }
}

/// What one worker's scoring did.
#[derive(Debug, Default, Clone)]
pub(crate) struct MlWorkerStats {
    /// Final exports scored: one per flow that ended.
    pub flows: u64,
    /// Checkpoint exports of running flows scored.
    pub checkpoints: u64,
    /// Microseconds of each `Scorer::score` call (one per batch with exports).
    pub latencies_us: Vec<u32>,
    /// Rows that could not be scored, and the first reason.
    pub failed: u64,
    pub first_error: Option<String>,
    /// A candidate model scoring beside the active one: how their verdicts compared.
    pub shadow: ShadowCounts,
}

/// The active and a candidate model's verdicts on the same rows.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ShadowCounts {
    pub rows: u64,
    /// Rows both put in the same class.
    pub agree: u64,
    pub only_candidate_alerts: u64,
    pub only_active_alerts: u64,
}

impl ShadowCounts {
    pub fn merge(&mut self, o: &ShadowCounts) {
        self.rows += o.rows;
        self.agree += o.agree;
        self.only_candidate_alerts += o.only_candidate_alerts;
        self.only_active_alerts += o.only_active_alerts;
    }
}

/// What scoring did over the whole replay.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MlSummary {
    pub model: String,
    pub version: String,
    pub dir: PathBuf,
    /// Flows scored at their end.
    pub flows_scored: u64,
    /// Checkpoints of running flows scored.
    pub checkpoints_scored: u64,
    /// Model alerts written (or that would have been, without EVE).
    pub alerts: u64,
    /// Model alerts held back by `ml.alert-limit`.
    pub suppressed: u64,
    /// Scoring calls (one per worker batch with exports) and their latency percentiles.
    pub score_calls: u64,
    pub latency_p50_us: u64,
    pub latency_p99_us: u64,
    /// Rows that failed to score, and why the first did.
    pub failed: u64,
    pub first_error: Option<String>,
}

impl MlSummary {
    pub(crate) fn new(model: &MlModel, workers: Vec<MlWorkerStats>, alerts: u64, suppressed: u64) -> MlSummary {
        let mut lat: Vec<u32> = Vec::new();
        let mut s = MlSummary {
            model: model.name.clone(),
            version: model.version.clone(),
            dir: model.dir.clone(),
            alerts,
            suppressed,
            ..Default::default()
        };
        for w in workers {
            s.flows_scored += w.flows;
            s.checkpoints_scored += w.checkpoints;
            s.failed += w.failed;
            s.first_error = s.first_error.or(w.first_error);
            lat.extend(w.latencies_us);
        }
        lat.sort_unstable();
        let pct = |p: f64| lat.get(((lat.len() as f64 * p).ceil() as usize).saturating_sub(1)).map_or(0, |&v| u64::from(v));
        s.score_calls = lat.len() as u64;
        s.latency_p50_us = pct(0.50);
        s.latency_p99_us = pct(0.99);
        s
    }
}

/// One export waiting to be scored; its row is in the worker's `FeatureBatch`.
#[derive(Debug, Clone, Copy)]
struct Pending {
    at: Timestamp,
    pcap_cnt: Option<u64>,
    flow: FlowSnapshot,
    is_final: bool,
}

/// A worker's scoring: its own scorer, the exports of the batch so far, and which kinds of
/// alert each of its live flows already raised.
pub(crate) struct WorkerMl {
    model: Arc<MlModel>,
    scorer: Scorer,
    exports: Vec<FeatureExport>,
    pending: Vec<Pending>,
    batch: FeatureBatch,
    /// Flow id → one bit per alert kind raised: a flow alerts at most once per class.
    alerted: HashMap<u64, u128>,
    /// A candidate model scoring the same rows, never alerting (shadow mode).
    shadow: Option<(Arc<MlModel>, Scorer)>,
    /// The binned features of the flows that ended since the last sample, for drift.
    drift: Option<DriftCounts>,
    pub stats: MlWorkerStats,
}

/// The worker's drift counts for `model`, when it has a reference.
fn drift_counts(model: &MlModel) -> Option<DriftCounts> {
    model.drift.as_ref().ok().and_then(|r| DriftCounts::extractor_rows(r, &FEATURE_NAMES).ok())
}

impl WorkerMl {
    pub fn new(model: Arc<MlModel>, scorer: Scorer) -> WorkerMl {
        let drift = drift_counts(&model);
        WorkerMl {
            batch: FeatureBatch::with_capacity(N_FEATURES, 256),
            model,
            scorer,
            exports: Vec::new(),
            pending: Vec::new(),
            alerted: HashMap::new(),
            shadow: None,
            drift,
            stats: MlWorkerStats::default(),
        }
    }

    /// Puts other models in place between two batches (a swap, a rollback, a shadow
    /// started or promoted). Flows keep their features; which alerts a flow already raised
    /// is forgotten, as class numbers may mean other classes in the new model. The shadow's
    /// counts start again.
    pub fn replace(&mut self, model: Arc<MlModel>, scorer: Scorer, shadow: Option<(Arc<MlModel>, Scorer)>) {
        self.drift = drift_counts(&model);
        self.model = model;
        self.scorer = scorer;
        self.shadow = shadow;
        self.alerted.clear();
        self.stats.shadow = ShadowCounts::default();
    }

    /// `FlowTable::update`, keeping the features it exports (`ended` from `before` on are the
    /// records this call produced).
    pub fn update(&mut self, table: &mut FlowTable, p: &PacketMeta, ended: &mut Vec<FlowRecord>) -> Option<Update> {
        let before = ended.len();
        let u = table.update_exporting(p, ended, &mut self.exports);
        let snap = u.map(|u| (u.flow_id, table.snapshot(u.slot)));
        self.take(&ended[before..], snap, p.pcap_cnt);
        u
    }

    /// `FlowTable::expire`, keeping the final features of the flows it ends.
    pub fn expire(&mut self, table: &mut FlowTable, now: Timestamp, ended: &mut Vec<FlowRecord>) {
        let before = ended.len();
        table.expire_exporting(now, ended, &mut self.exports);
        self.take(&ended[before..], None, 0);
    }

    /// `FlowTable::flush`, keeping the final features of every flow.
    pub fn flush(&mut self, table: &mut FlowTable, now: Timestamp, ended: &mut Vec<FlowRecord>) {
        let before = ended.len();
        table.flush_exporting(now, ended, &mut self.exports);
        self.take(&ended[before..], None, 0);
    }

    /// Queues the exports just produced: a final one with its record's counters, a
    /// checkpoint with the counters of the flow whose packet (`pcap_cnt`) made it due.
    fn take(&mut self, records: &[FlowRecord], packet_flow: Option<(u64, FlowSnapshot)>, pcap_cnt: u64) {
        let mut row = [0f32; N_FEATURES];
        for e in self.exports.drain(..) {
            let (flow, pcap_cnt) = if e.is_final {
                match records.iter().find(|r| r.flow_id == e.flow_id) {
                    Some(r) => (FlowSnapshot::of_record(r), None),
                    None => continue,
                }
            } else {
                match packet_flow {
                    Some((id, s)) if id == e.flow_id => (s, Some(pcap_cnt)),
                    _ => continue,
                }
            };
            // The model was trained on finite values only; its contract says a non-finite
            // feature is scored as 0.
            for (o, &v) in row.iter_mut().zip(e.features.iter()) {
                let v = v as f32;
                *o = if v.is_finite() { v } else { 0.0 };
            }
            self.batch.push(e.flow_id, &row);
            // The reference was made from finished flows: checkpoints of long ones would skew
            // the duration and timing features.
            if let (Some(d), true) = (self.drift.as_mut(), e.is_final) {
                d.add_row(&row);
            }
            self.pending.push(Pending { at: e.at, pcap_cnt, flow, is_final: e.is_final });
        }
    }

    /// The drift counts since the last call (then cleared), with the model they belong to.
    pub fn take_drift(&mut self) -> Option<(Arc<MlModel>, DriftCounts)> {
        let d = self.drift.as_mut()?;
        let taken = d.clone();
        d.clear();
        Some((self.model.clone(), taken))
    }

    /// Scores everything queued in one call and appends the alerts it raises to `out`.
    pub fn score(&mut self, out: &mut Vec<MlAlert>) {
        if self.pending.is_empty() {
            return;
        }
        let started = Instant::now();
        let scored = self.scorer.score(&self.batch).map(|_| ());
        self.stats.latencies_us.push(started.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
        match scored {
            Err(e) => {
                self.stats.failed += self.pending.len() as u64;
                self.stats.first_error.get_or_insert_with(|| e.to_string());
                for p in self.pending.iter().filter(|p| p.is_final) {
                    self.alerted.remove(&p.flow.flow_id);
                }
            }
            Ok(()) => {
                for i in 0..self.pending.len() {
                    self.row(i, out);
                }
                self.compare_shadow();
            }
        }
        self.pending.clear();
        self.batch.clear();
    }

    /// Scores the batch with the shadow model too and counts where the two differ.
    fn compare_shadow(&mut self) {
        let Some((model, scorer)) = self.shadow.as_mut() else { return };
        let Ok(theirs) = scorer.score(&self.batch) else { return };
        let c = &mut self.stats.shadow;
        for (ours, theirs) in self.scorer.last_scores().iter().zip(theirs) {
            c.rows += 1;
            let (a, b) = (&self.model.classes, &model.classes);
            if a.get(usize::from(ours.class)) == b.get(usize::from(theirs.class)) {
                c.agree += 1;
            }
            let active = self.model.decide(ours.class, ours.probability, ours.anomaly).is_some();
            let candidate = model.decide(theirs.class, theirs.probability, theirs.anomaly).is_some();
            match (active, candidate) {
                (true, false) => c.only_active_alerts += 1,
                (false, true) => c.only_candidate_alerts += 1,
                _ => {}
            }
        }
    }

    fn row(&mut self, i: usize, out: &mut Vec<MlAlert>) {
        let p = self.pending[i];
        let s = self.scorer.last_scores()[i];
        if p.is_final {
            self.stats.flows += 1;
        } else {
            self.stats.checkpoints += 1;
        }
        let id = p.flow.flow_id;
        let kind = self.model.decide(s.class, s.probability, s.anomaly);
        let raised = if p.is_final { self.alerted.remove(&id).unwrap_or(0) } else { self.alerted.get(&id).copied().unwrap_or(0) };
        let Some(kind) = kind else { return };
        let bit = 1u128 << self.model.index(kind).min(127);
        if raised & bit != 0 {
            return;
        }
        if !p.is_final {
            self.alerted.insert(id, raised | bit);
        }
        // Explanations cost about one ensemble evaluation per feature on the flow's decision
        // paths, so only alerting flows get one.
        let top = match self.scorer.explain(&self.batch, i, TOP_FEATURES) {
            Ok(x) => match kind {
                MlKind::Class(_) => x.class,
                MlKind::Anomaly => x.anomaly,
            },
            Err(_) => Vec::new(),
        };
        out.push(MlAlert {
            model: self.model.clone(),
            at: p.at,
            pcap_cnt: p.pcap_cnt,
            flow: p.flow,
            kind,
            severity: self.model.severity(kind, s.probability, s.anomaly),
            class: s.class,
            probability: s.probability,
            anomaly: s.anomaly,
            flow_ended: p.is_final,
            top,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> MlModel {
        MlModel {
            dir: PathBuf::new(),
            name: "m".into(),
            version: "1".into(),
            classes: vec!["BENIGN".into(), "DoS Hulk".into(), "Portscan".into()],
            benign: 0,
            min_probability: vec![0.5, 0.6, 0.5],
            anomaly_threshold: Some(0.75),
            signatures: vec!["ML BENIGN".into(), "ML DoS Hulk".into(), "ML Portscan".into(), "ML anomaly".into()],
            drift: Err("test model".into()),
            backend: "cpu",
        }
    }

    #[test]
    fn thresholds_decide_kind_and_severity() {
        let m = model();
        // (class, probability, anomaly score) → (kind, severity)
        type Case = (u16, f32, Option<f32>, Option<(MlKind, u8)>);
        let cases: &[Case] = &[
            (0, 0.99, None, None),
            (0, 0.99, Some(0.8), Some((MlKind::Anomaly, 3))),
            (0, 0.99, Some(1.5), Some((MlKind::Anomaly, 2))),
            (1, 0.59, None, None),
            (1, 0.6, None, Some((MlKind::Class(1), 2))),
            (1, 0.8, Some(9.0), Some((MlKind::Class(1), 1))),
            (2, 0.74, None, Some((MlKind::Class(2), 2))),
            (2, 0.75, None, Some((MlKind::Class(2), 1))),
        ];
        for &(class, p, a, want) in cases {
            let got = m.decide(class, p, a).map(|k| (k, m.severity(k, p, a)));
            assert_eq!(got, want, "class {class} p {p} anomaly {a:?}");
        }
        let r = m.rule(MlKind::Class(1), 1);
        assert_eq!((r.gid, r.sid, r.msg, r.category), (9000, 9_000_001, "ML DoS Hulk", CATEGORY_CLASSIFIER));
        let r = m.rule(MlKind::Anomaly, 3);
        assert_eq!((r.sid, r.msg, r.category), (ML_ANOMALY_SID, "ML anomaly", CATEGORY_ANOMALY));
    }

    #[test]
    fn the_alert_limit_admits_count_per_source_and_detector_per_window() {
        let mut l = AlertLimiter::default();
        let lim = Some(AlertLimit { count: 2, seconds: 10 });
        let (a, b) = ([1u8; 16], [2u8; 16]);
        let t = |s: i64| Timestamp::from_secs_micros(s, 0);
        let got: Vec<bool> = [(a, 0), (a, 1), (a, 2), (b, 3), (a, 9)].iter().map(|&(src, s)| l.admit(lim, src, MlKind::Class(1), t(s))).collect();
        assert_eq!(got, [true, true, false, true, false]);
        assert!(l.admit(lim, a, MlKind::Anomaly, t(9)), "another detector has its own window");
        assert!(l.admit(lim, a, MlKind::Class(1), t(10)), "a new window opens after `seconds`");
        assert!((0..5).all(|s| l.admit(Some(AlertLimit { count: 0, seconds: 10 }), a, MlKind::Class(1), t(s))), "count 0: no limit");
        assert!(l.admit(None, a, MlKind::Class(1), t(10)));
    }

    #[test]
    fn the_newest_version_is_bundled() {
        assert!(bundled_model_dir().is_some_and(|p| p.join("model.yaml").is_file()), "the checkout bundles a model");
    }
}
