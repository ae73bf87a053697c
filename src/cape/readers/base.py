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
