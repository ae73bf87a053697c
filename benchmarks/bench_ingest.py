"""Memory of ``cape ingest`` per ingested ECG: a slope fitted over a >= 10x range of N.

Ingests N synthetic 12-lead, 10 s, 500 Hz ECGs (made on the fly by a small
in-process reader, so no input files are needed) into a fresh store, in a
fresh process per N, through the real ingest (preprocessing, QC, shards,
manifest). For each N it records the peak resident memory (``ru_maxrss``) of
the ingest process and of its workers, and the ingest process's resident
memory after ingest returned (what it still holds: the manifest). Beside them
it prints what the growth is made of: the manifest ingest rebuilds from its
parts at the end, as pandas holds it (deep size), and the peak of Arrow's memory
pool (parquet reads and writes). Arrow's default pool (mimalloc or jemalloc)
keeps freed memory for reuse, which RSS counts; ``--arrow-pool system`` shows
how much of the slope is that.

A single pair of sizes over a ~200 MB import baseline cannot see growth below
~1 KB per ECG. Here a least-squares line is fitted to each memory figure
against N; its slope (bytes per ECG) is printed with a 95 % confidence interval
(t distribution, n - 2 degrees of freedom) and extrapolated to 5 million ECGs
(the scale DESIGN.md names). The store must not grow with N in memory: a slope
whose interval holds 0 means no growth was seen at that resolution.

Runtime is dominated by preprocessing and QC (~100-400 ECG/s per core): the
default 2k -> 40k (20x) takes several minutes on two cores.

    python benchmarks/bench_ingest.py --sizes 2000 5000 10000 20000 40000 --workers 2
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from scipy import stats

from cape.readers.base import Reader, ReadTask
from cape.record import ECGRecord, Rejection

_LEADS = ["I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6"]


class SyntheticReader(Reader):
    """N ECG-like signals (sines + noise, 500 Hz, 10 s), generated per task."""

    format_name = "bench"

    def tasks(self) -> list[ReadTask]:
        n = int(self.options["n"])
        size = 500
        return [
            ReadTask(
                key=f"rows-{s:07d}", payload=(s, min(n, s + size)), n_items=min(n, s + size) - s
            )
            for s in range(0, n, size)
        ]

    def read(self, task: ReadTask) -> Iterator[ECGRecord | Rejection]:
        start, stop = task.payload
        base = _base_ecgs()
        t = np.arange(5000) / 500.0
        for k in range(start, stop):
            # Each record adds a 0.1 mV baseline wave at its own frequency to one of
            # 64 base ECGs: every stored slot differs (no duplicate_signal quarantine)
            # for k < 64 x 20011, at ~50 us per record.
            wander = 0.1 * np.sin(2 * np.pi * (0.1 + (k % 20011) * 2e-5) * t)
            yield ECGRecord(
                record_id=str(k),
                patient_id=str(k // 3),
                cohort="bench",
                signal=base[k % 64] + wander,
                sampling_rate_hz=500.0,
                lead_names=_LEADS,
                units="mV",
                source_file=f"synthetic/{k}",
                metadata={"age": float(20 + k % 70), "sex": "MF"[k % 2]},
            )


def _base_ecgs() -> np.ndarray:
    """``(64, 12, 5000)`` mV: Gaussian P-QRS-T beats at 60-90 bpm, per-lead gains, noise.

    Plausible enough to pass QC (QRS ~50 ms wide, QT ~400 ms), so the ECGs are
    stored, not quarantined -- a benchmark of ingest must ingest.
    """
    rng = np.random.default_rng(0)
    t = np.arange(5000) / 500.0
    out = np.empty((64, 12, 5000))
    for k in range(64):
        rr = 60.0 / rng.uniform(60, 90)
        beats = np.arange(rng.uniform(0.2, 0.6), 10.0, rr)
        wave = np.zeros_like(t)
        for onset in beats:
            for delay, amplitude, width in (
                (-0.16, 0.12, 0.025),
                (0.0, 1.0, 0.012),
                (0.3, 0.3, 0.05),
            ):
                wave += amplitude * np.exp(-0.5 * ((t - onset - delay) / width) ** 2)
        gains = rng.uniform(0.6, 1.4, size=(12, 1)) * rng.choice([-1.0, 1.0], size=(12, 1))
        out[k] = gains * wave + rng.normal(scale=0.01, size=(12, 5000))
    return out


def _current_rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize()


def _child(n: int, workers: int, out: str) -> None:
    import pandas as pd
    import pyarrow as pa

    from cape.ingest import ingest_reader

    reader = SyntheticReader("synthetic", "bench", n=n)
    start = time.perf_counter()
    summary = ingest_reader(reader, out, mains_hz=50.0, workers=workers, progress=False)
    elapsed = time.perf_counter() - start
    pool = pa.default_memory_pool()
    arrow_peak = pool.max_memory()  # Arrow's own allocations (parquet reads and writes)
    # What the growth should be made of: the manifest ingest rebuilds from its parts at
    # the end, held in pandas (deep size, strings included).
    manifest_bytes = int(
        pd.read_parquet(Path(out) / "manifest.parquet").memory_usage(deep=True).sum()
    )
    print(
        json.dumps(
            {
                "n": n,
                "stored": summary.stored,
                "seconds": elapsed,
                # ru_maxrss is in KiB on Linux.
                "main_peak": 1024 * resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                "worker_peak": 1024 * resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
                "main_after": _current_rss_bytes(),
                "manifest": manifest_bytes,
                "arrow_peak": arrow_peak,
                "arrow_pool": pool.backend_name,
            }
        )
    )


def fit_slope(sizes: list[int], values: list[float]) -> tuple[float, float, float]:
    """Least-squares slope of ``values`` on ``sizes`` and its 95 % interval (NaN if n < 3)."""
    fit = stats.linregress(sizes, values)
    if len(sizes) < 3:
        return float(fit.slope), math.nan, math.nan
    half = stats.t.ppf(0.975, len(sizes) - 2) * fit.stderr
    return float(fit.slope), float(fit.slope - half), float(fit.slope + half)


def run_size(n: int, workers: int, arrow_pool: str | None = None) -> dict:
    root = Path(tempfile.mkdtemp())
    env = dict(os.environ)
    if arrow_pool:
        env["ARROW_DEFAULT_MEMORY_POOL"] = arrow_pool
    try:
        output = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                str(n),
                "--workers",
                str(workers),
                "--out",
                str(root / "store"),
            ],
            check=True,
            capture_output=True,
            text=True,
            env=env,
        ).stdout
        return json.loads(output.strip().splitlines()[-1])
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 5000, 10000, 20000, 40000])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--target", type=int, default=5_000_000, help="N to extrapolate to")
    parser.add_argument("--quick", action="store_true", help="sizes 20 40 60 (smoke test)")
    parser.add_argument(
        "--arrow-pool",
        choices=["system", "mimalloc", "jemalloc"],
        help="Arrow's allocator in the ingest process (ARROW_DEFAULT_MEMORY_POOL; default: "
        "Arrow's own choice). Pooling allocators keep freed memory, which shows in RSS.",
    )
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child, args.workers, args.out)
        return
    if args.quick:
        args.sizes, args.workers = [20, 40, 60], 1
    sizes = sorted(set(args.sizes))
    if sizes[-1] < 10 * sizes[0] and not args.quick:
        print(f"warning: sizes span {sizes[-1] / sizes[0]:.1f}x; the slope needs >= 10x")
    results = [run_size(n, args.workers, args.arrow_pool) for n in sizes]
    print(
        f"ingest of synthetic 12-lead 10 s 500 Hz ECGs, workers={args.workers}, "
        f"Arrow pool {results[0]['arrow_pool']}"
    )
    for r in results:
        if r["stored"] != r["n"]:
            raise SystemExit(f"N={r['n']}: only {r['stored']} ECGs stored")
        print(
            f"  N={r['n']:>7}: {r['n'] / r['seconds']:6.0f} ECG/s, peak RSS main "
            f"{r['main_peak'] / 2**20:6.1f} MiB, workers {r['worker_peak'] / 2**20:6.1f} MiB; "
            f"main after ingest {r['main_after'] / 2**20:6.1f} MiB; manifest in pandas "
            f"{r['manifest'] / r['n']:5.0f} B/ECG, Arrow pool peak {r['arrow_peak'] / r['n']:5.0f} B/ECG"
        )
    if len(sizes) < 2:
        return
    print(
        f"slope over N = {sizes[0]}..{sizes[-1]} ({sizes[-1] / sizes[0]:.0f}x), 95 % CI, "
        f"and the line extrapolated to N = {args.target:,}:"
    )
    for key, label in (
        ("main_peak", "peak RSS, ingest process"),
        ("worker_peak", "peak RSS, largest worker"),
        ("main_after", "RSS after ingest, ingest process"),
        ("manifest", "manifest held in pandas (deep)"),
        ("arrow_peak", "Arrow memory pool peak"),
    ):
        values = [float(r[key]) for r in results]
        slope, low, high = fit_slope(sizes, values)
        intercept = float(np.mean(values) - slope * np.mean(sizes))
        at_target = (intercept + slope * args.target) / 2**30
        print(
            f"  {label:<34} {slope:8.1f} B/ECG [{low:8.1f}, {high:8.1f}]  "
            f"-> {at_target:7.2f} GiB at {args.target:,} (growth {slope * args.target / 2**30:.2f} GiB)"
        )


if __name__ == "__main__":
    main()
