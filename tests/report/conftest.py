"""Fake study run directories and their reports, built once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from .fakerun import build_run, write_pretraining, write_store, write_study_files

TSNE_PER_COHORT = 40  # a few hundred points in all: seconds, not minutes
MIN_CELL_N = 3


@pytest.fixture(autouse=True)
def one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def full_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Store, pretraining logs, features, OOD + composition results and identifiability."""
    torch.set_num_threads(1)
    return build_run(tmp_path_factory.mktemp("full") / "run")


@pytest.fixture(scope="session")
def full_report(full_run: Path) -> Path:
    """The report folder of :func:`full_run` (figures also as SVG)."""
    from cape.report import write_report

    out = full_run / "report"
    # The fake cohorts are tiny: a low small-cell threshold keeps some age bins to draw.
    write_report(
        full_run, out, tsne_per_cohort=TSNE_PER_COHORT, seed=0, svg=True, min_cell_n=MIN_CELL_N
    )
    return out


@pytest.fixture(scope="session")
def partial_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Only study files, the store and pretraining logs: no features, no evaluation."""
    run = tmp_path_factory.mktemp("partial") / "run"
    run.mkdir()
    write_study_files(run)
    write_store(run)
    write_pretraining(run)
    return run
