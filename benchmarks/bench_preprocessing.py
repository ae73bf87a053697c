"""Preprocessing throughput: CAPE's vectorised path against a plain per-record SciPy loop.

Input: synthetic 12-lead, 10 s, 500 Hz ECGs (float64 mV, as a reader hands them
over); the eight store leads are picked, then preprocessed to 400 Hz.

* ``plain loop``: per record, ``sosfiltfilt`` band-pass + ``iirnotch``/``filtfilt``
  at 500 Hz, then ``resample_poly`` 4/5 (the chain DESIGN.md measured at
  ~400 ECG/s per core);
* ``cape``: :func:`cape.preprocessing.preprocess` on batches, in a pool of 1
  or 2 worker processes (one thread each), as ingest runs it.

Run: ``python benchmarks/bench_preprocessing.py --n 1024``. Each figure is the
median of ``--repeats`` runs, all measured in the same invocation.
"""

from __future__ import annotations

import os

# One thread per process: set before NumPy/SciPy load their BLAS/OpenMP runtimes.
for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_name] = "1"

import argparse  # noqa: E402
import multiprocessing as mp  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402
from scipy import signal as sps  # noqa: E402
from tqdm import tqdm  # noqa: E402

from cape.leads import STANDARD_12, STORE_LEADS  # noqa: E402
from cape.preprocessing import preprocess  # noqa: E402

SOURCE_HZ = 500.0
MAINS_HZ = 50.0
STORE_ROWS = np.array([STANDARD_12.index(lead) for lead in STORE_LEADS])

# Filled in the parent before the pool forks, so workers read it without pickling
# 30 MB per batch (a real ingest worker reads its own files instead).
_ECGS: np.ndarray = np.empty(0)


def make_ecgs(n_ecgs: int, seed: int) -> np.ndarray:
    """``(n, 12, 5000)`` float64 mV: sums of sines (0.5-40 Hz), offset, wander, hum, noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(10 * SOURCE_HZ)) / SOURCE_HZ
    basis = np.sin(2 * np.pi * rng.uniform(0.5, 40.0, size=(16, 1)) * t)
    mix = rng.normal(0, 0.2, size=(n_ecgs, 12, 16))
    ecgs = mix @ basis
    ecgs += rng.uniform(-1, 1, size=(n_ecgs, 12, 1)) + 0.3 * np.sin(2 * np.pi * 0.2 * t)
    ecgs += 0.05 * np.sin(2 * np.pi * MAINS_HZ * t) + rng.normal(0, 0.01, size=ecgs.shape)
    return ecgs


def plain_loop(start: int, stop: int) -> int:
    """The straightforward chain, one record at a time."""
    sos = sps.butter(2, [0.5, 100.0], btype="band", fs=SOURCE_HZ, output="sos")
    b, a = sps.iirnotch(MAINS_HZ, 30.0, fs=SOURCE_HZ)
    for record in _ECGS[start:stop]:
        x = record[STORE_ROWS]
        x = sps.sosfiltfilt(sos, x, axis=-1)
        x = sps.filtfilt(b, a, x, axis=-1)
        sps.resample_poly(x, 4, 5, axis=-1)
    return stop - start


def cape_batch(start: int, stop: int) -> int:
    preprocess(_ECGS[start:stop, STORE_ROWS], SOURCE_HZ, MAINS_HZ)
    return stop - start


def _run(task: tuple[Callable[[int, int], int], int, int]) -> tuple[int, float]:
    """Run one task; also return the CPU seconds this process spent on it."""
    function, start, stop = task
    begin = time.process_time()
    done = function(start, stop)
    return done, time.process_time() - begin


def measure(
    function: Callable[[int, int], int], n_ecgs: int, batch: int, pool: mp.pool.Pool | None
) -> tuple[float, float]:
    """ECGs per wall-clock second and per CPU second, for one pass over all ECGs.

    The CPU-second figure is the per-core speed with other users' load on the
    machine mostly factored out (it still pays for shared caches).
    """
    tasks = [(function, s, min(s + batch, n_ecgs)) for s in range(0, n_ecgs, batch)]
    begin = time.perf_counter()
    results = list(pool.imap_unordered(_run, tasks) if pool else map(_run, tasks))
    wall = time.perf_counter() - begin
    done = sum(count for count, _ in results)
    return done / wall, done / sum(cpu for _, cpu in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1024, help="ECGs per measured pass")
    parser.add_argument("--batch", type=int, default=64, help="ECGs per preprocess() call")
    parser.add_argument("--repeats", type=int, default=3, help="passes per setting (median)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic ECGs")
    args = parser.parse_args()

    global _ECGS
    _ECGS = make_ecgs(args.n, args.seed)
    context = mp.get_context("fork")
    pools = {workers: context.Pool(workers) for workers in (1, 2)}
    settings: list[tuple[str, Callable[[int, int], int], mp.pool.Pool | None]] = [
        ("plain loop, 1 record/call, main process", plain_loop, None),
        ("plain loop, 2 worker processes", plain_loop, pools[2]),
        (f"cape, batch {args.batch}, 1 worker process", cape_batch, pools[1]),
        (f"cape, batch {args.batch}, 2 worker processes", cape_batch, pools[2]),
    ]
    rates: dict[str, list[float]] = {name: [] for name, _, _ in settings}
    cpu_rates: dict[str, list[float]] = {name: [] for name, _, _ in settings}
    try:
        for _, function, pool in settings:  # warm-up: imports, page faults
            measure(function, min(args.n, 2 * args.batch), args.batch, pool)
        with tqdm(total=args.repeats * len(settings), desc="benchmark", leave=False) as bar:
            for _ in range(args.repeats):  # interleaved, so load changes hit all settings alike
                for name, function, pool in settings:
                    wall_rate, cpu_rate = measure(function, args.n, args.batch, pool)
                    rates[name].append(wall_rate)
                    cpu_rates[name].append(cpu_rate)
                    bar.update()
    finally:
        for pool in pools.values():
            pool.close()
            pool.join()

    load = os.getloadavg()
    print(f"{args.n} ECGs (12-lead -> 8 leads, 10 s, 500 Hz -> 400 Hz), median of {args.repeats}")
    print(f"machine: {os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    baseline = statistics.median(rates[settings[0][0]])
    cpu_baseline = statistics.median(cpu_rates[settings[0][0]])
    print(f"  {'setting':<44} {'ECG/s wall':>10} {'ratio':>6} {'ECG/CPU-s':>10} {'ratio':>6}")
    for name, _, _ in settings:
        wall = statistics.median(rates[name])
        cpu = statistics.median(cpu_rates[name])
        print(
            f"  {name:<44} {wall:10.0f} {wall / baseline:6.2f} {cpu:10.0f} {cpu / cpu_baseline:6.2f}"
        )


if __name__ == "__main__":
    main()
