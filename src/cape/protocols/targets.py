"""Where the out-of-distribution protocol draws each target cohort's test ECGs.

The paper tests heads on 10,000 random ECGs of every other cohort, drawn from
the whole cohort; its encoders were pretrained on those cohorts' ECGs (without
labels), leaving out only the test patients of the cohort the heads are
trained on. Whether a target ECG was seen in pretraining therefore depends on
the pretraining's ``exclude_splits``, which this module reads back from each
encoder's pretraining config:

- ``"unseen"`` (default): the whole cohort minus every split some evaluated
  encoder was pretrained on — no target ECG was seen in pretraining;
- ``"all"``: the whole cohort (the paper's protocol; the study must say so);
- ``"test"``: the target's test split.

The in-cohort ceiling trains on the target cohort's own train/val splits,
minus the patients of the drawn target ECGs (:func:`outside_patients`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from cape.errors import CapeError
from cape.protocols.featuresets import SPLITS, UNTRAINED, FeatureSet, pretraining_splits
from cape.protocols.settings import ProtocolSettings

logger = logging.getLogger(__name__)


def target_splits(
    settings: ProtocolSettings,
    feature_sets: Sequence[FeatureSet],
    targets: Sequence[str],
    warnings: list[str],
) -> dict[str, tuple[str, ...] | None]:
    """The splits each target's ECGs are drawn from (None: the whole cohort).

    ``"unseen"`` leaves out every split that some evaluated encoder's
    pretraining could use (:func:`cape.protocols.featuresets.pretraining_splits`);
    an encoder whose pretraining config cannot be found is assumed to have left
    out the test splits (the pretraining default), with a warning.

    Raises:
        CapeError: ``"unseen"`` and a target all of whose splits were used in pretraining.
    """
    if settings.ood_target_pool == "all":
        return dict.fromkeys(targets)
    if settings.ood_target_pool == "test":
        return {t: ("test",) for t in targets}
    chosen: dict[str, tuple[str, ...] | None] = {}
    unknown: set[str] = set()
    for target in targets:
        used: set[str] = set()
        for feature_set in feature_sets:
            if feature_set.baseline == UNTRAINED:
                continue
            splits = pretraining_splits(feature_set.info, target)
            if splits is None:
                unknown.add(feature_set.label)
                splits = {"train", "val"}
            used |= splits
        allowed = tuple(s for s in SPLITS if s not in used)
        if not allowed:
            raise CapeError(
                f"target cohort {target!r}: every split was used in pretraining by the "
                "evaluated encoders, so no unseen ECG is left to test on. Set the OOD target "
                "pool to 'all' (the paper's protocol: targets from the whole cohort, seen in "
                "pretraining without labels) or leave the cohort's test split out of "
                "pretraining (exclude_splits)"
            )
        chosen[target] = allowed
    if unknown:
        warnings.append(
            f"no pretraining config found for {sorted(unknown)}: assumed they left out every "
            "cohort's test split (the pretraining default) when choosing unseen target ECGs"
        )
        logger.warning(warnings[-1])
    return chosen


def pool_name(splits: tuple[str, ...] | None) -> str:
    """``"whole cohort"`` or the splits joined by ``+`` (``"test"``, ``"val+test"``)."""
    return "whole cohort" if splits is None else "+".join(splits)


def outside_patients(index: pd.DataFrame, rows: np.ndarray) -> np.ndarray:
    """``(len(index),)`` bool: rows whose patient has no ECG among ``rows``."""
    keys = index["cohort"].astype(str) + "\x1f"
    if "patient_id" in index:
        patient = index["patient_id"]
        row_key = pd.Series(np.arange(len(index)).astype(str), index=index.index)
        keys = keys + patient.astype(str).where(patient.notna(), "row" + row_key)
    else:
        keys = keys + pd.Series(np.arange(len(index)).astype(str), index=index.index)
    values = keys.to_numpy()
    return ~np.isin(values, values[rows])
