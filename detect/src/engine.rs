//! The engine: building it from rules (compilation, Suricata's signature order, prefilter
//! groups, the IP-only set) and inspecting one packet: IP-only rules on the first packet of
//! each direction of a flow, prefilter candidates and always-inspected rules on the packet
//! payload and the TCP stream window, flowbits in rule order, then the alert queue with
//! pass, action order, `by_flow` thresholds and Suricata's per-packet alert cap.

use portcullis_applayer::{AppProto, Tx};
use portcullis_common::{Direction, PacketMeta, Timestamp};
use portcullis_rules::{Action, FlowbitCmd, Origin, Rule, TrackBy};

use crate::app::{self, BufScratch};
use crate::compile::{self, class_of, AppKeys, Compiled, CLASSES};
use crate::header;
use crate::payload::Inspect;
use crate::iponly::IpOnlyIndex;
use crate::prefilter::{MatchScratch, Prefilter};
use crate::threshold::{self, Counter};

/// Index of a rule in the engine (engine order: Suricata's signature order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RuleId(pub u32);

/// Which multi-pattern matcher prefilters rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PrefilterKind {
    /// Aho-Corasick (the `aho-corasick` crate): the default without the `vectorscan`
    /// feature.
    #[cfg_attr(not(feature = "vectorscan"), default)]
    AhoCorasick,
    /// Vectorscan block databases: about 2-3x faster on ET Open's fast patterns (see
    /// `benches/RESULTS.md`); the default with the `vectorscan` feature.
    #[cfg(feature = "vectorscan")]
    #[cfg_attr(feature = "vectorscan", default)]
    Vectorscan,
    /// No prefilter: every rule of the packet's protocol is inspected. For tests and
    /// measurements only.
    None,
}

/// Engine settings.
#[derive(Clone, Debug)]
pub struct DetectConfig {
    pub prefilter: PrefilterKind,
    /// Bytes of already-inspected stream data kept per direction in front of new data, so a
    /// match may span packet boundaries (the cap of the per-flow stream window; a flow holds
    /// at most `2 * (stream_window + largest in-order chunk)` bytes). A stream match must
    /// include at least one new byte, so the same data never alerts twice. Suricata
    /// inspects raw stream chunks of at least 2,560 bytes in IDS mode; a window of that
    /// order lets the same cross-packet matches through.
    pub stream_window: usize,
    /// Suricata's `packet-alert-max`: alerts kept per packet, highest precedence first.
    pub packet_alert_max: usize,
    /// Suricata's `inspection-recursion-limit`.
    pub recursion_limit: u32,
    /// Suricata's `action-order`: which actions' rules are evaluated (and so take
    /// precedence) first. `Reject` stands for the whole reject family; an action missing
    /// from the list goes last.
    pub action_order: [Action; 4],
    /// IPS: a flow a drop rule dropped is not inspected any more (its packets are dropped,
    /// `Verdict::drop` set). In IDS mode (the default) inspection goes on.
    pub ips: bool,
}

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig {
            prefilter: PrefilterKind::default(),
            stream_window: 2560,
            packet_alert_max: 15,
            recursion_limit: 3000,
            action_order: [Action::Pass, Action::Drop, Action::Reject, Action::Alert],
            ips: false,
        }
    }
}

/// A rule that was not loaded, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct BuildWarning {
    pub sid: u32,
    pub gid: u32,
    pub origin: Origin,
    pub reason: String,
}

impl std::fmt::Display for BuildWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: sid {}: {}", self.origin.file.display(), self.origin.line, self.sid, self.reason)
    }
}

/// One packet as detection sees it.
#[derive(Clone, Copy, Debug)]
pub struct PacketInput<'a> {
    pub meta: &'a PacketMeta,
    /// This packet's transport payload.
    pub payload: &'a [u8],
    pub ip_id: u16,
    pub icmp_id: u16,
    pub icmp_seq: u16,
    /// `None`: not part of a flow.
    pub dir: Option<Direction>,
    /// The flow is established as Suricata's `flow` keyword means it.
    pub established: bool,
    /// TCP: `Some` when the segment was taken into the stream, with the bytes that became
    /// in order in this direction with this packet (possibly empty).
    pub stream: Option<&'a [u8]>,
    /// Stream offset of `stream[0]`.
    pub stream_offset: u64,
    /// A flow-end pseudo packet carrying only stream data nobody acknowledged before the
    /// flow ended: as Suricata's, only stream inspection runs on it (no IP-only rules, no
    /// packet payload or header keywords).
    pub pseudo: bool,
    /// The flow's app-layer protocol as detected so far (`Unknown` without app-layer
    /// parsing).
    pub app_proto: AppProto,
    /// The flow's live transactions; those the rules of the packet's direction have not seen
    /// since their last change ([`Tx::needs_inspection`]) are inspected by the transaction
    /// rules of that direction.
    pub txs: &'a [Tx],
    /// TCP: bytes of the other direction's stream that this packet acknowledged, with the
    /// stream offset of the first (possibly including bytes acknowledged before and not yet
    /// inspected). Detection does not read them; the app layer in front of it parses them
    /// here, as Suricata's IDS mode updates the app layer of a stream when the other side
    /// acknowledges it.
    pub app_other: Option<(&'a [u8], u64)>,
}

/// One alert, in engine order within its packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Alert {
    pub rule: RuleId,
    pub sid: u32,
    pub gid: u32,
    pub rev: u32,
    pub action: Action,
    pub pcap_cnt: u64,
    pub ts: Timestamp,
    pub dir: Option<Direction>,
    /// Matched on the reassembled stream rather than the packet payload.
    pub from_stream: bool,
    /// The rule has a `by_src`/`by_dst`/`by_rule`/`by_both` threshold or detection filter:
    /// the single ordered writer must pass it through [`crate::ThresholdTable::admit`].
    pub global_threshold: bool,
    /// The transaction the rule matched in (a transaction rule), for EVE's `tx_id` and the
    /// app-layer object logged with the alert.
    pub tx_id: Option<u64>,
}

/// What to do with the packet and its flow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    /// A matching drop or reject rule: drop this packet (IPS).
    pub drop: bool,
    /// ...and the rest of the flow: as Suricata, when the rule is IP-only or only
    /// addresses/ports/protocol, or matched on the stream.
    pub drop_flow: bool,
    /// A pass rule matched on the flow in the same way (IP-only or header-only rule, or a
    /// stream match): no further packet of the flow is inspected. A pass rule matching on
    /// the packet payload passes only the packet (it still ends the packet's alerts).
    pub pass_flow: bool,
}

/// Figures about a built engine.
#[derive(Clone, Debug, Default)]
pub struct EngineStats {
    pub rules: usize,
    pub iponly: usize,
    /// Per protocol class (tcp, udp, icmp, other) and direction (to server, to client):
    /// rules without a usable fast pattern.
    pub always_inspected: [[usize; 2]; CLASSES],
    /// Per protocol class and direction: distinct fast patterns.
    pub patterns: [[usize; 2]; CLASSES],
    pub flowbits: usize,
}

/// One direction's stream inspection window.
#[derive(Debug, Default)]
struct StreamWin {
    buf: Vec<u8>,
    /// Stream offset of `buf[0]`.
    start: u64,
}

/// Per-flow detection state; the caller keeps it with the flow and hands it to every
/// `inspect` of the flow's packets.
#[derive(Debug, Default)]
pub struct FlowDetect {
    bits: Vec<u64>,
    /// `by_flow` threshold counters by rule.
    thresholds: Vec<(u32, Counter)>,
    iponly_done: [bool; 2],
    passed: bool,
    dropped: bool,
    stream: [StreamWin; 2],
    /// (transaction id, rule) pairs that alerted: a rule alerts once per transaction.
    app_done: Vec<(u64, u32)>,
}

impl FlowDetect {
    fn bit(&self, i: u32) -> bool {
        self.bits.get((i / 64) as usize).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    fn apply(&mut self, cmd: FlowbitCmd, i: u32) {
        let w = (i / 64) as usize;
        if w >= self.bits.len() {
            self.bits.resize(w + 1, 0);
        }
        let m = 1u64 << (i % 64);
        match cmd {
            FlowbitCmd::Set => self.bits[w] |= m,
            FlowbitCmd::Unset => self.bits[w] &= !m,
            FlowbitCmd::Toggle => self.bits[w] ^= m,
            FlowbitCmd::IsSet | FlowbitCmd::IsNotSet => {}
        }
    }

    /// Whether flowbit `name` (by engine index) is set; for tests and the console.
    pub fn flowbit(&self, index: u32) -> bool {
        self.bit(index)
    }

    /// Bytes held for stream inspection, both directions.
    pub fn stream_bytes(&self) -> usize {
        self.stream[0].buf.len() + self.stream[1].buf.len()
    }
}

/// Per-worker scratch, reused for every packet.
#[derive(Debug, Default)]
pub struct Scratch {
    cands: Vec<u32>,
    /// Per rule: bit 0 pattern in the packet payload, bit 1 pattern in the stream window.
    marks: Vec<u8>,
    seen: Vec<bool>,
    touched: Vec<u32>,
    lower_pkt: Vec<u8>,
    lower_stream: Vec<u8>,
    /// (rule, from stream, transaction) of this packet's matches.
    matched: Vec<(u32, bool, Option<u64>)>,
    matchers: Vec<MatchScratch>,
    app_cands: Vec<u32>,
    app_matchers: Vec<MatchScratch>,
    bufs: BufScratch,
}

/// The compiled rule set. `Send + Sync`: share it through an `Arc`.
#[derive(Debug)]
pub struct Engine {
    rules: Vec<Rule>,
    compiled: Vec<Compiled>,
    groups: [Prefilter; GROUPS],
    iponly: Vec<u32>,
    iponly_index: IpOnlyIndex,
    flowbit_names: Vec<String>,
    cfg: DetectConfig,
    stats: EngineStats,
    /// The (buffer, transformations) keys transaction rules inspect, with one prefilter per
    /// key over the fast patterns found in that buffer.
    app_keys: AppKeys,
    app_groups: Vec<Prefilter>,
    /// Transaction rules without a fast pattern, in engine order.
    app_always: Vec<u32>,
}

/// The rule's `isset`/`isnotset` checks (each with OR-ed names) against the flow's bits.
fn flowbits_hold(c: &Compiled, flow: Option<&FlowDetect>) -> bool {
    c.fbit_reads.iter().all(|(cmd, ids)| {
        let set = |b: u32| flow.is_some_and(|f| f.bit(b));
        match cmd {
            FlowbitCmd::IsSet => ids.iter().any(|&b| set(b)),
            _ => ids.iter().any(|&b| !set(b)),
        }
    })
}

/// Prefilter groups: protocol class × direction.
const GROUPS: usize = CLASSES * 2;

const PKT: u8 = 1;
const STREAM: u8 = 2;

impl Engine {
    /// Compiles the rules. A rule that cannot compile is dropped with a warning; building
    /// never fails.
    pub fn build(rules: Vec<Rule>, cfg: &DetectConfig) -> (Engine, Vec<BuildWarning>) {
        let mut warnings = Vec::new();
        let mut flowbit_names = Vec::new();
        let mut app_keys = AppKeys::default();
        let mut kept: Vec<(Rule, Compiled, usize)> = Vec::with_capacity(rules.len());
        for (load_idx, rule) in rules.into_iter().enumerate() {
            match compile::compile(&rule, &mut flowbit_names, &mut app_keys) {
                Ok(c) => kept.push((rule, c, load_idx)),
                Err(reason) => warnings.push(BuildWarning {
                    sid: rule.sid,
                    gid: rule.gid,
                    origin: rule.origin.clone(),
                    reason,
                }),
            }
        }
        // Suricata's signature order: action (per `action-order`), flowbits role, priority,
        // then load order.
        let rank = |a: Action| {
            let a = if a.drops() && a != Action::Drop { Action::Reject } else { a };
            cfg.action_order.iter().position(|x| *x == a).unwrap_or(4) as u8
        };
        kept.sort_by_key(|(r, c, i)| (rank(r.action), c.order, *i));
        let mut rules_v = Vec::with_capacity(kept.len());
        let mut compiled = Vec::with_capacity(kept.len());
        for (r, c, _) in kept {
            rules_v.push(r);
            compiled.push(c);
        }
        // One group per protocol class and direction, as Suricata's per-direction signature
        // groups: to-server packets (and packets without a flow) see the rules not limited
        // to `to_client`, to-client packets those not limited to `to_server`.
        let mut pats: [Vec<(Vec<u8>, bool, u32)>; GROUPS] = Default::default();
        let mut always: [Vec<u32>; GROUPS] = Default::default();
        let mut iponly = Vec::new();
        let mut app_pats: Vec<Vec<(Vec<u8>, bool, u32)>> = (0..app_keys.list.len()).map(|_| Vec::new()).collect();
        let mut app_always = Vec::new();
        for (i, c) in compiled.iter().enumerate() {
            let id = i as u32;
            if c.iponly {
                iponly.push(id);
                continue;
            }
            if c.app.as_ref().is_some_and(|a| a.tx_based()) {
                match (&c.fast, c.fast_key, cfg.prefilter) {
                    (Some(fp), Some(k), p) if p != PrefilterKind::None => app_pats[k as usize].push((fp.bytes.clone(), fp.nocase, id)),
                    _ => app_always.push(id),
                }
                continue;
            }
            let f = &rules_v[i].flow;
            for g in 0..GROUPS {
                let (class, to_client) = (g / 2, g % 2 == 1);
                if c.classes & (1 << class) == 0 || (to_client && f.to_server) || (!to_client && f.to_client) {
                    continue;
                }
                match (&c.fast, cfg.prefilter) {
                    (Some(_), PrefilterKind::None) | (None, _) => always[g].push(id),
                    (Some(fp), _) => pats[g].push((fp.bytes.clone(), fp.nocase, id)),
                }
            }
        }
        let mut stats = EngineStats {
            rules: rules_v.len(),
            iponly: iponly.len(),
            flowbits: flowbit_names.len(),
            ..Default::default()
        };
        let groups: [Prefilter; GROUPS] = std::array::from_fn(|g| {
            let pf = Prefilter::build(&pats[g], std::mem::take(&mut always[g]), cfg.prefilter);
            stats.always_inspected[g / 2][g % 2] = pf.always.len();
            stats.patterns[g / 2][g % 2] = pf.variant_count();
            pf
        });
        let iponly_index = IpOnlyIndex::build(iponly.iter().map(|&id| (id, &rules_v[id as usize])));
        let app_groups = app_pats.iter().map(|p| Prefilter::build(p, Vec::new(), cfg.prefilter)).collect();
        // What the compiled form replaces (the payload and header keywords, references, the
        // rule text) is not kept twice: alerts need the rule's identity, addresses, flow
        // options and what EVE logs. Freed only now: freed before the prefilters are built,
        // the allocator hands the pages back and Vectorscan's compiler faults them in again,
        // which made loading ET Open 0.8 s slower.
        for r in &mut rules_v {
            r.payload = Vec::new();
            r.header = Vec::new();
            r.text = String::new();
            r.vars = Vec::new();
            r.references = Vec::new();
            r.reference_urls = Vec::new();
        }
        let engine = Engine {
            rules: rules_v,
            compiled,
            groups,
            iponly,
            iponly_index,
            flowbit_names,
            cfg: cfg.clone(),
            stats,
            app_keys,
            app_groups,
            app_always,
        };
        (engine, warnings)
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rule's identity, addresses, flow options and what EVE logs; its payload and
    /// header keywords, references and text are dropped once compiled.
    pub fn rule(&self, id: RuleId) -> &Rule {
        &self.rules[id.0 as usize]
    }

    pub(crate) fn compiled(&self, id: RuleId) -> &Compiled {
        &self.compiled[id.0 as usize]
    }

    pub fn stats(&self) -> &EngineStats {
        &self.stats
    }

    /// The distinct fast patterns of all rules as `(bytes, nocase)`: what the prefilter
    /// searches for. For benchmarks and for comparing matchers.
    pub fn fast_patterns(&self) -> Vec<(Vec<u8>, bool)> {
        let mut v: Vec<(Vec<u8>, bool)> = self
            .compiled
            .iter()
            .filter(|c| !c.iponly)
            .filter_map(|c| c.fast.as_ref())
            .map(|f| (if f.nocase { f.bytes.to_ascii_lowercase() } else { f.bytes.clone() }, f.nocase))
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// The engine index of a flowbit name.
    pub fn flowbit_index(&self, name: &str) -> Option<u32> {
        self.flowbit_names.iter().position(|n| n == name).map(|i| i as u32)
    }

    pub fn new_flow(&self) -> FlowDetect {
        FlowDetect::default()
    }

    /// A flow's state moved from `old`'s rules to this engine's, for a rule reload: what
    /// belongs to the flow stays (its flowbits, matched by name; its pass or drop verdict, as
    /// Suricata keeps them on the flow; the stream windows), and what is tied to `old`'s rule
    /// numbers starts afresh (per-flow thresholds, transactions alerted on, IP-only rules
    /// done). A bit no rule of this engine names is dropped: nothing could test it.
    pub fn carry_flow(&self, old: &Engine, flow: FlowDetect) -> FlowDetect {
        let mut new = FlowDetect::default();
        // Only the bits set: most flows have none (and then no words at all).
        for (w, &word) in flow.bits.iter().enumerate() {
            let mut rest = word;
            while rest != 0 {
                let i = w * 64 + rest.trailing_zeros() as usize;
                rest &= rest - 1;
                if let Some(j) = old.flowbit_names.get(i).and_then(|name| self.flowbit_index(name)) {
                    new.apply(FlowbitCmd::Set, j);
                }
            }
        }
        FlowDetect { passed: flow.passed, dropped: flow.dropped, stream: flow.stream, ..new }
    }

    pub fn new_scratch(&self) -> Scratch {
        Scratch {
            marks: vec![0; self.rules.len()],
            matchers: self.groups.iter().map(Prefilter::new_scratch).collect(),
            app_matchers: self.app_groups.iter().map(Prefilter::new_scratch).collect(),
            ..Default::default()
        }
    }

    /// Inspects one packet; appends its alerts to `alerts` in engine order.
    pub fn inspect(
        &self,
        pkt: &PacketInput<'_>,
        mut flow: Option<&mut FlowDetect>,
        scratch: &mut Scratch,
        alerts: &mut Vec<Alert>,
    ) -> Verdict {
        if let Some(f) = flow.as_ref() {
            if f.passed {
                return Verdict { pass_flow: true, ..Verdict::default() };
            }
            if f.dropped && self.cfg.ips {
                return Verdict { drop: true, drop_flow: true, pass_flow: false };
            }
        }
        if scratch.marks.len() < self.rules.len()
            || scratch.matchers.len() < GROUPS
            || scratch.app_matchers.len() < self.app_groups.len()
        {
            // A scratch made by another engine (or `Scratch::default()`): redo it once.
            *scratch = self.new_scratch();
        }
        scratch.matched.clear();
        let meta = pkt.meta;
        let proto = meta.key.proto;
        let class = class_of(proto);
        let is_tcp = proto == 6;

        // IP-only rules: every packet without a flow, else the first packet each way.
        let di = match pkt.dir {
            Some(Direction::ToServer) => Some(0),
            Some(Direction::ToClient) => Some(1),
            None => None,
        };
        let run_iponly = match (di, flow.as_deref_mut()) {
            _ if pkt.pseudo => false,
            (Some(d), Some(f)) => !std::mem::replace(&mut f.iponly_done[d], true),
            _ => true,
        };
        if run_iponly && !self.iponly.is_empty() {
            scratch.cands.clear();
            self.iponly_index.candidates(&meta.key, &mut scratch.cands);
            scratch.cands.sort_unstable();
            scratch.cands.dedup();
            for &id in &scratch.cands {
                let (r, c) = (&self.rules[id as usize], &self.compiled[id as usize]);
                if header::proto(c, proto) && header::addresses(r, c, &meta.key) && header::flow(r, pkt) {
                    if let Some(f) = flow.as_deref_mut() {
                        for &(cmd, b) in &c.fbit_writes {
                            f.apply(cmd, b);
                        }
                    }
                    scratch.matched.push((id, false, None));
                }
            }
        }

        // The stream window: old bytes kept in front of the new ones.
        let mut stream_old_len = 0usize;
        let mut stream_start = 0u64;
        let mut have_stream = false;
        if let (true, Some(s), Some(d), Some(f)) = (is_tcp, pkt.stream, di, flow.as_deref_mut()) {
            if !s.is_empty() {
                let w = &mut f.stream[d];
                if w.start + w.buf.len() as u64 != pkt.stream_offset {
                    w.buf.clear();
                    w.start = pkt.stream_offset;
                }
                stream_old_len = w.buf.len();
                w.buf.extend_from_slice(s);
                stream_start = w.start;
                have_stream = true;
            }
        }
        // Without flow state there is no stream to inspect: the packet stands alone.
        let stream_added = is_tcp && pkt.stream.is_some() && di.is_some() && flow.is_some();

        // Candidates.
        let gi = class * 2 + usize::from(pkt.dir == Some(Direction::ToClient));
        let group = &self.groups[gi];
        scratch.cands.clear();
        if !pkt.payload.is_empty() {
            let before = scratch.cands.len();
            group.scan(pkt.payload, &mut scratch.cands, &mut scratch.seen, &mut scratch.touched, &mut scratch.matchers[gi]);
            for &id in &scratch.cands[before..] {
                scratch.marks[id as usize] |= PKT;
            }
        }
        if have_stream {
            let f = flow.as_deref().expect("stream implies flow");
            let buf = &f.stream[di.expect("stream implies direction")].buf;
            let before = scratch.cands.len();
            group.scan(buf, &mut scratch.cands, &mut scratch.seen, &mut scratch.touched, &mut scratch.matchers[gi]);
            for &id in &scratch.cands[before..] {
                scratch.marks[id as usize] |= STREAM;
            }
        }
        for &id in &group.always {
            scratch.marks[id as usize] |= PKT | STREAM;
        }
        scratch.cands.extend_from_slice(&group.always);
        scratch.cands.sort_unstable();
        scratch.cands.dedup();

        // Lowercased buffers for nocase contents, made once per packet.
        let need_lower = scratch.cands.iter().any(|&id| self.compiled[id as usize].any_nocase);
        if need_lower {
            scratch.lower_pkt.clear();
            scratch.lower_pkt.extend(pkt.payload.iter().map(u8::to_ascii_lowercase));
            scratch.lower_stream.clear();
            if have_stream {
                let f = flow.as_deref().expect("stream implies flow");
                let buf = &f.stream[di.expect("stream implies direction")].buf;
                scratch.lower_stream.extend(buf.iter().map(u8::to_ascii_lowercase));
            }
        }

        for ci in 0..scratch.cands.len() {
            let id = scratch.cands[ci];
            let mark = std::mem::take(&mut scratch.marks[id as usize]);
            let (r, c) = (&self.rules[id as usize], &self.compiled[id as usize]);
            if !header::proto(c, proto)
                || !header::addresses(r, c, &meta.key)
                || !header::flow(r, pkt)
                || !header::keywords(c, pkt)
                || c.app.as_ref().is_some_and(|a| !a.flow_matches(pkt.app_proto))
            {
                continue;
            }
            if !flowbits_hold(c, flow.as_deref()) {
                continue;
            }
            // Whether the rule matched on the packet payload and on the new stream data.
            let (mut on_pkt, mut on_stream) = (false, false);
            if c.ops.is_empty() {
                on_pkt = true;
            } else {
                let lower_pkt: &[u8] = if need_lower { &scratch.lower_pkt } else { pkt.payload };
                let inspect_packet = |this: &Self| {
                    mark & PKT != 0 && {
                        let mut ins = Inspect::new(pkt.payload, lower_pkt, 0, this.cfg.recursion_limit);
                        ins.run(&c.ops)
                    }
                };
                if is_tcp && c.require_stream {
                    if have_stream && mark & STREAM != 0 {
                        let f = flow.as_deref().expect("stream implies flow");
                        let buf = &f.stream[di.expect("stream implies direction")].buf;
                        let lower: &[u8] = if need_lower { &scratch.lower_stream } else { buf };
                        let mut ins = Inspect::new(buf, lower, stream_start, self.cfg.recursion_limit);
                        on_stream = ins.run(&c.ops) && ins.match_end as usize > stream_old_len;
                        if !on_stream && stream_old_len > 0 {
                            // The first match lay in data inspected before: look at the new
                            // bytes alone, as Suricata inspects the new chunk.
                            let o = stream_old_len;
                            let start = stream_start + o as u64;
                            let mut ins = Inspect::new(&buf[o..], &lower[o..], start, self.cfg.recursion_limit);
                            on_stream = ins.run(&c.ops);
                        }
                    }
                    if c.stream_only {
                        // Stream only: never the packet.
                    } else if c.require_packet {
                        // Suricata inspects such a rule on the packet when it arrives and on
                        // the stream once the data is acknowledged, later: both can alert.
                        on_pkt = inspect_packet(self);
                    } else if !on_stream && !stream_added {
                        // A segment the stream did not take is inspected on its own.
                        on_pkt = inspect_packet(self);
                    }
                } else if !c.stream_only {
                    on_pkt = inspect_packet(self);
                }
            }
            if pkt.pseudo {
                on_pkt = false;
            }
            for (hit, from_stream) in [(on_pkt, false), (on_stream, true)] {
                if !hit {
                    continue;
                }
                if let Some(f) = flow.as_deref_mut() {
                    for &(cmd, b) in &c.fbit_writes {
                        f.apply(cmd, b);
                    }
                }
                scratch.matched.push((id, from_stream, None));
            }
        }
        // Marks of candidates skipped early are cleared above; make sure none linger.
        debug_assert!(scratch.cands.iter().all(|&id| scratch.marks[id as usize] == 0));

        if let (Some(d), false) = (pkt.dir, pkt.txs.is_empty()) {
            if let Some(f) = flow.as_deref_mut() {
                // Forget the alerts of transactions the parser has freed.
                let first = pkt.txs[0].id;
                f.app_done.retain(|(t, _)| *t >= first);
            }
            for tx in pkt.txs.iter().filter(|t| t.needs_inspection(d)) {
                self.inspect_tx(pkt, d, tx, flow.as_deref_mut(), scratch);
            }
        }

        // Trim the stream window to its cap now that this packet's data is inspected.
        if have_stream {
            let cap = self.cfg.stream_window;
            let w = &mut flow.as_deref_mut().expect("stream implies flow").stream[di.expect("direction")];
            if w.buf.len() > cap {
                let cut = w.buf.len() - cap;
                w.buf.drain(..cut);
                w.start += cut as u64;
            }
        }

        self.finalize(pkt, flow, scratch, alerts)
    }

    /// Transaction rules on one transaction that this packet updated, evaluated in the
    /// packet's direction: candidates from each buffer's prefilter plus the rules without a
    /// fast pattern, then the header, flowbits, transaction keywords and every buffer list.
    fn inspect_tx(
        &self,
        pkt: &PacketInput<'_>,
        dir: Direction,
        tx: &Tx,
        mut flow: Option<&mut FlowDetect>,
        scratch: &mut Scratch,
    ) {
        scratch.bufs.start_tx();
        let cands = &mut scratch.app_cands;
        cands.clear();
        for (k, (buf, _)) in self.app_keys.list.iter().enumerate() {
            if buf.proto() != tx.proto {
                continue;
            }
            let group = &self.app_groups[k];
            if group.variant_count() == 0 {
                continue;
            }
            let ts = &self.app_keys.transforms[k];
            let (seen, touched, ms) = (&mut scratch.seen, &mut scratch.touched, &mut scratch.app_matchers[k]);
            if ts.is_empty() {
                for inst in tx.get_for(*buf, dir) {
                    group.scan(inst, cands, seen, touched, ms);
                }
            } else {
                scratch.bufs.fill(k as u32, *buf, ts, tx, dir);
                for inst in scratch.bufs.instances(k as u32) {
                    group.scan(inst, cands, seen, touched, ms);
                }
            }
        }
        cands.extend_from_slice(&self.app_always);
        // The packet payload lowercased, for the packet keywords of mixed rules: once.
        let mut pkt_lowered = false;
        cands.sort_unstable();
        cands.dedup();
        let meta = pkt.meta;
        for ci in 0..scratch.app_cands.len() {
            let id = scratch.app_cands[ci];
            if flow.as_deref().is_some_and(|f| f.app_done.contains(&(tx.id, id))) {
                continue;
            }
            let (r, c) = (&self.rules[id as usize], &self.compiled[id as usize]);
            let Some(a) = c.app.as_deref() else { continue };
            if a.proto != Some(tx.proto)
                || a.dir.is_some_and(|rd| rd != dir)
                || !a.flow_matches(pkt.app_proto)
                || !header::proto(c, meta.key.proto)
                || !header::addresses(r, c, &meta.key)
                || !header::flow(r, pkt)
                || (!pkt.pseudo && !header::keywords(c, pkt))
            {
                continue;
            }
            if !flowbits_hold(c, flow.as_deref()) {
                continue;
            }
            if !a.tx_checks.iter().all(|m| app::tx_check(m, tx)) {
                continue;
            }
            let limit = self.cfg.recursion_limit;
            let mut all = true;
            for p in &a.parts {
                let ts = &self.app_keys.transforms[p.key as usize];
                let b = &mut scratch.bufs;
                let hit = if ts.is_empty() {
                    app::part_matches(p, tx.get_for(p.buf, dir), limit, &mut b.lower)
                } else {
                    b.fill(p.key, p.buf, ts, tx, dir);
                    let (insts, lower) = b.instances_and_lower(p.key);
                    app::part_matches(p, insts, limit, lower)
                };
                if !hit {
                    all = false;
                    break;
                }
            }
            if !all {
                continue;
            }
            // Packet keywords of a mixed rule look at this packet's payload.
            if !c.ops.is_empty() {
                if !pkt_lowered {
                    scratch.lower_pkt.clear();
                    scratch.lower_pkt.extend(pkt.payload.iter().map(u8::to_ascii_lowercase));
                    pkt_lowered = true;
                }
                if !crate::payload::Inspect::new(pkt.payload, &scratch.lower_pkt, 0, limit).run(&c.ops) {
                    continue;
                }
            }
            if let Some(f) = flow.as_deref_mut() {
                f.app_done.push((tx.id, id));
                for &(cmd, b) in &c.fbit_writes {
                    f.apply(cmd, b);
                }
            }
            scratch.matched.push((id, false, Some(tx.id)));
        }
    }

    /// The alert queue: engine order, pass discards the rest, actions, `by_flow`
    /// thresholds, the per-packet cap.
    fn finalize(
        &self,
        pkt: &PacketInput<'_>,
        mut flow: Option<&mut FlowDetect>,
        scratch: &mut Scratch,
        alerts: &mut Vec<Alert>,
    ) -> Verdict {
        let mut v = Verdict::default();
        scratch.matched.sort_unstable();
        let mut kept = 0usize;
        for &(id, from_stream, tx_id) in &scratch.matched {
            let (r, c) = (&self.rules[id as usize], &self.compiled[id as usize]);
            // Suricata applies a drop or pass to the flow for IP-only and header-only rules,
            // stream matches and transaction matches.
            let to_flow = c.header_only || from_stream || tx_id.is_some();
            if r.action == Action::Pass {
                // A pass ends the packet's alerts (everything after it in engine order).
                // A flow already dropped stays dropped.
                if let (Some(f), true) = (flow.as_deref_mut(), to_flow) {
                    if !f.dropped {
                        f.passed = true;
                        v.pass_flow = true;
                    }
                }
                break;
            }
            if r.action.drops() {
                v.drop = true;
                if let (Some(f), true) = (flow.as_deref_mut(), to_flow) {
                    f.dropped = true;
                    v.drop_flow = true;
                }
            }
            if r.noalert {
                continue;
            }
            let mut global = false;
            if let Some(t) = c.threshold {
                if t.track == TrackBy::Flow {
                    if let Some(f) = flow.as_deref_mut() {
                        let pos = f.thresholds.iter().position(|(rid, _)| *rid == id);
                        let mut st = pos.map(|p| f.thresholds[p].1);
                        let ok = threshold::admit(&t, &mut st, pkt.meta.ts);
                        match (pos, st) {
                            (Some(p), Some(s)) => f.thresholds[p].1 = s,
                            (None, Some(s)) => f.thresholds.push((id, s)),
                            _ => {}
                        }
                        if !ok {
                            continue;
                        }
                    }
                } else {
                    global = true;
                }
            }
            if kept >= self.cfg.packet_alert_max {
                continue;
            }
            kept += 1;
            alerts.push(Alert {
                rule: RuleId(id),
                sid: r.sid,
                gid: r.gid,
                rev: r.rev,
                action: r.action,
                pcap_cnt: pkt.meta.pcap_cnt,
                ts: pkt.meta.ts,
                dir: pkt.dir,
                from_stream,
                global_threshold: global,
                tx_id,
            });
        }
        v
    }
}
