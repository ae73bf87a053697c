"""End to end on a real cohort store: CLI, resume, and DDP (gloo, 2 processes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from cape.cli import main
from cape.errors import CapeError
from cape.pretrain import build_model, load_config, load_encoder, pretrain
from cape.pretrain.checkpoint import load_checkpoint
from cape.pretrain.train import store_fingerprint
from cape.store import CohortStore

from .helpers import real_store, tiny_overrides
from .test_losses import free_port

torch.set_num_threads(1)

COHORTS = {"a": 10, "b": 10}


class Crash(Exception):
    pass


def _crash_at_2(global_step: int) -> None:
    if global_step == 2:
        raise Crash


def test_cli_run_and_resume_on_a_store(tmp_path: Path) -> None:
    """A run killed and resumed through the CLI ends bit-identical to a straight one.

    Exact only on CPU with one intra-op thread (several threads may order a
    kernel's reductions differently between calls): the settings pin both.
    """
    store = real_store(tmp_path / "store", COHORTS)
    common = [*tiny_overrides(tmp_path / "unused"), "epochs=1", "checkpoint_every_steps=1"]
    assert "threads=1" in common and "device=cpu" in common
    # Uninterrupted, through the CLI.
    args = ["pretrain", "--store", str(store.path), "--out", str(tmp_path / "straight")]
    for item in common:
        args += ["--set", item]
    assert main(args) == 0
    # Killed after two steps (checkpoint at step 1... 2 not yet written), resumed by the CLI.
    config = load_config(None, [*common, f"store={store.path}", f"out_dir={tmp_path / 'resumed'}"])
    with pytest.raises(Crash):
        pretrain(config, step_callback=_crash_at_2)
    resume_args = [
        a if a != str(tmp_path / "straight") else str(tmp_path / "resumed") for a in args
    ]
    assert main([*resume_args, "--resume"]) == 0

    straight = load_checkpoint(tmp_path / "straight" / "checkpoints" / "last.pt")
    resumed = load_checkpoint(tmp_path / "resumed" / "checkpoints" / "last.pt")
    assert straight["global_step"] == resumed["global_step"] >= 3
    for name, tensor in straight["model"].items():
        torch.testing.assert_close(resumed["model"][name], tensor, rtol=0, atol=0, msg=name)
    encoder, _ = load_encoder(tmp_path / "resumed")
    assert encoder(torch.randn(1, 8, 800)).shape == (1, 64)


def test_model_info_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["model-info"]) == 0
    out = capsys.readouterr().out
    assert "paper" in out and "small" in out and "7,677,088" in out


# ---- distributed ---------------------------------------------------------------------------


def _ddp_worker(rank: int, world: int, port: int, settings: list[str]) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank),
    )
    torch.set_num_threads(1)
    pretrain(load_config(None, settings))


@pytest.mark.slow
def test_two_rank_ddp_training_equals_one_process(tmp_path: Path) -> None:
    """Group norm and no dropout make every sample's forward batch-independent, so two
    ranks with half batches each must follow one process with the whole batch.

    Exact by construction rather than by a tolerance read off one machine: float64
    parameters and inputs, deterministic algorithms, and SGD, whose update is linear in
    the gradient (Adam normalises it away, so a gradient scaled by the world size --
    mutation: ``loss * world_size`` in the loop -- would pass under Adam). What may differ
    is the order of summation in the gradient all-reduce and in the batched convolutions:
    float64 rounding of ~1e-16 relative per operation, through a few steps of a network
    of depth ~10, stays orders of magnitude below 1e-9 relative, while a wrong gradient
    moves weights by ~lr x gradient = 1e-2 x O(1e-2).
    """
    store = real_store(tmp_path / "store", COHORTS)
    settings = [
        *tiny_overrides(tmp_path / "unused"),
        "epochs=2",
        f"store={store.path}",
        "model.norm=group",
        "model.dropout=0.0",
        "batching=idb",
        "precision=float64",
        "optimizer=sgd",
        "lr=0.01",
        "deterministic=true",
    ]
    single_dir, ddp_dir = tmp_path / "single", tmp_path / "ddp"
    pretrain(load_config(None, [*settings, f"out_dir={single_dir}"]))
    mp.spawn(_ddp_worker, args=(2, free_port(), [*settings, f"out_dir={ddp_dir}"]), nprocs=2)
    single = load_checkpoint(single_dir / "checkpoints" / "last.pt")
    ddp = load_checkpoint(ddp_dir / "checkpoints" / "last.pt")
    assert single["global_step"] == ddp["global_step"] >= 2
    assert len(ddp["rng"]) == 2
    init = build_model(load_config(None, settings)).state_dict()
    moved = max(
        float((single["model"][name].double() - init[name].double()).abs().max()) for name in init
    )
    assert moved > 1e-5  # training moved the weights: the comparison below is not vacuous
    for name, tensor in single["model"].items():
        assert tensor.dtype == torch.float64, name
        torch.testing.assert_close(ddp["model"][name], tensor, rtol=1e-9, atol=1e-12, msg=name)
    provenance = json.loads((ddp_dir / "provenance.json").read_text())
    assert provenance["world_size"] == 2


@pytest.mark.slow
def test_torchrun_smoke(tmp_path: Path) -> None:
    """``torchrun --standalone``: the rendezvous binds port 0 itself, so no port is
    chosen here and then taken by another process before torchrun binds it."""
    store = real_store(tmp_path / "store", COHORTS)
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "cape",
        "pretrain",
        "--store",
        str(store.path),
        "--out",
        str(tmp_path / "run"),
    ]
    for item in [*tiny_overrides(tmp_path / "run"), "epochs=1"]:
        command += ["--set", item]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "run" / "encoder.safetensors").is_file()
    log = (tmp_path / "run" / "log.jsonl").read_text().splitlines()
    assert json.loads(log[-1])["kind"] == "epoch"


def test_store_fingerprint_sees_signals_rewritten_under_the_same_manifest(tmp_path: Path) -> None:
    """A store whose shards are rewritten in place (here: every sample doubled, as a
    re-ingest with another gain would do) keeps its manifest; the pretraining
    fingerprint must still change, and a resume on it must be refused.

    Mutation caught: ``store_fingerprint`` hashing the manifest only (as
    ``CohortStore.fingerprint`` once did) -- the resume would silently continue on
    other signals.
    """
    store = real_store(tmp_path / "store", COHORTS)
    before, manifest_before = store_fingerprint(store), store.fingerprint()
    assert store_fingerprint(CohortStore.open(store.path)) == before  # deterministic
    config = load_config(
        None,
        [
            *tiny_overrides(tmp_path / "run"),
            "epochs=2",
            "checkpoint_every_steps=1",
            f"store={store.path}",
            f"out_dir={tmp_path / 'run'}",
        ],
    )
    with pytest.raises(Crash):
        pretrain(config, step_callback=_crash_at_2)
    assert (tmp_path / "run" / "checkpoints" / "last.pt").is_file()
    for shard in sorted((store.path / "shards").glob("*.i16")):
        samples = np.memmap(shard, dtype=np.int16, mode="r+")
        samples[:] = samples * 2
        samples.flush()
        del samples
    changed = CohortStore.open(store.path)
    assert changed.fingerprint() != manifest_before  # CohortStore.fingerprint samples signals too
    assert store_fingerprint(changed) != before
    with pytest.raises(CapeError, match="different store"):
        pretrain(config, resume=True)
