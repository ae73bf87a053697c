"""End-to-end ingest on WFDB files written with wfdb's own writer, good and crafted-bad."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import wfdb

from cape.cli import main as cape_main
from cape.errors import CapeError
from cape.ingest import ingest
from cape.store import CohortStore

LEADS12 = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
FS = 500


def _ecg(seed: int, seconds: float = 10.0, fs: int = FS) -> np.ndarray:
    """A plausible 12-lead signal in mV, (n_samples, 12), consistent limb leads."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * fs)) / fs
    beat = np.exp(-(((t * 1.1) % 1.0 - 0.4) ** 2) / (2 * 0.012**2))
    lead_i = 0.6 * beat + 0.05 * np.sin(2 * np.pi * 0.25 * t) + rng.normal(0, 0.01, t.size)
    lead_ii = 1.1 * beat + rng.normal(0, 0.01, t.size)
    limb = [lead_ii - lead_i, -(lead_i + lead_ii) / 2, lead_i - lead_ii / 2, lead_ii - lead_i / 2]
    precordial = [(0.3 + 0.2 * k) * beat + rng.normal(0, 0.01, t.size) for k in range(6)]
    return np.stack([lead_i, lead_ii, *limb, *precordial], axis=1)


def _write(folder: Path, name: str, signal: np.ndarray, leads=LEADS12, fs: int = FS) -> None:
    wfdb.wrsamp(
        name,
        fs=fs,
        units=["mV"] * len(leads),
        sig_name=list(leads),
        p_signal=signal,
        fmt=["16"] * len(leads),
        adc_gain=[1000.0] * len(leads),
        baseline=[0] * len(leads),
        write_dir=str(folder),
    )


@pytest.fixture()
def source(tmp_path: Path) -> Path:
    folder = tmp_path / "src"
    (folder / "rec").mkdir(parents=True)
    rows = []

    def add(name, signal, patient="p1", age=50.0, record_id=None, leads=LEADS12):
        _write(folder / "rec", name, signal, leads=leads)
        rows.append(
            {
                "path": f"rec/{name}",
                "record_id": record_id or name,
                "patient_id": patient,
                "age": age,
                "sex": "M",
            }
        )

    for k in range(6):
        add(f"good{k}", _ecg(k), patient=f"p{k // 2}")
    nan = _ecg(10)
    nan[1000:1010, 7] = np.nan
    add("nan", nan)
    flat = _ecg(11)
    flat[:, 8] = 0.0
    add("flat", flat)
    clipped = _ecg(12)
    clipped[:, 1] = np.clip(clipped[:, 1] * 8, -2.0, 2.0)
    add("clipped", clipped)
    add("short", _ecg(13, seconds=5.0))
    add("sixleads", _ecg(14)[:, :6], leads=LEADS12[:6])
    add("noid", _ecg(15), patient="")
    add("old", _ecg(16), age=150.0)
    add("dupe", _ecg(17), record_id="good0")
    add("truncated", _ecg(18))
    dat = folder / "rec" / "truncated.dat"
    dat.write_bytes(dat.read_bytes()[:1000])
    rows.append(
        {"path": "rec/missing", "record_id": "missing", "patient_id": "p9", "age": 40.0, "sex": "F"}
    )
    pd.DataFrame(rows).to_csv(folder / "metadata.csv", index=False)
    return folder


EXPECTED_REASONS = {
    "nan": "non_finite",  # also an id pandas would read as missing
    "flat": "flat_lead",
    "clipped": "saturated",
    "short": "too_short",
    "sixleads": "missing_leads",
    "noid": "missing_patient_id",
    "old": "implausible_age",
    "good0": "duplicate_id",
    "truncated": "unreadable",
    "missing": "unreadable",
}


def test_every_reason_quarantined_and_the_rest_stored(source: Path, tmp_path: Path):
    summary = ingest("wfdb", source, "c1", tmp_path / "store", mains_hz=50.0, progress=False)
    store = CohortStore.open(tmp_path / "store")
    assert sorted(store.manifest["record_id"]) == [f"good{k}" for k in range(6)]
    quarantine = store.quarantine().set_index("record_id")
    assert set(EXPECTED_REASONS) <= set(quarantine.index), quarantine[
        ["reason", "detail"]
    ].to_string()
    got = {rid: quarantine.loc[rid, "reason"] for rid in EXPECTED_REASONS}
    assert got == EXPECTED_REASONS
    assert all(quarantine["detail"].str.len() > 0)
    assert summary.stored == 7  # six good + the duplicate, which the manifest rebuild quarantines
    assert summary.duplicates == 1
    # Signals survive: 400 Hz, 10 s slot, amplitudes of the source within filtering error.
    x = store.read(int(np.flatnonzero(store.manifest["record_id"] == "good0")[0]))
    assert x.shape == (8, 4000)
    assert 0.8 < np.ptp(x[1, 500:3500]) < 1.3
    assert (store.valid_lengths == 4000).all()
    assert store.header["cohorts"]["c1"]["mains_hz"] == 50.0


def test_rerun_is_idempotent_and_resume_fills_missing_shards(source: Path, tmp_path: Path):
    out = tmp_path / "store"
    ingest(
        "wfdb",
        source,
        "c1",
        out,
        mains_hz=50.0,
        progress=False,
        reader_options={"records_per_task": 4},
    )
    first = CohortStore.open(out).manifest
    again = ingest(
        "wfdb",
        source,
        "c1",
        out,
        mains_hz=50.0,
        progress=False,
        reader_options={"records_per_task": 4},
    )
    assert again.tasks_skipped == again.tasks_total and again.read == 0
    pd.testing.assert_frame_equal(CohortStore.open(out).manifest, first)
    # Simulate a run killed after one shard: remove the other shards' commit markers.
    parts = sorted(p for p in (out / "parts").glob("*.parquet") if "quarantine" not in p.name)
    for part in parts[1:]:
        part.unlink()
    resumed = ingest(
        "wfdb",
        source,
        "c1",
        out,
        mains_hz=50.0,
        progress=False,
        reader_options={"records_per_task": 4},
    )
    assert resumed.tasks_skipped == 1
    pd.testing.assert_frame_equal(CohortStore.open(out).manifest, first)


def test_parallel_workers_match_serial(source: Path, tmp_path: Path):
    ingest(
        "wfdb",
        source,
        "c1",
        tmp_path / "a",
        mains_hz=50.0,
        progress=False,
        reader_options={"records_per_task": 3},
    )
    ingest(
        "wfdb",
        source,
        "c1",
        tmp_path / "b",
        mains_hz=50.0,
        workers=2,
        progress=False,
        reader_options={"records_per_task": 3},
    )
    a, b = CohortStore.open(tmp_path / "a"), CohortStore.open(tmp_path / "b")
    cols = ["record_id", "patient_id", "valid_length"]
    pd.testing.assert_frame_equal(a.manifest[cols], b.manifest[cols])
    np.testing.assert_array_equal(a.read_many(range(len(a))), b.read_many(range(len(b))))


def test_changed_parameters_for_a_cohort_are_refused(source: Path, tmp_path: Path):
    ingest("wfdb", source, "c1", tmp_path / "s", mains_hz=50.0, progress=False)
    with pytest.raises(CapeError, match="mains_hz"):
        ingest("wfdb", source, "c1", tmp_path / "s", mains_hz=60.0, progress=False)


def test_cli_ingest_split_describe(source: Path, tmp_path: Path, capsys):
    out = tmp_path / "store"
    code = cape_main(
        [
            "ingest",
            "wfdb",
            str(source),
            "--cohort",
            "c1",
            "--mains",
            "60",
            "--out",
            str(out),
            "--workers",
            "1",
            "--no-progress",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "stored this run: 7" in printed and "non_finite: 1" in printed
    assert cape_main(["split", str(out), "--fractions", "0.5", "0.25", "0.25"]) == 0
    manifest = CohortStore.open(out).manifest
    assert manifest["split"].notna().all()
    assert (
        cape_main(["describe", str(out), "--quarantine", "--markdown", str(tmp_path / "t.md")]) == 0
    )
    assert "| cohort |" in (tmp_path / "t.md").read_text()
    assert cape_main(["describe", str(tmp_path / "nothing")]) == 1


def test_second_source_for_a_cohort_adds_its_records(source: Path, tmp_path: Path):
    out = tmp_path / "store"
    ingest("wfdb", source, "c1", out, mains_hz=50.0, progress=False)
    other = tmp_path / "other"
    (other / "rec").mkdir(parents=True)
    _write(other / "rec", "extra0", _ecg(40))
    _write(other / "rec", "good1", _ecg(41))  # an id the cohort already has
    pd.DataFrame(
        [
            {
                "path": "rec/extra0",
                "record_id": "extra0",
                "patient_id": "p0",
                "age": 30.0,
                "sex": "F",
            },
            {
                "path": "rec/good1",
                "record_id": "good1",
                "patient_id": "p0",
                "age": 30.0,
                "sex": "F",
            },
        ]
    ).to_csv(other / "metadata.csv", index=False)
    summary = ingest("wfdb", other, "c1", out, mains_hz=50.0, progress=False)
    assert summary.tasks_skipped == 0 and summary.stored == 2
    store = CohortStore.open(out)
    assert "extra0" in set(store.manifest["record_id"])
    quarantine = store.quarantine()
    dupes = quarantine[quarantine["reason"] == "duplicate_id"]
    assert set(dupes["record_id"]) == {"good0", "good1"}


def test_every_record_rejected_in_a_fresh_store(tmp_path: Path):
    folder = tmp_path / "bad"
    (folder / "rec").mkdir(parents=True)
    _write(folder / "rec", "six", _ecg(1)[:, :6], leads=LEADS12[:6])
    pd.DataFrame([{"path": "rec/six", "record_id": "six", "patient_id": "p", "age": 50.0}]).to_csv(
        folder / "metadata.csv", index=False
    )
    summary = ingest("wfdb", folder, "c1", tmp_path / "store", mains_hz=50.0, progress=False)
    assert summary.stored == 0 and summary.quarantined["missing_leads"] == 1
    store = CohortStore.open(tmp_path / "store")
    assert len(store) == 0 and len(store.quarantine()) == 1


def test_new_ecgs_of_a_split_patient_join_their_split(source: Path, tmp_path: Path):
    out = tmp_path / "store"
    ingest("wfdb", source, "c1", out, mains_hz=50.0, progress=False)
    assert cape_main(["split", str(out)]) == 0
    before = CohortStore.open(out).manifest
    split_of_p0 = before.loc[before["patient_id"] == "p0", "split"].iloc[0]
    other = tmp_path / "other"
    (other / "rec").mkdir(parents=True)
    _write(other / "rec", "later", _ecg(50))
    pd.DataFrame(
        [{"path": "rec/later", "record_id": "later", "patient_id": "p0", "age": 51.0}]
    ).to_csv(other / "metadata.csv", index=False)
    ingest("wfdb", other, "c1", out, mains_hz=50.0, progress=False)
    after = CohortStore.open(out).manifest
    assert after.loc[after["record_id"] == "later", "split"].iloc[0] == split_of_p0
