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

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from cape.report.collect import RunData, for_training_cohort, training_cohorts
from cape.report.controls import FAILS, HIGHER_IS_BETTER, INCONCLUSIVE, PASSES
from cape.report.power import cannot_reach_verdict, power_table
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
_LISTED = 6  # cases named in a sentence; the tables hold the rest


@dataclass
class SanityCheck:
    """One check: its title, status (``flag``/``unclear``/``clear``/``not measured``), detail."""

    check: str
    title: str
    status: str
    detail: str
    table: pd.DataFrame = field(default_factory=pd.DataFrame)


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
