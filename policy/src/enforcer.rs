//! The enforcer: turns decisions into nftables elements (one netlink transaction per batch
//! of decisions), into entries of the XDP block map when the dataplane has one, and into rows
//! of the decision log. It owns no thread; the daemon runs it on one of its own.

use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::engine::{Decision, Micros, State};
use crate::log::{DecisionLog, LogError};
use crate::net::{Allowlist, Net};
use crate::nft::{Nft, NftConfig, NftError, Op, RateLimit, SetKind};
use crate::playbook::{Action, PolicyConfig};

/// The dataplane's drop-before-the-stack path (the XDP block map), seen through a trait so
/// this crate does not depend on the dataplane.
pub trait FastDrop: Send + fmt::Debug {
    fn block(&self, addr: IpAddr, duration: Duration) -> Result<(), String>;
    fn unblock(&self, addr: IpAddr) -> Result<(), String>;
}

/// What the enforcer measured.
#[derive(Clone, Debug, Default)]
pub struct EnforcerStats {
    /// Netlink transactions committed.
    pub transactions: u64,
    pub elements_added: u64,
    pub elements_removed: u64,
    pub failures: u64,
    /// Decision → kernel acknowledgement, microseconds, one per enforced decision (the last
    /// 4096).
    pub latencies_us: Vec<u64>,
}

impl EnforcerStats {
    /// (p50, p99, max) of the latencies kept, in microseconds.
    pub fn latency_summary(&self) -> Option<(u64, u64, u64)> {
        if self.latencies_us.is_empty() {
            return None;
        }
        let mut v = self.latencies_us.clone();
        v.sort_unstable();
        let q = |p: f64| v[((v.len() as f64 - 1.0) * p).round() as usize];
        Some((q(0.5), q(0.99), *v.last().unwrap_or(&0)))
    }
}

const LATENCIES_KEPT: usize = 4096;

#[derive(Debug)]
pub struct Enforcer {
    nft: Option<Nft>,
    /// Why there is no nftables enforcement, when there is none.
    pub nft_missing: Option<String>,
    fast: Option<Box<dyn FastDrop>>,
    log: DecisionLog,
    /// Nothing in it is ever put in a set or the XDP map, also not from the log.
    allow: Allowlist,
    nft_cfg: NftConfig,
    /// Rate-limit profile names, in `nft_cfg.rate_limits` order.
    profiles: Vec<String>,
    pub stats: EnforcerStats,
}

/// The nftables layout the policy needs: its priority and one rate-limit pair per profile.
pub fn nft_config(cfg: &PolicyConfig) -> NftConfig {
    NftConfig {
        priority: cfg.nft_priority.unwrap_or(NftConfig::default().priority),
        rate_limits: cfg.rate_limits.iter().map(|(name, p)| RateLimit { name: name.0.clone(), unit: p.unit, per_second: p.per_second, burst: p.burst }).collect(),
    }
}

impl Enforcer {
    /// `nft`: the opened netlink socket, or why it could not be opened (then decisions are
    /// logged as failed with that reason, and said once at start by the caller).
    pub fn new(cfg: &PolicyConfig, nft: Result<Nft, NftError>, fast: Option<Box<dyn FastDrop>>, log: DecisionLog, allow: Allowlist) -> Enforcer {
        let nft_cfg = nft_config(cfg);
        let profiles = nft_cfg.rate_limits.iter().map(|r| r.name.clone()).collect();
        let (nft, nft_missing) = match nft {
            Ok(n) => (Some(n), None),
            Err(e) => (None, Some(e.to_string())),
        };
        Enforcer { nft, nft_missing, fast, log, allow, nft_cfg, profiles, stats: EnforcerStats::default() }
    }

    /// Stops using nftables (its table could not be installed): decisions are then enforced
    /// in the XDP map where it can hold them, and fail otherwise, saying `reason`.
    pub fn disable_nft(&mut self, reason: String) {
        self.nft = None;
        self.nft_missing = Some(reason);
    }

    /// Decisions the log holds in force at `now` whose target is not allowlisted; those that
    /// are (the allowlist grew since) are marked revoked in the log.
    fn in_force_allowed(&mut self, now: Micros) -> Result<Vec<Decision>, LogError> {
        let all = self.log.in_force(now)?;
        let (keep, lifted): (Vec<Decision>, Vec<Decision>) = all.into_iter().partition(|d| !self.allow.contains(d.target));
        for d in &lifted {
            let why = format!("{} is allowlisted now; lifted at start", d.target);
            eprintln!("policy: decision {} ({} {}): {why}", d.id, d.action, d.target);
            self.log.revoke_target(d.target, "allowlist", Some(&why), now)?;
        }
        Ok(keep)
    }

    pub fn log(&self) -> &DecisionLog {
        &self.log
    }

    pub fn log_mut(&mut self) -> &mut DecisionLog {
        &mut self.log
    }

    /// The XDP block map, once the capture attached it. Blocks already in force (restored at
    /// start, before the map existed) are put in it for the time they have left.
    pub fn set_fast_drop(&mut self, f: Box<dyn FastDrop>) {
        let now = wall_now();
        match self.in_force_allowed(now) {
            Ok(in_force) => {
                for d in in_force.iter().filter(|d| d.action == Action::Block) {
                    if let Some(until) = d.expires() {
                        if let Err(e) = f.block(d.target, Duration::from_micros((until - now).max(1_000_000) as u64)) {
                            eprintln!("warning: policy: cannot restore the block of {} in the XDP map: {e}", d.target);
                        }
                    }
                }
            }
            Err(e) => eprintln!("warning: policy: blocks in force not put in the XDP map: {e}"),
        }
        self.fast = Some(f);
    }

    pub fn has_nft(&self) -> bool {
        self.nft.is_some()
    }

    /// Installs the table afresh (one transaction) with the allowlist and every decision the
    /// log holds in force at `now`, each for the time it has left. Returns those decisions.
    pub fn reconcile(&mut self, allow: &[Net], now: Micros) -> Result<Vec<Decision>, EnforceError> {
        let in_force = self.in_force_allowed(now)?;
        let mut elements = Vec::new();
        for d in &in_force {
            if let (Some(set), Some(until)) = (self.set_of(d), d.expires()) {
                let left = Duration::from_micros((until - now).max(1_000_000) as u64);
                elements.push((set, d.target, left));
            }
        }
        if let Some(nft) = self.nft.as_mut() {
            nft.install(&self.nft_cfg, allow, &elements)?;
            self.stats.transactions += 1;
            self.stats.elements_added += elements.len() as u64;
        }
        Ok(in_force)
    }

    fn set_of(&self, d: &Decision) -> Option<SetKind> {
        match d.action {
            Action::Block => Some(SetKind::Block),
            Action::Quarantine => Some(SetKind::Quarantine),
            Action::RateLimit => d.rate_limit.as_ref().and_then(|n| self.profiles.iter().position(|p| p == n)).map(SetKind::RateLimit),
            Action::Alert | Action::Drop => None,
        }
    }

    /// Enforces the decisions in state `Enforce` (one netlink transaction for all of them),
    /// marks them `Applied` (or `Failed`, with the reason) and records every decision of
    /// the batch in the log.
    pub fn apply(&mut self, decisions: &mut [Decision]) -> Result<(), EnforceError> {
        let mut ops = Vec::new();
        let mut idx = Vec::new();
        for (i, d) in decisions.iter().enumerate() {
            if d.state != State::Enforce {
                continue;
            }
            match (self.set_of(d), d.duration_secs) {
                (Some(set), Some(secs)) => {
                    ops.push(Op::Add { set, addr: d.target, timeout: Duration::from_secs(secs) });
                    idx.push(i);
                }
                _ => idx.push(i),
            }
        }
        if !idx.is_empty() {
            // Without nftables a block still reaches the XDP map (below); the other actions
            // have nowhere to go.
            let xdp_only = self.nft.is_none() && self.fast.is_some();
            let result = match self.nft.as_mut() {
                Some(nft) if !ops.is_empty() => nft.apply(&ops).map_err(|e| e.to_string()),
                Some(_) => Ok(()),
                None if xdp_only => Ok(()),
                None => Err(format!("not enforced: {}", self.nft_missing.as_deref().unwrap_or("no nftables"))),
            };
            let acked = Instant::now();
            let wall = wall_now();
            match &result {
                Ok(()) if xdp_only => {}
                Ok(()) => {
                    self.stats.transactions += u64::from(!ops.is_empty());
                    self.stats.elements_added += ops.len() as u64;
                }
                Err(_) => self.stats.failures += 1,
            }
            for &i in &idx {
                let d = &mut decisions[i];
                match &result {
                    Ok(()) if xdp_only && d.action != Action::Block && d.action.is_enforced_on_address() => {
                        d.state = State::Failed;
                        d.note = Some(format!("not enforced: only blocks can go to the XDP map, and nftables is not enforcing ({})", self.nft_missing.as_deref().unwrap_or("?")));
                    }
                    Ok(()) => {
                        d.state = State::Applied;
                        if xdp_only {
                            d.note = Some(format!("XDP map only: nftables is not enforcing ({})", self.nft_missing.as_deref().unwrap_or("?")));
                        }
                        d.applied_at = Some(wall);
                        if let Some(made) = d.made {
                            let us = acked.duration_since(made).as_micros() as u64;
                            d.enforce_latency_us = Some(us);
                            if self.stats.latencies_us.len() >= LATENCIES_KEPT {
                                self.stats.latencies_us.remove(0);
                            }
                            self.stats.latencies_us.push(us);
                        }
                    }
                    Err(e) => {
                        d.state = State::Failed;
                        d.note = Some(e.clone());
                    }
                }
                // The XDP map drops a blocked source before the kernel's stack sees it.
                if d.state == State::Applied && d.action == Action::Block {
                    if let (Some(f), Some(secs)) = (&self.fast, d.duration_secs) {
                        if let Err(e) = f.block(d.target, Duration::from_secs(secs)) {
                            eprintln!("warning: policy: decision {}: {} not put in the XDP map: {e}", d.id, d.target);
                            if xdp_only {
                                d.state = State::Failed;
                            }
                            d.note = Some(format!("XDP block map: {e}"));
                        }
                    }
                }
            }
        }
        self.log.record(decisions)?;
        Ok(())
    }

    /// Removes every element of `target` (all sets, the XDP map) and marks `revoked` every
    /// decision in force on it, so a restart does not put them back.
    pub fn revoke(&mut self, target: IpAddr, who: &str) -> Result<(), EnforceError> {
        let mut ops = vec![Op::Remove { set: SetKind::Block, addr: target }, Op::Remove { set: SetKind::Quarantine, addr: target }];
        ops.extend((0..self.profiles.len()).map(|i| Op::Remove { set: SetKind::RateLimit(i), addr: target }));
        if let Some(nft) = self.nft.as_mut() {
            nft.apply(&ops)?;
            self.stats.transactions += 1;
            self.stats.elements_removed += ops.len() as u64;
        }
        if let Some(f) = &self.fast {
            if let Err(e) = f.unblock(target) {
                eprintln!("warning: policy: {target} not removed from the XDP map: {e}");
            }
        }
        self.log.revoke_target(target, who, None, wall_now())?;
        Ok(())
    }

    /// The table's state in the kernel.
    pub fn status(&mut self) -> Result<Option<crate::nft::TableStatus>, EnforceError> {
        match self.nft.as_mut() {
            Some(n) => Ok(Some(n.status()?)),
            None => Ok(None),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EnforceError {
    #[error(transparent)]
    Nft(#[from] NftError),
    #[error(transparent)]
    Log(#[from] LogError),
}

/// The wall clock in microseconds since the epoch.
pub fn wall_now() -> Micros {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64)
}
