//! The daemon's policy runtime: the engine (`portcullis-policy`), shared by the event writer
//! (which hands it every alert it writes) and the control socket (operator blocks,
//! approvals), and the enforcer thread that owns the nftables socket, the XDP block map
//! handle and the decision log.
//!
//! Every decision goes through the enforcer thread, which applies what is to be enforced
//! (one netlink transaction per batch of decisions waiting), records the batch in the log,
//! and queues the decisions, in their final state, for the writer to write as EVE
//! `decision` events.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crossbeam_channel::{bounded, unbounded, Receiver, Sender};
use portcullis_common::Timestamp;
use portcullis_policy::nft::{Nft, TableStatus};
use portcullis_policy::{wall_now, Action, Allowlist, Decision, DecisionLog, Enforcer, EnforcerStats, FastDrop, Mode, PolicyConfig, PolicyEngine, Trigger};
use serde_json::{json, Value};

/// Where the decision log lives when neither the config nor `--state-dir` says.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/portcullis";

/// A failure to start the policy.
#[derive(Debug, thiserror::Error)]
pub enum PolicyStartError {
    #[error(transparent)]
    Log(#[from] portcullis_policy::LogError),
    #[error("nftables: cannot install table inet portcullis: {0}")]
    Enforce(#[from] portcullis_policy::EnforceError),
}

enum Msg {
    Apply(Vec<Decision>),
    /// Applied at once (with whatever waits before it), answered with the outcome: an
    /// operator's command returns only when the kernel holds it, or says why not.
    ApplyNow(Vec<Decision>, Sender<Vec<Decision>>),
    Revoke { target: IpAddr, who: String, reply: Sender<Result<(), String>> },
    Status(Sender<Result<Option<TableStatus>, String>>),
    FastDrop(Box<dyn FastDrop>),
    /// Answered once everything sent before it is done.
    Sync(Sender<()>),
    /// Finish what is queued and end the thread.
    Stop,
}

/// A cloneable handle on the running policy.
#[derive(Clone)]
pub struct PolicyHandle {
    engine: Arc<Mutex<PolicyEngine>>,
    tx: Sender<Msg>,
    /// Decisions in their final state, for the writer's EVE output.
    done: Arc<Mutex<Vec<Decision>>>,
    enforcer: Arc<Mutex<EnforcerStats>>,
    /// Why nftables does not enforce, when it does not.
    pub nft_missing: Option<String>,
    pub mode: Mode,
}

impl std::fmt::Debug for PolicyHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyHandle").field("mode", &self.mode).field("nft_missing", &self.nft_missing).finish_non_exhaustive()
    }
}

/// The policy's thread; dropping it stops the enforcer after what was queued.
#[derive(Debug)]
pub struct PolicyRuntime {
    pub handle: PolicyHandle,
    thread: Option<JoinHandle<()>>,
    /// What start-up did, one line each (allowlist, nftables, restored decisions).
    pub notes: Vec<String>,
}

impl Drop for PolicyRuntime {
    fn drop(&mut self) {
        // An explicit stop: handles may still live elsewhere (an error path that returns
        // before the daemon's options are dropped), so the channel may never close.
        let _ = self.handle.tx.send(Msg::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Where the decision log is: `--state-dir`, else `policy.state-dir`, else
/// [`DEFAULT_STATE_DIR`].
pub fn state_dir(explicit: Option<&PathBuf>, cfg: &PolicyConfig) -> PathBuf {
    explicit.cloned().or_else(|| cfg.state_dir.clone()).unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR))
}

/// Opens the log, builds the engine from it, opens nftables and installs the table with the
/// decisions still in force (the reconciliation), and starts the enforcer thread.
/// `use_nft: false` leaves nftables alone (decisions are then logged as not enforced).
pub fn start(cfg: &PolicyConfig, mut allow: Allowlist, dir: &Path, use_nft: bool) -> Result<PolicyRuntime, PolicyStartError> {
    let mut notes = Vec::new();
    if cfg.allow_own_addresses {
        match allow.add_own_addresses() {
            Ok(_) => {}
            Err(e) => notes.push(format!("policy: cannot read this machine's addresses for the allowlist: {e}")),
        }
    }
    if cfg.allow_ssh_sessions {
        let ssh = std::env::var("SSH_CONNECTION").ok();
        let peers = allow.add_ssh_sessions(ssh.as_deref());
        if !peers.is_empty() {
            let list: Vec<String> = peers.iter().map(IpAddr::to_string).collect();
            notes.push(format!("policy: allowlisted the SSH session peer(s) {}", list.join(", ")));
        }
    }
    notes.push(format!("policy: {} allowlist entries; never blocked: {}", allow.entries().len(), summarize(&allow)));
    let log = DecisionLog::open(dir)?;
    let now = wall_now();
    let mut engine = PolicyEngine::new(cfg.clone(), allow.clone(), log.next_id()?);
    let memory = (cfg.escalation_memory.0 as i64) * 1_000_000;
    engine.restore(&log.in_force(now)?, &log.offences(now - memory)?, &log.pending()?);
    let nft = if use_nft { Nft::open() } else { Err(portcullis_policy::nft::NftError::Invalid("nftables enforcement turned off (--no-nft)".into())) };
    let mut enforcer = Enforcer::new(cfg, nft, None, log, allow.clone());
    let restored = match enforcer.reconcile(&allow.nets(), now) {
        Ok(r) => r,
        // Not fatal: the daemon still inspects, logs decisions and blocks in the XDP map.
        Err(portcullis_policy::EnforceError::Nft(e)) => {
            enforcer.disable_nft(format!("cannot install table inet portcullis: {e}"));
            Vec::new()
        }
        Err(portcullis_policy::EnforceError::Log(e)) => return Err(e.into()),
    };
    let nft_missing = enforcer.nft_missing.clone();
    match &nft_missing {
        None => notes.push(format!(
            "policy: nftables table inet portcullis installed (hooks input and forward, priority {}), {} decision(s) in force restored",
            cfg.nft_priority.unwrap_or(-10),
            restored.len()
        )),
        Some(why) => notes.push(format!("policy: NOT enforcing in nftables: {why}; decisions are logged only")),
    }
    notes.push(match cfg.mode {
        Mode::DryRun => format!("policy: mode dry-run: decisions are logged, not enforced (set policy.mode: enforce); log {}", enforcer.log().path().display()),
        m => format!("policy: mode {}; log {}", m.name(), enforcer.log().path().display()),
    });
    let (tx, rx) = unbounded::<Msg>();
    let done = Arc::new(Mutex::new(Vec::new()));
    let stats = Arc::new(Mutex::new(EnforcerStats::default()));
    let engine = Arc::new(Mutex::new(engine));
    let (d, s, en) = (done.clone(), stats.clone(), engine.clone());
    let thread = thread::Builder::new().name("enforcer".into()).spawn(move || enforcer_loop(enforcer, rx, d, s, en)).expect("spawn enforcer thread");
    Ok(PolicyRuntime { handle: PolicyHandle { engine, tx, done, enforcer: stats, nft_missing, mode: cfg.mode }, thread: Some(thread), notes })
}

fn summarize(a: &Allowlist) -> String {
    let mut v: Vec<String> = a.entries().iter().take(6).map(|(n, _)| n.to_string()).collect();
    if a.entries().len() > 6 {
        v.push(format!("and {} more", a.entries().len() - 6));
    }
    v.join(", ")
}

fn enforcer_loop(mut e: Enforcer, rx: Receiver<Msg>, done: Arc<Mutex<Vec<Decision>>>, stats: Arc<Mutex<EnforcerStats>>, engine: Arc<Mutex<PolicyEngine>>) {
    let mut batch: Vec<Decision> = Vec::new();
    let mut stopping = false;
    while let Ok(first) = rx.recv() {
        // Everything already waiting goes in order; consecutive decisions share one
        // netlink transaction.
        let mut msgs = vec![first];
        msgs.extend(rx.try_iter());
        for m in msgs {
            if let Msg::Apply(mut d) = m {
                batch.append(&mut d);
                continue;
            }
            let _ = flush(&mut e, &mut batch, &done, &engine);
            match m {
                Msg::Apply(_) => {}
                Msg::ApplyNow(d, reply) => {
                    let ids: Vec<u64> = d.iter().map(|x| x.id).collect();
                    batch.extend(d);
                    let outcome = flush(&mut e, &mut batch, &done, &engine);
                    let _ = reply.send(outcome.into_iter().filter(|x| ids.contains(&x.id)).collect());
                }
                Msg::Stop => stopping = true,
                Msg::Sync(reply) => {
                    let _ = reply.send(());
                }
                Msg::Revoke { target, who, reply } => {
                    let _ = reply.send(e.revoke(target, &who).map_err(|x| x.to_string()));
                }
                Msg::Status(reply) => {
                    let _ = reply.send(e.status().map_err(|x| x.to_string()));
                }
                Msg::FastDrop(f) => e.set_fast_drop(f),
            }
        }
        let _ = flush(&mut e, &mut batch, &done, &engine);
        if let Ok(mut s) = stats.lock() {
            *s = e.stats.clone();
        }
        if stopping {
            break;
        }
    }
}

/// Applies the batch and queues it for EVE; returns a copy of the decisions in their final
/// state.
fn flush(e: &mut Enforcer, batch: &mut Vec<Decision>, done: &Mutex<Vec<Decision>>, engine: &Mutex<PolicyEngine>) -> Vec<Decision> {
    if batch.is_empty() {
        return Vec::new();
    }
    if let Err(x) = e.apply(batch) {
        eprintln!("error: policy: {x}");
    }
    for d in batch.iter().filter(|d| d.state == portcullis_policy::State::Failed) {
        eprintln!("error: policy: decision {} ({} {}) not enforced: {}", d.id, d.action, d.target, d.note.as_deref().unwrap_or("?"));
        // Not in force, no offence: the next trigger decides again.
        if let Ok(mut en) = engine.lock() {
            en.failed(d);
        }
    }
    let out = batch.clone();
    if let Ok(mut q) = done.lock() {
        q.append(batch);
    }
    batch.clear();
    out
}

impl PolicyHandle {
    /// Runs the playbook over triggers (the writer, after each group of events).
    pub fn on_triggers(&self, triggers: &[Trigger]) {
        if triggers.is_empty() {
            return;
        }
        let mut out = Vec::new();
        match self.engine.lock() {
            Ok(mut e) => {
                for t in triggers {
                    out.extend(e.on_trigger(t));
                }
            }
            Err(_) => eprintln!("error: policy: the engine's state is poisoned (a thread panicked); {} trigger(s) not decided", triggers.len()),
        }
        if !out.is_empty() {
            let _ = self.tx.send(Msg::Apply(out));
        }
    }

    /// Decisions whose outcome is known, for EVE.
    pub fn take_done(&self) -> Vec<Decision> {
        self.done.lock().map(|mut q| std::mem::take(&mut *q)).unwrap_or_default()
    }

    /// Forgets ended actions.
    pub fn sweep(&self) {
        if let Ok(mut e) = self.engine.lock() {
            e.sweep(wall_now());
        }
    }

    pub fn set_fast_drop(&self, f: Box<dyn FastDrop>) {
        let _ = self.tx.send(Msg::FastDrop(f));
    }

    /// An operator's block or quarantine; `secs` absent: the ladder's first step.
    pub fn operator(&self, action: Action, addr: IpAddr, secs: Option<u64>, who: &str) -> Result<Decision, String> {
        let d = {
            let mut e = self.engine.lock().map_err(|_| "policy engine poisoned".to_string())?;
            let secs = secs.unwrap_or_else(|| e.config().escalation[0].0);
            e.operator(action, addr, secs, who, wall_now())?
        };
        self.apply_now(d)
    }

    /// Hands one decision to the enforcer and waits for its outcome: `Err` with the reason
    /// when it could not be enforced.
    fn apply_now(&self, d: Decision) -> Result<Decision, String> {
        let (reply, r) = bounded(1);
        self.tx.send(Msg::ApplyNow(vec![d], reply)).map_err(|_| "the enforcer stopped".to_string())?;
        let out = r.recv_timeout(Duration::from_secs(10)).map_err(|_| "the enforcer did not answer within 10 s".to_string())?;
        let d = out.into_iter().next().ok_or_else(|| "the enforcer lost the decision".to_string())?;
        match d.state {
            portcullis_policy::State::Failed => Err(format!("decision {} not enforced: {}", d.id, d.note.as_deref().unwrap_or("?"))),
            _ => Ok(d),
        }
    }

    /// Lifts what is in force on `addr`; whether anything was.
    pub fn unblock(&self, addr: IpAddr, who: &str) -> Result<bool, String> {
        let id = self.engine.lock().map_err(|_| "policy engine poisoned".to_string())?.revoke(addr);
        let (reply, r) = bounded(1);
        self.tx.send(Msg::Revoke { target: addr, who: who.to_string(), reply }).map_err(|_| "the enforcer stopped".to_string())?;
        r.recv_timeout(Duration::from_secs(10)).map_err(|_| "the enforcer did not answer".to_string())??;
        Ok(id.is_some())
    }

    pub fn approve(&self, id: u64, who: &str) -> Result<Decision, String> {
        let d = self.engine.lock().map_err(|_| "policy engine poisoned".to_string())?.approve(id, who, wall_now())?;
        self.apply_now(d)
    }

    pub fn deny(&self, id: u64, who: &str) -> Result<Decision, String> {
        let d = self.engine.lock().map_err(|_| "policy engine poisoned".to_string())?.deny(id, who)?;
        self.tx.send(Msg::Apply(vec![d.clone()])).map_err(|_| "the enforcer stopped".to_string())?;
        Ok(d)
    }

    pub fn pending(&self) -> Vec<Decision> {
        self.engine.lock().map(|e| e.pending().cloned().collect()).unwrap_or_default()
    }

    /// What is in force (or would be, in dry-run).
    pub fn active(&self) -> Vec<(IpAddr, portcullis_policy::engine::Active)> {
        self.engine.lock().map(|e| e.active()).unwrap_or_default()
    }

    /// Waits (at most 5 s) until the enforcer finished everything sent before.
    pub fn sync(&self) {
        let (reply, r) = bounded(1);
        if self.tx.send(Msg::Sync(reply)).is_ok() {
            let _ = r.recv_timeout(Duration::from_secs(5));
        }
    }

    pub fn nft_status(&self) -> Result<Option<TableStatus>, String> {
        let (reply, r) = bounded(1);
        self.tx.send(Msg::Status(reply)).map_err(|_| "the enforcer stopped".to_string())?;
        r.recv_timeout(Duration::from_secs(10)).map_err(|_| "the enforcer did not answer".to_string())?
    }

    /// `stats.policy`.
    pub fn stats_json(&self) -> Value {
        let p = self.engine.lock().map(|e| e.stats.clone()).unwrap_or_default();
        let e = self.enforcer.lock().map(|s| s.clone()).unwrap_or_default();
        let lat = e.latency_summary().map(|(p50, p99, max)| json!({ "p50": p50, "p99": p99, "max": max }));
        json!({
            "mode": self.mode.name(),
            "triggers": p.triggers,
            "decisions": p.decisions,
            "enforced": p.enforced,
            "dry_run": p.dry_run,
            "pending": p.pending,
            "approved": p.approved,
            "denied": p.denied,
            "allowlist_refusals": p.allowlist_refusals,
            "already_active": p.already_active,
            "nft": {
                "enforcing": self.nft_missing.is_none(),
                "transactions": e.transactions,
                "elements_added": e.elements_added,
                "elements_removed": e.elements_removed,
                "failures": e.failures,
                "decision_to_element_us": lat,
            },
        })
    }
}

/// The EVE `decision` event of a decision (not a Suricata event type; its fields are the
/// decision's own).
pub fn decision_event(d: &Decision) -> Value {
    json!({
        "timestamp": portcullis_eve::format_timestamp(Timestamp(d.applied_at.unwrap_or(d.at))),
        "event_type": "decision",
        "decision": d,
    })
}
