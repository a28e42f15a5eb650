//! Verdicts and enforcement. This crate owns the policy engine that fuses rule hits and
//! model scores into actions (alert, drop, rate-limit, block, quarantine) under a playbook
//! ([`PolicyEngine`], [`PolicyConfig`]), the allowlist no verdict may override
//! ([`Allowlist`]), the durable decision log ([`DecisionLog`], SQLite), and the nftables
//! enforcer that speaks netlink to one table of its own ([`nft::Nft`], driven by
//! [`Enforcer`]).
//!
//! Input: [`Trigger`]s (rule alerts after thresholds, model verdicts) and operator commands;
//! output: [`Decision`]s, netlink transactions and log rows. It never inspects packets, and
//! it starts no thread: the daemon runs the engine on its event writer and the enforcer on a
//! thread of its own.

pub mod engine;
pub mod enforcer;
pub mod log;
pub mod net;
pub mod nft;
pub mod playbook;

pub use engine::{Decision, Evidence, Micros, PolicyEngine, PolicyStats, State, Trigger, TriggerKind};
pub use enforcer::{nft_config, wall_now, EnforceError, Enforcer, EnforcerStats, FastDrop};
pub use log::{DecisionLog, LogError};
pub use net::{AllowSource, Allowlist, Net};
pub use playbook::{Action, Mode, PlaybookEntry, PolicyConfig, RateLimitProfile, Secs, When};
