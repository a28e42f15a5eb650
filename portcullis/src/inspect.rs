//! The seam between the flow workers and the signature engine.
//!
//! Workers call an [`Inspector`] once per packet with what the engine needs (the packet's
//! meta, its payload bytes, its direction, `flow:established`, the flow's own detection
//! state), and get back alerts and a verdict, in `portcullis-detect`'s own types. [`Detect`]
//! is the engine behind the seam; the unit tests drive the replay with fakes through the
//! same trait.

use portcullis_eve::AlertRule;
pub use portcullis_detect::{Alert, PacketInput, RuleId, Verdict};
pub use portcullis_rules::Action;

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

/// The signature engine (`portcullis-detect`) behind the seam.
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
}

impl Inspector for Detect {
    type Flow = portcullis_detect::FlowDetect;
    type Scratch = portcullis_detect::Scratch;
    type Threshold = portcullis_detect::ThresholdTable;

    fn new_flow(&self) -> Self::Flow {
        self.engine.new_flow()
    }
    fn new_scratch(&self) -> Self::Scratch {
        self.engine.new_scratch()
    }
    fn new_threshold(&self) -> Self::Threshold {
        portcullis_detect::ThresholdTable::new()
    }
    fn inspect(&self, pkt: &PacketInput<'_>, flow: Option<&mut Self::Flow>, scratch: &mut Self::Scratch, alerts: &mut Vec<Alert>) -> Verdict {
        self.engine.inspect(pkt, flow, scratch, alerts)
    }
    fn admit(&self, t: &mut Self::Threshold, alert: &Alert, src: &[u8; 16], dst: &[u8; 16]) -> bool {
        t.admit(&self.engine, alert, src, dst)
    }
    fn rule(&self, alert: &Alert) -> AlertRule<'_> {
        let r = self.engine.rule(alert.rule);
        AlertRule { gid: r.gid, sid: r.sid, rev: r.rev, msg: &r.msg, category: &r.category, severity: r.priority, metadata: &r.metadata }
    }
}
