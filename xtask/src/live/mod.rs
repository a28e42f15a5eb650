//! `cargo xtask bench-live`: live capture on veth pairs in network namespaces, Suricata 7's
//! AF_PACKET against `portcullis run` (AF_XDP and AF_PACKET) in the same run.
//!
//! - Tap: sender ns —veth— sensor ns. `tcpreplay --topspeed` of a real capture and `trafgen`
//!   64-byte UDP into the sender's end; the sensor captures on the other end. Reported: frames
//!   sent, frames that reached the sensor's interface, frames the sensor's workers received,
//!   its kernel drops, and received frames per second of send time (median of `--runs`).
//! - Inline: client ns —veth— bridge ns (two veths) —veth— server ns. The middle is a Linux
//!   bridge (baseline), Suricata `copy-mode: ips`, or `portcullis run --inline`. Reported:
//!   frames forwarded per second (counted on the server's veth) and the one-way delay of UDP
//!   probes from client to server (p50/p99; see [`probe`]).
//!
//! Everything is sent inside the namespaces, which are always deleted ([`netns`]).

mod netns;
pub mod probe;
mod sensor;
mod traffic;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use serde_json::{json, Value};

use netns::{Lab, LinkStats};
use sensor::{Counts, Placement, RuleSet, Running, SensorKind, Setup};
use traffic::{Sent, Traffic};

use crate::{data_dir, portcullis_bin, workspace_root};

#[derive(Debug, Args)]
pub struct LiveArgs {
    /// The capture tcpreplay sends (`shared/tools/mkcorpus DIR` builds DIR/veth.pcap)
    /// [default: $PCX_BENCH_PCAP, else /work/corpus/veth.pcap].
    #[arg(long)]
    pcap: Option<PathBuf>,
    /// Times tcpreplay sends the capture per measurement (`--loop`).
    #[arg(long, default_value_t = 5)]
    replay_loops: u32,
    /// 64-byte frames trafgen sends per measurement.
    #[arg(long, default_value_t = 2_000_000)]
    small_packets: u64,
    /// Measurements of each case; the median is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Which parts: tap, inline.
    #[arg(long, value_delimiter = ',', default_value = "tap,inline")]
    parts: Vec<String>,
    /// Sensors: suricata, afxdp, afpacket (Portcullis), and baseline (tap: nothing captures;
    /// inline: a Linux bridge).
    #[arg(long, value_delimiter = ',', default_value = "baseline,suricata,afxdp,afpacket")]
    sensors: Vec<String>,
    /// Rule sets: none, et-open.
    #[arg(long, value_delimiter = ',', default_value = "none,et-open")]
    rules: Vec<String>,
    /// Loads: replay (tcpreplay of --pcap), udp64 (trafgen).
    #[arg(long, value_delimiter = ',', default_value = "replay,udp64")]
    traffic: Vec<String>,
    /// Suricata af-packet worker threads per interface.
    #[arg(long, default_value_t = 1)]
    suricata_threads: usize,
    /// Latency probe: datagrams per second and seconds.
    #[arg(long, default_value_t = 2000)]
    probe_rate: u32,
    #[arg(long, default_value_t = 5.0)]
    probe_secs: f64,
    /// Seconds to wait after the sender finished before stopping the sensor.
    #[arg(long, default_value_t = 2.0)]
    drain_secs: f64,
    /// Write every measurement and the medians as JSON here.
    #[arg(long)]
    report: Option<PathBuf>,
}

/// MACs: locally administered, fixed so the static neighbour entries and trafgen agree.
fn mac(n: u8) -> String {
    format!("02:50:43:58:00:{n:02x}")
}

/// One tap measurement.
#[derive(Debug, Clone)]
struct TapRun {
    sent: Sent,
    tx: LinkStats,
    at_iface: LinkStats,
    counts: Counts,
}

impl TapRun {
    fn rate(&self) -> Option<f64> {
        self.counts.received.map(|r| r as f64 / self.sent.secs)
    }

    /// The sensor's CPU time per received frame, in µs.
    fn cpu_us_per_pkt(&self) -> Option<f64> {
        let rx = self.counts.received.filter(|&r| r > 0)?;
        self.counts.cpu_secs.map(|c| c * 1e6 / rx as f64)
    }

    fn json(&self) -> Value {
        json!({
            "sent": self.sent.packets, "send_failed": self.sent.failed, "send_secs": self.sent.secs,
            "veth_tx_packets": self.tx.tx_packets, "veth_tx_dropped": self.tx.tx_dropped,
            "sensor_iface_rx_packets": self.at_iface.rx_packets, "sensor_iface_rx_dropped": self.at_iface.rx_dropped,
            "received": self.counts.received, "kernel_drops": self.counts.kernel_drops,
            "received_per_sec": self.rate(), "cpu_secs": self.counts.cpu_secs, "cpu_us_per_pkt": self.cpu_us_per_pkt(),
            "sensor": self.counts.detail,
        })
    }
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 })
}

fn median_u(v: impl Iterator<Item = Option<u64>>) -> Option<f64> {
    let v: Vec<f64> = v.flatten().map(|x| x as f64).collect();
    median(v)
}

fn fmt_n(x: Option<f64>) -> String {
    match x {
        None => "-".into(),
        Some(x) => {
            let s = format!("{:.0}", x);
            let mut out = String::new();
            for (i, c) in s.chars().enumerate() {
                if i > 0 && (s.len() - i) % 3 == 0 && c != '-' {
                    out.push(',');
                }
                out.push(c);
            }
            out
        }
    }
}

/// Is `portcullis run` there yet (the daemon lands separately from this harness)?
fn has_run_command(bin: &Path) -> bool {
    Command::new(bin).args(["run", "--help"]).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

/// The rule sets: "none" (Suricata `--disable-detection`), "et-open" (every rule Portcullis
/// loads from ET Open, which Suricata then loads too, as `bench-replay` does).
fn rule_sets(names: &[String], bin: Option<&Path>) -> anyhow::Result<Vec<RuleSet>> {
    let dir = workspace_root().join("target/bench-live");
    std::fs::create_dir_all(&dir)?;
    let mut out = Vec::new();
    for n in names {
        match n.as_str() {
            "none" => {
                let cfg = dir.join("portcullis-norules.yaml");
                let config = json!({"vars": crate::verify::default_vars(), "outputs": {"eve-log": {"types": ["alert", "flow", "stats"]}}});
                std::fs::write(&cfg, serde_yaml_ng::to_string(&config)?)?;
                out.push(RuleSet { name: n.clone(), rules: None, portcullis_config: cfg });
            }
            "et-open" => {
                let et = data_dir().join("rules/et-open-2024-04");
                let (loaded, cfg) = crate::bench::emitted_rules(bin.context("no portcullis binary")?, &[et])?;
                let count = std::fs::read_to_string(&loaded)?.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')).count();
                eprintln!("et-open: {count} rules loaded by Portcullis, given to both engines ({})", loaded.display());
                out.push(RuleSet { name: n.clone(), rules: Some(loaded), portcullis_config: cfg });
            }
            other => bail!("unknown rule set {other:?} (none, et-open)"),
        }
    }
    Ok(out)
}

fn traffics(names: &[String], pcap: &Path, loops: u32, small: u64, cfg_dir: &Path, dst_mac: &str) -> anyhow::Result<Vec<Traffic>> {
    let mut out = Vec::new();
    for n in names {
        match n.as_str() {
            "replay" => {
                if !pcap.exists() {
                    bail!("{} is missing: build it with `{}/../tools/mkcorpus DIR` and pass --pcap DIR/veth.pcap", pcap.display(), data_dir().display());
                }
                out.push(Traffic::Replay { pcap: pcap.to_owned(), loops });
            }
            "udp64" => {
                let config = cfg_dir.join(format!("udp64-{}.trafgen", dst_mac.replace(':', "")));
                traffic::write_trafgen_config(&config, &mac(1), dst_mac)?;
                out.push(Traffic::Small { count: small, config });
            }
            other => bail!("unknown traffic {other:?} (replay, udp64)"),
        }
    }
    Ok(out)
}

fn check_tools() -> anyhow::Result<()> {
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).and_then(|l| l.split_whitespace().nth(2)).and_then(|u| u.parse::<u32>().ok()));
    if uid != Some(0) {
        bail!("bench-live must run as root: it creates network namespaces and veth pairs and attaches capture sockets (try `sudo -E cargo xtask bench-live`)");
    }
    for (tool, pkg) in [("ip", "iproute2"), ("ethtool", "ethtool"), ("taskset", "util-linux"), ("tcpreplay", "tcpreplay"), ("trafgen", "netsniff-ng"), ("suricata", "suricata (bookworm-backports)")] {
        let found = Command::new("sh").args(["-c", &format!("command -v {tool}")]).stdout(Stdio::null()).status().is_ok_and(|s| s.success());
        if !found {
            bail!("{tool} is missing: apt-get install -y {pkg}");
        }
    }
    Ok(())
}

pub fn run(mut a: LiveArgs) -> anyhow::Result<()> {
    check_tools()?;
    let pcap = a.pcap.take().or_else(|| std::env::var_os("PCX_BENCH_PCAP").map(PathBuf::from)).unwrap_or_else(|| "/work/corpus/veth.pcap".into());
    a.pcap = Some(pcap.clone());
    netns::install_interrupt_handler()?;
    netns::sweep_stale();
    let mut sensors: Vec<SensorKind> = a
        .sensors
        .iter()
        .map(|s| SensorKind::parse(s).with_context(|| format!("unknown sensor {s:?} (baseline, suricata, afxdp, afpacket)")))
        .collect::<anyhow::Result<_>>()?;
    // Portcullis is built when a Portcullis sensor runs or the ET Open set is needed (its
    // loaded rules are what both engines get).
    let needs_bin = sensors.iter().any(|s| s.is_portcullis()) || a.rules.iter().any(|r| r != "none");
    let bin = if needs_bin { Some(portcullis_bin()?) } else { None };
    let mut notes: Vec<String> = Vec::new();
    if let Some(b) = bin.as_deref().filter(|b| sensors.iter().any(|s| s.is_portcullis()) && !has_run_command(b)) {
        let n = format!("{} has no `run` command yet: Portcullis sensors skipped", b.display());
        eprintln!("{n}");
        notes.push(n);
        sensors.retain(|s| !s.is_portcullis());
    }
    let rules = rule_sets(&a.rules, bin.as_deref())?;
    let work = workspace_root().join("target/bench-live");
    std::fs::create_dir_all(&work)?;
    // Warm the page cache for tcpreplay.
    if a.traffic.iter().any(|t| t == "replay") && pcap.exists() {
        std::fs::read(&pcap)?;
    }
    let mut report = json!({
        "machine": machine(),
        "command": std::env::args().collect::<Vec<_>>().join(" "),
        "pcap": pcap, "replay_loops": a.replay_loops, "small_packets": a.small_packets, "runs": a.runs,
        "suricata_threads": a.suricata_threads, "suricata_version": suricata_version(),
        "notes": notes,
    });
    let mut failures: Vec<String> = Vec::new();
    if a.parts.iter().any(|p| p == "tap") {
        report["tap"] = tap(&a, &sensors, &rules, bin.as_deref(), &work, &mut failures)?;
    }
    if a.parts.iter().any(|p| p == "inline") {
        report["inline"] = inline(&a, &sensors, &rules, bin.as_deref(), &work, &mut failures)?;
    }
    report["failures"] = json!(failures);
    if !failures.is_empty() {
        eprintln!("\nfailed measurements:");
        for f in &failures {
            eprintln!("  {f}");
        }
    }
    if let Some(path) = &a.report {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
        println!("report: {}", path.display());
    }
    Ok(())
}

fn machine() -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split(':').nth(1)).map(|s| s.trim().to_owned()));
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let mem_kib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| s.lines().next().and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse::<u64>().ok()));
    let kernel = Command::new("uname").arg("-r").output().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned()).ok();
    json!({"cpu": cpu, "cpus": cpus, "mem_gib": mem_kib.map(|k| (k as f64 / 1048576.0 * 10.0).round() / 10.0), "kernel": kernel})
}

fn suricata_version() -> Option<String> {
    let o = Command::new("suricata").arg("-V").output().ok()?;
    Some(String::from_utf8_lossy(&o.stdout).trim().to_owned())
}

fn sensor_dir(work: &Path, part: &str, s: SensorKind, rules: &str, traffic: &str, run: usize) -> PathBuf {
    let d = work.join(format!("{part}-{}-{rules}-{traffic}-{run}", s.name()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn tap(a: &LiveArgs, sensors: &[SensorKind], rules: &[RuleSet], bin: Option<&Path>, work: &Path, failures: &mut Vec<String>) -> anyhow::Result<Value> {
    let lab = Lab::new(&["snd", "sen"])?;
    lab.veth("snd", "snd0", &mac(1), "sen", "sen0", &mac(2))?;
    let (snd, sen) = (lab.ns("snd").to_owned(), lab.ns("sen").to_owned());
    let loads = traffics(&a.traffic, a.pcap.as_deref().unwrap_or(Path::new("")), a.replay_loops, a.small_packets, work, &mac(2))?;
    let mut results: BTreeMap<(String, String, SensorKind), Vec<TapRun>> = BTreeMap::new();
    for load in &loads {
        for rs in rules {
            // Runs outermost of the sensors, so a slow drift of the machine touches all alike.
            for run in 0..a.runs {
                for &s in sensors {
                    if s == SensorKind::Baseline && rs.rules.is_some() {
                        continue;
                    }
                    let setup = Setup {
                        kind: s,
                        ns: &sen,
                        at: Placement::Tap("sen0"),
                        rules: rs,
                        dir: sensor_dir(work, "tap", s, &rs.name, load.name(), run),
                        portcullis: bin,
                        suricata_threads: a.suricata_threads,
                    };
                    let label = format!("tap {} {} {} run {}", load.name(), rs.name, s.name(), run + 1);
                    match tap_once(&setup, load, &snd, &sen, a.drain_secs) {
                        Ok(r) => {
                            eprintln!(
                                "{label}: sent {} in {:.2} s, at sen0 {}, received {}, kernel drops {}, {} received/s",
                                r.sent.packets,
                                r.sent.secs,
                                r.at_iface.rx_packets,
                                fmt_n(r.counts.received.map(|x| x as f64)),
                                fmt_n(r.counts.kernel_drops.map(|x| x as f64)),
                                fmt_n(r.rate())
                            );
                            results.entry((load.name().into(), rs.name.clone(), s)).or_default().push(r);
                        }
                        Err(e) => {
                            eprintln!("{label}: FAILED: {e:#}");
                            failures.push(format!("{label}: {e:#}"));
                        }
                    }
                }
            }
        }
    }
    drop(lab);
    println!("\nTap: sender ns -> veth -> sensor ns (median of {} runs)", a.runs);
    println!(
        "{:<7} {:<8} {:<20} {:>10} {:>10} {:>10} {:>10} {:>10} {:>12} {:>12}",
        "traffic", "rules", "sensor", "sent", "sent/s", "at veth", "received", "k-drops", "received/s", "cpu µs/pkt"
    );
    let mut rows = Vec::new();
    for ((t, r, s), runs) in &results {
        let m_rate = median(runs.iter().filter_map(TapRun::rate).collect());
        let m_sent = median_u(runs.iter().map(|x| Some(x.sent.packets)));
        let m_at = median_u(runs.iter().map(|x| Some(x.at_iface.rx_packets)));
        let m_rx = median_u(runs.iter().map(|x| x.counts.received));
        let m_drop = median_u(runs.iter().map(|x| x.counts.kernel_drops));
        let m_secs = median(runs.iter().map(|x| x.sent.secs).collect());
        let m_sent_rate = median(runs.iter().map(|x| x.sent.packets as f64 / x.sent.secs).collect());
        let m_cpu = median(runs.iter().filter_map(TapRun::cpu_us_per_pkt).collect());
        println!(
            "{t:<7} {r:<8} {:<20} {:>10} {:>10} {:>10} {:>10} {:>10} {:>12} {:>12}",
            s.name(),
            fmt_n(m_sent),
            fmt_n(m_sent_rate),
            fmt_n(m_at),
            fmt_n(m_rx),
            fmt_n(m_drop),
            fmt_n(m_rate),
            m_cpu.map_or("-".to_string(), |c| format!("{c:.2}"))
        );
        rows.push(json!({
            "traffic": t, "rules": r, "sensor": s.name(),
            "median": {"sent": m_sent, "send_secs": m_secs, "sent_per_sec": m_sent_rate, "sensor_iface_rx_packets": m_at, "received": m_rx, "kernel_drops": m_drop, "received_per_sec": m_rate, "cpu_us_per_pkt": m_cpu},
            "runs": runs.iter().map(TapRun::json).collect::<Vec<_>>(),
        }));
    }
    Ok(json!(rows))
}

fn tap_once(setup: &Setup<'_>, load: &Traffic, snd: &str, sen: &str, drain: f64) -> anyhow::Result<TapRun> {
    let tx0 = LinkStats::read(snd, "snd0")?;
    let rx0 = LinkStats::read(sen, "sen0")?;
    let running = Running::start(setup)?;
    let sent = traffic::send(load, snd, "snd0")?;
    std::thread::sleep(Duration::from_secs_f64(drain));
    let counts = running.stop()?;
    let tx = LinkStats::read(snd, "snd0")?.since(tx0);
    let at_iface = LinkStats::read(sen, "sen0")?.since(rx0);
    Ok(TapRun { sent, tx, at_iface, counts })
}

/// One inline measurement: the probe's delays and, per load, what reached the server.
#[derive(Debug, Clone, Default)]
struct InlineRun {
    probes_sent: u64,
    delays_us: Vec<f64>,
    /// (load, sent, forwarded to the server's veth)
    loads: Vec<(String, Sent, u64)>,
    counts: Counts,
}

fn inline(a: &LiveArgs, sensors: &[SensorKind], rules: &[RuleSet], bin: Option<&Path>, work: &Path, failures: &mut Vec<String>) -> anyhow::Result<Value> {
    let lab = Lab::new(&["cli", "brg", "srv"])?;
    lab.veth("cli", "cli0", &mac(1), "brg", "pcxb-a", &mac(3))?;
    lab.veth("brg", "pcxb-b", &mac(4), "srv", "srv0", &mac(2))?;
    let (cli, brg, srv) = (lab.ns("cli").to_owned(), lab.ns("brg").to_owned(), lab.ns("srv").to_owned());
    netns::ip(&["-n", &cli, "addr", "add", "10.77.0.1/24", "dev", "cli0"])?;
    netns::ip(&["-n", &srv, "addr", "add", "10.77.0.2/24", "dev", "srv0"])?;
    // Static neighbours: no ARP through the middle, whatever sits there.
    netns::ip(&["-n", &cli, "neigh", "replace", "10.77.0.2", "lladdr", &mac(2), "dev", "cli0", "nud", "permanent"])?;
    netns::ip(&["-n", &srv, "neigh", "replace", "10.77.0.1", "lladdr", &mac(1), "dev", "srv0", "nud", "permanent"])?;
    // trafgen's frames go to a MAC nobody has: the server's veth counts them and drops them,
    // so they raise no ICMP that would travel back through the middle.
    let loads = traffics(&a.traffic, a.pcap.as_deref().unwrap_or(Path::new("")), a.replay_loops, a.small_packets, work, "02:50:43:58:00:99")?;
    let mut results: BTreeMap<(String, SensorKind), Vec<InlineRun>> = BTreeMap::new();
    for rs in rules {
        for run in 0..a.runs {
            for &s in sensors {
                if s == SensorKind::Baseline && rs.rules.is_some() {
                    continue;
                }
                let setup = Setup {
                    kind: s,
                    ns: &brg,
                    at: Placement::Inline("pcxb-a", "pcxb-b"),
                    rules: rs,
                    dir: sensor_dir(work, "inline", s, &rs.name, "all", run),
                    portcullis: bin,
                    suricata_threads: a.suricata_threads,
                };
                let label = format!("inline {} {} run {}", rs.name, s.name(), run + 1);
                match inline_once(&setup, a, &loads, &cli, &srv) {
                    Ok(r) => {
                        let p = |q| probe::quantile(&r.delays_us, q).map_or("-".into(), |v| format!("{v:.1}"));
                        eprint!("{label}: probes {}/{} p50 {} us p99 {} us", r.delays_us.len(), r.probes_sent, p(0.5), p(0.99));
                        for (l, sent, fwd) in &r.loads {
                            eprint!(", {l}: {fwd}/{} forwarded, {} /s", sent.packets, fmt_n(Some(*fwd as f64 / sent.secs)));
                        }
                        eprintln!();
                        results.entry((rs.name.clone(), s)).or_default().push(r);
                    }
                    Err(e) => {
                        eprintln!("{label}: FAILED: {e:#}");
                        failures.push(format!("{label}: {e:#}"));
                    }
                }
            }
        }
    }
    drop(lab);
    println!("\nInline: client ns -> veth -> [middle] -> veth -> server ns (median of {} runs; latency over all probes of all runs)", a.runs);
    println!("{:<8} {:<20} {:>9} {:>9} {:>9} {:>9}   throughput (forwarded/sent, forwarded/s)", "rules", "middle", "probes", "p50 us", "p99 us", "max us");
    let mut rows = Vec::new();
    for ((r, s), runs) in &results {
        let mut all: Vec<f64> = runs.iter().flat_map(|x| x.delays_us.iter().copied()).collect();
        all.sort_by(f64::total_cmp);
        let sent: u64 = runs.iter().map(|x| x.probes_sent).sum();
        let q = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.1}"));
        let (p50, p99, max) = (probe::quantile(&all, 0.5), probe::quantile(&all, 0.99), all.last().copied());
        let mut line = format!("{r:<8} {:<20} {:>9} {:>9} {:>9} {:>9}  ", s.name(), format!("{}/{}", all.len(), sent), q(p50), q(p99), q(max));
        let mut loads_json = Vec::new();
        for l in &loads {
            let per: Vec<&(String, Sent, u64)> = runs.iter().flat_map(|x| x.loads.iter().filter(|y| y.0 == l.name())).collect();
            let m_rate = median(per.iter().map(|(_, st, f)| *f as f64 / st.secs).collect());
            let m_fwd = median_u(per.iter().map(|(_, _, f)| Some(*f)));
            let m_sent = median_u(per.iter().map(|(_, st, _)| Some(st.packets)));
            line.push_str(&format!(" {}: {}/{} {}/s", l.name(), fmt_n(m_fwd), fmt_n(m_sent), fmt_n(m_rate)));
            loads_json.push(json!({"traffic": l.name(), "median": {"sent": m_sent, "forwarded": m_fwd, "forwarded_per_sec": m_rate}}));
        }
        println!("{line}");
        rows.push(json!({
            "rules": r, "middle": s.name(),
            "latency_us": {"probes_sent": sent, "probes_received": all.len(), "p50": p50, "p99": p99, "max": max},
            "throughput": loads_json,
            "runs": runs.iter().map(|x| json!({
                "probes_sent": x.probes_sent, "probes_received": x.delays_us.len(),
                "p50_us": probe::quantile(&x.delays_us, 0.5), "p99_us": probe::quantile(&x.delays_us, 0.99),
                "loads": x.loads.iter().map(|(l, st, f)| json!({"traffic": l, "sent": st.packets, "send_failed": st.failed, "send_secs": st.secs, "forwarded": f, "forwarded_per_sec": *f as f64 / st.secs})).collect::<Vec<_>>(),
                "sensor": x.counts.detail,
            })).collect::<Vec<_>>(),
        }));
    }
    Ok(json!(rows))
}

fn inline_once(setup: &Setup<'_>, a: &LiveArgs, loads: &[Traffic], cli: &str, srv: &str) -> anyhow::Result<InlineRun> {
    let running = Running::start(setup)?;
    let mut r = InlineRun::default();
    let (sent, delays) = latency(cli, srv, a.probe_rate, a.probe_secs)?;
    r.probes_sent = sent;
    r.delays_us = delays;
    for l in loads {
        let before = LinkStats::read(srv, "srv0")?;
        let sent = traffic::send(l, cli, "cli0")?;
        std::thread::sleep(Duration::from_secs_f64(a.drain_secs.min(1.5)));
        let fwd = LinkStats::read(srv, "srv0")?.since(before).rx_packets;
        r.loads.push((l.name().to_owned(), sent, fwd));
    }
    r.counts = running.stop()?;
    Ok(r)
}

/// Runs the probe: the receiver in the server ns, then the sender in the client ns.
fn latency(cli: &str, srv: &str, rate: u32, secs: f64) -> anyhow::Result<(u64, Vec<f64>)> {
    use std::io::{BufRead, BufReader};
    let me = std::env::current_exe()?.display().to_string();
    let mut recv = netns::cmd_in(srv, &me)
        .args(["live-probe", "recv", "--bind", "10.77.0.2:9999", "--timeout", &format!("{}", secs + 10.0)])
        .stdout(Stdio::piped())
        .spawn()
        .context("starting the probe receiver")?;
    let mut lines = BufReader::new(recv.stdout.take().expect("piped")).lines();
    match lines.next() {
        Some(Ok(l)) if l == "ready" => {}
        other => {
            let _ = recv.kill();
            let _ = recv.wait();
            bail!("probe receiver did not start: {other:?}");
        }
    }
    let out = netns::cmd_in(cli, &me)
        .args(["live-probe", "send", "--to", "10.77.0.2:9999", "--rate", &rate.to_string(), "--secs", &secs.to_string()])
        .output()
        .context("running the probe sender")?;
    let sent: Value = serde_json::from_slice(&out.stdout).with_context(|| format!("probe sender: {}", String::from_utf8_lossy(&out.stderr)))?;
    let line = lines.next().context("probe receiver ended without a report")??;
    let _ = recv.wait();
    let v: Value = serde_json::from_str(&line)?;
    let delays = v["delays_us"].as_array().map(|a| a.iter().filter_map(Value::as_f64).collect()).unwrap_or_default();
    Ok((sent["sent"].as_u64().unwrap_or(0), delays))
}
