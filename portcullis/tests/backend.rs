//! `--backend`: where flows are scored, chosen once at start. On a machine without a GPU (CI)
//! `auto` scores on the CPU, says why in one line, and writes exactly what `--backend cpu`
//! writes; `cuda` refuses to start, saying why; an unknown name is a usage error.

use std::path::PathBuf;
use std::process::{Command, Output};

fn demo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../configs/demo/demo.pcap")
}

/// Replays the demo capture with `--backend <backend>`; returns the process output and the
/// EVE events other than stats (which carry run times).
fn replay(backend: &str) -> (Output, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let eve = dir.path().join("eve.json");
    let out = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["replay", "--backend", backend, "--quiet", "--threads", "2", "--eve", eve.to_str().unwrap(), demo().to_str().unwrap()])
        .output()
        .unwrap();
    let events = std::fs::read_to_string(&eve)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.contains("\"event_type\":\"stats\""))
        .map(str::to_owned)
        .collect();
    (out, events)
}

fn backend_lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr).lines().filter(|l| l.starts_with("scoring on the ")).map(str::to_owned).collect()
}

#[test]
fn backend_auto_without_a_gpu_scores_on_the_cpu_says_why_and_writes_what_cpu_writes() {
    let (auto, auto_events) = replay("auto");
    assert!(auto.status.success(), "{}", String::from_utf8_lossy(&auto.stderr));
    let lines = backend_lines(&auto);
    assert_eq!(lines.len(), 1, "one line says where flows are scored: {lines:?}");
    if lines[0].starts_with("scoring on the GPU") {
        eprintln!("skipping the CPU fallback check: this machine has a GPU ({})", lines[0]);
        return;
    }
    let why = lines[0].strip_prefix("scoring on the CPU: ").unwrap_or_else(|| panic!("{lines:?}"));
    if cfg!(feature = "cuda") {
        // The probe's reason: no driver library, it did not start, or no device.
        assert!(why.contains("libcuda") || why.contains("CUDA"), "{why}");
    } else {
        assert_eq!(why, "built without the `cuda` feature");
    }
    let (cpu, cpu_events) = replay("cpu");
    assert!(cpu.status.success(), "{}", String::from_utf8_lossy(&cpu.stderr));
    assert!(backend_lines(&cpu).is_empty(), "--backend cpu needs no explanation");
    assert!(auto_events.iter().any(|e| e.contains("\"gid\":9000")), "the demo capture raises model alerts");
    assert_eq!(auto_events.len(), cpu_events.len());
    for (a, c) in auto_events.iter().zip(&cpu_events) {
        assert_eq!(a, c);
    }
}

#[test]
fn backend_cuda_without_a_gpu_refuses_to_start_and_says_why() {
    if let Ok(d) = portcullis_inference::gpu::probe() {
        eprintln!("skipping: this machine has a GPU ({d})");
        return;
    }
    let (out, events) = replay("cuda");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot score on the GPU as asked"), "{err}");
    let why = portcullis_inference::gpu::probe().unwrap_err().to_string();
    assert!(err.contains(&why), "{err} should say {why}");
    assert!(events.is_empty(), "nothing is written");
}

#[test]
fn backend_flag_rejects_an_unknown_name() {
    let (out, _) = replay("gpu");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown backend \"gpu\""), "{err}");
}
