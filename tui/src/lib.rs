//! The live console (`portcullis console`, `portcullis replay --console`): a ratatui view of
//! the daemon's [`Snapshot`]s and the keys that turn into control [`Request`]s. It owns the
//! panes (traffic sparklines, capture health, scoring backend, alerts, flows, top talkers,
//! enforcement and the approval queue), the operator's state over them ([`App`]: focus,
//! selection, sort, filter, pause, inspect, help, y/n confirmation) and the terminal loop
//! ([`run`]). It does not own the connection: the binary implements [`Link`] over the control
//! socket (and replay over an in-process channel), so the console reads snapshots, never
//! live structures, and never blocks the dataplane. It depends only on `portcullis-api`;
//! nothing but the binary depends on it.
//!
//! Inputs: snapshots and replies from a [`Link`], keys from the terminal. Outputs: frames
//! ([`draw`]) and requests sent through the link. Unblocking the first active entry is
//! `4` (focus enforcement), `u`, `y`; the status line then shows the daemon's reply.

mod app;
mod fmt;
mod term;
mod view;

pub use app::{App, Confirm, EnforcementRow, FlowSort, Inspected, Overlay, Pane, Status, StatusKind};
pub use portcullis_api::{Request, Snapshot};
/// The crossterm the console drives, for callers that build key events (tests, replay).
pub use ratatui::crossterm;
pub use term::run;
pub use view::draw;

/// The console's way to the daemon. Replies are the protocol's JSON objects
/// (`{"ok":true,...}` or `{"ok":false,"error":"..."}`); `Err` is for the link itself failing
/// (socket gone, garbled line), and its text is shown to the operator as it is.
pub trait Link {
    fn snapshot(&mut self) -> Result<Snapshot, String>;
    /// Sends `request`. A link answers quick requests before it returns; a slow one (a rule
    /// reload, a model swap) it may answer from a thread of its own ([`Reply::spawn`]), and
    /// the console keeps drawing snapshots until the answer arrives.
    fn send(&mut self, request: &Request) -> Reply;
}

/// The answer to one request: there already, or on its way from the thread a link started.
#[derive(Debug)]
pub struct Reply(std::sync::mpsc::Receiver<Result<serde_json::Value, String>>);

impl Reply {
    /// An answer the link already has.
    pub fn ready(answer: Result<serde_json::Value, String>) -> Reply {
        let (tx, rx) = std::sync::mpsc::channel();
        // The receiver is alive (it is returned below), so the send cannot fail.
        let _ = tx.send(answer);
        Reply(rx)
    }

    /// The answer `ask` gives, from a thread of its own.
    pub fn spawn(ask: impl FnOnce() -> Result<serde_json::Value, String> + Send + 'static) -> Reply {
        let (tx, rx) = std::sync::mpsc::channel();
        let spawned = std::thread::Builder::new().name("console-request".into()).spawn(move || {
            // The console may have quit meanwhile; then nobody needs the answer.
            let _ = tx.send(ask());
        });
        match spawned {
            Ok(_) => Reply(rx),
            Err(e) => Reply::ready(Err(format!("could not start a thread for the request: {e}"))),
        }
    }

    /// Waits for the answer.
    pub fn wait(self) -> Result<serde_json::Value, String> {
        self.0.recv().unwrap_or_else(|_| Err("the request ended without an answer".into()))
    }

    /// The answer once it is there; `None` while it is still coming.
    pub(crate) fn poll(&self) -> Option<Result<serde_json::Value, String>> {
        match self.0.try_recv() {
            Ok(answer) => Some(answer),
            Err(std::sync::mpsc::TryRecvError::Empty) => None,
            Err(std::sync::mpsc::TryRecvError::Disconnected) => Some(Err("the request ended without an answer".into())),
        }
    }
}

#[cfg(test)]
mod testdata;
#[cfg(test)]
mod tests;
