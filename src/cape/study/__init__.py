"""One-command studies: a YAML file declares cohorts, pretraining runs, protocols and the report.

from cape.study import load_study, run_study
run_study(load_study("demo"), "runs/demo")
"""

from __future__ import annotations

from pathlib import Path

from cape.study.config import StudyConfig
from cape.study.loading import load_study
from cape.study.runner import STAGES, StudyRunner


def run_study(
    config: StudyConfig, out: str | Path, force: set[str] | None = None, progress: bool = True
) -> Path:
    """Run (or continue) a study into ``out``; returns the run directory."""
    return StudyRunner(config, Path(out), force=set(force or ()), progress=progress).run()


__all__ = ["STAGES", "StudyConfig", "StudyRunner", "load_study", "run_study"]
