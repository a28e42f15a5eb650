use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// A failure of the EVE output itself (not of the traffic it describes).
#[derive(Debug, thiserror::Error)]
pub enum EveError {
    #[error("cannot open EVE output {path}: {source}")]
    Open { path: PathBuf, source: io::Error },
    #[error("cannot write EVE output: {0}")]
    Write(#[from] io::Error),
    #[error("cannot serialise EVE event: {0}")]
    Json(#[from] serde_json::Error),
}

/// Writes EVE events, one JSON object per line.
pub struct EveWriter {
    out: BufWriter<Box<dyn Write + Send>>,
    events: u64,
}

impl std::fmt::Debug for EveWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EveWriter").field("events", &self.events).finish()
    }
}

impl EveWriter {
    /// Opens `path` for appending (as Suricata does), or stdout for `-`.
    pub fn open(path: &Path) -> Result<Self, EveError> {
        if path.as_os_str() == "-" {
            return Ok(Self::new(Box::new(io::stdout())));
        }
        let f: File = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| EveError::Open { path: path.to_path_buf(), source })?;
        Ok(Self::new(Box::new(f)))
    }

    pub fn new(out: Box<dyn Write + Send>) -> Self {
        EveWriter { out: BufWriter::with_capacity(1 << 16, out), events: 0 }
    }

    /// Writes one event as a line.
    pub fn write<T: serde::Serialize + ?Sized>(&mut self, event: &T) -> Result<(), EveError> {
        serde_json::to_writer(&mut self.out, event)?;
        self.out.write_all(b"\n")?;
        self.events += 1;
        Ok(())
    }

    /// Writes one event already serialised as JSON (without its newline).
    pub fn write_raw(&mut self, json: &[u8]) -> Result<(), EveError> {
        self.out.write_all(json)?;
        self.out.write_all(b"\n")?;
        self.events += 1;
        Ok(())
    }

    pub fn events(&self) -> u64 {
        self.events
    }

    pub fn flush(&mut self) -> Result<(), EveError> {
        self.out.flush()?;
        Ok(())
    }
}
