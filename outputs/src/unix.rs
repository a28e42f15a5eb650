//! `filetype: unix_dgram` and `unix_stream`: events to a local listener (a log shipper's
//! socket), as Suricata's EVE writes them.

use std::io::{self, Write};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::queue::{Link, Queued, Reconnecting};
use crate::{OutputsError, SinkStats};

/// A connect to an absent listener is retried at most this often, so a sink whose peer is
/// gone costs one failed system call per second, not one per event.
const RETRY: Duration = Duration::from_secs(1);
/// How long a stream write may wait on a listener that stopped reading before the
/// connection is dropped and made again.
const STREAM_WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// A non-blocking datagram socket connected to a listener's path. Shared by `unix_dgram`
/// and `syslog` (which adds its header to each message).
#[derive(Debug)]
pub struct Datagrams {
    kind: &'static str,
    path: PathBuf,
    sock: Option<UnixDatagram>,
    next_try: Instant,
    written: u64,
    sent: u64,
    overflow: u64,
    lost: u64,
    errors: u64,
    reconnects: u64,
    connected_once: bool,
    down_said: bool,
    last_error: Option<String>,
}

impl Datagrams {
    /// Connects now if it can; when it cannot, says so in `notes` (once) and retries on
    /// later writes.
    pub fn open(kind: &'static str, path: &Path, notes: &mut Vec<String>) -> Datagrams {
        let mut d = Datagrams {
            kind,
            path: path.to_path_buf(),
            sock: None,
            next_try: Instant::now(),
            written: 0,
            sent: 0,
            overflow: 0,
            lost: 0,
            errors: 0,
            reconnects: 0,
            connected_once: false,
            down_said: true,
            last_error: None,
        };
        if let Err(e) = d.connect() {
            notes.push(format!("outputs: {kind} {}: {e}; events are dropped and counted (lost) until it can connect (retried every second)", path.display()));
        }
        d
    }

    fn connect(&mut self) -> io::Result<()> {
        self.next_try = Instant::now() + RETRY;
        let r = UnixDatagram::unbound().and_then(|s| {
            s.connect(&self.path)?;
            s.set_nonblocking(true)?;
            Ok(s)
        });
        match r {
            Ok(s) => {
                self.sock = Some(s);
                if self.connected_once {
                    self.reconnects += 1;
                }
                self.connected_once = true;
                self.down_said = false;
                Ok(())
            }
            Err(e) => {
                self.error(&e);
                Err(e)
            }
        }
    }

    fn error(&mut self, e: &io::Error) {
        self.errors += 1;
        self.last_error = Some(e.to_string());
    }

    /// Sends one datagram without waiting.
    pub fn send(&mut self, msg: &[u8]) {
        self.written += 1;
        if self.sock.is_none() && (Instant::now() < self.next_try || self.connect().is_err()) {
            self.lost += 1;
            return;
        }
        let Some(s) = &self.sock else { return };
        match s.send(msg) {
            Ok(_) => self.sent += 1,
            // The listener's receive buffer is full: it is not keeping up.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.overflow += 1,
            Err(e) => {
                self.lost += 1;
                self.error(&e);
                // EMSGSIZE: one event larger than the socket takes; the connection is fine.
                // A listener that went away (ECONNREFUSED, ENOENT after a restart) is found
                // again by connecting to the path anew.
                if e.raw_os_error() != Some(libc::EMSGSIZE) {
                    self.sock = None;
                    self.next_try = Instant::now();
                    if !self.down_said {
                        self.down_said = true;
                        eprintln!("warning: outputs: {} {}: {e}; events are dropped and counted (lost) until it can connect again", self.kind, self.path.display());
                    }
                }
            }
        }
    }

    pub fn reconnect(&mut self) {
        let _ = self.connect();
    }

    pub fn stats(&self) -> SinkStats {
        SinkStats {
            kind: self.kind,
            target: self.path.display().to_string(),
            written: self.written,
            sent: self.sent,
            overflow: self.overflow,
            lost: self.lost,
            queued: 0,
            errors: self.errors,
            reconnects: self.reconnects,
            last_error: self.last_error.clone(),
        }
    }
}

/// `unix_dgram`: one datagram per event, without a newline (the datagram is the frame).
#[derive(Debug)]
pub struct DgramSink(Datagrams);

impl DgramSink {
    pub fn open(path: &Path, notes: &mut Vec<String>) -> DgramSink {
        DgramSink(Datagrams::open("unix_dgram", path, notes))
    }
    pub fn write(&mut self, line: &[u8]) {
        self.0.send(line);
    }
    pub fn reconnect(&mut self) {
        self.0.reconnect();
    }
    pub fn stats(&self) -> SinkStats {
        self.0.stats()
    }
}

/// `unix_stream`: newline-terminated events over a connection, from the sink's thread.
#[derive(Debug)]
struct StreamLink {
    path: PathBuf,
    buf: Vec<u8>,
}

impl Link for StreamLink {
    type Conn = UnixStream;

    fn connect(&mut self) -> Result<UnixStream, String> {
        let s = UnixStream::connect(&self.path).map_err(|e| format!("cannot connect: {e}"))?;
        s.set_write_timeout(Some(STREAM_WRITE_TIMEOUT)).map_err(|e| e.to_string())?;
        Ok(s)
    }

    fn send(&mut self, conn: &mut UnixStream, batch: &[Vec<u8>]) -> Result<(), String> {
        self.buf.clear();
        for l in batch {
            self.buf.extend_from_slice(l);
            self.buf.push(b'\n');
        }
        conn.write_all(&self.buf).map_err(|e| format!("write failed: {e}"))
    }

    fn describe(&self) -> String {
        format!("unix_stream {}", self.path.display())
    }
}

pub(crate) fn stream_sink(path: &Path, buffer: usize) -> Result<Queued, OutputsError> {
    let link = StreamLink { path: path.to_path_buf(), buf: Vec::new() };
    Queued::spawn("unix_stream", path.display().to_string(), buffer, Reconnecting::new(link))
}
