"""Fine-tuning throughput: the full pipeline against the model step alone.

For each encoder preset, on the CPU (or ``--device cuda``):

* **model only** -- forward through encoder and head, loss, backward and Adam
  step (two learning rates) on a pre-made tensor of windows: no data loading;
* **pipeline** -- the same step fed by the real fine-tuning data path: cohort
  store on disk -> epoch batches -> DataLoader worker(s) reading, cropping
  and masking (:mod:`cape.finetune.data`) -> step.

Both are measured in the same run in alternating blocks (so both see the same
machine load); it prints ECGs/s, their ratio (median over rounds; the goal is
>= 0.9: data loading is never the bottleneck) and the time one process needs
to build a batch. Each pipeline block starts a fresh loader pass, so it
includes the wait for the first batch. The store is synthetic (a temporary
directory). Usage::

    python benchmarks/bench_finetune.py                         # small and paper
    python benchmarks/bench_finetune.py --presets small --steps 20 --workers 1
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable
from itertools import repeat
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from cape.finetune import FinetuneModel, load_finetune_config
from cape.finetune.data import EpochBatches, LabelledViewsDataset, make_train_loader
from cape.finetune.model import build_head, make_optimizer, scratch_encoder
from cape.store import create_store_from_arrays

# ECGs per batch and timed steps per block, per preset (the paper encoder takes
# seconds per 16-ECG step on one CPU core).
DEFAULTS = {"small": (64, 4), "paper": (16, 2)}
WARMUP_STEPS = 2


def make_store(path: Path, n_ecgs: int, seed: int = 0):
    """Two cohorts, 7 s or 10 s records, random mV signals, an age label."""
    rng = np.random.default_rng(seed)
    manifest = pd.DataFrame(
        {
            "record_id": [f"r{i}" for i in range(n_ecgs)],
            "patient_id": [f"p{i // 2}" for i in range(n_ecgs)],
            "cohort": ["a" if (i // 2) % 2 else "b" for i in range(n_ecgs)],
            "valid_length": rng.choice([2800, 4000], size=n_ecgs),
            "age": rng.uniform(20, 90, size=n_ecgs),
            "split": "train",
        }
    )
    signals = rng.normal(0.0, 0.5, size=(n_ecgs, 8, 4000)).astype(np.float32)
    return create_store_from_arrays(path, signals, manifest)


def step_function(preset: str, device: torch.device, bf16: bool) -> tuple[Callable, int]:
    config = load_finetune_config(None, ["init=scratch", f"model.preset={preset}"])
    window = config.crop_samples(2800)
    encoder = scratch_encoder(config.scratch_spec(window), seed=0)
    head = build_head(encoder.feature_dim, (256, 128), 1, 0.2, seed=0)
    model = FinetuneModel(encoder, head, "regression").to(device).train()
    optimizer = make_optimizer(model, config)

    def step(batch: dict[str, torch.Tensor]) -> None:
        views = batch["views"].to(device, non_blocking=True)
        targets = batch["targets"].to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            outputs = model(views)
        loss = model.loss(outputs.float(), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()

    return step, window


def time_steps(step: Callable, batches: Iterable, steps: int, ecgs_per_step: int) -> float:
    """ECGs/s over ``steps`` steps, including the wait for each batch."""
    iterator = iter(batches)
    start = time.perf_counter()
    for _ in range(steps):
        step(next(iterator))
    return steps * ecgs_per_step / (time.perf_counter() - start)


def bench_preset(
    preset: str,
    store,
    batch_size: int,
    steps: int,
    rounds: int,
    workers: int,
    device: torch.device,
    bf16: bool,
) -> dict[str, float]:
    """Alternate model-only and pipeline blocks; medians over rounds."""
    model_step, window = step_function(preset, device, bf16)
    pipeline_step, _ = step_function(preset, device, bf16)
    fixed = {"views": torch.randn(batch_size, 8, window), "targets": torch.rand(batch_size, 1)}
    records = np.arange(len(store))
    targets = store.manifest["age"].to_numpy(np.float32)[:, None]
    config = load_finetune_config(None, [])
    sampler = EpochBatches(len(records), batch_size, seed=0)
    if sampler.steps_per_epoch < max(steps, WARMUP_STEPS):
        raise SystemExit(f"store too small for {steps} steps of {batch_size} ECGs")
    dataset = LabelledViewsDataset(store, records, targets, config.augmenter(window), seed=0)
    loader = make_train_loader(dataset, sampler, workers, seed=0, pin_memory=device.type == "cuda")

    time_steps(model_step, repeat(fixed), WARMUP_STEPS, batch_size)
    time_steps(pipeline_step, loader, WARMUP_STEPS, batch_size)
    model_only, pipeline = [], []
    for round_index in range(rounds):
        # Alternate which goes first, so neither always follows the other's load.
        blocks = [("model", repeat(fixed)), ("pipeline", None)]
        if round_index % 2:
            blocks.reverse()
        for kind, batches in blocks:
            if kind == "model":
                model_only.append(time_steps(model_step, batches, steps, batch_size))
            else:
                sampler.set_epoch(1 + round_index)
                pipeline.append(time_steps(pipeline_step, loader, steps, batch_size))
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
        "step_seconds": batch_size / statistics.median(model_only),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["small", "paper"], choices=list(DEFAULTS))
    parser.add_argument("--threads", type=int, default=1, help="torch threads in the trainer")
    parser.add_argument("--workers", type=int, default=1, help="DataLoader worker processes")
    parser.add_argument("--steps", type=int, default=None, help="steps per block")
    parser.add_argument("--rounds", type=int, default=4, help="model-only/pipeline block pairs")
    parser.add_argument("--batch-size", type=int, default=None, help="ECGs per step")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--no-bf16", action="store_true", help="no bf16 autocast on CUDA")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    bf16 = device.type == "cuda" and not args.no_bf16
    print(
        f"torch {torch.__version__}, {device}, bf16 {bf16}, {args.threads} trainer thread(s), "
        f"{args.workers} worker(s)"
    )
    plans = {
        preset: (args.batch_size or DEFAULTS[preset][0], args.steps or DEFAULTS[preset][1])
        for preset in args.presets
    }
    needed = max(b * (s + 1) * (args.rounds + 2) for b, s in plans.values())
    with tempfile.TemporaryDirectory() as directory:
        store = make_store(Path(directory) / "store", n_ecgs=needed)
        print(
            f"{'preset':<8}{'batch ECGs':>11}{'model-only ECG/s':>18}{'pipeline ECG/s':>16}"
            f"{'ratio':>7}{'data s/batch':>14}{'step s':>8}"
        )
        for preset, (batch_size, steps) in plans.items():
            result = bench_preset(
                preset, store, batch_size, steps, args.rounds, args.workers, device, bf16
            )
            print(
                f"{preset:<8}{batch_size:>11}{result['model_only']:>18.1f}"
                f"{result['pipeline']:>16.1f}{result['ratio']:>7.2f}"
                f"{result['data_seconds']:>14.3f}{result['step_seconds']:>8.2f}"
            )


if __name__ == "__main__":
    main()
