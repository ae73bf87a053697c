"""The loop's promises: best epoch restored, discriminative rates, a frozen warm-up,
scratch versus pretrained initialisation."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

import cape.finetune.train as train_module
from cape.finetune import load_finetune_config, run_finetune, select
from cape.finetune.checkpoint import load_checkpoint
from cape.finetune.model import FinetuneModel, build_head, make_optimizer, resolve_encoder
from cape.pretrain import load_encoder
from cape.store import CohortStore

from .conftest import ENCODER_SEED
from .helpers import tiny_settings

torch.set_num_threads(1)


def scripted(scores: list[float]) -> Iterator[float]:
    yield from scores


def test_early_stopping_keeps_the_best_epoch(
    store: CohortStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Validation scores are scripted (0.5, 0.9, 0.6, 0.55 -- best at epoch 2, patience 2):
    training stops after epoch 4 and the saved model and test predictions are those of
    an independent run that simply stops after epoch 2 (constant learning rate, so the
    two runs take the same steps).

    Bugs caught: the last epoch's weights kept instead of the best; the best weights
    snapshotted by reference (they would follow training); patience off by one
    (epochs_run 3 or 5); stopping ignored (6 epochs).
    """
    common = [*tiny_settings(tmp_path / "unused", store.path), "task=sex", "schedule=constant"]
    values = scripted([0.5, 0.9, 0.6, 0.55, 0.95, 0.99])
    monkeypatch.setattr(train_module, "score", lambda *_: next(values))
    stopped = run_finetune(
        load_finetune_config(None, [*common, "epochs=6", "patience=2", f"out_dir={tmp_path / 'a'}"])
    )
    assert stopped.epochs_run == 4 and stopped.best_epoch == 2 and stopped.best_val_score == 0.9
    assert [h["val_score"] for h in stopped.history] == [0.5, 0.9, 0.6, 0.55]

    values = scripted([0.1, 0.2])
    reference = run_finetune(
        load_finetune_config(None, [*common, "epochs=2", "patience=0", f"out_dir={tmp_path / 'b'}"])
    )
    assert reference.best_epoch == 2
    kept = load_file(str(tmp_path / "a" / "model.safetensors"))
    last = load_checkpoint(tmp_path / "a" / "checkpoints" / "last.pt")["model"]
    epoch_two = load_checkpoint(tmp_path / "b" / "checkpoints" / "last.pt")["model"]
    moved = max(float((last[k].double() - epoch_two[k].double()).abs().max()) for k in last)
    assert moved > 0  # epochs 3-4 changed the weights: keeping the best is not vacuous
    for name, tensor in epoch_two.items():
        assert torch.equal(kept[name], tensor), name
    predictions = [
        pd.read_parquet(tmp_path / run / "results" / "predictions.parquet") for run in "ab"
    ]
    np.testing.assert_array_equal(predictions[0]["y_pred"], predictions[1]["y_pred"])


def test_discriminative_learning_rates_reach_the_optimizer(
    store: CohortStore, encoder_file: Path, tmp_path: Path
) -> None:
    """Param groups: encoder parameters at encoder_lr, head parameters at lr, each once.
    Then a run with SGD and encoder_lr=0 leaves every encoder weight as loaded while the
    head moves.

    Bugs caught: one learning rate for all groups (in the optimizer or in the loop's
    schedule update); a parameter in no group or in two.
    """
    config = load_finetune_config(
        None,
        [
            *tiny_settings(tmp_path / "run", store.path),
            "init=pretrained",
            f"encoder={encoder_file}",
            "lr=0.003",
            "encoder_lr=0.0002",
            "optimizer=sgd",
            "momentum=0.0",
        ],
    )
    encoder, _, _ = resolve_encoder(config)
    model = FinetuneModel(encoder, build_head(encoder.feature_dim, (16,), 1, 0.2, 0), "regression")
    optimizer = make_optimizer(model, config)
    by_name: dict[str, set[int]] = {"encoder": set(), "head": set()}
    for group in optimizer.param_groups:
        expected = 0.0002 if group["name"] == "encoder" else 0.003
        assert group["lr"] == group["base_lr"] == expected
        ids = {id(p) for p in group["params"]}
        assert not ids & (by_name["encoder"] | by_name["head"])
        by_name[group["name"]] |= ids
    assert by_name["encoder"] == {id(p) for p in model.encoder.parameters()}
    assert by_name["head"] == {id(p) for p in model.head.parameters()}

    frozen = config.model_copy(update={"encoder_lr": 0.0, "patience": 0})
    run_finetune(frozen)
    final = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["model"]
    loaded, _ = load_encoder(encoder_file)
    for name, tensor in loaded.named_parameters():
        assert torch.equal(final[f"encoder.{name}"], tensor.detach()), name
    initial_head = build_head(loaded.feature_dim, (16,), 1, 0.2, config.seed).state_dict()
    assert any(not torch.equal(final[f"head.{k}"], v) for k, v in initial_head.items())


def test_probe_epochs_leave_the_encoder_untouched(
    store: CohortStore, encoder_file: Path, tmp_path: Path
) -> None:
    """After two linear-probe epochs the encoder -- weights and batch-norm statistics --
    is the loaded one, and Adam holds no state for it; the third epoch fine-tunes it.

    Bugs caught: encoder in train mode during the probe (running statistics move);
    gradients reaching the encoder (Adam state, weights move); the encoder never
    unfrozen.
    """
    settings = [
        *tiny_settings(tmp_path / "run", store.path),
        "init=pretrained",
        f"encoder={encoder_file}",
        "head=linear",
        "probe_epochs=2",
        "epochs=3",
        "patience=0",
        "task=age",
    ]
    config = load_finetune_config(None, settings)
    steps = len(select(store.manifest, "age").records["train"]) // config.batch_size
    snapshot = tmp_path / "after-probe.pt"

    def copy_checkpoint(global_step: int) -> None:
        if global_step == 2 * steps + 1:  # first step of epoch 3: last.pt is epoch 2's end
            shutil.copy(tmp_path / "run" / "checkpoints" / "last.pt", snapshot)

    run_finetune(config, step_callback=copy_checkpoint)
    loaded, _ = load_encoder(encoder_file)
    probed = load_checkpoint(snapshot)
    final = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert probed["epoch"] == 2
    for name, tensor in loaded.state_dict().items():
        assert torch.equal(probed["model"][f"encoder.{name}"], tensor), name
    encoder_ids = set(range(len([*loaded.parameters()])))  # encoder params come first
    assert not set(probed["optimizer"]["state"]) & encoder_ids
    assert any(
        not torch.equal(final["model"][f"encoder.{name}"], tensor)
        for name, tensor in loaded.state_dict().items()
    )
    assert [h["probe"] for h in final["history"]] == [True, True, False]


def test_scratch_differs_from_pretrained_and_matches_the_untrained_twin(
    encoder_file: Path, tmp_path: Path
) -> None:
    """``init: scratch`` keeps the pretrained encoder's architecture but not its weights;
    with the pretraining seed it is exactly pretraining's untrained encoder.

    Bugs caught: scratch silently loading the pretrained weights; a scratch
    architecture different from the encoder it is the baseline of.
    """
    base = [f"encoder={encoder_file}", f"seed={ENCODER_SEED}", f"out_dir={tmp_path}"]
    pretrained, window, origin = resolve_encoder(load_finetune_config(None, base))
    scratch, scratch_window, _ = resolve_encoder(
        load_finetune_config(None, [*base, "init=scratch"])
    )
    loaded, _ = load_encoder(encoder_file)
    twin, _ = load_encoder(encoder_file, untrained=True)
    assert window == scratch_window == 400 and scratch.spec == pretrained.spec
    assert origin["encoder_seed"] == ENCODER_SEED
    for name, tensor in loaded.state_dict().items():
        assert torch.equal(pretrained.state_dict()[name], tensor), name
        assert torch.equal(scratch.state_dict()[name], twin.state_dict()[name]), name
    differing = [
        name
        for name, tensor in loaded.named_parameters()
        if not torch.equal(scratch.state_dict()[name], tensor.detach())
    ]
    assert len(differing) == len([*loaded.parameters()])
    other_seed, _, _ = resolve_encoder(load_finetune_config(None, [*base[:1], "init=scratch"]))
    assert not torch.equal(other_seed.dense.weight, scratch.dense.weight)


def test_feature_standardisation_defaults_to_pretrained_encoders_only() -> None:
    """A scratch encoder gets no fixed feature z-scoring unless asked for.

    Bug caught: z-scoring a scratch encoder's features with statistics of its random
    initial state (std floored at 0.1 x median) made the head's input grow with every
    step of a learning encoder: on the regime map's realistic cell, a from-scratch age
    run at encoder lr 1e-3 started at a training loss of ~1,700 (standardised units)
    and a validation MAE of 127 y, where the same network without it starts near 1 and
    ~10 y.
    """
    from cape.finetune import load_finetune_config

    base = ["store=s", "task=age", "out_dir=o"]
    scratch = load_finetune_config(None, [*base, "init=scratch", "model.preset=small"])
    pretrained = load_finetune_config(None, [*base, "encoder=runs/x"])
    assert scratch.feature_standardisation is False
    assert pretrained.feature_standardisation is True
    forced = scratch.model_copy(update={"standardise_features": True})
    assert forced.feature_standardisation is True
    off = pretrained.model_copy(update={"standardise_features": False})
    assert off.feature_standardisation is False
