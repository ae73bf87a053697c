"""Per-job progress of pretraining runs that train in worker processes.

A study that pretrains ``parallel`` runs at a time gives each its own process
without a progress bar (bars of several processes garble one console). Each
run already writes ``log.jsonl`` (one line every ``log_every_steps`` steps:
epoch, step, loss, learning rate, ECG/s; see :mod:`cape.pretrain.rundir`),
``config.yaml`` (epochs, batch size) and ``provenance.json`` (steps per
epoch). :class:`ProgressPoller` reads those from the parent every
``interval`` seconds and prints one line per run that moved::

      random-seed0: epoch 2/8, step 31/55, loss 4.012, lr 9.1e-04, 52 ECG/s, ETA 6 min

Nothing here imports torch; a run that has not written its files yet is skipped.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

_TAIL_BYTES = 8192  # the last log lines; a step record is ~300 bytes


@dataclass(frozen=True)
class PretrainProgress:
    """Where one pretraining run stands, from the files in its run directory."""

    epoch: int  # 0-based epoch of the last record
    epochs: int
    step: int  # 0-based step within the epoch of the last record
    steps_per_epoch: int | None
    global_step: int
    loss: float | None
    lr: float | None
    ecgs_per_s: float | None
    batch_ecgs: int
    epoch_done: bool  # the last record closes an epoch

    @property
    def total_steps(self) -> int | None:
        return None if self.steps_per_epoch is None else self.epochs * self.steps_per_epoch

    def eta_seconds(self) -> float | None:
        """Seconds left at the last logged throughput (None when unknown)."""
        if self.total_steps is None or not self.ecgs_per_s or self.ecgs_per_s <= 0:
            return None
        steps_per_second = self.ecgs_per_s / self.batch_ecgs
        return max(self.total_steps - self.global_step, 0) / steps_per_second


def last_record(log_path: Path) -> dict[str, Any] | None:
    """The last complete JSON line of a log (a line being written is skipped)."""
    try:
        with log_path.open("rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(size - _TAIL_BYTES, 0))
            tail = handle.read().decode(errors="replace")
    except OSError:
        return None
    for line in reversed(tail.splitlines()):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and record.get("kind") in ("step", "epoch"):
            return record
    return None


def read_progress(run_dir: Path) -> PretrainProgress | None:
    """Progress of the pretraining run in ``run_dir``, or None before its first log line."""
    record = last_record(run_dir / "log.jsonl")
    if record is None:
        return None
    try:
        config = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        return None
    steps_per_epoch = None
    # A resumed run writes provenance-resume-STEP.json; all agree on steps per epoch.
    for path in sorted(run_dir.glob("provenance*.json")):
        try:
            facts = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(facts, dict) and facts.get("steps_per_epoch"):
            steps_per_epoch = facts["steps_per_epoch"]
    done = record["kind"] == "epoch"
    return PretrainProgress(
        epoch=int(record.get("epoch", 0)),
        epochs=int(config.get("epochs", 0)),
        step=int(record.get("step", -1)),
        steps_per_epoch=int(steps_per_epoch) if steps_per_epoch else None,
        global_step=int(record.get("global_step", 0)),
        loss=record.get("loss"),
        lr=record.get("lr"),
        ecgs_per_s=record.get("ecgs_per_s"),
        batch_ecgs=2 * int(config.get("batch_patients", 1)),
        epoch_done=done,
    )


def format_duration(seconds: float) -> str:
    """``45 s``, ``12 min``, ``2.5 h``."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def format_progress(label: str, progress: PretrainProgress) -> str:
    """One console line: epoch, step, loss, learning rate, throughput, time left."""
    if progress.epoch_done:
        where = f"epoch {progress.epoch + 1}/{progress.epochs} done"
    else:
        where = f"epoch {progress.epoch + 1}/{progress.epochs}"
        steps = f"/{progress.steps_per_epoch}" if progress.steps_per_epoch else ""
        where += f", step {progress.step + 1}{steps}"
    parts = [where]
    if progress.loss is not None:
        parts.append(f"loss {progress.loss:.3f}")
    if progress.lr is not None:
        parts.append(f"lr {progress.lr:.1e}")
    if progress.ecgs_per_s:
        parts.append(f"{progress.ecgs_per_s:.0f} ECG/s")
    eta = progress.eta_seconds()
    if eta is not None:
        parts.append(f"ETA {format_duration(eta)}")
    return f"  {label}: {', '.join(parts)}"


def pretrain_progress_line(label: str, directory: Path) -> str | None:
    """The progress line of a study's pretraining job, or None if it has not logged yet."""
    progress = read_progress(directory)
    return None if progress is None else format_progress(label, progress)


class ProgressPoller:
    """Prints each job's progress line every ``interval`` seconds while jobs run.

    Args:
        jobs: ``(label, directory)`` of the jobs to follow.
        describe: ``describe(label, directory)`` -> a line, or None (nothing to say yet).
        log: where lines go (the study's console).
        interval: seconds between polls.

    Use as a context manager around the wait for the jobs; a line is printed only
    when it changed since the job's last one, and finished jobs (``finished``) are
    left out.
    """

    def __init__(
        self,
        jobs: Sequence[tuple[str, Path]],
        describe: Callable[[str, Path], str | None],
        log: Callable[[str], None],
        interval: float = 30.0,
    ) -> None:
        self.jobs = list(jobs)
        self.describe = describe
        self.log = log
        self.interval = interval
        self.finished: set[str] = set()
        self._last: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll(self) -> list[str]:
        """One round: the lines of the jobs that moved (also sent to ``log``)."""
        lines = []
        for label, directory in self.jobs:
            if label in self.finished:
                continue
            try:
                line = self.describe(label, directory)
            except Exception:  # a half-written file must never stop the study
                line = None
            if line is not None and line != self._last.get(label):
                self._last[label] = line
                lines.append(line)
        for line in lines:
            self.log(line)
        return lines

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.poll()

    def __enter__(self) -> ProgressPoller:
        self._thread = threading.Thread(target=self._run, name="cape-progress", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
