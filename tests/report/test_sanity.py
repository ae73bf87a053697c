"""Sanity checks (cape.report.sanity) on hand-made results that trigger each flag, or do not."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from cape.errors import CapeError
from cape.protocols.results import ProtocolResult
from cape.report.collect import PretrainRun, RunData
from cape.report.controls import controls_from_data
from cape.report.power import (
    cannot_reach_verdict,
    kruskal_floor,
    mann_whitney_floor,
    power_table,
    wilcoxon_floor,
)
from cape.report.sanity import CLEAR, FLAG, NOT_MEASURED, UNCLEAR, sanity_from_data
from cape.report.settings import ReportSettings

EMPTY = pd.DataFrame()
PAIR = ("rnd", "ind")


# ----------------------------------------------------------------------- p-value floors
@pytest.mark.parametrize("n", range(1, 11))
def test_wilcoxon_floor_is_scipys_exact_p_of_one_signed_differences(n: int) -> None:
    """Bug caught: a floor of 1 / 2^n (one-sided) would let 5 pairs look able to reach 0.05."""
    exact = stats.wilcoxon(np.arange(1.0, n + 1), method="exact").pvalue
    assert wilcoxon_floor(n) == pytest.approx(min(1.0, exact), rel=1e-12)


@pytest.mark.parametrize(("n_a", "n_b"), [(2, 2), (3, 5), (6, 3), (1, 4), (7, 7)])
def test_mann_whitney_floor_is_scipys_exact_p_of_separated_samples(n_a: int, n_b: int) -> None:
    """Bug caught: using n_a * n_b (the U range) instead of the number of rankings."""
    low, high = np.arange(n_a, dtype=float), np.arange(n_a, n_a + n_b, dtype=float)
    one = stats.mannwhitneyu(low, high, alternative="less", method="exact").pvalue
    two = stats.mannwhitneyu(low, high, alternative="two-sided", method="exact").pvalue
    assert mann_whitney_floor(n_a, n_b) == pytest.approx(one, rel=1e-12)
    assert mann_whitney_floor(n_a, n_b, two_sided=True) == pytest.approx(min(1.0, two), rel=1e-12)


@pytest.mark.parametrize("sizes", [(2, 2, 3), (1, 3, 2), (2, 5), (1, 1, 4)])
def test_kruskal_floor_is_the_smallest_p_over_every_assignment(sizes: tuple[int, ...]) -> None:
    """Bug caught: blocks of ranks in one fixed order are not always the most separated."""
    total = sum(sizes)
    labels = [k for k, size in enumerate(sizes) for _ in range(size)]
    smallest = min(
        stats.kruskal(
            *[
                [r for r, g in zip(range(total), p, strict=True) if g == k]
                for k in range(len(sizes))
            ]
        ).pvalue
        for p in set(itertools.permutations(labels))
    )
    assert kruskal_floor(list(sizes)) == pytest.approx(smallest, rel=1e-9)


# ------------------------------------------------------------------------------ helpers
def _runs() -> list[PretrainRun]:
    return [
        PretrainRun(m, 0, Path(m), {"batching": b}, EMPTY)
        for m, b in zip(PAIR, ("random", "idb"), strict=True)
    ]


def _source_results(values: dict[str, list[list[float]]]) -> pd.DataFrame:
    """Source-cohort age MAE per model: a list per encoder seed of per-run values."""
    return pd.DataFrame(
        [
            {
                "model": model,
                "baseline": "untrained" if model == "untrained" else "",
                "encoder_seed": seed,
                "run": run,
                "setting": "source",
                "train_cohort": "A",
                "test_cohort": "A",
                "task": "age",
                "metric": "mae",
                "value": value,
            }
            for model, seeds in values.items()
            for seed, runs in enumerate(seeds)
            for run, value in enumerate(runs)
        ]
    )


def _summary_row(model: str, setting: str, cohort: str, task: str, mean: float) -> dict:
    return {
        "model": model,
        "baseline": "",
        "setting": setting,
        "train_cohort": "A" if setting != "in-cohort" else cohort,
        "test_cohort": cohort,
        "task": task,
        "metric": "mae" if task == "age" else "auroc",
        "mean": mean,
        "se": 0.1,
    }


def _tests(n: int) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "test": "wilcoxon_signed_rank",
                "scope": "all",
                "model_a": "rnd",
                "model_b": "ind",
                "setting": "out-of-distribution",
                "train_cohort": "A",
                "test_cohort": cohort,
                "task": "age",
                "metric": "mae",
                "n": n,
                "p_value": 0.5,
            }
            for cohort in ("B", "C")
        ]
    )


def _data(
    results: pd.DataFrame = EMPTY,
    summary: pd.DataFrame = EMPTY,
    tests: pd.DataFrame = EMPTY,
    ident: pd.DataFrame | None = None,
) -> RunData:
    config = {"settings": {"protocol": "ood", "alpha": 0.05, "compare": list(PAIR)}}
    ood = ProtocolResult(results, EMPTY, summary, EMPTY, tests, EMPTY, config=config)
    return RunData(run_dir=Path("run"), pretrain_runs=_runs(), ood=ood, identifiability=ident)


def _checks(data: RunData, settings: ReportSettings | None = None) -> dict[str, str]:
    controls = controls_from_data(data, PAIR[0], list(PAIR))
    return {c.check: c.status for c in sanity_from_data(data, PAIR, controls, settings)}


# ------------------------------------------------------------------------------- checks
def test_learning_flag_reuses_the_learning_control() -> None:
    """Bug caught: a pretrained model worse than untrained in every seed passing silently."""
    better = [[8.0, 8.1, 8.2], [8.3, 8.05, 8.15]]
    worse = [[9.5, 9.6, 9.7], [9.4, 9.8, 9.5]]
    untrained = [[9.0, 9.2, 9.1]]
    flagged = _data(_source_results({"untrained": untrained, "rnd": better, "ind": worse}))
    assert _checks(flagged)["learning"] == FLAG
    clear = _data(_source_results({"untrained": untrained, "rnd": better, "ind": better}))
    assert _checks(clear)["learning"] == CLEAR
    mixed = [[8.0, 8.0, 8.0], [9.5, 9.6, 9.7]]  # one seed better, one worse: inconclusive
    unclear = _data(_source_results({"untrained": untrained, "rnd": better, "ind": mixed}))
    assert _checks(unclear)["learning"] == UNCLEAR
    assert _checks(_data())["learning"] == NOT_MEASURED


@pytest.mark.parametrize(
    ("task", "ceiling", "ood", "status"),
    [
        ("age", 5.0, 6.0, CLEAR),  # MAE: lower is better, the ceiling bounds it
        ("age", 7.0, 6.0, FLAG),
        ("sex", 0.8, 0.7, CLEAR),  # AUROC: higher is better
        ("sex", 0.6, 0.7, FLAG),
        ("sex", 0.7, 0.7, CLEAR),  # equal is not worse
    ],
)
def test_ceiling_flag(task: str, ceiling: float, ood: float, status: str) -> None:
    """Bug caught: comparing AUROC ceilings as if lower were better (or the reverse)."""
    summary = pd.DataFrame(
        [
            _summary_row("rnd", "out-of-distribution", "B", task, ood),
            _summary_row("rnd", "in-cohort", "B", task, ceiling),
            _summary_row("rnd", "source", "A", task, ood),
        ]
    )
    assert _checks(_data(summary=summary))["ceiling"] == status


def _ident(signal: float, encoders: dict[str, float], chance: float = 0.3) -> pd.DataFrame:
    rows = [
        {"model": m, "encoder_seed": 0, "baseline": "", "by": "cohort", "accuracy": a}
        for m, a in encoders.items()
    ]
    rows.append(
        {
            "model": "signal-spectrum",
            "encoder_seed": 0,
            "baseline": "signal",
            "by": "cohort",
            "accuracy": signal,
        }
    )
    rows.append(  # device rows must not count
        {"model": "rnd", "encoder_seed": 0, "baseline": "", "by": "device", "accuracy": 0.99}
    )
    return pd.DataFrame(rows).assign(chance_majority=chance)


def test_signal_reference_flag_and_its_configurable_share() -> None:
    """Bugs caught: the share ignored, the device rows taken as an encoder's, and an absolute
    accuracy margin that flags the controls study, where the shortcut is there by design."""
    demo = _ident(0.852, {"rnd": 0.316, "ind": 0.343, "untrained": 0.361}, 0.293)  # demo-quick
    assert _checks(_data(ident=demo))["signal"] == FLAG  # keeps (0.361-0.293)/(0.852-0.293): 12%
    assert _checks(_data(ident=demo), ReportSettings(signal_share=0.1))["signal"] == CLEAR
    controls = _ident(0.898, {"rnd": 0.609, "ind": 0.521, "untrained": 0.531}, 0.272)
    assert _checks(_data(ident=controls))["signal"] == CLEAR  # keeps 54%; 0.29 points below
    assert _checks(_data(ident=controls), ReportSettings(signal_share=0.6))["signal"] == FLAG
    at_chance = _ident(0.30, {"rnd": 0.30}, 0.30)
    assert _checks(_data(ident=at_chance))["signal"] == CLEAR  # nothing for encoders to keep
    assert _checks(_data(ident=_ident(0.6, {})))["signal"] == NOT_MEASURED


def test_power_flag_and_smoke_test_headline() -> None:
    """Bug caught: a run of 1 seed x 2 runs (p >= 0.5 whatever the data) not called a smoke test."""
    few = _data(tests=_tests(2))
    assert _checks(few)["power"] == FLAG
    table = power_table(few, PAIR, controls_from_data(few, PAIR[0], list(PAIR)))
    assert table["floor"].tolist() == [0.5]
    headline = cannot_reach_verdict(table)
    assert headline is not None and "SMOKE TEST" in headline and "0.5" in headline
    enough = _data(tests=_tests(10))  # 2 / 1024 < 0.05
    assert _checks(enough)["power"] == CLEAR
    assert cannot_reach_verdict(power_table(enough, PAIR, EMPTY)) is None
    # The learning control's Mann-Whitney: 2 vs 2 heads cannot go below 1/6.
    results = _source_results({"untrained": [[9.0, 9.1]], "rnd": [[8.0, 8.1]], "ind": [[8.0, 8.2]]})
    small = _data(results=results, tests=_tests(10))
    table = power_table(small, PAIR, controls_from_data(small, PAIR[0], list(PAIR)))
    row = table[table["test"].str.startswith("Mann-Whitney")].iloc[0]
    assert row["floor"] == pytest.approx(1 / math.comb(4, 2)) and row["cells"] == 2
    assert _checks(small)["power"] == FLAG
    assert cannot_reach_verdict(table) is None  # claim 1 itself can reach alpha


def test_settings_from_study_and_overrides() -> None:
    """Bug caught: the study's report: section ignored, or a bad value accepted silently."""
    study = {"report": {"min_cell_n": 5, "signal_share": 0.3, "tsne_per_cohort": 100}}
    assert ReportSettings.from_study(study) == ReportSettings(min_cell_n=5, signal_share=0.3)
    assert ReportSettings.from_study(study, min_cell_n=50).min_cell_n == 50
    assert ReportSettings.from_study({}, min_cell_n=None) == ReportSettings()
    with pytest.raises(CapeError, match=r"report\.min_cell_n"):
        ReportSettings.from_study({"report": {"min_cell_n": 0}})
    with pytest.raises(CapeError, match=r"report\.signal_share"):
        ReportSettings(signal_share=1.5)
    with pytest.raises(CapeError, match=r"report\.signal_share"):
        ReportSettings(signal_share=0)
