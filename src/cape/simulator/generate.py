"""Orchestration: from a spec to cohorts on disk, streamed in blocks, seeded.

A cohort is cut into blocks of patients. Each block is self-contained: its
random streams come from ``SeedSequence(seed, spawn_key=(cohort, block,
stream))``, so the output does not depend on how many workers run or in
which order blocks finish, and memory never holds more than one chunk of
signals per worker. A planning pass draws only the ECG counts per patient
(a stream of their own) to give every block its record-id offset up front.
"""

from __future__ import annotations

import logging
import os
import shutil
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import yaml
from tqdm import tqdm

from cape.errors import CapeError
from cape.simulator.cohorts import CohortSpec, SimulationSpec, dump_spec
from cape.simulator.conditions import CONDITION_CODES
from cape.simulator.devices import PAD_SECONDS, apply_device, effective_device
from cape.simulator.dipole import lead_matrices, project, render_dipole, twelve_leads
from cape.simulator.morphology import beat_model
from cape.simulator.physiology import (
    EffectScales,
    sample_ecgs,
    sample_patients,
    sample_visit_counts,
)
from cape.simulator.writers import WRITERS, SignalChunk

log = logging.getLogger(__name__)


def _one_thread() -> AbstractContextManager[object]:
    """Limit BLAS to one thread: generation is vectorised per core, and several
    worker processes each running a BLAS thread pool oversubscribe the CPUs."""
    try:
        from threadpoolctl import threadpool_limits  # installed with scikit-learn
    except ImportError:  # pragma: no cover - optional
        return nullcontext()
    return threadpool_limits(limits=1)


TRUTH_DIR = "_truth"
BLOCK_PATIENTS = 256  # patients per block for the file-per-record layouts
_STREAM_COUNTS, _STREAM_PATIENTS, _STREAM_ECGS, _STREAM_SIGNALS, _STREAM_TABLES = range(5)


@dataclass(frozen=True)
class Block:
    """A unit of generation work: consecutive patients of one cohort."""

    cohort: str
    index: int
    first_patient: int
    n_patients: int
    first_record: int
    n_ecgs: int


def _rng(seed: int, cohort: str, *keys: int) -> np.random.Generator:
    # crc32 of the name, not the cohort's position, so adding a cohort leaves the others unchanged.
    return np.random.default_rng(
        np.random.SeedSequence(seed, spawn_key=(zlib.crc32(cohort.encode()), *keys))
    )


def _block_patients(cohort: CohortSpec) -> int:
    if cohort.output_format == "code15":  # one block = one exams_partK.hdf5
        return max(1, round(cohort.exams_per_part / cohort.visits.mean_ecgs))
    return BLOCK_PATIENTS


def plan_blocks(spec: SimulationSpec, cohort: CohortSpec) -> list[Block]:
    """The blocks of a cohort with their patient and record offsets."""
    total = spec.n_patients(cohort)
    size = _block_patients(cohort)
    blocks, record = [], 0
    for index, first in enumerate(range(0, total, size)):
        n = min(size, total - first)
        counts = sample_visit_counts(cohort, n, _rng(spec.seed, cohort.name, index, _STREAM_COUNTS))
        blocks.append(Block(cohort.name, index, first, n, record, int(counts.sum())))
        record += int(counts.sum())
    return blocks


def block_ecgs(spec: SimulationSpec, cohort: CohortSpec, block: Block) -> pd.DataFrame:
    """Patients and ECG parameters of a block, one row per ECG, with ids and device names."""
    scales = EffectScales(
        age=spec.age_effect_scale, sex=spec.sex_effect_scale, visit=spec.visit_variability
    )
    counts = sample_visit_counts(
        cohort, block.n_patients, _rng(spec.seed, cohort.name, block.index, _STREAM_COUNTS)
    )
    patients = sample_patients(
        cohort, counts, _rng(spec.seed, cohort.name, block.index, _STREAM_PATIENTS), scales
    )
    ecgs = sample_ecgs(
        patients, cohort, _rng(spec.seed, cohort.name, block.index, _STREAM_ECGS), scales
    )
    ecgs.insert(0, "cohort", cohort.name)
    ecgs.insert(1, "record_id", block.first_record + np.arange(len(ecgs), dtype=np.int64) + 1)
    ecgs.insert(
        2, "patient_id", block.first_patient + ecgs.pop("patient_row").to_numpy(dtype=np.int64) + 1
    )
    ecgs["device"] = np.asarray([d.name for d in cohort.devices], dtype=object)[
        ecgs["device_index"].to_numpy()
    ]
    ecgs["site"] = cohort.site
    writer = WRITERS[cohort.output_format](Path("."), cohort)
    ecgs["source_file"] = writer.source_files(ecgs, block.index)
    return ecgs


def synthesise(
    ecgs: pd.DataFrame,
    device_index: int,
    cohort: CohortSpec,
    strength: float,
    rng: np.random.Generator,
) -> SignalChunk:
    """Record a batch of ECGs (rows of :func:`block_ecgs`) on one device of the cohort.

    Returns:
        The chunk; its ``ecgs`` gain the measured ``qrs_axis_deg``, the
        recording ``gain`` and the effective device settings.
    """
    device = effective_device(cohort.devices[device_index], strength)
    fs = device.sampling_rate_hz
    pad = round(PAD_SECONDS * fs)
    model = beat_model(ecgs)
    dipole, axis = render_dipole(model, fs, device.record_seconds * fs + 2 * pad, rng)
    leads = project(dipole, lead_matrices(len(ecgs), rng, ecgs["electrode_sd"].to_numpy()))
    recorded, gain = apply_device(
        leads, device, cohort.mains_hz, ecgs["noise_factor"].to_numpy(), rng
    )
    extra = pd.DataFrame(
        {
            "qrs_axis_deg": axis,
            "gain": gain,
            "sampling_rate_hz": fs,
            "record_seconds": device.record_seconds,
            "device_highpass_hz": device.highpass_hz,
            "device_lowpass_hz": device.lowpass_hz,
            "device_filter_phase": device.filter_phase,
            "device_noise_uv": device.noise_uv,
            "device_hum_uv": device.hum_uv,
            "device_adc_lsb_uv": device.adc_lsb_uv,
        },
        index=ecgs.index,
    )
    rows = pd.concat([ecgs, extra], axis=1)
    return SignalChunk(twelve_leads(recorded), fs, device, rows)


def iter_block_chunks(
    spec: SimulationSpec, cohort: CohortSpec, block: Block
) -> Iterator[SignalChunk]:
    """The recorded chunks of a block, device by device, ``spec.chunk_size`` ECGs each."""
    ecgs = block_ecgs(spec, cohort, block)
    strength = spec.artefact_strength * cohort.artefact_strength
    for device_index in range(len(cohort.devices)):
        rows = ecgs[ecgs["device_index"].to_numpy() == device_index]
        for k, start in enumerate(range(0, len(rows), spec.chunk_size)):
            rng = _rng(spec.seed, cohort.name, block.index, _STREAM_SIGNALS, device_index, k)
            yield synthesise(
                rows.iloc[start : start + spec.chunk_size], device_index, cohort, strength, rng
            )


def iter_cohort_chunks(spec: SimulationSpec, cohort_name: str) -> Iterator[SignalChunk]:
    """Every chunk of one cohort, in memory (for tests, benchmarks and notebooks)."""
    cohort = spec.cohort(cohort_name)
    for block in plan_blocks(spec, cohort):
        yield from iter_block_chunks(spec, cohort, block)


# Columns the metadata writers need; everything else goes only to the truth.
_TABLE_COLUMNS = [
    "record_id",
    "patient_id",
    "age",
    "female",
    "ethnicity",
    "device",
    "recording_date",
    "heart_rate_bpm",
    "qrs_axis_deg",
    "source_file",
    *CONDITION_CODES,
]


def _run_block(
    spec: SimulationSpec,
    cohort_name: str,
    block: Block,
    out_dir: Path,
    on_chunk: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """Write a block's signals and its truth part; return its rows for the tables."""
    with _one_thread():
        return _write_block(spec, cohort_name, block, out_dir, on_chunk)


def _write_block(
    spec: SimulationSpec,
    cohort_name: str,
    block: Block,
    out_dir: Path,
    on_chunk: Callable[[int], None] | None,
) -> pd.DataFrame:
    cohort = spec.cohort(cohort_name)
    writer = WRITERS[cohort.output_format](out_dir / cohort.name, cohort)
    writer.begin_block(block.index, block.n_ecgs)
    parts = []
    for chunk in iter_block_chunks(spec, cohort, block):
        writer.write(chunk)
        parts.append(chunk.ecgs)
        if on_chunk is not None:
            on_chunk(len(chunk.ecgs))
    writer.end_block()
    rows = pd.concat(parts).sort_values("record_id", kind="stable").reset_index(drop=True)
    part_dir = out_dir / TRUTH_DIR / f".{cohort.name}-parts"
    part_dir.mkdir(parents=True, exist_ok=True)
    rows.to_parquet(part_dir / f"part-{block.index:06d}.parquet", index=False)
    return rows[_TABLE_COLUMNS]


def _merge_truth(out_dir: Path, cohort: str) -> None:
    """Stream the per-block truth parts into one Parquet file, then remove them."""
    part_dir = out_dir / TRUTH_DIR / f".{cohort}-parts"
    parts = sorted(part_dir.glob("part-*.parquet"))
    writer = None
    for part in parts:
        table = pq.read_table(part)
        if writer is None:
            writer = pq.ParquetWriter(out_dir / TRUTH_DIR / f"{cohort}.parquet", table.schema)
        writer.write_table(table.cast(writer.schema) if table.schema != writer.schema else table)
    if writer is not None:
        writer.close()
    shutil.rmtree(part_dir)


def _executor(workers: int) -> ProcessPoolExecutor:
    method = "fork" if "fork" in get_all_start_methods() else "spawn"
    return ProcessPoolExecutor(max_workers=workers, mp_context=get_context(method))


def simulate(
    spec: SimulationSpec,
    out_dir: str | Path,
    workers: int = 1,
    progress: bool = True,
    overwrite: bool = False,
) -> dict[str, dict[str, object]]:
    """Generate every cohort of ``spec`` under ``out_dir``.

    Writes ``out_dir/<cohort>/`` in the cohort's format, ``out_dir/cohorts.yaml``
    (name, format, path, mains_hz, counts for each cohort) and, apart from
    what readers see, ``out_dir/_truth/<cohort>.parquet`` (one row per ECG:
    true age, sex, conditions, device settings, traits and patient latents)
    plus ``out_dir/_truth/simulation.yaml`` (the resolved spec).

    Args:
        spec: the simulation.
        out_dir: output folder (created).
        workers: processes generating blocks in parallel (1 = in this process).
        progress: show a progress bar.
        overwrite: replace existing cohort folders instead of failing.

    Returns:
        Per cohort: format, path, mains_hz, n_patients, n_ecgs.

    Raises:
        CapeError: a cohort folder exists (without ``overwrite``) or workers < 1.
    """
    if workers < 1:
        raise CapeError(f"--workers must be >= 1, got {workers}")
    out_dir = Path(out_dir)
    for cohort in spec.cohorts:
        target = out_dir / cohort.name
        if target.exists() and any(target.iterdir()):
            if not overwrite:
                raise CapeError(
                    f"{target} exists and is not empty; choose another --out or pass --overwrite"
                )
            shutil.rmtree(target)
        target.mkdir(parents=True, exist_ok=True)
    (out_dir / TRUTH_DIR).mkdir(parents=True, exist_ok=True)
    for cohort in spec.cohorts:  # truth parts left by a killed run must not be merged
        shutil.rmtree(out_dir / TRUTH_DIR / f".{cohort.name}-parts", ignore_errors=True)
    dump_spec(spec, out_dir / TRUTH_DIR / "simulation.yaml")

    plans = {c.name: plan_blocks(spec, c) for c in spec.cohorts}
    total = sum(b.n_ecgs for blocks in plans.values() for b in blocks)
    log.info("simulating %d cohorts, %d ECGs, into %s", len(spec.cohorts), total, out_dir)
    jobs = [(c.name, b) for c in spec.cohorts for b in plans[c.name]]
    bar = tqdm(total=total, unit="ECG", desc="simulate", disable=not progress)
    results: list[pd.DataFrame] = []
    if workers == 1:
        for name, block in jobs:
            results.append(_run_block(spec, name, block, out_dir, on_chunk=bar.update))
    else:
        with _executor(workers) as pool:
            futures = [pool.submit(_run_block, spec, name, block, out_dir) for name, block in jobs]
            for future, (_, block) in zip(futures, jobs, strict=True):
                results.append(future.result())
                bar.update(block.n_ecgs)
    bar.close()

    summary: dict[str, dict[str, object]] = {}
    for cohort in spec.cohorts:
        rows = pd.concat(
            [r for r, (name, _) in zip(results, jobs, strict=True) if name == cohort.name],
            ignore_index=True,
        )
        writer = WRITERS[cohort.output_format](out_dir / cohort.name, cohort)
        writer.finish(rows, _rng(spec.seed, cohort.name, _STREAM_TABLES))
        _merge_truth(out_dir, cohort.name)
        summary[cohort.name] = {
            "format": cohort.output_format,
            "path": cohort.name,
            "mains_hz": cohort.mains_hz,
            "role": cohort.role,
            "n_patients": int(rows["patient_id"].nunique()),
            "n_ecgs": len(rows),
        }
    listing = {
        "seed": spec.seed,
        "scale": spec.scale,
        "cohorts": [{"name": name, **info} for name, info in summary.items()],
    }
    (out_dir / "cohorts.yaml").write_text(yaml.safe_dump(listing, sort_keys=False))
    return summary


def default_workers() -> int:
    """Worker processes to use when the user does not say: one per available core, at most 4."""
    try:
        return max(1, min(4, len(os.sched_getaffinity(0))))
    except AttributeError:  # not on Linux
        return max(1, min(4, os.cpu_count() or 1))
