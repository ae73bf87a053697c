"""Tests that kill mutmut's surviving mutants of cape.ingest (docs/testing.md).

Mutant names are mutmut 3.8.1's (``scripts/mutation.sh ingest``); each docstring names the
mutants the test kills and the bug they stand for. Records come from an in-memory reader
(simulated ECGs, no files), and the worker pool is driven through fakes of the executor, so
every test runs in about a second.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import math
import os
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest

import cape.ingest as ingest_module
import cape.ingest.pool as pool_module
from cape.errors import CapeError
from cape.ingest import (
    IngestSummary,
    _flush,
    _metadata_row,
    _prepare,
    _quarantine_killer,
    _reject,
    ingest_reader,
    shard_name,
)
from cape.preprocessing import PreprocessingConfig
from cape.qc import QCConfig
from cape.readers.base import Reader, ReadTask
from cape.record import ECGRecord, Reason, Rejection
from cape.store import CohortStore, ShardWriter, committed_shards, read_header

LEADS12 = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
FS = 500
COHORT = "mem"


@functools.lru_cache(maxsize=1)
def _ecgs() -> np.ndarray:
    """``(n, 12, 5000)`` mV: 10 s simulated ECGs at 500 Hz (plausible, so they are stored)."""
    from cape.simulator.generate import iter_cohort_chunks
    from cape.simulator.presets import tiny

    chunk = next(iter_cohort_chunks(tiny(), "harbor"))
    return np.asarray(chunk.signals, dtype=np.float64)


def _record(record_id: str, k: int, **changes: Any) -> ECGRecord:
    fields: dict[str, Any] = {
        "record_id": record_id,
        "patient_id": f"p{record_id}",
        "cohort": COHORT,
        "signal": _ecgs()[k].copy(),
        "sampling_rate_hz": float(FS),
        "lead_names": list(LEADS12),
        "units": "mV",
        "source_file": f"/data/{record_id}.dat",
    }
    fields.update(changes)
    return ECGRecord(**fields)


class _Fail:
    """A reader item that makes the reader itself raise (a task-wide failure)."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def __repr__(self) -> str:  # stable: the payload's repr names the shard
        return f"_Fail({self.error!r})"


class _ListReader(Reader):
    """Yields the items of its tasks' payloads; a :class:`_Fail` raises mid-task."""

    format_name = "memory"

    def __init__(self, source: Path, tasks: list[ReadTask]) -> None:
        super().__init__(source, COHORT)
        self._tasks = tasks

    def tasks(self) -> list[ReadTask]:
        return self._tasks

    def read(self, task: ReadTask) -> Iterator[ECGRecord | Rejection]:
        for item in task.payload:
            if isinstance(item, _Fail):
                raise item.error
            yield item


def _quarantine(store: Path) -> dict[str, dict[str, Any]]:
    """The store's quarantine rows by record id (missing values as None)."""
    frame = pd.read_parquet(store / "quarantine.parquet")
    rows = frame.astype(object).where(frame.notna(), None).to_dict("records")
    return {str(row["record_id"]): row for row in rows}


# --------------------------------------------------------------------------- summary


def test_summary_as_dict_and_format_are_exact() -> None:
    """as_dict mutants 1-6 (no/None dict, quarantined key renamed or None) and format 7, 9
    (duplicate-signal line dropped, lines joined by "XX\\nXX")."""
    summary = IngestSummary(tasks_total=3, tasks_skipped=1, read=5, stored=2)
    summary.add({"read": 2, "stored": 1, "quarantined": {"too_short": 2}})
    summary.quarantined.update({"unreadable": 1})
    summary.duplicates = 1
    summary.duplicate_signals = 2
    out = summary.as_dict()
    assert out == {
        "tasks_total": 3,
        "tasks_skipped": 1,
        "read": 7,
        "stored": 3,
        "quarantined": {"too_short": 2, "unreadable": 1},
        "duplicates": 1,
        "duplicate_signals": 2,
    }
    assert type(out["quarantined"]) is dict
    assert summary.format() == (
        "tasks: 3 (1 already stored, skipped)\n"
        "read this run: 7\n"
        "stored this run: 3\n"
        "quarantined this run: 3\n"
        "  too_short: 2\n"
        "  unreadable: 1\n"
        "duplicate record ids in the store (quarantined): 1\n"
        "duplicate signals in the store (quarantined): 2"
    )


# --------------------------------------------------------------------------- rows


def test_reject_row_keeps_the_records_provenance() -> None:
    """_reject mutants 2, 7, 13: the quarantine row loses the cohort or the patient id."""
    record = _record("r1", 0, patient_id="p9", source_file="/x/r1.dat")
    assert _reject(record, Reason.TOO_SHORT, "why") == {
        "cohort": COHORT,
        "source_file": "/x/r1.dat",
        "record_id": "r1",
        "patient_id": "p9",
        "reason": "too_short",
        "detail": "why",
    }


def test_metadata_row_is_exact() -> None:
    """_metadata_row mutants 13 (unknown rate not NaN), 16-17 (``split`` column renamed),
    18-23 (dict metadata not JSON with sorted keys), 24-25 (sets/tuples not sorted lists),
    26 (every metadata value dropped)."""
    record = _record(
        "r1",
        0,
        sampling_rate_hz=None,
        metadata={"age": 61.0, "labels": {"b": 1, "a": 2}, "codes": ("z", "a"), "tags": {"y", "x"}},
    )
    row = _metadata_row(record)
    assert math.isnan(row.pop("source_sampling_rate_hz"))
    assert row == {
        "record_id": "r1",
        "patient_id": "pr1",
        "cohort": COHORT,
        "source_file": "/data/r1.dat",
        "split": None,
        "age": 61.0,
        "labels": '{"a": 2, "b": 1}',
        "codes": ["a", "z"],
        "tags": ["x", "y"],
    }
    assert _metadata_row(_record("r2", 0))["source_sampling_rate_hz"] == 500.0


# --------------------------------------------------------------------------- _flush


def _recording_store_group(
    monkeypatch: pytest.MonkeyPatch, fail_groups: bool
) -> list[tuple[Any, ...]]:
    """Replace ``_store_group`` by a spy (optionally failing on groups of > 1 record)."""
    real = ingest_module._store_group
    calls: list[tuple[Any, ...]] = []

    def spy(items, rate, writer, rejections, mains_hz, config, qc):  # type: ignore[no-untyped-def]
        calls.append((items, rate, writer, rejections, mains_hz, config, qc))
        if fail_groups and len(items) > 1:
            raise RuntimeError("group failed")
        return real(items, rate, writer, rejections, mains_hz, config, qc)

    monkeypatch.setattr(ingest_module, "_store_group", spy)
    return calls


def _check_calls(calls, writer, rejections, config, qc, sizes) -> None:  # type: ignore[no-untyped-def]
    assert [len(c[0]) for c in calls] == sizes
    for items, rate, w, rej, mains_hz, cfg, q in calls:
        assert all(isinstance(item, ingest_module._Prepared) for item in items)
        assert rate == 500.0 and isinstance(rate, float)
        assert w is writer and rej is rejections and mains_hz == 50.0
        assert cfg is config and q is qc


def test_flush_groups_by_length_and_adds_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """_flush mutants 14 (``stored =``: only the last group counted) and 16-29 (an argument
    of the group call dropped or None: every group silently falls back to one by one)."""
    qc, config = QCConfig(), PreprocessingConfig()
    batch = [
        _prepare(_record("a", 0), qc),
        _prepare(_record("b", 1, signal=_ecgs()[1][:, :4500].copy()), qc),
        _prepare(_record("c", 2, signal=_ecgs()[2][:, :4500].copy()), qc),
    ]
    calls = _recording_store_group(monkeypatch, fail_groups=False)
    writer = ShardWriter(tmp_path, "s")
    rejections: list[dict[str, Any]] = []
    assert _flush(batch, writer, rejections, 50.0, config, qc) == 3  # type: ignore[arg-type]
    assert rejections == []
    _check_calls(calls, writer, rejections, config, qc, [1, 2])
    assert [row["record_id"] for row in writer.rows] == ["a", "b", "c"]
    writer.abort()


def test_flush_retries_a_failed_group_record_by_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """_flush mutants 30-31 (retried records counted with ``=``/``-=``) and 32-43 (an argument
    of the retry dropped or None: records quarantined as processing errors)."""
    qc, config = QCConfig(), PreprocessingConfig()
    batch = [_prepare(_record("a", 0), qc), _prepare(_record("b", 1), qc)]
    calls = _recording_store_group(monkeypatch, fail_groups=True)
    writer = ShardWriter(tmp_path, "s")
    rejections: list[dict[str, Any]] = []
    assert _flush(batch, writer, rejections, 50.0, config, qc) == 2  # type: ignore[arg-type]
    assert rejections == []
    _check_calls(calls, writer, rejections, config, qc, [2, 1, 1])
    assert [row["record_id"] for row in writer.rows] == ["a", "b"]
    writer.abort()


# --------------------------------------------------------------------------- ingest_reader


def _corpus(tmp_path: Path) -> _ListReader:
    ecgs = _ecgs()
    padded = np.zeros((12, 6000))
    padded[:, 500:5500] = ecgs[1]
    rejection = Rejection(COHORT, "/data/bad.xml", Reason.TOO_LONG, "too big", "rb", "pb")
    t0 = ReadTask(
        "t0",
        [
            _record("r0", 0, metadata={"age": 50.0}),
            # CODE-15 style zero padding: the valid part is the middle 5000 samples.
            _record("r1", 1, signal=padded, valid_start=500, valid_length=5000),
            _record("r1b", 1),  # the very signal r1 holds once its padding is dropped
            _record("r2", 2, patient_id=None),
            _record("r3", 3, units="furlongs"),
            rejection,
            _Fail(RuntimeError("disk gone")),
            _record("never", 4),
        ],
        n_items=8,
    )
    t1 = ReadTask("t1/x", [_record("r5", 5, signal=ecgs[5] * 1000.0, units="uV")], n_items=1)
    source = tmp_path / "src"
    source.mkdir(exist_ok=True)
    return _ListReader(source, [t0, t1])


def test_ingest_reader_summary_rows_shards_and_header(tmp_path: Path) -> None:
    """ingest_task/_prepare/ingest_reader: exact counts, quarantine rows (reason and detail),
    the valid_start slice (a shifted slice would not equal r1b's signal), the reader failure
    row, shard names and the cohort's header entry."""
    reader = _corpus(tmp_path)
    store = tmp_path / "store"
    source_key = str(reader.source.resolve())
    # Before the run: ingest empties the records' signals, which the payload's repr shows.
    names = {shard_name(COHORT, t, source_key, {}) for t in reader.tasks()}
    summary = ingest_reader(reader, store, 50.0, progress=False)
    assert summary.as_dict() == {
        "tasks_total": 2,
        "tasks_skipped": 0,
        "read": 7,
        "stored": 4,
        "quarantined": {"missing_patient_id": 1, "bad_metadata": 1, "too_long": 1, "unreadable": 1},
        "duplicates": 0,
        "duplicate_signals": 1,
    }
    assert committed_shards(store) == names
    assert all(n.startswith(("mem__t0__", "mem__t1_x__")) for n in names)

    manifest = CohortStore.open(store).manifest
    assert sorted(manifest["record_id"]) == ["r0", "r1", "r5"]
    assert set(manifest["valid_length"]) == {4000}
    assert manifest.set_index("record_id").loc["r0", "age"] == 50.0

    rows = _quarantine(store)
    assert set(rows) == {"r1b", "r2", "r3", "rb", "None"}
    assert rows["r1b"]["reason"] == "duplicate_signal"
    assert rows["r2"] == {
        "cohort": COHORT,
        "source_file": "/data/r2.dat",
        "record_id": "r2",
        "patient_id": None,
        "reason": "missing_patient_id",
        "detail": "patient id None is missing or a placeholder (QCConfig.placeholder_patient_ids)",
    }
    assert rows["r3"]["reason"] == "bad_metadata"
    assert rows["r3"]["detail"] == "unknown signal unit 'furlongs'; expected mV, uV or V"
    assert rows["r3"]["patient_id"] == "pr3"
    assert rows["rb"] == {
        "cohort": COHORT,
        "source_file": "/data/bad.xml",
        "record_id": "rb",
        "patient_id": "pb",
        "reason": "too_long",
        "detail": "too big",
    }
    failed = rows["None"]
    assert failed["cohort"] == COHORT and failed["source_file"] == str(reader.source)
    assert failed["record_id"] is None and failed["patient_id"] is None
    assert failed["detail"] == "task t0 stopped after 6 inputs: RuntimeError: disk gone"

    entry = read_header(store)["cohorts"][COHORT]
    assert entry["format"] == "memory" and entry["mains_hz"] == 50.0
    assert entry["sources"] == [source_key] and entry["reader_options"] == {}
    assert entry["n_stored"] == 3 and list(entry["filter_plans"]) == ["500"]
    assert entry["preprocessing"] == PreprocessingConfig().to_dict()
    assert entry["qc"] == QCConfig().to_dict()

    again = ingest_reader(_corpus(tmp_path), store, 50.0, progress=False)
    assert again.format() == (
        "tasks: 2 (2 already stored, skipped)\n"
        "read this run: 0\n"
        "stored this run: 0\n"
        "quarantined this run: 0\n"
        "duplicate signals in the store (quarantined): 1"
    )
    assert read_header(store)["cohorts"][COHORT]["sources"] == [source_key]
    with pytest.raises(CapeError) as raised:
        ingest_reader(_corpus(tmp_path), store, 60.0, progress=False)
    assert str(raised.value) == (
        f"cohort 'mem' is already in {store} with mains_hz=50.0; this run asks for 60.0. "
        "Use another cohort name or another store."
    )


def test_quarantine_killer_row(tmp_path: Path) -> None:
    """_quarantine_killer mutants 3, 4, 11: the row loses its cohort or source."""
    source = tmp_path / "src"
    source.mkdir()
    reader = _ListReader(source, [])
    _quarantine_killer(reader, tmp_path, ReadTask("t9", None), "shard")
    part = pd.read_parquet(tmp_path / "parts" / "shard.quarantine.parquet")
    assert part.to_dict("records") == [
        {
            "cohort": COHORT,
            "source_file": str(source),
            "record_id": None,
            "patient_id": None,
            "reason": "unreadable",
            "detail": "task t9 killed the worker reading it (twice); not read",
        }
    ]
    assert pd.read_parquet(tmp_path / "parts" / "shard.parquet").empty


# --------------------------------------------------------------------------- pool


def _commit_shard(store: Path, name: str, n_stored: int, reasons: list[str]) -> None:
    writer = ShardWriter(store, name)
    for k in range(n_stored):
        writer.append(np.zeros((8, 4000), np.int16), {"record_id": f"{name}{k}"})
    writer.commit([{"reason": r, "detail": ""} for r in reasons])


def test_committed_counts_read_back_from_the_parts(tmp_path: Path) -> None:
    """pool._committed_counts mutants 1-27 (no tests before): counts of a committed shard."""
    _commit_shard(tmp_path, "a", 2, ["too_short", "too_short", "unreadable"])
    assert pool_module._committed_counts(tmp_path, "a") == {
        "read": 5,
        "stored": 2,
        "quarantined": {"too_short": 2, "unreadable": 1},
    }
    _commit_shard(tmp_path, "b", 1, [])
    (tmp_path / "parts" / "b.quarantine.parquet").unlink()
    assert pool_module._committed_counts(tmp_path, "b") == {
        "read": 1,
        "stored": 1,
        "quarantined": {},
    }


class _Bar:
    def __init__(self) -> None:
        self.updates: list[Any] = []

    def update(self, n: Any) -> None:
        self.updates.append(n)


def test_run_pool_after_a_broken_pool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """run_pool mutants 7 (queue not passed), 19-25 (a suspect that finished before the pool
    broke not counted, counted from the wrong shard, or ``break`` skipping the other
    suspects), 38 (the retry run with 2 workers), 42-45 (log message), 54, 60-62 (the
    killer task counted as read or under the wrong reason), 63 (bar not advanced)."""
    tasks = [ReadTask(f"k{k}", None, n_items=10 + k) for k in range(3)]
    pending = [(t, f"s{k}") for k, t in enumerate(tasks)]
    _commit_shard(tmp_path, "s0", 1, ["too_short"])  # finished before the pool broke
    rounds: list[tuple[list[tuple[ReadTask, str]], int]] = []

    def fake_round(run_task, context, queue, workers, summary, bar):  # type: ignore[no-untyped-def]
        rounds.append((list(queue), workers))
        queue.clear()
        if len(rounds) == 1:
            return list(pending)
        if queue is not None and rounds[-1][0][0][1] == "s1":
            _commit_shard(tmp_path, "s1", 1, [])  # the retry alone succeeds
        return []

    killed: list[tuple[ReadTask, str]] = []
    monkeypatch.setattr(pool_module, "_pool_round", fake_round)
    summary = IngestSummary()
    bar = _Bar()
    with caplog.at_level(logging.ERROR, logger="cape.ingest.pool"):
        pool_module.run_pool(
            object(),  # type: ignore[arg-type]
            (),
            list(pending),
            tmp_path,
            4,
            summary,
            bar,  # type: ignore[arg-type]
            on_killed=lambda t, n: killed.append((t, n)),
        )
    assert rounds[0] == (list(reversed(pending)), 4)
    assert rounds[1:] == [([pending[1]], 1), ([pending[2]], 1)]
    assert killed == [pending[2]]
    assert summary.read == 2 and summary.stored == 1
    assert summary.quarantined == Counter({"too_short": 1, "unreadable": 1})
    assert bar.updates == [10, 12]
    assert [r.getMessage() for r in caplog.records] == [
        "task k2 killed its worker twice; quarantined"
    ]


class _FakeExecutor:
    """Records its arguments; a submitted task runs only when the test's ``wait`` says so."""

    made: ClassVar[list[dict[str, Any]]] = []

    def __init__(self, **kwargs: Any) -> None:
        _FakeExecutor.made.append(kwargs)

    def __enter__(self) -> _FakeExecutor:
        return self

    def __exit__(self, *exc: Any) -> None:
        pass

    def submit(self, fn: Any, *args: Any) -> Future[Any]:
        future: Future[Any] = Future()
        future.job = (fn, args)  # type: ignore[attr-defined]
        return future


def test_pool_round_executor_arguments_and_in_flight_limit(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """_pool_round mutants 1, 2, 4, 5 (pool without the worker count or the initializer),
    8 (``queue and running``), 10-12 (more or fewer than 2 tasks per worker in flight),
    22 (config not passed to the task), 37 (waiting for all), 44-46 (log message) and
    49 (bar not advanced)."""
    _FakeExecutor.made = []
    waits: list[tuple[int, Any]] = []
    calls: list[tuple[Any, ...]] = []
    broken = {"after": 99}

    def fake_wait(fs, return_when="ALL_COMPLETED"):  # type: ignore[no-untyped-def]
        waits.append((len(fs), return_when))
        future = next(iter(fs))
        if len(waits) > broken["after"]:
            future.set_exception(BrokenProcessPool("died"))
        else:
            fn, args = future.job
            future.set_result(fn(*args))
        return {future}, set(fs) - {future}

    def run_task(reader, task, store_path, name, mains_hz, config, qc):  # type: ignore[no-untyped-def]
        calls.append((reader, task.key, store_path, name, mains_hz, config, qc))
        return {"read": 1, "stored": 1, "quarantined": {}}

    monkeypatch.setattr(pool_module, "ProcessPoolExecutor", _FakeExecutor)
    monkeypatch.setattr(pool_module, "wait", fake_wait)
    context = ("reader", Path("/s"), 50.0, "config", "qc")
    tasks = [(ReadTask(f"k{k}", None, n_items=k + 1), f"s{k}") for k in range(6)]
    summary, bar = IngestSummary(), _Bar()
    queue = list(reversed(tasks))
    lost = pool_module._pool_round(run_task, context, queue, 2, summary, bar)  # type: ignore[arg-type]
    assert lost == [] and queue == []
    assert _FakeExecutor.made == [
        {"max_workers": 2, "initializer": pool_module._worker_init, "initargs": (os.getpid(),)}
    ]
    assert [w[0] for w in waits] == [4, 4, 4, 3, 2, 1]
    assert {w[1] for w in waits} == {FIRST_COMPLETED}
    assert calls == [
        ("reader", f"k{k}", Path("/s"), f"s{k}", 50.0, "config", "qc") for k in range(6)
    ]
    assert summary.read == 6 and bar.updates == [1, 2, 3, 4, 5, 6]

    waits.clear()
    broken["after"] = 1
    queue = list(reversed(tasks))
    with caplog.at_level(logging.WARNING, logger="cape.ingest.pool"):
        lost = pool_module._pool_round(run_task, context, queue, 2, IngestSummary(), _Bar())  # type: ignore[arg-type]
    assert lost == [tasks[1], tasks[2], tasks[3], tasks[4]]
    assert [r.getMessage() for r in caplog.records] == [
        "a worker died; re-running the 4 task(s) in flight one by one"
    ]


def test_worker_init_sets_the_parent_death_signal_and_one_thread() -> None:
    """pool._worker_init / _single_thread mutants (no tests before): PR_SET_PDEATHSIG not set
    to SIGKILL, the orphan check inverted or exiting with another status, more than one
    BLAS/OpenMP thread. Runs in forked children: the settings would outlive the test."""
    from threadpoolctl import threadpool_info, threadpool_limits

    def child(parent_pid: int) -> tuple[int, bytes]:
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            code = 3
            try:
                os.close(read_end)
                threadpool_limits(4)
                pool_module._worker_init(parent_pid)
                signal = ctypes.c_int(-1)
                libc = ctypes.CDLL(None, use_errno=True)
                libc.prctl(2, ctypes.byref(signal), 0, 0, 0)  # PR_GET_PDEATHSIG
                threads = sorted({info["num_threads"] for info in threadpool_info()})
                os.write(write_end, f"{signal.value} {threads}".encode())
                code = 0
            finally:
                os._exit(code)
        os.close(write_end)
        _, status = os.waitpid(pid, 0)
        with os.fdopen(read_end, "rb") as pipe:
            return os.waitstatus_to_exitcode(status), pipe.read()

    assert child(os.getpid()) == (0, b"9 [1]")
    assert child(os.getpid() + 10**6) == (1, b"")
