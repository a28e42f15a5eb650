"""What train.py and eval_pcaps.py share: where the data is, the feature contract, loading.

The feature contract is the one the Rust extractor implements: every name below is a column of
the corrected CIC-IDS2017 CSVs (Engelen et al.), and the model's input is those columns in
this order, as float32, with no transformation applied by the caller.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
DATASET_SUBDIR = Path("flows/cicids2017-improved-5000")
MODEL_DIR = REPO / "configs/models/cicids2017"


def shared_data_dir() -> Path:
    """Same rule as `portcullis_common::shared_data_dir`: PORTCULLIS_DATA, else ../shared/data
    beside the checkout (and one level further up, for worktrees under /work/wt)."""
    env = os.environ.get("PORTCULLIS_DATA")
    if env:
        return Path(env)
    for cand in (REPO.parent / "shared/data", REPO.parent.parent / "shared/data"):
        if cand.is_dir():
            return cand
    return REPO.parent / "shared/data"


def header(data_dir: Path) -> list[str]:
    return (data_dir / DATASET_SUBDIR / "HEADER.csv").read_text().strip().split(",")


def extractor_feature_names(cols: list[str]) -> list[str]:
    """The 83 names the Rust extractor produces: Dst Port, Protocol, then Flow Duration through
    Total TCP Flow Time in CSV order."""
    lo, hi = cols.index("Flow Duration"), cols.index("Total TCP Flow Time")
    return ["Dst Port", "Protocol", *cols[lo : hi + 1]]


# Columns the extractor produces that the models deliberately do not read, and why. The reasons
# are copied into model.yaml so the choice travels with the model.
EXCLUDED_FEATURES = {
    "Dst Port": "names the service, not the behaviour: in CIC-IDS2017 every SSH/FTP flow is "
    "an attack, so a model reading the port flags benign SSH and FTP as brute force",
    "FWD Init Win Bytes": "fingerprints the client's OS: nearly every CIC-IDS2017 attack comes "
    "from Kali (29200), so the model would learn 'Linux client' instead of the attack",
    "Bwd Init Win Bytes": "fingerprints the victim server's OS and tuning, a property of the "
    "testbed rather than of the attack",
}


def model_features(cols: list[str]) -> list[str]:
    return [f for f in extractor_feature_names(cols) if f not in EXCLUDED_FEATURES]


def feature_list_sha256(features: list[str]) -> str:
    """SHA-256 of the feature names joined by a single '\\n' (no trailing newline), UTF-8."""
    return hashlib.sha256("\n".join(features).encode("utf-8")).hexdigest()


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def to_matrix(df: pd.DataFrame, features: list[str]) -> np.ndarray:
    """The float32 [N, F] matrix the ONNX graphs take. A missing column is an error (the caller's
    CSV does not follow the contract); a non-numeric or non-finite cell becomes 0, the value the
    extractor writes for an undefined rate, and is counted by the caller if it cares."""
    missing = [f for f in features if f not in df.columns]
    if missing:
        raise KeyError(f"CSV lacks feature columns: {missing}")
    x = df[features].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    x[~np.isfinite(x)] = 0.0
    return x.astype(np.float32)
