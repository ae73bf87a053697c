"""A tiny labelled cohort store for the fine-tuning tests, split by ``cape split``.

Signals are a per-patient waveform whose amplitude grows with age and whose
frequency differs by sex, plus noise; ``diagnoses`` is a list column (a
multi-label task) tied to a lead's amplitude. Everything is learnable, so a
few steps move the weights, but the tests never rely on how well.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cape.cli import main
from cape.store import CohortStore, create_store_from_arrays

SLOT = 4000
CODES = ("AF", "LBBB", "NORM")


def make_manifest(patients_per_cohort: dict[str, int], seed: int = 0) -> pd.DataFrame:
    """Two or three ECGs per patient; age, sex and a diagnoses list per patient."""
    rng = np.random.default_rng(seed)
    rows = []
    for cohort, n_patients in patients_per_cohort.items():
        for p in range(n_patients):
            age = float(rng.uniform(20, 85))
            sex = "M" if p % 2 else "F"
            codes = [CODES[k] for k in range(3) if rng.random() < 0.4] or ["NORM"]
            for k in range(2 + p % 2):
                rows.append(
                    {
                        "record_id": f"{cohort}-{p}-{k}",
                        "patient_id": f"P{p}",
                        "cohort": cohort,
                        "valid_length": 4000 if k % 2 == 0 else 2800,
                        "age": age,
                        "sex": sex,
                        "diagnoses": codes,
                    }
                )
    return pd.DataFrame(rows)


def make_signals(manifest: pd.DataFrame, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(SLOT) / 400.0
    out = np.zeros((len(manifest), 8, SLOT), dtype=np.float32)
    for i, row in enumerate(manifest.itertuples()):
        freq = 1.0 if row.sex == "M" else 1.6
        amplitude = 0.3 + row.age / 60.0
        signal = amplitude * np.sin(2 * np.pi * freq * t + rng.uniform(0, 6.28, size=(8, 1)))
        if "AF" in row.diagnoses:
            signal[0] += 0.5
        signal += 0.05 * rng.standard_normal((8, SLOT))
        signal[:, row.valid_length :] = 0.0
        out[i] = signal
    return out


def labelled_store(
    path: Path, patients_per_cohort: dict[str, int] | None = None, split: bool = True
) -> CohortStore:
    """Write the store and assign splits with the ``cape split`` command."""
    manifest = make_manifest(patients_per_cohort or {"a": 24, "b": 16})
    create_store_from_arrays(path, make_signals(manifest), manifest)
    if split:
        assert main(["split", str(path), "--fractions", "0.6", "0.2", "0.2"]) == 0
    return CohortStore.open(path)


def tiny_settings(out_dir: Path, store: Path) -> list[str]:
    """A fast CPU run: small encoder on 2 s windows, one thread, no workers."""
    return [
        f"store={store}",
        f"out_dir={out_dir}",
        "init=scratch",
        "model.preset=small",
        "crop_seconds=1.0",
        "batch_size=8",
        "epochs=2",
        "eval_batch_size=64",
        "head_hidden_sizes=[16]",
        "device=cpu",
        "num_workers=0",
        "threads=1",
        "progress=false",
        "log_every_steps=2",
        "standardise_samples=32",
    ]


def free_port() -> int:
    """A port that was free a moment ago (racy by nature; the DDP test is marked slow)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
