"""Training checkpoints: atomic writes, safe loads, compatibility checks.

A checkpoint (``checkpoints/last.pt``) holds everything needed to continue a
run exactly: model and optimiser state, the position in the run (epoch, step
within it, global step), every rank's RNG states, the resolved config, the
encoder spec and the fingerprints of the store and of the pretraining
selection. It holds only tensors and plain Python values, so it is loaded
with ``torch.load(weights_only=True)`` -- a checkpoint cannot run code.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cape.errors import CapeError
from cape.pretrain.config import PretrainConfig, validate_config

logger = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "cape-pretrain-checkpoint"
CHECKPOINT_VERSION = 1


def atomic_torch_save(payload: Any, path: Path) -> None:
    """``torch.save`` to a temporary file in the same directory, then rename over ``path``.

    A run killed while writing leaves the previous checkpoint intact.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            torch.save(payload, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def make_checkpoint(
    *,
    model_state: dict[str, torch.Tensor],
    optimizer_state: dict[str, Any],
    epoch: int,
    step_in_epoch: int,
    global_step: int,
    rng_states: list[dict[str, Any]],
    config: PretrainConfig,
    store_fingerprint: str,
    selection_fingerprint: str,
) -> dict[str, Any]:
    """Assemble a checkpoint dict (``epoch``/``step_in_epoch``: where to continue)."""
    return {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "model": model_state,
        "optimizer": optimizer_state,
        "epoch": epoch,
        "step_in_epoch": step_in_epoch,
        "global_step": global_step,
        "rng": rng_states,
        "config": config.to_dict(),
        "encoder_spec": config.encoder_spec().to_dict(),
        "store_fingerprint": store_fingerprint,
        "selection_fingerprint": selection_fingerprint,
    }


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``.

    Raises:
        CapeError: missing, unreadable, or not a CAPE pretraining checkpoint.
    """
    return read_checkpoint(path, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, "pretraining")


def read_checkpoint(path: Path, format_name: str, version: int, kind: str) -> dict[str, Any]:
    """A checkpoint's payload, checked to be of ``format_name`` at ``version``.

    Raises:
        CapeError: missing, unreadable, another format (named "not a CAPE ``kind``
            checkpoint") or another version.
    """
    if not path.is_file():
        raise CapeError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise CapeError(f"checkpoint {path} cannot be read: {error}") from error
    if not isinstance(payload, dict) or payload.get("format") != format_name:
        raise CapeError(f"{path} is not a CAPE {kind} checkpoint")
    if payload.get("version") != version:
        raise CapeError(
            f"{path}: checkpoint version {payload.get('version')} is not supported "
            f"(this CAPE reads version {version})"
        )
    return payload


def checkpoint_config(payload: dict[str, Any], path: Path) -> PretrainConfig:
    """The config a checkpoint was trained with."""
    return validate_config(payload["config"], f"config stored in {path}")


def check_resumable(
    payload: dict[str, Any],
    path: Path,
    config: PretrainConfig,
    store_fingerprint: str,
    selection_fingerprint: str,
) -> None:
    """Refuse to continue a checkpoint with another architecture, store or setting.

    Raises:
        CapeError: naming what differs.
    """
    saved_spec = payload["encoder_spec"]
    spec = config.encoder_spec().to_dict()
    if saved_spec != spec:
        changed = sorted(k for k in set(spec) | set(saved_spec) if spec.get(k) != saved_spec.get(k))
        details = ", ".join(f"{k}: {saved_spec.get(k)!r} -> {spec.get(k)!r}" for k in changed)
        raise CapeError(f"checkpoint {path} is from a different encoder architecture ({details})")
    if payload["store_fingerprint"] != store_fingerprint:
        raise CapeError(
            f"checkpoint {path} was trained on a different store (fingerprint "
            f"{payload['store_fingerprint']}, this store {store_fingerprint})"
        )
    if payload["selection_fingerprint"] != selection_fingerprint:
        raise CapeError(
            f"checkpoint {path} was trained on a different selection of patients "
            "(cohorts, excluded splits or splits changed)"
        )
    differences = checkpoint_config(payload, path).differences(config)
    if differences:
        raise CapeError(
            f"checkpoint {path} was made with other settings: {', '.join(differences)}; "
            "resume with the run's config.yaml"
        )


def seed_dropout(seed: int, stream: int, rank: int) -> None:
    """Seed torch's generator for dropout: ranks differ, a fresh run depends on the seed only."""
    state = np.random.SeedSequence([seed, stream, rank]).generate_state(2)
    torch.manual_seed(int(state[0]) << 32 | int(state[1]))


def rng_state(device: torch.device) -> dict[str, Any]:
    """This rank's torch generator states (CPU, and CUDA on a GPU), for a checkpoint."""
    cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
    return {"cpu": torch.get_rng_state(), "cuda": cuda}


def restore_rng(
    states: list[dict[str, Any]], rank: int, world_size: int, seed: int, stream: int, step: int
) -> None:
    """Put back this rank's generator states; another world size reseeds dropout instead."""
    if len(states) != world_size:
        logger.warning(
            "checkpoint has RNG states of %d ranks, this run has %d: reseeding dropout",
            len(states),
            world_size,
        )
        seed_dropout(seed + step, stream, rank)
        return
    torch.set_rng_state(states[rank]["cpu"])
    if states[rank]["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state(states[rank]["cuda"])
