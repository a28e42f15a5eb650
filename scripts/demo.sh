#!/usr/bin/env bash
# Builds Portcullis and replays the bundled demo capture (configs/demo/demo.pcap) with the
# bundled configuration and rules (configs/rules/demo.rules), writing EVE JSON to
# out/demo/eve.json and a short digest of it.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
cargo build --release --quiet --package portcullis
mkdir -p out/demo
rm -f out/demo/eve.json
./target/release/portcullis replay -c configs/portcullis.yaml --rules configs/rules/demo.rules \
  --policy --eve out/demo/eve.json configs/demo/demo.pcap
echo
echo "EVE written to out/demo/eve.json. Alerts by signature:"
jq -r 'select(.event_type=="alert") | "\(.src_ip) \(.alert.signature)"' out/demo/eve.json | sort | uniq -c | sort -rn
echo "What the policy would have done (dry-run decisions):"
jq -r 'select(.event_type=="decision") | .decision | "#\(.id) \(.action) \(.target) for \(.duration_secs // "-") s: \(.trigger) (\(.evidence.model.class // .evidence.rules[0]))"' out/demo/eve.json
echo "Flows by destination port (top 8):"
jq -r 'select(.event_type=="flow") | "\(.proto) \(.dest_port // "-")"' out/demo/eve.json | sort | uniq -c | sort -rn | head -8
echo "Hosts that opened the most flows:"
jq -r 'select(.event_type=="flow") | .src_ip' out/demo/eve.json | sort | uniq -c | sort -rn | head -3
