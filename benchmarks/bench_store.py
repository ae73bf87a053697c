"""Random single-ECG reads from the cohort store, warm and cold page cache.

Builds a store of N random ECGs (int16, 64 KB each), then times random reads
through ``CohortStore.read_raw`` (``os.pread``) and, as the reference measured
in the same run, through ``np.memmap`` of the same shard files. The cold case
drops the shard files from the page cache with
``posix_fadvise(POSIX_FADV_DONTNEED)`` before each measurement.

    python benchmarks/bench_store.py --n 20000 --reads 4000
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
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


def drop_cache(path: Path) -> None:
    for shard in (path / SHARD_DIR).glob("*.i16"):
        fd = os.open(shard, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def time_pread(store: CohortStore, indices: np.ndarray) -> float:
    start = time.perf_counter()
    total = 0
    for index in indices:
        total += int(store.read_raw(int(index))[0, 0])
    return len(indices) / (time.perf_counter() - start)


def time_memmap(store: CohortStore, indices: np.ndarray) -> float:
    maps = {
        name: np.memmap(store.path / SHARD_DIR / f"{name}.i16", dtype=np.int16, mode="r").reshape(
            -1, N_LEADS, SLOT_SAMPLES
        )
        for name in store.manifest["shard"].unique()
    }
    shards = store.manifest["shard"].to_numpy()
    rows = store.manifest["row"].to_numpy()
    start = time.perf_counter()
    total = 0
    for index in indices:
        total += int(np.array(maps[shards[index]][rows[index]])[0, 0])
    return len(indices) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=20_000, help="ECGs in the store")
    parser.add_argument("--reads", type=int, default=4_000, help="random reads per measurement")
    parser.add_argument("--shard-size", type=int, default=500)
    parser.add_argument(
        "--dir", type=Path, default=None, help="where to build (default: a temp dir)"
    )
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(dir=args.dir))
    try:
        t0 = time.perf_counter()
        store = build(root / "store", args.n, args.shard_size)
        print(
            f"built {args.n} ECGs ({args.n * 64_000 / 1e9:.2f} GB) in {time.perf_counter() - t0:.1f} s"
        )
        rng = np.random.default_rng(1)
        results = {}
        for cache in ("cold", "warm"):
            for name, fn in (
                ("pread (CohortStore)", time_pread),
                ("np.memmap (reference)", time_memmap),
            ):
                indices = rng.integers(0, len(store), size=args.reads)
                if cache == "cold":
                    drop_cache(store.path)
                else:
                    fn(store, indices)  # warm these pages first
                results[(cache, name)] = fn(store, indices)
        print(f"\nrandom single-ECG reads/s, {args.reads} reads, store of {args.n}")
        for (cache, name), rate in results.items():
            print(f"  {cache:4s}  {name:24s} {rate:10,.0f} /s")
        for cache in ("cold", "warm"):
            ratio = (
                results[(cache, "pread (CohortStore)")] / results[(cache, "np.memmap (reference)")]
            )
            print(f"  {cache}: pread / memmap = {ratio:.1f}x")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
