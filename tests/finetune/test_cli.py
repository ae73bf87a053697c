"""``cape finetune`` end to end on a tiny store: three task kinds, readable results, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from cape.cli import main
from cape.finetune import load_finetuned, subsample_patients
from cape.protocols import PREDICTION_COLUMNS, RESULT_COLUMNS, read_results, summarise
from cape.protocols.featuresets import MEAN_PREDICTOR
from cape.report.collect import read_protocol_dir
from cape.stats import auroc, macro_auroc, mean_absolute_error
from cape.store import CohortStore

from .helpers import labelled_store

torch.set_num_threads(1)

FAST = [
    "--set",
    "crop_seconds=1.0",
    "--set",
    "head_hidden_sizes=[16]",
    "--set",
    "num_workers=0",
    "--set",
    "threads=1",
    "--set",
    "progress=false",
    "--set",
    "standardise_samples=32",
]


def finetune_args(store: CohortStore, out: Path, task: str, *extra: str) -> list[str]:
    return [
        "finetune",
        "--store",
        str(store.path),
        "--out",
        str(out),
        "--task",
        task,
        "--epochs",
        "2",
        "--batch-size",
        "8",
        "--device",
        "cpu",
        *FAST,
        *extra,
    ]


@pytest.mark.parametrize(
    ("task", "metric", "kind"),
    [
        ("age", "mae", "regression"),
        ("sex", "auroc", "binary"),
        ("diagnoses", "macro_auroc", "multilabel"),
    ],
)
def test_cli_finetunes_each_task_kind_and_writes_protocol_tables(
    store: CohortStore,
    encoder_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    task: str,
    metric: str,
    kind: str,
) -> None:
    """The run directory holds protocol tables that the protocols' and the report's readers
    load, whose metric values are recomputed here from the saved predictions with
    :mod:`cape.stats`, and a model that predicts what the table says.

    Bugs caught: predictions misaligned with record ids or targets (the recomputed
    metric would differ); a sigmoid missing before the saved probabilities (AUROC is
    invariant, so the [0, 1] range check catches it); age predicted in standardised
    units instead of years (MAE off by the target scale); a results directory the
    readers reject.
    """
    out = tmp_path / "run"
    assert main(finetune_args(store, out, task, "--encoder", str(encoder_file))) == 0
    assert "fine-tuning finished" in capsys.readouterr().out
    result = read_results(out / "results")
    assert read_protocol_dir(out / "results").results.equals(result.results)
    assert list(result.results.columns) == list(RESULT_COLUMNS)
    assert list(result.predictions.columns) == list(PREDICTION_COLUMNS)
    assert set(result.results["model"]) == {"finetune", MEAN_PREDICTOR}
    assert set(result.results["metric"]) == {metric}
    assert result.config["settings"]["protocol"] == "finetune"
    summary, _ = summarise(result.results)
    assert len(summary) == len(result.summary)

    manifest = store.manifest
    test = manifest[(manifest["split"] == "test")]
    function = {"mae": mean_absolute_error, "auroc": auroc, "macro_auroc": macro_auroc}[metric]
    for row in result.results.itertuples():
        rows = result.predictions[
            (result.predictions["model"] == row.model)
            & (result.predictions["cohort"] == row.test_cohort)
        ]
        expected_ids = set(test.loc[test["cohort"] == row.test_cohort, "record_id"])
        assert set(rows["record_id"]) == expected_ids
        if kind == "multilabel":
            labels = sorted(rows["label"].unique())
            true = rows.pivot(index="record_id", columns="label", values="y_true")[labels]
            pred = rows.pivot(index="record_id", columns="label", values="y_pred")[labels]
            truth_from_store = (
                test.set_index("record_id")
                .loc[true.index, "diagnoses"]
                .map(lambda codes, labels=labels: [float(c in list(codes)) for c in labels])
            )
            np.testing.assert_array_equal(np.stack(truth_from_store.to_numpy()), true.to_numpy())
            values = (true.to_numpy(), pred.to_numpy())
        else:
            column = {"regression": "age", "binary": "sex"}[kind]
            expected = test.set_index("record_id").loc[rows["record_id"], column]
            if kind == "binary":
                expected = (expected == "M").astype(float)
            np.testing.assert_array_equal(rows["y_true"].to_numpy(), expected.to_numpy(float))
            values = (rows["y_true"].to_numpy(), rows["y_pred"].to_numpy())
        if kind != "regression":
            assert ((values[1] >= 0) & (values[1] <= 1)).all()
        try:
            recomputed = function(*values)
        except ValueError:
            recomputed = float("nan")
        np.testing.assert_allclose(recomputed, row.value, rtol=1e-12, equal_nan=True)
    if kind == "regression":
        ours = result.predictions[result.predictions["model"] == "finetune"]["y_pred"]
        assert 0 < ours.mean() < 130  # years, not standardised units

    # The saved model predicts what the table says (central window, eval mode).
    model, metadata = load_finetuned(out)
    assert metadata["task"] == task and metadata["kind"] == kind
    first = result.predictions[result.predictions["model"] == "finetune"].iloc[0]
    index = int(np.flatnonzero(manifest["record_id"] == first["record_id"])[0])
    window = metadata["window_samples"]
    start = max(int(store.valid_lengths[index]) - window, 0) // 2
    signal = torch.from_numpy(store.read(index)[None, :, start : start + window])
    with torch.no_grad():
        prediction = model.decode(model(signal)).numpy()[0]
    position = 0 if kind != "multilabel" else metadata["label_names"].index(first["label"])
    np.testing.assert_allclose(prediction[position], first["y_pred"], rtol=1e-5)


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("cape: error: ") and "\n" not in err, err
    return err


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--task", "height"], "unknown task 'height'"),
        (["--task", "cohort"], "column 'cohort' holds no lists"),
        (["--train-fraction", "0"], "train_fraction"),
        (["--train-fraction", "1.5"], "train_fraction"),
        (["--cohorts", "nowhere"], "['nowhere'] are not in the store"),
        (["--set", "probe_epoch=1"], "unknown fine-tuning setting 'probe_epoch'"),
        (["--init", "pretrained"], "needs a pretrained encoder"),
        (["--init", "pretrained", "--from-scratch"], "contradicts"),
        (["--batch-size", "500"], "cannot fill one batch of 500"),
    ],
)
def test_bad_inputs_give_one_line_errors(
    store: CohortStore,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    needle: str,
) -> None:
    init = [] if "--init" in extra else ["--from-scratch"]
    args = finetune_args(store, tmp_path / "run", "age", "--preset", "small", *init)
    assert main([*args, *extra]) == 1
    assert needle in _error_line(capsys)
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_store_without_splits_and_missing_encoder_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], store: CohortStore
) -> None:
    unsplit = labelled_store(tmp_path / "unsplit", {"a": 6}, split=False)
    args = finetune_args(unsplit, tmp_path / "run", "age", "--from-scratch")
    assert main(args) == 1
    error = _error_line(capsys)
    assert "no split assignments" in error and "cape split" in error
    missing = finetune_args(store, tmp_path / "run2", "age", "--encoder", str(tmp_path / "nope"))
    assert main(missing) == 1
    assert "does not exist" in _error_line(capsys)


def test_a_cohort_without_a_validation_split_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """All of a cohort's patients in train: the missing split is named with its cohort."""
    path = tmp_path / "store"
    labelled_store(path, {"a": 8}, split=False)
    assert main(["split", str(path), "--fractions", "1.0", "0.0", "0.0"]) == 0
    store = CohortStore.open(path)
    assert main(finetune_args(store, tmp_path / "run", "sex", "--from-scratch")) == 1
    assert "cohort 'a' has no ECG in the 'val' split" in _error_line(capsys)


def test_existing_run_needs_resume(store: CohortStore, tmp_path: Path, capsys) -> None:
    args = finetune_args(
        store, tmp_path / "run", "sex", "--from-scratch", "--preset", "small", "--epochs", "1"
    )
    assert main(args) == 0
    capsys.readouterr()
    assert main(args) == 1
    assert "pass --resume" in _error_line(capsys)
    assert main([*args, "--resume"]) == 0  # a finished run resumes to the same results
    assert isinstance(
        pd.read_parquet(tmp_path / "run" / "results" / "results.parquet"), pd.DataFrame
    )


def test_out_of_distribution_test_cohort_and_fraction_reach_the_results(
    store: CohortStore, tmp_path: Path
) -> None:
    """``--cohorts a --test-cohorts a b --train-fraction 0.5``: the head trains on half of
    cohort a's training patients; b's test rows are labelled out-of-distribution."""
    args = finetune_args(
        store,
        tmp_path / "run",
        "age",
        "--from-scratch",
        "--preset",
        "small",
        "--epochs",
        "1",
        "--cohorts",
        "a",
        "--test-cohorts",
        "a",
        "b",
        "--train-fraction",
        "0.5",
        "--seed",
        "3",
    )
    assert main(args) == 0
    results = read_results(tmp_path / "run" / "results").results
    ours = results[results["model"] == "scratch"].set_index("test_cohort")
    assert ours.loc["a", "setting"] == "in-distribution"
    assert ours.loc["b", "setting"] == "out-of-distribution"
    assert set(ours["train_cohort"]) == {"a"} and set(ours["run"]) == {3}
    manifest = store.manifest
    train_a = manifest[(manifest["cohort"] == "a") & (manifest["split"] == "train")]
    keep = subsample_patients(train_a["patient_id"], train_a["cohort"], 0.5, seed=3)
    assert ours.loc["a", "n_train"] == keep.sum() < len(train_a)
