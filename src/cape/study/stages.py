"""The stages of a study, each a thin wrapper around the library call that does the work."""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from cape.errors import CapeError
from cape.study.runner import StageResult, StudyRunner

logger = logging.getLogger(__name__)


@dataclass
class CohortInput:
    name: str
    format: str
    source: Path
    mains_hz: float | None
    options: dict[str, Any]


@dataclass
class PretrainedModel:
    name: str
    seed: int
    run_dir: Path
    stage: StageResult
    untrained: bool = False


@dataclass
class FeatureSet:
    name: str
    seed: int
    directory: Path
    stage: StageResult
    untrained: bool = False


# ---------------------------------------------------------------------------- simulate
def simulate_stage(runner: StudyRunner) -> tuple[list[CohortInput], StageResult | None]:
    """Generate the synthetic cohorts (if the study simulates) and list the cohorts to ingest."""
    config = runner.config
    if config.simulate is None:
        cohorts = [
            CohortInput(c.name, c.format, Path(c.source), c.mains, dict(c.options))
            for c in config.cohorts
        ]
        for cohort in cohorts:
            if not cohort.source.exists():
                raise CapeError(f"cohort {cohort.name}: source {cohort.source} does not exist")
        return cohorts, None

    section = config.simulate
    directory = runner.out / "data"

    def work(path: Path, resuming: bool) -> None:
        from cape.simulator.generate import default_workers, simulate

        spec = simulation_spec(section)
        simulate(
            spec,
            path,
            workers=section.workers or default_workers(),
            progress=runner.progress,
            overwrite=True,
        )

    # The key holds the resolved simulator spec, so editing a spec file reruns the stage.
    inputs = {
        "section": section.model_dump(mode="json"),
        "spec": simulation_spec(section).model_dump(mode="json"),
    }
    result = runner.stage("synthetic cohorts", "simulate", directory, inputs, work)
    listing = yaml.safe_load((directory / "cohorts.yaml").read_text())
    cohorts = [
        CohortInput(c["name"], c["format"], directory / c["path"], c.get("mains_hz"), {})
        for c in listing["cohorts"]
    ]
    return cohorts, result


def simulation_spec(section: Any) -> Any:
    """The simulator spec of a study's ``simulate:`` section (preset or file, plus knobs)."""
    from cape.simulator.presets import KNOBS, resolve_spec

    return resolve_spec(
        section.preset, section.seed, **{knob: getattr(section, knob) for knob in KNOBS}
    )


# ------------------------------------------------------------------------------ ingest
def ingest_stage(
    runner: StudyRunner, data: tuple[list[CohortInput], StageResult | None]
) -> StageResult:
    cohorts, simulated = data
    config = runner.config
    inputs = {
        "simulated": simulated.stamp if simulated else None,
        "cohorts": [
            {
                "name": c.name,
                "format": c.format,
                "source": str(c.source),
                "mains": c.mains_hz,
                "options": c.options,
            }
            for c in cohorts
        ],
        "splits": config.splits.model_dump(mode="json"),
    }
    if config.ingest_qc:  # only when set: studies without it keep their cached stores
        inputs["qc"] = dict(sorted(config.ingest_qc.items()))

    def work(path: Path, resuming: bool) -> None:
        from cape.ingest import ingest
        from cape.qc import QCConfig
        from cape.splits import assign_splits, check_patient_disjoint
        from cape.store import CohortStore, write_splits

        for cohort in cohorts:
            summary = ingest(
                cohort.format,
                cohort.source,
                cohort.name,
                path,
                mains_hz=cohort.mains_hz,
                workers=config.ingest_workers,
                reader_options=cohort.options,
                progress=runner.progress,
                qc=(
                    QCConfig.from_overrides({k: str(v) for k, v in config.ingest_qc.items()})
                    if config.ingest_qc
                    else None
                ),
            )
            quarantined = sum(summary.quarantined.values())
            runner.log(f"  {cohort.name}: stored {summary.stored}, quarantined {quarantined}")
        store = CohortStore.open(path)
        splits = assign_splits(store.manifest, config.splits.fractions, seed=config.splits.seed)
        check_patient_disjoint(write_splits(path, splits))

    return runner.stage("cohort store", "ingest", runner.out / "store", inputs, work)


# ---------------------------------------------------------------------------- pretrain
def _deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def pretrain_values(runner: StudyRunner, run_settings: dict[str, Any], seed: int) -> dict[str, Any]:
    """Raw pretraining config values of one run: base preset < study settings < run settings."""
    from cape.pretrain.config import read_config_file

    section = runner.config.pretrain
    base, _ = read_config_file(section.base)
    values = _deep_merge(base, section.settings)
    values = _deep_merge(values, run_settings)
    values["seed"] = seed
    return values


def _pretrain_job(
    path: Path, resuming: bool, values: dict[str, Any], label: str, store_dir: str, progress: bool
) -> None:
    """One pretraining run (module level so that it can run in a worker process)."""
    from cape.pretrain import pretrain
    from cape.pretrain.config import validate_config

    resolved = dict(values, store=store_dir, out_dir=str(path), progress=progress)
    config = validate_config(resolved, f"study run {label}")
    has_checkpoint = (path / "checkpoints" / "last.pt").is_file()
    pretrain(config, resume=resuming and has_checkpoint)


def pretrain_stage(runner: StudyRunner, store: StageResult) -> list[PretrainedModel]:
    from cape.pretrain.config import validate_config

    section = runner.config.pretrain
    # Validate every config before hours of training start (cheap).
    for spec in section.runs:
        validate_config(
            dict(pretrain_values(runner, spec.settings, spec.seeds[0]), store=str(store.directory)),
            f"study run {spec.name}",
        )
    if not section.runs:
        raise CapeError("the study declares no pretraining runs (pretrain.runs is empty)")
    parallel = section.parallel
    jobs = []
    names = []
    for spec in section.runs:
        for seed in spec.seeds:
            values = pretrain_values(runner, spec.settings, seed)
            label = f"{spec.name}-seed{seed}"
            directory = runner.out / "pretrain" / label
            inputs = {"store": store.stamp, "config": values}
            args = (values, label, str(store.directory), runner.progress and parallel == 1)
            jobs.append((label, directory, inputs, _pretrain_job, args))
            names.append((spec.name, seed, directory))
    from cape.study.progress import pretrain_progress_line

    results = runner.stages_parallel("pretrain", jobs, parallel, describe=pretrain_progress_line)
    models = [
        PretrainedModel(name, seed, directory, result)
        for (name, seed, directory), result in zip(names, results, strict=True)
    ]
    if section.untrained_baseline:
        # One untrained twin per seed of the first run: the same architecture and
        # initial weights as that seed's encoder before training (build_model seeds
        # the initialisation from config.seed), so the learning control compares each
        # pretrained seed with its own starting point and samples the spread of random
        # networks instead of trusting one draw.
        first = models[0].name
        models += [
            PretrainedModel("untrained", m.seed, m.run_dir, m.stage, untrained=True)
            for m in models
            if m.name == first
        ]
    return models


# ------------------------------------------------------------------------------- embed
def _embed_job(
    path: Path,
    resuming: bool,
    run_dir: str,
    store_dir: str,
    untrained: bool,
    settings: dict[str, Any],
    progress: bool,
) -> None:
    import torch

    from cape.embed import EmbedSettings, embed_store

    torch.set_num_threads(settings.pop("threads", 1))
    embed_store(
        run_dir,
        store_dir,
        path,
        untrained=untrained,
        settings=EmbedSettings(**settings),
        progress=progress,
    )


def embed_stage(
    runner: StudyRunner, store: StageResult, models: list[PretrainedModel]
) -> list[FeatureSet]:
    section = runner.config.embed
    parallel = runner.config.pretrain.parallel
    jobs = []
    for model in models:
        label = f"{model.name}-seed{model.seed}"
        directory = runner.out / "features" / label
        inputs = {
            "model": model.stage.stamp,
            "untrained": model.untrained,
            "store": store.stamp,
            "embed": section.model_dump(mode="json"),
        }
        settings = {
            "n_windows": section.windows,
            "batch_size": section.batch_size,
            "num_workers": section.workers,
            "threads": section.threads,
        }
        args = (
            str(model.run_dir),
            str(store.directory),
            model.untrained,
            settings,
            runner.progress and parallel == 1,
        )
        jobs.append((f"features {label}", directory, inputs, _embed_job, args))
    results = runner.stages_parallel("embed", jobs, parallel)
    return [
        FeatureSet(model.name, model.seed, job[1], result, model.untrained)
        for model, job, result in zip(models, jobs, results, strict=True)
    ]


# ---------------------------------------------------------------------------- evaluate
def evaluate_stage(
    runner: StudyRunner, features: list[FeatureSet], store: StageResult | None = None
) -> StageResult:
    section = runner.config.evaluate
    inputs = {
        "store": store.stamp if store is not None else None,
        "features": [f.stage.stamp for f in features],
        "names": [f"{f.name}-seed{f.seed}" for f in features],
        "evaluate": section.model_dump(mode="json"),
    }

    def work(path: Path, resuming: bool) -> None:
        from cape.study.evaluation import run_evaluation

        run_evaluation(
            section,
            features,
            path,
            log=runner.log,
            progress=runner.progress,
            store_path=store.directory if store is not None else None,
        )

    return runner.stage("protocols", "evaluate", runner.out / "evaluation", inputs, work)


# -------------------------------------------------------------------- label efficiency
LABEL_EFFICIENCY_DIR = "label-efficiency"  # where cape.report.collect looks


def label_efficiency_stage(
    runner: StudyRunner,
    store: StageResult,
    models: list[PretrainedModel],
    features: list[FeatureSet],
) -> StageResult | None:
    """``cape label-efficiency`` on one pretrained model into ``RUN/label-efficiency/``.

    The key holds the section, the store's stamp and the pretraining run's stamp
    (and the features' stamp when the frozen heads read the embed stage's), so a
    rerun skips it and a changed setting or model reruns it. Interrupted, it
    resumes: recorded cells are skipped by the protocol itself.

    Returns:
        None when the study has no ``label_efficiency:`` section.

    Raises:
        CapeError: a run or seed the study did not pretrain; anything the
            protocol rejects (task, cohort, settings).
    """
    section = runner.config.label_efficiency
    if section is None:
        return None
    trained = [m for m in models if not m.untrained and m.name == section.run]
    if not trained:
        names = sorted({m.name for m in models if not m.untrained})
        raise CapeError(
            f"label_efficiency.run: no pretraining run {section.run!r} (runs: {', '.join(names)})"
        )
    seed = trained[0].seed if section.run_seed is None else section.run_seed
    model = next((m for m in trained if m.seed == seed), None)
    if model is None:
        seeds = ", ".join(str(m.seed) for m in trained)
        raise CapeError(
            f"label_efficiency.run_seed: run {section.run!r} has no seed {seed} (seeds: {seeds})"
        )
    feature_set = None
    if section.study_features:
        feature_set = next(
            f for f in features if not f.untrained and (f.name, f.seed) == (model.name, seed)
        )
    inputs = {
        "section": section.model_dump(mode="json"),
        "store": store.stamp,
        "pretrain": model.stage.stamp,
        "features": feature_set.stage.stamp if feature_set is not None else None,
    }

    def work(path: Path, resuming: bool) -> None:
        from cape.label_efficiency import run_label_efficiency
        from cape.label_efficiency.config import validate_config

        values = dict(
            section.protocol_values(),
            store=str(store.directory),
            encoder=str(model.run_dir),
            out_dir=str(path),
            features=str(feature_set.directory) if feature_set is not None else None,
            progress=runner.progress,
        )
        config = validate_config(values, "study section label_efficiency")
        run_label_efficiency(config, log=lambda line: runner.log(f"  {line}"))

    label = f"label efficiency ({model.name}-seed{seed})"
    return runner.stage(label, "label-efficiency", runner.out / LABEL_EFFICIENCY_DIR, inputs, work)


# ------------------------------------------------------------------------------ report
def report_stage(
    runner: StudyRunner,
    store: StageResult,
    models: list[PretrainedModel],
    features: list[FeatureSet],
    evaluation: StageResult,
    label_efficiency: StageResult | None = None,
) -> StageResult:
    section = runner.config.report
    inputs = {
        "evaluation": evaluation.stamp,
        "store": store.stamp,
        "report": section.model_dump(mode="json"),
    }
    if label_efficiency is not None:  # (absent from the key of studies without the stage)
        inputs["label_efficiency"] = label_efficiency.stamp

    def work(path: Path, resuming: bool) -> None:
        from cape.report import write_report

        write_report(
            runner.out,
            path,
            tsne_per_cohort=section.tsne_per_cohort,
            seed=section.seed,
            progress=runner.progress,
        )

    return runner.stage("report", "report", runner.out / "report", inputs, work)
