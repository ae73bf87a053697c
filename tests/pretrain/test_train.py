"""The training loop on an in-memory store: outputs, exact resume, errors, encoder loading."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from cape.errors import CapeError
from cape.pretrain import build_model, load_config, load_encoder, pretrain
from cape.pretrain.checkpoint import load_checkpoint
from cape.pretrain.train import store_fingerprint

from .helpers import fake_store, tiny_overrides

torch.set_num_threads(1)

COHORTS = {"a": 14, "b": 12}


class Crash(Exception):
    """Stands in for a process killed mid-epoch."""


def crash_at(step: int):
    def callback(global_step: int) -> None:
        if global_step == step:
            raise Crash

    return callback


def final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(run_dir / "checkpoints" / "last.pt")["model"]


def test_run_writes_the_documented_layout(tmp_path: Path) -> None:
    store = fake_store(COHORTS)
    config = load_config(None, tiny_overrides(tmp_path / "run"))
    run_dir = pretrain(config, store=store)
    for name in (
        "config.yaml",
        "provenance.json",
        "log.jsonl",
        "checkpoints/last.pt",
        "encoder.safetensors",
    ):
        assert (run_dir / name).is_file(), name
    assert load_config(run_dir / "config.yaml") == config
    records = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    epochs = [r for r in records if r["kind"] == "epoch"]
    steps = [r for r in records if r["kind"] == "step"]
    assert [r["epoch"] for r in epochs] == [0, 1] and steps
    for record in records:
        for key in (
            "loss",
            "ecgs_per_s",
            "single_cohort_fraction",
            "positive_similarity",
            "negative_similarity",
        ):
            assert key in record and record[key] == record[key]  # present, not NaN
        assert record["single_cohort_fraction"] == 1.0  # idb
    provenance = json.loads((run_dir / "provenance.json").read_text())
    assert provenance["store_fingerprint"] == store_fingerprint(store)
    assert provenance["store_fingerprint"].startswith(store.fingerprint() + "-")
    assert provenance["steps_per_epoch"] == epochs[0]["steps"]
    checkpoint = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert checkpoint["epoch"] == 2 and checkpoint["step_in_epoch"] == 0


def test_killed_mid_epoch_and_resumed_equals_uninterrupted(tmp_path: Path) -> None:
    """Bit-identical weights after a crash and resume -- on CPU with one thread.

    Exactness needs the same floating-point operations in the same order: with
    several intra-op threads a CPU kernel may split its reductions differently
    from one call to the next, so the comparison (``atol=0``) is only valid
    with ``threads=1`` on ``device=cpu``, which the settings pin.
    """
    store = fake_store(COHORTS)
    settings = [*tiny_overrides(tmp_path / "x"), "epochs=3", "checkpoint_every_steps=2"]
    assert "threads=1" in settings and "device=cpu" in settings
    straight = load_config(None, [*settings, f"out_dir={tmp_path / 'straight'}"])
    pretrain(straight, store=store)
    steps_per_epoch = json.loads((tmp_path / "straight" / "provenance.json").read_text())[
        "steps_per_epoch"
    ]
    assert steps_per_epoch >= 3  # so that step 5 is mid-epoch

    interrupted = load_config(None, [*settings, f"out_dir={tmp_path / 'interrupted'}"])
    with pytest.raises(Crash):
        pretrain(interrupted, store=store, step_callback=crash_at(5))
    saved = load_checkpoint(tmp_path / "interrupted" / "checkpoints" / "last.pt")
    assert saved["global_step"] == 4 and saved["step_in_epoch"] != 0  # mid-epoch checkpoint
    pretrain(interrupted, store=store, resume=True)

    expected, resumed = (
        final_weights(tmp_path / "straight"),
        final_weights(tmp_path / "interrupted"),
    )
    assert expected.keys() == resumed.keys()
    for name in expected:
        torch.testing.assert_close(resumed[name], expected[name], rtol=0, atol=0, msg=name)
    first = build_model(straight).state_dict()
    assert any(not torch.equal(first[k], expected[k]) for k in expected)  # it did train


def test_existing_run_needs_resume_and_a_compatible_checkpoint(tmp_path: Path) -> None:
    store = fake_store(COHORTS)
    settings = [*tiny_overrides(tmp_path / "run"), "epochs=1"]
    pretrain(load_config(None, settings), store=store)
    with pytest.raises(CapeError, match="pass --resume"):
        pretrain(load_config(None, settings), store=store)
    with pytest.raises(CapeError, match=r"different encoder architecture.*norm"):
        pretrain(load_config(None, [*settings, "model.norm=group"]), store=store, resume=True)
    with pytest.raises(CapeError, match="different store"):
        pretrain(load_config(None, settings), store=fake_store(COHORTS, seed=5), resume=True)
    with pytest.raises(CapeError, match="other settings: lr"):
        pretrain(load_config(None, [*settings, "lr=0.5"]), store=store, resume=True)
    # Nothing to continue in a new directory: --resume starts the run from the beginning.
    fresh = load_config(None, [*tiny_overrides(tmp_path / "new"), "epochs=1"])
    assert (pretrain(fresh, store=store, resume=True) / "checkpoints" / "last.pt").is_file()


def test_load_encoder_trained_untrained_and_from_each_file(tmp_path: Path) -> None:
    store = fake_store(COHORTS)
    config = load_config(None, [*tiny_overrides(tmp_path / "run"), "epochs=1"])
    run_dir = pretrain(config, store=store)
    encoder, loaded_config = load_encoder(run_dir)
    assert loaded_config == config and not encoder.training
    saved = load_file(str(run_dir / "encoder.safetensors"))
    for name, tensor in encoder.state_dict().items():
        torch.testing.assert_close(tensor, saved[name])
    from_file, _ = load_encoder(run_dir / "encoder.safetensors")
    from_checkpoint, _ = load_encoder(run_dir / "checkpoints" / "last.pt")
    untrained, _ = load_encoder(run_dir, untrained=True)
    initial = build_model(config).encoder.state_dict()
    x = torch.randn(2, 8, config.crop_samples)
    with torch.no_grad():
        features = encoder(x)
        torch.testing.assert_close(from_file(x), features)
        torch.testing.assert_close(from_checkpoint(x), features)
        assert features.shape == (2, 64)
        assert not torch.allclose(untrained(x), features)
    for name, tensor in untrained.state_dict().items():
        torch.testing.assert_close(tensor, initial[name])
    with pytest.raises(CapeError, match="not a pretraining run directory"):
        load_encoder(tmp_path)
    with pytest.raises(CapeError, match="does not exist"):
        load_encoder(tmp_path / "nothing")


@pytest.mark.parametrize("batching", ["random", "idb-mask"])
def test_mixed_batchings_train_and_report_cohort_mixing(tmp_path: Path, batching: str) -> None:
    store = fake_store({"a": 10, "b": 10, "c": 10}, seed=2)
    config = load_config(
        None, [*tiny_overrides(tmp_path / "run"), "epochs=1", f"batching={batching}"]
    )
    run_dir = pretrain(config, store=store)
    records = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    epoch = next(r for r in records if r["kind"] == "epoch")
    assert epoch["single_cohort_fraction"] < 1.0
    assert epoch["loss"] == epoch["loss"]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (["batch_patients=500"], "larger than the"),
        (["cohorts=[a, nowhere]"], "not in the store"),
        (["exclude_splits=[train]"], "no patient with at least two ECGs"),
    ],
)
def test_clear_errors_for_bad_selections(tmp_path: Path, settings: list[str], message: str) -> None:
    config = load_config(None, [*tiny_overrides(tmp_path / "run"), *settings])
    with pytest.raises(CapeError, match=message):
        pretrain(config, store=fake_store(COHORTS))


def test_missing_store_errors(tmp_path: Path) -> None:
    with pytest.raises(CapeError, match="needs a store"):
        pretrain(load_config(None, tiny_overrides(tmp_path / "run")))
    config = load_config(None, [*tiny_overrides(tmp_path / "run"), f"store={tmp_path / 'none'}"])
    with pytest.raises(CapeError, match="does not exist"):
        pretrain(config)


def first_step_record(tmp_path: Path, store: object, batching: str) -> dict:
    """The log line of step 1 (``log_every_steps=1``); the run stops right after it."""
    settings = [*tiny_overrides(tmp_path / batching), "epochs=1", "log_every_steps=1"]
    config = load_config(None, [*settings, f"batching={batching}"])
    with pytest.raises(Crash):
        pretrain(config, store=store, step_callback=crash_at(1))  # type: ignore[arg-type]
    lines = (tmp_path / batching / "log.jsonl").read_text().splitlines()
    return json.loads(lines[0])


def test_idb_mask_restricts_negatives_to_the_cohort(tmp_path: Path) -> None:
    """``idb-mask`` passes the batch's cohorts to the loss.

    Mutation caught: the loop never passing cohorts (``cohorts = None``), so
    ``idb-mask`` silently trains as ``random``. ``random`` and ``idb-mask``
    share the batch plan, the seed and so the initial weights and first batch;
    the only difference at step 1 is the mask. Removing the other cohorts'
    negatives from the softmax denominator strictly lowers every row's loss
    when the batch mixes cohorts (checked: ``single_cohort_fraction == 0``),
    so the masked loss must be strictly below the unmasked one; under the
    mutation the two runs are bit-identical.
    """
    store = fake_store({"a": 10, "b": 10, "c": 10}, seed=2)
    unmasked = first_step_record(tmp_path, store, "random")
    masked = first_step_record(tmp_path, store, "idb-mask")
    assert unmasked["single_cohort_fraction"] == masked["single_cohort_fraction"] == 0.0
    assert masked["positive_similarity"] == unmasked["positive_similarity"]  # same batch
    assert masked["loss"] < unmasked["loss"]
    assert masked["negative_similarity"] != unmasked["negative_similarity"]


def read_log(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]


def test_logged_learning_rate_follows_one_warmup_and_one_cosine_over_the_run(
    tmp_path: Path,
) -> None:
    """The rate of every step, as logged, is the documented schedule over the *run*.

    By hand, with S steps per epoch, E = 3 epochs, W = S warm-up steps and
    D = E*S - W decay steps: step k (1-based) of the warm-up gets lr * k / W,
    decay step j (0-based) gets min_lr + (lr - min_lr) (1 + cos(pi j / (D - 1))) / 2.
    Float64 arithmetic on both sides: relative 1e-12.

    Mutations caught: a cosine restarted every epoch (the per-step array built
    from ``steps_per_epoch`` and tiled), a warm-up counted in steps instead of
    epochs, or the rate indexed by the step within the epoch instead of the
    global step.
    """
    lr, min_lr = 0.002, 0.0002
    settings = [
        *tiny_overrides(tmp_path / "run"),
        "epochs=3",
        "log_every_steps=1",
        "warmup_epochs=1",
        f"lr={lr}",
        f"min_lr={min_lr}",
        "schedule=cosine",
    ]
    run_dir = pretrain(load_config(None, settings), store=fake_store(COHORTS))
    steps_per_epoch = json.loads((run_dir / "provenance.json").read_text())["steps_per_epoch"]
    assert steps_per_epoch >= 3
    total, warmup = 3 * steps_per_epoch, steps_per_epoch
    decay = total - warmup
    expected = [lr * k / warmup for k in range(1, warmup + 1)]
    expected += [
        min_lr + (lr - min_lr) * (1 + math.cos(math.pi * j / (decay - 1))) / 2 for j in range(decay)
    ]
    steps = [r for r in read_log(run_dir) if r["kind"] == "step"]
    assert [r["global_step"] for r in steps] == list(range(1, total + 1))
    assert [r["lr"] for r in steps] == pytest.approx(expected, rel=1e-12)
    assert steps[-1]["lr"] == pytest.approx(min_lr, rel=1e-12)
    # What the optimiser used last is what was logged.
    optimizer = load_checkpoint(run_dir / "checkpoints" / "last.pt")["optimizer"]
    for group in optimizer["param_groups"]:
        assert group["lr"] == pytest.approx(expected[-1], rel=1e-12)


def test_a_few_epochs_learn_patient_identity(tmp_path: Path) -> None:
    """On a tiny store whose patients have their own waveforms, six epochs lower the
    loss and separate positives from negatives.

    Measured on this store (float32, one thread): epoch loss 1.93 -> 0.85 and the
    positive-minus-negative cosine gap 0.004 -> 0.42. Under the mutation below:
    loss 2.00 -> 1.98, gap -0.003 at the end. The thresholds (last loss below
    0.75 x the first; last gap above 0.2) sit halfway, far from either, so
    another CPU's float32 rounding cannot move the run across them.

    Mutation caught: a loop-side pairing bug -- the second views shifted by one
    patient (``projections[n:].roll(1, 0)``), so the "positives" are two
    different patients. Every unit test of the loss and the sampler passes then.
    """
    store = fake_store({"a": 16, "b": 16}, seed=5, ecgs_per_patient=(2, 3))
    config = load_config(None, [*tiny_overrides(tmp_path / "run"), "epochs=6"])
    epochs = [r for r in read_log(pretrain(config, store=store)) if r["kind"] == "epoch"]
    assert len(epochs) == 6
    first, last = epochs[0], epochs[-1]
    assert last["loss"] < 0.75 * first["loss"]
    gap = [r["positive_similarity"] - r["negative_similarity"] for r in epochs]
    assert gap[-1] > 0.2 and gap[-1] > gap[0] + 0.2
