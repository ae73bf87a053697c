"""Reading a run directory: labels, logs, identifiability files in their several shapes."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from cape.errors import CapeError
from cape.report.collect import collect, read_log
from cape.report.identifiability import read_identifiability
from cape.report.naming import split_label

SUMMARY = {
    "accuracy": 0.9,
    "accuracy_ci": {"low": 0.85, "high": 0.95, "estimate": 0.9},
    "macro_auroc": 0.97,
    "macro_auroc_ci": {"low": 0.95, "high": 0.99},
    "chance_majority": 0.4,
    "chance_uniform": 0.25,
    "classes": ["A", "B"],
    "class_counts": {"A": 4, "B": 6},
    "n_samples": 10,
}


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("idb-seed2", ("idb", 2)),
        ("my-model@7", ("my-model", 7)),
        ("untrained", ("untrained", None)),
    ],
)
def test_split_label(label: str, expected: tuple) -> None:
    assert split_label(label) == expected


def test_read_log_skips_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_text('{"kind": "step", "loss": 1.5}\n{"kind": "epoch", "loss": NaN}\n{"kind": "ep')
    log = read_log(path)
    assert list(log["kind"]) == ["step", "epoch"]
    assert log["loss"].isna().tolist() == [False, True]


@pytest.mark.parametrize(
    "payload",
    [
        [dict(SUMMARY, model="random", encoder_seed=1, by="cohort")],  # list of records
        {"random-seed1": SUMMARY},  # label -> summary
        {"cohort": {"random@1": SUMMARY}},  # by -> label -> summary
        {"results": [dict(SUMMARY, features="/x/features/random-seed1")]},  # CLI-like records
    ],
)
def test_identifiability_json_shapes(tmp_path: Path, payload: object) -> None:
    (tmp_path / "identifiability.json").write_text(json.dumps(payload))
    table = read_identifiability(tmp_path, [])
    assert table is not None and len(table) == 1
    row = table.iloc[0]
    assert (row["model"], int(row["encoder_seed"]), row["by"]) == ("random", 1, "cohort")
    assert (row["accuracy_low"], row["accuracy_high"]) == (0.85, 0.95)
    assert row["macro_auroc_high"] == 0.99


def test_identifiability_folder_of_cli_outputs(tmp_path: Path) -> None:
    folder = tmp_path / "identifiability"
    folder.mkdir()
    (folder / "idb-seed0.json").write_text(json.dumps(dict(SUMMARY, by="device", seed=5)))
    (folder / "untrained-seed0.json").write_text(
        json.dumps(dict(SUMMARY, embed={"untrained": True}))
    )
    table = read_identifiability(tmp_path, []).sort_values("model")
    assert list(table["model"]) == ["idb", "untrained"]
    # "seed" in the CLI output is the CV seed, not the encoder seed.
    assert list(table["encoder_seed"]) == [0, 0]
    assert list(table["by"]) == ["device", "cohort"]
    assert list(table["baseline"]) == ["", "untrained"]


def test_identifiability_table_file(tmp_path: Path) -> None:
    frame = pd.DataFrame([{"model": "idb", "encoder_seed": 0, "accuracy": 0.5, "by": "cohort"}])
    frame.to_parquet(tmp_path / "identifiability.parquet")
    table = read_identifiability(tmp_path, [])
    assert table.loc[0, "accuracy"] == 0.5
    assert pd.isna(table.loc[0, "accuracy_low"])


def test_unrecognised_identifiability_is_reported(tmp_path: Path) -> None:
    (tmp_path / "identifiability.json").write_text(json.dumps({"something": 1}))
    messages: list[str] = []
    assert read_identifiability(tmp_path, messages) is None
    assert messages and "no identifiability records" in messages[0]


def test_collect_an_empty_run(tmp_path: Path) -> None:
    data = collect(tmp_path)
    assert data.manifest is None and data.ood is None and not data.feature_dirs
    assert any("store" in m for m in data.messages)
    assert any("evaluation" in m for m in data.messages)
    with pytest.raises(CapeError, match="does not exist"):
        collect(tmp_path / "nowhere")


def test_batching_falls_back_to_the_study_file(tmp_path: Path) -> None:
    (tmp_path / "study.yaml").write_text(
        "pretrain:\n  settings: {batching: idb}\n  runs:\n"
        "    - {name: a, settings: {batching: random}}\n    - {name: b}\n"
    )
    data = collect(tmp_path)
    assert data.batching() == {"a": "random", "b": "idb"}
    assert data.model_order() == ["a", "b"]


def test_collect_partial_run(partial_run: Path) -> None:
    data = collect(partial_run)
    assert data.cohorts == ["harbour", "meadow", "summit"]
    assert len(data.pretrain_runs) == 4
    assert data.batching() == {"random": "random", "idb": "idb"}
    assert data.quarantine is not None and len(data.quarantine) == 3
    assert data.store_fingerprint


def test_identifiability_as_the_study_writes_it(tmp_path: Path) -> None:
    """The evaluate stage's table, made by its own function on tiny features."""
    import numpy as np

    from cape.protocols.featuresets import FeatureSet
    from cape.study.evaluation import IDENTIFIABILITY_FILE, identifiability_table

    rng = np.random.default_rng(0)
    index = pd.DataFrame(
        {
            "cohort": np.repeat(["a", "b"], 30),
            "patient_id": [f"p{k // 2}" for k in range(60)],
            "device": np.repeat(["d1", "d2"], 30),
        }
    )
    features = rng.normal(size=(60, 4)) + np.repeat([[0.0], [3.0]], 30, axis=0)
    feature_set = FeatureSet("idb", 2, tmp_path, "", features.astype(np.float32))
    identifiability_table([feature_set], index).to_parquet(tmp_path / IDENTIFIABILITY_FILE)
    table = read_identifiability(tmp_path, [])
    assert sorted(table["by"]) == ["cohort", "device"]
    row = table[table["by"] == "cohort"].iloc[0]
    assert (row["model"], row["encoder_seed"]) == ("idb", 2)
    assert row["accuracy_low"] <= row["accuracy"] <= row["accuracy_high"]
