//! Where EVE events go once they are serialised: a file (appended to, reopened on SIGHUP so
//! logrotate's rename works), a unix datagram or stream socket, the local syslog socket,
//! Redis (a list or a pub/sub channel, as Suricata's `filetype: redis`), and a webhook that
//! POSTs high-severity policy decisions. This crate owns the sinks, their connections,
//! reconnection and bounded buffering; it does not serialise events, choose event types or
//! parse the configuration file (`portcullis-config` hands it an [`OutputsConfig`]).
//!
//! Input: one serialised event per call (`&[u8]`, JSON without its newline), and for
//! decisions the action name the webhook is routed on. Output: the bytes on the wire and a
//! [`OutputsStats`] snapshot per sink.
//!
//! The sinks are chosen once at start ([`Output`] is an enum, not a trait object per event).
//! The file sink writes on the caller's thread, as the EVE writer always has. Every network
//! sink either sends without blocking (unix datagrams, syslog: a full socket buffer drops
//! the event and counts it as `overflow`) or hands the event to its own thread through a
//! bounded queue (unix stream, Redis, webhook: a full queue drops the event and counts it as
//! `overflow`), so [`Outputs::write`] never waits on a network peer. Every event written is
//! eventually counted exactly once as `sent`, `overflow` or `lost` (see [`SinkStats`]).

mod config;
mod file;
mod queue;
mod redis;
mod syslog;
mod unix;
mod webhook;

use std::path::PathBuf;
use std::time::{Duration, Instant};

pub use config::{Facility, Level, OutputsConfig, RedisConfig, RedisMode, SinkConfig, WebhookConfig, ACTIONS, DEFAULT_BUFFER, DEFAULT_SYSLOG_SOCKET};

/// A failure of the output itself (not of the traffic it describes).
#[derive(Debug, thiserror::Error)]
pub enum OutputsError {
    #[error("cannot open EVE output {path}: {source}")]
    Open { path: PathBuf, source: std::io::Error },
    #[error("cannot write EVE output {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("cannot start the {what} output thread: {source}")]
    Thread { what: String, source: std::io::Error },
    #[error("{key}: {message}")]
    Config { key: String, message: String },
}

/// What one sink did since it was opened. Every event given to the sink is counted once in
/// `written` and, once its fate is known, once in `sent`, `overflow` or `lost`; the
/// difference is `queued` (waiting in the sink's buffer or in flight).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SinkStats {
    /// `regular`, `unix_dgram`, `unix_stream`, `syslog`, `redis` or `webhook`.
    pub kind: &'static str,
    /// Where it writes, for people: a path, `host:port mode key`, a URL.
    pub target: String,
    pub written: u64,
    /// Accepted by the peer: written to the file, taken by the socket, acknowledged by
    /// Redis, answered 2xx by the webhook.
    pub sent: u64,
    /// Dropped because the buffer (the sink's queue, or a datagram socket's buffer) was full.
    pub overflow: u64,
    /// Dropped for any other reason: the peer was absent, refused or failed the event, or
    /// it was still queued when [`Outputs::close`]'s grace period ran out.
    pub lost: u64,
    pub queued: u64,
    /// Failed attempts (connects, sends, HTTP errors); one outage can count several.
    pub errors: u64,
    /// Connections made after the first.
    pub reconnects: u64,
    /// The most recent error, for an operator.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// A snapshot of every sink, EVE sinks first, the webhook last.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct OutputsStats {
    pub sinks: Vec<SinkStats>,
}

/// One EVE sink, chosen once at start.
#[derive(Debug)]
pub enum Output {
    File(file::FileSink),
    UnixDgram(unix::DgramSink),
    Syslog(syslog::SyslogSink),
    /// Unix stream and Redis: a thread owns the connection; events reach it through a
    /// bounded queue.
    Queued(queue::Queued),
}

impl Output {
    /// Opens the sink `cfg` names. Network peers that are absent at start are not an error:
    /// the sink says so once (in `notes`) and keeps trying.
    pub fn open(cfg: &SinkConfig, notes: &mut Vec<String>) -> Result<Output, OutputsError> {
        Ok(match cfg {
            SinkConfig::File { path } => Output::File(file::FileSink::open(path)?),
            SinkConfig::UnixDgram { path } => Output::UnixDgram(unix::DgramSink::open(path, notes)),
            SinkConfig::UnixStream { path, buffer } => Output::Queued(unix::stream_sink(path, *buffer)?),
            SinkConfig::Syslog { socket, identity, facility, level } => Output::Syslog(syslog::SyslogSink::open(socket, identity, *facility, *level, notes)),
            SinkConfig::Redis(r) => Output::Queued(redis::sink(r)?),
        })
    }

    /// Writes one event (JSON without its newline). Only the file sink returns an error;
    /// the others count what they could not deliver.
    pub fn write(&mut self, line: &[u8]) -> Result<(), OutputsError> {
        match self {
            Output::File(f) => f.write(line),
            Output::UnixDgram(d) => {
                d.write(line);
                Ok(())
            }
            Output::Syslog(s) => {
                s.write(line);
                Ok(())
            }
            Output::Queued(q) => {
                q.push(line);
                Ok(())
            }
        }
    }

    /// Closes and reopens the file at its path (logrotate's `postrotate` sends SIGHUP after
    /// renaming it); reconnects a datagram socket. Queued sinks reconnect on their own.
    pub fn reopen(&mut self) -> Result<(), OutputsError> {
        match self {
            Output::File(f) => f.reopen(),
            Output::UnixDgram(d) => {
                d.reconnect();
                Ok(())
            }
            Output::Syslog(s) => {
                s.reconnect();
                Ok(())
            }
            Output::Queued(_) => Ok(()),
        }
    }

    /// Flushes the file's buffer. It does not wait for queued sinks (see [`Outputs::drain`]).
    pub fn flush(&mut self) -> Result<(), OutputsError> {
        match self {
            Output::File(f) => f.flush(),
            _ => Ok(()),
        }
    }

    pub fn stats(&self) -> SinkStats {
        match self {
            Output::File(f) => f.stats(),
            Output::UnixDgram(d) => d.stats(),
            Output::Syslog(s) => s.stats(),
            Output::Queued(q) => q.stats(),
        }
    }

    fn close(&mut self, deadline: Instant) -> Result<(), OutputsError> {
        match self {
            Output::File(f) => f.flush(),
            Output::Queued(q) => {
                q.close(deadline);
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// Every configured sink and the webhook: what the daemon's writer thread holds.
#[derive(Debug)]
pub struct Outputs {
    eve: Vec<Output>,
    webhook: Option<webhook::Webhook>,
    notes: Vec<String>,
}

impl Outputs {
    /// Opens every sink of `cfg` (validated with [`OutputsConfig::validate`] first). A file
    /// that cannot be opened is an error; an absent network peer is a note (see
    /// [`Outputs::notes`]) and the sink keeps trying.
    pub fn open(cfg: &OutputsConfig) -> Result<Outputs, OutputsError> {
        cfg.validate().map_err(|(key, message)| OutputsError::Config { key, message })?;
        let mut notes = Vec::new();
        let eve = cfg.eve.iter().map(|s| Output::open(s, &mut notes)).collect::<Result<Vec<_>, _>>()?;
        let webhook = cfg.webhook.as_ref().map(webhook::Webhook::start).transpose()?;
        Ok(Outputs { eve, webhook, notes })
    }

    /// Lines for the operator about sinks that are not working yet (to print once at start).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// Writes one event to every EVE sink. Returns the first file error; the other sinks
    /// have still been written.
    pub fn write(&mut self, line: &[u8]) -> Result<(), OutputsError> {
        let mut first = None;
        for o in &mut self.eve {
            if let Err(e) = o.write(line) {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// Writes a `decision` event: to every EVE sink, and to the webhook when `action` (the
    /// policy's action name: `alert`, `drop`, `rate-limit`, `block`, `quarantine`) is one of
    /// `webhook.actions`, whatever the decision's state (dry-run, pending, applied, failed,
    /// refused: the receiver reads `decision.state`).
    pub fn write_decision(&mut self, action: &str, line: &[u8]) -> Result<(), OutputsError> {
        if let Some(w) = &mut self.webhook {
            w.offer(action, line);
        }
        self.write(line)
    }

    /// SIGHUP: reopens files at their paths and reconnects datagram sockets.
    pub fn reopen(&mut self) -> Result<(), OutputsError> {
        let mut first = None;
        for o in &mut self.eve {
            if let Err(e) = o.reopen() {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// Flushes file buffers; never waits on the network.
    pub fn flush(&mut self) -> Result<(), OutputsError> {
        let mut first = None;
        for o in &mut self.eve {
            if let Err(e) = o.flush() {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    pub fn stats(&self) -> OutputsStats {
        let mut sinks: Vec<SinkStats> = self.eve.iter().map(Output::stats).collect();
        sinks.extend(self.webhook.as_ref().map(webhook::Webhook::stats));
        OutputsStats { sinks }
    }

    /// Waits up to `timeout` for every queued event to be sent or counted as lost; true when
    /// none is left. For tests and for a clean stop; the daemon's writer never calls it per
    /// event.
    pub fn drain(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.stats().sinks.iter().all(|s| s.queued == 0) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Stops: flushes files, gives queued sinks up to `grace` to deliver what they hold
    /// (one HTTP request or Redis round trip already in flight may add its own timeout),
    /// counts the rest as `lost`, and returns the final stats.
    pub fn close(mut self, grace: Duration) -> Result<OutputsStats, OutputsError> {
        let deadline = Instant::now() + grace;
        let mut first = None;
        for o in &mut self.eve {
            if let Err(e) = o.close(deadline) {
                first.get_or_insert(e);
            }
        }
        if let Some(w) = &mut self.webhook {
            w.close(deadline);
        }
        match first {
            Some(e) => Err(e),
            None => Ok(self.stats()),
        }
    }
}
