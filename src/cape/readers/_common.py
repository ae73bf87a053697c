"""Small helpers the readers share: identifiers, JSON of leftover columns, options, chunks."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
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


def has_surrogates(text: str) -> bool:
    """True when ``text`` holds lone surrogates: undecodable bytes escaped by Python.

    File names that are not valid UTF-8 (``os.fsdecode``) and tables read with
    ``encoding_errors="surrogateescape"`` carry such characters; they cannot be
    written to Parquet or printed.
    """
    return any("\ud800" <= ch <= "\udfff" for ch in text)


def safe_text(text: str) -> str:
    """``text`` with undecodable bytes spelled ``\\xNN`` (valid UTF-8, reversible by eye)."""
    if not has_surrogates(text):
        return text
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raw = text.encode("utf-8", "surrogatepass")
    return raw.decode("utf-8", "backslashreplace")


def _undecodable(text: str) -> bool:
    return "\ufffd" in text or has_surrogates(text)


def bad_cells(row: Mapping[str, Any]) -> list[str]:
    """Columns of a table row whose text held undecodable bytes.

    Tables are read with ``encoding_errors="replace"`` (Arrow-backed strings
    cannot hold escaped bytes), so such bytes arrive as U+FFFD; a row with one
    cannot be trusted (an id or a path may be wrong) and is quarantined.
    """
    return [
        safe_text(str(key))
        for key, value in row.items()
        if (isinstance(value, str) and _undecodable(value)) or _undecodable(str(key))
    ]


def inside(path: Path, root: Path) -> bool:
    """True when ``path`` resolves (symlinks followed) to a place under ``root``."""
    try:
        return path.resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError):  # a symlink loop
        return False


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
