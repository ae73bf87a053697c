"""Embedding throughput: ``cape embed``'s path (store -> windows -> encoder) vs the model alone.

Builds a store of N random ECGs, then in one run times (a) the encoder's
forward pass on pre-made tensors of the same batch size and (b) the full
embedding path (store reads, central 7 s window, DataLoader, forward), and
prints ECG/s and their ratio. The goal is a ratio >= 0.9: reading the store
is never the bottleneck.

    python benchmarks/bench_embed.py --preset small --n 2048 --workers 1
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from cape.embed import EmbedSettings, embed_indices
from cape.models import ResNet1dEncoder, encoder_spec
from cape.store import create_store_from_arrays


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="small", choices=["small", "paper"])
    parser.add_argument("--n", type=int, default=2048, help="ECGs embedded")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--workers", type=int, default=1, help="DataLoader workers")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args()
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
        n_batches = max(1, args.n // args.batch_size)
        with torch.no_grad():
            encoder(batch)  # warm-up
            start = time.perf_counter()
            for _ in range(n_batches):
                encoder(batch)
            model_rate = n_batches * args.batch_size / (time.perf_counter() - start)
        settings = EmbedSettings(batch_size=args.batch_size, num_workers=args.workers)
        start = time.perf_counter()
        embed_indices(encoder, store, np.arange(args.n), settings, progress=False)
        pipeline_rate = args.n / (time.perf_counter() - start)
        print(
            f"torch {torch.__version__}, preset {args.preset}, batch {args.batch_size}, "
            f"{args.threads} thread(s), {args.workers} worker(s), {args.n} ECGs"
        )
        print(f"  model only (pre-made tensors): {model_rate:8.1f} ECG/s")
        print(f"  cape embed path (store):       {pipeline_rate:8.1f} ECG/s")
        print(f"  ratio: {pipeline_rate / model_rate:.2f}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
