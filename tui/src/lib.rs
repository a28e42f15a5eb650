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
    fn send(&mut self, request: &Request) -> Result<serde_json::Value, String>;
}

#[cfg(test)]
mod testdata;
#[cfg(test)]
mod tests;
