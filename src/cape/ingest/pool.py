"""Ingest's worker pool: tasks in parallel, and a worker that dies costs only its task.

``run_task(reader, task, store_path, name, mains_hz, config, qc)`` (a picklable
module-level function: :func:`cape.ingest.ingest_task`) runs in the workers; each
worker dies with its parent and uses one BLAS/OpenMP thread.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal as _signal
from collections import Counter
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from cape.readers.base import ReadTask
from cape.store import PART_DIR, committed_shards

logger = logging.getLogger(__name__)


def run_pool(
    run_task: Callable[..., dict[str, Any]],
    context: tuple[Any, ...],
    pending: list[tuple[ReadTask, str]],
    store_path: Path,
    workers: int,
    summary: Any,
    bar: tqdm,
    on_killed: Callable[[ReadTask, str], None],
) -> None:
    """Run the tasks on a pool; a worker that dies costs only the task that killed it.

    A worker can die without an exception (a C library crashing on a hostile
    file, the kernel's OOM killer): the pool breaks and every task in flight is
    lost. Those tasks are then run again one at a time, each in a pool of its
    own; one that kills its worker again is committed as an empty shard with
    one ``unreadable`` row naming the task, and the run goes on.
    """
    queue = list(reversed(pending))
    while queue:
        suspects = _pool_round(run_task, context, queue, workers, summary, bar)
        for task, name in suspects:
            if name in committed_shards(store_path):  # finished before the pool broke
                summary.add(_committed_counts(store_path, name))
                bar.update(task.n_items)
                continue
            _pool_round(run_task, context, [(task, name)], 1, summary, bar)
            if name not in committed_shards(store_path):
                logger.error("task %s killed its worker twice; quarantined", task.key)
                on_killed(task, name)
                summary.add({"read": 0, "stored": 0, "quarantined": {"unreadable": 1}})
                bar.update(task.n_items)


def _committed_counts(store_path: Path, name: str) -> dict[str, Any]:
    """A committed shard's counts, read back from its parts."""
    stored = len(pd.read_parquet(store_path / PART_DIR / f"{name}.parquet", columns=["row"]))
    quarantine = store_path / PART_DIR / f"{name}.quarantine.parquet"
    reasons = (
        pd.read_parquet(quarantine, columns=["reason"])["reason"] if quarantine.is_file() else []
    )
    counts = Counter(str(r) for r in reasons)
    return {"read": stored + sum(counts.values()), "stored": stored, "quarantined": dict(counts)}


def _pool_round(
    run_task: Callable[..., dict[str, Any]],
    context: tuple[Any, ...],
    queue: list[tuple[ReadTask, str]],
    workers: int,
    summary: Any,
    bar: tqdm,
) -> list[tuple[ReadTask, str]]:
    """Run ``queue`` (popped from the end) until it is empty or the pool breaks.

    Returns the tasks that were in flight when the pool broke (none if it did not).
    """
    # Keep at most 2 tasks per worker in flight so memory stays flat however many tasks.
    with ProcessPoolExecutor(
        max_workers=workers, initializer=_worker_init, initargs=(os.getpid(),)
    ) as pool:
        running: dict[Future[dict[str, Any]], tuple[ReadTask, str]] = {}
        while queue or running:
            while queue and len(running) < 2 * workers:
                task, name = queue.pop()
                reader, store_path, mains_hz, config, qc = context
                future = pool.submit(run_task, reader, task, store_path, name, mains_hz, config, qc)
                running[future] = (task, name)
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                task, name = running.pop(future)
                try:
                    result = future.result()
                except BrokenProcessPool:
                    lost = [(task, name), *running.values()]
                    logger.warning(
                        "a worker died; re-running the %d task(s) in flight one by one", len(lost)
                    )
                    return lost
                summary.add(result)
                bar.update(task.n_items)
    return []


_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _worker_init(parent_pid: int) -> None:
    """Die with the parent, and use one thread."""
    # A worker orphaned by `kill -9` of ingest would go on writing shards into a store a
    # rerun is writing too. The kernel kills it when its parent dies (Linux).
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(_signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the parent check below still helps
        pass
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)
    _single_thread()


def _single_thread() -> None:
    # One BLAS/OpenMP thread per worker: the workers already use the cores, more threads
    # per worker only oversubscribe them.
    # numpy is already loaded in a forked worker, so environment variables are too late.
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
