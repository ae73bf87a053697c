"""The report's fine-tuning section, on results written by cape.finetune's own writer.

Nothing is trained: each "run" is :func:`cape.finetune.evaluate.build_results` on
the real selection of a fake manifest with made-up predictions (truth + seeded
noise), written with :func:`cape.finetune.evaluate.write_finetune_results` into
``RUN/finetune/NAME/results`` as ``cape finetune --out RUN/finetune/NAME`` does.
Expected numbers are recomputed here from the predictions with numpy/scipy.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from cape.finetune.evaluate import build_results, write_finetune_results
from cape.finetune.labels import select
from cape.report import write_report
from cape.report.collect import collect

from .fakerun import make_manifest
from .htmlcheck import problems

TRAIN, OTHER = "harbour", "meadow"
SEEDS = (0, 1, 2)
ODD_NAME = "ft|<b>x</b>"  # a user-chosen --name: must stay text in both files


def _run(
    run: Path,
    name: str,
    manifest: pd.DataFrame,
    task: str,
    seed: int,
    noise: float,
    *,
    scratch: bool = False,
    fraction: float = 1.0,
    model_name: str | None = None,
) -> pd.DataFrame:
    """One fake fine-tuning run written as cape finetune writes it; returns its predictions."""
    selection = select(
        manifest,
        task,
        cohorts=[TRAIN],
        test_cohorts=[TRAIN, OTHER],
        train_fraction=fraction,
        seed=seed,
    )
    truth = selection.targets["test"]
    rng = np.random.default_rng(1000 * seed + int(noise * 10) + scratch)
    if task == "age":
        predictions = truth + noise * rng.standard_normal(truth.shape)
    else:  # sex: scores that rank the classes imperfectly
        predictions = truth + noise * rng.standard_normal(truth.shape)
    result = build_results(
        selection,
        manifest,
        predictions,
        model_name=model_name or ("scratch" if scratch else "finetune"),
        baseline="scratch" if scratch else "",
        encoder_seed=seed if scratch else 0,
        run=seed,
        # from scratch "stops" at its last allowed epoch, the fine-tuned run earlier
        settings={
            "task": task,
            "train_fraction": fraction,
            "seed": seed,
            "epochs": 5,
            "best_epoch": 5 if scratch else 3,
            "epochs_run": 5,
        },
    )
    write_finetune_results(result, run / "finetune" / name / "results")
    return result.predictions


@pytest.fixture(scope="module")
def finetune_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, dict[str, pd.DataFrame]]:
    """The run directory and each fake run's predictions by its name."""
    run = tmp_path_factory.mktemp("finetune") / "run"
    manifest = make_manifest()
    frames = {}
    for seed in SEEDS:  # age: three seeds fine-tuned and from scratch
        frames[f"finetune-s{seed}"] = _run(run, f"ft-age-s{seed}", manifest, "age", seed, 4.0)
        frames[f"scratch-s{seed}"] = _run(
            run, f"scratch-age-s{seed}", manifest, "age", seed, 9.0, scratch=True
        )
    # half the training patients: another condition, not a fourth seed
    frames["half"] = _run(run, "ft-age-half", manifest, "age", 0, 6.0, fraction=0.5)
    # sex: one run, with a user-chosen name
    frames["sex"] = _run(run, "ft-sex", manifest, "sex", 0, 0.8, model_name=ODD_NAME)
    return run, frames


def _mae(predictions: pd.DataFrame, model: str, cohort: str) -> float:
    rows = predictions[(predictions["model"] == model) & (predictions["cohort"] == cohort)]
    return float(np.mean(np.abs(rows["y_true"] - rows["y_pred"])))


def _md(text: str) -> str:
    return text.replace("[", r"\[").replace("]", r"\]")


def _t_cell(values: list[float]) -> str:
    """Naive reference: mean [mean ± t(0.975, n-1) s / sqrt(n)] with the report's 2 digits."""
    array = np.asarray(values)
    half = scipy_stats.t.ppf(0.975, len(array) - 1) * array.std(ddof=1) / np.sqrt(len(array))
    mean = array.mean()
    return f"{mean:.2f} [{mean - half:.2f}–{mean + half:.2f}]"


def test_collect_pools_runs_and_keeps_mean_predictor_once(
    finetune_run: tuple[Path, dict[str, pd.DataFrame]],
) -> None:
    """Bug caught: the mean predictor of a fine-tuned and a from-scratch run of one seed
    (same patients) counted twice, narrowing its interval with copies."""
    run, _ = finetune_run
    data = collect(run)
    assert data.finetune is not None
    results = data.finetune.results
    mean = results[(results["model"] == "mean-predictor") & (results["task"] == "age")]
    full = mean[mean["train_fraction"] == 1.0]
    # one row per (seed, test cohort) at full share; the half-share run has its own
    assert sorted(full.groupby("test_cohort")["run"].apply(sorted).tolist()) == [
        list(SEEDS),
        list(SEEDS),
    ]
    assert len(mean[mean["train_fraction"] == 0.5]) == 2
    assert not any("unknown protocol" in m for m in data.messages)


def test_unfinished_run_is_reported_not_fatal(
    finetune_run: tuple[Path, dict[str, pd.DataFrame]], tmp_path: Path
) -> None:
    """A fine-tuning folder still training (no results yet) is listed, the rest still read.

    Bug caught: the unfinished folder silently ignored, or failing the whole report.
    """
    source, _ = finetune_run
    run = tmp_path / "run"
    shutil.copytree(source / "finetune" / "ft-age-s0", run / "finetune" / "ft-age-s0")
    (run / "finetune" / "training" / "checkpoints").mkdir(parents=True)
    data = collect(run)
    assert data.finetune is not None and set(data.finetune.results["run"]) == {0}
    assert any(
        m.startswith(str(run / "finetune" / "training" / "results")) and "unfinished" in m
        for m in data.messages
    )


def test_section_numbers(
    finetune_run: tuple[Path, dict[str, pd.DataFrame]], tmp_path: Path
) -> None:
    """Bug caught: runs of another training share pooled with the full runs, or the
    fine-tuned and from-scratch values swapped, or the interval not over the seeds."""
    run, predictions = finetune_run
    path = write_report(run, tmp_path / "report", min_cell_n=1)
    markdown = (tmp_path / "report" / "report.md").read_text()
    assert "## Fine-tuning" in markdown
    assert problems(path.read_text()) == []
    lines = markdown.splitlines()
    for model in ("finetune", "scratch"):
        for cohort, setting in ((TRAIN, "in-distribution"), (OTHER, "out-of-distribution")):
            values = [_mae(predictions[f"{model}-s{s}"], model, cohort) for s in SEEDS]
            expected = _md(_t_cell(values))
            row = [
                line
                for line in lines
                if line.startswith(f"| {TRAIN} | {cohort} | {setting} | 100% | {model} |")
            ]
            assert len(row) == 1, (model, cohort)
            assert "| 3 |" in row[0]
            assert expected in row[0]
            assert "runs (t)" in row[0]
    half = [line for line in lines if f"| {TRAIN} | in-distribution | 50% | finetune |" in line]
    assert len(half) == 1
    assert f"| {_mae(predictions['half'], 'finetune', TRAIN):.2f} \\[" in half[0]
    assert "| 1 |" in half[0]


def test_runs_table(finetune_run: tuple[Path, dict[str, pd.DataFrame]], tmp_path: Path) -> None:
    """One row per run folder; a best epoch at the last allowed epoch is flagged.

    Bug caught: runs read from folders but not listed, or the flag on every run.
    """
    run, _ = finetune_run
    write_report(run, tmp_path / "report", min_cell_n=1)
    lines = (tmp_path / "report" / "report.md").read_text().splitlines()
    rows = [line for line in lines if line.startswith("| finetune/")]
    assert len(rows) == 2 * len(SEEDS) + 2
    scratch = next(line for line in rows if line.startswith("| finetune/scratch-age-s1/results |"))
    assert (
        "| scratch | random (scratch) | age | harbour | 1 | 100% | 5 / 5 (last epoch) |" in scratch
    )
    tuned = next(line for line in rows if line.startswith("| finetune/ft-age-half/results |"))
    assert tuned.endswith("| finetune | pretrained | age | harbour | 0 | 50% | 3 / 5 |")


def test_single_run_gets_a_bootstrap_interval(
    finetune_run: tuple[Path, dict[str, pd.DataFrame]], tmp_path: Path
) -> None:
    """One run: the value is the AUROC of its predictions and a bootstrap interval brackets it.

    Bug caught: a single run shown without any interval, or scored on another model's or
    cohort's predictions.
    """
    from sklearn.metrics import roc_auc_score

    run, predictions = finetune_run
    write_report(run, tmp_path / "report", min_cell_n=1)
    markdown = (tmp_path / "report" / "report.md").read_text()
    escaped = r"ft\|\<b\>x\</b\>"
    assert ODD_NAME not in markdown and escaped in markdown
    for cohort in (TRAIN, OTHER):
        sex = predictions["sex"]
        rows = sex[(sex["model"] == ODD_NAME) & (sex["cohort"] == cohort)]
        value = roc_auc_score(rows["y_true"], rows["y_pred"])
        line = next(
            line
            for line in markdown.splitlines()
            if line.startswith(f"| {TRAIN} | {cohort} |") and escaped in line
        )
        cell = line.split(" | ")[-2]
        shown, interval = cell.split(r" \[")
        low, high = (float(x) for x in interval.removesuffix(r"\]").split("–"))
        assert shown == f"{value:.3f}"
        assert low <= value <= high and low < high
        assert "test ECGs (bootstrap)" in line


def test_small_cells_suppressed(
    finetune_run: tuple[Path, dict[str, pd.DataFrame]], tmp_path: Path
) -> None:
    """Rows under report.min_cell_n test ECGs go, with a note saying how many.

    Bug caught: the threshold ignored (a metric on a handful of ECGs shown).
    """
    run, predictions = finetune_run
    first = predictions["finetune-s0"]
    per_cohort = first[first["model"] == "finetune"].groupby("cohort").size()
    threshold = int(per_cohort.min()) + 1  # the smaller test cohort falls under it
    assert threshold <= per_cohort.max()
    small = str(per_cohort.idxmin())
    write_report(run, tmp_path / "report", min_cell_n=threshold)
    markdown = (tmp_path / "report" / "report.md").read_text()
    assert not any(line.startswith(f"| {TRAIN} | {small} |") for line in markdown.splitlines())
    # finetune, scratch, mean predictor at 100 %; finetune and mean predictor at 50 %
    assert f"age: 5 rows with fewer than {threshold} test ECGs are suppressed" in markdown


def test_no_section_without_finetune_results(partial_run: Path, tmp_path: Path) -> None:
    write_report(partial_run, tmp_path / "report")
    markdown = (tmp_path / "report" / "report.md").read_text()
    assert "Fine-tuning" not in markdown


def test_single_run_without_predictions_shows_the_value_alone(
    finetune_run: tuple[Path, dict[str, pd.DataFrame]], tmp_path: Path
) -> None:
    """No saved predictions: the saved value, no interval, and no crash.

    Bug caught: a KeyError on a predictions table with no columns, or an interval
    invented without the data to compute it.
    """
    source, _ = finetune_run
    run = tmp_path / "run"
    shutil.copytree(source / "finetune" / "ft-sex", run / "finetune" / "ft-sex")
    (run / "finetune" / "ft-sex" / "results" / "predictions.parquet").unlink()
    write_report(run, tmp_path / "report", min_cell_n=1)
    markdown = (tmp_path / "report" / "report.md").read_text()
    saved = pd.read_parquet(source / "finetune" / "ft-sex" / "results" / "results.parquet")
    value = saved.loc[(saved["model"] == ODD_NAME) & (saved["test_cohort"] == TRAIN), "value"]
    line = next(
        line
        for line in markdown.splitlines()
        if line.startswith(f"| {TRAIN} | {TRAIN} |") and r"ft\|" in line
    )
    assert line.endswith(f"| {float(value.iloc[0]):.3f} | – |")
