#!/bin/sh
# Builds the rule_parser seed corpus from ET Open (one rule per file, active and commented-out
# rules alike) under target/, never in the repository: the rules are not ours to commit.
# Usage: fuzz/seed-rules.sh [ET_OPEN_DIR] [OUT_DIR]
set -eu
src=${1:-${PORTCULLIS_DATA:-/work/shared/data}/rules/et-open-2024-04}
out=${2:-$(dirname "$0")/../target/fuzz-seeds/rule_parser}
[ -d "$src" ] || { echo "no ET Open rules at $src (set PORTCULLIS_DATA)" >&2; exit 1; }
mkdir -p "$out"
cat "$src"/*.rules | sed -n 's/^# *\(alert\|drop\|pass\|reject\)/\1/p; /^\(alert\|drop\|pass\|reject\)/p' \
  | sort -u | split -l 1 -a 6 - "$out/et-"
echo "$(ls "$out" | wc -l) seeds in $out"
