//! The live console (ratatui). This crate will own the panes (traffic, capture health, top
//! talkers, flows, alerts, enforcement, scoring backend) drawn from snapshots the daemon
//! publishes over its control socket; it reads snapshots, never live structures, and no
//! other crate depends on it.
//!
//! Nothing is implemented yet.
