"""Reports of incomplete runs: sections whose inputs are missing become notes."""

from __future__ import annotations

from pathlib import Path

import pytest

from cape.report import summarise_claims, write_report

from .htmlcheck import inspect, problems


def test_partial_run(partial_run: Path, tmp_path: Path) -> None:
    path = write_report(partial_run, tmp_path / "report")
    html = path.read_text()
    markdown = (tmp_path / "report" / "report.md").read_text()
    assert problems(html) == []
    assert sorted(p.name for p in (tmp_path / "report" / "figures").iterdir()) == [
        "age_distribution.png",
        "pretraining_loss.png",
    ]
    assert len(inspect(html).images) == 2
    for note in (
        "No out-of-distribution results (evaluation/ood/): this section is skipped.",
        "No composition-matrix results (evaluation/composition/): this section is skipped.",
        "No features (features/) in this run directory: t-SNE skipped.",
    ):
        assert f"> **Note:** {note}" in markdown
    assert "Quarantined inputs by cohort and reason" in markdown
    assert "NOT MEASURED" in html
    assert {c["verdict"] for c in summarise_claims(partial_run)} == {"not measured"}


def test_empty_run_directory(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    path = write_report(tmp_path / "run", tmp_path / "out")
    html = path.read_text()
    assert problems(html) == []
    assert "No cohort store in this run directory" in html
    assert not (tmp_path / "out" / "figures").exists()


def test_bad_arguments(tmp_path: Path) -> None:
    from cape.errors import CapeError

    with pytest.raises(CapeError, match="does not exist"):
        write_report(tmp_path / "missing", tmp_path / "out")
    with pytest.raises(ValueError, match="tsne_per_cohort"):
        write_report(tmp_path, tmp_path / "out", tsne_per_cohort=0)


def test_cli(partial_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from cape.cli import main

    out = tmp_path / "cli-report"
    assert main(["report", str(partial_run), "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "What this run says:" in printed
    assert "[not measured]" in printed
    assert (out / "report.html").is_file() and (out / "report.md").is_file()
    assert main(["report", str(tmp_path / "missing")]) == 1
