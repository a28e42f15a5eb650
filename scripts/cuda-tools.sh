#!/usr/bin/env bash
# Installs the CUDA compiler pieces CI uses to prove the kernels in kernels/cuda/ compile,
# without a GPU and without the 1.5 GB CUDA toolkit: NVIDIA's NVRTC and nvcc wheels from PyPI
# (libnvrtc.so.12, about 90 MB; ptxas from the nvcc wheel) in a Python venv under
# target/cuda-tools. Idempotent: a second run only checks. Afterwards:
#   target/cuda-tools/lib/libnvrtc.so.12   (put the directory on LD_LIBRARY_PATH)
#   target/cuda-tools/bin/ptxas
# Sourced by scripts/test.sh (which exports PORTCULLIS_CUDA_TOOLS) or run on its own.
set -euo pipefail
tools_root=${PORTCULLIS_CUDA_TOOLS:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/target/cuda-tools}
# Pinned so the check is the same on every run; 12.8 is the API version cudarc is built for
# (its `cuda-12080` feature, root Cargo.toml) and knows both sm_80 and sm_90.
cuda_tools_version=12.8.*
if [ -x "$tools_root/bin/ptxas" ] && [ -e "$tools_root/lib/libnvrtc.so.12" ]; then
  return 0 2>/dev/null || exit 0
fi
if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  if [ "$(id -u)" -ne 0 ]; then echo "error: python3-venv is missing; run as root or install it" >&2; exit 1; fi
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv python3-pip >/dev/null
fi
mkdir -p "$tools_root"
[ -x "$tools_root/venv/bin/pip" ] || python3 -m venv "$tools_root/venv"
"$tools_root/venv/bin/pip" install -q --disable-pip-version-check \
  "nvidia-cuda-nvrtc-cu12==$cuda_tools_version" "nvidia-cuda-nvcc-cu12==$cuda_tools_version"
site=$("$tools_root/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
ln -sfn "$site/nvidia/cuda_nvrtc/lib" "$tools_root/lib"
ln -sfn "$site/nvidia/cuda_nvcc/bin" "$tools_root/bin"
[ -x "$tools_root/bin/ptxas" ] && [ -e "$tools_root/lib/libnvrtc.so.12" ] || {
  echo "error: the CUDA wheels did not provide bin/ptxas and lib/libnvrtc.so.12 under $site/nvidia" >&2
  exit 1
}
