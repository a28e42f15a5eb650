//! The engine that ties the crates together, and the `portcullis` binary's library half.
//! It owns the threads: a reader that pulls frames from capture sources and decodes them, N
//! workers that each own one shard of the flow table, and a writer that orders and emits EVE
//! events. Packets cross threads in batches over bounded crossbeam channels, dispatched by
//! the flow key's stable hash, and the writer merges the workers' output by batch so that
//! what is written does not depend on the number of workers. Input: capture files; output:
//! EVE events and a run summary. The live daemon (`live`, `portcullis run`) reuses the
//! workers' shard and the writer's ordering per batch, but each worker owns a capture port
//! instead of a channel from a reader, and `control` serves its root-only control socket.

pub mod control;
pub mod eve_out;
pub mod features;
pub mod inspect;
pub mod live;
pub mod metrics;
pub mod model_swap;
pub mod ml;
pub mod policy;
pub mod reload;
pub mod replay;
pub mod telemetry;

pub use inspect::{Inspector, NoRules};
pub use replay::{run_replay, run_replay_with, ReplayOptions, ReplaySummary};
