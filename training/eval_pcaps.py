#!/usr/bin/env python3
"""Score flows that Portcullis extracted from capture files with the shipped ONNX models, and
report per capture the fraction of flows each model flags.

The models are run exactly as shipped (classifier.onnx, anomaly.onnx, the feature list and the
thresholds from model.yaml) with onnxruntime; nothing from the training run is reused.

Two ways to give it flows:

  # flows already extracted, one CSV per capture (dataset header; the file stem names the capture)
  training/.venv/bin/python training/eval_pcaps.py --csv out/flows/*.csv

  # let it run the extractor over the shared capture sets (attacks/, scans/, benign/, ndpi/)
  training/.venv/bin/python training/eval_pcaps.py --extract

A CSV with a column named "capture" is split by that column instead of by file.

Ground truth is per capture, from where the capture comes from (SOURCES.md) and its name: see
`truth()`. The captures under attacks/ and scans/ are recordings made for one attack; within
them capture_flows.py tells the attack flows (between the attacker and the victim) from the
rest, which are reported apart as non-attack flows, and the target is that each such capture
has flagged attack flows. A model that learned the earlier flows of the attack captures (v3)
is evaluated on the later, held-out ones only: --attack-split-from MODEL_DIR keeps the attack
flows that capture_flows.py holds out, and checks that their number per capture is the one
that model's model.yaml records. nDPI captures are application traffic except the ones `NDPI_NOT_BENIGN` names (attacks,
malware, tunnels, fuzzed or crafted packets), which are reported apart and left out of the
benign pool. The benign target: at most 0.5 % of the pooled benign flows flagged.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pandas as pd
import yaml

import capture_flows
import portcullis_model as pm

CAPTURE_EXT = (".pcap", ".pcapng", ".cap")
BENIGN_FLOW_TARGET = 0.005

# nDPI test captures that are not ordinary application traffic, and what they are.
NDPI_NOT_BENIGN = [
    (r"^Webattack(RCE|SQLinj)|^sql_injection|^log4j-webapp-exploit", "attack", "web attack (SQLi/RCE/log4j)"),
    (r"^synscan|^tcp_scan", "attack", "port scan"),
    (r"^dos_win98_smb_netbeui|^h323-overflow", "attack", "DoS / overflow exploit"),
    (r"^(emotet|trickbot|malware|bot|crynet|tls_malicious_sha1)$", "malware", "malware C2 / download"),
    (r"^(dns-tunnel-iodine|dns2tcp_tunnel|dns_exfiltration|dns-exf|icmp-tunnel)$", "malware", "covert tunnel / exfiltration"),
    (r"fuzz|^malformed_|^badpackets|^bad-dns-traffic|^reasm_(crash|segv)|^ip_fragmented_garbage|^http-crash",
     "crafted", "fuzzed or deliberately malformed packets"),
]

ATTACK_CAPTURES = {
    "ssh-bruteforce-zeek": "SSH password guessing (Zeek trace)",
    "ftp-bruteforce-zeek": "FTP password guessing (Zeek trace)",
    "dhcp-flood-zeek": "DHCP request flood (Zeek trace)",
    "synflood-spoofed-stopddos": "spoofed TCP SYN flood",
    "cic-ddos2019-synflood": "CIC-DDoS2019 SYN flood",
}


def truth(set_name: str, stem: str) -> tuple[str, str]:
    """(kind, what) for a capture: kind is attack, benign, malware or crafted."""
    if set_name == "attacks":
        return "attack", ATTACK_CAPTURES.get(stem, "attack capture")
    if set_name == "scans":
        return "attack", "nmap/masscan scan"
    if set_name == "ndpi":
        for pat, kind, what in NDPI_NOT_BENIGN:
            if re.search(pat, stem):
                return kind, what
        return "benign", "nDPI application traffic"
    if set_name == "benign":
        return "benign", "Zeek protocol trace"
    return "unknown", ""


class Models:
    def __init__(self, model_dir: Path):
        self.doc = yaml.safe_load((model_dir / "model.yaml").read_text())
        feats = self.doc["features"]["names"]
        if pm.feature_list_sha256(feats) != self.doc["features"]["sha256"]:
            raise SystemExit("model.yaml: feature list does not match its sha256")
        self.features = feats
        clf = self.doc["classifier"]
        self.classes = clf["classes"]
        self.min_prob = np.array([clf["min_probability"].get(c, np.inf) for c in self.classes])
        self.threshold = float(self.doc["anomaly"]["threshold"])
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        self.clf = ort.InferenceSession(str(model_dir / clf["file"]), opts, providers=["CPUExecutionProvider"])
        self.ae = ort.InferenceSession(str(model_dir / self.doc["anomaly"]["file"]), opts,
                                       providers=["CPUExecutionProvider"])

    def score(self, df: pd.DataFrame) -> pd.DataFrame:
        x = pm.to_matrix(df, self.features)
        outs = dict(zip([o.name for o in self.clf.get_outputs()], self.clf.run(None, {"features": x})))
        prob = outs["probabilities"]
        top = prob.argmax(1)
        benign = self.classes.index("BENIGN")
        clf_flag = (top != benign) & (prob[np.arange(len(top)), top] >= self.min_prob[top])
        (score,) = self.ae.run(None, {"features": x})
        return pd.DataFrame({
            "class": np.array(self.classes)[top],
            "clf_flag": clf_flag,
            "anomaly_score": score[:, 0],
            "ae_flag": score[:, 0] >= self.threshold,
        })


def capture_sets(data_dir: Path) -> list[tuple[str, Path]]:
    root = data_dir / "pcaps"
    out = []
    for set_name in ("attacks", "scans", "benign", "ndpi"):
        for p in sorted((root / set_name).rglob("*")):
            if p.suffix in CAPTURE_EXT and p.is_file():
                out.append((set_name, p))
    return out


def extract(captures, cache: Path, template: str) -> list[tuple[str, str, Path | None, str]]:
    """Runs the extractor once per capture; returns (set, stem, csv or None, error)."""
    res = []
    for set_name, cap in captures:
        out = cache / set_name / (cap.name + ".csv")
        out.parent.mkdir(parents=True, exist_ok=True)
        if not out.exists() or out.stat().st_mtime < cap.stat().st_mtime:
            cmd = template.format(capture=shlex.quote(str(cap)), out=shlex.quote(str(out)))
            r = subprocess.run(cmd, shell=True, capture_output=True, text=True, cwd=pm.REPO)
            if r.returncode != 0:
                out.unlink(missing_ok=True)
                last = (r.stderr.strip().splitlines() or ["exit status %d" % r.returncode])[-1]
                res.append((set_name, cap.name, None, last[:160]))
                continue
        res.append((set_name, cap.name, out, ""))
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", type=Path, default=pm.MODEL_DIR / "v1", help="default: %(default)s")
    ap.add_argument("--attack-split-from", type=Path, default=None, metavar="MODEL_DIR",
                    help="count only the held-out (later) attack flows of each attack capture, as "
                    "capture_flows.py splits them for the model trained on them (MODEL_DIR/model.yaml, "
                    "training_data.attack_captures); normally the --model-dir itself")
    ap.add_argument("--csv", type=Path, nargs="*", default=[], help="flow CSVs, one per capture")
    ap.add_argument("--set", default="ndpi", help="capture set assumed for --csv files whose name says nothing "
                    "(attacks, scans, benign, ndpi)")
    ap.add_argument("--extract", action="store_true", help="run the extractor over the shared capture sets")
    ap.add_argument("--extractor", default=None,
                    help="command template with {capture} and {out}; default: target/debug/portcullis "
                    "features {capture} --csv {out} (built with cargo if missing)")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/portcullis-eval-pcaps"))
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None, help="write the per-capture table as JSON here")
    args = ap.parse_args()

    models = Models(args.model_dir)
    items: list[tuple[str, str, pd.DataFrame | None, str]] = []
    if args.extract:
        data_dir = args.data or pm.shared_data_dir()
        template = args.extractor
        if template is None:
            binary = pm.REPO / "target/debug/portcullis"
            if not binary.exists():
                subprocess.run(["cargo", "build", "-q", "-p", "portcullis"], cwd=pm.REPO, check=True)
            template = f"{shlex.quote(str(binary))} features {{capture}} --csv {{out}}"
        for set_name, fname, csv, err in extract(capture_sets(data_dir), args.cache, template):
            items.append((set_name, fname, pd.read_csv(csv) if csv else None, err))
    for csv in args.csv:
        df = pd.read_csv(csv)
        if "capture" in df.columns:
            for cap, g in df.groupby("capture"):
                p = Path(str(cap))
                items.append((p.parent.name if p.parent.name in ("attacks", "scans", "ndpi") else args.set, p.name, g, ""))
        else:
            set_name = csv.parent.name if csv.parent.name in ("attacks", "scans", "benign", "ndpi") else args.set
            items.append((set_name, csv.name.removesuffix(".csv"), df, ""))
    if not items:
        ap.error("give --csv files or --extract")

    # Captures whose flows the model learned BENIGN from (v2 and later) are not evaluation data.
    trained_on = set()
    extra = models.doc["training_data"].get("extra_benign")
    if extra:
        trained_on = set(extra["captures"]["fit"]) | set(extra["captures"]["val"])
    split_counts = None
    if args.attack_split_from:
        doc = yaml.safe_load((args.attack_split_from / "model.yaml").read_text())
        learned = doc["training_data"].get("attack_captures")
        if not learned:
            raise SystemExit(f"{args.attack_split_from}/model.yaml: the model learned no attack captures")
        split_counts = {k: v["flows"]["heldout"] for k, v in learned["captures"].items()}
    elif models.doc["training_data"].get("attack_captures"):
        print("warning: this model learned the earlier flows of the attack captures; without "
              "--attack-split-from its attack figures include flows it was trained on", file=sys.stderr)
    rows = []
    for set_name, fname, df, err in items:
        stem = fname
        for ext in CAPTURE_EXT:
            stem = stem.removesuffix(ext)
        kind, what = truth(set_name, stem)
        if f"{set_name}/{fname}" in trained_on:
            kind, what = "trained-on", "benign capture used in training"
        row = {"set": set_name, "capture": stem, "truth": kind, "what": what, "flows": 0,
               "clf_flagged": 0, "ae_flagged": 0, "either_flagged": 0, "top_alert_class": "",
               "non_attack_flows": 0, "non_attack_flagged": 0, "error": err}
        if df is not None and len(df):
            df = df.reset_index(drop=True)
            s = models.score(df)
            # Which flows count: an attack capture's attack flows (held out only, with
            # --attack-split-from), the rest reported as non-attack flows; every flow elsewhere.
            counted = np.ones(len(df), dtype=bool)
            lab = capture_flows.label(set_name, fname, df) if kind == "attack" and set_name in ("attacks", "scans") else None
            if lab is not None:
                attack = (lab["cls"] != "").to_numpy()
                counted = attack & (lab["split"] == "heldout").to_numpy() if split_counts is not None else attack
                non = ~attack
                flag = (s.clf_flag | s.ae_flag).to_numpy()
                row.update(non_attack_flows=int(non.sum()), non_attack_flagged=int((flag & non).sum()))
                key = capture_flows.capture_key(set_name, fname)
                if split_counts is not None and split_counts.get(key, 0) != int(counted.sum()):
                    raise SystemExit(f"{key}: {int(counted.sum())} held-out attack flows here, "
                                     f"{split_counts.get(key)} in {args.attack_split_from}/model.yaml: "
                                     "the capture's flows or capture_flows.py changed since that training")
            s = s[counted]
            alerts = s.loc[s.clf_flag, "class"]
            row.update(flows=len(s), clf_flagged=int(s.clf_flag.sum()), ae_flagged=int(s.ae_flag.sum()),
                       either_flagged=int((s.clf_flag | s.ae_flag).sum()),
                       top_alert_class=alerts.value_counts().index[0] if len(alerts) else "")
        rows.append(row)
    t = pd.DataFrame(rows)
    for c in ("clf", "ae", "either"):
        t[f"{c}_frac"] = (t[f"{c}_flagged"] / t["flows"].where(t["flows"] > 0)).round(4)

    pd.set_option("display.width", 200)
    pd.set_option("display.max_rows", 1000)
    pd.set_option("display.max_colwidth", 40)
    show = ["set", "capture", "truth", "flows", "clf_frac", "ae_frac", "either_frac", "top_alert_class"]
    att_show = ["set", "capture", "flows", "clf_flagged", "ae_flagged", "either_flagged", "either_frac",
                "top_alert_class", "non_attack_flows", "non_attack_flagged"]
    order = {"attack": 0, "malware": 1, "crafted": 2, "benign": 3, "trained-on": 4, "unknown": 5}
    t = t.sort_values(by=["truth", "set", "capture"], key=lambda s: s.map(order) if s.name == "truth" else s)
    failed = t[t.error != ""]
    is_att = (t.truth == "attack") & t.set.isin(["attacks", "scans"])
    print(("held-out " if split_counts is not None else "") + "attack flows of the attack captures "
          "(flows = attack flows counted; non-attack flows reported apart):")
    print(t[is_att & (t.error == "")][att_show].to_string(index=False))
    print()
    print(t[~is_att & (t.error == "")][show].to_string(index=False))
    if len(failed):
        print(f"\n{len(failed)} captures the extractor could not read:")
        print(failed[["set", "capture", "error"]].to_string(index=False))

    print("\nsummary")
    ok = True
    att = t[(t.truth == "attack") & (t.set.isin(["attacks", "scans"])) & (t.error == "") & (t.flows > 0)]
    none = t[(t.truth == "attack") & (t.set.isin(["attacks", "scans"])) & (t.error == "") & (t.flows == 0)]
    which = "held-out attack flows" if split_counts is not None else "attack flows"
    for c, name in (("clf", "classifier"), ("ae", "anomaly"), ("either", "either")):
        hit = int((att[f"{c}_flagged"] > 0).sum())
        print(f"  attack captures (attacks/, scans/) with flagged {which}, {name:10s}: {hit}/{len(att)}")
    if len(none):
        print(f"  attack captures without any {which} (no flow of 2 packets or more): {', '.join(none.capture)}")
    print(f"  non-attack flows in attack captures flagged (either): {int(att.non_attack_flagged.sum())}"
          f"/{int(att.non_attack_flows.sum())}")
    if len(att) and int((att["either_flagged"] > 0).sum()) < len(att):
        ok = False
    ben = t[(t.truth == "benign") & (t.error == "")]
    n = int(ben.flows.sum())
    for c, name in (("clf", "classifier"), ("ae", "anomaly"), ("either", "either")):
        k = int(ben[f"{c}_flagged"].sum())
        frac = k / n if n else float("nan")
        print(f"  benign flows flagged, {name:10s}: {k}/{n} = {frac:.4%} "
              f"({int((ben[f'{c}_flagged'] > 0).sum())}/{len(ben)} benign captures have any)")
        if c == "either" and n and frac > BENIGN_FLOW_TARGET:
            ok = False
    other = t[(t.truth.isin(["attack", "malware"])) & (t.set == "ndpi") & (t.error == "")]
    if len(other):
        print(f"  nDPI attack/malware captures with flagged flows (either): "
              f"{int((other.either_flagged > 0).sum())}/{len(other)} (outside the training classes; informative)")
    print(f"  targets (every attack capture flagged, <= {BENIGN_FLOW_TARGET:.1%} benign flows): "
          f"{'met' if ok else 'NOT met'}")
    if args.json:
        args.json.write_text(json.dumps(t.to_dict(orient="records"), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
