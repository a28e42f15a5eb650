//! The policy engine: triggers (rule alerts, model verdicts, operator commands) in,
//! decisions out. It is a state machine over the triggers' own timestamps and makes no
//! system calls, so replay and tests drive it exactly as the daemon does; enforcement is the
//! [`crate::Enforcer`]'s.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::time::Instant;

use serde::Serialize;

use crate::net::{canonical, Allowlist};
use crate::playbook::{Action, Mode, PlaybookEntry, PolicyConfig, RuleAction, Target};

/// Microseconds since the Unix epoch (the packet clock of the trigger, or the wall clock).
pub type Micros = i64;

/// Something that happened which the playbook may act on.
#[derive(Clone, Debug, PartialEq)]
pub struct Trigger {
    pub at: Micros,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub flow_id: Option<u64>,
    pub kind: TriggerKind,
}

#[derive(Clone, Debug, PartialEq)]
pub enum TriggerKind {
    /// A rule alert (after thresholds).
    Rule { gid: u32, sid: u32, rev: u32, msg: String, classtype: Option<String>, action: Option<RuleAction> },
    /// A model alert: the classifier's class and probability, or the anomaly detector.
    Model { anomaly: bool, class: String, score: f32, top_features: Vec<(String, f64)> },
}

/// Why a decision was made: what triggered it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Evidence {
    /// Rule alerts: `gid:sid:rev msg`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<String>,
    /// Model verdict: class (or `anomaly`), score, top features.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelEvidence>,
    /// Aggregate triggers: matches counted in the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow_id: Option<u64>,
    /// The trigger's other address (the destination of an alert aimed at its source).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<IpAddr>,
    /// An operator's command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct ModelEvidence {
    pub class: String,
    pub score: f32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub top_features: Vec<(String, f64)>,
}

/// Where a decision stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// To be enforced now (handed to the enforcer).
    Enforce,
    /// Enforced: the kernel holds it.
    Applied,
    /// Logged only: the mode is dry-run.
    DryRun,
    /// Waiting for `portcullis approve ID` or `deny ID`.
    Pending,
    Denied,
    /// The target is allowlisted; nothing was done.
    RefusedAllowlist,
    /// The enforcer could not apply it (the reason is in `note`).
    Failed,
    /// Lifted early by an operator.
    Revoked,
    /// An alert or inline drop: recorded, nothing to enforce on an address.
    Logged,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Enforce => "enforce",
            State::Applied => "applied",
            State::DryRun => "dry-run",
            State::Pending => "pending",
            State::Denied => "denied",
            State::RefusedAllowlist => "refused-allowlist",
            State::Failed => "failed",
            State::Revoked => "revoked",
            State::Logged => "logged",
        }
    }
}

/// One decision of the policy.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct Decision {
    pub id: u64,
    /// When it was decided (the trigger's time).
    pub at: Micros,
    pub action: Action,
    pub target: IpAddr,
    /// Seconds the action lasts, for actions on an address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_secs: Option<u64>,
    /// Step of the escalation ladder (0: first offence) when the duration came from it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<String>,
    /// The playbook entry (or `operator`).
    pub trigger: String,
    pub evidence: Evidence,
    pub mode: Mode,
    pub state: State,
    /// Who approved, denied or revoked it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// Why it was refused or failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Wall-clock microseconds when the enforcer's transaction was acknowledged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applied_at: Option<Micros>,
    /// Microseconds from the decision to the kernel's acknowledgement.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enforce_latency_us: Option<u64>,
    /// When the decision was made, on the monotonic clock, for the latency.
    #[serde(skip)]
    pub made: Option<Instant>,
}

impl Decision {
    /// When the action ends (the kernel deletes its element then).
    pub fn expires(&self) -> Option<Micros> {
        let start = self.applied_at.unwrap_or(self.at);
        self.duration_secs.map(|d| start.saturating_add((d as i64).saturating_mul(1_000_000)))
    }
}

/// What the engine counted, for `stats.policy`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PolicyStats {
    pub triggers: u64,
    pub decisions: u64,
    pub enforced: u64,
    pub dry_run: u64,
    pub pending: u64,
    pub approved: u64,
    pub denied: u64,
    /// Verdicts refused because their target is allowlisted.
    pub allowlist_refusals: u64,
    /// Triggers that matched an entry whose target already had as strong an action active.
    pub already_active: u64,
}

/// How long the same alert or drop decision (entry, target) is not repeated.
const LOG_REPEAT_US: Micros = 60_000_000;
/// Allowlist refusals for one target are logged at most once in this window (all counted).
const REFUSAL_REPEAT_US: Micros = 60_000_000;

/// The engine: the playbook, the allowlist and the state triggers built up.
#[derive(Debug)]
pub struct PolicyEngine {
    cfg: PolicyConfig,
    allow: Allowlist,
    next_id: u64,
    /// (entry, source) → times of recent matches, for aggregate triggers.
    windows: HashMap<(usize, IpAddr), VecDeque<Micros>>,
    /// Address → what is enforced (or would be, in dry-run).
    active: HashMap<IpAddr, Active>,
    /// Address → times of its past blocks and quarantines, for the escalation ladder.
    offences: HashMap<IpAddr, Vec<Micros>>,
    /// (entry, target) → last time an alert/drop decision was logged.
    logged: HashMap<(usize, IpAddr), Micros>,
    refused: HashMap<IpAddr, Micros>,
    pending: BTreeMap<u64, Decision>,
    /// (target, action) of every pending decision, so a trigger checks in O(1).
    pending_keys: HashSet<(IpAddr, Action)>,
    /// Aggregate windows kept before idle ones are swept out (doubles when a sweep frees
    /// little, so sweeping stays amortised under a flood of spoofed sources).
    window_sweep_at: usize,
    pub stats: PolicyStats,
}

/// What is in force on one address: the strongest action and its end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Active {
    pub action: Action,
    pub until: Micros,
    pub id: u64,
    /// Logged only (dry-run): nothing is in the kernel.
    pub dry_run: bool,
}

impl PolicyEngine {
    /// `next_id`: the first id to hand out (one above the decision log's largest).
    pub fn new(cfg: PolicyConfig, allow: Allowlist, next_id: u64) -> Self {
        PolicyEngine {
            cfg,
            allow,
            next_id: next_id.max(1),
            windows: HashMap::new(),
            active: HashMap::new(),
            offences: HashMap::new(),
            logged: HashMap::new(),
            refused: HashMap::new(),
            pending: BTreeMap::new(),
            pending_keys: HashSet::new(),
            window_sweep_at: 1 << 16,
            stats: PolicyStats::default(),
        }
    }

    pub fn config(&self) -> &PolicyConfig {
        &self.cfg
    }

    pub fn allowlist(&self) -> &Allowlist {
        &self.allow
    }

    /// Restores what the decision log remembers: decisions still in force, offences within
    /// the escalation memory, decisions waiting for approval.
    pub fn restore(&mut self, active: &[Decision], offences: &[(IpAddr, Micros)], pending: &[Decision]) {
        for d in active {
            if let Some(until) = d.expires() {
                self.note_active(d.target, Active { action: d.action, until, id: d.id, dry_run: false });
            }
        }
        for &(ip, at) in offences {
            self.offences.entry(canonical(ip)).or_default().push(at);
        }
        for d in pending {
            self.pending_keys.insert((d.target, d.action));
            self.pending.insert(d.id, d.clone());
        }
        self.stats.pending = self.pending.len() as u64;
    }

    /// Decisions that the trigger makes (none when no entry fires).
    pub fn on_trigger(&mut self, t: &Trigger) -> Vec<Decision> {
        self.stats.triggers += 1;
        // Per target, the strongest action among the entries that fire.
        let mut best: Vec<(usize, IpAddr, Action, Option<u32>)> = Vec::new();
        for i in 0..self.cfg.playbook.len() {
            let e = &self.cfg.playbook[i];
            if !matches(e, t) {
                continue;
            }
            let target = canonical(match e.target {
                Target::Src => t.src,
                Target::Dst => t.dst,
            });
            let count = match (e.when.count, e.when.seconds) {
                (Some(n), Some(s)) if n > 1 => {
                    let span = (s.0 as i64) * 1_000_000;
                    let src = canonical(t.src);
                    let w = self.windows.entry((i, src)).or_default();
                    while w.front().is_some_and(|&f| t.at - f >= span) {
                        w.pop_front();
                    }
                    w.push_back(t.at);
                    if (w.len() as u32) < n {
                        continue;
                    }
                    let c = w.len() as u32;
                    w.clear();
                    Some(c)
                }
                _ => None,
            };
            let action = e.action;
            match best.iter_mut().find(|b| b.1 == target) {
                Some(b) if b.2 >= action => {}
                Some(b) => *b = (i, target, action, count),
                None => best.push((i, target, action, count)),
            }
        }
        if self.windows.len() > self.window_sweep_at {
            let now = t.at;
            self.windows.retain(|_, w| w.back().is_some_and(|&b| now - b < 3_600_000_000));
            self.window_sweep_at = (self.windows.len() * 2).max(1 << 16);
        }
        let mut out = Vec::new();
        for (i, target, action, count) in best {
            let mut ev = evidence_of(t);
            ev.count = count;
            if target != canonical(t.src) {
                ev.peer = Some(canonical(t.src));
            } else if canonical(t.dst) != target {
                ev.peer = Some(canonical(t.dst));
            }
            if let Some(d) = self.decide(i, target, action, t.at, ev) {
                out.push(d);
            }
        }
        out
    }

    fn decide(&mut self, entry: usize, target: IpAddr, action: Action, at: Micros, evidence: Evidence) -> Option<Decision> {
        let e = &self.cfg.playbook[entry];
        let label = e.label(entry);
        let mode = self.cfg.mode;
        if !action.is_enforced_on_address() {
            // Alerts and inline drops: logged once per entry and target per minute.
            let last = self.logged.entry((entry, target)).or_insert(i64::MIN);
            if *last != i64::MIN && at - *last < LOG_REPEAT_US {
                return None;
            }
            *last = at;
            let d = self.new_decision(at, action, target, None, None, None, label, evidence, State::Logged);
            return Some(d);
        }
        if let Some((_, source)) = self.allow.covering(target) {
            self.stats.allowlist_refusals += 1;
            let note = format!("{target} is allowlisted ({source}); not {}", past(action));
            let last = self.refused.entry(target).or_insert(i64::MIN);
            if *last != i64::MIN && at - *last < REFUSAL_REPEAT_US {
                return None;
            }
            *last = at;
            let mut d = self.new_decision(at, action, target, None, None, None, label, evidence, State::RefusedAllowlist);
            d.note = Some(note);
            return Some(d);
        }
        if let Some(a) = self.active.get(&target) {
            if a.until > at && a.action >= action {
                self.stats.already_active += 1;
                return None;
            }
        }
        // Only the same action waits behind a pending one: a quarantine waiting for a human
        // must not hold back a block that needs none.
        if self.pending_keys.contains(&(target, action)) {
            self.stats.already_active += 1;
            return None;
        }
        let e = &self.cfg.playbook[entry];
        let (duration, level) = match e.duration {
            Some(d) => (d.0, None),
            None => {
                let memory = (self.cfg.escalation_memory.0 as i64) * 1_000_000;
                let n = self.offences.get(&target).map_or(0, |v| v.iter().filter(|&&t| at - t < memory).count());
                let step = n.min(self.cfg.escalation.len() - 1);
                (self.cfg.escalation[step].0, Some(step as u32))
            }
        };
        let rate = e.rate_limit.as_ref().map(|p| p.0.clone());
        let state = if self.cfg.needs_approval(e, action) {
            State::Pending
        } else if mode == Mode::DryRun {
            State::DryRun
        } else {
            State::Enforce
        };
        let d = self.new_decision(at, action, target, Some(duration), level, rate, label, evidence, state);
        match state {
            State::Pending => {
                self.pending_keys.insert((d.target, d.action));
                self.pending.insert(d.id, d.clone());
                self.stats.pending = self.pending.len() as u64;
            }
            _ => self.start(&d, at),
        }
        Some(d)
    }

    /// Records a decision as in force from `now` (enforced, or would-be in dry-run).
    fn start(&mut self, d: &Decision, now: Micros) {
        match d.state {
            State::Enforce => self.stats.enforced += 1,
            State::DryRun => self.stats.dry_run += 1,
            _ => {}
        }
        if let Some(secs) = d.duration_secs {
            if self.active.get(&d.target).is_some_and(|s| s.until <= now) {
                self.active.remove(&d.target);
            }
            let until = now.saturating_add((secs as i64).saturating_mul(1_000_000));
            self.note_active(d.target, Active { action: d.action, until, id: d.id, dry_run: d.state == State::DryRun });
            if matches!(d.action, Action::Block | Action::Quarantine) {
                let v = self.offences.entry(d.target).or_default();
                v.push(now);
                if v.len() > 64 {
                    v.remove(0);
                }
            }
        }
    }

    fn note_active(&mut self, target: IpAddr, a: Active) {
        let slot = self.active.entry(canonical(target)).or_insert(a);
        // A stronger action replaces a weaker one; the same action is extended.
        if a.action > slot.action || (a.action == slot.action && a.until >= slot.until) {
            *slot = a;
        }
    }

    /// The enforcer could not apply `d`: it is not in force and is no offence.
    pub fn failed(&mut self, d: &Decision) {
        if self.active.get(&d.target).is_some_and(|a| a.id == d.id) {
            self.active.remove(&d.target);
        }
        if let Some(v) = self.offences.get_mut(&d.target) {
            if let Some(i) = v.iter().rposition(|&t| t == d.at) {
                v.remove(i);
            }
        }
        self.stats.enforced = self.stats.enforced.saturating_sub(1);
    }

    #[allow(clippy::too_many_arguments)]
    fn new_decision(
        &mut self,
        at: Micros,
        action: Action,
        target: IpAddr,
        duration_secs: Option<u64>,
        level: Option<u32>,
        rate_limit: Option<String>,
        trigger: String,
        evidence: Evidence,
        state: State,
    ) -> Decision {
        let id = self.next_id;
        self.next_id += 1;
        self.stats.decisions += 1;
        Decision {
            id,
            at,
            action,
            target,
            duration_secs,
            level,
            rate_limit,
            trigger,
            evidence,
            mode: self.cfg.mode,
            state,
            by: None,
            note: None,
            applied_at: None,
            enforce_latency_us: None,
            made: Some(Instant::now()),
        }
    }

    /// An operator's own block, rate-limit or quarantine (`portcullis block`, the console).
    /// Enforced whatever the mode: the mode governs the playbook's automatic verdicts. The
    /// allowlist still applies.
    pub fn operator(&mut self, action: Action, target: IpAddr, duration_secs: u64, who: &str, now: Micros) -> Result<Decision, String> {
        let target = canonical(target);
        if !action.is_enforced_on_address() {
            return Err(format!("{action} is not an action on an address"));
        }
        if action == Action::RateLimit {
            return Err("an operator's rate-limit needs a playbook profile; use block".into());
        }
        if duration_secs == 0 {
            return Err("a duration of zero".into());
        }
        if let Some((net, source)) = self.allow.covering(target) {
            self.stats.allowlist_refusals += 1;
            return Err(format!("{target} is allowlisted ({net}, {source}); refusing to {action} it"));
        }
        let ev = Evidence { operator: Some(who.to_string()), ..Evidence::default() };
        let mut d = self.new_decision(now, action, target, Some(duration_secs), None, None, "operator".into(), ev, State::Enforce);
        d.by = Some(who.to_string());
        self.start(&d, now);
        Ok(d)
    }

    /// Lifts what is in force on `target` (the caller removes the elements); returns the
    /// decision ids that ended.
    pub fn revoke(&mut self, target: IpAddr) -> Option<u64> {
        self.active.remove(&canonical(target)).map(|a| a.id)
    }

    /// Approves a pending decision: it is enforced from `now` (or logged, in dry-run).
    pub fn approve(&mut self, id: u64, who: &str, now: Micros) -> Result<Decision, String> {
        let mut d = self.pending.remove(&id).ok_or_else(|| format!("no decision {id} is waiting for approval"))?;
        self.pending_keys.remove(&(d.target, d.action));
        self.stats.pending = self.pending.len() as u64;
        self.stats.approved += 1;
        d.by = Some(who.to_string());
        if self.allow.contains(d.target) {
            d.state = State::RefusedAllowlist;
            d.note = Some(format!("{} became allowlisted while waiting", d.target));
            return Ok(d);
        }
        d.state = if self.cfg.mode == Mode::DryRun { State::DryRun } else { State::Enforce };
        d.made = Some(Instant::now());
        d.applied_at = None;
        d.at = now;
        // The kernel keeps the last timeout given: never shorten what is already in force on
        // the same set.
        if let (Some(a), Some(secs)) = (self.active.get(&d.target), d.duration_secs) {
            if a.action == d.action && a.until > now {
                d.duration_secs = Some(secs.max(((a.until - now) / 1_000_000) as u64 + 1));
            }
        }
        self.start(&d, now);
        Ok(d)
    }

    pub fn deny(&mut self, id: u64, who: &str) -> Result<Decision, String> {
        let mut d = self.pending.remove(&id).ok_or_else(|| format!("no decision {id} is waiting for approval"))?;
        self.pending_keys.remove(&(d.target, d.action));
        self.stats.pending = self.pending.len() as u64;
        self.stats.denied += 1;
        d.by = Some(who.to_string());
        d.state = State::Denied;
        Ok(d)
    }

    pub fn pending(&self) -> impl Iterator<Item = &Decision> {
        self.pending.values()
    }

    /// Forgets actions that ended before `now`.
    pub fn sweep(&mut self, now: Micros) {
        self.active.retain(|_, a| a.until > now);
        self.logged.retain(|_, t| now - *t < LOG_REPEAT_US);
        self.refused.retain(|_, t| now - *t < REFUSAL_REPEAT_US);
    }

    /// What is in force (or would be, in dry-run), oldest decision first.
    pub fn active(&self) -> Vec<(IpAddr, Active)> {
        let mut v: Vec<_> = self.active.iter().map(|(ip, a)| (*ip, *a)).collect();
        v.sort_by_key(|e| e.1.id);
        v
    }
}

fn past(a: Action) -> &'static str {
    match a {
        Action::Alert => "alerted",
        Action::Drop => "dropped",
        Action::RateLimit => "rate-limited",
        Action::Block => "blocked",
        Action::Quarantine => "quarantined",
    }
}

fn matches(e: &PlaybookEntry, t: &Trigger) -> bool {
    let w = &e.when;
    match &t.kind {
        TriggerKind::Rule { sid, classtype, action, .. } => {
            w.any_rule
                || w.sid.contains(sid)
                || classtype.as_ref().is_some_and(|c| w.classtype.iter().any(|x| x == c))
                || (w.rule_action.is_some() && w.rule_action == *action)
        }
        TriggerKind::Model { anomaly: true, .. } => w.anomaly,
        TriggerKind::Model { class, score, .. } => w.ml_class.iter().any(|c| c.eq_ignore_ascii_case(class)) && w.min_score.is_none_or(|m| *score >= m),
    }
}

fn evidence_of(t: &Trigger) -> Evidence {
    let mut ev = Evidence { flow_id: t.flow_id, ..Evidence::default() };
    match &t.kind {
        TriggerKind::Rule { gid, sid, rev, msg, .. } => ev.rules.push(format!("{gid}:{sid}:{rev} {msg}")),
        TriggerKind::Model { anomaly, class, score, top_features } => {
            ev.model = Some(ModelEvidence { class: if *anomaly { "anomaly".into() } else { class.clone() }, score: *score, top_features: top_features.clone() })
        }
    }
    ev
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::{AllowSource, Net};
    use crate::playbook::{Secs, When};

    fn entry(when: When, action: Action) -> PlaybookEntry {
        PlaybookEntry { name: None, when, action, duration: None, rate_limit: None, approve: None, target: Target::Src }
    }

    fn rule(at_s: i64, src: &str, sid: u32, classtype: Option<&str>, action: Option<RuleAction>) -> Trigger {
        Trigger {
            at: at_s * 1_000_000,
            src: src.parse().unwrap(),
            dst: "10.0.0.1".parse().unwrap(),
            flow_id: Some(7),
            kind: TriggerKind::Rule { gid: 1, sid, rev: 1, msg: "m".into(), classtype: classtype.map(String::from), action },
        }
    }

    fn model(at_s: i64, src: &str, class: &str, score: f32) -> Trigger {
        Trigger {
            at: at_s * 1_000_000,
            src: src.parse().unwrap(),
            dst: "10.0.0.1".parse().unwrap(),
            flow_id: None,
            kind: TriggerKind::Model { anomaly: false, class: class.into(), score, top_features: vec![("Flow Duration".into(), 0.4)] },
        }
    }

    fn engine(playbook: Vec<PlaybookEntry>, mode: Mode) -> PolicyEngine {
        let cfg = PolicyConfig { mode, playbook, ..PolicyConfig::default() };
        let mut allow = Allowlist::default();
        allow.add("192.168.100.0/24".parse::<Net>().unwrap(), AllowSource::Config);
        PolicyEngine::new(cfg, allow, 1)
    }

    #[test]
    fn aggregate_fires_on_the_nth_match_within_the_window() {
        let mut w = When { classtype: vec!["attempted-recon".into()], count: Some(3), seconds: Some(Secs(10)), ..When::default() };
        w.sid.clear();
        let mut e = engine(vec![entry(w, Action::Block)], Mode::Enforce);
        assert!(e.on_trigger(&rule(0, "203.0.113.9", 1, Some("attempted-recon"), None)).is_empty());
        assert!(e.on_trigger(&rule(1, "203.0.113.9", 1, Some("attempted-recon"), None)).is_empty());
        // Another source's matches count on their own.
        assert!(e.on_trigger(&rule(1, "203.0.113.10", 1, Some("attempted-recon"), None)).is_empty());
        // A different classtype does not count.
        assert!(e.on_trigger(&rule(1, "203.0.113.9", 1, Some("trojan-activity"), None)).is_empty());
        let d = e.on_trigger(&rule(2, "203.0.113.9", 1, Some("attempted-recon"), None));
        assert_eq!(d.len(), 1);
        assert_eq!((d[0].action, d[0].state, d[0].duration_secs, d[0].evidence.count), (Action::Block, State::Enforce, Some(600), Some(3)));
        // Matches spread wider than the window never fire.
        for s in [100, 111, 122, 133] {
            assert!(e.on_trigger(&rule(s, "203.0.113.10", 1, Some("attempted-recon"), None)).is_empty());
        }
    }

    #[test]
    fn repeat_offenders_climb_the_ladder_and_active_blocks_are_not_repeated() {
        let mut e = engine(vec![entry(When { ml_class: vec!["PortScan".into()], ..When::default() }, Action::Block)], Mode::Enforce);
        let d1 = e.on_trigger(&model(0, "198.51.100.4", "PortScan", 0.9));
        assert_eq!(d1[0].duration_secs, Some(600));
        assert_eq!(d1[0].level, Some(0));
        // Still blocked: nothing new.
        assert!(e.on_trigger(&model(60, "198.51.100.4", "PortScan", 0.9)).is_empty());
        assert_eq!(e.stats.already_active, 1);
        let d2 = e.on_trigger(&model(700, "198.51.100.4", "PortScan", 0.9));
        assert_eq!((d2[0].duration_secs, d2[0].level), (Some(3600), Some(1)));
        let d3 = e.on_trigger(&model(700 + 3601, "198.51.100.4", "PortScan", 0.9));
        assert_eq!(d3[0].duration_secs, Some(86_400));
        let d4 = e.on_trigger(&model(700 + 3601 + 86_401, "198.51.100.4", "PortScan", 0.9));
        assert_eq!(d4[0].duration_secs, Some(7 * 86_400));
        let d5 = e.on_trigger(&model(700 + 3601 + 86_401 + 7 * 86_400 + 1, "198.51.100.4", "PortScan", 0.9));
        assert_eq!(d5[0].duration_secs, Some(7 * 86_400), "the ladder's last step repeats");
        // Other classes and low scores do not match.
        assert!(e.on_trigger(&model(0, "198.51.100.5", "DDoS", 0.9)).is_empty());
    }

    #[test]
    fn allowlisted_targets_are_never_acted_on() {
        let mut e = engine(vec![entry(When { any_rule: true, ..When::default() }, Action::Block)], Mode::Enforce);
        let d = e.on_trigger(&rule(0, "192.168.100.5", 9, None, None));
        assert_eq!(d[0].state, State::RefusedAllowlist);
        assert!(d[0].note.as_ref().unwrap().contains("allowlisted"));
        // Counted every time, logged once a minute.
        assert!(e.on_trigger(&rule(1, "192.168.100.5", 9, None, None)).is_empty());
        assert_eq!(e.stats.allowlist_refusals, 2);
        assert!(e.active().is_empty());
        assert!(e.operator(Action::Block, "192.168.100.9".parse().unwrap(), 60, "root", 0).is_err());
        assert!(e.operator(Action::Block, "::ffff:192.168.100.9".parse().unwrap(), 60, "root", 0).is_err());
    }

    #[test]
    fn dry_run_decides_but_says_so_and_quarantine_waits_for_approval() {
        let pb = vec![
            entry(When { ml_class: vec!["DDoS".into()], ..When::default() }, Action::Block),
            entry(When { ml_class: vec!["Infiltration".into()], ..When::default() }, Action::Quarantine),
        ];
        let mut e = engine(pb.clone(), Mode::DryRun);
        let d = e.on_trigger(&model(0, "198.51.100.4", "DDoS", 0.8));
        assert_eq!(d[0].state, State::DryRun);
        let mut e = engine(pb, Mode::Enforce);
        let q = e.on_trigger(&model(0, "198.51.100.7", "Infiltration", 0.8));
        assert_eq!(q[0].state, State::Pending);
        assert_eq!(e.pending().count(), 1);
        // Not repeated while pending.
        assert!(e.on_trigger(&model(5, "198.51.100.7", "Infiltration", 0.8)).is_empty());
        assert!(e.deny(q[0].id + 100, "root").is_err());
        let a = e.approve(q[0].id, "alice", 10_000_000).unwrap();
        assert_eq!((a.state, a.by.as_deref(), a.at), (State::Enforce, Some("alice"), 10_000_000));
        assert_eq!(e.active()[0].1.action, Action::Quarantine);
        // A block that needs no approval is not held back by a pending quarantine.
        let mut e2 = engine(
            vec![
                entry(When { ml_class: vec!["Infiltration".into()], ..When::default() }, Action::Quarantine),
                entry(When { ml_class: vec!["PortScan".into()], ..When::default() }, Action::Block),
            ],
            Mode::Enforce,
        );
        assert_eq!(e2.on_trigger(&model(0, "198.51.100.8", "Infiltration", 0.9))[0].state, State::Pending);
        let b = e2.on_trigger(&model(1, "198.51.100.8", "PortScan", 0.9));
        assert_eq!((b[0].action, b[0].state), (Action::Block, State::Enforce));
        // A decision the enforcer could not apply is neither in force nor an offence.
        e2.failed(&b[0]);
        assert!(e2.active().is_empty());
        assert_eq!(e2.on_trigger(&model(2, "198.51.100.8", "PortScan", 0.9))[0].level, Some(0));
        assert!(e.approve(q[0].id, "alice", 0).is_err());
    }

    #[test]
    fn the_strongest_action_per_target_wins_and_rule_drop_matches() {
        let pb = vec![
            entry(When { any_rule: true, ..When::default() }, Action::Alert),
            entry(When { rule_action: Some(RuleAction::Drop), ..When::default() }, Action::Block),
        ];
        let mut e = engine(pb, Mode::Enforce);
        let d = e.on_trigger(&rule(0, "203.0.113.1", 5, None, Some(RuleAction::Drop)));
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].action, Action::Block);
        assert_eq!(d[0].evidence.rules, vec!["1:5:1 m".to_string()]);
        let d = e.on_trigger(&rule(0, "203.0.113.2", 5, None, None));
        assert_eq!(d[0].action, Action::Alert);
        assert_eq!(d[0].state, State::Logged);
        // An alert decision is logged once a minute per entry and target.
        assert!(e.on_trigger(&rule(30, "203.0.113.2", 5, None, None)).is_empty());
        assert_eq!(e.on_trigger(&rule(61, "203.0.113.2", 5, None, None)).len(), 1);
    }

    #[test]
    fn restored_state_continues_the_ladder() {
        let mut e = engine(vec![entry(When { any_rule: true, ..When::default() }, Action::Block)], Mode::Enforce);
        let ip: IpAddr = "203.0.113.3".parse().unwrap();
        e.restore(&[], &[(ip, 0), (ip, 1_000_000)], &[]);
        let d = e.on_trigger(&rule(10, "203.0.113.3", 1, None, None));
        assert_eq!(d[0].duration_secs, Some(86_400));
    }
}
