"""Features made by another encoder (not `cape embed`) go through `cape evaluate` as documented.

docs/evaluation.md, "Features from another encoder": a directory with
``features.npy`` (n, d) and ``index.parquet`` (n rows: cohort, record_id,
patient_id, split, and the labels the tasks need), optionally ``embed.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cape.cli import main

COHORTS = {"north": 40, "south": 30}  # patients


def _index(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for cohort, n_patients in COHORTS.items():
        for patient in range(n_patients):
            split = ("train", "train", "train", "val", "test")[patient % 5]
            age = float(rng.uniform(20, 85))
            for ecg in range(2):
                rows.append(
                    {
                        "cohort": cohort,
                        "record_id": f"{cohort}-{patient}-{ecg}",
                        "patient_id": f"{cohort}-{patient}",
                        "split": split,
                        "age": age,
                        "sex": "M" if patient % 2 else "F",
                    }
                )
    return pd.DataFrame(rows)


def _write(directory: Path, index: pd.DataFrame, features: np.ndarray, info: bool = True) -> Path:
    directory.mkdir(parents=True)
    np.save(directory / "features.npy", features)
    index.to_parquet(directory / "index.parquet", index=False)
    if info:
        (directory / "embed.json").write_text(json.dumps({"untrained": False, "encoder": "x"}))
    return directory


def _features(index: pd.DataFrame, informative: bool, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(len(index), 16)).astype(np.float32)
    if informative:  # age in one unit, sex in another: heads can learn both
        features[:, 0] = (index["age"].to_numpy() - 50) / 15
        features[:, 1] = np.where(index["sex"] == "M", 1.0, -1.0)
    return features


def _evaluate(out: Path, *features: str, extra: tuple[str, ...] = ()) -> int:
    argv = ["evaluate", "--protocol", "ood", "--train-cohort", "north", "--out", str(out)]
    for spec in features:
        argv += ["--features", spec]
    argv += ["--head", "linear", "--runs", "2", "--ood-target-pool", "all", "--ood-test-n", "30"]
    return main([*argv, *extra])


def test_features_from_another_encoder_are_evaluated(tmp_path: Path) -> None:
    """Bug caught: the evaluate path needing files only `cape embed` writes (e.g. embed.json)."""
    index = _index()
    good = _write(tmp_path / "theirs", index, _features(index, True, 0))
    # A second directory holds the same ECGs in another row order: aligned by (cohort, record_id).
    shuffled = index.sample(frac=1.0, random_state=1)
    noise = _write(
        tmp_path / "noise", shuffled, _features(shuffled, False, 2), info=False
    )  # no embed.json: allowed (a warning says provenance is unknown)
    out = tmp_path / "ood"
    assert (
        _evaluate(out, f"theirs={good}", f"noise={noise}", extra=("--compare", "theirs", "noise"))
        == 0
    )
    summary = pd.read_parquet(out / "summary.parquet")
    ood = summary[(summary["setting"] == "out-of-distribution") & (summary["task"] == "age")]
    mae = dict(zip(ood["model"], ood["mean"], strict=True))
    assert mae["theirs"] < mae["noise"]  # the informative features were the ones aligned right
    tests = pd.read_parquet(out / "tests.parquet")
    assert (tests["test"] == "wilcoxon_signed_rank").any()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda i: i.drop(columns="split"), "split"),
        (lambda i: i.assign(split=None), "no train/val/test split"),
        (lambda i: i.drop(columns="record_id"), "record_id"),
    ],
)
def test_bad_external_index_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture, change, message: str
) -> None:
    """Bug caught: a KeyError traceback instead of naming the file and the missing column."""
    index = change(_index())
    directory = _write(tmp_path / "theirs", index, _features(_index(), True, 0))
    assert _evaluate(tmp_path / "ood", f"theirs={directory}") == 1
    error = capsys.readouterr().err
    assert error.startswith("cape: error:") and message in error


def test_row_count_mismatch_names_the_directory(tmp_path: Path, capsys) -> None:
    index = _index()
    directory = _write(tmp_path / "theirs", index, _features(index, True, 0)[:-1])
    assert _evaluate(tmp_path / "ood", f"theirs={directory}") == 1
    error = capsys.readouterr().err
    assert "feature rows but" in error and str(directory) in error
