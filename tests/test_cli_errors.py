"""The `cape` command: help texts, command order, fast start, and odd inputs that end in a
one-line error instead of a traceback or a wrong result."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

import cape.commands
from cape.cli import COMMAND_ORDER, build_parser, command_modules, main


def _parsers(parser: argparse.ArgumentParser, name: str = "cape"):
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from _parsers(sub, f"{name} {sub_name}")


def test_help_texts_are_complete() -> None:
    """Bug caught: `(default: None)` after options without a default, a literal `%%` in
    descriptions (argparse only %-formats help strings), options without any help."""
    for name, parser in _parsers(build_parser()):
        text = parser.format_help()
        assert "(default: None)" not in text, name
        assert "(default: False)" not in text and "(default: [])" not in text, name
        assert "%%" not in text, name
        command = name.split(" ")[1].replace("-", "_") if " " in name else ""
        if command not in COMMAND_ORDER:
            continue  # commands being written right now by others: their own tests
        for action in parser._actions:
            if action.option_strings and action.dest != "help":
                assert action.help, f"{name} {action.option_strings[0]} has no help"


def test_commands_listed_in_workflow_order() -> None:
    actions = build_parser()._actions
    names = next(a for a in actions if isinstance(a, argparse._SubParsersAction)).choices
    listed = [n.replace("-", "_") for n in names]
    known = [n for n in listed if n in COMMAND_ORDER]
    assert known == [n for n in COMMAND_ORDER if n in listed]
    assert listed[: len(known)] == known  # new modules follow the known ones
    assert listed[:5] == ["simulate", "ingest", "split", "describe", "pretrain"]


def test_a_new_command_module_is_discovered_and_appended(tmp_path: Path, monkeypatch) -> None:
    """The module contract (register(subparsers), func(args) -> int) stays as it was."""
    (tmp_path / "zz_hello.py").write_text(
        "def register(subparsers):\n"
        "    p = subparsers.add_parser('zz-hello', help='say hello')\n"
        "    p.set_defaults(func=lambda args: 7)\n"
    )
    monkeypatch.setattr(cape.commands, "__path__", [*cape.commands.__path__, str(tmp_path)])
    assert command_modules()[-1] == "zz_hello"
    assert main(["zz-hello"]) == 7
    sys.modules.pop("cape.commands.zz_hello", None)


def test_help_imports_nothing_heavy() -> None:
    """`cape --help` took 2.6 s because every command module imported torch, pandas or
    scipy at the top; they now import them when they run."""
    code = (
        "import sys, cape.cli; cape.cli.build_parser(); "
        "print(sorted(m for m in ('torch', 'pandas', 'numpy', 'scipy', 'sklearn', 'pydantic') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_simulate_preset_names_match_the_simulator() -> None:
    from cape.commands.simulate import PRESET_NAMES
    from cape.simulator.presets import PRESETS

    assert sorted(PRESET_NAMES) == sorted(PRESETS)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["split", "S", "--fractions", "0.5", "0.5", "nan"],
            "--fractions: must be in [0, 1], got nan",
        ),
        (["split", "S", "--fractions", "-1", "1", "1"], "--fractions: must be in [0, 1], got -1"),
        (["split", "S", "--fractions", "a", "0", "1"], "expected a number in [0, 1], got 'a'"),
        (
            ["embed", "--checkpoint", "c", "--store", "s", "--out", "o", "--batch-size", "0"],
            "argument --batch-size: must be at least 1, got 0",
        ),
        (
            ["embed", "--checkpoint", "c", "--store", "s", "--out", "o", "--windows", "0"],
            "argument --windows: must be at least 1, got 0",
        ),
        (
            ["embed", "--checkpoint", "c", "--store", "s", "--out", "o", "--workers", "-1"],
            "argument --workers: must be at least 0, got -1",
        ),
        (
            [
                "ingest",
                "wfdb",
                "d",
                "--cohort",
                "c",
                "--mains",
                "50",
                "--out",
                "s",
                "--workers",
                "-3",
            ],
            "argument --workers: must be at least 1, got -3",
        ),
        (
            ["identifiability", "--features", "f", "--folds", "1"],
            "argument --folds: must be at least 2, got 1",
        ),
        (
            ["simulate", "--out", "o", "--workers", "0"],
            "argument --workers: must be at least 1, got 0",
        ),
        (
            ["embed", "--checkpoint", "c", "--store", "s", "--out", "o", "--cohort", "a,,b"],
            "empty name",
        ),
        (
            ["embed", "--checkpoint", "c", "--store", "s", "--out", "o", "--split", "train,tset"],
            "argument --split: unknown split 'tset' (did you mean 'test'?); splits are train, "
            "val, test",
        ),
        (["split", "S", "--seed", "-1"], "argument --seed: must be at least 0, got -1"),
    ],
)
def test_bad_numbers_are_argparse_errors(argv, message, capsys) -> None:
    """Bug caught: these reached the library and ended in a traceback (or, for --workers
    -3, in a pool of -3 processes)."""
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2
    assert message in capsys.readouterr().err


def test_split_fractions_must_sum_to_one_and_a_typo_creates_nothing(tmp_path, capsys) -> None:
    """Bug caught: `cape split stores/mian` made the folder and a lock file, then failed."""
    typo = tmp_path / "stores" / "mian"
    assert main(["split", str(typo)]) == 1
    assert capsys.readouterr().err == f"cape: error: store {typo} does not exist\n"
    assert not (tmp_path / "stores").exists()
    assert main(["split", str(typo), "--fractions", "0.5", "0.5", "0.5"]) == 1
    assert capsys.readouterr().err == (
        "cape: error: --fractions 0.5 0.5 0.5: must sum to 1, they sum to 1.5\n"
    )


@pytest.mark.parametrize(
    "given",
    [
        ["--cohort", "a", "--cohort", "b"],
        ["--cohort", "a,b"],
        ["--cohorts", "a", "b"],  # the older form
        ["--cohort", "a", "--cohorts", "b"],
    ],
)
def test_one_way_to_list_cohorts(given) -> None:
    parser = build_parser()
    for command in (
        ["embed", "--checkpoint", "c", "--store", "s", "--out", "o"],
        ["evaluate", "--protocol", "ood", "--features", "m=d", "--out", "o"],
        ["identifiability", "--features", "f"],
        ["retrieval", "--features", "f"],
    ):
        assert parser.parse_args(command + given).cohorts == ["a", "b"], command
    assert parser.parse_args(["identifiability", "--features", "f"]).cohorts is None
    args = parser.parse_args(["retrieval", "--features", "f", "--split", "val,test"])
    assert args.split == ["val", "test"]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["pretrain", "--config", "small", "--set", "epocs=3", "--print-config"],
            "cape: error: --set 'epocs=3': unknown setting 'epocs' (did you mean 'epochs'?)",
        ),
        (
            ["pretrain", "--config", "smal", "--print-config"],
            "cape: error: config smal is neither a file nor a preset (paper, small) "
            "(did you mean 'small'?)",
        ),
        (
            ["model-info", "--config", "small", "--set", "model.nrom=group"],
            "cape: error: --set 'model.nrom=group': unknown setting 'model.nrom' "
            "(did you mean 'model.norm'?)",
        ),
        (
            ["pretrain", "--set", "epochs=0", "--print-config"],
            "cape: error: defaults with --set overrides: invalid pretraining config: epochs: "
            "should be greater than or equal to 1, got 0",
        ),
        (
            ["study", "check", "demo", "--set", "pretrain.settings.epocs=3"],
            "cape: error: study demo.yaml with --set: pretrain.settings: unknown key 'epocs' "
            "(did you mean 'epochs'?)",
        ),
        (
            ["demo", "--set", "pretrain.setings.epochs=3"],
            "cape: error: --set 'pretrain.setings.epochs=3': pretrain has no key 'setings' "
            "(did you mean 'settings'?)",
        ),
        (
            ["simulate", "--out", "o", "--scale", "-1"],
            "cape: error: invalid simulate option: --scale: should be greater than 0, got -1.0",
        ),
        (
            [
                "ingest",
                "wfdb",
                "d",
                "--cohort",
                "c",
                "--mains",
                "50",
                "--out",
                "s",
                "--qc",
                "max_qrs_amplitud_mv=8",
            ],
            "cape: error: --qc 'max_qrs_amplitud_mv=8': unknown QC setting "
            "'max_qrs_amplitud_mv' (did you mean 'max_qrs_amplitude_mv'?) (all of them: "
            "docs/data-contract.md)",
        ),
        (
            ["study", "run", "demo", "--out", "o", "--force", "pretrian"],
            "cape: error: --force pretrian: unknown stage (did you mean 'pretrain'?) "
            "(stages: simulate, ingest, pretrain, embed, evaluate, label-efficiency, report)",
        ),
    ],
)
def test_set_and_name_errors_are_one_line(argv, expected, capsys, tmp_path, monkeypatch) -> None:
    """Bug caught: pydantic's multi-line text with URLs, or all 40 setting names, instead
    of the key, the problem and the closest name."""
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err == expected + "\n"
    assert list(tmp_path.iterdir()) == []  # nothing written before the error


def test_head_params_are_checked_before_any_work() -> None:
    from cape.commands.evaluate import check_head_params
    from cape.errors import CapeError

    check_head_params("mlp", {"max_epochs": 3, "hidden_sizes": (8,)}, ["age", "sex"])
    with pytest.raises(
        CapeError,
        match=r"^linear head \(age\): unknown parameter 'Cc' "
        r"\(did you mean 'C'\?\)$",
    ):
        check_head_params("linear", {"Cc": 0.1}, ["age"])
    with pytest.raises(
        CapeError,
        match=r"^linear head \(sex\): unknown parameter 'max_epochs' "
        r"\(it takes: C, max_iter, relative_std_floor\)$",
    ):
        check_head_params("linear", {"max_epochs": 3}, ["sex"])


def test_reader_messages_name_the_flags(tmp_path: Path) -> None:
    """Bug caught: `pass the option metadata=PATH` where the command line takes --metadata."""
    from cape.errors import CapeError
    from cape.readers import get_reader

    with pytest.raises(CapeError, match=r"pass --metadata PATH \(study option metadata: PATH\)"):
        get_reader("wfdb", tmp_path, "c")
    with pytest.raises(CapeError, match=r"--sampling-rate \(study option sampling_rate\) 250"):
        get_reader("ptbxl", tmp_path, "c", sampling_rate=250)


def test_ingest_windows_shorter_than_quality_control_allows(tmp_path, capsys) -> None:
    """Bug caught: `--window-seconds 2` ingested nothing: every window was quarantined as
    too_short by the 7 s quality-control minimum."""
    argv = ["ingest", "wfdb", str(tmp_path), "--cohort", "c", "--mains", "50"]
    argv += ["--out", str(tmp_path / "store"), "--window-seconds", "2"]
    assert main(argv) == 1
    assert capsys.readouterr().err == (
        "cape: error: --window-seconds 2: shorter than the 7 s that quality control requires "
        "(--qc min_seconds): every window would be quarantined as too_short\n"
    )
    assert not (tmp_path / "store").exists()


def test_embed_on_a_device_torch_does_not_have(tmp_path, capsys, monkeypatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    argv = ["embed", "--checkpoint", "c", "--store", "s", "--out", str(tmp_path / "f")]
    assert main([*argv, "--device", "cuda:1"]) == 1
    assert capsys.readouterr().err == (
        "cape: error: --device cuda:1: this torch sees no CUDA device; use cpu or auto\n"
    )


def test_percent_signs_in_descriptions_render_once() -> None:
    from cape.cli import HelpFormatter

    parser = argparse.ArgumentParser(
        prog="x", description="CODE-15%% and 95%% CIs", formatter_class=HelpFormatter
    )
    assert "CODE-15% and 95% CIs" in parser.format_help()
