//! `portcullis run` (the daemon), the commands that talk to it over its control socket
//! (`block`, `unblock`, `blocked`, `pending`, `approve`, `deny`), and those that read what it
//! leaves behind (`decisions`, from the decision log; `nft status`/`nft flush`, on the
//! kernel's table).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use portcullis::control::{self, ControlServer};
use portcullis::live::{run_live_plain, LiveOptions, LiveSummary};
use portcullis::metrics::MetricsServer;
use portcullis_config::{Config, EventType, DEFAULT_CONTROL_SOCKET};
use portcullis_dataplane::live::{CaptureKind, Topology};
use serde_json::json;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Configuration file: interfaces (`capture`), backends (`af-xdp`, `af-packet`, `pcap`),
    /// rules, outputs.
    #[arg(short, long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Tap these interfaces (repeatable) instead of the config's `capture.interfaces`.
    #[arg(long = "iface", value_name = "IF", conflicts_with = "inline")]
    ifaces: Vec<String>,
    /// Bridge these two interfaces (inline IPS) instead of the config's `capture`.
    #[arg(long, value_name = "IF_A,IF_B", value_delimiter = ',')]
    inline: Option<Vec<String>>,
    /// Capture backend [default: the config's capture.method, else the first of af-xdp,
    /// af-packet, pcap that works].
    #[arg(long, value_name = "afxdp|afpacket|pcap")]
    capture: Option<String>,
    /// Rule file or directory, in addition to the config's rule-files (repeatable).
    #[arg(long = "rules", value_name = "FILE|DIR")]
    rules: Vec<PathBuf>,
    /// EVE output file, `-` for stdout [default: the config's outputs.eve-log, whatever its
    /// filetype]; replaces the eve-log output (a socket, syslog, Redis) with this file.
    #[arg(long, value_name = "FILE")]
    eve: Option<PathBuf>,
    /// Score flows with this model [default: the config's ml.model, else the bundled one].
    #[arg(long, value_name = "DIR", conflicts_with = "no_ml")]
    model: Option<PathBuf>,
    /// Do not score flows.
    #[arg(long)]
    no_ml: bool,
    /// Control socket [default: the config's control.socket, else /run/portcullis/control.sock].
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// At exit, print the summary as one JSON object on stdout instead of text on stderr.
    #[arg(long)]
    summary_json: bool,
    /// Directory of the decision log [default: the config's policy.state-dir, else
    /// /var/lib/portcullis].
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Do not touch nftables: decisions are logged (and blocks still reach the XDP map).
    #[arg(long)]
    no_nft: bool,
    /// Serve Prometheus metrics (`GET /metrics`) on this address [default: the config's
    /// metrics.listen; none when unset].
    #[arg(long, value_name = "ADDR:PORT")]
    metrics: Option<std::net::SocketAddr>,
}

#[derive(Debug, Args)]
pub struct DecisionIdArgs {
    /// The decision's number (`portcullis pending` lists them).
    id: u64,
    #[command(flatten)]
    socket: SocketArgs,
}

#[derive(Debug, Args)]
pub struct DecisionsArgs {
    /// Only decisions from this long ago on (`30m`, `24h`, `7d`).
    #[arg(long, value_name = "DURATION")]
    since: Option<String>,
    /// Only decisions about addresses in this network (`192.0.2.7`, `10.0.0.0/8`).
    #[arg(long, value_name = "ADDR|NET")]
    addr: Option<String>,
    /// Only this action (alert, drop, rate-limit, block, quarantine).
    #[arg(long, value_name = "ACTION")]
    action: Option<String>,
    /// At most this many (the newest).
    #[arg(long, default_value_t = 100)]
    limit: usize,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
    /// Directory of the decision log [default: the config's policy.state-dir, else
    /// /var/lib/portcullis].
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    #[arg(short, long, value_name = "FILE")]
    config: Option<PathBuf>,
}

#[derive(Debug, clap::Subcommand)]
pub enum NftCommand {
    /// What the kernel holds in table inet portcullis: elements with their time left, and
    /// the named counters.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Delete table inet portcullis (and nothing else). A running daemon's enforcement
    /// stops until it is restarted.
    Flush,
}

#[derive(Debug, clap::Subcommand)]
pub enum ModelCommand {
    /// Load the model in DIR and make it active; the model it replaces is kept for
    /// `portcullis model rollback`. With --shadow, score with it beside the active model
    /// instead (never alerting) and compare their verdicts in the console.
    Swap {
        /// The model's directory (its model.yaml and ONNX files).
        dir: PathBuf,
        #[arg(long)]
        shadow: bool,
        #[command(flatten)]
        socket: SocketArgs,
    },
    /// Make the shadow model active.
    Promote {
        #[command(flatten)]
        socket: SocketArgs,
    },
    /// Go back to the model the last swap or promotion replaced.
    Rollback {
        #[command(flatten)]
        socket: SocketArgs,
    },
}

/// `portcullis model swap|promote|rollback`.
pub fn model(c: ModelCommand) -> anyhow::Result<ExitCode> {
    let (req, socket) = match c {
        ModelCommand::Swap { dir, shadow, socket } => {
            // The daemon may run elsewhere in the filesystem: give it an absolute path.
            let dir = std::fs::canonicalize(&dir).with_context(|| format!("{}", dir.display()))?;
            (json!({ "cmd": "swap-model", "dir": dir, "shadow": shadow }), socket)
        }
        ModelCommand::Promote { socket } => (json!({ "cmd": "promote-shadow" }), socket),
        ModelCommand::Rollback { socket } => (json!({ "cmd": "rollback-model" }), socket),
    };
    let r = send_within(&socket, req, Duration::from_secs(120))?;
    println!("{}", r["message"].as_str().unwrap_or("done"));
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct SocketArgs {
    /// The daemon's control socket [default: the config's control.socket, else
    /// /run/portcullis/control.sock].
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Configuration file to read control.socket from.
    #[arg(short, long, value_name = "FILE")]
    config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BlockArgs {
    /// IPv4 or IPv6 source address to drop.
    addr: String,
    /// For how long: `30s`, `10m`, `2h`, `1d` [default: the first step of policy.escalation,
    /// 10m]. Every block expires: the kernel removes it even if Portcullis is gone.
    #[arg(long = "for", value_name = "DURATION")]
    duration: Option<String>,
    /// Quarantine instead: all traffic from and to the host except with allowlisted networks.
    #[arg(long)]
    quarantine: bool,
    #[command(flatten)]
    socket: SocketArgs,
}

#[derive(Debug, Args)]
pub struct UnblockArgs {
    /// The address to remove from the block map.
    addr: String,
    #[command(flatten)]
    socket: SocketArgs,
}

#[derive(Debug, Args)]
pub struct ConsoleArgs {
    /// Seconds between snapshots.
    #[arg(long, value_name = "SECS", default_value_t = 1.0)]
    refresh: f64,
    #[command(flatten)]
    socket: SocketArgs,
}

/// The console's link to a running daemon: one control-socket connection per request, with
/// a short timeout so a hung daemon cannot freeze the screen.
#[derive(Debug)]
struct SocketLink {
    path: PathBuf,
}

/// How long the console waits for one reply.
const CONSOLE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long it waits for a rule reload or a model change, on another thread.
const SLOW_REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

impl portcullis_tui::Link for SocketLink {
    fn snapshot(&mut self) -> Result<portcullis_api::Snapshot, String> {
        let r = control::request_within(&self.path, &json!({ "cmd": "snapshot", "v": portcullis_api::PROTOCOL_VERSION }), CONSOLE_TIMEOUT)
            .map_err(|e| e.to_string())?;
        if r["ok"] != true {
            return Err(r["error"].as_str().unwrap_or("the daemon refused the snapshot").to_string());
        }
        serde_json::from_value(r["snapshot"].clone()).map_err(|e| format!("the daemon's snapshot does not parse: {e}"))
    }

    fn send(&mut self, request: &portcullis_api::Request) -> portcullis_tui::Reply {
        use portcullis_api::Request;
        use portcullis_tui::Reply;
        let req: serde_json::Value = match serde_json::from_str(&request.to_line()) {
            Ok(req) => req,
            Err(e) => return Reply::ready(Err(e.to_string())),
        };
        match request {
            // Compiling a large ruleset or loading a model takes seconds: asked from a thread of
            // its own (on a connection of its own), with a timeout long enough not to report a
            // reload that then succeeds as failed, while the console goes on drawing.
            Request::ReloadRules | Request::SwapModel { .. } | Request::RollbackModel | Request::PromoteShadow => {
                let path = self.path.clone();
                Reply::spawn(move || control::request_within(&path, &req, SLOW_REQUEST_TIMEOUT).map_err(|e| e.to_string()))
            }
            _ => Reply::ready(control::request_within(&self.path, &req, CONSOLE_TIMEOUT).map_err(|e| e.to_string())),
        }
    }
}

/// `portcullis reload`: the daemon reloads its rule files.
pub fn reload(a: SocketArgs) -> anyhow::Result<ExitCode> {
    // Compiling a large ruleset takes a while: wait longer than for other requests.
    let r = send_within(&a, json!({ "cmd": "reload-rules" }), Duration::from_secs(300))?;
    println!("rules reloaded: {} loaded, {} failed (generation {}, {:.1} s)", r["loaded"], r["failed"], r["generation"], r["secs"].as_f64().unwrap_or(0.0));
    for e in r["errors"].as_array().into_iter().flatten() {
        println!("  {}", e.as_str().unwrap_or(""));
    }
    Ok(ExitCode::SUCCESS)
}

/// `portcullis console`: the live console on a running daemon's control socket.
pub fn console(a: ConsoleArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(a.refresh.is_finite() && (0.1..=60.0).contains(&a.refresh), "--refresh takes seconds from 0.1 to 60");
    let cfg = crate::load_config(a.socket.config.as_ref())?;
    let path = socket_path(a.socket.socket.as_ref(), &cfg);
    // Say plainly why the console cannot start rather than drawing a screen of retries.
    let hello = control::request_within(&path, &json!({ "cmd": "hello" }), CONSOLE_TIMEOUT)?;
    anyhow::ensure!(hello["ok"] == true, "{}", hello["error"].as_str().unwrap_or("the daemon refused hello"));
    let mut link = SocketLink { path };
    portcullis_tui::run(&mut link, Duration::from_secs_f64(a.refresh)).context("console")?;
    Ok(ExitCode::SUCCESS)
}

fn socket_path(explicit: Option<&PathBuf>, cfg: &Config) -> PathBuf {
    explicit.cloned().or_else(|| cfg.control.socket.clone()).unwrap_or_else(|| PathBuf::from(DEFAULT_CONTROL_SOCKET))
}

pub fn run(a: RunArgs) -> anyhow::Result<ExitCode> {
    let cfg = crate::load_config(a.config.as_ref())?;
    let topology = match (&a.inline, a.ifaces.is_empty()) {
        (Some(p), _) if p.len() != 2 => anyhow::bail!("--inline takes two interfaces, IF_A,IF_B"),
        (Some(p), _) => Topology::Inline(p[0].clone(), p[1].clone()),
        (None, false) => Topology::Tap(a.ifaces.clone()),
        (None, true) => cfg.topology().context("no interfaces: give --iface IF or --inline IF_A,IF_B, or set capture.interfaces or capture.inline in the config")?,
    };
    if let Topology::Inline(x, y) = &topology {
        anyhow::ensure!(x != y, "--inline needs two different interfaces");
    }
    let mut live_cfg = cfg.live_config();
    if let Some(c) = &a.capture {
        live_cfg.capture = match c.as_str() {
            "auto" => None,
            other => Some(CaptureKind::parse(other).with_context(|| format!("--capture {other}: use afxdp, afpacket, pcap or auto"))?),
        };
    }
    // A TPACKET_V3 block that is not full reaches the worker only after the block timeout:
    // tapping, 10 ms of delay is harmless; inline, it is added to every hop of light
    // traffic, so the bridge's default is 1 ms unless the config sets one.
    if topology.is_inline() && cfg.af_packet.block_timeout.is_none() {
        live_cfg.afpacket.block_timeout_ms = 1;
    }
    let rule_files: Vec<PathBuf> = cfg.rule_paths().into_iter().chain(a.rules.iter().cloned()).collect();
    let (engine, rules_info) = if rule_files.is_empty() {
        (None, None)
    } else {
        let (e, info, origins) = crate::load_engine_info(&cfg, &rule_files, false)?;
        (Some(Arc::new(e)), Some((info, origins)))
    };
    // A reload reads the same files again with the config the daemon started with.
    let loader: Arc<portcullis::reload::RuleLoader<portcullis::inspect::Detect>> = {
        let (cfg, files) = (cfg.clone(), rule_files.clone());
        Arc::new(move || {
            let (engine, info, origins) = crate::load_engine_info(&cfg, &files, true).map_err(|e| format!("{e:#}"))?;
            if info.loaded == 0 {
                return Err(format!("no rule loaded from {} ({} error(s))", files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", "), info.failed));
            }
            Ok(portcullis::reload::Loaded { engine, info, origins })
        })
    };
    let model = crate::model_dir(a.no_ml, a.model.as_ref(), a.config.as_ref(), &cfg)?;
    let eve_cfg = &cfg.outputs.eve_log;
    let eve = if !eve_cfg.enabled { None } else { Some(a.eve.clone().unwrap_or_else(|| eve_cfg.filename.clone())) };
    let mut opts = LiveOptions::new(topology.clone());
    opts.capture = live_cfg;
    opts.batch_size = cfg.threading.batch_size.unwrap_or(256);
    opts.flow = cfg.flow_config();
    opts.decoder = cfg.decoder_config();
    opts.eve = eve;
    let mut outputs = cfg.outputs_config();
    if let (Some(path), true) = (&a.eve, eve_cfg.enabled) {
        // --eve takes the place of whatever eve-log names (a file, a socket, Redis).
        outputs.eve = vec![portcullis_outputs::SinkConfig::File { path: path.clone() }];
    }
    opts.outputs = Some(outputs);
    opts.log_flows = eve_cfg.types.contains(&EventType::Flow);
    opts.log_stats = eve_cfg.types.contains(&EventType::Stats);
    opts.log_alerts = eve_cfg.types.contains(&EventType::Alert);
    opts.log_drops = eve_cfg.types.contains(&EventType::Drop);
    opts.model = model;
    opts.ml_alert_limit = crate::alert_limit(&cfg);
    opts.fail_mode = cfg.capture.fail_mode.unwrap_or_default();
    opts.backlog_limit = cfg.capture.backlog_limit.unwrap_or(opts.backlog_limit);
    opts.stats_interval = Duration::from_secs(u64::from(cfg.stats.interval.unwrap_or(8)));
    opts.allowlist = cfg.allowlist();

    let state = portcullis::policy::state_dir(a.state_dir.as_ref(), &cfg.policy);
    let policy = portcullis::policy::start(&cfg.policy, cfg.policy_allowlist(), &state, !a.no_nft).context("cannot start the policy")?;
    for n in &policy.notes {
        eprintln!("{n}");
    }
    if !topology.is_inline() && cfg.policy.playbook.iter().any(|e| e.action == portcullis_policy::Action::Drop) {
        eprintln!("note: policy: tapping, nothing is dropped inline; `drop` entries log the rules' drops as alerts (block, rate-limit and quarantine still act in nftables)");
    }
    opts.policy = Some(policy.handle.clone());

    // SIGINT and SIGTERM set the flag; workers see it within one poll timeout, flush their
    // flows, and the capture (XDP program included) is torn down on the way out. A second
    // signal while shutting down exits at once.
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(sig, 130, stop.clone()).context("cannot install signal handler")?;
        signal_hook::flag::register(sig, stop.clone()).context("cannot install signal handler")?;
    }
    // SIGHUP reopens the EVE files (logrotate's postrotate), as Suricata's does.
    // It also reloads the rules, as `reload-rules` does.
    let reopen = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, reopen.clone()).context("cannot install the SIGHUP handler")?;
    opts.reopen = Some(reopen);
    let hup_rules = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, hup_rules.clone()).context("cannot install the SIGHUP handler")?;
    let mut hup_thread: Option<std::thread::JoinHandle<()>> = None;
    let stop_for_hup = stop.clone();
    let socket = socket_path(a.socket.as_ref(), &cfg);
    let mut server: Option<ControlServer> = None;
    let mut metrics: Option<MetricsServer> = None;
    let metrics_addr = a.metrics.or(cfg.metrics.listen);
    let mut socket_error: Option<String> = None;
    let stop_for_ready = stop.clone();
    let on_ready = |control: &portcullis::live::Control, started: &portcullis::live::Started<'_>| {
        for n in started.notes {
            eprintln!("note: {n}");
        }
        for p in started.ports {
            eprintln!("capturing on {p}");
        }
        if let Some((info, origins)) = rules_info {
            control.telemetry.set_rules(info);
            control.telemetry.set_rule_origins(origins);
        }
        if let Some(reload) = control.reload.clone() {
            let (flag, stop) = (hup_rules.clone(), stop_for_hup);
            hup_thread = std::thread::Builder::new()
                .name("sighup-rules".into())
                .spawn(move || {
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        if flag.swap(false, std::sync::atomic::Ordering::Relaxed) {
                            eprintln!("SIGHUP: reloading the rules");
                            let _ = (reload.0)();
                        }
                        std::thread::sleep(Duration::from_millis(200));
                    }
                })
                .ok();
        }
        match ControlServer::start(&socket, control.clone(), stop_for_ready) {
            Ok(s) => {
                eprintln!("control socket: {}", s.path().display());
                server = Some(s);
            }
            Err(e) => {
                eprintln!("warning: control socket {} not available ({e}); `portcullis block` cannot reach this daemon", socket.display());
                socket_error = Some(e.to_string());
            }
        }
        if let Some(addr) = metrics_addr {
            match MetricsServer::start(addr, control.clone()) {
                Ok(m) => {
                    eprintln!("metrics: http://{}/metrics", m.addr());
                    metrics = Some(m);
                }
                Err(e) => eprintln!("warning: metrics endpoint {addr} not available ({e}); the daemon runs without it"),
            }
        }
        eprintln!("{} mode, {} worker(s); stop with Ctrl-C or SIGTERM", if topology.is_inline() { "inline" } else { "tap" }, started.ports.len());
    };
    let s = match engine {
        Some(e) => portcullis::live::run_live_reloadable(&opts, Some(e), Some(loader), stop, on_ready),
        None => run_live_plain(&opts, stop, on_ready),
    }
    .context("portcullis run failed")?;
    drop(server);
    drop(metrics);
    if let Some(h) = hup_thread {
        let _ = h.join();
    }
    drop(opts);
    // The enforcer finishes what was queued; nftables elements stay and expire by themselves.
    drop(policy);
    if a.summary_json {
        println!("{}", summary_json(&s));
    } else {
        print_summary(&s);
    }
    Ok(ExitCode::SUCCESS)
}

fn summary_json(s: &LiveSummary) -> serde_json::Value {
    let c = &s.capture;
    let p = &c.port;
    json!({
        "capture": {
            "kind": s.kind,
            "ports": s.ports,
            "notes": s.notes,
            "packets": p.packets,
            "bytes": p.bytes,
            "kernel_drops": p.rx_dropped + p.rx_ring_full,
            "rx_dropped": p.rx_dropped,
            "rx_ring_full": p.rx_ring_full,
            "fill_ring_empty": p.fill_ring_empty,
            "forwarded": p.forwarded,
            "dropped": p.dropped,
            "tx_failed": p.tx_failed,
            "overload_forwarded": c.overload_forwarded,
            "overload_dropped": c.overload_dropped,
            "events_lost": c.events_lost,
            "xdp": c.xdp.as_ref().map(|x| json!({ "blocked": x.blocked, "redirected": x.redirected, "passed": x.passed, "malformed": x.malformed })),
        },
        "packets": p.packets,
        "decoded": s.decoder.pkts,
        "invalid": s.decoder.invalid,
        "flows": s.flows,
        "alerts": s.detect.map(|d| d.alert),
        "blocked": s.ips.map(|i| i.blocked),
        "events_written": s.events_written,
        "elapsed_secs": s.elapsed.as_secs_f64(),
    })
}

fn print_summary(s: &LiveSummary) {
    let c = &s.capture;
    let p = &c.port;
    eprintln!("stopped after {:.1} s ({})", s.elapsed.as_secs_f64(), s.kind);
    eprintln!("  packets    {:>12}  received, {} bytes; kernel drops {} (ring full {}, other {}), fill ring empty {}", p.packets, p.bytes, p.rx_dropped + p.rx_ring_full, p.rx_ring_full, p.rx_dropped, p.fill_ring_empty);
    eprintln!("  flows      {:>12}", s.flows);
    if c.inline {
        eprintln!("  inline     {:>12}  forwarded, {} dropped by verdicts, {} failed to send", p.forwarded, p.dropped, p.tx_failed);
        if c.events_lost > 0 {
            eprintln!("  events lost {:>11}  batches of events dropped because EVE output was behind", c.events_lost);
        }
        if c.overload_forwarded + c.overload_dropped > 0 {
            eprintln!("  overload   {:>12}  forwarded uninspected (fail-open), {} dropped uninspected (fail-closed)", c.overload_forwarded, c.overload_dropped);
        }
    }
    if let Some(x) = &c.xdp {
        eprintln!("  xdp        {:>12}  dropped by the block map, {} redirected, {} passed", x.blocked, x.redirected, x.passed);
    }
    if let Some(d) = s.detect {
        eprintln!("  alerts     {:>12}  ({} suppressed)", d.alert, d.alerts_suppressed);
    }
    if s.events_written > 0 {
        eprintln!("  EVE events {:>12}", s.events_written);
    }
}

fn send(args: &SocketArgs, req: serde_json::Value) -> anyhow::Result<serde_json::Value> {
    send_within(args, req, Duration::from_secs(10))
}

/// As [`send`], waiting up to `timeout` for the reply (reloads and model loads take longer).
fn send_within(args: &SocketArgs, req: serde_json::Value, timeout: Duration) -> anyhow::Result<serde_json::Value> {
    let cfg = crate::load_config(args.config.as_ref())?;
    let path = socket_path(args.socket.as_ref(), &cfg);
    let reply = control::request_within(&path, &req, timeout)?;
    if reply["ok"] != true {
        anyhow::bail!("{}", reply["error"].as_str().unwrap_or("the daemon refused the request"));
    }
    Ok(reply)
}

pub fn block(a: BlockArgs) -> anyhow::Result<ExitCode> {
    let secs = match &a.duration {
        Some(d) => Some(control::parse_duration(d).map_err(anyhow::Error::msg)?.as_secs()),
        None => None,
    };
    let action = if a.quarantine { "quarantine" } else { "block" };
    let r = send(&a.socket, json!({ "cmd": "block", "addr": a.addr, "for_secs": secs, "action": action, "by": operator() }))?;
    let how = if r["nft"] == false { " (XDP map only: nftables is not enforcing)" } else { "" };
    eprintln!("{} {} for {} s, decision {}{how}", if a.quarantine { "quarantined" } else { "blocked" }, r["addr"].as_str().unwrap_or(&a.addr), r["for_secs"], r["decision"]);
    Ok(ExitCode::SUCCESS)
}

pub fn unblock(a: UnblockArgs) -> anyhow::Result<ExitCode> {
    let r = send(&a.socket, json!({ "cmd": "unblock", "addr": a.addr, "by": operator() }))?;
    if r["was_blocked"] == true {
        eprintln!("unblocked {}", a.addr);
    } else {
        eprintln!("{} was not blocked", a.addr);
    }
    Ok(ExitCode::SUCCESS)
}

pub fn blocked(a: SocketArgs) -> anyhow::Result<ExitCode> {
    let r = send(&a, json!({ "cmd": "blocked" }))?;
    let list = r["blocked"].as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        eprintln!("no address is blocked");
    }
    for e in list {
        let left = e["expires_in_secs"].as_u64().map_or("until unblocked".to_string(), |s| format!("{s} s left"));
        let what = match (e["action"].as_str(), e["decision"].as_u64()) {
            (Some(a), Some(id)) if e["dry_run"] == true => format!("  {a}, decision {id} (dry-run: not enforced)"),
            (Some(a), Some(id)) => format!("  {a}, decision {id}"),
            _ => String::new(),
        };
        println!("{:<40} {:>12} hits {:>14} bytes  {left}{what}", e["addr"].as_str().unwrap_or("?"), e["hits"], e["bytes"]);
    }
    Ok(ExitCode::SUCCESS)
}

/// Who is asking, for the decision log: the user behind sudo, else the login name.
fn operator() -> String {
    std::env::var("SUDO_USER").or_else(|_| std::env::var("USER")).unwrap_or_else(|_| format!("uid {}", rustix::process::getuid().as_raw()))
}

pub fn pending(a: SocketArgs) -> anyhow::Result<ExitCode> {
    let r = send(&a, json!({ "cmd": "pending" }))?;
    let list = r["pending"].as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        eprintln!("no decision is waiting for approval");
    }
    for d in list {
        println!("{}", decision_line(&d));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn decide(a: DecisionIdArgs, approve: bool) -> anyhow::Result<ExitCode> {
    let r = send(&a.socket, json!({ "cmd": if approve { "approve" } else { "deny" }, "id": a.id, "by": operator() }))?;
    eprintln!("{}", decision_line(&r["decision"]));
    Ok(ExitCode::SUCCESS)
}

/// One decision as a line of text: `#12 2026-12-06 20:31:02 block 203.0.113.9 10m applied (scan: ...)`.
fn decision_line(d: &serde_json::Value) -> String {
    let at = d["at"].as_i64().map(|t| portcullis_eve::format_timestamp(portcullis_common::Timestamp(t))).unwrap_or_default();
    let dur = d["duration_secs"].as_u64().map(|s| portcullis_policy::Secs(s).to_string()).unwrap_or_else(|| "-".into());
    let ev = &d["evidence"];
    let why = if let Some(m) = ev["model"].as_object() {
        format!("model {} {:.2}", m["class"].as_str().unwrap_or("?"), m["score"].as_f64().unwrap_or(0.0))
    } else if let Some(r) = ev["rules"].as_array().and_then(|r| r.first()) {
        format!("rule {}", r.as_str().unwrap_or("?"))
    } else if let Some(o) = ev["operator"].as_str() {
        format!("operator {o}")
    } else {
        String::new()
    };
    let count = ev["count"].as_u64().map(|c| format!(", {c} matches")).unwrap_or_default();
    let extra = [d["by"].as_str().map(|b| format!("by {b}")), d["note"].as_str().map(String::from), d["enforce_latency_us"].as_u64().map(|u| format!("{u} µs to nftables"))]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("; ");
    format!(
        "#{:<6} {at:<32} {:<10} {:<39} {:>5} {:<17} {}: {why}{count}{}",
        d["id"],
        d["action"].as_str().unwrap_or("?"),
        d["target"].as_str().unwrap_or("?"),
        dur,
        d["state"].as_str().unwrap_or("?"),
        d["trigger"].as_str().unwrap_or("?"),
        if extra.is_empty() { String::new() } else { format!(" ({extra})") }
    )
}

pub fn decisions(a: DecisionsArgs) -> anyhow::Result<ExitCode> {
    let cfg = crate::load_config(a.config.as_ref())?;
    let dir = portcullis::policy::state_dir(a.state_dir.as_ref(), &cfg.policy);
    let since = match &a.since {
        Some(s) => Some(portcullis_policy::wall_now() - (portcullis_policy::Secs::parse(s).map_err(anyhow::Error::msg).context("--since")?.0 as i64) * 1_000_000),
        None => None,
    };
    let addr = match &a.addr {
        Some(s) => Some(s.parse::<portcullis_policy::Net>().map_err(anyhow::Error::msg).context("--addr")?),
        None => None,
    };
    let action = match &a.action {
        Some(s) => Some(portcullis_policy::Action::parse(s).with_context(|| format!("--action {s}: use alert, drop, rate-limit, block or quarantine"))?),
        None => None,
    };
    let Some(log) = portcullis_policy::DecisionLog::open_existing(&dir)? else {
        eprintln!("no decision log in {} (no daemon has run with this state directory)", dir.display());
        return Ok(ExitCode::SUCCESS);
    };
    let list = log.query(since, addr, action, a.limit.max(1))?;
    for d in &list {
        let v = serde_json::to_value(d)?;
        if a.json {
            println!("{v}");
        } else {
            println!("{}", decision_line(&v));
        }
    }
    if !a.json {
        eprintln!("{} decision(s) from {}", list.len(), log.path().display());
    }
    Ok(ExitCode::SUCCESS)
}

pub fn nft(c: NftCommand) -> anyhow::Result<ExitCode> {
    let mut nft = portcullis_policy::nft::Nft::open().context("nftables")?;
    match c {
        NftCommand::Flush => {
            if nft.flush().context("nft flush")? {
                eprintln!("deleted table inet portcullis");
            } else {
                eprintln!("table inet portcullis does not exist; nothing to do");
            }
        }
        NftCommand::Status { json } => {
            let s = nft.status().context("nft status")?;
            if json {
                println!("{}", json!({ "present": s.present, "elements": s.elements.iter().map(control::element_json).collect::<Vec<_>>(), "counters": s.counters }));
            } else if !s.present {
                eprintln!("table inet portcullis does not exist (no daemon has run here, or it was flushed)");
            } else {
                println!("table inet portcullis: {} element(s)", s.elements.len());
                for e in &s.elements {
                    let left = e.expires.map_or("no timeout".to_string(), |d| format!("expires in {} s", d.as_secs()));
                    println!("  {:<14} {:<40} {left}", e.set, e.addr.to_string());
                }
                for (name, packets, bytes) in &s.counters {
                    println!("  counter {name:<14} {packets:>12} packets {bytes:>14} bytes");
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
