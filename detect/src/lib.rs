//! Detection. This crate owns the signature engine: it compiles a `portcullis-rules`
//! `RuleSet` into rule groups by protocol, port and direction, a multi-pattern prefilter over
//! one fast pattern per rule, and per-rule matchers; it inspects one packet (and the newly
//! reassembled stream bytes of its flow) at a time and reports alerts and the packet's
//! verdict. Per-flow state (flowbits, by_flow thresholds) lives in a value the caller keeps
//! with the flow. It does no I/O and does not allocate per packet.
