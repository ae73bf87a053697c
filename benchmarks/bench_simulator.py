"""Simulator throughput: ECGs generated per second on one core.

Times three stages separately on one process (torch is not involved; numpy
runs single-threaded here): synthesis only (dipole, leads, device), synthesis
plus writing in each layout, for a chosen sampling rate. Prints one line per
setting and a JSON summary.

    python benchmarks/bench_simulator.py                 # 500 Hz, 512 ECGs per setting
    python benchmarks/bench_simulator.py --n 2048 --rates 250 500 1000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

# One thread per process: the number is ECGs per core.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from cape.simulator import DeviceSpec, SimulationSpec, VisitsSpec  # noqa: E402
from cape.simulator.generate import _run_block, iter_block_chunks, plan_blocks  # noqa: E402
from cape.simulator.presets import demo  # noqa: E402


def _spec(rate_hz: int, output_format: str, n_ecgs: int, chunk_size: int) -> SimulationSpec:
    base = demo().cohort("harbor")
    device = DeviceSpec(
        name="bench", sampling_rate_hz=rate_hz, lowpass_hz=min(150.0, 0.4 * rate_hz), hum_uv=5
    )
    cohort = base.model_copy(
        update={
            "n_patients": n_ecgs,
            "visits": VisitsSpec(min_ecgs=1, mean_ecgs=1, max_ecgs=1),
            "devices": [device],
            "output_format": output_format,
            "exams_per_part": n_ecgs,
        }
    )
    return SimulationSpec(cohorts=[cohort], seed=0, chunk_size=chunk_size)


def _synthesis_rate(spec: SimulationSpec) -> float:
    cohort = spec.cohorts[0]
    blocks = plan_blocks(spec, cohort)
    started = time.perf_counter()
    n = sum(len(chunk.ecgs) for block in blocks for chunk in iter_block_chunks(spec, cohort, block))
    return n / (time.perf_counter() - started)


def _write_rate(spec: SimulationSpec) -> float:
    cohort = spec.cohorts[0]
    blocks = plan_blocks(spec, cohort)
    out = Path(tempfile.mkdtemp(prefix="bench-sim-"))
    try:
        (out / cohort.name).mkdir()
        started = time.perf_counter()
        n = sum(len(_run_block(spec, cohort.name, block, out)) for block in blocks)
        return n / (time.perf_counter() - started)
    finally:
        shutil.rmtree(out)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=512, help="ECGs per setting")
    parser.add_argument(
        "--rates", type=int, nargs="+", default=[500], help="device sampling rates (Hz)"
    )
    parser.add_argument("--chunk-size", type=int, default=64, help="ECGs per vectorised batch")
    args = parser.parse_args()
    results = []
    for rate in args.rates:
        spec = _spec(rate, "wfdb", args.n, args.chunk_size)
        _synthesis_rate(_spec(rate, "wfdb", args.chunk_size, args.chunk_size))  # warm-up
        row = {"rate_hz": rate, "synthesis_ecg_per_s": round(_synthesis_rate(spec), 1)}
        for output_format in ("wfdb", "ptbxl", "code15"):
            rate_written = _write_rate(_spec(rate, output_format, args.n, args.chunk_size))
            row[f"{output_format}_ecg_per_s"] = round(rate_written, 1)
        print(
            f"{rate:>5} Hz: synthesis {row['synthesis_ecg_per_s']:7.1f} ECG/s/core; with writing: "
            f"wfdb {row['wfdb_ecg_per_s']:.1f}, ptbxl {row['ptbxl_ecg_per_s']:.1f}, "
            f"code15 {row['code15_ecg_per_s']:.1f} ECG/s/core"
        )
        results.append(row)
    print(json.dumps({"n_ecgs": args.n, "chunk_size": args.chunk_size, "results": results}))


if __name__ == "__main__":
    main()
