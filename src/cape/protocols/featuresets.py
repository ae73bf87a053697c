"""Feature directories of several models and encoder seeds, aligned row for row.

A protocol compares models on the *same* ECGs, so every features directory
must hold the same ECGs of the cohorts it evaluates (``cohort`` +
``record_id``); rows are reordered to the first directory's order, and any
difference is a :class:`CapeError` naming both directories and the counts.

Several directories with the same model name are that model's encoder seeds.
Their ``encoder_seed`` is given explicitly (``MODEL@SEED=DIR``) or is their
order among that model's directories (0, 1, 2, ...); paired tests match
encoder seeds by this number, so give random and IDB runs of the same
initialisation seed the same number.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from cape.embed import INDEX_FILE, INFO_FILE, load_features
from cape.errors import CapeError

logger = logging.getLogger(__name__)

MEAN_PREDICTOR = "mean-predictor"
SPLITS = ("train", "val", "test")
UNTRAINED = "untrained"
# What the protocols read from every index besides the labels: rows are matched across
# directories by (cohort, record_id) and heads are fitted and tested by split.
INDEX_COLUMNS = ("cohort", "record_id", "split")
RESERVED_MODEL_NAMES = (MEAN_PREDICTOR,)


@dataclass
class FeatureSpec:
    """One ``--features`` argument: a model name, an optional encoder seed and a directory."""

    model: str
    path: Path
    encoder_seed: int | None = None
    baseline: str = ""  # "" or "untrained"

    @classmethod
    def parse(cls, text: str) -> FeatureSpec:
        """Parse ``MODEL=DIR`` or ``MODEL@SEED=DIR``.

        Raises:
            CapeError: malformed text or a reserved model name.
        """
        name, sep, directory = text.partition("=")
        if not sep or not name or not directory:
            raise CapeError(f"--features expects MODEL=DIR or MODEL@SEED=DIR, got {text!r}")
        model, at, seed_text = name.partition("@")
        seed = None
        if at:
            try:
                seed = int(seed_text)
            except ValueError:
                raise CapeError(
                    f"--features {text!r}: encoder seed {seed_text!r} is not an integer"
                ) from None
        if model in RESERVED_MODEL_NAMES:
            raise CapeError(f"--features {text!r}: the model name {model!r} is reserved")
        return cls(model=model, path=Path(directory), encoder_seed=seed)


@dataclass
class FeatureSet:
    """One model's features for one encoder seed, aligned to the reference index.

    Attributes:
        model: model name.
        encoder_seed: encoder seed number (see module docstring).
        path: features directory.
        baseline: ``"untrained"`` for an untrained encoder's features, else ``""``.
        features: ``(n, d)`` float32, row ``i`` is the reference index's row ``i``.
        info: the directory's ``embed.json`` (empty if absent).
    """

    model: str
    encoder_seed: int
    path: Path
    baseline: str
    features: np.ndarray = field(repr=False)
    info: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def label(self) -> str:
        return f"{self.model}@{self.encoder_seed}"

    def describe(self) -> dict[str, Any]:
        """JSON-friendly description for the run config."""
        return {
            "model": self.model,
            "encoder_seed": self.encoder_seed,
            "path": str(self.path),
            "baseline": self.baseline,
            "feature_dim": int(self.features.shape[1]),
            "checkpoint": self.info.get("checkpoint"),
            "untrained": self.info.get("untrained"),
            "store_fingerprint": self.info.get("store_fingerprint"),
        }


def _read_info(path: Path) -> dict[str, Any]:
    info_path = path / INFO_FILE
    if not info_path.is_file():
        logger.warning(
            "%s has no %s: provenance and the untrained flag are unknown", path, INFO_FILE
        )
        return {}
    return dict(json.loads(info_path.read_text()))


def _keys(index: pd.DataFrame) -> pd.Index:
    return pd.Index(index["cohort"].astype(str) + "\x1f" + index["record_id"].astype(str))


def _check_unique(keys: pd.Index, path: Path) -> None:
    if keys.has_duplicates:
        duplicated = keys[keys.duplicated()].str.replace("\x1f", "/")
        raise CapeError(
            f"{path}: {duplicated.size} duplicate (cohort, record_id) rows, e.g. {list(duplicated[:3])}"
        )


def _alignment(
    reference: pd.Index, keys: pd.Index, ref_path: Path, path: Path, cohorts: Sequence[str]
) -> np.ndarray:
    positions = keys.get_indexer(reference)
    extra = keys.difference(reference)
    if (positions < 0).any() or extra.size:
        lines = []
        for cohort in cohorts:
            prefix = cohort + "\x1f"
            only_ref = [k for k in reference[positions < 0] if k.startswith(prefix)]
            only_new = [k for k in extra if k.startswith(prefix)]
            if only_ref or only_new:
                example = [k.split("\x1f")[1] for k in (only_ref or only_new)[:3]]
                lines.append(
                    f"cohort {cohort!r}: {len(only_ref)} ECGs only in {ref_path}, "
                    f"{len(only_new)} only in {path} (e.g. record_id {example})"
                )
        raise CapeError(
            "features directories do not hold the same ECGs, so models would not be compared "
            "on the same ECGs: " + "; ".join(lines) + ". Embed every model on the same store, "
            "cohorts and splits."
        )
    return positions


def load_feature_sets(
    specs: Sequence[FeatureSpec], cohorts: Sequence[str] | None = None
) -> tuple[list[FeatureSet], pd.DataFrame]:
    """Load feature directories, keep the given cohorts, and align all to the first's rows.

    Args:
        specs: one per directory; the first one's index is the reference.
        cohorts: cohorts to keep (default: all of the first directory's).

    Returns:
        ``(feature_sets, index)``: the index (reset to a RangeIndex) is the
        reference directory's rows of the kept cohorts.

    Raises:
        CapeError: no directories, unreadable directories, an unknown cohort,
            duplicate or differing ECGs between directories, a model name used
            twice with the same encoder seed.
    """
    if not specs:
        raise CapeError("no features given; pass --features MODEL=DIR at least once")
    seeds_taken: dict[str, set[int]] = {}
    ordinal: dict[str, int] = {}
    sets: list[FeatureSet] = []
    reference: pd.Index | None = None
    index: pd.DataFrame | None = None
    kept: list[str] = []
    for spec in specs:
        features, spec_index = load_features(spec.path)
        missing = [c for c in INDEX_COLUMNS if c not in spec_index]
        if missing:  # features made elsewhere: say what their index lacks
            raise CapeError(
                f"{spec.path / INDEX_FILE}: missing columns {missing} (an index needs "
                f"{list(INDEX_COLUMNS)} and the labels of the tasks; see docs/evaluation.md)"
            )
        keys = _keys(spec_index)
        if reference is None:
            known = sorted(spec_index["cohort"].astype(str).unique())
            kept = list(known if cohorts is None else cohorts)
            unknown = sorted(set(kept) - set(known))
            if unknown:
                raise CapeError(f"unknown cohorts {unknown}: {spec.path} holds {known}")
        mask = spec_index["cohort"].astype(str).isin(kept).to_numpy()
        keys = keys[mask]
        _check_unique(keys, spec.path)
        if reference is None:
            reference = keys
            index = spec_index[mask].reset_index(drop=True)
            aligned = features[mask]
        else:
            rows = np.flatnonzero(mask)[_alignment(reference, keys, specs[0].path, spec.path, kept)]
            aligned = features[rows]
        info = _read_info(spec.path)
        seed = spec.encoder_seed if spec.encoder_seed is not None else ordinal.get(spec.model, 0)
        ordinal[spec.model] = max(ordinal.get(spec.model, 0), seed) + 1
        if seed in seeds_taken.setdefault(spec.model, set()):
            raise CapeError(
                f"model {spec.model!r} has two feature directories with encoder seed {seed}"
            )
        seeds_taken[spec.model].add(seed)
        baseline = spec.baseline or (UNTRAINED if info.get("untrained") else "")
        if spec.baseline == UNTRAINED and info and not info.get("untrained"):
            logger.warning(
                "%s is given as the untrained baseline but embed.json says trained", spec.path
            )
        sets.append(
            FeatureSet(spec.model, seed, spec.path, baseline, np.ascontiguousarray(aligned), info)
        )
    assert index is not None
    return sets, index


def store_mismatch_warnings(feature_sets: Sequence[FeatureSet]) -> list[str]:
    """A warning when the directories were embedded from stores with different fingerprints.

    The ECGs were checked to be the same; labels and splits are taken from the
    first directory, and may differ in the others' stores.
    """
    fingerprints = {str(s.info.get("store_fingerprint")) for s in feature_sets if s.info}
    if len(fingerprints) <= 1:
        return []
    warning = (
        f"the features come from {len(fingerprints)} different stores (store_fingerprint in "
        f"embed.json); labels and splits are taken from {feature_sets[0].path}"
    )
    logger.warning(warning)
    return [warning]


def _pretraining_config(info: dict[str, Any]) -> dict[str, Any] | None:
    """The pretraining run's config.yaml next to the checkpoint named in embed.json, if found."""
    checkpoint = info.get("checkpoint")
    if not checkpoint:
        return None
    path = Path(checkpoint)
    candidates = [path / "config.yaml"] if path.is_dir() else []
    candidates += [path.parent / "config.yaml", path.parent.parent / "config.yaml"]
    for candidate in candidates:
        if candidate.is_file():
            try:
                loaded = yaml.safe_load(candidate.read_text())
            except (OSError, yaml.YAMLError):
                return None
            return loaded if isinstance(loaded, dict) else None
    return None


def pretraining_splits(info: dict[str, Any], cohort: str) -> set[str] | None:
    """The splits of ``cohort`` whose ECGs the encoder's pretraining could use.

    Read from the pretraining ``config.yaml`` beside the checkpoint named in
    ``embed.json``: the cohort is used when ``cohorts`` is null or lists it,
    and loses the splits ``exclude_splits`` names for it (a list applies to
    every cohort, a mapping only to the cohorts it names). Returns None when
    the config cannot be found (features moved away from their run).
    """
    from cape.samplers import excluded_splits

    config = _pretraining_config(info)
    if config is None:
        return None
    used = config.get("cohorts")
    if used is not None and cohort not in used:
        return set()
    exclude = config.get("exclude_splits", ["test"])
    return set(SPLITS) - set(excluded_splits(exclude, cohort))


def pretraining_leak_warnings(feature_sets: Sequence[FeatureSet], cohort: str) -> list[str]:
    """Warnings for encoders whose pretraining may have seen ``cohort``'s test patients.

    Reads the pretraining ``config.yaml`` beside the checkpoint named in each
    ``embed.json`` (cheap; silently skipped when not found): a run that used
    ``cohort`` without leaving out its ``"test"`` split (``exclude_splits`` as
    a list or as a mapping cohort -> list) gets a warning. Untrained encoders
    saw nothing.
    """
    warnings = []
    for feature_set in feature_sets:
        if feature_set.baseline == UNTRAINED:
            continue
        used = pretraining_splits(feature_set.info, cohort)
        if used is None:
            logger.debug("no pretraining config found for %s", feature_set.path)
            continue
        if "test" in used:
            config = _pretraining_config(feature_set.info) or {}
            excluded = config.get("exclude_splits", ["test"])
            warnings.append(
                f"{feature_set.label} ({feature_set.path}): its pretraining config does not "
                f"exclude cohort {cohort!r}'s 'test' split (exclude_splits={excluded}), so it "
                f"may have seen cohort {cohort!r}'s test patients"
            )
    for warning in warnings:
        logger.warning(warning)
    return warnings
