//! The daemon's control protocol, version [`PROTOCOL_VERSION`]: the types both ends of the
//! control socket agree on. The daemon (`portcullis run`, `portcullis replay --console`)
//! answers [`Request`]s with one JSON object each and publishes a [`Snapshot`] of what it is
//! doing; the console (`portcullis-tui`) and the CLI only ever read these types, never the
//! daemon's live structures. Plain data with serde derives: no I/O, no threads, no other
//! Portcullis crate.
//!
//! Wire format: one JSON object per line each way. A request is `{"cmd": NAME, ...}` and may
//! carry `"v": 1`; a daemon refuses a version it does not speak. A reply is `{"ok": true,
//! ...}` or `{"ok": false, "error": "..."}`. `subscribe` turns the connection into a stream
//! of EVE lines (alerts and decisions, as written to eve.json) until the client closes it.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// The protocol version this crate describes. Requests without `"v"` are taken as this one.
pub const PROTOCOL_VERSION: u32 = 1;

/// Every command of the protocol, for `hello` and for error messages.
pub const COMMANDS: &[&str] = &[
    "hello", "snapshot", "subscribe", "stats", "block", "unblock", "blocked", "pending", "approve", "deny", "nft-status",
    "reload-rules", "swap-model", "rollback-model", "promote-shadow",
];

/// A request, as sent on the wire (`{"cmd":"block","addr":"192.0.2.7","for_secs":600}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "kebab-case")]
pub enum Request {
    /// The daemon's name, protocol version and commands.
    Hello,
    /// The console's view: a [`Snapshot`] in `snapshot`.
    Snapshot,
    /// From now on the connection carries EVE lines of the named event types (`alert`,
    /// `decision`, `drift`; all three when empty), one per line.
    Subscribe {
        #[serde(default)]
        events: Vec<String>,
    },
    /// The last EVE `stats` event, in `stats`.
    Stats,
    Block {
        addr: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        for_secs: Option<u64>,
        /// `block` (the default) or `quarantine`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        action: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
    },
    Unblock {
        addr: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
    },
    Blocked,
    Pending,
    Approve {
        id: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
    },
    Deny {
        id: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
    },
    NftStatus,
    /// Reloads the rule files: built aside, swapped in only when the new set loads; the
    /// reply lists the rules that failed.
    ReloadRules,
    /// Loads the model in `dir` beside the active one and makes it active; the previous
    /// model is kept for `rollback-model`. `shadow: true` runs it beside the active model
    /// instead, comparing their verdicts, until `promote-shadow`.
    SwapModel {
        dir: String,
        #[serde(default)]
        shadow: bool,
    },
    RollbackModel,
    PromoteShadow,
}

impl Request {
    /// The request as one wire line (without the newline), tagged with the version.
    pub fn to_line(&self) -> String {
        let mut v = serde_json::to_value(self).expect("requests serialise");
        if let serde_json::Value::Object(m) = &mut v {
            m.insert("v".into(), PROTOCOL_VERSION.into());
        }
        v.to_string()
    }
}

/// What the console shows: everything a frame of it needs, taken at one instant.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Seconds since the Unix epoch when taken.
    pub at: f64,
    pub uptime_secs: u64,
    /// `run` (live interfaces) or `replay` (a capture file).
    pub source: String,
    pub traffic: Traffic,
    pub capture: CaptureHealth,
    /// Sources by bytes in the last interval, largest first.
    pub top_talkers: Vec<Talker>,
    /// Active flows, largest first (bounded: the daemon sends at most a few hundred).
    pub flows: Vec<FlowRow>,
    /// Flows the daemon tracks in total (`flows` may be fewer).
    pub flows_active: u64,
    /// The most recent alerts, oldest first (bounded).
    pub alerts: Vec<AlertRow>,
    pub alerts_total: u64,
    pub enforcement: Enforcement,
    pub scoring: Option<Scoring>,
    pub drift: Option<Drift>,
    pub rules: Option<RulesInfo>,
}

/// Rates over the daemon's recent history, newest last, one sample per second.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Traffic {
    pub packets_per_sec: Vec<u64>,
    pub bits_per_sec: Vec<u64>,
    pub drops_per_sec: Vec<u64>,
    pub packets_total: u64,
    pub bytes_total: u64,
    /// Packets not passed on, by reason (`rule`, `blocklist`, `fail-closed`, `ring`, `kernel`,
    /// decoder event names), largest first.
    pub drops_by_reason: Vec<(String, u64)>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CaptureHealth {
    /// `af-xdp`, `af-packet`, `pcap`, `file`.
    pub mode: String,
    pub inline: bool,
    /// `open` or `closed`, inline only.
    pub fail_mode: Option<String>,
    pub ports: Vec<PortHealth>,
    /// Worker outputs thrown away because the EVE writer was behind.
    pub events_lost: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PortHealth {
    /// `"eth1 queue 0: af-xdp copy mode"`.
    pub name: String,
    pub packets_per_sec: u64,
    pub packets: u64,
    /// Frames the kernel ring dropped because the worker was behind.
    pub ring_drops: u64,
    /// Frames waiting in the ring when the snapshot was taken.
    pub backlog: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Talker {
    pub addr: IpAddr,
    pub bytes_per_sec: u64,
    pub packets_per_sec: u64,
    pub flows: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowRow {
    pub flow_id: u64,
    /// `TCP`, `UDP`, `ICMP`, ...
    pub proto: String,
    pub src: IpAddr,
    pub src_port: Option<u16>,
    pub dst: IpAddr,
    pub dst_port: Option<u16>,
    pub app_proto: Option<String>,
    pub packets: u64,
    pub bytes: u64,
    pub age_secs: f64,
    /// TCP state (`established`, `closed`, ...), when TCP.
    pub state: Option<String>,
    /// The model's last verdict on the flow, when scored.
    pub ml_class: Option<String>,
    pub ml_score: Option<f32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AlertKind {
    Rule,
    Ml,
    Anomaly,
    Drift,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRow {
    /// EVE timestamp.
    pub timestamp: String,
    pub kind: AlertKind,
    pub gid: u32,
    pub sid: u64,
    pub signature: String,
    pub severity: u8,
    pub category: Option<String>,
    pub src: Option<IpAddr>,
    pub src_port: Option<u16>,
    pub dst: Option<IpAddr>,
    pub dst_port: Option<u16>,
    pub proto: Option<String>,
    /// `allowed`, `blocked` (Suricata's alert.action).
    pub action: String,
    /// The rule as written in its file, for rule alerts.
    pub rule: Option<String>,
    /// The model's verdict, for ML alerts.
    pub ml: Option<MlVerdict>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MlVerdict {
    pub model: String,
    pub class: String,
    pub probability: f32,
    pub anomaly: Option<f32>,
    /// Top features: (name, value, weight).
    pub features: Vec<(String, f32, f32)>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Enforcement {
    /// `dry-run`, `enforce`, `approve`, or `off` (no policy).
    pub mode: String,
    /// Why nftables is not enforcing, when it is not.
    pub nft_missing: Option<String>,
    pub active: Vec<ActiveRow>,
    pub pending: Vec<PendingRow>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActiveRow {
    pub addr: IpAddr,
    /// `block`, `rate-limit`, `quarantine`, `drop`.
    pub action: String,
    pub decision: u64,
    pub expires_in_secs: u64,
    pub dry_run: bool,
    /// Packets the XDP block map dropped for this address.
    pub hits: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingRow {
    pub id: u64,
    pub action: String,
    pub target: IpAddr,
    pub duration_secs: Option<u64>,
    /// What fired: `ml-class Portscan 0.97`, `sid 2001219`, ...
    pub trigger: String,
    pub age_secs: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Scoring {
    /// `cpu`, `tract`, `cuda`.
    pub backend: String,
    /// Why the backend is not the one asked for (`auto` fell back), when it is not.
    pub backend_note: Option<String>,
    /// `cicids2017 v3`.
    pub model: String,
    /// The model kept for rollback, when a swap happened.
    pub previous_model: Option<String>,
    pub flows_scored: u64,
    pub batches: u64,
    pub mean_batch: f64,
    pub latency_p50_ms: f64,
    pub latency_p99_ms: f64,
    pub shadow: Option<Shadow>,
}

/// A candidate model scoring beside the active one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Shadow {
    pub model: String,
    pub flows: u64,
    /// Flows both models put in the same class.
    pub agree: u64,
    /// Flows the candidate alerts on and the active model does not, and the reverse.
    pub only_candidate_alerts: u64,
    pub only_active_alerts: u64,
}

/// Feature drift of live flows against the model's training distribution.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Drift {
    /// Flows in the current window.
    pub flows: u64,
    /// Population stability index per feature, largest first.
    pub features: Vec<(String, f64)>,
    /// PSI above which a drift alert is raised.
    pub threshold: f64,
    /// Why drift is not measured, when it is not (`the model ships no training histograms`).
    pub unavailable: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RulesInfo {
    pub files: Vec<String>,
    pub loaded: u64,
    pub failed: u64,
    /// When the active rules were loaded (EVE timestamp).
    pub loaded_at: String,
    /// The errors of the last load or reload, `file:line: message`, bounded.
    pub errors: Vec<String>,
    /// The last reload that was refused, with why, when one was.
    pub last_reload_refused: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_keep_the_wire_names_of_the_first_protocol() {
        let r: Request = serde_json::from_str(r#"{"cmd":"block","addr":"192.0.2.7","for_secs":600}"#).unwrap();
        assert_eq!(r, Request::Block { addr: "192.0.2.7".into(), for_secs: Some(600), action: None, by: None });
        let r: Request = serde_json::from_str(r#"{"cmd":"nft-status","v":1}"#).unwrap();
        assert_eq!(r, Request::NftStatus);
        let line = Request::Approve { id: 4, by: None }.to_line();
        assert_eq!(line, r#"{"cmd":"approve","id":4,"v":1}"#);
        for c in COMMANDS {
            let needs: &str = match *c {
                "block" | "unblock" => r#","addr":"192.0.2.1""#,
                "approve" | "deny" => r#","id":1"#,
                "swap-model" => r#","dir":"m""#,
                _ => "",
            };
            let text = format!(r#"{{"cmd":"{c}"{needs}}}"#);
            assert!(serde_json::from_str::<Request>(&text).is_ok(), "{text}");
        }
        assert!(serde_json::from_str::<Request>(r#"{"cmd":"reboot"}"#).is_err());
    }

    #[test]
    fn snapshots_round_trip() {
        let s = Snapshot {
            source: "run".into(),
            top_talkers: vec![Talker { addr: "10.0.0.1".parse().unwrap(), bytes_per_sec: 10, packets_per_sec: 1, flows: 2 }],
            ..Snapshot::default()
        };
        let back: Snapshot = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
    }
}
