"""Helpers shared by the pydantic settings of pretraining, fine-tuning and label efficiency.

``key=value`` overrides with dotted keys and YAML values (``--set model.norm=group``),
the dotted names a settings model knows, and the settings two configs differ in.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import yaml
from pydantic import BaseModel

from cape.errors import CapeError, did_you_mean


def flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts as one dict of dotted keys."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def known_keys(model: type[BaseModel], prefix: str = "") -> set[str]:
    """Dotted names of a settings model's fields, nested models included."""
    keys = set()
    for name, field in model.model_fields.items():
        keys.add(prefix + name)
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys |= known_keys(annotation, f"{prefix}{name}.")
    return keys


def differences(mine: dict[str, Any], theirs: dict[str, Any], ignore: Iterable[str]) -> list[str]:
    """Dotted names whose values differ between two plain configs, top-level ``ignore`` left out."""
    ignored = set(ignore)
    flat_mine, flat_theirs = flatten(mine), flatten(theirs)
    return sorted(
        key
        for key in set(flat_mine) | set(flat_theirs)
        if key.split(".")[0] not in ignored and flat_mine.get(key) != flat_theirs.get(key)
    )


def parse_override(item: str) -> tuple[str, Any]:
    """``key=value`` as ``(key, YAML value)``; an empty value is ``None``.

    Raises:
        CapeError: no ``=``, an empty key, or a value that is not YAML.
    """
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise CapeError(f"--set {item!r}: expected key=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as error:
        raise CapeError(f"--set {item!r}: value is not valid YAML: {error}") from error
    return key, value


def apply_overrides(
    values: dict[str, Any],
    overrides: Sequence[str],
    model: type[BaseModel],
    what: str = "setting",
    fallback_hint: str = "",
) -> dict[str, Any]:
    """Apply ``key=value`` overrides (dotted keys, YAML values) to a raw config dict.

    Args:
        values: the raw config (not changed).
        overrides: ``key=value`` strings.
        model: the settings model whose dotted keys are allowed.
        what: how messages name a key (``"fine-tuning setting"``).
        fallback_hint: appended to an unknown key without a close match.

    Raises:
        CapeError: a malformed override or an unknown key (with a did-you-mean).
    """
    known = known_keys(model)
    out = dict(values)
    for item in overrides:
        key, value = parse_override(item)
        if key not in known:
            hint = did_you_mean(key, known) or fallback_hint
            raise CapeError(f"--set {item!r}: unknown {what} {key!r}{hint}")
        target = out
        parts = key.split(".")
        for part in parts[:-1]:
            target[part] = dict(target.get(part) or {})
            target = target[part]
        target[parts[-1]] = value
    return out
