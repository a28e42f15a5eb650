//! Compiles the XDP program (`kernels/xdp/portcullis.bpf.c`) with clang into OUT_DIR, where
//! `live/xdp.rs` embeds it. Without the `afxdp` feature, clang or libbpf's headers, the crate
//! still builds and the XDP API says why it is missing (cfg `portcullis_xdp` unset, the reason
//! in `PORTCULLIS_XDP_MISSING`).

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(portcullis_xdp)");
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let src = manifest.join("../kernels/xdp/portcullis.bpf.c");
    println!("cargo::rerun-if-changed={}", src.display());
    println!("cargo::rerun-if-env-changed=CLANG");

    if std::env::var_os("CARGO_FEATURE_AFXDP").is_none() {
        return missing("the afxdp feature was off");
    }
    let clang = std::env::var("CLANG").unwrap_or_else(|_| "clang".to_string());
    if Command::new(&clang).arg("--version").output().is_err() {
        println!("cargo::warning=clang not found: the XDP program is not built (install clang and libbpf-dev)");
        return missing("clang was not found when Portcullis was built");
    }
    if !Path::new("/usr/include/bpf/bpf_helpers.h").exists() {
        println!("cargo::warning=bpf/bpf_helpers.h not found: the XDP program is not built (install libbpf-dev)");
        return missing("libbpf-dev was not installed when Portcullis was built");
    }

    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("portcullis.bpf.o");
    let mut cmd = Command::new(&clang);
    cmd.args(["-O2", "-g", "-target", "bpf", "-Wall", "-Werror", "-c"]).arg(&src).arg("-o").arg(&out);
    // <linux/types.h> includes <asm/types.h>, which Debian keeps under the host's multiarch
    // directory; `-target bpf` does not search it.
    let multiarch = match std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() {
        Ok("x86_64") => Some("x86_64-linux-gnu"),
        Ok("aarch64") => Some("aarch64-linux-gnu"),
        Ok("riscv64") => Some("riscv64-linux-gnu"),
        _ => None,
    };
    if let Some(dir) = multiarch.map(|m| Path::new("/usr/include").join(m)).filter(|d| d.exists()) {
        cmd.arg("-I").arg(dir);
    }
    let output = cmd.output().unwrap_or_else(|e| panic!("running {clang}: {e}"));
    if !output.status.success() {
        // clang and the headers are there, so this is a bug in the C source: fail loudly.
        panic!("{clang} failed on {}:\n{}", src.display(), String::from_utf8_lossy(&output.stderr));
    }
    println!("cargo::rustc-cfg=portcullis_xdp");
}

fn missing(why: &str) {
    println!("cargo::rustc-env=PORTCULLIS_XDP_MISSING={why}");
}
