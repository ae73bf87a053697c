"""Small-cell suppression, the MAE-per-age-bin figure, t-SNE colours and Table 1's statistic."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_hex

from cape.protocols.results import ProtocolResult
from cape.report.embedding import Embedding, category_colours, marker_size, tsne_figure
from cape.report.figures import cohort_colours, mae_per_age_bin, model_colours
from cape.report.ood_tables import subgroup_summary
from cape.report.tables import cohort_table

EMPTY = pd.DataFrame()


def _subgroups(counts: dict[tuple[str, str], int], runs: int = 2) -> pd.DataFrame:
    """Age-bin subgroup rows of two models: ``counts[(cohort, bin)]`` ECGs per head."""
    rows = []
    for (cohort, group), n in counts.items():
        setting = "source" if cohort == "A" else "out-of-distribution"
        for model in ("rnd", "ind"):
            for run in range(runs):
                rows.append(
                    {
                        "model": model,
                        "baseline": "",
                        "encoder_seed": 0,
                        "setting": setting,
                        "train_cohort": "A",
                        "test_cohort": cohort,
                        "task": "age",
                        "run": run,
                        "metric": "mae",
                        "variable": "age_bin",
                        "group": group,
                        "n": n,
                        "value": 5.0 + run + (model == "ind"),
                        "note": "",
                    }
                )
    return pd.DataFrame(rows)


def _result(subgroups: pd.DataFrame) -> ProtocolResult:
    return ProtocolResult(EMPTY, EMPTY, EMPTY, EMPTY, EMPTY, EMPTY, subgroups=subgroups)


def test_subgroup_rows_below_min_n_are_suppressed_and_counted() -> None:
    """Bug caught: a 3-ECG group shown with its metric, or dropped without saying so."""
    result = _result(_subgroups({("B", "40-49"): 25, ("B", "50-59"): 3, ("C", "40-49"): 20}))
    rows = subgroup_summary(result, ["rnd", "ind"], min_n=20)
    assert rows.suppressed == 1 and rows.omitted == 0
    shown = rows.table.reset_index()
    assert list(zip(shown["test cohort"], shown["group"], strict=True)) == [
        ("B", "40-49"),
        ("C", "40-49"),
    ]
    assert shown["n"].tolist() == ["25", "20"]  # every row shows n ...
    assert shown["rnd"].tolist() == ["5.50", "5.50"]  # ... and the metric (mean of 5 and 6)
    assert shown["ind"].tolist() == ["6.50", "6.50"]
    lower = subgroup_summary(result, ["rnd", "ind"], min_n=3)
    assert lower.suppressed == 0 and len(lower.table) == 3
    none = subgroup_summary(result, ["rnd", "ind"], min_n=26)
    assert none.table.empty and none.suppressed == 3


def test_mae_per_age_bin_shows_n_drops_small_bins_and_empty_panels() -> None:
    """Bugs caught: empty panels, bins the table suppressed drawn anyway, legend on the data."""
    result = _result(
        _subgroups(
            {
                ("A", "40-49"): 30,
                ("A", "50-59"): 5,
                ("A", "60-69"): 40,
                ("B", "40-49"): 4,  # B has no bin of 20: no panel
                ("C", "70-79"): 22,
            }
        )
    )
    colours = model_colours(["rnd", "ind"])
    figure, dropped = mae_per_age_bin(
        result, ["rnd", "ind"], colours, cohort_colours(["A", "B", "C"]), min_n=20
    )
    assert figure is not None and dropped == ["B"]
    axes = [ax for ax in figure.axes if ax.get_visible()]
    assert [ax.get_title().split(" ")[0] for ax in axes] == ["A", "C"]
    ticks = [t.get_text() for t in axes[0].get_xticklabels()]
    assert ticks == ["40-49\nn=30", "50-59\nn<20", "60-69\nn=40"]
    for line in axes[0].get_lines():
        y = np.asarray(line.get_ydata(), dtype=float)
        if y.size == 3:  # the suppressed bin holds no value: the line breaks there
            assert np.isnan(y[1]) and np.isfinite(y[[0, 2]]).all()
    assert all(ax.get_legend() is None for ax in axes)  # the legend is the figure's
    assert len(figure.legends) == 1
    figure_none, dropped_all = mae_per_age_bin(
        result, ["rnd", "ind"], colours, cohort_colours(["A", "B", "C"]), min_n=100
    )
    assert figure_none is None and dropped_all == ["A", "B", "C"]


def test_tsne_panels_have_distinct_palettes_and_visible_markers() -> None:
    """Bug caught: device and ethnicity panels sharing one palette ("device 1" = "group 1")."""
    names = [f"v{k}" for k in range(6)]
    cohorts = cohort_colours(names)
    device = category_colours(names, "device")
    ethnicity = category_colours(names, "ethnicity")
    sets = [{palette[n] for n in names} for palette in (cohorts, device, ethnicity)]
    assert all(len(s) == 6 for s in sets)
    assert not (sets[0] & sets[1]) and not (sets[0] & sets[2]) and not (sets[1] & sets[2])
    assert "#ffff33" not in ethnicity.values()
    assert marker_size(1_000) == pytest.approx(20.0)
    assert marker_size(50_000) == 4.0 and marker_size(10) == 25.0
    n = 60
    labels = pd.DataFrame(
        {
            "cohort": np.repeat(["a", "b", "c"], 20),
            "device": np.tile(["d1", "d2"], 30),
            "ethnicity": np.tile(["e1", "e2", "unknown"], 20),
        }
    )
    embedding = Embedding(None, np.random.default_rng(0).normal(size=(n, 2)), labels)  # type: ignore[arg-type]
    figure = tsne_figure(embedding, cohort_colours(["a", "b", "c"]), "title $x")
    colours = []
    for ax in figure.axes:
        colours.append({to_hex(c.get_facecolor()[0]) for c in ax.collections})
        assert all(c.get_sizes()[0] >= 4.0 for c in ax.collections)
    assert not (colours[0] & colours[1]) and not (colours[1] & (colours[2] - {"#d0d0d0"}))


def test_table_one_uses_median_and_iqr_throughout() -> None:
    """Bug caught: a mean beside an IQR (two statistics in one cell)."""
    manifest = pd.DataFrame(
        {
            "cohort": ["a"] * 6 + ["b"] * 2,
            "patient_id": ["p1", "p1", "p1", "p2", "p3", "p3", "q1", "q2"],
            "age": [20.0, 30.0, 40.0, 50.0, 60.0, 100.0, 70.0, np.nan],
            "sex": ["M"] * 8,
        }
    )
    table = cohort_table(manifest)
    rows = [r for r in table.index if "[IQR]" in r or "mean" in r]
    assert rows == ["ECGs per patient, median [IQR]", "age (years), median [IQR]"]
    ages = pd.Series([20.0, 30.0, 40.0, 50.0, 60.0, 100.0])
    q1, med, q3 = ages.quantile([0.25, 0.5, 0.75])
    assert table.loc["age (years), median [IQR]", "a"] == f"{med:.1f} [{q1:.1f}–{q3:.1f}]"
    assert table.loc["age (years), median [IQR]", "b"] == "70.0 [70.0–70.0]"
    # a: patients with 3, 1 and 2 ECGs -> median 2 [1.5-2.5]
    assert table.loc["ECGs per patient, median [IQR]", "a"] == "2.0 [1.5–2.5]"
