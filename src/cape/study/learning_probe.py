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
from cape.protocols.learning_probe import learning_probe_table


def probe_study_run(run: Path, n_resamples: int = 2000) -> pd.DataFrame:
    """Compute and write ``RUN/evaluation/learning_probe.{parquet,csv}`` for a finished study.

    For runs made before the study's evaluate stage computed it: the feature sets are
    those ``evaluation/evaluate.json`` lists, the cohort, tasks and seed those of the
    run's ``study.yaml`` (``evaluate.ood``).
    """
    import json

    from cape.protocols import FeatureSpec, load_feature_sets
    from cape.study.config import load_study

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
    tasks = [t for t in ood.tasks if t in ("age", "sex")]
    table = learning_probe_table(
        feature_sets, index, ood.train_cohort, tasks, n_resamples, seed=study.evaluate.seed
    )
    table.to_parquet(evaluation / "learning_probe.parquet", index=False)
    table.to_csv(evaluation / "learning_probe.csv", index=False)
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
