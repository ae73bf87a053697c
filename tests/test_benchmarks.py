"""Every CPU benchmark runs end to end in its ``--quick`` form, so none can rot.

Each test loads the script from ``benchmarks/`` (they are scripts, not a
package), runs ``main(["--quick"])`` in-process and checks the parts of the
output that carry a correctness check of the benchmark itself: the reference
and CAPE's path compute the same thing, the cold cache is verified cold, the
ingested ECGs were stored. Timings are not checked (a loaded machine). The
GPU benchmark has its own test (``test_bench_gpu.py``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCHMARKS / f"bench_{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def keep_torch_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def run_quick(name: str, capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    load(name).main(["--quick", *extra])
    return capsys.readouterr().out


def test_preprocessing_chains_are_equal_but_for_one_choice(capsys):
    """Bug caught: the benchmark's chain drifting from ``cape.preprocess`` (it would
    then time something else), or a comparison whose outputs are not the same ECGs
    (the float32 error would not be within 1 µV, batching not bit-identical)."""
    out = run_quick("preprocessing", capsys)
    assert "== cape.preprocess: bit-identical" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.startswith("  ")}
    rows.pop("choice")  # the header
    assert set(rows) == {"float32", "resample", "one", "batched"}
    # Columns from the end: ..., gain, range, max|diff| µV, interior, rel.
    assert float(rows["float32"][-3]) < 1.0  # rounding only, store resolution is 1 µV
    assert float(rows["batched"][-3]) == 0.0
    assert all(float(row[-5]) > 0 for row in rows.values())


def _page_cache_droppable(folder: Path) -> bool:
    """Whether ``posix_fadvise(DONTNEED)`` evicts a file here (not on tmpfs)."""
    bench = load("store")
    path = folder / "probe.bin"
    path.write_bytes(b"\x01" * (16 * bench.PAGE))
    path.read_bytes()
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    return bench.resident_pages(path)[0] == 0


def test_store_cold_reads_are_verified_cold(capsys, tmp_path):
    """Bug caught: a cold measurement that does not evict (the old benchmark never
    checked; a map held open keeps its pages). Where the file system cannot drop
    pages (tmpfs), the benchmark must say so instead."""
    import tempfile

    droppable = _page_cache_droppable(Path(tempfile.gettempdir()))
    out = run_quick("store", capsys)
    if droppable:
        assert re.search(r"cold-cache check .* -> verified", out), out
    else:
        assert "NOT VERIFIED" in out and "cache NOT verified cold" in out
    assert "pread / memmap" in out


def test_store_residency_check_can_see_resident_pages(tmp_path):
    """The mincore check is not vacuous: a file just read is resident (all 16 pages),
    and none is after eviction where the file system allows it."""
    bench = load("store")
    path = tmp_path / "file.bin"
    path.write_bytes(b"\x01" * (16 * bench.PAGE))
    path.read_bytes()
    assert bench.resident_pages(path) == (16, 16)
    if not _page_cache_droppable(tmp_path):
        pytest.skip("this file system keeps the pages (tmpfs?): eviction cannot be shown here")
    assert bench.resident_pages(tmp_path / "probe.bin") == (0, 16)


@pytest.mark.slow
def test_ingest_fits_a_slope_over_stored_ecgs(capsys):
    """Bug caught: synthetic ECGs that QC quarantines (the old generator's were all
    rejected, so the benchmark measured an ingest that stored nothing)."""
    out = run_quick("ingest", capsys)
    assert len(re.findall(r"N=\s*\d+: .* ECG/s", out)) == 3
    assert "B/ECG" in out and "at 5,000,000" in out


def test_ingest_slope_and_interval():
    bench = load("ingest")
    slope, low, high = bench.fit_slope([1000, 2000, 4000], [100.0, 300.0, 700.0])
    assert slope == pytest.approx(0.2)
    assert low == pytest.approx(0.2) and high == pytest.approx(0.2)  # exact line: no spread
    slope, low, high = bench.fit_slope([1, 2, 3, 4], [0.0, 1.0, 1.0, 3.0])
    assert low < slope < high


@pytest.mark.slow
def test_pretrain_blocks_run_in_both_orders(capsys):
    out = run_quick("pretrain", capsys)
    row = next(line for line in out.splitlines() if line.startswith("small"))
    assert float(row.split()[3]) > 0  # pipeline ECG/s


@pytest.mark.slow
def test_embed_reports_median_spread_and_startup(capsys):
    out = run_quick("embed", capsys)
    assert "embed start-up" in out and "ratio embed / model" in out


@pytest.mark.slow
def test_simulator_has_a_reference_for_every_stage(capsys):
    out = run_quick("simulator", capsys)
    summary = json.loads(out.strip().splitlines()[-1])
    assert len(summary["results"]) == 4
    assert all(r["reference_ecg_per_s"] > 0 and r["ecg_per_s"] > 0 for r in summary["results"])


def test_model_twin_is_checked_before_timing(capsys):
    """Bug caught: timing a Conv1d network that computes something else."""
    out = run_quick("model", capsys, "--compare", "conv")
    difference = float(re.search(r"max \|difference\| (\S+)", out).group(1))
    assert difference <= 1e-9
    assert "conv2d 1xk (CAPE)" in out


def test_wfdb_fast_paths_agree_with_wfdb(capsys):
    """Bug caught: timing a reader or writer that does not produce what ``wfdb`` does."""
    out = run_quick("wfdb", capsys)
    assert "outputs agree: max |cape - wfdb| = 0 mV" in out
    assert "writing; files byte-identical" in out
    assert "cape read_wfdb / wfdb.rdrecord:" in out and "cape _write_wfdb / wfdb.wrsamp:" in out


def test_qc_cost_compares_equal_features(capsys):
    """Bug caught: a 'without QT' reference that also skips other measurements (the
    cost attributed to the QT would then include them)."""
    out = run_quick("qc", capsys)
    assert "other features identical without it" in out
    assert "with / without QT:" in out
