//! The daemon (`portcullis run`) as the namespace tests drive it: started inside a
//! namespace with its files (config, control socket, EVE, decision log) in the test's
//! directory, stopped with SIGTERM (killed if it does not stop) when dropped.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::netns::Netns;

/// The daemon, stopped with SIGTERM (and killed if it does not stop) when dropped.
pub struct Daemon {
    pub child: Option<Child>,
    pub stderr: Arc<Mutex<Vec<String>>>,
    pub socket: PathBuf,
    pub eve: PathBuf,
    pub state: PathBuf,
}

impl Daemon {
    /// Starts `portcullis run ARGS` in `ns` (without a model unless ARGS give `--model`);
    /// `None` (after printing why) when the capture cannot open there for lack of kernel
    /// support.
    pub fn start(ns: &Netns, dir: &Path, config: &str, args: &[&str]) -> Option<Daemon> {
        let cfg = dir.join("portcullis.yaml");
        std::fs::write(&cfg, config).unwrap();
        let socket = dir.join("run/control.sock");
        let eve = dir.join("eve.json");
        let state = dir.join("state");
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns.name(), env!("CARGO_BIN_EXE_portcullis"), "run", "--summary-json"])
            .args(if args.contains(&"--model") { None } else { Some("--no-ml") })
            .arg("-c")
            .arg(&cfg)
            .arg("--socket")
            .arg(&socket)
            .arg("--eve")
            .arg(&eve)
            .arg("--state-dir")
            .arg(&state)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start portcullis run");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let lines = stderr.clone();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(err).lines().map_while(Result::ok) {
                eprintln!("  [portcullis] {l}");
                if l.starts_with("control socket:") || l.starts_with("warning: control socket") {
                    let _ = tx.send(());
                }
                lines.lock().unwrap().push(l);
            }
        });
        let ready = rx.recv_timeout(Duration::from_secs(60)).is_ok();
        let mut d = Daemon { child: Some(child), stderr, socket, eve, state };
        if !ready {
            let out = d.stop();
            let log = d.stderr.lock().unwrap().join("\n");
            if log.contains("not supported") || log.contains("Operation not permitted") {
                eprintln!("skipping: the capture could not open here: {log}");
                return None;
            }
            panic!("portcullis run did not start:\n{log}\n{out}");
        }
        Some(d)
    }

    /// One request on the control socket, its reply.
    pub fn request(&self, req: &str) -> Value {
        use std::io::Write;
        let mut s = std::os::unix::net::UnixStream::connect(&self.socket).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        writeln!(s, "{req}").unwrap();
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("reply is not JSON ({e}): {line}"))
    }

    pub fn ctl(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_portcullis")).args(args).arg("--socket").arg(&self.socket).output().unwrap()
    }

    /// SIGTERM, wait, and the summary it printed.
    pub fn stop(&mut self) -> String {
        let Some(mut child) = self.child.take() else { return String::new() };
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if child.try_wait().ok().flatten().is_none() {
            let _ = child.kill();
            panic!("portcullis run did not stop within 20 s of SIGTERM");
        }
        let mut out = String::new();
        child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
        out
    }

    pub fn summary(&mut self) -> Value {
        let out = self.stop();
        serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("summary is not JSON ({e}): {out}"))
    }

    pub fn events(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.eve).unwrap_or_default().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
            std::thread::sleep(Duration::from_millis(500));
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

