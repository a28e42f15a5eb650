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
fn emitted_rules(bin: &std::path::Path, inputs: &[PathBuf]) -> anyhow::Result<(PathBuf, PathBuf)> {
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
    let mut packets = 0;
    // Both engines write EVE flow records (and a stats event) to a file, as in production.
    let eve = workspace_root().join("target/bench-portcullis-eve.json");
    for _ in 0..a.runs {
        let _ = std::fs::remove_file(&eve);
        let t = Instant::now();
        let mut cmd = Command::new(&bin);
        cmd.args(["replay", "--no-progress", "--summary-json", "--threads", &a.threads.to_string(), "--eve"]).arg(&eve);
        if let Some((loaded, cfg)) = &rules {
            cmd.arg("--config").arg(cfg).arg("--rules").arg(loaded);
        }
        let out = cmd.arg(&cap).output()?;
        let secs = t.elapsed().as_secs_f64();
        if !out.status.success() {
            bail!("portcullis failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        packets = summary_packets(&out.stdout).unwrap_or(0);
        best_p = best_p.min(secs);
    }
    println!(
        "portcullis  threads {}  packets {packets}  best of {}: {best_p:.3} s  {:.0} packets/s   ({what})",
        a.threads,
        a.runs,
        packets as f64 / best_p
    );
    if a.no_suricata {
        return Ok(());
    }
    let mut best_s = f64::MAX;
    let tool = data_dir().join("../tools/suricata-ref");
    for i in 0..a.runs {
        let out_dir = workspace_root().join(format!("target/bench-suricata-{i}"));
        let t = Instant::now();
        let mut cmd = Command::new(&tool);
        cmd.arg(&out_dir).arg(&cap).arg(rules.as_ref().map_or(PathBuf::new(), |r| r.0.clone()));
        if a.threads > 1 {
            cmd.env("SURICATA_THREADS", "auto").args(["--runmode", "autofp", "--set", &format!("threading.cpu-affinity.0.worker-cpu-set.cpu=[0-{}]", a.threads - 1)]);
        }
        let st = cmd.output()?;
        let secs = t.elapsed().as_secs_f64();
        if !st.status.success() {
            bail!("suricata failed: {}", String::from_utf8_lossy(&st.stdout));
        }
        best_s = best_s.min(secs);
    }
    println!(
        "suricata    threads {}  packets {packets}  best of {}: {best_s:.3} s  {:.0} packets/s   ({what})",
        a.threads,
        a.runs,
        packets as f64 / best_s
    );
    println!("speed-up {:.2}x", best_s / best_p);
    Ok(())
}
