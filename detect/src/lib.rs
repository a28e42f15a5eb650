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
//! let (engine, warnings) = Engine::build(rules, &DetectConfig::default());
//! let engine = Arc::new(engine);                        // Send + Sync, shared by workers
//! let mut scratch = engine.new_scratch();               // one per worker thread
//! let mut fd = engine.new_flow();                       // one per flow, kept with it
//! let verdict = engine.inspect(&pkt, Some(&mut fd), &mut scratch, &mut alerts);
//! // in the single ordered writer, for alerts with global_threshold set:
//! if table.admit(&engine, &alert, &meta.key.src, &meta.key.dst) { write(alert) }
//! ```
//!
//! [`PacketInput::stream`] is `Some` when the reassembler took this packet's segment into
//! the stream (Suricata's `PKT_STREAM_ADD`), holding the bytes that became in order with it
//! (possibly none); `None` means the packet is inspected on its own payload only.

mod bytes;
mod compile;
mod engine;
mod header;
mod payload;
mod prefilter;
mod threshold;

pub use engine::{
    Alert, BuildWarning, DetectConfig, Engine, EngineStats, FlowDetect, PacketInput, PrefilterKind, RuleId, Scratch,
    Verdict,
};
pub use portcullis_rules::{Action, Rule};
pub use threshold::ThresholdTable;
