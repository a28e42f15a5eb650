//! Flows. This crate owns the [`FlowTable`]: bidirectional flows keyed by 5-tuple plus VLAN
//! ids, the TCP state machine that moves a flow through Suricata's `new` / `established` /
//! `closed` states, per-protocol and per-state timeouts in packet time, per-direction packet
//! and byte counters, and a memory cap with least-recently-active eviction. Input:
//! [`PacketMeta`](portcullis_common::PacketMeta) from the decoder, one at a time, plus the
//! current time; output: a [`FlowRecord`] for every flow that ends (timeout, TCP port reuse,
//! eviction, shutdown). It does no I/O, makes no syscalls and does not allocate per packet
//! (the table's storage is reserved up front from the memcap). One table is owned by one
//! worker thread; the dispatcher guarantees a flow's packets all reach the same worker.
//!
//! It also owns the learned detector's flow features ([`features`]): [`FlowFeatures`], the
//! CICFlowMeter feature vector of one flow updated in O(1) per packet, and [`CicFlowTable`], a
//! standalone splitter that cuts flows where the corrected CICFlowMeter does, for extracting
//! training-compatible features from captures. `FEATURES.md` defines every feature.
//! With [`FlowConfig::features`] on, the table keeps a `FlowFeatures` per flow and its
//! `*_exporting` methods hand the caller [`FeatureExport`]s: every flow's final vector, and
//! checkpoints of long flows every [`FlowConfig::checkpoint_secs`].

pub mod features;
mod record;
mod table;
mod tcp;
mod timeouts;

pub use features::{CicConfig, CicFlow, CicFlowTable, CicStats, FeatureVector, FlowFeatures, Termination, FEATURE_NAMES, N_FEATURES};
pub use record::{EndReason, FlowRecord, FlowState};
pub use table::{FeatureExport, FlowConfig, FlowSnapshot, FlowStats, FlowTable, LiveFlow, Update};
pub use tcp::TcpState;
pub use timeouts::{ProtoTimeouts, Timeouts};
