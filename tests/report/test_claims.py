"""The claims summary and its verdict rules (cape.report.verdicts) on hand-made result
tables with known answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from cape.errors import CapeError
from cape.protocols.results import ProtocolResult
from cape.report.claims import claims_from_data, compared_models
from cape.report.collect import PretrainRun, RunData
from cape.report.identifiability import normalise_identifiability
from cape.report.settings import ReportSettings
from cape.report.verdicts import (
    AGREES,
    DISAGREES,
    INCONCLUSIVE,
    NO_DIFFERENCE,
    NOT_MEASURED,
    detectable_difference,
    equivalence_interval,
    format_p,
    seed_verdict,
)

EMPTY = pd.DataFrame()


def _runs(models: dict[str, str]) -> list[PretrainRun]:
    return [
        PretrainRun(model, 0, Path(model), {"batching": batching}, EMPTY)
        for model, batching in models.items()
    ]


def _ood(
    means: dict[str, dict[str, list[float]]],
    p_values: dict[str, float] | None,
    task: str = "age",
    n_pairs: int = 20,
    compare: tuple[str, str] | None = ("rnd", "ind"),
    train: str = "A",
) -> ProtocolResult:
    """OOD tables: ``means[cohort][model]`` are per-encoder-seed means; p per cohort."""
    metric = "mae" if task == "age" else "auroc"
    rows, tests = [], []
    for cohort, per_model in means.items():
        for model, seed_means in per_model.items():
            for seed, value in enumerate(seed_means):
                rows.append(
                    {
                        "model": model,
                        "baseline": "",
                        "encoder_seed": seed,
                        "setting": "out-of-distribution",
                        "train_cohort": train,
                        "test_cohort": cohort,
                        "task": task,
                        "metric": metric,
                        "mean": value,
                    }
                )
        if p_values is not None:
            tests.append(
                {
                    "test": "wilcoxon_signed_rank",
                    "scope": "all",
                    "model_a": "rnd",
                    "model_b": "ind",
                    "setting": "out-of-distribution",
                    "train_cohort": train,
                    "test_cohort": cohort,
                    "task": task,
                    "metric": metric,
                    "n": n_pairs,
                    "p_value": p_values[cohort],
                }
            )
    config = {"settings": {"protocol": "ood", "alpha": 0.05, "compare": compare}}
    return ProtocolResult(
        EMPTY, EMPTY, EMPTY, pd.DataFrame(rows), pd.DataFrame(tests), EMPTY, config=config
    )


def _data(ood: ProtocolResult | None = None, ident: pd.DataFrame | None = None) -> RunData:
    return RunData(
        run_dir=Path("run"),
        pretrain_runs=_runs({"rnd": "random", "ind": "idb"}),
        ood=ood,
        identifiability=ident,
    )


def _claim(data: RunData, claim_id: str) -> dict:
    (claim,) = [c for c in claims_from_data(data) if c["id"] == claim_id]
    return claim


def test_pair_comes_from_batching_not_names() -> None:
    assert compared_models(_data()) == ("rnd", "ind")


def test_compare_setting_picks_among_several_models() -> None:
    data = _data(_ood({"B": {"rnd": [1.0]}}, None, compare=("ind2", "rnd")))
    data.pretrain_runs = _runs({"rnd": "random", "ind": "idb", "ind2": "idb-mask"})
    assert compared_models(data) == ("rnd", "ind2")


def test_names_are_the_fallback_without_batching() -> None:
    data = RunData(
        run_dir=Path("run"), study={"pretrain": {"runs": [{"name": "idb"}, {"name": "random-x"}]}}
    )
    assert compared_models(data) == ("random-x", "idb")


@pytest.mark.parametrize(
    ("random_means", "idb_means", "verdict"),
    [
        ([20.0, 22.0, 21.0], [8.0, 9.0, 8.5], AGREES),
        ([20.0, 7.0, 21.0], [8.0, 9.0, 8.5], INCONCLUSIVE),  # one seed favours random
        ([8.0, 9.0, 8.5], [20.0, 22.0, 21.0], DISAGREES),
    ],
)
def test_ood_age_cell_verdicts(
    random_means: list[float], idb_means: list[float], verdict: str
) -> None:
    """The unit is the encoder seed: the saved Wilcoxon p over heads (here 0.001, as if
    every head agreed) does not decide; the paired t-test over seeds does (SciPy)."""
    ood = _ood({"B": {"rnd": random_means, "ind": idb_means}}, {"B": 0.001})
    claim = _claim(_data(ood), "ood_age")
    assert claim["verdict"] == verdict
    (cell,) = claim["cells"]
    assert cell["verdict"] == verdict
    assert cell["random_mean"] == pytest.approx(sum(random_means) / 3)
    assert (cell["idb_min"], cell["idb_max"]) == (min(idb_means), max(idb_means))
    expected = stats.ttest_rel(random_means, idb_means).pvalue
    assert cell["p_value"] == pytest.approx(expected, rel=1e-12)
    assert cell["heads_p_value"] == 0.001
    assert cell["test"] == "t-test over encoder seeds"


def test_seed_disagreement_is_named_in_the_reason() -> None:
    ood = _ood({"B": {"rnd": [20.0, 7.0], "ind": [8.0, 9.0]}}, {"B": 0.01})
    reason = _claim(_data(ood), "ood_age")["cells"][0]["reason"]
    assert "1 of 2 seeds favour IDB" in reason
    assert "detect a mean difference of about" in reason


def test_sex_auroc_direction_is_higher_is_better() -> None:
    ood = _ood({"B": {"rnd": [0.6, 0.62, 0.61], "ind": [0.9, 0.93, 0.9]}}, {"B": 0.5}, task="sex")
    assert _claim(_data(ood), "ood_sex")["verdict"] == AGREES
    ood = _ood({"B": {"rnd": [0.9, 0.93, 0.9], "ind": [0.6, 0.62, 0.61]}}, {"B": 0.5}, task="sex")
    assert _claim(_data(ood), "ood_sex")["verdict"] == DISAGREES


def test_false_positive_rate_is_alpha_at_three_seeds() -> None:
    """Under no true difference, with the seed-to-seed spread larger than the head-run
    spread (as measured in the demo: SD 0.45 y vs 0.23 y), the seed-level rule calls an
    effect in alpha of the runs; the former rule (Wilcoxon over 9 heads plus every seed
    agreeing) called one in about 19%. 4,000 null runs: the rate's binomial SD at 0.05 is
    0.0034, so [0.035, 0.065] holds the exact-t rate with > 4 SD to spare."""
    rng = np.random.default_rng(12)
    new_calls = old_calls = 0
    n_runs = 4000
    for _ in range(n_runs):
        pairs = rng.normal(0.0, 0.45, (3, 1)) + rng.normal(0.0, 0.23, (3, 3))
        verdict, _, _ = seed_verdict(list(pairs.mean(axis=1)), 0.05)
        new_calls += verdict in (AGREES, DISAGREES)
        means = pairs.mean(axis=1)
        same_sign = bool((means > 0).all() or (means < 0).all())
        old_calls += same_sign and stats.wilcoxon(pairs.ravel()).pvalue < 0.05
    assert 0.035 <= new_calls / n_runs <= 0.065
    assert old_calls / n_runs > 0.12  # why the rule changed (docs/report.md)


def test_detectable_difference_has_the_stated_power() -> None:
    """At the returned difference the exact power of the two-sided t-test (noncentral t,
    SciPy) is 0.8; for many seeds it approaches the normal formula (z + z) sd / sqrt(n)."""
    for n in (2, 3, 10):
        differences = np.linspace(-1.0, 1.0, n)
        sd = differences.std(ddof=1)
        effect = detectable_difference(differences, 0.05)
        critical = stats.t.ppf(0.975, n - 1)
        shift = effect * np.sqrt(n) / sd
        power = stats.nct.sf(critical, n - 1, shift) + stats.nct.cdf(-critical, n - 1, shift)
        assert power == pytest.approx(0.8, abs=1e-8)
    differences = np.linspace(-1.0, 1.0, 400)
    normal = (stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) * differences.std(ddof=1) / 20.0
    assert detectable_difference(differences, 0.05) == pytest.approx(normal, rel=0.01)
    assert np.isnan(detectable_difference([1.0], 0.05))


def test_overall_is_the_seed_test_of_the_mean_over_target_cohorts() -> None:
    """Two cohorts favour IDB by ~12 y, one favours random by ~3 y: each seed's mean over
    the three is ~+7 y in favour of IDB, so the claim agrees (Table 3's mean column)."""
    means = {
        "B": {"rnd": [20.0, 21.0, 20.5], "ind": [8.0, 9.0, 8.7]},
        "C": {"rnd": [20.0, 21.0, 20.2], "ind": [8.0, 9.0, 8.1]},
        "D": {"rnd": [5.0, 6.0, 5.6], "ind": [8.0, 9.0, 8.3]},
    }
    claim = _claim(_data(_ood(means, {"B": 0.001, "C": 0.001, "D": 0.001})), "ood_age")
    per_seed = [np.mean([means[c]["rnd"][s] - means[c]["ind"][s] for c in means]) for s in range(3)]
    aggregate = claim["aggregate"]
    assert aggregate["differences"] == pytest.approx(per_seed, rel=1e-12)
    assert aggregate["p_value"] == pytest.approx(stats.ttest_1samp(per_seed, 0).pvalue, rel=1e-12)
    assert claim["verdict"] == AGREES
    assert "mean over 3 target cohorts" in claim["reason"]
    assert "2 of 3 target cohorts agree, 1 disagree" in claim["reason"]


@pytest.mark.parametrize(
    ("p_values", "verdict"),
    [
        ({"B": 0.001, "C": 0.001, "D": 0.5}, AGREES),  # 2 of 3 agree, none disagrees
        ({"B": 0.001, "C": 0.5, "D": 0.5}, INCONCLUSIVE),  # 1 of 3 agrees
    ],
)
def test_one_seed_overall_needs_a_majority_of_target_cohorts(p_values: dict, verdict: str) -> None:
    means = {c: {"rnd": [20.0], "ind": [8.0]} for c in p_values}
    assert _claim(_data(_ood(means, p_values)), "ood_age")["verdict"] == verdict


def test_too_few_pairs_for_significance_is_explained() -> None:
    ood = _ood({"B": {"rnd": [20.0], "ind": [8.0]}}, {"B": 0.125}, n_pairs=4)
    claim = _claim(_data(ood), "ood_age")
    assert claim["verdict"] == INCONCLUSIVE
    assert "smallest possible Wilcoxon p is 0.125" in claim["reason"]


def test_missing_inputs() -> None:
    assert _claim(_data(), "ood_age")["verdict"] == NOT_MEASURED
    assert _claim(_data(), "identifiability")["verdict"] == NOT_MEASURED
    no_tests = _ood({"B": {"rnd": [20.0], "ind": [8.0]}}, None)
    claim = _claim(_data(no_tests), "ood_age")
    assert claim["verdict"] == INCONCLUSIVE
    assert "no paired" in claim["cells"][0]["reason"]
    # With two or more seeds the test is computed from the per-seed means themselves.
    two_seeds = _ood({"B": {"rnd": [20.0, 21.0, 20.5], "ind": [8.0, 9.0, 8.4]}}, None)
    assert _claim(_data(two_seeds), "ood_age")["verdict"] == AGREES


def test_single_seed_gets_a_caveat() -> None:
    ood = _ood({"B": {"rnd": [20.0], "ind": [8.0]}}, {"B": 0.001})
    claim = _claim(_data(ood), "ood_age")
    assert claim["verdict"] == AGREES
    assert any("one encoder seed" in c for c in claim["caveats"])


def _ident(values: dict[str, list[tuple[float, float, float]]]) -> pd.DataFrame:
    rows = [
        {
            "model": model,
            "encoder_seed": seed,
            "by": "cohort",
            "accuracy": acc,
            "accuracy_low": low,
            "accuracy_high": high,
            "macro_auroc": 0.5,
            "chance_majority": 0.4,
            "chance_uniform": 1 / 3,
        }
        for model, seeds in values.items()
        for seed, (acc, low, high) in enumerate(seeds)
    ]
    return normalise_identifiability(rows)


@pytest.mark.parametrize(
    ("random_acc", "idb_acc", "verdict"),
    [
        ([0.95, 0.97], [0.5, 0.55], AGREES),
        ([0.95, 0.52], [0.5, 0.55], INCONCLUSIVE),
        ([0.4, 0.46], [0.9, 0.95], DISAGREES),
    ],
)
def test_identifiability_seed_ranges(random_acc: list, idb_acc: list, verdict: str) -> None:
    table = _ident(
        {
            "rnd": [(a, a - 0.01, a + 0.01) for a in random_acc],
            "ind": [(a, a - 0.01, a + 0.01) for a in idb_acc],
        }
    )
    claim = _claim(_data(ident=table), "identifiability")
    assert claim["verdict"] == verdict
    assert "chance (majority cohort) 0.400" in claim["measured"]
    # Paired by encoder seed, as claim 1 (SciPy's paired t-test).
    p_value = stats.ttest_rel(random_acc, idb_acc).pvalue
    assert f"t-test over 2 encoder seeds {format_p(p_value)}" in claim["reason"]


@pytest.mark.parametrize(
    ("random_ci", "idb_ci", "verdict"),
    [
        ((0.9, 0.85, 0.95), (0.5, 0.45, 0.55), AGREES),
        ((0.6, 0.5, 0.7), (0.55, 0.45, 0.65), INCONCLUSIVE),
    ],
)
def test_identifiability_single_seed_uses_intervals(
    random_ci: tuple, idb_ci: tuple, verdict: str
) -> None:
    claim = _claim(_data(ident=_ident({"rnd": [random_ci], "ind": [idb_ci]})), "identifiability")
    assert claim["verdict"] == verdict
    assert claim["caveats"]


def test_several_training_cohorts_are_kept_apart() -> None:
    from cape.report.collect import for_training_cohort

    first = _ood({"B": {"rnd": [20.0, 21.0], "ind": [8.0, 9.0]}}, {"B": 0.001}, train="A")
    second = _ood({"B": {"rnd": [8.0, 9.0], "ind": [8.5, 9.2]}}, {"B": 0.4}, train="C")
    both = ProtocolResult(
        EMPTY,
        EMPTY,
        EMPTY,
        pd.concat([first.summary_by_seed, second.summary_by_seed], ignore_index=True),
        pd.concat([first.tests, second.tests], ignore_index=True),
        EMPTY,
        config=first.config,
    )
    only_c = for_training_cohort(both, "C")
    assert set(only_c.summary_by_seed["train_cohort"]) == {"C"}
    assert list(only_c.tests["p_value"]) == [0.4]
    claim = _claim(_data(both), "ood_age")
    cells = {c["train_cohort"]: c for c in claim["cells"]}
    assert (cells["A"]["verdict"], cells["C"]["verdict"]) == (AGREES, INCONCLUSIVE)
    assert cells["C"]["random_mean"] == pytest.approx(8.5)
    # Each seed's mean over both (training, target) pairs favours IDB by ~5.8 y.
    assert claim["verdict"] == AGREES
    assert "mean over 2 target cohorts" in claim["reason"]
    assert "A -> B" in claim["measured"] and "C -> B" in claim["measured"]


# ------------------------------------------------------------------ "no difference" (TOST)


def test_tight_small_differences_are_no_difference() -> None:
    """Per-seed age MAE differences of -0.02, 0.02, 0.05 y: the 90% t interval lies well
    inside ±0.5 y, so the run can say IDB does not matter here (not merely inconclusive)."""
    ood = _ood({"B": {"rnd": [8.00, 8.10, 8.05], "ind": [8.02, 8.08, 8.00]}}, {"B": 0.6})
    claim = _claim(_data(ood), "ood_age")
    assert claim["verdict"] == NO_DIFFERENCE
    assert claim["cells"][0]["verdict"] == NO_DIFFERENCE
    assert "inside the margin ±0.5" in claim["cells"][0]["reason"]
    assert "1 show no difference beyond the margin" in claim["reason"]


def test_spread_seeds_stay_inconclusive_and_say_why() -> None:
    ood = _ood({"B": {"rnd": [8.0, 9.0, 7.0], "ind": [8.2, 8.2, 8.2]}}, {"B": 0.9})
    cell = _claim(_data(ood), "ood_age")["cells"][0]
    assert cell["verdict"] == INCONCLUSIVE
    assert "not inside the margin ±0.5" in cell["reason"]


def test_significance_wins_over_equivalence() -> None:
    """Every seed favours IDB by 0.10-0.11 y with p < alpha: agrees (a small but consistent
    effect), although the interval is inside the margin."""
    ood = _ood({"B": {"rnd": [8.10, 8.12, 8.12], "ind": [8.00, 8.01, 8.02]}}, {"B": 0.5})
    assert _claim(_data(ood), "ood_age")["verdict"] == AGREES


def test_equivalence_matches_two_one_sided_t_tests() -> None:
    """The interval rule is the textbook TOST: equivalent iff both one-sided one-sample t
    tests (H0: mean <= -margin, H0: mean >= +margin) reject at alpha (SciPy)."""
    rng = np.random.default_rng(0)
    for _ in range(300):
        n = int(rng.integers(2, 7))
        differences = rng.normal(rng.normal(0, 0.3), rng.uniform(0.01, 0.5), n)
        margin = float(rng.uniform(0.1, 0.8))
        low = stats.ttest_1samp(differences, -margin, alternative="greater").pvalue
        high = stats.ttest_1samp(differences, margin, alternative="less").pvalue
        verdict, _, p_value = seed_verdict(list(differences), 0.05, margin)
        assert p_value == pytest.approx(stats.ttest_1samp(differences, 0).pvalue, rel=1e-12)
        assert (verdict == NO_DIFFERENCE) == (max(low, high) < 0.05 and p_value >= 0.05)
    lo, hi = equivalence_interval([1.0, 2.0, 3.0], 0.05)
    half = stats.t.ppf(0.95, 2) * 1.0 / np.sqrt(3)  # sd of 1, 2, 3 is 1
    assert (lo, hi) == pytest.approx((2.0 - half, 2.0 + half), rel=1e-12)


def test_overall_no_difference_is_decided_on_the_mean_over_cohorts() -> None:
    same = {"rnd": [8.00, 8.10, 8.05], "ind": [8.02, 8.08, 8.00]}
    ood = _ood({"B": same, "C": same}, {"B": 0.6, "C": 0.6})
    claim = _claim(_data(ood), "ood_age")
    assert claim["verdict"] == NO_DIFFERENCE
    # A third cohort whose seeds spread by 2 y widens the mean's interval past ±0.5 y.
    spread = {"rnd": [8.0, 9.0, 7.0], "ind": [8.2, 8.2, 8.2]}
    ood = _ood({"B": same, "C": same, "D": spread}, {"B": 0.6, "C": 0.6, "D": 0.9})
    claim = _claim(_data(ood), "ood_age")
    assert claim["verdict"] == INCONCLUSIVE
    assert "2 show no difference beyond the margin" in claim["reason"]


def test_margins_come_from_the_study() -> None:
    ood = _ood({"B": {"rnd": [8.00, 8.10, 8.05], "ind": [8.02, 8.08, 8.00]}}, {"B": 0.6})
    data = _data(ood)
    data.study = {"report": {"equivalence_margins": {"mae": 0.05}}}
    assert _claim(data, "ood_age")["verdict"] == INCONCLUSIVE
    with pytest.raises(CapeError, match=r"equivalence_margins\.mae must be a positive number"):
        ReportSettings.from_study({"report": {"equivalence_margins": {"mae": -1}}})
    assert ReportSettings.from_study(data.study).equivalence_margins == {"mae": 0.05, "auroc": 0.02}


def test_claims_table_ends_with_the_deciding_row() -> None:
    """The report's per-target table shows each target's difference and interval, then the
    mean over targets with the claim's own p and verdict (bug caught: a table whose rows
    all say 'inconclusive' under a claim that disagrees, with nothing showing why)."""
    from cape.report.tables import claims_table

    means = {
        "B": {"rnd": [8.0, 8.1, 8.3], "ind": [8.4, 8.4, 8.5]},
        "C": {"rnd": [7.0, 7.2, 7.1], "ind": [7.3, 7.5, 7.6]},
    }
    claims = claims_from_data(_data(_ood(means, {"B": 0.5, "C": 0.5})))
    table = claims_table(claims)
    age = table[table["task"].str.startswith("age")]
    assert list(age["target cohort"]) == ["B", "C", "mean over targets (the claim's verdict)"]
    (claim,) = [c for c in claims if c["id"] == "ood_age"]
    last = age.iloc[-1]
    assert f"p = {last['p']}" == format_p(claim["aggregate"]["p_value"])
    assert last["verdict"] == claim["verdict"]
    assert last["test"] == "t-test over 3 encoder seeds"
    per_seed = [np.mean([-0.4, -0.3]), np.mean([-0.3, -0.3]), np.mean([-0.2, -0.5])]
    low, high = equivalence_interval(per_seed, 0.05)
    assert last["difference, > 0 favours IDB [90% CI]"] == (
        f"{np.mean(per_seed):+.3f} [{low:+.3f}, {high:+.3f}]"
    )
