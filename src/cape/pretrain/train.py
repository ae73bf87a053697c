"""The pretraining loop: one function that reads top to bottom.

``pretrain(config)`` runs in one process or under ``torchrun`` (DDP; gloo on
CPU, NCCL on CUDA; only rank 0 writes). Sections: environment -> data ->
model, loss, optimiser, schedule -> resume -> run directory -> epochs.
Everything random is derived from ``config.seed``: pairs and batches from
(seed, epoch), augmentations from (seed, epoch, sample position, view),
initial weights from the seed, dropout from the checkpointed RNG state -- so
a run killed mid-epoch and resumed ends with the weights of an uninterrupted
run (on CPU, deterministic settings).
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from cape import dist
from cape.errors import CapeError
from cape.losses import ContrastiveOutput, NTXentLoss
from cape.pretrain.checkpoint import (
    atomic_torch_save,
    check_resumable,
    load_checkpoint,
    make_checkpoint,
    restore_rng,
    rng_state,
    seed_dropout,
)
from cape.pretrain.config import PretrainConfig, save_config
from cape.pretrain.data import PairViewsDataset, StoreLike, make_loader
from cape.pretrain.encoder_io import build_model, export_encoder
from cape.pretrain.optim import make_optimizer, schedule_for
from cape.pretrain.rundir import JsonlLog, RunDir, provenance, write_json
from cape.samplers import PairBatchSampler, PatientTable
from cape.store import CohortStore

logger = logging.getLogger(__name__)

DROPOUT_STREAM = 4
STORE_SAMPLING_RATE_HZ = 400
SIGNAL_DIGEST_RECORDS = 64  # ECGs read for the store fingerprint's signal digest


def resolve_device(kind: str) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU.

    Raises:
        CapeError: ``"cuda"`` requested without a GPU.
    """
    if kind == "cuda" and not torch.cuda.is_available():
        raise CapeError("device=cuda but no CUDA GPU is available; use device=auto or cpu")
    if kind == "auto":
        kind = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(kind)


def open_store(config: PretrainConfig) -> StoreLike:
    """Open ``config.store``.

    Raises:
        CapeError: the setting is missing or the store cannot be opened.
    """
    if config.store is None:
        raise CapeError("pretraining needs a store: set `store:` in the config or --set store=PATH")
    return CohortStore.open(config.store)


def signal_digest(store: StoreLike, n_records: int = SIGNAL_DIGEST_RECORDS) -> str:
    """A cheap digest of the stored signals themselves.

    Hashes the samples of up to ``n_records`` evenly spaced ECGs (first and last
    included; ~4 MB read for the default) and, when the manifest has one, its
    per-ECG ``signal_hash`` column. It does not depend on file names, sizes or
    modification times, so a store copied to another machine keeps its digest.
    """
    hasher = hashlib.sha256()
    if "signal_hash" in store.manifest.columns:
        hashed = pd.util.hash_pandas_object(store.manifest["signal_hash"], index=False)
        hasher.update(hashed.to_numpy().tobytes())
    n = len(store)
    picks = np.unique(np.linspace(0, n - 1, num=min(n, n_records)).round().astype(np.int64))
    for index in picks:
        hasher.update(np.ascontiguousarray(store.read(int(index))).tobytes())
    return hasher.hexdigest()[:16]


def store_fingerprint(store: StoreLike) -> str:
    """``MANIFEST-SIGNALS``: the store's own fingerprint (or a hash of its manifest)
    joined with :func:`signal_digest`.

    The manifest alone misses a store rewritten in place with other signals
    (re-ingested with other preprocessing, a shard replaced): a resume would
    then silently continue on different data.
    """
    method = getattr(store, "fingerprint", None)
    if callable(method):
        manifest = str(method())
    else:
        hashed = pd.util.hash_pandas_object(store.manifest, index=True).to_numpy()
        manifest = hashlib.sha256(hashed.tobytes()).hexdigest()[:16]
    return f"{manifest}-{signal_digest(store)}"


def start_process(
    device_setting: str, threads: int | None, deterministic: bool
) -> tuple[dist.DistInfo, torch.device, bool]:
    """Device, process group (joined under torchrun), threads and determinism of a run.

    Returns:
        ``(info, device, owns_process_group)``: shut the group down at the end when
        this call created it.
    """
    device = resolve_device(device_setting)
    owns_process_group = not dist.is_distributed()
    info = dist.init_from_env(device.type == "cuda")
    if device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
    if threads:
        torch.set_num_threads(threads)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
    return info, device, owns_process_group


def pretrain(
    config: PretrainConfig,
    *,
    resume: bool = False,
    store: StoreLike | None = None,
    step_callback: Callable[[int], None] | None = None,
) -> Path:
    """Run (or resume) patient-contrastive pretraining.

    Args:
        config: the run's settings.
        resume: continue from ``OUT/checkpoints/last.pt``.
        store: an already open store (tests); default: open ``config.store``.
        step_callback: called with the global step after every optimisation
            step (and its checkpoint, if one is due); tests use it to simulate a crash.

    Returns:
        The run directory.

    Raises:
        CapeError: missing store, no eligible patients, unknown cohort, batch
            too large, an existing run without ``resume``, or an incompatible checkpoint.
    """
    # ---- environment -----------------------------------------------------------------
    # Absolute paths in the saved config, so it can be re-run from anywhere.
    config = config.model_copy(
        update={
            "store": Path(config.store).resolve() if config.store is not None else None,
            "out_dir": Path(config.out_dir).resolve(),
        }
    )
    info, device, owns_process_group = start_process(
        config.device, config.threads, config.deterministic
    )
    try:
        return _pretrain(config, info, device, resume, store, step_callback)
    finally:
        if owns_process_group:
            dist.shutdown()


def _pretrain(
    config: PretrainConfig,
    info: dist.DistInfo,
    device: torch.device,
    resume: bool,
    store: StoreLike | None,
    step_callback: Callable[[int], None] | None,
) -> Path:
    # ---- data ----------------------------------------------------------------------------
    store = store if store is not None else open_store(config)
    rate = getattr(store, "sampling_rate_hz", STORE_SAMPLING_RATE_HZ)
    if rate != STORE_SAMPLING_RATE_HZ:
        raise CapeError(f"store {config.store} is at {rate} Hz; pretraining expects 400 Hz")
    table = PatientTable.from_manifest(store.manifest, config.cohorts, config.exclude_splits)
    sampler = PairBatchSampler(
        table,
        config.batch_patients,
        config.batching,
        config.seed,
        info.rank,
        info.world_size,
        config.small_cohorts,
    )
    dataset = PairViewsDataset(store, config.augmenter(), config.seed)
    loader = make_loader(
        dataset, sampler, config.num_workers, config.seed, pin_memory=device.type == "cuda"
    )
    fingerprints = {"store": store_fingerprint(store), "selection": table.fingerprint()}

    # ---- model, loss, optimiser, schedule -------------------------------------------------
    dtype = torch.float64 if config.precision == "float64" else torch.float32
    model = build_model(config).to(device=device, dtype=dtype)
    optimizer = make_optimizer(model, config)
    learning_rates = schedule_for(config, sampler.steps_per_epoch)
    loss_fn = NTXentLoss(config.temperature)

    # ---- resume ------------------------------------------------------------------------------
    run = RunDir(Path(config.out_dir))
    start_epoch, start_step, global_step = 0, 0, 0
    if resume and not run.last_checkpoint.exists():
        # Killed before its first checkpoint: nothing to continue, so start afresh.
        logger.warning(
            "%s has no checkpoint yet (%s): --resume starts the run from the beginning",
            run.root,
            run.last_checkpoint,
        )
        resume = False
        if info.is_main:
            JsonlLog(run.log).truncate_after(-1)  # the killed run's lines describe nothing kept
    if resume:
        payload = load_checkpoint(run.last_checkpoint)
        check_resumable(
            payload, run.last_checkpoint, config, fingerprints["store"], fingerprints["selection"]
        )
        model.load_state_dict(payload["model"])
        optimizer.load_state_dict(payload["optimizer"])
        start_epoch, start_step = payload["epoch"], payload["step_in_epoch"]
        global_step = payload["global_step"]
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
        seed_dropout(config.seed, DROPOUT_STREAM, info.rank)

    train_model: torch.nn.Module = model
    if info.world_size > 1:
        train_model = DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    if config.compile:
        train_model = torch.compile(train_model)  # type: ignore[assignment]

    # ---- run directory (rank 0 only) ------------------------------------------------------
    log = JsonlLog(run.log)
    writer = None
    if info.is_main:
        run.root.mkdir(parents=True, exist_ok=True)
        if resume:
            dropped = log.truncate_after(global_step)
            if dropped:
                logger.info(
                    "dropped %d log lines past the checkpoint's step %d", dropped, global_step
                )
        if not resume:
            save_config(config, run.config)
        facts = {
            "world_size": info.world_size,
            "device": str(device),
            "store_path": str(config.store),
            "store_fingerprint": fingerprints["store"],
            "selection_fingerprint": fingerprints["selection"],
            "patients_per_cohort": table.patients_per_cohort(),
            "steps_per_epoch": sampler.steps_per_epoch,
            "skipped_cohorts": list(sampler.skip_cohorts),
            "resumed_at_step": global_step if resume else None,
        }
        name = f"provenance-resume-{global_step}.json" if resume else run.provenance.name
        write_json(run.root / name, provenance(facts))
        if config.tensorboard:
            writer = _tensorboard_writer(run.tensorboard)

    def save(epoch: int, step_in_epoch: int) -> None:
        rng_states = dist.all_gather_object(rng_state(device))  # a collective: every rank
        if info.is_main:
            checkpoint = make_checkpoint(
                model_state=model.state_dict(),
                optimizer_state=optimizer.state_dict(),
                epoch=epoch,
                step_in_epoch=step_in_epoch,
                global_step=global_step,
                rng_states=rng_states,
                config=config,
                store_fingerprint=fingerprints["store"],
                selection_fingerprint=fingerprints["selection"],
            )
            atomic_torch_save(checkpoint, run.last_checkpoint)

    # ---- epochs ---------------------------------------------------------------------------------
    use_bf16 = config.bf16 and device.type == "cuda"
    for epoch in range(start_epoch, config.epochs):
        sampler.set_epoch(epoch, start_step if epoch == start_epoch else 0)
        train_model.train()
        window = _Window(device)
        epoch_window = _Window(device)
        bar = tqdm(
            total=sampler.steps_per_epoch,
            initial=sampler.start_step,
            desc=f"epoch {epoch + 1}/{config.epochs}",
            disable=not (info.is_main and config.progress),
            leave=False,
        )
        for batch in loader:
            # -- one optimisation step
            lr = float(learning_rates[global_step])
            for group in optimizer.param_groups:
                group["lr"] = lr
            views = batch["views"].to(device, dtype=dtype, non_blocking=True)
            n = views.shape[0] // 2
            cohorts = batch["cohorts"].to(device) if config.batching == "idb-mask" else None
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_bf16):
                projections = train_model(views)
            out = loss_fn(projections[:n], projections[n:], cohorts)
            optimizer.zero_grad(set_to_none=True)
            out.loss.backward()
            optimizer.step()
            global_step += 1
            step_in_epoch = sampler.start_step + epoch_window.steps  # the step just taken
            for accumulator in (window, epoch_window):
                accumulator.add(out, bool(batch["single_cohort"]), 2 * config.batch_patients)
            bar.update(1)

            # -- logs and checkpoints
            if global_step % config.log_every_steps == 0:
                record = {"kind": "step", "epoch": epoch, "step": step_in_epoch, "lr": lr}
                record.update(global_step=global_step, **window.summary())  # a collective
                if info.is_main:
                    log.write(record)
                    bar.set_postfix(loss=f"{record['loss']:.4f}", lr=f"{lr:.1e}")
                    if writer is not None:
                        for key in (
                            "loss",
                            "lr",
                            "ecgs_per_s",
                            "positive_similarity",
                            "negative_similarity",
                            "single_cohort_fraction",
                        ):
                            writer.add_scalar(f"train/{key}", record[key], global_step)
                window = _Window(device)
            last_step = step_in_epoch + 1 == sampler.steps_per_epoch
            if config.checkpoint_every_steps and not last_step:
                if global_step % config.checkpoint_every_steps == 0:
                    save(epoch, step_in_epoch + 1)
            if step_callback is not None:
                step_callback(global_step)
        bar.close()

        # -- end of epoch
        record = {"kind": "epoch", "epoch": epoch, "global_step": global_step}
        record.update(epoch_window.summary())  # a collective: every rank
        save(epoch + 1, 0)
        if info.is_main:
            log.write(record)
            export_encoder(model.encoder, config, run.encoder)
            logger.info("epoch %d: %s", epoch, record)
        start_step = 0
    if writer is not None:
        writer.close()
    dist.barrier()
    return run.root


class _Window:
    """Running sums of the step statistics since the last log line."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.sums = torch.zeros(4, dtype=torch.float64, device=device)
        self.steps = 0
        self.ecgs = 0
        self.single_cohort = 0
        self.started = time.perf_counter()

    def add(self, out: ContrastiveOutput, single_cohort: bool, ecgs: int) -> None:
        negative = out.negative_similarity.detach()
        finite = torch.isfinite(negative)
        values = torch.stack(
            [
                out.loss.detach().double(),
                out.positive_similarity.detach().double(),
                torch.where(finite, negative, 0.0).double(),
                finite.double(),
            ]
        )
        self.sums += values
        self.steps += 1
        self.ecgs += ecgs
        self.single_cohort += int(single_cohort)

    def summary(self) -> dict[str, Any]:
        """Means over the window, averaged over ranks (all ranks must call it)."""
        sums = dist.all_reduce_mean(self.sums).tolist()
        seconds = max(time.perf_counter() - self.started, 1e-9)
        steps = max(self.steps, 1)
        return {
            "loss": sums[0] / steps,
            "positive_similarity": sums[1] / steps,
            "negative_similarity": sums[2] / sums[3] if sums[3] else float("nan"),
            "single_cohort_fraction": self.single_cohort / steps,
            "ecgs_per_s": self.ecgs / seconds,
            "steps": self.steps,
            "seconds": seconds,
        }


def _tensorboard_writer(path: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as error:
        raise CapeError(
            "tensorboard: true needs the tensorboard package (pip install tensorboard)"
        ) from error
    return SummaryWriter(log_dir=str(path))
