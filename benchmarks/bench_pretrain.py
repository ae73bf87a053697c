"""Pretraining throughput: the full pipeline against the model step alone.

For each encoder preset, on the CPU:

* **model only** -- forward, NT-Xent loss, backward and Adam step on a
  pre-made tensor of views (no data loading at all);
* **pipeline** -- the same step fed by the real data path: cohort store on
  disk -> pair sampler -> DataLoader worker(s) reading and augmenting
  (crop + zero mask) -> step.

It prints ECGs/s for both (medians over rounds whose order alternates, so both
see the same machine load), their ratio with its range -- the goal is >= 0.9,
data loading is never the bottleneck -- the loader workers' start-up time
(measured apart: it is paid once per run, not per step), and the time one
process needs to build a batch, against the step time. Loader workers run
only during pipeline blocks (started and stopped per block), so they cannot
prefetch on the model-only block's CPU time. The store is synthetic (written to a
temporary directory with ``cape.store.create_store_from_arrays``).

Threads: the trainer uses ``--threads`` torch threads (default 1) and the
loader ``--workers`` worker processes (default 1, each single-threaded);
``benchmarks/bench_model.py --compare threads`` measures 1 vs 2 trainer
threads. Usage::

    python benchmarks/bench_pretrain.py                      # small and paper
    python benchmarks/bench_pretrain.py --presets small --steps 8 --rounds 4
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from itertools import repeat
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from cape.losses import NTXentLoss
from cape.pretrain import load_config
from cape.pretrain.data import PairViewsDataset, make_loader
from cape.pretrain.encoder_io import build_model
from cape.pretrain.optim import make_optimizer
from cape.samplers import PairBatchSampler, PatientTable
from cape.store import create_store_from_arrays

# Patients per batch and timed steps per round, per preset: the paper encoder
# takes seconds per 16-ECG step on one core, so it gets a small batch.
DEFAULTS = {"small": (64, 4), "paper": (8, 2)}
WARMUP_STEPS = 2
PREFETCH = 4  # make_loader's prefetch_factor: batches queued per worker


def make_store(path: Path, n_patients: int, seed: int = 0):
    """Two cohorts, 2 ECGs per patient, 7 s or 10 s records, random mV signals."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_patients):
        for k in range(2):
            rows.append(
                {
                    "record_id": f"r{p}-{k}",
                    "patient_id": f"p{p}",
                    "cohort": "a" if p % 2 else "b",
                    "valid_length": int(rng.choice([2800, 4000])),
                }
            )
    manifest = pd.DataFrame(rows)
    signals = rng.normal(0.0, 0.5, size=(len(manifest), 8, 4000)).astype(np.float32)
    return create_store_from_arrays(path, signals, manifest)


def step_function(preset: str, seed: int = 0):
    config = load_config(None, [f"model.preset={preset}", "lr=0.001", f"seed={seed}"])
    model = build_model(config).train()
    optimizer = make_optimizer(model, config)
    loss_fn = NTXentLoss(config.temperature)

    def step(views: torch.Tensor) -> None:
        n = views.shape[0] // 2
        projections = model(views)
        out = loss_fn(projections[:n], projections[n:])
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        optimizer.step()

    return config, step


def time_steps(step, batches, steps: int, ecgs_per_step: int) -> float:
    """ECGs/s over ``steps`` steps, including the wait for each batch."""
    iterator = iter(batches)
    start = time.perf_counter()
    for _ in range(steps):
        step(next(iterator))
    return steps * ecgs_per_step / (time.perf_counter() - start)


def bench_preset(
    preset: str, store, batch_patients: int, steps: int, rounds: int, workers: int
) -> dict:
    """Alternate model-only and pipeline blocks so that both see the same machine load.

    The order alternates every round (model first in even rounds, pipeline first
    in odd ones). Each pipeline block starts its own loader workers and shuts
    them down when it ends, so no worker prefetches (and takes CPU) during a
    model-only block. The workers' start-up (fork, first batch) is timed
    separately; then ``prefetch`` steps run untimed, so the queue that the
    workers filled while starting is drained, and the next ``steps`` are timed:
    the sustained rate of a running pipeline.
    """
    config, model_step = step_function(preset)
    _, pipeline_step = step_function(preset)
    ecgs = 2 * batch_patients
    views = torch.randn(ecgs, 8, config.crop_samples)
    table = PatientTable.from_manifest(store.manifest, exclude_splits=())
    sampler = PairBatchSampler(table, batch_patients, "random", seed=0)
    lead_in = PREFETCH * max(workers, 1)
    if sampler.steps_per_epoch < lead_in + max(steps, WARMUP_STEPS):
        raise SystemExit(
            f"store too small for {lead_in + steps} steps of {batch_patients} patients"
        )
    dataset = PairViewsDataset(store, config.augmenter(), seed=0)

    def pipeline_block(epoch: int, n_steps: int) -> tuple[float, float]:
        """(sustained ECG/s over n_steps after the lead-in, start-up seconds)."""
        sampler.set_epoch(epoch)
        loader = make_loader(dataset, sampler, workers, seed=epoch)
        start = time.perf_counter()
        iterator = iter(loader)
        first = next(iterator)["views"]
        startup = time.perf_counter() - start
        pipeline_step(first)
        try:
            batches = (batch["views"] for batch in iterator)
            time_steps(pipeline_step, batches, lead_in - 1, ecgs)  # drain the prefetch queue
            rate = time_steps(pipeline_step, batches, n_steps, ecgs)
        finally:
            # Stop the workers now (make_loader keeps them persistent across epochs).
            shutdown = getattr(iterator, "_shutdown_workers", None)
            if shutdown is not None:
                shutdown()
        return rate, startup

    # Warm-up: allocator, oneDNN kernels, worker start.
    time_steps(model_step, repeat(views), WARMUP_STEPS, ecgs)
    pipeline_block(0, WARMUP_STEPS)
    model_only, pipeline, startups = [], [], []
    for round_index in range(rounds):
        blocks = ("model", "pipeline") if round_index % 2 == 0 else ("pipeline", "model")
        for block in blocks:
            if block == "model":
                # The same untimed lead-in as a pipeline block, so both time warm steps.
                time_steps(model_step, repeat(views), lead_in, ecgs)
                model_only.append(time_steps(model_step, repeat(views), steps, ecgs))
            else:
                rate, startup = pipeline_block(1 + round_index, steps)
                pipeline.append(rate)
                startups.append(startup)
    # Cost of building one batch in a single process (what a worker must keep up with).
    keys = list(iter(sampler))[:3]
    start = time.perf_counter()
    for key in keys:
        dataset[key]
    data_seconds = (time.perf_counter() - start) / len(keys)
    ratios = [p / m for p, m in zip(pipeline, model_only, strict=True)]
    return {
        "model_only": statistics.median(model_only),
        "pipeline": statistics.median(pipeline),
        "ratio": statistics.median(ratios),
        "ratio_range": (min(ratios), max(ratios)),
        "startup_seconds": statistics.median(startups),
        "data_seconds": data_seconds,
        "step_seconds": ecgs / statistics.median(model_only),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["small", "paper"], choices=list(DEFAULTS))
    parser.add_argument("--threads", type=int, default=1, help="torch threads in the trainer")
    parser.add_argument("--workers", type=int, default=1, help="DataLoader worker processes")
    parser.add_argument(
        "--steps", type=int, default=None, help="steps per block (default per preset)"
    )
    parser.add_argument("--rounds", type=int, default=4, help="model-only/pipeline block pairs")
    parser.add_argument("--batch-patients", type=int, default=None, help="default per preset")
    parser.add_argument("--quick", action="store_true", help="small preset, tiny (smoke test)")
    args = parser.parse_args(argv)
    if args.quick:
        args.presets, args.steps, args.rounds, args.batch_patients = ["small"], 1, 2, 4
    torch.set_num_threads(args.threads)
    load = os.getloadavg()
    print(
        f"torch {torch.__version__}, {args.threads} trainer thread(s), {args.workers} worker(s); "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs"
    )
    plans = {
        preset: (args.batch_patients or DEFAULTS[preset][0], args.steps or DEFAULTS[preset][1])
        for preset in args.presets
    }
    lead_in = PREFETCH * max(args.workers, 1)
    needed = max(b * (lead_in + max(s, WARMUP_STEPS)) for b, s in plans.values())
    with tempfile.TemporaryDirectory() as directory:
        store = make_store(Path(directory) / "store", n_patients=needed)
        print(
            f"{'preset':<8}{'batch ECGs':>11}{'model-only ECG/s':>18}{'pipeline ECG/s':>16}"
            f"{'ratio':>7}{'range':>11}{'start-up s':>12}{'data s/batch':>14}{'step s':>8}"
        )
        for preset, (batch_patients, steps) in plans.items():
            result = bench_preset(preset, store, batch_patients, steps, args.rounds, args.workers)
            low, high = result["ratio_range"]
            print(
                f"{preset:<8}{2 * batch_patients:>11}{result['model_only']:>18.1f}"
                f"{result['pipeline']:>16.1f}{result['ratio']:>7.2f}{low:>5.2f}-{high:<5.2f}"
                f"{result['startup_seconds']:>12.2f}"
                f"{result['data_seconds']:>14.3f}{result['step_seconds']:>8.2f}"
            )
    print(
        "ratio = pipeline / model-only ECG/s per round (median, range); pipeline blocks time "
        f"the sustained rate after start-up and {lead_in} untimed steps"
    )


if __name__ == "__main__":
    main()
