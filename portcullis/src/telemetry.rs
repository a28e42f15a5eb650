//! What the daemon shows of itself while it runs: the console's [`Snapshot`], the stream of
//! alert and decision lines that `subscribe` connections receive, and the figures the
//! Prometheus endpoint exports. The writer thread feeds it (once a second, and per alert or
//! decision written); the control socket and the metrics endpoint read it under a short
//! lock. Workers never touch it: they send the writer samples of their flow table, as they
//! send their counters.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use portcullis_api::{
    ActiveRow, AlertKind, AlertRow, CaptureHealth, Enforcement, FlowRow, MlVerdict, PendingRow, PortHealth, RulesInfo, Scoring, Snapshot, Talker,
    Traffic,
};
use portcullis_dataplane::live::PortStats;
use portcullis_flowtable::LiveFlow;
use serde_json::Value;

use crate::policy::PolicyHandle;

/// Seconds of traffic history the sparklines show.
pub const HISTORY: usize = 120;
/// Alerts kept for the console's alert pane.
pub const ALERTS_KEPT: usize = 500;
/// Largest flows each worker reports per sample.
pub const FLOWS_PER_WORKER: usize = 200;
/// Source addresses each worker reports per sample, those holding the most bytes. Workers
/// share a source's flows by flow hash, so each one's leaders are close to the whole
/// table's; the console shows the first 200. A spoofed flood puts a million sources in
/// the table: reporting all of them cost the writer the merge of every one, every second.
pub const SOURCES_PER_WORKER: usize = 1000;
/// Flows and talkers one snapshot carries.
const SNAPSHOT_ROWS: usize = 200;
/// Lines queued per `subscribe` connection before its lines are dropped (and counted).
pub const SUBSCRIBER_QUEUE: usize = 4096;
/// Model verdicts of live flows kept while nobody looks (then the flows are not sampled,
/// so verdicts of ended flows cannot be pruned).
const ML_VERDICTS_KEPT: usize = 10_000;
/// Score latencies kept for the percentiles.
const LATENCIES_KEPT: usize = 4096;

/// One worker's view of its flows at a sample: the largest flows, and for the sources
/// holding the most bytes ([`SOURCES_PER_WORKER`]), the bytes, packets and flows each holds
/// in the table.
#[derive(Debug, Clone, Default)]
pub struct FlowSample {
    pub largest: Vec<LiveFlow>,
    pub sources: Vec<(IpAddr, (u64, u64, u64))>,
    /// Whether the worker walked its table for this sample ([`Watch`]); without, only
    /// `active` is filled.
    pub walked: bool,
    pub active: u64,
    pub app: HashMap<u64, &'static str>,
}

/// A connection's subscription to the event stream.
#[derive(Debug)]
struct Subscriber {
    tx: Sender<Arc<str>>,
    types: Vec<String>,
}

/// The counters a port reported at the latest sample.
#[derive(Debug, Clone, Default)]
pub struct PortSample {
    pub name: String,
    pub stats: PortStats,
    pub backlog: u64,
}

/// The scoring figures of the latest samples.
#[derive(Debug, Clone, Default)]
pub struct ScoringSample {
    pub backend: String,
    pub backend_note: Option<String>,
    pub model: String,
    pub previous_model: Option<String>,
    pub shadow: Option<portcullis_api::Shadow>,
    pub flows_scored: u64,
    pub calls: u64,
    pub latencies_us: Vec<u32>,
}

#[derive(Debug, Default)]
struct State {
    source: &'static str,
    mode: String,
    inline: bool,
    fail_mode: Option<String>,
    started: Option<Instant>,
    history: VecDeque<(u64, u64, u64)>,
    /// Packets, bytes and drops at the previous second, and when.
    prev_totals: Option<(Instant, u64, u64, u64)>,
    ports: Vec<PortHealth>,
    prev_ports: Vec<u64>,
    totals: (u64, u64),
    drops: Vec<(String, u64)>,
    events_lost: u64,
    flows: Vec<FlowSample>,
    /// Bytes and packets each worker's sources held at the previous walk, by worker.
    prev_sources: HashMap<(usize, IpAddr), (u64, u64)>,
    talkers: Vec<Talker>,
    prev_sample: Option<Instant>,
    alerts: VecDeque<AlertRow>,
    alerts_total: u64,
    subscribers: Vec<Subscriber>,
    stream_dropped: u64,
    scoring: Option<ScoringSample>,
    latencies: VecDeque<u32>,
    rules: Option<RulesInfo>,
    /// Per-flow model verdicts of flows still live, for the flow pane.
    ml_by_flow: HashMap<u64, (String, f32)>,
    /// Where each loaded rule is written, so the console can show its text.
    rule_origins: RuleOrigins,
    drift: Option<portcullis_api::Drift>,
    /// Rule texts read from their files, for the alerts snapshots carried.
    rule_texts: HashMap<(u32, u64), Option<String>>,
}

/// (gid, sid) → the rule's file and first line. The engine drops rule text once compiled;
/// the console's few shown alerts read theirs back from the file.
pub type RuleOrigins = HashMap<(u32, u64), RuleOrigin>;

/// A rule's file and first line.
pub type RuleOrigin = (Arc<std::path::Path>, u32);

/// Rule texts kept; beyond it the cache starts again (a snapshot shows a few hundred).
const RULE_TEXTS_KEPT: usize = 2048;

/// The rule at `line` of `file`, with its continuation lines joined, as written.
fn read_rule(file: &std::path::Path, line: u32) -> Option<String> {
    let text = std::fs::read_to_string(file).ok()?;
    let mut out = String::new();
    for l in text.lines().skip(line.checked_sub(1)? as usize) {
        // Continuations are joined with one space, as the rule reads on one line.
        let l = if out.is_empty() { l.trim_end() } else { l.trim() };
        match l.strip_suffix('\\') {
            Some(head) => {
                out.push_str(head.trim_end());
                out.push(' ');
            }
            None => {
                out.push_str(l);
                return Some(out.trim().to_string());
            }
        }
    }
    (!out.is_empty()).then(|| out.trim().to_string())
}

/// Shared between the writer thread (which feeds it) and the control and metrics threads
/// (which read it).
#[derive(Debug, Clone, Default)]
pub struct Telemetry {
    state: Arc<Mutex<State>>,
    watch: Arc<Watch>,
}

/// How long after the last snapshot was read the workers go on walking their flow tables
/// for it: longer than the console's slowest refresh (`--refresh 60`).
pub const WATCH_WINDOW: Duration = Duration::from_secs(90);

/// When a snapshot was last read. The workers' once-a-second walk of their flow tables (the
/// largest flows, the bytes per source) costs a table of a million flows 80 to 200 ms of a
/// worker's second (benches/RESULTS.md); only a console (or a `snapshot` request) reads its
/// result, so the walk waits for one. Counters (flows active, packets) are kept either way,
/// and `/metrics`, which reads only those, does not count as looking.
#[derive(Debug)]
pub struct Watch {
    epoch: Instant,
    /// Milliseconds from `epoch` to the last read, plus one; 0 for never.
    last: AtomicU64,
}

impl Default for Watch {
    fn default() -> Self {
        Watch { epoch: Instant::now(), last: AtomicU64::new(0) }
    }
}

impl Watch {
    fn touch(&self) {
        self.last.store(self.epoch.elapsed().as_millis() as u64 + 1, Ordering::Relaxed);
    }

    /// Whether a snapshot was read within [`WATCH_WINDOW`].
    pub fn watched(&self) -> bool {
        let last = self.last.load(Ordering::Relaxed);
        last != 0 && (self.epoch.elapsed().as_millis() as u64 + 1).saturating_sub(last) <= WATCH_WINDOW.as_millis() as u64
    }
}

impl Telemetry {
    /// `source` is `run` or `replay`; `mode` the capture kind (`af-xdp`, `file`, ...).
    pub fn new(source: &'static str, mode: &str, inline: bool, fail_mode: Option<&str>) -> Telemetry {
        let s = State {
            source,
            mode: mode.to_string(),
            inline,
            fail_mode: fail_mode.map(String::from),
            started: Some(Instant::now()),
            ..State::default()
        };
        Telemetry { state: Arc::new(Mutex::new(s)), watch: Arc::default() }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves figures, not invariants: go on.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether anyone reads the snapshots (see [`Watch`]), for the workers to ask.
    pub fn watch(&self) -> Arc<Watch> {
        self.watch.clone()
    }

    /// One second's counters of every port, and the drops by reason so far.
    pub fn record_ports(&self, now: Instant, ports: &[PortSample], drops: Vec<(String, u64)>, events_lost: u64) {
        let mut s = self.lock();
        let (mut packets, mut bytes) = (0u64, 0u64);
        for p in ports {
            packets += p.stats.packets;
            bytes += p.stats.bytes;
        }
        let dropped: u64 = drops.iter().map(|(_, n)| n).sum();
        let elapsed = s.prev_totals.map(|(t, ..)| now.saturating_duration_since(t).as_secs_f64());
        if let (Some((_, p0, b0, d0)), Some(dt)) = (s.prev_totals, elapsed.filter(|&d| d > 0.0)) {
            let rate = |a: u64, b: u64| (a.saturating_sub(b) as f64 / dt).round() as u64;
            let sample = (rate(packets, p0), rate(bytes, b0) * 8, rate(dropped, d0));
            s.history.push_back(sample);
            while s.history.len() > HISTORY {
                s.history.pop_front();
            }
        }
        let prev_ports = std::mem::take(&mut s.prev_ports);
        s.ports = ports
            .iter()
            .enumerate()
            .map(|(i, p)| PortHealth {
                name: p.name.clone(),
                packets_per_sec: match (prev_ports.get(i), elapsed.filter(|&d| d > 0.0)) {
                    (Some(&before), Some(dt)) => (p.stats.packets.saturating_sub(before) as f64 / dt).round() as u64,
                    _ => 0,
                },
                packets: p.stats.packets,
                ring_drops: p.stats.rx_ring_full,
                backlog: p.backlog,
            })
            .collect();
        s.prev_ports = ports.iter().map(|p| p.stats.packets).collect();
        s.prev_totals = Some((now, packets, bytes, dropped));
        s.totals = (packets, bytes);
        let mut drops = drops;
        drops.retain(|(_, n)| *n > 0);
        drops.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        s.drops = drops;
        s.events_lost = events_lost;
    }

    /// The latest flow samples of every worker. A talker's rate is the change in the bytes
    /// and packets its live flows hold, summed over the workers that reported it both this
    /// time and the time before (each reports only its leading sources, so a source that
    /// leaves and re-enters one worker's list counts nothing for that worker, rather than a
    /// jump by all it holds there).
    pub fn record_flows(&self, now: Instant, samples: Vec<FlowSample>) {
        let mut s = self.lock();
        if !samples.iter().all(|w| w.walked) {
            // Nobody looking (or the workers only starting to walk, each on its own second):
            // only the flow counts are whole. Rates start afresh once every worker walked;
            // the model's verdicts stay for the flows a console will show then, within bounds.
            s.talkers.clear();
            s.prev_sources.clear();
            s.prev_sample = None;
            if s.ml_by_flow.len() > ML_VERDICTS_KEPT {
                s.ml_by_flow.clear();
            }
            s.flows = samples;
            return;
        }
        let dt = s.prev_sample.map(|t| now.saturating_duration_since(t).as_secs_f64()).filter(|&d| d > 0.0);
        let mut sources: HashMap<IpAddr, Talker> = HashMap::new();
        let mut prev = HashMap::with_capacity(s.prev_sources.len());
        for (i, w) in samples.iter().enumerate() {
            for &(ip, (b, p, f)) in &w.sources {
                let t = sources.entry(ip).or_insert_with(|| Talker { addr: ip, bytes_per_sec: 0, packets_per_sec: 0, flows: 0 });
                t.flows += f;
                if let (Some(&(b0, p0)), Some(dt)) = (s.prev_sources.get(&(i, ip)), dt) {
                    t.bytes_per_sec += (b.saturating_sub(b0) as f64 / dt).round() as u64;
                    t.packets_per_sec += (p.saturating_sub(p0) as f64 / dt).round() as u64;
                }
                prev.insert((i, ip), (b, p));
            }
        }
        let mut talkers: Vec<Talker> = sources.into_values().collect();
        talkers.sort_by(|a, b| b.bytes_per_sec.cmp(&a.bytes_per_sec).then(b.flows.cmp(&a.flows)).then(a.addr.cmp(&b.addr)));
        talkers.truncate(SNAPSHOT_ROWS);
        s.talkers = talkers;
        s.prev_sources = prev;
        s.prev_sample = Some(now);
        let live: std::collections::HashSet<u64> = samples.iter().flat_map(|w| w.largest.iter().map(|f| f.flow.flow_id)).collect();
        s.ml_by_flow.retain(|id, _| live.contains(id));
        s.flows = samples;
    }

    pub fn record_scoring(&self, sample: ScoringSample) {
        let mut s = self.lock();
        for &l in &sample.latencies_us {
            s.latencies.push_back(l);
        }
        while s.latencies.len() > LATENCIES_KEPT {
            s.latencies.pop_front();
        }
        s.scoring = Some(ScoringSample { latencies_us: Vec::new(), ..sample });
    }

    pub fn set_rules(&self, rules: RulesInfo) {
        self.lock().rules = Some(rules);
    }

    pub fn set_drift(&self, drift: Option<portcullis_api::Drift>) {
        self.lock().drift = drift;
    }

    /// Where the rules in force are written (after a load or reload).
    pub fn set_rule_origins(&self, origins: RuleOrigins) {
        let mut s = self.lock();
        s.rule_origins = origins;
        s.rule_texts.clear();
    }

    /// A reload that was refused: the rules in force stay, and the console says why.
    pub fn rules_refused(&self, why: &str) {
        let mut s = self.lock();
        let r = s.rules.get_or_insert_with(RulesInfo::default);
        r.last_reload_refused = Some(why.to_string());
    }

    /// An EVE line written (or that would have been): alerts join the alert pane, and every
    /// subscriber that asked for its type receives it.
    pub fn publish(&self, event_type: &str, line: &[u8]) {
        let mut s = self.lock();
        if event_type == "alert" {
            let event = serde_json::from_slice::<Value>(line).ok();
            if let Some(row) = event.as_ref().and_then(alert_row) {
                if let (Some(ml), Some(id)) = (&row.ml, event.as_ref().and_then(|v| v["flow_id"].as_u64())) {
                    s.ml_by_flow.insert(id, (ml.class.clone(), ml.probability));
                }
                s.alerts_total += 1;
                s.alerts.push_back(row);
                while s.alerts.len() > ALERTS_KEPT {
                    s.alerts.pop_front();
                }
            }
        }
        if s.subscribers.is_empty() {
            return;
        }
        let Ok(text) = std::str::from_utf8(line) else { return };
        let text: Arc<str> = Arc::from(text);
        let mut dropped = 0;
        s.subscribers.retain(|sub| {
            if !sub.types.is_empty() && !sub.types.iter().any(|t| t == event_type) {
                return true;
            }
            match sub.tx.try_send(text.clone()) {
                Ok(()) => true,
                // A reader that cannot keep up loses lines, counted; the writer never waits.
                Err(TrySendError::Full(_)) => {
                    dropped += 1;
                    true
                }
                Err(TrySendError::Disconnected(_)) => false,
            }
        });
        s.stream_dropped += dropped;
    }

    /// A new stream of EVE lines of `types` (every type when empty).
    pub fn subscribe(&self, types: Vec<String>) -> Receiver<Arc<str>> {
        let (tx, rx) = crossbeam_channel::bounded(SUBSCRIBER_QUEUE);
        self.lock().subscribers.push(Subscriber { tx, types });
        rx
    }

    /// Lines subscribers could not take in time.
    pub fn stream_dropped(&self) -> u64 {
        self.lock().stream_dropped
    }

    /// Score latency percentiles over the last calls, in milliseconds.
    fn latency(s: &State) -> (f64, f64) {
        if s.latencies.is_empty() {
            return (0.0, 0.0);
        }
        let mut v: Vec<u32> = s.latencies.iter().copied().collect();
        v.sort_unstable();
        let pct = |p: f64| f64::from(v[((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1]) / 1000.0;
        (pct(0.5), pct(0.99))
    }

    /// The text of each rule alert's rule, read from its file once and kept.
    fn fill_rule_texts(&self, alerts: &mut [AlertRow]) {
        let mut wanted: Vec<((u32, u64), RuleOrigin)> = Vec::new();
        {
            let s = self.lock();
            for a in alerts.iter().filter(|a| a.kind == AlertKind::Rule) {
                let key = (a.gid, a.sid);
                if !s.rule_texts.contains_key(&key) && !wanted.iter().any(|(k, _)| *k == key) {
                    if let Some(o) = s.rule_origins.get(&key) {
                        wanted.push((key, o.clone()));
                    }
                }
            }
        }
        // Files are read without the lock held: the writer never waits for them.
        let read: Vec<((u32, u64), Option<String>)> = wanted.into_iter().map(|(k, (f, l))| (k, read_rule(&f, l))).collect();
        let mut s = self.lock();
        if s.rule_texts.len() + read.len() > RULE_TEXTS_KEPT {
            s.rule_texts.clear();
        }
        s.rule_texts.extend(read);
        for a in alerts.iter_mut().filter(|a| a.kind == AlertKind::Rule) {
            a.rule = s.rule_texts.get(&(a.gid, a.sid)).cloned().flatten();
        }
    }

    /// The snapshot a console (or any `snapshot` request) reads: it also tells the workers
    /// that someone is looking ([`Watch`]).
    pub fn snapshot(&self, policy: Option<&PolicyHandle>) -> Snapshot {
        self.watch.touch();
        self.figures(policy)
    }

    /// The snapshot without telling the workers to walk their tables: for `/metrics`, which
    /// reads only counters (the flow count comes with every sample).
    pub fn figures(&self, policy: Option<&PolicyHandle>) -> Snapshot {
        let mut alerts: Vec<AlertRow> = self.lock().alerts.iter().cloned().collect();
        self.fill_rule_texts(&mut alerts);
        let s = self.lock();
        let at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
        let now_us = (at * 1e6) as i64;
        let mut flows: Vec<FlowRow> = s
            .flows
            .iter()
            .flat_map(|w| w.largest.iter().map(move |f| (w, f)))
            .map(|(w, f)| flow_row(f, w.app.get(&f.flow.flow_id).copied(), s.ml_by_flow.get(&f.flow.flow_id), now_us))
            .collect();
        flows.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.flow_id.cmp(&b.flow_id)));
        flows.truncate(SNAPSHOT_ROWS);
        let column = |i: usize| s.history.iter().map(|h| [h.0, h.1, h.2][i]).collect::<Vec<u64>>();
        let scoring = s.scoring.as_ref().map(|sc| {
            let (p50, p99) = Telemetry::latency(&s);
            Scoring {
                backend: sc.backend.clone(),
                backend_note: sc.backend_note.clone(),
                model: sc.model.clone(),
                previous_model: sc.previous_model.clone(),
                flows_scored: sc.flows_scored,
                batches: sc.calls,
                mean_batch: if sc.calls > 0 { sc.flows_scored as f64 / sc.calls as f64 } else { 0.0 },
                latency_p50_ms: p50,
                latency_p99_ms: p99,
                shadow: sc.shadow.clone(),
            }
        });
        Snapshot {
            at,
            uptime_secs: s.started.map_or(0, |t| t.elapsed().as_secs()),
            source: s.source.to_string(),
            traffic: Traffic {
                packets_per_sec: column(0),
                bits_per_sec: column(1),
                drops_per_sec: column(2),
                packets_total: s.totals.0,
                bytes_total: s.totals.1,
                drops_by_reason: s.drops.clone(),
            },
            capture: CaptureHealth { mode: s.mode.clone(), inline: s.inline, fail_mode: s.fail_mode.clone(), ports: s.ports.clone(), events_lost: s.events_lost },
            top_talkers: s.talkers.clone(),
            flows,
            flows_active: s.flows.iter().map(|w| w.active).sum(),
            alerts,
            alerts_total: s.alerts_total,
            enforcement: enforcement(policy),
            scoring,
            drift: s.drift.clone(),
            rules: s.rules.clone(),
        }
    }
}

fn enforcement(policy: Option<&PolicyHandle>) -> Enforcement {
    let Some(p) = policy else {
        return Enforcement { mode: "off".into(), nft_missing: Some("no policy".into()), ..Enforcement::default() };
    };
    let now = portcullis_policy::wall_now();
    let mut active: Vec<ActiveRow> = p
        .active()
        .into_iter()
        .filter(|(_, a)| a.until > now)
        .map(|(ip, a)| ActiveRow {
            addr: ip,
            action: a.action.name().to_string(),
            decision: a.id,
            expires_in_secs: ((a.until - now).max(0) / 1_000_000) as u64,
            dry_run: a.dry_run,
            hits: 0,
        })
        .collect();
    active.sort_by(|a, b| a.expires_in_secs.cmp(&b.expires_in_secs).then(a.addr.cmp(&b.addr)));
    let pending = p
        .pending()
        .into_iter()
        .map(|d| PendingRow {
            id: d.id,
            action: d.action.name().to_string(),
            target: d.target,
            duration_secs: d.duration_secs,
            trigger: d.trigger.clone(),
            age_secs: ((now - d.at).max(0) / 1_000_000) as u64,
        })
        .collect();
    Enforcement { mode: p.mode.name().to_string(), nft_missing: p.nft_missing.clone(), active, pending }
}

fn flow_row(f: &LiveFlow, app: Option<&'static str>, ml: Option<&(String, f32)>, now_us: i64) -> FlowRow {
    let k = &f.flow.key;
    let ports = matches!(k.proto, 6 | 17 | 132);
    FlowRow {
        flow_id: f.flow.flow_id,
        proto: portcullis_eve::proto_name(k.proto).to_string(),
        src: k.src_ip(),
        src_port: ports.then_some(k.sport),
        dst: k.dst_ip(),
        dst_port: ports.then_some(k.dport),
        app_proto: app.map(String::from),
        packets: f.flow.pkts_toserver + f.flow.pkts_toclient,
        bytes: f.flow.bytes_toserver + f.flow.bytes_toclient,
        age_secs: ((now_us - f.flow.start.0).max(0) as f64 / 1e6).min(1e9),
        state: (k.proto == 6).then(|| f.tcp_state.as_str().to_string()),
        ml_class: ml.map(|m| m.0.clone()),
        ml_score: ml.map(|m| m.1),
    }
}

/// The console's row for an EVE alert as written.
pub fn alert_row(v: &Value) -> Option<AlertRow> {
    let a = v.get("alert")?;
    let ip = |k: &str| v.get(k).and_then(Value::as_str).and_then(|s| s.parse::<IpAddr>().ok());
    let port = |k: &str| v.get(k).and_then(Value::as_u64).and_then(|p| u16::try_from(p).ok());
    let ml = a.pointer("/context/ml").map(|m| MlVerdict {
        model: format!("{} {}", m["model"].as_str().unwrap_or(""), m["version"].as_str().unwrap_or("")).trim().to_string(),
        class: m["class"].as_str().unwrap_or("").to_string(),
        probability: m["probability"].as_f64().unwrap_or(0.0) as f32,
        anomaly: m["anomaly_score"].as_f64().map(|x| x as f32),
        features: m["top_features"]
            .as_array()
            .map(|fs| {
                fs.iter()
                    .map(|f| (f["name"].as_str().unwrap_or("").to_string(), f["value"].as_f64().unwrap_or(0.0) as f32, f["weight"].as_f64().unwrap_or(0.0) as f32))
                    .collect()
            })
            .unwrap_or_default(),
    });
    let gid = a["gid"].as_u64().unwrap_or(1) as u32;
    let kind = match (&ml, a.pointer("/context/ml/detector").and_then(Value::as_str)) {
        (Some(_), Some("anomaly")) => AlertKind::Anomaly,
        (Some(_), _) => AlertKind::Ml,
        (None, _) if a.pointer("/context/drift").is_some() => AlertKind::Drift,
        _ => AlertKind::Rule,
    };
    Some(AlertRow {
        timestamp: v["timestamp"].as_str().unwrap_or("").to_string(),
        kind,
        gid,
        sid: a["signature_id"].as_u64().unwrap_or(0),
        signature: a["signature"].as_str().unwrap_or("").to_string(),
        severity: a["severity"].as_u64().unwrap_or(3).min(255) as u8,
        category: a["category"].as_str().filter(|c| !c.is_empty()).map(String::from),
        src: ip("src_ip"),
        src_port: port("src_port"),
        dst: ip("dest_ip"),
        dst_port: port("dest_port"),
        proto: v["proto"].as_str().map(String::from),
        action: a["action"].as_str().unwrap_or("allowed").to_string(),
        rule: None,
        ml,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn alert_rows_read_rule_and_model_alerts() {
        let rule = json!({"timestamp": "2026-12-06T10:00:00.000000+0000", "event_type": "alert", "src_ip": "10.0.0.2", "src_port": 4000,
            "dest_ip": "10.0.0.1", "dest_port": 22, "proto": "TCP",
            "alert": {"action": "allowed", "gid": 1, "signature_id": 2001219, "rev": 20, "signature": "ET SCAN SSH", "category": "Attempted Information Leak", "severity": 2}});
        let r = alert_row(&rule).unwrap();
        assert_eq!((r.kind, r.sid, r.severity, r.dst_port), (AlertKind::Rule, 2001219, 2, Some(22)));
        let ml = json!({"timestamp": "t", "flow_id": 7, "src_ip": "10.0.0.2", "dest_ip": "10.0.0.1", "proto": "TCP",
            "alert": {"action": "allowed", "gid": 9000, "signature_id": 9000004, "signature": "ML Portscan", "category": "Machine learning: flow classifier", "severity": 2,
              "context": {"ml": {"model": "cicids2017", "version": "v3", "detector": "classifier", "class": "Portscan", "probability": 0.97,
                "top_features": [{"name": "Flow Duration", "value": 1.0, "weight": 0.5}]}}}});
        let r = alert_row(&ml).unwrap();
        assert_eq!(r.kind, AlertKind::Ml);
        let v = r.ml.unwrap();
        assert_eq!((v.class.as_str(), v.model.as_str(), v.features.len()), ("Portscan", "cicids2017 v3", 1));
        assert!(alert_row(&json!({"event_type": "flow"})).is_none());
    }

    #[test]
    fn rule_alerts_carry_their_rule_text_read_from_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("local.rules");
        std::fs::write(&file, "# a comment\nalert tcp any any -> any 22 (msg:\"ssh\"; \\\n  sid:7; rev:1;)\n").unwrap();
        let t = Telemetry::new("run", "pcap", false, None);
        let path: Arc<std::path::Path> = Arc::from(file.as_path());
        t.set_rule_origins(HashMap::from([((1, 7), (path, 2))]));
        t.publish("alert", br#"{"timestamp":"t","event_type":"alert","alert":{"gid":1,"signature_id":7,"signature":"ssh","severity":2}}"#);
        t.publish("alert", br#"{"timestamp":"t","event_type":"alert","alert":{"gid":1,"signature_id":8,"signature":"unknown","severity":2}}"#);
        let s = t.snapshot(None);
        assert_eq!(s.alerts[0].rule.as_deref(), Some("alert tcp any any -> any 22 (msg:\"ssh\"; sid:7; rev:1;)"));
        assert_eq!(s.alerts[1].rule, None, "a sid with no known origin has no text");
    }

    #[test]
    fn rates_come_from_consecutive_samples() {
        let t = Telemetry::new("run", "af-packet", false, None);
        let t0 = Instant::now();
        let port = |packets, bytes| PortSample { name: "veth0".into(), stats: PortStats { packets, bytes, ..PortStats::default() }, backlog: 0 };
        t.record_ports(t0, &[port(100, 10_000)], vec![("ring".into(), 0)], 0);
        t.record_ports(t0 + std::time::Duration::from_secs(2), &[port(300, 30_000)], vec![("ring".into(), 4), ("kernel".into(), 0)], 0);
        let s = t.snapshot(None);
        assert_eq!(s.traffic.packets_per_sec, [100]);
        assert_eq!(s.traffic.bits_per_sec, [80_000]);
        assert_eq!(s.traffic.drops_per_sec, [2]);
        assert_eq!(s.traffic.drops_by_reason, [("ring".to_string(), 4)], "reasons with no drops are left out");
        assert_eq!(s.capture.ports[0].packets_per_sec, 100);
        assert_eq!(s.enforcement.mode, "off");
    }

    #[test]
    fn the_flow_tables_are_walked_only_while_someone_reads_snapshots() {
        let t = Telemetry::new("run", "af-packet", false, None);
        let watch = t.watch();
        assert!(!watch.watched(), "nobody has read a snapshot yet");
        let _ = t.snapshot(None);
        assert!(watch.watched());
        // On a host up for less than this the test cannot go back far enough; such a host
        // does not run CI.
        let w = Watch { epoch: Instant::now().checked_sub(WATCH_WINDOW * 2).expect("uptime over 3 minutes"), last: AtomicU64::new(0) };
        w.touch();
        assert!(w.watched());
        w.last.store(1, Ordering::Relaxed);
        assert!(!w.watched(), "a read longer than WATCH_WINDOW ago does not count");
    }

    #[test]
    fn talker_rates_count_only_what_each_worker_saw_both_times() {
        let t = Telemetry::new("run", "af-packet", false, None);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let (a, b) = (ip("192.0.2.1"), ip("192.0.2.2"));
        let sample = |sources: Vec<(IpAddr, (u64, u64, u64))>| FlowSample { sources, walked: true, active: 1, ..FlowSample::default() };
        let t0 = Instant::now();
        let talkers = |t: &Telemetry| t.figures(None).top_talkers.into_iter().map(|x| (x.addr, x.bytes_per_sec, x.packets_per_sec, x.flows)).collect::<Vec<_>>();
        t.record_flows(t0, vec![sample(vec![(a, (1000, 10, 1))]), sample(vec![(a, (500, 5, 1)), (b, (100, 1, 1))])]);
        assert_eq!(talkers(&t), [(a, 0, 0, 2), (b, 0, 0, 1)], "no rate before a second sample");
        // Two seconds later: a grew on both workers; b left worker 1's list.
        t.record_flows(t0 + Duration::from_secs(2), vec![sample(vec![(a, (3000, 30, 1))]), sample(vec![(a, (900, 9, 1))])]);
        assert_eq!(talkers(&t), [(a, 1200, 12, 2)]);
        // b is back on worker 1 holding 10,000 bytes: not a jump, since worker 1 did not list
        // it last time.
        t.record_flows(t0 + Duration::from_secs(3), vec![sample(vec![(a, (3000, 30, 1))]), sample(vec![(a, (900, 9, 1)), (b, (10_000, 50, 3))])]);
        assert_eq!(talkers(&t), [(b, 0, 0, 3), (a, 0, 0, 2)], "equal rates: more flows first");
        // Unwalked samples (nobody looking): no talkers, and the next walk starts rates afresh.
        t.record_flows(t0 + Duration::from_secs(4), vec![FlowSample { active: 7, ..FlowSample::default() }; 2]);
        let s = t.figures(None);
        assert!(s.top_talkers.is_empty());
        assert_eq!(s.flows_active, 14);
        t.record_flows(t0 + Duration::from_secs(5), vec![sample(vec![(a, (9000, 90, 1))]), sample(vec![])]);
        assert_eq!(talkers(&t), [(a, 0, 0, 1)]);
    }

    #[test]
    fn subscribers_get_their_types_and_slow_ones_lose_lines_counted() {
        let t = Telemetry::new("run", "pcap", false, None);
        let alerts = t.subscribe(vec!["alert".into()]);
        let all = t.subscribe(Vec::new());
        t.publish("decision", br#"{"event_type":"decision"}"#);
        t.publish("alert", br#"{"event_type":"alert","alert":{"signature":"x"}}"#);
        assert_eq!(alerts.try_iter().count(), 1);
        assert_eq!(all.try_iter().count(), 2);
        for _ in 0..SUBSCRIBER_QUEUE + 5 {
            t.publish("decision", b"{}");
        }
        assert_eq!(t.stream_dropped(), 5);
        drop(all);
        t.publish("decision", b"{}");
        assert_eq!(t.lock().subscribers.len(), 1, "a closed stream is forgotten");
        assert_eq!(t.snapshot(None).alerts_total, 1);
    }
}
