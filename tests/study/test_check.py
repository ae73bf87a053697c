"""`cape study check`: every section of a study is checked before anything runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cape.cli import main as cape_main
from cape.errors import CapeError
from cape.study.check import STUDY_TASKS, check_study, key_problem
from cape.study.loading import bundled_studies, bundled_study, load_study


@pytest.mark.parametrize("name", bundled_studies())
def test_every_bundled_study_passes(name: str) -> None:
    """A bundled study the check rejects could never run (or the check is wrong)."""
    config = load_study(name)
    assert check_study(config).problems == []


def test_bundled_studies_are_all_found() -> None:
    names = bundled_studies()
    assert {"demo", "demo-quick", "public", "regime-map", "artefact-sweep"} <= set(names)
    assert len(names) == len(list((Path(__file__).parents[2] / "src/cape/studies").glob("*.yaml")))


def _study(tmp_path: Path, base: str = "demo-quick", **edits: object) -> Path:
    """A copy of a bundled study with dotted-path edits, written as YAML."""
    values = yaml.safe_load(bundled_study(base) or "")
    for key, value in edits.items():
        node = values
        parts = key.split("__")
        for part in parts[:-1]:
            node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
        node[parts[-1]] = value
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


# One typo per section: (edits, the line the check must print).
TYPOS = [
    ({"simulate__preset": "dmo"}, "simulate.preset: 'dmo' is neither a simulator preset"),
    (
        {"simulate__artefact_strenght": 2.0},
        "simulate: unknown key 'artefact_strenght' (did you mean 'artefact_strength'?)",
    ),
    ({"simulate__scale": -1}, "simulate.scale: should be greater than 0, got -1"),
    ({"splits__fractions": [0.5, 0.5, 0.5]}, "splits: fractions must sum to 1"),
    (
        {"pretrain__settings__epocs": 3},
        "pretrain.settings: unknown key 'epocs' (did you mean 'epochs'?)",
    ),
    (
        {"pretrain__settings__model": {"nrom": "group"}},
        "pretrain.settings.model: unknown key 'nrom' (did you mean 'norm'?)",
    ),
    (
        {"pretrain__runs__1__settings": {"batching": "ibd"}},
        "pretrain.runs.1.settings.batching: should be 'random', 'idb' or 'idb-mask', got 'ibd' (did you mean 'idb'?)",
    ),
    (
        {"pretrain__settings__cohorts": ["harbour"]},
        "pretrain.settings.cohorts: the study has no cohort 'harbour' (did you mean 'harbor'?)",
    ),
    (
        {"pretrain__settings__masking": {"min_seconds": 0.6}},
        "pretrain.settings.masking: masking.min_seconds (0.6) exceeds",
    ),
    (
        {"pretrain__base": "smal"},
        "pretrain.base: config smal is neither a file nor a preset (paper, small) (did you mean 'small'?)",
    ),
    ({"pretrain__runs__0__seeds": [-1]}, "pretrain.runs.0.seeds: seeds must be >= 0, got -1"),
    ({"embed__batch_sise": 3}, "embed: unknown key 'batch_sise' (did you mean 'batch_size'?)"),
    (
        {"evaluate__ood__head__learnig_rate": 0.1},
        "evaluate.ood.head: unknown key 'learnig_rate' (did you mean 'learning_rate'?)",
    ),
    (
        {"evaluate__ood__head__kind": "linear"},
        "evaluate.ood.head: max_epochs, patience, learning_rate, hidden_sizes need kind: mlp",
    ),
    (
        {"evaluate__ood__train_cohort": "harbour"},
        "evaluate.ood.train_cohort: the study has no cohort 'harbour' (did you mean 'harbor'?)",
    ),
    (
        {"evaluate__ood__compare": ["random", "ibd"]},
        "evaluate.ood.compare: no pretraining run 'ibd' (did you mean 'idb'?)",
    ),
    (
        {"evaluate__ood__tasks": ["agee"]},
        "evaluate.ood.tasks: unknown task 'agee' (did you mean 'age'?)",
    ),
    ({"evaluate__ood__runs": 0}, "evaluate.ood.runs: should be greater than or equal to 1, got 0"),
    (
        {"evaluate__composition": {"sizes": [0, 10, 10]}},
        "evaluate.composition: sizes must be positive",
    ),
    (
        {"report__tsne_per_cohrt": 5},
        "report: unknown key 'tsne_per_cohrt' (did you mean 'tsne_per_cohort'?)",
    ),
    (
        {"sweep": {"key": "simulate.artefact_strenght", "values": [1, 2]}},
        "sweep.key: simulate has no key 'artefact_strenght' (did you mean 'artefact_strength'?)",
    ),
    (
        {"sweep": {"key": "simulate.artefact_strength", "values": [1, -2]}},
        "sweep cell artefact_strength=-2: simulate.artefact_strength: should be greater than or equal to 0, got -2",
    ),
    (
        {"sweep": {"key": "pretrain.settings.batching", "values": ["random", "ibd"]}},
        "sweep cell batching=ibd: pretrain.settings.batching: should be 'random', 'idb' or 'idb-mask', got 'ibd'",
    ),
]


@pytest.mark.parametrize(("edits", "expected"), TYPOS, ids=[e[1].split(":")[0] for e in TYPOS])
def test_a_typo_in_each_section_is_one_line_naming_file_and_key(
    tmp_path: Path, edits: dict, expected: str
) -> None:
    """Bug caught: a setting that is only read when its stage starts (an hour in) is not
    checked up front, or its message is pydantic's multi-line dump with URLs."""
    path = _study(tmp_path, **edits)
    with pytest.raises(CapeError) as caught:
        load_study(path)
    lines = str(caught.value).splitlines()
    assert any(line.startswith(f"study {path}: {expected}") for line in lines), lines
    assert all(line.startswith(f"study {path}: ") for line in lines)
    assert "https://" not in str(caught.value) and "pydantic" not in str(caught.value)


def test_cohort_sources_and_reader_options(tmp_path: Path) -> None:
    """A real-cohort study: a misspelt reader option is a problem; a missing source is a
    note for `check` (the data may come later) and a problem when running."""
    source = tmp_path / "ptbxl"
    source.mkdir()
    values = {
        "name": "real",
        "cohorts": [
            {"name": "ptbxl", "format": "ptbxl", "source": str(source), "mains": 50},
            {"name": "code", "format": "code15", "source": str(tmp_path / "nope"), "mains": 60},
        ],
        "pretrain": {"runs": [{"name": "idb"}]},
        "evaluate": {"ood": {"train_cohort": "ptbxl"}},
    }
    path = tmp_path / "real.yaml"
    path.write_text(yaml.safe_dump(values))
    result = check_study(load_study(path))
    assert result.problems == []
    assert result.notes == [
        f"cohorts.1.source: {tmp_path / 'nope'} does not exist (cohort code; set it with "
        "--set cohorts.1.source=PATH)"
    ]
    assert check_study(load_study(path), cohorts_exist=True).problems == result.notes
    values["cohorts"][0]["options"] = {"sampling_rte": 500}
    path.write_text(yaml.safe_dump(values))
    with pytest.raises(
        CapeError,
        match=r"cohorts\.0\.options: unknown ptbxl reader option "
        r"'sampling_rte' \(did you mean 'sampling_rate'\?\)",
    ):
        load_study(path)


def test_set_keys_are_checked_before_values() -> None:
    assert key_problem("pretrain.settings.anything.below") is None  # checked with the values
    assert key_problem("pretrain.runs.0.seeds") is None
    assert key_problem("pretrain.setings.epochs") == (
        "pretrain has no key 'setings' (did you mean 'settings'?)"
    )
    assert key_problem("evaluate.ood.head.kindd") == (
        "evaluate.ood.head has no key 'kindd' (did you mean 'kind'?)"
    )
    assert key_problem("nonsense") == (
        "the study has no key 'nonsense' (keys: name, sweep, simulate, cohorts, splits, "
        "ingest_workers, ingest_qc, pretrain, embed, evaluate, label_efficiency, report)"
    )
    with pytest.raises(
        CapeError,
        match=r"^--set 'pretrain\.runs\.9\.seeds=\[1\]': pretrain\.runs "
        r"is a list of 2: '9' is not an index 0-1$",
    ):
        load_study("demo-quick", ["pretrain.runs.9.seeds=[1]"])
    with pytest.raises(CapeError, match="is not a YAML value"):
        load_study("demo-quick", ["evaluate.ood.runs=[1"])


def test_the_heads_cohort_test_split_rule_is_kept() -> None:
    with pytest.raises(
        CapeError,
        match=r"pretrain\.runs\.0\.settings\.exclude_splits: .* keeps "
        "the test split of 'harbor'",
    ):
        load_study("demo-quick", ["pretrain.runs.0.settings={exclude_splits: {serra: [test]}}"])


def test_study_tasks_match_the_protocols() -> None:
    """STUDY_TASKS is a copy (no torch at check time); a new task must reach it."""
    from cape.protocols.tasks import TASKS

    assert sorted(STUDY_TASKS) == sorted(TASKS)


def test_check_command_and_no_torch(tmp_path: Path, capsys) -> None:
    """`cape study check` prints one ok line, or one `cape: error:` line per problem; it
    does not import torch (the check must take seconds, not a torch import)."""
    assert cape_main(["study", "check", "demo"]) == 0
    assert capsys.readouterr().out.startswith("study demo: ok (6 pretraining runs;")
    path = _study(tmp_path, pretrain__settings__epocs=3, evaluate__ood__train_cohort="harbour")
    assert cape_main(["study", "check", str(path)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"cape: error: study {path}: pretrain.settings: unknown key 'epocs' (did you mean "
        "'epochs'?)",
        f"cape: error: study {path}: evaluate.ood.train_cohort: the study has no cohort "
        "'harbour' (did you mean 'harbor'?) (cohorts: harbor, serra, jade, meadow, linden)",
    ]
    code = (
        "import sys; from cape.cli import main; "
        "assert main(['study', 'check', 'regime-map']) == 0; print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines()[-1] == "False"


def test_run_checks_the_cohort_sources_before_any_stage(tmp_path: Path, capsys) -> None:
    """Bug caught: a study whose data is not in place started (or made its run folder)."""
    out = tmp_path / "run"
    assert cape_main(["study", "run", "public", "--out", str(out)]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"cape: error: study public: cohorts.{i}.source: SET-ME-cohorts.{i}.source does not "
        f"exist (cohort {name}; set it with --set cohorts.{i}.source=PATH)"
        for i, name in enumerate(["code15", "ptbxl"])
    ]
    assert not out.exists()


def test_study_command_lists_every_stage_and_bundled_study() -> None:
    """`cape study --help` texts name the runner's stages and every bundled study.

    Bug caught: a stage or bundled study added without updating the hand-written lists
    in the help (label-efficiency was missing from both).
    """
    from cape.commands.study import STAGE_NAMES, _bundled
    from cape.study.loading import bundled_studies
    from cape.study.runner import STAGES

    assert tuple(STAGE_NAMES) == tuple(STAGES)
    assert _bundled() == bundled_studies()
    assert "label-efficiency" in _bundled()


def test_ingest_qc_overrides_are_checked_and_reach_ingest(tmp_path, monkeypatch) -> None:
    """`ingest_qc` names QC thresholds (did-you-mean on a typo) and the ingest stage uses them.

    Bugs caught: a typo in a QC name accepted (the stress study would run with the default
    threshold it meant to change); the overrides validated but never passed to ingest; a
    study without `ingest_qc` getting a new ingest cache key (every cached store rebuilt).
    """
    import cape.ingest
    from cape.study import stages

    base = {"name": "t", "simulate": {"preset": "tiny"}, "pretrain": {"runs": [{"name": "r"}]}}
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**base, "ingest_qc": {"max_qrs_mss": 300}}))
    with pytest.raises(CapeError, match=r"unknown QC setting 'max_qrs_mss' \(did you mean"):
        load_study(bad)
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump({**base, "ingest_qc": {"max_qrs_ms": 300}}))
    config = load_study(good)
    assert config.ingest_qc == {"max_qrs_ms": 300}

    seen: list = []

    def fake_ingest(*args, qc=None, **kwargs):
        seen.append(qc)
        raise RuntimeError("stop after the call")

    monkeypatch.setattr(cape.ingest, "ingest", fake_ingest)
    captured: dict = {}

    class Runner:
        progress = False
        out = tmp_path

        def __init__(self, study):
            self.config = study

        def stage(self, title, name, path, inputs, work):
            captured[name] = inputs
            work(path, False)

    cohort = stages.CohortInput(name="c", format="wfdb", source=tmp_path, mains_hz=50, options={})
    with pytest.raises(RuntimeError, match="stop after the call"):
        stages.ingest_stage(Runner(config), ([cohort], None))
    assert seen[0].max_qrs_ms == 300
    assert captured["ingest"]["qc"] == {"max_qrs_ms": 300}

    seen.clear()
    without = config.model_copy(update={"ingest_qc": {}})
    with pytest.raises(RuntimeError):
        stages.ingest_stage(Runner(without), ([cohort], None))
    assert seen == [None] and "qc" not in captured["ingest"]
