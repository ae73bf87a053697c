"""The report's label-efficiency section, on outputs written by cape.label_efficiency itself.

Nothing is trained: every (method, fraction, seed) cell is recorded with
:func:`cape.label_efficiency.cells.write_cell` from the real selection of a fake
manifest and made-up predictions (truth + seeded noise that shrinks with more
patients), then :func:`cape.label_efficiency.protocol.write_outputs` writes the
tables, Markdown and figure as ``cape label-efficiency`` does. Expected numbers
are recomputed here from the cells' predictions with numpy.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cape.finetune.labels import select
from cape.label_efficiency import Cell, LabelEfficiencyConfig, plan_cells
from cape.label_efficiency.cells import MEAN_PREDICTOR, write_cell
from cape.label_efficiency.config import CONFIG_FILE, save_config
from cape.label_efficiency.methods import long_predictions, run_mean_cell, selection_facts
from cape.label_efficiency.protocol import write_outputs
from cape.report import write_report
from cape.report.collect import collect
from cape.report.tables import fmt_p

from .fakerun import make_manifest
from .htmlcheck import problems

TRAIN, OTHER = "harbour", "meadow"
FRACTIONS = (0.1, 0.5, 1.0)
SEEDS = (0, 1, 2)
METHODS = ("linear", "finetune", "scratch")
NOISE = {"linear": 6.0, "finetune": 3.0, "scratch": 9.0}  # years at 100 %
FAILED = Cell("scratch", 0.1, 2)  # recorded as a sample the method could not learn from


def write_label_efficiency(root: Path) -> dict[Cell, pd.DataFrame]:
    """A label-efficiency output folder at ``root``; returns each cell's predictions."""
    manifest = make_manifest()
    config = LabelEfficiencyConfig(
        out_dir=root,
        task="age",
        cohort=TRAIN,
        test_cohorts=[TRAIN, OTHER],
        fractions=list(FRACTIONS),
        methods=list(METHODS),
        seeds=list(SEEDS),
        bootstrap_resamples=50,
    )
    root.mkdir(parents=True)
    save_config(config, root / CONFIG_FILE)
    cells = plan_cells(config)
    recorded = {}
    for cell in cells:
        selection = select(
            manifest,
            "age",
            cohorts=[TRAIN],
            test_cohorts=[TRAIN, OTHER],
            train_fraction=cell.fraction,
            seed=cell.seed,
        )
        info = {"status": "ok", "error": "", **selection_facts(selection, manifest)}
        if cell == FAILED:
            info.update(status="failed", error="cannot fit: fake")
            predictions = pd.DataFrame()
        elif cell.method == MEAN_PREDICTOR:
            predictions = long_predictions(selection, manifest, run_mean_cell(selection))
        else:
            rng = np.random.default_rng([cell.seed, int(cell.fraction * 100), len(cell.method)])
            truth = selection.targets["test"][:, 0]
            noise = NOISE[cell.method] / np.sqrt(cell.fraction)
            scores = truth + noise * rng.standard_normal(truth.shape)
            predictions = long_predictions(selection, manifest, scores)
        write_cell(cell, root, info, predictions)
        recorded[cell] = predictions
    full = select(manifest, "age", cohorts=[TRAIN], test_cohorts=[TRAIN, OTHER])
    write_outputs(config, root, cells, full, manifest, [], [])
    return recorded


@pytest.fixture(scope="module")
def le_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[Cell, pd.DataFrame]]:
    run = tmp_path_factory.mktemp("label-efficiency") / "run"
    run.mkdir()
    return run, write_label_efficiency(run / "label-efficiency")


def _mae(predictions: pd.DataFrame, cohort: str) -> float:
    rows = predictions[predictions["cohort"] == cohort]
    return float(np.mean(np.abs(rows["y_true"] - rows["y_pred"])))


def _cell_text(recorded: dict[Cell, pd.DataFrame], method: str, fraction: float) -> str:
    """Naive reference of one table cell: mean ± SD (ddof 1) over the seeds with a value."""
    values = np.array(
        [
            _mae(recorded[Cell(method, fraction, s)], TRAIN)
            for s in SEEDS
            if Cell(method, fraction, s) != FAILED
        ]
    )
    failed = len(SEEDS) - len(values)
    text = f"{values.mean():.2f} ± {values.std(ddof=1):.2f} ({len(values)} seeds"
    return text + (f", {failed} failed)" if failed else ")")


def test_section_table_figure_and_tests(
    le_run: tuple[Path, dict[Cell, pd.DataFrame]], tmp_path: Path
) -> None:
    """Bug caught: SD taken as the saved SE (too small by sqrt(seeds)), a failed cell
    averaged in as a value or dropped silently, fractions or methods misplaced, the saved
    tests not shown."""
    run, recorded = le_run
    out = tmp_path / "report"
    path = write_report(run, out, min_cell_n=1)
    markdown = (out / "report.md").read_text()
    assert problems(path.read_text()) == []
    assert "## Label efficiency" in markdown
    assert (out / "figures" / "label_efficiency_label-efficiency.png").is_file()
    assert "](figures/label_efficiency_label-efficiency.png)" in markdown
    # the test cohort's table: header names the median training patients of each share
    results = pd.read_csv(run / "label-efficiency" / "results.csv")
    own = results[results["test_cohort"] == TRAIN]
    header = ["method"] + [
        f"{f * 100:g}% ({own.loc[own['fraction'] == f, 'n_train_patients'].median():.0f} patients)"
        for f in FRACTIONS
    ]
    lines = markdown.splitlines()
    start = lines.index("| " + " | ".join(header) + " |")
    table = lines[start + 2 : start + 2 + len(METHODS) + 1]
    assert [row.split(" | ")[0].removeprefix("| ") for row in table] == [
        *METHODS,
        r"mean-predictor",
    ]
    for row, method in zip(table, METHODS, strict=False):
        cells = row.strip("| ").split(" | ")[1:]
        assert cells == [_cell_text(recorded, method, f) for f in FRACTIONS], method
    assert "(2 seeds, 1 failed)" in table[METHODS.index("scratch")]
    # the saved paired tests, every across-seed row, p as saved
    tests = pd.read_csv(run / "label-efficiency" / "tests.csv")
    overall = tests[tests["scope"] == "all"]
    assert len(overall) > 0
    shown = [line for line in lines if line.startswith("| 10% | ") or line.startswith("| 50% | ")]
    shown += [line for line in lines if line.startswith("| 100% | ")]
    assert len(shown) == len(overall)
    first = overall.iloc[0]
    row = next(
        line
        for line in shown
        if line.startswith(f"| {first['fraction'] * 100:g}% | {first['test_cohort']} | ")
        and f"| {first['model_a']} | {first['model_b']} |" in line
    )
    assert f"| {fmt_p(first['p_value'])} |" in row


def test_figure_reuses_the_package_plot(
    le_run: tuple[Path, dict[Cell, pd.DataFrame]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The package's plotting function draws the figure, each method once.

    Bug caught: the mean predictor passed among the methods, so the figure (which adds
    it as the dashed reference) drew it twice, with two legend entries.
    """
    import cape.label_efficiency.figure as package_figure

    calls = []
    original = package_figure.label_efficiency_figure

    def spy(summary: pd.DataFrame, results: pd.DataFrame, methods: list[str]):  # type: ignore[no-untyped-def]
        calls.append(list(methods))
        return original(summary, results, methods)

    monkeypatch.setattr(package_figure, "label_efficiency_figure", spy)
    run, _ = le_run
    write_report(run, tmp_path / "report", min_cell_n=1)
    assert calls == [list(METHODS)]
    figure = original(
        pd.read_csv(run / "label-efficiency" / "summary.csv"),
        pd.read_csv(run / "label-efficiency" / "results.csv"),
        calls[0],
    )
    legend = [text.get_text() for text in figure.legends[0].get_texts()]
    assert legend == [*METHODS, MEAN_PREDICTOR]


def test_small_test_cohort_left_out(
    le_run: tuple[Path, dict[Cell, pd.DataFrame]], tmp_path: Path
) -> None:
    """Bug caught: report.min_cell_n ignored for label efficiency."""
    run, _ = le_run
    results = pd.read_csv(run / "label-efficiency" / "results.csv")
    sizes = results.groupby("test_cohort")["n"].median()
    small, large = str(sizes.idxmin()), str(sizes.idxmax())
    assert sizes[small] < sizes[large]
    write_report(run, tmp_path / "report", min_cell_n=int(sizes[small]) + 1)
    markdown = (tmp_path / "report" / "report.md").read_text()
    assert f"test ECGs are left out (report.min\\_cell\\_n): {small}." in markdown
    assert f"test cohort {large} (" in markdown
    assert f"test cohort {small} (" not in markdown
    assert not any(line.startswith(f"| 10% | {small} |") for line in markdown.splitlines())


def test_several_runs_in_subfolders(
    le_run: tuple[Path, dict[Cell, pd.DataFrame]], tmp_path: Path
) -> None:
    """label-efficiency/NAME/ folders are runs of their own, each with its figure."""
    source, _ = le_run
    run = tmp_path / "run"
    for name in ("age-a", "age-b"):
        shutil.copytree(source / "label-efficiency", run / "label-efficiency" / name)
    assert [r.name for r in collect(run).label_efficiency] == ["age-a", "age-b"]
    write_report(run, tmp_path / "report", min_cell_n=1)
    figures = sorted(p.name for p in (tmp_path / "report" / "figures").iterdir())
    assert "label_efficiency_age-a.png" in figures and "label_efficiency_age-b.png" in figures


def test_no_section_without_label_efficiency(partial_run: Path, tmp_path: Path) -> None:
    write_report(partial_run, tmp_path / "report")
    markdown = (tmp_path / "report" / "report.md").read_text()
    assert "Label efficiency" not in markdown
    assert collect(partial_run).label_efficiency == []


def test_bad_tables_are_listed_not_fatal(
    le_run: tuple[Path, dict[Cell, pd.DataFrame]], tmp_path: Path
) -> None:
    """A results table without a column the section needs names the folder and the column.

    Bug caught: a KeyError deep in the section stopping the whole report.
    """
    source, _ = le_run
    run = tmp_path / "run"
    shutil.copytree(source / "label-efficiency", run / "label-efficiency")
    results = pd.read_parquet(run / "label-efficiency" / "results.parquet")
    results.drop(columns="n").to_parquet(run / "label-efficiency" / "results.parquet")
    data = collect(run)
    assert data.label_efficiency == []
    assert f"{run / 'label-efficiency'}: not a label-efficiency output (results lacks ['n'])" in (
        data.messages
    )
    write_report(run, tmp_path / "report")
    assert "## Label efficiency" not in (tmp_path / "report" / "report.md").read_text()


def test_number_like_cohort_names_stay_text(
    le_run: tuple[Path, dict[Cell, pd.DataFrame]], tmp_path: Path
) -> None:
    """A cohort called "007" is "007" in the csv tables too, so the figure finds its rows.

    Bug caught: summary.csv read with default types (007 -> 7) no longer matching
    results.parquet's "007", dropping that cohort's panel and tests.
    """
    source, _ = le_run
    run = tmp_path / "run"
    shutil.copytree(source / "label-efficiency", run / "label-efficiency")
    folder = run / "label-efficiency"
    results = pd.read_parquet(folder / "results.parquet")
    results["test_cohort"] = results["test_cohort"].replace({OTHER: "007"})
    results.to_parquet(folder / "results.parquet")
    for name in ("summary.csv", "tests.csv"):
        table = pd.read_csv(folder / name)
        table["test_cohort"] = table["test_cohort"].replace({OTHER: "007"})
        table.to_csv(folder / name, index=False)
    (run_data,) = collect(run).label_efficiency
    assert set(run_data.summary["test_cohort"]) == {TRAIN, "007"}
    write_report(run, tmp_path / "report", min_cell_n=1)
    markdown = (tmp_path / "report" / "report.md").read_text()
    assert "test cohort 007 (out-of-distribution" in markdown
    assert any(line.startswith("| 10% | 007 | ") for line in markdown.splitlines())
