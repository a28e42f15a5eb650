//! The configuration file (`configs/portcullis.yaml`), in Suricata's vocabulary where Suricata
//! has a word for the thing (`vars.address-groups`, `rule-files`, `flow-timeouts`,
//! `flow.memcap`, `defrag`, `outputs.eve-log`), and `ml` for the learned flow detector, which
//! Suricata does not have. This crate owns parsing, defaults and
//! validation: an unknown key, a wrong type or a bad size is an error that names the file,
//! the line and the key. It hands the other crates their own `*Config` types and knows
//! nothing of how they use them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use portcullis_dataplane::decode::DecoderConfig;
use portcullis_dataplane::live::{AfPacketConfig, AfXdpConfig, BusyPoll, CaptureKind, LiveConfig, PcapConfig, Topology, XdpMode, ZeroCopy};
use portcullis_flowtable::{FlowConfig, ProtoTimeouts, Timeouts};
use serde::Deserialize;

/// A configuration that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: {key}: {message}")]
    Invalid { path: PathBuf, key: String, message: String },
}

/// The whole file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    #[serde(default)]
    pub vars: Vars,
    /// Directory that relative `rule-files` entries are resolved against.
    pub default_rule_path: Option<PathBuf>,
    #[serde(default)]
    pub rule_files: Vec<PathBuf>,
    pub classification_file: Option<PathBuf>,
    pub reference_config_file: Option<PathBuf>,
    #[serde(default)]
    pub outputs: Outputs,
    #[serde(default)]
    pub flow: FlowSection,
    #[serde(default)]
    pub flow_timeouts: FlowTimeoutsSection,
    #[serde(default)]
    pub defrag: DefragSection,
    #[serde(default)]
    pub threading: Threading,
    #[serde(default)]
    pub ml: MlSection,
    #[serde(default)]
    pub app_layer: AppLayerSection,
    #[serde(default)]
    pub capture: CaptureSection,
    #[serde(default)]
    pub af_xdp: AfXdpSection,
    #[serde(default)]
    pub af_packet: AfPacketSection,
    #[serde(default)]
    pub pcap: PcapSection,
    #[serde(default)]
    pub control: ControlSection,
    #[serde(default)]
    pub stats: StatsSection,
    #[serde(default)]
    pub metrics: MetricsSection,
    /// Verdicts and enforcement: mode, allowlist, escalation, rate-limit profiles, playbook.
    #[serde(default)]
    pub policy: portcullis_policy::PolicyConfig,
}

/// `capture`: what the daemon (`portcullis run`) listens on and how.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CaptureSection {
    /// Interfaces to watch (tap mode). Ignored when `inline` is set.
    #[serde(default)]
    pub interfaces: Vec<String>,
    /// Two interfaces to bridge through Portcullis (inline IPS).
    pub inline: Option<Vec<String>>,
    /// `auto` (AF_XDP, else AF_PACKET, else libpcap), `af-xdp`, `af-packet` or `pcap`.
    pub method: Option<String>,
    /// Inline, when a worker falls behind: `open` forwards frames uninspected, `closed`
    /// drops them; both are counted.
    pub fail_mode: Option<FailMode>,
    /// Frames waiting in a worker's receive ring above which it counts as behind.
    pub backlog_limit: Option<usize>,
    /// Attach the XDP program (the block map) also when capturing with AF_PACKET or libpcap.
    #[serde(default = "yes", deserialize_with = "yes_no")]
    pub xdp_fast_drop: bool,
    /// Addresses and networks never blocked by `portcullis block` or the policy.
    #[serde(default)]
    pub allowlist: Vec<String>,
}

impl Default for CaptureSection {
    fn default() -> Self {
        CaptureSection {
            interfaces: Vec::new(),
            inline: None,
            method: None,
            fail_mode: None,
            backlog_limit: None,
            xdp_fast_drop: true,
            allowlist: Vec::new(),
        }
    }
}

/// What an overloaded inline bridge does with frames it cannot inspect.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailMode {
    /// Forward uninspected: the network keeps working, inspection has a gap.
    #[default]
    Open,
    /// Drop: nothing passes uninspected.
    Closed,
}

/// `af-xdp`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AfXdpSection {
    pub queues: Option<u32>,
    pub umem_frames: Option<u32>,
    pub frame_size: Option<u32>,
    pub rx_ring: Option<u32>,
    pub tx_ring: Option<u32>,
    pub fill_ring: Option<u32>,
    pub comp_ring: Option<u32>,
    /// `auto`, `yes` or `no`.
    pub zero_copy: Option<String>,
    /// `auto`, `driver` or `generic`.
    pub xdp_mode: Option<String>,
    pub busy_poll: Option<BusyPollSection>,
}

#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct BusyPollSection {
    pub usecs: u32,
    pub budget: u32,
}

/// `af-packet`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AfPacketSection {
    pub threads: Option<u32>,
    pub block_size: Option<ByteSize>,
    pub block_count: Option<u32>,
    pub block_timeout: Option<u32>,
    pub cluster_id: Option<u16>,
}

/// `pcap`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PcapSection {
    pub snaplen: Option<u32>,
    pub buffer_size: Option<ByteSize>,
    #[serde(default, deserialize_with = "opt_yes_no")]
    pub promisc: Option<bool>,
}

/// `control`: the daemon's root-only control socket.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ControlSection {
    pub socket: Option<PathBuf>,
}

/// `metrics`: the Prometheus endpoint of the daemon.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct MetricsSection {
    /// Address and port `GET /metrics` is served on; absent: no endpoint.
    pub listen: Option<std::net::SocketAddr>,
}

/// `stats`: how often the daemon writes a `stats` event.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct StatsSection {
    /// Seconds; Suricata's default is 8.
    pub interval: Option<u32>,
}

/// Where the control socket lives when the config does not say.
pub const DEFAULT_CONTROL_SOCKET: &str = "/run/portcullis/control.sock";

fn opt_yes_no<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    yes_no(d).map(Some)
}

/// `app-layer`: protocol detection and the HTTP, DNS and TLS parsers, with their caps.
/// Absent values take Suricata's defaults (see `portcullis_applayer::AppConfig`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AppLayerSection {
    /// Detect and parse app-layer protocols (rules with app-layer keywords need it).
    #[serde(default = "yes", deserialize_with = "yes_no")]
    pub enabled: bool,
    /// Unrecognised bytes per direction after which detection gives up on a flow.
    pub detection_bytes: Option<ByteSize>,
    /// Transactions kept per flow.
    pub max_transactions: Option<usize>,
    #[serde(default)]
    pub http: HttpSection,
    #[serde(default)]
    pub tls: TlsSection,
    #[serde(default)]
    pub dns: DnsSection,
}

impl Default for AppLayerSection {
    fn default() -> Self {
        AppLayerSection { enabled: true, detection_bytes: None, max_transactions: None, http: HttpSection::default(), tls: TlsSection::default(), dns: DnsSection::default() }
    }
}

/// `app-layer.http`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct HttpSection {
    pub request_body_limit: Option<ByteSize>,
    pub response_body_limit: Option<ByteSize>,
    pub decompress_limit: Option<ByteSize>,
    pub header_limit: Option<ByteSize>,
}

/// `app-layer.tls`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TlsSection {
    pub handshake_limit: Option<ByteSize>,
}

/// `app-layer.dns`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DnsSection {
    pub tcp_message_limit: Option<ByteSize>,
}

/// `vars`: the address and port groups as written in the file. Names given here replace
/// Suricata's default of the same name; the others keep Suricata's default (see
/// [`Config::rule_vars`]).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Vars {
    #[serde(default, deserialize_with = "scalar_map")]
    pub address_groups: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "scalar_map")]
    pub port_groups: BTreeMap<String, String>,
}

/// suricata.yaml writes some groups as bare numbers (`ORACLE_PORTS: 1521`); they are read
/// as the text of the number.
fn scalar_map<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scalar {
        S(String),
        N(u64),
    }
    let m = BTreeMap::<String, Scalar>::deserialize(d)?;
    Ok(m.into_iter()
        .map(|(k, v)| {
            let v = match v {
                Scalar::S(s) => s,
                Scalar::N(n) => n.to_string(),
            };
            (k, v)
        })
        .collect())
}

/// `outputs`: where events go (see `portcullis_outputs` for what each sink does).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Outputs {
    #[serde(default)]
    pub eve_log: EveLog,
    #[serde(default)]
    pub webhook: WebhookSection,
}

/// `outputs.eve-log`, in Suricata's words (`filetype`, `filename`, `identity`, `facility`,
/// `level`, `redis`), plus `buffer`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct EveLog {
    #[serde(default = "yes", deserialize_with = "yes_no")]
    pub enabled: bool,
    /// Where events go: a file, a unix socket, syslog or Redis.
    #[serde(default)]
    pub filetype: FileType,
    /// `regular`: the file appended to (`-` is stdout; `--eve` overrides it); `unix_dgram`
    /// and `unix_stream`: the listener's socket path.
    #[serde(default = "default_eve")]
    pub filename: PathBuf,
    /// Event types to write.
    #[serde(default = "default_types")]
    pub types: Vec<EventType>,
    /// `syslog`: the program name in each message.
    pub identity: Option<String>,
    /// `syslog`: facility name (`local5`).
    pub facility: Option<String>,
    /// `syslog`: severity name (`Info`).
    pub level: Option<String>,
    /// `unix_stream` and `redis`: events queued while the peer is slow or away.
    pub buffer: Option<usize>,
    pub redis: Option<RedisSection>,
}

impl Default for EveLog {
    fn default() -> Self {
        EveLog { enabled: true, filetype: FileType::default(), filename: default_eve(), types: default_types(), identity: None, facility: None, level: None, buffer: None, redis: None }
    }
}

/// `outputs.eve-log.filetype`, spelled as Suricata spells it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub enum FileType {
    #[default]
    #[serde(rename = "regular", alias = "file")]
    Regular,
    #[serde(rename = "unix_dgram")]
    UnixDgram,
    #[serde(rename = "unix_stream")]
    UnixStream,
    #[serde(rename = "syslog")]
    Syslog,
    #[serde(rename = "redis")]
    Redis,
}

/// `outputs.eve-log.redis`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RedisSection {
    pub server: Option<String>,
    pub port: Option<u16>,
    /// `list` (= `lpush`), `rpush`, `channel` (= `publish`).
    pub mode: Option<String>,
    pub key: Option<String>,
}

/// `outputs.webhook`: decisions POSTed to a URL.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct WebhookSection {
    #[serde(default, deserialize_with = "yes_no")]
    pub enabled: bool,
    pub url: Option<String>,
    /// The policy actions whose decisions are posted.
    pub actions: Option<Vec<String>>,
    /// Seconds for one request.
    pub timeout: Option<u32>,
    /// Decisions waiting to be posted.
    pub buffer: Option<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventType {
    Alert,
    Drop,
    Flow,
    Stats,
}

fn yes() -> bool {
    true
}

/// Suricata writes booleans as `yes`/`no`; YAML 1.2 parsers read those as strings.
fn yes_no<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        B(bool),
        S(String),
    }
    match Raw::deserialize(d)? {
        Raw::B(b) => Ok(b),
        Raw::S(s) => match s.to_ascii_lowercase().as_str() {
            "yes" | "true" | "on" | "1" => Ok(true),
            "no" | "false" | "off" | "0" => Ok(false),
            _ => Err(serde::de::Error::custom(format!("`{s}` is not yes or no"))),
        },
    }
}
fn default_eve() -> PathBuf {
    PathBuf::from("eve.json")
}
fn default_types() -> Vec<EventType> {
    vec![EventType::Alert, EventType::Drop, EventType::Flow, EventType::Stats]
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FlowSection {
    /// Bytes of flow state across all workers, e.g. `128mb`.
    pub memcap: Option<ByteSize>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FlowTimeoutsSection {
    pub default: Option<TimeoutsEntry>,
    pub tcp: Option<TimeoutsEntry>,
    pub udp: Option<TimeoutsEntry>,
    pub icmp: Option<TimeoutsEntry>,
}

#[derive(Clone, Copy, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TimeoutsEntry {
    pub new: Option<u32>,
    pub established: Option<u32>,
    pub closed: Option<u32>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DefragSection {
    pub trackers: Option<usize>,
    pub timeout: Option<u32>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Threading {
    /// Worker threads; absent or `0` means one per core. `--threads` overrides it.
    pub workers: Option<usize>,
    /// Packets the dispatcher reads before handing a batch to every worker.
    pub batch_size: Option<usize>,
}

/// The learned flow detector: whether flows are scored (and so carry CICFlowMeter
/// features), by which model, and how often a long flow's features are exported before it
/// ends.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct MlSection {
    /// Score flows with the model, computing every flow's features for it (costs memory per
    /// flow, counted in `flow.memcap`). On unless turned off.
    #[serde(default = "yes", deserialize_with = "yes_no")]
    pub enabled: bool,
    /// Directory of the model (its `model.yaml` contract and ONNX files) that scores flows;
    /// relative paths are taken from the working directory. Absent: the bundled model.
    pub model: Option<PathBuf>,
    /// Seconds of flow age between exports of a running flow's features; 0: only when the
    /// flow ends.
    pub checkpoint_interval: Option<u32>,
    /// At most `count` model alerts per source address and class in `seconds` (Suricata's
    /// `threshold: type limit, track by_src`); the rest are counted as suppressed. Absent:
    /// 10 per 60 s; `count: 0`: no limit.
    pub alert_limit: Option<MlAlertLimit>,
    /// Which device scores flows; `--backend` overrides it.
    #[serde(default)]
    pub backend: MlBackend,
}

/// `ml.backend`: where flows are scored. Chosen once at start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MlBackend {
    /// The GPU when Portcullis is built with CUDA and a driver and device are present, else
    /// the CPU, with one line saying why.
    #[default]
    Auto,
    /// The native tree evaluator on the CPU.
    Cpu,
    /// tract-onnx on the CPU for both models.
    Tract,
    /// The GPU, or refuse to start saying why not.
    Cuda,
}

/// `ml.alert-limit`.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MlAlertLimit {
    pub count: u32,
    pub seconds: u32,
}

impl Default for MlSection {
    fn default() -> Self {
        MlSection { enabled: true, model: None, checkpoint_interval: None, alert_limit: None, backend: MlBackend::Auto }
    }
}

/// Adds the line to an "unknown field" message when the YAML parser gave none (it gives
/// none for keys at the top level).
fn locate(text: &str, message: String) -> String {
    if message.contains(" line ") {
        return message;
    }
    let Some(rest) = message.strip_prefix("unknown field `") else { return message };
    let Some(key) = rest.split('`').next() else { return message };
    match text.lines().position(|l| l.trim_start().strip_prefix(key).is_some_and(|r| r.trim_start().starts_with(':'))) {
        Some(n) => format!("{message} at line {} column 1", n + 1),
        None => message,
    }
}

/// The YAML parser places an error in a value it had to buffer (a list item, a value read
/// either as a number or a string) at the start of the enclosing list or mapping. When the
/// message quotes the bad value (`` `10.0.0.300` ``), the line that holds it, at or after the
/// reported one, is the one the operator wants.
fn refine_line(text: &str, message: String) -> String {
    let Some((head, pos)) = message.rsplit_once(" at line ") else { return message };
    let Some(line) = pos.split_whitespace().next().and_then(|l| l.parse::<usize>().ok()) else { return message };
    let quoted = head.split('`').nth(1).filter(|q| !q.is_empty());
    let bare = head.split("duration ").nth(1).and_then(|r| r.split(' ').next()).filter(|_| quoted.is_none());
    let Some(value) = quoted.or(bare) else { return message };
    let key_value = |l: &str| {
        let t = l.trim_start().trim_start_matches("- ");
        t == value || t.ends_with(&format!(": {value}")) || t.ends_with(&format!(": \"{value}\""))
    };
    match text.lines().enumerate().skip(line.saturating_sub(1)).find(|(_, l)| key_value(l)) {
        Some((n, _)) if n + 1 != line => format!("{head} at line {}", n + 1),
        _ => message,
    }
}

/// The line (1-based) of the `index`th item of `policy.playbook` in the file's text.
fn playbook_entry_line(text: &str, index: usize) -> Option<usize> {
    let mut lines = text.lines().enumerate();
    lines.by_ref().find(|(_, l)| l.starts_with("policy:"))?;
    let (_, _) = lines.by_ref().find(|(_, l)| l.trim_start().starts_with("playbook:"))?;
    let mut item_indent = None;
    let mut seen = 0;
    for (n, l) in lines {
        let t = l.trim_start();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let indent = l.len() - t.len();
        if indent == 0 {
            return None;
        }
        if t.starts_with("- ") || t == "-" {
            let want = *item_indent.get_or_insert(indent);
            if indent == want {
                if seen == index {
                    return Some(n + 1);
                }
                seen += 1;
            }
        }
    }
    None
}

/// An address or CIDR network (`10.0.0.1`, `10.0.0.0/8`, `2001:db8::/32`), IPv4 mapped into
/// IPv6 (prefix + 96), as (address, prefix length).
pub fn parse_net(s: &str) -> Option<(std::net::Ipv6Addr, u8)> {
    let (a, len) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l.parse::<u8>().ok()?)),
        None => (s, None),
    };
    match a.trim().parse::<std::net::IpAddr>().ok()? {
        std::net::IpAddr::V4(v4) => {
            let l = len.unwrap_or(32);
            (l <= 32).then(|| (v4.to_ipv6_mapped(), l + 96))
        }
        std::net::IpAddr::V6(v6) => {
            let l = len.unwrap_or(128);
            (l <= 128).then_some((v6, l))
        }
    }
}

/// A byte count written as a number or with a unit: `64kb`, `128mb`, `1gb` (powers of 1024,
/// as Suricata reads them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(ByteSize(n)),
            Raw::S(s) => parse_size(&s).map(ByteSize).map_err(serde::de::Error::custom),
        }
    }
}

fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim().to_ascii_lowercase();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("`{s}` is not a size (use e.g. 64kb, 128mb, 1gb)"))?;
    let mult = match unit.trim() {
        "" | "b" => 1,
        "kb" | "k" | "kib" => 1 << 10,
        "mb" | "m" | "mib" => 1 << 20,
        "gb" | "g" | "gib" => 1 << 30,
        other => return Err(format!("unknown size unit `{other}` in `{s}` (use kb, mb or gb)")),
    };
    n.checked_mul(mult).ok_or_else(|| format!("`{s}` is too large"))
}

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
        Self::parse(&text, path)
    }

    /// Parses configuration text; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let cfg: Config = if text.trim().is_empty() {
            Config::default()
        } else {
            serde_yaml_ng::from_str(text).map_err(|e| ConfigError::Parse { path: path.into(), message: refine_line(text, locate(text, e.to_string())) })?
        };
        cfg.validate(path)?;
        if let Err((i, message)) = cfg.policy.validate() {
            let at = playbook_entry_line(text, i).map(|l| format!(" at line {l}")).unwrap_or_default();
            return Err(ConfigError::Parse { path: path.into(), message: format!("policy.playbook{at}: {message}") });
        }
        Ok(cfg)
    }

    /// The policy's allowlist from the file: `policy.allowlist` and `capture.allowlist` (the
    /// daemon adds its own addresses and SSH peers at start).
    pub fn policy_allowlist(&self) -> portcullis_policy::Allowlist {
        let mut a = portcullis_policy::Allowlist::default();
        for n in &self.policy.allowlist {
            a.add(*n, portcullis_policy::AllowSource::Config);
        }
        for s in &self.capture.allowlist {
            // Validated at load; `parse_net` maps IPv4 into IPv6, so map it back.
            if let Some((v6, len)) = parse_net(s) {
                let n = match v6.to_ipv4_mapped() {
                    Some(v4) if len >= 96 => portcullis_policy::Net { addr: v4.into(), prefix: len - 96 },
                    _ => portcullis_policy::Net { addr: v6.into(), prefix: len },
                };
                a.add(n, portcullis_policy::AllowSource::Config);
            }
        }
        a
    }

    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: &str| ConfigError::Invalid { path: path.into(), key: key.into(), message: message.into() };
        if let Some(m) = self.flow.memcap {
            if m.0 < 1 << 16 {
                return Err(invalid("flow.memcap", "must be at least 64kb"));
            }
        }
        if self.threading.batch_size == Some(0) {
            return Err(invalid("threading.batch-size", "must be at least 1"));
        }
        if self.defrag.trackers == Some(0) {
            return Err(invalid("defrag.trackers", "must be at least 1"));
        }
        if let Some(m) = &self.capture.method {
            if m != "auto" && CaptureKind::parse(m).is_none() {
                return Err(invalid("capture.method", &format!("`{m}` is not auto, af-xdp, af-packet or pcap")));
            }
        }
        if let Some(i) = &self.capture.inline {
            if i.len() != 2 || i[0] == i[1] {
                return Err(invalid("capture.inline", "must name two different interfaces"));
            }
        }
        for a in &self.capture.allowlist {
            if parse_net(a).is_none() {
                return Err(invalid("capture.allowlist", &format!("`{a}` is not an address or CIDR network")));
            }
        }
        let x = &self.af_xdp;
        for (k, v) in [("af-xdp.umem-frames", x.umem_frames), ("af-xdp.rx-ring", x.rx_ring), ("af-xdp.tx-ring", x.tx_ring), ("af-xdp.fill-ring", x.fill_ring), ("af-xdp.comp-ring", x.comp_ring)] {
            if v.is_some_and(|v| !v.is_power_of_two()) {
                return Err(invalid(k, "must be a power of two"));
            }
        }
        if x.frame_size.is_some_and(|f| f != 2048 && f != 4096) {
            return Err(invalid("af-xdp.frame-size", "must be 2048 or 4096"));
        }
        if x.zero_copy.as_deref().is_some_and(|z| !matches!(z, "auto" | "yes" | "no")) {
            return Err(invalid("af-xdp.zero-copy", "must be auto, yes or no"));
        }
        if x.xdp_mode.as_deref().is_some_and(|z| !matches!(z, "auto" | "driver" | "generic")) {
            return Err(invalid("af-xdp.xdp-mode", "must be auto, driver or generic"));
        }
        if self.stats.interval == Some(0) {
            return Err(invalid("stats.interval", "must be at least 1 second"));
        }
        self.build_outputs().map_err(|(key, message)| invalid(&format!("outputs.{key}"), &message))?;
        Ok(())
    }

    /// The sinks of `outputs`: the EVE sink of `eve-log` (none when it is off) and the
    /// webhook when it is on. `portcullis_outputs::Outputs::open` takes it.
    pub fn outputs_config(&self) -> portcullis_outputs::OutputsConfig {
        // Checked when the file was loaded.
        self.build_outputs().unwrap_or_default()
    }

    /// Builds and checks the outputs; an error names the key below `outputs.` and says why.
    fn build_outputs(&self) -> Result<portcullis_outputs::OutputsConfig, (String, String)> {
        use portcullis_outputs::{Facility, Level, RedisConfig, RedisMode, SinkConfig, WebhookConfig, DEFAULT_BUFFER, DEFAULT_SYSLOG_SOCKET};
        let e = &self.outputs.eve_log;
        let bad = |k: &str, m: String| Err((k.to_string(), m));
        if e.redis.is_some() && e.filetype != FileType::Redis {
            return bad("eve-log.redis", "is set but `filetype` is not redis".into());
        }
        if e.buffer == Some(0) {
            return bad("eve-log.buffer", "must be at least 1".into());
        }
        let buffer = e.buffer.unwrap_or(DEFAULT_BUFFER);
        let mut eve = Vec::new();
        if e.enabled {
            let path = e.filename.clone();
            eve.push(match e.filetype {
                FileType::Regular => SinkConfig::File { path },
                FileType::UnixDgram => SinkConfig::UnixDgram { path },
                FileType::UnixStream => SinkConfig::UnixStream { path, buffer },
                FileType::Syslog => {
                    let facility = match &e.facility {
                        None => Facility::LOCAL5,
                        Some(f) => match Facility::parse(f) {
                            Some(f) => f,
                            None => return bad("eve-log.facility", format!("`{f}` is not a syslog facility ({})", Facility::names().collect::<Vec<_>>().join(", "))),
                        },
                    };
                    let level = match &e.level {
                        None => Level::INFO,
                        Some(l) => match Level::parse(l) {
                            Some(l) => l,
                            None => return bad("eve-log.level", format!("`{l}` is not a syslog level ({})", Level::names().collect::<Vec<_>>().join(", "))),
                        },
                    };
                    SinkConfig::Syslog { socket: PathBuf::from(DEFAULT_SYSLOG_SOCKET), identity: e.identity.clone().unwrap_or_else(|| "portcullis".into()), facility, level }
                }
                FileType::Redis => {
                    let r = e.redis.clone().unwrap_or_default();
                    let mode = match r.mode.as_deref() {
                        None => RedisMode::Lpush,
                        Some(m) => match RedisMode::parse(m) {
                            Some(m) => m,
                            None => return bad("eve-log.redis.mode", format!("`{m}` is not list, lpush, rpush, channel or publish")),
                        },
                    };
                    SinkConfig::Redis(RedisConfig {
                        server: r.server.unwrap_or_else(|| "127.0.0.1".into()),
                        port: r.port.unwrap_or(6379),
                        mode,
                        key: r.key.unwrap_or_else(|| "portcullis".into()),
                        buffer,
                    })
                }
            });
        }
        let w = &self.outputs.webhook;
        let webhook = w.enabled.then(|| WebhookConfig {
            url: w.url.clone().unwrap_or_default(),
            actions: w.actions.clone().unwrap_or_else(|| vec!["block".into(), "quarantine".into()]),
            timeout: std::time::Duration::from_secs(u64::from(w.timeout.unwrap_or(5))),
            buffer: w.buffer.unwrap_or(1000),
        });
        let cfg = portcullis_outputs::OutputsConfig { eve, webhook };
        cfg.validate()?;
        Ok(cfg)
    }

    /// The flow table settings for the whole engine (the memcap is split across workers by
    /// the caller).
    pub fn flow_config(&self) -> FlowConfig {
        let d = FlowConfig::default();
        let t = &self.flow_timeouts;
        let merge = |base: ProtoTimeouts, e: Option<TimeoutsEntry>| match e {
            None => base,
            Some(e) => ProtoTimeouts {
                new: e.new.unwrap_or(base.new),
                established: e.established.unwrap_or(base.established),
                closed: e.closed.unwrap_or(base.closed),
            },
        };
        let default = merge(d.timeouts.default, t.default);
        FlowConfig {
            timeouts: Timeouts {
                tcp: merge(d.timeouts.tcp, t.tcp),
                udp: merge(d.timeouts.udp, t.udp),
                icmp: merge(d.timeouts.icmp, t.icmp),
                default,
            },
            memcap: self.flow.memcap.map_or(d.memcap, |m| m.0),
            features: self.ml.enabled,
            checkpoint_secs: self.ml.checkpoint_interval.unwrap_or(d.checkpoint_secs),
        }
    }

    /// The rule variables: Suricata 7's defaults (`suricata.yaml`), with every group the file
    /// names replacing the default of that name.
    /// The app-layer parsers' settings, `None` when `app-layer.enabled` is off.
    pub fn app_config(&self) -> Option<portcullis_applayer::AppConfig> {
        let a = &self.app_layer;
        if !a.enabled {
            return None;
        }
        let d = portcullis_applayer::AppConfig::default();
        let size = |v: Option<ByteSize>, def: usize| v.map_or(def, |b| usize::try_from(b.0).unwrap_or(usize::MAX));
        Some(portcullis_applayer::AppConfig {
            http_request_body_limit: size(a.http.request_body_limit, d.http_request_body_limit),
            http_response_body_limit: size(a.http.response_body_limit, d.http_response_body_limit),
            http_decompress_limit: size(a.http.decompress_limit, d.http_decompress_limit),
            http_max_header_bytes: size(a.http.header_limit, d.http_max_header_bytes),
            tls_max_handshake: size(a.tls.handshake_limit, d.tls_max_handshake),
            dns_max_tcp_message: size(a.dns.tcp_message_limit, d.dns_max_tcp_message),
            max_txs: a.max_transactions.unwrap_or(d.max_txs),
            detect_bytes: size(a.detection_bytes, d.detect_bytes),
        })
    }

    pub fn rule_vars(&self) -> portcullis_rules::Vars {
        let mut v = portcullis_rules::Vars::default();
        v.address_groups.extend(self.vars.address_groups.iter().map(|(k, x)| (k.clone(), x.clone())));
        v.port_groups.extend(self.vars.port_groups.iter().map(|(k, x)| (k.clone(), x.clone())));
        v
    }

    /// `rule-files`, relative entries resolved against `default-rule-path` (as Suricata does).
    pub fn rule_paths(&self) -> Vec<PathBuf> {
        self.rule_files
            .iter()
            .map(|f| match &self.default_rule_path {
                Some(dir) if f.is_relative() => dir.join(f),
                _ => f.clone(),
            })
            .collect()
    }

    /// The capture settings of `portcullis run`.
    pub fn live_config(&self) -> LiveConfig {
        let x = &self.af_xdp;
        let dx = AfXdpConfig::default();
        let p = &self.af_packet;
        let dp = AfPacketConfig::default();
        let c = &self.pcap;
        let dc = PcapConfig::default();
        LiveConfig {
            capture: self.capture.method.as_deref().and_then(CaptureKind::parse),
            afxdp: AfXdpConfig {
                queues: x.queues,
                umem_frames: x.umem_frames.unwrap_or(dx.umem_frames),
                frame_size: x.frame_size.unwrap_or(dx.frame_size),
                rx_ring: x.rx_ring.unwrap_or(dx.rx_ring),
                tx_ring: x.tx_ring.unwrap_or(dx.tx_ring),
                fill_ring: x.fill_ring.unwrap_or(dx.fill_ring),
                comp_ring: x.comp_ring.unwrap_or(dx.comp_ring),
                zero_copy: match x.zero_copy.as_deref() {
                    Some("yes") => ZeroCopy::On,
                    Some("no") => ZeroCopy::Off,
                    _ => ZeroCopy::Auto,
                },
                xdp_mode: match x.xdp_mode.as_deref() {
                    Some("driver") => XdpMode::Driver,
                    Some("generic") => XdpMode::Generic,
                    _ => XdpMode::Auto,
                },
                busy_poll: x.busy_poll.map(|b| BusyPoll { usecs: b.usecs, budget: b.budget }),
            },
            afpacket: AfPacketConfig {
                threads: p.threads,
                block_size: p.block_size.map_or(dp.block_size, |b| u32::try_from(b.0).unwrap_or(u32::MAX)),
                block_count: p.block_count.unwrap_or(dp.block_count),
                block_timeout_ms: p.block_timeout.unwrap_or(dp.block_timeout_ms),
                cluster_id: p.cluster_id,
            },
            pcap: PcapConfig {
                snaplen: c.snaplen.unwrap_or(dc.snaplen),
                buffer_size: c.buffer_size.map_or(dc.buffer_size, |b| u32::try_from(b.0).unwrap_or(u32::MAX)),
                promisc: c.promisc.unwrap_or(dc.promisc),
            },
            xdp_block: self.capture.xdp_fast_drop,
        }
    }

    /// The interfaces of `capture`: the inline pair when set, else the tapped interfaces;
    /// `None` when there are none.
    pub fn topology(&self) -> Option<Topology> {
        match &self.capture.inline {
            Some(p) if p.len() == 2 => Some(Topology::Inline(p[0].clone(), p[1].clone())),
            _ if !self.capture.interfaces.is_empty() => Some(Topology::Tap(self.capture.interfaces.clone())),
            _ => None,
        }
    }

    /// `capture.allowlist` as (network address, prefix length) pairs, IPv4 mapped into IPv6.
    pub fn allowlist(&self) -> Vec<(std::net::Ipv6Addr, u8)> {
        self.capture.allowlist.iter().filter_map(|a| parse_net(a)).collect()
    }

    pub fn decoder_config(&self) -> DecoderConfig {
        let mut c = DecoderConfig::default();
        if let Some(t) = self.defrag.trackers {
            c.defrag.max_trackers = t;
        }
        if let Some(t) = self.defrag.timeout {
            c.defrag.timeout_secs = t;
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("test.yaml"))
    }

    #[test]
    fn shipped_config_parses() {
        let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../configs/portcullis.yaml"));
        let c = Config::load(path).unwrap();
        assert!(c.vars.address_groups.contains_key("HOME_NET"));
        assert_eq!(c.flow_config().timeouts, Timeouts::default());
    }

    #[test]
    fn rule_vars_merge_over_suricata_defaults() {
        let c = parse("vars:\n  address-groups:\n    HOME_NET: \"[10.1.0.0/16]\"\n  port-groups:\n    ORACLE_PORTS: 1522\ndefault-rule-path: /r\nrule-files: [a.rules, /abs/b.rules]\n").unwrap();
        let v = c.rule_vars();
        assert_eq!(v.address_groups["HOME_NET"], "[10.1.0.0/16]");
        assert_eq!(v.address_groups["EXTERNAL_NET"], "!$HOME_NET");
        assert_eq!(v.port_groups["ORACLE_PORTS"], "1522");
        assert_eq!(v.port_groups["TEREDO_PORTS"], "3544");
        assert_eq!(c.rule_paths(), vec![PathBuf::from("/r/a.rules"), PathBuf::from("/abs/b.rules")]);
        // The shipped file spells out exactly Suricata's defaults.
        let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../configs/portcullis.yaml"));
        let shipped = Config::load(path).unwrap();
        assert_eq!(shipped.rule_vars(), portcullis_rules::Vars::default());
        assert_eq!(shipped.vars.address_groups.len(), portcullis_rules::vars::SURICATA_ADDRESS_GROUPS.len());
        assert_eq!(shipped.vars.port_groups.len(), portcullis_rules::vars::SURICATA_PORT_GROUPS.len());
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let e = parse("flow:\n  memcap: 1mb\n  hash_size: 3\n").unwrap_err().to_string();
        assert!(e.contains("hash_size") && e.contains("line 3"), "{e}");
        let e = parse("outputz: {}\n").unwrap_err().to_string();
        assert!(e.contains("outputz") && e.contains("line 1"), "{e}");
    }

    #[test]
    fn sizes_and_timeouts() {
        let c = parse("flow:\n  memcap: 64mb\nflow-timeouts:\n  udp:\n    new: 5\n").unwrap();
        let f = c.flow_config();
        assert_eq!(f.memcap, 64 << 20);
        assert_eq!(f.timeouts.udp.new, 5);
        assert_eq!(f.timeouts.udp.established, 300);
        let e = parse("flow:\n  memcap: 12parsecs\n").unwrap_err().to_string();
        assert!(e.contains("unknown size unit"), "{e}");
        let e = parse("flow:\n  memcap: 1kb\n").unwrap_err().to_string();
        assert!(e.contains("flow.memcap"), "{e}");
    }

    #[test]
    fn app_layer_caps_default_to_suricatas_and_can_be_changed_or_turned_off() {
        let shipped = Config::load(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../configs/portcullis.yaml"))).unwrap();
        let d = portcullis_applayer::AppConfig::default();
        let a = shipped.app_config().expect("on in the shipped config");
        assert_eq!((a.http_request_body_limit, a.max_txs, a.detect_bytes), (d.http_request_body_limit, d.max_txs, d.detect_bytes));
        let c = parse("app-layer:\n  http:\n    response-body-limit: 1mb\n  dns:\n    tcp-message-limit: 4kb\n").unwrap();
        let a = c.app_config().unwrap();
        assert_eq!((a.http_response_body_limit, a.dns_max_tcp_message, a.http_request_body_limit), (1 << 20, 4096, d.http_request_body_limit));
        assert!(parse("app-layer:\n  enabled: no\n").unwrap().app_config().is_none());
        let e = parse("app-layer:\n  http:\n    body-limit: 3\n").unwrap_err().to_string();
        assert!(e.contains("body-limit") && e.contains("line 3"), "{e}");
    }

    #[test]
    fn capture_section_defaults_and_checks() {
        let c = parse("").unwrap();
        assert!(c.capture.xdp_fast_drop, "the block map is attached unless turned off");
        assert!(c.live_config().xdp_block);
        assert_eq!(c.topology(), None);
        let c = parse("capture:\n  inline: [eth1, eth2]\n  allowlist: [10.0.0.0/8, \"2001:db8::1\"]\naf-xdp:\n  rx-ring: 4096\n  zero-copy: no\n").unwrap();
        assert_eq!(c.topology(), Some(Topology::Inline("eth1".into(), "eth2".into())));
        assert_eq!(c.live_config().afxdp.rx_ring, 4096);
        assert_eq!(c.live_config().afxdp.zero_copy, ZeroCopy::Off);
        assert_eq!(c.allowlist().len(), 2);
        for (bad, key) in [
            ("capture:\n  inline: [eth1]\n", "capture.inline"),
            ("capture:\n  method: dpdk\n", "capture.method"),
            ("capture:\n  allowlist: [10.0.0.0/33]\n", "capture.allowlist"),
            ("af-xdp:\n  rx-ring: 1000\n", "af-xdp.rx-ring"),
            ("af-xdp:\n  frame-size: 1500\n", "af-xdp.frame-size"),
        ] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(e.contains(key), "{bad}: {e}");
        }
    }

    #[test]
    fn ml_turns_flow_features_on() {
        let f = parse("").unwrap().flow_config();
        assert!(f.features, "the model scores flows unless it is turned off");
        assert!(Config::default().ml.enabled);
        assert!(!parse("ml:\n  enabled: no\n").unwrap().flow_config().features);
        let c = parse("ml:\n  enabled: yes\n  model: configs/models/cicids2017/v1\n  checkpoint-interval: 60\n").unwrap();
        let f = c.flow_config();
        assert!(f.features);
        assert_eq!(f.checkpoint_secs, 60);
        assert_eq!(c.ml.model.as_deref(), Some(Path::new("configs/models/cicids2017/v1")));
        assert!(f.max_flows() < FlowConfig { features: false, ..f }.max_flows(), "the memcap pays for the features");
        let c = parse("ml:\n  alert-limit:\n    count: 3\n    seconds: 10\n").unwrap();
        assert_eq!(c.ml.alert_limit, Some(MlAlertLimit { count: 3, seconds: 10 }));
        assert!(parse("ml:\n  alert-limit:\n    count: 3\n").is_err(), "seconds is needed");
        let e = parse("ml:\n  enabled: yes\n  interval: 60\n").unwrap_err().to_string();
        assert!(e.contains("interval") && e.contains("line 3"), "{e}");
    }

    #[test]
    fn policy_section_parses_with_defaults() {
        let c = parse("policy:\n  mode: enforce\n  allowlist: [10.0.0.0/8, 2001:db8::/32]\n  rate-limits:\n    flood: {packets: 100, burst: 20}\n  playbook:\n    - name: scan\n      when: {ml-class: [PortScan]}\n      action: block\n    - when: {classtype: [attempted-recon], count: 5, seconds: 10}\n      action: block\n      duration: 1h\n    - when: {ml-class: [DDoS]}\n      action: rate-limit\n      rate-limit: flood\n").unwrap();
        let p = &c.policy;
        assert_eq!(p.mode, portcullis_policy::Mode::Enforce);
        assert_eq!(p.playbook.len(), 3);
        assert_eq!(p.playbook[1].duration, Some(portcullis_policy::Secs(3600)));
        assert_eq!(p.escalation.iter().map(|s| s.0).collect::<Vec<_>>(), vec![600, 3600, 86_400, 604_800]);
        assert!(c.policy_allowlist().contains("10.2.3.4".parse().unwrap()));
        // Absent: dry-run, quarantine needs approval.
        let d = parse("flow: {}\n").unwrap().policy;
        assert_eq!(d.mode, portcullis_policy::Mode::DryRun);
        assert_eq!(d.require_approval, vec![portcullis_policy::Action::Quarantine]);
    }

    #[test]
    fn outputs_default_to_the_eve_file_and_take_every_filetype() {
        use portcullis_outputs::{Facility, Level, RedisConfig, RedisMode, SinkConfig};
        let shipped = Config::load(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../configs/portcullis.yaml"))).unwrap();
        let o = shipped.outputs_config();
        assert_eq!(o.eve, vec![SinkConfig::File { path: "eve.json".into() }]);
        assert_eq!(o.webhook, None, "the webhook is off unless turned on");
        assert_eq!(parse("").unwrap().outputs_config(), o);
        assert!(parse("outputs:\n  eve-log:\n    enabled: no\n").unwrap().outputs_config().eve.is_empty());

        let c = parse("outputs:\n  eve-log:\n    filetype: redis\n    buffer: 500\n    redis:\n      server: 10.0.0.5\n      port: 6380\n      mode: channel\n      key: ids\n").unwrap();
        assert_eq!(c.outputs_config().eve, vec![SinkConfig::Redis(RedisConfig { server: "10.0.0.5".into(), port: 6380, mode: RedisMode::Publish, key: "ids".into(), buffer: 500 })]);
        let c = parse("outputs:\n  eve-log:\n    filetype: redis\n").unwrap();
        assert_eq!(c.outputs_config().eve, vec![SinkConfig::Redis(RedisConfig { server: "127.0.0.1".into(), port: 6379, mode: RedisMode::Lpush, key: "portcullis".into(), buffer: 10_000 })]);
        let c = parse("outputs:\n  eve-log:\n    filetype: syslog\n    identity: ids\n    facility: local3\n    level: Warning\n").unwrap();
        assert_eq!(c.outputs_config().eve, vec![SinkConfig::Syslog { socket: "/dev/log".into(), identity: "ids".into(), facility: Facility(19), level: Level(4) }]);
        let c = parse("outputs:\n  eve-log:\n    filetype: unix_stream\n    filename: /run/shipper.sock\n").unwrap();
        assert_eq!(c.outputs_config().eve, vec![SinkConfig::UnixStream { path: "/run/shipper.sock".into(), buffer: 10_000 }]);
        let c = parse("outputs:\n  eve-log:\n    filetype: unix_dgram\n    filename: /run/shipper.sock\n").unwrap();
        assert_eq!(c.outputs_config().eve, vec![SinkConfig::UnixDgram { path: "/run/shipper.sock".into() }]);

        let c = parse("outputs:\n  webhook:\n    enabled: yes\n    url: http://127.0.0.1:9000/hook\n").unwrap();
        let w = c.outputs_config().webhook.unwrap();
        assert_eq!((w.actions, w.timeout.as_secs(), w.buffer), (vec!["block".to_string(), "quarantine".to_string()], 5, 1000));
        let c = parse("outputs:\n  webhook:\n    enabled: yes\n    url: http://relay/x\n    actions: [rate-limit, block]\n    timeout: 2\n    buffer: 10\n").unwrap();
        assert_eq!(c.outputs_config().webhook.unwrap().actions, vec!["rate-limit".to_string(), "block".to_string()]);
    }

    #[test]
    fn webhook_actions_are_the_policys() {
        for name in portcullis_outputs::ACTIONS {
            let a: portcullis_policy::Action = serde_yaml_ng::from_str(name).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(a.name(), name);
        }
    }

    #[test]
    fn bad_outputs_name_the_key_and_why() {
        let cases = [
            ("outputs:\n  eve-log:\n    filetype: kafka\n", "line 3", "kafka"),
            ("outputs:\n  eve-log:\n    filetype: redis\n    redis:\n      mode: xadd\n", "outputs.eve-log.redis.mode", "xadd"),
            ("outputs:\n  eve-log:\n    filetype: redis\n    redis:\n      port: 0\n", "outputs.eve-log.redis.port", "1 to 65535"),
            ("outputs:\n  eve-log:\n    filetype: redis\n    redis:\n      port: 70000\n", "line 5", "70000"),
            ("outputs:\n  eve-log:\n    filetype: redis\n    redis:\n      key: \"\"\n", "outputs.eve-log.redis.key", "empty"),
            ("outputs:\n  eve-log:\n    filetype: redis\n    redis:\n      sever: x\n", "line 5", "sever"),
            ("outputs:\n  eve-log:\n    redis:\n      key: x\n", "outputs.eve-log.redis", "not redis"),
            ("outputs:\n  eve-log:\n    filetype: redis\n    buffer: 0\n", "outputs.eve-log.buffer", "at least 1"),
            ("outputs:\n  eve-log:\n    filetype: syslog\n    facility: local9\n", "outputs.eve-log.facility", "local9"),
            ("outputs:\n  eve-log:\n    filetype: syslog\n    level: Loud\n", "outputs.eve-log.level", "Loud"),
            ("outputs:\n  eve-log:\n    filetype: syslog\n    identity: my ids\n", "outputs.eve-log.identity", "no spaces"),
            ("outputs:\n  eve-log:\n    filetype: unix_dgram\n    filename: \"-\"\n", "outputs.eve-log.filename", "listening socket"),
            ("outputs:\n  webhook:\n    enabled: yes\n", "outputs.webhook.url", "needs a URL"),
            ("outputs:\n  webhook:\n    enabled: yes\n    url: https://hooks.example/x\n", "outputs.webhook.url", "https is not supported"),
            ("outputs:\n  webhook:\n    enabled: yes\n    url: http://relay/\n    actions: [block, nuke]\n", "outputs.webhook.actions", "`nuke`"),
            ("outputs:\n  webhook:\n    enabled: yes\n    url: http://relay/\n    actions: []\n", "outputs.webhook.actions", "names no action"),
            ("outputs:\n  webhook:\n    enabled: yes\n    url: http://relay/\n    timeout: 0\n", "outputs.webhook.timeout", "at least 1 second"),
            ("outputs:\n  webhook:\n    enabled: yes\n    url: http://relay/\n    buffer: 0\n", "outputs.webhook.buffer", "at least 1"),
            ("outputs:\n  webhook:\n    enabled: maybe\n", "line 3", "not yes or no"),
        ];
        let mut wrong = Vec::new();
        for (text, key, reason) in cases {
            match parse(text) {
                Ok(_) => wrong.push(format!("{text}=> accepted")),
                Err(e) => {
                    let e = e.to_string();
                    if !(e.contains("test.yaml") && e.contains(key) && e.contains(reason)) {
                        wrong.push(format!("{text}=> {e}"));
                    }
                }
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn bad_policies_are_refused_with_line_and_reason() {
        let cases = [
            ("policy:\n  playbook:\n    - when: {any-rule: yes}\n      action: obliterate\n", "line 4", "obliterate"),
            ("policy:\n  playbook:\n    - when: {any-rule: yes}\n      action: block\n      duration: 0s\n", "line 5", "zero"),
            ("policy:\n  playbook:\n    - when: {any-rule: yes}\n      action: block\n      duration: 0\n", "line 5", "zero"),
            ("policy:\n  allowlist:\n    - 10.0.0.0/8\n    - 10.0.0.300\n", "line 4", "10.0.0.300"),
            ("policy:\n  escalation: [10m, 0h]\n", "line 2", "zero"),
            ("policy:\n  mode: yolo\n", "line 2", "yolo"),
            ("policy:\n  playbook:\n    - when: {any-rule: yes}\n      action: block\n    - when: {ml-class: [DDoS]}\n      action: rate-limit\n      rate-limit: flood\n", "line 5", "no rate-limit profile `flood`"),
            ("policy:\n  playbook:\n    - when: {}\n      action: block\n", "line 3", "at least one of"),
            ("policy:\n  playbook:\n    - when: {sid: [1], count: 3}\n      action: block\n", "line 3", "aggregate"),
            ("policy:\n  rate-limits:\n    flood: {packets: 0}\n", "line 3", "rate of 0"),
            ("policy:\n  playbook:\n    - when: {ml-class: [DDoS]}\n      action: drop\n", "line 3", "rule-action: drop"),
        ];
        let mut wrong = Vec::new();
        for (text, line, reason) in cases {
            let e = parse(text).unwrap_err().to_string();
            if !(e.contains("test.yaml") && e.contains(line) && e.contains(reason)) {
                wrong.push(format!("{text}=> {e}"));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }
}
