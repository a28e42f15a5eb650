//! The seam between the flow workers and the signature engine.
//!
//! Workers call an [`Inspector`] once per packet with what the engine needs (the packet's
//! meta, its payload bytes, its direction, `flow:established`, the flow's own detection
//! state), and get back alerts and a verdict. The types mirror `portcullis-detect`'s
//! `PacketInput`, `Alert` and `Verdict` field for field; [`Detect`] is the engine behind the
//! seam, and the unit tests drive the replay with fakes through the same trait.

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
    /// TCP: the bytes of this packet's direction that became in order with it (possibly none;
    /// `None` when the segment was not taken into the stream), and their stream offset.
    pub stream: Option<&'a [u8]>,
    pub stream_offset: u64,
    /// A flow-end pseudo packet: stream data only (see `portcullis_detect::PacketInput`).
    pub pseudo: bool,
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

/// The signature engine (`portcullis-detect`) behind the seam. The two sets of types carry
/// the same fields; converting is a copy per packet and per alert.
#[derive(Debug)]
pub struct Detect {
    engine: portcullis_detect::Engine,
}

impl Detect {
    pub fn new(engine: portcullis_detect::Engine) -> Self {
        Detect { engine }
    }

    pub fn engine(&self) -> &portcullis_detect::Engine {
        &self.engine
    }

    fn theirs(a: &Alert) -> portcullis_detect::Alert {
        portcullis_detect::Alert {
            rule: portcullis_detect::RuleId(a.rule),
            sid: a.sid,
            gid: a.gid,
            rev: a.rev,
            action: a.action,
            pcap_cnt: a.pcap_cnt,
            ts: a.ts,
            dir: a.dir,
            from_stream: a.from_stream,
            global_threshold: a.global_threshold,
        }
    }
}

impl Inspector for Detect {
    type Flow = portcullis_detect::FlowDetect;
    /// The engine's scratch and its alert queue, reused for every packet.
    type Scratch = (portcullis_detect::Scratch, Vec<portcullis_detect::Alert>);
    type Threshold = portcullis_detect::ThresholdTable;

    fn new_flow(&self) -> Self::Flow {
        self.engine.new_flow()
    }
    fn new_scratch(&self) -> Self::Scratch {
        (self.engine.new_scratch(), Vec::new())
    }
    fn new_threshold(&self) -> Self::Threshold {
        portcullis_detect::ThresholdTable::new()
    }
    fn inspect(&self, pkt: &PacketInput<'_>, flow: Option<&mut Self::Flow>, scratch: &mut Self::Scratch, alerts: &mut Vec<Alert>) -> Verdict {
        let input = portcullis_detect::PacketInput {
            meta: pkt.meta,
            payload: pkt.payload,
            ip_id: pkt.ip_id,
            icmp_id: pkt.icmp_id,
            icmp_seq: pkt.icmp_seq,
            dir: pkt.dir,
            established: pkt.established,
            stream: pkt.stream,
            stream_offset: pkt.stream_offset,
            pseudo: pkt.pseudo,
        };
        let (s, found) = scratch;
        found.clear();
        let v = self.engine.inspect(&input, flow, s, found);
        alerts.extend(found.iter().map(|a| Alert {
            rule: a.rule.0,
            sid: a.sid,
            gid: a.gid,
            rev: a.rev,
            action: a.action,
            pcap_cnt: a.pcap_cnt,
            ts: a.ts,
            dir: a.dir,
            from_stream: a.from_stream,
            global_threshold: a.global_threshold,
        }));
        Verdict { drop: v.drop, drop_flow: v.drop_flow, pass_flow: v.pass_flow }
    }
    fn admit(&self, t: &mut Self::Threshold, alert: &Alert, src: &[u8; 16], dst: &[u8; 16]) -> bool {
        t.admit(&self.engine, &Self::theirs(alert), src, dst)
    }
    fn rule(&self, alert: &Alert) -> AlertRule<'_> {
        let r = self.engine.rule(portcullis_detect::RuleId(alert.rule));
        AlertRule { gid: r.gid, sid: r.sid, rev: r.rev, msg: &r.msg, category: &r.category, severity: r.priority, metadata: &r.metadata }
    }
}
