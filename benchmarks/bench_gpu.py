"""GPU numbers in one prepared run: training step, data pipeline and embedding on this machine.

Measures, within a time budget (``--budget-s``, default 420 s all in):

* **training step, model only** -- forward, NT-Xent loss, backward and Adam
  step on views already on the device: fp32 vs bf16 autocast, eager vs
  ``torch.compile``, at the paper's batch (512 patients = 1,024 views of
  8 x 2800) and at the largest batch that fits (doubled until
  ``torch.cuda.OutOfMemoryError``, then one step back up by half);
* **training step fed by the pipeline** -- cohort store on disk ->
  ``PairBatchSampler`` -> ``PairViewsDataset`` in ``make_loader`` workers ->
  the same step, for W = 1, 4, 8, 12 workers, beside the loader alone;
* **embedding** -- ``cape.embed.embed_indices`` (store -> windows -> encoder)
  against the encoder alone on a tensor already on the device;
* the ``small`` preset for reference.

Each row reports ECG/s, peak GPU memory (``torch.cuda.max_memory_allocated``)
and TFLOP/s from the FLOPs that ``cape model-info`` counts (convolutions and
dense layers, 2 FLOPs per multiply-add, measured by a hooked forward pass;
a training step is taken as 3x the forward pass -- backward ~ 2x forward --
per view, ``cape.models.info.TRAIN_STEP_FACTOR``). Normalisation,
activations and the optimiser are not counted, so TFLOP/s is a slight
underestimate. The paper's reference: ~850 ECG/s for its encoder on one RTX
3090.

Every measurement runs warm-up steps (not timed; for ``torch.compile`` they
include the compilation), then is timed until ``--seconds`` have passed and at
least three steps were taken. What the remaining budget cannot fit is skipped
and listed. The store is synthetic (random millivolt signals written with
``cape.store``, via ``bench_pretrain.make_store``); nothing needs the network.
Usage::

    python benchmarks/bench_gpu.py --device cuda --out bench_gpu.json
    python benchmarks/bench_gpu.py --device cpu --quick --budget-s 30   # seconds, small preset
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import logging
import math
import os
import platform
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from bench_pretrain import make_store

import cape
from cape.embed import EmbedSettings, embed_indices
from cape.losses import NTXentLoss
from cape.models import describe_model, forward_flops
from cape.pretrain import load_config
from cape.pretrain.config import PretrainConfig
from cape.pretrain.data import PairViewsDataset, make_loader
from cape.pretrain.encoder_io import build_model
from cape.pretrain.optim import make_optimizer
from cape.samplers import BatchKey, PairBatchSampler, PatientTable

# The paper: its encoder trained at ~850 ECG/s on one RTX 3090.
PAPER_ECGS_PER_S = 850.0
# Dense bf16 tensor-core peak, TFLOP/s (NVIDIA H200 datasheet: 1,979 "with sparsity" for
# the SXM part, 1,671 for NVL; dense is half). Matched against the device name, NVL first.
BF16_DENSE_PEAK_TFLOPS = {"H200 NVL": 835.5, "H200": 989.5}
PAPER_BATCH_PATIENTS = 512
WARMUP_STEPS = 2
MIN_TIMED_STEPS = 3
COMPILE_GUESS_S = 60.0  # budget set aside for a first torch.compile; replaced by what one took
GIB = 2**30

logger = logging.getLogger("bench_gpu")

Row = dict[str, Any]


class Budget:
    """Seconds left of ``--budget-s``; records what did not fit."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.start = time.perf_counter()
        self.skipped: list[str] = []

    def left(self) -> float:
        return self.seconds - (time.perf_counter() - self.start)

    def fits(self, what: str, cost_s: float) -> bool:
        if self.left() >= cost_s:
            return True
        self.skipped.append(f"{what}: needs ~{cost_s:.0f} s, {max(self.left(), 0):.0f} s left")
        return False


class ChainedEpochs(PairBatchSampler):
    """The pair sampler with its epochs chained, so that a small store acts as one long epoch.

    A real epoch is thousands of steps; on a few thousand ECGs it would be a
    handful, and each epoch start (one batch build with the queue empty) would
    weigh on the pipeline far more than in training.
    """

    def __iter__(self) -> Iterator[BatchKey]:
        for epoch in itertools.count(self.epoch):
            self.set_epoch(epoch)
            yield from super().__iter__()


def environment(device: torch.device) -> dict[str, Any]:
    info: dict[str, Any] = {
        "device": str(device),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "cape": cape.__version__,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": None,
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info["gpu"] = torch.cuda.get_device_name(device)
        info["gpu_memory_gib"] = round(props.total_memory / GIB, 1)
        # fp32 convolutions run in TF32 on tensor cores unless this is off (torch's default: on).
        info["cudnn_allow_tf32"] = torch.backends.cudnn.allow_tf32
        info["cudnn_benchmark"] = torch.backends.cudnn.benchmark
    return info


def bf16_peak(gpu: str | None, override: float | None) -> float | None:
    if override:
        return override
    for name, tflops in BF16_DENSE_PEAK_TFLOPS.items():
        if gpu and name in gpu:
            return tflops
    return None


def flops_per_ecg(config: PretrainConfig) -> dict[str, float]:
    """Counted as ``cape model-info`` does: training per ECG view, and encoder-only inference."""
    spec = config.encoder_spec()
    info = describe_model(spec, config.model.projection_hidden_dim, config.model.projection_dim)
    encoder = build_model(config).encoder
    return {
        "train_per_ecg": info.flops_per_pair_step / 2,
        "forward_per_ecg": info.flops_per_view,
        "embed_per_ecg": forward_flops(encoder, (1, spec.n_leads, spec.input_samples)),
        "encoder_parameters": info.encoder_parameters,
    }


def make_train_step(
    config: PretrainConfig, device: torch.device, bf16: bool, compiled: bool
) -> Callable[[torch.Tensor], None]:
    """One optimisation step as ``cape pretrain`` takes it (compile wraps the model only)."""
    model = build_model(config).to(device).train()
    optimizer = make_optimizer(model, config)
    loss_fn = NTXentLoss(config.temperature)
    # dynamic=False: a run trains at one batch shape, so each shape gets its own static graph.
    forward = torch.compile(model, dynamic=False) if compiled else model

    def train_step(views: torch.Tensor) -> None:
        half = views.shape[0] // 2
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            projections = forward(views)
        loss = loss_fn(projections[:half], projections[half:]).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return train_step


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(
    run: Callable[[], None],
    ecgs_per_call: int,
    seconds: float,
    device: torch.device,
    settle_s: float = 0.0,
) -> Row:
    """ECG/s of ``run`` after warm-up, timed for ``seconds`` (and >= MIN_TIMED_STEPS calls).

    ``settle_s`` runs on untimed after the warm-up: a loader's workers prefetch
    up to 4 batches each while the first steps run, and a timed window that
    started on that backlog would credit the pipeline with batches it built
    before the clock started.
    """
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for _ in range(WARMUP_STEPS):
        run()
    synchronize(device)
    warmup_s = time.perf_counter() - start
    settle_end = time.perf_counter() + settle_s
    while time.perf_counter() < settle_end:
        run()
    synchronize(device)
    steps, start = 0, time.perf_counter()
    while steps < MIN_TIMED_STEPS or time.perf_counter() - start < seconds:
        run()
        steps += 1
    synchronize(device)
    elapsed = time.perf_counter() - start
    row: Row = {
        "ecgs_per_s": steps * ecgs_per_call / elapsed,
        "step_s": elapsed / steps,
        "timed_steps": steps,
        "warmup_s": warmup_s,
    }
    if device.type == "cuda":
        row["peak_memory_gib"] = torch.cuda.max_memory_allocated(device) / GIB
    return row


def first_line(error: BaseException) -> str:
    return f"{type(error).__name__}: {(str(error).splitlines() or [''])[0]}"


def release(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


class Bench:
    """The measurements of one run, sharing the device, the store, the budget and the results."""

    def __init__(
        self, args: argparse.Namespace, device: torch.device, store: Any, started: float
    ) -> None:
        self.args = args
        self.device = device
        self.store = store
        self.budget = Budget(args.budget_s)
        self.budget.start = started  # building the store counts against the budget
        self.environment = environment(device)
        self.peak_tflops = bf16_peak(self.environment["gpu"], args.peak_tflops)
        self.seconds = args.seconds
        self.compile_s = COMPILE_GUESS_S if device.type == "cuda" else 0.0
        self.configs = {preset: load_config(preset) for preset in args.presets}
        self.flops = {preset: flops_per_ecg(c) for preset, c in self.configs.items()}
        self.train: list[Row] = []
        self.pipeline: list[Row] = []
        self.embed: list[Row] = []
        self.searches: list[Row] = []

    # ---- training step, model only ----------------------------------------------------------
    def train_row(self, preset: str, precision: str, mode: str, batch_patients: int) -> Row:
        row: Row = {"preset": preset, "precision": precision, "mode": mode}
        row.update(batch_patients=batch_patients, batch_ecgs=2 * batch_patients)
        what = f"train {preset} {precision} {mode} batch {batch_patients}"
        if mode == "compile" and self.device.type == "cpu" and not self.args.cpu_compile:
            row["status"] = "not measured on CPU (--cpu-compile to try)"
        elif mode == "eager-cbm" and self.device.type == "cpu":
            row["status"] = "CUDA only"
        elif precision == "bf16" and self.device.type == "cpu" and self.args.quick:
            row["status"] = "not measured on CPU in --quick (slow without bf16 units)"
        elif self.budget.fits(what, 2 * self.seconds + 2 + (mode == "compile") * self.compile_s):
            row.update(self.measure_train(preset, precision, mode, batch_patients))
            release(self.device)
        else:
            row["status"] = "skipped: budget"
        self.train.append(row)
        self.save()
        done = f"{row['ecgs_per_s']:.0f} ECG/s" if "ecgs_per_s" in row else row["status"]
        logger.info("%s: %s", what, done)
        return row

    def measure_train(self, preset: str, precision: str, mode: str, batch_patients: int) -> Row:
        config, flops = self.configs[preset], self.flops[preset]
        cudnn_benchmark = torch.backends.cudnn.benchmark
        torch.backends.cudnn.benchmark = mode == "eager-cbm" or cudnn_benchmark
        try:
            step = make_train_step(config, self.device, precision == "bf16", mode == "compile")
            views = torch.randn(2 * batch_patients, 8, config.crop_samples, device=self.device)
            result = timed(lambda: step(views), 2 * batch_patients, self.seconds, self.device)
        except torch.cuda.OutOfMemoryError:
            result = {"status": "out of memory"}
        except Exception as error:  # a compile that fails on this machine is a result too
            result = {"status": f"failed: {first_line(error)}"}
        else:
            if mode == "compile":
                self.compile_s = result["warmup_s"]
            tflops = result["ecgs_per_s"] * flops["train_per_ecg"] / 1e12
            result.update(status="measured", tflops=tflops)
            if self.peak_tflops:
                result["bf16_peak_fraction"] = tflops / self.peak_tflops
            if preset == "paper":
                result["x_paper"] = result["ecgs_per_s"] / PAPER_ECGS_PER_S
        finally:
            torch.backends.cudnn.benchmark = cudnn_benchmark
        return result

    def largest_batch(self, preset: str, precision: str) -> int | None:
        """Double the paper's batch until a step runs out of GPU memory; then try half-way back."""
        config = self.configs[preset]
        step = make_train_step(config, self.device, precision == "bf16", compiled=False)

        search: Row = {"preset": preset, "precision": precision, "tried": {}}
        self.searches.append(search)

        def fits(batch_patients: int) -> bool:
            outcome = "fits"
            try:
                views = torch.randn(2 * batch_patients, 8, config.crop_samples, device=self.device)
                step(views)
                synchronize(self.device)
            except torch.cuda.OutOfMemoryError:
                outcome = "out of memory"
            except RuntimeError as error:  # cuDNN may refuse tensors past 2**31 elements
                outcome = first_line(error)
            views = None  # drop the batch before emptying the cache
            release(self.device)
            search["tried"][batch_patients] = outcome
            return outcome == "fits"

        largest, batch = None, PAPER_BATCH_PATIENTS
        while batch <= self.args.max_batch_patients and self.budget.fits(
            f"largest batch {preset} {precision}: {batch}", 5 * self.seconds
        ):
            if not fits(batch):
                if largest is not None and fits(largest + largest // 2):
                    largest += largest // 2
                break
            largest, batch = batch, 2 * batch
        search["largest_patients"] = largest
        self.save()
        logger.info("largest batch %s %s: %s (%s)", preset, precision, largest, search["tried"])
        return largest

    # ---- training step fed by the pipeline -----------------------------------------------------
    def pipeline_rows(self, preset: str, batch_patients: int, reference: Row) -> None:
        config = self.configs[preset]
        bf16 = self.device.type == "cuda"  # what cape pretrain does (bf16: true, CUDA only)
        step = make_train_step(config, self.device, bf16, compiled=False)
        table = PatientTable.from_manifest(self.store.manifest, exclude_splits=())
        dataset = PairViewsDataset(self.store, config.augmenter(), seed=0)
        ecgs = 2 * batch_patients
        for workers in self.args.workers:
            row: Row = {
                "preset": preset,
                "precision": "bf16" if bf16 else "fp32",
                "workers": workers,
            }
            row.update(batch_ecgs=ecgs, model_only_ecgs_per_s=reference.get("ecgs_per_s"))
            self.pipeline.append(row)
            if not self.budget.fits(f"pipeline W={workers}", 3.5 * self.seconds + 5):
                row["status"] = "skipped: budget"
                continue
            sampler = ChainedEpochs(table, batch_patients, config.batching, seed=0)
            loader = make_loader(dataset, sampler, workers, 0, self.device.type == "cuda")
            batches = iter(loader)

            def fed_step(batches: Iterator[dict[str, torch.Tensor]] = batches) -> None:
                step(next(batches)["views"].to(self.device, non_blocking=True))

            def load_only(batches: Iterator[dict[str, torch.Tensor]] = batches) -> None:
                next(batches)

            fed = timed(fed_step, ecgs, self.seconds, self.device, settle_s=self.seconds / 2)
            alone = timed(load_only, ecgs, self.seconds / 2, torch.device("cpu"), self.seconds / 4)
            row.update(status="measured", pipeline_ecgs_per_s=fed["ecgs_per_s"])
            row.update(timed_steps=fed["timed_steps"], loader_ecgs_per_s=alone["ecgs_per_s"])
            row["per_worker_ecgs_per_s"] = alone["ecgs_per_s"] / workers
            if reference.get("ecgs_per_s"):
                row["ratio"] = fed["ecgs_per_s"] / reference["ecgs_per_s"]
            del batches, loader, fed_step, load_only  # stops the workers
            release(self.device)
            self.save()
            logger.info("pipeline W=%d: ratio %s", workers, fmt(row.get("ratio"), ".2f"))

    # ---- embedding -----------------------------------------------------------------------------
    def embed_rows(self, preset: str, batch_size: int) -> None:
        config, flops = self.configs[preset], self.flops[preset]
        workers = max(self.args.workers)
        row: Row = {"preset": preset, "batch": batch_size, "workers": workers}
        row["precision"] = "bf16" if self.device.type == "cuda" else "fp32"
        self.embed.append(row)
        if not self.budget.fits(f"embed {preset}", 4 * self.seconds + 10):
            row["status"] = "skipped: budget"
            return
        encoder = build_model(config).encoder.to(self.device).eval()
        batch = torch.randn(batch_size, 8, config.crop_samples, device=self.device)

        @torch.no_grad()
        def infer() -> None:
            enabled = self.device.type == "cuda"  # as embed_indices
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=enabled):
                encoder(batch)

        model = timed(infer, batch_size, self.seconds, self.device)
        settings = EmbedSettings(batch_size=batch_size, num_workers=workers)

        def embed_rate(n: int) -> float:
            """ECG/s of one embed_indices call on n ECGs (store indices repeated)."""
            indices = np.resize(np.arange(len(self.store)), n)
            start = time.perf_counter()
            embed_indices(encoder, self.store, indices, settings, self.device, progress=False)
            return n / (time.perf_counter() - start)

        # A first call of a batch per worker sizes the timed one to fill --seconds, so that
        # the workers' start-up, counted in both, weighs little in the second.
        probe_rate = embed_rate((workers + 2) * batch_size)
        path_rate = embed_rate(max(3 * batch_size, int(probe_rate * self.seconds)))
        row.update(status="measured", model_ecgs_per_s=model["ecgs_per_s"])
        row.update(path_ecgs_per_s=path_rate, ratio=path_rate / model["ecgs_per_s"])
        row["tflops"] = model["ecgs_per_s"] * flops["embed_per_ecg"] / 1e12
        logger.info("embed: model %.0f, path %.0f ECG/s", model["ecgs_per_s"], path_rate)
        if "peak_memory_gib" in model:
            row["peak_memory_gib"] = model["peak_memory_gib"]
        self.save()

    # ---- the plan ------------------------------------------------------------------------------
    def run(self) -> None:
        """Most telling first, so that a short budget drops the least."""
        args, cuda = self.args, self.device.type == "cuda"
        main_preset = "paper" if "paper" in args.presets else args.presets[0]
        others = [p for p in args.presets if p != main_preset]
        batch = args.batch_patients
        reference = self.train_row(main_preset, "bf16", "eager", batch)
        fp32 = self.train_row(main_preset, "fp32", "eager", batch)
        # The loaders fork their workers before anything is compiled (as in cape pretrain).
        self.pipeline_rows(main_preset, batch, reference if cuda else fp32)
        self.embed_rows(main_preset, args.embed_batch)
        release(self.device)
        self.train_row(main_preset, "bf16", "compile", batch)
        self.train_row(main_preset, "bf16", "eager-cbm", batch)
        for preset in others:
            self.train_row(preset, "bf16", "eager", batch)
            self.train_row(preset, "fp32", "eager", batch)
        largest: dict[str, int | None] = {}
        if cuda and not args.quick:
            for precision in ("bf16", "fp32"):
                largest[precision] = self.largest_batch(main_preset, precision)
                if largest[precision] and largest[precision] != batch:
                    self.train_row(main_preset, precision, "eager", largest[precision])
        self.train_row(main_preset, "fp32", "compile", batch)
        for precision, size in largest.items():
            if size and size != batch:
                self.train_row(main_preset, precision, "compile", size)

    def results(self) -> dict[str, Any]:
        args = self.args
        return {
            "environment": self.environment,
            "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "flops": self.flops,
            "flops_note": "cape model-info's count: conv + linear, 2 per multiply-add; "
            "training = 3x forward per view",
            "train": self.train,
            "pipeline": self.pipeline,
            "embed": self.embed,
            "largest_batch_search": self.searches,
            "skipped": self.budget.skipped,
            "summary": summary(self),
            "seconds": time.perf_counter() - self.budget.start,
        }

    def save(self) -> None:
        """Write the results so far: a run stopped from outside still leaves its rows."""
        if self.args.out:
            self.args.out.parent.mkdir(parents=True, exist_ok=True)
            self.args.out.write_text(json.dumps(self.results(), indent=2) + "\n")


def summary(bench: Bench) -> dict[str, Any]:
    measured = [r for r in bench.train if r.get("status") == "measured"]
    paper = [r for r in measured if r["preset"] == "paper" and r["precision"] == "bf16"]
    best = max(paper, key=lambda r: r["ecgs_per_s"], default=None)
    fed = [r for r in bench.pipeline if "ratio" in r]
    best_fed = max(fed, key=lambda r: r["ratio"], default=None)
    fastest = max((r["ecgs_per_s"] for r in measured), default=None)
    one_worker = next((r for r in bench.pipeline if "per_worker_ecgs_per_s" in r), None)
    out: dict[str, Any] = {
        "paper_reference_ecgs_per_s": PAPER_ECGS_PER_S,
        "bf16_dense_peak_tflops": bench.peak_tflops,
        "paper_bf16_best": best and {k: best.get(k) for k in ("mode", "batch_ecgs", "ecgs_per_s")},
        "paper_bf16_best_x_paper": best and best["ecgs_per_s"] / PAPER_ECGS_PER_S,
        "paper_bf16_best_peak_fraction": best and best.get("bf16_peak_fraction"),
        "goal_10x_paper_met": best is not None and best["ecgs_per_s"] >= 10 * PAPER_ECGS_PER_S,
        "pipeline_best_ratio": best_fed and best_fed["ratio"],
        "pipeline_best_workers": best_fed and best_fed["workers"],
        "goal_pipeline_0_9_met": best_fed is not None and best_fed["ratio"] >= 0.9,
    }
    if fastest and one_worker:
        # Workers (at the rate the first W measured reached per worker) to feed the fastest step.
        out["workers_to_feed_fastest"] = math.ceil(fastest / one_worker["per_worker_ecgs_per_s"])
    return out


def fmt(value: Any, spec: str) -> str:
    return format(value, spec) if isinstance(value, int | float) else "-"


def print_report(result: dict[str, Any]) -> None:
    env, flops, summ = result["environment"], result["flops"], result["summary"]
    print(
        f"device {env['device']} ({env['gpu'] or 'no GPU'}), torch {env['torch']}, "
        f"CUDA {env['cuda']}, cuDNN {env['cudnn']}, {env['cpu_count']} CPUs, CAPE {env['cape']}"
    )
    for preset, f in flops.items():
        print(
            f"{preset}: {f['encoder_parameters']:,} encoder parameters, "
            f"{f['forward_per_ecg'] / 1e9:.3f} GFLOP forward per ECG view, "
            f"training counted as 3x: {f['train_per_ecg'] / 1e9:.2f} GFLOP per ECG"
        )
    peak = summ["bf16_dense_peak_tflops"]
    print(
        "\nTraining step, model only (views already on the device; eager-cbm: eager with "
        "torch.backends.cudnn.benchmark on, which cape pretrain leaves off)"
    )
    print(
        f"{'preset':<7}{'prec':<6}{'mode':<9}{'ECGs':>7}{'ECG/s':>10}{'step s':>8}{'peak GiB':>9}"
        f"{'TFLOP/s':>9}{'of peak':>8}{'x 850':>7}  status"
    )
    for r in result["train"]:
        print(
            f"{r['preset']:<7}{r['precision']:<6}{r['mode']:<9}{r['batch_ecgs']:>7}"
            f"{fmt(r.get('ecgs_per_s'), '.0f'):>10}{fmt(r.get('step_s'), '.3f'):>8}"
            f"{fmt(r.get('peak_memory_gib'), '.1f'):>9}{fmt(r.get('tflops'), '.2f'):>9}"
            f"{fmt(r.get('bf16_peak_fraction'), '.1%'):>8}{fmt(r.get('x_paper'), '.1f'):>7}"
            f"  {r['status']}"
        )
    if result["pipeline"]:
        first = result["pipeline"][0]
        print(
            f"\nTraining step fed by the pipeline ({first['preset']}, {first['precision']}, "
            f"eager, {first['batch_ecgs']} ECGs; loader alone beside it)"
        )
        print(
            f"{'W':>3}{'pipeline':>10}{'model only':>12}{'ratio':>7}{'loader':>9}"
            f"{'per worker':>12}  status"
        )
        for r in result["pipeline"]:
            print(
                f"{r['workers']:>3}{fmt(r.get('pipeline_ecgs_per_s'), '.0f'):>10}"
                f"{fmt(r.get('model_only_ecgs_per_s'), '.0f'):>12}{fmt(r.get('ratio'), '.2f'):>7}"
                f"{fmt(r.get('loader_ecgs_per_s'), '.0f'):>9}"
                f"{fmt(r.get('per_worker_ecgs_per_s'), '.0f'):>12}  {r['status']}"
            )
    for r in result["embed"]:
        print(
            f"\nEmbedding ({r['preset']}, {r['precision']}, batch {r['batch']}, "
            f"{r['workers']} workers): model only {fmt(r.get('model_ecgs_per_s'), '.0f')} ECG/s, "
            f"cape.embed path {fmt(r.get('path_ecgs_per_s'), '.0f')} ECG/s, ratio "
            f"{fmt(r.get('ratio'), '.2f')}, {fmt(r.get('tflops'), '.2f')} TFLOP/s  {r['status']}"
        )
    for search in result["largest_batch_search"]:
        tried = ", ".join(f"{b}: {outcome}" for b, outcome in search["tried"].items())
        print(
            f"\nlargest batch, {search['preset']} {search['precision']}: "
            f"{search.get('largest_patients')} patients (tried {tried})"
        )
    print()
    best = summ["paper_bf16_best"]
    if best:
        print(
            f"paper encoder, bf16 training: {best['ecgs_per_s']:.0f} ECG/s ({best['mode']}, "
            f"{best['batch_ecgs']} ECGs) = {summ['paper_bf16_best_x_paper']:.1f}x the paper's "
            f"{PAPER_ECGS_PER_S:.0f} ECG/s on one RTX 3090 (goal >= 10x: "
            f"{'met' if summ['goal_10x_paper_met'] else 'not met'})"
        )
        if peak:
            print(
                f"  {fmt(summ['paper_bf16_best_peak_fraction'], '.1%')} of the GPU's dense bf16 "
                f"peak ({peak:.0f} TFLOP/s, NVIDIA datasheet)"
            )
    if summ["pipeline_best_ratio"] is not None:
        print(
            f"pipeline / model only: best {summ['pipeline_best_ratio']:.2f} at W = "
            f"{summ['pipeline_best_workers']} (goal >= 0.9: "
            f"{'met' if summ['goal_pipeline_0_9_met'] else 'not met'})"
        )
    if "workers_to_feed_fastest" in summ:
        print(f"workers to feed the fastest step measured: ~{summ['workers_to_feed_fastest']}")
    for line in result["skipped"]:
        print(f"skipped: {line}")
    print(f"total {result['seconds']:.0f} s of a {result['settings']['budget_s']:.0f} s budget")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--budget-s", type=float, default=420.0, help="all in, store included")
    parser.add_argument("--quick", action="store_true", help="tiny batches, small preset, one W")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    parser.add_argument("--workers", type=int, nargs="+", default=None, help="default 1 4 8 12")
    parser.add_argument("--presets", nargs="+", choices=["paper", "small"], default=None)
    parser.add_argument("--batch-patients", type=int, default=None, help="default 512 (quick: 8)")
    parser.add_argument("--embed-batch", type=int, default=None, help="default 2048 (quick: 16)")
    parser.add_argument("--max-batch-patients", type=int, default=16384, help="search cap")
    parser.add_argument("--seconds", type=float, default=None, help="timed seconds per row")
    parser.add_argument("--store-patients", type=int, default=None, help="default 4096 (quick 64)")
    parser.add_argument("--peak-tflops", type=float, default=None, help="bf16 dense peak")
    parser.add_argument("--cpu-compile", action="store_true", help="try torch.compile on CPU")
    args = parser.parse_args(argv)
    quick = args.quick
    args.workers = args.workers or ([1] if quick else [1, 4, 8, 12])
    args.presets = args.presets or (["small"] if quick else ["paper", "small"])
    args.batch_patients = args.batch_patients or (8 if quick else PAPER_BATCH_PATIENTS)
    args.embed_batch = args.embed_batch or (16 if quick else 2048)
    # Two cohorts: each must hold a batch (idb) and the store a few batches.
    args.store_patients = max(
        args.store_patients or (64 if quick else 4096), 8 * args.batch_patients
    )
    # Timed seconds per row: about a fiftieth of the budget, 0.3 to 8 s.
    args.seconds = args.seconds or min(8.0, max(0.3, args.budget_s / 50))
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(relativeCreated)6.0f ms  %(message)s")
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda but torch sees no CUDA GPU (torch.cuda.is_available())")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as directory:
        store = make_store(Path(directory) / "store", n_patients=args.store_patients)
        bench = Bench(args, device, store, started)
        bench.run()
    bench.save()
    result = bench.results()
    print_report(result)
    return result


if __name__ == "__main__":
    main()
