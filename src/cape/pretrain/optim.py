"""Optimiser and per-step learning-rate schedule.

The schedule is precomputed as one learning rate per optimisation step (as
DINO does): a linear warm-up from 0 over ``warmup_epochs``, then either a
constant rate or a half-period cosine decay from ``lr`` to ``min_lr`` -- the
CAPE paper's schedule is the cosine without warm-up. Being a plain array
indexed by the global step, it resumes exactly.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from cape.pretrain.config import PretrainConfig


def learning_rates(
    total_steps: int,
    base_lr: float,
    warmup_steps: int = 0,
    schedule: str = "cosine",
    min_lr: float = 0.0,
) -> np.ndarray:
    """Learning rate of every optimisation step.

    Args:
        total_steps: number of steps in the run.
        base_lr: peak rate (reached at the end of the warm-up).
        warmup_steps: steps of linear warm-up (the first step gets ``base_lr / warmup_steps``).
        schedule: ``"cosine"`` (half-period, to ``min_lr`` at the last step) or ``"constant"``.
        min_lr: final rate of the cosine.

    Returns:
        ``(total_steps,)`` float64.

    Raises:
        ValueError: unknown schedule or negative step counts.
    """
    if total_steps < 0 or warmup_steps < 0:
        raise ValueError("step counts must be non-negative")
    if schedule not in ("cosine", "constant"):
        raise ValueError(f"schedule must be 'cosine' or 'constant', got {schedule!r}")
    warmup_steps = min(warmup_steps, total_steps)
    warmup = base_lr * np.arange(1, warmup_steps + 1) / max(warmup_steps, 1)
    decay_steps = total_steps - warmup_steps
    if schedule == "constant":
        decay = np.full(decay_steps, base_lr)
    else:
        progress = np.arange(decay_steps) / max(decay_steps - 1, 1)
        decay = min_lr + 0.5 * (base_lr - min_lr) * (1.0 + np.cos(math.pi * progress))
    return np.concatenate([warmup, decay]).astype(np.float64)


def schedule_for(config: PretrainConfig, steps_per_epoch: int) -> np.ndarray:
    """The per-step learning rates of a run."""
    return learning_rates(
        total_steps=config.epochs * steps_per_epoch,
        base_lr=config.lr,
        warmup_steps=round(config.warmup_epochs * steps_per_epoch),
        schedule=config.schedule,
        min_lr=config.min_lr,
    )


def make_optimizer(model: nn.Module, config: PretrainConfig) -> torch.optim.Optimizer:
    """Adam (the paper's), AdamW or SGD with momentum, with weight decay on weights only.

    Norm scales/shifts and biases (1-D parameters) get no weight decay: shrinking
    them towards zero only fights the normalisation.
    """
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim <= 1]
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    if config.optimizer == "sgd":
        # Linear in the gradient, unlike Adam, which is blind to a gradient scaled by a
        # constant (e.g. a loss multiplied by the world size): exact checks use it.
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum)
    optimizer_class = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    return optimizer_class(groups, lr=config.lr)
