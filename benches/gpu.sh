#!/usr/bin/env bash
# Batched scoring on the GPU, on a machine that has one: builds the inference crate with the
# `cuda` feature, checks on the device that the GPU scores as the CPU does (the kernel_device
# test: probabilities and anomaly scores within 1e-5, identical classes, on synthetic rows and
# the shared CIC-IDS2017 flows), then measures throughput and per-batch latency of
# `Scorer::score` at batch sizes 64 … 65,536 with the shipped model and prints a table.
# Targets: >= 50 M flows/s, p99 batch latency <= 2 ms. Without a usable GPU it says why and
# exits 1 without measuring anything.
#   benches/gpu.sh [--sizes 64,1024,65536] [--model DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
export PORTCULLIS_DATA=${PORTCULLIS_DATA:-$(cd .. && pwd)/shared/data}
cargo build --profile bench -p portcullis-inference --features cuda --example gpu_bench
bench="${CARGO_TARGET_DIR:-target}/release/examples/gpu_bench"
if ! why=$("$bench" --probe 2>&1); then
  echo "benches/gpu.sh: $why; nothing measured (this needs an NVIDIA GPU and its driver)" >&2
  exit 1
fi
echo "device: $why"
cargo test --profile bench -p portcullis-inference --features cuda --test kernel_device -- --nocapture
"$bench" "$@"
