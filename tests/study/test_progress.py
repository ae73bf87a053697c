"""Per-job progress lines of pretraining runs in worker processes (no real training)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import yaml

from cape.study import StudyRunner, load_study
from cape.study.progress import (
    ProgressPoller,
    format_duration,
    format_progress,
    pretrain_progress_line,
    read_progress,
)


def _fake_run(directory: Path, records: list[dict], tail: str = "") -> None:
    """What cape.pretrain writes: config.yaml, provenance.json, log.jsonl (+ a torn line)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.yaml").write_text(yaml.safe_dump({"epochs": 8, "batch_patients": 64}))
    (directory / "provenance.json").write_text(json.dumps({"steps_per_epoch": 55}))
    lines = "".join(json.dumps(r) + "\n" for r in records)
    (directory / "log.jsonl").write_text(lines + tail)


STEP = {
    "kind": "step",
    "epoch": 2,
    "step": 30,
    "lr": 9.1e-4,
    "global_step": 141,
    "loss": 4.0123,
    "ecgs_per_s": 64.0,
}


def test_progress_line_from_the_run_files(tmp_path: Path) -> None:
    """Bug caught: the last line read is the one being written (torn JSON), epochs/steps
    shown 0-based, or the ETA computed from ECGs instead of steps.

    ETA: 8 epochs x 55 steps = 440; 141 done; 64 ECG/s / 128 ECGs per step = 0.5 step/s;
    (440 - 141) / 0.5 = 598 s = 10 min.
    """
    _fake_run(tmp_path, [{**STEP, "step": 10, "global_step": 121}, STEP], tail='{"kind": "st')
    progress = read_progress(tmp_path)
    assert progress is not None
    assert progress.global_step == 141 and progress.total_steps == 440
    assert progress.eta_seconds() == 598.0
    assert format_progress("random-seed0", progress) == (
        "  random-seed0: epoch 3/8, step 31/55, loss 4.012, lr 9.1e-04, 64 ECG/s, ETA 10 min"
    )


def test_epoch_records_and_missing_files(tmp_path: Path) -> None:
    assert pretrain_progress_line("a", tmp_path / "not-started") is None
    epoch = {"kind": "epoch", "epoch": 0, "global_step": 55, "loss": 4.5, "ecgs_per_s": 128.0}
    _fake_run(tmp_path, [STEP, epoch])
    # 385 steps left at 1 step/s.
    assert pretrain_progress_line("idb-seed1", tmp_path) == (
        "  idb-seed1: epoch 1/8 done, loss 4.500, 128 ECG/s, ETA 6 min"
    )
    (tmp_path / "provenance.json").unlink()  # written a moment after the first log line
    assert pretrain_progress_line("idb-seed1", tmp_path) == (
        "  idb-seed1: epoch 1/8 done, loss 4.500, 128 ECG/s"
    )


def test_durations() -> None:
    assert [format_duration(s) for s in (5, 59.4, 60, 3599, 3600, 9000)] == [
        "5 s",
        "59 s",
        "1 min",
        "60 min",
        "1.0 h",
        "2.5 h",
    ]


def test_poller_prints_lines_that_changed_and_not_finished_jobs(tmp_path: Path) -> None:
    state = {"a": "line a1", "b": None}
    printed: list[str] = []

    def describe(label: str, directory: Path) -> str | None:
        if label == "c":
            raise ValueError("half-written file")
        return state[label]

    jobs = [("a", tmp_path), ("b", tmp_path), ("c", tmp_path)]
    poller = ProgressPoller(jobs, describe, printed.append, interval=60)
    assert poller.poll() == ["line a1"]
    assert poller.poll() == []  # nothing moved
    state.update(a="line a2", b="line b1")
    assert poller.poll() == ["line a2", "line b1"]
    poller.finished.add("a")
    state.update(a="line a3")
    assert poller.poll() == []
    assert printed == ["line a1", "line a2", "line b1"]


def test_poller_thread_polls_until_stopped(tmp_path: Path) -> None:
    printed: list[str] = []
    count = iter(range(1000))
    with ProgressPoller([("a", tmp_path)], lambda *_: f"n{next(count)}", printed.append, 0.05):
        deadline = time.monotonic() + 10
        while len(printed) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
    seen = len(printed)
    time.sleep(0.2)
    assert seen >= 3 and len(printed) == seen  # stopped on exit


def fake_pretrain_job(directory: Path, resuming: bool, label: str) -> None:
    """A pretraining job without training: it logs three steps, slowly."""
    for step in range(3):
        record = {**STEP, "step": step, "global_step": step + 1}
        _fake_run(directory, [record])
        time.sleep(0.6)


def test_parallel_stage_prints_each_jobs_progress(tmp_path: Path) -> None:
    """Bug caught: with parallel jobs the console says `running (queued)` and then
    nothing until a job finishes."""
    printed: list[str] = []
    runner = StudyRunner(load_study("demo-quick"), tmp_path, log=printed.append, poll_seconds=0.2)
    jobs = [
        (label, tmp_path / label, {"job": label}, fake_pretrain_job, (label,))
        for label in ("random-seed0", "idb-seed0")
    ]
    runner.stages_parallel("pretrain", jobs, workers=2, describe=pretrain_progress_line)
    for label in ("random-seed0", "idb-seed0"):
        lines = [line for line in printed if line.startswith(f"  {label}: epoch 3/8, step ")]
        assert lines, printed
    assert "  2 pretrain jobs, 2 at a time; each job's progress every 0.2 s" in printed
