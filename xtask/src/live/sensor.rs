//! The sensors under test: Suricata 7 on AF_PACKET, `portcullis run` on AF_XDP or AF_PACKET,
//! and (inline only) a plain Linux bridge as the baseline. Each is started in a namespace,
//! waited for until it captures, and stopped with SIGINT; its own packet counts are then read
//! from what it wrote (Suricata's last EVE `stats` event, Portcullis's `--summary-json`).

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::Value;

use super::netns::{cmd_in, exec_in, ip};

/// The line on Portcullis's stderr that says its capture is running.
pub const PORTCULLIS_READY: &str = "capturing on";
/// Suricata 7 logs this (notice level, suricata.log) once every thread runs.
const SURICATA_READY: &str = "Engine started";
/// Longest wait for a sensor to start (ET Open on two shared cores) or to stop.
const START_TIMEOUT: Duration = Duration::from_secs(600);
const STOP_TIMEOUT: Duration = Duration::from_secs(180);

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SensorKind {
    /// No sensor: tapping, nothing captures (what the sender manages alone); inline, a Linux
    /// bridge in the middle namespace (forwarding without inspection).
    Baseline,
    Suricata,
    PortcullisAfXdp,
    PortcullisAfPacket,
}

impl SensorKind {
    pub fn name(self) -> &'static str {
        match self {
            SensorKind::Baseline => "baseline",
            SensorKind::Suricata => "suricata-afpacket",
            SensorKind::PortcullisAfXdp => "portcullis-afxdp",
            SensorKind::PortcullisAfPacket => "portcullis-afpacket",
        }
    }

    pub fn parse(s: &str) -> Option<SensorKind> {
        match s {
            "baseline" | "bridge" | "none" => Some(SensorKind::Baseline),
            "suricata" | "suricata-afpacket" => Some(SensorKind::Suricata),
            "afxdp" | "portcullis-afxdp" => Some(SensorKind::PortcullisAfXdp),
            "afpacket" | "portcullis-afpacket" => Some(SensorKind::PortcullisAfPacket),
            _ => None,
        }
    }

    pub fn is_portcullis(self) -> bool {
        matches!(self, SensorKind::PortcullisAfXdp | SensorKind::PortcullisAfPacket)
    }
}

/// Where the sensor sits.
#[derive(Clone, Copy, Debug)]
pub enum Placement<'a> {
    Tap(&'a str),
    Inline(&'a str, &'a str),
}

/// One rule set as each engine loads it.
#[derive(Clone, Debug)]
pub struct RuleSet {
    /// "none" or "et-open".
    pub name: String,
    /// The rule file both engines load (`portcullis rules check --emit-loaded` output), or
    /// none (Suricata then runs with `--disable-detection`).
    pub rules: Option<PathBuf>,
    /// The Portcullis config (`-c`): Suricata's default vars and the EVE event types.
    pub portcullis_config: PathBuf,
}

/// Everything a sensor needs to start.
#[derive(Debug)]
pub struct Setup<'a> {
    pub kind: SensorKind,
    pub ns: &'a str,
    pub at: Placement<'a>,
    pub rules: &'a RuleSet,
    /// A fresh directory for this run's config, logs and EVE file.
    pub dir: PathBuf,
    pub portcullis: Option<&'a Path>,
    pub suricata_threads: usize,
}

/// A sensor's own counters after it stopped.
#[derive(Clone, Debug, Default)]
pub struct Counts {
    /// Frames its workers received (Suricata `decoder.pkts`, Portcullis `packets`).
    pub received: Option<u64>,
    /// Frames the kernel dropped before the sensor saw them (Suricata
    /// `capture.kernel_drops`, Portcullis `capture.kernel_drops`).
    pub kernel_drops: Option<u64>,
    /// Whatever else the sensor reported: Suricata's `capture` stats, Portcullis's `capture`
    /// summary (forwarded, tx_failed, rx_ring_full, fill_ring_empty...).
    pub detail: Value,
    /// CPU seconds (user + system, all threads) the sensor process used between being ready
    /// and being told to stop: the cost of the traffic, rule loading excluded. Softirq work
    /// the kernel charges to the sender's CPU (the veth copy) is not in it.
    pub cpu_secs: Option<f64>,
}

/// utime + stime of a process, in seconds, from /proc/PID/stat.
fn cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    let hz = rustix::param::clock_ticks_per_second() as f64;
    Some(ticks as f64 / hz)
}

/// A started sensor.
#[derive(Debug)]
pub struct Running {
    kind: SensorKind,
    ns: String,
    dir: PathBuf,
    /// A Linux bridge was created (the inline baseline).
    bridge: bool,
    child: Option<Child>,
    stdout: Option<std::thread::JoinHandle<Vec<u8>>>,
    stderr: Option<std::thread::JoinHandle<()>>,
    /// [`cpu_secs`] once ready.
    cpu_ready: Option<f64>,
}

/// Suricata's config: the distribution's suricata.yaml (vars, app-layer, classification,
/// logging to suricata.log) with its `af-packet`, `outputs`, `stats`, `default-log-dir` and
/// `unix-command` sections replaced by ours: EVE alert, flow and a stats event every second,
/// af-packet on the benchmark's interfaces with `threads` workers each.
pub fn suricata_yaml(dir: &Path, at: Placement<'_>, threads: usize) -> anyhow::Result<String> {
    let base = std::fs::read_to_string("/etc/suricata/suricata.yaml").context("reading /etc/suricata/suricata.yaml")?;
    let replaced = ["af-packet:", "outputs:", "stats:", "default-log-dir:", "unix-command:"];
    let mut out = String::new();
    let mut skipping = false;
    for line in base.lines() {
        let top = !line.is_empty() && !line.starts_with([' ', '#', '\t', '-']);
        if top {
            skipping = replaced.iter().any(|k| line.starts_with(k));
        }
        if !skipping {
            out.push_str(line);
            out.push('\n');
        }
    }
    out.push_str(&format!(
        "\ndefault-log-dir: {}\nunix-command:\n  enabled: no\nstats:\n  enabled: yes\n  interval: 1\n\
outputs:\n  - eve-log:\n      enabled: yes\n      filetype: regular\n      filename: eve.json\n      types:\n        - alert\n        - flow\n        - stats:\n            totals: yes\n            threads: no\n\
af-packet:\n",
        dir.display()
    ));
    let entry = |iface: &str, cluster: u32, peer: Option<&str>| {
        let mut e = format!(
            "  - interface: {iface}\n    threads: {threads}\n    cluster-id: {cluster}\n    cluster-type: cluster_flow\n    defrag: yes\n    use-mmap: yes\n"
        );
        match peer {
            // TPACKET_V3 hands over whole blocks (up to its block timeout later): not for IPS.
            Some(p) => e.push_str(&format!("    tpacket-v3: no\n    copy-mode: ips\n    copy-iface: {p}\n")),
            None => e.push_str("    tpacket-v3: yes\n"),
        }
        e
    };
    match at {
        Placement::Tap(i) => out.push_str(&entry(i, 99, None)),
        Placement::Inline(a, b) => {
            out.push_str(&entry(a, 98, Some(b)));
            out.push_str(&entry(b, 97, Some(a)));
        }
    }
    Ok(out)
}

fn bridge_up(ns: &str, a: &str, b: &str) -> anyhow::Result<()> {
    ip(&["-n", ns, "link", "add", "pcxb-br", "type", "bridge", "stp_state", "0", "forward_delay", "0"])?;
    // Learning off: every frame floods to the other port, as the sensors forward every frame.
    // With learning, frames of the replayed capture whose destination MAC was seen as a
    // source on the same side would be dropped, and the baseline would forward less.
    for dev in [a, b] {
        ip(&["-n", ns, "link", "set", dev, "master", "pcxb-br"])?;
        ip(&["-n", ns, "link", "set", "dev", dev, "type", "bridge_slave", "learning", "off"])?;
    }
    ip(&["-n", ns, "link", "set", "pcxb-br", "up"])?;
    Ok(())
}

fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

impl Running {
    /// Starts the sensor and returns once it captures.
    pub fn start(s: &Setup<'_>) -> anyhow::Result<Running> {
        std::fs::create_dir_all(&s.dir)?;
        let mut r = Running { kind: s.kind, ns: s.ns.to_owned(), dir: s.dir.clone(), bridge: false, child: None, stdout: None, stderr: None, cpu_ready: None };
        match s.kind {
            SensorKind::Baseline => {
                if let Placement::Inline(a, b) = s.at {
                    bridge_up(s.ns, a, b)?;
                    r.bridge = true;
                }
            }
            SensorKind::Suricata => r.start_suricata(s)?,
            SensorKind::PortcullisAfXdp | SensorKind::PortcullisAfPacket => r.start_portcullis(s)?,
        }
        r.cpu_ready = r.child.as_ref().and_then(|c| cpu_secs(c.id()));
        Ok(r)
    }

    fn start_suricata(&mut self, s: &Setup<'_>) -> anyhow::Result<()> {
        let yaml = s.dir.join("suricata.yaml");
        std::fs::write(&yaml, suricata_yaml(&s.dir, s.at, s.suricata_threads)?)?;
        let mut c = cmd_in(s.ns, "suricata");
        c.arg("-c").arg(&yaml).arg("-l").arg(&s.dir).args(["--runmode", "workers", "-k", "none"]);
        match s.at {
            Placement::Tap(i) => c.arg(format!("--af-packet={i}")),
            Placement::Inline(..) => c.arg("--af-packet"),
        };
        match &s.rules.rules {
            Some(rules) => {
                c.arg("-S").arg(rules);
                let class = rules.with_file_name("classification.config");
                if class.exists() {
                    c.arg("--set").arg(format!("classification-file={}", class.display()));
                }
            }
            None => {
                c.arg("--disable-detection");
            }
        }
        let log = std::fs::File::create(s.dir.join("suricata.stdout"))?;
        c.stdout(log.try_clone()?).stderr(log).stdin(Stdio::null());
        self.child = Some(c.spawn().context("starting suricata")?);
        let t0 = Instant::now();
        let slog = s.dir.join("suricata.log");
        loop {
            if std::fs::read_to_string(&slog).is_ok_and(|t| t.contains(SURICATA_READY)) {
                return Ok(());
            }
            if let Some(st) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                self.child = None;
                bail!("suricata exited ({st}) before capturing:\n{}", tail(&s.dir.join("suricata.stdout"), 15));
            }
            if t0.elapsed() > START_TIMEOUT {
                bail!("suricata did not start within {START_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn start_portcullis(&mut self, s: &Setup<'_>) -> anyhow::Result<()> {
        let bin = s.portcullis.context("no portcullis binary")?;
        let kind = if s.kind == SensorKind::PortcullisAfXdp { "afxdp" } else { "afpacket" };
        let mut c = cmd_in(s.ns, &bin.display().to_string());
        c.arg("run").arg("-c").arg(&s.rules.portcullis_config).args(["--capture", kind, "--no-ml", "--summary-json"]);
        c.arg("--eve").arg(s.dir.join("eve.json"));
        // Its own control socket, so it never meets a daemon running on this machine.
        c.arg("--socket").arg(s.dir.join("control.sock"));
        match s.at {
            Placement::Tap(i) => c.args(["--iface", i]),
            Placement::Inline(a, b) => c.arg("--inline").arg(format!("{a},{b}")),
        };
        if let Some(rules) = &s.rules.rules {
            c.arg("--rules").arg(rules);
        }
        c.stdout(Stdio::piped()).stderr(Stdio::piped()).stdin(Stdio::null());
        let mut child = c.spawn().context("starting portcullis run")?;
        let mut so = child.stdout.take().expect("piped");
        let se = child.stderr.take().expect("piped");
        self.stdout = Some(std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = so.read_to_end(&mut v);
            v
        }));
        // Copy stderr to a file and tell the waiting thread when the ready line went by.
        let (tx, rx) = mpsc::channel();
        let mut file = std::fs::File::create(s.dir.join("portcullis.stderr"))?;
        self.stderr = Some(std::thread::spawn(move || {
            use std::io::Write;
            for line in BufReader::new(se).lines().map_while(Result::ok) {
                let _ = writeln!(file, "{line}");
                if line.contains(PORTCULLIS_READY) {
                    let _ = tx.send(());
                }
            }
        }));
        self.child = Some(child);
        let t0 = Instant::now();
        loop {
            if rx.recv_timeout(Duration::from_millis(100)).is_ok() {
                return Ok(());
            }
            if let Some(st) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                self.child = None;
                if let Some(h) = self.stderr.take() {
                    let _ = h.join();
                }
                bail!("portcullis run exited ({st}) before capturing:\n{}", tail(&s.dir.join("portcullis.stderr"), 15));
            }
            if t0.elapsed() > START_TIMEOUT {
                bail!("portcullis run did not print {PORTCULLIS_READY:?} within {START_TIMEOUT:?}");
            }
        }
    }

    /// SIGINT, wait for the exit, read the counts.
    pub fn stop(mut self) -> anyhow::Result<Counts> {
        if self.kind == SensorKind::Baseline {
            if std::mem::take(&mut self.bridge) {
                ip(&["-n", &self.ns, "link", "del", "pcxb-br"])?;
            }
            return Ok(Counts::default());
        }
        let mut child = self.child.take().context("the sensor is not running")?;
        let cpu = cpu_secs(child.id()).zip(self.cpu_ready).map(|(now, ready)| now - ready);
        let pid = rustix::process::Pid::from_raw(child.id() as i32).context("child pid")?;
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::INT);
        let t0 = Instant::now();
        let status = loop {
            if let Some(st) = child.try_wait()? {
                break st;
            }
            if t0.elapsed() > STOP_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                bail!("{} did not stop within {STOP_TIMEOUT:?} of SIGINT", self.kind.name());
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let stdout = self.stdout.take().map(|h| h.join().unwrap_or_default()).unwrap_or_default();
        if let Some(h) = self.stderr.take() {
            let _ = h.join();
        }
        match self.kind {
            SensorKind::Suricata => {
                if !status.success() {
                    bail!("suricata exited with {status}:\n{}", tail(&self.dir.join("suricata.stdout"), 15));
                }
                suricata_counts(&self.dir.join("eve.json")).map(|c| Counts { cpu_secs: cpu, ..c })
            }
            _ => {
                if !status.success() {
                    bail!("portcullis run exited with {status}:\n{}", tail(&self.dir.join("portcullis.stderr"), 15));
                }
                std::fs::write(self.dir.join("summary.json"), &stdout)?;
                portcullis_counts(&stdout).map(|c| Counts { cpu_secs: cpu, ..c })
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if self.bridge {
            let _ = exec_in(&self.ns, &["ip", "link", "del", "pcxb-br"]);
        }
    }
}

/// The last `stats` event of Suricata's EVE file.
fn suricata_counts(eve: &Path) -> anyhow::Result<Counts> {
    let text = std::fs::read_to_string(eve).with_context(|| format!("reading {}", eve.display()))?;
    let last = text
        .lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["event_type"] == "stats")
        .with_context(|| format!("no stats event in {}", eve.display()))?;
    let st = &last["stats"];
    Ok(Counts {
        received: st["decoder"]["pkts"].as_u64(),
        kernel_drops: st["capture"]["kernel_drops"].as_u64(),
        detail: serde_json::json!({"capture": st["capture"], "uptime": st["uptime"], "alerts": st["detect"]["alert"]}),
        cpu_secs: None,
    })
}

/// `portcullis run --summary-json`: one JSON object on stdout.
fn portcullis_counts(stdout: &[u8]) -> anyhow::Result<Counts> {
    let text = String::from_utf8_lossy(stdout);
    let v: Value = text
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<Value>(l).ok().filter(Value::is_object))
        .or_else(|| serde_json::from_str(&text).ok())
        .with_context(|| format!("no JSON summary on portcullis's stdout: {}", text.trim()))?;
    Ok(Counts { received: v["packets"].as_u64(), kernel_drops: v["capture"]["kernel_drops"].as_u64(), detail: v, cpu_secs: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn portcullis_summary() {
        let out = br#"{"packets": 1200, "capture": {"kind": "af-xdp", "kernel_drops": 3, "forwarded": 1190}, "elapsed_secs": 4.2}"#;
        let c = portcullis_counts(out).unwrap();
        assert_eq!((c.received, c.kernel_drops), (Some(1200), Some(3)));
        assert_eq!(c.detail["capture"]["forwarded"], 1190);
    }
}
