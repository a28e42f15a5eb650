//! End-to-end replay tests: the shared captures, thread-count independence, the EVE schema,
//! the demo capture, and how damaged input is reported.

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use portcullis::{run_replay, ReplayOptions};
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The shared corpora: `$PORTCULLIS_DATA`, else `../shared/data` beside the checkout.
fn data_dir() -> Option<PathBuf> {
    let d = portcullis_common::shared_data_dir();
    if d.join("pcaps").is_dir() {
        Some(d)
    } else {
        eprintln!("skipping: shared data not found at {} (set PORTCULLIS_DATA)", d.display());
        None
    }
}

fn demo() -> PathBuf {
    root().join("configs/demo/demo.pcap")
}

fn replay_to_string(inputs: Vec<PathBuf>, threads: usize) -> (portcullis::ReplaySummary, String) {
    let out = tempfile::NamedTempFile::new().unwrap();
    let opts = ReplayOptions { inputs, threads, eve: Some(out.path().to_path_buf()), ..ReplayOptions::default() };
    let s = run_replay(&opts).unwrap();
    (s, std::fs::read_to_string(out.path()).unwrap())
}

fn events(text: &str) -> Vec<Value> {
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// Runs `f` on a thread and fails if it takes longer than `limit` (a hang).
fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit).expect("replay did not finish in time (hang?) or panicked")
}

#[test]
fn every_shared_capture_replays_without_panic_or_hang() {
    let Some(data) = data_dir() else { return };
    let pcaps = data.join("pcaps");
    let count = portcullis_dataplane::capture_files(std::slice::from_ref(&pcaps)).unwrap().len();
    let (s, text) = within(Duration::from_secs(300), move || replay_to_string(vec![pcaps], 2));
    assert_eq!(s.files, count);
    assert!(count > 1300, "expected the nDPI, Zeek, attack, scan and 830 tcpdump captures, found {count}");
    assert!(s.packets > 100_000 && s.flows > 10_000, "{s:?}");
    // Damaged files are reported, one line each, naming the file.
    for e in &s.capture_errors {
        assert!(e.contains(".pcap"), "{e}");
    }
    let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["event_type"], "stats");
    assert_eq!(last["stats"]["decoder"]["pkts"].as_u64(), Some(s.packets));
}

#[test]
fn every_malformed_capture_alone_replays() {
    let Some(data) = data_dir() else { return };
    let files = portcullis_dataplane::capture_files(&[data.join("pcaps/malformed-tcpdump")]).unwrap();
    assert!(files.len() >= 800);
    within(Duration::from_secs(300), move || {
        for f in files {
            let opts = ReplayOptions { inputs: vec![f.clone()], threads: 1, ..ReplayOptions::default() };
            if let Err(e) = run_replay(&opts) {
                panic!("{}: {e}", f.display());
            }
        }
    });
}

#[test]
fn output_does_not_depend_on_thread_count() {
    let mut inputs = vec![demo()];
    if let Some(d) = data_dir() {
        inputs.push(d.join("pcaps/benign"));
        inputs.push(d.join("pcaps/scans"));
    }
    let strip = |t: &str| t.lines().filter(|l| !l.contains("\"event_type\":\"stats\"")).collect::<Vec<_>>().join("\n");
    let (_, one) = replay_to_string(inputs.clone(), 1);
    for n in [2, 3, 4] {
        let (_, many) = replay_to_string(inputs.clone(), n);
        assert!(strip(&one) == strip(&many), "EVE output with {n} workers differs from 1 worker");
    }
    assert!(one.lines().count() > 1000);
}

#[test]
fn every_eve_line_validates_against_the_schema() {
    let Some(data) = data_dir() else { return };
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(data.join("suricata-verify/etc/eve-schema.json")).unwrap()).unwrap();
    let v = jsonschema::validator_for(&schema).unwrap();
    let (_, text) = replay_to_string(vec![data.join("pcaps"), demo()], 2);
    let mut n = 0;
    for line in text.lines() {
        let ev: Value = serde_json::from_str(line).unwrap();
        if let Some(e) = v.iter_errors(&ev).next() {
            panic!("{line}\ndoes not validate: {e} at {}", e.instance_path);
        }
        n += 1;
    }
    assert!(n > 10_000);
}

#[test]
fn demo_capture_shows_its_phases() {
    let (s, text) = replay_to_string(vec![demo()], 2);
    assert_eq!(s.capture_errors.len(), 0);
    assert_eq!(s.decoder.invalid, 0);
    let flows: Vec<Value> = events(&text).into_iter().filter(|e| e["event_type"] == "flow").collect();
    let from_attacker = |port: u64| flows.iter().filter(|f| f["src_ip"] == "10.77.0.66" && f["dest_port"] == port).count();
    assert!(from_attacker(22) >= 50, "ssh brute force: {} flows", from_attacker(22));
    assert!(from_attacker(80) >= 2000, "syn flood: {} flows", from_attacker(80));
    let scanned: std::collections::BTreeSet<u64> =
        flows.iter().filter(|f| f["src_ip"] == "10.77.0.66" && f["proto"] == "TCP").filter_map(|f| f["dest_port"].as_u64()).collect();
    assert!(scanned.len() >= 200, "port scan touched {} ports", scanned.len());
    let https = flows.iter().filter(|f| f["src_ip"] == "10.77.0.2" && f["dest_port"] == 443 && f["flow"]["state"] == "closed").count();
    assert!(https >= 4, "tls sessions: {https}");
    // EVE writes IPv6 in full, as Suricata does.
    let ip6 = |v: &Value| v.as_str().and_then(|s| s.parse::<std::net::Ipv6Addr>().ok());
    let (one, two) = ("fd77::1".parse().ok(), "fd77::2".parse().ok());
    let ping6 = |f: &&Value| {
        f["proto"] == "IPv6-ICMP" && f["icmp_type"] == 128 && [&f["src_ip"], &f["dest_ip"]].iter().all(|a| ip6(a) == one || ip6(a) == two)
    };
    let p6 = flows.iter().find(ping6).expect("ping6 flow");
    assert!(p6["flow"]["pkts_toserver"].as_u64() >= Some(4) && p6["flow"]["pkts_toclient"].as_u64() >= Some(4), "{p6}");
    assert_eq!(p6["response_icmp_type"], 129, "echo request and reply are one flow");
}

fn portcullis(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_portcullis")).args(args).output().unwrap()
}

#[test]
fn truncated_capture_is_reported_with_file_and_offset_and_the_rest_is_kept() {
    let full = std::fs::read(demo()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("cut.pcap");
    std::fs::File::create(&cut).unwrap().write_all(&full[..full.len() / 2]).unwrap();
    let out = portcullis(&["replay", "--no-ml", "--no-eve", "--summary-json", "--threads", "1", cut.to_str().unwrap(), demo().to_str().unwrap()]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cut.pcap: truncated at offset "), "{err}");
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["capture_errors"], 1);
    assert!(summary["packets"].as_u64().unwrap() > 8203, "packets before the cut and the whole second file count");
}

#[test]
fn bad_config_names_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.yaml");
    std::fs::write(&cfg, "flow:\n  memcap: 32mb\n  memcapp: 1\n").unwrap();
    let out = portcullis(&["replay", "-c", cfg.to_str().unwrap(), demo().to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.yaml") && err.contains("memcapp") && err.contains("line 3"), "{err}");
}

#[test]
fn every_subcommand_has_help() {
    for args in [&["--help"][..], &["replay", "--help"], &["check-config", "--help"]] {
        let out = portcullis(args);
        assert!(out.status.success(), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("Usage"), "{args:?}");
    }
}

#[test]
fn not_a_capture_is_skipped_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.pcap");
    std::fs::write(&junk, b"this is not a capture file at all").unwrap();
    let out = portcullis(&["replay", "--no-ml", "--no-eve", "--summary-json", junk.to_str().unwrap(), demo().to_str().unwrap()]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("junk.pcap: not a pcap or pcapng file"));
}

#[test]
fn alerts_match_suricatas_on_the_demo_capture() {
    let case = root().join("portcullis/tests/data/demo-alerts");
    let dir = tempfile::tempdir().unwrap();
    let eve = dir.path().join("eve.json");
    let out = portcullis(&[
        "replay",
        "--no-ml",
        "--rules",
        case.join("test.rules").to_str().unwrap(),
        "--eve",
        eve.to_str().unwrap(),
        "--threads",
        "3",
        "-q",
        demo().to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&eve).unwrap();
    let mut got: Vec<Value> = events(&text).into_iter().filter(|e| e["event_type"] == "alert").collect();
    for e in &mut got {
        e.as_object_mut().unwrap().shift_remove("flow_id");
    }
    let expected = events(&std::fs::read_to_string(case.join("expected-alerts.json")).unwrap());
    assert_eq!(got.len(), expected.len());
    for (g, e) in got.iter().zip(&expected) {
        assert_eq!(g.to_string(), e.to_string());
    }
    let stats = events(&text).pop().unwrap();
    assert_eq!(stats["stats"]["detect"]["alert"].as_u64(), Some(expected.len() as u64));

    // Flows name the protocol Suricata names, for the four Portcullis detects (Suricata
    // 7.0.10 on this capture: 9 DNS, 7 HTTP, 50 SSH and 5 TLS flows; it also names NTP,
    // SNMP, IKE and TFTP flows, which Portcullis leaves without app_proto).
    let mut by_proto: std::collections::BTreeMap<String, u64> = Default::default();
    for e in events(&text).iter().filter(|e| e["event_type"] == "flow") {
        if let Some(p) = e["app_proto"].as_str() {
            *by_proto.entry(p.to_string()).or_default() += 1;
        }
    }
    let want: std::collections::BTreeMap<String, u64> = [("dns", 9), ("http", 7), ("ssh", 50), ("tls", 5)].into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    assert_eq!(by_proto, want);
    // stats.app_layer.flow counts them by Suricata's names (nmap's UDP probes to other
    // ports are failed_udp).
    let flows = &stats["stats"]["app_layer"]["flow"];
    assert_eq!((flows["http"].as_u64(), flows["tls"].as_u64(), flows["ssh"].as_u64()), (Some(7), Some(5), Some(50)), "{flows}");
    assert_eq!(flows["dns_udp"].as_u64().unwrap_or(0) + flows["dns_tcp"].as_u64().unwrap_or(0), 9, "{flows}");
}

/// `replay --policy` runs the shipped playbook in dry-run over the demo capture's rule and
/// model alerts: what the daemon would have done, the same for any number of workers.
#[test]
fn replay_policy_writes_dry_run_decisions_independent_of_threads() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = root().join("configs/portcullis.yaml");
    let rules = root().join("configs/rules/demo.rules");
    let mut runs = Vec::new();
    for threads in ["1", "3"] {
        let eve = dir.path().join(format!("eve-{threads}.json"));
        let out = portcullis(&[
            "replay",
            "-c",
            cfg.to_str().unwrap(),
            "--rules",
            rules.to_str().unwrap(),
            "--policy",
            "--threads",
            threads,
            "--summary-json",
            "--eve",
            eve.to_str().unwrap(),
            demo().to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
        let decisions: Vec<Value> = events(&std::fs::read_to_string(&eve).unwrap()).into_iter().filter(|e| e["event_type"] == "decision").map(|e| e["decision"].clone()).collect();
        assert_eq!(summary["policy"]["decisions"].as_u64().unwrap() as usize, decisions.len());
        runs.push(decisions);
    }
    assert_eq!(runs[0], runs[1], "decisions do not depend on the number of workers");
    let d = &runs[0];
    assert!(d.iter().all(|x| x["state"] == "dry-run" || x["state"] == "pending"), "a replay enforces nothing: {d:?}");
    // The demo's attacker floods (a DoS rule: rate-limit), then the model sees its port scan
    // (block, which replaces the weaker rate-limit).
    let attacker: Vec<(&str, &str)> = d.iter().filter(|x| x["target"] == "10.77.0.66").map(|x| (x["action"].as_str().unwrap(), x["trigger"].as_str().unwrap())).collect();
    assert!(attacker.contains(&("rate-limit", "dos-rules")) && attacker.contains(&("block", "model-scan-bruteforce")), "{attacker:?}");
    let scan = d.iter().find(|x| x["trigger"] == "model-scan-bruteforce").unwrap();
    assert_eq!(scan["evidence"]["model"]["class"], "Portscan");
    assert!(scan["evidence"]["model"]["score"].as_f64().unwrap() >= 0.9);
    assert!(!scan["evidence"]["model"]["top_features"].as_array().unwrap().is_empty(), "decisions carry the model's top features");
}

#[test]
fn a_bad_policy_is_refused_at_start_with_file_line_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("policy.yaml");
    std::fs::write(&cfg, "policy:\n  mode: enforce\n  playbook:\n    - when: {sid: [1]}\n      action: block\n    - when: {ml-class: [DDoS]}\n      action: obliterate\n").unwrap();
    for args in [&["check-config", "-c", cfg.to_str().unwrap()][..], &["run", "-c", cfg.to_str().unwrap(), "--iface", "lo"]] {
        let out = portcullis(args);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("policy.yaml") && err.contains("line 7") && err.contains("obliterate"), "{args:?}: {err}");
    }
}

/// `replay --console` draws on stdout: without a terminal there it stops at once, saying so,
/// and it refuses `--summary-json` (which also writes to stdout) and EVE on stdout.
#[test]
fn replay_console_needs_a_terminal() {
    let out = portcullis(&["replay", "--console", "--no-ml", "--no-eve", demo().to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--console draws the console on stdout, which is not a terminal"), "{err}");
    let out = portcullis(&["replay", "--console", "--summary-json", demo().to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be used with"), "{}", String::from_utf8_lossy(&out.stderr));
}

/// A tmux server on its own socket, killed (that server only) when the test ends.
struct Tmux(String);

impl Tmux {
    fn cmd(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux").arg("-L").arg(&self.0).args(args).output().unwrap()
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.cmd(&["capture-pane", "-p", "-t", "console"]).stdout).into_owned()
    }

    /// Polls the screen until `pred` holds, up to `limit`; returns the last screen seen.
    fn wait_for(&self, limit: Duration, pred: impl Fn(&str) -> bool) -> String {
        let end = std::time::Instant::now() + limit;
        loop {
            let s = self.screen();
            if pred(&s) || std::time::Instant::now() > end {
                return s;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}

/// The console in a real terminal: tmux runs `replay --console` on the demo capture with the
/// demo rules and the bundled model at 80×24; the screen shows the replay finished, with its
/// alerts and traffic, `q` closes it and the summary follows.
#[test]
fn replay_console_draws_in_a_terminal_and_quits_on_q() {
    if Command::new("tmux").arg("-V").output().is_err() {
        eprintln!("skipping: tmux not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (eve, err, status) = (dir.path().join("eve.json"), dir.path().join("stderr.txt"), dir.path().join("status"));
    let script = format!(
        "{bin} replay -c {cfg} --rules {rules} --threads 2 --eve {eve} --console {pcap} 2> {err}; echo $? > {status}; sleep 60",
        bin = env!("CARGO_BIN_EXE_portcullis"),
        cfg = root().join("configs/portcullis.yaml").display(),
        rules = root().join("configs/rules/demo.rules").display(),
        eve = eve.display(),
        pcap = demo().display(),
        err = err.display(),
        status = status.display(),
    );
    let tmux = Tmux(format!("portcullis-test-{}", std::process::id()));
    let started = tmux.cmd(&["new-session", "-d", "-s", "console", "-x", "80", "-y", "24", &script]);
    assert!(started.status.success(), "{}", String::from_utf8_lossy(&started.stderr));
    let screen = tmux.wait_for(Duration::from_secs(120), |s| s.contains("replay finished"));
    assert!(screen.contains("replay finished"), "the console says the replay finished:\n{screen}");
    assert!(screen.contains("demo.pcap"), "the capture pane names the file:\n{screen}");
    // The alert pane's title counts every alert; its rows show the newest (model alerts,
    // raised as the flows end with the capture).
    let shown_total = screen.split("alerts · ").nth(1).and_then(|t| t.split(' ').next()).and_then(|n| n.parse::<usize>().ok());
    assert!(screen.contains("ML Portscan"), "the alert pane shows alerts:\n{screen}");
    assert!(!status.exists(), "the console stays open once the replay has finished");
    tmux.cmd(&["send-keys", "-t", "console", "q"]);
    let end = std::time::Instant::now() + Duration::from_secs(20);
    while !status.exists() && std::time::Instant::now() < end {
        std::thread::sleep(Duration::from_millis(100));
    }
    let code = std::fs::read_to_string(&status).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err).unwrap_or_default();
    assert_eq!(code.trim(), "0", "q ends the console and the replay exits cleanly:\n{stderr}");
    assert!(stderr.contains("replayed 1 file(s)") && stderr.contains("alerts"), "the summary follows the console:\n{stderr}");
    let alerts = events(&std::fs::read_to_string(&eve).unwrap()).iter().filter(|e| e["event_type"] == "alert").count();
    assert!(alerts > 0, "EVE is written as usual");
    assert_eq!(shown_total, Some(alerts), "the console counted every alert EVE has:\n{screen}");
}
