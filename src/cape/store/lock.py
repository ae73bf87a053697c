"""The store's write lock: one ingest (or split) at a time, safe against killed owners."""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cape.errors import CapeError

logger = logging.getLogger("cape.ingest")  # the warning belongs to the ingest that sees it


@contextmanager
def store_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on the store: one ingest (or split) at a time.

    A POSIX record lock (``lockf``), not ``flock``: record locks belong to the
    process and are not inherited by forked workers, so workers orphaned by a
    ``kill -9`` of the parent cannot keep the store locked. The lock file holds
    the owner's pid and host while it runs and is emptied on release; finding
    it non-empty on acquiring means the previous owner died: its lock is taken
    over with a warning (its uncommitted shards are rewritten, never counted).

    Raises:
        CapeError: another live process holds the lock.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    fd = os.open(path / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno not in (errno.EACCES, errno.EAGAIN):
                raise
            owner = os.pread(fd, 200, 0).decode(errors="replace").strip() or "unknown"
            raise CapeError(
                f"{path} is being written by another cape process (owner: {owner})"
            ) from error
        previous = os.pread(fd, 200, 0).decode(errors="replace").strip()
        if previous:
            logger.warning(
                "%s: taking over a stale lock (owner %s ended without releasing it); "
                "shards it did not commit are rewritten",
                path,
                previous,
            )
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.lockf(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
