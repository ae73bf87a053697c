"""Directory and label names of a study run: ``NAME-seedK`` (run folders) or ``NAME@K``."""

from __future__ import annotations

import re

LABEL_PATTERN = re.compile(r"^(?P<model>.+?)(?:-seed|@)(?P<seed>\d+)$")


def split_label(label: str) -> tuple[str, int | None]:
    """``"idb-seed2"`` or ``"idb@2"`` -> ``("idb", 2)``; anything else -> ``(label, None)``."""
    match = LABEL_PATTERN.match(label)
    if match is None:
        return label, None
    return match["model"], int(match["seed"])
