"""Preprocessing: what each of CAPE's choices buys, each against an equal chain.

CAPE's chain (:func:`cape.preprocessing.preprocess`) differs from the textbook
one in four independent ways. Each line of the output changes exactly one of
them and keeps everything else equal (same filters, same order, same dtype,
same number of passes, same batching), so its ratio is the gain of that one
choice, and the output difference beside it is what the choice costs:

* ``float32``: the same resample-first, one-SOS-pass chain in float64 vs
  float32 (CAPE). Error = float32 - float64, a pure rounding error.
* ``resample first``: filter at the source rate then resample (filters
  designed at 500 Hz) vs resample to 400 Hz then filter (CAPE), both float32,
  one pass. The difference is *not* rounding: the two orders are different
  (equally valid) filters; it is printed so the change is visible.
* ``one SOS pass``: band-pass ``sosfiltfilt`` then a separate notch
  ``sosfiltfilt`` vs one cascade (CAPE), both resample-first, float32. Same
  filter in the interior; near the ends the two differ because each pass
  pads (odd extension) and starts its own steady state.
* ``batched``: one record per SciPy call vs ``--batch`` records per call
  (CAPE), same chain. Should be bit-identical.

Before timing, the benchmark checks that its float32 resample-first chain
returns exactly what ``preprocess`` returns, so it measures CAPE's code path.
Input: synthetic 12-lead, 10 s, 500 Hz ECGs (float64 mV, as a reader hands
them over), eight store leads. One process, one BLAS thread; each ratio is
CPU seconds (the load of other users mostly factored out), reference order
alternated every repeat, median and range over ``--repeats``.

    python benchmarks/bench_preprocessing.py --n 256 --repeats 5
"""

from __future__ import annotations

import os

# One thread per process: set before NumPy/SciPy load their BLAS/OpenMP runtimes.
for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_name] = "1"

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import numpy as np  # noqa: E402
from scipy import signal as sps  # noqa: E402

from cape.leads import STANDARD_12, STORE_LEADS  # noqa: E402
from cape.preprocessing import (  # noqa: E402
    PreprocessingConfig,
    design_filter,
    design_resampler,
    plan_filters,
    preprocess,
)

SOURCE_HZ = 500.0
MAINS_HZ = 50.0
STORE_ROWS = np.array([STANDARD_12.index(lead) for lead in STORE_LEADS])
CONFIG = PreprocessingConfig()
PLAN = plan_filters(SOURCE_HZ, MAINS_HZ, CONFIG)
SOS_400 = design_filter(PLAN, CONFIG)  # band-pass + notch at 400 Hz (CAPE)
FIR = design_resampler(PLAN)
N_BAND_SECTIONS = CONFIG.filter_order  # butter(order, band) gives `order` sections
# The same filters designed at the source rate, for the filter-first order.
_PLAN_500 = plan_filters(SOURCE_HZ, MAINS_HZ, PreprocessingConfig(target_rate_hz=SOURCE_HZ))
SOS_500 = design_filter(_PLAN_500, PreprocessingConfig(target_rate_hz=SOURCE_HZ))


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


def chain(
    block: np.ndarray, *, dtype: type, resample_first: bool = True, one_pass: bool = True
) -> np.ndarray:
    """CAPE's ``_process_block`` with the dtype, the order and the passes as switches.

    ``(k, leads, 5000)`` float64 mV -> ``(k, leads, 4000)`` in ``dtype``.
    """
    x = np.subtract(block, block.mean(axis=-1, keepdims=True), dtype=dtype)

    def resample(y: np.ndarray) -> np.ndarray:
        window = FIR.astype(dtype)
        return sps.resample_poly(y, PLAN.up, PLAN.down, axis=-1, window=window, padtype="line")

    def filtfilt(y: np.ndarray, sos: np.ndarray, pad: int) -> np.ndarray:
        sos = sos.astype(dtype)
        if one_pass:
            return sps.sosfiltfilt(sos, y, axis=-1, padlen=pad)
        y = sps.sosfiltfilt(sos[:N_BAND_SECTIONS], y, axis=-1, padlen=pad)
        return sps.sosfiltfilt(sos[N_BAND_SECTIONS:], y, axis=-1, padlen=pad)

    if resample_first:
        x = filtfilt(resample(x), SOS_400, CONFIG.pad_samples)
    else:
        x = resample(filtfilt(x, SOS_500, round(CONFIG.filter_pad_seconds * SOURCE_HZ)))
    return np.asarray(x, dtype=dtype)


def per_record(function: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    """The same chain called on one record at a time."""

    def run(block: np.ndarray) -> np.ndarray:
        return np.stack([function(block[k : k + 1])[0] for k in range(len(block))])

    return run


def cape_chain(block: np.ndarray) -> np.ndarray:
    return chain(block, dtype=np.float32)


@dataclass(frozen=True)
class Comparison:
    """One choice: ``reference`` and ``variant`` differ in it only (``variant`` is CAPE's)."""

    name: str
    reference_name: str
    reference: Callable[[np.ndarray], np.ndarray]
    variant: Callable[[np.ndarray], np.ndarray]


COMPARISONS = (
    Comparison(
        "float32",
        "float64, resample first, one pass",
        lambda b: chain(b, dtype=np.float64),
        cape_chain,
    ),
    Comparison(
        "resample first",
        "filter at 500 Hz then resample, float32, one pass",
        lambda b: chain(b, dtype=np.float32, resample_first=False),
        cape_chain,
    ),
    Comparison(
        "one SOS pass",
        "band-pass pass + notch pass, float32, resample first",
        lambda b: chain(b, dtype=np.float32, one_pass=False),
        cape_chain,
    ),
    Comparison("batched", "1 record per call, same chain", per_record(cape_chain), cape_chain),
)


def cpu_seconds(
    function: Callable[[np.ndarray], np.ndarray], ecgs: np.ndarray, batch: int
) -> float:
    begin = time.process_time()
    for start in range(0, len(ecgs), batch):
        function(ecgs[start : start + batch])
    return time.process_time() - begin


def output_error(comparison: Comparison, ecgs: np.ndarray) -> tuple[float, float, float]:
    """Max |variant - reference| in µV over all samples and over the interior (the
    first and last second left out, where padding differs), and the first over the
    reference's max |value|."""
    reference = comparison.reference(ecgs).astype(np.float64)
    variant = comparison.variant(ecgs).astype(np.float64)
    difference = np.abs(variant - reference)
    edge = round(PLAN.output_rate_hz)
    max_abs = float(difference.max())
    interior = float(difference[..., edge:-edge].max())
    return 1000 * max_abs, 1000 * interior, max_abs / float(np.abs(reference).max())


def check_matches_preprocess(ecgs: np.ndarray) -> None:
    """The benchmark's CAPE chain must be ``preprocess`` itself, bit for bit."""
    expected = preprocess(ecgs, SOURCE_HZ, MAINS_HZ).signals
    got = cape_chain(ecgs)
    if not np.array_equal(expected, got):
        difference = float(np.abs(expected - got).max())
        raise SystemExit(f"benchmark chain differs from cape.preprocess by {difference} mV")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=256, help="ECGs per timed pass")
    parser.add_argument("--batch", type=int, default=64, help="ECGs per preprocess() call")
    parser.add_argument("--repeats", type=int, default=5, help="timed pairs per comparison")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic ECGs")
    parser.add_argument("--quick", action="store_true", help="8 ECGs, 1 repeat (smoke test)")
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.batch, args.repeats = 8, 4, 1
    ecgs = make_ecgs(args.n, args.seed)[:, STORE_ROWS]
    check_matches_preprocess(ecgs[: min(args.n, 16)])
    sample = ecgs[: min(args.n, 32)]
    load = os.getloadavg()
    print(
        f"{args.n} ECGs (8 leads, 10 s, 500 Hz -> 400 Hz), batch {args.batch}, one thread; "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs"
    )
    print("benchmark's float32 resample-first chain == cape.preprocess: bit-identical")
    print(
        f"  {'choice (CAPE = variant)':<16} {'reference':<52} {'ECG/CPU-s ref':>13} "
        f"{'CAPE':>7} {'gain':>5} {'range':>11} {'max|diff| µV':>12} {'interior':>8} {'rel.':>8}"
    )
    for comparison in COMPARISONS:
        cpu_seconds(comparison.reference, ecgs[: args.batch], args.batch)  # warm-up
        cpu_seconds(comparison.variant, ecgs[: args.batch], args.batch)
        reference_s, variant_s = [], []
        for repeat in range(args.repeats):
            # Alternate which runs first, so a load change or cache state favours neither.
            order = (0, 1) if repeat % 2 == 0 else (1, 0)
            for which in order:
                function = comparison.reference if which == 0 else comparison.variant
                (reference_s if which == 0 else variant_s).append(
                    cpu_seconds(function, ecgs, args.batch)
                )
        gains = [r / v for r, v in zip(reference_s, variant_s, strict=True)]
        error_uv, interior_uv, relative = output_error(comparison, sample)
        print(
            f"  {comparison.name:<16} {comparison.reference_name:<52} "
            f"{args.n / statistics.median(reference_s):13.0f} "
            f"{args.n / statistics.median(variant_s):7.0f} {statistics.median(gains):5.2f} "
            f"{min(gains):5.2f}-{max(gains):<5.2f} {error_uv:12.3g} {interior_uv:8.3g} {relative:8.1e}"
        )
    print(
        "gain = reference CPU time / CAPE CPU time (median of per-repeat ratios; range = min-max);"
        "\nmax|diff| over the first 32 ECGs (interior: first and last 1 s left out);"
        "\nrel. = max|diff| / max|reference output|"
    )


if __name__ == "__main__":
    main()
