//! `portcullis replay --console`: the replay runs on its own threads while this thread draws
//! the console over an in-process [`Link`] that reads the replay's [`ReplayConsole`]. The
//! console stays open on the final state once the capture has been read, until the operator
//! quits; requests that would change something are refused, since a replay's policy runs in
//! dry-run and nothing is enforced.

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use anyhow::Context;
use portcullis::inspect::Detect;
use portcullis::replay::ReplayConsole;
use portcullis::{run_replay, run_replay_with, ReplayOptions, ReplaySummary};
use portcullis_api::{Request, Snapshot};
use serde_json::{json, Value};

/// How often the console takes a snapshot (the replay folds its figures once a second).
const REFRESH: Duration = Duration::from_secs(1);

/// The console's link to a replay in this process.
#[derive(Debug)]
pub(crate) struct ReplayLink {
    pub(crate) console: ReplayConsole,
}

impl portcullis_tui::Link for ReplayLink {
    fn snapshot(&mut self) -> Result<Snapshot, String> {
        Ok(self.console.snapshot())
    }

    fn send(&mut self, request: &Request) -> portcullis_tui::Reply {
        portcullis_tui::Reply::ready(Ok(self.answer(request)))
    }
}

impl ReplayLink {
    fn answer(&self, request: &Request) -> Value {
        match request {
            Request::Hello => json!({ "ok": true, "name": "portcullis", "source": "replay", "v": portcullis_api::PROTOCOL_VERSION }),
            Request::Snapshot => json!({ "ok": true, "snapshot": self.console.snapshot() }),
            other => json!({ "ok": false, "error": not_available(other) }),
        }
    }
}

/// Why a replay cannot do what `request` asks.
fn not_available(request: &Request) -> String {
    let cmd = serde_json::to_value(request).ok().and_then(|v| v["cmd"].as_str().map(String::from)).unwrap_or_else(|| "this request".into());
    match request {
        Request::Block { .. }
        | Request::Unblock { .. }
        | Request::Blocked
        | Request::Pending
        | Request::Approve { .. }
        | Request::Deny { .. }
        | Request::NftStatus => format!("{cmd} is not available in a replay (its policy runs in dry-run: nothing is enforced)"),
        _ => format!("{cmd} is not available in a replay"),
    }
}

/// Starts the replay of `opts` (whose `console` must be set) on its own thread.
pub(crate) fn start(opts: ReplayOptions, engine: Option<Arc<Detect>>) -> anyhow::Result<thread::JoinHandle<anyhow::Result<ReplaySummary>>> {
    anyhow::ensure!(opts.console.is_some(), "the replay has no console to feed");
    thread::Builder::new()
        .name("replay".into())
        .spawn(move || {
            match engine {
                Some(e) => run_replay_with(&opts, Some(e)),
                None => run_replay(&opts),
            }
            .context("replay failed")
        })
        .context("cannot start the replay thread")
}

/// Runs the replay under the console until the operator quits, then waits for the replay
/// to end (when the operator quit first) and returns its summary.
pub(crate) fn run(opts: ReplayOptions, engine: Option<Arc<Detect>>) -> anyhow::Result<ReplaySummary> {
    let console = opts.console.clone().context("the replay has no console to feed")?;
    let replay = start(opts, engine)?;
    let mut link = ReplayLink { console: console.clone() };
    let shown = portcullis_tui::run(&mut link, REFRESH);
    if !console.ended() {
        eprintln!("console closed; the replay goes on to the end of the capture (Ctrl-C stops it)");
    }
    let summary = replay.join().map_err(|_| anyhow::anyhow!("the replay thread panicked"))?;
    shown.context("console")?;
    summary
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_tui::Link;
    use std::path::PathBuf;

    fn root() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    /// The console path minus the terminal: the demo capture replayed with the demo rules, the
    /// bundled model and the console fed, then the final snapshot compared with the EVE written.
    #[test]
    fn the_final_snapshot_shows_what_the_replay_wrote() {
        let cfg = portcullis_config::Config::default();
        let rules = root().join("portcullis/tests/data/demo-alerts/test.rules");
        let (engine, info, origins) = crate::load_engine_info(&cfg, std::slice::from_ref(&rules), true).unwrap();
        let console = ReplayConsole::new();
        console.telemetry.set_rules(info);
        console.telemetry.set_rule_origins(origins);
        let eve = tempfile::NamedTempFile::new().unwrap();
        let opts = ReplayOptions {
            inputs: vec![root().join("configs/demo/demo.pcap")],
            threads: 2,
            eve: Some(eve.path().to_path_buf()),
            console: Some(console.clone()),
            model: portcullis::ml::bundled_model_dir(),
            ..ReplayOptions::default()
        };
        let mut link = ReplayLink { console: console.clone() };
        let before = link.snapshot().unwrap();
        assert_eq!((before.source.as_str(), before.capture.mode.as_str()), ("replay", "file"));
        let summary = start(opts, Some(Arc::new(engine))).unwrap().join().unwrap().unwrap();
        assert!(console.ended());
        let s = link.snapshot().unwrap();
        assert_eq!(s.source, "replay finished");

        let text = std::fs::read_to_string(eve.path()).unwrap();
        let written: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).filter(|e: &Value| e["event_type"] == "alert").collect();
        assert!(written.len() > 100, "{} alerts", written.len());
        assert_eq!(s.alerts_total, written.len() as u64);
        assert_eq!(s.alerts.len(), written.len().min(portcullis::telemetry::ALERTS_KEPT));
        let last = written.last().unwrap();
        assert_eq!(s.alerts.last().map(|a| a.sid), last["alert"]["signature_id"].as_u64());
        assert!(s.alerts.iter().any(|a| a.rule.as_deref().is_some_and(|r| r.contains("sid:1;"))), "rule text read back from its file");

        assert_eq!((s.traffic.packets_total, s.traffic.bytes_total), (summary.packets, summary.bytes));
        assert!(s.traffic.packets_total > 8000);
        assert!(!s.traffic.packets_per_sec.is_empty(), "a rate even for a replay shorter than a second");
        assert_eq!(s.capture.ports[0].name, "demo.pcap");
        // The flows live at the end of the capture, and the sources holding them.
        assert!(s.flows_active > 0 && !s.flows.is_empty() && !s.top_talkers.is_empty(), "{} flows, {} talkers", s.flows.len(), s.top_talkers.len());
        assert!(s.flows.iter().all(|f| f.age_secs < 60.0), "ages on the capture's clock (the capture lasts 22.5 s)");
        assert!(s.flows.iter().any(|f| f.app_proto.is_some()));
        let ml = summary.ml.as_ref().expect("the bundled model (configs/models/cicids2017) scores the flows");
        let sc = s.scoring.as_ref().expect("scoring shown with a model");
        assert_eq!((sc.flows_scored, sc.batches), (ml.flows_scored + ml.checkpoints_scored, ml.score_calls));
        assert!(sc.model.starts_with(&ml.model) && sc.latency_p99_ms > 0.0, "{sc:?}");
        assert!(ml.score_calls > 0 && ml.latency_p99_us > 0, "the summary still has every call's latency: {ml:?}");
        assert!(s.rules.as_ref().is_some_and(|r| r.loaded > 0 && r.files == [rules.display().to_string()]));
    }

    #[test]
    fn requests_that_change_something_are_refused() {
        let mut link = ReplayLink { console: ReplayConsole::new() };
        let r = link.send(&Request::Unblock { addr: "10.77.0.66".into(), by: None }).wait().unwrap();
        assert_eq!(r["ok"], false);
        assert_eq!(r["error"], "unblock is not available in a replay (its policy runs in dry-run: nothing is enforced)");
        let r = link.send(&Request::ReloadRules).wait().unwrap();
        assert_eq!(r["error"], "reload-rules is not available in a replay");
        assert_eq!(link.send(&Request::Hello).wait().unwrap()["ok"], true);
    }
}
