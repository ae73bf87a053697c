"""Can each test of a run reach alpha at all? The smallest p every test the report
relies on can give with the run's numbers (exact floors of the rank tests; 0 for the
t-tests over encoder seeds, whose limit is power, stated in the claims), as a table.

:mod:`cape.report.sanity` turns it into the fourth sanity check and the SMOKE TEST
headline of a run whose claim-1 test cannot reject whatever the data.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from cape.report.collect import RunData

DEFAULT_ALPHA = 0.05
POWER_COLUMNS = ("test", "used_for", "numbers", "cells", "floor", "alpha")


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
