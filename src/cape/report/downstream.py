"""Fine-tuning and label-efficiency outputs in a study run directory: where, and how read.

Neither has a study stage yet; ``cape finetune`` and ``cape label-efficiency``
are run with these ``--out`` folders (docs/report.md)::

    RUN/finetune/NAME/results/   ``cape finetune --out RUN/finetune/NAME`` (protocol
                                 ``finetune`` results under evaluation/ are read too)
    RUN/label-efficiency/        ``cape label-efficiency --out RUN/label-efficiency``, or
    RUN/label-efficiency/NAME/   one run per folder

Nothing is recomputed: the fine-tuning runs are pooled (one row per run), the
label-efficiency tables read as saved.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from cape.protocols.featuresets import MEAN_PREDICTOR
from cape.protocols.results import TABLE_FILES, ProtocolResult

FINETUNE_PROTOCOL = "finetune"  # cape.finetune.evaluate.PROTOCOL
FINETUNE_DIR = "finetune"
LABEL_EFFICIENCY_DIR = "label-efficiency"
# File names of cape.label_efficiency.protocol's outputs (docs/label-efficiency.md).
LE_SUMMARY = "summary.csv"
LE_CONFIG = "label-efficiency.yaml"
# The columns the report's section and the package's figure read.
LE_RESULT_COLUMNS = (
    "method",
    "fraction",
    "seed",
    "n_train_patients",
    "setting",
    "train_cohort",
    "test_cohort",
    "task",
    "metric",
    "value",
    "n",
)
LE_SUMMARY_COLUMNS = ("method", "fraction", "setting", "test_cohort", "metric", "mean")


@dataclass
class LabelEfficiencyRun:
    """One ``cape label-efficiency`` output folder (its saved tables, nothing recomputed)."""

    name: str
    path: Path
    results: pd.DataFrame  # one row per (method, fraction, seed, test cohort)
    summary: pd.DataFrame  # per (method, fraction, test cohort), over seeds
    tests: pd.DataFrame  # paired tests per fraction and pair of methods
    config: dict[str, Any] = field(default_factory=dict)  # label-efficiency.yaml


def _read_yaml(path: Path, messages: list[str]) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        messages.append(f"{path}: unreadable ({error})")
        return None


def _with_fraction(result: ProtocolResult) -> ProtocolResult:
    """A fine-tuning result with its run's ``train_fraction`` (config.json) as a column.

    Runs on a share of the training patients are another condition than full runs:
    the column keeps them apart when several runs are pooled.
    """
    fraction = float((result.config.get("settings") or {}).get("train_fraction") or 1.0)
    result.results = result.results.assign(train_fraction=fraction)
    result.predictions = result.predictions.assign(train_fraction=fraction)
    return result


def pool_finetune(parts: list[ProtocolResult]) -> ProtocolResult:
    """Several fine-tuning result directories (one per run) as one result.

    Every run writes the mean predictor beside its model; a fine-tuned and a
    from-scratch run of one seed and share train it on the same patients, so the
    identical copies are kept once. ``summary`` is left empty: the report's
    fine-tuning table aggregates the runs itself.
    """
    parts = [_with_fraction(part) for part in parts]
    results = pd.concat([p.results for p in parts], ignore_index=True)
    predictions = pd.concat([p.predictions for p in parts], ignore_index=True)
    for column in ("protocol", "model", "baseline", "setting", "train_cohort", "task", "cohort"):
        if column in predictions:  # categoricals of different runs concatenate as objects
            predictions[column] = predictions[column].astype(str)
    mean = results["model"] == MEAN_PREDICTOR
    same = [c for c in results.columns if c != "encoder_seed"]
    results = pd.concat(
        [results[~mean], results[mean].drop_duplicates(subset=same)], ignore_index=True
    )
    if "model" in predictions:  # runs saved without predictions leave none to deduplicate
        mean = predictions["model"] == MEAN_PREDICTOR
        same = [c for c in predictions.columns if c != "encoder_seed"]
        predictions = pd.concat(
            [predictions[~mean], predictions[mean].drop_duplicates(subset=same)],
            ignore_index=True,
        )
    labels = pd.concat([p.labels for p in parts], ignore_index=True)
    return ProtocolResult(
        results=results,
        predictions=predictions,
        summary=pd.DataFrame(),
        summary_by_seed=pd.DataFrame(),
        tests=pd.DataFrame(),
        labels=labels,
        config=parts[0].config,
    )


def run_facts(directory: Path, run_dir: Path, result: ProtocolResult) -> dict[str, Any]:
    """What one fine-tuning run was (one row of the report's runs table)."""
    settings = result.config.get("settings") or {}
    rows = result.results[result.results["model"] != MEAN_PREDICTOR]
    first = rows.iloc[0] if len(rows) else result.results.iloc[0]
    try:
        folder = directory.relative_to(run_dir).as_posix()
    except ValueError:
        folder = str(directory)
    return {
        "folder": folder,
        "model": str(first["model"]),
        "baseline": str(first["baseline"]),
        "task": str(first["task"]),
        "train_cohort": str(first["train_cohort"]),
        "seed": int(first["run"]),
        "train_fraction": float(settings.get("train_fraction") or 1.0),
        "epochs": settings.get("epochs"),
        "best_epoch": settings.get("best_epoch"),
        "epochs_run": settings.get("epochs_run"),
    }


def read_finetune(
    run_dir: Path, from_evaluation: list[tuple[Path, ProtocolResult]], messages: list[str]
) -> tuple[ProtocolResult | None, list[dict[str, Any]]]:
    """``finetune/NAME/results/`` of ``cape finetune --out RUN/finetune/NAME`` runs.

    Args:
        run_dir: the study run directory.
        from_evaluation: fine-tuning result directories found under ``evaluation/``.
        messages: receives one line per folder that could not be read.

    Returns:
        The pooled results (None: no run) and one :func:`run_facts` row per run folder.
    """
    from cape.report.collect import _protocol_of, read_protocol_dir

    found = list(from_evaluation)
    root = run_dir / FINETUNE_DIR
    for folder in sorted(p for p in root.glob("*") if p.is_dir()) if root.is_dir() else []:
        directory = folder / "results"
        if not (directory / TABLE_FILES["results"]).is_file():
            messages.append(f"{directory}: no {TABLE_FILES['results']} (run unfinished?)")
            continue
        try:
            result = read_protocol_dir(directory)
        except (OSError, ValueError) as error:
            messages.append(f"{directory}: unreadable fine-tuning results ({error})")
            continue
        protocol = _protocol_of(directory, result)
        if protocol != FINETUNE_PROTOCOL:
            messages.append(f"{directory}: results of protocol {protocol!r}, not finetune")
            continue
        found.append((directory, result))
    found = [(directory, part) for directory, part in found if len(part.results)]
    facts = [run_facts(directory, run_dir, part) for directory, part in found]
    return (pool_finetune([part for _, part in found]) if found else None), facts


def _read_le_csv(path: Path) -> pd.DataFrame:
    """A label-efficiency csv with its name columns as text (a cohort "001" stays "001")."""
    if not path.is_file():
        return pd.DataFrame()
    names = ("method", "setting", "train_cohort", "test_cohort", "task", "metric", "model_a")
    return pd.read_csv(path, dtype=dict.fromkeys((*names, "model_b", "note", "error"), str))


def _label_efficiency_dirs(root: Path) -> list[Path]:
    if (root / LE_SUMMARY).is_file():
        return [root]
    return sorted(p.parent for p in root.glob(f"*/{LE_SUMMARY}")) if root.is_dir() else []


def read_label_efficiency(run_dir: Path, messages: list[str]) -> list[LabelEfficiencyRun]:
    """``label-efficiency/`` (one run) or ``label-efficiency/NAME/`` (several).

    A folder is a run when it holds ``summary.csv``; one whose tables cannot be
    read or lack a needed column is skipped with a line in ``messages``.
    """
    runs: list[LabelEfficiencyRun] = []
    root = run_dir / LABEL_EFFICIENCY_DIR
    for path in _label_efficiency_dirs(root):
        try:
            summary = _read_le_csv(path / LE_SUMMARY)
            results = (
                pd.read_parquet(path / "results.parquet")
                if (path / "results.parquet").is_file()
                else _read_le_csv(path / "results.csv")
            )
            tests = _read_le_csv(path / "tests.csv") if (path / "tests.csv").is_file() else None
        except (OSError, ValueError) as error:
            messages.append(f"{path}: unreadable label-efficiency tables ({error})")
            continue
        if results.empty:
            messages.append(f"{path}: no label-efficiency results table (results.csv)")
            continue
        missing = {
            name: sorted(set(columns) - set(table.columns))
            for name, table, columns in (
                ("results", results, LE_RESULT_COLUMNS),
                (LE_SUMMARY, summary, LE_SUMMARY_COLUMNS),
            )
        }
        if any(missing.values()):
            text = "; ".join(f"{name} lacks {cols}" for name, cols in missing.items() if cols)
            messages.append(f"{path}: not a label-efficiency output ({text})")
            continue
        config_path = path / LE_CONFIG
        config = _read_yaml(config_path, messages) if config_path.is_file() else {}
        runs.append(
            LabelEfficiencyRun(
                name=path.name if path != root else LABEL_EFFICIENCY_DIR,
                path=path,
                results=results,
                summary=summary,
                tests=tests if tests is not None else pd.DataFrame(),
                config=config if isinstance(config, dict) else {},
            )
        )
    return runs
