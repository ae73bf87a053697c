"""End to end on the ``tiny`` preset: layouts on disk, determinism, lead algebra, heart rate."""

from __future__ import annotations

import ast
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import wfdb
import yaml

from cape.cli import main
from cape.simulator import preset, simulate
from cape.simulator.generate import plan_blocks

from .ecg_features import heart_rate_bpm


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tiny")
    simulate(preset("tiny"), out, workers=1, progress=False)
    return out


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_same_seed_gives_identical_files_with_any_number_of_workers(
    tiny_dir: Path, tmp_path: Path
) -> None:
    simulate(preset("tiny"), tmp_path / "again", workers=2, progress=False)
    first, second = _files(tiny_dir), _files(tmp_path / "again")
    assert first.keys() == second.keys()
    assert [name for name in first if first[name] != second[name]] == []
    other = preset("tiny").model_copy(update={"seed": 1})
    simulate(other, tmp_path / "other", workers=1, progress=False)
    assert (tmp_path / "other/_truth/harbor.parquet").read_bytes() != first["_truth/harbor.parquet"]


def test_cohort_listing_and_truth_kept_apart(tiny_dir: Path) -> None:
    listing = yaml.safe_load((tiny_dir / "cohorts.yaml").read_text())
    cohorts = {c["name"]: c for c in listing["cohorts"]}
    assert {c: cohorts[c]["format"] for c in cohorts} == {
        "harbor": "wfdb",
        "serra": "code15",
        "jade": "wfdb",
        "meadow": "wfdb",
        "linden": "ptbxl",
    }
    assert cohorts["jade"]["mains_hz"] == 50 and cohorts["serra"]["mains_hz"] == 60
    for name, info in cohorts.items():
        assert (tiny_dir / info["path"]).is_dir()
        truth = pd.read_parquet(tiny_dir / "_truth" / f"{name}.parquet")
        assert len(truth) == info["n_ecgs"] and truth["patient_id"].nunique() == info["n_patients"]
        assert {"age", "female", "AFIB", "device", "heart_rate_bpm", "z_qrs_amplitude"} <= set(
            truth.columns
        )
        assert not list((tiny_dir / info["path"]).rglob("*.parquet"))  # readers never see the truth


def test_ptbxl_tree(tiny_dir: Path) -> None:
    root = tiny_dir / "linden"
    table = pd.read_csv(root / "ptbxl_database.csv", index_col="ecg_id")
    truth = pd.read_parquet(tiny_dir / "_truth/linden.parquet").set_index("record_id")
    np.testing.assert_array_equal(table["sex"], truth.loc[table.index, "female"].astype(int))
    np.testing.assert_array_equal(table["age"], np.floor(truth.loc[table.index, "age"]))
    statements = pd.read_csv(root / "scp_statements.csv", index_col=0)
    used = {
        code for codes in table["scp_codes"] for code in ast.literal_eval(codes)
    }  # dict-strings
    assert used <= set(statements.index)
    for name in table["filename_hr"].iloc[:3]:
        hr, lr = (
            wfdb.rdrecord(str(root / name)),
            wfdb.rdrecord(str(root / name.replace("500", "100").replace("_hr", "_lr"))),
        )
        assert (hr.fs, hr.sig_len, lr.fs, lr.sig_len) == (500, 5000, 100, 1000)
        assert hr.sig_name == [
            "I",
            "II",
            "III",
            "AVR",
            "AVL",
            "AVF",
            "V1",
            "V2",
            "V3",
            "V4",
            "V5",
            "V6",
        ]
        assert hr.units == ["mV"] * 12 and hr.adc_gain == [1000.0] * 12 and hr.fmt == ["16"] * 12


def test_code15_parts(tiny_dir: Path) -> None:
    root = tiny_dir / "serra"
    exams = pd.read_csv(root / "exams.csv")
    assert list(exams.columns) == [
        "exam_id",
        "age",
        "is_male",
        "nn_predicted_age",
        "1dAVb",
        "RBBB",
        "LBBB",
        "SB",
        "ST",
        "AF",
        "patient_id",
        "death",
        "timey",
        "normal_ecg",
        "trace_file",
    ]
    parts = sorted(root.glob("exams_part*.hdf5"))
    assert len(parts) >= 2
    hdf5_order = []
    for part in parts:
        with h5py.File(part, "r") as f:
            ids, tracings = f["exam_id"][:], f["tracings"]
            assert tracings.shape[1:] == (4096, 12) and tracings.dtype == np.float32
            assert ids[-1] == 0 and not tracings[-1].any()
            hdf5_order += list(ids[:-1])
            assert set(exams.loc[exams["trace_file"] == part.name, "exam_id"]) == set(ids[:-1])
    assert sorted(hdf5_order) == sorted(exams["exam_id"]) and hdf5_order != list(exams["exam_id"])


def test_wfdb_folder(tiny_dir: Path) -> None:
    harbor = pd.read_csv(tiny_dir / "harbor/metadata.csv")
    assert list(harbor.columns) == [
        "path",
        "record_id",
        "patient_id",
        "age",
        "sex",
        "device",
        "site",
        "ethnicity",
        "recording_date",
    ]
    assert set(harbor["sex"]) <= {"M", "F"} and harbor["ethnicity"].notna().all()
    assert (
        pd.read_csv(tiny_dir / "jade/metadata.csv")["ethnicity"].isna().all()
    )  # not recorded there
    record = wfdb.rdrecord(
        str(tiny_dir / "jade" / pd.read_csv(tiny_dir / "jade/metadata.csv")["path"].iloc[0])
    )
    assert (
        record.fs == 1000 and record.sig_len == 10000 and record.adc_gain[0] == pytest.approx(400.0)
    )


def _written_signals(tiny_dir: Path) -> list[tuple[str, np.ndarray, float, float]]:
    """(cohort, (12, T) mV, rate, quantisation step mV) for ECGs read back from every layout."""
    out = []
    for name in ("harbor", "jade", "meadow"):
        meta = pd.read_csv(tiny_dir / name / "metadata.csv")
        for path in meta["path"]:
            record = wfdb.rdrecord(str(tiny_dir / name / path))
            out.append((name, record.p_signal.T, float(record.fs), 1 / record.adc_gain[0]))
    table = pd.read_csv(tiny_dir / "linden/ptbxl_database.csv")
    for name in table["filename_hr"]:
        record = wfdb.rdrecord(str(tiny_dir / "linden" / name))
        out.append(("linden", record.p_signal.T, 500.0, 1e-3))
    for part in sorted((tiny_dir / "serra").glob("exams_part*.hdf5")):
        with h5py.File(part, "r") as f:
            for trace in f["tracings"][:-1]:
                valid = np.flatnonzero(np.abs(trace).sum(axis=1))
                out.append(
                    ("serra", trace[valid[0] : valid[-1] + 1].T.astype(np.float64), 400.0, 1e-6)
                )
    return out


def test_lead_algebra_holds_to_quantisation(tiny_dir: Path) -> None:
    for name, sig, _, step in _written_signals(tiny_dir):
        i, ii, iii, avr, avl, avf = sig[:6]
        tolerance = 1.5 * step + 1e-9  # each of the leads is rounded independently
        assert np.abs(iii - (ii - i)).max() <= tolerance, name
        assert np.abs(avr + (i + ii) / 2).max() <= tolerance, name
        assert np.abs(avl - (i - ii / 2)).max() <= tolerance, name
        assert np.abs(avf - (ii - i / 2)).max() <= tolerance, name


def test_heart_rate_from_r_peaks_on_lead_ii(tiny_dir: Path) -> None:
    errors = []
    for name in ("harbor", "jade", "meadow"):
        truth = pd.read_parquet(tiny_dir / "_truth" / f"{name}.parquet")
        for path, rate, af in zip(
            truth["source_file"], truth["heart_rate_bpm"], truth["AFIB"], strict=True
        ):
            if af:
                continue
            record = wfdb.rdrecord(str(tiny_dir / name / path))
            errors.append(heart_rate_bpm(record.p_signal[:, 1], record.fs) - rate)
    errors = np.abs(np.array(errors))
    assert len(errors) > 50
    assert np.mean(errors < 5.0) >= 0.95 and np.median(errors) < 1.5


def test_scale_multiplies_patients() -> None:
    spec = preset("tiny")
    cohort = spec.cohort("harbor")
    patients = sum(
        b.n_patients for b in plan_blocks(spec.model_copy(update={"scale": 3.0}), cohort)
    )
    assert patients == 3 * cohort.n_patients


def test_cli_writes_and_refuses_to_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "simulate",
        "--preset",
        "tiny",
        "--out",
        str(tmp_path),
        "--workers",
        "1",
        "--no-progress",
        "--scale",
        "0.5",
        "--seed",
        "3",
    ]
    assert main(args) == 0
    assert "ECGs" in capsys.readouterr().out
    assert yaml.safe_load((tmp_path / "_truth/simulation.yaml").read_text())["seed"] == 3
    assert main(args) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert main([*args, "--overwrite", "--artefact-strength", "-1"]) == 1
