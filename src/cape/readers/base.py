"""The reader interface every format implements.

A reader splits its source into :class:`ReadTask` s — small picklable units of
work (a chunk of csv rows, one HDF5 row range, one file) with a key that is
stable across runs — and turns each task into records. Ingest distributes
tasks over worker processes and uses the keys to resume a killed run.
"""

from __future__ import annotations

import hashlib
import os
import stat
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from cape.errors import CapeError
from cape.readers._common import inside, positive_int_option, safe_text
from cape.record import ECGRecord, Reason, Rejection

# A 10 s 12-lead DICOM or MUSE export is ~0.1-1 MB; parsers need several times the file
# size in memory, so larger files are quarantined (too_long) unread.
MAX_FILE_BYTES = 64 * 1024 * 1024


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

    def without(self, task: ReadTask, done: set[str]) -> ReadTask:
        """``task`` less the inputs whose source file is in ``done`` (already in the store).

        Readers whose inputs are files override this, so that a task re-run because
        a file joined its group reads only the new file. Default: ``task`` unchanged.
        """
        return task

    @abstractmethod
    def read(self, task: ReadTask) -> Iterator[ECGRecord | Rejection]:
        """Yield a record or a rejection for every input the task covers.

        Must not raise for one bad input: yield a :class:`Rejection` naming the
        file and the problem instead. May raise for a task-wide failure that
        makes the whole source unusable.
        """


class FileReader(Reader):
    """A reader whose inputs are one ECG per file (DICOM, MUSE XML), found by suffix.

    The source is a folder searched recursively (symlinked folders are not
    followed), or one file. Tasks are groups of about ``files_per_task`` files
    (option, default 20) in sorted path order, cut where a file's path digest
    says so (content-defined chunking): adding or removing a file changes the
    group it falls in and no other, so a re-run re-reads only that group.
    Every entry with the suffix gets a record or a rejection: symlink loops and
    entries that are not regular files (devices, FIFOs, folders) are
    ``unreadable``, files resolving outside the source ``outside_source``,
    files over :data:`MAX_FILE_BYTES` ``too_long``. Subclasses set
    :attr:`suffix` and implement :meth:`read_file`.

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
        if not self.source.is_dir():
            yield self.source
            return
        # os.walk does not follow symlinked folders: no loops, no escaping the source.
        for folder, dirs, names in os.walk(self.source):
            dirs.sort()
            for name in names + [d for d in dirs if os.path.islink(os.path.join(folder, d))]:
                if os.path.splitext(name)[1].lower() == self.suffix:
                    yield Path(folder) / name

    def tasks(self) -> list[ReadTask]:
        """Groups of about ``files_per_task`` files, cut by path digest (stable under edits)."""
        files = sorted(str(p) for p in self._files())
        size = self.files_per_task
        groups: list[list[str]] = []
        current: list[str] = []
        for file_name in files:
            current.append(file_name)
            relative = os.path.relpath(file_name, self.source) if self.source.is_dir() else ""
            digest = hashlib.sha1(os.fsencode(relative)).digest()
            # A group ends after a file whose digest hits 1 in `size` (or at 4 x size).
            if int.from_bytes(digest[:4], "big") % size == 0 or len(current) >= 4 * size:
                groups.append(current)
                current = []
        if current:
            groups.append(current)
        tasks = []
        for group in groups:
            names = [os.path.relpath(f, self.source) if self.source.is_dir() else f for f in group]
            key = hashlib.sha1("\x00".join(names).encode("utf-8", "surrogateescape")).hexdigest()
            tasks.append(ReadTask(key=f"files-{key[:16]}", payload=group, n_items=len(group)))
        return tasks

    def without(self, task: ReadTask, done: set[str]) -> ReadTask:
        """The task's files that no committed shard has stored or quarantined yet."""
        files = [f for f in task.payload if safe_text(f) not in done]
        return ReadTask(task.key, files, len(files))

    def read(self, task: ReadTask) -> Iterator[ECGRecord | Rejection]:
        for file_name in task.payload:
            path = Path(file_name)
            problem = self._check_file(path)
            if problem is not None:
                yield problem
                continue
            try:
                yield self.read_file(path)
            except Exception as error:  # one bad file never stops the task
                detail = f"{type(error).__name__}: {error}"
                yield Rejection(self.cohort, file_name, Reason.UNREADABLE, detail)

    def _check_file(self, path: Path) -> Rejection | None:
        """A rejection for an entry that must not be opened, else ``None``."""
        reject = lambda reason, detail: Rejection(self.cohort, str(path), reason, detail)  # noqa: E731
        try:
            info = os.stat(path)  # follows symlinks; ELOOP for a loop
        except OSError as error:
            return reject(Reason.UNREADABLE, f"cannot stat: {error.strerror or error}")
        if not stat.S_ISREG(info.st_mode):
            # Opening a FIFO would block forever, a device could be endless.
            return reject(Reason.UNREADABLE, "not a regular file (device, FIFO or folder)")
        if self.source.is_dir() and not inside(path, self.source):
            return reject(
                Reason.OUTSIDE_SOURCE, f"resolves to {path.resolve()}, outside the source"
            )
        if info.st_size > MAX_FILE_BYTES:
            return reject(
                Reason.TOO_LONG,
                f"{info.st_size} bytes, over the {MAX_FILE_BYTES} byte cap for one ECG file",
            )
        return None

    @abstractmethod
    def read_file(self, path: Path) -> ECGRecord | Rejection:
        """One file -> a record, or a rejection saying what is wrong with it."""
