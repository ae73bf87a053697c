"""The 2-D sweep (regime map): cells, summary rows and heat maps from saved sub-study results."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from cape.errors import CapeError
from cape.study.config import SweepSection
from cape.study.sweep import cell_label, summarise_sweep, sweep_cells, write_sweep_report

KEYS = ["simulate.artefact_strength", "simulate.visit_variability"]


def _sub_study(run: Path, strength: float, visits: float) -> Path:
    """Saved results whose numbers are known functions of the cell."""
    evaluation = run / "evaluation"
    (evaluation / "ood").mkdir(parents=True)
    rows = []
    for seed in (0, 1):
        for model, mae in (("random", 10 + strength), ("idb", 10.0), ("untrained", 12.0)):
            rows.append(("source", model, seed, "harbor", 8.0 if model != "untrained" else 9.0))
            for cohort in ("jade", "serra"):
                rows.append(("out-of-distribution", model, seed, cohort, mae + seed))
    pd.DataFrame(rows, columns=["setting", "model", "encoder_seed", "test_cohort", "mean"]).assign(
        task="age", metric="mae"
    ).to_parquet(evaluation / "ood" / "summary_by_seed.parquet")
    pd.DataFrame(
        {
            "test": "wilcoxon_signed_rank",
            "scope": "all",
            "setting": "out-of-distribution",
            "task": "age",
            "metric": "mae",
            "test_cohort": ["jade", "serra"],
            "p_value": [0.01, 0.2],
            "estimate": strength,
        }
    ).to_parquet(evaluation / "ood" / "tests.parquet")
    ident = [
        ("random", 0, 0.3 + 0.1 * strength),
        ("idb", 0, 0.3),
        ("untrained", 0, 0.35),
        ("signal-spectrum", 0, 0.9),
    ]
    pd.DataFrame(ident, columns=["model", "encoder_seed", "accuracy"]).assign(
        target="cohort", chance_majority=0.25
    ).to_parquet(evaluation / "identifiability.parquet")
    pd.DataFrame(
        {
            "model": ["random", "idb", "untrained"],
            "encoder_seed": 0,
            "top1_mixed": 0.9 - 0.1 * visits,
            "gap": [0.05 * strength * visits, 0.0, 0.0],
        }
    ).to_parquet(evaluation / "retrieval.parquet")
    return run


def test_cells_of_one_axis_and_of_a_grid() -> None:
    one = SweepSection(key=KEYS[0], values=[0, 1])
    assert sweep_cells(one) == ([KEYS[0]], [{KEYS[0]: 0}, {KEYS[0]: 1}])
    grid = SweepSection.model_validate(
        {"key": KEYS[0], "values": [0, 4], "by": {"key": KEYS[1], "values": [1, 3]}}
    )
    keys, cells = sweep_cells(grid)
    assert keys == KEYS and len(cells) == 4
    assert cell_label(cells[1]) == "artefact_strength=0,visit_variability=3"
    same = SweepSection.model_validate(
        {"key": KEYS[0], "values": [0], "by": {"key": KEYS[0], "values": [1]}}
    )
    with pytest.raises(CapeError, match="must differ"):
        sweep_cells(same)


def test_grid_summary_and_heat_maps(tmp_path: Path) -> None:
    runs = [
        ({KEYS[0]: s, KEYS[1]: v}, _sub_study(tmp_path / f"{s}-{v}", s, v))
        for s in (0.0, 4.0)
        for v in (1.0, 3.0)
    ]
    summary = summarise_sweep(runs, ("random", "idb"))
    gap = summary[summary["quantity"] == "ood_gap_age_mae"]
    # random minus idb = strength (both seeds, both cohorts): positive = IDB better.
    assert sorted(gap[gap[KEYS[0]] == 4.0]["value"].unique()) == [4.0]
    assert sorted(gap[gap[KEYS[0]] == 0.0]["value"].unique()) == [0.0]
    retrieval = summary[(summary["quantity"] == "retrieval_gap") & (summary["model"] == "random")]
    cell = retrieval[(retrieval[KEYS[0]] == 4.0) & (retrieval[KEYS[1]] == 3.0)]
    assert cell["value"].tolist() == [pytest.approx(0.6)]
    source = summary[summary["quantity"] == "in_distribution_age_mae"]
    assert set(source["model"]) == {"random", "idb", "untrained"}
    assert {"ood_wilcoxon_p_age_mae", "cohort_identifiability"} <= set(summary["quantity"])
    assert "signal-spectrum" in set(summary["model"])
    directory = write_sweep_report(tmp_path / "out", KEYS, runs, ("random", "idb"))
    assert (directory / "sweep.png").stat().st_size > 20_000  # many annotated panels
    markdown = (directory / "sweep.md").read_text()
    assert "`simulate.artefact_strength` x `simulate.visit_variability`" in markdown
    table = pd.read_csv(directory / "summary.csv")
    assert set(KEYS) <= set(table.columns)
