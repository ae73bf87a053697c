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


# --------------------------------------------------------------------------- second round
# Survivors of the full run of 2026-12-03 (959 mutants, 81.8 % killed): the worker
# initialiser seen in-process, the record-level exception paths, full batches, the
# progress bar, the filter-plan log, what `ingest` forwards, the header's history.


class _FakeLibc:
    def __init__(self, calls: list[tuple[Any, ...]]) -> None:
        self.calls = calls

    def prctl(self, *args: Any) -> int:
        self.calls.append(("prctl", *args))
        return 0


def test_worker_init_in_process_with_fakes(monkeypatch: pytest.MonkeyPatch) -> None:
    """pool._worker_init mutants 1, 3, 6-22 and _single_thread 1-2, seen in this process
    (the forked test above runs where mutmut cannot map it): prctl not reached or called
    with another option/signal, the orphan check inverted, another exit status, another
    thread count. Mutants 2, 4, 5 (``use_errno`` None/False/absent) are equivalent: errno
    is never read."""
    import threadpoolctl

    calls: list[tuple[Any, ...]] = []
    monkeypatch.setattr(
        ctypes, "CDLL", lambda name, **kw: calls.append(("CDLL", name)) or _FakeLibc(calls)
    )
    monkeypatch.setattr(threadpoolctl, "threadpool_limits", lambda n: calls.append(("threads", n)))

    class _Exit(Exception):
        pass

    def fake_exit(code: int) -> None:
        calls.append(("exit", code))
        raise _Exit

    monkeypatch.setattr(os, "_exit", fake_exit)
    monkeypatch.setattr(os, "getppid", lambda: 4242)
    pool_module._worker_init(4242)
    assert calls == [("CDLL", None), ("prctl", 1, 9, 0, 0, 0), ("threads", 1)]
    calls.clear()
    with pytest.raises(_Exit):
        pool_module._worker_init(7)  # the parent is gone: exit before doing anything else
    assert calls == [("CDLL", None), ("prctl", 1, 9, 0, 0, 0), ("exit", 1)]


def test_flush_quarantines_the_record_that_fails_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """_flush mutants 46-49 (the log line loses its text or record id) and 54-59 (the
    quarantine row of a record that fails on its own: reason, detail or the record lost)."""
    real = ingest_module._store_group

    def failing(items, rate, writer, rejections, mains_hz, config, qc):  # type: ignore[no-untyped-def]
        if any(item.record.record_id == "b" for item in items):
            raise RuntimeError("filter blew up")
        return real(items, rate, writer, rejections, mains_hz, config, qc)

    monkeypatch.setattr(ingest_module, "_store_group", failing)
    qc, config = QCConfig(), PreprocessingConfig()
    batch = [_prepare(_record("a", 0), qc), _prepare(_record("b", 1), qc)]
    writer = ShardWriter(tmp_path, "s")
    rejections: list[dict[str, Any]] = []
    with caplog.at_level(logging.ERROR, logger="cape.ingest"):
        assert _flush(batch, writer, rejections, 50.0, config, qc) == 1  # type: ignore[arg-type]
    assert [row["record_id"] for row in writer.rows] == ["a"]
    assert rejections == [
        {
            "cohort": COHORT,
            "source_file": "/data/b.dat",
            "record_id": "b",
            "patient_id": "pb",
            "reason": "processing_error",
            "detail": "RuntimeError: filter blew up",
        }
    ]
    assert [r.getMessage() for r in caplog.records] == ["record b failed in preprocessing"]
    writer.abort()


def test_prepare_quarantine_details_and_released_signal() -> None:
    """_prepare mutants 31/35 and 38/42 (the missing/ambiguous-lead detail lost), 43-49 (a
    signal that does not match its lead names: reason, detail or record lost), 75 (a QC
    rejection's detail lost) and 79 (the source array replaced by None). Equivalent: 26/28
    (``dtype=np.float64`` dropped: the signal is float64 already, or becomes so when scaled),
    62 (``valid_length=None`` is the whole span it passes), 81/82 (another empty array)."""
    qc = QCConfig()
    missing = _prepare(
        _record("m", 0, signal=_ecgs()[0][:11], lead_names=LEADS12[:6] + LEADS12[7:]), qc
    )
    assert missing["reason"] == "missing_leads"  # type: ignore[index]
    assert (
        missing["detail"]
        == (  # type: ignore[index]
            f"missing leads ['V1'] (found {LEADS12[:6] + LEADS12[7:]})"
        )
    )
    twice = _prepare(_record("t", 0, lead_names=[*LEADS12[:11], "V5"]), qc)
    assert twice["reason"] == "ambiguous_leads"  # type: ignore[index]
    assert twice["detail"] == "channels 11 ('V5') and 12 ('V5') are both lead V5"  # type: ignore[index]
    shape = _prepare(_record("s", 0, lead_names=LEADS12[:11]), qc)
    assert shape == {
        "cohort": COHORT,
        "source_file": "/data/s.dat",
        "record_id": "s",
        "patient_id": "ps",
        "reason": "unreadable",
        "detail": "signal of shape (12, 5000) does not match 11 lead names",
    }
    from cape.qc import check_record

    short = _record("short", 0, signal=_ecgs()[0][:, :1000].copy())  # 2 s at 500 Hz
    row = _prepare(short, qc)
    problem = check_record(
        np.asarray(short.signal)[[0, 1, 6, 7, 8, 9, 10, 11]], 500.0, None, None, qc
    )
    assert problem is not None and problem[1]
    assert (row["reason"], row["detail"]) == (problem[0].value, problem[1])  # type: ignore[index]
    record = _record("ok", 0)
    prepared = _prepare(record, qc)
    assert isinstance(prepared, ingest_module._Prepared)
    assert isinstance(record.signal, np.ndarray) and record.signal.size == 0
    assert prepared.signal_mv.shape == (8, 5000)


def test_store_group_saturated_record_does_not_stop_the_group(tmp_path: Path) -> None:
    """_store_group mutants 31/32 (the saturation detail), 34 (``continue`` -> ``break``:
    the records after a saturated one silently missing) and 57 (a shorter content hash)."""
    qc, config = QCConfig(), PreprocessingConfig()
    loud = _prepare(_record("loud", 0), qc)
    assert isinstance(loud, ingest_module._Prepared)
    loud.signal_mv = loud.signal_mv * 40.0  # ~130 mV peaks: beyond int16 µV after filtering
    items = [loud, _prepare(_record("quiet", 1), qc)]
    writer = ShardWriter(tmp_path, "s")
    rejections: list[dict[str, Any]] = []
    stored = ingest_module._store_group(items, 500.0, writer, rejections, 50.0, config, qc)  # type: ignore[arg-type]
    assert stored == 1
    assert [row["record_id"] for row in writer.rows] == ["quiet"]
    assert len(writer.rows[0]["signal_hash"]) == 32
    assert [(r["record_id"], r["reason"], r["detail"]) for r in rejections] == [
        ("loud", "saturated", "after preprocessing the signal exceeds ±32.767 mV (int16 µV range)")
    ]
    writer.abort()


def _expected_int16(
    signal_mv: np.ndarray, rate: float, mains_hz: float, config: PreprocessingConfig
) -> np.ndarray:
    from cape.leads import select_store_leads
    from cape.preprocessing import preprocess
    from cape.store import SLOT_SAMPLES
    from cape.store.slot import fit_to_slot, to_int16_microvolts

    stacked = select_store_leads(signal_mv, LEADS12)[None]
    result = preprocess(stacked, rate, mains_hz, config)
    slots, _ = fit_to_slot(result.signals, result.valid_lengths, SLOT_SAMPLES)
    return to_int16_microvolts(slots)[0][0]


def test_ingest_task_full_batches_record_errors_and_parameters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """ingest_task mutants 50-65 (a record whose validation raises: its quarantine row and
    log line), 70-85 (full batches: counted with +=, every argument passed -- a record
    failing in a full batch needs the quarantine list, a dropped QC config fails every
    group, and the run's QC thresholds reach every batch -- the batch emptied) and 91 (the last, partial batch's config); 18/19/23 (the log line of a
    failing reader); _store_group 7/11 (preprocessing parameters dropped): the stored
    signal must equal the one made directly with this run's non-default parameters and
    mains frequency."""
    monkeypatch.setattr(ingest_module, "_BATCH", 2)
    real_scale = ingest_module.unit_scale_to_mv

    def scale(units: str) -> float:
        if units == "explode":
            raise TypeError("no scale for explode")
        return real_scale(units)

    monkeypatch.setattr(ingest_module, "unit_scale_to_mv", scale)
    real_group = ingest_module._store_group

    given_qc: list[Any] = []

    def store_group(items, *args):  # type: ignore[no-untyped-def]
        given_qc.append(args[-1])
        if any(item.record.record_id == "r1" for item in items):
            raise ValueError("filter unstable")
        return real_group(items, *args)

    monkeypatch.setattr(ingest_module, "_store_group", store_group)
    payload: list[Any] = [_record(f"r{k}", k) for k in range(5)]
    payload.insert(2, _record("x", 9, units="explode"))
    payload.append(_Fail(OSError("cable pulled")))
    reader = _ListReader(tmp_path / "src", [ReadTask("t", payload, n_items=len(payload))])
    (tmp_path / "src").mkdir()
    config = PreprocessingConfig(highpass_hz=0.67, lowpass_hz=40.0)
    store = tmp_path / "store"
    qc = QCConfig(max_qrs_ms=300.0)
    with caplog.at_level(logging.ERROR, logger="cape.ingest"):
        summary = ingest_reader(reader, store, 60.0, preprocessing=config, qc=qc, progress=False)
    assert given_qc and all(q is qc for q in given_qc)  # this run's QC in every batch
    assert (summary.read, summary.stored) == (6, 4)
    assert summary.quarantined == {"processing_error": 2, "unreadable": 1}
    rows = _quarantine(store)
    assert rows["x"] == {
        "cohort": COHORT,
        "source_file": "/data/x.dat",
        "record_id": "x",
        "patient_id": "px",
        "reason": "processing_error",
        "detail": "TypeError: no scale for explode",
    }
    assert rows["r1"]["reason"] == "processing_error"
    assert rows["r1"]["detail"] == "ValueError: filter unstable"
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "record r1 failed in preprocessing",
        "record x in /data/x.dat failed",
        f"task t of {reader.source} failed",
    ]
    opened = CohortStore.open(store)
    manifest = opened.manifest.reset_index(drop=True)
    assert sorted(manifest["record_id"]) == ["r0", "r2", "r3", "r4"]
    for k in (3, 4):  # r3 in a full batch, r4 in the last, partial one
        position = int(manifest.index[manifest["record_id"] == f"r{k}"][0])
        expected = _expected_int16(_ecgs()[k], 500.0, 60.0, config)
        np.testing.assert_array_equal(opened.read_raw(position), expected)


class _RecordingBar:
    made: ClassVar[list[dict[str, Any]]] = []

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.updates: list[Any] = []
        self.closed = False
        _RecordingBar.made.append({"kwargs": kwargs, "bar": self})

    def update(self, n: Any) -> None:
        self.updates.append(n)

    def close(self) -> None:
        self.closed = True


def test_ingest_reader_progress_bar_and_plan_notes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """ingest_reader mutants 134 and 137-147 (the bar's total, unit, description or
    on/off switch), 166 (updates by task size), 216-222 (the filter plan recorded in the
    header for another mains frequency or parameters, or not at all) and 224-234 (the
    INFO line per filter-plan note). Defaults (mutants 1/2 here, 2 of ``ingest``): one
    worker, the bar on."""
    import inspect

    for function in (ingest_reader, ingest_module.ingest):
        parameters = inspect.signature(function).parameters
        assert parameters["workers"].default == 1 and parameters["progress"].default is True
    _RecordingBar.made.clear()
    monkeypatch.setattr(ingest_module, "tqdm", _RecordingBar)
    ecgs = _ecgs()
    at_100 = [
        _record(f"h{k}", k, signal=ecgs[k][:, ::5].copy(), sampling_rate_hz=100.0) for k in range(2)
    ]
    tasks = [ReadTask("a", at_100[:1], n_items=3), ReadTask("b", at_100[1:], n_items=2)]
    (tmp_path / "src").mkdir()
    config = PreprocessingConfig(lowpass_hz=45.0)
    with caplog.at_level(logging.INFO, logger="cape.ingest"):
        ingest_reader(
            _ListReader(tmp_path / "src", tasks),
            tmp_path / "s",
            50.0,
            preprocessing=config,
            progress=False,
        )
    [made] = _RecordingBar.made
    assert made["kwargs"] == {"total": 5, "unit": "ECG", "desc": "ingest mem", "disable": True}
    assert made["bar"].updates == [3, 2] and made["bar"].closed
    plan = ingest_module.plan_filters(100.0, 50.0, config)
    assert plan.notes  # at 100 Hz the 50 Hz mains sits at Nyquist
    assert read_header(tmp_path / "s")["cohorts"][COHORT]["filter_plans"] == {"100": plan.to_dict()}
    assert plan.to_dict() != ingest_module.plan_filters(100.0, None, config).to_dict()
    assert (
        plan.to_dict() != ingest_module.plan_filters(100.0, 50.0, PreprocessingConfig()).to_dict()
    )
    infos = [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.INFO and r.name == "cape.ingest"
    ]
    assert infos == [f"mem at 100 Hz: {note}" for note in plan.notes]

    _RecordingBar.made.clear()
    ingest_reader(_ListReader(tmp_path / "src", []), tmp_path / "t", 50.0)
    assert _RecordingBar.made[0]["kwargs"]["disable"] is False


def test_ingest_forwards_every_argument(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ingest mutants 2 (the bar off by default), 17-28 (workers, preprocessing, qc,
    progress or the format name not passed on to ingest_reader: silently ingesting with
    defaults) and validate_cohort_name 6/7 (the rule's wording)."""
    seen: dict[str, Any] = {}
    reader = _ListReader(tmp_path, [])
    monkeypatch.setattr(ingest_module, "get_reader", lambda fmt, source, cohort, **options: reader)

    def spy(got_reader, out, mains_hz, **kwargs):  # type: ignore[no-untyped-def]
        seen.update(reader=got_reader, out=out, mains_hz=mains_hz, **kwargs)
        return "summary"

    monkeypatch.setattr(ingest_module, "ingest_reader", spy)
    config, qc = PreprocessingConfig(lowpass_hz=45.0), QCConfig()
    result = ingest_module.ingest(
        "wfdb",
        tmp_path,
        COHORT,
        tmp_path / "s",
        60.0,
        workers=3,
        preprocessing=config,
        qc=qc,
        progress=False,
    )
    assert result == "summary"
    assert seen == {
        "reader": reader,
        "out": tmp_path / "s",
        "mains_hz": 60.0,
        "workers": 3,
        "preprocessing": config,
        "qc": qc,
        "progress": False,
        "format_name": "wfdb",
    }
    ingest_module.ingest("wfdb", tmp_path, COHORT, tmp_path / "s", 60.0)
    assert seen["progress"] is True and seen["workers"] == 1  # the defaults: bar on, one worker
    with pytest.raises(CapeError) as raised:
        ingest_module.ingest("wfdb", tmp_path, "_bad", tmp_path / "s", 60.0)
    assert str(raised.value) == (
        "cohort name '_bad' is not allowed: use 1-64 characters of A-Z a-z 0-9 . _ - "
        "starting with a letter or digit (e.g. 'site_a')"
    )


def test_header_keeps_history_and_compares_parameters(tmp_path: Path) -> None:
    """ingest_reader mutants 43-47 (a QC check added by a later CAPE is not a change, but
    a preprocessing key that differs is), 56-64 (the list of sources a cohort came from
    reset, or an entry without one failing), 78-85 (reader options, version and UTC time stamp of the entry)."""
    import datetime as dt

    import cape
    from cape.store import write_json_atomic

    ecgs = _ecgs()
    first, second = tmp_path / "one", tmp_path / "two"
    first.mkdir()
    second.mkdir()
    store = tmp_path / "s"
    reader = _ListReader(first, [ReadTask("a", [_record("a", 0)], n_items=1)])
    reader.options = {"sampling_rate": 500, "strict": True}
    ingest_reader(reader, store, 50.0, progress=False)
    entry = read_header(store)["cohorts"][COHORT]
    assert entry["reader_options"] == {"sampling_rate": "500", "strict": "True"}
    assert entry["cape_version"] == cape.__version__
    stamp = dt.datetime.fromisoformat(entry["ingested_at"])
    assert stamp.utcoffset() == dt.timedelta(0)

    # A store written by an older CAPE whose QC had one check fewer.
    header = read_header(store)
    dropped = sorted(header["cohorts"][COHORT]["qc"])[0]
    del header["cohorts"][COHORT]["qc"][dropped]
    write_json_atomic(store / "header.json", header)
    ingest_reader(
        _ListReader(second, [ReadTask("b", [_record("b", 1, signal=ecgs[1])], n_items=1)]),
        store,
        50.0,
        progress=False,
    )
    assert read_header(store)["cohorts"][COHORT]["sources"] == [
        str(first.resolve()),
        str(second.resolve()),
    ]

    # A store whose entry predates the list of sources: the list starts afresh.
    header = read_header(store)
    del header["cohorts"][COHORT]["sources"]
    write_json_atomic(store / "header.json", header)
    ingest_reader(_ListReader(second, []), store, 50.0, progress=False)
    assert read_header(store)["cohorts"][COHORT]["sources"] == [str(second.resolve())]

    header = read_header(store)
    del header["cohorts"][COHORT]["preprocessing"]["notch"]
    write_json_atomic(store / "header.json", header)
    with pytest.raises(CapeError, match=r"already in .* with preprocessing="):
        ingest_reader(_ListReader(second, []), store, 50.0, progress=False)


def test_shard_name_identity_and_shape() -> None:
    """shard_name mutants 3 (reader option values ignored), 5 (the task payload ignored),
    25 (upper-case letters replaced) and 28 (the readable part one character longer).
    Mutants 11 and 13-15 (the ``surrogateescape`` error handler dropped or misspelt) are
    equivalent: ``json.dumps`` escapes every non-ASCII character, surrogates included,
    so the encoded text is ASCII; the undecodable path is checked anyway."""
    task = ReadTask("Site/A", ["x.dat"], n_items=1)
    base = shard_name("Harbor", task, "/data", {"rate": 100})
    assert base.startswith("Harbor__Site_A__")
    assert shard_name("Harbor", task, "/data", {"rate": 500}) != base
    assert (
        shard_name("Harbor", ReadTask("Site/A", ["y.dat"], n_items=1), "/data", {"rate": 100})
        != base
    )
    odd = os.fsdecode(b"/data/\xff\xfe")  # lone surrogates, as os.fsdecode gives them
    assert shard_name("Harbor", task, odd, {}) != shard_name("Harbor", task, "/data/__", {})
    long = shard_name("c", ReadTask("k" * 300, [], n_items=0), "/data", {})
    readable, digest = long.rsplit("__", 1)
    assert len(readable) == 180 and len(digest) == 10
