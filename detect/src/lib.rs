//! Detection. This crate owns the signature engine: it compiles typed `portcullis-rules`
//! [`Rule`]s into per-protocol rule groups, a multi-pattern prefilter over one fast pattern
//! per rule, and per-rule matchers; it inspects one packet (and the newly reassembled stream
//! bytes of its flow) at a time and reports alerts and the packet's verdict. Per-flow state
//! (flowbits, `by_flow` thresholds, the stream inspection windows, IP-only and pass
//! bookkeeping) lives in a [`FlowDetect`] the caller keeps with the flow; per-thread scratch
//! lives in a [`Scratch`]; the global thresholds live in the one [`ThresholdTable`] of the
//! output thread. It does no I/O and does not allocate per packet once its scratch and flow
//! buffers have grown to their working size.
//!
//! Semantics follow Suricata 7.0.10 where they decide which alerts fire and how many:
//! content inspection with its retry recursion (`payload.rs`), the `byte_*` keywords
//! (`bytes.rs`), header keywords (`header.rs`), fast-pattern choice and signature ordering
//! (`compile.rs`), IP-only rules, raw stream versus packet inspection, pass and action order
//! (`engine.rs`), and thresholds (`threshold.rs`).
//!
//! # The API the replay engine calls
//!
//! ```text
//! Engine::build(rules: Vec<Rule>, cfg: &DetectConfig) -> (Engine, Vec<BuildWarning>)
//! Engine::len(&self) -> usize;  Engine::rule(&self, RuleId) -> &Rule;  Engine::stats()
//! Engine::new_flow(&self) -> FlowDetect      // per flow, kept by the worker with the flow
//! Engine::new_scratch(&self) -> Scratch      // per worker thread, reused
//! Engine::inspect(&self, &PacketInput<'_>, Option<&mut FlowDetect>, &mut Scratch,
//!                 &mut Vec<Alert>) -> Verdict // appends this packet's alerts, engine order
//! ThresholdTable::admit(&mut self, &Engine, &Alert, src: &[u8; 16], dst: &[u8; 16]) -> bool
//! ThresholdTable::expire(&mut self, now: Timestamp)
//! ```
//!
//! `Engine` is `Send + Sync` (share it through an `Arc`). Alerts depend only on the flow's
//! own packets, in order, so they do not depend on the number of workers; the one
//! exception, `by_src`/`by_dst`/`by_rule`/`by_both` thresholds, is decided by the single
//! ordered writer: it calls [`ThresholdTable::admit`] for every alert whose
//! `global_threshold` is set, with the packet's `meta.key.src`/`dst`, and drops the alert
//! when it returns false.
//!
//! [`PacketInput::stream`] is `Some` when the reassembler took this packet's segment into
//! the stream (Suricata's `PKT_STREAM_ADD`), holding the bytes that became in order with it
//! (possibly none) at [`PacketInput::stream_offset`]; `None` means the packet is inspected
//! on its own payload only. Rules whose content may match on TCP (`tcp`, `ip`) inspect the
//! stream window; like Suricata they inspect the packet payload only when the segment was
//! not taken into the stream, when they have `dsize`, `flow:no_stream` or `tcp-pkt`, or
//! when a content has `depth`/`offset` (then both, and both may alert, as Suricata which
//! inspects such a packet on arrival and again as stream once acknowledged).

mod app;
mod bytes;
mod compile;
mod engine;
mod header;
mod iponly;
mod payload;
mod prefilter;
mod threshold;

pub use engine::{
    Alert, BuildWarning, DetectConfig, Engine, EngineStats, FlowDetect, PacketInput, PrefilterKind, RuleId, Scratch,
    Verdict,
};
pub use portcullis_rules::{Action, Rule};
pub use threshold::ThresholdTable;
