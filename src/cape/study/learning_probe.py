"""Apply the linear-probe learning control to finished study runs.

    python -m cape.study.learning_probe RUN [RUN ...]

Writes ``RUN/evaluation/learning_probe.{parquet,csv}`` (what the evaluate stage of a
study writes since 2026-12-03; :mod:`cape.protocols.learning_probe`) for runs made
before, and prints the report's learning-control lines for it.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from cape.errors import CapeError
from cape.study.evaluation import write_learning_probe


def probe_study_run(run: Path) -> pd.DataFrame:
    """Compute and write ``RUN/evaluation/learning_probe.{parquet,csv}`` for a finished study.

    For runs made before the study's evaluate stage computed it: the feature sets are
    those ``evaluation/evaluate.json`` lists, the cohort, tasks and seed those of the
    run's ``study.yaml`` (``evaluate.ood``).
    """
    import json

    from cape.protocols import FeatureSpec, load_feature_sets
    from cape.study.loading import load_study

    evaluation = run / "evaluation"
    described = json.loads((evaluation / "evaluate.json").read_text())["feature_sets"]
    study = load_study(run / "study.yaml", check=False)
    ood = study.evaluate.ood
    if ood is None:
        raise CapeError(f"{run}: the study has no evaluate.ood section (no training cohort)")
    specs = [
        FeatureSpec(
            model=d["model"],
            path=Path(d["path"]),
            encoder_seed=d["encoder_seed"],
            baseline=d["baseline"],
        )
        for d in described
    ]
    feature_sets, index = load_feature_sets(specs)
    table = write_learning_probe(
        study.evaluate, feature_sets, index, evaluation, log=lambda _: None
    )
    if table is None:
        raise CapeError(f"{run}: no untrained encoder's features to compare with")
    return table


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m cape.study.learning_probe",
        description="Linear-probe learning control of finished study runs (writes "
        "RUN/evaluation/learning_probe.*; `cape report RUN` then shows it)",
    )
    parser.add_argument("runs", type=Path, nargs="+", help="study run directories")
    args = parser.parse_args(argv)
    from cape.report.controls import summarise_controls

    for run in args.runs:
        probe_study_run(run)
        print(f"== {run}")
        for line in summarise_controls(run):
            if line.startswith("Learning control (linear probe)"):
                print("  " + line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
