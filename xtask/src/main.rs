//! `cargo xtask`: project automation that needs more than cargo.
//!
//! - `suricata-diff`: runs Suricata 7 (through `shared/tools/suricata-ref`) and Portcullis on
//!   the same captures with the same flow timeouts and compares their flow records.
//! - `bench-replay`: times Portcullis and Suricata on one large capture in the same run.

mod bench;
mod diff;

use std::path::PathBuf;

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
}

pub use portcullis_common::shared_data_dir as data_dir;

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Builds the release binary and returns its path.
pub fn portcullis_bin() -> anyhow::Result<PathBuf> {
    let status = std::process::Command::new(env!("CARGO"))
        .args(["build", "--release", "--quiet", "--package", "portcullis"])
        .current_dir(workspace_root())
        .status()?;
    anyhow::ensure!(status.success(), "cargo build of portcullis failed");
    Ok(workspace_root().join("target/release/portcullis"))
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().cmd {
        Cmd::SuricataDiff(a) => diff::run(a),
        Cmd::BenchReplay(a) => bench::run(a),
    }
}
