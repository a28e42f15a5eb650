//! The bounded queue between the writer and a sink's own thread, the counters both sides
//! keep, and the reconnect-with-backoff loop shared by the connection-oriented sinks.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::{OutputsError, SinkStats};

/// Events a sink's thread takes from its queue for one delivery (one Redis command or
/// pipeline, one socket write).
const MAX_BATCH: usize = 256;
/// The first wait after a failed connect; it doubles up to [`BACKOFF_MAX`].
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// Counters shared by the writer (written, overflow) and the sink's thread (the rest).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub written: AtomicU64,
    pub sent: AtomicU64,
    pub overflow: AtomicU64,
    pub lost: AtomicU64,
    pub errors: AtomicU64,
    pub reconnects: AtomicU64,
    pub last_error: Mutex<Option<String>>,
}

impl Counters {
    pub fn error(&self, e: String) {
        self.errors.fetch_add(1, Relaxed);
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
    }

    pub fn snapshot(&self, kind: &'static str, target: &str) -> SinkStats {
        // The outcomes are read before `written`: an event is counted written before it can
        // have an outcome, so `queued` never goes negative.
        let sent = self.sent.load(Relaxed);
        let overflow = self.overflow.load(Relaxed);
        let lost = self.lost.load(Relaxed);
        let written = self.written.load(Relaxed);
        SinkStats {
            kind,
            target: target.to_string(),
            written,
            sent,
            overflow,
            lost,
            queued: written.saturating_sub(sent + overflow + lost),
            errors: self.errors.load(Relaxed),
            reconnects: self.reconnects.load(Relaxed),
            last_error: self.last_error.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        }
    }
}

/// What a sink's thread sees besides its batches: the counters and whether the sink is
/// closing and its grace period is over.
#[derive(Debug)]
pub(crate) struct Control {
    pub counters: Arc<Counters>,
    give_up_at: Arc<OnceLock<Instant>>,
}

impl Control {
    /// The sink is closing and its grace period is over: count what is left as lost.
    pub fn giving_up(&self) -> bool {
        self.give_up_at.get().is_some_and(|d| Instant::now() >= *d)
    }

    /// Sleeps `d`, or less when the grace period ends first.
    pub fn sleep(&self, d: Duration) {
        let end = Instant::now() + d;
        while !self.giving_up() {
            let now = Instant::now();
            if now >= end {
                return;
            }
            std::thread::sleep((end - now).min(Duration::from_millis(20)));
        }
    }
}

/// How a sink's thread delivers a batch. It must count every event of the batch as sent or
/// lost before it returns.
pub(crate) trait Deliver: Send + 'static {
    /// Called once when the thread starts (e.g. to connect early and say so when it cannot).
    fn start(&mut self, _ctl: &Control) {}
    fn deliver(&mut self, batch: &[Vec<u8>], ctl: &Control);
}

/// A sink served by its own thread through a bounded queue of events.
#[derive(Debug)]
pub struct Queued {
    kind: &'static str,
    target: String,
    tx: Option<Sender<Vec<u8>>>,
    counters: Arc<Counters>,
    give_up_at: Arc<OnceLock<Instant>>,
    thread: Option<JoinHandle<()>>,
}

impl Queued {
    pub(crate) fn spawn<D: Deliver>(kind: &'static str, target: String, capacity: usize, mut d: D) -> Result<Queued, OutputsError> {
        let (tx, rx): (Sender<Vec<u8>>, Receiver<Vec<u8>>) = crossbeam_channel::bounded(capacity);
        let counters = Arc::new(Counters::default());
        let give_up_at = Arc::new(OnceLock::new());
        let ctl = Control { counters: counters.clone(), give_up_at: give_up_at.clone() };
        let thread = std::thread::Builder::new()
            .name(format!("out-{kind}"))
            .spawn(move || {
                d.start(&ctl);
                let mut batch = Vec::with_capacity(MAX_BATCH);
                // Ends when the writer drops its sender and the queue is empty.
                while let Ok(first) = rx.recv() {
                    batch.push(first);
                    batch.extend(rx.try_iter().take(MAX_BATCH - 1));
                    d.deliver(&batch, &ctl);
                    batch.clear();
                }
            })
            .map_err(|source| OutputsError::Thread { what: format!("{kind} {target}"), source })?;
        Ok(Queued { kind, target, tx: Some(tx), counters, give_up_at, thread: Some(thread) })
    }

    /// Queues one event without waiting; a full queue drops it and counts it as overflow.
    pub fn push(&self, line: &[u8]) {
        self.counters.written.fetch_add(1, Relaxed);
        let Some(tx) = &self.tx else {
            self.counters.lost.fetch_add(1, Relaxed);
            return;
        };
        match tx.try_send(line.to_vec()) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.counters.overflow.fetch_add(1, Relaxed);
            }
            Err(TrySendError::Disconnected(_)) => {
                self.counters.lost.fetch_add(1, Relaxed);
            }
        }
    }

    pub fn stats(&self) -> SinkStats {
        self.counters.snapshot(self.kind, &self.target)
    }

    /// Lets the thread deliver what is queued until `deadline`, then makes it count the rest
    /// as lost, and waits for it.
    pub(crate) fn close(&mut self, deadline: Instant) {
        let _ = self.give_up_at.set(deadline);
        self.tx = None;
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                self.counters.error(format!("{} {}: output thread panicked", self.kind, self.target));
            }
        }
    }
}

impl Drop for Queued {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.close(Instant::now() + Duration::from_secs(1));
        }
    }
}

/// A connection-oriented peer (Redis, a unix stream listener).
pub(crate) trait Link: Send + 'static {
    type Conn: Send;
    fn connect(&mut self) -> Result<Self::Conn, String>;
    /// Sends the whole batch; an error means the connection is to be dropped.
    fn send(&mut self, conn: &mut Self::Conn, batch: &[Vec<u8>]) -> Result<(), String>;
    /// For messages: `redis 127.0.0.1:6379`.
    fn describe(&self) -> String;
}

/// Keeps a [`Link`] connected: a failed send drops the connection, and the batch is sent
/// again once a new one is made, waiting between connects with exponential backoff. While
/// it waits it does not read its queue, so the queue fills and the writer counts overflow.
/// A batch that failed after the peer had stored it is sent twice (at least once, never
/// silently lost). One line goes to stderr when the peer is lost and one when it is back.
#[derive(Debug)]
pub(crate) struct Reconnecting<L: Link> {
    link: L,
    conn: Option<L::Conn>,
    connected_once: bool,
    down_since: Option<Instant>,
}

impl<L: Link> Reconnecting<L> {
    pub fn new(link: L) -> Self {
        Reconnecting { link, conn: None, connected_once: false, down_since: None }
    }

    fn try_connect(&mut self, ctl: &Control) -> bool {
        match self.link.connect() {
            Ok(c) => {
                self.conn = Some(c);
                if self.connected_once {
                    ctl.counters.reconnects.fetch_add(1, Relaxed);
                }
                if let Some(t) = self.down_since.take() {
                    eprintln!("outputs: {}: connected again after {:.1} s", self.link.describe(), t.elapsed().as_secs_f64());
                }
                self.connected_once = true;
                true
            }
            Err(e) => {
                self.went_down(&e);
                ctl.counters.error(e);
                false
            }
        }
    }

    fn went_down(&mut self, why: &str) {
        if self.down_since.is_none() {
            self.down_since = Some(Instant::now());
            eprintln!("warning: outputs: {}: {why}; reconnecting, events wait in the buffer and, when it is full, are dropped and counted (overflow)", self.link.describe());
        }
    }
}

impl<L: Link> Deliver for Reconnecting<L> {
    fn start(&mut self, ctl: &Control) {
        self.try_connect(ctl);
    }

    fn deliver(&mut self, batch: &[Vec<u8>], ctl: &Control) {
        let mut backoff = BACKOFF_MIN;
        loop {
            if ctl.giving_up() {
                ctl.counters.lost.fetch_add(batch.len() as u64, Relaxed);
                return;
            }
            if self.conn.is_none() && !self.try_connect(ctl) {
                ctl.sleep(backoff);
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
            let Some(conn) = self.conn.as_mut() else { continue };
            match self.link.send(conn, batch) {
                Ok(()) => {
                    ctl.counters.sent.fetch_add(batch.len() as u64, Relaxed);
                    return;
                }
                Err(e) => {
                    self.conn = None;
                    self.went_down(&e);
                    ctl.counters.error(e);
                }
            }
        }
    }
}
