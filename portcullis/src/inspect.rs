//! The seam between the flow workers and the signature engine.
//!
//! Workers call an [`Inspector`] once per packet with what the engine needs (the packet's
//! meta, its payload bytes, its direction, `flow:established`, the flow's own detection
//! state), and get back alerts and a verdict, in `portcullis-detect`'s own types. [`Detect`]
//! is the engine behind the seam; the unit tests drive the replay with fakes through the
//! same trait.

use portcullis_applayer::{AppConfig, AppFlow, AppProto, AppStats, TxLog};
use portcullis_common::{ipproto, Direction, TcpFlags};
use portcullis_eve::{AlertApp, AlertRule};
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
    /// Makes a live flow's state, built by `old` (the engine before a rule reload), fit this
    /// one. The default starts it afresh; an engine keeps what does not depend on the rules.
    fn rebind_flow(&self, _old: &Self, flow: &mut Self::Flow) {
        *flow = self.new_flow();
    }
    fn new_scratch(&self) -> Self::Scratch;
    fn new_threshold(&self) -> Self::Threshold;
    /// Matches the rules against one packet, appending alerts in rule order.
    fn inspect(&self, pkt: &PacketInput<'_>, flow: Option<&mut Self::Flow>, scratch: &mut Self::Scratch, alerts: &mut Vec<Alert>) -> Verdict;
    fn admit(&self, t: &mut Self::Threshold, alert: &Alert, src: &[u8; 16], dst: &[u8; 16]) -> bool;
    /// What an alert's EVE event says about its rule.
    fn rule(&self, alert: &Alert) -> AlertRule<'_>;
    /// The rule's `classtype` short name (`attempted-recon`), for the policy's playbook.
    fn classtype(&self, _alert: &Alert) -> Option<&str> {
        None
    }
    /// The flow's app-layer protocol as EVE writes it (`app_proto`), if one was recognised.
    fn app_proto(&self, _flow: &Self::Flow) -> Option<&'static str> {
        None
    }
    /// The app-layer part of the event of an alert the last `inspect` of this flow raised.
    fn alert_app(&self, _flow: &Self::Flow, _alert: &Alert) -> Option<AlertApp> {
        None
    }
    /// Whether the flow holds app-layer state that its end completes (an HTTP body that ends
    /// with the connection): then the flow's end is inspected even with no stream bytes left.
    fn needs_flow_end(&self, _flow: &Self::Flow) -> bool {
        false
    }
    /// The worker's app-layer counters, taken at the end of the run.
    fn take_app_stats(&self, _scratch: &mut Self::Scratch) -> AppStats {
        AppStats::default()
    }
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

/// The signature engine (`portcullis-detect`) behind the seam, with the app-layer parsers
/// (`portcullis-applayer`) in front of it: each packet's in-order stream bytes (TCP) or
/// payload (UDP) go to the flow's parser first, so the transactions they update are
/// inspected with the packet.
#[derive(Debug)]
pub struct Detect {
    engine: portcullis_detect::Engine,
    app: Option<AppConfig>,
}

/// A flow's detection state and its app layer.
#[derive(Debug)]
pub struct DetectFlow {
    detect: portcullis_detect::FlowDetect,
    /// Made at the flow's first TCP or UDP packet (`None` before, and for other protocols).
    app: Option<AppFlow>,
    /// Logs of the transactions the last packet's alerts refer to, taken before the parser
    /// frees finished transactions: `(tx id, log)`.
    alert_logs: Vec<(u64, TxLog)>,
    /// The newest transaction at the last packet, for alerts that matched no transaction
    /// (Suricata's `tx_guessed`).
    guess: Option<(u64, TxLog)>,
    /// Per direction, the stream offset up to which the app layer has the bytes: stream
    /// bytes reach it when acknowledged (`app_other`) or, at the latest, with detection.
    app_fed: [u64; 2],
}

/// A worker's scratch: the engine's and the app-layer counters.
#[derive(Debug)]
pub struct DetectScratch {
    scratch: portcullis_detect::Scratch,
    app: AppStats,
}

impl Detect {
    /// The engine with the app-layer parsers on (their default caps).
    pub fn new(engine: portcullis_detect::Engine) -> Self {
        Detect { engine, app: Some(AppConfig::default()) }
    }

    /// The engine with the app layer as configured; `None`: no protocol detection or
    /// parsing (rules with app-layer keywords never match).
    pub fn with_app_layer(engine: portcullis_detect::Engine, app: Option<AppConfig>) -> Self {
        Detect { engine, app }
    }

    pub fn engine(&self) -> &portcullis_detect::Engine {
        &self.engine
    }
}

impl Inspector for Detect {
    type Flow = DetectFlow;
    type Scratch = DetectScratch;
    type Threshold = portcullis_detect::ThresholdTable;

    fn new_flow(&self) -> Self::Flow {
        DetectFlow { detect: self.engine.new_flow(), app: None, alert_logs: Vec::new(), guess: None, app_fed: [0; 2] }
    }
    /// The app layer (parser state, transactions) does not depend on the rules and is kept;
    /// of the rules' per-flow state, flowbits carry over by name and the flow's pass or drop
    /// verdict stays, as in Suricata, while what is counted per rule starts afresh
    /// (`Engine::carry_flow`).
    fn rebind_flow(&self, old: &Self, flow: &mut Self::Flow) {
        flow.detect = self.engine.carry_flow(&old.engine, std::mem::take(&mut flow.detect));
        flow.alert_logs.clear();
    }
    fn new_scratch(&self) -> Self::Scratch {
        DetectScratch { scratch: self.engine.new_scratch(), app: AppStats::default() }
    }
    fn new_threshold(&self) -> Self::Threshold {
        portcullis_detect::ThresholdTable::new()
    }
    fn inspect(&self, pkt: &PacketInput<'_>, flow: Option<&mut Self::Flow>, scratch: &mut Self::Scratch, alerts: &mut Vec<Alert>) -> Verdict {
        let (Some(f), Some(cfg), Some(dir)) = (flow, self.app.as_ref(), pkt.dir) else {
            return self.engine.inspect(pkt, None, &mut scratch.scratch, alerts);
        };
        f.alert_logs.clear();
        f.guess = None;
        let proto = pkt.meta.key.proto;
        if f.app.is_none() && (proto == ipproto::TCP || proto == ipproto::UDP) {
            let k = &pkt.meta.key;
            let (client, server) = if dir == Direction::ToServer { (k.sport, k.dport) } else { (k.dport, k.sport) };
            f.app = Some(AppFlow::new(proto == ipproto::TCP, client, server));
        }
        let Some(app) = f.app.as_mut() else {
            return self.engine.inspect(pkt, Some(&mut f.detect), &mut scratch.scratch, alerts);
        };
        if proto == ipproto::TCP {
            // The other side's bytes this packet acknowledged first, then this side's that
            // detection now inspects; each byte reaches the parser once.
            let mut feed = |d: Direction, bytes: &[u8], off: u64, stats: &mut AppStats| {
                let fed = &mut f.app_fed[usize::from(d == Direction::ToClient)];
                let skip = fed.saturating_sub(off).min(bytes.len() as u64) as usize;
                if skip < bytes.len() {
                    app.stream(cfg, d, &bytes[skip..], stats);
                }
                *fed = (*fed).max(off + bytes.len() as u64);
            };
            if let Some((b, off)) = pkt.app_other {
                feed(dir.reverse(), b, off, &mut scratch.app);
            }
            if let Some(s) = pkt.stream {
                feed(dir, s, pkt.stream_offset, &mut scratch.app);
            }
            let closing = pkt.pseudo || pkt.meta.tcp_flags.0 & (TcpFlags::FIN | TcpFlags::RST) != 0;
            if closing {
                app.close(cfg, dir, &mut scratch.app);
            }
        } else if !pkt.payload.is_empty() && !pkt.meta.attach_only {
            app.datagram(cfg, dir, pkt.payload, &mut scratch.app);
        }
        let input = PacketInput { app_proto: app.proto(), txs: app.txs(), ..*pkt };
        let before = alerts.len();
        let v = self.engine.inspect(&input, Some(&mut f.detect), &mut scratch.scratch, alerts);
        for a in &alerts[before..] {
            match a.tx_id {
                Some(id) if !f.alert_logs.iter().any(|(t, _)| *t == id) => {
                    if let Some(tx) = app.txs().iter().find(|t| t.id == id) {
                        f.alert_logs.push((id, tx.log.clone()));
                    }
                }
                Some(_) => {}
                // Suricata guesses the transaction of a stream match only.
                None if a.from_stream && f.guess.is_none() => f.guess = app.txs().last().map(|t| (t.id, t.log.clone())),
                None => {}
            }
        }
        app.detection_done(dir);
        v
    }
    fn admit(&self, t: &mut Self::Threshold, alert: &Alert, src: &[u8; 16], dst: &[u8; 16]) -> bool {
        t.admit(&self.engine, alert, src, dst)
    }
    fn rule(&self, alert: &Alert) -> AlertRule<'_> {
        let r = self.engine.rule(alert.rule);
        AlertRule { gid: r.gid, sid: r.sid, rev: r.rev, msg: &r.msg, category: &r.category, severity: r.priority, metadata: &r.metadata }
    }
    fn classtype(&self, alert: &Alert) -> Option<&str> {
        self.engine.rule(alert.rule).classtype.as_deref()
    }
    fn app_proto(&self, flow: &Self::Flow) -> Option<&'static str> {
        // `failed` means "none of the protocols Portcullis detects", not "none at all":
        // Suricata would name SMTP or SMB where Portcullis has no detector, so EVE says
        // nothing rather than something wrong.
        flow.app.as_ref().map(AppFlow::proto).filter(|p| *p != AppProto::Failed).and_then(AppProto::name)
    }
    fn alert_app(&self, flow: &Self::Flow, alert: &Alert) -> Option<AlertApp> {
        let proto = self.app_proto(flow);
        let (tx_id, guessed, log) = match alert.tx_id {
            Some(id) => (Some(id), false, flow.alert_logs.iter().find(|(t, _)| *t == id).map(|(_, l)| l.clone()).unwrap_or_default()),
            None => match &flow.guess {
                Some((id, log)) if alert.from_stream => (Some(*id), true, log.clone()),
                _ => (None, false, TxLog::None),
            },
        };
        (proto.is_some() || tx_id.is_some()).then_some(AlertApp { proto, tx_id, guessed, log })
    }
    fn needs_flow_end(&self, flow: &Self::Flow) -> bool {
        flow.app.as_ref().is_some_and(|a| !a.txs().is_empty())
    }
    fn take_app_stats(&self, scratch: &mut Self::Scratch) -> AppStats {
        std::mem::take(&mut scratch.app)
    }
}
