//! The replay benchmark: Portcullis and Suricata on the same capture, in the same run.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Args;

use crate::alerts::{emit_loaded, rule_files};
use crate::verify::{default_vars, Caps};
use crate::{data_dir, portcullis_bin, workspace_root};

/// The rules Portcullis loads from `inputs`, written for both engines, and a Portcullis config
/// with Suricata's default vars that logs alerts and flows (suricata-ref logs alert, drop,
/// flow and stats).
pub(crate) fn emitted_rules(bin: &std::path::Path, inputs: &[PathBuf]) -> anyhow::Result<(PathBuf, PathBuf)> {
    let dir = workspace_root().join("target/bench-rules");
    std::fs::create_dir_all(&dir)?;
    let probe = Caps::probe(bin, &dir)?;
    if !probe.rules_check || !probe.rules_flag || !probe.types.contains("alert") {
        bail!("this portcullis cannot load rules or log alerts yet; run bench-replay without --rules");
    }
    let files = rule_files(inputs)?;
    let loaded = dir.join("loaded.rules");
    emit_loaded(bin, &files, &loaded)?;
    if let Some(class) = files.first().map(|f| f.with_file_name("classification.config")).filter(|c| c.exists()) {
        std::fs::copy(class, dir.join("classification.config"))?;
    }
    let cfg = dir.join("portcullis.yaml");
    let config = serde_json::json!({"vars": default_vars(), "outputs": {"eve-log": {"types": ["alert", "flow", "stats"]}}});
    std::fs::write(&cfg, serde_yaml_ng::to_string(&config)?)?;
    Ok((loaded, cfg))
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The capture [default: target/corpus/big.pcap, built by shared/tools/mkcorpus].
    capture: Option<PathBuf>,
    /// Worker threads for both engines.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Runs of each engine; the best is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Skip Suricata.
    #[arg(long)]
    no_suricata: bool,
    /// Rule files or directories for both engines. They go through `portcullis rules check
    /// --emit-loaded` first so Suricata gets exactly the set Portcullis loaded; both engines
    /// then log alerts and flows.
    #[arg(long, num_args = 1..)]
    rules: Vec<PathBuf>,
}

/// Runs `cmd` to completion, polling the peak resident set (`VmHWM`) of it and of every
/// descendant (suricata-ref is a script that starts Suricata) every 5 ms. Returns the output
/// and the largest peak in KiB: the high-water mark only grows, so the last sample before a
/// process exits is its peak to within the last 5 ms of its life.
fn run_measured(cmd: &mut Command) -> anyhow::Result<(std::process::Output, u64)> {
    use std::io::Read;
    let mut child = cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn()?;
    let root = child.id();
    // Drain the pipes on threads so a chatty child cannot block on a full pipe.
    let mut so = child.stdout.take().expect("piped");
    let mut se = child.stderr.take().expect("piped");
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = so.read_to_end(&mut v);
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = se.read_to_end(&mut v);
        v
    });
    let mut peaks: std::collections::HashMap<u32, u64> = std::collections::HashMap::new();
    let status = loop {
        for pid in descendants(root) {
            if let Some(kib) = vm_hwm(pid) {
                let e = peaks.entry(pid).or_default();
                *e = (*e).max(kib);
            }
        }
        if let Some(st) = child.try_wait()? {
            break st;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    let out = std::process::Output { status, stdout: t_out.join().unwrap_or_default(), stderr: t_err.join().unwrap_or_default() };
    Ok((out, peaks.values().copied().max().unwrap_or(0)))
}

/// `pid` and its descendants, from `/proc/<pid>/task/<tid>/children`.
fn descendants(pid: u32) -> Vec<u32> {
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        let p = out[i];
        if let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) {
            for t in tasks.flatten() {
                if let Ok(c) = std::fs::read_to_string(t.path().join("children")) {
                    out.extend(c.split_whitespace().filter_map(|x| x.parse::<u32>().ok()));
                }
            }
        }
        i += 1;
    }
    out
}

/// Peak resident set of `pid` in KiB (`VmHWM` in `/proc/<pid>/status`).
fn vm_hwm(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The packet count from `replay --summary-json`.
fn summary_packets(out: &[u8]) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_slice(out).ok()?;
    v["packets"].as_u64()
}

pub fn run(a: BenchArgs) -> anyhow::Result<()> {
    let cap = match a.capture.clone() {
        Some(c) => c,
        None => {
            let dir = workspace_root().join("target/corpus");
            let big = dir.join("big.pcap");
            if !big.exists() {
                let tool = data_dir().join("../tools/mkcorpus");
                let st = Command::new(&tool).arg(&dir).status().with_context(|| format!("running {}", tool.display()))?;
                if !st.success() {
                    bail!("mkcorpus failed");
                }
            }
            big
        }
    };
    let bin = portcullis_bin()?;
    let rules = if a.rules.is_empty() { None } else { Some(emitted_rules(&bin, &a.rules)?) };
    let what = if rules.is_some() { "alert and flow logging, rules" } else { "flow logging, no rules" };
    // Warm the page cache so neither engine pays for the disk.
    std::fs::read(&cap).with_context(|| format!("reading {}", cap.display()))?;
    let mut best_p = f64::MAX;
    let mut peak_p = 0u64;
    let mut packets = 0;
    // Both engines write EVE flow records (and a stats event) to a file, as in production.
    let eve = workspace_root().join("target/bench-portcullis-eve.json");
    for _ in 0..a.runs {
        let _ = std::fs::remove_file(&eve);
        let t = Instant::now();
        let mut cmd = Command::new(&bin);
        // Signatures and flows only, as Suricata runs: the flow model has no counterpart there.
        cmd.args(["replay", "--no-progress", "--no-ml", "--summary-json", "--threads", &a.threads.to_string(), "--eve"]).arg(&eve);
        if let Some((loaded, cfg)) = &rules {
            cmd.arg("--config").arg(cfg).arg("--rules").arg(loaded);
        }
        let (out, peak) = run_measured(cmd.arg(&cap))?;
        let secs = t.elapsed().as_secs_f64();
        if !out.status.success() {
            bail!("portcullis failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        packets = summary_packets(&out.stdout).unwrap_or(0);
        best_p = best_p.min(secs);
        peak_p = peak_p.max(peak);
    }
    println!(
        "portcullis  threads {}  packets {packets}  best of {}: {best_p:.3} s  {:.0} packets/s  peak RSS {:.0} MiB   ({what})",
        a.threads,
        a.runs,
        packets as f64 / best_p,
        peak_p as f64 / 1024.0
    );
    if a.no_suricata {
        return Ok(());
    }
    let mut best_s = f64::MAX;
    let mut peak_s = 0u64;
    let tool = data_dir().join("../tools/suricata-ref");
    for i in 0..a.runs {
        let out_dir = workspace_root().join(format!("target/bench-suricata-{i}"));
        let t = Instant::now();
        let mut cmd = Command::new(&tool);
        cmd.arg(&out_dir).arg(&cap).arg(rules.as_ref().map_or(PathBuf::new(), |r| r.0.clone()));
        if a.threads > 1 {
            cmd.env("SURICATA_THREADS", "auto").args(["--runmode", "autofp", "--set", &format!("threading.cpu-affinity.0.worker-cpu-set.cpu=[0-{}]", a.threads - 1)]);
        }
        let (st, peak) = run_measured(&mut cmd)?;
        let secs = t.elapsed().as_secs_f64();
        if !st.status.success() {
            bail!("suricata failed: {}", String::from_utf8_lossy(&st.stdout));
        }
        best_s = best_s.min(secs);
        peak_s = peak_s.max(peak);
    }
    println!(
        "suricata    threads {}  packets {packets}  best of {}: {best_s:.3} s  {:.0} packets/s  peak RSS {:.0} MiB   ({what})",
        a.threads,
        a.runs,
        packets as f64 / best_s,
        peak_s as f64 / 1024.0
    );
    println!("speed-up {:.2}x, peak memory {:.2} of Suricata's", best_s / best_p, peak_p as f64 / peak_s.max(1) as f64);
    Ok(())
}
