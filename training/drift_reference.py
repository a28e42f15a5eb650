#!/usr/bin/env python3
"""Write drift.yaml beside a model: per model feature, the bins of its benign training flows and
the share of those flows in each bin, so that the appliance can measure how far live flows have
moved from what the model learned (population stability index, `inference::drift`).

    training/.venv/bin/python training/drift_reference.py --model-dir configs/models/cicids2017/v3

Population: the BENIGN flows of the CIC-IDS2017 fit split, exactly the rows train.py fits on
(same loading, same time split). Only benign flows, because live traffic is mostly benign and
the training set is mostly attacks by design (balanced classes): against the whole training mix
every ordinary network would look drifted. With --extra-benign DIR (as train.py takes it for v2
and v3), the fit captures' benign flows from other networks are added too; without it the file
says that they are not in it.

Bins, per feature (values as the model sees them: float32, a non-finite value as 0):
- edges are the 10 %, 20 %, ..., 90 % quantiles of the training values (taken as data values,
  `method="lower"`), deduplicated, plus the minimum; a value v falls in bin i = the number of
  edges <= v, so bin 0 (below the training minimum) and the last bin (at or above the last
  edge) are open-ended;
- a value that holds at least a tenth of the flows (a point mass: 0 for most counters, the
  protocol numbers, a constant feature) gets a bin of its own: the next float32 above it is an
  edge too. A constant feature thus has the bins (< c), {c}, (> c), and any live value other
  than c is drift.
The share of the training flows in each bin is recorded; the Rust side puts a small epsilon in
empty bins (documented there). The held-out benign flows (validation and test splits) are
scored against the reference and their PSI summarised in the file, as the level to expect from
undrifted benign traffic of the same network.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

import numpy as np
import yaml

import portcullis_model as pm
import train

QUANTILE_BINS = 10
# A value held by at least this share of the flows gets its own bin.
POINT_MASS = 1.0 / QUANTILE_BINS
# Must equal inference::drift::EMPTY_BIN (the check figures below use it).
EMPTY_BIN = 1e-4


def edges_of(x: np.ndarray) -> np.ndarray:
    """The sorted float32 edges of one feature's bins (see the module docstring)."""
    x = x.astype(np.float32)
    qs = np.quantile(x, np.arange(1, QUANTILE_BINS) / QUANTILE_BINS, method="lower")
    edges = set(np.float32(q) for q in qs)
    edges.add(np.float32(x.min()))
    values, counts = np.unique(x, return_counts=True)
    for v, c in zip(values, counts):
        if c >= POINT_MASS * len(x):
            edges.add(np.float32(v))
            edges.add(np.nextafter(np.float32(v), np.float32(np.inf)))
    return np.array(sorted(edges), dtype=np.float32)


def shares(edges: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Share of the values in each of the len(edges)+1 bins: bin = number of edges <= v."""
    bins = np.searchsorted(edges, x.astype(np.float32), side="right")
    return np.bincount(bins, minlength=len(edges) + 1) / max(len(x), 1)


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    e = np.maximum(expected, EMPTY_BIN)
    a = np.maximum(actual, EMPTY_BIN)
    return float(((a - e) * np.log(a / e)).sum())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", type=Path, required=True, help="the model's directory (holds model.yaml)")
    ap.add_argument("--data", type=Path, default=None, help="shared data dir (default: PORTCULLIS_DATA or ../shared/data)")
    ap.add_argument("--extra-benign", type=Path, default=None, metavar="DIR",
                    help="add the fit captures' benign flows from other networks, as train.py --extra-benign does")
    args = ap.parse_args()

    spec = yaml.safe_load((args.model_dir / "model.yaml").read_text())
    features = spec["features"]["names"]
    if pm.feature_list_sha256(features) != spec["features"]["sha256"]:
        raise SystemExit(f"{args.model_dir}/model.yaml: feature list does not match its sha256")
    data_dir = args.data or pm.shared_data_dir()
    if not (data_dir / pm.DATASET_SUBDIR).is_dir():
        print(f"error: dataset not found under {data_dir / pm.DATASET_SUBDIR}", file=sys.stderr)
        return 2
    df, cols, digests = train.load(data_dir)
    df["part"] = train.time_split(df)
    population = "BENIGN flows of the CIC-IDS2017 fit split (train.py's time split: earliest 65 % by Timestamp)"
    if args.extra_benign:
        df, _ = train.add_extra_benign(df, args.extra_benign, cols)
        population += ", and the fit captures' benign flows from other networks (--extra-benign)"
    elif spec.get("training_data", {}).get("extra_benign"):
        population += ("; not the benign flows from other networks this model also learned "
                       "(they need `eval_pcaps.py --extract`; run with --extra-benign DIR to add them)")
    benign = (df["cls"] == "BENIGN").to_numpy()
    cic = (df["Label"] == "BENIGN").to_numpy()
    x = pm.to_matrix(df, features)
    fit = x[benign & (df["part"] == "fit").to_numpy()]

    bins, all_edges = [], []
    for j, name in enumerate(features):
        edges = edges_of(fit[:, j])
        all_edges.append(edges)
        bins.append({"name": name,
                     "edges": [float(e) for e in edges],
                     "shares": [round(float(s), 6) for s in shares(edges, fit[:, j])]})

    def summary(rows: np.ndarray) -> dict:
        vals = sorted(((psi(shares(e, fit[:, j]), shares(e, rows[:, j])), f)
                       for j, (f, e) in enumerate(zip(features, all_edges))), reverse=True)
        p = np.array([v for v, _ in vals])
        return {"flows": int(len(rows)), "median_psi": round(float(np.median(p)), 4),
                "features_at_or_above_0.1": int((p >= 0.1).sum()), "features_at_or_above_0.25": int((p >= 0.25).sum()),
                "highest": {f: round(v, 4) for v, f in vals[:5]}}

    check = {}
    for part in ("val", "test"):
        check[f"cic_benign_{part}"] = summary(x[benign & cic & (df["part"] == part).to_numpy()])
    for label in ("DDoS", "Portscan", "DoS Hulk"):
        check[f"cic_{label.replace(' ', '_')}_test"] = summary(x[(df["Label"] == label).to_numpy() & (df["part"] == "test").to_numpy()])
    for k, v in check.items():
        print(f"{k}: {v}")

    doc = {
        "kind": "drift reference",
        "model": {"name": spec["name"], "version": spec["version"]},
        "written": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "features": {"count": len(features), "sha256": pm.feature_list_sha256(features)},
        "population": population,
        "flows": int(len(fit)),
        "training_data_digest": spec.get("training_data", {}).get("digest"),
        "bin_rule": "value v (float32; a non-finite value as 0, as the model scores it) falls in bin i = the number "
                    "of edges <= v, so there are len(edges)+1 bins; shares[i] is the fraction of the population in bin i",
        "edge_rule": f"the {QUANTILE_BINS}-quantiles (method lower) and the minimum of the population's values, "
                     f"deduplicated; a value held by at least {POINT_MASS:.0%} of the flows also gets the next float32 "
                     "above it as an edge, so it is a bin of its own",
        "check": {"definition": f"PSI per feature against this reference (empty bins as {EMPTY_BIN:g}), summarised; "
                                "benign val/test: the held-out benign flows of the same network, the level undrifted "
                                "traffic shows; the attack rows: CIC-IDS2017 test flows of one attack class",
                  **check},
        "bins": bins,
    }
    out = args.model_dir / "drift.yaml"
    with open(out, "w") as f:
        f.write("# Written by training/drift_reference.py; do not edit by hand. Read by inference::drift.\n")
        yaml.dump(doc, f, Dumper=train.PlainDumper, sort_keys=False, width=120, default_flow_style=None)
    print(f"wrote {out}: {len(fit)} flows, {sum(len(b['shares']) for b in bins)} bins over {len(features)} features")
    return 0


if __name__ == "__main__":
    sys.exit(main())
