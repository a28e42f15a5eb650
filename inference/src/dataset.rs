//! Reading labelled flow rows from CICFlowMeter CSV files (the shared
//! `flows/cicids2017-improved-5000` set) by column name, for tests, benchmarks and the load
//! harness. Not used on the scoring path.

use std::path::{Path, PathBuf};

use crate::InferenceError;

/// Rows of named features with their label, row-major.
#[derive(Debug, Clone, Default)]
pub struct Dataset {
    pub width: usize,
    pub values: Vec<f32>,
    pub labels: Vec<String>,
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn row(&self, i: usize) -> &[f32] {
        &self.values[i * self.width..(i + 1) * self.width]
    }

    /// Every row of every CSV file in `dir`, by the first file's header: the feature names
    /// (in column order) and the rows.
    pub fn read_dir(dir: &Path) -> Result<(Vec<String>, Dataset), InferenceError> {
        let names = header_feature_names(dir)?;
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut all = Dataset::default();
        for f in csv_files(dir) {
            all.read_csv(&f, &refs, usize::MAX)?;
        }
        Ok((names, all))
    }

    /// Every `step`-th row as a batch to score (ids are row indices).
    pub fn batch(&self, step: usize) -> crate::FeatureBatch {
        let step = step.max(1);
        let mut b = crate::FeatureBatch::with_capacity(self.width, self.len() / step + 1);
        for i in (0..self.len()).step_by(step) {
            b.push(i as u64, self.row(i));
        }
        b
    }

    /// Appends the rows of one CSV file (header line first), taking the columns `names` in
    /// that order and the `Label` column. At most `limit` rows. A field that does not parse
    /// as a number (empty, `NaN`, `Infinity`) is read as NaN or infinity, as Rust parses it,
    /// and an empty field as 0.
    pub fn read_csv(&mut self, path: &Path, names: &[&str], limit: usize) -> Result<(), InferenceError> {
        let io = |source| InferenceError::Io { path: path.to_owned(), source };
        let text = std::fs::read_to_string(path).map_err(io)?;
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().unwrap_or("").split(',').collect();
        let col = |name: &str| {
            header.iter().position(|h| h.trim() == name).ok_or_else(|| InferenceError::Onnx {
                path: path.to_owned(),
                message: format!("no column {name:?}"),
            })
        };
        let cols: Vec<usize> = names.iter().map(|n| col(n)).collect::<Result<_, _>>()?;
        let label = col("Label")?;
        if self.width == 0 {
            self.width = names.len();
        }
        assert_eq!(self.width, names.len(), "one width per dataset");
        let mut fields = Vec::with_capacity(header.len());
        for line in lines.take(limit) {
            fields.clear();
            fields.extend(line.split(','));
            if fields.len() != header.len() {
                continue;
            }
            for &c in &cols {
                let f = fields[c].trim();
                self.values.push(if f.is_empty() { 0.0 } else { f.parse().unwrap_or(f32::NAN) });
            }
            self.labels.push(fields[label].trim().to_owned());
        }
        Ok(())
    }
}

/// The shared CICIDS2017 sample directory, when present.
pub fn cicids_dir() -> Option<PathBuf> {
    let data = std::env::var_os("PORTCULLIS_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"));
    let dir = data.join("flows/cicids2017-improved-5000");
    dir.join("HEADER.csv").exists().then_some(dir)
}

/// The CICFlowMeter feature names in `HEADER.csv` order: the columns from `Dst Port` to
/// `Total TCP Flow Time`, less `Timestamp` (the extractor's `FEATURE_NAMES`).
pub fn header_feature_names(dir: &Path) -> Result<Vec<String>, InferenceError> {
    let p = dir.join("HEADER.csv");
    let text = std::fs::read_to_string(&p).map_err(|source| InferenceError::Io { path: p.clone(), source })?;
    let header: Vec<&str> = text.lines().next().unwrap_or("").split(',').map(str::trim).collect();
    let bad = || InferenceError::Onnx { path: p.clone(), message: "no Dst Port … Total TCP Flow Time columns".into() };
    let a = header.iter().position(|h| *h == "Dst Port").ok_or_else(bad)?;
    let b = header.iter().position(|h| *h == "Total TCP Flow Time").ok_or_else(bad)?;
    Ok(header[a..=b].iter().filter(|h| **h != "Timestamp").map(|s| s.to_string()).collect())
}

/// The CSV files of the directory other than `HEADER.csv`, sorted.
pub fn csv_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "csv") && !p.ends_with("HEADER.csv"))
        .collect();
    v.sort();
    v
}
