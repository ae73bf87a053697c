"""The report's means over cohorts, head-input statement and simulated-cohorts section."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from cape.protocols import across_cohorts, read_results
from cape.report import simulation_summary
from cape.report.means import MEAN_ROW, add_ood_mean_row, composition_mean_table
from cape.report.results_sections import head_scaling_text


def test_report_states_means_scaling_and_simulation(full_run: Path, full_report: Path) -> None:
    markdown = (full_report / "report.md").read_text()
    assert "Mean over the labelled cohorts (Fig. 2 aggregate)" in markdown
    assert MEAN_ROW in markdown
    assert "Head inputs: plain z-scoring" in markdown
    assert "Target ECGs:" in markdown
    # The fake study simulates its cohorts: the report says what that measures, first.
    assert "SIMULATED" in markdown.split("## Cohorts")[0]
    assert "Injected age and sex effects" in markdown and "Devices and their artefacts" in markdown
    assert "visits" in markdown


def test_mean_row_and_composition_table_show_the_saved_aggregate(full_run: Path) -> None:
    ood = read_results(full_run / "evaluation" / "ood")
    aggregate = ood.aggregate
    assert len(aggregate)
    pd.testing.assert_frame_equal(
        aggregate.reset_index(drop=True),
        across_cohorts(ood.results, ood.config["settings"]["compare"]).reset_index(drop=True),
        check_dtype=False,
    )
    task = str(aggregate["task"].iloc[0])
    model = str(aggregate.loc[aggregate["setting"] == "out-of-distribution", "model"].iloc[0])
    table = pd.DataFrame({model: ["x"], "p Wilcoxon": ["y"]}, index=pd.Index(["b"], name="t"))
    out = add_ood_mean_row(table, aggregate, task, None)
    row = aggregate[
        (aggregate["setting"] == "out-of-distribution")
        & (aggregate["model"] == model)
        & (aggregate["task"] == task)
    ].iloc[0]
    digits = 2 if row["metric"] == "mae" else 3
    assert out.iloc[-1][model] == f"{row['mean']:.{digits}f} ({row['se']:.{digits}f})"
    assert out.index[-1].startswith(MEAN_ROW)
    comp = read_results(full_run / "evaluation" / "composition")
    frame = composition_mean_table(comp.aggregate, ["age"])
    assert "age: p Kruskal–Wallis" in frame.columns and len(frame) >= 2


def test_head_scaling_text_names_the_standardisation() -> None:
    plain = {"settings": {"head": {"std_floor": 0.0, "age_target": "age-sigmoid"}}}
    assert "plain z-scoring" in head_scaling_text(plain)
    assert "(age − 7) / 100" in head_scaling_text(plain)
    floored = {"settings": {"head": {"std_floor": 0.1, "hidden_grid": [32, 64]}}}
    assert "floored at 0.1" in head_scaling_text(floored)
    assert "[32, 64]" in head_scaling_text(floored)
    assert "not recorded" in head_scaling_text({"settings": {"head": {"kind": "mlp"}}})


@pytest.mark.parametrize(
    ("study", "expected"),
    [
        (
            {"simulate": {"preset": "demo", "age_effect_scale": 2.5, "artefact_strength": 0.5}},
            ["SIMULATED", "age effects x2.5", "strength 0.5", "5 cohorts"],
        ),
        ({"cohorts": [{"name": "a", "format": "wfdb", "source": "/x", "mains": 50}]}, []),
    ],
)
def test_simulation_summary_for_the_console(tmp_path: Path, study, expected) -> None:
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(study))
    text = " ".join(simulation_summary(tmp_path))
    for phrase in expected:
        assert phrase in text
    if not expected:
        assert text == ""
