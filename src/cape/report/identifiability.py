"""Cohort-identifiability results in the shapes a run may hold them.

``evaluation/identifiability.{parquet,csv}`` (one row per model, encoder
seed and ``by``/``target``, as :mod:`cape.study.evaluation` writes it), ``evaluation/identifiability.json`` (a list of records, a
``{label: summary}`` map, ``{by: {label: summary}}``, or ``{"results": [...]}``)
or a folder ``evaluation/identifiability/*.json`` of ``cape identifiability
--out`` files. Records hold :meth:`IdentifiabilityResult.summary` keys; the
model and encoder seed come from ``model`` / ``encoder_seed`` or from a label
such as ``idb-seed1`` (a key, ``label``, ``name`` or the ``features`` path).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from cape.report.naming import split_label


def _read_json(path: Path, messages: list[str]) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        messages.append(f"{path}: unreadable ({error})")
        return None


IDENTIFIABILITY_COLUMNS = (
    "model",
    "encoder_seed",
    "baseline",
    "by",
    "accuracy",
    "accuracy_low",
    "accuracy_high",
    "macro_auroc",
    "macro_auroc_low",
    "macro_auroc_high",
    "chance_majority",
    "chance_uniform",
    "n_samples",
)


def _flatten(record: dict[str, Any]) -> dict[str, Any]:
    """Nested CI dicts (``accuracy_ci: {low, high}``) -> ``accuracy_low`` / ``accuracy_high``."""
    flat: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, dict) and key.endswith("_ci"):
            stem = key[: -len("_ci")]
            flat[f"{stem}_low"] = value.get("low")
            flat[f"{stem}_high"] = value.get("high")
        elif not isinstance(value, dict | list):
            flat[key] = value
    return flat


def _identity(record: dict[str, Any], label: str | None) -> dict[str, Any]:
    """Fill ``model`` and ``encoder_seed`` from the record, its key or its features path."""
    model, seed = record.get("model"), record.get("encoder_seed")
    candidates = [label, record.get("label"), record.get("name")]
    if record.get("features"):
        candidates.append(Path(str(record["features"])).name)
    for candidate in candidates:
        if model is not None and seed is not None:
            break
        if candidate:
            parsed_model, parsed_seed = split_label(str(candidate))
            model = model if model is not None else parsed_model
            seed = seed if seed is not None else parsed_seed
    out = dict(record, model=model, encoder_seed=seed)
    if "baseline" not in out or out["baseline"] is None:
        untrained = bool(record.get("untrained")) or (
            isinstance(record.get("embed"), dict) and bool(record["embed"].get("untrained"))
        )
        out["baseline"] = "untrained" if untrained or model == "untrained" else ""
    return out


def _records(payload: Any) -> list[tuple[str | None, dict[str, Any]]]:
    """(label, record) pairs from the JSON shapes an identifiability file may take."""
    if isinstance(payload, list):
        return [(None, r) for r in payload if isinstance(r, dict)]
    if not isinstance(payload, dict):
        return []
    if "accuracy" in payload:
        return [(None, payload)]
    for key in ("results", "feature_sets", "models", "rows"):
        if isinstance(payload.get(key), list):
            return [(None, r) for r in payload[key] if isinstance(r, dict)]
    pairs: list[tuple[str | None, dict[str, Any]]] = []
    for key, value in payload.items():
        if isinstance(value, dict) and "accuracy" in value:
            pairs.append((str(key), value))
        elif isinstance(value, dict):  # one more level, e.g. {"cohort": {label: {...}}}
            for inner_key, inner in value.items():
                if isinstance(inner, dict) and "accuracy" in inner:
                    pairs.append((str(inner_key), dict(inner, by=inner.get("by", key))))
    return pairs


# Other spellings of the same columns (the study's evaluate stage writes the first ones).
ALIASES = {
    "target": "by",
    "accuracy_ci_low": "accuracy_low",
    "accuracy_ci_high": "accuracy_high",
    "macro_auroc_ci_low": "macro_auroc_low",
    "macro_auroc_ci_high": "macro_auroc_high",
}


def normalise_identifiability(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Identifiability records -> one row per (model, encoder seed, by) with fixed columns."""
    frame = pd.DataFrame(rows)
    for alias, column in ALIASES.items():
        if alias in frame and column not in frame:
            frame = frame.rename(columns={alias: column})
    for column in IDENTIFIABILITY_COLUMNS:
        if column not in frame:
            frame[column] = math.nan if column not in ("model", "baseline", "by") else None
    frame["by"] = frame["by"].fillna("cohort")
    frame["baseline"] = frame["baseline"].fillna("")
    frame = frame[frame["model"].notna() & frame["accuracy"].notna()]
    return frame[list(IDENTIFIABILITY_COLUMNS)].reset_index(drop=True)


def read_identifiability(evaluation: Path, messages: list[str]) -> pd.DataFrame | None:
    """Identifiability results under ``evaluation/`` (json, parquet, csv, or a folder of json)."""
    rows: list[dict[str, Any]] = []
    for suffix in (".parquet", ".csv"):
        path = evaluation / f"identifiability{suffix}"
        if path.is_file():
            table = pd.read_parquet(path) if suffix == ".parquet" else pd.read_csv(path)
            for record in table.to_dict("records"):
                rows.append(_identity(_flatten(record), None))
            return normalise_identifiability(rows)
    files = [evaluation / "identifiability.json"]
    folder = evaluation / "identifiability"
    if folder.is_dir():
        files += sorted(folder.glob("*.json"))
    for path in files:
        if not path.is_file():
            continue
        payload = _read_json(path, messages)
        pairs = _records(payload)
        if payload is not None and not pairs:
            messages.append(f"{path}: no identifiability records recognised")
        for label, record in pairs:
            stem = label if label is not None or path.parent != folder else path.stem
            rows.append(_identity(_flatten(record), stem))
    return normalise_identifiability(rows) if rows else None
