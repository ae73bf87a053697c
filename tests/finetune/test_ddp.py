"""Two gloo ranks with half batches follow one process with whole batches."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file

from cape.finetune import load_finetune_config, run_finetune
from cape.store import CohortStore

from .helpers import free_port, tiny_settings


def _worker(rank: int, world: int, port: int, settings: list[str]) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank),
    )
    torch.set_num_threads(1)
    run_finetune(load_finetune_config(None, settings))


@pytest.mark.slow
def test_two_rank_ddp_equals_one_process(store: CohortStore, tmp_path: Path) -> None:
    """Group norm and no dropout make every sample's forward independent of its batch, so
    DDP (gradients averaged over ranks, each rank's loss a mean over its half batch) must
    follow one process on the whole batch: the same steps, the same validation scores and
    early-stopping choice, and weights equal up to float64 summation-order rounding.

    SGD, whose step is linear in the gradient, so a gradient scaled by the world size
    would show (Adam would normalise it away); float64 rounding of ~1e-16 per operation
    through a few steps stays far below the 1e-9 relative tolerance, while a wrong
    gradient moves weights by ~lr x gradient.

    Bugs caught: ranks reading the same half of each batch; validation predictions
    gathered in the wrong order (other scores, other best epoch); feature statistics
    computed from one rank's share only.
    """
    settings = [
        *tiny_settings(tmp_path / "unused", store.path),
        "task=age",
        "epochs=2",
        "patience=0",
        "model.norm=group",
        "model.dropout=0.0",
        "head_dropout=0.0",
        "precision=float64",
        "optimizer=sgd",
        "lr=0.001",
        "encoder_lr=0.001",
        "deterministic=true",
    ]
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    reference = run_finetune(load_finetune_config(None, [*settings, f"out_dir={single}"]))
    mp.spawn(_worker, args=(2, free_port(), [*settings, f"out_dir={ddp}"]), nprocs=2)
    one, two = (load_file(str(run / "model.safetensors")) for run in (single, ddp))
    for name, tensor in one.items():
        torch.testing.assert_close(two[name], tensor, rtol=1e-9, atol=1e-12, msg=name)
    log = [json.loads(line) for line in (ddp / "log.jsonl").read_text().splitlines()]
    scores = [r["val_score"] for r in log if r["kind"] == "epoch"]
    assert scores == pytest.approx([h["val_score"] for h in reference.history], rel=1e-9)
    assert json.loads((ddp / "provenance.json").read_text())["world_size"] == 2
