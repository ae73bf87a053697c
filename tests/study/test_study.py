"""The study runner: caching, overrides, and whole studies end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from cape.cli import main as cape_main
from cape.errors import CapeError
from cape.study import StudyRunner, load_study
from cape.study.runner import MARKER


def _runner(tmp_path: Path, force=()) -> StudyRunner:
    config = load_study("demo-quick")
    return StudyRunner(config, tmp_path, force=set(force), log=lambda _: None)


def test_stage_cache_skips_reruns_and_resumes(tmp_path: Path):
    calls = []

    def work(path: Path, resuming: bool) -> None:
        calls.append(resuming)
        (path / "out.txt").write_text("x")

    runner = _runner(tmp_path)
    first = runner.stage("a", "embed", tmp_path / "a", {"x": 1}, work)
    again = runner.stage("a", "embed", tmp_path / "a", {"x": 1}, work)
    assert calls == [False] and again.skipped and again.stamp == first.stamp
    changed = runner.stage("a", "embed", tmp_path / "a", {"x": 2}, work)
    assert calls == [False, False] and not changed.skipped and changed.key != first.key
    # An interrupted stage (marker still 'running') resumes with its directory intact.
    marker = json.loads((tmp_path / "a" / MARKER).read_text())
    (tmp_path / "a" / MARKER).write_text(json.dumps({**marker, "status": "running"}))
    runner.stage("a", "embed", tmp_path / "a", {"x": 2}, work)
    assert calls[-1] is True
    forced = _runner(tmp_path, force=["embed"]).stage("a", "embed", tmp_path / "a", {"x": 2}, work)
    assert calls[-1] is False and forced.stamp != changed.stamp


def test_overrides_and_errors(tmp_path: Path):
    config = load_study("demo", ["pretrain.settings.epochs=2", "pretrain.runs.0.seeds=[5]"])
    assert config.pretrain.settings["epochs"] == 2 and config.pretrain.runs[0].seeds == [5]
    with pytest.raises(CapeError, match="KEY=VALUE"):
        load_study("demo", ["nonsense"])
    with pytest.raises(
        CapeError, match=r"evaluate\.ood\.runs: should be greater than or equal to 1"
    ):
        load_study("demo", ["evaluate.ood.runs=0"])
    with pytest.raises(CapeError, match="neither a file nor a bundled study"):
        load_study(tmp_path / "missing.yaml")
    with pytest.raises(CapeError, match="unknown stage"):
        _runner(tmp_path, force=["bake"])
    for name in ("demo", "demo-quick", "normalisation", "public"):
        load_study(name)  # every bundled study is checked in tests/study/test_check.py


def test_public_study_needs_its_sources(tmp_path: Path):
    config = load_study("public")
    with pytest.raises(CapeError, match="does not exist"):
        StudyRunner(config, tmp_path / "run", log=lambda _: None).run()


@pytest.mark.slow
def test_demo_quick_end_to_end_and_cached_rerun(tmp_path: Path, capsys):
    out = tmp_path / "demo"
    assert cape_main(["demo", "--quick", "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "What this run says" in printed and "verdict:" in printed
    assert "SIMULATED" in printed and "Injected: age effects" in printed
    report = out / "report" / "report.html"
    assert report.is_file() and (out / "report" / "report.md").is_file()
    results = pd.read_parquet(out / "evaluation" / "ood" / "results.parquet")
    assert {"random", "idb", "untrained", "mean-predictor"} <= set(results["model"])
    # Only the heads' training cohort's test split was left out of pretraining, and the
    # targets come from the other cohorts' whole data (the paper's protocol).
    pretrain_config = yaml.safe_load((out / "pretrain" / "idb-seed0" / "config.yaml").read_text())
    assert pretrain_config["exclude_splits"] == {"harbor": ["test"]}
    ood_config = json.loads((out / "evaluation" / "ood" / "config.json").read_text())
    assert set(ood_config["target_pools"].values()) == {"whole cohort"}
    predictions = pd.read_parquet(out / "evaluation" / "ood" / "predictions.parquet")
    targets = predictions[predictions["setting"] == "out-of-distribution"]
    stored = pd.read_parquet(out / "store" / "manifest.parquet")
    keys = ["cohort", "record_id"]
    drawn = targets[keys].astype(str).merge(stored[[*keys, "split"]].astype(str), on=keys)
    assert len(drawn) == len(targets) and drawn["split"].nunique() > 1
    identifiability = pd.read_parquet(out / "evaluation" / "identifiability.parquet")
    assert set(identifiability["model"]) == {"random", "idb", "untrained", "signal-spectrum"}
    probe = pd.read_parquet(out / "evaluation" / "learning_probe.parquet")
    assert set(probe["model"]) == {"random", "idb", "untrained"}
    assert set(probe["task"]) == {"age", "sex"} and set(probe["train_cohort"]) == {"harbor"}
    assert "Learning control (linear probe)" in printed
    # Runs made before the evaluate stage wrote it get the same table from the module.
    from cape.study.learning_probe import main as probe_main

    (out / "evaluation" / "learning_probe.parquet").unlink()
    assert probe_main([str(out)]) == 0
    again = pd.read_parquet(out / "evaluation" / "learning_probe.parquet")
    pd.testing.assert_frame_equal(again, probe)
    # Privacy: no record or patient ids in the report.
    manifest = pd.read_parquet(out / "store" / "manifest.parquet")
    html = report.read_text()
    assert not any(f'"{pid}"' in html for pid in manifest["patient_id"].unique()[:50])
    # A second run finds every stage done.
    assert cape_main(["demo", "--quick", "--out", str(out), "--no-progress"]) == 0
    assert printed.count("running") > 0
    assert "running" not in capsys.readouterr().out


@pytest.mark.slow
def test_public_study_on_files_in_the_real_layouts(tmp_path: Path):
    """The public example on CODE-15%- and PTB-XL-layout files (written by the simulator)."""
    from cape.simulator.generate import simulate
    from cape.simulator.presets import preset

    spec = preset("tiny")
    cohorts = [c.model_copy(update={"n_patients": 90}) for c in spec.cohorts]
    spec = spec.model_copy(
        update={"cohorts": [c for c in cohorts if c.name in {"serra", "linden"}]}
    )
    simulate(spec, tmp_path / "data", progress=False)
    overrides = [
        f"cohorts.0.source={tmp_path / 'data' / 'serra'}",
        f"cohorts.1.source={tmp_path / 'data' / 'linden'}",
        "ingest_workers=1",
        "pretrain.base=small",
        "pretrain.settings={epochs: 1, batch_patients: 8, exclude_splits: [test], num_workers: 0,"
        " small_cohorts: drop, progress: false}",
        "pretrain.runs.0.seeds=[0]",
        "pretrain.runs.1.seeds=[0]",
        "embed.workers=0",
        "evaluate.ood.runs=2",
        "evaluate.ood.test_n=50",
        "evaluate.ood.head={max_epochs: 3, patience: 2, hidden_sizes: [16, 8]}",
        "evaluate.composition.runs=2",
        "evaluate.composition.sizes=[40, 10, 10]",
        "evaluate.composition.head={max_epochs: 3, patience: 2, hidden_sizes: [16, 8]}",
        "report.tsne_per_cohort=30",
    ]
    config = load_study("public", overrides)
    out = StudyRunner(config, tmp_path / "run", progress=False, log=lambda _: None).run()
    composition = pd.read_parquet(out / "evaluation" / "composition" / "results.parquet")
    assert "superclass" in set(composition["task"])
    assert (out / "report" / "report.html").is_file()


@pytest.mark.slow
def test_artefact_sweep_runs_one_study_per_value(tmp_path: Path):
    overrides = [
        "sweep={key: simulate.artefact_strength, values: [0.0, 1.0]}",
        "simulate.scale=0.05",
        "report=false",
        "evaluate.ood.runs=2",
        "evaluate.ood.test_n=50",
    ]
    config = load_study("demo-quick", overrides)
    out = StudyRunner(config, tmp_path / "sweep", progress=False, log=lambda _: None).run()
    summary = pd.read_csv(out / "sweep" / "summary.csv")
    assert sorted(summary["simulate.artefact_strength"].unique()) == [0.0, 1.0]
    assert {"ood_gap_age_mae", "cohort_identifiability"} <= set(summary["quantity"])
    assert (out / "sweep" / "sweep.png").stat().st_size > 1000
    assert (out / "sweep" / "artefact_strength=0.0" / "evaluation" / "ood").is_dir()
    # the sub-studies really differ: the simulator was asked for other devices
    truth = [
        (
            out / "sweep" / f"artefact_strength={v}" / "data" / "_truth" / "simulation.yaml"
        ).read_text()
        for v in ("0.0", "1.0")
    ]
    assert "artefact_strength: 0.0" in truth[0] and "artefact_strength: 1.0" in truth[1]


def test_demo_composition_flag_adds_per_cohort_models():
    from cape.commands.demo import with_composition

    config = with_composition(load_study("demo"))
    names = [run.name for run in config.pretrain.runs]
    assert names[:2] == ["random", "idb"]
    assert {"only-harbor", "only-serra", "only-jade", "only-meadow", "only-linden"} <= set(names)
    only = next(run for run in config.pretrain.runs if run.name == "only-jade")
    assert only.settings["cohorts"] == ["jade"]
    assert config.evaluate.composition is not None and config.evaluate.ood is not None


def test_demo_seeds_flag_sets_every_run_and_keeps_the_rest():
    """`cape demo --seeds 10` is the ten-seed design (demo-verdict) on the demo's settings:
    every run gets seeds 0-9, nothing else changes, and the study still validates."""
    import argparse

    from cape.commands.demo import _positive_int, with_seeds
    from cape.study.check import check_study

    demo = load_study("demo")
    config = with_seeds(demo, 10)
    assert [run.seeds for run in config.pretrain.runs] == [list(range(10))] * 2
    assert [run.settings for run in config.pretrain.runs] == [
        run.settings for run in demo.pretrain.runs
    ]
    assert config.pretrain.settings == demo.pretrain.settings
    assert config.evaluate == demo.evaluate
    verdict = load_study("demo-verdict")
    assert [run.seeds for run in verdict.pretrain.runs] == [
        run.seeds for run in config.pretrain.runs
    ]
    assert check_study(config).problems == []
    assert _positive_int("3") == 3
    for bad in ("0", "-1", "x"):
        with pytest.raises(argparse.ArgumentTypeError, match="at least 1"):
            _positive_int(bad)
