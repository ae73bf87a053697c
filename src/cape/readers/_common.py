"""Small helpers the readers share: identifiers, JSON of leftover columns, options, chunks."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from cape.errors import CapeError

_INTEGER_STRING = re.compile(r"^[+-]?\d+\.0*$")


def clean_id(value: Any) -> str | None:
    """An identifier as a clean string; ``None`` when missing.

    Integer-valued floats lose their ``.0`` (PTB-XL stores ``patient_id`` as
    ``15709.0`` -> ``"15709"``); strings keep leading zeros.
    """
    if value is None:
        return None
    if isinstance(value, bool | np.bool_):
        return str(value)
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        if not math.isfinite(value):
            return None
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    text = str(value).strip()
    if not text:  # a string id is an id, even "NA" or "nan": tables mark missing as empty
        return None
    if _INTEGER_STRING.match(text):
        return text.split(".")[0]
    return text


def _json_value(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    return str(value)


def to_json(mapping: Mapping[str, Any]) -> str:
    """JSON of a flat mapping, dropping missing values (None/NaN); numpy scalars become Python."""
    cleaned = {str(k): _json_value(v) for k, v in mapping.items()}
    return json.dumps({k: v for k, v in cleaned.items() if v is not None}, sort_keys=True)


def chunks(n_items: int, size: int) -> Iterator[tuple[int, int]]:
    for start in range(0, n_items, size):
        yield start, min(start + size, n_items)


def positive_int_option(name: str, value: Any, reader: str) -> int:
    """An option that must be an integer >= 1.

    Raises:
        CapeError: naming the reader and the option otherwise.
    """
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise CapeError(f"{reader} reader: option {name}={value!r} is not an integer") from None
    if number < 1:
        raise CapeError(f"{reader} reader: option {name}={value!r} must be >= 1")
    return number
