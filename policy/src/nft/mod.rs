//! The nftables enforcer: Portcullis's own table, `inet portcullis`, spoken to over netlink
//! (nftnl + mnl; `nft` is never run). It never reads or writes any other table.
//!
//! API contract (the policy engine and the daemon use only this):
//! - [`Nft::open`] opens a netlink socket in the caller's network namespace (the socket keeps
//!   that namespace whichever thread uses it later).
//! - [`Nft::install`] replaces the whole table in one transaction: sets, named counters,
//!   the `input` and `forward` chains, the allowlist and the given elements.
//! - [`Nft::apply`] adds/removes elements, all of a call in one transaction, returning once
//!   the kernel acknowledged every message (so the element is present when it returns `Ok`).
//! - [`Nft::status`] reads the table back from the kernel; [`Nft::flush`] deletes it.
//!
//! # The ruleset
//!
//! ```text
//! table inet portcullis {
//!     counter block4 {}        counter block6 {}          # named counters, one per drop rule
//!     counter quarantine4 {}   counter quarantine6 {}
//!     counter rl4_NAME {}      counter rl6_NAME {}        # per rate-limit profile NAME
//!
//!     set allow4 { type ipv4_addr; flags interval; }      # the allowlist: permanent,
//!     set allow6 { type ipv6_addr; flags interval; }      #   only ever accepts
//!     set block4 { type ipv4_addr; flags timeout; }       # every element carries its own
//!     set block6 { type ipv6_addr; flags timeout; }       #   timeout
//!     set quarantine4 { type ipv4_addr; flags timeout; }
//!     set quarantine6 { type ipv6_addr; flags timeout; }
//!     set rl4_NAME { type ipv4_addr; flags timeout; }     # who profile NAME limits
//!     set rl6_NAME { type ipv6_addr; flags timeout; }
//!     set m4_NAME { type ipv4_addr; size 65535; flags dynamic,timeout; timeout 1m; }
//!     set m6_NAME { type ipv6_addr; size 65535; flags dynamic,timeout; timeout 1m; }
//!                                                         # per-source limiter state
//!     chain input   { type filter hook input   priority P; policy accept; RULES }
//!     chain forward { type filter hook forward priority P; policy accept; RULES }
//! }
//!
//! RULES, in this order, for ip (shown) and then ip6 (`ip6 saddr`, the `…6` sets):
//!     ip saddr @allow4 accept
//!     ip saddr @quarantine4 ip daddr @allow4 accept       # a quarantined host may still
//!                                                         #   reach the management networks
//!     ip saddr @quarantine4 counter name "quarantine4" drop
//!     ip daddr @quarantine4 counter name "quarantine4" drop   # allowlisted sources were
//!                                                             #   already accepted
//!     ip saddr @block4 counter name "block4" drop
//!     ip saddr @rl4_NAME update @m4_NAME { ip saddr limit rate over N/second burst B packets }
//!         counter name "rl4_NAME" drop                    # one rule per profile, in config
//!                                                         #   order; `N bytes/second` for
//!                                                         #   byte profiles
//! ```
//!
//! P is [`NftConfig::priority`] (default -10, before the usual filter tables at 0, so a drop
//! here is final; an accept here only ends this table's say). Every rule first checks the
//! packet's family (`meta nfproto`), as `nft` does for `ip saddr` in an `inet` table.
//!
//! # Transactions
//!
//! - `install` is one batch: add the table (so that the delete cannot fail), delete it, add it
//!   again with everything in it. Either the new table replaces the old one whole or, when the
//!   kernel refuses any part, the old one stays as it was.
//! - `apply` is one batch with one message per element change, each with `NLM_F_ACK`; the
//!   call reads the kernel's answer to every message, so an error names the operation.
//!   - An address goes to the `…4` set when it is IPv4 or IPv4-mapped IPv6 (`::ffff:a.b.c.d`),
//!     to the `…6` set otherwise.
//!   - **Remove** is sent as "add the element (no timeout), delete it": the add makes the
//!     delete unable to fail with `ENOENT` (which would abort the whole batch) on every kernel,
//!     without looking first (a look would race with the element's expiry). Removing an
//!     absent element therefore succeeds and changes nothing.
//!   - **Add** of an element that exists must restart its timeout. On recent kernels (seen on
//!     6.18) a `NEWSETELEM` without `NLM_F_EXCL` updates an existing element's timeout and
//!     expiry in place; older kernels keep the old ones (as the nftables wiki still says). The
//!     first `install` of an [`Nft`] checks which the running kernel does, with a set of its
//!     own (`refresh_probe`, used by no rule) created and deleted in the table right after the
//!     install batch; where the kernel keeps the old timeout, every add is sent as "add (no
//!     timeout), delete, add with the timeout" in the same batch ([`TimeoutRefresh::Recreate`]).
//!   - The kernel handles a batch while the send runs and queues every answer before the send
//!     returns; the enforcer still reads until each message is acknowledged (or one is
//!     refused), with a 5 s limit that only a broken socket could reach.
//! - Errors: a refused message gives [`NftError::Kernel`] naming it; `EPERM` says that
//!   CAP_NET_ADMIN is needed.
//!
//! [`Nft::status`] lists the elements of the block, quarantine and rate-limit sets (not the
//! allowlist, which is what `install` was given, nor the limiter state in the `m…` sets) and
//! every named counter. Dropping an [`Nft`] leaves the table in place; [`Nft::flush`] removes
//! it.

use std::net::IpAddr;
use std::time::Duration;

#[cfg(feature = "nftables")]
mod imp;
mod plan;
#[cfg(feature = "nftables")]
mod raw;

/// The table's name in family `inet`.
pub const TABLE: &str = "portcullis";

/// Longest rate-limit profile name, in bytes.
pub const MAX_PROFILE_NAME: usize = 16;

/// Element count limit of each rate-limit meter set (`m4_NAME`, `m6_NAME`): sources tracked at
/// once per profile and family. Once full, a new source in the profile's set is not limited
/// until an idle one times out.
pub const METER_SIZE: u32 = 65535;

/// How long a meter entry (one source's limiter state) lives without traffic.
pub const METER_TIMEOUT: Duration = Duration::from_secs(60);

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
    Add {
        set: SetKind,
        addr: IpAddr,
        timeout: Duration,
    },
    Remove {
        set: SetKind,
        addr: IpAddr,
    },
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

/// How [`Nft::apply`] makes an `Add` of an existing element restart its timeout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeoutRefresh {
    /// One `NEWSETELEM` (create, not exclusive): the kernel updates the element's timeout and
    /// expiry in place (recent kernels; seen on 6.18).
    InPlace,
    /// "Add without timeout, delete, add with the timeout" in the same batch: works on every
    /// kernel, three messages per add.
    Recreate,
}

/// The enforcer's netlink socket and what it installed.
#[derive(Debug)]
pub struct Nft {
    inner: Inner,
}

#[cfg(feature = "nftables")]
type Inner = imp::Enforcer;

/// Never constructed without the `nftables` feature.
#[cfg(not(feature = "nftables"))]
#[derive(Debug)]
struct Inner {
    never: std::convert::Infallible,
}

impl Nft {
    /// Opens a netlink socket to nf_tables in the calling thread's network namespace. Needs no
    /// privilege by itself; every later call needs CAP_NET_ADMIN.
    pub fn open() -> Result<Nft, NftError> {
        #[cfg(feature = "nftables")]
        {
            Ok(Nft { inner: imp::Enforcer::open()? })
        }
        #[cfg(not(feature = "nftables"))]
        {
            Err(NftError::NotBuilt)
        }
    }

    /// Replaces the table with the ruleset built from `cfg`, the allowlist `allow`, and
    /// `elements` (each with its own timeout), in one transaction, and remembers `cfg` for
    /// [`Nft::apply`] and [`Nft::status`].
    pub fn install(
        &mut self,
        cfg: &NftConfig,
        allow: &[Net],
        elements: &[(SetKind, IpAddr, Duration)],
    ) -> Result<(), NftError> {
        #[cfg(feature = "nftables")]
        {
            self.inner.install(cfg, allow, elements)
        }
        #[cfg(not(feature = "nftables"))]
        {
            let _ = (cfg, allow, elements);
            match self.inner.never {}
        }
    }

    /// Applies `ops` in order in one transaction; returns once the kernel acknowledged every
    /// message. Nothing is changed when any op is refused. `RateLimit` ops need a prior
    /// [`Nft::install`] (the profile names come from its config).
    pub fn apply(&mut self, ops: &[Op]) -> Result<(), NftError> {
        #[cfg(feature = "nftables")]
        {
            self.inner.apply(ops)
        }
        #[cfg(not(feature = "nftables"))]
        {
            let _ = ops;
            match self.inner.never {}
        }
    }

    /// Reads the table back: the elements of the block, quarantine and rate-limit sets with
    /// their timeouts and time left, and the named counters. `present: false` when the table
    /// does not exist.
    pub fn status(&mut self) -> Result<TableStatus, NftError> {
        #[cfg(feature = "nftables")]
        {
            self.inner.status()
        }
        #[cfg(not(feature = "nftables"))]
        {
            match self.inner.never {}
        }
    }

    /// Deletes table `inet portcullis` (and nothing else). `Ok(false)` when it did not exist.
    pub fn flush(&mut self) -> Result<bool, NftError> {
        #[cfg(feature = "nftables")]
        {
            self.inner.flush()
        }
        #[cfg(not(feature = "nftables"))]
        {
            match self.inner.never {}
        }
    }

    /// The config of the last successful [`Nft::install`].
    pub fn config(&self) -> Option<&NftConfig> {
        #[cfg(feature = "nftables")]
        {
            self.inner.config()
        }
        #[cfg(not(feature = "nftables"))]
        {
            match self.inner.never {}
        }
    }

    /// How adds refresh timeouts: found by the first [`Nft::install`]'s check of the kernel,
    /// `None` before it ran (then `apply` uses [`TimeoutRefresh::Recreate`], which is always
    /// right). A check that fails also gives `Recreate`.
    pub fn timeout_refresh(&self) -> Option<TimeoutRefresh> {
        #[cfg(feature = "nftables")]
        {
            self.inner.timeout_refresh()
        }
        #[cfg(not(feature = "nftables"))]
        {
            match self.inner.never {}
        }
    }

    /// Overrides the kernel check (for tests of both paths, and for a kernel the check gets
    /// wrong); later installs do not check again.
    pub fn set_timeout_refresh(&mut self, refresh: TimeoutRefresh) {
        #[cfg(feature = "nftables")]
        {
            self.inner.set_timeout_refresh(refresh)
        }
        #[cfg(not(feature = "nftables"))]
        {
            let _ = refresh;
            match self.inner.never {}
        }
    }
}

impl NftConfig {
    /// Checks the profiles: names `[a-z0-9_]{1,16}` and unique, rates above zero.
    pub fn validate(&self) -> Result<(), NftError> {
        for (i, rl) in self.rate_limits.iter().enumerate() {
            validate_profile_name(&rl.name)?;
            if self.rate_limits[..i].iter().any(|o| o.name == rl.name) {
                return Err(NftError::Invalid(format!("rate-limit profile {:?} is defined twice", rl.name)));
            }
            if rl.per_second == 0 {
                return Err(NftError::Invalid(format!("rate-limit profile {:?}: the rate must be above 0", rl.name)));
            }
        }
        Ok(())
    }

    /// The kernel set an element of `kind` for `addr` goes in (`block4`, `rl6_flood`, ...).
    pub fn set_name(&self, kind: SetKind, addr: IpAddr) -> Result<String, NftError> {
        let fam = if is_v4(addr) { '4' } else { '6' };
        Ok(match kind {
            SetKind::Block => format!("block{fam}"),
            SetKind::Quarantine => format!("quarantine{fam}"),
            SetKind::RateLimit(i) => match self.rate_limits.get(i) {
                Some(rl) => format!("rl{fam}_{}", rl.name),
                None => {
                    return Err(NftError::Invalid(format!(
                        "rate-limit profile #{i} does not exist ({} configured)",
                        self.rate_limits.len()
                    )))
                }
            },
        })
    }

    /// The kind of the elements of kernel set `set`; `None` for the allowlist, the meters and
    /// sets this config does not know.
    pub fn kind_of_set(&self, set: &str) -> Option<SetKind> {
        match set {
            "block4" | "block6" => Some(SetKind::Block),
            "quarantine4" | "quarantine6" => Some(SetKind::Quarantine),
            _ => {
                let name = set.strip_prefix("rl4_").or_else(|| set.strip_prefix("rl6_"))?;
                self.rate_limits.iter().position(|rl| rl.name == name).map(SetKind::RateLimit)
            }
        }
    }
}

/// `[a-z0-9_]{1,16}`: the name becomes part of set and counter names.
pub fn validate_profile_name(name: &str) -> Result<(), NftError> {
    if name.is_empty() || name.len() > MAX_PROFILE_NAME {
        return Err(NftError::Invalid(format!(
            "rate-limit profile name {name:?} must be 1 to {MAX_PROFILE_NAME} bytes"
        )));
    }
    if let Some(c) = name.chars().find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '_')) {
        return Err(NftError::Invalid(format!("rate-limit profile name {name:?}: {c:?} is not in [a-z0-9_]")));
    }
    Ok(())
}

/// Whether `addr` belongs in the `…4` sets: IPv4, or IPv6 that maps an IPv4 address.
pub fn is_v4(addr: IpAddr) -> bool {
    matches!(canonical(addr), IpAddr::V4(_))
}

/// IPv4-mapped IPv6 addresses as the IPv4 address they map; everything else unchanged.
pub fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(a),
        },
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> NftConfig {
        NftConfig {
            priority: -10,
            rate_limits: vec![
                RateLimit { name: "flood".into(), unit: RateUnit::Packets, per_second: 10, burst: 5 },
                RateLimit { name: "bulk_2".into(), unit: RateUnit::Bytes, per_second: 1 << 20, burst: 0 },
            ],
        }
    }

    #[test]
    fn nft_can_move_to_the_enforcer_thread() {
        fn send_debug<T: Send + std::fmt::Debug>() {}
        send_debug::<Nft>();
        send_debug::<NftError>();
    }

    #[test]
    fn profile_names() {
        let cases: &[(&str, bool)] = &[
            ("flood", true),
            ("a", true),
            ("x_9", true),
            ("sixteen_bytes_ok", true),
            ("seventeen_bytes_x", false),
            ("", false),
            ("Flood", false),
            ("fl-ood", false),
            ("fl ood", false),
            ("flöod", false),
            ("a;drop", false),
        ];
        for &(name, ok) in cases {
            assert_eq!(validate_profile_name(name).is_ok(), ok, "{name:?}");
        }
    }

    #[test]
    fn config_validation() {
        assert!(cfg().validate().is_ok());
        let mut dup = cfg();
        dup.rate_limits[1].name = "flood".into();
        assert!(dup.validate().unwrap_err().to_string().contains("twice"));
        let mut zero = cfg();
        zero.rate_limits[0].per_second = 0;
        assert!(zero.validate().is_err());
    }

    #[test]
    fn set_selection() {
        let c = cfg();
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        let compat: IpAddr = "::192.0.2.1".parse().unwrap();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(c.set_name(SetKind::Block, v4).unwrap(), "block4");
        assert_eq!(c.set_name(SetKind::Block, mapped).unwrap(), "block4");
        assert_eq!(c.set_name(SetKind::Block, compat).unwrap(), "block6");
        assert_eq!(c.set_name(SetKind::Quarantine, v6).unwrap(), "quarantine6");
        assert_eq!(c.set_name(SetKind::RateLimit(1), v4).unwrap(), "rl4_bulk_2");
        assert_eq!(c.set_name(SetKind::RateLimit(0), v6).unwrap(), "rl6_flood");
        assert!(c.set_name(SetKind::RateLimit(2), v4).is_err());
        for (set, kind) in [
            ("block6", Some(SetKind::Block)),
            ("quarantine4", Some(SetKind::Quarantine)),
            ("rl6_bulk_2", Some(SetKind::RateLimit(1))),
            ("rl4_other", None),
            ("allow4", None),
            ("m4_flood", None),
        ] {
            assert_eq!(c.kind_of_set(set), kind, "{set}");
        }
    }
}

