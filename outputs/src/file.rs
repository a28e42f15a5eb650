//! `filetype: regular`: a file appended to (or stdout), written on the caller's thread.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::{OutputsError, SinkStats};

#[derive(Debug)]
enum Target {
    File(BufWriter<File>),
    Stdout(BufWriter<io::Stdout>),
}

/// Appends one line per event. `reopen` closes the file and opens the path again, so after
/// logrotate renamed it (and sent SIGHUP) new events go to a new file at the configured path
/// and the renamed file holds every event written before.
#[derive(Debug)]
pub struct FileSink {
    path: PathBuf,
    out: Target,
    written: u64,
    sent: u64,
    lost: u64,
    errors: u64,
    reopens: u64,
    last_error: Option<String>,
}

/// Large enough that a writer of many small events makes few system calls.
const BUFFER: usize = 1 << 16;

fn open_append(path: &Path) -> Result<BufWriter<File>, OutputsError> {
    let f = OpenOptions::new().create(true).append(true).open(path).map_err(|source| OutputsError::Open { path: path.to_path_buf(), source })?;
    Ok(BufWriter::with_capacity(BUFFER, f))
}

impl FileSink {
    /// Opens `path` for appending (as Suricata does); `-` is stdout.
    pub fn open(path: &Path) -> Result<FileSink, OutputsError> {
        let out = if path.as_os_str() == "-" { Target::Stdout(BufWriter::with_capacity(BUFFER, io::stdout())) } else { Target::File(open_append(path)?) };
        Ok(FileSink { path: path.to_path_buf(), out, written: 0, sent: 0, lost: 0, errors: 0, reopens: 0, last_error: None })
    }

    pub fn write(&mut self, line: &[u8]) -> Result<(), OutputsError> {
        self.written += 1;
        let w: &mut dyn Write = match &mut self.out {
            Target::File(f) => f,
            Target::Stdout(s) => s,
        };
        match w.write_all(line).and_then(|()| w.write_all(b"\n")) {
            Ok(()) => {
                self.sent += 1;
                Ok(())
            }
            Err(source) => {
                self.lost += 1;
                Err(self.failed(source))
            }
        }
    }

    fn failed(&mut self, source: io::Error) -> OutputsError {
        self.errors += 1;
        self.last_error = Some(source.to_string());
        OutputsError::Write { path: self.path.clone(), source }
    }

    pub fn flush(&mut self) -> Result<(), OutputsError> {
        let r = match &mut self.out {
            Target::File(f) => f.flush(),
            Target::Stdout(s) => s.flush(),
        };
        r.map_err(|e| self.failed(e))
    }

    /// Flushes what the old file is owed, then opens the path again. When the new file
    /// cannot be opened the old one stays in use, so nothing is lost, and the error is
    /// returned for the operator.
    pub fn reopen(&mut self) -> Result<(), OutputsError> {
        if matches!(self.out, Target::Stdout(_)) {
            return self.flush();
        }
        self.flush()?;
        let new = open_append(&self.path).inspect_err(|e| {
            self.errors += 1;
            self.last_error = Some(e.to_string());
        })?;
        self.out = Target::File(new);
        self.reopens += 1;
        Ok(())
    }

    pub fn stats(&self) -> SinkStats {
        SinkStats {
            kind: "regular",
            target: self.path.display().to_string(),
            written: self.written,
            sent: self.sent,
            overflow: 0,
            lost: self.lost,
            // Bytes in the BufWriter are counted sent: the file sink's peer is the page cache,
            // and `flush` (every stats interval, at exit) hands them over.
            queued: 0,
            errors: self.errors,
            reconnects: self.reopens,
            last_error: self.last_error.clone(),
        }
    }
}
