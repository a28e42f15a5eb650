//! `portcullis rules check`: loads rule files as the engine would and reports what loaded,
//! what was skipped and why, ranked by keyword, so an operator sees at a glance what part of
//! a ruleset Portcullis enforces. `--emit-loaded` writes the loaded rules' text so Suricata
//! can be run on exactly the same set.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use portcullis_config::Config;
use portcullis_rules::{LoadReport, RuleSet, SkipKind};

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Load rule files and report loaded and skipped rules (exit status 1 only when a file
    /// cannot be read).
    Check(CheckArgs),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Rule files, or directories of `*.rules` files [default: the config's rule-files].
    #[arg(value_name = "FILE|DIR")]
    files: Vec<PathBuf>,
    /// Configuration file, for variables, rule files and the classification and reference
    /// files (Suricata's defaults apply when omitted).
    #[arg(short, long, value_name = "CONFIG")]
    config: Option<PathBuf>,
    /// classification.config [default: the config's classification-file, else a
    /// classification.config beside the first rule file, else none].
    #[arg(long, value_name = "FILE")]
    classification: Option<PathBuf>,
    /// reference.config [default: the config's reference-config-file, else a
    /// reference.config beside the first rule file, else none].
    #[arg(long, value_name = "FILE")]
    reference: Option<PathBuf>,
    /// Print only `{"loaded", "skipped", "skipped_by_keyword", "errors"}` as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Write the loaded rules' text, one per line, to FILE.
    #[arg(long, value_name = "FILE")]
    emit_loaded: Option<PathBuf>,
}

/// How many skip warnings the text report shows.
const SHOWN_WARNINGS: usize = 10;

pub fn run(cmd: RulesCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        RulesCommand::Check(a) => check(a),
    }
}

/// Loads rule files with the config's variables. `classification.config` and
/// `reference.config` come from the arguments, else the config, else (Suricata's own layout)
/// beside the first rule file.
/// A directory stands for the `*.rules` files in it, in name order (a ruleset as shipped,
/// ET Open's for one); files are kept as given.
fn expand(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for p in paths {
        match std::fs::read_dir(p) {
            Ok(dir) if p.is_dir() => {
                let mut rules: Vec<PathBuf> =
                    dir.filter_map(|e| e.ok().map(|e| e.path())).filter(|f| f.extension().is_some_and(|x| x == "rules") && f.is_file()).collect();
                rules.sort();
                out.extend(rules);
            }
            // An unreadable directory or a file: the loader reports what it cannot read.
            _ => out.push(p.clone()),
        }
    }
    out
}

/// Returns the report and the classification file used.
pub(crate) fn load(cfg: &Config, files: &[PathBuf], classification: Option<&Path>, reference: Option<&Path>) -> anyhow::Result<(LoadReport, Option<PathBuf>)> {
    let files = &expand(files);
    let beside = |name: &str| files.first().and_then(|f| f.parent()).map(|d| d.join(name)).filter(|p| p.is_file());
    let classification = classification.map(Path::to_path_buf).or_else(|| cfg.classification_file.clone()).or_else(|| beside("classification.config"));
    let reference = reference.map(Path::to_path_buf).or_else(|| cfg.reference_config_file.clone()).or_else(|| beside("reference.config"));
    let report = RuleSet::load(files, &cfg.rule_vars(), classification.as_deref(), reference.as_deref())?;
    Ok((report, classification))
}

fn check(a: CheckArgs) -> anyhow::Result<ExitCode> {
    let cfg = match &a.config {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    let files = if a.files.is_empty() { cfg.rule_paths() } else { a.files.clone() };
    if files.is_empty() {
        anyhow::bail!("no rule files: give FILE arguments or set rule-files in the config");
    }
    let (mut report, classification) = load(&cfg, &files, a.classification.as_deref(), a.reference.as_deref())?;
    drop_uncompiled(&mut report);

    if let Some(out) = &a.emit_loaded {
        emit(out, &report).with_context(|| format!("{}: cannot write", out.display()))?;
    }
    if a.json {
        println!("{}", json(&report));
    } else {
        print_text(&report, classification.as_deref());
    }
    let unreadable = files.len() - report.files;
    Ok(if unreadable > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// Compiles what loaded, as a replay would, and moves the rules the engine refuses (a PCRE2
/// error, a transformation it lacks, buffers of two protocols in one rule) to the skipped,
/// so "loaded" means "inspected".
fn drop_uncompiled(report: &mut LoadReport) {
    let (_, warnings) = portcullis_detect::Engine::build(report.rules.clone(), &portcullis_detect::DetectConfig::default());
    if warnings.is_empty() {
        return;
    }
    let refused: std::collections::HashSet<(u32, u32)> = warnings.iter().map(|w| (w.gid, w.sid)).collect();
    report.rules.retain(|r| !refused.contains(&(r.gid, r.sid)));
    for w in warnings {
        // The keyword is the first name the reason quotes (`sticky buffer `x``), else pcre.
        let keyword = w.reason.split('`').nth(1).map(str::to_string).or_else(|| w.reason.contains("PCRE2").then(|| "pcre".to_string()));
        report.skipped.push(portcullis_rules::Skipped {
            origin: w.origin,
            sid: Some(w.sid),
            keyword,
            kind: SkipKind::Unsupported,
            reason: format!("not compiled: {}", w.reason),
        });
    }
}

fn emit(out: &Path, report: &LoadReport) -> std::io::Result<()> {
    let mut w = std::io::BufWriter::new(std::fs::File::create(out)?);
    for r in &report.rules {
        writeln!(w, "{}", r.text)?;
    }
    w.flush()
}

fn json(report: &LoadReport) -> serde_json::Value {
    let by_kw: serde_json::Map<String, serde_json::Value> = report.skipped_by_keyword().into_iter().map(|(k, n)| (k, n.into())).collect();
    serde_json::json!({
        "loaded": report.rules.len(),
        "skipped": report.skipped.len(),
        "skipped_by_keyword": by_kw,
        "errors": report.errors,
    })
}

fn print_text(report: &LoadReport, classification: Option<&Path>) {
    println!("{} rule file(s): {} rules loaded, {} skipped", report.files, report.rules.len(), report.skipped.len());
    match classification {
        Some(c) => println!("classification: {}", c.display()),
        None => println!("classification: none (classtypes unchecked, priority 3 unless the rule says)"),
    }
    if !report.skipped.is_empty() {
        let count = |k: SkipKind| report.skipped.iter().filter(|s| s.kind == k).count();
        println!(
            "skipped: {} need app-layer inspection, {} use an unsupported keyword, {} an unknown keyword, {} do not parse, {} are invalid, {} repeat a sid",
            count(SkipKind::AppLayer),
            count(SkipKind::Unsupported),
            count(SkipKind::Unknown),
            count(SkipKind::Syntax),
            count(SkipKind::Invalid),
            count(SkipKind::DuplicateSid),
        );
    }
    let by_kw = report.skipped_by_keyword();
    if !by_kw.is_empty() {
        println!("skipped by keyword:");
        for (k, n) in &by_kw {
            println!("  {n:>7}  {k}");
        }
    }
    if !report.skipped.is_empty() {
        println!("first warnings:");
        for s in report.skipped.iter().take(SHOWN_WARNINGS) {
            println!("  {s}");
        }
        if report.skipped.len() > SHOWN_WARNINGS {
            println!("  ... and {} more", report.skipped.len() - SHOWN_WARNINGS);
        }
    }
    for e in &report.errors {
        println!("error: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_stands_for_its_rules_files_in_name_order() {
        let d = tempfile::tempdir().unwrap();
        for f in ["b.rules", "a.rules", "notes.txt"] {
            std::fs::write(d.path().join(f), "").unwrap();
        }
        std::fs::create_dir(d.path().join("sub.rules")).unwrap();
        let other = PathBuf::from("/nonexistent/x.rules");
        let got = expand(&[d.path().to_path_buf(), other.clone()]);
        assert_eq!(got, vec![d.path().join("a.rules"), d.path().join("b.rules"), other]);
    }
}
