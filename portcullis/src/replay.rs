//! Offline replay: capture files → decode → flow table shards → EVE.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, Sender};
use portcullis_applayer::AppStats;
use portcullis_common::{Direction, PacketMeta, Timestamp};
use portcullis_dataplane::{capture_files, CaptureError, CaptureFile, DecodeStats, Decoded, Decoder, DecoderConfig};
use portcullis_eve::{
    alert_event, drop_event, flow_event, ml_alert_event, stats_event, AlertApp, DetectStats, DropInfo, DropReason, EveError, EveWriter, IpsStats, PacketInfo,
    Stats,
};
use portcullis_flowtable::{FlowConfig, FlowRecord, FlowSnapshot, FlowStats, FlowTable, Update};
use portcullis_stream::{Reassembler, StreamConfig, StreamStats};

use crate::inspect::{Action, Alert, Inspector, NoRules, PacketInput};
use crate::ml::{load_model, AlertLimit, AlertLimiter, MlAlert, MlKind, MlModel, MlSummary, MlWorkerStats, ModelError, WorkerMl};
use crate::telemetry::{FlowSample, PortSample, ScoringSample, Telemetry, FLOWS_PER_WORKER};
use portcullis_policy::playbook::RuleAction;
use portcullis_policy::{Allowlist, Mode, PolicyConfig, PolicyEngine, PolicyStats, Trigger, TriggerKind};

/// How a replay runs.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// Files or directories, processed in the order given as one continuous capture.
    pub inputs: Vec<PathBuf>,
    pub threads: usize,
    pub batch_size: usize,
    pub flow: FlowConfig,
    pub decoder: DecoderConfig,
    /// Where EVE goes (`-` for stdout); `None` writes nothing.
    pub eve: Option<PathBuf>,
    pub log_flows: bool,
    pub log_stats: bool,
    pub log_alerts: bool,
    pub log_drops: bool,
    /// Act on drop verdicts as Suricata's `--simulate-ips` does: a dropped packet (and every
    /// later packet of a dropped flow) is discarded, logged as a `drop` event and counted in
    /// `stats.ips`.
    pub simulate_ips: bool,
    /// Draw a progress bar on stderr (only if it is a terminal).
    pub progress: bool,
    /// The flow model to score flows with (a directory holding `model.yaml`); `None`: no
    /// scoring, and the flow table computes no features.
    pub model: Option<PathBuf>,
    /// Limit on model alerts per source and detector; `None`: every one is written.
    pub ml_alert_limit: Option<AlertLimit>,
    /// Run this policy's playbook, in dry-run, over the alerts written, and write its
    /// decisions as EVE `decision` events (with the allowlist; nothing is enforced).
    pub policy: Option<(PolicyConfig, Allowlist)>,
    /// Feed this console view as the replay runs (`replay --console`): every alert, and once
    /// a second of wall time the traffic so far, the workers' flows and the scoring. `None`
    /// (the default) costs nothing and changes nothing in what is written.
    pub console: Option<ReplayConsole>,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            inputs: Vec::new(),
            threads: 1,
            batch_size: 256,
            flow: FlowConfig::default(),
            decoder: DecoderConfig::default(),
            eve: None,
            log_flows: true,
            log_stats: true,
            log_alerts: true,
            log_drops: true,
            simulate_ips: false,
            progress: false,
            model: None,
            ml_alert_limit: Some(AlertLimit::default()),
            policy: None,
            console: None,
        }
    }
}

/// What the console sees of a running replay: the [`Telemetry`] the replay feeds, the
/// capture's clock, and whether the replay has ended. Cloned handles share all three.
#[derive(Debug, Clone)]
pub struct ReplayConsole {
    pub telemetry: Telemetry,
    /// Packet time (µs) of the newest packet read at the last sample: a replay's flows are
    /// as old as the capture says, not as old as the wall clock says.
    clock: Arc<AtomicI64>,
    ended: Arc<OnceLock<ReplayEnd>>,
}

/// How a replay ended, for the console's title.
#[derive(Debug, Clone, Copy)]
struct ReplayEnd {
    failed: bool,
    secs: u64,
}

impl ReplayConsole {
    /// A view of a replay not started yet: source `replay`, capture mode `file`.
    pub fn new() -> ReplayConsole {
        ReplayConsole { telemetry: Telemetry::new("replay", "file", false, None), clock: Arc::new(AtomicI64::new(i64::MIN)), ended: Arc::default() }
    }

    /// Whether the replay has ended (and its final figures are in).
    pub fn ended(&self) -> bool {
        self.ended.get().is_some()
    }

    fn end(&self, failed: bool, elapsed: Duration) {
        let _ = self.ended.set(ReplayEnd { failed, secs: elapsed.as_secs() });
    }

    /// The console's view now. Once the replay has ended the source reads `replay finished`
    /// (or `replay failed`) and the uptime stops at the replay's duration; flow ages are
    /// measured on the capture's clock.
    pub fn snapshot(&self) -> portcullis_api::Snapshot {
        let mut s = self.telemetry.snapshot(None);
        if let Some(e) = self.ended.get() {
            s.source = if e.failed { "replay failed" } else { "replay finished" }.to_string();
            s.uptime_secs = e.secs;
        }
        let clock = self.clock.load(Ordering::Relaxed);
        if clock != i64::MIN {
            // The telemetry measures ages against the wall clock; the capture's newest packet
            // is the replay's "now".
            let behind = s.at - clock as f64 / 1e6;
            for f in &mut s.flows {
                f.age_secs = (f.age_secs - behind).max(0.0);
            }
        }
        s
    }
}

impl Default for ReplayConsole {
    fn default() -> Self {
        ReplayConsole::new()
    }
}

/// How often the console's figures are taken, in wall time.
const CONSOLE_TICK: Duration = Duration::from_secs(1);

/// What a worker last showed the console of its shard: its flows and, with a model, the
/// flows it scored so far and the latency of each scoring call since the last fold.
#[derive(Debug, Default)]
struct WorkerSample {
    flows: FlowSample,
    scored: u64,
    latencies: Vec<u32>,
}

/// One slot per worker. Each worker writes its own at most once a [`CONSOLE_TICK`] (and once
/// more at the end of the capture); the reader folds them into the telemetry. Nothing else
/// crosses the reader/worker protocol, so a replay without a console is unchanged.
type WorkerSamples = Arc<Mutex<Vec<WorkerSample>>>;

/// A worker's way to the console: its index and everyone's slots, and how many of its
/// scoring calls' latencies it has already put there.
struct WorkerConsole {
    index: usize,
    slots: WorkerSamples,
    latencies_put: usize,
}

/// Puts the worker's scoring figures in its slot, and its flows unless `flows` is false.
fn put_sample<I: Inspector>(shard: &Shard<I>, c: &mut WorkerConsole, flows: bool) {
    // The latencies stay with the shard: the replay's summary reports them all.
    let (scored, all) = shard.ml_progress().unwrap_or_default();
    let latencies = all.get(c.latencies_put..).unwrap_or_default();
    c.latencies_put = all.len();
    let flows = flows.then(|| shard.flow_sample(FLOWS_PER_WORKER));
    // A panic elsewhere while holding the lock leaves figures, not invariants.
    let mut s = c.slots.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(slot) = s.get_mut(c.index) {
        if let Some(f) = flows {
            slot.flows = f;
        }
        slot.scored = scored;
        slot.latencies.extend_from_slice(latencies);
    }
}

/// The reader's side of the console: folds the packets read so far and the workers' samples
/// into the telemetry once a second.
struct ConsoleFeed {
    console: ReplayConsole,
    samples: WorkerSamples,
    /// The model, as the console names it (`name version`), and the backend it scores on,
    /// when flows are scored.
    model: Option<(String, &'static str)>,
    calls: u64,
    next: Instant,
}

impl ConsoleFeed {
    fn due(&self) -> bool {
        Instant::now() >= self.next
    }

    fn fold(&mut self, file: &std::path::Path, decoder: &DecodeStats, clock: Timestamp) {
        let now = Instant::now();
        self.next = now + CONSOLE_TICK;
        self.console.clock.store(clock.0, Ordering::Relaxed);
        let name = file.file_name().map_or_else(|| file.display().to_string(), |n| n.to_string_lossy().into_owned());
        let stats = portcullis_dataplane::live::PortStats { packets: decoder.pkts, bytes: decoder.bytes, ..Default::default() };
        let t = &self.console.telemetry;
        // A file drops nothing; with --simulate-ips the blocked packets are in the summary.
        t.record_ports(now, &[PortSample { name, stats, backlog: 0 }], Vec::new(), 0);
        let (flows, scored, latencies) = {
            let mut s = self.samples.lock().unwrap_or_else(|p| p.into_inner());
            let flows: Vec<FlowSample> = s.iter().map(|w| w.flows.clone()).collect();
            let scored: u64 = s.iter().map(|w| w.scored).sum();
            let latencies: Vec<u32> = s.iter_mut().flat_map(|w| std::mem::take(&mut w.latencies)).collect();
            (flows, scored, latencies)
        };
        t.record_flows(now, flows);
        if let Some((model, backend)) = &self.model {
            self.calls += latencies.len() as u64;
            t.record_scoring(ScoringSample {
                backend: backend.to_string(),
                model: model.clone(),
                flows_scored: scored,
                calls: self.calls,
                latencies_us: latencies,
                ..ScoringSample::default()
            });
        }
    }
}

/// What a replay did.
#[derive(Debug, Clone, Default)]
pub struct ReplaySummary {
    pub files: usize,
    pub packets: u64,
    pub bytes: u64,
    pub flows: u64,
    pub anomalies: u64,
    pub elapsed: Duration,
    pub decoder: DecodeStats,
    pub flow: FlowStats,
    /// One line per capture file that could not be read to its end.
    pub capture_errors: Vec<String>,
    pub events_written: u64,
    /// Alerts written and suppressed, when rules were loaded.
    pub detect: Option<DetectStats>,
    /// Packets accepted and blocked, with `simulate_ips`.
    pub ips: Option<IpsStats>,
    /// Flows scored and model alerts, when a model was loaded.
    pub ml: Option<MlSummary>,
    /// App-layer flows by protocol and parser anomalies, when rules were loaded.
    pub app_layer: Option<AppStats>,
    /// What the dry-run policy decided, with `policy`.
    pub policy: Option<PolicyStats>,
    /// Warnings not printed because a console held the terminal (`console`), for the caller
    /// to print once it has closed.
    pub warnings_held: Vec<String>,
}

impl ReplaySummary {
    pub fn packets_per_sec(&self) -> f64 {
        self.packets as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// A failure of the replay itself (bad output path, a worker that died), not of its input.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Eve(#[from] EveError),
    #[error(transparent)]
    Input(#[from] CaptureError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("a worker thread panicked")]
    WorkerPanic,
}

/// One packet in a batch: its meta and where its bytes (IP header to the end of the payload,
/// [`PacketMeta::l3_range`]) sit in the batch's arena.
#[derive(Clone, Copy, Debug)]
struct BatchPacket {
    meta: PacketMeta,
    start: u32,
    len: u32,
    /// 0 for a frame's packet, 1 for the inner packet of a 6in4 tunnel: with `pcap_cnt` it
    /// names the packet uniquely, which orders events.
    sub: u8,
}

/// What one worker receives per dispatch round: packets and one arena holding all their
/// bytes. Batches go back to the reader once processed, so in steady state neither vector
/// is allocated again.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    packets: Vec<BatchPacket>,
    bytes: Vec<u8>,
}

impl Batch {
    /// Queues a packet, with its bytes when `bytes` is given (`None` when nothing in the
    /// workers reads them: copying them costs about a quarter of a rule-less replay).
    pub(crate) fn push(&mut self, meta: PacketMeta, bytes: Option<&[u8]>, sub: u8) {
        let l3 = bytes.and_then(|b| b.get(meta.l3_range())).unwrap_or(&[]);
        let start = self.bytes.len() as u32;
        self.bytes.extend_from_slice(l3);
        self.packets.push(BatchPacket { meta, start, len: l3.len() as u32, sub });
    }

    fn l3(&self, p: &BatchPacket) -> &[u8] {
        &self.bytes[p.start as usize..(p.start + p.len) as usize]
    }

    pub(crate) fn clear(&mut self) {
        self.packets.clear();
        self.bytes.clear();
    }
}

enum WorkerMsg {
    Batch { seq: u64, watermark: Timestamp, batch: Batch },
    Finish { seq: u64, now: Timestamp },
}

/// Something a packet caused that is written as an EVE event.
#[derive(Debug)]
enum PacketEvent {
    Alert { pkt: PacketInfo, flow: Option<FlowSnapshot>, alert: Alert, blocked: bool, app: Option<Box<AlertApp>> },
    Drop { pkt: PacketInfo, info: DropInfo, reason: DropReason },
}

/// Events of one packet with the key that orders them: (packet time, pcap_cnt, sub, index
/// within the packet). Alerts keep the engine's rule order; a drop comes after them.
type EventKey = (Timestamp, u64, u8, u32);

pub(crate) struct WorkerOut {
    seq: u64,
    records: Vec<FlowRecord>,
    events: Vec<(EventKey, PacketEvent)>,
    /// Every packet the simulated IPS discarded, logged or not: (pcap_cnt, reason).
    dropped: Vec<(u64, DropReason)>,
    /// Model alerts raised by the flows this batch scored.
    ml: Vec<MlAlert>,
    /// The rule engine's generation that inspected the batch (see `crate::reload`).
    generation: u32,
    /// That engine, held until the writer has written the batch: a rule reload keeps an old
    /// engine in its slot only while something holds it, so this keeps the writer able to
    /// name the batch's alerts however many reloads happen before it gets there.
    engine: Option<Arc<dyn std::any::Any + Send + Sync>>,
}

impl WorkerOut {
    pub(crate) fn new(seq: u64) -> Self {
        WorkerOut { seq, records: Vec::new(), events: Vec::new(), dropped: Vec::new(), ml: Vec::new(), generation: 0, engine: None }
    }

    /// The `pcap_cnt`s of the frames a drop verdict discarded.
    pub(crate) fn dropped_frames(&self) -> impl Iterator<Item = u64> + '_ {
        self.dropped.iter().map(|&(c, _)| c)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.records.is_empty() && self.events.is_empty() && self.dropped.is_empty() && self.ml.is_empty()
    }
}

/// A flow's state beside its flow-table slot, dropped with the flow.
#[derive(Debug)]
struct FlowCtx<F> {
    detect: F,
    /// A drop verdict dropped the whole flow: later packets are discarded uninspected.
    dropped: bool,
    /// A pass verdict: later packets are not inspected.
    passed: bool,
    /// Suricata logs a dropped flow's first discarded packet in each direction only.
    drop_logged: [bool; 2],
    /// TCP reassembly, toserver and toclient.
    streams: [Reassembler; 2],
    /// Bytes each direction's reassembler put in order that detection has not inspected yet,
    /// with the stream offset of the first: as Suricata's IDS mode, stream data is inspected
    /// once the receiver has acknowledged it (or the sender closes), on the sender's next
    /// packet. Capped by [`PENDING_CAP`].
    pending: [(u64, Vec<u8>); 2],
    /// The highest acknowledgement number the other side sent for each direction's stream.
    acked: [Option<u32>; 2],
    /// Per direction, the stream offset up to which bytes went to the inspector for the app
    /// layer (as `app_other` or with detection), so none is handed over twice.
    app_fed: [u64; 2],
}

/// Suricata's `alert.action`: blocked when a reject rule matched, or a drop rule in IPS mode.
fn blocked(ips: bool, a: &Alert) -> bool {
    let reject = a.action.drops() && a.action != Action::Drop;
    reject || (ips && a.action.drops())
}

fn dir_index(d: Direction) -> usize {
    match d {
        Direction::ToServer => 0,
        Direction::ToClient => 1,
    }
}

/// The stream side of a worker: one configuration, the counters every reassembler of the
/// worker shares, and reused output buffers.
#[derive(Debug, Default)]
struct Streams {
    cfg: StreamConfig,
    stats: StreamStats,
    /// Reassembler output when it had to copy.
    out: Vec<u8>,
    ack_out: Vec<u8>,
    /// The other direction's pending bytes this packet acknowledged, for the app layer, and
    /// the stream offset of the first.
    app_out: Vec<u8>,
    app_off: u64,
    /// Suricata's `stream.inline`, as in its IPS mode: stream bytes are inspected (and parsed)
    /// on the packet that put them in order, not once acknowledged, so a drop verdict can
    /// stop that packet. The live bridge sets it; replay keeps IDS timing.
    inline: bool,
}

/// Unacknowledged stream bytes kept per direction before they are inspected anyway: a
/// receiver that never acknowledges (or a capture that lost the ACKs) cannot make a flow
/// hold more than this.
const PENDING_CAP: usize = 64 * 1024;

impl Streams {
    /// Feeds a TCP segment to its direction's reassembler and returns the stream bytes to
    /// inspect with this packet, in `out`, with their stream offset: the bytes of this
    /// direction the other side has acknowledged since the last inspection (all of them when
    /// this packet closes the direction). `None` means the packet is not part of the stream
    /// (its payload is inspected on its own); `Some` with an empty range means its data went
    /// into the stream and is inspected later, when acknowledged.
    fn segment<F>(&mut self, c: &mut FlowCtx<F>, dir: Direction, p: &PacketMeta, payload: &[u8]) -> (Option<std::ops::Range<usize>>, u64) {
        let d = dir_index(dir);
        self.app_out.clear();
        if p.tcp_flags.has(portcullis_common::TcpFlags::ACK) {
            let newer = c.acked[1 - d].is_none_or(|a| (p.tcp_ack.wrapping_sub(a) as i32) > 0);
            if newer {
                c.acked[1 - d] = Some(p.tcp_ack);
            }
            // Bytes a hole in the other direction held back: the ACK says they will never come.
            loop {
                let got = c.streams[1 - d].ack(&self.cfg, p.tcp_ack, &mut self.ack_out, &mut self.stats);
                if got.is_empty() {
                    break;
                }
                let (off, buf) = &mut c.pending[1 - d];
                if buf.is_empty() {
                    *off = got.offset;
                }
                buf.extend_from_slice(got.bytes(&[], &self.ack_out));
            }
            // What of the other direction's pending bytes this acknowledgement covers: the
            // app layer parses it now, raw stream inspection waits for the sender's next packet.
            let (off, pending) = &c.pending[1 - d];
            if let (false, Some(base)) = (pending.is_empty(), c.streams[1 - d].base_seq()) {
                let end_seq = base.wrapping_add((*off + pending.len() as u64) as u32);
                let beyond = end_seq.wrapping_sub(p.tcp_ack) as i32;
                let n = pending.len().saturating_sub(beyond.max(0) as usize);
                let from = (c.app_fed[1 - d].saturating_sub(*off) as usize).min(n);
                if from < n {
                    self.app_out.extend_from_slice(&pending[from..n]);
                    self.app_off = *off + from as u64;
                    c.app_fed[1 - d] = *off + n as u64;
                }
            }
        }
        let depth_before = c.streams[d].depth_reached();
        let got = c.streams[d].segment(&self.cfg, p.tcp_seq, p.tcp_flags, payload, &mut self.out, &mut self.stats);
        // Suricata's "added to the stream": data the reassembler took (delivered now or held
        // for a hole), which detection then inspects as stream rather than as packet alone.
        let taken = !payload.is_empty() && !depth_before && !p.tcp_flags.has(portcullis_common::TcpFlags::RST) && c.streams[d].base_seq().is_some();
        let (off, pending) = &mut c.pending[d];
        if !got.is_empty() {
            if pending.is_empty() {
                *off = got.offset;
            }
            pending.extend_from_slice(got.bytes(payload, &self.out));
        }
        if pending.is_empty() {
            return (if taken { Some(0..0) } else { None }, 0);
        }
        let closing = p.tcp_flags.0 & (portcullis_common::TcpFlags::FIN | portcullis_common::TcpFlags::RST) != 0;
        let n = match (c.acked[d], c.streams[d].base_seq()) {
            _ if self.inline || closing || pending.len() > PENDING_CAP => pending.len(),
            (Some(ack), Some(base)) => {
                // How far past the acknowledgement the pending bytes reach.
                let end_seq = base.wrapping_add((*off + pending.len() as u64) as u32);
                let beyond = end_seq.wrapping_sub(ack) as i32;
                pending.len().saturating_sub(beyond.max(0) as usize)
            }
            _ => 0,
        };
        if n == 0 {
            return (if taken { Some(0..0) } else { None }, 0);
        }
        let at = *off;
        self.out.clear();
        self.out.extend(pending.drain(..n));
        *off += n as u64;
        c.app_fed[d] = c.app_fed[d].max(*off);
        (Some(0..n), at)
    }
}

/// A worker's detection: the shared engine, its own scratch space and the per-flow state
/// of the flows in its shard, indexed by flow-table slot.
struct WorkerDetect<I: Inspector> {
    engine: Arc<I>,
    /// The engine's generation in the shard's `EngineSlot` (0 without one).
    generation: u32,
    scratch: I::Scratch,
    flows: Vec<Option<FlowCtx<I::Flow>>>,
    alerts: Vec<Alert>,
    ips: bool,
    streams: Streams,
}

impl<I: Inspector> WorkerDetect<I> {
    fn new(engine: Arc<I>, ips: bool) -> Self {
        let scratch = engine.new_scratch();
        WorkerDetect {
            engine,
            generation: 0,
            scratch,
            flows: Vec::new(),
            alerts: Vec::new(),
            ips,
            // Suricata's default `stream.midstream: false`, as the flow table's TCP tracking:
            // a connection whose handshake was not seen is inspected packet by packet.
            streams: Streams { cfg: StreamConfig { midstream: false, ..StreamConfig::default() }, ..Streams::default() },
        }
    }

    /// Forgets the state of flows that ended, first inspecting the stream bytes they still
    /// hold: as Suricata's flow-timeout pseudo packets do, data nobody acknowledged before
    /// the flow ended (the capture's last request, say) is inspected at the flow's end.
    fn ended(&mut self, records: &mut [FlowRecord], out: &mut WorkerOut) {
        for r in records {
            let Some(f) = self.flows.get_mut(r.slot as usize) else {
                continue;
            };
            let Some(mut c) = f.take() else { continue };
            r.app_proto = self.engine.app_proto(&c.detect);
            for s in &mut c.streams {
                s.release(&mut self.streams.stats);
            }
            if c.dropped || c.passed {
                continue;
            }
            for d in [Direction::ToServer, Direction::ToClient] {
                let (off, buf) = std::mem::take(&mut c.pending[dir_index(d)]);
                if buf.is_empty() && !(r.key.proto == portcullis_common::ipproto::TCP && self.engine.needs_flow_end(&c.detect)) {
                    continue;
                }
                let key = if d == Direction::ToServer { r.key } else { r.key.reversed() };
                let mut meta = PacketMeta::new(r.logged_at, key, 0);
                meta.tcp_flags = portcullis_common::TcpFlags(portcullis_common::TcpFlags::ACK);
                let input = PacketInput {
                    meta: &meta,
                    payload: &[],
                    ip_id: 0,
                    icmp_id: 0,
                    icmp_seq: 0,
                    dir: Some(d),
                    established: r.state != portcullis_flowtable::FlowState::New,
                    stream: Some(&buf),
                    stream_offset: off,
                    pseudo: true,
                    app_proto: Default::default(),
                    txs: &[],
                    app_other: None,
                };
                self.alerts.clear();
                self.engine.inspect(&input, Some(&mut c.detect), &mut self.scratch, &mut self.alerts);
                let flow = FlowSnapshot::of_record(r);
                let info = PacketInfo::new(&meta, &[], Some(r.flow_id), Some(d));
                for (i, a) in self.alerts.iter().enumerate() {
                    let blocked = blocked(self.ips, a);
                    let k = (r.logged_at, 0, 0, (dir_index(d) * 64 + i) as u32);
                    let app = self.engine.alert_app(&c.detect, a).map(Box::new);
                    out.events.push((k, PacketEvent::Alert { pkt: info, flow: Some(flow), alert: *a, blocked, app }));
                }
            }
        }
    }

    /// Inspects one packet that the flow table has accounted (`u` is `None` for a packet
    /// that belongs to no flow).
    fn packet(&mut self, bp: &BatchPacket, l3: &[u8], u: Option<Update>, table: &FlowTable, out: &mut WorkerOut) {
        let p = &bp.meta;
        let ctx = match u {
            Some(u) => {
                let i = u.slot as usize;
                if self.flows.len() <= i {
                    self.flows.resize_with(i + 1, || None);
                }
                if u.new_flow || self.flows[i].is_none() {
                    self.flows[i] = Some(FlowCtx {
                        detect: self.engine.new_flow(),
                        dropped: false,
                        passed: false,
                        drop_logged: [false; 2],
                        streams: Default::default(),
                        pending: Default::default(),
                        acked: [None; 2],
                        app_fed: [0; 2],
                    });
                }
                self.flows[i].as_mut()
            }
            None => None,
        };
        let pkt = || PacketInfo::new(p, l3, u.map(|u| u.flow_id), u.map(|u| u.dir));
        let key = |idx: u32| (p.ts, p.pcap_cnt, bp.sub, idx);
        let mut ctx = ctx;
        if let (Some(c), Some(u)) = (ctx.as_deref_mut(), u) {
            if c.dropped {
                // Suricata drops a dropped flow's packets before detection.
                out.dropped.push((p.pcap_cnt, DropReason::FlowDrop));
                let d = dir_index(u.dir);
                if !c.drop_logged[d] {
                    c.drop_logged[d] = true;
                    out.events.push((key(0), PacketEvent::Drop { pkt: pkt(), info: DropInfo::new(p, l3), reason: DropReason::FlowDrop }));
                }
                return;
            }
            if c.passed {
                return;
            }
        }
        let payload = p.payload_in_l3(l3);
        let (stream, stream_offset) = match (ctx.as_deref_mut(), u) {
            (Some(c), Some(u)) if p.key.proto == portcullis_common::ipproto::TCP && !p.attach_only => self.streams.segment(c, u.dir, p, payload),
            _ => (None, 0),
        };
        let stream = stream.map(|range| &self.streams.out[range]);
        let app_other =
            (p.key.proto == portcullis_common::ipproto::TCP && !self.streams.app_out.is_empty()).then(|| (&self.streams.app_out[..], self.streams.app_off));
        // Rules match an ICMP error's own header, not the flow it quotes.
        let own;
        let meta = if p.attach_only {
            own = PacketMeta { key: p.own_key(l3), ..*p };
            &own
        } else {
            p
        };
        let input = PacketInput {
            meta,
            payload,
            ip_id: p.ip_id,
            icmp_id: p.icmp_id,
            icmp_seq: p.icmp_seq,
            dir: u.map(|u| u.dir),
            established: u.is_some_and(|u| u.established),
            stream,
            stream_offset,
            pseudo: false,
            app_proto: Default::default(),
            txs: &[],
            app_other,
        };
        self.alerts.clear();
        let v = self.engine.inspect(&input, ctx.as_deref_mut().map(|c| &mut c.detect), &mut self.scratch, &mut self.alerts);
        if !self.alerts.is_empty() {
            let flow = u.map(|u| table.snapshot(u.slot));
            let info = pkt();
            for (i, a) in self.alerts.iter().enumerate() {
                let blocked = blocked(self.ips, a);
                let app = ctx.as_deref().and_then(|c| self.engine.alert_app(&c.detect, a)).map(Box::new);
                out.events.push((key(i as u32), PacketEvent::Alert { pkt: info, flow, alert: *a, blocked, app }));
            }
        }
        if let Some(c) = ctx {
            c.passed |= v.pass_flow;
            if self.ips && v.drop && v.drop_flow {
                c.dropped = true;
                if let Some(u) = u {
                    c.drop_logged[dir_index(u.dir)] = true;
                }
            }
        }
        if self.ips && v.drop {
            out.dropped.push((p.pcap_cnt, DropReason::Rules));
            // A drop a rule caused is always logged.
            let n = self.alerts.len() as u32;
            out.events.push((key(n), PacketEvent::Drop { pkt: pkt(), info: DropInfo::new(p, l3), reason: DropReason::Rules }));
        }
    }
}

/// One worker's share of the engine: a flow-table shard and what lives beside it (detection
/// state, the model's scorer). Replay feeds it batches from the reader; the live daemon
/// feeds it from its own capture port (`crate::live`).
pub(crate) struct Shard<I: Inspector> {
    table: FlowTable,
    det: Option<WorkerDetect<I>>,
    /// Where a rule reload puts the new engine (the live daemon); `None` in replay.
    slot: Option<Arc<crate::reload::EngineSlot<I>>>,
    ml: Option<WorkerMl>,
    /// App-layer counters taken from the engine so far.
    app: AppStats,
}

impl<I: Inspector> Shard<I> {
    pub(crate) fn new(cfg: FlowConfig, engine: Option<Arc<I>>, ml: Option<WorkerMl>, ips: bool) -> Self {
        Shard { table: FlowTable::new(cfg), det: engine.map(|e| WorkerDetect::new(e, ips)), slot: None, ml, app: AppStats::default() }
    }

    /// Follows `slot`: the shard moves to a reloaded engine between two batches. It starts
    /// on the slot's engine, which a reload may have replaced since this shard was built.
    pub(crate) fn with_engine_slot(mut self, slot: Arc<crate::reload::EngineSlot<I>>) -> Self {
        if let Some(d) = self.det.as_mut() {
            let (g, engine) = slot.current();
            if !Arc::ptr_eq(&d.engine, &engine) {
                d.scratch = engine.new_scratch();
                d.engine = engine;
            }
            d.generation = g;
        }
        self.slot = Some(slot);
        self
    }

    /// Moves to the slot's engine when a reload put a new one there: the old engine's
    /// app-layer counters are kept, every live flow keeps its stream and app-layer state and
    /// has its rule state rebuilt for the new rules.
    fn follow_reload(&mut self) {
        let (Some(slot), Some(d)) = (&self.slot, self.det.as_mut()) else { return };
        if slot.generation() == d.generation {
            return;
        }
        let (g, engine) = slot.current();
        self.app.merge(&d.engine.take_app_stats(&mut d.scratch));
        d.scratch = engine.new_scratch();
        for c in d.flows.iter_mut().flatten() {
            engine.rebind_flow(&d.engine, &mut c.detect);
        }
        d.engine = engine;
        d.generation = g;
    }

    /// Puts other models in place (a swap or rollback; see `crate::model_swap`).
    pub(crate) fn replace_models(&mut self, model: Arc<MlModel>, scorer: portcullis_inference::Scorer, shadow: Option<(Arc<MlModel>, portcullis_inference::Scorer)>) {
        if let Some(m) = self.ml.as_mut() {
            m.replace(model, scorer, shadow);
        }
    }

    /// The drift counts of the flows scored since the last call.
    pub(crate) fn take_drift(&mut self) -> Option<(Arc<MlModel>, portcullis_inference::DriftCounts)> {
        self.ml.as_mut().and_then(WorkerMl::take_drift)
    }

    /// How the shadow model's verdicts compared with the active one's since it started.
    pub(crate) fn ml_shadow(&self) -> crate::ml::ShadowCounts {
        self.ml.as_ref().map(|m| m.stats.shadow).unwrap_or_default()
    }

    fn stamp(&self, out: &mut WorkerOut) {
        out.generation = self.det.as_ref().map_or(0, |d| d.generation);
        if let (Some(_), Some(d)) = (&self.slot, &self.det) {
            if out.engine.is_none() {
                out.engine = Some(d.engine.clone());
            }
        }
    }

    /// Accounts, inspects and scores the batch's packets, then ends the flows whose timeout
    /// passed at `watermark`.
    pub(crate) fn process(&mut self, batch: &Batch, watermark: Timestamp, out: &mut WorkerOut) {
        self.follow_reload();
        self.stamp(out);
        let Shard { table, det, ml, .. } = self;
        for bp in &batch.packets {
            let before = out.records.len();
            let u = match ml.as_mut() {
                Some(m) => m.update(table, &bp.meta, &mut out.records),
                None => table.update(&bp.meta, &mut out.records),
            };
            if let Some(d) = det.as_mut() {
                // Flows that ended on the way may have freed the slot this packet's
                // flow now occupies: forget them first.
                let mut ended = out.records.split_off(before);
                d.ended(&mut ended, out);
                out.records.extend(ended);
                d.packet(bp, batch.l3(bp), u, table, out);
            }
        }
        // Not `expire`: a reload that landed while the packets were inspected waits for the
        // next batch, so everything in this one comes from the engine it is stamped with.
        self.expire_flows(watermark, out);
    }

    /// Ends the flows whose timeout passed at `now` and scores what the batch exported.
    pub(crate) fn expire(&mut self, now: Timestamp, out: &mut WorkerOut) {
        self.follow_reload();
        self.stamp(out);
        self.expire_flows(now, out);
    }

    fn expire_flows(&mut self, now: Timestamp, out: &mut WorkerOut) {
        let before = out.records.len();
        match self.ml.as_mut() {
            Some(m) => {
                m.expire(&mut self.table, now, &mut out.records);
                // One scoring call per batch: every export of the batch, checkpoints
                // of running flows included.
                m.score(&mut out.ml);
            }
            None => self.table.expire(now, &mut out.records),
        }
        if let Some(d) = self.det.as_mut() {
            let mut ended = out.records.split_off(before);
            d.ended(&mut ended, out);
            out.records.extend(ended);
        }
    }

    /// Ends every flow (reason `shutdown` for those whose timeout has not passed at `now`).
    pub(crate) fn finish(&mut self, now: Timestamp, out: &mut WorkerOut) {
        self.stamp(out);
        let before = out.records.len();
        match self.ml.as_mut() {
            Some(m) => {
                m.expire(&mut self.table, now, &mut out.records);
                m.flush(&mut self.table, now, &mut out.records);
                m.score(&mut out.ml);
            }
            None => {
                self.table.expire(now, &mut out.records);
                self.table.flush(now, &mut out.records);
            }
        }
        if let Some(d) = self.det.as_mut() {
            let mut ended = out.records.split_off(before);
            d.ended(&mut ended, out);
            out.records.extend(ended);
        }
    }

    /// Inspects stream data inline (Suricata's `stream.inline`): on the packet that carried
    /// it, so an inline bridge can drop that packet.
    pub(crate) fn with_inline_stream(mut self) -> Self {
        if let Some(d) = self.det.as_mut() {
            d.streams.inline = true;
        }
        self
    }

    pub(crate) fn flow_stats(&self) -> &FlowStats {
        &self.table.stats
    }

    /// The app-layer counters so far.
    pub(crate) fn app_stats(&mut self) -> &AppStats {
        if let Some(d) = self.det.as_mut() {
            self.app.merge(&d.engine.take_app_stats(&mut d.scratch));
        }
        &self.app
    }

    /// What a flow sample holds without walking the table: the count of live flows.
    pub(crate) fn flow_count(&self) -> crate::telemetry::FlowSample {
        crate::telemetry::FlowSample { active: self.table.len() as u64, ..Default::default() }
    }

    /// The shard's flows for the console: the `n` largest (with their app-layer protocol)
    /// and what the sources holding the most bytes hold in the table.
    pub(crate) fn flow_sample(&self, n: usize) -> crate::telemetry::FlowSample {
        let mut sample = crate::telemetry::FlowSample { walked: true, ..self.flow_count() };
        // hashbrown's (foldhash) hasher: the addresses come from the table, and a flood may
        // put a million of them here every second.
        let mut sources = std::collections::HashMap::with_hasher(hashbrown::DefaultHashBuilder::default());
        self.table.per_source(&mut sources);
        sample.sources = sources.into_iter().collect();
        let most = |a: &(std::net::IpAddr, (u64, u64, u64))| (std::cmp::Reverse(a.1 .0), a.0);
        if sample.sources.len() > crate::telemetry::SOURCES_PER_WORKER {
            sample.sources.select_nth_unstable_by_key(crate::telemetry::SOURCES_PER_WORKER - 1, most);
            sample.sources.truncate(crate::telemetry::SOURCES_PER_WORKER);
        }
        self.table.largest(n, &mut sample.largest);
        if let Some(d) = &self.det {
            for f in &sample.largest {
                if let Some(Some(c)) = d.flows.get(f.slot as usize) {
                    if let Some(app) = d.engine.app_proto(&c.detect) {
                        sample.app.insert(f.flow.flow_id, app);
                    }
                }
            }
        }
        sample
    }

    /// What the shard's scoring did since the last call: flows scored, calls, and the
    /// latency of each call (taken, so a daemon's history does not grow without end).
    pub(crate) fn take_ml_sample(&mut self) -> Option<(u64, Vec<u32>)> {
        self.ml.as_mut().map(|m| (m.stats.flows + m.stats.checkpoints, std::mem::take(&mut m.stats.latencies_us)))
    }

    /// What the shard's scoring did so far: flows scored and every call's latency, left in
    /// place (a replay's summary reports them).
    fn ml_progress(&self) -> Option<(u64, &[u32])> {
        self.ml.as_ref().map(|m| (m.stats.flows + m.stats.checkpoints, &m.stats.latencies_us[..]))
    }

    fn into_stats(mut self) -> (FlowStats, Option<MlWorkerStats>, AppStats) {
        self.app_stats();
        (self.table.stats, self.ml.map(|m| m.stats), self.app)
    }
}

fn worker<I: Inspector>(
    mut shard: Shard<I>,
    rx: Receiver<WorkerMsg>,
    tx: Sender<WorkerOut>,
    recycle: Sender<Batch>,
    mut console: Option<WorkerConsole>,
) -> (FlowStats, Option<MlWorkerStats>, AppStats) {
    let mut next_sample = Instant::now();
    for msg in rx {
        match msg {
            WorkerMsg::Batch { seq, watermark, mut batch } => {
                let mut out = WorkerOut::new(seq);
                shard.process(&batch, watermark, &mut out);
                if let Some(c) = console.as_mut() {
                    if Instant::now() >= next_sample {
                        next_sample = Instant::now() + CONSOLE_TICK;
                        put_sample(&shard, c, true);
                    }
                }
                batch.clear();
                // A full return queue only means the reader has spares enough.
                let _ = recycle.try_send(batch);
                // The writer orders records within a batch; nothing here depends on which
                // worker a flow landed on.
                if tx.send(out).is_err() {
                    break;
                }
            }
            WorkerMsg::Finish { seq, now } => {
                // The console's last view of the flows is the table at the end of the
                // capture, before every flow is ended; its scoring figures count the flows
                // scored as they end.
                if let Some(c) = console.as_mut() {
                    put_sample(&shard, c, true);
                }
                let mut out = WorkerOut::new(seq);
                shard.finish(now, &mut out);
                if let Some(c) = console.as_mut() {
                    put_sample(&shard, c, false);
                }
                let _ = tx.send(out);
            }
        }
    }
    shard.into_stats()
}

/// Where an event goes in a batch's output: (time, 0 for a packet's events or 1 for a flow,
/// then pcap_cnt, sub, 0, index for packet events; the checkpoint's pcap_cnt (or the largest
/// value when the flow ended), 2, flow id, 0 for model alerts; start, flow id, 0, 0 for
/// flows). A model alert thus follows the rule alerts of the packet that made its checkpoint
/// due, and one raised as its flow ended precedes the flow event, which can then say
/// `alerted`.
type OutputKey = (Timestamp, u8, i64, u64, u64, u32);

/// What the writer counted.
#[derive(Debug, Default)]
pub(crate) struct WriterTotals {
    pub(crate) flows: u64,
    pub(crate) alerts: u64,
    pub(crate) ml_alerts: u64,
    pub(crate) suppressed: u64,
    pub(crate) ml_suppressed: u64,
    pub(crate) ips: IpsStats,
    pub(crate) policy: Option<PolicyStats>,
}

/// What decides which events are written, from the options of a replay or the daemon.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WriteOptions {
    pub log_flows: bool,
    pub log_alerts: bool,
    pub log_drops: bool,
    pub ml_alert_limit: Option<AlertLimit>,
}

impl WriteOptions {
    fn of(o: &ReplayOptions) -> Self {
        WriteOptions { log_flows: o.log_flows, log_alerts: o.log_alerts, log_drops: o.log_drops, ml_alert_limit: o.ml_alert_limit }
    }
}

/// Orders and writes the events of one group of worker outputs: sorts them by time (packet
/// events by packet time, pcap_cnt and rule order; flow events by the time they were
/// logged, start and flow id; a packet's events before a flow logged at the same time),
/// applies cross-flow thresholds in that order and writes them.
pub(crate) struct EventSink<I: Inspector> {
    pub(crate) eve: Option<EveWriter>,
    opts: WriteOptions,
    engine: Option<Arc<I>>,
    pub(crate) totals: WriterTotals,
    pub(crate) failed: Option<EveError>,
    threshold: Option<I::Threshold>,
    limiter: AlertLimiter,
    /// Flows with an alert written whose flow event is still to come.
    alerted: HashSet<u64>,
    blocked: Vec<(u64, DropReason)>,
    events: Vec<(EventKey, PacketEvent)>,
    records: Vec<FlowRecord>,
    ml: Vec<MlAlert>,
    order: Vec<(OutputKey, u32)>,
    /// With a policy: every alert written (after thresholds and limits), as the playbook's
    /// triggers; drained by the caller after each group.
    pub(crate) triggers: Option<Vec<Trigger>>,
    /// The daemon's telemetry: every alert is published to it (the console's alert pane and
    /// `subscribe` streams), whether or not EVE writes alerts.
    pub(crate) tap: Option<crate::telemetry::Telemetry>,
    /// With rule reloads: the engines by generation, and the generation `engine` and
    /// `threshold` belong to. Thresholds of older generations are kept beside it while
    /// their last batches arrive.
    pub(crate) slot: Option<Arc<crate::reload::EngineSlot<I>>>,
    generation: u32,
    old_thresholds: Vec<(u32, I::Threshold)>,
}

impl<I: Inspector> EventSink<I> {
    pub(crate) fn new(eve: Option<EveWriter>, opts: WriteOptions, engine: Option<Arc<I>>) -> Self {
        EventSink {
            eve,
            opts,
            threshold: engine.as_ref().map(|e| e.new_threshold()),
            engine,
            totals: WriterTotals::default(),
            failed: None,
            limiter: AlertLimiter::default(),
            alerted: HashSet::new(),
            blocked: Vec::new(),
            events: Vec::new(),
            records: Vec::new(),
            ml: Vec::new(),
            order: Vec::new(),
            triggers: None,
            tap: None,
            slot: None,
            generation: 0,
            old_thresholds: Vec::new(),
        }
    }

    /// Moves to the rules in force, so the engine a reload replaced is freed once the last
    /// batch it inspected is written (that batch holds it meanwhile; see `crate::reload`).
    pub(crate) fn follow_reload(&mut self) {
        let Some(slot) = self.slot.clone() else { return };
        self.use_generation(slot.generation());
        slot.prune();
    }

    /// Makes `engine` and `threshold` those of generation `g` (a reload happened, or a
    /// worker's last batch of the old rules arrived after another's first of the new).
    fn use_generation(&mut self, g: u32) {
        let Some(slot) = &self.slot else { return };
        if g == self.generation {
            return;
        }
        let Some(e) = slot.get(g) else { return };
        if let Some(t) = self.threshold.take() {
            self.old_thresholds.push((self.generation, t));
        }
        self.threshold = Some(match self.old_thresholds.iter().position(|(x, _)| *x == g) {
            Some(i) => self.old_thresholds.swap_remove(i).1,
            None => e.new_threshold(),
        });
        self.old_thresholds.retain(|(x, _)| slot.get(*x).is_some());
        self.engine = Some(e);
        self.generation = g;
    }

    pub(crate) fn write_group(&mut self, outs: impl IntoIterator<Item = WorkerOut>) {
        let mut outs = outs.into_iter().peekable();
        if let Some(g) = outs.peek().map(|o| o.generation) {
            self.use_generation(g);
        }
        let EventSink { eve, opts, engine, totals, failed, threshold, limiter, alerted, blocked, events, records, ml, order, triggers, tap, .. } = self;
        events.clear();
        records.clear();
        blocked.clear();
        ml.clear();
        for o in outs {
            blocked.extend(o.dropped);
            events.extend(o.events);
            records.extend(o.records);
            ml.extend(o.ml);
        }
        // Sorting small keys with indices, not the events themselves, keeps this cheap.
        // Indices: packet events, then flow records, then model alerts.
        order.clear();
        order.extend(events.iter().enumerate().map(|(i, ((ts, cnt, sub, idx), _))| ((*ts, 0, *cnt as i64, u64::from(*sub), 0, *idx), i as u32)));
        let ne = events.len() as u32;
        order.extend(records.iter().enumerate().map(|(i, r)| ((r.logged_at, 1, r.start.0, r.flow_id, 0, 0), ne + i as u32)));
        let nr = ne + records.len() as u32;
        order.extend(ml.iter().enumerate().map(|(i, a)| {
            let cnt = a.pcap_cnt.map_or(i64::MAX, |c| c as i64);
            ((a.at, 0, cnt, 2, a.flow.flow_id, 0), nr + i as u32)
        }));
        order.sort_unstable_by_key(|&(k, _)| k);
        // A frame is blocked once, whichever of its packets (a tunnel's outer and inner)
        // was dropped, and for a rule if any of them was.
        blocked.sort_unstable_by_key(|&(cnt, r)| (cnt, r != DropReason::Rules));
        blocked.dedup_by_key(|(cnt, _)| *cnt);
        totals.ips.blocked += blocked.len() as u64;
        for (_, r) in blocked.iter() {
            match r {
                DropReason::Rules => totals.ips.drop_rules += 1,
                DropReason::FlowDrop => totals.ips.drop_flow += 1,
            }
        }
        for &(_, i) in order.iter() {
            // Events are counted and thresholds applied even when nothing is written;
            // serialising is skipped.
            let writing = eve.is_some() && failed.is_none();
            // Alerts are serialised for the telemetry even when EVE does not take them.
            let alerts_wanted = (writing && opts.log_alerts) || tap.is_some();
            let mut is_alert = true;
            let line = if i >= nr {
                let a = &ml[(i - nr) as usize];
                // The model that raised it: with a swap, not necessarily the one loaded at start.
                let model = &*a.model;
                if !limiter.admit(opts.ml_alert_limit, a.flow.key.src, a.kind, a.at) {
                    totals.ml_suppressed += 1;
                    continue;
                }
                totals.ml_alerts += 1;
                alerted.insert(a.flow.flow_id);
                if let Some(t) = triggers.as_mut() {
                    t.push(ml_trigger(a, model));
                }
                if !alerts_wanted {
                    continue;
                }
                serde_json::to_vec(&ml_alert_event(&a.flow, a.at, a.pcap_cnt, &model.rule(a.kind, a.severity), a.verdict(model)))
            } else if i < ne {
                match &events[i as usize].1 {
                    PacketEvent::Alert { pkt, flow, alert, blocked, app } => {
                        let Some(engine) = engine.as_ref() else {
                            continue;
                        };
                        if alert.global_threshold {
                            let t = threshold.as_mut().expect("threshold state exists with an engine");
                            if !engine.admit(t, alert, &pkt.key.src, &pkt.key.dst) {
                                totals.suppressed += 1;
                                continue;
                            }
                        }
                        totals.alerts += 1;
                        if let Some(id) = pkt.flow_id {
                            alerted.insert(id);
                        }
                        if let Some(t) = triggers.as_mut() {
                            t.push(rule_trigger(pkt, alert, engine.as_ref()));
                        }
                        if !alerts_wanted {
                            continue;
                        }
                        let ev = alert_event(pkt, flow.as_ref(), &engine.rule(alert), *blocked);
                        match app {
                            Some(app) => serde_json::to_vec(&ev.with_app(app)),
                            None => serde_json::to_vec(&ev),
                        }
                    }
                    PacketEvent::Drop { pkt, info, reason } => {
                        is_alert = false;
                        if !writing || !opts.log_drops {
                            continue;
                        }
                        serde_json::to_vec(&drop_event(pkt, info, *reason))
                    }
                }
            } else {
                is_alert = false;
                let mut r = records[(i - ne) as usize];
                totals.flows += 1;
                if !alerted.is_empty() {
                    r.alerted = alerted.remove(&r.flow_id);
                }
                if !writing || !opts.log_flows {
                    continue;
                }
                serde_json::to_vec(&flow_event(&r))
            };
            let line = match line {
                Ok(l) => l,
                Err(e) => {
                    failed.get_or_insert(e.into());
                    continue;
                }
            };
            if is_alert {
                if let Some(t) = tap.as_ref() {
                    t.publish("alert", &line);
                }
                if !(writing && opts.log_alerts) {
                    continue;
                }
            }
            if let Some(w) = eve.as_mut().filter(|_| failed.is_none()) {
                if let Err(e) = w.write_raw(&line) {
                    // Keep draining so the workers are not blocked; report at the end.
                    *failed = Some(e);
                }
            }
        }
    }
}

/// The policy's view of a rule alert.
fn rule_trigger<I: Inspector>(pkt: &PacketInfo, alert: &Alert, engine: &I) -> Trigger {
    let r = engine.rule(alert);
    let action = match alert.action {
        Action::Drop => Some(RuleAction::Drop),
        Action::Reject | Action::RejectSrc | Action::RejectDst | Action::RejectBoth => Some(RuleAction::Reject),
        _ => None,
    };
    Trigger {
        at: pkt.ts.0,
        src: pkt.key.src_ip(),
        dst: pkt.key.dst_ip(),
        flow_id: pkt.flow_id,
        kind: TriggerKind::Rule { gid: r.gid, sid: r.sid, rev: r.rev, msg: r.msg.to_string(), classtype: engine.classtype(alert).map(String::from), action },
    }
}

/// The policy's view of a model alert: the flow's initiator is the source.
fn ml_trigger(a: &MlAlert, model: &MlModel) -> Trigger {
    let v = a.verdict(model);
    Trigger {
        at: a.at.0,
        src: a.flow.key.src_ip(),
        dst: a.flow.key.dst_ip(),
        flow_id: Some(a.flow.flow_id),
        kind: TriggerKind::Model {
            anomaly: matches!(a.kind, MlKind::Anomaly),
            class: v.class.to_string(),
            score: match a.kind {
                MlKind::Anomaly => v.anomaly_score.unwrap_or(v.probability),
                MlKind::Class(_) => v.probability,
            },
            top_features: v.top_features.iter().map(|f| (f.name.to_string(), f64::from(f.weight))).collect(),
        },
    }
}

/// The replay's writer: for each batch, waits for every worker's output, then writes it
/// as one group.
fn writer<I: Inspector>(
    rx: Receiver<WorkerOut>,
    workers: usize,
    eve: Option<EveWriter>,
    opts: &ReplayOptions,
    engine: Option<Arc<I>>,
) -> Result<(Option<EveWriter>, WriterTotals), EveError> {
    let mut pending: BTreeMap<u64, (usize, Vec<WorkerOut>)> = BTreeMap::new();
    let mut next = 0u64;
    let mut sink = EventSink::new(eve, WriteOptions::of(opts), engine);
    sink.tap = opts.console.as_ref().map(|c| c.telemetry.clone());
    // A replay enforces nothing: the playbook runs in dry-run (approvals stay pending) on the
    // packets' own clock, so its decisions depend only on the capture.
    let mut policy = opts.policy.as_ref().map(|(cfg, allow)| {
        let mut cfg = cfg.clone();
        if cfg.mode == Mode::Enforce {
            cfg.mode = Mode::DryRun;
        }
        PolicyEngine::new(cfg, allow.clone(), 1)
    });
    if policy.is_some() {
        sink.triggers = Some(Vec::new());
    }
    for out in rx {
        let e = pending.entry(out.seq).or_insert((0, Vec::new()));
        e.0 += 1;
        e.1.push(out);
        while pending.get(&next).is_some_and(|(n, _)| *n == workers) {
            let (_, outs) = pending.remove(&next).unwrap_or_default();
            sink.write_group(outs);
            if let (Some(p), Some(t)) = (policy.as_mut(), sink.triggers.as_mut()) {
                for trigger in t.drain(..) {
                    for d in p.on_trigger(&trigger) {
                        if let Some(w) = sink.eve.as_mut() {
                            if let Err(e) = w.write(&crate::policy::decision_event(&d)) {
                                sink.failed.get_or_insert(e);
                            }
                        }
                    }
                }
            }
            next += 1;
        }
    }
    sink.totals.policy = policy.map(|p| p.stats);
    match sink.failed {
        Some(e) => Err(e),
        None => Ok((sink.eve, sink.totals)),
    }
}

/// Runs a replay to completion, without rules.
pub fn run_replay(opts: &ReplayOptions) -> Result<ReplaySummary, ReplayError> {
    run_replay_with::<NoRules>(opts, None)
}

/// Runs a replay to completion, inspecting every packet with `engine` when given. With
/// `opts.console`, the console's view is fed as the replay runs and marked ended when it
/// returns, whether it succeeded or not.
pub fn run_replay_with<I: Inspector>(opts: &ReplayOptions, engine: Option<Arc<I>>) -> Result<ReplaySummary, ReplayError> {
    let started = Instant::now();
    let r = replay(opts, engine);
    if let Some(c) = &opts.console {
        c.end(r.is_err(), started.elapsed());
    }
    r
}

fn replay<I: Inspector>(opts: &ReplayOptions, engine: Option<Arc<I>>) -> Result<ReplaySummary, ReplayError> {
    let started = Instant::now();
    let files = capture_files(&opts.inputs)?;
    let n = opts.threads.max(1);
    let batch_size = opts.batch_size.max(1);
    // The model is loaded (once per worker) before anything is written, so a model that is
    // refused stops the replay at once.
    let (model, mut scorers) = match &opts.model {
        Some(dir) => {
            let (m, s) = load_model(dir, n)?;
            (Some(m), s)
        }
        None => (None, Vec::new()),
    };
    let eve = match &opts.eve {
        Some(p) => Some(EveWriter::open(p)?),
        None => None,
    };
    let mut flow_cfg = opts.flow;
    flow_cfg.memcap = (flow_cfg.memcap / n as u64).max(1 << 16);
    // Features are computed only for a model to score them.
    flow_cfg.features = model.is_some();

    let (out_tx, out_rx) = bounded::<WorkerOut>(n * 8);
    let wopts = opts.clone();
    let wengine = engine.clone();
    let writer_handle =
        thread::Builder::new().name("eve-writer".into()).spawn(move || writer(out_rx, n, eve, &wopts, wengine)).expect("spawn writer thread");
    // Processed batches come back here; every worker channel holds at most 8 and each worker
    // works on one, so this never has to turn one away in steady state.
    let (recycle_tx, recycle_rx) = bounded::<Batch>(n * 10);
    let samples: Option<WorkerSamples> = opts.console.as_ref().map(|_| Arc::new(Mutex::new((0..n).map(|_| WorkerSample::default()).collect())));
    let mut txs = Vec::with_capacity(n);
    let mut handles = Vec::with_capacity(n);
    for i in 0..n {
        let (tx, rx) = bounded::<WorkerMsg>(8);
        let out_tx = out_tx.clone();
        let recycle = recycle_tx.clone();
        let engine = engine.clone();
        let ml = model.as_ref().zip(scorers.pop()).map(|(m, s)| WorkerMl::new(m.clone(), s));
        let ips = opts.simulate_ips;
        let console = samples.clone().map(|slots| WorkerConsole { index: i, slots, latencies_put: 0 });
        txs.push(tx);
        handles.push(
            thread::Builder::new()
                .name(format!("flow-worker-{i}"))
                .spawn(move || worker(Shard::new(flow_cfg, engine, ml, ips), rx, out_tx, recycle, console))
                .expect("spawn worker thread"),
        );
    }
    drop(out_tx);
    drop(recycle_tx);

    let total_bytes: u64 = files.iter().filter_map(|f| std::fs::metadata(f).ok()).map(|m| m.len()).sum();
    let bar = if opts.progress {
        let b = indicatif::ProgressBar::new(total_bytes);
        b.set_style(
            indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta}) {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    } else {
        indicatif::ProgressBar::hidden()
    };

    let mut decoder = Decoder::new(opts.decoder);
    // A console draws on the terminal: warnings wait until it has closed.
    let console = opts.console.is_some();
    let warn = |summary: &mut ReplaySummary, bar: &indicatif::ProgressBar, line: String| {
        if console {
            summary.warnings_held.push(line);
        } else {
            bar.suspend(|| eprintln!("{line}"));
        }
    };
    let mut summary = ReplaySummary { files: files.len(), ..Default::default() };
    let mut batches: Vec<Batch> = (0..n).map(|_| Batch::default()).collect();
    // Only inspection reads packet bytes.
    let with_bytes = engine.is_some();
    let mut in_batch = 0usize;
    let mut seq = 0u64;
    let mut watermark = Timestamp(i64::MIN);
    let mut pcap_cnt = 0u64;
    let mut done_bytes = 0u64;
    let mut dead = false;
    let mut feed = opts.console.clone().zip(samples).map(|(console, samples)| ConsoleFeed {
        console,
        samples,
        model: model.as_ref().map(|m| (format!("{} {}", m.name, m.version), m.backend)),
        calls: 0,
        next: Instant::now(),
    });
    let mut last_file: &std::path::Path = files.first().map_or(std::path::Path::new(""), |f| f.as_path());
    // Zero counters first, so even a replay shorter than a second shows a rate.
    if let Some(f) = feed.as_mut() {
        f.fold(last_file, &decoder.stats, watermark);
    }

    'files: for path in &files {
        last_file = path.as_path();
        let mut cf = match CaptureFile::open(path) {
            Ok(c) => c,
            Err(e) => {
                warn(&mut summary, &bar, format!("warning: {e}"));
                summary.capture_errors.push(e.to_string());
                continue;
            }
        };
        let mut warned_link = false;
        loop {
            let frame = match cf.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    warn(&mut summary, &bar, format!("warning: {e}"));
                    summary.capture_errors.push(e.to_string());
                    break;
                }
            };
            pcap_cnt += 1;
            watermark = watermark.max(frame.ts);
            let decoded = decoder.decode(&frame, pcap_cnt);
            let bytes = |m: &PacketMeta| with_bytes.then(|| decoder.packet_bytes(m, frame.data));
            match decoded {
                Decoded::Packet(meta) => push(&mut batches, meta, bytes(&meta), watermark, 0),
                Decoded::Tunneled { outer, inner } => {
                    push(&mut batches, outer, bytes(&outer), watermark, 0);
                    push(&mut batches, inner, bytes(&inner), watermark, 1);
                }
                Decoded::Unsupported if !warned_link => {
                    warned_link = true;
                    let link = frame.link;
                    warn(&mut summary, &bar, format!("warning: {}: link type {link:?} is not supported; its packets are counted, not decoded", path.display()));
                }
                _ => {}
            }
            in_batch += 1;
            if in_batch >= batch_size {
                in_batch = 0;
                if !dispatch(&txs, &recycle_rx, &mut batches, seq, watermark) {
                    dead = true;
                    break 'files;
                }
                seq += 1;
                if seq.is_multiple_of(64) {
                    bar.set_position(done_bytes + cf.position());
                }
                if let Some(f) = feed.as_mut().filter(|f| f.due()) {
                    f.fold(path, &decoder.stats, watermark);
                }
            }
        }
        done_bytes += std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        bar.set_position(done_bytes);
    }
    decoder.flush();
    if !dead && in_batch > 0 {
        dead = !dispatch(&txs, &recycle_rx, &mut batches, seq, watermark);
        seq += 1;
    }
    if !dead {
        for tx in &txs {
            let _ = tx.send(WorkerMsg::Finish { seq, now: watermark.max(Timestamp(0)) });
        }
    }
    drop(txs);
    let mut flow_stats = FlowStats::default();
    let mut ml_stats = Vec::new();
    let mut app_stats = AppStats::default();
    for h in handles {
        let (s, m, a) = h.join().map_err(|_| ReplayError::WorkerPanic)?;
        flow_stats.merge(&s);
        ml_stats.extend(m);
        app_stats.merge(&a);
    }
    let (eve, totals) = writer_handle.join().map_err(|_| ReplayError::WorkerPanic)??;
    bar.finish_and_clear();
    // Every alert is published by now; the last fold shows the end of the capture.
    if let Some(f) = feed.as_mut() {
        f.fold(last_file, &decoder.stats, watermark);
    }

    summary.packets = decoder.stats.pkts;
    summary.bytes = decoder.stats.bytes;
    summary.anomalies = decoder.stats.anomalies();
    summary.flows = totals.flows;
    summary.policy = totals.policy.clone();
    if engine.is_some() || model.is_some() {
        // Suricata's detect.alert counts every alert event; model alerts are alert events.
        summary.detect = Some(DetectStats { alert: totals.alerts + totals.ml_alerts, alerts_suppressed: totals.suppressed + totals.ml_suppressed });
    }
    if let Some(m) = &model {
        summary.ml = Some(MlSummary::new(m, ml_stats, totals.ml_alerts, totals.ml_suppressed));
    }
    if opts.simulate_ips {
        // Every frame read is accepted or blocked, as Suricata counts them.
        let mut ips = totals.ips;
        ips.accepted = decoder.stats.pkts - ips.blocked;
        summary.ips = Some(ips);
    }
    summary.decoder = decoder.stats.clone();
    summary.flow = flow_stats;
    if engine.is_some() {
        summary.app_layer = Some(app_stats);
    }
    summary.elapsed = started.elapsed();
    if let Some(mut w) = eve {
        if opts.log_stats {
            let stats = Stats {
                uptime_secs: summary.elapsed.as_secs(),
                decoder: summary.decoder.clone(),
                flow: summary.flow.clone(),
                capture_errors: summary.capture_errors.len() as u64,
                detect: summary.detect,
                ips: summary.ips,
                app_layer: summary.app_layer.clone(),
                capture: None,
            };
            w.write(&stats_event(watermark.max(Timestamp(0)), &stats))?;
        }
        w.flush()?;
        summary.events_written = w.events();
    }
    Ok(summary)
}

/// Stamps the engine clock on a packet and queues it, with its bytes (`bytes` is what its
/// offsets index), for the worker that owns its flow.
fn push(batches: &mut [Batch], mut meta: PacketMeta, bytes: Option<&[u8]>, clock: Timestamp, sub: u8) {
    meta.clock = clock;
    let w = (meta.key.stable_hash() % batches.len() as u64) as usize;
    batches[w].push(meta, bytes, sub);
}

/// Hands every worker its share of the batch (possibly empty: the watermark still advances
/// its clock). Returns false if a worker has gone away.
fn dispatch(txs: &[Sender<WorkerMsg>], spare: &Receiver<Batch>, batches: &mut [Batch], seq: u64, watermark: Timestamp) -> bool {
    for (tx, b) in txs.iter().zip(batches.iter_mut()) {
        let batch = std::mem::replace(b, spare.try_recv().unwrap_or_default());
        if tx.send(WorkerMsg::Batch { seq, watermark, batch }).is_err() {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    //! The engine with a fake inspector: bytes reach the workers intact, alerts and drops do
    //! not depend on the number of workers, and the simulated IPS counts what it drops.
    use super::*;
    use crate::inspect::{Action, RuleId, Verdict};
    use etherparse::PacketBuilder;
    use portcullis_common::ipproto;
    use portcullis_eve::AlertRule;
    use serde_json::Value;
    use std::collections::HashMap;
    use std::sync::Mutex;

    /// Rules the fake knows, by index: a ping; a SYN to port 80 (thresholded across flows:
    /// five per source); the first TLS record of an established connection to port 443,
    /// which drops its flow; the third packet of any flow (per-flow state).
    const RULES: [(&str, u32, Action); 4] =
        [("ping", 1, Action::Alert), ("syn to 80", 2, Action::Alert), ("tls to 443", 3, Action::Drop), ("third packet", 4, Action::Alert)];

    #[derive(Default)]
    struct Fake {
        /// Records (pcap_cnt, payload) of every packet inspected.
        seen: Mutex<Vec<(u64, Vec<u8>)>>,
        /// Records (pcap_cnt, stream offset, stream bytes) of every TCP packet with some.
        streams: Mutex<Vec<(u64, u64, Vec<u8>)>>,
        record: bool,
    }

    impl Inspector for Fake {
        type Flow = u32;
        type Scratch = ();
        type Threshold = HashMap<[u8; 16], u32>;

        fn new_flow(&self) -> u32 {
            0
        }
        fn new_scratch(&self) {}
        fn new_threshold(&self) -> Self::Threshold {
            HashMap::new()
        }
        fn inspect(&self, pkt: &PacketInput<'_>, flow: Option<&mut u32>, _: &mut (), alerts: &mut Vec<Alert>) -> Verdict {
            let m = pkt.meta;
            if self.record {
                self.seen.lock().unwrap().push((m.pcap_cnt, pkt.payload.to_vec()));
                if let Some(st) = pkt.stream.filter(|s| !s.is_empty()) {
                    self.streams.lock().unwrap().push((m.pcap_cnt, pkt.stream_offset, st.to_vec()));
                }
            }
            let mut hit = |rule: u32, global_threshold: bool| {
                let (_, sid, action) = RULES[rule as usize];
                alerts.push(Alert {
                    rule: RuleId(rule),
                    sid,
                    gid: 1,
                    rev: 1,
                    action,
                    pcap_cnt: m.pcap_cnt,
                    ts: m.ts,
                    dir: pkt.dir,
                    from_stream: false,
                    global_threshold,
                    tx_id: None,
                });
            };
            let mut v = Verdict::default();
            if matches!(m.icmp_type, 8 | 128) && matches!(m.key.proto, ipproto::ICMP | ipproto::ICMPV6) && !m.attach_only {
                hit(0, false);
            }
            if m.key.proto == ipproto::TCP && m.key.dport == 80 && m.tcp_flags.0 & 0x12 == 0x02 {
                hit(1, true);
            }
            if m.key.proto == ipproto::TCP
                && m.key.dport == 443
                && pkt.established
                && pkt.dir == Some(Direction::ToServer)
                && pkt.payload.first() == Some(&0x16)
            {
                hit(2, false);
                v = Verdict { drop: true, drop_flow: true, pass_flow: false };
            }
            if let Some(n) = flow {
                *n += 1;
                if *n == 3 {
                    hit(3, false);
                }
            }
            v
        }
        fn admit(&self, t: &mut Self::Threshold, _: &Alert, src: &[u8; 16], _: &[u8; 16]) -> bool {
            let n = t.entry(*src).or_default();
            *n += 1;
            *n <= 5
        }
        fn rule(&self, a: &Alert) -> AlertRule<'_> {
            let (msg, sid, _) = RULES[a.rule.0 as usize];
            AlertRule { gid: 1, sid, rev: 1, msg, category: "", severity: 3, metadata: &[] }
        }
    }

    fn demo() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../configs/demo/demo.pcap")
    }

    fn run(inputs: Vec<PathBuf>, threads: usize, ips: bool, fake: Arc<Fake>) -> (ReplaySummary, Vec<Value>) {
        let out = tempfile::NamedTempFile::new().unwrap();
        let opts = ReplayOptions { inputs, threads, simulate_ips: ips, eve: Some(out.path().to_path_buf()), ..ReplayOptions::default() };
        let s = run_replay_with(&opts, Some(fake)).unwrap();
        let text = std::fs::read_to_string(out.path()).unwrap();
        (s, text.lines().map(|l| serde_json::from_str(l).unwrap()).collect())
    }

    fn of_type<'a>(events: &'a [Value], t: &str) -> Vec<&'a Value> {
        events.iter().filter(|e| e["event_type"] == t).collect()
    }

    #[test]
    fn alerts_and_drops_do_not_depend_on_thread_count() {
        for ips in [false, true] {
            let (_, one) = run(vec![demo()], 1, ips, Arc::default());
            let strip = |ev: &[Value]| ev.iter().filter(|e| e["event_type"] != "stats").map(|e| e.to_string()).collect::<Vec<_>>();
            for n in [2, 3, 4] {
                let (_, many) = run(vec![demo()], n, ips, Arc::default());
                assert!(strip(&one) == strip(&many), "ips {ips}: output with {n} workers differs from 1 worker");
            }
            let sids = |sid: u64| of_type(&one, "alert").iter().filter(|a| a["alert"]["signature_id"] == sid).count();
            assert!(sids(1) > 0 && sids(3) > 0 && sids(4) > 100, "ping {}, tls {}, third {}", sids(1), sids(3), sids(4));
            // The cross-flow threshold: five SYN alerts per source, however many SYNs.
            let mut per_src: HashMap<String, usize> = HashMap::new();
            for a in of_type(&one, "alert").into_iter().filter(|a| a["alert"]["signature_id"] == 2) {
                *per_src.entry(a["src_ip"].to_string()).or_default() += 1;
            }
            assert!(!per_src.is_empty() && per_src.values().all(|&n| n <= 5), "{per_src:?}");
        }
    }

    #[test]
    fn alerts_are_ordered_and_flows_that_alerted_say_so() {
        let (s, ev) = run(vec![demo()], 2, false, Arc::default());
        let alerts = of_type(&ev, "alert");
        let key = |a: &Value| (a["timestamp"].as_str().unwrap().to_string(), a["pcap_cnt"].as_u64().unwrap());
        assert!(alerts.windows(2).all(|w| key(w[0]) <= key(w[1])), "alerts out of packet order");
        let alerted: HashSet<u64> = alerts.iter().filter_map(|a| a["flow_id"].as_u64()).collect();
        let flows = of_type(&ev, "flow");
        for f in &flows {
            let id = f["flow_id"].as_u64().unwrap();
            assert_eq!(f["flow"]["alerted"].as_bool(), Some(alerted.contains(&id)), "{f}");
        }
        assert!(flows.iter().any(|f| f["flow"]["alerted"] == true));
        let stats = ev.last().unwrap();
        assert_eq!(stats["stats"]["detect"]["alert"].as_u64(), Some(alerts.len() as u64));
        assert_eq!(s.detect.map(|d| d.alert), Some(alerts.len() as u64));
        assert!(s.detect.unwrap().alerts_suppressed > 0, "the SYN flood exceeds the threshold");
        assert!(stats["stats"].get("ips").is_none(), "no stats.ips without --simulate-ips");
        // In IDS mode nothing is dropped and a drop rule's alert is allowed.
        assert!(of_type(&ev, "drop").is_empty());
        assert!(alerts.iter().all(|a| a["alert"]["action"] == "allowed"));
    }

    #[test]
    fn simulated_ips_drops_the_flow_and_counts_it() {
        let (s, ev) = run(vec![demo()], 2, true, Arc::default());
        let ips = s.ips.unwrap();
        assert_eq!(ips.accepted + ips.blocked, s.packets);
        let drops = of_type(&ev, "drop");
        let tls = of_type(&ev, "alert").into_iter().filter(|a| a["alert"]["signature_id"] == 3).collect::<Vec<_>>();
        assert!(!tls.is_empty() && tls.iter().all(|a| a["alert"]["action"] == "blocked"));
        // Each dropped flow: the rule's drop, then at most one logged drop per direction.
        let rule_drops = drops.iter().filter(|d| d["drop"]["reason"] == "rules").count();
        assert_eq!(rule_drops, tls.len());
        assert_eq!(ips.drop_rules, tls.len() as u64);
        assert!(ips.drop_flow > 0 && ips.blocked == ips.drop_rules + ips.drop_flow);
        for a in &tls {
            let id = a["flow_id"].as_u64();
            let of_flow: Vec<_> = drops.iter().filter(|d| d["flow_id"].as_u64() == id).collect();
            assert_eq!(of_flow[0]["pcap_cnt"], a["pcap_cnt"]);
            let later_to_client = of_flow.iter().filter(|d| d["direction"] == "to_client").count();
            let later_to_server = of_flow.iter().filter(|d| d["direction"] == "to_server" && d["drop"]["reason"] == "flow drop").count();
            assert!(later_to_client <= 1 && later_to_server == 0, "{of_flow:?}");
            // The flow's later packets were not inspected: no more alerts on it.
            let later = of_type(&ev, "alert").into_iter().filter(|x| x["flow_id"].as_u64() == id && x["pcap_cnt"].as_u64() > a["pcap_cnt"].as_u64()).count();
            assert_eq!(later, 0);
        }
        let stats = &ev.last().unwrap()["stats"]["ips"];
        assert_eq!((stats["accepted"].as_u64(), stats["blocked"].as_u64()), (Some(ips.accepted), Some(ips.blocked)));
        assert_eq!((stats["rejected"].as_u64(), stats["replaced"].as_u64()), (Some(0), Some(0)));
    }

    #[test]
    fn alert_and_drop_events_validate_against_the_schema() {
        let path = portcullis_common::shared_data_dir().join("suricata-verify/etc/eve-schema.json");
        let Ok(text) = std::fs::read_to_string(&path) else {
            eprintln!("skipping: {} not found (set PORTCULLIS_DATA)", path.display());
            return;
        };
        let v = jsonschema::validator_for(&serde_json::from_str::<Value>(&text).unwrap()).unwrap();
        let (_, ev) = run(vec![demo()], 2, true, Arc::default());
        for t in ["alert", "drop", "stats"] {
            let of = of_type(&ev, t);
            assert!(!of.is_empty(), "no {t} events");
            for e in of {
                if let Some(err) = v.iter_errors(e).next() {
                    panic!("{e}\ndoes not validate: {err} at {}", err.instance_path);
                }
            }
        }
    }

    /// A pcap file of Ethernet frames, all one microsecond apart.
    fn pcap(frames: &[Vec<u8>]) -> tempfile::NamedTempFile {
        let mut out = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0];
        for (i, f) in frames.iter().enumerate() {
            for v in [1_700_000_000u32, i as u32, f.len() as u32, f.len() as u32] {
                out.extend_from_slice(&v.to_le_bytes());
            }
            out.extend_from_slice(f);
        }
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), out).unwrap();
        file
    }

    /// An Ethernet + IPv4 frame carrying `body` as IP protocol `proto`.
    fn ipv4(proto: u8, body: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        PacketBuilder::ethernet2([1; 6], [2; 6]).ipv4([192, 0, 2, 1], [192, 0, 2, 2], 64).write(&mut v, etherparse::IpNumber(proto), body).unwrap();
        v
    }

    /// An Ethernet + IPv4 fragment of datagram `id` carrying `data` at byte `offset`.
    fn fragment(id: u16, offset: u16, more: bool, data: &[u8]) -> Vec<u8> {
        let mut v = vec![2u8; 12];
        v.extend_from_slice(&[0x08, 0x00]);
        let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 2, 10, 0, 0, 1];
        ip[2..4].copy_from_slice(&(20 + data.len() as u16).to_be_bytes());
        ip[4..6].copy_from_slice(&id.to_be_bytes());
        ip[6..8].copy_from_slice(&((offset / 8) | if more { 0x2000 } else { 0 }).to_be_bytes());
        v.extend_from_slice(&ip);
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn tcp_stream_bytes_reach_the_engine_in_order() {
        let seg = |src: bool, seq: u32, ack: u32, flags: &str, data: &[u8]| {
            let (a, b, sp, dp) = if src { ([10, 0, 0, 2], [10, 0, 0, 1], 40000, 80) } else { ([10, 0, 0, 1], [10, 0, 0, 2], 80, 40000) };
            let mut t = PacketBuilder::ethernet2([1; 6], [2; 6]).ipv4(a, b, 64).tcp(sp, dp, seq, 64000);
            if flags.contains('S') {
                t = t.syn();
            }
            if flags.contains('A') {
                t = t.ack(ack);
            }
            let mut v = Vec::new();
            t.write(&mut v, data).unwrap();
            v
        };
        // Handshake, then "hello ", "world" ahead of its turn, and "there " filling the hole.
        // As Suricata's IDS mode, stream bytes reach detection once the server acknowledged
        // them, with the client's next packet.
        let frames = [
            seg(true, 100, 0, "S", b""),
            seg(false, 500, 101, "SA", b""),
            seg(true, 101, 501, "A", b""),
            seg(true, 101, 501, "A", b"hello "),
            seg(false, 501, 107, "A", b""),
            seg(true, 113, 501, "A", b"world"),
            seg(true, 107, 501, "A", b"there "),
            seg(false, 501, 118, "A", b""),
            seg(true, 118, 501, "A", b""),
        ];
        let file = pcap(&frames);
        let fake = Arc::new(Fake { record: true, ..Fake::default() });
        run(vec![file.path().to_path_buf()], 2, false, fake.clone());
        let streams = fake.streams.lock().unwrap().clone();
        assert_eq!(streams, vec![(6, 0, b"hello ".to_vec()), (9, 6, b"there world".to_vec())]);
    }

    #[test]
    fn payload_bytes_reach_the_worker_intact() {
        let mut plain = Vec::new();
        PacketBuilder::ethernet2([1; 6], [2; 6]).ipv4([10, 0, 0, 2], [10, 0, 0, 1], 64).udp(5000, 53).write(&mut plain, b"plain").unwrap();
        // A UDP datagram in two fragments, the second first.
        let mut udp = vec![0x13, 0x88, 0x00, 0x35, 0, 8 + 27, 0, 0];
        udp.extend_from_slice(b"fragmented-datagram-payload");
        let frag2 = fragment(9, 16, false, &udp[16..]);
        let frag1 = fragment(9, 0, true, &udp[..16]);
        // TCP inside GRE, and UDP over IPv6 inside IPv4 (6in4: outer and inner both inspected).
        let mut inner_tcp = Vec::new();
        PacketBuilder::ipv4([172, 16, 0, 1], [172, 16, 0, 2], 64).tcp(40000, 80, 1, 100).write(&mut inner_tcp, b"in-gre").unwrap();
        let mut gre = vec![0, 0, 0x08, 0x00];
        gre.extend_from_slice(&inner_tcp);
        let mut inner6 = Vec::new();
        PacketBuilder::ipv6([0xfd; 16], [0xfe; 16], 64).udp(6000, 7000).write(&mut inner6, b"in-6in4").unwrap();
        let frames = [plain.clone(), frag2, frag1, ipv4(47, &gre), ipv4(41, &inner6)];
        let file = pcap(&frames);
        for threads in [1, 3] {
            let fake = Arc::new(Fake { record: true, ..Fake::default() });
            let (s, _) = run(vec![file.path().to_path_buf()], threads, false, fake.clone());
            assert_eq!(s.packets, 5);
            let mut seen = fake.seen.lock().unwrap().clone();
            seen.sort();
            let expect: Vec<(u64, Vec<u8>)> = vec![
                (1, b"plain".to_vec()),
                (3, b"fragmented-datagram-payload".to_vec()),
                (4, b"in-gre".to_vec()),
                (5, inner6.clone()),
                (5, b"in-6in4".to_vec()),
            ];
            let mut expect = expect;
            expect.sort();
            assert_eq!(seen, expect, "{threads} worker(s)");
            // Compared with the frames themselves: the payload is the tail of the frame.
            assert!(frames[0].ends_with(&seen[0].1) && frames[3].ends_with(b"in-gre") && frames[4].ends_with(&inner6));
        }
    }
}

#[cfg(test)]
mod established {
    //! `flow:established` as the workers compute it, packet by packet, against Suricata's.
    use super::*;
    use crate::inspect::{RuleId, Verdict};
    use portcullis_common::ipproto;
    use portcullis_eve::AlertRule;
    use std::collections::BTreeSet;

    /// Alerts sid 1, 2 or 3 on every established TCP, UDP or ICMP packet.
    struct Established;

    impl Inspector for Established {
        type Flow = ();
        type Scratch = ();
        type Threshold = ();
        fn new_flow(&self) {}
        fn new_scratch(&self) {}
        fn new_threshold(&self) {}
        fn inspect(&self, pkt: &PacketInput<'_>, _: Option<&mut ()>, _: &mut (), alerts: &mut Vec<Alert>) -> Verdict {
            let m = pkt.meta;
            // An ICMP error carries the key of the flow it quotes; its own protocol is ICMP.
            let proto = if m.attach_only { ipproto::ICMP } else { m.key.proto };
            let sid = match proto {
                ipproto::TCP => 1,
                ipproto::UDP => 2,
                ipproto::ICMP | ipproto::ICMPV6 => 3,
                _ => return Verdict::default(),
            };
            if pkt.established {
                alerts.push(Alert {
                    rule: RuleId(0),
                    sid,
                    gid: 1,
                    rev: 0,
                    action: Action::Alert,
                    pcap_cnt: m.pcap_cnt,
                    ts: m.ts,
                    dir: pkt.dir,
                    from_stream: false,
                    global_threshold: false,
                    tx_id: None,
                });
            }
            Verdict::default()
        }
        fn admit(&self, _: &mut (), _: &Alert, _: &[u8; 16], _: &[u8; 16]) -> bool {
            true
        }
        fn rule(&self, a: &Alert) -> AlertRule<'_> {
            AlertRule { gid: 1, sid: a.sid, rev: 0, msg: "est", category: "", severity: 3, metadata: &[] }
        }
    }

    #[test]
    fn established_agrees_with_suricata_on_the_demo_capture() {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let expected: BTreeSet<(u64, u64)> = std::fs::read_to_string(root.join("tests/data/demo-established.txt"))
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| {
                let (sid, cnt) = l.split_once(' ').unwrap();
                (cnt.parse().unwrap(), sid.parse().unwrap())
            })
            .collect();
        let out = tempfile::NamedTempFile::new().unwrap();
        let opts =
            ReplayOptions { inputs: vec![root.join("../configs/demo/demo.pcap")], threads: 2, eve: Some(out.path().to_path_buf()), ..ReplayOptions::default() };
        run_replay_with(&opts, Some(Arc::new(Established))).unwrap();
        let got: BTreeSet<(u64, u64)> = std::fs::read_to_string(out.path())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|e| e["event_type"] == "alert")
            .map(|e| (e["pcap_cnt"].as_u64().unwrap(), e["alert"]["signature_id"].as_u64().unwrap()))
            .collect();
        let missing: Vec<_> = expected.difference(&got).take(20).collect();
        let extra: Vec<_> = got.difference(&expected).take(20).collect();
        assert!(missing.is_empty() && extra.is_empty(), "(pcap_cnt, sid) Suricata has and we lack: {missing:?}\nwe have and Suricata lacks: {extra:?}");
    }
}
