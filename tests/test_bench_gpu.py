"""The GPU benchmark's CPU quick form runs end to end and writes the JSON the docs describe."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_gpu.py"


@pytest.mark.slow
def test_quick_cpu_run_writes_positive_throughputs(tmp_path: Path) -> None:
    out = tmp_path / "bench_gpu.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable,
        str(SCRIPT),
        "--device",
        "cpu",
        "--quick",
        # Generous: on a loaded CI core every row must still fit (a 30 s budget skipped
        # the embed row at load 10); the quick form stops once every row is measured.
        "--budget-s",
        "120",
        "--seconds",
        "0.3",
    ]
    completed = subprocess.run(
        [*command, "--out", str(out)], env=env, capture_output=True, text=True, timeout=400
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "Training step, model only" in completed.stdout

    result = json.loads(out.read_text())
    assert {
        "environment",
        "settings",
        "flops",
        "train",
        "pipeline",
        "embed",
        "largest_batch_search",
        "skipped",
        "summary",
        "seconds",
    } <= set(result)
    assert result["environment"]["device"] == "cpu"
    assert (
        result["flops"]["small"]["train_per_ecg"] == 3 * result["flops"]["small"]["forward_per_ecg"]
    )

    measured = [row for row in result["train"] if row["status"] == "measured"]
    assert measured, result["train"]
    for row in measured:
        assert row["ecgs_per_s"] > 0 and row["tflops"] > 0 and row["timed_steps"] >= 3
    # compile is not tried on the CPU, and the table says so rather than leaving the row out
    assert any(row["mode"] == "compile" and "CPU" in row["status"] for row in result["train"])

    (pipeline,) = result["pipeline"]
    assert pipeline["workers"] == 1 and pipeline["status"] == "measured"
    for key in ("pipeline_ecgs_per_s", "loader_ecgs_per_s", "per_worker_ecgs_per_s", "ratio"):
        assert pipeline[key] > 0
    (embed,) = result["embed"]
    assert embed["status"] == "measured"
    assert embed["model_ecgs_per_s"] > 0 and embed["path_ecgs_per_s"] > 0
    assert result["summary"]["paper_reference_ecgs_per_s"] == 850.0
