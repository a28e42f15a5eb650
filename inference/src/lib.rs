//! Flow scoring. This crate will own the `Scorer` interface, the batcher that collects
//! exported flow feature vectors from the workers over bounded channels and flushes them on
//! size or age, the tract-onnx CPU backend (the default) and the CUDA backend behind a cargo
//! feature, and the latency histogram of scoring. Input: fixed-width feature rows from
//! `flowtable`; output: per-flow class probabilities and anomaly scores. It never sees packets
//! and never depends on `dataplane`.
//!
//! Nothing is implemented yet: replay does not score flows, and says so when asked to.
