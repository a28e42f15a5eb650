use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use portcullis::inspect::Detect;
use portcullis::ml::AlertLimit;
use portcullis::{run_replay, run_replay_with, ReplayOptions, ReplaySummary};
use portcullis_config::{Config, EventType, MlBackend};
use portcullis_inference::BackendChoice;

mod replay_console;
mod rules_cmd;
mod run_cmd;

/// Portcullis: an inline network IDS/IPS for Linux gateways.
#[derive(Debug, Parser)]
#[command(name = "portcullis", version, about, propagate_version = true)]
struct Cli {
    /// Where `replay` and `run` score flows: auto (the GPU when built with CUDA and a driver
    /// and device are present, else the CPU, saying why), cpu, tract, or cuda (an error
    /// without a GPU) [default: the config's ml.backend, else auto].
    #[arg(long, global = true, value_name = "auto|cpu|tract|cuda", value_parser = parse_backend)]
    backend: Option<BackendChoice>,
    #[command(subcommand)]
    command: Command,
}

fn parse_backend(s: &str) -> Result<BackendChoice, String> {
    s.parse().map_err(|e: portcullis_inference::InferenceError| e.to_string())
}

/// `--backend`, read by `model_dir` when a model is going to score flows.
static BACKEND_FLAG: std::sync::OnceLock<Option<BackendChoice>> = std::sync::OnceLock::new();

#[derive(Debug, Subcommand)]
enum Command {
    /// Replay capture files (pcap, pcapng, or directories of them) through the engine and
    /// write EVE JSON.
    Replay(ReplayArgs),
    /// Extract CICFlowMeter flows and features from capture files as CSV, with the improved
    /// CIC-IDS2017 dataset's columns.
    Features(FeaturesArgs),
    /// Check a configuration file and print the settings in effect.
    CheckConfig {
        /// The configuration file.
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Check rule files: what loads, what is skipped and why.
    #[command(subcommand)]
    Rules(rules_cmd::RulesCommand),
    /// Run the daemon: capture on the configured interfaces (tap) or bridge two of them
    /// (inline IPS) until SIGINT or SIGTERM.
    Run(run_cmd::RunArgs),
    /// Block (or quarantine) an address through the running daemon's policy: nftables and
    /// the XDP block map, for a duration, logged as a decision.
    Block(run_cmd::BlockArgs),
    /// Lift what the running daemon enforces on an address.
    Unblock(run_cmd::UnblockArgs),
    /// List what the running daemon enforces, with the XDP map's hit counters.
    Blocked(run_cmd::SocketArgs),
    /// List the decisions waiting for an operator's approval.
    Pending(run_cmd::SocketArgs),
    /// Approve a pending decision: it is enforced from now.
    Approve(run_cmd::DecisionIdArgs),
    /// Deny a pending decision: it is dropped, and logged as denied.
    Deny(run_cmd::DecisionIdArgs),
    /// Query the decision log.
    Decisions(run_cmd::DecisionsArgs),
    /// Reload the running daemon's rule files (as SIGHUP does): the new rules are built
    /// aside and swapped in between packets; if none load, the rules in force stay.
    Reload(run_cmd::SocketArgs),
    /// Swap the running daemon's model, run a candidate in shadow, promote it, roll back.
    #[command(subcommand)]
    Model(run_cmd::ModelCommand),
    /// The live console (a terminal UI) on the running daemon: traffic, flows, alerts,
    /// enforcement and scoring, with keys to unblock, approve and deny (`?` lists them).
    Console(run_cmd::ConsoleArgs),
    /// Portcullis's own nftables table: what is enforced, or remove it.
    #[command(subcommand)]
    Nft(run_cmd::NftCommand),
}

#[derive(Debug, Args)]
struct FeaturesArgs {
    /// Capture files or directories, read in the order given as one capture.
    #[arg(required = true, value_name = "CAPTURE")]
    captures: Vec<PathBuf>,
    /// CSV output file, `-` for stdout.
    #[arg(long, value_name = "FILE", default_value = "-")]
    csv: PathBuf,
}

#[derive(Debug, Args)]
struct ReplayArgs {
    /// Capture files or directories, read in the order given as one capture.
    #[arg(required = true, value_name = "CAPTURE")]
    captures: Vec<PathBuf>,
    /// Configuration file (defaults apply when omitted).
    #[arg(short, long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// EVE JSON output file, `-` for stdout [default: the config's outputs.eve-log.filename].
    #[arg(long, value_name = "FILE")]
    eve: Option<PathBuf>,
    /// Do not write EVE at all.
    #[arg(long, conflicts_with = "eve")]
    no_eve: bool,
    /// Worker threads owning the flow table [default: the config's threading.workers, else
    /// one per core]. Output is the same for every value.
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Packets per dispatch round [default: the config's threading.batch-size, else 256].
    #[arg(long, value_name = "N")]
    batch_size: Option<usize>,
    /// No progress bar even on a terminal.
    #[arg(long)]
    no_progress: bool,
    /// No summary at the end.
    #[arg(short, long)]
    quiet: bool,
    /// Print the summary as one JSON object on stdout instead of text on stderr.
    #[arg(long)]
    summary_json: bool,
    /// Rule file, or a directory of `*.rules` files, to load in addition to the config's
    /// rule-files (repeatable).
    #[arg(long = "rules", value_name = "FILE|DIR")]
    rules: Vec<PathBuf>,
    /// Act as an inline IPS would, as Suricata's --simulate-ips: packets a drop or reject rule
    /// matches (and the rest of their flow, when the rule drops the flow) are discarded,
    /// logged as `drop` events and counted in stats.ips.
    #[arg(long)]
    simulate_ips: bool,
    /// Score flows with this model (a directory holding model.yaml and its ONNX files)
    /// [default: the config's ml.model, else the newest bundled configs/models/cicids2017/*].
    #[arg(long, value_name = "DIR", conflicts_with = "no_ml")]
    model: Option<PathBuf>,
    /// Do not score flows (and do not compute their features), whatever the config says.
    #[arg(long)]
    no_ml: bool,
    /// Run the config's policy playbook over the alerts, in dry-run, and write its decisions
    /// as EVE `decision` events: what `portcullis run` would have blocked. Nothing is
    /// enforced.
    #[arg(long)]
    policy: bool,
    /// Show the live console (as `portcullis console` does for the daemon) while the capture
    /// replays at full speed, and keep it open on the final state until `q`; the summary is
    /// printed once it closes. EVE is written as usual. Needs a terminal on stdout.
    #[arg(long, conflicts_with = "summary_json")]
    console: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let _ = BACKEND_FLAG.set(cli.backend);
    let r = match cli.command {
        Command::Replay(a) => replay(a),
        Command::CheckConfig { config } => check_config(&config),
        Command::Features(a) => features(a),
        Command::Rules(c) => rules_cmd::run(c),
        Command::Run(a) => run_cmd::run(a),
        Command::Block(a) => run_cmd::block(a),
        Command::Unblock(a) => run_cmd::unblock(a),
        Command::Blocked(a) => run_cmd::blocked(a),
        Command::Pending(a) => run_cmd::pending(a),
        Command::Approve(a) => run_cmd::decide(a, true),
        Command::Deny(a) => run_cmd::decide(a, false),
        Command::Decisions(a) => run_cmd::decisions(a),
        Command::Nft(c) => run_cmd::nft(c),
        Command::Console(a) => run_cmd::console(a),
        Command::Reload(a) => run_cmd::reload(a),
        Command::Model(c) => run_cmd::model(c),
    };
    match r {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

pub(crate) fn load_config(path: Option<&PathBuf>) -> anyhow::Result<Config> {
    match path {
        Some(p) => Ok(Config::load(p)?),
        None => Ok(Config::default()),
    }
}

fn check_config(path: &Path) -> anyhow::Result<ExitCode> {
    let cfg = Config::load(path)?;
    let f = cfg.flow_config();
    println!("{}: ok", path.display());
    println!("  flow.memcap: {} bytes ({} flows)", f.memcap, f.max_flows());
    println!("  flow-timeouts: tcp {:?}, udp {:?}, icmp {:?}, default {:?}", f.timeouts.tcp, f.timeouts.udp, f.timeouts.icmp, f.timeouts.default);
    println!("  address groups: {}", cfg.vars.address_groups.keys().cloned().collect::<Vec<_>>().join(", "));
    println!("  rule files: {}", cfg.rule_files.len());
    if f.features {
        let every = if f.checkpoint_secs == 0 { "at flow end only".to_string() } else { format!("every {} s and at flow end", f.checkpoint_secs) };
        println!("  ml: flow features on ({} bytes per flow), exported {every}", f.flow_cost());
    } else {
        println!("  ml: off");
    }
    match cfg.app_config() {
        Some(a) => println!(
            "  app-layer: http, dns, tls, ssh; bodies {} / {} bytes (request / response), {} transactions per flow",
            a.http_request_body_limit, a.http_response_body_limit, a.max_txs
        ),
        None => println!("  app-layer: off (rules with app-layer keywords never match)"),
    }
    let live = cfg.live_config();
    let method = live.capture.map_or("auto".to_string(), |k| k.to_string());
    match cfg.topology() {
        Some(portcullis_dataplane::live::Topology::Inline(a, b)) => println!(
            "  capture: inline {a} <-> {b}, {method}, fail-mode {:?} above {} queued frames",
            cfg.capture.fail_mode.unwrap_or_default(),
            cfg.capture.backlog_limit.unwrap_or(1024)
        ),
        Some(portcullis_dataplane::live::Topology::Tap(ifs)) => println!("  capture: tap {}, {method}", ifs.join(", ")),
        None => println!("  capture: no interfaces (portcullis run needs --iface or --inline)"),
    }
    println!(
        "  af-xdp: UMEM {} x {} bytes per socket, rings rx {} tx {} fill {} comp {}, zero-copy {:?}",
        live.afxdp.umem_frames, live.afxdp.frame_size, live.afxdp.rx_ring, live.afxdp.tx_ring, live.afxdp.fill_ring, live.afxdp.comp_ring, live.afxdp.zero_copy
    );
    println!(
        "  control socket: {}; allowlist: {} entr{}",
        cfg.control.socket.as_deref().unwrap_or(Path::new(portcullis_config::DEFAULT_CONTROL_SOCKET)).display(),
        cfg.capture.allowlist.len(),
        if cfg.capture.allowlist.len() == 1 { "y" } else { "ies" }
    );
    let p = &cfg.policy;
    let ladder: Vec<String> = p.escalation.iter().map(ToString::to_string).collect();
    println!(
        "  policy: mode {}, {} playbook entr{}, {} rate-limit profile(s), escalation {}, approval needed for {}, allowlist {} configured{}{}",
        p.mode.name(),
        p.playbook.len(),
        if p.playbook.len() == 1 { "y" } else { "ies" },
        p.rate_limits.len(),
        ladder.join(" → "),
        if p.require_approval.is_empty() { "nothing".to_string() } else { p.require_approval.iter().map(|a| a.name()).collect::<Vec<_>>().join(", ") },
        cfg.policy_allowlist().entries().len(),
        if p.allow_own_addresses { " + this machine's addresses" } else { "" },
        if p.allow_ssh_sessions { " + SSH session peers" } else { "" },
    );
    println!("  decision log: {}", portcullis::policy::state_dir(None, p).join(portcullis_policy::log::FILE).display());
    Ok(ExitCode::SUCCESS)
}

fn features(a: FeaturesArgs) -> anyhow::Result<ExitCode> {
    use portcullis::features::{extract_flows, write_csv};
    let (flows, s) = extract_flows(&a.captures, Default::default(), Default::default())?;
    for e in &s.capture_errors {
        eprintln!("warning: {e}");
    }
    if a.csv.as_os_str() == "-" {
        write_csv(&flows, std::io::stdout().lock())?;
    } else {
        let f = std::fs::File::create(&a.csv).with_context(|| format!("cannot create {}", a.csv.display()))?;
        write_csv(&flows, std::io::BufWriter::new(f)).with_context(|| format!("cannot write {}", a.csv.display()))?;
    }
    eprintln!("{} file(s), {} frames, {} flows ({} one-packet flows not written)", s.files, s.frames, s.cic.flows, s.cic.short_flows);
    Ok(ExitCode::SUCCESS)
}

fn replay(a: ReplayArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        !a.console || std::io::stdout().is_terminal(),
        "--console draws the console on stdout, which is not a terminal: run it in a terminal, or without --console"
    );
    let cfg = load_config(a.config.as_ref())?;
    // The config's `rule-files`, then each `--rules` in order.
    let rule_files: Vec<PathBuf> = cfg.rule_paths().into_iter().chain(a.rules.iter().cloned()).collect();
    let console = a.console.then(portcullis::replay::ReplayConsole::new);
    let engine = match (rule_files.is_empty(), &console) {
        (true, _) => None,
        (false, None) => Some(Arc::new(load_engine(&cfg, &rule_files, a.quiet)?)),
        (false, Some(c)) => {
            // The console's rules pane, and the rule text shown on inspection.
            let (engine, info, origins) = load_engine_info(&cfg, &rule_files, a.quiet)?;
            c.telemetry.set_rules(info);
            c.telemetry.set_rule_origins(origins);
            Some(Arc::new(engine))
        }
    };
    let model = model_dir(a.no_ml, a.model.as_ref(), a.config.as_ref(), &cfg)?;
    let threads = a
        .threads
        .or(cfg.threading.workers.filter(|&w| w > 0))
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let eve_cfg = &cfg.outputs.eve_log;
    let eve = if a.no_eve || !eve_cfg.enabled { None } else { Some(a.eve.clone().unwrap_or_else(|| eve_cfg.filename.clone())) };
    anyhow::ensure!(
        !(a.console && eve.as_ref().is_some_and(|e| e.as_os_str() == "-")),
        "--console draws on stdout: write EVE to a file (--eve FILE), not to stdout"
    );
    let opts = ReplayOptions {
        inputs: a.captures.clone(),
        threads,
        batch_size: a.batch_size.or(cfg.threading.batch_size).unwrap_or(256),
        flow: cfg.flow_config(),
        decoder: cfg.decoder_config(),
        eve,
        log_flows: eve_cfg.types.contains(&EventType::Flow),
        log_stats: eve_cfg.types.contains(&EventType::Stats),
        log_alerts: eve_cfg.types.contains(&EventType::Alert),
        log_drops: eve_cfg.types.contains(&EventType::Drop),
        simulate_ips: a.simulate_ips,
        progress: !a.no_progress && !a.console && std::io::stderr().is_terminal(),
        model,
        ml_alert_limit: alert_limit(&cfg),
        policy: a.policy.then(|| (cfg.policy.clone(), cfg.policy_allowlist())),
        console,
    };
    let s = if a.console {
        let s = replay_console::run(opts, engine)?;
        for w in &s.warnings_held {
            eprintln!("{w}");
        }
        s
    } else {
        match engine {
            Some(e) => run_replay_with(&opts, Some(e)),
            None => run_replay(&opts),
        }
        .context("replay failed")?
    };
    if a.summary_json {
        println!("{}", summary_json(&s, threads));
    } else if !a.quiet {
        print_summary(&s, threads);
    }
    Ok(ExitCode::SUCCESS)
}

/// `ml.alert-limit` as the engine takes it.
pub(crate) fn alert_limit(cfg: &Config) -> Option<AlertLimit> {
    match cfg.ml.alert_limit {
        None => Some(AlertLimit::default()),
        Some(l) if l.count == 0 => None,
        Some(l) => Some(AlertLimit { count: l.count, seconds: l.seconds }),
    }
}

/// The model to score flows with: `--model`, else the config's `ml.model` (from the working
/// directory, then from the config file's directory), else the newest bundled one. `None`
/// with `--no-ml` or `ml.enabled: no`, and, said in one line, when no bundled model is found.
/// When there is a model, also chooses where it scores (`--backend`, else `ml.backend`).
pub(crate) fn model_dir(no_ml: bool, model: Option<&PathBuf>, config: Option<&PathBuf>, cfg: &Config) -> anyhow::Result<Option<PathBuf>> {
    let dir = find_model_dir(no_ml, model, config, cfg)?;
    if dir.is_some() {
        let choice = BACKEND_FLAG.get().copied().flatten().unwrap_or(match cfg.ml.backend {
            MlBackend::Auto => BackendChoice::Auto,
            MlBackend::Cpu => BackendChoice::Cpu,
            MlBackend::Tract => BackendChoice::Tract,
            MlBackend::Cuda => BackendChoice::Cuda,
        });
        portcullis::ml::select_backend(choice).context("cannot score on the GPU as asked (--backend cuda or ml.backend: cuda)")?;
    }
    Ok(dir)
}

fn find_model_dir(no_ml: bool, model: Option<&PathBuf>, config: Option<&PathBuf>, cfg: &Config) -> anyhow::Result<Option<PathBuf>> {
    if no_ml || (!cfg.ml.enabled && model.is_none()) {
        return Ok(None);
    }
    if let Some(m) = model {
        anyhow::ensure!(m.exists(), "--model {}: no such directory", m.display());
        return Ok(Some(m.clone()));
    }
    if let Some(m) = &cfg.ml.model {
        let beside_config = config.and_then(|c| c.parent()).map(|d| d.join(m));
        let found = std::iter::once(m.clone()).chain(beside_config).find(|p| p.exists());
        return found.map(Some).with_context(|| format!("ml.model {}: no such directory", m.display()));
    }
    let bundled = portcullis::ml::bundled_model_dir();
    if bundled.is_none() {
        eprintln!("note: no bundled model found (configs/models/cicids2017/*/model.yaml beside the executable or in the working directory); flows are not scored");
    }
    Ok(bundled)
}

/// Loads the rule files and compiles them. Rules that do not load or compile are counted
/// (and the most common reasons named) on stderr; they never stop the replay.
pub(crate) fn load_engine(cfg: &Config, files: &[PathBuf], quiet: bool) -> anyhow::Result<Detect> {
    Ok(load_engine_info(cfg, files, quiet)?.0)
}

/// Errors of a rule load the console keeps; the rest are counted.
const RULE_ERRORS_KEPT: usize = 50;

/// Loads and compiles the rules, with what the console shows of the load: `failed` and
/// `errors` are the files that could not be read and the rules that are broken (do not
/// parse, are invalid, or use a keyword nobody knows), each with file and line; rules
/// skipped for a keyword Portcullis does not implement are counted in the summary line only.
pub(crate) fn load_engine_info(cfg: &Config, files: &[PathBuf], quiet: bool) -> anyhow::Result<(Detect, portcullis_api::RulesInfo, portcullis::telemetry::RuleOrigins)> {
    let (report, _) = rules_cmd::load(cfg, files, None, None).context("cannot load rules")?;
    let origins = report.rules.iter().map(|r| ((r.gid, u64::from(r.sid)), (r.origin.file.clone(), r.origin.line))).collect();
    if !quiet {
        for e in &report.errors {
            eprintln!("warning: {e}");
        }
    }
    use portcullis_rules::SkipKind;
    let broken: Vec<String> = report
        .skipped
        .iter()
        .filter(|s| matches!(s.kind, SkipKind::Syntax | SkipKind::Invalid | SkipKind::Unknown))
        .map(ToString::to_string)
        .collect();
    let info = portcullis_api::RulesInfo {
        files: files.iter().map(|f| f.display().to_string()).collect(),
        loaded: 0,
        failed: (report.errors.len() + broken.len()) as u64,
        loaded_at: portcullis_eve::format_timestamp(portcullis_dataplane::live::now()),
        errors: report.errors.iter().cloned().chain(broken).take(RULE_ERRORS_KEPT).collect(),
        last_reload_refused: None,
    };
    let skipped = report.skipped_by_keyword();
    let nskipped = report.skipped.len();
    let nfiles = report.files;
    let (engine, warnings) = portcullis_detect::Engine::build(report.rules, &portcullis_detect::DetectConfig::default());
    if !quiet {
        let top: Vec<String> = skipped.iter().take(3).map(|(k, n)| format!("{k} {n}")).collect();
        let why = if top.is_empty() { String::new() } else { format!(" ({})", top.join(", ")) };
        eprintln!("rules: {} loaded from {nfiles} file(s), {nskipped} skipped{why}, {} not compiled", engine.len(), warnings.len());
    }
    let app = cfg.app_config();
    if app.is_none() && !quiet {
        eprintln!("note: app-layer.enabled is off: no protocol detection or parsing, so rules with app-layer keywords never match");
    }
    let info = portcullis_api::RulesInfo { loaded: engine.len() as u64, ..info };
    Ok((Detect::with_app_layer(engine, app), info, origins))
}

fn summary_json(s: &ReplaySummary, threads: usize) -> serde_json::Value {
    serde_json::json!({
        "files": s.files,
        "threads": threads,
        "packets": s.packets,
        "bytes": s.bytes,
        "flows": s.flows,
        "anomalies": s.anomalies,
        "invalid": s.decoder.invalid,
        "capture_errors": s.capture_errors.len(),
        "memcap_evictions": s.flow.memcap,
        "elapsed_secs": s.elapsed.as_secs_f64(),
        "packets_per_sec": s.packets_per_sec(),
        "events_written": s.events_written,
        "alerts": s.detect.map(|d| d.alert),
        "blocked": s.ips.map(|i| i.blocked),
        "app_layer": s.app_layer.as_ref().map(|a| serde_json::json!({ "flows": a.flows, "errors": a.errors, "anomalies": a.anomalies })),
        "policy": s.policy.as_ref().map(|p| serde_json::to_value(p).unwrap_or_default()),
        "ml": s.ml.as_ref().map(|m| serde_json::json!({
            "model": m.model,
            "version": m.version,
            "dir": m.dir,
            "flows_scored": m.flows_scored,
            "checkpoints_scored": m.checkpoints_scored,
            "alerts": m.alerts,
            "suppressed": m.suppressed,
            "score_calls": m.score_calls,
            "latency_p50_us": m.latency_p50_us,
            "latency_p99_us": m.latency_p99_us,
            "failed": m.failed,
        })),
    })
}

fn print_summary(s: &ReplaySummary, threads: usize) {
    let secs = s.elapsed.as_secs_f64();
    eprintln!("replayed {} file(s) with {} worker(s) in {:.3} s", s.files, threads, secs);
    eprintln!("  packets    {:>12}  ({:.0} packets/s)", s.packets, s.packets_per_sec());
    eprintln!("  bytes      {:>12}  ({:.1} Mbit/s)", s.bytes, s.bytes as f64 * 8.0 / secs.max(1e-9) / 1e6);
    eprintln!("  flows      {:>12}", s.flows);
    eprintln!("  anomalies  {:>12}  ({} packets invalid)", s.anomalies, s.decoder.invalid);
    if s.flow.memcap > 0 {
        eprintln!("  memcap     {:>12}  flows ended early to stay within flow.memcap", s.flow.memcap);
    }
    if !s.capture_errors.is_empty() {
        eprintln!("  files with errors: {} (see warnings above)", s.capture_errors.len());
    }
    if let Some(d) = s.detect {
        let ml = s.ml.as_ref().map_or(String::new(), |m| format!(", {} of them model alerts over ml.alert-limit; {} alerts from the model", m.suppressed, m.alerts));
        eprintln!("  alerts     {:>12}  ({} suppressed by thresholds{ml})", d.alert, d.alerts_suppressed);
    }
    if let Some(m) = &s.ml {
        eprintln!(
            "  ml         {:>12}  flows scored, {} checkpoints; {} {} ({}); scoring p50 {} µs, p99 {} µs per call ({} calls)",
            m.flows_scored,
            m.checkpoints_scored,
            m.model,
            m.version,
            m.dir.display(),
            m.latency_p50_us,
            m.latency_p99_us,
            m.score_calls
        );
        if let Some(e) = &m.first_error {
            eprintln!("  ml errors  {:>12}  rows not scored: {e}", m.failed);
        }
    }
    if let Some(i) = s.ips {
        eprintln!("  ips        {:>12}  accepted, {} blocked", i.accepted, i.blocked);
    }
    if let Some(a) = &s.app_layer {
        let flows: Vec<String> = a.flows.iter().map(|(k, n)| format!("{k} {n}")).collect();
        let total: u64 = a.anomalies.values().sum();
        let mut top: Vec<(&&str, &u64)> = a.anomalies.iter().collect();
        top.sort_by(|x, y| y.1.cmp(x.1).then(x.0.cmp(y.0)));
        let top: Vec<String> = top.iter().take(4).map(|(k, n)| format!("{k} {n}")).collect();
        eprintln!("  app layer  {:>12}  flows by protocol: {}", a.flows.values().sum::<u64>(), if flows.is_empty() { "none".into() } else { flows.join(", ") });
        if total > 0 {
            eprintln!("  app anomal {:>12}  ({})", total, top.join(", "));
        }
    }
    if let Some(p) = &s.policy {
        eprintln!(
            "  policy     {:>12}  decisions (dry-run) from {} triggers: {} would be enforced, {} waiting for approval, {} refused by the allowlist",
            p.decisions, p.triggers, p.dry_run, p.pending, p.allowlist_refusals
        );
    }
    if s.events_written > 0 {
        eprintln!("  EVE events {:>12}", s.events_written);
    }
}
