"""``cape evaluate`` and ``cape identifiability`` from the command line."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from cape.cli import main


def test_evaluate_ood_writes_every_table_and_prints_a_summary(feature_root, tmp_path, capsys):
    out = tmp_path / "res"
    code = main(
        [
            "evaluate",
            "--protocol",
            "ood",
            "--train-cohort",
            "A",
            "--cohorts",
            "B",
            "--features",
            f"good={feature_root / 'good0'}",
            "--features",
            f"bad={feature_root / 'bad0'}",
            "--baseline-untrained",
            str(feature_root / "untrained"),
            "--tasks",
            "age",
            "--runs",
            "2",
            "--head",
            "linear",
            "--ood-test-n",
            "15",
            "--compare",
            "good",
            "bad",
            "--no-subgroups",
            "--no-progress",
            "--out",
            str(out),
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0
    assert "age — mae — out-of-distribution (heads trained on A)" in printed
    assert "mean-predictor" in printed and "untrained" in printed
    assert "wilcoxon_signed_rank" in printed and f"results written to {out}" in printed
    for name in ("results", "summary", "summary_by_seed", "tests", "labels", "shift"):
        assert (out / f"{name}.parquet").is_file() and (out / f"{name}.csv").is_file()
    assert (out / "predictions.parquet").is_file()
    config = json.loads((out / "config.json").read_text())
    assert config["settings"]["runs"] == 2 and config["cohorts"] == ["A", "B"]
    assert [s["model"] for s in config["feature_sets"]] == ["good", "bad", "untrained"]
    results = pd.read_parquet(out / "results.parquet")
    assert set(results["test_cohort"]) == {"A", "B"}


def test_evaluate_composition_with_mlp_overrides(feature_root, tmp_path, capsys):
    out = tmp_path / "res"
    code = main(
        [
            "evaluate",
            "--protocol",
            "composition",
            "--cohorts",
            "A",
            "--features",
            f"good={feature_root / 'good0'}",
            "--tasks",
            "sex",
            "--runs",
            "1",
            "--sizes",
            "40",
            "all",
            "all",
            "--max-epochs",
            "3",
            "--hidden-sizes",
            "8",
            "--head-param",
            "learning_rate=0.01",
            "--no-progress",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    assert "sex — auroc — in-distribution" in capsys.readouterr().out
    config = json.loads((out / "config.json").read_text())
    assert config["settings"]["head"]["params"] == {
        "max_epochs": 3,
        "hidden_sizes": [8],
        "learning_rate": 0.01,
    }
    assert config["sizes"] == [{"cohort": "A", "task": "sex", "train": 40, "val": 36, "test": 36}]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--features", "no-equals-sign"], "MODEL=DIR"),
        (["--features", "m=/does/not/exist"], "holds no CAPE features"),
        (["--sizes", "10", "ten", "10"], "neither an integer nor 'all'"),
        (["--head-param", "oops"], "KEY=VALUE"),
        (["--runs", "0"], "runs must be >= 1"),
    ],
)
def test_evaluate_bad_input_is_a_clean_error(feature_root, tmp_path, capsys, extra, message):
    argv = ["evaluate", "--protocol", "composition", "--out", str(tmp_path / "r"), "--no-progress"]
    if "--features" not in extra:
        argv += ["--features", f"m={feature_root / 'good0'}"]
    assert main(argv + extra) == 1
    assert message in capsys.readouterr().err


def test_identifiability_prints_metrics_and_chance(feature_root, tmp_path, capsys):
    out = tmp_path / "ident.json"
    code = main(
        [
            "identifiability",
            "--features",
            str(feature_root / "good0"),
            "--by",
            "device",
            "--bootstrap",
            "50",
            "--folds",
            "3",
            "--max-per-class",
            "30",
            "--out",
            str(out),
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0
    assert "accuracy" in printed and "chance 0.167 (majority), 0.167 (1/k)" in printed
    record = json.loads(out.read_text())
    assert record["by"] == "device" and record["n_samples"] == 6 * 30
    assert set(record["class_counts"].values()) == {30} and record["grouped"] is True
    assert record["accuracy_ci"]["low"] <= record["accuracy"] <= record["accuracy_ci"]["high"]


def test_identifiability_needs_two_classes(feature_root, capsys):
    code = main(["identifiability", "--features", str(feature_root / "good0"), "--cohorts", "A"])
    assert code == 1
    assert "need at least two cohort values" in capsys.readouterr().err


def test_evaluate_head_and_pool_flags_reach_the_settings(feature_root, tmp_path):
    out = tmp_path / "res"
    argv = ["evaluate", "--protocol", "ood", "--train-cohort", "A", "--tasks", "age"]
    argv += ["--features", f"good={feature_root / 'good0'}", "--runs", "1", "--no-progress"]
    argv += ["--max-epochs", "2", "--hidden-grid", "4", "8", "--grid-layers", "1"]
    argv += ["--std-floor", "0.1", "--age-target", "age-sigmoid", "--ood-target-pool", "test"]
    argv += ["--ood-test-n", "20", "--no-subgroups", "--out", str(out)]
    assert main(argv) == 0
    config = json.loads((out / "config.json").read_text())
    head = config["settings"]["head"]
    assert head["hidden_grid"] == [4, 8] and head["grid_layers"] == 1
    assert head["std_floor"] == 0.1 and head["age_target"] == "age-sigmoid"
    assert config["settings"]["ood_target_pool"] == "test"
    assert config["target_pools"] == {"B": "test", "C": "test"}
    assert "floored at 0.1" in config["head_scaling"]
