//! `cargo xtask`: project automation that needs more than cargo.
//!
//! - `suricata-diff`: runs Suricata 7 (through `shared/tools/suricata-ref`) and Portcullis on
//!   the same captures with the same flow timeouts and compares their flow records.
//! - `bench-replay`: times Portcullis and Suricata on one large capture in the same run.
//! - `suricata-verify`: runs the suricata-verify corpus against Portcullis, with a ratchet of
//!   tests that must keep passing.
//! - `alert-diff`: ET Open alerts of Portcullis against Suricata's on the shared captures.
//! - `bench-live`: live capture on veth pairs in network namespaces (tap and inline), Portcullis
//!   against Suricata's AF_PACKET in the same run (needs root).

mod alerts;
mod bench;
mod diff;
mod live;
mod sv;
mod verify;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "xtask")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Compare Portcullis's flow records with Suricata's, capture by capture.
    SuricataDiff(diff::DiffArgs),
    /// Replay one capture with Portcullis and with Suricata and compare packets/s.
    BenchReplay(bench::BenchArgs),
    /// Run the suricata-verify tests Portcullis can run and check their expected EVE events.
    SuricataVerify(verify::VerifyArgs),
    /// Compare Portcullis's alerts with Suricata's on the shared captures with the same rules.
    AlertDiff(alerts::AlertArgs),
    /// Live capture in network namespaces: receive rate (tap) and inline forwarding rate and
    /// latency, Portcullis against Suricata 7 on AF_PACKET (root only).
    BenchLive(live::LiveArgs),
    /// One end of bench-live's latency probe (run inside a namespace by bench-live).
    #[command(hide = true)]
    LiveProbe(live::probe::ProbeArgs),
}

pub use portcullis_common::shared_data_dir as data_dir;

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Builds the portcullis binary and returns its path: the `release` profile, or the one
/// `PORTCULLIS_CARGO_PROFILE` names. `PORTCULLIS_BIN`, when set, names a binary built
/// already, used as it is: `scripts/test.sh` builds the whole workspace once and points here,
/// because a `--package portcullis` build resolves features differently from the workspace's
/// and would compile much of the tree a second time.
pub fn portcullis_bin() -> anyhow::Result<PathBuf> {
    if let Some(bin) = std::env::var_os("PORTCULLIS_BIN") {
        let bin = PathBuf::from(bin);
        anyhow::ensure!(bin.is_file(), "PORTCULLIS_BIN={} is not a file", bin.display());
        return Ok(bin);
    }
    let profile = std::env::var("PORTCULLIS_CARGO_PROFILE").unwrap_or_else(|_| "release".into());
    let status = Command::new(env!("CARGO"))
        .args(["build", "--profile", &profile, "--quiet", "--package", "portcullis"])
        .current_dir(workspace_root())
        .status()?;
    anyhow::ensure!(status.success(), "cargo build of portcullis ({profile} profile) failed");
    // The build above went to CARGO_TARGET_DIR when it is set (cargo passes it down).
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace_root().join("target"), PathBuf::from);
    Ok(target.join(&profile).join("portcullis"))
}

/// The shared `tools/suricata-ref`, which installs Suricata from bookworm-backports on its
/// first run. Jobs that start it in parallel on a machine without Suricata race for apt's lock,
/// and all but one fail as if Suricata had refused their capture, so the comparisons call this
/// before their jobs: when `suricata` is missing it runs the tool once, alone, on `capture`.
pub fn suricata_ref(capture: &Path, scratch: &Path) -> anyhow::Result<PathBuf> {
    let tool = data_dir().join("../tools/suricata-ref");
    let have = || Command::new("suricata").arg("-V").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success());
    if !have() {
        eprintln!("installing the reference Suricata ({} runs once before the jobs start)", tool.display());
        let out = Command::new(&tool).arg(scratch).arg(capture).output().map_err(|e| anyhow::anyhow!("running {}: {e}", tool.display()))?;
        anyhow::ensure!(have(), "{} did not install Suricata: {}", tool.display(), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(tool)
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().cmd {
        Cmd::SuricataDiff(a) => diff::run(a),
        Cmd::BenchReplay(a) => bench::run(a),
        Cmd::SuricataVerify(a) => verify::run(a),
        Cmd::AlertDiff(a) => alerts::run(a),
        Cmd::BenchLive(a) => live::run(a),
        Cmd::LiveProbe(a) => live::probe::run(a),
    }
}
