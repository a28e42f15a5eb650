//! The nftables enforcer: Portcullis's own table, `inet portcullis`, spoken to over netlink
//! (nftnl + mnl; `nft` is never run). It never reads or writes any other table.
//!
//! API contract (implemented by the nft helper; the policy engine and the daemon use only
//! this):
//! - [`Nft::open`] opens a netlink socket in the caller's network namespace.
//! - [`Nft::install`] replaces the whole table in one transaction: sets, named counters,
//!   the `input` and `forward` chains, the allowlist and the given elements.
//! - [`Nft::apply`] adds/removes elements, all of a call in one transaction, returning once
//!   the kernel acknowledged it (so the element is present when it returns `Ok`).
//! - [`Nft::status`] reads the table back from the kernel; [`Nft::flush`] deletes it.

use std::net::IpAddr;
use std::time::Duration;

/// The table's name in family `inet`.
pub const TABLE: &str = "portcullis";

/// What the enforcer builds, fixed at start.
#[derive(Clone, Debug, PartialEq)]
pub struct NftConfig {
    /// Priority of the `input` and `forward` base chains (filter type). Default -10: before
    /// the usual `filter` tables at 0, so a drop here is final.
    pub priority: i32,
    /// Rate-limit profiles; each gets its own pair of sets (`rl4_<name>`, `rl6_<name>`) and
    /// meter sets.
    pub rate_limits: Vec<RateLimit>,
}

impl Default for NftConfig {
    fn default() -> Self {
        NftConfig { priority: -10, rate_limits: Vec::new() }
    }
}

/// One rate-limit profile: traffic from a listed source above the rate is dropped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// `[a-z0-9_]`, at most 16 bytes.
    pub name: String,
    pub unit: RateUnit,
    pub per_second: u64,
    /// Packets or bytes allowed above the rate in a burst (0: nftables' default).
    pub burst: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateUnit {
    Packets,
    Bytes,
}

/// Which set an element goes in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SetKind {
    /// All traffic from the address is dropped.
    Block,
    /// All traffic from and to the address is dropped except to and from allowlisted
    /// networks.
    Quarantine,
    /// Traffic from the address above `NftConfig::rate_limits[i]`'s rate is dropped.
    RateLimit(usize),
}

/// One element change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Adds (or refreshes the timeout of) an element; the kernel deletes it after `timeout`.
    Add { set: SetKind, addr: IpAddr, timeout: Duration },
    Remove { set: SetKind, addr: IpAddr },
}

pub use crate::net::Net;

/// What the kernel holds for the table.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TableStatus {
    /// False when the table does not exist.
    pub present: bool,
    pub elements: Vec<ElementStatus>,
    /// Named counters: (name, packets, bytes).
    pub counters: Vec<(String, u64, u64)>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ElementStatus {
    /// The set's name in the kernel (`block4`, `quarantine6`, `rl4_flood`, ...).
    pub set: String,
    pub kind: Option<SetKind>,
    pub addr: IpAddr,
    pub timeout: Option<Duration>,
    /// Time left before the kernel deletes the element.
    pub expires: Option<Duration>,
}

/// A failure of the enforcer itself.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    #[error("nftables support was not compiled in (build with the `nftables` feature)")]
    NotBuilt,
    #[error("netlink: {0}")]
    Io(#[from] std::io::Error),
    #[error("nftables refused {what}: {source}")]
    Kernel { what: String, source: std::io::Error },
    #[error("{0}")]
    Invalid(String),
}

/// The enforcer's netlink socket.
#[derive(Debug)]
pub struct Nft {
    _private: (),
}

// Placeholder until the netlink implementation lands (replaced at merge).
impl Nft {
    pub fn open() -> Result<Nft, NftError> {
        Err(NftError::NotBuilt)
    }
    pub fn install(&mut self, _cfg: &NftConfig, _allow: &[Net], _elements: &[(SetKind, IpAddr, Duration)]) -> Result<(), NftError> {
        Err(NftError::NotBuilt)
    }
    pub fn apply(&mut self, _ops: &[Op]) -> Result<(), NftError> {
        Err(NftError::NotBuilt)
    }
    pub fn status(&mut self) -> Result<TableStatus, NftError> {
        Err(NftError::NotBuilt)
    }
    pub fn flush(&mut self) -> Result<bool, NftError> {
        Err(NftError::NotBuilt)
    }
}
