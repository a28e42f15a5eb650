//! The seam between the flow workers and the signature engine.
//!
//! Workers call an [`Inspector`] once per packet with what the engine needs (the packet's
//! meta, its payload bytes, its direction, `flow:established`, the flow's own detection
//! state), and get back alerts and a verdict. The types mirror `portcullis-detect`'s
//! `PacketInput`, `Alert` and `Verdict` field for field, so that plugging the engine in is one
//! `impl Inspector for Engine` beside them; until then the engine is generic, and the unit
//! tests drive it with a fake.

use portcullis_common::{Direction, PacketMeta, Timestamp};
use portcullis_eve::AlertRule;
pub use portcullis_rules::Action;

/// One packet, as the engine inspects it.
#[derive(Clone, Copy, Debug)]
pub struct PacketInput<'a> {
    pub meta: &'a PacketMeta,
    /// The transport payload (of the reassembled datagram, or of the innermost packet of a
    /// tunnel).
    pub payload: &'a [u8],
    pub ip_id: u16,
    pub icmp_id: u16,
    pub icmp_seq: u16,
    /// Direction within its flow; `None` for a packet without one.
    pub dir: Option<Direction>,
    /// Suricata's `flow:established` for this packet.
    pub established: bool,
    /// Stream bytes newly reassembled by this packet, and where they start in the stream.
    /// Always `None` until the TCP reassembler is plugged in.
    pub stream: Option<&'a [u8]>,
    pub stream_offset: u64,
}

/// One rule that matched a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Alert {
    /// The engine's index of the rule ([`Inspector::rule`] describes it).
    pub rule: u32,
    pub sid: u32,
    pub gid: u32,
    pub rev: u32,
    pub action: Action,
    pub pcap_cnt: u64,
    pub ts: Timestamp,
    pub dir: Option<Direction>,
    pub from_stream: bool,
    /// Subject to a threshold counted across flows (by source, destination or rule): the
    /// single ordered writer decides, through [`Inspector::admit`], whether it is written, so
    /// the outcome never depends on how flows are spread over workers.
    pub global_threshold: bool,
}

/// What is to become of a packet (and its flow) after inspection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Discard this packet (acted on only with `--simulate-ips`).
    pub drop: bool,
    /// Discard every later packet of its flow too.
    pub drop_flow: bool,
    /// Inspect no later packet of its flow.
    pub pass_flow: bool,
}

/// A signature engine as the workers and the writer use it. One value is shared by all
/// threads; per-worker and per-flow state live in the associated types.
pub trait Inspector: Send + Sync + 'static {
    /// Detection state kept with each flow (flowbits, per-flow thresholds).
    type Flow: Send + 'static;
    /// Per-worker scratch space, so inspection does not allocate.
    type Scratch: Send + 'static;
    /// Thresholds counted across flows, owned by the writer.
    type Threshold: Send + 'static;

    fn new_flow(&self) -> Self::Flow;
    fn new_scratch(&self) -> Self::Scratch;
    fn new_threshold(&self) -> Self::Threshold;
    /// Matches the rules against one packet, appending alerts in rule order.
    fn inspect(&self, pkt: &PacketInput<'_>, flow: Option<&mut Self::Flow>, scratch: &mut Self::Scratch, alerts: &mut Vec<Alert>) -> Verdict;
    /// Whether an alert with `global_threshold` is written; called in output order.
    fn admit(&self, t: &mut Self::Threshold, alert: &Alert, src: &[u8; 16], dst: &[u8; 16]) -> bool;
    /// What an alert's EVE event says about its rule.
    fn rule(&self, alert: &Alert) -> AlertRule<'_>;
}

/// The inspector of a replay without rules: it has no values, so a replay generic over it
/// never inspects anything.
#[derive(Debug)]
pub enum NoRules {}

impl Inspector for NoRules {
    type Flow = ();
    type Scratch = ();
    type Threshold = ();

    fn new_flow(&self) {
        match *self {}
    }
    fn new_scratch(&self) {
        match *self {}
    }
    fn new_threshold(&self) {
        match *self {}
    }
    fn inspect(&self, _: &PacketInput<'_>, _: Option<&mut ()>, _: &mut (), _: &mut Vec<Alert>) -> Verdict {
        match *self {}
    }
    fn admit(&self, _: &mut (), _: &Alert, _: &[u8; 16], _: &[u8; 16]) -> bool {
        match *self {}
    }
    fn rule(&self, _: &Alert) -> AlertRule<'_> {
        match *self {}
    }
}
