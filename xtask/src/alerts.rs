//! `cargo xtask alert-diff`: Portcullis's alerts against Suricata's with the same rules.
//!
//! The rule files go through `portcullis rules check --emit-loaded`, so both engines get
//! exactly the rules Portcullis loaded. Each capture is replayed on its own by Suricata 7
//! (`shared/tools/suricata-ref`, single-threaded, whose output is cached by capture and rule
//! set) and by Portcullis, both with Suricata's default `vars` (HOME_NET
//! `[192.168.0.0/16,10.0.0.0/8,172.16.0.0/12]`, EXTERNAL_NET `!$HOME_NET`). Alerts are
//! compared by signature id, flow and number: a flow is the protocol, the unordered pair of
//! endpoints, the VLAN ids and the flow's start time (from the alert's `flow` object, else
//! from the flow event with the same `flow_id`), as `suricata-diff` matches flows. Recall is
//! the share of Suricata's alerts Portcullis also raised, precision the share of Portcullis's
//! alerts Suricata also raised.

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Args;
use serde_json::{json, Value};

use portcullis_dataplane::capture_files;

use crate::verify::{default_vars, Caps};
use crate::{data_dir, portcullis_bin, suricata_ref, workspace_root};

#[derive(Debug, Args)]
pub struct AlertArgs {
    /// Captures or directories [default: the attack, nDPI and Zeek captures of the shared data].
    captures: Vec<PathBuf>,
    /// More captures or directories (the same as the positional list).
    #[arg(long = "captures", num_args = 1.., value_name = "CAPTURE")]
    more_captures: Vec<PathBuf>,
    /// Rule files or directories of them [default: the shared ET Open 2024-04 snapshot].
    #[arg(long, num_args = 1..)]
    rules: Vec<PathBuf>,
    /// Use only every Nth capture.
    #[arg(long, default_value_t = 1)]
    every: usize,
    /// Write totals, per-capture and per-sid results as JSON.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Exit non-zero when recall (percent of Suricata's alerts) is below this.
    #[arg(long)]
    min_recall: Option<f64>,
    /// Exit non-zero when precision (percent of Portcullis's alerts) is below this.
    #[arg(long)]
    min_precision: Option<f64>,
    /// Captures replayed at once.
    #[arg(long, default_value_t = 2)]
    jobs: usize,
    /// Working directory [default: target/alert-diff]; Suricata's output is cached under it.
    #[arg(long)]
    work: Option<PathBuf>,
    /// The portcullis binary [default: build the release binary].
    #[arg(long)]
    portcullis: Option<PathBuf>,
    /// Signatures to list in the worst-recall and worst-precision tables.
    #[arg(long, default_value_t = 15)]
    show: usize,
}

/// A flow as both engines can name it: (proto, lower endpoint, higher endpoint, vlan, start).
pub type FlowKey = (String, String, String, String, String);

/// Alerts per (signature id, flow).
pub type AlertCounts = HashMap<(u64, FlowKey), u64>;

fn endpoint(ip: &Value, port: &Value) -> String {
    // Suricata writes IPv6 addresses fully expanded; compare addresses, not spellings.
    let ip = ip.as_str().and_then(|s| s.parse::<IpAddr>().ok()).map_or_else(|| ip.to_string(), |a| a.to_string());
    format!("{ip}:{}", port.as_u64().unwrap_or(0))
}

/// The alerts of one EVE file, keyed by signature and flow.
pub fn alerts_of(events: &[Value]) -> AlertCounts {
    let starts: HashMap<u64, &str> = events
        .iter()
        .filter(|e| e["event_type"] == "flow")
        .filter_map(|e| Some((e["flow_id"].as_u64()?, e["flow"]["start"].as_str()?)))
        .collect();
    let mut out = AlertCounts::new();
    for e in events.iter().filter(|e| e["event_type"] == "alert") {
        let Some(sid) = e["alert"]["signature_id"].as_u64() else { continue };
        let f = &e["flow"];
        let (a, b) = if f["src_ip"].is_string() {
            (endpoint(&f["src_ip"], &f["src_port"]), endpoint(&f["dest_ip"], &f["dest_port"]))
        } else {
            (endpoint(&e["src_ip"], &e["src_port"]), endpoint(&e["dest_ip"], &e["dest_port"]))
        };
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        let start = f["start"].as_str().or_else(|| e["flow_id"].as_u64().and_then(|id| starts.get(&id).copied())).unwrap_or("");
        let key = (e["proto"].as_str().unwrap_or("").to_string(), lo, hi, e["vlan"].to_string(), start.to_string());
        *out.entry((sid, key)).or_default() += 1;
    }
    out
}

/// Alert counts compared: matched alerts, Suricata's total, Portcullis's total.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Score {
    pub matched: u64,
    pub suricata: u64,
    pub portcullis: u64,
}

impl Score {
    fn add(&mut self, o: Score) {
        self.matched += o.matched;
        self.suricata += o.suricata;
        self.portcullis += o.portcullis;
    }
    /// Percent of Suricata's alerts Portcullis raised (100 when Suricata raised none).
    pub fn recall(&self) -> f64 {
        if self.suricata == 0 {
            100.0
        } else {
            100.0 * self.matched as f64 / self.suricata as f64
        }
    }
    /// Percent of Portcullis's alerts Suricata raised (100 when Portcullis raised none).
    pub fn precision(&self) -> f64 {
        if self.portcullis == 0 {
            100.0
        } else {
            100.0 * self.matched as f64 / self.portcullis as f64
        }
    }
}

/// Compares two captures' alerts: per signature, and examples of flows that differ.
pub fn compare(s: &AlertCounts, p: &AlertCounts) -> (BTreeMap<u64, Score>, Vec<Value>) {
    let mut per_sid: BTreeMap<u64, Score> = BTreeMap::new();
    let mut diffs = Vec::new();
    let keys: std::collections::BTreeSet<&(u64, FlowKey)> = s.keys().chain(p.keys()).collect();
    for k in keys {
        let (sn, pn) = (s.get(k).copied().unwrap_or(0), p.get(k).copied().unwrap_or(0));
        per_sid.entry(k.0).or_default().add(Score { matched: sn.min(pn), suricata: sn, portcullis: pn });
        if sn != pn {
            let f = &k.1;
            diffs.push(json!({"sid": k.0, "proto": f.0, "a": f.1, "b": f.2, "vlan": f.3, "start": f.4, "suricata": sn, "portcullis": pn}));
        }
    }
    (per_sid, diffs)
}

fn read_events(path: &Path) -> anyhow::Result<Vec<Value>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect())
}

pub fn rule_files(inputs: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for i in inputs {
        if i.is_dir() {
            let mut v: Vec<PathBuf> = std::fs::read_dir(i)?.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "rules")).collect();
            v.sort();
            out.extend(v);
        } else if i.exists() {
            out.push(i.clone());
        } else {
            bail!("{} does not exist", i.display());
        }
    }
    Ok(out)
}

/// Runs `portcullis rules check --json --emit-loaded OUT FILES...` and prints what it loaded.
pub fn emit_loaded(bin: &Path, files: &[PathBuf], out: &Path) -> anyhow::Result<Value> {
    let res = Command::new(bin).args(["rules", "check", "--json", "--emit-loaded"]).arg(out).args(files).output()?;
    let v: Value = serde_json::from_slice(&res.stdout)
        .with_context(|| format!("`portcullis rules check --json` printed no JSON: {}", String::from_utf8_lossy(&res.stderr).lines().next().unwrap_or("")))?;
    anyhow::ensure!(out.exists(), "`portcullis rules check --emit-loaded` wrote no {}", out.display());
    let mut kws: Vec<(String, u64)> = v["skipped_by_keyword"].as_object().map(|m| m.iter().map(|(k, n)| (k.clone(), n.as_u64().unwrap_or(0))).collect()).unwrap_or_default();
    kws.sort_by_key(|k| std::cmp::Reverse(k.1));
    let top: Vec<String> = kws.iter().take(12).map(|(k, n)| format!("{k} {n}")).collect();
    println!(
        "rules: {} loaded, {} skipped, {} errors; skipped for: {}",
        v["loaded"],
        v["skipped"],
        v["errors"].as_array().map_or(0, Vec::len),
        if top.is_empty() { "-".into() } else { top.join(", ") }
    );
    Ok(v)
}

/// A stable name for the cache: the capture's path, size and mtime, and the rules' contents.
fn cache_key(cap: &Path, rules_text: &str) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    cap.hash(&mut h);
    if let Ok(m) = std::fs::metadata(cap) {
        m.len().hash(&mut h);
        m.modified().ok().hash(&mut h);
    }
    rules_text.hash(&mut h);
    format!("{:016x}", h.finish())
}

/// Suricata's EVE for one capture, from the cache or a fresh run. `None` when Suricata
/// refuses the capture (unsupported link types).
fn suricata_eve(tool: &Path, cap: &Path, rules: &Path, dir: &Path) -> anyhow::Result<Option<PathBuf>> {
    let eve = dir.join("eve.json");
    let done = dir.join("done");
    // Only a run that worked is reused: a failure may have been passing (a full disk, or an
    // older xtask's jobs racing for apt), so it is tried again next time.
    if done.exists() && eve.exists() {
        return Ok(Some(eve));
    }
    let _ = std::fs::remove_file(&done);
    let out = Command::new(tool).arg(dir).arg(cap).arg(rules).output().with_context(|| format!("running {}", tool.display()))?;
    std::fs::write(dir.join("suricata-ref.out"), [&out.stdout[..], &out.stderr[..]].concat())?;
    if !(out.status.success() && eve.exists()) {
        return Ok(None);
    }
    std::fs::write(&done, "ok")?;
    Ok(Some(eve))
}

struct CaptureResult {
    per_sid: BTreeMap<u64, Score>,
    diffs: Vec<Value>,
    suricata_failed: bool,
}

/// What every capture's comparison shares: the tools, the config and the loaded rules.
struct Job<'a> {
    tool: &'a Path,
    bin: &'a Path,
    cfg: &'a Path,
    rules: &'a Path,
    rules_text: &'a str,
    work: &'a Path,
}

fn run_one(job: &Job<'_>, cap: &Path, i: usize) -> anyhow::Result<CaptureResult> {
    let &Job { tool, bin, cfg, rules, rules_text, work } = job;
    let sdir = work.join("suricata").join(cache_key(cap, rules_text));
    std::fs::create_dir_all(&sdir)?;
    let Some(s_eve) = suricata_eve(tool, cap, rules, &sdir)? else {
        return Ok(CaptureResult { per_sid: BTreeMap::new(), diffs: vec![], suricata_failed: true });
    };
    let p_eve = work.join("portcullis").join(format!("{i:04}.json"));
    std::fs::create_dir_all(p_eve.parent().unwrap_or(work))?;
    let _ = std::fs::remove_file(&p_eve);
    let out = Command::new(bin)
        // Signatures only: the model's alerts (gid 9000) have no Suricata counterpart.
        .args(["replay", "-q", "--no-progress", "--no-ml", "--threads", "1", "--config"])
        .arg(cfg)
        .arg("--eve")
        .arg(&p_eve)
        .arg("--rules")
        .arg(rules)
        .arg(cap)
        .output()?;
    if !out.status.success() {
        bail!("portcullis failed on {}: {}", cap.display(), String::from_utf8_lossy(&out.stderr));
    }
    let (per_sid, diffs) = compare(&alerts_of(&read_events(&s_eve)?), &alerts_of(&read_events(&p_eve)?));
    Ok(CaptureResult { per_sid, diffs, suricata_failed: false })
}

pub fn run(a: AlertArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let d = data_dir();
    let given: Vec<PathBuf> = a.captures.iter().chain(&a.more_captures).cloned().collect();
    let inputs = if given.is_empty() { vec![d.join("pcaps/attacks"), d.join("pcaps/ndpi"), d.join("pcaps/benign")] } else { given };
    if let Some(missing) = inputs.iter().find(|p| !p.exists()) {
        bail!("{} does not exist (set PORTCULLIS_DATA to the shared data directory)", missing.display());
    }
    let caps: Vec<PathBuf> = capture_files(&inputs)?.into_iter().step_by(a.every.max(1)).collect();
    anyhow::ensure!(!caps.is_empty(), "no captures in {inputs:?}");
    let rule_inputs = if a.rules.is_empty() { vec![d.join("rules/et-open-2024-04")] } else { a.rules.clone() };
    let files = rule_files(&rule_inputs)?;
    anyhow::ensure!(!files.is_empty(), "no .rules files in {rule_inputs:?}");

    let bin = match &a.portcullis {
        Some(b) => b.clone(),
        None => portcullis_bin()?,
    };
    let work = a.work.clone().unwrap_or_else(|| workspace_root().join("target/alert-diff"));
    std::fs::create_dir_all(&work)?;
    let work = work.canonicalize()?;
    let probe = Caps::probe(&bin, &work)?;
    if !probe.rules_check || !probe.rules_flag {
        bail!("this portcullis cannot load rules yet (`rules check --emit-loaded` and `replay --rules` are needed); nothing to compare");
    }
    if !probe.types.contains("alert") {
        bail!("this portcullis's config has no `alert` EVE type yet; nothing to compare");
    }
    let loaded = work.join("loaded.rules");
    let check = emit_loaded(&bin, &files, &loaded)?;
    let rules_text = std::fs::read_to_string(&loaded)?;
    // suricata-ref looks for classification.config next to the rules.
    let class = files[0].with_file_name("classification.config");
    if class.exists() {
        std::fs::copy(&class, work.join("classification.config"))?;
    }

    let cfg = work.join("portcullis.yaml");
    let mut config = json!({"vars": default_vars(), "outputs": {"eve-log": {"types": ["alert"]}}});
    if probe.types.contains("flow") {
        config["outputs"]["eve-log"]["types"] = json!(["alert", "flow"]);
    }
    if class.exists() {
        config["classification-file"] = json!(class);
    }
    std::fs::write(&cfg, serde_yaml_ng::to_string(&config)?)?;

    let tool = suricata_ref(&caps[0], &work.join("install"))?;
    let job = Job { tool: &tool, bin: &bin, cfg: &cfg, rules: &loaded, rules_text: &rules_text, work: &work };
    eprintln!("alert-diff: {} captures, {} jobs", caps.len(), a.jobs);
    let queue = Mutex::new(caps.iter().enumerate());
    let results: Mutex<Vec<(PathBuf, anyhow::Result<CaptureResult>)>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..a.jobs.max(1) {
            s.spawn(|| loop {
                let next = queue.lock().map(|mut q| q.next()).ok().flatten();
                let Some((i, cap)) = next else { break };
                let r = run_one(&job, cap, i);
                if let Ok(mut v) = results.lock() {
                    v.push((cap.clone(), r));
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_default();
    results.sort_by(|x, y| x.0.cmp(&y.0));

    let mut total = Score::default();
    let mut per_sid: BTreeMap<u64, Score> = BTreeMap::new();
    let mut per_capture = Vec::new();
    let mut examples = Vec::new();
    let mut refused = Vec::new();
    for (cap, r) in &results {
        let r = match r {
            Ok(r) => r,
            Err(e) => bail!("{}: {e:#}", cap.display()),
        };
        if r.suricata_failed {
            refused.push(cap.display().to_string());
            continue;
        }
        let mut c = Score::default();
        for (sid, sc) in &r.per_sid {
            per_sid.entry(*sid).or_default().add(*sc);
            c.add(*sc);
        }
        total.add(c);
        if c.suricata + c.portcullis > 0 {
            per_capture.push(json!({"capture": cap, "suricata": c.suricata, "portcullis": c.portcullis, "matched": c.matched,
                "recall": c.recall(), "precision": c.precision()}));
        }
        for e in &r.diffs {
            let mut e = e.clone();
            e["capture"] = json!(cap.file_name().map(|n| n.to_string_lossy().to_string()));
            examples.push(e);
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "captures {} ({} refused by Suricata)  alerts: suricata {}  portcullis {}  matched {}  recall {:.2} %  precision {:.2} %  ({secs:.0} s)",
        results.len() - refused.len(),
        refused.len(),
        total.suricata,
        total.portcullis,
        total.matched,
        total.recall(),
        total.precision()
    );
    let sid_row = |(sid, s): &(&u64, &Score)| json!({"sid": sid, "suricata": s.suricata, "portcullis": s.portcullis, "matched": s.matched});
    let mut missed: Vec<(&u64, &Score)> = per_sid.iter().filter(|(_, s)| s.suricata > s.matched).collect();
    missed.sort_by(|x, y| (y.1.suricata - y.1.matched).cmp(&(x.1.suricata - x.1.matched)).then(x.0.cmp(y.0)));
    let mut extra: Vec<(&u64, &Score)> = per_sid.iter().filter(|(_, s)| s.portcullis > s.matched).collect();
    extra.sort_by(|x, y| (y.1.portcullis - y.1.matched).cmp(&(x.1.portcullis - x.1.matched)).then(x.0.cmp(y.0)));
    println!("  signatures: {} alerted by either, {} with alerts Portcullis missed, {} with alerts Suricata did not raise", per_sid.len(), missed.len(), extra.len());
    for (title, rows, n) in [("missed by Portcullis (worst recall)", &missed, false), ("not raised by Suricata (worst precision)", &extra, true)] {
        if rows.is_empty() {
            continue;
        }
        println!("  {title}:");
        for (sid, s) in rows.iter().take(a.show) {
            let n = if n { s.portcullis - s.matched } else { s.suricata - s.matched };
            println!("    sid {sid:<9} {n:>6} alerts   suricata {:>6}  portcullis {:>6}", s.suricata, s.portcullis);
        }
    }
    if let Some(r) = &a.report {
        let report = json!({
            "captures": results.len() - refused.len(), "refused_by_suricata": refused,
            "rules": {"files": files, "loaded": check["loaded"], "skipped": check["skipped"], "skipped_by_keyword": check["skipped_by_keyword"]},
            "suricata": total.suricata, "portcullis": total.portcullis, "matched": total.matched,
            "recall_pct": total.recall(), "precision_pct": total.precision(),
            "worst_recall": missed.iter().map(sid_row).collect::<Vec<_>>(),
            "worst_precision": extra.iter().map(sid_row).collect::<Vec<_>>(),
            "per_sid": per_sid.iter().map(|e| sid_row(&e)).collect::<Vec<_>>(),
            "per_capture": per_capture, "differences": examples,
        });
        std::fs::write(r, serde_json::to_string_pretty(&report)?)?;
    }
    let mut failed = Vec::new();
    if let Some(m) = a.min_recall.filter(|m| total.recall() < *m) {
        failed.push(format!("recall {:.2} % is below the required {m} %", total.recall()));
    }
    if let Some(m) = a.min_precision.filter(|m| total.precision() < *m) {
        failed.push(format!("precision {:.2} % is below the required {m} %", total.precision()));
    }
    if !failed.is_empty() {
        bail!("{}", failed.join("; "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(lines: &[&str]) -> Vec<Value> {
        lines.iter().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    #[test]
    fn alerts_key_by_sid_and_flow_either_way_round() {
        // Suricata: the alert carries its flow; the second alert is from the other side.
        let s = events(&[
            r#"{"event_type":"alert","flow_id":1,"proto":"TCP","src_ip":"10.0.0.1","src_port":1234,"dest_ip":"1.2.3.4","dest_port":80,"alert":{"signature_id":7},"flow":{"start":"2010-01-04T17:29:26.889635+0000","src_ip":"10.0.0.1","src_port":1234,"dest_ip":"1.2.3.4","dest_port":80}}"#,
            r#"{"event_type":"alert","flow_id":1,"proto":"TCP","src_ip":"1.2.3.4","src_port":80,"dest_ip":"10.0.0.1","dest_port":1234,"alert":{"signature_id":7},"flow":{"start":"2010-01-04T17:29:26.889635+0000","src_ip":"10.0.0.1","src_port":1234,"dest_ip":"1.2.3.4","dest_port":80}}"#,
            r#"{"event_type":"alert","flow_id":1,"proto":"TCP","src_ip":"10.0.0.1","src_port":1234,"dest_ip":"1.2.3.4","dest_port":80,"alert":{"signature_id":8},"flow":{"start":"2010-01-04T17:29:26.889635+0000","src_ip":"10.0.0.1","src_port":1234,"dest_ip":"1.2.3.4","dest_port":80}}"#,
        ]);
        // Portcullis without a flow object: the start comes from the flow event.
        let p = events(&[
            r#"{"event_type":"alert","flow_id":99,"proto":"TCP","src_ip":"1.2.3.4","src_port":80,"dest_ip":"10.0.0.1","dest_port":1234,"alert":{"signature_id":7}}"#,
            r#"{"event_type":"alert","flow_id":99,"proto":"TCP","src_ip":"10.0.0.1","src_port":1234,"dest_ip":"1.2.3.4","dest_port":80,"alert":{"signature_id":9}}"#,
            r#"{"event_type":"flow","flow_id":99,"proto":"TCP","flow":{"start":"2010-01-04T17:29:26.889635+0000"}}"#,
        ]);
        let (sa, pa) = (alerts_of(&s), alerts_of(&p));
        assert_eq!(sa.len(), 2);
        assert_eq!(sa.values().sum::<u64>(), 3);
        let (per_sid, diffs) = compare(&sa, &pa);
        assert_eq!(per_sid[&7], Score { matched: 1, suricata: 2, portcullis: 1 });
        assert_eq!(per_sid[&8], Score { matched: 0, suricata: 1, portcullis: 0 });
        assert_eq!(per_sid[&9], Score { matched: 0, suricata: 0, portcullis: 1 });
        assert_eq!(diffs.len(), 3);
        let mut t = Score::default();
        per_sid.values().for_each(|s| t.add(*s));
        assert_eq!((t.matched, t.suricata, t.portcullis), (1, 3, 2));
        assert!((t.recall() - 100.0 / 3.0).abs() < 1e-9);
        assert!((t.precision() - 50.0).abs() < 1e-9);
    }

    #[test]
    fn different_starts_are_different_flows() {
        let a = events(&[r#"{"event_type":"alert","proto":"UDP","src_ip":"::1","src_port":1,"dest_ip":"::2","dest_port":2,"alert":{"signature_id":1},"flow":{"start":"A"}}"#]);
        let b = events(&[r#"{"event_type":"alert","proto":"UDP","src_ip":"0000:0000:0000:0000:0000:0000:0000:0001","src_port":1,"dest_ip":"::2","dest_port":2,"alert":{"signature_id":1},"flow":{"start":"B"}}"#]);
        let c = events(&[r#"{"event_type":"alert","proto":"UDP","src_ip":"0000:0000:0000:0000:0000:0000:0000:0001","src_port":1,"dest_ip":"::2","dest_port":2,"alert":{"signature_id":1},"flow":{"start":"A"}}"#]);
        assert_eq!(compare(&alerts_of(&a), &alerts_of(&b)).0[&1].matched, 0);
        // IPv6 spellings agree.
        assert_eq!(compare(&alerts_of(&a), &alerts_of(&c)).0[&1].matched, 1);
        assert_eq!(Score::default().recall(), 100.0);
    }
}
