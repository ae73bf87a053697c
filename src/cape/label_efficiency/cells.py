"""One (method, fraction, seed) cell: its name, its files, written atomically.

A finished cell is a directory ``cells/<method>/f<fraction>-s<seed>/`` holding
``cell.json`` (what was trained: patients, ECGs, seconds, status) and
``predictions.parquet`` (one row per test ECG, and label for multi-label
tasks: ``cohort``, ``record_id``, ``label``, ``y_true``, ``y_pred``). It is
written into a hidden temporary directory and renamed into place, so a cell
directory either is complete or does not exist; a run that is killed and
started again skips every complete cell.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from cape.errors import CapeError

CELL_FILE = "cell.json"
PREDICTIONS_FILE = "predictions.parquet"
CELL_PREDICTION_COLUMNS = ("cohort", "record_id", "label", "y_true", "y_pred")
MEAN_PREDICTOR = "mean-predictor"


def fraction_label(fraction: float) -> str:
    """``0.01`` -> ``"0.01"``, ``1.0`` -> ``"1"``: short, exact for the usual fractions."""
    return format(float(fraction), "g")


@dataclass(frozen=True)
class Cell:
    """One method trained on one fraction of the training patients with one seed."""

    method: str
    fraction: float
    seed: int

    @property
    def name(self) -> str:
        return f"{self.method} fraction={fraction_label(self.fraction)} seed={self.seed}"

    def directory(self, root: Path) -> Path:
        """Where the finished cell lives under the run directory ``root``."""
        return root / "cells" / self.method / f"f{fraction_label(self.fraction)}-s{self.seed}"

    def run_directory(self, root: Path) -> Path:
        """Working directory of a fine-tuning cell (checkpoints, model, protocol tables)."""
        return root / "runs" / self.method / f"f{fraction_label(self.fraction)}-s{self.seed}"


def is_done(cell: Cell, root: Path) -> bool:
    """Whether ``cell`` has been recorded under ``root``."""
    return (cell.directory(root) / CELL_FILE).is_file()


def write_cell(cell: Cell, root: Path, info: dict[str, Any], predictions: pd.DataFrame) -> Path:
    """Record a cell atomically (temporary directory, then one rename).

    Args:
        cell: the cell.
        root: the run directory.
        info: JSON-safe facts (``status``, ``n_train_patients``, ...).
        predictions: :data:`CELL_PREDICTION_COLUMNS` (empty for a failed cell).

    Raises:
        CapeError: the cell is already recorded (two processes on one run directory).
    """
    final = cell.directory(root)
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.tmp-"))
    try:
        frame = predictions.reindex(columns=list(CELL_PREDICTION_COLUMNS)).reset_index(drop=True)
        frame.to_parquet(temporary / PREDICTIONS_FILE, index=False)
        record = {"method": cell.method, "fraction": cell.fraction, "seed": cell.seed, **info}
        (temporary / CELL_FILE).write_text(json.dumps(record, indent=2, default=str))
        try:
            os.rename(temporary, final)
        except OSError as error:
            raise CapeError(
                f"{final} was recorded meanwhile: is another `cape label-efficiency` running on "
                f"{root}? ({error})"
            ) from error
    finally:
        if temporary.exists():
            shutil.rmtree(temporary, ignore_errors=True)
    return final


def read_cell(cell: Cell, root: Path) -> tuple[dict[str, Any], pd.DataFrame]:
    """The ``cell.json`` facts and the predictions of a recorded cell.

    Raises:
        CapeError: the cell is missing or unreadable.
    """
    directory = cell.directory(root)
    try:
        info = json.loads((directory / CELL_FILE).read_text())
        predictions = pd.read_parquet(directory / PREDICTIONS_FILE)
    except (OSError, ValueError) as error:
        raise CapeError(f"{directory}: cannot read the recorded cell: {error}") from error
    return info, predictions
