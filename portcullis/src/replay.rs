//! Offline replay: capture files → decode → flow table shards → EVE.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, Sender};
use portcullis_common::{PacketMeta, Timestamp};
use portcullis_dataplane::{capture_files, CaptureError, CaptureFile, DecodeStats, Decoded, Decoder, DecoderConfig};
use portcullis_eve::{flow_event, stats_event, EveError, EveWriter, Stats};
use portcullis_flowtable::{FlowConfig, FlowRecord, FlowStats, FlowTable};

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
    /// Draw a progress bar on stderr (only if it is a terminal).
    pub progress: bool,
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
            progress: false,
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
    #[error("a worker thread panicked")]
    WorkerPanic,
}

enum WorkerMsg {
    Batch { seq: u64, watermark: Timestamp, packets: Vec<PacketMeta> },
    Finish { seq: u64, now: Timestamp },
}

struct WorkerOut {
    seq: u64,
    records: Vec<FlowRecord>,
}

fn worker(cfg: FlowConfig, rx: Receiver<WorkerMsg>, tx: Sender<WorkerOut>) -> FlowStats {
    let mut table = FlowTable::new(cfg);
    for msg in rx {
        let mut records = Vec::new();
        match msg {
            WorkerMsg::Batch { seq, watermark, packets } => {
                for p in &packets {
                    table.update(p, &mut records);
                }
                table.expire(watermark, &mut records);
                // The writer orders records within a batch; nothing here depends on which
                // worker a flow landed on.
                if tx.send(WorkerOut { seq, records }).is_err() {
                    break;
                }
            }
            WorkerMsg::Finish { seq, now } => {
                table.expire(now, &mut records);
                table.flush(now, &mut records);
                let _ = tx.send(WorkerOut { seq, records });
            }
        }
    }
    table.stats.clone()
}

/// Orders and writes flow events: for each batch, waits for every worker's records, sorts
/// them by (logged time, start, flow id) and writes them.
fn writer(rx: Receiver<WorkerOut>, workers: usize, mut eve: Option<EveWriter>, log_flows: bool) -> Result<(Option<EveWriter>, u64), EveError> {
    let mut pending: BTreeMap<u64, (usize, Vec<FlowRecord>)> = BTreeMap::new();
    let mut next = 0u64;
    let mut flows = 0u64;
    let mut failed: Option<EveError> = None;
    for out in rx {
        let e = pending.entry(out.seq).or_insert((0, Vec::new()));
        e.0 += 1;
        e.1.extend(out.records);
        while pending.get(&next).is_some_and(|(n, _)| *n == workers) {
            let (_, mut records) = pending.remove(&next).unwrap_or_default();
            records.sort_by_key(|r| (r.logged_at, r.start, r.flow_id));
            flows += records.len() as u64;
            if let (Some(w), true, None) = (eve.as_mut(), log_flows, failed.as_ref()) {
                for r in &records {
                    if let Err(e) = w.write(&flow_event(r)) {
                        // Keep draining so the workers are not blocked; report at the end.
                        failed = Some(e);
                        break;
                    }
                }
            }
            next += 1;
        }
    }
    match failed {
        Some(e) => Err(e),
        None => Ok((eve, flows)),
    }
}

/// Runs a replay to completion.
pub fn run_replay(opts: &ReplayOptions) -> Result<ReplaySummary, ReplayError> {
    let started = Instant::now();
    let files = capture_files(&opts.inputs)?;
    let eve = match &opts.eve {
        Some(p) => Some(EveWriter::open(p)?),
        None => None,
    };
    let n = opts.threads.max(1);
    let batch_size = opts.batch_size.max(1);
    let mut flow_cfg = opts.flow;
    flow_cfg.memcap = (flow_cfg.memcap / n as u64).max(1 << 16);

    let (out_tx, out_rx) = bounded::<WorkerOut>(n * 8);
    let log_flows = opts.log_flows;
    let writer_handle = thread::Builder::new()
        .name("eve-writer".into())
        .spawn(move || writer(out_rx, n, eve, log_flows))
        .expect("spawn writer thread");
    let mut txs = Vec::with_capacity(n);
    let mut handles = Vec::with_capacity(n);
    for i in 0..n {
        let (tx, rx) = bounded::<WorkerMsg>(8);
        let out_tx = out_tx.clone();
        txs.push(tx);
        handles.push(
            thread::Builder::new()
                .name(format!("flow-worker-{i}"))
                .spawn(move || worker(flow_cfg, rx, out_tx))
                .expect("spawn worker thread"),
        );
    }
    drop(out_tx);

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
    let mut summary = ReplaySummary { files: files.len(), ..Default::default() };
    let mut batches: Vec<Vec<PacketMeta>> = (0..n).map(|_| Vec::with_capacity(batch_size * 2 / n + 8)).collect();
    let mut in_batch = 0usize;
    let mut seq = 0u64;
    let mut watermark = Timestamp(i64::MIN);
    let mut pcap_cnt = 0u64;
    let mut done_bytes = 0u64;
    let mut dead = false;

    'files: for path in &files {
        let mut cf = match CaptureFile::open(path) {
            Ok(c) => c,
            Err(e) => {
                bar.suspend(|| eprintln!("warning: {e}"));
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
                    bar.suspend(|| eprintln!("warning: {e}"));
                    summary.capture_errors.push(e.to_string());
                    break;
                }
            };
            pcap_cnt += 1;
            watermark = watermark.max(frame.ts);
            match decoder.decode(&frame, pcap_cnt) {
                Decoded::Packet(meta) => push(&mut batches, meta, watermark),
                Decoded::Tunneled { outer, inner } => {
                    push(&mut batches, outer, watermark);
                    push(&mut batches, inner, watermark);
                }
                Decoded::Unsupported if !warned_link => {
                    warned_link = true;
                    let link = frame.link;
                    bar.suspend(|| eprintln!("warning: {}: link type {link:?} is not supported; its packets are counted, not decoded", path.display()));
                }
                _ => {}
            }
            in_batch += 1;
            if in_batch >= batch_size {
                in_batch = 0;
                if !dispatch(&txs, &mut batches, seq, watermark) {
                    dead = true;
                    break 'files;
                }
                seq += 1;
                if seq % 64 == 0 {
                    bar.set_position(done_bytes + cf.position());
                }
            }
        }
        done_bytes += std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        bar.set_position(done_bytes);
    }
    decoder.flush();
    if !dead && in_batch > 0 {
        dead = !dispatch(&txs, &mut batches, seq, watermark);
        seq += 1;
    }
    if !dead {
        for tx in &txs {
            let _ = tx.send(WorkerMsg::Finish { seq, now: watermark.max(Timestamp(0)) });
        }
    }
    drop(txs);
    let mut flow_stats = FlowStats::default();
    for h in handles {
        let s = h.join().map_err(|_| ReplayError::WorkerPanic)?;
        flow_stats.merge(&s);
    }
    let (eve, flows) = writer_handle.join().map_err(|_| ReplayError::WorkerPanic)??;
    bar.finish_and_clear();

    summary.packets = decoder.stats.pkts;
    summary.bytes = decoder.stats.bytes;
    summary.anomalies = decoder.stats.anomalies();
    summary.flows = flows;
    summary.decoder = decoder.stats.clone();
    summary.flow = flow_stats;
    summary.elapsed = started.elapsed();
    if let Some(mut w) = eve {
        if opts.log_stats {
            let stats = Stats {
                uptime_secs: summary.elapsed.as_secs(),
                decoder: summary.decoder.clone(),
                flow: summary.flow.clone(),
                capture_errors: summary.capture_errors.len() as u64,
            };
            w.write(&stats_event(watermark.max(Timestamp(0)), &stats))?;
        }
        w.flush()?;
        summary.events_written = w.events();
    }
    Ok(summary)
}

/// Stamps the engine clock on a packet and queues it for the worker that owns its flow.
fn push(batches: &mut [Vec<PacketMeta>], mut meta: PacketMeta, clock: Timestamp) {
    meta.clock = clock;
    let w = (meta.key.stable_hash() % batches.len() as u64) as usize;
    batches[w].push(meta);
}

/// Hands every worker its share of the batch (possibly empty: the watermark still advances
/// its clock). Returns false if a worker has gone away.
fn dispatch(txs: &[Sender<WorkerMsg>], batches: &mut [Vec<PacketMeta>], seq: u64, watermark: Timestamp) -> bool {
    for (tx, b) in txs.iter().zip(batches.iter_mut()) {
        let cap = b.capacity();
        let packets = std::mem::replace(b, Vec::with_capacity(cap));
        if tx.send(WorkerMsg::Batch { seq, watermark, packets }).is_err() {
            return false;
        }
    }
    true
}
