#!/usr/bin/env bash
# Creates training/.venv with the pinned Python packages. Safe to run again: an existing venv
# is reused and pip only installs what is missing or at another version.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
py="${PYTHON:-python3}"
command -v "$py" >/dev/null || { echo "error: $py not found" >&2; exit 1; }
if ! "$py" -c 'import venv, ensurepip' 2>/dev/null; then
  if [ "$(id -u)" -ne 0 ]; then echo "error: python3-venv is missing; run as root or install it" >&2; exit 1; fi
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
fi
[ -x "$here/.venv/bin/python" ] || "$py" -m venv "$here/.venv"
"$here/.venv/bin/python" -m pip install -q --disable-pip-version-check -r "$here/requirements.txt"
echo "training venv ready: $here/.venv (run: $here/.venv/bin/python $here/train.py)"
