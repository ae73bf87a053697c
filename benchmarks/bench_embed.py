"""Embedding throughput: ``cape embed``'s path (store -> windows -> encoder) vs the model alone.

Builds a store of N random ECGs, then, ``--repeats`` times and in alternating
order, times (a) the encoder's forward pass on pre-made tensors of the same
batch size and (b) :func:`cape.embed.embed_indices` (store reads, central 7 s
window, DataLoader workers, forward). The embed path pays a start-up (worker
fork, first batch) once per call; it is measured apart by also embedding a
single batch: ``start-up = t(1 batch) - per-batch time``, and the sustained
rate is ``(N - batch) / (t(N) - t(1 batch))``. Prints medians with their range:
model-only ECG/s, the embed path's sustained ECG/s, their ratio (goal >= 0.9:
reading the store is never the bottleneck) and the start-up seconds.

    python benchmarks/bench_embed.py --preset small --n 2048 --workers 1 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from cape.embed import EmbedSettings, embed_indices
from cape.models import ResNet1dEncoder, encoder_spec
from cape.store import create_store_from_arrays


def _span(values: list[float], digits: int = 1) -> str:
    return (
        f"{statistics.median(values):.{digits}f} "
        f"(range {min(values):.{digits}f}-{max(values):.{digits}f})"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="small", choices=["small", "paper"])
    parser.add_argument("--n", type=int, default=2048, help="ECGs embedded per timed call")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--workers", type=int, default=1, help="DataLoader workers")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--repeats", type=int, default=3, help="timed pairs")
    parser.add_argument("--quick", action="store_true", help="tiny store (smoke test)")
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.batch_size, args.repeats = 12, 4, 2
    if args.n < 2 * args.batch_size:
        raise SystemExit("--n must hold at least two batches (start-up is measured apart)")
    torch.set_num_threads(args.threads)
    root = Path(tempfile.mkdtemp())
    try:
        rng = np.random.default_rng(0)
        signals = rng.normal(scale=0.3, size=(args.n, 8, 4000)).astype(np.float32)
        manifest = pd.DataFrame(
            {
                "record_id": [str(k) for k in range(args.n)],
                "patient_id": [str(k // 2) for k in range(args.n)],
                "cohort": "bench",
                "valid_length": 4000,
            }
        )
        store = create_store_from_arrays(root / "store", signals, manifest)
        del signals
        encoder = ResNet1dEncoder(encoder_spec(args.preset, input_samples=2800)).eval()
        batch = torch.randn(args.batch_size, 8, 2800)
        n_batches = args.n // args.batch_size
        settings = EmbedSettings(batch_size=args.batch_size, num_workers=args.workers)
        everything, one_batch = np.arange(args.n), np.arange(args.batch_size)

        def model_only() -> float:
            with torch.no_grad():
                start = time.perf_counter()
                for _ in range(n_batches):
                    encoder(batch)
                return n_batches * args.batch_size / (time.perf_counter() - start)

        def embed_seconds(indices: np.ndarray) -> float:
            start = time.perf_counter()
            embed_indices(encoder, store, indices, settings, progress=False)
            return time.perf_counter() - start

        with torch.no_grad():
            encoder(batch)  # warm-up
        embed_seconds(one_batch)
        model_rates, embed_rates, ratios, startups = [], [], [], []
        for repeat in range(args.repeats):
            order = ("model", "embed") if repeat % 2 == 0 else ("embed", "model")
            for which in order:
                if which == "model":
                    model_rates.append(model_only())
                else:
                    full, single = embed_seconds(everything), embed_seconds(one_batch)
                    per_batch = (full - single) / (args.n / args.batch_size - 1)
                    embed_rates.append((args.n - args.batch_size) / (full - single))
                    startups.append(single - per_batch)
            ratios.append(embed_rates[-1] / model_rates[-1])
        load = os.getloadavg()
        print(
            f"torch {torch.__version__}, preset {args.preset}, batch {args.batch_size}, "
            f"{args.threads} thread(s), {args.workers} worker(s), {args.n} ECGs, "
            f"{args.repeats} repeats; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
        )
        print(f"  model only (pre-made tensors):   {_span(model_rates)} ECG/s")
        print(f"  cape embed path, sustained:      {_span(embed_rates)} ECG/s")
        print(f"  ratio embed / model:             {_span(ratios, 2)}")
        print(f"  embed start-up (workers, first batch): {_span(startups, 2)} s per call")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
