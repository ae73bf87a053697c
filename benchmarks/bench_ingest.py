"""Peak memory of ``cape ingest`` against the number of ECGs ingested.

Ingests N synthetic 12-lead, 10 s, 500 Hz ECGs (generated on the fly by a
small in-process reader, so no input files are needed) into a fresh store, in
a fresh process per N, and prints the peak resident memory (ru_maxrss of the
ingest process and of its workers) and throughput. The store lives on disk:
peak memory must not grow with N beyond ~10 %.

    python benchmarks/bench_ingest.py --sizes 5000 20000 --workers 1
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

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
        t = np.arange(5000) / 500.0
        for k in range(start, stop):
            rng = np.random.default_rng(k)
            signal = 0.8 * np.sin(2 * np.pi * 1.2 * t + rng.uniform(0, 6, size=(12, 1)))
            signal += rng.normal(scale=0.02, size=(12, 5000))
            yield ECGRecord(
                record_id=str(k),
                patient_id=str(k // 3),
                cohort="bench",
                signal=signal,
                sampling_rate_hz=500.0,
                lead_names=_LEADS,
                units="mV",
                source_file=f"synthetic/{k}",
                metadata={"age": float(20 + k % 70), "sex": "MF"[k % 2]},
            )


def _child(n: int, workers: int, out: str) -> None:
    from cape.ingest import ingest_reader

    reader = SyntheticReader("synthetic", "bench", n=n)
    start = time.perf_counter()
    summary = ingest_reader(reader, out, mains_hz=50.0, workers=workers, progress=False)
    elapsed = time.perf_counter() - start
    self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(
        json.dumps(
            {
                "n": n,
                "stored": summary.stored,
                "seconds": elapsed,
                "self_mb": self_kb / 1024,
                "workers_mb": children_kb / 1024,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 20000])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.workers, args.out)
        return
    results = []
    for n in args.sizes:
        root = Path(tempfile.mkdtemp())
        try:
            output = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    str(n),
                    "--workers",
                    str(args.workers),
                    "--out",
                    str(root / "store"),
                ],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            results.append(json.loads(output.strip().splitlines()[-1]))
        finally:
            shutil.rmtree(root, ignore_errors=True)
    print(f"ingest of synthetic 12-lead 10 s 500 Hz ECGs, workers={args.workers}")
    for r in results:
        peak = max(r["self_mb"], r["workers_mb"])
        print(
            f"  N={r['n']:>7}: {r['n'] / r['seconds']:7.0f} ECG/s, peak RSS main "
            f"{r['self_mb']:.0f} MB, worker {r['workers_mb']:.0f} MB (max {peak:.0f} MB)"
        )
    if len(results) >= 2:
        first = max(results[0]["self_mb"], results[0]["workers_mb"])
        last = max(results[-1]["self_mb"], results[-1]["workers_mb"])
        print(
            f"  peak RSS growth N={results[0]['n']} -> N={results[-1]['n']}: {100 * (last / first - 1):+.1f}%"
        )


if __name__ == "__main__":
    main()
