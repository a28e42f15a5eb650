//! `model.yaml`: what a trained model expects (its feature names in order, their hash, its
//! classes and alert thresholds) and the check that the extractor produces those features.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::InferenceError;

/// Alert thresholds shipped with a model.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Thresholds {
    /// Per class (index into `classes`): a flow alerts when its most probable class is not
    /// the benign class and that class's probability is at least this.
    pub min_probability: Vec<f32>,
    /// A flow alerts when the autoencoder's score is at least this. `None`: the anomaly score
    /// never alerts on its own.
    pub anomaly: Option<f32>,
}

/// What a `model.yaml` says, in the trainer's layout (`training/train.py`): `features.names`,
/// `features.sha256`, `classifier.{file, classes, min_probability}`, `anomaly.{file,
/// threshold}`. Unknown keys (evaluation figures, training notes) are ignored on purpose.
#[derive(Debug, Deserialize)]
struct RawSpec {
    name: String,
    #[serde(deserialize_with = "string_or_number")]
    version: String,
    features: RawFeatures,
    classifier: RawClassifier,
    #[serde(default)]
    anomaly: Option<RawAnomaly>,
    /// Not written by the trainer yet: benign medians in `features.names` order.
    #[serde(default)]
    reference: Option<Vec<f32>>,
}

#[derive(Debug, Deserialize)]
struct RawFeatures {
    names: Vec<String>,
    #[serde(default)]
    sha256: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RawClassifier {
    #[serde(default = "default_classifier")]
    file: String,
    classes: Vec<String>,
    #[serde(default)]
    benign_class: Option<String>,
    /// A map from class name to its minimum, or one number for every class.
    #[serde(default)]
    min_probability: Option<MinProbability>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum MinProbability {
    All(f32),
    PerClass(std::collections::BTreeMap<String, f32>),
}

#[derive(Debug, Deserialize)]
struct RawAnomaly {
    #[serde(default = "default_anomaly")]
    file: String,
    #[serde(default)]
    threshold: Option<f32>,
}

/// A model's contract with the appliance, from its `model.yaml`.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSpec {
    pub name: String,
    pub version: String,
    /// The model's input columns, in the order the ONNX graphs expect them.
    pub features: Vec<String>,
    /// SHA-256 (hex) of the feature names joined by `\n`, so a list edited by hand is caught.
    pub features_sha256: Option<String>,
    /// Class names; index `i` is the classifier's class label `i`.
    pub classes: Vec<String>,
    /// Index of the class that never alerts (`BENIGN` when present, else 0).
    pub benign: usize,
    pub thresholds: Thresholds,
    /// File names of the graphs, relative to `dir`.
    pub classifier: String,
    pub anomaly: Option<String>,
    /// Per-feature reference values of benign traffic (e.g. medians), in `features` order,
    /// used to explain a tree-model alert by perturbation. Optional.
    pub reference: Option<Vec<f32>>,
    /// The directory of the `model.yaml`; graph paths are resolved against it.
    pub dir: PathBuf,
}

/// Minimum class probability for classes the spec does not name.
pub const DEFAULT_MIN_PROBABILITY: f32 = 0.5;

fn default_classifier() -> String {
    "classifier.onnx".into()
}

fn default_anomaly() -> String {
    "anomaly.onnx".into()
}

fn string_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum V {
        S(String),
        I(i64),
        F(f64),
    }
    Ok(match V::deserialize(d)? {
        V::S(s) => s,
        V::I(i) => i.to_string(),
        V::F(f) => f.to_string(),
    })
}

/// The subdirectory of `dir` with a `model.yaml` whose name sorts last by version (`v10`
/// after `v9`).
pub fn newest_version(dir: &Path) -> Option<PathBuf> {
    let key = |p: &Path| {
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let digits: String = name.chars().filter(char::is_ascii_digit).collect();
        (digits.parse::<u64>().unwrap_or(0), name)
    };
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("model.yaml").is_file())
        .max_by_key(|p| key(p))
}

/// SHA-256 (lowercase hex) of the names joined by `\n`: the form `features_sha256` records.
pub fn features_sha256<S: AsRef<str>>(names: &[S]) -> String {
    let joined: Vec<&str> = names.iter().map(|s| s.as_ref()).collect();
    hex(&Sha256::digest(joined.join("\n").as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl ModelSpec {
    /// Reads and validates a `model.yaml`: the hash (when present) must match the feature
    /// list, the class list must be non-empty, the reference vector (when present) must have
    /// one value per feature.
    pub fn load(path: &Path) -> Result<ModelSpec, InferenceError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| InferenceError::Io { path: path.to_owned(), source })?;
        let raw: RawSpec = serde_yaml_ng::from_str(&text)
            .map_err(|source| InferenceError::Yaml { path: path.to_owned(), source })?;
        let classes = raw.classifier.classes;
        let benign = match &raw.classifier.benign_class {
            Some(b) => classes.iter().position(|c| c == b).ok_or_else(|| {
                InferenceError::Spec(format!("benign_class {b:?} is not among the classes"))
            })?,
            None => classes.iter().position(|c| c.eq_ignore_ascii_case("BENIGN")).unwrap_or(0),
        };
        let min_probability = match raw.classifier.min_probability {
            None => vec![DEFAULT_MIN_PROBABILITY; classes.len()],
            Some(MinProbability::All(t)) => vec![t; classes.len()],
            Some(MinProbability::PerClass(m)) => {
                if let Some(unknown) = m.keys().find(|k| !classes.contains(k)) {
                    return Err(InferenceError::Spec(format!("min_probability names unknown class {unknown:?}")));
                }
                classes.iter().map(|c| m.get(c).copied().unwrap_or(DEFAULT_MIN_PROBABILITY)).collect()
            }
        };
        let spec = ModelSpec {
            name: raw.name,
            version: raw.version,
            features: raw.features.names,
            features_sha256: raw.features.sha256,
            classes,
            benign,
            thresholds: Thresholds {
                min_probability,
                anomaly: raw.anomaly.as_ref().and_then(|a| a.threshold),
            },
            classifier: raw.classifier.file,
            anomaly: raw.anomaly.map(|a| a.file),
            reference: raw.reference,
            dir: path.parent().map(Path::to_owned).unwrap_or_default(),
        };
        spec.validate()?;
        Ok(spec)
    }

    /// The checks `load` makes, for a spec built in code.
    pub fn validate(&self) -> Result<(), InferenceError> {
        if self.features.is_empty() {
            return Err(InferenceError::Spec("the model lists no features".into()));
        }
        if self.classes.is_empty() {
            return Err(InferenceError::Spec("the model lists no classes".into()));
        }
        if let Some(declared) = &self.features_sha256 {
            let declared = declared.trim().to_ascii_lowercase();
            let computed = features_sha256(&self.features);
            if declared != computed {
                return Err(InferenceError::FeatureHash { declared, computed });
            }
        }
        if self.thresholds.min_probability.len() != self.classes.len() {
            return Err(InferenceError::Spec("one min_probability per class is needed".into()));
        }
        if self.benign >= self.classes.len() {
            return Err(InferenceError::Spec("the benign class index is out of range".into()));
        }
        if let Some(r) = &self.reference {
            if r.len() != self.features.len() {
                return Err(InferenceError::Spec(format!(
                    "reference has {} values for {} features",
                    r.len(),
                    self.features.len()
                )));
            }
        }
        Ok(())
    }

    /// Path of the classifier graph.
    pub fn classifier_path(&self) -> PathBuf {
        self.dir.join(&self.classifier)
    }

    /// Path of the anomaly graph, when the model has one.
    pub fn anomaly_path(&self) -> Option<PathBuf> {
        self.anomaly.as_ref().map(|a| self.dir.join(a))
    }

    /// Maps the model's features onto the extractor's columns, once. Refused, naming the
    /// first model feature the extractor does not produce, or a feature listed twice.
    pub fn feature_map(&self, extractor: &[&str]) -> Result<FeatureMap, InferenceError> {
        let mut columns = Vec::with_capacity(self.features.len());
        for (index, found) in self.features.iter().enumerate() {
            let expected = extractor.get(index).copied().unwrap_or("<end of extractor list>");
            match extractor.iter().position(|e| e == found) {
                Some(col) if !columns.contains(&col) => columns.push(col),
                Some(_) => {
                    return Err(InferenceError::Spec(format!(
                        "model feature {index} ({found:?}) is listed twice"
                    )))
                }
                None => {
                    return Err(InferenceError::FeatureMismatch {
                        index,
                        expected: expected.to_owned(),
                        found: found.clone(),
                    })
                }
            }
        }
        let identity = columns.len() == extractor.len() && columns.iter().enumerate().all(|(i, &c)| i == c);
        Ok(FeatureMap { columns, extractor_width: extractor.len(), identity })
    }
}

/// Which extractor column feeds each model input, computed once at load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureMap {
    columns: Vec<usize>,
    extractor_width: usize,
    identity: bool,
}

impl FeatureMap {
    /// Extractor column of model input `i`.
    pub fn columns(&self) -> &[usize] {
        &self.columns
    }

    /// Number of columns in an extractor row.
    pub fn extractor_width(&self) -> usize {
        self.extractor_width
    }

    /// Number of model inputs.
    pub fn model_width(&self) -> usize {
        self.columns.len()
    }

    /// True when the model takes the extractor's row as it is, so no gather is needed.
    pub fn is_identity(&self) -> bool {
        self.identity
    }

    /// Writes the model's inputs for one extractor row into `out`. A non-finite value
    /// (a rate over a zero duration) becomes 0, as the models were trained.
    #[inline]
    pub fn gather(&self, row: &[f32], out: &mut [f32]) {
        let clean = |v: f32| if v.is_finite() { v } else { 0.0 };
        if self.identity {
            for (o, &v) in out.iter_mut().zip(row) {
                *o = clean(v);
            }
        } else {
            for (o, &c) in out.iter_mut().zip(&self.columns) {
                *o = clean(row[c]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_version_sorts_by_number() {
        let d = tempfile::tempdir().unwrap();
        for v in ["v1", "v2", "v10", "v11-draft"] {
            std::fs::create_dir(d.path().join(v)).unwrap();
        }
        for v in ["v1", "v2", "v10"] {
            std::fs::write(d.path().join(v).join("model.yaml"), "").unwrap();
        }
        assert_eq!(newest_version(d.path()), Some(d.path().join("v10")));
    }

    fn spec(features: &[&str]) -> ModelSpec {
        ModelSpec {
            name: "t".into(),
            version: "1".into(),
            features: features.iter().map(|s| s.to_string()).collect(),
            features_sha256: None,
            classes: vec!["BENIGN".into(), "DDoS".into()],
            benign: 0,
            thresholds: Thresholds { min_probability: vec![0.5; 2], anomaly: None },
            classifier: default_classifier(),
            anomaly: None,
            reference: None,
            dir: PathBuf::new(),
        }
    }

    const EXTRACTOR: &[&str] = &["Dst Port", "Protocol", "Flow Duration", "Total Fwd Packet"];

    #[test]
    fn schema_checks_name_the_first_difference() {
        // (model features, expected outcome: Ok(columns) or Err((index, expected, found)))
        type Case<'a> = (&'a [&'a str], Result<&'a [usize], (usize, &'a str, &'a str)>);
        let cases: &[Case<'_>] = &[
            (EXTRACTOR, Ok(&[0, 1, 2, 3])),
            (&["Protocol", "Total Fwd Packet"], Ok(&[1, 3])),
            (&["Dst Port", "Protocol", "Flow Duration", "Total Fwd Packets"], Err((3, "Total Fwd Packet", "Total Fwd Packets"))),
            (&["Dst Port", "Proto", "Flow Duration"], Err((1, "Protocol", "Proto"))),
            (&["Dst Port", "Protocol", "Flow Duration", "Total Fwd Packet", "Label"], Err((4, "<end of extractor list>", "Label"))),
        ];
        for (features, want) in cases {
            let got = spec(features).feature_map(EXTRACTOR);
            match (got, want) {
                (Ok(map), Ok(cols)) => assert_eq!(map.columns(), *cols, "{features:?}"),
                (Err(InferenceError::FeatureMismatch { index, expected, found }), Err((i, e, f))) => {
                    assert_eq!((index, expected.as_str(), found.as_str()), (*i, *e, *f));
                    let msg = InferenceError::FeatureMismatch { index, expected, found }.to_string();
                    assert!(msg.contains(&format!("feature {i}")) && msg.contains(f) && msg.contains(e), "{msg}");
                }
                (got, want) => panic!("{features:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn duplicate_features_are_refused() {
        assert!(matches!(spec(&["Protocol", "Protocol"]).feature_map(EXTRACTOR), Err(InferenceError::Spec(_))));
    }

    #[test]
    fn gather_picks_the_mapped_columns() {
        let map = spec(&["Flow Duration", "Dst Port"]).feature_map(EXTRACTOR).unwrap();
        assert!(!map.is_identity());
        let mut out = [0.0; 2];
        map.gather(&[80.0, 6.0, 1234.0, 3.0], &mut out);
        assert_eq!(out, [1234.0, 80.0]);
        assert!(spec(EXTRACTOR).feature_map(EXTRACTOR).unwrap().is_identity());
    }

    #[test]
    fn yaml_is_loaded_and_the_hash_checked() {
        let dir = tempfile::tempdir().unwrap();
        let names = ["Dst Port", "Protocol"];
        // The trainer's layout, with fields this crate does not read.
        let good = format!(
            "name: cicids2017\nversion: 3\nfeatures:\n  names: [\"Dst Port\", \"Protocol\"]\n  count: 2\n  sha256: {}\n\
             classifier:\n  file: classifier.onnx\n  classes: [BENIGN, DDoS, PortScan]\n  min_probability: {{DDoS: 0.7}}\n\
             anomaly:\n  file: anomaly.onnx\n  threshold: 0.25\nevaluation: {{f1: 0.99}}\n",
            features_sha256(&names)
        );
        let p = dir.path().join("model.yaml");
        std::fs::write(&p, &good).unwrap();
        let s = ModelSpec::load(&p).unwrap();
        assert_eq!(s.version, "3");
        assert_eq!(s.thresholds, Thresholds { min_probability: vec![0.5, 0.7, 0.5], anomaly: Some(0.25) });
        assert_eq!(s.classifier_path(), dir.path().join("classifier.onnx"));
        assert_eq!(s.benign, 0);

        let bad = good.replace("[\"Dst Port\", \"Protocol\"]", "[\"Protocol\", \"Dst Port\"]");
        std::fs::write(&p, bad).unwrap();
        assert!(matches!(ModelSpec::load(&p), Err(InferenceError::FeatureHash { .. })));
        let unknown = good.replace("{DDoS: 0.7}", "{DDOS: 0.7}");
        std::fs::write(&p, unknown).unwrap();
        assert!(matches!(ModelSpec::load(&p), Err(InferenceError::Spec(_))));
    }
}
