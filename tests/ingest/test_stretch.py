"""A sampling rate labelled too low (500 Hz called 257 Hz) stretches time by 1.95.

At 85-105 bpm the stretched ECG shows 45-52 bpm with a plausible QRS: only the
QT (x 1.95, QTc Fridericia x 1.56) gives it away. Bundle-branch-block patients
with a slow sinus rhythm look alike in rate and QRS width and must be stored.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _hostile_corpus import write_metadata, write_wfdb

from cape.ingest import ingest
from cape.qc import QCConfig
from cape.store import CohortStore

# (cohort, chunk, row) of the simulator's tiny preset: what the ECG is.
STRETCHED = {
    "af102": ("harbor", 0, 29),  # atrial fibrillation, 102 bpm -> 52 bpm
    "sinus89": ("jade", 0, 22),  # sinus rhythm, 89 bpm -> 46 bpm
    "bbb87": ("serra", 0, 6),  # bundle branch block with AF, 87 bpm -> 45 bpm
}
BRADY_BBB = {
    "lbbb53": ("harbor", 0, 11),  # LBBB, sinus 53 bpm, QRS 143 ms
    "lbbb60": ("harbor", 0, 12),  # LBBB, sinus 60 bpm, QRS 145 ms
    "bbb50": ("jade", 0, 6),  # bundle branch block, sinus 50 bpm
    "bbb56": ("serra", 2, 2),  # bundle branch block, sinus 56 bpm
}


@functools.cache
def _chunk(cohort: str, index: int) -> tuple[np.ndarray, pd.DataFrame]:
    from cape.simulator.generate import iter_cohort_chunks
    from cape.simulator.presets import tiny
    from cape.simulator.writers import resample

    for k, chunk in enumerate(iter_cohort_chunks(tiny(), cohort)):
        if k == index:
            signals = resample(chunk.signals, chunk.sampling_rate_hz, 500)
            return signals, chunk.ecgs.reset_index(drop=True)
    raise AssertionError(f"no chunk {index} in {cohort}")


def _ecg(cohort: str, chunk: int, row: int) -> tuple[np.ndarray, pd.Series]:
    signals, ecgs = _chunk(cohort, chunk)
    return signals[row], ecgs.iloc[row]


def test_the_simulated_cases_are_what_they_claim() -> None:
    for spec in STRETCHED.values():
        _, truth = _ecg(*spec)
        assert 85.0 <= truth["heart_rate_bpm"] <= 105.0
    for spec in BRADY_BBB.values():
        _, truth = _ecg(*spec)
        assert truth["CLBBB"] or truth["CRBBB"]
        assert truth["heart_rate_bpm"] <= 60.5 and truth["qrs_ms"] >= 120.0
        assert not truth["AFIB"]


def _source(folder: Path) -> Path:
    rows = []
    for name, spec in STRETCHED.items():
        write_wfdb(folder / "rec", name, _ecg(*spec)[0], header_fs=257)
        rows.append({"path": f"rec/{name}", "record_id": name, "patient_id": name})
    for name, spec in BRADY_BBB.items():
        write_wfdb(folder / "rec", name, _ecg(*spec)[0])
        rows.append({"path": f"rec/{name}", "record_id": name, "patient_id": name})
    write_metadata(folder, rows)
    return folder


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _source(tmp_path_factory.mktemp("stretch") / "src")


def test_257_hz_label_is_quarantined_and_slow_bbb_is_stored(source: Path, tmp_path: Path) -> None:
    ingest("wfdb", source, "c", tmp_path / "store", mains_hz=60, progress=False)
    store = CohortStore.open(tmp_path / "store")
    quarantine = pd.read_parquet(tmp_path / "store" / "quarantine.parquet").set_index("record_id")
    assert sorted(store.manifest["record_id"]) == sorted(BRADY_BBB)
    assert sorted(quarantine.index) == sorted(STRETCHED)
    # The narrow-QRS ones only the QT rule catches; the bundle branch block, whose
    # doubled QRS is wide, may be caught by the QT rule or by the QRS cap (which fires
    # depends on whether its stretched T wave is measured) -- both blame the file.
    for name in ("af102", "sinus89"):
        assert quarantine.loc[name, "reason"] == "implausible_rate", quarantine.loc[name]
        assert "QTc Fridericia" in quarantine.loc[name, "detail"], quarantine.loc[name, "detail"]
    assert quarantine.loc["bbb87", "reason"] in ("implausible_rate", "implausible_qrs")
    header = json.loads((tmp_path / "store" / "header.json").read_text())
    assert header["cohorts"]["c"]["qc"]["max_qtc_ms"] == QCConfig().max_qtc_ms


def test_without_the_qt_rule_the_stretched_records_would_be_stored(
    source: Path, tmp_path: Path
) -> None:
    # The gap this rule closes: rate and QRS width alone let the narrow-QRS ones
    # through; only the bundle branch block (QRS 153 ms, doubled) trips the QRS cap.
    qc = QCConfig.from_overrides({"stretch_qt_heart_rate_bpm": "0"})
    ingest("wfdb", source, "c", tmp_path / "store", mains_hz=60, qc=qc, progress=False)
    store = CohortStore.open(tmp_path / "store")
    quarantine = pd.read_parquet(tmp_path / "store" / "quarantine.parquet").set_index("record_id")
    assert sorted(store.manifest["record_id"]) == sorted([*BRADY_BBB, "af102", "sinus89"])
    assert list(quarantine.index) == ["bbb87"]
    assert quarantine.loc["bbb87", "reason"] == "implausible_qrs"
    header = json.loads((tmp_path / "store" / "header.json").read_text())
    assert header["cohorts"]["c"]["qc"]["stretch_qt_heart_rate_bpm"] == 0.0
