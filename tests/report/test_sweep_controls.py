"""A sweep's summary carries every cell's positive controls (cape.study.sweep)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from cape.report.collect import collect
from cape.report.controls import control_lines, controls_from_data
from cape.study.evaluation import RETRIEVAL_FILE
from cape.study.sweep import sweep_controls, write_sweep_report

KEY = "pretrain.settings.epochs"


def test_each_cell_gets_its_own_controls_in_csv_and_markdown(
    full_run: Path, tmp_path: Path
) -> None:
    """Mutation: controls computed once (or for the wrong model) instead of per cell."""
    # Cell 8 is the fake run; cell 4 is the same run without its retrieval results, so
    # its shortcut control cannot be measured while its learning control still is.
    partial = tmp_path / "partial"
    shutil.copytree(full_run, partial, ignore=shutil.ignore_patterns("report"))
    (partial / "evaluation" / RETRIEVAL_FILE).unlink()
    runs = [({KEY: 4}, partial), ({KEY: 8}, full_run)]

    expected = controls_from_data(collect(full_run), "random", ["random", "idb"])
    table = sweep_controls(runs, ("random", "idb"))
    assert list(table.columns[:1]) == [KEY]
    full = table[table[KEY] == 8].reset_index(drop=True)
    pd.testing.assert_series_equal(full["verdict"], expected["verdict"], check_names=False)
    assert set(full["model"]) == {"random", "idb"}
    cut = table[table[KEY] == 4]
    shortcut = cut[cut["control"] == "shortcut"]
    assert shortcut["verdict"].tolist() == ["not measured"]
    learning = cut[cut["control"] == "learning"].reset_index(drop=True)
    pd.testing.assert_frame_equal(
        learning.drop(columns=[KEY]),
        full[full["control"] == "learning"].drop(columns=[KEY]).reset_index(drop=True),
    )

    directory = write_sweep_report(tmp_path / "out", [KEY], runs, ("random", "idb"))
    saved = pd.read_csv(directory / "controls.csv")
    assert len(saved) == len(table) and saved[KEY].tolist() == table[KEY].tolist()
    markdown = (directory / "sweep.md").read_text()
    assert "## Positive controls per cell" in markdown
    cell8 = markdown[markdown.index("### epochs = 8") :]
    for line in control_lines(expected):
        assert f"- {line}" in cell8
    assert markdown.index("### epochs = 4") < markdown.index("### epochs = 8")
