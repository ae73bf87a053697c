"""Pretraining throughput: the full pipeline against the model step alone.

For each encoder preset, on the CPU:

* **model only** -- forward, NT-Xent loss, backward and Adam step on a
  pre-made tensor of views (no data loading at all);
* **pipeline** -- the same step fed by the real data path: cohort store on
  disk -> pair sampler -> DataLoader worker(s) reading and augmenting
  (crop + zero mask) -> step.

It prints ECGs/s for both (medians over alternating rounds, so both see the
same machine load), their ratio -- the goal is >= 0.9, data loading is never
the bottleneck -- and the time one process needs to build a batch, against
the step time. The store is synthetic (written to a
temporary directory with ``cape.store.create_store_from_arrays``).

Threads: the trainer uses ``--threads`` torch threads (default 1) and the
loader ``--workers`` worker processes (default 1, each single-threaded). On a
2-core machine shared with other work, one trainer thread plus one worker
is the setting that holds up; two trainer threads collapse when anything else
runs. Usage::

    python benchmarks/bench_pretrain.py                      # small and paper
    python benchmarks/bench_pretrain.py --presets small --steps 30
"""

from __future__ import annotations

import argparse
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

    Each pipeline block starts a fresh pass of the loader (a new epoch), so its
    time includes waiting for the first batch: the worker cannot prefetch
    during the model-only block.
    """
    config, model_step = step_function(preset)
    _, pipeline_step = step_function(preset)
    ecgs = 2 * batch_patients
    views = torch.randn(ecgs, 8, config.crop_samples)
    table = PatientTable.from_manifest(store.manifest, exclude_splits=())
    sampler = PairBatchSampler(table, batch_patients, "random", seed=0)
    if sampler.steps_per_epoch < max(steps, WARMUP_STEPS):
        raise SystemExit(f"store too small for {steps} steps of {batch_patients} patients")
    dataset = PairViewsDataset(store, config.augmenter(), seed=0)
    loader = make_loader(dataset, sampler, workers, seed=0)

    def pipeline_batches():
        return (batch["views"] for batch in loader)

    # Warm-up: allocator, oneDNN kernels, worker start.
    time_steps(model_step, repeat(views), WARMUP_STEPS, ecgs)
    time_steps(pipeline_step, pipeline_batches(), WARMUP_STEPS, ecgs)
    model_only, pipeline = [], []
    for round_index in range(rounds):
        model_only.append(time_steps(model_step, repeat(views), steps, ecgs))
        sampler.set_epoch(1 + round_index)
        pipeline.append(time_steps(pipeline_step, pipeline_batches(), steps, ecgs))
    # Cost of building one batch in a single process (what a worker must keep up with).
    keys = list(iter(sampler))[:3]
    start = time.perf_counter()
    for key in keys:
        dataset[key]
    data_seconds = (time.perf_counter() - start) / len(keys)
    return {
        "model_only": statistics.median(model_only),
        "pipeline": statistics.median(pipeline),
        "ratio": statistics.median(p / m for p, m in zip(pipeline, model_only, strict=True)),
        "data_seconds": data_seconds,
        "step_seconds": ecgs / statistics.median(model_only),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["small", "paper"], choices=list(DEFAULTS))
    parser.add_argument("--threads", type=int, default=1, help="torch threads in the trainer")
    parser.add_argument("--workers", type=int, default=1, help="DataLoader worker processes")
    parser.add_argument(
        "--steps", type=int, default=None, help="steps per block (default per preset)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="model-only/pipeline block pairs")
    parser.add_argument("--batch-patients", type=int, default=None, help="default per preset")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} trainer thread(s), {args.workers} worker(s)")
    plans = {
        preset: (args.batch_patients or DEFAULTS[preset][0], args.steps or DEFAULTS[preset][1])
        for preset in args.presets
    }
    needed = max(b * max(s, WARMUP_STEPS) for b, s in plans.values())
    with tempfile.TemporaryDirectory() as directory:
        store = make_store(Path(directory) / "store", n_patients=needed)
        print(
            f"{'preset':<8}{'batch ECGs':>11}{'model-only ECG/s':>18}{'pipeline ECG/s':>16}"
            f"{'ratio':>7}{'data s/batch':>14}{'step s':>8}"
        )
        for preset, (batch_patients, steps) in plans.items():
            result = bench_preset(preset, store, batch_patients, steps, args.rounds, args.workers)
            print(
                f"{preset:<8}{2 * batch_patients:>11}{result['model_only']:>18.1f}"
                f"{result['pipeline']:>16.1f}{result['ratio']:>7.2f}"
                f"{result['data_seconds']:>14.3f}{result['step_seconds']:>8.2f}"
            )


if __name__ == "__main__":
    main()
