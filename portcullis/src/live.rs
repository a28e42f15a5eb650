//! The live daemon's engine (`portcullis run`): capture ports → run-to-completion workers →
//! EVE.
//!
//! Unlike replay, whose reader dispatches every packet by flow hash, each worker here owns
//! one capture port (an AF_XDP queue, an AF_PACKET fanout member) and the flow-table shard of
//! the flows that port sees, as Suricata's `workers` runmode does: the kernel's symmetric
//! hash (AF_PACKET fanout, or RSS configured symmetric) keeps both directions of a flow on
//! one port. A worker decodes, tracks, inspects and scores a batch, and, inline, gives the
//! port its verdicts before the batch's frames are forwarded, so a drop rule stops the packet
//! that matched it. Events go to one writer thread in the order workers finish batches.

use std::net::Ipv6Addr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, RecvTimeoutError, Sender};
use portcullis_applayer::AppStats;
use portcullis_common::xdp::xdp_stat;
use portcullis_common::PacketMeta;
use portcullis_dataplane::live::xdp::{Blocklist, XdpProgram};
use portcullis_dataplane::live::{self, Capture, LiveConfig, LiveError, Port, PortStats, Topology};
use portcullis_dataplane::{DecodeStats, Decoded, Decoder, DecoderConfig, Frame, LinkType};
use portcullis_eve::{stats_event, CaptureStats, DetectStats, EveError, EveWriter, IpsStats, Stats, XdpStats};
use portcullis_flowtable::{FlowConfig, FlowStats};

use crate::inspect::{Inspector, NoRules};
use crate::ml::{load_model, AlertLimit, ModelError, WorkerMl};
use crate::policy::{decision_event, PolicyHandle};
use crate::eve_out::SharedOutputs;
use crate::ml::{MlModel, ShadowCounts};
use portcullis_inference::{DriftConfig, DriftCounts, DriftEvent, DriftMonitor};
use crate::model_swap::ModelSlot;
use crate::reload::{EngineSlot, Loaded, RuleLoader, RuleReloader};
use crate::telemetry::{FlowSample, PortSample, ScoringSample, Telemetry, Watch, FLOWS_PER_WORKER};
/// What an overloaded inline worker does with the frames it has no time to inspect: the
/// config's `capture.fail-mode`, used as it is.
pub use portcullis_config::FailMode;
use crate::replay::{Batch, EventSink, Shard, WorkerOut, WriteOptions};

/// How the daemon runs.
#[derive(Clone, Debug)]
pub struct LiveOptions {
    pub topology: Topology,
    pub capture: LiveConfig,
    /// Frames per poll and per inspection batch.
    pub batch_size: usize,
    pub flow: FlowConfig,
    pub decoder: DecoderConfig,
    /// EVE to this file, when `outputs` is not given (tests of the capture alone).
    pub eve: Option<PathBuf>,
    /// Where EVE goes (files, sockets, syslog, Redis, the decision webhook); takes the place
    /// of `eve` when given.
    pub outputs: Option<portcullis_outputs::OutputsConfig>,
    /// Set by SIGHUP: the outputs reopen their files (logrotate) at the next writer round.
    pub reopen: Option<Arc<AtomicBool>>,
    pub log_flows: bool,
    pub log_stats: bool,
    pub log_alerts: bool,
    pub log_drops: bool,
    pub model: Option<PathBuf>,
    pub ml_alert_limit: Option<AlertLimit>,
    pub fail_mode: FailMode,
    /// Frames waiting in a port's ring above which its worker counts as overloaded.
    pub backlog_limit: usize,
    /// Seconds between `stats` events.
    pub stats_interval: Duration,
    /// Networks `block` refuses, as (IPv6 or IPv4-mapped address, prefix length).
    pub allowlist: Vec<(Ipv6Addr, u8)>,
    /// The policy that turns alerts into decisions and enforces them (the daemon always has
    /// one; tests of the capture alone may run without).
    pub policy: Option<PolicyHandle>,
}

impl LiveOptions {
    pub fn new(topology: Topology) -> Self {
        LiveOptions {
            topology,
            capture: LiveConfig::default(),
            batch_size: 256,
            flow: FlowConfig::default(),
            decoder: DecoderConfig::default(),
            eve: None,
            outputs: None,
            reopen: None,
            log_flows: true,
            log_stats: true,
            log_alerts: true,
            log_drops: true,
            model: None,
            ml_alert_limit: Some(AlertLimit::default()),
            fail_mode: FailMode::Open,
            backlog_limit: 1024,
            stats_interval: Duration::from_secs(8),
            allowlist: Vec::new(),
            policy: None,
        }
    }
}

/// A failure of the daemon itself.
#[derive(Debug, thiserror::Error)]
pub enum LiveRunError {
    #[error(transparent)]
    Capture(#[from] LiveError),
    #[error(transparent)]
    Eve(#[from] EveError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Outputs(portcullis_outputs::OutputsError),
    #[error("a worker thread panicked")]
    WorkerPanic,
    #[error("capture failed on {0}; the daemon stopped")]
    Port(String),
}

/// What a run did, for the summary printed at exit.
#[derive(Debug, Clone, Default)]
pub struct LiveSummary {
    pub kind: &'static str,
    /// One line per port (`"veth0 queue 0: af-xdp copy mode"`).
    pub ports: Vec<String>,
    /// What was chosen and why (fallbacks, copy mode, XDP attach).
    pub notes: Vec<String>,
    pub elapsed: Duration,
    pub decoder: DecodeStats,
    pub flow: FlowStats,
    pub capture: CaptureStats,
    pub detect: Option<DetectStats>,
    pub ips: Option<IpsStats>,
    pub app_layer: Option<AppStats>,
    pub flows: u64,
    pub events_written: u64,
}

/// The counters one worker reports: its port's, its shard's and its own.
#[derive(Clone, Debug, Default)]
struct WorkerStats {
    port: PortStats,
    decoder: DecodeStats,
    flow: FlowStats,
    app: AppStats,
    overload_forwarded: u64,
    overload_dropped: u64,
    /// Inline: worker outputs (events of a batch) thrown away because the writer was behind.
    events_lost: u64,
    /// Frames waiting in the port's ring.
    backlog: u64,
    /// Rows scored so far, and the latency of each scoring call since the last report.
    ml_scored: u64,
    ml_latencies: Vec<u32>,
    ml_shadow: ShadowCounts,
    /// Binned features of the flows scored since the last report (with their model).
    drift: Option<(Arc<MlModel>, DriftCounts)>,
}

enum LiveMsg {
    Out(WorkerOut),
    Stats(usize, Box<WorkerStats>),
    Flows(usize, Box<FlowSample>),
}

/// How often workers report their counters and flows for the console and the metrics.
const TELEMETRY_TICK: Duration = Duration::from_secs(1);

/// What the capture opened, handed to `run_live`'s `on_ready` before any frame is read.
#[derive(Debug)]
pub struct Started<'a> {
    pub kind: &'static str,
    pub ports: &'a [String],
    pub notes: &'a [String],
}

/// Shared between the daemon's threads and its control socket: the block map and the
/// counters of the latest stats round.
#[derive(Clone, Debug)]
pub struct Control {
    pub blocklist: Option<Blocklist>,
    /// Why there is no block map, when there is none.
    pub blocklist_missing: Option<String>,
    pub allowlist: Vec<(Ipv6Addr, u8)>,
    /// The last `stats` event, as written.
    pub last_stats: Arc<Mutex<Option<serde_json::Value>>>,
    /// The policy: operator blocks, approvals and what is in force go through it.
    pub policy: Option<PolicyHandle>,
    /// What the console and `subscribe` read.
    pub telemetry: Telemetry,
    /// Reloads the rules (`reload-rules`, SIGHUP), when the daemon has rules to reload.
    pub reload: Option<RuleReloader>,
    /// The models in force, for `swap-model`, `rollback-model` and `promote-shadow`.
    pub models: Option<Arc<ModelSlot>>,
}

impl Control {
    /// Whether `ip` lies in the allowlist.
    pub fn allowed(&self, ip: std::net::IpAddr) -> bool {
        let v6 = match ip {
            std::net::IpAddr::V4(v4) => v4.to_ipv6_mapped(),
            std::net::IpAddr::V6(v6) => v6,
        };
        self.allowlist.iter().any(|&(net, len)| {
            let mask = if len == 0 { 0 } else { u128::MAX << (128 - u32::from(len)) };
            u128::from(v6) & mask == u128::from(net) & mask
        })
    }
}

/// Opens the capture (say what was chosen on stderr), then runs until `stop` is set,
/// inspecting with `engine` when given. `on_ready` is called once every port is open, with
/// the handle the control socket uses.
pub fn run_live<I: Inspector>(
    opts: &LiveOptions,
    engine: Option<Arc<I>>,
    stop: Arc<AtomicBool>,
    on_ready: impl FnOnce(&Control, &Started<'_>),
) -> Result<LiveSummary, LiveRunError> {
    run_live_reloadable(opts, engine, None, stop, on_ready)
}

/// As [`run_live`], with `loader` to build a new engine when the rules are reloaded
/// (`Control::reload`): built aside, swapped in between batches, the old one kept when the
/// new rules do not load.
pub fn run_live_reloadable<I: Inspector>(
    opts: &LiveOptions,
    engine: Option<Arc<I>>,
    loader: Option<Arc<RuleLoader<I>>>,
    stop: Arc<AtomicBool>,
    on_ready: impl FnOnce(&Control, &Started<'_>),
) -> Result<LiveSummary, LiveRunError> {
    let started = Instant::now();
    let capture = live::open(&opts.capture, &opts.topology)?;
    let Capture { kind, ports, xdp, notes } = capture;
    let n = ports.len().max(1);
    let (model, mut scorers) = match &opts.model {
        Some(dir) => {
            let (m, s) = load_model(dir, n)?;
            (Some(m), s)
        }
        None => (None, Vec::new()),
    };
    let outputs = match &opts.outputs {
        Some(cfg) if !cfg.eve.is_empty() || cfg.webhook.is_some() => {
            let o = portcullis_outputs::Outputs::open(cfg).map_err(LiveRunError::Outputs)?;
            for n in o.notes() {
                eprintln!("note: {n}");
            }
            Some(SharedOutputs::new(o))
        }
        _ => None,
    };
    let eve = match (&outputs, &opts.eve) {
        (Some(o), _) => Some(EveWriter::new(Box::new(o.line_sink()))),
        (None, Some(p)) => Some(EveWriter::open(p)?),
        (None, None) => None,
    };
    let mut control = Control {
        blocklist: xdp.as_ref().map(XdpProgram::blocklist),
        blocklist_missing: match &xdp {
            Some(_) => None,
            None => Some(notes.iter().find(|n| n.contains("XDP")).cloned().unwrap_or_else(|| "the XDP program is not attached".into())),
        },
        allowlist: opts.allowlist.clone(),
        last_stats: Arc::new(Mutex::new(None)),
        policy: opts.policy.clone(),
        reload: None,
        models: model.as_ref().map(|m| ModelSlot::new(m.clone(), n, Arc::new(|dir: &std::path::Path, workers: usize| load_model(dir, workers)))),
        telemetry: Telemetry::new("run", kind.name(), opts.topology.is_inline(), opts.topology.is_inline().then_some(match opts.fail_mode {
            FailMode::Open => "open",
            FailMode::Closed => "closed",
        })),
    };
    let slot = engine.clone().map(EngineSlot::new);
    if let (Some(slot), Some(loader)) = (&slot, loader) {
        control.reload = Some(reloader(slot.clone(), loader, control.telemetry.clone()));
    }
    // Blocks also go to the XDP map, which drops before the kernel's stack.
    if let (Some(p), Some(b)) = (&opts.policy, &control.blocklist) {
        p.set_fast_drop(Box::new(XdpFastDrop(b.clone())));
    }
    let descriptions: Vec<String> = ports.iter().map(Port::describe).collect();
    on_ready(&control, &Started { kind: kind.name(), ports: &descriptions, notes: &notes });

    let mut flow_cfg = opts.flow;
    flow_cfg.memcap = (flow_cfg.memcap / n as u64).max(1 << 16);
    flow_cfg.features = model.is_some();
    let inline = opts.topology.is_inline();

    let (tx, rx) = bounded::<LiveMsg>(n * 64);
    // The first port that failed, which stops the daemon.
    let failed: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    // Workers still polling. A worker that stopped keeps its port open until every other
    // one stopped too: closing a fanout member hands its flows to the members left, which
    // would see the rest of those flows (a dropped flow's retransmissions, say) as new ones.
    let polling = Arc::new(AtomicUsize::new(n));
    let mut handles = Vec::with_capacity(n);
    for (i, port) in ports.into_iter().enumerate() {
        let tx = tx.clone();
        let engine = engine.clone();
        let ml = model.as_ref().zip(scorers.pop()).map(|(m, s)| WorkerMl::new(m.clone(), s));
        let shared = WorkerShared { stop: stop.clone(), failed: failed.clone(), polling: polling.clone(), slot: slot.clone(), models: control.models.clone(), watch: control.telemetry.watch() };
        let w = WorkerSettings {
            index: i,
            flow: flow_cfg,
            decoder: opts.decoder,
            batch_size: opts.batch_size.max(1),
            inline,
            fail_mode: opts.fail_mode,
            backlog_limit: opts.backlog_limit,
            stats_interval: opts.stats_interval,
        };
        handles.push(
            thread::Builder::new()
                .name(format!("live-worker-{i}"))
                .spawn(move || live_worker(w, port, engine, ml, tx, shared))
                .expect("spawn worker thread"),
        );
    }
    drop(tx);

    let wopts = WriteOptions { log_flows: opts.log_flows, log_alerts: opts.log_alerts, log_drops: opts.log_drops, ml_alert_limit: opts.ml_alert_limit };
    let mut sink = EventSink::new(eve, wopts, engine.clone());
    sink.tap = Some(control.telemetry.clone());
    sink.slot = slot.clone();
    let telemetry = control.telemetry.clone();
    let mut flow_samples: Vec<FlowSample> = vec![FlowSample::default(); n];
    let mut ml_calls = 0u64;
    let mut ml_latencies: Vec<u32> = Vec::new();
    let mut next_tick = Instant::now() + TELEMETRY_TICK;
    let mut drift = DriftWatch::default();
    let policy = opts.policy.clone();
    if policy.is_some() {
        sink.triggers = Some(Vec::new());
    }
    let mut latest: Vec<WorkerStats> = vec![WorkerStats::default(); n];
    let mut next_stats = Instant::now() + opts.stats_interval;
    let has_rules = engine.is_some();
    // The workers, the sink and the slot hold what they need; this reference would keep the
    // first rules' engine alive through every reload.
    drop(engine);
    // The bind mode each AF_XDP port ended up with, for stats (the notes say it at start).
    let zero_copy_ports = descriptions.iter().filter(|d| d.ends_with("af-xdp zero-copy")).count() as u64;
    let copy_ports = descriptions.iter().filter(|d| d.ends_with("af-xdp copy mode")).count() as u64;
    let snapshot = |latest: &[WorkerStats], sink: &EventSink<I>, xdp: Option<&XdpProgram>| -> Stats {
        let mut w = WorkerStats::default();
        for s in latest {
            w.port.merge(&s.port);
            w.decoder.merge(&s.decoder);
            w.flow.merge(&s.flow);
            w.app.merge(&s.app);
            w.overload_forwarded += s.overload_forwarded;
            w.overload_dropped += s.overload_dropped;
            w.events_lost += s.events_lost;
        }
        let t = &sink.totals;
        let xdp = xdp.and_then(|x| {
            let c = x.stats().ok()?;
            let mut entries = x.blocklist().list().unwrap_or_default();
            entries.sort_by_key(|e| std::cmp::Reverse(e.hits));
            entries.truncate(100);
            Some(XdpStats {
                blocked: c[xdp_stat::BLOCKED as usize],
                redirected: c[xdp_stat::REDIRECTED as usize],
                passed: c[xdp_stat::PASSED as usize],
                malformed: c[xdp_stat::MALFORMED as usize],
                entries,
            })
        });
        Stats {
            uptime_secs: started.elapsed().as_secs(),
            decoder: w.decoder,
            flow: w.flow,
            capture_errors: 0,
            detect: (has_rules || model.is_some())
                .then_some(DetectStats { alert: t.alerts + t.ml_alerts, alerts_suppressed: t.suppressed + t.ml_suppressed }),
            ips: inline.then(|| {
                let mut ips = t.ips;
                // Fail-closed drops are verdicts the port applied, so already in `dropped`.
                ips.blocked = w.port.dropped;
                ips.accepted = w.port.packets.saturating_sub(ips.blocked);
                ips
            }),
            app_layer: has_rules.then_some(w.app),
            capture: Some(CaptureStats {
                kind: kind.name(),
                port: w.port,
                inline,
                overload_forwarded: w.overload_forwarded,
                overload_dropped: w.overload_dropped,
                events_lost: w.events_lost,
                zero_copy_ports,
                copy_ports,
                xdp,
            }),
        }
    };
    let write_stats = |sink: &mut EventSink<I>, latest: &[WorkerStats]| -> Stats {
        let stats = snapshot(latest, sink, xdp.as_ref());
        let mut ev = stats_event(live::now(), &stats);
        if let (Some(p), Some(serde_json::Value::Object(m))) = (&policy, ev.get_mut("stats")) {
            m.insert("policy".into(), p.stats_json());
        }
        if let (Some(o), Some(serde_json::Value::Object(m))) = (&outputs, ev.get_mut("stats")) {
            m.insert("outputs".into(), serde_json::to_value(o.lock().stats()).unwrap_or_default());
        }
        if opts.log_stats {
            if let Some(w) = sink.eve.as_mut() {
                if let Err(e) = w.write(&ev).and_then(|()| w.flush()) {
                    sink.failed.get_or_insert(e);
                }
            }
        }
        if let Ok(mut l) = control.last_stats.lock() {
            *l = Some(ev);
        }
        stats
    };
    loop {
        // With a policy, decisions made elsewhere (the control socket, the enforcer's
        // outcomes) are written within a fraction of a second even when no traffic comes.
        let mut wait = next_stats.saturating_duration_since(Instant::now());
        if policy.is_some() {
            wait = wait.min(DECISION_POLL);
        }
        let disconnected = match rx.recv_timeout(wait) {
            Ok(LiveMsg::Out(out)) => {
                sink.write_group([out]);
                // Alerts reach files and peers now, not when a buffer fills.
                if outputs.is_some() {
                    if let Some(Err(e)) = sink.eve.as_mut().map(EveWriter::flush) {
                        sink.failed.get_or_insert(e);
                    }
                }
                false
            }
            Ok(LiveMsg::Stats(i, mut s)) => {
                if let Some((m, counts)) = s.drift.take() {
                    drift.add(&m, &counts, started.elapsed());
                }
                ml_calls += s.ml_latencies.len() as u64;
                ml_latencies.append(&mut s.ml_latencies);
                latest[i] = *s;
                false
            }
            Ok(LiveMsg::Flows(i, f)) => {
                flow_samples[i] = *f;
                false
            }
            Err(RecvTimeoutError::Timeout) => false,
            Err(RecvTimeoutError::Disconnected) => true,
        };
        if let Some(p) = &policy {
            if let Some(t) = sink.triggers.as_mut() {
                p.on_triggers(t);
                t.clear();
            }
            write_decisions(&mut sink, p, outputs.as_ref());
        }
        if let (Some(flag), Some(o)) = (&opts.reopen, &outputs) {
            if flag.swap(false, Ordering::Relaxed) {
                if let Some(Err(e)) = sink.eve.as_mut().map(EveWriter::flush) {
                    sink.failed.get_or_insert(e);
                }
                match o.lock().reopen() {
                    Ok(()) => eprintln!("SIGHUP: EVE outputs reopened"),
                    Err(e) => eprintln!("warning: SIGHUP: {e}; still writing where it was"),
                }
            }
        }
        if disconnected {
            break;
        }
        let now = Instant::now();
        if now >= next_tick {
            next_tick = now + TELEMETRY_TICK;
            // After a reload, let go of the old rules even when no batch comes to say so.
            sink.follow_reload();
            if let Some(ev) = drift.tick(started.elapsed()) {
                write_drift_alert(&mut sink, &ev);
            }
            telemetry.set_drift(drift.view(model.as_deref()));
            telemetry_tick(&telemetry, now, &descriptions, &latest, xdp.as_ref(), &flow_samples);
            if let Some(slot) = &control.models {
                let (active, previous, shadow) = slot.describe();
                let mut counts = ShadowCounts::default();
                for w in &latest {
                    counts.merge(&w.ml_shadow);
                }
                telemetry.record_scoring(ScoringSample {
                    backend: model.as_ref().map_or("cpu", |m| m.backend).to_string(),
                    backend_note: None,
                    model: active,
                    previous_model: previous,
                    shadow: shadow.map(|model| portcullis_api::Shadow {
                        model,
                        flows: counts.rows,
                        agree: counts.agree,
                        only_candidate_alerts: counts.only_candidate_alerts,
                        only_active_alerts: counts.only_active_alerts,
                    }),
                    flows_scored: latest.iter().map(|w| w.ml_scored).sum(),
                    calls: ml_calls,
                    latencies_us: std::mem::take(&mut ml_latencies),
                });
            }
        }
        // Checked after every message too: under steady traffic the channel never times out.
        if now >= next_stats {
            next_stats = now + opts.stats_interval;
            write_stats(&mut sink, &latest);
            // Expired block entries leave the map; their counters were in the last stats.
            if let Some(b) = &control.blocklist {
                let _ = b.sweep();
            }
            if let Some(p) = &policy {
                p.sweep();
            }
        }
    }
    for h in handles {
        h.join().map_err(|_| LiveRunError::WorkerPanic)?;
    }
    if let Some(p) = &policy {
        // Decisions the enforcer finishes after the last round, including those of the
        // workers' last events.
        if let Some(t) = sink.triggers.as_mut() {
            p.on_triggers(t);
            t.clear();
        }
        p.sync();
        write_decisions(&mut sink, p, outputs.as_ref());
    }
    let stats = write_stats(&mut sink, &latest);
    if let Some(e) = sink.failed.take() {
        return Err(e.into());
    }
    if let Some(msg) = failed.lock().ok().and_then(|mut f| f.take()) {
        return Err(LiveRunError::Port(msg));
    }
    let mut events_written = 0;
    if let Some(w) = sink.eve.as_mut() {
        w.flush()?;
        events_written = w.events();
    }
    if let Some(o) = outputs {
        drop(sink.eve.take());
        events_written += o.decisions_written();
        // Queued sinks (Redis, unix stream, the webhook) get a moment to deliver; what they
        // still hold then is counted as lost.
        if let Some(stats) = o.close(Duration::from_secs(2)) {
            for s in stats.sinks.iter().filter(|s| s.overflow + s.lost > 0) {
                eprintln!("note: EVE output {} {}: {} event(s) dropped on overflow, {} lost", s.kind, s.target, s.overflow, s.lost);
            }
        }
    }
    // The XDP program detaches here, after the last counters were read.
    drop(xdp);
    Ok(LiveSummary {
        kind: kind.name(),
        ports: descriptions,
        notes,
        elapsed: started.elapsed(),
        decoder: stats.decoder,
        flow: stats.flow,
        capture: stats.capture.unwrap_or_default(),
        detect: stats.detect,
        ips: stats.ips,
        app_layer: stats.app_layer,
        flows: sink.totals.flows,
        events_written,
    })
}

/// Drift of live flows against the active model's reference: one monitor per model, made
/// again when a swap brings another model (its reference, its features).
#[derive(Debug, Default)]
struct DriftWatch {
    monitor: Option<(Arc<MlModel>, DriftMonitor)>,
    /// Drift events raised so far.
    events: u64,
}

impl DriftWatch {
    fn add(&mut self, model: &Arc<MlModel>, counts: &DriftCounts, now: Duration) -> Option<DriftEvent> {
        let Ok(reference) = &model.drift else { return None };
        if !matches!(&self.monitor, Some((m, _)) if Arc::ptr_eq(m, model)) {
            self.monitor = Some((model.clone(), DriftMonitor::new(reference.clone(), DriftConfig::default())));
        }
        // Counts are merged here and windows closed by `tick`.
        self.monitor.as_mut().and_then(|(_, mon)| mon.add(counts, now))
    }

    fn tick(&mut self, now: Duration) -> Option<DriftEvent> {
        let ev = self.monitor.as_mut().and_then(|(_, m)| m.tick(now));
        self.events += u64::from(ev.is_some());
        ev
    }

    /// The console's view: the last closed window, or why there is none.
    fn view(&self, model: Option<&MlModel>) -> Option<portcullis_api::Drift> {
        let model = model?;
        Some(match &self.monitor {
            Some((m, mon)) => portcullis_api::Drift {
                flows: mon.last().map_or(mon.window_flows(), |w| w.flows),
                features: mon.last().map(|w| w.features.clone()).unwrap_or_default(),
                threshold: mon.config().threshold,
                unavailable: mon.unavailable().or_else(|| m.drift.as_ref().err().cloned()),
            },
            None => portcullis_api::Drift {
                threshold: DriftConfig::default().threshold,
                unavailable: Some(match &model.drift {
                    Ok(_) => format!("waiting for flows: PSI needs a window of at least {} scored flows", portcullis_inference::MIN_FLOWS),
                    Err(why) => why.clone(),
                }),
                ..Default::default()
            },
        })
    }
}

/// Gid and sid of the drift alert (the model's gid; sids 9000000 + class are its classes').
const DRIFT_SID: u64 = 9_000_998;

/// An EVE `alert` saying which features drifted past the threshold (or came back).
fn write_drift_alert<I: Inspector>(sink: &mut EventSink<I>, ev: &DriftEvent) {
    let top: Vec<String> = ev.crossed.iter().take(3).map(|(f, p)| format!("{f} {p:.2}")).collect();
    let msg = if ev.crossed.is_empty() {
        format!("ML feature drift cleared on {} feature(s)", ev.cleared.len())
    } else {
        format!("ML feature drift: {} feature(s) past PSI {} ({})", ev.crossed.len(), ev.threshold, top.join(", "))
    };
    let event = serde_json::json!({
        "timestamp": portcullis_eve::format_timestamp(live::now()),
        "event_type": "alert",
        "alert": {
            "action": "allowed",
            "gid": crate::ml::ML_GID,
            "signature_id": DRIFT_SID,
            "rev": 1,
            "signature": msg,
            "category": "Machine learning: feature drift",
            "severity": 3,
            "context": { "drift": {
                "flows": ev.flows,
                "threshold": ev.threshold,
                "crossed": ev.crossed.iter().map(|(f, p)| serde_json::json!({ "feature": f, "psi": p })).collect::<Vec<_>>(),
                "cleared": ev.cleared.iter().map(|(f, p)| serde_json::json!({ "feature": f, "psi": p })).collect::<Vec<_>>(),
            } },
        },
    });
    eprintln!("note: {msg}");
    let line = event.to_string();
    if let Some(t) = &sink.tap {
        t.publish("alert", line.as_bytes());
    }
    if let Some(w) = sink.eve.as_mut() {
        if let Err(e) = w.write_raw(line.as_bytes()) {
            sink.failed.get_or_insert(e);
        }
    }
}

/// The control socket's `reload-rules`: loads aside, swaps on success, says what happened.
/// One reload at a time; a refused one leaves the rules in force untouched.
fn reloader<I: Inspector>(slot: Arc<EngineSlot<I>>, loader: Arc<RuleLoader<I>>, telemetry: Telemetry) -> RuleReloader {
    let one_at_a_time = Mutex::new(());
    RuleReloader(Arc::new(move || {
        let _g = one_at_a_time.lock().unwrap_or_else(|p| p.into_inner());
        let t0 = Instant::now();
        match loader() {
            Ok(Loaded { engine, info, origins }) => {
                let generation = slot.swap(Arc::new(engine));
                let reply = serde_json::json!({
                    "ok": true,
                    "generation": generation,
                    "loaded": info.loaded,
                    "failed": info.failed,
                    "errors": info.errors,
                    "secs": t0.elapsed().as_secs_f64(),
                });
                eprintln!("rules reloaded (generation {generation}): {} loaded, {} failed, in {:.1} s", info.loaded, info.failed, t0.elapsed().as_secs_f64());
                for e in &info.errors {
                    eprintln!("warning: {e}");
                }
                telemetry.set_rules(info);
                telemetry.set_rule_origins(origins);
                reply
            }
            Err(e) => {
                eprintln!("warning: rules not reloaded, the rules in force stay: {e}");
                telemetry.rules_refused(&e);
                serde_json::json!({ "ok": false, "error": format!("rules not reloaded, the rules in force stay: {e}") })
            }
        }
    }))
}

/// Hands the telemetry one second's counters: per port, and the drops by reason.
fn telemetry_tick(t: &Telemetry, now: Instant, names: &[String], latest: &[WorkerStats], xdp: Option<&XdpProgram>, flows: &[FlowSample]) {
    let ports: Vec<PortSample> = latest
        .iter()
        .enumerate()
        .map(|(i, w)| PortSample { name: names.get(i).cloned().unwrap_or_default(), stats: w.port, backlog: w.backlog })
        .collect();
    let mut p = PortStats::default();
    let (mut fail_closed, mut lost) = (0, 0);
    for w in latest {
        p.merge(&w.port);
        fail_closed += w.overload_dropped;
        lost += w.events_lost;
    }
    let xdp_blocked = xdp.and_then(|x| x.stats().ok()).map_or(0, |c| c[xdp_stat::BLOCKED as usize]);
    let drops = vec![
        ("verdict".to_string(), p.dropped.saturating_sub(fail_closed)),
        ("fail-closed".to_string(), fail_closed),
        ("ring-full".to_string(), p.rx_ring_full),
        ("kernel".to_string(), p.rx_dropped),
        ("tx-failed".to_string(), p.tx_failed),
        ("xdp-blocklist".to_string(), xdp_blocked),
    ];
    t.record_ports(now, &ports, drops, lost);
    t.record_flows(now, flows.to_vec());
}

/// How often the writer checks for decisions to write when no traffic wakes it.
const DECISION_POLL: Duration = Duration::from_millis(100);

/// Writes the EVE `decision` events of the decisions whose outcome is known.
fn write_decisions<I: Inspector>(sink: &mut EventSink<I>, p: &PolicyHandle, outputs: Option<&SharedOutputs>) {
    let done = p.take_done();
    if let Some(t) = &sink.tap {
        for d in &done {
            t.publish("decision", decision_event(d).to_string().as_bytes());
        }
    }
    if let (Some(o), false) = (outputs, done.is_empty()) {
        // Straight to the outputs, which route decisions to the webhook as well, after
        // what the EVE writer holds so the order of events is kept.
        if let Some(Err(e)) = sink.eve.as_mut().map(EveWriter::flush) {
            sink.failed.get_or_insert(e);
        }
        o.count_decisions(done.len() as u64);
        let mut o = o.lock();
        for d in &done {
            if let Err(e) = o.write_decision(d.action.name(), decision_event(d).to_string().as_bytes()) {
                sink.failed.get_or_insert(EveError::Write(std::io::Error::other(e.to_string())));
            }
        }
        if let Err(e) = o.flush() {
            sink.failed.get_or_insert(EveError::Write(std::io::Error::other(e.to_string())));
        }
        return;
    }
    if let Some(w) = sink.eve.as_mut() {
        for d in &done {
            if let Err(e) = w.write(&decision_event(d)) {
                sink.failed.get_or_insert(e);
            }
        }
        if !done.is_empty() {
            if let Err(e) = w.flush() {
                sink.failed.get_or_insert(e);
            }
        }
    }
}

/// The XDP block map as the policy's fast drop path.
#[derive(Debug)]
struct XdpFastDrop(Blocklist);

impl portcullis_policy::FastDrop for XdpFastDrop {
    fn block(&self, addr: std::net::IpAddr, duration: Duration) -> Result<(), String> {
        self.0.block(addr, Some(duration)).map_err(|e| e.to_string())
    }
    fn unblock(&self, addr: std::net::IpAddr) -> Result<(), String> {
        self.0.unblock(addr).map(|_| ()).map_err(|e| e.to_string())
    }
}

/// Runs without rules.
pub fn run_live_plain(opts: &LiveOptions, stop: Arc<AtomicBool>, on_ready: impl FnOnce(&Control, &Started<'_>)) -> Result<LiveSummary, LiveRunError> {
    run_live::<NoRules>(opts, None, stop, on_ready)
}

#[derive(Clone, Copy, Debug)]
struct WorkerSettings {
    index: usize,
    flow: FlowConfig,
    decoder: DecoderConfig,
    batch_size: usize,
    inline: bool,
    fail_mode: FailMode,
    backlog_limit: usize,
    stats_interval: Duration,
}

/// What the workers share: the stop flag, the first port failure, how many still poll, and
/// where reloaded rules appear.
struct WorkerShared<I> {
    stop: Arc<AtomicBool>,
    failed: Arc<Mutex<Option<String>>>,
    polling: Arc<AtomicUsize>,
    slot: Option<Arc<EngineSlot<I>>>,
    models: Option<Arc<ModelSlot>>,
    /// Whether a console or a scrape reads the snapshots, so the flow table is walked for them.
    watch: Arc<Watch>,
}

/// How long a poll waits for frames: also how quickly a worker notices `stop` and how late an
/// idle worker expires flows.
const POLL_TIMEOUT: Duration = Duration::from_millis(100);

fn live_worker<I: Inspector>(
    w: WorkerSettings,
    mut port: Port,
    engine: Option<Arc<I>>,
    ml: Option<WorkerMl>,
    tx: Sender<LiveMsg>,
    shared: WorkerShared<I>,
) {
    let WorkerShared { stop, failed, polling, slot, models, watch } = shared;
    let mut model_generation = models.as_ref().map_or(0, |m| m.generation());
    let with_bytes = engine.is_some();
    let mut shard = Shard::new(w.flow, engine, ml, w.inline);
    if let Some(slot) = slot {
        shard = shard.with_engine_slot(slot);
    }
    if w.inline {
        shard = shard.with_inline_stream();
    }
    let mut decoder = Decoder::new(w.decoder);
    let mut batch = Batch::default();
    let mut pcap_cnt = 0u64;
    let mut clock = live::now();
    let mut overload = (0u64, 0u64);
    let mut events_lost = 0u64;
    let mut next_stats = Instant::now();
    let mut dead = false;
    while !stop.load(Ordering::Relaxed) && !dead {
        if let Some(m) = models.as_ref().filter(|m| m.generation() != model_generation) {
            // A swapped model: taken between two batches.
            model_generation = m.generation();
            if let Some((g, model, scorer, shadow)) = m.take(w.index) {
                model_generation = g;
                shard.replace_models(model, scorer, shadow);
            }
        }
        let overloaded = w.inline && port.backlog() > w.backlog_limit;
        let r = port.poll(w.batch_size, POLL_TIMEOUT, |frames, verdicts| {
            if overloaded {
                // The ring holds more than the worker can inspect in time: apply the
                // configured policy to this batch instead of inspecting it.
                match w.fail_mode {
                    FailMode::Open => overload.0 += frames.len() as u64,
                    FailMode::Closed => {
                        overload.1 += frames.len() as u64;
                        verdicts.fill(false);
                    }
                }
                return;
            }
            batch.clear();
            let first = pcap_cnt + 1;
            for f in frames {
                pcap_cnt += 1;
                clock = clock.max(f.ts);
                let frame = Frame { ts: f.ts, orig_len: f.orig_len, link: LinkType::Ethernet, data: f.data, offset: 0 };
                let decoded = decoder.decode(&frame, pcap_cnt);
                let mut push = |mut meta: PacketMeta, sub: u8| {
                    meta.clock = clock;
                    let bytes = with_bytes.then(|| decoder.packet_bytes(&meta, f.data));
                    batch.push(meta, bytes, sub);
                };
                match decoded {
                    Decoded::Packet(meta) => push(meta, 0),
                    Decoded::Tunneled { outer, inner } => {
                        push(outer, 0);
                        push(inner, 1);
                    }
                    _ => {}
                }
            }
            let mut out = WorkerOut::new(0);
            shard.process(&batch, clock, &mut out);
            for c in out.dropped_frames() {
                if let Some(v) = c.checked_sub(first).and_then(|i| verdicts.get_mut(i as usize)) {
                    *v = false;
                }
            }
            if !out.is_empty() && !deliver(&tx, LiveMsg::Out(out), w.inline, &mut events_lost) {
                dead = true;
            }
        });
        match r {
            Ok(0) => {
                // Idle: flows still time out on the wall clock.
                clock = clock.max(live::now());
                let mut out = WorkerOut::new(0);
                shard.expire(clock, &mut out);
                if !out.is_empty() && !deliver(&tx, LiveMsg::Out(out), w.inline, &mut events_lost) {
                    break;
                }
            }
            Ok(_) => {}
            Err(e) => {
                // A queue nobody serves would silently blackhole (inline) or go unwatched
                // (tap): the whole daemon stops, saying why.
                eprintln!("error: {}: {e}; stopping", port.describe());
                stop.store(true, Ordering::Relaxed);
                if let Ok(mut f) = failed.lock() {
                    f.get_or_insert_with(|| format!("{}: {e}", port.describe()));
                }
                break;
            }
        }
        if Instant::now() >= next_stats {
            next_stats = Instant::now() + TELEMETRY_TICK.min(w.stats_interval / 2);
            let s = snapshot(&port, &decoder, &mut shard, overload, events_lost);
            if !deliver(&tx, LiveMsg::Stats(w.index, Box::new(s)), w.inline, &mut 0) {
                break;
            }
            let f = if watch.watched() { shard.flow_sample(FLOWS_PER_WORKER) } else { shard.flow_count() };
            if !deliver(&tx, LiveMsg::Flows(w.index, Box::new(f)), w.inline, &mut 0) {
                break;
            }
        }
    }
    // Wait (a bounded time: a worker that panicked never arrives) until no worker polls any
    // more, so no port closes while another still reads its fanout group.
    polling.fetch_sub(1, Ordering::AcqRel);
    let deadline = Instant::now() + Duration::from_secs(2);
    while polling.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(5));
    }
    decoder.flush();
    let mut out = WorkerOut::new(0);
    shard.finish(clock.max(live::now()), &mut out);
    let _ = tx.send(LiveMsg::Out(out));
    let s = snapshot(&port, &decoder, &mut shard, overload, events_lost);
    let _ = tx.send(LiveMsg::Stats(w.index, Box::new(s)));
    // The port (its sockets and ring) closes here.
    drop(port);
}

/// Hands a message to the writer. Tapping, a full queue blocks the worker (the kernel ring
/// absorbs the delay). Inline, a blocked worker would stop forwarding, so the message is
/// dropped and counted instead: a slow EVE disk costs events, never the network. False when
/// the writer is gone.
fn deliver(tx: &Sender<LiveMsg>, msg: LiveMsg, inline: bool, lost: &mut u64) -> bool {
    if !inline {
        return tx.send(msg).is_ok();
    }
    match tx.try_send(msg) {
        Ok(()) => true,
        Err(crossbeam_channel::TrySendError::Full(_)) => {
            *lost += 1;
            true
        }
        Err(crossbeam_channel::TrySendError::Disconnected(_)) => false,
    }
}

fn snapshot<I: Inspector>(port: &Port, decoder: &Decoder, shard: &mut Shard<I>, overload: (u64, u64), events_lost: u64) -> WorkerStats {
    let (ml_scored, ml_latencies) = shard.take_ml_sample().unwrap_or_default();
    WorkerStats {
        ml_shadow: shard.ml_shadow(),
        drift: shard.take_drift(),
        backlog: port.backlog() as u64,
        ml_scored,
        ml_latencies,
        port: port.stats(),
        decoder: decoder.stats.clone(),
        flow: shard.flow_stats().clone(),
        app: shard.app_stats().clone(),
        overload_forwarded: overload.0,
        overload_dropped: overload.1,
        events_lost,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ml::bundled_model_dir;
    use portcullis_flowtable::{FEATURE_NAMES, N_FEATURES};

    #[test]
    fn drift_of_flows_unlike_the_training_ones_raises_one_alert() {
        let (model, _) = load_model(&bundled_model_dir().unwrap(), 1).unwrap();
        let mut watch = DriftWatch::default();
        let view = watch.view(Some(&model)).unwrap();
        assert!(view.unavailable.unwrap().contains("waiting for flows"));
        let reference = model.drift.clone().expect("the bundled model ships drift.yaml");
        let mut counts = DriftCounts::extractor_rows(&reference, &FEATURE_NAMES).unwrap();
        // Every flow a 10-minute, 1 GB transfer: nothing like the benign training flows.
        let mut row = [0f32; N_FEATURES];
        row.iter_mut().for_each(|v| *v = 1e9);
        for _ in 0..2000 {
            counts.add_row(&row);
        }
        watch.add(&model, &counts, Duration::from_secs(1));
        let ev = watch.tick(Duration::from_secs(61)).expect("a window of 2000 drifted flows alerts");
        assert!(!ev.crossed.is_empty() && ev.crossed.iter().all(|(_, p)| *p >= 0.25));
        let view = watch.view(Some(&model)).unwrap();
        assert_eq!(view.flows, 2000);
        assert!(view.unavailable.is_none() && view.features[0].1 >= 0.25, "{view:?}");
        watch.add(&model, &counts, Duration::from_secs(62));
        assert!(watch.tick(Duration::from_secs(130)).is_none(), "still drifted: no second alert");
        assert_eq!(watch.events, 1);
    }
}
