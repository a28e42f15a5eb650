//! Differential check of flow records against Suricata.
//!
//! Both engines replay each capture on its own with the same flow timeouts; Suricata through
//! `shared/tools/suricata-ref` (single-threaded, flow logging only). Flows are matched by
//! protocol, the unordered pair of endpoints, VLAN ids and start time, and agree when the
//! packets and bytes sent by each endpoint are equal. Which endpoint each engine calls the
//! client does not matter: only what each side sent.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use anyhow::{bail, Context};
use clap::Args;
use serde_json::{json, Value};

use portcullis_dataplane::capture_files;

use crate::{data_dir, portcullis_bin, suricata_ref, workspace_root};

/// Timeouts given to both engines: (protocol, new, established, closed).
const TIMEOUTS: [(&str, u32, u32, u32); 4] =
    [("default", 30, 300, 0), ("tcp", 60, 600, 60), ("udp", 30, 300, 0), ("icmp", 30, 300, 0)];

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// Captures or directories [default: the nDPI and Zeek benign captures of the shared data].
    captures: Vec<PathBuf>,
    /// Use only every Nth capture (a quick subset for CI).
    #[arg(long, default_value_t = 1)]
    every: usize,
    /// Exit non-zero unless the agreement (percent of all flows) is at least this.
    #[arg(long)]
    min_agreement: Option<f64>,
    /// Write the per-capture results and disagreements as JSON.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Captures compared at once.
    #[arg(long, default_value_t = 2)]
    jobs: usize,
    /// Working directory for both engines' output [default: target/suricata-diff].
    #[arg(long)]
    work: Option<PathBuf>,
    /// Disagreements to print.
    #[arg(long, default_value_t = 15)]
    show: usize,
}

/// One flow as compared: what each endpoint sent.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Flow {
    /// (ip, port) of the lower endpoint, then the higher.
    a: (String, u64),
    b: (String, u64),
    a_sent: (u64, u64),
    b_sent: (u64, u64),
}

type Key = (String, String, String, String, String);

fn flows_of(eve: &Path) -> anyhow::Result<HashMap<Key, Vec<Flow>>> {
    let text = std::fs::read_to_string(eve).with_context(|| format!("reading {}", eve.display()))?;
    let mut out: HashMap<Key, Vec<Flow>> = HashMap::new();
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else { continue };
        if v["event_type"] != "flow" {
            continue;
        }
        let f = &v["flow"];
        // Suricata writes IPv6 addresses fully expanded; compare addresses, not spellings.
        let ip = |s: &Value| s.as_str().and_then(|s| s.parse::<IpAddr>().ok()).map_or_else(|| s.to_string(), |a| a.to_string());
        let src = (ip(&v["src_ip"]), v["src_port"].as_u64().unwrap_or(0));
        let dst = (ip(&v["dest_ip"]), v["dest_port"].as_u64().unwrap_or(0));
        let ts = (f["pkts_toserver"].as_u64().unwrap_or(0), f["bytes_toserver"].as_u64().unwrap_or(0));
        let tc = (f["pkts_toclient"].as_u64().unwrap_or(0), f["bytes_toclient"].as_u64().unwrap_or(0));
        let (a, b, a_sent, b_sent) = if src <= dst { (src, dst, ts, tc) } else { (dst, src, tc, ts) };
        let key = (
            v["proto"].as_str().unwrap_or("").to_string(),
            format!("{}:{}", a.0, a.1),
            format!("{}:{}", b.0, b.1),
            v["vlan"].to_string(),
            f["start"].as_str().unwrap_or("").to_string(),
        );
        out.entry(key).or_default().push(Flow { a, b, a_sent, b_sent });
    }
    Ok(out)
}

#[derive(Debug, Default, Clone)]
struct Tally {
    suricata: usize,
    portcullis: usize,
    agree: usize,
    counts_differ: usize,
    only_suricata: usize,
    only_portcullis: usize,
    examples: Vec<Value>,
}

impl Tally {
    fn union(&self) -> usize {
        self.agree + self.counts_differ + self.only_suricata + self.only_portcullis
    }
    fn add(&mut self, o: &Tally) {
        self.suricata += o.suricata;
        self.portcullis += o.portcullis;
        self.agree += o.agree;
        self.counts_differ += o.counts_differ;
        self.only_suricata += o.only_suricata;
        self.only_portcullis += o.only_portcullis;
    }
}

fn compare(s: &HashMap<Key, Vec<Flow>>, p: &HashMap<Key, Vec<Flow>>) -> Tally {
    let mut t = Tally { suricata: s.values().map(Vec::len).sum(), portcullis: p.values().map(Vec::len).sum(), ..Default::default() };
    let ex = |kind: &str, k: &Key, sf: Option<&Flow>, pf: Option<&Flow>| {
        json!({"kind": kind, "proto": k.0, "a": k.1, "b": k.2, "vlan": k.3, "start": k.4,
               "suricata": sf.map(|f| json!({"a_sent": f.a_sent, "b_sent": f.b_sent})),
               "portcullis": pf.map(|f| json!({"a_sent": f.a_sent, "b_sent": f.b_sent}))})
    };
    for (k, sv) in s {
        let mut pv: Vec<&Flow> = p.get(k).map(|v| v.iter().collect()).unwrap_or_default();
        let mut unmatched_s = Vec::new();
        for sf in sv {
            if let Some(i) = pv.iter().position(|pf| *pf == sf) {
                pv.remove(i);
                t.agree += 1;
            } else {
                unmatched_s.push(sf);
            }
        }
        for sf in unmatched_s {
            if pv.is_empty() {
                t.only_suricata += 1;
                t.examples.push(ex("only_suricata", k, Some(sf), None));
            } else {
                let pf = pv.remove(0);
                t.counts_differ += 1;
                t.examples.push(ex("counts_differ", k, Some(sf), Some(pf)));
            }
        }
        for pf in pv {
            t.only_portcullis += 1;
            t.examples.push(ex("only_portcullis", k, None, Some(pf)));
        }
    }
    for (k, pv) in p {
        if !s.contains_key(k) {
            for pf in pv {
                t.only_portcullis += 1;
                t.examples.push(ex("only_portcullis", k, None, Some(pf)));
            }
        }
    }
    t
}

fn default_captures() -> Vec<PathBuf> {
    let d = data_dir().join("pcaps");
    vec![d.join("ndpi"), d.join("benign")]
}

/// One capture's comparison, or `None` when Suricata refused the capture (its output is then
/// in `dir/suricata.err`).
fn run_one(tool: &Path, bin: &Path, cfg: &Path, cap: &Path, dir: &Path) -> anyhow::Result<Option<Tally>> {
    std::fs::create_dir_all(dir)?;
    let mut cmd = Command::new(tool);
    cmd.arg(dir.join("suricata")).arg(cap).arg("");
    for (proto, new, est, closed) in TIMEOUTS {
        cmd.args(["--set", &format!("flow-timeouts.{proto}.new={new}")]);
        cmd.args(["--set", &format!("flow-timeouts.{proto}.established={est}")]);
        cmd.args(["--set", &format!("flow-timeouts.{proto}.closed={closed}")]);
    }
    let out = cmd.output().with_context(|| format!("running {}", tool.display()))?;
    let s_eve = dir.join("suricata/eve.json");
    if !out.status.success() || !s_eve.exists() {
        // Suricata refuses some captures (unsupported link types); nothing to compare.
        std::fs::write(dir.join("suricata.err"), [&out.stdout[..], &out.stderr[..]].concat())?;
        return Ok(None);
    }
    let p_eve = dir.join("portcullis.json");
    let _ = std::fs::remove_file(&p_eve);
    let out = Command::new(bin)
        .args(["replay", "-q", "--no-progress", "--threads", "1", "-c"])
        .arg(cfg)
        .arg("--eve")
        .arg(&p_eve)
        .arg(cap)
        .output()?;
    if !out.status.success() {
        bail!("portcullis failed on {}: {}", cap.display(), String::from_utf8_lossy(&out.stderr));
    }
    Ok(Some(compare(&flows_of(&s_eve)?, &flows_of(&p_eve)?)))
}

pub fn run(a: DiffArgs) -> anyhow::Result<()> {
    let inputs = if a.captures.is_empty() { default_captures() } else { a.captures.clone() };
    if let Some(missing) = inputs.iter().find(|p| !p.exists()) {
        bail!("{} does not exist", missing.display());
    }
    let caps: Vec<PathBuf> = capture_files(&inputs)?.into_iter().step_by(a.every.max(1)).collect();
    if caps.is_empty() {
        bail!("no captures found in {:?} (set PORTCULLIS_DATA to the shared data directory)", inputs);
    }
    let bin = portcullis_bin()?;
    let work = a.work.clone().unwrap_or_else(|| workspace_root().join("target/suricata-diff"));
    std::fs::create_dir_all(&work)?;
    let cfg = work.join("portcullis.yaml");
    let mut yaml = String::from("flow-timeouts:\n");
    for (proto, new, est, closed) in TIMEOUTS {
        yaml += &format!("  {proto}:\n    new: {new}\n    established: {est}\n    closed: {closed}\n");
    }
    std::fs::write(&cfg, yaml)?;
    let tool = suricata_ref(&caps[0], &work.join("install"))?;

    eprintln!("comparing flow records on {} captures ({} jobs)", caps.len(), a.jobs);
    let queue = Mutex::new(caps.iter().enumerate());
    let results: Mutex<Vec<(PathBuf, anyhow::Result<Option<Tally>>)>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..a.jobs.max(1) {
            s.spawn(|| loop {
                let next = queue.lock().map(|mut q| q.next()).ok().flatten();
                let Some((i, cap)) = next else { break };
                let r = run_one(&tool, &bin, &cfg, cap, &work.join(format!("{i:04}")));
                if let Ok(mut v) = results.lock() {
                    v.push((cap.clone(), r));
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_default();
    results.sort_by(|x, y| x.0.cmp(&y.0));
    let mut total = Tally::default();
    let mut per_capture = Vec::new();
    let mut examples = Vec::new();
    let mut refused = Vec::new();
    for (cap, r) in &results {
        let t = match r {
            Ok(Some(t)) => t,
            Ok(None) => {
                refused.push(cap.clone());
                continue;
            }
            Err(e) => bail!("{}: {e:#}", cap.display()),
        };
        total.add(t);
        if t.union() != t.agree {
            per_capture.push(json!({"capture": cap, "flows": t.union(), "agree": t.agree,
                "counts_differ": t.counts_differ, "only_suricata": t.only_suricata, "only_portcullis": t.only_portcullis}));
            for e in &t.examples {
                let mut e = e.clone();
                e["capture"] = json!(cap.file_name().map(|n| n.to_string_lossy().to_string()));
                examples.push(e);
            }
        }
    }
    let pct = 100.0 * total.agree as f64 / total.union().max(1) as f64;
    println!(
        "captures {}  flows: suricata {} portcullis {}  agree {} ({pct:.2} %)  counts differ {}  only suricata {}  only portcullis {}",
        results.len() - refused.len(),
        total.suricata,
        total.portcullis,
        total.agree,
        total.counts_differ,
        total.only_suricata,
        total.only_portcullis
    );
    if !refused.is_empty() {
        // Suricata refuses some captures (link types it does not decode): not compared, and said.
        println!("  Suricata refused {} captures, not compared (its output is in {}/NNNN/suricata.err):", refused.len(), work.display());
        for c in refused.iter().take(a.show) {
            println!("    {}", c.display());
        }
    }
    for c in per_capture.iter().take(a.show) {
        println!("  {c}");
    }
    for e in examples.iter().take(a.show) {
        println!("  {e}");
    }
    if let Some(r) = &a.report {
        let report = json!({"captures": results.len() - refused.len(), "suricata": total.suricata, "portcullis": total.portcullis,
            "agree": total.agree, "agreement_pct": pct, "counts_differ": total.counts_differ,
            "only_suricata": total.only_suricata, "only_portcullis": total.only_portcullis,
            "per_capture": per_capture, "disagreements": examples, "suricata_refused": refused});
        std::fs::write(r, serde_json::to_string_pretty(&report)?)?;
    }
    if let Some(min) = a.min_agreement {
        if pct < min {
            bail!("flow agreement {pct:.2} % is below the required {min} %");
        }
    }
    Ok(())
}
