//! The `Batcher`: rows from N producer threads over one bounded channel, scored in batches
//! flushed on size or age, with a latency histogram from export to score.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TrySendError};
use hdrhistogram::Histogram;

use crate::scorer::{Explanation, FeatureBatch, Score, Scorer};
use crate::InferenceError;

/// What a producer does when the channel is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhenFull {
    /// Wait for room: no flow goes unscored, the exporter slows down (fail-closed).
    #[default]
    Block,
    /// Drop the row and count it in `BatcherStats::dropped` (fail-open).
    Drop,
}

/// Batching settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatcherConfig {
    /// A batch is scored once it holds this many rows.
    pub max_batch: usize,
    /// … or once its oldest row was exported this long ago.
    pub max_age: Duration,
    /// Rows the channel holds before `when_full` applies.
    pub channel_capacity: usize,
    pub when_full: WhenFull,
    /// Contributions kept per model in each alert's explanation; 0 explains nothing.
    pub explain_top: usize,
    /// Alerts explained per batch at most, so an attack that makes every flow alert cannot
    /// stall scoring (an explanation costs about one ensemble evaluation per path
    /// feature); the rest are counted in `BatcherStats::unexplained`.
    pub explain_max: usize,
}

impl Default for BatcherConfig {
    fn default() -> Self {
        BatcherConfig {
            max_batch: 1024,
            max_age: Duration::from_millis(2),
            channel_capacity: 16384,
            when_full: WhenFull::Block,
            explain_top: 5,
            explain_max: 16,
        }
    }
}

/// One exported flow in the channel. A fixed-size array so that sending copies into the
/// channel's preallocated slot and nothing is allocated per flow.
#[derive(Debug, Clone, Copy)]
struct Row<const F: usize> {
    id: u64,
    exported: Instant,
    values: [f32; F],
}

/// The sending side, one clone per producer thread. The batcher ends when every clone is
/// dropped.
#[derive(Debug, Clone)]
pub struct Producer<const F: usize> {
    tx: Sender<Row<F>>,
    when_full: WhenFull,
    dropped: Arc<AtomicU64>,
}

impl<const F: usize> Producer<F> {
    /// Hands one flow's features to the batcher. `exported` is when the flow table let the
    /// flow go; latency is measured from it. Returns false when the row was dropped (channel
    /// full under `WhenFull::Drop`, or the batcher gone).
    #[inline]
    pub fn send(&self, id: u64, exported: Instant, values: &[f32; F]) -> bool {
        let row = Row { id, exported, values: *values };
        let sent = match self.when_full {
            WhenFull::Block => self.tx.send(row).is_ok(),
            WhenFull::Drop => match self.tx.try_send(row) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => false,
            },
        };
        if !sent {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        sent
    }
}

/// Why a batch was scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushReason {
    Size,
    Age,
    /// Every producer has gone; the rest is scored.
    Shutdown,
}

/// A scored batch handed to the sink.
#[derive(Debug)]
pub struct ScoredBatch<'a> {
    pub ids: &'a [u64],
    pub scores: &'a [Score],
    pub batch: &'a FeatureBatch,
    /// (row, explanation) for the first `explain_max` alerting rows, when `explain_top` > 0.
    pub explanations: &'a [(usize, Explanation)],
    pub reason: FlushReason,
}

/// Counters and latency percentiles so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BatcherStats {
    pub flows: u64,
    pub batches: u64,
    pub alerts: u64,
    /// Alerts past `explain_max` in their batch, left unexplained.
    pub unexplained: u64,
    pub dropped: u64,
    pub flushed_on_size: u64,
    pub flushed_on_age: u64,
    /// Export-to-score latency, microseconds.
    pub latency_p50_us: u64,
    pub latency_p99_us: u64,
    pub latency_max_us: u64,
}

/// Collects rows and scores them in batches. Runs on the caller's thread (`run`).
#[derive(Debug)]
pub struct Batcher<const F: usize> {
    rx: Receiver<Row<F>>,
    scorer: Scorer,
    config: BatcherConfig,
    batch: FeatureBatch,
    exported: Vec<Instant>,
    explanations: Vec<(usize, Explanation)>,
    latency: Histogram<u64>,
    stats: BatcherStats,
    dropped: Arc<AtomicU64>,
}

impl<const F: usize> Batcher<F> {
    /// A batcher for rows `F` wide (the extractor's width) and its first producer.
    pub fn new(scorer: Scorer, config: BatcherConfig) -> Result<(Batcher<F>, Producer<F>), InferenceError> {
        if scorer.extractor_width() != F {
            return Err(InferenceError::Spec(format!(
                "the scorer takes rows {} wide, the batcher {F}",
                scorer.extractor_width()
            )));
        }
        if config.max_batch == 0 || config.channel_capacity == 0 {
            return Err(InferenceError::Spec("max_batch and channel_capacity must be positive".into()));
        }
        let (tx, rx) = bounded(config.channel_capacity);
        let dropped = Arc::new(AtomicU64::new(0));
        let producer = Producer { tx, when_full: config.when_full, dropped: dropped.clone() };
        let latency = Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds");
        Ok((
            Batcher {
                rx,
                scorer,
                config,
                batch: FeatureBatch::with_capacity(F, config.max_batch),
                exported: Vec::with_capacity(config.max_batch),
                explanations: Vec::new(),
                latency,
                stats: BatcherStats::default(),
                dropped,
            },
            producer,
        ))
    }

    /// Receives and scores until every producer is dropped, calling `sink` with each scored
    /// batch. Returns the final statistics.
    pub fn run(&mut self, mut sink: impl FnMut(&ScoredBatch<'_>)) -> Result<BatcherStats, InferenceError> {
        loop {
            let msg = match self.exported.first() {
                None => self.rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
                Some(&oldest) => self.rx.recv_deadline(oldest + self.config.max_age),
            };
            match msg {
                Ok(row) => {
                    self.batch.push(row.id, &row.values);
                    self.exported.push(row.exported);
                    // Take what is already waiting too: behind a backlog every row is past
                    // max_age when it arrives, and flushing each on its own would score
                    // batches of one, the slowest way, so the backlog would never clear.
                    while self.batch.len() < self.config.max_batch {
                        let Ok(row) = self.rx.try_recv() else { break };
                        self.batch.push(row.id, &row.values);
                        self.exported.push(row.exported);
                    }
                    if self.batch.len() >= self.config.max_batch {
                        self.flush(FlushReason::Size, &mut sink)?;
                    } else if Instant::now() >= self.exported[0] + self.config.max_age {
                        self.flush(FlushReason::Age, &mut sink)?;
                    }
                }
                Err(RecvTimeoutError::Timeout) => self.flush(FlushReason::Age, &mut sink)?,
                Err(RecvTimeoutError::Disconnected) => {
                    if !self.batch.is_empty() {
                        self.flush(FlushReason::Shutdown, &mut sink)?;
                    }
                    return Ok(self.stats());
                }
            }
        }
    }

    fn flush(&mut self, reason: FlushReason, sink: &mut impl FnMut(&ScoredBatch<'_>)) -> Result<(), InferenceError> {
        let scores = self.scorer.score(&self.batch)?;
        let now = Instant::now();
        for e in &self.exported {
            let us = now.saturating_duration_since(*e).as_micros() as u64;
            self.latency.saturating_record(us.max(1));
        }
        self.explanations.clear();
        let alerts = scores.iter().filter(|s| s.alert).count() as u64;
        if self.config.explain_top > 0 && alerts > 0 {
            let alerting: Vec<usize> =
                scores.iter().enumerate().filter(|(_, s)| s.alert).map(|(i, _)| i).take(self.config.explain_max).collect();
            self.stats.unexplained += alerts - alerting.len() as u64;
            for i in alerting {
                let e = self.scorer.explain(&self.batch, i, self.config.explain_top)?;
                self.explanations.push((i, e));
            }
        }
        self.stats.alerts += alerts;
        self.stats.flows += self.batch.len() as u64;
        self.stats.batches += 1;
        match reason {
            FlushReason::Size => self.stats.flushed_on_size += 1,
            FlushReason::Age => self.stats.flushed_on_age += 1,
            FlushReason::Shutdown => {}
        }
        sink(&ScoredBatch {
            ids: self.batch.ids(),
            scores: self.scorer_scores(),
            batch: &self.batch,
            explanations: &self.explanations,
            reason,
        });
        self.batch.clear();
        self.exported.clear();
        Ok(())
    }

    fn scorer_scores(&self) -> &[Score] {
        self.scorer.last_scores()
    }

    /// Counters and percentiles so far.
    pub fn stats(&self) -> BatcherStats {
        BatcherStats {
            dropped: self.dropped.load(Ordering::Relaxed),
            latency_p50_us: self.latency.value_at_quantile(0.50),
            latency_p99_us: self.latency.value_at_quantile(0.99),
            latency_max_us: self.latency.max(),
            ..self.stats
        }
    }

    /// Forgets the latency samples (e.g. after a warm-up).
    pub fn reset_latency(&mut self) {
        self.latency.reset();
    }
}
