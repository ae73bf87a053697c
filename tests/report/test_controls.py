"""Positive controls (cape.report.controls) on results whose answers are fixed by construction."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from scipy import stats

from cape.protocols.results import ProtocolResult
from cape.report.collect import PretrainRun, RunData
from cape.report.controls import FAILS, INCONCLUSIVE, NO, PASSES, YES, controls_from_data

EMPTY = pd.DataFrame()


def _ood(values: dict[str, list[list[float]]]) -> ProtocolResult:
    """Source-cohort age MAE per model: a list per encoder seed of per-run values."""
    rows = [
        {
            "model": model,
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
    return ProtocolResult(pd.DataFrame(rows), EMPTY, EMPTY, EMPTY, EMPTY, EMPTY)


def _data(ood: ProtocolResult, ident: pd.DataFrame | None = None, retrieval=None) -> RunData:
    runs = [
        PretrainRun(m, 0, Path(m), {"batching": b}, EMPTY)
        for m, b in (("rnd", "random"), ("ind", "idb"))
    ]
    return RunData(
        run_dir=Path("run"),
        pretrain_runs=runs,
        ood=ood,
        identifiability=ident,
        retrieval=retrieval,
    )


def _learning(data: RunData) -> dict[str, str]:
    table = controls_from_data(data, None, ["rnd", "ind"])
    return dict(zip(table["model"], table["verdict"], strict=True))


def test_learning_control_verdicts_and_p_value() -> None:
    ood = _ood(
        {
            "untrained": [[9.0, 9.2, 9.1]],
            "rnd": [[8.0, 8.1, 8.2], [8.3, 8.05, 8.15]],  # every head better: p = 1/84
            "ind": [[9.5, 9.6, 9.7], [9.4, 9.8, 9.5]],  # every seed worse
        }
    )
    assert _learning(_data(ood)) == {"rnd": PASSES, "ind": FAILS}
    table = controls_from_data(_data(ood), None, ["rnd"])
    expected = stats.mannwhitneyu(
        [8.0, 8.1, 8.2, 8.3, 8.05, 8.15], [9.0, 9.2, 9.1], alternative="less"
    ).pvalue
    assert expected == pytest.approx(1 / 84)  # exact: the untrained heads rank last of nine
    assert f"p = {expected:.3g}" in table["measured"].iloc[0]
    # One seed better, one worse: inconclusive whatever the pooled test says.
    mixed = _ood({"untrained": [[9.0, 9.1, 9.2]], "rnd": [[8.0, 8.0, 8.0], [9.5, 9.6, 9.7]]})
    assert _learning(_data(mixed))["rnd"] == INCONCLUSIVE


def test_learning_control_compares_each_seed_with_its_own_untrained_twin() -> None:
    """With one untrained twin per seed (its initial weights), seed k must beat twin k.

    Seed 1 (8.5) beats the untrained mean (8.6) but not its own twin (8.2): a control that
    compared with the pooled mean would call every seed better. The bug this catches:
    the twin lookup dropped (or keyed by position instead of encoder seed).
    """
    ood = _ood(
        {
            "untrained": [[9.0, 9.0, 9.0], [8.2, 8.2, 8.2]],
            "rnd": [[8.0, 8.0, 8.0], [8.5, 8.5, 8.5]],
        }
    )
    table = controls_from_data(_data(ood), None, ["rnd"])
    assert table["verdict"].iloc[0] == INCONCLUSIVE
    assert "twins [9.0, 8.2]" in table["measured"].iloc[0]
    worse = _ood({"untrained": [[9.0] * 3, [8.2] * 3], "rnd": [[9.1] * 3, [8.3] * 3]})
    # Each seed worse than its twin: fails (against the pooled mean 8.6 seed 1 would pass).
    assert _learning(_data(worse))["rnd"] == FAILS


def test_learning_control_tests_seeds_against_their_twins() -> None:
    """With twins, the encoder seed is the unit: a one-sided t-test of each seed's gain over
    its twin (SciPy). Nine of ten seeds better by ~0.5 y passes (the former rule, every
    seed better plus a test over heads, called it inconclusive); gains that straddle 0 do
    not pass; no seed better fails."""
    gains = [0.6, 0.4, 0.5, 0.7, 0.3, 0.5, 0.6, 0.4, 0.5, -0.1]
    twins = [[9.0 + 0.1 * k] * 3 for k in range(10)]
    ood = _ood(
        {"untrained": twins, "rnd": [[t[0] - g] * 3 for t, g in zip(twins, gains, strict=True)]}
    )
    table = controls_from_data(_data(ood), None, ["rnd"])
    assert table["verdict"].iloc[0] == PASSES
    expected = stats.ttest_1samp(gains, 0.0, alternative="greater").pvalue
    assert f"p = {expected:.3g}" in table["measured"].iloc[0]
    assert "9 of 10 seeds better" in table["measured"].iloc[0]
    assert table["n_seeds"].iloc[0] == 10
    straddle = _ood({"untrained": twins[:3], "rnd": [[9.0 - 0.5] * 3, [9.1 + 0.4] * 3, [9.1] * 3]})
    assert _learning(_data(straddle))["rnd"] == INCONCLUSIVE


def _probe(differences: list[float], lows: list[float], highs: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "task": "age",
            "metric": "mae",
            "model": "rnd",
            "encoder_seed": range(len(differences)),
            "difference": differences,
            "ci_low": lows,
            "ci_high": highs,
        }
    )


def _probe_verdict(table: pd.DataFrame) -> tuple[str, str]:
    data = _data(_ood({}))
    data.learning_probe = table
    rows = controls_from_data(data, None, ["rnd"])
    row = rows[rows["control"] == "learning-probe"].iloc[0]
    return str(row["verdict"]), str(row["measured"])


def test_probe_control_tests_seeds_and_uses_intervals_for_one_seed() -> None:
    """Three seeds whose differences are all ~+0.4 y but whose own intervals include 0:
    the seeds together pass (one-sided t over seeds, SciPy); a single such seed does not."""
    verdict, measured = _probe_verdict(
        _probe([0.3, 0.5, 0.4], [-0.1, -0.05, -0.2], [0.7, 1.0, 0.9])
    )
    expected = stats.ttest_1samp([0.3, 0.5, 0.4], 0.0, alternative="greater").pvalue
    assert verdict == PASSES and f"p = {expected:.3g}" in measured
    assert _probe_verdict(_probe([0.3], [-0.1], [0.7]))[0] == INCONCLUSIVE
    assert _probe_verdict(_probe([0.3], [0.1], [0.7]))[0] == PASSES
    assert _probe_verdict(_probe([0.3, -0.5, 0.4], [0.1, -0.9, 0.1], [0.5, 0.1, 0.7]))[0] == (
        INCONCLUSIVE
    )
    assert _probe_verdict(_probe([-0.3, -0.5], [-0.6, -0.9], [0.0, -0.1]))[0] == FAILS


def _ident(random_acc: list[float], untrained: tuple[float, float]) -> pd.DataFrame:
    rows = [
        {"model": "rnd", "encoder_seed": s, "by": "cohort", "accuracy": a, "accuracy_high": a}
        for s, a in enumerate(random_acc)
    ]
    rows.append(
        {
            "model": "untrained",
            "encoder_seed": 0,
            "by": "cohort",
            "accuracy": untrained[0],
            "accuracy_high": untrained[1],
        }
    )
    return pd.DataFrame(rows)


def _retrieval(random_gaps: list[tuple[float, float]], untrained_gap: float) -> pd.DataFrame:
    rows = [
        {"model": "rnd", "encoder_seed": s, "gap": g, "gap_low": low}
        for s, (g, low) in enumerate(random_gaps)
    ]
    rows.append({"model": "untrained", "encoder_seed": 0, "gap": untrained_gap, "gap_low": 0.0})
    return pd.DataFrame(rows)


def _shortcut(ident: pd.DataFrame, retrieval: pd.DataFrame) -> str:
    table = controls_from_data(_data(_ood({}), ident, retrieval), "rnd", [])
    return str(table[table["control"] == "shortcut"]["verdict"].iloc[0])


def test_shortcut_present_only_when_identifiable_and_paying() -> None:
    ident_high = _ident([0.60, 0.61], (0.53, 0.545))
    pays = _retrieval([(0.06, 0.045), (0.07, 0.05)], 0.02)
    assert _shortcut(ident_high, pays) == YES
    ident_low = _ident([0.33, 0.32], (0.39, 0.40))  # the demo's reading: below untrained
    no_gap = _retrieval([(0.01, -0.01), (0.0, -0.02)], 0.02)
    assert _shortcut(ident_low, no_gap) == NO
    assert _shortcut(ident_high, no_gap) == "partly"
