//! Flow scoring in replay, end to end with the bundled model: model alerts do not depend on
//! the number of workers, they validate against the EVE schema, a replay without a model
//! writes none, and a model whose features the flow table does not produce is refused.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use portcullis::ml::{bundled_model_dir, load_model, AlertLimit, ML_GID};
use portcullis::{run_replay, ReplayOptions, ReplaySummary};
use serde_json::Value;

fn demo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../configs/demo/demo.pcap")
}

fn model() -> PathBuf {
    bundled_model_dir().expect("the checkout bundles a model under configs/models/cicids2017")
}

fn run(threads: usize, model: Option<PathBuf>) -> (ReplaySummary, Vec<Value>) {
    run_with(ReplayOptions { threads, model, ..ReplayOptions::default() })
}

fn run_with(opts: ReplayOptions) -> (ReplaySummary, Vec<Value>) {
    let out = tempfile::NamedTempFile::new().unwrap();
    let opts = ReplayOptions { inputs: vec![demo()], eve: Some(out.path().to_path_buf()), ..opts };
    let s = run_replay(&opts).unwrap();
    let text = std::fs::read_to_string(out.path()).unwrap();
    (s, text.lines().map(|l| serde_json::from_str(l).unwrap()).collect())
}

fn ml_alerts(events: &[Value]) -> Vec<&Value> {
    events.iter().filter(|e| e["event_type"] == "alert" && e["alert"]["gid"] == ML_GID).collect()
}

#[test]
fn ml_alerts_do_not_depend_on_thread_count() {
    let (s1, one) = run(1, Some(model()));
    let (_, three) = run(3, Some(model()));
    let strip = |ev: &[Value]| ev.iter().filter(|e| e["event_type"] != "stats").map(|e| e.to_string()).collect::<Vec<_>>();
    assert!(strip(&one) == strip(&three), "output with 3 workers differs from 1 worker");

    let alerts = ml_alerts(&one);
    let ml = s1.ml.as_ref().unwrap();
    assert!(!alerts.is_empty(), "the shipped model flags nothing on the demo capture");
    assert_eq!(ml.alerts, alerts.len() as u64);
    // Every flow ends within the capture, so every flow is scored once at its end.
    assert_eq!(ml.flows_scored, s1.flows);
    // At most one alert per flow and class, and each alerted flow's event says so.
    let mut seen = HashSet::new();
    for a in &alerts {
        assert!(seen.insert((a["flow_id"].as_u64().unwrap(), a["alert"]["signature_id"].as_u64().unwrap())), "{a}");
        assert_eq!(a["alert"]["action"], "allowed");
        assert!(a["alert"]["signature"].as_str().unwrap().starts_with("ML "));
        assert!(!a["alert"]["context"]["ml"]["top_features"].as_array().unwrap().is_empty(), "{a}");
    }
    let alerted: HashSet<u64> = alerts.iter().map(|a| a["flow_id"].as_u64().unwrap()).collect();
    for f in one.iter().filter(|e| e["event_type"] == "flow") {
        let id = f["flow_id"].as_u64().unwrap();
        assert_eq!(f["flow"]["alerted"].as_bool(), Some(alerted.contains(&id)), "{f}");
    }
    // The alert is about the flow: its 5-tuple is the flow event's.
    let a = alerts[0];
    let f = one.iter().find(|e| e["event_type"] == "flow" && e["flow_id"] == a["flow_id"]).unwrap();
    for k in ["src_ip", "src_port", "dest_ip", "dest_port", "proto"] {
        assert_eq!(a[k], f[k], "{k}");
    }
    let stats = one.last().unwrap();
    assert_eq!(stats["stats"]["detect"]["alert"].as_u64(), Some(alerts.len() as u64));
}

#[test]
fn the_alert_limit_holds_back_repeats_from_one_source_and_counts_them() {
    let (all, every) = run_with(ReplayOptions { threads: 2, model: Some(model()), ml_alert_limit: None, ..ReplayOptions::default() });
    let limit = AlertLimit { count: 3, seconds: 3600 };
    let (limited, kept) = run_with(ReplayOptions { threads: 2, model: Some(model()), ml_alert_limit: Some(limit), ..ReplayOptions::default() });
    let (every, kept) = (ml_alerts(&every), ml_alerts(&kept));
    let (a, l) = (all.ml.unwrap(), limited.ml.unwrap());
    assert_eq!((a.alerts, a.suppressed), (every.len() as u64, 0));
    assert_eq!(l.alerts, kept.len() as u64);
    assert_eq!(l.alerts + l.suppressed, a.alerts, "every alert is written or counted as suppressed");
    let key = |e: &&Value| (e["src_ip"].as_str().unwrap().to_owned(), e["alert"]["signature_id"].as_u64().unwrap());
    let mut per_key: std::collections::HashMap<_, u32> = Default::default();
    for e in &kept {
        *per_key.entry(key(e)).or_default() += 1;
    }
    assert!(per_key.values().all(|&n| n <= limit.count), "{per_key:?}");
    // The demo's scan raises more than three alerts without the limit; with it, the first
    // three (in output order) are the ones written.
    assert!(l.suppressed > 0, "the demo's scan should exceed the limit: {} alerts", a.alerts);
    let mut seen: std::collections::HashMap<_, u32> = Default::default();
    let first: Vec<&Value> = every
        .iter()
        .copied()
        .filter(|e| {
            let n = seen.entry(key(e)).or_default();
            *n += 1;
            *n <= limit.count
        })
        .collect();
    assert_eq!(first, kept);
}

#[test]
fn ml_alerts_validate_against_the_eve_schema() {
    let path = portcullis_common::shared_data_dir().join("suricata-verify/etc/eve-schema.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!("skipping: {} not found (set PORTCULLIS_DATA)", path.display());
        return;
    };
    let v = jsonschema::validator_for(&serde_json::from_str::<Value>(&text).unwrap()).unwrap();
    let (_, ev) = run(2, Some(model()));
    let alerts = ml_alerts(&ev);
    assert!(!alerts.is_empty());
    for e in alerts.iter().copied().chain(ev.iter().filter(|e| e["event_type"] == "flow")) {
        if let Some(err) = v.iter_errors(e).next() {
            panic!("{e}\ndoes not validate: {err} at {}", err.instance_path);
        }
    }
}

#[test]
fn without_a_model_nothing_is_scored() {
    let (s, ev) = run(2, None);
    assert!(s.ml.is_none() && ml_alerts(&ev).is_empty());
    // The command line: --no-ml turns off the bundled model.
    let dir = tempfile::tempdir().unwrap();
    let eve = dir.path().join("eve.json");
    let out = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["replay", "--no-ml", "--summary-json", "--eve", eve.to_str().unwrap(), demo().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(summary["ml"].is_null(), "{summary}");
    let text = std::fs::read_to_string(&eve).unwrap();
    assert!(!text.contains("\"gid\":9000"));
    assert!(text.lines().any(|l| l.contains("\"event_type\":\"flow\"")));
}

/// Copies the bundled model to a temporary directory with one feature renamed in its
/// model.yaml; `rehash` recomputes the feature hash, as a trainer with another extractor
/// would write it.
fn renamed_model(rehash: bool) -> tempfile::TempDir {
    let src = model();
    let dir = tempfile::tempdir().unwrap();
    for f in ["classifier.onnx", "anomaly.onnx"] {
        std::fs::copy(src.join(f), dir.path().join(f)).unwrap();
    }
    let spec = portcullis_inference::ModelSpec::load(&src.join("model.yaml")).unwrap();
    let mut text = std::fs::read_to_string(src.join("model.yaml")).unwrap();
    assert!(text.contains("\n  - Flow Duration\n"));
    text = text.replace("\n  - Flow Duration\n", "\n  - Flow Duration (ms)\n");
    if rehash {
        let names: Vec<String> = spec.features.iter().map(|f| if f == "Flow Duration" { "Flow Duration (ms)".into() } else { f.clone() }).collect();
        let old = spec.features_sha256.clone().unwrap();
        text = text.replace(&old, &portcullis_inference::features_sha256(&names));
    }
    std::fs::write(dir.path().join("model.yaml"), text).unwrap();
    dir
}

fn load_error(dir: &Path) -> String {
    match load_model(dir, 1) {
        Ok(_) => panic!("a model with a renamed feature was loaded"),
        Err(e) => format!("{e:#}"),
    }
}

#[test]
fn a_model_with_other_features_is_refused_naming_the_difference() {
    let dir = renamed_model(true);
    let e = load_error(dir.path());
    assert!(e.contains("\"Flow Duration (ms)\"") && e.contains("no feature of that name"), "{e}");
    // The command line says the same and writes nothing.
    let eve = dir.path().join("eve.json");
    let out = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["replay", "--model", dir.path().to_str().unwrap(), "--eve", eve.to_str().unwrap(), demo().to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Flow Duration (ms)") && err.contains(dir.path().to_str().unwrap()), "{err}");
    assert!(!eve.exists());
    // A list edited by hand without its hash is refused too, by the hash.
    let e = load_error(renamed_model(false).path());
    assert!(e.contains("hash"), "{e}");
}
