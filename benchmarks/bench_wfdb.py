"""WFDB records: CAPE's format-16 reader and writer against the ``wfdb`` package.

Writes N PTB-XL-like records with ``wfdb.wrsamp`` (12 leads, 500 Hz, 10 s,
format 16, mV, one ``.dat`` per record) into a temporary folder, then times,
in the same run and in alternating order:

* ``cape``: :func:`cape.readers.wfdb_io.read_wfdb` (header checks, size caps,
  the numpy format-16 reader) -- what every WFDB-based reader calls;
* ``wfdb``: ``wfdb.rdrecord(path)`` and its ``p_signal``, the fallback.

Before timing it checks that both return the same physical values (max
absolute difference printed; both apply the same gain and baseline to the
same int16 samples, so it should be 0 or one rounding step). Files are read
warm (each pass reads every record; the first pass is untimed). Prints
records/s, their ratio per repeat (median and range) and what each read costs.

Writing (the simulator's output): ``cape.simulator.writers._write_wfdb``
against ``wfdb.wrsamp(d_signal=...)`` with the same codes, gain and lead
names; the files are checked byte-identical first (as
``tests/simulator/test_writers.py`` does), then timed the same way.

    python benchmarks/bench_wfdb.py --n 200 --repeats 5
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import wfdb

from cape.readers.wfdb_io import read_wfdb
from cape.simulator.writers import _write_wfdb

LEADS = ["I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6"]
RATE_HZ = 500


def write_records(folder: Path, n: int, seed: int = 0) -> list[Path]:
    """``n`` format-16 records of 12 x 5000 samples, as PTB-XL's ``records500``."""
    rng = np.random.default_rng(seed)
    t = np.arange(10 * RATE_HZ) / RATE_HZ
    paths = []
    for k in range(n):
        signal = 0.8 * np.sin(2 * np.pi * 1.2 * t[:, None] + rng.uniform(0, 6, size=12))
        signal += rng.normal(scale=0.05, size=signal.shape)
        name = f"{k:05d}_hr"
        wfdb.wrsamp(
            name,
            fs=RATE_HZ,
            units=["mV"] * 12,
            sig_name=LEADS,
            p_signal=signal,
            fmt=["16"] * 12,
            adc_gain=[1000.0] * 12,
            baseline=[0] * 12,
            write_dir=str(folder),
        )
        paths.append(folder / name)
    return paths


def read_cape(path: Path) -> np.ndarray:
    return read_wfdb(path)[0]


def read_wfdb_library(path: Path) -> np.ndarray:
    record = wfdb.rdrecord(str(path))
    return np.asarray(record.p_signal, dtype=np.float64).T


def records_per_second(read: Callable[[Path], np.ndarray], paths: list[Path]) -> float:
    start = time.perf_counter()
    for path in paths:
        read(path)
    return len(paths) / (time.perf_counter() - start)


GAIN = 1000.0  # ADC units per mV


def writers(signals: list[np.ndarray], folder: Path) -> dict[str, Callable[[], float]]:
    """Two writers of the same ``(12, T)`` mV records; each returns records/s."""

    def cape() -> float:
        start = time.perf_counter()
        for k, signal in enumerate(signals):
            _write_wfdb(folder / "cape" / f"{k:05d}_hr", signal, RATE_HZ, LEADS, GAIN)
        return len(signals) / (time.perf_counter() - start)

    def library() -> float:
        start = time.perf_counter()
        for k, signal in enumerate(signals):
            codes = np.clip(np.rint(signal * GAIN), -32767, 32767).astype(np.int64)
            wfdb.wrsamp(
                f"{k:05d}_hr",
                fs=RATE_HZ,
                units=["mV"] * 12,
                sig_name=LEADS,
                d_signal=codes.T,
                fmt=["16"] * 12,
                adc_gain=[GAIN] * 12,
                baseline=[0] * 12,
                write_dir=str(folder / "wfdb"),
            )
        return len(signals) / (time.perf_counter() - start)

    (folder / "cape").mkdir()
    (folder / "wfdb").mkdir()
    return {"wfdb.wrsamp": library, "cape _write_wfdb": cape}


def paired(functions: dict[str, Callable[[], float]], repeats: int) -> dict[str, list[float]]:
    """Rates of both functions per repeat, alternating which runs first."""
    rates: dict[str, list[float]] = {name: [] for name in functions}
    for repeat in range(repeats):
        names = list(functions) if repeat % 2 == 0 else list(functions)[::-1]
        for name in names:
            rates[name].append(functions[name]())
    return rates


def report(rates: dict[str, list[float]], unit: str) -> None:
    (reference, reference_rates), (ours, our_rates) = rates.items()
    for name, values in rates.items():
        rate = statistics.median(values)
        print(f"  {name:<18} {rate:8.0f} {unit}/s ({1000 / rate:6.2f} ms per record)")
    ratios = [c / w for c, w in zip(our_rates, reference_rates, strict=True)]
    print(
        f"  {ours} / {reference}: {statistics.median(ratios):.1f}x "
        f"(range {min(ratios):.1f}-{max(ratios):.1f})"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=200, help="records per timed pass")
    parser.add_argument("--repeats", type=int, default=5, help="timed pairs")
    parser.add_argument("--quick", action="store_true", help="5 records, 1 repeat (smoke test)")
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.repeats = 5, 1
    folder = Path(tempfile.mkdtemp(prefix="bench-wfdb-"))
    try:
        paths = write_records(folder, args.n)
        difference = max(
            float(np.abs(read_cape(p) - read_wfdb_library(p)).max()) for p in paths[:20]
        )
        if difference > 1e-9:
            raise SystemExit(f"fast path and wfdb.rdrecord differ by {difference} mV")
        readers = {"wfdb.rdrecord": read_wfdb_library, "cape read_wfdb": read_cape}
        for read in readers.values():  # warm the page cache and the imports
            records_per_second(read, paths)
        read_rates = paired(
            {
                name: (lambda read=read: records_per_second(read, paths))
                for name, read in readers.items()
            },
            args.repeats,
        )
        signals = [read_cape(path) for path in paths]
        out = folder / "written"
        out.mkdir()
        write = writers(signals, out)
        for function in write.values():
            function()
        for k in range(min(len(paths), 5)):
            for suffix in (".dat", ".hea"):
                name = f"{k:05d}_hr{suffix}"
                if (out / "cape" / name).read_bytes() != (out / "wfdb" / name).read_bytes():
                    raise SystemExit(f"_write_wfdb and wfdb.wrsamp wrote different {name}")
        write_rates = paired(write, args.repeats)
        load = os.getloadavg()
        print(
            f"{args.n} format-16 records (12 x 5000, 500 Hz), warm cache, {args.repeats} repeats; "
            f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
        )
        print(f"reading; outputs agree: max |cape - wfdb| = {difference:.3g} mV (first 20 records)")
        report(read_rates, "records")
        print("writing; files byte-identical (first 5 records)")
        report(write_rates, "records")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
