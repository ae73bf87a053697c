"""Cost of the beat measurements behind QC's plausibility rules, with and without the QT.

:func:`cape.plausibility.measure_beats` runs on every ECG that ingest stores
(heart rate, QRS width and amplitude, QT). This times it per ECG on simulated
ECGs (the simulator's ``harbor`` cohort recorded at 500 Hz, preprocessed to
the store's 400 Hz, 8 leads, 10 s), against the same call with the QT
measurement (``_median_qt``) replaced by a stub, measured in the same run in
alternating order. It first checks that the stub changes nothing but the QT
(heart rate, QRS and amplitudes identical), so the difference is the QT's
cost. CPU seconds, one thread; median and range over ``--repeats``.

    python benchmarks/bench_qc.py --n 256 --repeats 5
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_name] = "1"

import argparse  # noqa: E402
import math  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from contextlib import contextmanager  # noqa: E402

import numpy as np  # noqa: E402

from cape import plausibility  # noqa: E402
from cape.leads import STANDARD_12, STORE_LEADS  # noqa: E402
from cape.preprocessing import preprocess  # noqa: E402
from cape.simulator import DeviceSpec, SimulationSpec, VisitsSpec  # noqa: E402
from cape.simulator.generate import iter_cohort_chunks  # noqa: E402
from cape.simulator.presets import demo  # noqa: E402

STORE_ROWS = [STANDARD_12.index(lead) for lead in STORE_LEADS]


def simulated_ecgs(n_ecgs: int) -> np.ndarray:
    """``(n, 8, 4000)`` float32 mV at 400 Hz: simulated, then preprocessed as ingest does."""
    base = demo().cohort("harbor")
    device = DeviceSpec(name="bench", sampling_rate_hz=500, lowpass_hz=150.0, hum_uv=5)
    cohort = base.model_copy(
        update={
            "n_patients": n_ecgs,
            "visits": VisitsSpec(min_ecgs=1, mean_ecgs=1, max_ecgs=1),
            "devices": [device],
        }
    )
    spec = SimulationSpec(cohorts=[cohort], seed=0, chunk_size=64)
    chunks = list(iter_cohort_chunks(spec, "harbor"))
    signals = np.concatenate([chunk.signals for chunk in chunks])[:, STORE_ROWS]
    return preprocess(signals, 500.0, base.mains_hz).signals


@contextmanager
def qt_stubbed() -> Iterator[None]:
    """``measure_beats`` without the QT: ``_median_qt`` returns NaN at once."""
    original = plausibility._median_qt
    plausibility._median_qt = lambda *args: math.nan  # type: ignore[assignment]
    try:
        yield
    finally:
        plausibility._median_qt = original


def cpu_seconds(ecgs: np.ndarray, batch: int) -> float:
    lengths = np.full(batch, ecgs.shape[-1])
    begin = time.process_time()
    for start in range(0, len(ecgs), batch):
        block = ecgs[start : start + batch]
        plausibility.measure_beats(block, lengths[: len(block)], 400.0)
    return time.process_time() - begin


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=256, help="ECGs per timed pass")
    parser.add_argument("--batch", type=int, default=64, help="ECGs per measure_beats call")
    parser.add_argument("--repeats", type=int, default=5, help="timed pairs")
    parser.add_argument("--quick", action="store_true", help="8 ECGs, 1 repeat (smoke test)")
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.batch, args.repeats = 8, 4, 1
    ecgs = simulated_ecgs(args.n)
    lengths = np.full(len(ecgs), ecgs.shape[-1])
    full = plausibility.measure_beats(ecgs, lengths, 400.0)
    with qt_stubbed():
        without = plausibility.measure_beats(ecgs, lengths, 400.0)
    for name in ("heart_rate_bpm", "qrs_ms", "qrs_amplitude_mv", "n_beats"):
        if not np.array_equal(getattr(full, name), getattr(without, name), equal_nan=True):
            raise SystemExit(f"the QT stub changed {name}: the comparison would not be fair")
    measured = int(np.isfinite(full.qt_ms).sum())
    seconds: dict[str, list[float]] = {"without QT (stub)": [], "measure_beats": []}
    for repeat in range(args.repeats):
        order = list(seconds) if repeat % 2 == 0 else list(seconds)[::-1]
        for name in order:
            if name == "measure_beats":
                seconds[name].append(cpu_seconds(ecgs, args.batch))
            else:
                with qt_stubbed():
                    seconds[name].append(cpu_seconds(ecgs, args.batch))
    load = os.getloadavg()
    print(
        f"{len(ecgs)} simulated ECGs (8 x 4000 at 400 Hz), batch {args.batch}, one thread, "
        f"{args.repeats} repeats; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    print(f"  QT measured on {measured} of {len(ecgs)}; other features identical without it")
    for name, values in seconds.items():
        per_ecg = [1000 * v / len(ecgs) for v in values]
        print(
            f"  {name:<18} {statistics.median(per_ecg):6.2f} ms per ECG (CPU; range "
            f"{min(per_ecg):.2f}-{max(per_ecg):.2f})"
        )
    ratios = [
        f / s for f, s in zip(seconds["measure_beats"], seconds["without QT (stub)"], strict=True)
    ]
    print(
        f"  with / without QT: {statistics.median(ratios):.2f}x "
        f"(range {min(ratios):.2f}-{max(ratios):.2f})"
    )


if __name__ == "__main__":
    main()
