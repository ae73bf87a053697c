"""Fine-tuning checkpoints: what an exact resume needs, checked before it is used.

``checkpoints/last.pt`` holds the model and optimiser state, the position in
the run (next epoch, step within it, global step), every rank's RNG states,
the early-stopping state (best weights, best score and epoch, epochs without
gain, whether training stopped), the per-epoch history, the resolved config
and the fingerprints of the store and of the selected ECGs. Only tensors and
plain values: it loads with ``torch.load(weights_only=True)``. Writes are
atomic (:func:`cape.pretrain.checkpoint.atomic_torch_save`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cape.errors import CapeError
from cape.finetune.config import FinetuneConfig, validate_config
from cape.pretrain.checkpoint import read_checkpoint

CHECKPOINT_FORMAT = "cape-finetune-checkpoint"
CHECKPOINT_VERSION = 1


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a fine-tuning checkpoint with ``weights_only=True``.

    Raises:
        CapeError: missing, unreadable, or not a CAPE fine-tuning checkpoint.
    """
    return read_checkpoint(path, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, "fine-tuning")


def check_resumable(
    payload: dict[str, Any],
    path: Path,
    config: FinetuneConfig,
    store_fingerprint: str,
    selection_fingerprint: str,
) -> None:
    """Refuse to continue a checkpoint with another store, selection or setting.

    Raises:
        CapeError: naming what differs.
    """
    if payload["store_fingerprint"] != store_fingerprint:
        raise CapeError(
            f"checkpoint {path} was trained on a different store (fingerprint "
            f"{payload['store_fingerprint']}, this store {store_fingerprint})"
        )
    if payload["selection_fingerprint"] != selection_fingerprint:
        raise CapeError(
            f"checkpoint {path} was trained on other ECGs or labels (splits, cohorts, "
            "train_fraction or labels changed)"
        )
    saved = validate_config(payload["config"], f"config stored in {path}")
    differences = saved.differences(config)
    if differences:
        raise CapeError(
            f"checkpoint {path} was made with other settings: {', '.join(differences)}; "
            "resume with the run's config.yaml"
        )
