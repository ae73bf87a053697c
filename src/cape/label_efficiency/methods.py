"""What each method does in one cell, on the ECGs that :func:`cape.finetune.select` chose.

Every method of a (fraction, seed) sees the same training patients: the
cell's selection is :func:`cape.finetune.select` with ``train_fraction`` and
``seed``, exactly what ``cape finetune`` draws for that fraction and seed, so
the frozen-feature heads train on the ECGs the fine-tuned models train on,
validate on the same (whole) validation split and are tested on the same
test ECGs -- their predictions pair up for DeLong and Wilcoxon tests.

- ``linear``, ``mlp``: :func:`cape.protocols.fitting.fit_predict` on frozen
  features of the pretrained encoder (embedded once per run, by the rule
  ``cape embed`` and fine-tuning's evaluation use: the central window, or the
  mean of ``eval_windows`` windows);
- ``finetune``, ``scratch``: :func:`cape.finetune.run_finetune` with
  ``init`` pretrained or scratch; its run directory resumes exactly when a
  cell is interrupted;
- ``mean-predictor``: the training targets' mean (prevalence), the reference
  any method must beat.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cape.errors import CapeError
from cape.finetune.config import FinetuneConfig
from cape.finetune.config import validate_config as validate_finetune_config
from cape.finetune.labels import Selection, select
from cape.label_efficiency.cells import CELL_PREDICTION_COLUMNS, Cell
from cape.label_efficiency.config import LINEAR, SCRATCH, LabelEfficiencyConfig
from cape.protocols.baselines import mean_predictor
from cape.protocols.fitting import fit_predict
from cape.protocols.settings import HeadSettings

logger = logging.getLogger(__name__)

FEATURES_DIR = "features"


def finetune_base(config: LabelEfficiencyConfig) -> FinetuneConfig:
    """The fine-tuning settings every ``finetune``/``scratch`` cell starts from.

    Raises:
        CapeError: a bad ``finetune`` setting (named).
    """
    values: dict[str, Any] = {
        "device": config.device,
        "threads": config.threads,
        "progress": config.progress,
        **config.finetune,
        "store": str(config.store) if config.store else None,
        "encoder": str(config.encoder) if config.encoder else None,
        "task": config.task,
        "cohorts": [config.cohort] if config.cohort else None,
        "test_cohorts": scored_cohorts(config),
        "topcoded": config.topcoded,
    }
    return validate_finetune_config(values, "label-efficiency `finetune` settings")


def scored_cohorts(config: LabelEfficiencyConfig) -> list[str]:
    """The cohorts scored: ``cohort`` first, then the others named."""
    assert config.cohort is not None
    others = [c for c in (config.test_cohorts or []) if c != config.cohort]
    return [config.cohort, *others]


def cell_selection(
    config: LabelEfficiencyConfig, manifest: pd.DataFrame, fraction: float, seed: int
) -> Selection:
    """The ECGs of a (fraction, seed): what ``cape finetune`` selects for it.

    Raises:
        CapeError: see :func:`cape.finetune.select`.
    """
    assert config.cohort is not None
    return select(
        manifest,
        config.task,
        [config.cohort],
        scored_cohorts(config),
        fraction,
        seed,
        config.topcoded,
        source=f"store {config.store}",
    )


def task_arrays(selection: Selection, values: np.ndarray) -> np.ndarray:
    """``(n, k)`` -> ``(n,)`` for age and sex, unchanged for multi-label tasks."""
    return values if selection.task.kind == "multilabel" else values[:, 0]


def long_predictions(
    selection: Selection, manifest: pd.DataFrame, y_pred: np.ndarray
) -> pd.DataFrame:
    """The test predictions in the cells' long format (one row per ECG and label).

    Args:
        selection: the cell's selection.
        manifest: the store manifest.
        y_pred: ``(n_test,)`` or ``(n_test, k)`` aligned with ``selection.records["test"]``.
    """
    records = selection.records["test"]
    truth = selection.targets["test"]
    predictions = np.asarray(y_pred, dtype=np.float64).reshape(len(records), -1)
    k = truth.shape[1]
    labels = list(selection.label_names) if selection.task.kind == "multilabel" else [""]
    rows = np.repeat(records, k)
    return pd.DataFrame(
        {
            "cohort": manifest["cohort"].astype(str).to_numpy()[rows],
            "record_id": manifest["record_id"].astype(str).to_numpy()[rows],
            "label": np.tile(np.asarray(labels, dtype=object), len(records)),
            "y_true": truth.reshape(-1),
            "y_pred": predictions.reshape(-1),
        }
    )[list(CELL_PREDICTION_COLUMNS)]


def selection_facts(selection: Selection, manifest: pd.DataFrame) -> dict[str, Any]:
    """Sizes of a cell's data for ``cell.json``."""
    patients = manifest["patient_id"].astype(str).to_numpy()
    return {
        "n_train_patients": len(set(patients[selection.records["train"]])),
        "n_train": len(selection.records["train"]),
        "n_val": len(selection.records["val"]),
        "n_test": len(selection.records["test"]),
        "selection_fingerprint": selection.fingerprint(),
    }


# ---- frozen features -------------------------------------------------------------------------


class FrozenFeatures:
    """Features of the pretrained encoder, looked up by global store index.

    Args:
        features: ``(n, d)``.
        store_index: ``(n,)`` the store index of each row.
        source: where they came from (messages).
    """

    def __init__(self, features: np.ndarray, store_index: np.ndarray, source: str) -> None:
        order = np.argsort(store_index, kind="stable")
        self.features = np.asarray(features)[order]
        self.store_index = np.asarray(store_index, dtype=np.int64)[order]
        self.source = source

    def rows(self, records: np.ndarray) -> np.ndarray:
        """Features of the ECGs ``records`` (global store indices), ``(len(records), d)``.

        Raises:
            CapeError: an ECG has no features.
        """
        records = np.asarray(records, dtype=np.int64)
        if len(self.store_index) == 0:
            positions, missing = np.zeros(0, dtype=np.int64), records
        else:
            positions = np.searchsorted(self.store_index, records)
            positions = np.minimum(positions, len(self.store_index) - 1)
            missing = records[self.store_index[positions] != records]
        if missing.size:
            raise CapeError(
                f"{self.source} has no features for {missing.size} of the ECGs this run needs "
                f"(e.g. store index {missing[:3].tolist()}); embed the store's cohorts and "
                "splits used here"
            )
        return self.features[positions]


def _records_key(records: np.ndarray, encoder: str, window: int, n_windows: int) -> str:
    digest = hashlib.sha256(np.ascontiguousarray(records, dtype=np.int64).tobytes())
    digest.update(f"{encoder}|{window}|{n_windows}".encode())
    return digest.hexdigest()[:16]


def frozen_features(
    config: LabelEfficiencyConfig,
    base: FinetuneConfig,
    store: Any,
    records: np.ndarray,
    root: Path,
    log: Any = print,
) -> FrozenFeatures:
    """The pretrained encoder's features of ``records``: given, cached, or embedded now.

    With ``config.features`` (a ``cape embed`` directory) they are read from it
    (its ``store_index`` column locates the ECGs; its store fingerprint must be
    this store's). Otherwise they are embedded once into ``OUT/features`` (by
    the rule of fine-tuning's evaluation: window from ``finetune.crop_seconds``
    or the encoder's, ``finetune.eval_windows`` windows) and reused by later
    invocations on the same ECGs and encoder.

    Raises:
        CapeError: unreadable or mismatched features, or no encoder.
    """
    from cape.embed import (
        INFO_FILE,
        EmbedSettings,
        embed_indices,
        load_features,
        write_features,
    )

    if config.features is not None:
        features, index = load_features(config.features)
        if "store_index" not in index.columns:
            raise CapeError(
                f"{config.features}: its index has no store_index column (written by "
                "`cape embed`); re-embed, or leave `features` unset to embed here"
            )
        info_path = Path(config.features) / INFO_FILE
        if info_path.is_file():
            import json

            fingerprint = json.loads(info_path.read_text()).get("store_fingerprint")
            if fingerprint and fingerprint != store.fingerprint():
                raise CapeError(
                    f"{config.features} was embedded from another store (store_fingerprint "
                    f"{fingerprint}, {config.store} has {store.fingerprint()})"
                )
        return FrozenFeatures(features, index["store_index"].to_numpy(), str(config.features))

    if config.encoder is None:
        raise CapeError("the linear and mlp methods need the pretrained encoder: --encoder PATH")
    from cape.encoder import load_encoder, resolve_device

    encoder_path = str(Path(config.encoder).resolve())
    loaded = load_encoder(config.encoder)
    window = base.crop_samples(loaded.window_samples)
    key = _records_key(records, encoder_path, window, base.eval_windows)
    directory = root / FEATURES_DIR
    if (directory / INFO_FILE).is_file():
        import json

        if json.loads((directory / INFO_FILE).read_text()).get("records_key") == key:
            features, index = load_features(directory)
            return FrozenFeatures(features, index["store_index"].to_numpy(), str(directory))
        log(f"{directory} holds features of other ECGs or another encoder: embedding again")
    log(f"embedding {len(records)} ECGs with {encoder_path} (frozen features for linear, mlp)")
    settings = EmbedSettings(
        window_samples=window, n_windows=base.eval_windows, batch_size=base.eval_batch_size
    )
    device = resolve_device(config.device)
    features = embed_indices(
        loaded.module, store, records, settings, device=device, progress=config.progress
    )
    index = store.manifest.iloc[records][["record_id", "patient_id", "cohort", "split"]].copy()
    index.insert(0, "store_index", records)
    info = {
        "checkpoint": encoder_path,
        "untrained": False,
        "store": str(config.store),
        "store_fingerprint": store.fingerprint(),
        "window_samples": window,
        "n_windows": base.eval_windows,
        "records_key": key,
        "n": len(records),
    }
    temporary = Path(tempfile.mkdtemp(dir=root, prefix=f".{FEATURES_DIR}.tmp-"))
    try:
        write_features(temporary, features, index, info)
        if directory.exists():
            shutil.rmtree(directory)
        temporary.rename(directory)
    finally:
        if temporary.exists():
            shutil.rmtree(temporary, ignore_errors=True)
    return FrozenFeatures(features, records, str(directory))


def head_settings(config: LabelEfficiencyConfig, method: str) -> HeadSettings:
    """The frozen head of ``method`` (``linear`` or ``mlp``) with its parameter overrides.

    Raises:
        CapeError: a parameter the protocol sets itself (seed, std floor).
    """
    params = dict(config.linear if method == LINEAR else config.mlp)
    settings = HeadSettings(kind=method, params=params, std_floor=config.head_std_floor)
    try:
        settings.validate()
    except CapeError as error:
        raise CapeError(f"label-efficiency `{method}` settings: {error}") from error
    return settings


# ---- one cell per method -----------------------------------------------------------------------


def run_frozen_cell(
    cell: Cell,
    config: LabelEfficiencyConfig,
    selection: Selection,
    features: FrozenFeatures,
) -> np.ndarray:
    """Fit the cell's frozen head and predict the test ECGs.

    Returns:
        ``(n_test,)`` or ``(n_test, k)`` predictions aligned with ``selection.records["test"]``.

    Raises:
        CapeError: the head cannot be fitted on this sample (e.g. one class).
    """
    task = selection.task
    data = {
        split: (
            features.rows(selection.records[split]),
            task_arrays(selection, selection.targets[split]),
        )
        for split in ("train", "val")
    }
    (prediction,) = fit_predict(
        task,
        head_settings(config, cell.method),
        cell.seed,
        data["train"],
        data["val"],
        [features.rows(selection.records["test"])],
        context=cell.name,
    )
    return prediction


def run_mean_cell(selection: Selection) -> np.ndarray:
    """The training targets' mean (prevalence) for every test ECG."""
    y_train = task_arrays(selection, selection.targets["train"])
    return mean_predictor(selection.task, y_train, len(selection.records["test"]))


def run_trained_cell(
    cell: Cell,
    base: FinetuneConfig,
    selection: Selection,
    store: Any,
    root: Path,
    keep_checkpoints: bool,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Fine-tune (or train from scratch) in the cell's run directory, resuming it if present.

    The batch is capped at the training ECGs of the cell (the 1 % sample of a
    small cohort may hold fewer than one batch); the cap is recorded.

    Returns:
        ``(predictions, facts)``: the model's test predictions in the cells' long
        format, and ``best_epoch``, ``epochs_run``, ``best_val_score``, ``batch_size``.
    """
    from cape.finetune import run_finetune

    run_dir = cell.run_directory(root)
    n_train = len(selection.records["train"])
    batch_size = min(base.batch_size, n_train)
    config = base.model_copy(
        update={
            "init": "scratch" if cell.method == SCRATCH else "pretrained",
            "train_fraction": cell.fraction,
            "seed": cell.seed,
            "out_dir": run_dir,
            "name": cell.method,
            "batch_size": batch_size,
        }
    )
    result = run_finetune(config, resume=run_dir.exists(), store=store)
    predictions = pd.read_parquet(result.run_dir / "results" / "predictions.parquet")
    mine = predictions[predictions["model"].astype(str) == cell.method]
    frame = pd.DataFrame(
        {
            "cohort": mine["cohort"].astype(str).to_numpy(),
            "record_id": mine["record_id"].astype(str).to_numpy(),
            "label": mine["label"].astype(str).to_numpy(),
            "y_true": mine["y_true"].to_numpy(dtype=np.float64),
            "y_pred": mine["y_pred"].to_numpy(dtype=np.float64),
        }
    )
    if not keep_checkpoints:
        shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
    facts = {
        "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run,
        "best_val_score": result.best_val_score,
        "batch_size": batch_size,
        "run_dir": str(result.run_dir),
    }
    return frame, facts
