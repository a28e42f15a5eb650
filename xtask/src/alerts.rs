//! placeholder
use clap::Args;
#[derive(Debug, Args)]
pub struct AlertArgs {}
pub fn run(_a: AlertArgs) -> anyhow::Result<()> { anyhow::bail!("not yet") }
