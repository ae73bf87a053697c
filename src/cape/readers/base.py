"""The reader interface every format implements.

A reader splits its source into :class:`ReadTask` s — small picklable units of
work (a chunk of csv rows, one HDF5 row range, one file) with a key that is
stable across runs — and turns each task into records. Ingest distributes
tasks over worker processes and uses the keys to resume a killed run.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from cape.errors import CapeError
from cape.readers._common import positive_int_option
from cape.record import ECGRecord, Rejection


@dataclass(frozen=True)
class ReadTask:
    """A unit of reading work.

    Attributes:
        key: stable identifier, unique within one source (e.g. ``"rows-000000-000499"``).
        payload: whatever the reader needs to do the work; must be picklable.
        n_items: how many records the task is expected to yield (for progress bars).
    """

    key: str
    payload: Any
    n_items: int = 1


class Reader(ABC):
    """Base class of the format readers.

    Subclasses set :attr:`format_name` and implement :meth:`tasks` and
    :meth:`read`. Construction must be cheap and must fail early, with the
    path in the message, if the source is not laid out as the format expects.
    Readers are pickled into worker processes: keep only paths and options as
    state, open files inside :meth:`read`.
    """

    format_name: ClassVar[str]

    def __init__(self, source: str | Path, cohort: str, **options: Any) -> None:
        self.source = Path(source)
        self.cohort = cohort
        self.options = options

    @abstractmethod
    def tasks(self) -> list[ReadTask]:
        """All units of work for this source, in a deterministic order."""

    @abstractmethod
    def read(self, task: ReadTask) -> Iterator[ECGRecord | Rejection]:
        """Yield a record or a rejection for every input the task covers.

        Must not raise for one bad input: yield a :class:`Rejection` naming the
        file and the problem instead. May raise for a task-wide failure that
        makes the whole source unusable.
        """


class FileReader(Reader):
    """A reader whose inputs are one ECG per file (DICOM, MUSE XML), found by suffix.

    The source is a folder searched recursively, or one file. Tasks are groups
    of ``files_per_task`` files (option, default 20) in sorted path order;
    subclasses set :attr:`suffix` and implement :meth:`read_file`.

    Raises:
        CapeError: an unknown option, a missing source, or a folder without such files.
    """

    suffix: ClassVar[str]
    known_options: ClassVar[frozenset[str]] = frozenset({"files_per_task"})

    def __init__(self, source: str | Path, cohort: str, **options: Any) -> None:
        super().__init__(source, cohort, **options)
        name = self.format_name
        unknown = sorted(set(options) - self.known_options)
        if unknown:
            raise CapeError(
                f"{name} reader: unknown option(s) {unknown}; known: {sorted(self.known_options)}"
            )
        self.files_per_task = positive_int_option(
            "files_per_task", options.get("files_per_task", 20), name
        )
        if not self.source.exists():
            raise CapeError(f"{name} reader: source {self.source} does not exist")
        if self.source.is_dir() and next(self._files(), None) is None:
            raise CapeError(f"{name} reader: no {self.suffix} files under {self.source}")

    def _files(self) -> Iterator[Path]:
        if self.source.is_file():
            yield self.source
            return
        for path in self.source.rglob("*"):
            if path.is_file() and path.suffix.lower() == self.suffix:
                yield path

    def tasks(self) -> list[ReadTask]:
        """Groups of ``files_per_task`` files, in sorted path order."""
        files = sorted(str(p) for p in self._files())
        size = self.files_per_task
        return [
            ReadTask(
                key=f"files-{start:06d}-{min(start + size, len(files)) - 1:06d}",
                payload=files[start : start + size],
                n_items=len(files[start : start + size]),
            )
            for start in range(0, len(files), size)
        ]

    def read(self, task: ReadTask) -> Iterator[ECGRecord | Rejection]:
        for file_name in task.payload:
            yield self.read_file(Path(file_name))

    @abstractmethod
    def read_file(self, path: Path) -> ECGRecord | Rejection:
        """One file -> a record, or a rejection saying what is wrong with it."""
