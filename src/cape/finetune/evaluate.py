"""Evaluating a fine-tuned model: features and predictions by the embedding window rule,
and the test predictions written as a protocol results directory.

Evaluation sees what ``cape embed`` feeds an encoder: the central window of
each record's valid part (or ``n_windows`` evenly spaced windows whose
features are averaged, :class:`cape.embed.WindowDataset`), in eval mode.
Under DDP each rank evaluates every ``world_size``-th ECG and the results are
gathered, so every rank holds all predictions (and takes the same
early-stopping decision).

Results use the protocols' tidy tables (:mod:`cape.protocols.results`):
protocol ``finetune``, model ``finetune`` / ``scratch`` (or the run's name),
setting ``in-distribution`` for a test cohort that also trained the model and
``out-of-distribution`` otherwise, one ``run`` per seed, and the mean
predictor beside it; :func:`cape.protocols.read_results` and the report's
reader load them unchanged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

from cape import dist
from cape.embed import WindowDataset
from cape.finetune.labels import Selection
from cape.finetune.model import FinetuneModel
from cape.protocols.baselines import mean_predictor
from cape.protocols.featuresets import MEAN_PREDICTOR
from cape.protocols.results import Collector, ProtocolResult, summarise, write_results

PROTOCOL = "finetune"


@torch.no_grad()
def window_features(
    model: FinetuneModel,
    store: Any,
    records: np.ndarray,
    window: int,
    n_windows: int = 1,
    batch_size: int = 128,
    device: torch.device | None = None,
    dtype: torch.dtype = torch.float32,
    num_workers: int = 0,
    use_bf16: bool = False,
) -> np.ndarray:
    """Standardised features of ECGs ``records``, averaged over windows (eval mode).

    Under DDP every rank computes its share and gets all rows back.

    Returns:
        float64 ``(len(records), d)`` in the order of ``records``.
    """
    device = device or torch.device("cpu")
    records = np.asarray(records, dtype=np.int64)
    rank, world = dist.rank(), dist.world_size()
    mine = np.arange(rank, len(records), world)
    dataset = WindowDataset(store, records[mine], window, n_windows)
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
        generator=torch.Generator().manual_seed(0),  # leaves the global RNG (dropout) alone
    )
    was_training = model.training
    model.eval()
    chunks = [np.zeros((0, model.encoder.feature_dim))]
    for batch in loader:
        n, k = batch.shape[:2]
        flat = batch.reshape(n * k, *batch.shape[2:]).to(device, dtype=dtype, non_blocking=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
            features = model.features(flat)
        chunks.append(features.double().reshape(n, k, -1).mean(dim=1).cpu().numpy())
    model.train(was_training)
    local = np.concatenate(chunks)
    if world == 1:
        return local
    out = np.zeros((len(records), local.shape[1]))
    for other_rank, rows in enumerate(dist.all_gather_object(local)):
        out[np.arange(other_rank, len(records), world)] = rows
    return out


@torch.no_grad()
def predict(
    model: FinetuneModel,
    store: Any,
    records: np.ndarray,
    window: int,
    **settings: Any,
) -> np.ndarray:
    """Predictions ``(n, k)``: years (regression) or probabilities, float64.

    ``settings`` as :func:`window_features`.
    """
    features = window_features(model, store, records, window, **settings)
    parameter = next(model.head.parameters())
    inputs = torch.from_numpy(features).to(parameter.device, dtype=parameter.dtype)
    was_training = model.training
    model.eval()
    outputs = model.decode(model.head_outputs(inputs))
    model.train(was_training)
    return outputs.cpu().numpy()


def task_arrays(selection: Selection, values: np.ndarray) -> np.ndarray:
    """``(n, k)`` -> what the task's metric takes: ``(n,)`` for age and sex, ``(n, k)`` else."""
    return values if selection.task.kind == "multilabel" else values[:, 0]


def score(selection: Selection, y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """The task's metric (NaN when undefined)."""
    return selection.task.score(task_arrays(selection, y_true), task_arrays(selection, y_pred))


def build_results(
    selection: Selection,
    manifest: pd.DataFrame,
    test_predictions: np.ndarray,
    *,
    model_name: str,
    baseline: str,
    encoder_seed: int,
    run: int,
    settings: dict[str, Any],
) -> ProtocolResult:
    """The protocol tables of one run's test predictions (plus the mean predictor).

    Args:
        selection: the run's ECGs and targets.
        manifest: the store manifest (``record_id``, ``cohort``; RangeIndex = store index).
        test_predictions: ``(n_test, k)`` aligned with ``selection.records["test"]``.
        model_name: the ``model`` column.
        baseline: the ``baseline`` column (``""`` or ``"scratch"``).
        encoder_seed: seed of the pretrained encoder (the init seed from scratch).
        run: the fine-tuning seed.
        settings: written as ``config.json``'s ``settings`` (``protocol`` added).
    """
    collector = Collector(
        PROTOCOL, manifest["record_id"].to_numpy(), manifest["cohort"].astype(str).to_numpy()
    )
    records = selection.records["test"]
    cohorts = manifest["cohort"].astype(str).to_numpy()[records]
    train_name = "+".join(selection.train_cohorts)
    n_train, n_val = len(selection.records["train"]), len(selection.records["val"])
    y_train = task_arrays(selection, selection.targets["train"])
    for cohort in selection.test_cohorts:
        rows = np.flatnonzero(cohorts == cohort)
        truth = task_arrays(selection, selection.targets["test"][rows])
        setting = "in-distribution" if cohort in selection.train_cohorts else "out-of-distribution"
        common: dict[str, Any] = {
            "encoder_seed": encoder_seed,
            "setting": setting,
            "train_cohort": train_name,
            "test_cohort": cohort,
            "task": selection.task,
            "run": run,
            "positions": records[rows],
            "y_true": truth,
            "label_names": selection.label_names,
            "n_train": n_train,
            "n_val": n_val,
        }
        collector.add(
            model=model_name,
            baseline=baseline,
            y_pred=task_arrays(selection, test_predictions[rows]),
            **common,
        )
        collector.add(
            model=MEAN_PREDICTOR,
            baseline=MEAN_PREDICTOR,
            y_pred=mean_predictor(selection.task, y_train, len(rows)),
            **common,
        )
    results = collector.results()
    summary, by_seed = summarise(results)
    return ProtocolResult(
        results=results,
        predictions=collector.predictions(),
        summary=summary,
        summary_by_seed=by_seed,
        tests=pd.DataFrame(),
        labels=selection.counts,
        config={"settings": {"protocol": PROTOCOL, **settings}},
    )


def write_finetune_results(result: ProtocolResult, out: Path) -> Path:
    """Write the tables with :func:`cape.protocols.write_results`."""
    return write_results(result, out)
