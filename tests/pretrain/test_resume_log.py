"""Resume edge cases: before the first checkpoint, and the killed run's later log lines."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch

from cape.pretrain import load_config, pretrain
from cape.pretrain.checkpoint import load_checkpoint

from .helpers import real_store, tiny_overrides

torch.set_num_threads(1)


class Crash(Exception):
    pass


def _crash_at(step: int):  # type: ignore[no-untyped-def]
    def callback(global_step: int) -> None:
        if global_step == step:
            raise Crash

    return callback


def _steps(log: Path) -> list[tuple[str, int]]:
    return [(r["kind"], r["global_step"]) for r in map(json.loads, log.read_text().splitlines())]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return real_store(tmp_path_factory.mktemp("store") / "s", {"a": 10, "b": 10})


def _config(store, out: Path, *extra: str):  # type: ignore[no-untyped-def]
    settings = [*tiny_overrides(out), "epochs=1", "log_every_steps=1", *extra]
    return load_config(None, [*settings, f"store={store.path}"])


def test_resume_before_the_first_checkpoint_starts_fresh(
    store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    straight = _config(store, tmp_path / "straight")
    pretrain(straight)
    killed = _config(store, tmp_path / "killed", "checkpoint_every_steps=0")
    with pytest.raises(Crash):
        pretrain(killed, step_callback=_crash_at(2))
    assert not (tmp_path / "killed" / "checkpoints" / "last.pt").exists()
    with caplog.at_level(logging.WARNING, logger="cape.pretrain.train"):
        pretrain(_config(store, tmp_path / "killed"), resume=True)
    assert "no checkpoint yet" in caplog.text
    a = load_checkpoint(tmp_path / "straight" / "checkpoints" / "last.pt")
    b = load_checkpoint(tmp_path / "killed" / "checkpoints" / "last.pt")
    for name, tensor in a["model"].items():
        torch.testing.assert_close(b["model"][name], tensor, rtol=0, atol=0, msg=name)
    assert _steps(tmp_path / "killed" / "log.jsonl") == _steps(tmp_path / "straight" / "log.jsonl")


def test_resume_drops_the_killed_runs_later_log_lines(store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pretrain(_config(store, tmp_path / "straight", "checkpoint_every_steps=2"))
    config = _config(store, tmp_path / "killed", "checkpoint_every_steps=2")
    with pytest.raises(Crash):
        pretrain(config, step_callback=_crash_at(3))  # checkpoint at 2, step 3 logged
    assert ("step", 3) in _steps(tmp_path / "killed" / "log.jsonl")
    pretrain(config, resume=True)
    steps = _steps(tmp_path / "killed" / "log.jsonl")
    assert steps == _steps(tmp_path / "straight" / "log.jsonl")
    assert len(steps) == len(set(steps))
