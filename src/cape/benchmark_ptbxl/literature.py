"""Published PTB-XL benchmark results, and when they may be shown beside CAPE's.

Source: Strodthoff, Wagner, Schaeffter, Samek, "Deep Learning for ECG
Analysis: Benchmarks and Insights from PTB-XL", IEEE JBHI 25(5):1519-1528,
2021 (doi:10.1109/JBHI.2020.3022989), Table II; transcribed from the
leaderboard in the README of the authors' repository
github.com/helme/ecg_ptbxl_benchmarking (commit cdbf4e6), which lists the
paper's results. Test-fold (10) macro AUROC; the number in brackets is the
larger distance from the point estimate to the 5 % or 95 % quantile of 100
bootstrap resamples, in thousandths.

These are end-to-end networks trained on the raw 100 Hz signals of PTB-XL
1.0.1; CAPE's numbers are heads on frozen features. They are context, not
a like-for-like comparison, and they mean nothing on any other cohort.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from cape.benchmark_ptbxl.labels import LABEL_SETS, PUBLISHED_N_CLASSES, Statements

LITERATURE_SOURCE = (
    "Strodthoff et al., IEEE JBHI 2021, Table II "
    "(leaderboard of github.com/helme/ecg_ptbxl_benchmarking)"
)
# Columns in LABEL_SETS order: all, diagnostic, subdiagnostic, superdiagnostic, form, rhythm.
_LEADERBOARD: dict[str, tuple[str, str, str, str, str, str]] = {
    "inception1d": ("0.925(08)", "0.931(09)", "0.930(10)", "0.921(06)", "0.899(22)", "0.953(13)"),
    "xresnet1d101": ("0.925(07)", "0.937(08)", "0.929(14)", "0.928(05)", "0.896(12)", "0.957(19)"),
    "resnet1d_wang": ("0.919(08)", "0.936(08)", "0.928(10)", "0.930(05)", "0.880(15)", "0.946(10)"),
    "fcn_wang": ("0.918(08)", "0.926(10)", "0.927(11)", "0.925(06)", "0.869(12)", "0.931(08)"),
    "lstm_bidir": ("0.914(08)", "0.932(07)", "0.923(12)", "0.921(06)", "0.876(15)", "0.949(11)"),
    "lstm": ("0.907(08)", "0.927(08)", "0.928(10)", "0.927(05)", "0.851(15)", "0.953(09)"),
    "Wavelet+NN": ("0.849(13)", "0.855(15)", "0.859(16)", "0.874(07)", "0.757(29)", "0.890(24)"),
}
# PTB-XL 1.0.1 (the benchmark's release) holds 21,837 records, 1.0.3 holds 21,799; a
# cohort far smaller is a subset or not PTB-XL, and the published numbers do not apply.
MIN_PTBXL_RECORDS = 21_000
SIMULATOR_MARKER = Path("_truth") / "simulation.yaml"
_CELL = re.compile(r"^(0\.\d{3})\((\d{2})\)$")


def literature_table() -> pd.DataFrame:
    """One row per (model, label set): ``model``, ``label_set``, ``macro_auroc``,
    ``plus_minus``, ``text`` (as printed in the source) and ``source``."""
    rows = []
    for model, cells in _LEADERBOARD.items():
        for label_set, cell in zip(LABEL_SETS, cells, strict=True):
            match = _CELL.match(cell)
            assert match is not None, cell
            rows.append(
                {
                    "model": model,
                    "label_set": label_set,
                    "macro_auroc": float(match.group(1)),
                    "plus_minus": int(match.group(2)) / 1000.0,
                    "text": cell,
                    "source": LITERATURE_SOURCE,
                }
            )
    return pd.DataFrame(rows)


def is_ptbxl_statements(statements: Statements) -> bool:
    """True when the statements table has PTB-XL's 71 statements and published class counts."""
    return all(
        len(statements.classes(name)) == count for name, count in PUBLISHED_N_CLASSES.items()
    )


def literature_applies(
    statements: Statements, n_records: int, sources: Sequence[str | Path] = ()
) -> tuple[bool, str]:
    """Whether the published values may be shown beside this cohort's results, and why.

    Args:
        statements: the statements table the label sets were built from.
        n_records: records of the cohort in the features.
        sources: the cohort's source folders (from the store header), if known.

    Returns:
        ``(applies, reason)``; the reason is printed either way.
    """
    for source in sources:
        folder = Path(source)
        for parent in (folder, folder.parent):
            if (parent / SIMULATOR_MARKER).is_file():
                return False, (
                    f"the cohort is simulated ({parent / SIMULATOR_MARKER} exists); "
                    "literature values do not apply"
                )
    if not is_ptbxl_statements(statements):
        counts = {name: len(statements.classes(name)) for name in PUBLISHED_N_CLASSES}
        return False, (
            f"{statements.source or 'the statements table'} is not PTB-XL's "
            f"(classes per label set {counts}, PTB-XL has {PUBLISHED_N_CLASSES}); "
            "literature values do not apply"
        )
    if n_records < MIN_PTBXL_RECORDS:
        return False, (
            f"the cohort has {n_records} records, PTB-XL has 21,837 (1.0.1) or 21,799 "
            "(1.0.3); on a subset literature values do not apply"
        )
    return True, (
        f"real PTB-XL ({n_records} records, PTB-XL's statements): literature values from "
        f"{LITERATURE_SOURCE}, end-to-end networks on raw signals, shown for context"
    )
