//! The one error type of this crate: failures to load or run a model, never a verdict on a
//! flow.

use std::path::PathBuf;

/// Why a model could not be loaded or a batch could not be scored.
#[derive(Debug, thiserror::Error)]
pub enum InferenceError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: invalid model spec: {source}")]
    Yaml { path: PathBuf, source: serde_yaml_ng::Error },
    /// The model was trained on features in a different order, or under different names,
    /// than the extractor produces; scoring would silently use the wrong columns.
    #[error(
        "model feature {index} is {found:?}, but the extractor has no feature of that name \
         (expected {expected:?} at that position)"
    )]
    FeatureMismatch { index: usize, expected: String, found: String },
    #[error("model feature list hashes to {computed}, model.yaml says {declared}")]
    FeatureHash { declared: String, computed: String },
    #[error("invalid model spec: {0}")]
    Spec(String),
    #[error("{path}: {message}")]
    Onnx { path: PathBuf, message: String },
    #[error("scoring failed: {0}")]
    Run(String),
    /// The CUDA backend cannot load the model or run here.
    #[error(transparent)]
    Gpu(#[from] crate::gpu::GpuError),
}
