//! The `policy` section of the configuration: mode, allowlist, escalation ladder, rate-limit
//! profiles and the playbook that maps triggers to actions.
//!
//! Every check is made while the file is read (in the `Deserialize` impls), so a bad value is
//! refused at start with the file's line and the reason: an unknown action, a zero duration,
//! an allowlist entry that does not parse, a rate-limit profile the playbook names but does
//! not define.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

use crate::net::Net;

/// `policy`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PolicyConfig {
    /// Absent: `dry-run`, so a first run never acts before the operator said so.
    #[serde(default)]
    pub mode: Mode,
    /// Actions that wait for a human (`portcullis approve ID`, the console) even in
    /// `enforce` mode. Absent: `[quarantine]`.
    #[serde(default = "default_approve")]
    pub require_approval: Vec<Action>,
    /// Management networks: no verdict ever blocks, rate-limits or quarantines them, and a
    /// quarantined host may still reach them.
    #[serde(default)]
    pub allowlist: Vec<Net>,
    /// Also allowlist every address of this machine's interfaces (read at start).
    #[serde(default = "yes", deserialize_with = "yes_no")]
    pub allow_own_addresses: bool,
    /// Also allowlist the peers of SSH sessions open at start (`SSH_CONNECTION` and
    /// established connections to local port 22).
    #[serde(default = "yes", deserialize_with = "yes_no")]
    pub allow_ssh_sessions: bool,
    /// Durations of a repeat offender's successive blocks and quarantines (Zeek's
    /// catch-and-release). Absent: 10m, 1h, 24h, 7d.
    #[serde(default = "default_ladder", deserialize_with = "ladder")]
    pub escalation: Vec<Secs>,
    /// How long an offence counts towards the ladder. Absent: 30 days.
    #[serde(default = "default_memory")]
    pub escalation_memory: Secs,
    /// Where the decision log (`decisions.db`) lives. Absent: `/var/lib/portcullis`.
    pub state_dir: Option<std::path::PathBuf>,
    /// Priority of the nftables `input` and `forward` chains. Absent: -10.
    pub nft_priority: Option<i32>,
    /// Rate-limit profiles by name.
    #[serde(default)]
    pub rate_limits: BTreeMap<ProfileName, RateLimitProfile>,
    /// Tried in order; every entry whose trigger matches fires, and per target the strongest
    /// action of one trigger wins.
    #[serde(default)]
    pub playbook: Vec<PlaybookEntry>,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            mode: Mode::DryRun,
            require_approval: default_approve(),
            allowlist: Vec::new(),
            allow_own_addresses: true,
            allow_ssh_sessions: true,
            escalation: default_ladder(),
            escalation_memory: default_memory(),
            state_dir: None,
            nft_priority: None,
            rate_limits: BTreeMap::new(),
            playbook: Vec::new(),
        }
    }
}

impl PolicyConfig {
    /// Cross-field checks serde cannot make: a playbook entry naming a rate-limit profile
    /// that is not defined. Returns the entry's index and the message.
    pub fn validate(&self) -> Result<(), (usize, String)> {
        for (i, e) in self.playbook.iter().enumerate() {
            if e.when.is_empty() {
                return Err((i, format!("playbook entry `{}`: `when` needs at least one of ml-class, anomaly, sid, classtype, rule-action, any-rule", e.label(i))));
            }
            if e.when.count.is_some() != e.when.seconds.is_some() || e.when.count == Some(0) {
                return Err((i, format!("playbook entry `{}`: an aggregate needs both `count` (at least 1) and `seconds`", e.label(i))));
            }
            if e.when.min_score.is_some_and(|m| !(0.0..=1.0).contains(&m)) {
                return Err((i, format!("playbook entry `{}`: min-score must lie between 0 and 1", e.label(i))));
            }
            let only_rule_drops = e.when == When { rule_action: Some(RuleAction::Drop), ..When::default() };
            if e.action == Action::Drop && !only_rule_drops {
                return Err((
                    i,
                    format!(
                        "playbook entry `{}`: `drop` records the inline drop a rule with action drop already made, so its trigger must be `when: {{rule-action: drop}}` alone; to stop traffic on other triggers use block, rate-limit or quarantine",
                        e.label(i)
                    ),
                ));
            }
            if !e.action.is_enforced_on_address() && e.duration.is_some() {
                return Err((i, format!("playbook entry `{}`: {} takes no duration", e.label(i), e.action)));
            }
            match (&e.action, &e.rate_limit) {
                (Action::RateLimit, None) => return Err((i, format!("playbook entry `{}`: rate-limit needs `rate-limit: PROFILE`", e.label(i)))),
                (Action::RateLimit, Some(p)) if !self.rate_limits.contains_key(p) => {
                    let known: Vec<&str> = self.rate_limits.keys().map(|k| k.0.as_str()).collect();
                    return Err((i, format!("playbook entry `{}`: no rate-limit profile `{}` (defined: {})", e.label(i), p.0, if known.is_empty() { "none".into() } else { known.join(", ") })));
                }
                (a, Some(_)) if *a != Action::RateLimit => return Err((i, format!("playbook entry `{}`: `rate-limit` given for action {a}", e.label(i)))),
                _ => {}
            }
        }
        Ok(())
    }

    /// Whether `action` waits for a human before it is enforced.
    pub fn needs_approval(&self, entry: &PlaybookEntry, action: Action) -> bool {
        self.mode == Mode::Approve || entry.approve.unwrap_or_else(|| self.require_approval.contains(&action))
    }
}

/// What the policy does with its decisions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Decisions are enforced (except those needing approval).
    Enforce,
    /// Decisions are logged as what would have been done; nothing is enforced.
    #[default]
    DryRun,
    /// Every decision beyond an alert waits for a human.
    Approve,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::DryRun => "dry-run",
            Mode::Approve => "approve",
        }
    }
}

/// An action of the playbook, weakest first (the order decides which wins).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Log the decision only.
    Alert,
    /// Inline: drop the flow that triggered it (a rule's own `drop` is applied by the engine;
    /// a model verdict's by its worker).
    Drop,
    /// Traffic from the source above a profile's rate is dropped.
    RateLimit,
    /// All traffic from the address is dropped.
    Block,
    /// All traffic from and to the host is dropped, except with allowlisted networks.
    Quarantine,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Alert => "alert",
            Action::Drop => "drop",
            Action::RateLimit => "rate-limit",
            Action::Block => "block",
            Action::Quarantine => "quarantine",
        }
    }

    pub fn parse(s: &str) -> Option<Action> {
        Some(match s {
            "alert" => Action::Alert,
            "drop" => Action::Drop,
            "rate-limit" => Action::RateLimit,
            "block" => Action::Block,
            "quarantine" => Action::Quarantine,
            _ => return None,
        })
    }

    /// Whether the action puts an address in an nftables set (and so has a duration).
    pub fn is_enforced_on_address(self) -> bool {
        matches!(self, Action::RateLimit | Action::Block | Action::Quarantine)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One playbook entry: a trigger, the action, and how long it lasts.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PlaybookEntry {
    /// Shown in decisions; absent: `entry N`.
    pub name: Option<String>,
    pub when: When,
    pub action: Action,
    /// Fixed duration of the action; absent: the escalation ladder.
    pub duration: Option<Secs>,
    /// The profile of a `rate-limit` action.
    pub rate_limit: Option<ProfileName>,
    /// Overrides `require-approval` for this entry.
    #[serde(default, deserialize_with = "opt_yes_no")]
    pub approve: Option<bool>,
    /// Which address of the alert the action applies to. Absent: `src`.
    #[serde(default)]
    pub target: Target,
}

impl PlaybookEntry {
    pub fn label(&self, index: usize) -> String {
        self.name.clone().unwrap_or_else(|| format!("entry {}", index + 1))
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    #[default]
    Src,
    Dst,
}

/// A trigger: what must match (at least one of the matchers), and, for an aggregate, how
/// many matches from one source within how many seconds.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct When {
    /// Model classes (as the model names them, e.g. `PortScan`, `DDoS`).
    #[serde(default)]
    pub ml_class: Vec<String>,
    /// Lowest class probability for `ml-class` (0–1). Absent: any the model alerted on.
    pub min_score: Option<f32>,
    /// The anomaly detector's alerts.
    #[serde(default, deserialize_with = "yes_no")]
    pub anomaly: bool,
    /// Rule sids.
    #[serde(default)]
    pub sid: Vec<u32>,
    /// Rule classtypes (`attempted-recon`, `trojan-activity`, ...).
    #[serde(default)]
    pub classtype: Vec<String>,
    /// `drop`: rules whose own action is drop.
    pub rule_action: Option<RuleAction>,
    /// Any rule alert.
    #[serde(default, deserialize_with = "yes_no")]
    pub any_rule: bool,
    /// Aggregate: fire on the `count`th match from one source within `seconds`.
    pub count: Option<u32>,
    pub seconds: Option<Secs>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuleAction {
    Drop,
    Reject,
}

/// A rate-limit profile: per source, above `packets` (or `bytes`) per second is dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimitProfile {
    pub unit: crate::nft::RateUnit,
    pub per_second: u64,
    pub burst: u32,
}

impl<'de> Deserialize<'de> for RateLimitProfile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            packets: Option<u64>,
            bytes: Option<u64>,
            burst: Option<u32>,
        }
        let r = Raw::deserialize(d)?;
        let (unit, n) = match (r.packets, r.bytes) {
            (Some(p), None) => (crate::nft::RateUnit::Packets, p),
            (None, Some(b)) => (crate::nft::RateUnit::Bytes, b),
            _ => return Err(D::Error::custom("a rate-limit profile needs exactly one of `packets` or `bytes` (per second)")),
        };
        if n == 0 {
            return Err(D::Error::custom("a rate of 0 per second would be a block; use `action: block`"));
        }
        Ok(RateLimitProfile { unit, per_second: n, burst: r.burst.unwrap_or(0) })
    }
}

/// A rate-limit profile's name: it becomes part of nftables set names, so `[a-z0-9_]`, at
/// most 12 bytes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProfileName(pub String);

impl<'de> Deserialize<'de> for ProfileName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.is_empty() || s.len() > 12 || !s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
            return Err(D::Error::custom(format!("rate-limit profile name `{s}`: use 1 to 12 of a-z, 0-9 and _")));
        }
        Ok(ProfileName(s))
    }
}

/// The longest an action may last: a year. (The kernel refuses element timeouts of centuries,
/// which would fail a whole transaction.)
pub const MAX_SECS: u64 = 365 * 86_400;

/// A duration of at least one second: `30s`, `10m`, `1h`, `24h`, `7d`, or a number of
/// seconds. Zero is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Secs(pub u64);

impl Secs {
    pub fn duration(self) -> Duration {
        Duration::from_secs(self.0)
    }

    pub fn parse(s: &str) -> Result<Secs, String> {
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let n: u64 = num.parse().map_err(|_| format!("`{s}` is not a duration (use e.g. 30s, 10m, 1h, 7d)"))?;
        let mult = match unit.trim() {
            "" | "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            other => return Err(format!("unknown duration unit `{other}` in `{s}` (use s, m, h or d)")),
        };
        match n.checked_mul(mult) {
            Some(0) => Err(format!("duration `{s}` is zero; an action needs at least 1s (remove the entry to disable it)")),
            Some(v) if v <= MAX_SECS => Ok(Secs(v)),
            _ => Err(format!("duration `{s}` is longer than 365d, the longest an action may last")),
        }
    }
}

impl fmt::Display for Secs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        match s {
            _ if s.is_multiple_of(86_400) => write!(f, "{}d", s / 86_400),
            _ if s.is_multiple_of(3600) => write!(f, "{}h", s / 3600),
            _ if s.is_multiple_of(60) => write!(f, "{}m", s / 60),
            _ => write!(f, "{s}s"),
        }
    }
}

impl<'de> Deserialize<'de> for Secs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Secs::parse(&n.to_string()).map_err(D::Error::custom),
            Raw::S(s) => Secs::parse(&s).map_err(D::Error::custom),
        }
    }
}

impl<'de> Deserialize<'de> for Net {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse::<Net>().map_err(D::Error::custom)
    }
}

fn default_approve() -> Vec<Action> {
    vec![Action::Quarantine]
}

fn default_ladder() -> Vec<Secs> {
    vec![Secs(600), Secs(3600), Secs(86_400), Secs(7 * 86_400)]
}

fn default_memory() -> Secs {
    Secs(30 * 86_400)
}

fn ladder<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Secs>, D::Error> {
    let v = Vec::<Secs>::deserialize(d)?;
    if v.is_empty() {
        return Err(D::Error::custom("the escalation ladder needs at least one duration"));
    }
    Ok(v)
}

fn yes() -> bool {
    true
}

/// Suricata's `yes`/`no` booleans, as the rest of the file writes them.
fn yes_no<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        B(bool),
        S(String),
    }
    match Raw::deserialize(d)? {
        Raw::B(b) => Ok(b),
        Raw::S(s) => match s.to_ascii_lowercase().as_str() {
            "yes" | "true" | "on" => Ok(true),
            "no" | "false" | "off" => Ok(false),
            _ => Err(D::Error::custom(format!("`{s}` is not yes or no"))),
        },
    }
}

fn opt_yes_no<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    yes_no(d).map(Some)
}

impl When {
    /// Whether the trigger has at least one matcher (an empty `when` would match nothing).
    pub fn is_empty(&self) -> bool {
        self.ml_class.is_empty() && !self.anomaly && self.sid.is_empty() && self.classtype.is_empty() && self.rule_action.is_none() && !self.any_rule
    }
}
