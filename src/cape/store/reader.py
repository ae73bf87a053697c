"""Reading a store: :class:`CohortStore`, one ``os.pread`` per ECG."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cape.errors import CapeError
from cape.store.fingerprint import store_fingerprint
from cape.store.layout import (
    MANIFEST_FILE,
    N_LEADS,
    QUARANTINE_COLUMNS,
    QUARANTINE_FILE,
    RECORD_BYTES,
    SHARD_DIR,
    SLOT_SAMPLES,
    read_header,
)


@dataclass
class _FileHandles:
    pid: int
    fds: dict[str, int]


class CohortStore:
    """Read access to a cohort store; cheap to pickle into DataLoader workers.

    File descriptors are opened lazily in each process (checked by pid), so a
    store built in the parent can be used by forked or spawned workers.

    Example:
        >>> store = CohortStore.open("stores/demo")  # doctest: +SKIP
        >>> x = store.read(0)  # float32 (8, 4000) in mV
    """

    def __init__(self, path: Path, header: dict[str, Any], manifest: pd.DataFrame) -> None:
        self.path = Path(path)
        self.header = header
        self.manifest = manifest
        self.valid_lengths = manifest["valid_length"].to_numpy(dtype=np.int32)
        shard_names = manifest["shard"].astype(str).to_numpy()
        self._shard_names = sorted(set(shard_names))
        lookup = {name: k for k, name in enumerate(self._shard_names)}
        self._shard_index = np.array([lookup[s] for s in shard_names], dtype=np.int32)
        self._offsets = manifest["row"].to_numpy(dtype=np.int64) * RECORD_BYTES
        self._handles: _FileHandles | None = None
        self._lock = threading.Lock()

    # -- construction ---------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path) -> CohortStore:
        """Open a store directory.

        Raises:
            CapeError: the path does not exist, is not a store, or has no manifest.
        """
        path = Path(path)
        if not path.exists():
            raise CapeError(f"store {path} does not exist")
        header = read_header(path)
        manifest_path = path / MANIFEST_FILE
        if not manifest_path.is_file():
            raise CapeError(
                f"{path}: store has no {MANIFEST_FILE}; re-run `cape ingest` to finish it"
            )
        manifest = pd.read_parquet(manifest_path)
        return cls(path, header, manifest)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_handles"] = None
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    # -- metadata -------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.manifest)

    @property
    def cohorts(self) -> list[str]:
        return sorted(self.manifest["cohort"].astype(str).unique().tolist())

    @property
    def sampling_rate_hz(self) -> int:
        return int(self.header["sampling_rate_hz"])

    @property
    def lead_names(self) -> list[str]:
        return list(self.header["leads"])

    def quarantine(self) -> pd.DataFrame:
        path = self.path / QUARANTINE_FILE
        if not path.is_file():
            return pd.DataFrame(columns=QUARANTINE_COLUMNS)
        return pd.read_parquet(path)

    def fingerprint(self) -> str:
        """A short hash of the manifest and a sampled digest of the signal bytes.

        Changes when the ids, splits or placement change, and when the signals
        are rewritten under the same manifest (see :mod:`cape.store.fingerprint`
        for what is sampled; about 4 MB plus 4 KB per shard are read).
        """
        return store_fingerprint(
            self.path, self.manifest, self._shard_names, self._shard_index, self._offsets
        )

    # -- reading --------------------------------------------------------------------
    def _fd(self, shard: int) -> int:
        pid = os.getpid()
        if self._handles is None or self._handles.pid != pid:
            self._handles = _FileHandles(pid=pid, fds={})
        name = self._shard_names[shard]
        fd = self._handles.fds.get(name)
        if fd is None:
            with self._lock:
                fd = self._handles.fds.get(name)
                if fd is None:
                    fd = os.open(self.path / SHARD_DIR / f"{name}.i16", os.O_RDONLY)
                    self._handles.fds[name] = fd
        return fd

    def read_raw(self, index: int) -> np.ndarray:
        """The stored int16 microvolt slot of ECG ``index``: ``(8, 4000)``."""
        if not 0 <= index < len(self.valid_lengths):
            raise IndexError(f"ECG index {index} out of range for a store of {len(self)}")
        fd = self._fd(int(self._shard_index[index]))
        buffer = os.pread(fd, RECORD_BYTES, int(self._offsets[index]))
        if len(buffer) != RECORD_BYTES:
            raise CapeError(
                f"{self.path}: shard {self._shard_names[self._shard_index[index]]} is truncated "
                f"(ECG {index}); re-run ingest"
            )
        return np.frombuffer(buffer, dtype=np.int16).reshape(N_LEADS, SLOT_SAMPLES)

    def read(self, index: int) -> np.ndarray:
        """ECG ``index`` as float32 millivolts, ``(8, 4000)``; zeros after its valid length."""
        return self.read_raw(index).astype(np.float32) * np.float32(1e-3)

    def read_many(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Several ECGs as float32 millivolts, ``(k, 8, 4000)``."""
        indices = np.asarray(indices, dtype=np.int64)
        out = np.empty((len(indices), N_LEADS, SLOT_SAMPLES), dtype=np.float32)
        for k, index in enumerate(indices):
            out[k] = self.read_raw(int(index))
        out *= np.float32(1e-3)
        return out

    def close(self) -> None:
        if self._handles is not None and self._handles.pid == os.getpid():
            for fd in self._handles.fds.values():
                os.close(fd)
        self._handles = None

    def __del__(self) -> None:  # pragma: no cover - best effort
        try:
            self.close()
        except Exception:
            pass
