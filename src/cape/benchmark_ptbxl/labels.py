"""The six label sets of the PTB-XL benchmark, built from ``scp_statements.csv``.

Strodthoff et al., "Deep Learning for ECG Analysis: Benchmarks and Insights
from PTB-XL", IEEE JBHI 25(5), 2021, Section III and the authors' code
(github.com/helme/ecg_ptbxl_benchmarking, ``code/utils/utils.py``:
``compute_label_aggregations`` and ``select_data``). The rules, as that code
applies them:

- A record's statements are the *keys* of its ``scp_codes`` dict: the
  likelihood is ignored, so a code listed with likelihood 0 counts.
- ``all``: every key (not checked against the statements table).
- ``diagnostic``: keys whose statement has ``diagnostic == 1``.
- ``subdiagnostic`` / ``superdiagnostic``: the ``diagnostic_subclass`` /
  ``diagnostic_class`` of those keys, where not empty.
- ``form`` / ``rhythm``: keys whose statement has ``form == 1`` / ``rhythm == 1``
  (four statements are both diagnostic and form).
- The classes are the labels present in the data (counted over every fold;
  ``min_samples = 0``), sorted as ``MultiLabelBinarizer`` sorts them.
- A record without any label of the set is dropped from that set's experiment.

No file I/O except :func:`read_statements`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from cape.errors import CapeError

LabelSetName = Literal["all", "diagnostic", "subdiagnostic", "superdiagnostic", "form", "rhythm"]
LABEL_SETS: tuple[LabelSetName, ...] = (
    "all",
    "diagnostic",
    "subdiagnostic",
    "superdiagnostic",
    "form",
    "rhythm",
)
# Classes of each set in the real scp_statements.csv (71 statements): what the
# benchmark's own aggregation derives from PTB-XL's statements file when every
# statement occurs (checked by running it), and the counts the literature quotes.
PUBLISHED_N_CLASSES: dict[str, int] = {
    "all": 71,
    "diagnostic": 44,
    "subdiagnostic": 23,
    "superdiagnostic": 5,
    "form": 19,
    "rhythm": 12,
}
_REQUIRED_COLUMNS = ("diagnostic", "form", "rhythm", "diagnostic_class", "diagnostic_subclass")


@dataclass(frozen=True)
class Statements:
    """What the label sets need from ``scp_statements.csv``.

    Attributes:
        codes: every SCP code, in file order.
        diagnostic, form, rhythm: the codes flagged 1 in each column.
        subclass: diagnostic code -> ``diagnostic_subclass`` (non-empty ones).
        superclass: diagnostic code -> ``diagnostic_class`` (non-empty ones).
        source: the file it was read from (for messages).
    """

    codes: tuple[str, ...]
    diagnostic: frozenset[str]
    form: frozenset[str]
    rhythm: frozenset[str]
    subclass: dict[str, str]
    superclass: dict[str, str]
    source: str = ""

    def classes(self, label_set: str) -> tuple[str, ...]:
        """Every class the statements table allows in ``label_set``, sorted.

        Raises:
            CapeError: unknown label set.
        """
        check_label_set(label_set)
        if label_set == "all":
            values: Iterable[str] = self.codes
        elif label_set == "diagnostic":
            values = self.diagnostic
        elif label_set == "subdiagnostic":
            values = self.subclass.values()
        elif label_set == "superdiagnostic":
            values = self.superclass.values()
        elif label_set == "form":
            values = self.form
        else:
            values = self.rhythm
        return tuple(sorted(set(values)))

    def record_labels(self, codes: Iterable[str], label_set: str) -> set[str]:
        """A record's labels in ``label_set`` from its SCP codes (likelihood ignored)."""
        keys = {str(code) for code in codes}
        if label_set == "all":
            return keys
        if label_set == "diagnostic":
            return keys & self.diagnostic
        if label_set == "subdiagnostic":
            return {self.subclass[k] for k in keys if k in self.subclass}
        if label_set == "superdiagnostic":
            return {self.superclass[k] for k in keys if k in self.superclass}
        if label_set == "form":
            return keys & self.form
        if label_set == "rhythm":
            return keys & self.rhythm
        check_label_set(label_set)
        raise AssertionError("unreachable")


def check_label_set(name: str) -> None:
    """Raise CapeError unless ``name`` is one of :data:`LABEL_SETS`."""
    if name not in LABEL_SETS:
        raise CapeError(f"unknown PTB-XL label set {name!r}; expected one of {list(LABEL_SETS)}")


def _flag(column: pd.Series) -> np.ndarray:
    return (pd.to_numeric(column, errors="coerce") == 1).to_numpy()


def _text(value: object) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    text = str(value).strip()
    return text or None


def statements_from_frame(frame: pd.DataFrame, source: str = "") -> Statements:
    """:class:`Statements` from a table indexed by SCP code (the csv's first column).

    Raises:
        CapeError: a required column is missing, or a code is empty or repeated.
    """
    missing = [c for c in _REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise CapeError(f"{source or 'scp_statements'}: missing column(s) {missing}")
    codes = [_text(c) for c in frame.index]
    if any(c is None for c in codes):
        raise CapeError(f"{source or 'scp_statements'}: a row has no SCP code in its first column")
    names = [str(c) for c in codes]
    if len(set(names)) != len(names):
        repeated = sorted({c for c in names if names.count(c) > 1})
        raise CapeError(f"{source or 'scp_statements'}: SCP codes repeated: {repeated[:5]}")
    diagnostic = _flag(frame["diagnostic"])
    subclass, superclass = {}, {}
    for code, is_diagnostic, sub, sup in zip(
        names, diagnostic, frame["diagnostic_subclass"], frame["diagnostic_class"], strict=True
    ):
        if is_diagnostic:
            if (text := _text(sub)) is not None:
                subclass[code] = text
            if (text := _text(sup)) is not None:
                superclass[code] = text
    pick = np.asarray(names, dtype=object)
    return Statements(
        codes=tuple(names),
        diagnostic=frozenset(pick[diagnostic]),
        form=frozenset(pick[_flag(frame["form"])]),
        rhythm=frozenset(pick[_flag(frame["rhythm"])]),
        subclass=subclass,
        superclass=superclass,
        source=source,
    )


def read_statements(path: str | Path) -> Statements:
    """Read PTB-XL's ``scp_statements.csv`` (or a folder holding it).

    Raises:
        CapeError: file missing or unreadable, or a required column absent.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "scp_statements.csv"
    if not path.is_file():
        raise CapeError(f"{path}: scp_statements.csv not found")
    try:
        frame = pd.read_csv(path, index_col=0)
    except (ValueError, OSError, UnicodeDecodeError) as error:
        raise CapeError(f"{path}: cannot read as csv: {error}") from error
    return statements_from_frame(frame, str(path))


@dataclass
class LabelSet:
    """One label set's targets for the records that have a label in it.

    Attributes:
        name: the label set.
        classes: the ``k`` classes present in the data, sorted.
        rows: ``(n_kept,)`` positions (into the code lists given) of the kept records.
        y: ``(n_kept, k)`` int8 multi-hot targets, row ``i`` for ``rows[i]``.
        n_records: records given.
    """

    name: str
    classes: tuple[str, ...]
    rows: np.ndarray
    y: np.ndarray
    n_records: int

    @property
    def n_dropped(self) -> int:
        """Records without any label of this set (dropped, as the benchmark does)."""
        return self.n_records - int(self.rows.size)


def build_label_set(
    code_lists: Sequence[Iterable[str]], statements: Statements, label_set: str
) -> LabelSet:
    """Targets of ``label_set`` for records given by their SCP codes.

    Args:
        code_lists: per record, its SCP codes (the keys of ``scp_codes``).
        statements: the statements table.
        label_set: one of :data:`LABEL_SETS`.

    Returns:
        :class:`LabelSet` with the classes present among these records; the
        records with no label in the set are left out.

    Raises:
        CapeError: unknown label set.
    """
    check_label_set(label_set)
    labels = [statements.record_labels(codes, label_set) for codes in code_lists]
    classes = tuple(sorted(set().union(*labels))) if labels else ()
    position = {name: k for k, name in enumerate(classes)}
    rows = np.flatnonzero([len(found) > 0 for found in labels]).astype(np.int64)
    y = np.zeros((rows.size, len(classes)), dtype=np.int8)
    for out_row, row in enumerate(rows):
        for name in labels[row]:
            y[out_row, position[name]] = 1
    return LabelSet(label_set, classes, rows, y, len(labels))
