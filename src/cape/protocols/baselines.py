"""Baselines that sit beside every model in a protocol's tables.

Out-of-distribution error means little on its own (the feasibility prototype
saw an untrained encoder predict age as well as a pretrained one), so every
table carries three references:

- the **untrained encoder**: just another features directory, embedded with
  ``cape embed --untrained`` (``embed.json`` says ``untrained: true``); its
  rows carry ``baseline = "untrained"``;
- the **mean predictor** (this module): the training sample's mean age, or
  its prevalence of each class / label, predicted for every ECG; model name
  ``mean-predictor``. Its AUROC is 0.5 by construction (all scores tie); its
  MAE is the error of knowing nothing but the training cohort's age
  distribution;
- the **in-cohort head** (OOD only): a head trained on the target cohort's
  own train split with the same sizes, the ceiling a transferred head can
  reach on those ECGs (``setting = "in-cohort"``).
"""

from __future__ import annotations

import numpy as np

from cape.protocols.tasks import TaskSpec


def mean_predictor(task: TaskSpec, y_train: np.ndarray, n: int) -> np.ndarray:
    """Constant predictions from the training targets.

    Args:
        task: the task.
        y_train: ``(m,)`` training ages / 0-1 labels or ``(m, k)`` 0/1 labels.
        n: number of ECGs to predict.

    Returns:
        ``(n,)`` the training mean (regression) or prevalence (binary), or
        ``(n, k)`` per-label prevalences (multilabel).

    Raises:
        ValueError: empty training targets.
    """
    targets = np.asarray(y_train, dtype=np.float64)
    if targets.shape[0] == 0:
        raise ValueError("the mean predictor needs at least one training target")
    value = targets.mean(axis=0)
    if task.kind == "multilabel":
        return np.tile(value, (n, 1))
    return np.full(n, float(value))
