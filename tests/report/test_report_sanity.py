"""The sanity checks and small cells in the whole report of the fake run (real protocols)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from cape.report.markdown import escape
from cape.report.power import wilcoxon_floor
from cape.report.sanity import summarise_sanity
from cape.report.settings import ReportSettings

from .conftest import MIN_CELL_N

pytestmark = pytest.mark.slow  # uses the session's fake run (~30 s to build)


def test_sanity_lines_beside_the_verdicts_and_in_the_console(
    full_run: Path, full_report: Path
) -> None:
    """Bug caught: the console (cape demo) and the report saying different things."""
    markdown = (full_report / "report.md").read_text()
    summary = markdown.split("## Simulated cohorts")[0]
    lines = summarise_sanity(full_run)
    assert len(lines) == 4  # no smoke-test headline: a t-test over 2 seeds can reach any p
    for line in lines:
        assert escape(line) in summary
    assert "SMOKE TEST" not in markdown
    # Claim 1 is tested over the 2 encoder seeds, not the 6 matched heads.
    assert "2 encoder seeds (each the mean of its head runs) | 4 | 0 | 0.05 | yes |" in summary
    tests = pd.read_parquet(full_run / "evaluation" / "ood" / "tests.parquet")
    n = int(tests[(tests["test"] == "wilcoxon_signed_rank") & (tests["scope"] == "all")]["n"].max())
    assert n == 6 and f"| {wilcoxon_floor(n):.3g} | 0.05 | yes |" not in summary


def test_subgroup_rows_respect_the_threshold(full_run: Path, full_report: Path) -> None:
    """Bug caught: rows under the report's min_cell_n shown in the subgroup table."""
    markdown = (full_report / "report.md").read_text()
    table = markdown.split("Out-of-distribution metric per subgroup")[1].split("\n\n")[1]
    rows = [line.split(" | ") for line in table.splitlines()[2:]]
    n_column = table.splitlines()[0].split(" | ").index("n")
    assert rows and all(int(row[n_column]) >= MIN_CELL_N for row in rows)
    subgroups = pd.read_parquet(full_run / "evaluation" / "ood" / "subgroups.parquet")
    assert (subgroups["n"] < MIN_CELL_N).any()  # the threshold had something to remove
    assert "subgroup rows with fewer than 3 test ECGs per head are suppressed" in markdown
    assert ReportSettings.from_study({}).min_cell_n == 20  # the default, for real reports
