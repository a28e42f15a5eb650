//! Builds the CUDA kernels of `kernels/cuda/` the ways the features ask for:
//! - `cpu-shim`: compiles them as C++ with the CPU shim (`shim_cpu.cpp`, g++ through `cc`) into
//!   a static library that `src/gpu/shim.rs` calls, for the tests;
//! - `cuda`: compiles them to PTX with `nvcc` when one is found (`$NVCC`, else `nvcc` on PATH;
//!   `$NVCC_CCBIN` is passed as `-ccbin`, e.g. `clang-14` for Debian's toolkit) and sets cfg
//!   `portcullis_prebuilt_ptx`; without nvcc, `src/gpu/cuda.rs` compiles the same sources with
//!   NVRTC when the backend loads.

use std::path::{Path, PathBuf};
use std::process::Command;

const KERNELS: [&str; 2] = ["forest", "mlp"];

fn main() {
    println!("cargo::rustc-check-cfg=cfg(portcullis_prebuilt_ptx)");
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let dir = manifest.join("../kernels/cuda");
    for f in ["forest.cu", "mlp.cu", "shim_cpu.h", "shim_cpu.cpp"] {
        println!("cargo::rerun-if-changed={}", dir.join(f).display());
    }
    for v in ["NVCC", "NVCC_CCBIN", "PORTCULLIS_CUDA_ARCH"] {
        println!("cargo::rerun-if-env-changed={v}");
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    #[cfg(feature = "cpu-shim")]
    cc::Build::new()
        .cpp(true)
        .file(dir.join("shim_cpu.cpp"))
        .include(&dir)
        .flag("-std=c++17")
        // The device does not contract a * b + c unless told to either way the CPU reference
        // is compared with; keep the shim's float arithmetic exactly as written.
        .flag_if_supported("-ffp-contract=off")
        .warnings_into_errors(true)
        .compile("portcullis_kernels_shim");
    if std::env::var_os("CARGO_FEATURE_CUDA").is_some() {
        prebuild_ptx(&dir, &out);
    }
}

/// PTX for every kernel into `out`, when nvcc is there.
fn prebuild_ptx(dir: &Path, out: &Path) {
    let nvcc = std::env::var("NVCC").unwrap_or_else(|_| "nvcc".to_string());
    if Command::new(&nvcc).arg("--version").output().is_err() {
        // Not an error: the backend compiles the same sources with NVRTC at load.
        return;
    }
    // PTX of the oldest architecture the kernels need is JIT-compiled by the driver for any
    // newer device.
    let arch = std::env::var("PORTCULLIS_CUDA_ARCH").unwrap_or_else(|_| "compute_70".to_string());
    for k in KERNELS {
        let src = dir.join(format!("{k}.cu"));
        let mut cmd = Command::new(&nvcc);
        cmd.arg("--ptx").arg(format!("-arch={arch}")).arg(&src).arg("-o").arg(out.join(format!("{k}.ptx")));
        if let Ok(ccbin) = std::env::var("NVCC_CCBIN") {
            cmd.arg("-ccbin").arg(ccbin);
        }
        let o = cmd.output().unwrap_or_else(|e| panic!("running {nvcc}: {e}"));
        if !o.status.success() {
            // nvcc is there, so this is a bug in the kernel source (or a host compiler nvcc
            // refuses: set NVCC_CCBIN): fail loudly rather than ship without the kernel.
            panic!("{nvcc} failed on {}:\n{}", src.display(), String::from_utf8_lossy(&o.stderr));
        }
    }
    println!("cargo::rustc-cfg=portcullis_prebuilt_ptx");
}
