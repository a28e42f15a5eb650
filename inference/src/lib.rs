//! Flow scoring. This crate owns the model spec (`model.yaml`: feature names, hash, classes,
//! thresholds) and its check against the extractor's feature names, the `Scorer` that turns
//! a `FeatureBatch` of extractor rows into one `Score` per flow with a backend chosen once
//! (tract-onnx on the CPU, or a native flat evaluator of the ONNX tree ensemble), the
//! explanation of alerting flows, and the `Batcher` that collects rows from producer threads
//! over bounded channels, flushes on size or age and keeps a latency histogram. Input:
//! fixed-width `f32` rows named by the caller (`portcullis_flowtable::FEATURE_NAMES`); this
//! crate never depends on `flowtable` or `dataplane` and never sees packets. It starts no long-lived
//! threads: the engine runs `Batcher::run` on a thread of its own; `Scorer::set_threads`
//! splits one large batch across scoped threads that end with the call.
//!
//! The `gpu` module holds the CUDA backend (feature `cuda`; `choose_backend` picks it for
//! `auto` when a driver and device are present), the conversion of the models into the
//! kernels' layout, and a CPU run of the kernels for the tests (feature `cpu-shim`).
//!
//! Not here: the policy that turns alerts into verdicts.

mod batcher;
pub mod dataset;
mod drift;
mod error;
pub mod gpu;
mod scorer;
mod spec;
pub mod synthetic;
mod tree;

pub use batcher::{Batcher, BatcherConfig, BatcherStats, FlushReason, Producer, ScoredBatch, WhenFull};
pub use drift::{
    psi, DriftConfig, DriftCounts, DriftEvent, DriftMonitor, DriftReference, DriftWindow, DEFAULT_THRESHOLD, DRIFT_FILE,
    EMPTY_BIN, MIN_FLOWS, NO_REFERENCE,
};
pub use error::InferenceError;
pub use scorer::{choose_backend, Backend, BackendChoice, Contribution, Explanation, FeatureBatch, Reference, Score, Scorer, PARALLEL_MIN_ROWS};
pub use spec::{features_sha256, newest_version, FeatureMap, ModelSpec, Thresholds};
pub use tree::{Ablation, ClassLabels, TreeEnsemble};
