"""A fine-tuning run killed and resumed ends bit-equal to an uninterrupted one."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from cape.cli import main
from cape.finetune import load_finetune_config, run_finetune, select
from cape.finetune.checkpoint import load_checkpoint
from cape.store import CohortStore

from .helpers import tiny_settings

torch.set_num_threads(1)


class Killed(Exception):
    pass


@pytest.mark.parametrize(
    "mid_epoch",
    [False, pytest.param(True, marks=pytest.mark.slow)],
    ids=["after-epoch-1", "mid-epoch-2"],
)
def test_resume_after_a_kill_is_bit_equal(
    store: CohortStore, encoder_file: Path, tmp_path: Path, mid_epoch: bool
) -> None:
    """Kill during epoch 2 (resuming from the end of epoch 1, or from a mid-epoch
    checkpoint), resume through the CLI: weights, early-stopping history and test
    predictions equal the uninterrupted run's exactly.

    Exact by construction: one thread on the CPU runs the same kernels in the same
    order, so float32 arithmetic repeats bit for bit (float64 is not needed); dropout on (encoder and head) so the
    restored RNG state matters, masking on so the per-position augmentation seeds do.

    Bugs caught: RNG state not checkpointed or not restored (other dropout masks); the
    sampler restarting the epoch instead of continuing at the checkpoint's step; the
    best-epoch state or the epoch's loss not carried across the kill.
    """
    settings = [
        *tiny_settings(tmp_path / "unused", store.path),
        "init=pretrained",
        f"encoder={encoder_file}",
        "task=diagnoses",
        "epochs=3",
        "patience=0",
        "deterministic=true",
        f"checkpoint_every_steps={2 if mid_epoch else 0}",
    ]
    straight = run_finetune(load_finetune_config(None, [*settings, f"out_dir={tmp_path / 'a'}"]))
    steps = len(select(store.manifest, "diagnoses").records["train"]) // 8
    # Mid-epoch: a step after a checkpoint, so the resume redoes one step of epoch 2.
    kill_at = steps + (3 if (steps + 2) % 2 == 0 else 2) if mid_epoch else steps + 2

    def kill(global_step: int) -> None:
        if global_step == kill_at:
            raise Killed

    with pytest.raises(Killed):
        run_finetune(
            load_finetune_config(None, [*settings, f"out_dir={tmp_path / 'b'}"]), step_callback=kill
        )
    saved = load_checkpoint(tmp_path / "b" / "checkpoints" / "last.pt")
    assert saved["global_step"] == (kill_at - 1 if mid_epoch else steps)
    assert saved["step_in_epoch"] == (kill_at - 1 - steps if mid_epoch else 0)
    args = ["finetune", "--resume", "--out", str(tmp_path / "b")]
    for item in settings:
        args += ["--set", item]
    assert main(args) == 0

    first, second = (load_checkpoint(tmp_path / run / "checkpoints" / "last.pt") for run in "ab")
    assert first["global_step"] == second["global_step"] == 3 * steps
    assert first["history"] == second["history"]
    for name, tensor in first["model"].items():
        assert torch.equal(second["model"][name], tensor), name
    kept = [load_file(str(tmp_path / run / "model.safetensors")) for run in "ab"]
    for name, tensor in kept[0].items():
        assert torch.equal(kept[1][name], tensor), name
    predictions = [
        pd.read_parquet(tmp_path / run / "results" / "predictions.parquet") for run in "ab"
    ]
    pd.testing.assert_frame_equal(predictions[0], predictions[1])
    assert straight.epochs_run == 3


@pytest.mark.slow
def test_loader_workers_do_not_change_the_result(store: CohortStore, tmp_path: Path) -> None:
    """Crops and masks are seeded by (seed, epoch, position), not by worker: one worker
    process gives the predictions of the in-process loader exactly.

    Bug caught: augmentation drawn from a per-worker generator (results would depend on
    the number of workers and differ after a resume with another count).
    """
    outputs = []
    for workers in (0, 1):
        out = tmp_path / f"workers-{workers}"
        settings = [*tiny_settings(out, store.path), "task=sex", f"num_workers={workers}"]
        run_finetune(load_finetune_config(None, settings))
        outputs.append(pd.read_parquet(out / "results" / "predictions.parquet"))
    pd.testing.assert_frame_equal(outputs[0], outputs[1])
