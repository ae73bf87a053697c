"""``cape label-efficiency``: bad settings get one line naming the setting; a run of one method."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from cape.cli import main
from cape.errors import CapeError
from cape.label_efficiency import load_config
from cape.store import CohortStore


def error_line(capsys: pytest.CaptureFixture[str], args: list[str]) -> str:
    assert main(["label-efficiency", *args]) != 0
    err = capsys.readouterr().err.strip()
    assert err.startswith("cape: error: ") and "\n" not in err, err
    return err


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--fractions", "0.1", "0"], "fractions must be in (0, 1], got [0.0]"),
        (["--fractions", "0.1", "1.5"], "fractions must be in (0, 1], got [1.5]"),
        (["--fractions", "0.1", "0.1"], "fractions repeat"),
        (["--methods", "lineer"], "unknown method 'lineer' (did you mean 'linear'?)"),
        (["--seeds", "1", "1"], "seeds must be distinct"),
        (["--set", "finetune.seed=3"], "['seed'] are set by the protocol"),
        (["--set", "fractons=[0.5]"], "unknown label-efficiency setting 'fractons'"),
        (["--set", "task.x=1"], "unknown label-efficiency setting 'task.x'"),
        (["--set", "finetune.epocs=2", "--store", "s", "--cohort", "a"], "epocs"),
    ],
)
def test_bad_settings_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str], expected: str
) -> None:
    """Bug caught: a bad fraction or method name accepted (or a pydantic dump printed)."""
    err = error_line(capsys, [*args, "--out", str(tmp_path / "out")])
    assert expected in err


def test_missing_inputs_one_line(
    capsys: pytest.CaptureFixture[str], store: CohortStore, tmp_path: Path
) -> None:
    """Bug caught: a missing cohort, encoder or unknown cohort failing with a traceback."""
    out = ["--out", str(tmp_path / "out")]
    assert "--cohort NAME" in error_line(capsys, ["--store", str(store.path), *out])
    err = error_line(capsys, ["--store", str(store.path), "--cohort", "harbor", *out])
    assert "need the pretrained encoder: --encoder PATH" in err
    err = error_line(
        capsys,
        ["--store", str(store.path), "--cohort", "harbr", "--methods", "scratch", *out],
    )
    assert "['harbr'] are not in the store" in err
    assert not (tmp_path / "out").exists()


def test_defaults() -> None:
    """Bug caught: defaults that are not the issue's 1 %, 10 %, 100 % and four methods."""
    config = load_config(None, ["fractions=[1, 0.01]", "methods=[scratch, linear]"])
    assert config.fractions == [0.01, 1.0]
    assert config.methods == ["linear", "scratch"]  # table order, whatever the given order
    default = load_config()
    assert default.fractions == [0.01, 0.1, 1.0]
    assert default.methods == ["linear", "mlp", "finetune", "scratch"]
    with pytest.raises(CapeError, match="finetune"):
        load_config(None, ["finetune.store=x"])


@pytest.mark.slow
def test_frozen_methods_from_the_command_line(
    capsys: pytest.CaptureFixture[str], store: CohortStore, encoder_file: Path, tmp_path: Path
) -> None:
    """Bug caught: the command not reaching the protocol, or printing no table; age task."""
    out = tmp_path / "cli"
    args = [
        "label-efficiency",
        "--store",
        str(store.path),
        "--encoder",
        str(encoder_file),
        "--cohort",
        "harbor",
        "--task",
        "age",
        "--methods",
        "linear",
        "mlp",
        "--fractions",
        "0.5",
        "1",
        "--seeds",
        "0",
        "--device",
        "cpu",
        "--threads",
        "1",
        "--no-progress",
        "--set",
        "mlp.max_epochs=3",
        "--set",
        "bootstrap_resamples=20",
        "--out",
        str(out),
    ]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "| linear |" in printed and "MAE (years)" in printed
    results = pd.read_csv(out / "results.csv")
    assert set(results["method"]) == {"linear", "mlp", "mean-predictor"}
    assert (results["status"] == "ok").all() and results["value"].gt(0).all()
    assert main(args) == 0
    assert "6 skipped" in capsys.readouterr().out
