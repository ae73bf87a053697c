"""The fine-tuning loop: one function that reads top to bottom.

``run_finetune(config)`` trains an encoder and a head end to end on a labelled
task -- from a pretrained CAPE encoder (``init: pretrained``) or from random
weights (``init: scratch``, the supervised baseline) -- in one process or
under ``torchrun`` (DDP; gloo on CPU, NCCL on CUDA; only rank 0 writes).
Sections: environment -> data -> model -> optimiser and schedule -> resume ->
run directory -> epochs (train, validate, early stopping) -> best epoch
restored -> test predictions.

Everything random comes from ``config.seed``: the training subsample, batch
order and augmentations from ``(seed, epoch, position)``, the head's (and a
scratch encoder's) weights from the seed, dropout from the checkpointed RNG
state -- so a run killed and resumed ends with the weights and predictions
of an uninterrupted run (CPU, one thread; bit-equal in float64).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.distributed as torch_dist
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from cape import dist
from cape.errors import CapeError
from cape.finetune.checkpoint import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    check_resumable,
    load_checkpoint,
)
from cape.finetune.config import FinetuneConfig, save_config
from cape.finetune.data import EpochBatches, LabelledViewsDataset, make_train_loader
from cape.finetune.evaluate import build_results, predict, score, window_features
from cape.finetune.labels import Selection, select
from cape.finetune.model import (
    FinetuneModel,
    build_head,
    hidden_sizes,
    make_optimizer,
    resolve_encoder,
    save_model,
)
from cape.pretrain.checkpoint import atomic_torch_save, restore_rng, rng_state, seed_dropout
from cape.pretrain.data import StoreLike
from cape.pretrain.optim import learning_rates
from cape.pretrain.rundir import JsonlLog, RunDir, provenance, write_json
from cape.pretrain.train import start_process, store_fingerprint
from cape.protocols.results import write_results
from cape.samplers import stream_rng
from cape.store import CohortStore

logger = logging.getLogger(__name__)

DROPOUT_STREAM = 25
STANDARDISE_STREAM = 26
STORE_SAMPLING_RATE_HZ = 400


@dataclass(frozen=True)
class FinetuneRunDir(RunDir):
    """Paths of a fine-tuning run directory (see ``docs/finetuning.md``): a pretraining
    run's layout (config, provenance, log, checkpoints) plus the model and results."""

    @property
    def model(self) -> Path:
        return self.root / "model.safetensors"

    @property
    def results(self) -> Path:
        return self.root / "results"


@dataclass
class FinetuneResult:
    """What :func:`run_finetune` returns (every rank gets the same).

    Attributes:
        run_dir: the run directory.
        best_epoch: 1-based epoch whose weights were kept.
        best_val_score: its validation metric.
        epochs_run: epochs trained (fewer than ``config.epochs`` after early stopping).
        test_scores: one row per (model, test cohort): ``model``, ``test_cohort``,
            ``setting``, ``metric``, ``value``, ``n`` (the mean predictor included).
        history: one dict per epoch (``epoch``, ``train_loss``, ``val_score``, ``probe``).
    """

    run_dir: Path
    best_epoch: int
    best_val_score: float
    epochs_run: int
    test_scores: pd.DataFrame
    history: list[dict[str, Any]] = field(default_factory=list)


def open_store(config: FinetuneConfig) -> StoreLike:
    """Open ``config.store``.

    Raises:
        CapeError: the setting is missing or the store cannot be opened.
    """
    if config.store is None:
        raise CapeError("fine-tuning needs a store: --store PATH (or --set store=PATH)")
    return CohortStore.open(config.store)


def _broadcast_buffers(model: torch.nn.Module) -> None:
    # Batch-norm running statistics drift apart between ranks during an epoch (each rank
    # updates them from its own batch); evaluation and checkpoints use rank 0's.
    if dist.is_distributed() and dist.world_size() > 1:
        for buffer in model.buffers():
            torch_dist.broadcast(buffer, src=0)


def _clone_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def run_finetune(
    config: FinetuneConfig,
    *,
    resume: bool = False,
    store: StoreLike | None = None,
    step_callback: Callable[[int], None] | None = None,
) -> FinetuneResult:
    """Fine-tune a pretrained encoder (or train one from scratch) on a labelled task.

    Args:
        config: the run's settings (:class:`cape.finetune.FinetuneConfig`).
        resume: continue from ``OUT/checkpoints/last.pt``.
        store: an already open store (tests); default: open ``config.store``.
        step_callback: called with the global step after every optimisation step
            (and its checkpoint, if one is due); tests use it to simulate a kill.

    Returns:
        A :class:`FinetuneResult`; the run directory holds ``results/``
        (protocol tables of the test predictions) and ``model.safetensors``.

    Raises:
        CapeError: missing store or encoder, unknown task/column/cohort, no splits,
            an empty split, a batch larger than the training set, an existing run
            without ``resume``, or an incompatible checkpoint.
    """
    # ---- environment -----------------------------------------------------------------
    config = config.model_copy(
        update={
            "store": Path(config.store).resolve() if config.store is not None else None,
            "out_dir": Path(config.out_dir).resolve(),
            "encoder": Path(config.encoder).resolve() if config.encoder is not None else None,
        }
    )
    info, device, owns_process_group = start_process(
        config.device, config.threads, config.deterministic
    )
    try:
        return _run(config, info, device, resume, store, step_callback)
    finally:
        if owns_process_group:
            dist.shutdown()


def _run(
    config: FinetuneConfig,
    info: dist.DistInfo,
    device: torch.device,
    resume: bool,
    store: StoreLike | None,
    step_callback: Callable[[int], None] | None,
) -> FinetuneResult:
    # ---- data ----------------------------------------------------------------------------
    store = store if store is not None else open_store(config)
    rate = getattr(store, "sampling_rate_hz", STORE_SAMPLING_RATE_HZ)
    if rate != STORE_SAMPLING_RATE_HZ:
        raise CapeError(f"store {config.store} is at {rate} Hz; fine-tuning expects 400 Hz")
    selection = select(
        store.manifest,
        config.task,
        config.cohorts,
        config.test_cohorts,
        config.train_fraction,
        config.seed,
        config.topcoded,
        source=f"store {config.store}",
    )
    encoder, window, origin = resolve_encoder(config)
    batch_size = config.batch_size
    sampler = EpochBatches(
        len(selection.records["train"]), batch_size, config.seed, info.rank, info.world_size
    )
    dataset = LabelledViewsDataset(
        store,
        selection.records["train"],
        selection.targets["train"],
        config.augmenter(window),
        config.seed,
    )
    loader = make_train_loader(
        dataset, sampler, config.num_workers, config.seed, pin_memory=device.type == "cuda"
    )
    fingerprints = {"store": store_fingerprint(store), "selection": selection.fingerprint()}

    # ---- model, optimiser, schedule --------------------------------------------------------
    dtype = torch.float64 if config.precision == "float64" else torch.float32
    kind = selection.task.kind
    sizes = hidden_sizes(config, kind)
    head = build_head(
        encoder.feature_dim, sizes, len(selection.label_names), config.head_dropout, config.seed
    )
    model = FinetuneModel(encoder, head, kind)
    model.set_target_scaling(selection.targets["train"])
    model = model.to(device=device, dtype=dtype)
    optimizer = make_optimizer(model, config)
    factors = learning_rates(sampler.steps_per_epoch * config.epochs, 1.0, 0, config.schedule)
    use_bf16 = config.bf16 and device.type == "cuda"
    eval_settings: dict[str, Any] = {
        "n_windows": config.eval_windows,
        "batch_size": config.eval_batch_size,
        "device": device,
        "dtype": dtype,
        "num_workers": config.num_workers,
        "use_bf16": use_bf16,
    }

    # ---- resume (or start) ----------------------------------------------------------------
    run = FinetuneRunDir(Path(config.out_dir))
    start_epoch, start_step, global_step = 0, 0, 0
    early: dict[str, Any] = {
        "best_state": None,
        "best_score": None,
        "best_epoch": 0,
        "stale": 0,
        "stopped": False,
    }
    history: list[dict[str, Any]] = []
    resumed_loss = 0.0
    if resume and not run.last_checkpoint.exists():
        logger.warning("%s has no checkpoint yet: --resume starts from the beginning", run.root)
        resume = False
        if info.is_main:
            JsonlLog(run.log).truncate_after(-1)
    if resume:
        payload = load_checkpoint(run.last_checkpoint)
        check_resumable(
            payload, run.last_checkpoint, config, fingerprints["store"], fingerprints["selection"]
        )
        model.load_state_dict(payload["model"])
        optimizer.load_state_dict(payload["optimizer"])
        start_epoch, start_step = payload["epoch"], payload["step_in_epoch"]
        global_step = payload["global_step"]
        early = dict(payload["early_stopping"])
        history = list(payload["history"])
        resumed_loss = float(payload["epoch_loss"])
        restore_rng(
            payload["rng"], info.rank, info.world_size, config.seed, DROPOUT_STREAM, global_step
        )
        logger.info("resuming at epoch %d step %d", start_epoch, start_step)
    else:
        if run.last_checkpoint.exists():
            raise CapeError(
                f"{run.root} already holds a run ({run.last_checkpoint}); pass --resume to "
                "continue it or choose another out_dir"
            )
        if config.feature_standardisation:
            # The initial encoder's feature statistics on (up to) standardise_samples
            # training ECGs, by the evaluation window rule; identical on every rank.
            train_records = selection.records["train"]
            rng = stream_rng(config.seed, STANDARDISE_STREAM)
            picks = rng.permutation(len(train_records))[: config.standardise_samples]
            features = window_features(
                model, store, np.sort(train_records[picks]), window, **eval_settings
            )
            model.set_feature_scaling(features, config.standardise_floor)
        seed_dropout(config.seed, DROPOUT_STREAM, info.rank)

    train_model: torch.nn.Module = model
    if info.world_size > 1:
        # Linear-probe epochs leave the encoder's parameters without gradients.
        train_model = DistributedDataParallel(
            model,
            device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=config.probe_epochs > 0,
        )

    # ---- run directory (rank 0 only) ------------------------------------------------------
    log = JsonlLog(run.log)
    if info.is_main:
        run.root.mkdir(parents=True, exist_ok=True)
        if resume:
            log.truncate_after(global_step)
        else:
            save_config(config, run.config)
        facts = {
            "world_size": info.world_size,
            "device": str(device),
            "store_path": str(config.store),
            "store_fingerprint": fingerprints["store"],
            "selection_fingerprint": fingerprints["selection"],
            "task": selection.task.name,
            "label_names": list(selection.label_names),
            "counts": selection.counts.to_dict("records"),
            "steps_per_epoch": sampler.steps_per_epoch,
            "resumed_at_step": global_step if resume else None,
            **origin,
        }
        name = f"provenance-resume-{global_step}.json" if resume else run.provenance.name
        write_json(run.root / name, provenance(facts))

    def save(epoch: int, step_in_epoch: int, epoch_loss: float = 0.0) -> None:
        rng_states = dist.all_gather_object(rng_state(device))  # a collective: every rank
        _broadcast_buffers(model)
        if info.is_main:
            checkpoint = {
                "format": CHECKPOINT_FORMAT,
                "version": CHECKPOINT_VERSION,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "epoch": epoch,
                "step_in_epoch": step_in_epoch,
                "global_step": global_step,
                "rng": rng_states,
                "early_stopping": early,
                "history": history,
                "epoch_loss": epoch_loss,
                "config": config.to_dict(),
                "store_fingerprint": fingerprints["store"],
                "selection_fingerprint": fingerprints["selection"],
            }
            atomic_torch_save(checkpoint, run.last_checkpoint)

    # ---- epochs ---------------------------------------------------------------------------------
    sign = 1.0 if selection.task.higher_is_better else -1.0
    for epoch in range(start_epoch, config.epochs):
        if early["stopped"]:
            break
        probe = epoch < config.probe_epochs
        sampler.set_epoch(epoch, start_step if epoch == start_epoch else 0)
        train_model.train()
        if probe:
            model.encoder.eval()  # frozen: no dropout, no batch-norm statistics updates
        # Loss summed over this epoch's steps so far (carried through a mid-epoch resume).
        steps = sampler.start_step
        loss_sum = torch.tensor(resumed_loss if steps else 0.0, dtype=torch.float64, device=device)
        ecgs, started = 0, time.perf_counter()
        bar = tqdm(
            total=sampler.steps_per_epoch,
            initial=sampler.start_step,
            desc=f"epoch {epoch + 1}/{config.epochs}",
            disable=not (info.is_main and config.progress),
            leave=False,
        )
        for batch in loader:
            # -- one optimisation step
            factor = float(factors[global_step])
            for group in optimizer.param_groups:
                frozen = probe and group["name"] == "encoder"
                group["lr"] = 0.0 if frozen else group["base_lr"] * factor
            views = batch["views"].to(device, dtype=dtype, non_blocking=True)
            targets = batch["targets"].to(device, dtype=dtype, non_blocking=True)
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_bf16):
                outputs = train_model(views, freeze_encoder=probe)
            loss = model.loss(outputs.to(dtype), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            global_step += 1
            steps += 1
            ecgs += batch_size
            loss_sum += loss.detach().double()
            step_in_epoch = steps  # steps done in this epoch
            bar.update(1)

            # -- logs and checkpoints
            if global_step % config.log_every_steps == 0 and info.is_main:
                log.write(
                    {
                        "kind": "step",
                        "epoch": epoch,
                        "step": step_in_epoch - 1,
                        "global_step": global_step,
                        "loss": float(loss.detach()),
                        "lr_head": factor * config.lr,
                        "lr_encoder": 0.0 if probe else factor * config.encoder_lr,
                        "ecgs_per_s": ecgs / max(time.perf_counter() - started, 1e-9),
                    }
                )
            last_step = step_in_epoch == sampler.steps_per_epoch
            if config.checkpoint_every_steps and not last_step:
                if global_step % config.checkpoint_every_steps == 0:
                    save(epoch, step_in_epoch, float(loss_sum.item()))
            if step_callback is not None:
                step_callback(global_step)
        bar.close()

        # -- validation, early stopping, checkpoint
        train_loss = float(dist.all_reduce_mean(loss_sum).item()) / max(steps, 1)
        if not np.isfinite(train_loss):
            raise CapeError(
                f"training diverged in epoch {epoch + 1} (mean loss {train_loss}); lower lr "
                f"({config.lr}) or encoder_lr ({config.encoder_lr})"
            )
        _broadcast_buffers(model)
        val_pred = predict(model, store, selection.records["val"], window, **eval_settings)
        val_score = score(selection, selection.targets["val"], val_pred)
        improved = bool(np.isfinite(val_score)) and (
            early["best_score"] is None
            or sign * val_score > sign * early["best_score"] + config.min_delta
        )
        if improved:
            early.update(best_state=_clone_state(model), best_score=val_score, best_epoch=epoch + 1)
            early["stale"] = 0
        else:
            early["stale"] += 1
            if config.patience and early["stale"] >= config.patience:
                early["stopped"] = True
        record = {
            "kind": "epoch",
            "epoch": epoch,
            "global_step": global_step,
            "probe": probe,
            "train_loss": train_loss,
            "val_score": val_score,
            "metric": selection.task.metric,
            "best_epoch": early["best_epoch"],
            "seconds": time.perf_counter() - started,
        }
        history.append({k: record[k] for k in ("epoch", "train_loss", "val_score", "probe")})
        save(epoch + 1, 0)
        if info.is_main:
            log.write(record)
            logger.info("epoch %d: %s", epoch, record)
        start_step = 0

    # ---- best epoch restored, test predictions --------------------------------------------
    if early["best_state"] is not None:
        model.load_state_dict(early["best_state"])
    test_pred = predict(model, store, selection.records["test"], window, **eval_settings)
    encoder_seed = config.seed if config.init == "scratch" else int(origin.get("encoder_seed", 0))
    settings = {
        **config.to_dict(),
        "best_epoch": early["best_epoch"],
        "best_val_score": early["best_score"],
        "epochs_run": len(history),
        **origin,
    }
    result = build_results(
        selection,
        store.manifest,
        test_pred,
        model_name=config.model_name,
        baseline="scratch" if config.init == "scratch" else "",
        encoder_seed=encoder_seed,
        run=config.seed,
        settings=settings,
    )
    if info.is_main:
        write_results(result, run.results)
        save_model(model, _model_metadata(config, selection, model, window, sizes), run.model)
    dist.barrier()
    scores = result.results[["model", "test_cohort", "setting", "metric", "value", "n"]]
    return FinetuneResult(
        run_dir=run.root,
        best_epoch=int(early["best_epoch"]),
        best_val_score=float(early["best_score"]) if early["best_score"] is not None else np.nan,
        epochs_run=len(history),
        test_scores=scores.reset_index(drop=True),
        history=history,
    )


def _model_metadata(
    config: FinetuneConfig,
    selection: Selection,
    model: FinetuneModel,
    window: int,
    sizes: tuple[int, ...],
) -> dict[str, Any]:
    return {
        "encoder_spec": model.encoder.spec.to_dict(),
        "window_samples": window,
        "task": selection.task.name,
        "kind": selection.task.kind,
        "label_names": list(selection.label_names),
        "hidden_sizes": list(sizes),
        "head_dropout": config.head_dropout,
        "config": config.to_dict(),
    }
