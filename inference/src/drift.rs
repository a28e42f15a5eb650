//! Feature drift: how far the live flows' features have moved from the flows the model learned,
//! as a population stability index (PSI) per feature.
//!
//! A model ships `drift.yaml` beside its `model.yaml` (written by
//! `training/drift_reference.py`): per model feature, the edges of its bins and the share of
//! the benign training flows in each bin. [`DriftCounts`] counts live rows into the same bins
//! (one binary search per feature, no allocation per row); workers keep one each and hand it
//! over to be [`merge`](DriftCounts::merge)d. [`psi`] compares counts with the reference, and
//! [`DriftMonitor`] closes windows of flows, keeps the last window's figures for the console and
//! the metrics, and returns a [`DriftEvent`] when a feature crosses the threshold (or falls
//! back under it), with hysteresis so that a feature hovering at the threshold does not alert
//! every window.
//!
//! PSI of one feature = Σ over its bins (a − e)·ln(a / e), with e the reference share and a the
//! live share of the bin; 0 when the live flows fall into the bins as the training flows did.
//! The usual reading: below 0.1 no shift, 0.1 to 0.25 a moderate one, above 0.25 a significant
//! one, hence [`DEFAULT_THRESHOLD`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::scorer::FeatureBatch;
use crate::spec::{features_sha256, ModelSpec};
use crate::InferenceError;

/// The reference's file name, beside `model.yaml`.
pub const DRIFT_FILE: &str = "drift.yaml";

/// PSI from which a feature counts as drifted: the level usually read as a significant shift.
pub const DEFAULT_THRESHOLD: f64 = 0.25;

/// The share an empty bin counts as, on either side. PSI divides by both shares, so an empty
/// bin needs some floor; 1e-4 is below any share a bin of the shipped references holds (they
/// have about 3,000 flows, so a filled bin is at least 3e-4) and keeps one live flow in a bin
/// the training flows never reached from weighing more than a·ln(a/1e-4) (0.006 for one flow
/// in 500).
pub const EMPTY_BIN: f64 = 1e-4;

/// Fewer flows than this are not measured: [`psi`] returns `None`. A sample drawn from the
/// reference itself scores about (bins − 1) / flows by chance alone (PSI is close to a
/// chi-square statistic over the flow count); with the 3 to 13 bins per feature of the
/// shipped references, 500 flows keep that at 0.024 or less, a tenth of the threshold.
pub const MIN_FLOWS: u64 = 500;

/// What the console shows when the model has no reference.
pub const NO_REFERENCE: &str = "the model ships no reference (drift.yaml)";

#[derive(Debug, Deserialize)]
struct RawReference {
    features: RawFeatures,
    #[serde(default)]
    flows: u64,
    #[serde(default)]
    population: String,
    bins: Vec<RawBins>,
}

#[derive(Debug, Deserialize)]
struct RawFeatures {
    sha256: String,
}

#[derive(Debug, Deserialize)]
struct RawBins {
    name: String,
    edges: Vec<f64>,
    shares: Vec<f64>,
}

/// A model's training distribution, per feature: bin edges and the share of the training
/// flows in each bin. A value `v` falls in bin `i` = the number of edges `<= v`; a non-finite
/// value counts as 0, as the model scores it.
#[derive(Debug, Clone, PartialEq)]
pub struct DriftReference {
    features: Vec<String>,
    /// Every feature's edges, one after the other: feature `f`'s are
    /// `edges[edge_at[f]..edge_at[f + 1]]`.
    edges: Vec<f32>,
    edge_at: Vec<usize>,
    /// Every feature's bin shares, one after the other; feature `f` has its edges + 1 bins,
    /// from `bin_at[f]`.
    shares: Vec<f64>,
    bin_at: Vec<usize>,
    flows: u64,
    population: String,
    path: PathBuf,
}

impl DriftReference {
    /// The reference of the model in `model_dir` (which holds `model.yaml`): `Ok(None)` when
    /// the model ships none. Refused when the file does not describe this model's features in
    /// this order, or is malformed: a stale reference would report drift of the wrong columns.
    pub fn load(model_dir: &Path) -> Result<Option<DriftReference>, InferenceError> {
        DriftReference::for_model(&ModelSpec::load(&model_dir.join("model.yaml"))?)
    }

    /// As [`load`](Self::load), for a spec already read: `drift.yaml` in `spec.dir`.
    pub fn for_model(spec: &ModelSpec) -> Result<Option<DriftReference>, InferenceError> {
        let path = spec.dir.join(DRIFT_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(InferenceError::Io { path, source }),
        };
        DriftReference::parse(&text, &path, &spec.features).map(Some)
    }

    fn parse(text: &str, path: &Path, features: &[String]) -> Result<DriftReference, InferenceError> {
        let raw: RawReference = serde_yaml_ng::from_str(text)
            .map_err(|source| InferenceError::Yaml { path: path.to_owned(), source })?;
        let bad = |m: String| InferenceError::Spec(format!("{}: {m}", path.display()));
        let names: Vec<&str> = raw.bins.iter().map(|b| b.name.as_str()).collect();
        if names != features {
            let i = names.iter().zip(features).position(|(a, b)| a != b).unwrap_or(names.len().min(features.len()));
            return Err(bad(format!(
                "feature {i} is {:?}, the model's is {:?} ({} features, the model has {})",
                names.get(i).copied().unwrap_or("<none>"),
                features.get(i).map_or("<none>", String::as_str),
                names.len(),
                features.len()
            )));
        }
        let computed = features_sha256(features);
        if raw.features.sha256.trim().to_ascii_lowercase() != computed {
            return Err(bad(format!("features.sha256 is {}, the feature list hashes to {computed}", raw.features.sha256)));
        }
        let mut r = DriftReference {
            features: features.to_vec(),
            edges: Vec::new(),
            edge_at: vec![0],
            shares: Vec::new(),
            bin_at: vec![0],
            flows: raw.flows,
            population: raw.population,
            path: path.to_owned(),
        };
        for b in &raw.bins {
            if b.edges.iter().any(|e| !e.is_finite()) || b.edges.windows(2).any(|w| w[0] as f32 >= w[1] as f32) {
                return Err(bad(format!("{:?}: edges must be finite and ascending", b.name)));
            }
            if b.shares.len() != b.edges.len() + 1 {
                return Err(bad(format!("{:?}: {} shares for {} edges (one more is needed)", b.name, b.shares.len(), b.edges.len())));
            }
            let sum: f64 = b.shares.iter().sum();
            if b.shares.iter().any(|s| !(0.0..=1.0).contains(s)) || (sum - 1.0).abs() > 1e-3 {
                return Err(bad(format!("{:?}: shares must lie in [0, 1] and sum to 1 (they sum to {sum})", b.name)));
            }
            // The edges were written as the decimal form of float32 values, so this is exact.
            r.edges.extend(b.edges.iter().map(|&e| e as f32));
            r.edge_at.push(r.edges.len());
            r.shares.extend(&b.shares);
            r.bin_at.push(r.shares.len());
        }
        Ok(r)
    }

    /// The model's features, in its order.
    pub fn features(&self) -> &[String] {
        &self.features
    }

    /// Number of training flows the shares were computed from.
    pub fn flows(&self) -> u64 {
        self.flows
    }

    /// Which flows the reference describes, as the file says.
    pub fn population(&self) -> &str {
        &self.population
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Edges of feature `f`.
    pub fn edges(&self, f: usize) -> &[f32] {
        &self.edges[self.edge_at[f]..self.edge_at[f + 1]]
    }

    /// Training shares of feature `f`'s bins.
    pub fn shares(&self, f: usize) -> &[f64] {
        &self.shares[self.bin_at[f]..self.bin_at[f + 1]]
    }

    /// The bin of feature `f` that `v` falls in.
    #[inline]
    pub fn bin(&self, f: usize, v: f32) -> usize {
        let v = if v.is_finite() { v } else { 0.0 };
        // A count rather than a binary search: a feature has a dozen edges or fewer (shipped references),
        // and a branch-free pass over them is faster than the mispredicted branches of a search.
        self.edges(f).iter().map(|&e| usize::from(e <= v)).sum()
    }

    /// PSI of each feature, in the model's order, written into `out`; no minimum of flows
    /// (see [`psi`]). All zeros for empty counts.
    pub fn psi_into(&self, counts: &DriftCounts, out: &mut Vec<f64>) {
        assert_eq!(counts.counts.len(), self.shares.len(), "counts of another reference");
        out.clear();
        if counts.flows == 0 {
            out.resize(self.features.len(), 0.0);
            return;
        }
        let n = counts.flows as f64;
        for f in 0..self.features.len() {
            let range = self.bin_at[f]..self.bin_at[f + 1];
            let psi = self.shares[range.clone()]
                .iter()
                .zip(&counts.counts[range])
                .map(|(&e, &c)| {
                    let e = e.max(EMPTY_BIN);
                    let a = (c as f64 / n).max(EMPTY_BIN);
                    (a - e) * (a / e).ln()
                })
                .sum();
            out.push(psi);
        }
    }
}

/// PSI per feature, largest first, of the flows in `counts` against the reference; `None`
/// below [`MIN_FLOWS`] flows, where chance alone would reach moderate levels.
pub fn psi(reference: &DriftReference, counts: &DriftCounts) -> Option<Vec<(String, f64)>> {
    if counts.flows < MIN_FLOWS {
        return None;
    }
    let mut v = Vec::new();
    reference.psi_into(counts, &mut v);
    Some(sorted(reference, &v))
}

fn sorted(reference: &DriftReference, psi: &[f64]) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> = reference.features.iter().cloned().zip(psi.iter().copied()).collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    out
}

/// Live flows counted into a reference's bins. One per worker: adding a row is a binary search
/// per feature into the reference's edges and an increment, nothing allocated.
#[derive(Debug, Clone)]
pub struct DriftCounts {
    reference: Arc<DriftReference>,
    /// The row column of each model feature, for extractor rows; `None`: rows in model order.
    columns: Option<Vec<usize>>,
    /// Per feature, per bin, in the reference's layout.
    counts: Vec<u64>,
    flows: u64,
}

impl DriftCounts {
    /// Counts for rows in the model's feature order (what the model's graphs take).
    pub fn model_rows(reference: &Arc<DriftReference>) -> DriftCounts {
        DriftCounts { reference: reference.clone(), columns: None, counts: vec![0; reference.shares.len()], flows: 0 }
    }

    /// Counts for extractor rows (a `FeatureBatch`'s rows, the columns named `extractor`),
    /// each model feature read from its column. Refused, naming the feature, when the
    /// extractor does not produce one of the model's features.
    pub fn extractor_rows(reference: &Arc<DriftReference>, extractor: &[&str]) -> Result<DriftCounts, InferenceError> {
        let columns = reference
            .features
            .iter()
            .enumerate()
            .map(|(index, name)| {
                extractor.iter().position(|e| e == name).ok_or_else(|| InferenceError::FeatureMismatch {
                    index,
                    expected: extractor.get(index).copied().unwrap_or("<end of extractor list>").to_owned(),
                    found: name.clone(),
                })
            })
            .collect::<Result<Vec<usize>, _>>()?;
        let identity = columns.len() == extractor.len() && columns.iter().enumerate().all(|(i, &c)| i == c);
        Ok(DriftCounts { columns: (!identity).then_some(columns), ..DriftCounts::model_rows(reference) })
    }

    /// Counts one flow. Panics when the row is narrower than the columns it should hold: that
    /// is a wiring bug, not data.
    #[inline]
    pub fn add_row(&mut self, row: &[f32]) {
        let r = &*self.reference;
        for f in 0..r.features.len() {
            let v = match &self.columns {
                Some(c) => row[c[f]],
                None => row[f],
            };
            self.counts[r.bin_at[f] + r.bin(f, v)] += 1;
        }
        self.flows += 1;
    }

    /// Counts every row of the batch.
    pub fn add_batch(&mut self, batch: &FeatureBatch) {
        for i in 0..batch.len() {
            self.add_row(batch.row(i));
        }
    }

    /// Adds another worker's counts (of the same reference) to these.
    pub fn merge(&mut self, other: &DriftCounts) {
        assert_eq!(self.counts.len(), other.counts.len(), "counts of another reference");
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.flows += other.flows;
    }

    /// Forgets every flow, keeping the allocation.
    pub fn clear(&mut self) {
        self.counts.fill(0);
        self.flows = 0;
    }

    /// Number of flows counted.
    pub fn flows(&self) -> u64 {
        self.flows
    }

    /// Flows in each bin of feature `f`.
    pub fn bins(&self, f: usize) -> &[u64] {
        &self.counts[self.reference.bin_at[f]..self.reference.bin_at[f + 1]]
    }

    pub fn reference(&self) -> &Arc<DriftReference> {
        &self.reference
    }
}

/// How [`DriftMonitor`] cuts windows and when it alerts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DriftConfig {
    /// A window closes once it holds this many flows...
    pub window_flows: u64,
    /// ...or once it is this old, if it holds at least `min_flows` by then. A window that is
    /// old but short of `min_flows` stays open, so a quiet link is measured over a longer
    /// window rather than never.
    pub window: Duration,
    /// A feature alerts when its PSI reaches this.
    pub threshold: f64,
    /// A feature that alerted is cleared (and may alert again) only when its PSI falls below
    /// this, lower than `threshold`, so that one hovering at the threshold alerts once.
    pub clear_below: f64,
    /// Windows with fewer flows are not measured (see [`MIN_FLOWS`]).
    pub min_flows: u64,
}

impl Default for DriftConfig {
    fn default() -> DriftConfig {
        DriftConfig {
            window_flows: 10_000,
            window: Duration::from_secs(60),
            threshold: DEFAULT_THRESHOLD,
            clear_below: 0.8 * DEFAULT_THRESHOLD,
            min_flows: MIN_FLOWS,
        }
    }
}

/// The figures of a closed window.
#[derive(Debug, Clone, PartialEq)]
pub struct DriftWindow {
    pub flows: u64,
    /// When it closed, on the caller's clock.
    pub closed_at: Duration,
    /// PSI per feature, largest first.
    pub features: Vec<(String, f64)>,
}

/// Features that crossed the threshold in the window just closed, and features that fell
/// back below `clear_below`.
#[derive(Debug, Clone, PartialEq)]
pub struct DriftEvent {
    pub flows: u64,
    pub threshold: f64,
    /// Newly drifted features with their PSI, largest first.
    pub crossed: Vec<(String, f64)>,
    /// Features no longer drifted, with their PSI.
    pub cleared: Vec<(String, f64)>,
}

/// Windows of live flows against the reference: the writer (one thread) merges the workers'
/// counts into it, about once a second, and reads the last window for the console and the
/// metrics.
#[derive(Debug)]
pub struct DriftMonitor {
    reference: Arc<DriftReference>,
    config: DriftConfig,
    window: DriftCounts,
    opened: Option<Duration>,
    last: Option<DriftWindow>,
    drifted: Vec<bool>,
    psi: Vec<f64>,
}

impl DriftMonitor {
    pub fn new(reference: Arc<DriftReference>, config: DriftConfig) -> DriftMonitor {
        DriftMonitor {
            window: DriftCounts::model_rows(&reference),
            drifted: vec![false; reference.features.len()],
            psi: Vec::with_capacity(reference.features.len()),
            reference,
            config,
            opened: None,
            last: None,
        }
    }

    /// Adds counts to the open window and closes it if it is due (see [`DriftConfig`]).
    /// `now` is any monotonic clock of the caller's (time since start, or packet time when
    /// replaying). Returns an event when a feature crossed or cleared.
    pub fn add(&mut self, counts: &DriftCounts, now: Duration) -> Option<DriftEvent> {
        self.window.merge(counts);
        self.tick(now)
    }

    /// Closes the open window if it is due, without new flows.
    pub fn tick(&mut self, now: Duration) -> Option<DriftEvent> {
        let opened = *self.opened.get_or_insert(now);
        let n = self.window.flows;
        let due = n >= self.config.window_flows.max(1)
            || (n >= self.config.min_flows.max(1) && now.saturating_sub(opened) >= self.config.window);
        if !due {
            return None;
        }
        self.reference.psi_into(&self.window, &mut self.psi);
        let mut event = DriftEvent { flows: n, threshold: self.config.threshold, crossed: Vec::new(), cleared: Vec::new() };
        for (f, &p) in self.psi.iter().enumerate() {
            let name = &self.reference.features[f];
            if !self.drifted[f] && p >= self.config.threshold {
                self.drifted[f] = true;
                event.crossed.push((name.clone(), p));
            } else if self.drifted[f] && p < self.config.clear_below {
                self.drifted[f] = false;
                event.cleared.push((name.clone(), p));
            }
        }
        event.crossed.sort_by(|a, b| b.1.total_cmp(&a.1));
        self.last = Some(DriftWindow { flows: n, closed_at: now, features: sorted(&self.reference, &self.psi) });
        self.window.clear();
        self.opened = Some(now);
        (!event.crossed.is_empty() || !event.cleared.is_empty()).then_some(event)
    }

    /// Flows in the open window.
    pub fn window_flows(&self) -> u64 {
        self.window.flows
    }

    /// The last closed window, once one has.
    pub fn last(&self) -> Option<&DriftWindow> {
        self.last.as_ref()
    }

    /// Why there are no figures yet, while no window has closed.
    pub fn unavailable(&self) -> Option<String> {
        self.last.is_none().then(|| {
            format!("{} of the {} flows a first measurement needs", self.window.flows, self.config.min_flows.max(1))
        })
    }

    /// Features past the threshold and not yet cleared.
    pub fn drifted(&self) -> impl Iterator<Item = &str> + '_ {
        self.reference.features.iter().zip(&self.drifted).filter(|(_, &d)| d).map(|(f, _)| f.as_str())
    }

    pub fn config(&self) -> &DriftConfig {
        &self.config
    }

    pub fn reference(&self) -> &Arc<DriftReference> {
        &self.reference
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two features: `u` uniform-binned on 1..=9 (ten bins of 0.1), `c` constant 0 (bins
    /// below 0, {0}, above 0).
    fn reference() -> Arc<DriftReference> {
        let names = ["u", "c"];
        let yaml = format!(
            "kind: drift reference\nfeatures: {{count: 2, sha256: {}}}\nflows: 1000\npopulation: test\nbins:\n\
             - {{name: u, edges: [1, 2, 3, 4, 5, 6, 7, 8, 9], shares: [0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]}}\n\
             - {{name: c, edges: [0.0, 1.401298464324817e-45], shares: [0.0, 1.0, 0.0]}}\n",
            features_sha256(&names)
        );
        let features: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        Arc::new(DriftReference::parse(&yaml, Path::new("drift.yaml"), &features).unwrap())
    }

    /// A deterministic uniform sample on [lo, lo + 10): a low-discrepancy sequence, so the
    /// test does not depend on a random generator's luck.
    fn uniform(n: usize, lo: f32) -> impl Iterator<Item = f32> {
        (0..n).map(move |i| lo + 10.0 * ((i as f64 * 0.618_033_988_749_895) % 1.0) as f32)
    }

    #[test]
    fn bins_follow_the_edges() {
        let r = reference();
        // (feature, value, bin)
        for (f, v, b) in [(0, 0.5, 0), (0, 1.0, 1), (0, 8.99, 8), (0, 9.0, 9), (0, 1e30, 9), (1, -1.0, 0), (1, 0.0, 1), (1, 1e-30, 2)] {
            assert_eq!(r.bin(f, v), b, "feature {f} value {v}");
        }
        // Non-finite values count as 0, as the model scores them.
        assert_eq!(r.bin(1, f32::NAN), 1);
        assert_eq!(r.bin(0, f32::INFINITY), 0);
    }

    #[test]
    fn a_sample_of_the_reference_scores_near_zero_and_a_shifted_one_high() {
        let r = reference();
        let mut same = DriftCounts::model_rows(&r);
        for v in uniform(2000, 0.0) {
            same.add_row(&[v, 0.0]);
        }
        let p = psi(&r, &same).unwrap();
        assert!(p.iter().all(|(_, v)| *v < 0.01), "{p:?}");

        let mut shifted = DriftCounts::model_rows(&r);
        for (i, v) in uniform(2000, 3.0).enumerate() {
            shifted.add_row(&[v, if i % 5 == 0 { 2.0 } else { 0.0 }]);
        }
        let p = psi(&r, &shifted).unwrap();
        eprintln!("shifted: {p:?}");
        assert_eq!(p[0].0, "u", "largest first: {p:?}");
        assert!(p[0].1 > 1.0, "{p:?}");
        // A fifth of a constant feature's flows off its value is a significant shift.
        assert!(p[1].1 > DEFAULT_THRESHOLD, "{p:?}");
    }

    #[test]
    fn too_few_flows_are_not_measured() {
        let r = reference();
        let mut c = DriftCounts::model_rows(&r);
        assert_eq!(psi(&r, &c), None);
        let mut v = Vec::new();
        r.psi_into(&c, &mut v);
        assert_eq!(v, [0.0, 0.0], "an empty window is no drift");
        for x in uniform(MIN_FLOWS as usize - 1, 0.0) {
            c.add_row(&[x, 0.0]);
        }
        assert_eq!(psi(&r, &c), None);
        c.add_row(&[5.0, 0.0]);
        assert!(psi(&r, &c).is_some());
    }

    #[test]
    fn extractor_rows_are_read_by_name_and_counts_merge() {
        let r = reference();
        let mut model = DriftCounts::model_rows(&r);
        let mut a = DriftCounts::extractor_rows(&r, &["x", "c", "u"]).unwrap();
        let mut b = a.clone();
        for (i, v) in uniform(100, 0.0).enumerate() {
            model.add_row(&[v, 0.0]);
            let w = if i % 2 == 0 { &mut a } else { &mut b };
            w.add_row(&[99.0, f32::NAN, v]);
        }
        a.merge(&b);
        assert_eq!((a.flows(), a.bins(0), a.bins(1)), (model.flows(), model.bins(0), model.bins(1)));
        a.clear();
        assert_eq!((a.flows(), a.bins(0).iter().sum::<u64>()), (0, 0));
        let missing = DriftCounts::extractor_rows(&r, &["u", "x"]).unwrap_err();
        assert!(matches!(missing, InferenceError::FeatureMismatch { index: 1, .. }), "{missing}");
    }

    #[test]
    fn malformed_or_stale_references_are_refused() {
        let features: Vec<String> = vec!["u".into()];
        let sha = features_sha256(&features);
        let good = format!("features: {{sha256: {sha}}}\nbins:\n- {{name: u, edges: [1, 2], shares: [0.25, 0.5, 0.25]}}\n");
        assert!(DriftReference::parse(&good, Path::new("d"), &features).is_ok());
        for bad in [
            good.replace("[1, 2]", "[2, 1]"),
            good.replace("[1, 2]", "[1, .inf]"),
            good.replace("0.25, 0.5, 0.25", "0.5, 0.5"),
            good.replace("0.25, 0.5, 0.25", "0.25, 0.5, 0.5"),
            good.replace("name: u", "name: v"),
            good.replace(&sha, &features_sha256(&["v"])),
        ] {
            let e = DriftReference::parse(&bad, Path::new("d"), &features);
            assert!(matches!(e, Err(InferenceError::Spec(_))), "{bad}: {e:?}");
        }
    }

    #[test]
    fn the_monitor_alerts_once_per_crossing_with_hysteresis() {
        let r = reference();
        let config = DriftConfig { window_flows: 1000, window: Duration::from_secs(10), ..DriftConfig::default() };
        let mut m = DriftMonitor::new(r.clone(), config);
        assert!(m.unavailable().is_some());
        // A window of `off` flows (of 1000) with the constant feature at 1 instead of 0.
        let window = |off: usize| {
            let mut c = DriftCounts::model_rows(&r);
            for (i, v) in uniform(1000, 0.0).enumerate() {
                c.add_row(&[v, if i < off { 1.0 } else { 0.0 }]);
            }
            c
        };
        let t = Duration::from_secs;
        assert_eq!(m.add(&window(0), t(1)), None);
        assert!(m.unavailable().is_none() && m.last().unwrap().flows == 1000);
        let e = m.add(&window(100), t(2)).expect("10 % off a constant crosses 0.25");
        assert_eq!(e.crossed.len(), 1, "{e:?}");
        assert_eq!(e.crossed[0].0, "c");
        assert_eq!(m.drifted().collect::<Vec<_>>(), ["c"]);
        // Still drifted, then hovering between clear_below and the threshold: no new event.
        assert_eq!(m.add(&window(100), t(3)), None);
        let hover = window(40);
        let mut v = Vec::new();
        r.psi_into(&hover, &mut v);
        assert!(v[1] > config.clear_below && v[1] < config.threshold, "pick a hovering level: {v:?}");
        assert_eq!(m.add(&hover, t(4)), None);
        let e = m.add(&window(0), t(5)).expect("back to the reference clears");
        assert_eq!((e.crossed.len(), e.cleared.len()), (0, 1));
        assert_eq!(m.drifted().count(), 0);

        // Windows close by age only with enough flows.
        let sample = |n: usize| {
            let mut c = DriftCounts::model_rows(&r);
            for v in uniform(n, 0.0) {
                c.add_row(&[v, 0.0]);
            }
            c
        };
        assert_eq!(m.add(&sample(100), t(100)), None);
        assert_eq!(m.window_flows(), 100, "old but short of min_flows: still open");
        assert_eq!(m.add(&sample(500), t(101)), None);
        assert_eq!(m.window_flows(), 0, "closed once it held min_flows");
        assert_eq!(m.last().unwrap().flows, 600);
    }
}
