#!/usr/bin/env bash
# Runs every test: the differential check of flow records against Suricata 7 on a subset of
# the shared captures (Suricata is installed from bookworm-backports when missing), the
# suricata-verify tests Portcullis can run (with a ratchet of tests that must pass), then the
# workspace's unit and integration tests. Shared corpora are read from $PORTCULLIS_DATA
# (default ../shared/data); tests that need them say so and skip when they are absent.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
export PORTCULLIS_DATA=${PORTCULLIS_DATA:-$(cd .. && pwd)/shared/data}
# Release code generation without LTO (Cargo.toml's `ci` profile), for the xtask binaries
# and the tests alike: linking tract into every test binary with LTO takes most of an hour.
# Everything is built once, as the workspace's tests build it, with the binaries, the GPU
# benchmark example and the criterion benchmarks (so none of them can rot); the checks below
# run those binaries rather than `cargo xtask`, whose own builds (xtask in `release`,
# `--package portcullis`) resolve features differently and would compile most of the tree
# again.
cargo build --workspace --profile ci --bins --tests --examples --benches
target=$(cargo metadata --no-deps --format-version 1 | jq -r .target_directory)
export PORTCULLIS_BIN="$target/ci/portcullis"
xtask="$target/ci/xtask"
if [ -d "$PORTCULLIS_DATA/pcaps" ]; then
  # Every 6th nDPI/Zeek capture keeps this to a couple of minutes; the full run is
  # `cargo xtask suricata-diff` (see benches/RESULTS.md for its figure).
  "$xtask" suricata-diff --every 6 --min-agreement 99 --report "$target/suricata-diff.json"
else
  echo "skipping the Suricata differential check: $PORTCULLIS_DATA/pcaps not found (set PORTCULLIS_DATA)"
fi
if [ -d "$PORTCULLIS_DATA/suricata-verify/tests" ]; then
  # Every suricata-verify test Portcullis can run, checked against its expected EVE events;
  # the tests in the ratchet file must keep passing, and the pass rate is also given over the
  # tests Suricata 7.0.10 itself passes (the baseline). A few seconds: most tests are skipped
  # (with their reasons in suricata-verify.json in the target directory) before anything is replayed.
  "$xtask" suricata-verify --ratchet xtask/suricata-verify-ratchet.txt --baseline xtask/suricata-verify-baseline.txt \
    --report "$target/suricata-verify.json"
else
  echo "skipping suricata-verify: $PORTCULLIS_DATA/suricata-verify not found (set PORTCULLIS_DATA)"
fi
# NVRTC and ptxas from NVIDIA's PyPI wheels (no GPU or CUDA toolkit needed): the kernel_nvrtc
# test compiles kernels/cuda/ with the CUDA backend's own NVRTC path and assembles the PTX for
# sm_80 and sm_90. cudarc dlopens libnvrtc.so.12, so its directory goes on LD_LIBRARY_PATH.
bash scripts/cuda-tools.sh
export PORTCULLIS_CUDA_TOOLS=$PWD/target/cuda-tools
export LD_LIBRARY_PATH="$PORTCULLIS_CUDA_TOOLS/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# nextest ends with one summary of every test; plain cargo test where it is missing.
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --cargo-profile ci --no-fail-fast
else
  cargo test --workspace --profile ci
fi
