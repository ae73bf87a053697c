"""Random single-ECG reads from the cohort store, cold and warm page cache.

Builds a store of N random ECGs (int16, 64 KB each), then times random reads
through ``CohortStore.read_raw`` (one ``os.pread`` per ECG) and, as the
reference measured in the same run, through ``np.memmap`` of the same shard
files. Each shard is mapped **once**, before any timing, and the maps are
reused by every measurement (a data loader would keep them open too).

Cold: before each cold measurement the shard files are evicted from the page
cache, and the eviction is **verified**:

1. ``madvise(MADV_DONTNEED)`` on the benchmark's own maps (pages mapped into a
   process cannot be dropped from the cache while mapped);
2. ``fsync`` + ``posix_fadvise(POSIX_FADV_DONTNEED)`` on every shard;
3. ``mincore(2)`` (via ctypes, unprivileged) on a fresh mapping of every shard
   counts the pages still resident. The fraction is printed; when it is above
   ``--max-resident`` (default 1 %) the cold figures are flagged as not cold
   (e.g. on tmpfs, or if another process holds the files mapped).

Warm: the same indices are read once untimed, then timed. Every repeat times
both readers with the same random indices, in alternating order; figures are
medians over ``--repeats`` with the range of the per-repeat ratios.

    python benchmarks/bench_store.py --n 20000 --reads 4000 --repeats 3
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import mmap
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from cape.store import (
    N_LEADS,
    SHARD_DIR,
    SLOT_SAMPLES,
    CohortStore,
    ShardWriter,
    new_header,
    rebuild_manifest,
    write_json_atomic,
)

PAGE = os.sysconf("SC_PAGE_SIZE")
_LIBC = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_LIBC.mmap.restype = ctypes.c_void_p
_LIBC.mmap.argtypes = [
    ctypes.c_void_p,
    ctypes.c_size_t,
    ctypes.c_int,
    ctypes.c_int,
    ctypes.c_int,
    ctypes.c_long,
]
_LIBC.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_LIBC.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
_MAP_FAILED = ctypes.c_void_p(-1).value


def build(path: Path, n: int, shard_size: int) -> CohortStore:
    path.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path / "header.json", new_header())
    rng = np.random.default_rng(0)
    block = rng.integers(-2000, 2000, size=(64, N_LEADS, SLOT_SAMPLES), dtype=np.int16)
    for start in range(0, n, shard_size):
        writer = ShardWriter(path, f"bench-{start // shard_size:05d}")
        for k in range(start, min(n, start + shard_size)):
            writer.append(
                block[k % 64],
                {
                    "record_id": str(k),
                    "patient_id": str(k // 2),
                    "cohort": "bench",
                    "valid_length": SLOT_SAMPLES,
                },
            )
        writer.commit()
    rebuild_manifest(path)
    return CohortStore.open(path)


def shard_files(store: CohortStore) -> list[Path]:
    return sorted((store.path / SHARD_DIR).glob("*.i16"))


def resident_pages(path: Path) -> tuple[int, int]:
    """``(resident, total)`` pages of ``path`` in the page cache, by ``mincore(2)``."""
    size = path.stat().st_size
    if size == 0:
        return 0, 0
    fd = os.open(path, os.O_RDONLY)
    try:
        address = _LIBC.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        if address in (None, _MAP_FAILED):
            raise OSError(ctypes.get_errno(), f"mmap of {path} failed")
        try:
            n_pages = (size + PAGE - 1) // PAGE
            vector = ctypes.create_string_buffer(n_pages)
            if _LIBC.mincore(address, size, vector) != 0:
                raise OSError(ctypes.get_errno(), f"mincore of {path} failed")
            resident = sum(byte & 1 for byte in vector.raw)
        finally:
            _LIBC.munmap(address, size)
    finally:
        os.close(fd)
    return resident, n_pages


def evict(store: CohortStore, maps: dict[str, np.memmap]) -> float:
    """Drop the shards from the page cache; return the fraction of pages still resident."""
    for array in maps.values():
        array._mmap.madvise(mmap.MADV_DONTNEED)  # type: ignore[attr-defined]
    resident = total = 0
    for shard in shard_files(store):
        fd = os.open(shard, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
        pages = resident_pages(shard)
        resident += pages[0]
        total += pages[1]
    return resident / max(total, 1)


def open_maps(store: CohortStore) -> dict[str, np.memmap]:
    """One read-only memmap per shard, opened once."""
    return {
        path.stem: np.memmap(path, dtype=np.int16, mode="r").reshape(-1, N_LEADS, SLOT_SAMPLES)
        for path in shard_files(store)
    }


def pread_reader(store: CohortStore) -> Callable[[int], int]:
    return lambda index: int(store.read_raw(index)[0, 0])


def memmap_reader(store: CohortStore, maps: dict[str, np.memmap]) -> Callable[[int], int]:
    shards = store.manifest["shard"].astype(str).to_numpy()
    rows = store.manifest["row"].to_numpy()
    # np.array copies the slot out, as read_raw's buffer is a copy.
    return lambda index: int(np.array(maps[shards[index]][rows[index]])[0, 0])


def reads_per_second(read: Callable[[int], int], indices: np.ndarray) -> float:
    start = time.perf_counter()
    total = 0
    for index in indices:
        total += read(int(index))
    return len(indices) / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=20_000, help="ECGs in the store")
    parser.add_argument("--reads", type=int, default=4_000, help="random reads per measurement")
    parser.add_argument("--repeats", type=int, default=3, help="measurements per setting")
    parser.add_argument("--shard-size", type=int, default=500)
    parser.add_argument("--max-resident", type=float, default=0.01, help="cold-cache tolerance")
    parser.add_argument("--dir", type=Path, default=None, help="where to build (default: temp)")
    parser.add_argument("--quick", action="store_true", help="tiny store (smoke test)")
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.reads, args.repeats, args.shard_size = 64, 32, 2, 16
    root = Path(tempfile.mkdtemp(dir=args.dir))
    try:
        t0 = time.perf_counter()
        store = build(root / "store", args.n, args.shard_size)
        print(
            f"built {args.n} ECGs ({args.n * 64_000 / 1e9:.2f} GB) in "
            f"{time.perf_counter() - t0:.1f} s under {root}"
        )
        maps = open_maps(store)
        readers = {
            "pread (CohortStore)": pread_reader(store),
            "np.memmap": memmap_reader(store, maps),
        }
        rng = np.random.default_rng(1)
        rates: dict[tuple[str, str], list[float]] = {}
        residents: list[float] = []
        for repeat in range(args.repeats):
            indices = rng.integers(0, len(store), size=args.reads)
            names = list(readers) if repeat % 2 == 0 else list(readers)[::-1]
            for cache in ("cold", "warm"):
                for name in names:
                    if cache == "cold":
                        residents.append(evict(store, maps))
                    else:
                        reads_per_second(readers[name], indices)  # warm these pages first
                    rate = reads_per_second(readers[name], indices)
                    rates.setdefault((cache, name), []).append(rate)
        worst = max(residents)
        load = os.getloadavg()
        print(
            f"random single-ECG reads/s, {args.reads} reads x {args.repeats} repeats, store of "
            f"{args.n}; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
        )
        print(
            f"cold-cache check (mincore after eviction): at most {100 * worst:.2f} % of shard "
            f"pages resident -> {'verified' if worst <= args.max_resident else 'NOT VERIFIED'}"
        )
        for (cache, name), values in rates.items():
            print(f"  {cache:4s}  {name:20s} {statistics.median(values):10,.0f} /s")
        for cache in ("cold", "warm"):
            ratios = [
                p / m
                for p, m in zip(
                    rates[(cache, "pread (CohortStore)")], rates[(cache, "np.memmap")], strict=True
                )
            ]
            flag = (
                " (cache NOT verified cold)"
                if cache == "cold" and worst > args.max_resident
                else ""
            )
            print(
                f"  {cache}: pread / memmap = {statistics.median(ratios):.2f}x "
                f"(range {min(ratios):.2f}-{max(ratios):.2f}){flag}"
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
