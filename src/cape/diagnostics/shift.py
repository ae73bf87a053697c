"""Feature shift: each cohort's centroid against the training cohort's, in training SDs.

Measured with the heads' std floor (:mod:`cape.heads.scaling`), so a reported
shift is the displacement a head's standardised inputs see: the quantity that
made out-of-distribution heads extrapolate in the feasibility prototype.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from cape.heads.base import check_features
from cape.heads.scaling import DEFAULT_RELATIVE_FLOOR, Standardizer


class FeatureShift(NamedTuple):
    """What :func:`feature_shift` returns.

    ``table``: one row per (dimension, target cohort) with ``dimension``,
    ``target_cohort``, ``shift`` (target mean minus training mean, in floored
    training SDs), ``train_mean``, ``target_mean``, ``train_std`` (unfloored),
    ``floored``.

    ``summary``: one row per target cohort with ``target_cohort``,
    ``n_samples``, ``max_abs_shift``, ``dimension_of_max``, ``mean_abs_shift``,
    ``median_abs_shift``, ``threshold_sd``, ``n_beyond_threshold``,
    ``fraction_beyond_threshold``, ``n_floored`` (dimensions whose training std
    was floored).
    """

    table: pd.DataFrame
    summary: pd.DataFrame


def feature_shift(
    train_features: np.ndarray,
    target_features: Mapping[str, np.ndarray],
    threshold_sd: float = 5.0,
    relative_std_floor: float = DEFAULT_RELATIVE_FLOOR,
    dimension_names: Sequence[str] | None = None,
) -> FeatureShift:
    """Per-dimension shift of each target cohort's centroid from the training cohort's.

    The shift is measured in the training cohort's standard deviations after
    the same floor the heads apply, so it is the displacement the head's
    standardised inputs actually see. With features and cohort labels in one
    array: ``feature_shift(f[c == "A"], {k: f[c == k] for k in others})``.

    Args:
        train_features: ``(n_train, d)`` features of the training cohort.
        target_features: cohort name -> ``(n_k, d)`` features.
        threshold_sd: a dimension counts as shifted beyond ``threshold_sd`` SDs.
        relative_std_floor: see :func:`cape.heads.scaling.floored_std`.
        dimension_names: ``d`` names; defaults to ``0 .. d-1``.

    Raises:
        ValueError: on NaN features, no targets, or mismatched dimensions.
    """
    train = check_features(train_features, "train_features")
    if not target_features:
        raise ValueError("target_features is empty; give at least one target cohort")
    n_dims = train.shape[1]
    names = list(range(n_dims)) if dimension_names is None else list(dimension_names)
    if len(names) != n_dims:
        raise ValueError(f"{len(names)} dimension names for {n_dims} dimensions")
    scaler = Standardizer(relative_floor=relative_std_floor).fit(train)
    tables, summaries = [], []
    for cohort, values in target_features.items():
        target = check_features(values, f"target_features[{cohort!r}]")
        if target.shape[1] != n_dims:
            raise ValueError(
                f"cohort {cohort!r} has {target.shape[1]} dimensions, training {n_dims}"
            )
        target_mean = target.astype(np.float64).mean(axis=0)
        shift = (target_mean - scaler.mean_) / scaler.scale_
        tables.append(
            pd.DataFrame(
                {
                    "dimension": names,
                    "target_cohort": str(cohort),
                    "shift": shift,
                    "train_mean": scaler.mean_,
                    "target_mean": target_mean,
                    "train_std": scaler.std_,
                    "floored": scaler.floored_,
                }
            )
        )
        magnitude = np.abs(shift)
        beyond = int((magnitude > threshold_sd).sum())
        summaries.append(
            {
                "target_cohort": str(cohort),
                "n_samples": int(target.shape[0]),
                "max_abs_shift": float(magnitude.max()),
                "dimension_of_max": names[int(magnitude.argmax())],
                "mean_abs_shift": float(magnitude.mean()),
                "median_abs_shift": float(np.median(magnitude)),
                "threshold_sd": float(threshold_sd),
                "n_beyond_threshold": beyond,
                "fraction_beyond_threshold": beyond / n_dims,
                "n_floored": int(scaler.floored_.sum()),
            }
        )
    return FeatureShift(table=pd.concat(tables, ignore_index=True), summary=pd.DataFrame(summaries))
