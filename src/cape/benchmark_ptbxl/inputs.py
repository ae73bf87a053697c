"""Finding a benchmark's inputs: the PTB-XL cohort, its source folders, its statements file.

The features' ``embed.json`` names the store they were embedded from; the
store's ``header.json`` lists each cohort's reader format and source folders
(written by ``cape ingest``). PTB-XL's ``scp_statements.csv`` lies in that
source folder, so it is found without being passed, unless the store or the
source moved (then pass it explicitly).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from cape.errors import CapeError

logger = logging.getLogger(__name__)

STATEMENTS_FILE = "scp_statements.csv"
HEADER_FILE = "header.json"


def store_cohorts(info: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The ``cohorts`` entry of the store header named by an ``embed.json`` (empty if unreadable)."""
    store = info.get("store")
    if not store:
        return {}
    header = Path(str(store)) / HEADER_FILE
    try:
        loaded = json.loads(header.read_text())
    except (OSError, ValueError):
        logger.warning("cannot read %s; cohort provenance unknown", header)
        return {}
    cohorts = loaded.get("cohorts", {}) if isinstance(loaded, dict) else {}
    return cohorts if isinstance(cohorts, dict) else {}


def choose_cohort(
    index: pd.DataFrame, cohort: str | None, header_cohorts: dict[str, dict[str, Any]]
) -> str:
    """The PTB-XL cohort to benchmark: ``cohort`` if given, else the only candidate.

    Candidates are cohorts ingested with the ``ptbxl`` reader (store header) or,
    without a header, cohorts whose every record has a ``strat_fold``.

    Raises:
        CapeError: the named cohort is not in the features, or there is not exactly
            one candidate.
    """
    known = sorted(index["cohort"].astype(str).unique())
    if cohort is not None:
        if cohort not in known:
            raise CapeError(f"cohort {cohort!r} is not in the features (they hold {known})")
        return cohort
    if header_cohorts:
        candidates = [c for c in known if header_cohorts.get(c, {}).get("format") == "ptbxl"]
    elif "strat_fold" in index:
        folds = index["strat_fold"].notna().groupby(index["cohort"].astype(str)).all()
        candidates = [c for c in known if bool(folds.get(c, False))]
    else:
        candidates = []
    if len(candidates) != 1:
        raise CapeError(
            f"cannot tell which cohort is PTB-XL (candidates {candidates} among {known}); "
            "pass --cohort"
        )
    return candidates[0]


def cohort_sources(header_cohorts: dict[str, dict[str, Any]], cohort: str) -> list[str]:
    """The cohort's source folders as recorded at ingest (empty if unknown)."""
    sources = header_cohorts.get(cohort, {}).get("sources", [])
    return [str(s) for s in sources] if isinstance(sources, list) else []


def find_statements(explicit: str | Path | None, sources: Sequence[str]) -> Path:
    """``explicit`` if given, else the first source folder's ``scp_statements.csv``.

    Raises:
        CapeError: nothing given and no source folder holds the file.
    """
    if explicit is not None:
        return Path(explicit)
    for source in sources:
        candidate = Path(source) / STATEMENTS_FILE
        if candidate.is_file():
            return candidate
    raise CapeError(
        f"no {STATEMENTS_FILE} found in the cohort's source folders {list(sources)}; "
        "pass --statements PATH (PTB-XL's scp_statements.csv)"
    )
