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

from cape.finetune.config import FinetuneConfig, ScratchModelSettings, load_finetune_config
from cape.finetune.labels import Selection, resolve_task, select, subsample_patients
from cape.finetune.model import FinetuneModel, load_finetuned
from cape.finetune.train import FinetuneResult, FinetuneRunDir, run_finetune

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
