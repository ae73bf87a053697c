"""The study's ``label_efficiency:`` section: checked by ``cape study check``, run as a
cached stage into ``RUN/label-efficiency/``, shown by the report."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from cape.study.check import check_study
from cape.study.loading import bundled_studies, bundled_study, load_study
from cape.study.runner import StudyRunner


def _spec_file(tmp_path: Path) -> Path:
    """The tiny preset cut to linden (PTB-XL layout, 40 patients) and harbor (12, many ECGs
    each: pretraining pairs)."""
    from cape.simulator.cohorts import dump_spec
    from cape.simulator.presets import preset

    spec = preset("tiny")
    cohorts = [
        c.model_copy(update={"n_patients": 40}) if c.name == "linden" else c
        for c in spec.cohorts
        if c.name in {"linden", "harbor"}
    ]
    path = tmp_path / "spec.yaml"
    dump_spec(spec.model_copy(update={"cohorts": cohorts}), path)
    return path


def _study(tmp_path: Path, **section: object) -> dict:
    values = {
        "name": "le-test",
        "simulate": {"preset": str(_spec_file(tmp_path)), "seed": 0, "workers": 1},
        "splits": {"fractions": [0.6, 0.2, 0.2], "seed": 0},
        "ingest_workers": 1,
        "pretrain": {
            "base": "small",
            "settings": {
                "epochs": 1,
                "batch_patients": 4,
                "num_workers": 0,
                "small_cohorts": "drop",
                "exclude_splits": ["test"],
                "progress": False,
            },
            "runs": [{"name": "rand", "settings": {"batching": "random"}, "seeds": [0]}],
            "untrained_baseline": False,
        },
        "embed": {"batch_size": 64},
        "evaluate": {"identifiability": False, "retrieval": False},
        "label_efficiency": {
            "run": "rand",
            "cohort": "linden",
            "task": "sex",
            "fractions": [0.5, 1.0],
            "methods": ["linear", "scratch"],
            "seeds": [0],
            "epochs": 1,
            "batch_size": 8,
            "bootstrap_resamples": 20,
            "threads": 1,
            **section,
        },
        "report": {"tsne_per_cohort": 10},
    }
    return values


def _write(tmp_path: Path, values: dict) -> Path:
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


@pytest.mark.parametrize("name", bundled_studies())
def test_every_bundled_study_passes_check(name: str) -> None:
    """A bundled study (label-efficiency.yaml included) that the check rejects could never run."""
    assert check_study(load_study(name)).problems == []


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        ({"cohrot": "linden"}, "label_efficiency: unknown key 'cohrot' (did you mean 'cohort'?)"),
        ({"run": "rnd"}, "label_efficiency.run: no pretraining run 'rnd' (did you mean 'rand'?)"),
        ({"run_seed": 3}, "label_efficiency.run_seed: run 'rand' has no seed 3 (seeds: 0)"),
        ({"cohort": "lindn"}, "label_efficiency.cohort: the study has no cohort 'lindn'"),
        ({"test_cohorts": ["harbour"]}, "label_efficiency.test_cohorts: the study has no cohort"),
        ({"task": "sx"}, "label_efficiency.task: 'sx' is not one of age, sex, superclass"),
        ({"methods": ["linaer"]}, "label_efficiency.methods: unknown method 'linaer'"),
        ({"fractions": [0.0, 1.0]}, "label_efficiency.fractions: "),
        ({"finetune": {"epocs": 2}}, "label_efficiency.finetune: "),
        ({"finetune": {"epochs": 2}}, "label_efficiency.epochs: also given as"),
    ],
)
def test_check_catches_bad_settings(tmp_path: Path, edit: dict, expected: str) -> None:
    """Bug caught: a typo or an unknown run in the section passing the check and failing
    (or, worse, silently using defaults) after an hour of pretraining."""
    from cape.errors import CapeError

    path = _write(tmp_path, _study(tmp_path, **edit))
    with pytest.raises(CapeError) as caught:
        load_study(path)
    assert expected in str(caught.value)
    assert str(caught.value).startswith(f"study {path}: ")


def test_bundled_label_efficiency_study_is_on_linden(tmp_path: Path) -> None:
    """The bundled study trains on the PTB-XL-layout cohort with a task that exists there."""
    config = load_study("label-efficiency")
    section = config.label_efficiency
    assert section is not None and section.cohort == "linden"
    assert section.run in {run.name for run in config.pretrain.runs}
    assert section.methods == ["linear", "mlp", "finetune", "scratch"]
    assert "label_efficiency:" in (bundled_study("label-efficiency") or "")


@pytest.mark.slow
def test_stage_runs_is_cached_and_reported(tmp_path: Path) -> None:
    """Bugs caught: the stage writing elsewhere than RUN/label-efficiency/ (the report would
    have no section), a rerun recomputing it, a changed setting not rerunning it, and the
    report not following a rerun stage."""
    path = _write(tmp_path, _study(tmp_path))
    out = tmp_path / "run"
    lines: list[str] = []
    StudyRunner(load_study(path), out, progress=False, log=lines.append).run()
    root = out / "label-efficiency"
    results = pd.read_parquet(root / "results.parquet")
    # linear + scratch + the mean predictor, 2 fractions, 1 seed, scored on linden.
    assert set(results["method"]) == {"linear", "scratch", "mean-predictor"}
    assert sorted(set(results["fraction"])) == [0.5, 1.0]
    assert set(results["test_cohort"]) == {"linden"}
    saved = yaml.safe_load((root / "label-efficiency.yaml").read_text())
    assert saved["encoder"] == str(out / "pretrain" / "rand-seed0")
    assert saved["features"] == str(out / "features" / "rand-seed0")
    assert saved["finetune"]["epochs"] == 1 and saved["finetune"]["batch_size"] == 8
    assert (root / "label-efficiency.png").is_file()
    assert any(line.startswith("  [1/6] ") for line in lines)  # per-cell lines, indented
    markdown = (out / "report" / "report.md").read_text()
    assert "Label efficiency" in markdown
    stamp = json.loads((root / ".stage.json").read_text())["stamp"]

    lines.clear()
    StudyRunner(load_study(path), out, progress=False, log=lines.append).run()
    assert "[label-efficiency] label efficiency (rand-seed0): up to date, skipped" in lines
    assert json.loads((root / ".stage.json").read_text())["stamp"] == stamp

    lines.clear()
    values = _study(tmp_path, fractions=[1.0])
    StudyRunner(load_study(_write(tmp_path, values)), out, progress=False, log=lines.append).run()
    assert "[label-efficiency] label efficiency (rand-seed0): running" in lines
    assert "[report] report: running" in lines
    assert set(pd.read_parquet(root / "results.parquet")["fraction"]) == {1.0}
