"""``run_label_efficiency`` on the tiny simulated store: nesting, every method, tables, resume."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cape.errors import CapeError
from cape.label_efficiency import (
    MEAN_PREDICTOR,
    METHODS,
    Cell,
    load_config,
    plan_cells,
    read_cell,
    run_label_efficiency,
)
from cape.label_efficiency.cells import CELL_FILE
from cape.label_efficiency.figure import label_efficiency_figure
from cape.label_efficiency.methods import cell_selection
from cape.label_efficiency.tables import RESULT_COLUMNS, cell_arrays, ordered_test_ids
from cape.store import CohortStore

from .conftest import fast_settings

FRACTIONS = [0.01, 1.0]
SEEDS = [0, 1]


def train_patients(store: CohortStore, fraction: float, seed: int) -> set[str]:
    config = load_config(None, [f"store={store.path}", "cohort=harbor", "task=sex"])
    selection = cell_selection(config, store.manifest, fraction, seed)
    return set(store.manifest["patient_id"].iloc[selection.records["train"]].astype(str))


def test_subsamples_are_nested_and_sized(store: CohortStore) -> None:
    """Bug caught: a fraction drawn independently of the others (the 1 % patients not among
    the 10 %), a count other than max(1, round(f * N)), or every seed drawing the same sample."""
    everyone = train_patients(store, 1.0, 0)
    n = len(everyone)
    assert n == 18  # 30 harbor patients, 0.6 of them in train
    for seed in (0, 1, 2):
        previous: set[str] = set()
        for fraction in (0.01, 0.1, 0.25, 0.5, 1.0):
            patients = train_patients(store, fraction, seed)
            assert len(patients) == max(1, round(fraction * n))
            assert previous <= patients <= everyone
            previous = patients
    samples = {frozenset(train_patients(store, 0.5, seed)) for seed in range(4)}
    assert len(samples) > 1


@pytest.fixture(scope="module")
def run(store: CohortStore, encoder_file: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("run") / "le"
    config = load_config(
        None,
        [
            *fast_settings(store, encoder_file, out),
            "task=sex",
            "test_cohorts=[jade]",
            f"fractions={FRACTIONS}",
            f"seeds={SEEDS}",
        ],
    )
    lines: list[str] = []
    result = run_label_efficiency(config, log=lines.append, store=store)
    return config, result, lines


@pytest.mark.slow
def test_every_method_writes_the_tidy_table(run, store: CohortStore) -> None:
    """Bug caught: a method or test cohort missing from the table, a value that is not the
    task's metric of the saved predictions, sizes that are not the cell's own patients."""
    config, result, _lines = run
    results = pd.read_csv(result.out_dir / "results.csv")
    assert tuple(results.columns) == RESULT_COLUMNS
    methods = [MEAN_PREDICTOR, *METHODS]
    expected = {
        (m, f, s, c) for m in methods for f in FRACTIONS for s in SEEDS for c in ("harbor", "jade")
    }
    assert (
        set(
            results[["method", "fraction", "seed", "test_cohort"]].itertuples(
                index=False, name=None
            )
        )
        == expected
    )
    assert set(results["setting"]) == {"in-distribution", "out-of-distribution"}
    assert (results.loc[results["test_cohort"] == "jade", "setting"] == "out-of-distribution").all()

    full = cell_selection(config, store.manifest, 1.0, 0)
    order = ordered_test_ids(full, store.manifest)
    sizes = {(f, s): len(train_patients(store, f, s)) for f in FRACTIONS for s in SEEDS}
    for row in results.itertuples(index=False):
        cell = Cell(row.method, row.fraction, row.seed)
        _info, predictions = read_cell(cell, result.out_dir)
        assert row.n_train_patients == sizes[row.fraction, row.seed]
        if row.status != "ok":
            assert np.isnan(row.value)
            continue
        y_true, y_pred = cell_arrays(
            predictions, row.test_cohort, order[row.test_cohort], ("",), False
        )
        # NaN when the metric is undefined (jade's few test ECGs may all be of one sex).
        np.testing.assert_equal(row.value, full.task.score(y_true, y_pred))
        assert row.n == len(order[row.test_cohort])
        if np.isfinite(row.ci_low):
            assert row.ci_low <= row.ci_high
    harbor = results[(results["test_cohort"] == "harbor") & (results["status"] == "ok")]
    assert np.isfinite(harbor["value"]).all()


@pytest.mark.slow
def test_methods_of_a_cell_share_patients_and_test_ecgs(run) -> None:
    """Bug caught: a frozen head trained on other ECGs than the fine-tuned model of the same
    (fraction, seed), which would make the paired tests compare different samples."""
    _config, result, _ = run
    for fraction in FRACTIONS:
        for seed in SEEDS:
            fingerprints = {
                read_cell(Cell(m, fraction, seed), result.out_dir)[0]["selection_fingerprint"]
                for m in (MEAN_PREDICTOR, *METHODS)
            }
            assert len(fingerprints) == 1
            for method in ("finetune", "scratch"):  # what cape finetune itself selected
                provenance = Cell(method, fraction, seed).run_directory(result.out_dir)
                facts = json.loads((provenance / "provenance.json").read_text())
                assert facts["selection_fingerprint"] in fingerprints
            ids = [
                sorted(read_cell(Cell(m, fraction, seed), result.out_dir)[1]["record_id"])
                for m in ("linear", "finetune")
                if read_cell(Cell(m, fraction, seed), result.out_dir)[0]["status"] == "ok"
            ]
            assert all(i == ids[0] for i in ids)


@pytest.mark.slow
def test_one_patient_sample_fails_one_line_not_the_run(run) -> None:
    """Bug caught: one class in a 1 % sample (one patient, one sex) crashing the whole run
    instead of being recorded as that cell's outcome."""
    _, result, lines = run
    info, predictions = read_cell(Cell("linear", 0.01, 0), result.out_dir)
    assert info["n_train_patients"] == 1
    assert info["status"] == "failed" and "cannot fit" in info["error"]
    assert predictions.empty
    summary = pd.read_csv(result.out_dir / "summary.csv")
    linear = summary[(summary["method"] == "linear") & (summary["fraction"] == 0.01)]
    assert (linear["n_failed"] == 2).all() and (linear["n_seeds"] == 0).all()
    assert any("linear fraction=0.01 seed=0" in line and "failed" in line for line in lines)


@pytest.mark.slow
def test_progress_lines_tests_markdown_and_figure(run) -> None:
    """Bug caught: a cell without its progress line, AUROC comparisons without DeLong, a
    figure or Markdown table missing a method."""
    config, result, lines = run
    cells = plan_cells(config)
    for position, cell in enumerate(cells, start=1):
        assert (
            sum(line.startswith(f"[{position}/{len(cells)}] {cell.name}:") for line in lines) == 1
        )
    tests = pd.read_csv(result.out_dir / "tests.csv")
    at_full = tests[tests["fraction"] == 1.0]
    assert {"wilcoxon_signed_rank", "delong", "delong_runs"} <= set(at_full["test"])
    pairs = set(at_full[["model_a", "model_b"]].itertuples(index=False, name=None))
    assert ("mlp", "finetune") in pairs and ("finetune", "scratch") in pairs
    assert MEAN_PREDICTOR not in set(tests["model_a"]) | set(tests["model_b"])

    png = result.figure.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    markdown = result.markdown.read_text()
    for method in (*METHODS, MEAN_PREDICTOR):
        assert f"| {method} |" in markdown.replace("\\-", "-")
    figure = label_efficiency_figure(result.summary, result.results, config.methods)
    axes = figure.axes
    assert [a.get_title() for a in axes] == [
        "harbor (in-distribution)",
        "jade (out-of-distribution)",
    ]
    assert axes[0].get_xscale() == "log"
    _, names = axes[0].get_legend_handles_labels()
    assert names == [*METHODS, MEAN_PREDICTOR]


@pytest.mark.slow
def test_resume_skips_recorded_cells(run, store: CohortStore) -> None:
    """Bug caught: recorded cells trained again, a half-written cell taken as done, a
    fine-tuning cell whose run directory exists refused ("already holds a run") or giving
    another result, or a run directory reused with other settings."""
    config, result, _ = run
    out = result.out_dir
    before = {c: (c.directory(out) / CELL_FILE).read_bytes() for c in plan_cells(config)}
    victims = [Cell("mlp", 1.0, 1), Cell("finetune", 1.0, 1)]
    for victim in victims:
        shutil.rmtree(victim.directory(out))
        # A crash while writing leaves only a hidden temporary directory behind.
        (victim.directory(out).parent / f".{victim.directory(out).name}.tmp-x").mkdir()
    lines: list[str] = []
    again = run_label_efficiency(config, log=lines.append, store=store)
    assert again.ran == victims
    assert len(again.skipped) == len(before) - 2
    assert sum("recorded, skipped" in line for line in lines) == len(before) - 2
    for cell, content in before.items():
        if cell not in victims:
            assert (cell.directory(out) / CELL_FILE).read_bytes() == content
    for victim in victims:
        after = json.loads((victim.directory(out) / CELL_FILE).read_text())
        first = json.loads(before[victim])
        assert after["selection_fingerprint"] == first["selection_fingerprint"]
    pd.testing.assert_frame_equal(
        again.results.drop(columns=["ci_low", "ci_high"]).reset_index(drop=True),
        result.results.drop(columns=["ci_low", "ci_high"]).reset_index(drop=True),
        check_exact=False,
        rtol=1e-9,
    )

    changed = config.model_copy(update={"task": "age"})
    with pytest.raises(CapeError, match=r"other settings .*task"):
        run_label_efficiency(changed, log=lambda _: None, store=store)


def test_figure_with_equal_seeds() -> None:
    """Bug caught: seeds with equal values (a deterministic probe at 100 %) whose float mean
    lies an ulp above them gave matplotlib a negative error bar and crashed the run."""
    values = np.full(3, 0.1)
    assert values.mean() > values.max()  # the float behaviour the figure must survive
    results = pd.DataFrame(
        {
            "method": "linear",
            "fraction": 1.0,
            "seed": [0, 1, 2],
            "test_cohort": "a",
            "value": values,
        }
    )
    summary = pd.DataFrame(
        [
            {
                "method": "linear",
                "fraction": 1.0,
                "setting": "in-distribution",
                "test_cohort": "a",
                "metric": "auroc",
                "n_train_patients": 10.0,
                "mean": values.mean(),
            }
        ]
    )
    figure = label_efficiency_figure(summary, results, ["linear"])
    assert [text.get_text() for text in figure.axes[0].get_xticklabels()] == ["100%\n(10 pat.)"]


@pytest.mark.slow
def test_multilabel_task(store: CohortStore, encoder_file: Path, tmp_path: Path) -> None:
    """Bug caught: multi-label predictions (one row per ECG and label) scored on the wrong
    ECG-label pairs, or a DeLong test attempted on macro AUROC.

    The tiny simulated store gets a list column (``codes``: from each patient's sex and
    age) and is written again; the frozen methods and the mean predictor run on it.
    """
    from cape.stats import macro_auroc
    from cape.store import create_store_from_arrays

    manifest = store.manifest.copy()
    manifest["codes"] = [
        [code for code, on in (("MALE", s == "M"), ("OLD", a > 55), ("ANY", True)) if on]
        for s, a in zip(manifest["sex"], manifest["age"], strict=True)
    ]
    signals = np.stack([store.read(i) for i in range(len(store))])
    coded = create_store_from_arrays(tmp_path / "coded", signals, manifest)
    config = load_config(
        None,
        [
            *fast_settings(coded, encoder_file, tmp_path / "out"),
            "task=codes",
            "methods=[linear, mlp]",
            "fractions=[0.5, 1]",
            "seeds=[0, 1]",
        ],
    )
    result = run_label_efficiency(config, log=lambda _: None, store=coded)
    full = cell_selection(config, coded.manifest, 1.0, 0)
    assert full.label_names == ("ANY", "MALE", "OLD")
    order = ordered_test_ids(full, coded.manifest)["harbor"]
    harbor = manifest[manifest["cohort"] == "harbor"]  # record ids repeat across cohorts
    truth = harbor.set_index("record_id").loc[order, "codes"]
    for row in result.results.itertuples(index=False):
        assert row.metric == "macro_auroc" and row.status == "ok"
        predictions = read_cell(Cell(row.method, row.fraction, row.seed), result.out_dir)[1]
        wide = predictions.pivot(index="record_id", columns="label", values="y_pred")
        y_pred = wide.loc[order, ["ANY", "MALE", "OLD"]].to_numpy()
        y_true = np.array([[c in codes for c in ("ANY", "MALE", "OLD")] for codes in truth])
        # ANY is constant: macro AUROC averages the labels where it is defined.
        np.testing.assert_equal(row.value, macro_auroc(y_true.astype(float), y_pred))
    assert set(result.tests["test"]) == {"wilcoxon_signed_rank"}
