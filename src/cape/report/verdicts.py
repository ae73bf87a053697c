"""The statistics behind the verdicts: the encoder seed is the unit.

Every comparison of pretrained models reduces each encoder seed to one number (its
mean over head runs) and tests those numbers, paired by seed: head runs of one
encoder share its pretraining and are not replicates of it. With the seed-to-seed
spread measured in the demo, a test over heads plus "every seed agrees" called an
effect in ~19% of three-seed null runs; these tests keep alpha at any number of seeds
(tests/report/test_claims.py). Used by :mod:`cape.report.claims` (claims 1 and 2) and
:mod:`cape.report.controls` (the learning controls); the rules in words are in
docs/report.md, "What this run says".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import optimize, stats

from cape.stats.intervals import mean_se_ci

AGREES, DISAGREES, INCONCLUSIVE, NOT_MEASURED, NO_DIFFERENCE = (
    "agrees",
    "disagrees",
    "inconclusive",
    "not measured",
    "no difference",
)


def format_p(p_value: float | None) -> str:
    """``p = 0.012``, ``p < 0.001`` or ``p n/a``."""
    if p_value is None or not math.isfinite(p_value):
        return "p n/a"
    return "p < 0.001" if p_value < 0.001 else f"p = {p_value:.3f}"


def equivalence_interval(
    differences: Sequence[float] | np.ndarray, alpha: float
) -> tuple[float, float]:
    """The ``1 - 2 alpha`` Student-t interval of the mean of ``differences`` (the interval
    of two one-sided tests at ``alpha``); NaNs with fewer than two values."""
    if len(differences) < 2:
        return math.nan, math.nan
    interval = mean_se_ci(np.asarray(differences, dtype=float), confidence=1.0 - 2.0 * alpha)
    return interval["low"], interval["high"]


def _equivalence(
    differences: Sequence[float] | np.ndarray, alpha: float, margin: float | None, digits: int
) -> tuple[bool, str]:
    """Whether the per-seed differences are equivalent to 0 within ``margin``, and why."""
    if margin is None:
        return False, ""
    low, high = equivalence_interval(differences, alpha)
    if not math.isfinite(low):
        return False, ""
    inside = -margin < low and high < margin
    text = (
        f"per-seed differences' {1 - 2 * alpha:.0%} interval [{low:+.{digits}f}, "
        f"{high:+.{digits}f}] {'inside' if inside else 'not inside'} the margin "
        f"±{margin:g}"
    )
    return inside, text


def seed_test(differences: Sequence[float] | np.ndarray, alternative: str = "two-sided") -> float:
    """p of the one-sample t-test that the per-seed differences have mean 0 (against
    ``alternative``: ``two-sided`` or ``greater``); NaN with fewer than two seeds.

    Differences that do not vary (equal up to rounding: one value computed several
    ways) have no t statistic; their p is 0 when their mean lies on the alternative's
    side of 0 and 1 otherwise.
    """
    values = np.asarray(differences, dtype=float)
    if values.size < 2:
        return math.nan
    mean = float(values.mean())
    if not np.ptp(values) > 1e-12 * max(1.0, float(np.abs(values).max())):
        shifted = mean > 0 if alternative == "greater" else mean != 0
        return 0.0 if shifted else 1.0
    return float(stats.ttest_1samp(values, 0.0, alternative=alternative).pvalue)


def detectable_difference(
    differences: Sequence[float] | np.ndarray, alpha: float, power: float = 0.8
) -> float:
    """The mean difference a two-sided one-sample t-test over this many seeds finds with
    ``power``, taking the seeds' sample SD as the true spread (noncentral t, exact)."""
    values = np.asarray(differences, dtype=float)
    sd = float(values.std(ddof=1)) if values.size >= 2 else math.nan
    if not sd > 0:
        return math.nan
    df, n = values.size - 1, values.size
    critical = stats.t.ppf(1.0 - alpha / 2.0, df)

    def shortfall(effect: float) -> float:
        shift = effect * math.sqrt(n) / sd
        # The lower tail is below P(T < 0) = Phi(-shift); SciPy gives NaN where it
        # underflows (shift of 20 and more), and it is 0 to double precision there.
        lower = float(stats.nct.cdf(-critical, df, shift))
        return float(stats.nct.sf(critical, df, shift)) + (0.0 if math.isnan(lower) else lower)

    high = sd
    while shortfall(high) < power:
        high *= 2.0
    return float(optimize.brentq(lambda e: shortfall(e) - power, 0.0, high, xtol=1e-10 * sd))


def seed_verdict(
    differences: Sequence[float],
    alpha: float,
    margin: float | None = None,
    digits: int = 3,
    heads_p: float | None = None,
    n_pairs: int | None = None,
) -> tuple[str, str, float | None]:
    """``(verdict, reason, p)`` of one comparison from the per-seed differences.

    ``differences`` are per-seed (IDB better) margins: positive favours IDB.
    ``margin``: the equivalence margin (None: no "no difference" verdict).
    ``heads_p``/``n_pairs``: the saved Wilcoxon test over matched heads, used only
    when there is a single encoder seed.
    """
    if len(differences) < 2:
        verdict, reason = _heads_verdict(heads_p, differences, alpha, n_pairs)
        return verdict, reason, heads_p
    values = np.asarray(differences, dtype=float)
    mean, n = float(values.mean()), values.size
    favour_idb = int((values > 0).sum())
    p_value = seed_test(values)
    head = (
        f"t-test over {n} encoder seeds {format_p(p_value)}, mean difference "
        f"{mean:+.{digits}f} ({favour_idb} of {n} seeds favour IDB)"
    )
    if p_value < alpha:
        return (AGREES if mean > 0 else DISAGREES), head, p_value
    equivalent, text = _equivalence(values, alpha, margin, digits)
    if equivalent:
        return NO_DIFFERENCE, f"{head}; {text} (two one-sided tests at {alpha:g})", p_value
    detectable = detectable_difference(values, alpha)
    reason = head + (f"; {text}" if text else "")
    if math.isfinite(detectable):
        reason += (
            f"; at this seed spread {n} seeds detect a mean difference of about "
            f"{detectable:.{digits}f} (80% power)"
        )
    return INCONCLUSIVE, reason, p_value


def _heads_verdict(
    p_value: float | None, differences: Sequence[float], alpha: float, n_pairs: int | None
) -> tuple[str, str]:
    """One encoder seed: the paired Wilcoxon test over head runs, in the seed's direction."""
    if p_value is None:
        return INCONCLUSIVE, "no paired random-vs-IDB test saved (set evaluate.ood.compare)"
    if p_value >= alpha:
        reason = f"Wilcoxon over heads {format_p(p_value)} >= {alpha:g}"
        # The exact two-sided signed-rank test cannot go below 2 / 2**n with n pairs.
        if n_pairs is not None and 2.0 ** (1 - n_pairs) >= alpha:
            reason += (
                f"; with {n_pairs} matched heads the smallest possible Wilcoxon p is "
                f"{2.0 ** (1 - n_pairs):.3g}: add runs or encoder seeds"
            )
        return INCONCLUSIVE, reason
    if differences and all(d > 0 for d in differences):
        return AGREES, f"Wilcoxon over heads {format_p(p_value)}; the encoder seed favours IDB"
    if differences and all(d < 0 for d in differences):
        return DISAGREES, (
            f"Wilcoxon over heads {format_p(p_value)}; the encoder seed favours random batching"
        )
    return INCONCLUSIVE, f"Wilcoxon over heads {format_p(p_value)} but no difference in means"


def _tally(cells: list[dict[str, Any]]) -> str:
    verdicts = [c["verdict"] for c in cells]
    n = len(verdicts)
    tally = (
        f"{verdicts.count(AGREES)} of {n} target cohorts agree, "
        f"{verdicts.count(DISAGREES)} disagree"
    )
    if verdicts.count(NO_DIFFERENCE):
        tally += f", {verdicts.count(NO_DIFFERENCE)} show no difference beyond the margin"
    return tally


def _overall_single_seed(cells: list[dict[str, Any]]) -> tuple[str, str]:
    """One encoder seed: more than half of the target cohorts, none against."""
    verdicts = [c["verdict"] for c in cells]
    n = len(verdicts)
    agree, disagree = verdicts.count(AGREES), verdicts.count(DISAGREES)
    tally = _tally(cells)
    hints = {c["reason"].split("; ", 1)[1] for c in cells if "smallest possible" in c["reason"]}
    if hints:
        tally += "; " + sorted(hints)[0]
    if agree > n / 2 and disagree == 0:
        return AGREES, tally
    if disagree > n / 2 and agree == 0:
        return DISAGREES, tally
    return INCONCLUSIVE, tally


def overall_verdict(
    cells: list[dict[str, Any]],
    per_seed: dict[int, list[float]],
    alpha: float,
    margin: float | None,
    digits: int,
) -> tuple[str, str, dict[str, Any]]:
    """The claim's verdict: the seed-level rule on each seed's mean over target cohorts."""
    complete = {s: v for s, v in per_seed.items() if len(v) == len(cells)}
    if len(complete) < 2:
        verdict, reason = _overall_single_seed(cells)
        return verdict, reason, {}
    seeds = sorted(complete)
    differences = [float(np.mean(complete[s])) for s in seeds]
    verdict, reason, p_value = seed_verdict(differences, alpha, margin, digits)
    low, high = equivalence_interval(differences, alpha)
    aggregate = {
        "encoder_seeds": seeds,
        "differences": differences,
        "mean_difference": float(np.mean(differences)),
        "p_value": p_value,
        "interval_low": low,
        "interval_high": high,
    }
    return verdict, f"mean over {len(cells)} target cohorts: {reason}; {_tally(cells)}", aggregate
