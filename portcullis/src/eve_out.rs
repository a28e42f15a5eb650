//! The daemon's EVE destinations (`portcullis-outputs`) behind the EVE writer: the writer
//! serialises events into lines as it always has, and [`LineSink`] hands each complete line
//! to every configured output. The outputs are shared with the writer loop, which reopens
//! them on SIGHUP, routes decisions to the webhook and puts their counters in `stats`.

use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use portcullis_outputs::Outputs;

/// The configured outputs, shared between the EVE writer's line sink and the writer loop
/// (both on the writer thread; the lock is never contended on the event path).
#[derive(Debug, Clone)]
pub struct SharedOutputs(Arc<Mutex<Outputs>>, Arc<AtomicU64>);

impl SharedOutputs {
    pub fn new(o: Outputs) -> SharedOutputs {
        SharedOutputs(Arc::new(Mutex::new(o)), Arc::new(AtomicU64::new(0)))
    }

    /// Counts decision events written straight to the outputs (not through the EVE writer).
    pub fn count_decisions(&self, n: u64) {
        self.1.fetch_add(n, Ordering::Relaxed);
    }

    pub fn decisions_written(&self) -> u64 {
        self.1.load(Ordering::Relaxed)
    }

    /// Closes the outputs once nothing else holds them (the EVE writer dropped first),
    /// giving queued sinks `grace` to deliver; their final counters. `None` when another
    /// holder remains or a file failed on the way out (said on stderr).
    pub fn close(self, grace: std::time::Duration) -> Option<portcullis_outputs::OutputsStats> {
        let m = Arc::try_unwrap(self.0).ok()?;
        match m.into_inner().unwrap_or_else(|p| p.into_inner()).close(grace) {
            Ok(s) => Some(s),
            Err(e) => {
                eprintln!("warning: closing the EVE outputs: {e}");
                None
            }
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, Outputs> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A writer of EVE lines into these outputs.
    pub fn line_sink(&self) -> LineSink {
        LineSink { outputs: self.clone(), partial: Vec::new() }
    }
}

/// Splits what the EVE writer writes into lines and gives each to the outputs.
#[derive(Debug)]
pub struct LineSink {
    outputs: SharedOutputs,
    partial: Vec<u8>,
}

impl Write for LineSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        while let Some(i) = memchr::memchr(b'\n', rest) {
            let result = if self.partial.is_empty() {
                self.outputs.lock().write(&rest[..i])
            } else {
                self.partial.extend_from_slice(&rest[..i]);
                let r = self.outputs.lock().write(&self.partial);
                self.partial.clear();
                r
            };
            result.map_err(|e| io::Error::other(e.to_string()))?;
            rest = &rest[i + 1..];
        }
        self.partial.extend_from_slice(rest);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.outputs.lock().flush().map_err(|e| io::Error::other(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_outputs::{OutputsConfig, SinkConfig};

    #[test]
    fn lines_reach_the_outputs_whole_however_the_writer_cuts_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("eve.json");
        let cfg = OutputsConfig { eve: vec![SinkConfig::File { path: path.clone() }], webhook: None };
        let shared = SharedOutputs::new(Outputs::open(&cfg).unwrap());
        let mut sink = shared.line_sink();
        sink.write_all(b"{\"a\":1}\n{\"b\"").unwrap();
        sink.write_all(b":2}").unwrap();
        sink.write_all(b"\n").unwrap();
        sink.flush().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"a\":1}\n{\"b\":2}\n");
        assert_eq!(shared.lock().stats().sinks[0].written, 2);
    }
}
