"""Sanity checks: could these results be trusted at all? Computed from the saved results.

Each check is shown next to the verdicts; verdicts stay as computed. Status
``flag`` means the run holds a result that should make a reader stop,
``unclear`` that it could not be ruled out, ``clear`` that the check passed,
``not measured`` that its inputs were not saved.

1. **Trained encoders no better than untrained** (in distribution): the
   learning control of :mod:`cape.report.controls`, not recomputed: *flag* when
   a pretrained model fails it (no encoder seed beats the untrained encoder on
   the heads' own cohort), *unclear* when one is inconclusive.
2. **In-cohort ceiling below the OOD value it should bound**: a head trained
   on the target cohort itself, tested on the same ECGs, should do at least as
   well as a head trained elsewhere; *flag* when its mean is worse for any
   (model, target, task). The usual cause is a ceiling trained on too few ECGs.
3. **Raw signals identify cohorts far better than every encoder**: the
   ``signal-spectrum`` reference (log band powers of the stored signals, no
   encoder) against the best feature set (any model, seed, or the untrained
   encoder): *flag* when that encoder keeps less than
   :attr:`ReportSettings.signal_share` (default half) of the reference's
   cohort-identification accuracy above chance (the majority cohort's share),
   ``(best - chance) / (signal - chance)``. The encoders then discard the device
   information a cohort shortcut would need, and the claim that random
   batching clusters by cohort has little to show. Measured against chance so
   that one threshold serves 2 cohorts and 10.
4. **Too few heads for a test to reach alpha**: the smallest p each test can
   give with the run's numbers, against the protocol's alpha: claim 1's t-test
   over two or more encoder seeds can reach any p (floor 0; its power is in the
   claim's reason); with one seed per model, the exact two-sided Wilcoxon
   signed-rank test with n matched heads cannot go below 2 / 2^n; the exact one-sided Mann-Whitney test with n1 and n2 values not
   below 1 / C(n1 + n2, n1); Kruskal-Wallis (chi-square approximation, as
   computed) not below the p of perfectly separated groups. *flag* when a
   test's floor is at or above alpha: it cannot reject whatever the data.
   When no claim-1 test can, the run is a smoke test and cannot reach a verdict.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from cape.report.collect import RunData, for_training_cohort, training_cohorts
from cape.report.controls import FAILS, HIGHER_IS_BETTER, INCONCLUSIVE, PASSES
from cape.report.settings import ReportSettings

FLAG, UNCLEAR, CLEAR, NOT_MEASURED = "flag", "unclear", "clear", "not measured"
# The evaluate stage's raw-signal reference (cape.study.evaluation.SIGNAL_REFERENCE);
# not imported, so the report does not pull in the study runner.
SIGNAL_REFERENCE = "signal-spectrum"
SIGNAL_EXPLAINED = (
    "signal-spectrum is not an encoder: it is the log band powers (Welch, averaged over "
    "leads; bands from 0.3 to 200 Hz that separate baseline wander, the ECG's own band, "
    "low-pass filters and mains) of the stored signals' first 7 s, a reference for how "
    "much the raw signals say about the cohort before any network sees them"
)
DEFAULT_ALPHA = 0.05
_LISTED = 6  # cases named in a sentence; the tables hold the rest
POWER_COLUMNS = ("test", "used_for", "numbers", "cells", "floor", "alpha")


@dataclass
class SanityCheck:
    """One check: its title, status (``flag``/``unclear``/``clear``/``not measured``), detail."""

    check: str
    title: str
    status: str
    detail: str
    table: pd.DataFrame = field(default_factory=pd.DataFrame)


# --------------------------------------------------------------------- p-value floors
def wilcoxon_floor(n_pairs: int) -> float:
    """Smallest two-sided p of the exact Wilcoxon signed-rank test with ``n_pairs`` pairs.

    All differences of one sign: one arrangement of 2^n in each tail, so 2 / 2^n.
    """
    return 1.0 if n_pairs < 1 else min(1.0, 2.0 / 2.0**n_pairs)


def mann_whitney_floor(n_a: int, n_b: int, two_sided: bool = False) -> float:
    """Smallest p of the exact Mann-Whitney U test with samples of ``n_a`` and ``n_b``.

    Complete separation is one of the C(n_a + n_b, n_a) equally likely rankings.
    """
    if n_a < 1 or n_b < 1:
        return 1.0
    return min(1.0, (2.0 if two_sided else 1.0) / math.comb(n_a + n_b, n_a))


def kruskal_floor(sizes: list[int]) -> float:
    """Smallest Kruskal-Wallis p (chi-square approximation) with groups of ``sizes``.

    The largest H comes from groups holding consecutive blocks of ranks; the
    order of the blocks matters, so every order of distinct sizes is tried.
    """
    sizes = [int(s) for s in sizes if s > 0]
    if len(sizes) < 2:
        return 1.0
    total = sum(sizes)
    best = 0.0
    # Few models: every order of the blocks; many: sorted by size either way (near best).
    orders = (
        set(itertools.permutations(sizes))
        if len(sizes) <= 6
        else {tuple(sorted(sizes)), tuple(sorted(sizes, reverse=True))}
    )
    for order in orders:
        start, h = 0, 0.0
        for size in order:
            rank_sum = size * (2 * start + size + 1) / 2
            h += rank_sum**2 / size
            start += size
        h = 12.0 / (total * (total + 1)) * h - 3.0 * (total + 1)
        best = max(best, h)
    return float(stats.chi2.sf(best, len(sizes) - 1))


def _alpha(config: dict[str, Any]) -> float:
    return float((config.get("settings") or {}).get("alpha", DEFAULT_ALPHA))


def _matched_seeds(by_seed: pd.DataFrame, pair: tuple[str, str]) -> dict[tuple[str, str, str], int]:
    """Encoder seeds both compared models have, per (training cohort, target, task)."""
    needed = {"model", "encoder_seed", "setting", "test_cohort", "task"}
    if by_seed.empty or not needed <= set(by_seed.columns):
        return {}
    rows = by_seed[(by_seed["setting"] == "out-of-distribution") & by_seed["model"].isin(pair)]
    train = rows["train_cohort"] if "train_cohort" in rows else pd.Series("", index=rows.index)
    keys = pd.DataFrame(
        {
            "train": train.astype(str),
            "test": rows["test_cohort"].astype(str),
            "task": rows["task"].astype(str),
            "model": rows["model"].astype(str),
            "seed": rows["encoder_seed"],
        }
    )
    counts: dict[tuple[str, str, str], int] = {}
    for key, cell in keys.groupby(["train", "test", "task"]):
        per_model = [set(cell.loc[cell["model"] == m, "seed"]) for m in pair]
        counts[(str(key[0]), str(key[1]), str(key[2]))] = len(per_model[0] & per_model[1])
    return counts


def power_table(
    data: RunData, pair: tuple[str, str] | None, controls: pd.DataFrame
) -> pd.DataFrame:
    """One row per test the run relies on: numbers, smallest attainable p, alpha.

    ``controls`` is :func:`cape.report.controls.controls_from_data` of the run (its
    learning rows carry the numbers of heads they compared).
    """
    rows: list[dict[str, Any]] = []
    ood = data.ood
    seeds = _matched_seeds(ood.summary_by_seed, pair) if ood is not None and pair else {}
    if ood is not None and pair is not None:
        several = pd.Series({k: n for k, n in seeds.items() if n >= 2}, dtype=int)
        for n, cells in several.groupby(several):
            rows.append(
                {
                    "test": "Student t on per-seed differences, two-sided",
                    "used_for": f"claim 1: {pair[0]} vs {pair[1]} per target cohort",
                    "numbers": f"{int(n)} encoder seeds (each the mean of its head runs)",
                    "cells": len(cells),
                    "floor": 0.0,
                    "alpha": _alpha(ood.config),
                }
            )
    if ood is not None and pair is not None and not ood.tests.empty and "test" in ood.tests:
        tests = ood.tests
        wilcoxon = tests[
            (tests["test"] == "wilcoxon_signed_rank")
            & (tests["scope"] == "all")
            & (tests["setting"] == "out-of-distribution")
            & tests["model_a"].isin(pair)
            & tests["model_b"].isin(pair)
        ]
        # The heads' test decides claim 1 only where each model has a single encoder seed.
        cell_keys = zip(
            wilcoxon.get("train_cohort", pd.Series("", index=wilcoxon.index)).astype(str),
            wilcoxon["test_cohort"].astype(str),
            wilcoxon["task"].astype(str),
            strict=True,
        )
        wilcoxon = wilcoxon[[seeds.get(key, 1) < 2 for key in cell_keys]]
        for n, cells in wilcoxon.groupby(wilcoxon["n"].astype(int)):
            rows.append(
                {
                    "test": "Wilcoxon signed-rank, two-sided (exact)",
                    "used_for": f"claim 1: {pair[0]} vs {pair[1]} per target cohort",
                    "numbers": f"{int(n)} matched heads (one encoder seed x runs)",
                    "cells": len(cells),
                    "floor": wilcoxon_floor(int(n)),
                    "alpha": _alpha(ood.config),
                }
            )
    learning = controls[controls["control"] == "learning"] if len(controls) else controls
    if len(learning) and "n_seeds" in learning.columns:
        by_seeds = learning[learning["n_seeds"].fillna(0) >= 2]
        learning = learning[learning["n_seeds"].fillna(0) < 2]
        for (n_seeds, alpha), count in by_seeds.groupby(["n_seeds", "alpha"]).size().items():
            rows.append(
                {
                    "test": "Student t, one-sided, on per-seed differences from twins",
                    "used_for": "learning control: pretrained vs untrained, in distribution",
                    "numbers": f"{int(n_seeds)} encoder seeds with untrained twins",
                    "cells": int(count),
                    "floor": 0.0,
                    "alpha": float(alpha),
                }
            )
    if len(learning) and {"n_model", "n_untrained"} <= set(learning.columns):
        counts = learning.groupby(["n_model", "n_untrained", "alpha"]).size()
        for (n_model, n_base, alpha), count in counts.items():
            rows.append(
                {
                    "test": "Mann-Whitney U, one-sided (exact)",
                    "used_for": "learning control: pretrained vs untrained, in distribution",
                    "numbers": f"{int(n_model)} vs {int(n_base)} heads",
                    "cells": int(count),
                    "floor": mann_whitney_floor(int(n_model), int(n_base)),
                    "alpha": float(alpha),
                }
            )
    composition = data.composition
    if composition is not None and not composition.results.empty:
        results = composition.results
        results = results[(results["baseline"].fillna("") == "") & results["value"].notna()]
        group_sizes: dict[tuple[int, ...], int] = {}
        keys = ["setting", "test_cohort", "task"]
        for _, cell in results.groupby(keys):
            counts = tuple(sorted(cell.groupby("model").size().astype(int).tolist()))
            if len(counts) >= 2:
                group_sizes[counts] = group_sizes.get(counts, 0) + 1
        for counts, count in sorted(group_sizes.items()):
            rows.append(
                {
                    "test": "Kruskal-Wallis (chi-square approximation)",
                    "used_for": "composition matrix: across pretrained models",
                    "numbers": f"{len(counts)} models, {'/'.join(map(str, counts))} heads",
                    "cells": count,
                    "floor": kruskal_floor(list(counts)),
                    "alpha": _alpha(composition.config),
                }
            )
    return pd.DataFrame(rows, columns=list(POWER_COLUMNS))


# ----------------------------------------------------------------------------- checks
def _learning_check(controls: pd.DataFrame) -> SanityCheck:
    title = "Trained encoders better than the untrained encoder in distribution"
    rows = controls[controls["control"] == "learning"] if len(controls) else controls
    if rows.empty:
        return SanityCheck(
            "learning",
            title,
            NOT_MEASURED,
            "needs in-distribution (source) results of the "
            "pretrained models and the untrained encoder",
        )

    def names(verdict: str) -> str:
        picked = rows[rows["verdict"] == verdict]
        return ", ".join(f"{r.model} ({r.task})" for r in picked.itertuples(index=False))

    if (rows["verdict"] == FAILS).any():
        return SanityCheck(
            "learning",
            title,
            FLAG,
            f"not better than a random network in any encoder seed: {names(FAILS)} (learning "
            "control above); an OOD verdict about such features says little",
        )
    if (rows["verdict"] == INCONCLUSIVE).any():
        return SanityCheck(
            "learning",
            title,
            UNCLEAR,
            f"not shown better than the untrained encoder: {names(INCONCLUSIVE)} "
            "(learning control above)",
        )
    return SanityCheck("learning", title, CLEAR, f"every pretrained model passes: {names(PASSES)}")


def _ceiling_check(data: RunData) -> SanityCheck:
    title = "In-cohort ceilings at least as good as the OOD values they bound"
    result = data.ood
    summary = result.summary if result is not None else pd.DataFrame()
    if result is None or summary.empty or not (summary["setting"] == "in-cohort").any():
        return SanityCheck("ceiling", title, NOT_MEASURED, "no in-cohort ceiling was saved")
    worse, compared = [], 0
    trains = training_cohorts(result)
    tables = [for_training_cohort(result, t).summary for t in trains] if trains else [summary]
    for train, table in zip(trains or [""], tables, strict=True):
        ceilings = table[table["setting"] == "in-cohort"]
        ood = table[table["setting"] == "out-of-distribution"]
        merged = ood.merge(
            ceilings[["model", "test_cohort", "task", "mean", "se"]],
            on=["model", "test_cohort", "task"],
            suffixes=("", "_ceiling"),
        )
        for row in merged.itertuples(index=False):
            if pd.isna(row.mean) or pd.isna(row.mean_ceiling):
                continue
            compared += 1
            higher = str(row.metric) in HIGHER_IS_BETTER
            margin = (row.mean - row.mean_ceiling) * (1.0 if higher else -1.0)
            if margin > 0:
                digits = 3 if higher else 2
                worse.append(
                    f"{row.model}, {row.task} on {row.test_cohort}"
                    + (f" (heads from {train})" if len(trains) > 1 else "")
                    + f": ceiling {row.mean_ceiling:.{digits}f} vs OOD {row.mean:.{digits}f}"
                )
    if not compared:
        return SanityCheck("ceiling", title, NOT_MEASURED, "no OOD value has a ceiling beside it")
    if worse:
        return SanityCheck(
            "ceiling",
            title,
            FLAG,
            f"{len(worse)} of {compared} ceilings are worse than the OOD value: "
            + "; ".join(worse[:_LISTED])
            + (f"; and {len(worse) - _LISTED} more (Table 3)" if len(worse) > _LISTED else "")
            + ". A ceiling below the OOD head usually had too few ECGs to train on "
            "('ceiling smaller' in the OOD section's table of ECGs per head)",
        )
    return SanityCheck(
        "ceiling", title, CLEAR, f"all {compared} ceilings are at least as good as the OOD value"
    )


def _signal_check(data: RunData, share: float) -> SanityCheck:
    title = "Encoders keep the cohort information the raw signals carry"
    ident = data.identifiability
    if ident is None or ident.empty:
        return SanityCheck("signal", title, NOT_MEASURED, "no identifiability results")
    cohort = ident[(ident["by"] == "cohort") & ident["accuracy"].notna()]
    is_signal = (cohort["model"] == SIGNAL_REFERENCE) | (cohort["baseline"] == "signal")
    signal, encoders = cohort[is_signal], cohort[~is_signal]
    if signal.empty or encoders.empty:
        return SanityCheck(
            "signal", title, NOT_MEASURED, f"no {SIGNAL_REFERENCE} reference beside the encoders"
        )
    reference = float(signal["accuracy"].max())
    best = encoders.loc[encoders["accuracy"].astype(float).idxmax()]
    chance = float(cohort["chance_majority"].max()) if "chance_majority" in cohort else math.nan
    seed = int(best["encoder_seed"]) if pd.notna(best["encoder_seed"]) else 0
    text = (
        f"cohort-identification accuracy: {SIGNAL_REFERENCE} {reference:.3f}, the best encoder "
        f"{float(best['accuracy']):.3f} ({best['model']}, seed {seed}), chance {chance:.3f}"
    )
    if not math.isfinite(chance):
        return SanityCheck("signal", title, NOT_MEASURED, f"{text}: no chance level saved")
    if reference <= chance:
        return SanityCheck(
            "signal", title, CLEAR, f"{text}: the raw signals do not identify the cohort either"
        )
    kept = (float(best["accuracy"]) - chance) / (reference - chance)
    text += f": the best encoder keeps {kept:.0%} of the raw signals' accuracy above chance"
    if kept < share:
        return SanityCheck(
            "signal",
            title,
            FLAG,
            f"{text}, less than {share:.0%} (report.signal_share): the encoders discard most "
            "of the cohort (device) information in the stored signals, so there is little "
            "shortcut for random batching to learn and for IDB to remove",
        )
    return SanityCheck("signal", title, CLEAR, f"{text} (at least {share:.0%})")


def _power_check(table: pd.DataFrame) -> SanityCheck:
    title = "Enough heads for each test to reach alpha"
    if table.empty:
        return SanityCheck("power", title, NOT_MEASURED, "no saved test to check")
    blocked = table[table["floor"] >= table["alpha"]]
    parts = [
        f"{row.test} for {row.used_for} with {row.numbers}: smallest p {row.floor:.3g}"
        for row in blocked.itertuples(index=False)
    ]
    if parts:
        return SanityCheck(
            "power",
            title,
            FLAG,
            "; ".join(parts) + " — at or above alpha, so these tests cannot reject whatever "
            "the data; add runs or encoder seeds",
            table,
        )
    return SanityCheck(
        "power",
        title,
        CLEAR,
        f"every test can reach alpha (largest floor {table['floor'].max():.3g})",
        table,
    )


def cannot_reach_verdict(table: pd.DataFrame) -> str | None:
    """A sentence when no claim-1 test can reach alpha (a smoke test), else None."""
    if table.empty:
        return None
    claim = table[table["used_for"].str.startswith("claim 1")]
    if claim.empty or not (claim["floor"] >= claim["alpha"]).all():
        return None
    floor, alpha = float(claim["floor"].min()), float(claim["alpha"].iloc[0])
    return (
        f"SMOKE TEST: with {claim['numbers'].iloc[0]} the paired test of claim 1 cannot give "
        f"p below {floor:.3g} (alpha {alpha:g}), so this run exercises the pipeline but "
        "cannot reach a verdict on the paper's claims"
    )


def sanity_from_data(
    data: RunData,
    pair: tuple[str, str] | None,
    controls: pd.DataFrame,
    settings: ReportSettings | None = None,
) -> list[SanityCheck]:
    """The four sanity checks of a run (module docstring), in order.

    Args:
        data: the collected run.
        pair: ``(random_model, idb_model)`` of the claims, or None.
        controls: :func:`cape.report.controls.controls_from_data` of the run (reused,
            not recomputed).
        settings: thresholds; defaults when None.
    """
    settings = settings or ReportSettings()
    return [
        _learning_check(controls),
        _ceiling_check(data),
        _signal_check(data, settings.signal_share),
        _power_check(power_table(data, pair, controls)),
    ]


def sanity_lines(checks: list[SanityCheck]) -> list[str]:
    """One sentence per check, for the report and the console."""
    return [f"{c.title}: {c.status.upper()} — {c.detail}." for c in checks]


def power_display(table: pd.DataFrame) -> pd.DataFrame:
    """The power table with display strings (``can reach alpha`` yes/no)."""
    if table.empty:
        return table
    return pd.DataFrame(
        {
            "test": table["test"],
            "used for": table["used_for"],
            "numbers": table["numbers"],
            "cells": table["cells"].astype(int).astype(str),
            "smallest possible p": [f"{v:.3g}" for v in table["floor"]],
            "alpha": [f"{v:g}" for v in table["alpha"]],
            "can reach alpha": np.where(table["floor"] < table["alpha"], "yes", "NO"),
        }
    )


def summarise_sanity(run_dir: Any, settings: ReportSettings | None = None) -> list[str]:
    """The sanity sentences of a run directory (what ``cape demo`` prints), smoke test first."""
    from cape.report.claims import compared_models
    from cape.report.collect import collect
    from cape.report.controls import UNTRAINED, controls_from_data

    data = collect(run_dir)
    pair = compared_models(data)
    pretrained = [m for m in data.model_order() if m != UNTRAINED]
    controls = controls_from_data(data, pair[0] if pair else None, pretrained)
    settings = settings or ReportSettings.from_study(data.study)
    checks = sanity_from_data(data, pair, controls, settings)
    headline = cannot_reach_verdict(power_table(data, pair, controls))
    return ([f"{headline}."] if headline else []) + sanity_lines(checks)
