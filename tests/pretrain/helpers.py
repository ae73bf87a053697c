"""Small synthetic cohorts for the pretraining tests: an in-memory store and a real one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

SLOT = 4000


class FakeStore:
    """In-memory object with the read interface of ``cape.store.CohortStore``."""

    def __init__(self, signals: np.ndarray, manifest: pd.DataFrame) -> None:
        self.signals = signals.astype(np.float32)
        self.manifest = manifest.reset_index(drop=True)
        self.valid_lengths = self.manifest["valid_length"].to_numpy(np.int32)
        self.reads = 0

    def __len__(self) -> int:
        return len(self.manifest)

    @property
    def cohorts(self) -> list[str]:
        return sorted(self.manifest["cohort"].unique().tolist())

    def read(self, index: int) -> np.ndarray:
        self.reads += 1
        return self.signals[index].copy()

    def fingerprint(self) -> str:
        return f"fake-{len(self)}-{float(self.signals.sum()):.6f}"


def make_manifest(
    patients_per_cohort: dict[str, int],
    ecgs_per_patient: int | tuple[int, int] = (1, 4),
    seed: int = 0,
    test_fraction: float = 0.0,
    valid_lengths: tuple[int, ...] = (2800, 4000),
) -> pd.DataFrame:
    """One row per ECG; patients get a random number of ECGs and a split."""
    rng = np.random.default_rng(seed)
    rows = []
    for cohort, n_patients in patients_per_cohort.items():
        for p in range(n_patients):
            if isinstance(ecgs_per_patient, int):
                count = ecgs_per_patient
            else:
                count = int(rng.integers(ecgs_per_patient[0], ecgs_per_patient[1] + 1))
            split = "test" if rng.random() < test_fraction else "train"
            for k in range(count):
                rows.append(
                    {
                        "record_id": f"{cohort}-{p}-{k}",
                        "patient_id": f"P{p}",  # ids repeat across cohorts on purpose
                        "cohort": cohort,
                        "valid_length": int(rng.choice(valid_lengths)),
                        "split": split,
                    }
                )
    return pd.DataFrame(rows)


def make_signals(manifest: pd.DataFrame, seed: int = 0) -> np.ndarray:
    """``(n, 8, 4000)`` mV: a per-patient waveform plus noise, zeros after valid_length."""
    rng = np.random.default_rng(seed)
    t = np.arange(SLOT) / 400.0
    out = np.zeros((len(manifest), 8, SLOT), dtype=np.float32)
    shapes: dict[tuple[str, str], np.ndarray] = {}
    for i, row in enumerate(manifest.itertuples()):
        key = (row.cohort, row.patient_id)
        if key not in shapes:
            freq = rng.uniform(0.8, 2.0)
            phase = rng.uniform(0, 2 * np.pi, size=(8, 1))
            amplitude = rng.uniform(0.2, 1.5, size=(8, 1))
            shapes[key] = amplitude * np.sin(2 * np.pi * freq * t + phase)
        signal = shapes[key] + 0.05 * rng.standard_normal((8, SLOT))
        signal[:, row.valid_length :] = 0.0
        out[i] = signal
    return out


def fake_store(patients_per_cohort: dict[str, int], seed: int = 0, **kwargs: object) -> FakeStore:
    manifest = make_manifest(patients_per_cohort, seed=seed, **kwargs)  # type: ignore[arg-type]
    return FakeStore(make_signals(manifest, seed), manifest)


def real_store(path: Path, patients_per_cohort: dict[str, int], seed: int = 0, **kwargs: object):
    """A store on disk written by ``cape.store.create_store_from_arrays``."""
    from cape.store import create_store_from_arrays

    manifest = make_manifest(patients_per_cohort, seed=seed, **kwargs)  # type: ignore[arg-type]
    return create_store_from_arrays(path, make_signals(manifest, seed), manifest)


def tiny_overrides(out_dir: Path) -> list[str]:
    """Settings for a fast CPU run: small encoder on 2 s views."""
    return [
        f"out_dir={out_dir}",
        "model.preset=small",
        "crop_seconds=2.0",
        "batch_patients=4",
        "epochs=2",
        "lr=0.001",
        "device=cpu",
        "num_workers=0",
        "threads=1",
        "progress=false",
        "log_every_steps=2",
        "batching=idb",
    ]
