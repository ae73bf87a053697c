"""Which ECGs train, validate and test a fine-tuned model, and their targets.

Everything comes from the store's manifest: the ``split`` column that ``cape
split`` wrote (by patient), and the label columns. Tasks are the protocols'
(:mod:`cape.protocols.tasks`: ``age``, ``sex``, ``superclass``) plus any
list-valued manifest column as a multi-label task (``diagnoses``, or a
cohort's own codes), labelled like ``superclass``: a missing value excludes
the ECG, an empty list too (counted as ``empty``).

``train_fraction`` keeps a seeded share of the *patients* of each training
cohort (at least one), taken as a prefix of a per-cohort permutation that
depends only on the seed and the cohort: the patients of a smaller fraction
are a subset of those of a larger one, which a label-efficiency curve needs.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from cape.errors import CapeError
from cape.protocols.tasks import TASKS, TaskSpec, extract_labels
from cape.samplers import stream_rng
from cape.splits import check_patient_disjoint
from cape.stats import UndefinedMetricError

SUBSAMPLE_STREAM = 21
SPLITS = ("train", "val", "test")


def _is_sequence(value: Any) -> bool:
    return isinstance(value, list | tuple | np.ndarray)


def resolve_task(name: str, manifest: pd.DataFrame) -> TaskSpec:
    """The task called ``name``: a protocol task or a list-valued manifest column.

    Raises:
        CapeError: neither.
    """
    if name in TASKS:
        return TASKS[name]
    if name in manifest.columns:
        values = manifest[name]
        if values.map(_is_sequence).any():
            return TaskSpec(name, "multilabel", "macro_auroc", True, name)
        raise CapeError(
            f"task {name!r}: the manifest column {name!r} holds no lists of labels, so it "
            "cannot be a multi-label task (tasks: age, sex, superclass, or a list-valued column)"
        )
    raise CapeError(
        f"unknown task {name!r}: not one of {sorted(TASKS)} and not a column of the store "
        f"manifest (columns: {', '.join(sorted(map(str, manifest.columns)))})"
    )


def _multilabel(
    frame: pd.DataFrame, column: str, label_names: tuple[str, ...] | None
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    values = frame[column].tolist()
    present = np.fromiter((_is_sequence(v) for v in values), dtype=bool, count=len(values))
    empty = np.fromiter(
        (_is_sequence(v) and len(v) == 0 for v in values), dtype=bool, count=len(values)
    )
    if label_names is None:
        label_names = tuple(sorted({str(c) for v in values if _is_sequence(v) for c in v}))
    position = {label: k for k, label in enumerate(label_names)}
    y = np.zeros((len(values), len(label_names)), dtype=np.float64)
    for row, value in enumerate(values):
        if _is_sequence(value):
            for code in value:
                if str(code) in position:
                    y[row, position[str(code)]] = 1.0
    return y, present & ~empty, label_names


def task_targets(
    frame: pd.DataFrame,
    task: TaskSpec,
    topcoded: str = "keep",
    label_names: tuple[str, ...] | None = None,
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Targets of ``task`` for the rows of ``frame``.

    Returns:
        ``(y, labelled, label_names)``: float64 ``(n, k)`` targets (age in years,
        1 = male, or 0/1 per label), bool ``(n,)`` usable rows, the ``k`` names.
    """
    if task.name in TASKS:
        labels = extract_labels(frame, task.name, topcoded, label_names)  # type: ignore[arg-type]
        y = np.asarray(labels.y, dtype=np.float64)
        return y.reshape(len(frame), -1), labels.labelled, labels.label_names
    return _multilabel(frame, task.column, label_names)


@dataclass(frozen=True)
class Selection:
    """The ECGs of one fine-tuning run and their targets.

    Attributes:
        task: the task.
        label_names: the ``k`` output names.
        records: split -> global store indices (``train`` after ``train_fraction``).
        targets: split -> float64 ``(n, k)`` targets aligned with ``records``.
        train_cohorts: cohorts whose train/val splits are used.
        test_cohorts: cohorts whose test split is predicted.
        counts: one row per (cohort, split): ``ecgs``, ``labelled``, ``used``, ``patients``.
    """

    task: TaskSpec
    label_names: tuple[str, ...]
    records: dict[str, np.ndarray]
    targets: dict[str, np.ndarray]
    train_cohorts: tuple[str, ...]
    test_cohorts: tuple[str, ...]
    counts: pd.DataFrame

    def fingerprint(self) -> str:
        """Short hash of the chosen ECGs and targets (a resume must see the same)."""
        import hashlib

        digest = hashlib.sha256("\x1f".join(self.label_names).encode())
        for split in SPLITS:
            digest.update(np.ascontiguousarray(self.records[split], dtype=np.int64).tobytes())
            digest.update(np.ascontiguousarray(self.targets[split], dtype=np.float64).tobytes())
        return digest.hexdigest()[:16]


def subsample_patients(
    patients: pd.Series, cohorts: pd.Series, fraction: float, seed: int
) -> np.ndarray:
    """Bool mask of the rows whose patient is kept (see the module docstring).

    Args:
        patients: patient id per row.
        cohorts: cohort per row.
        fraction: share of each cohort's patients kept, in (0, 1].
        seed: the run's seed.
    """
    keep = np.zeros(len(patients), dtype=bool)
    if fraction >= 1.0:
        keep[:] = True
        return keep
    patient_values = patients.astype(str).to_numpy()
    cohort_values = cohorts.astype(str).to_numpy()
    for cohort in sorted(set(cohort_values)):
        rows = cohort_values == cohort
        unique = np.array(sorted(set(patient_values[rows])))
        rng = stream_rng(seed, SUBSAMPLE_STREAM, zlib.crc32(cohort.encode()))
        order = unique[rng.permutation(len(unique))]
        kept = order[: max(1, round(fraction * len(unique)))]
        keep |= rows & np.isin(patient_values, kept)
    return keep


def _check_cohorts(names: Sequence[str], known: set[str], what: str) -> None:
    unknown = sorted(set(names) - known)
    if unknown:
        raise CapeError(f"{what} {unknown} are not in the store (it has {sorted(known)})")


def select(
    manifest: pd.DataFrame,
    task_name: str,
    cohorts: Sequence[str] | None = None,
    test_cohorts: Sequence[str] | None = None,
    train_fraction: float = 1.0,
    seed: int = 0,
    topcoded: str = "keep",
    source: str = "store",
) -> Selection:
    """Choose the train/val/test ECGs of a run from the manifest's patient-level splits.

    Args:
        manifest: store manifest (RangeIndex = global ECG index) with ``cohort``,
            ``patient_id``, ``split`` and the task's label column.
        task_name: see :func:`resolve_task`.
        cohorts: cohorts that train and validate (``None``: all).
        test_cohorts: cohorts whose test split is predicted (``None``: ``cohorts``).
        train_fraction: share of training patients kept, in (0, 1].
        seed: seeds that share.
        topcoded: age: ``"keep"`` or ``"exclude"`` top-coded ages.
        source: name of the store for messages.

    Raises:
        CapeError: unknown task, column or cohort; no split assignments; a split
            with no labelled ECG; a patient in two splits; a fraction outside (0, 1];
            a validation split on which the task's metric is undefined.
    """
    if not 0.0 < train_fraction <= 1.0:
        raise CapeError(f"train_fraction must be in (0, 1], got {train_fraction}")
    task = resolve_task(task_name, manifest)
    known = set(manifest["cohort"].astype(str))
    train_cohorts = tuple(sorted(cohorts)) if cohorts else tuple(sorted(known))
    _check_cohorts(train_cohorts, known, "cohorts")
    tests = tuple(sorted(test_cohorts)) if test_cohorts else train_cohorts
    _check_cohorts(tests, known, "test cohorts")
    used = manifest["cohort"].astype(str).isin(set(train_cohorts) | set(tests))
    if "split" not in manifest.columns or manifest.loc[used, "split"].isna().all():
        raise CapeError(
            f"{source} has no split assignments for cohorts {sorted(set(train_cohorts) | set(tests))}"
            "; run `cape split` on it first"
        )
    try:
        check_patient_disjoint(manifest.loc[used])
    except ValueError as error:
        raise CapeError(f"{source}: {error}") from error

    cohort = manifest["cohort"].astype(str)
    split = manifest["split"].astype(object)
    in_train_cohorts = cohort.isin(train_cohorts).to_numpy()
    training_rows = manifest[in_train_cohorts & (split == "train").to_numpy()]
    _, _, label_names = task_targets(training_rows, task, topcoded)
    if task.kind == "multilabel" and not label_names:
        raise CapeError(f"task {task.name!r}: the training split holds no labels in {source}")
    y_all, labelled_all, _ = task_targets(manifest, task, topcoded, label_names)

    records: dict[str, np.ndarray] = {}
    count_rows = []
    for name in SPLITS:
        chosen = tests if name == "test" else train_cohorts
        for one in chosen:
            rows = (cohort == one).to_numpy() & (split == name).to_numpy()
            if not rows.any():
                raise CapeError(f"{source}: cohort {one!r} has no ECG in the {name!r} split")
            if not (rows & labelled_all).any():
                raise CapeError(
                    f"{source}: cohort {one!r} has no ECG labelled for {task.name!r} in the "
                    f"{name!r} split"
                )
        mask = cohort.isin(chosen).to_numpy() & (split == name).to_numpy() & labelled_all
        if name == "train":
            keep = subsample_patients(
                manifest.loc[mask, "patient_id"], cohort[mask], train_fraction, seed
            )
            mask[np.flatnonzero(mask)[~keep]] = False
        records[name] = np.flatnonzero(mask)
        for one in chosen:
            rows = (cohort == one).to_numpy() & (split == name).to_numpy()
            count_rows.append(
                {
                    "cohort": one,
                    "split": name,
                    "task": task.name,
                    "ecgs": int(rows.sum()),
                    "labelled": int((rows & labelled_all).sum()),
                    "used": int((rows & mask).sum()),
                    "patients": int(manifest.loc[rows & mask, "patient_id"].nunique()),
                }
            )
    targets = {name: y_all[records[name]] for name in SPLITS}
    truth = targets["val"] if task.kind == "multilabel" else targets["val"][:, 0]
    try:
        task.metric_fn(truth, truth)
    except UndefinedMetricError as error:
        raise CapeError(
            f"{source}: the {task.metric} of {task.name!r} is undefined on the validation "
            f"split of {list(train_cohorts)} ({error}); early stopping needs it"
        ) from error
    return Selection(
        task=task,
        label_names=tuple(label_names),
        records=records,
        targets=targets,
        train_cohorts=train_cohorts,
        test_cohorts=tests,
        counts=pd.DataFrame(count_rows),
    )
