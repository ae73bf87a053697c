"""Simulator throughput on one core, each stage against a reference in the same run.

* **synthesis**: ECGs/s of the vectorised generator at ``--chunk-size`` ECGs
  per numpy call, against the *same* generator at ``chunk_size=1`` (one ECG
  per call: the cost of the per-call overhead that vectorising removes). The
  two draw from differently split random streams, so the ECGs differ, but the
  work per ECG is the same model at the same rate and length.
* **writing**, per layout (``wfdb``, ``ptbxl``, ``code15``): synthesis plus the
  real writer, against synthesis plus a raw ``ndarray.tofile`` of the same
  signals (the bytes, with no format): the ratio is what each format's
  encoding, headers and metadata cost on top of dumping the samples.

One process, one BLAS thread; every repeat runs each pair in alternating
order; medians and ranges of the per-repeat ratios are printed, then a JSON
summary.

    python benchmarks/bench_simulator.py                 # 500 Hz, 256 ECGs per setting
    python benchmarks/bench_simulator.py --n 1024 --rates 250 500 1000 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
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


def _raw_write_rate(spec: SimulationSpec) -> float:
    """Synthesis plus ``tofile`` of each chunk's signals: the bytes with no format."""
    cohort = spec.cohorts[0]
    blocks = plan_blocks(spec, cohort)
    out = Path(tempfile.mkdtemp(prefix="bench-sim-raw-"))
    try:
        started = time.perf_counter()
        n = 0
        with open(out / "signals.bin", "wb") as handle:
            for block in blocks:
                for chunk in iter_block_chunks(spec, cohort, block):
                    chunk.signals.tofile(handle)
                    n += len(chunk.ecgs)
        return n / (time.perf_counter() - started)
    finally:
        shutil.rmtree(out)


def _paired(
    reference: Callable[[], float], variant: Callable[[], float], repeats: int
) -> tuple[list[float], list[float]]:
    """ECG/s of both, alternating which runs first."""
    references, variants = [], []
    for repeat in range(repeats):
        if repeat % 2 == 0:
            references.append(reference())
            variants.append(variant())
        else:
            variants.append(variant())
            references.append(reference())
    return references, variants


def _summary(name: str, references: list[float], variants: list[float]) -> dict:
    ratios = [v / r for r, v in zip(references, variants, strict=True)]
    return {
        "setting": name,
        "reference_ecg_per_s": round(statistics.median(references), 1),
        "ecg_per_s": round(statistics.median(variants), 1),
        "ratio": round(statistics.median(ratios), 3),
        "ratio_range": [round(min(ratios), 3), round(max(ratios), 3)],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=256, help="ECGs per setting")
    parser.add_argument(
        "--rates", type=int, nargs="+", default=[500], help="device sampling rates (Hz)"
    )
    parser.add_argument("--chunk-size", type=int, default=64, help="ECGs per vectorised batch")
    parser.add_argument("--repeats", type=int, default=3, help="timed pairs per setting")
    parser.add_argument("--quick", action="store_true", help="8 ECGs, 1 repeat (smoke test)")
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.chunk_size, args.repeats = 8, 4, 1
    load = os.getloadavg()
    print(
        f"{args.n} ECGs per setting, chunk {args.chunk_size}, {args.repeats} repeats, one thread; "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    results = []
    for rate in args.rates:
        _synthesis_rate(_spec(rate, "wfdb", args.chunk_size, args.chunk_size))  # warm-up
        rows = [
            _summary(
                f"{rate} Hz synthesis, chunk {args.chunk_size} vs chunk 1",
                *_paired(
                    lambda rate=rate: _synthesis_rate(_spec(rate, "wfdb", args.n, 1)),
                    lambda rate=rate: _synthesis_rate(_spec(rate, "wfdb", args.n, args.chunk_size)),
                    args.repeats,
                ),
            )
        ]
        for output_format in ("wfdb", "ptbxl", "code15"):
            spec = _spec(rate, output_format, args.n, args.chunk_size)
            rows.append(
                _summary(
                    f"{rate} Hz synthesis + {output_format} writer vs + raw tofile",
                    *_paired(
                        lambda spec=spec: _raw_write_rate(spec),
                        lambda spec=spec: _write_rate(spec),
                        args.repeats,
                    ),
                )
            )
        for row in rows:
            low, high = row["ratio_range"]
            print(
                f"  {row['setting']:<52} reference {row['reference_ecg_per_s']:8.1f} ECG/s, "
                f"this {row['ecg_per_s']:8.1f} ECG/s, ratio {row['ratio']:.2f} "
                f"(range {low:.2f}-{high:.2f})"
            )
        results.extend(rows)
    print(json.dumps({"n_ecgs": args.n, "chunk_size": args.chunk_size, "results": results}))


if __name__ == "__main__":
    main()
