"""Fine-tuning a pretrained encoder end to end, and the from-scratch supervised baseline.

Main entry points::

    from cape.finetune import load_finetune_config, run_finetune, load_finetuned
    config = load_finetune_config(None, ["store=stores/demo", "encoder=runs/idb",
                                         "task=age", "out_dir=runs/ft-age"])
    result = run_finetune(config)                # FinetuneResult: run_dir, best_epoch, test_scores
    scratch = run_finetune(config.model_copy(update={"init": "scratch",
                                                     "out_dir": "runs/scratch-age"}))
    model, metadata = load_finetuned(result.run_dir)

See ``docs/finetuning.md``.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

# Names resolved on first use: reading or checking a config (`cape study check`)
# must not import torch through the training loop.
_WHERE = {
    "FinetuneConfig": "config",
    "ScratchModelSettings": "config",
    "load_finetune_config": "config",
    "Selection": "labels",
    "resolve_task": "labels",
    "select": "labels",
    "subsample_patients": "labels",
    "FinetuneModel": "model",
    "load_finetuned": "model",
    "FinetuneResult": "train",
    "FinetuneRunDir": "train",
    "run_finetune": "train",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(f"cape.finetune.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'cape.finetune' has no attribute {name!r}")


__all__ = [
    "FinetuneConfig",
    "FinetuneModel",
    "FinetuneResult",
    "FinetuneRunDir",
    "ScratchModelSettings",
    "Selection",
    "load_finetune_config",
    "load_finetuned",
    "resolve_task",
    "run_finetune",
    "select",
    "subsample_patients",
]
