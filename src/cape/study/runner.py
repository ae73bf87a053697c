"""Run a study: simulate -> ingest -> pretrain -> embed -> evaluate -> label efficiency
(when the study has a ``label_efficiency:`` section) -> report, each stage cached.

Every stage writes into its own directory under the run directory and leaves
a ``.stage.json`` marker holding a content hash of its inputs (its settings
and the *stamps* of the stages it reads). A stage whose marker says ``done``
with the same hash is skipped; a changed setting changes the hash, so that
stage and everything downstream of it run again. A stage that was
interrupted (marker ``running``) runs again and resumes where the stage
itself can (ingest skips committed shards, pretraining continues from its
last checkpoint). ``force`` reruns named stages; their new stamps make
everything downstream rerun too.

Run directory::

    study.yaml            the resolved study
    provenance.json       versions, git revision, stage hashes
    data/                 simulated cohorts (when the study simulates)
    store/                the cohort store
    pretrain/NAME-seedK/  one pretraining run per model and encoder seed
    features/NAME-seedK/  their features (and untrained-seedK/, one per seed of the first run)
    evaluation/           protocol results
    label-efficiency/     cape label-efficiency on one pretrained model (optional section)
    report/               report.html, report.md and figures
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

import cape
from cape.errors import CapeError, did_you_mean
from cape.markers import MARKER
from cape.study.config import StudyConfig

logger = logging.getLogger(__name__)

STAGES = ("simulate", "ingest", "pretrain", "embed", "evaluate", "label-efficiency", "report")


def content_hash(payload: Any) -> str:
    """Short SHA-256 of a JSON rendering of ``payload`` (keys sorted)."""
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds")


@dataclass
class StageResult:
    name: str
    directory: Path
    key: str
    stamp: str
    skipped: bool


@dataclass
class StudyRunner:
    """Runs one study into one run directory (see the module docstring)."""

    config: StudyConfig
    out: Path
    force: set[str] = field(default_factory=set)
    progress: bool = True
    results: dict[str, StageResult] = field(default_factory=dict)
    log: Callable[[str], None] = print
    poll_seconds: float = 30.0  # progress lines of jobs in worker processes

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        unknown = self.force - set(STAGES)
        if unknown:
            first = sorted(unknown)[0]
            raise CapeError(
                f"--force {first}: unknown stage{did_you_mean(first, STAGES)} "
                f"(stages: {', '.join(STAGES)})"
            )

    # -- caching ------------------------------------------------------------------------
    def _prepare(
        self, label: str, stage_name: str, directory: Path, inputs: Any, queued: bool = False
    ) -> tuple[str, bool, StageResult | None]:
        """Key of a stage, whether it resumes, and its result if it can be skipped."""
        key = content_hash({"stage": stage_name, "inputs": inputs, "schema": 1})
        marker_path = directory / MARKER
        marker = json.loads(marker_path.read_text()) if marker_path.is_file() else None
        if marker and marker.get("key") == key and marker.get("status") == "done":
            if stage_name not in self.force:
                self.log(f"[{stage_name}] {label}: up to date, skipped")
                result = StageResult(label, directory, key, marker["stamp"], skipped=True)
                self.results[label] = result
                return key, False, result
        resuming = bool(marker and marker.get("key") == key and stage_name not in self.force)
        if directory.exists() and not resuming:
            shutil.rmtree(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {"key": key, "status": "running"}
        if not queued:
            state["started"] = _now()
        marker_path.write_text(json.dumps(state))
        verb = "resuming" if resuming else "running"
        self.log(f"[{stage_name}] {label}: {verb}{' (queued)' if queued else ''}")
        return key, resuming, None

    def _finish(self, label: str, directory: Path, key: str) -> StageResult:
        started = json.loads((directory / MARKER).read_text()).get("started")
        if started:
            seconds = _dt.datetime.now(_dt.timezone.utc) - _dt.datetime.fromisoformat(started)
            self.log(f"  {label}: finished in {seconds.total_seconds():.0f} s")
        stamp = f"{key}@{_now()}"
        (directory / MARKER).write_text(
            json.dumps({"key": key, "status": "done", "stamp": stamp, "finished": _now()})
        )
        result = StageResult(label, directory, key, stamp, skipped=False)
        self.results[label] = result
        return result

    def stages_parallel(
        self,
        stage_name: str,
        jobs: list[tuple[str, Path, Any, Callable[..., None], tuple[Any, ...]]],
        workers: int,
        describe: Callable[[str, Path], str | None] | None = None,
    ) -> list[StageResult]:
        """Run independent cached stages, ``workers`` at a time in separate processes.

        Each job is ``(label, directory, inputs, function, args)``; the function is
        called as ``function(directory, resuming, *args)`` and must be picklable
        (a module-level function). With ``workers == 1`` everything runs in this
        process, in order. With several workers, ``describe(label, directory)``
        (if given) is polled every ``poll_seconds`` for a progress line per job.
        """
        results: dict[str, StageResult] = {}
        pending = []
        began = _dt.datetime.now(_dt.timezone.utc)
        for label, directory, inputs, function, args in jobs:
            key, resuming, done = self._prepare(
                label, stage_name, directory, inputs, queued=workers > 1
            )
            if done is not None:
                results[label] = done
            else:
                pending.append((label, directory, key, resuming, function, args))
        if workers <= 1 or len(pending) <= 1:
            for label, directory, key, resuming, function, args in pending:
                function(directory, resuming, *args)
                results[label] = self._finish(label, directory, key)
        else:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor, as_completed

            # spawn: a clean interpreter per worker (no forked torch thread pools).
            from cape.study.progress import ProgressPoller

            context = multiprocessing.get_context("spawn")
            if describe is not None:
                self.log(
                    f"  {len(pending)} {stage_name} jobs, {workers} at a time; each job's "
                    f"progress every {self.poll_seconds:g} s"
                )
            followed = [(label, directory) for label, directory, *_ in pending]
            poller = ProgressPoller(
                followed, describe or (lambda label, directory: None), self.log, self.poll_seconds
            )
            with (
                ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool,
                poller,
            ):
                futures = {
                    pool.submit(function, directory, resuming, *args): (label, directory, key)
                    for label, directory, key, resuming, function, args in pending
                }
                for future in as_completed(futures):
                    label, directory, key = futures[future]
                    poller.finished.add(label)
                    if future.exception() is not None:
                        # Fail now, not after hours of queued jobs; they resume next time.
                        pool.shutdown(wait=False, cancel_futures=True)
                        raise future.exception()  # type: ignore[misc]
                    results[label] = self._finish(label, directory, key)
                    elapsed = (_dt.datetime.now(_dt.timezone.utc) - began).total_seconds()
                    self.log(f"  {label}: finished ({elapsed:.0f} s into the {stage_name} stage)")
        return [results[job[0]] for job in jobs]

    def stage(
        self,
        label: str,
        stage_name: str,
        directory: Path,
        inputs: Any,
        work: Callable[[Path, bool], None],
    ) -> StageResult:
        """Run ``work(directory, resuming)`` unless a finished marker with the same key exists."""
        key, resuming, done = self._prepare(label, stage_name, directory, inputs)
        if done is not None:
            return done
        work(directory, resuming)
        return self._finish(label, directory, key)

    # -- the study ----------------------------------------------------------------------
    def run(self) -> Path:
        from cape.study import stages

        self.out.mkdir(parents=True, exist_ok=True)
        if self.config.sweep is not None:
            from cape.study.sweep import run_sweep

            (self.out / "study.yaml").write_text(
                yaml.safe_dump(self.config.model_dump(mode="json"), sort_keys=False)
            )

            def run_one(config: StudyConfig, out: Path) -> Path:
                return StudyRunner(
                    config,
                    out,
                    self.force,
                    self.progress,
                    log=self.log,
                    poll_seconds=self.poll_seconds,
                ).run()

            return run_sweep(self, run_one)
        (self.out / "study.yaml").write_text(
            yaml.safe_dump(self.config.model_dump(mode="json"), sort_keys=False)
        )
        data = stages.simulate_stage(self)
        store = stages.ingest_stage(self, data)
        runs = stages.pretrain_stage(self, store)
        features = stages.embed_stage(self, store, runs)
        evaluation = stages.evaluate_stage(self, features, store)
        efficiency = stages.label_efficiency_stage(self, store, runs, features)
        self._write_provenance()
        if self.config.report.enabled:
            stages.report_stage(self, store, runs, features, evaluation, efficiency)
            self._write_provenance()
        return self.out

    def _write_provenance(self) -> None:
        import platform

        import numpy
        import torch

        from cape.pretrain.rundir import git_revision

        payload = {
            "cape_version": cape.__version__,
            "git_revision": git_revision(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "numpy": numpy.__version__,
            "stages": {
                label: {"key": r.key, "stamp": r.stamp, "skipped": r.skipped}
                for label, r in self.results.items()
            },
            "written": _now(),
        }
        (self.out / "provenance.json").write_text(json.dumps(payload, indent=2, sort_keys=True))
