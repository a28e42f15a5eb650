//! The CUDA kernels compile for the devices the backend targets, proven without a GPU or the
//! CUDA toolkit: `kernels/cuda/*.cu` go through NVRTC (the backend's own `compile_ptx`, via
//! cudarc) to PTX for compute_80 and compute_90, and `ptxas` assembles each for sm_80 and sm_90.
//! The tools come from NVIDIA's PyPI wheels, installed by `scripts/cuda-tools.sh` into
//! target/cuda-tools (`$PORTCULLIS_CUDA_TOOLS`); `scripts/test.sh` installs them and puts their
//! `lib` on LD_LIBRARY_PATH. Skips, saying so, when they are not installed.
#![cfg(feature = "cuda")]

use std::path::PathBuf;
use std::process::Command;

use portcullis_inference::gpu::{compile_ptx, GpuError};

fn tools() -> Option<PathBuf> {
    let dir = std::env::var_os("PORTCULLIS_CUDA_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/cuda-tools"));
    (dir.join("bin/ptxas").exists() && dir.join("lib/libnvrtc.so.12").exists()).then_some(dir)
}

#[test]
fn kernels_compile_with_nvrtc_and_assemble_for_sm80_and_sm90() {
    let Some(tools) = tools() else {
        eprintln!("skipping: no NVRTC/ptxas under target/cuda-tools (run scripts/cuda-tools.sh)");
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for kernel in ["forest", "mlp"] {
        for arch in ["80", "90"] {
            let ptx = match compile_ptx(kernel, arch) {
                Ok(p) => p,
                Err(GpuError::Unavailable(why)) if std::env::var_os("CI").is_none() => {
                    eprintln!("skipping: {why}: put {}/lib on LD_LIBRARY_PATH (scripts/test.sh does)", tools.display());
                    return;
                }
                Err(e) => panic!("{kernel} for compute_{arch}: {e}"),
            };
            let entry = if kernel == "forest" { "forest_predict" } else { "mlp_score" };
            assert!(ptx.contains(&format!(".entry {entry}")), "no {entry} entry in the PTX");
            let file = out.path().join(format!("{kernel}.{arch}.ptx"));
            std::fs::write(&file, &ptx).unwrap();
            let o = Command::new(tools.join("bin/ptxas"))
                .arg(format!("-arch=sm_{arch}"))
                .arg("-v")
                .arg(&file)
                .arg("-o")
                .arg(out.path().join(format!("{kernel}.{arch}.cubin")))
                .output()
                .unwrap();
            let log = String::from_utf8_lossy(&o.stderr);
            assert!(o.status.success(), "ptxas sm_{arch} rejected {kernel}:\n{log}");
            // The kernels use no barrier and spill nothing: a change that does should be a
            // decision, not an accident.
            assert!(log.contains("0 bytes spill stores"), "{kernel} sm_{arch} spills registers:\n{log}");
            eprintln!("{kernel} sm_{arch}: {}", log.lines().filter(|l| l.contains("Used")).collect::<Vec<_>>().join("; ").trim());
            checked += 1;
        }
    }
    assert_eq!(checked, 4);
}
