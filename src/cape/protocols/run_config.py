"""The run config saved next to a protocol's results: settings, inputs, sizes, messages."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

import cape
from cape.protocols.featuresets import FeatureSet
from cape.protocols.settings import ProtocolSettings


def _git_revision() -> str | None:
    try:
        from cape.pretrain.rundir import git_revision
    except ImportError:  # provenance is best effort; never fail an evaluation for it
        return None
    return git_revision()


def run_config(
    settings: ProtocolSettings,
    feature_sets: Sequence[FeatureSet],
    cohorts: Sequence[str],
    sizes: Sequence[dict[str, Any]],
    messages: Sequence[str],
    warnings: Sequence[str],
    **extra: Any,
) -> dict[str, Any]:
    """A JSON-friendly record of what made a protocol's results.

    Args:
        settings: the protocol settings.
        feature_sets: the features compared (paths, models, encoder seeds, embed.json provenance).
        cohorts: the cohorts evaluated.
        sizes: one dict per (cohort, task): the ECGs drawn per split.
        messages: capping and skipping messages (also logged).
        warnings: possible problems with the inputs (e.g. pretraining saw test patients).
        **extra: protocol-specific entries.
    """
    return {
        "cape_version": cape.__version__,
        "git_revision": _git_revision(),
        "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "settings": settings.to_dict(),
        "feature_sets": [feature_set.describe() for feature_set in feature_sets],
        "cohorts": list(cohorts),
        "sizes": list(sizes),
        "messages": list(messages),
        "warnings": list(warnings),
        **extra,
    }
