"""Synthetic features directories with known structure for the protocol tests.

Each ECG's features are a function of its patient's age and sex plus noise:
dimension 0 carries age, dimension 1 sex, the rest is noise. Each cohort adds
its own offset to the age dimension (``shift``), so a head trained on one
cohort mispredicts age on a shifted one while that cohort's own head does not.
A model's ``noise`` sets how much the signal is buried; each encoder seed draws
its own noise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cape.embed import write_features

N_FEATURES = 8
FAST_HEAD = {
    "max_epochs": 15,
    "patience": 4,
    "batch_size": 64,
    "learning_rate": 3e-3,
    "hidden_sizes": (16, 16),
}


def make_index(patients: dict[str, int], ecgs_per_patient: int = 2, seed: int = 0) -> pd.DataFrame:
    """An index with ``ecgs_per_patient`` ECGs per patient and a 60/20/20 patient split."""
    rng = np.random.default_rng(seed)
    rows = []
    for cohort, n_patients in patients.items():
        splits = rng.permutation(
            np.repeat(
                ["train", "val", "test"],
                [
                    round(0.6 * n_patients),
                    round(0.2 * n_patients),
                    n_patients - round(0.6 * n_patients) - round(0.2 * n_patients),
                ],
            )
        )
        for p in range(n_patients):
            age = float(rng.uniform(20, 85))
            sex = "M" if rng.random() < 0.5 else "F"
            for e in range(ecgs_per_patient):
                rows.append(
                    {
                        "record_id": f"{cohort}-{p}-{e}",
                        "patient_id": f"p{p}",
                        "cohort": cohort,
                        "split": splits[p],
                        "age": age,
                        "age_topcoded": False,
                        "sex": sex,
                        "device": f"dev-{cohort}-{e % 2}",
                        "site": None,
                        "ethnicity": None,
                        "superclasses": None,
                        "strat_fold": None,
                        "valid_length": 4000,
                    }
                )
    index = pd.DataFrame(rows)
    index.insert(0, "store_index", np.arange(len(index)))
    return index


def make_features(
    index: pd.DataFrame, noise: float, shift: dict[str, float], seed: int
) -> np.ndarray:
    """``(n, N_FEATURES)`` float32 features: age and sex signal, cohort offsets, noise."""
    rng = np.random.default_rng(seed)
    n = len(index)
    features = rng.normal(scale=1.0, size=(n, N_FEATURES))
    age = index["age"].fillna(50.0).to_numpy()
    features[:, 0] = (age - 50.0) / 15.0 + noise * rng.normal(size=n)
    features[:, 1] = np.where(index["sex"] == "M", 1.0, -1.0) + noise * rng.normal(size=n)
    offsets = index["cohort"].map(lambda c: shift.get(c, 0.0)).to_numpy()
    features[:, 0] += offsets
    return features.astype(np.float32)


def write_dir(
    path: Path,
    index: pd.DataFrame,
    noise: float,
    shift: dict[str, float],
    seed: int,
    untrained: bool = False,
    checkpoint: str | None = None,
    order_seed: int | None = None,
) -> Path:
    """Write one features directory; ``order_seed`` shuffles its rows (alignment must undo it)."""
    features = make_features(index, noise, shift, seed)
    if order_seed is not None:
        order = np.random.default_rng(order_seed).permutation(len(index))
        index, features = index.iloc[order].reset_index(drop=True), features[order]
    info = {
        "checkpoint": checkpoint or f"/nowhere/{path.name}",
        "untrained": untrained,
        "store_fingerprint": "synthetic",
    }
    return write_features(path, features, index, info)
