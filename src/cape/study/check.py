"""Check a whole study before anything runs: every section, every run, every sweep cell.

``cape study check STUDY`` and the start of ``cape study run`` call
:func:`check_study`. It catches in a second what would otherwise fail after an
hour of simulation and pretraining: a misspelt pretraining setting in one run,
an OOD training cohort the study does not have, a head parameter the chosen
head does not take, a sweep key that names nothing. Each problem is one line
naming the key (as ``--set`` spells it), with a did-you-mean where a name is
close. Missing cohort sources are notes, not problems: a study may be checked
before its data is in place.

No torch: pretraining settings are checked against :class:`PretrainConfig`,
whose module imports torch only to build a model. The encoder architecture
combination (``model.*`` presets) is checked when pretraining starts.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from cape.errors import CapeError, did_you_mean, validation_messages

# cape.protocols.tasks.TASKS without importing the protocols (torch); a test keeps
# the two equal.
STUDY_TASKS = ("age", "sex", "superclass")
UNTRAINED = "untrained"


@dataclass
class CheckResult:
    """Problems (the study cannot run) and notes (it can, but look), one line each."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def key_problem(key: str) -> str | None:
    """What is wrong with a dotted study key (``--set``, ``sweep.key``), or None.

    Keys below a free-form mapping (``pretrain.settings.*``, ``cohorts.0.options.*``)
    pass here; their values are checked with the rest of the study.
    """
    from cape.study.config import StudyConfig

    parts = key.split(".")
    if not all(parts):
        return f"{key!r} is not a dotted key (e.g. pretrain.settings.epochs)"
    models: list[type[BaseModel]] = [StudyConfig]
    for i, part in enumerate(parts):
        if part.isdigit() and i > 0:
            continue  # an item of a list: the list's item model follows
        fields = {name: f for m in models for name, f in m.model_fields.items()}
        if part not in fields:
            where = ".".join(parts[:i]) or "the study"
            hint = did_you_mean(part, fields) or f" (keys: {', '.join(fields)})"
            return f"{where} has no key {part!r}{hint}"
        nested = _models_in(fields[part].annotation)
        if not nested:
            return None
        models = nested
    return None


def check_study(config: Any, cohorts_exist: bool = False) -> CheckResult:
    """Every problem of a validated :class:`StudyConfig` that typing alone cannot see.

    Args:
        config: the study.
        cohorts_exist: report a missing cohort source as a problem (``cape study run``)
            instead of a note (``cape study check``).
    """
    result = CheckResult()
    cohorts = _cohorts(config, result, cohorts_exist)
    runs = _pretrain(config, cohorts, result)
    _evaluate(config, cohorts, runs, result)
    if config.label_efficiency is not None:
        _label_efficiency(config, cohorts, result)
    if config.sweep is not None:
        _sweep(config, result, cohorts_exist)
    result.problems = list(dict.fromkeys(result.problems))
    result.notes = list(dict.fromkeys(result.notes))
    return result


# ------------------------------------------------------------------------- cohorts
def _cohorts(config: Any, result: CheckResult, cohorts_exist: bool) -> list[str] | None:
    """Cohort names of the study (None if they cannot be known), checking their sources."""
    if config.simulate is not None:
        from cape.simulator.presets import PRESETS
        from cape.study.stages import simulation_spec

        preset = config.simulate.preset
        if preset not in PRESETS and not Path(preset).is_file():
            result.problems.append(
                f"simulate.preset: {preset!r} is neither a simulator preset ({', '.join(PRESETS)})"
                f" nor a spec file{did_you_mean(preset, PRESETS)}"
            )
            return None
        try:
            spec = simulation_spec(config.simulate)
        except CapeError as error:
            result.problems.append(f"simulate.preset: {error}")
            return None
        except ValidationError as error:
            result.problems += validation_messages(error, type(config.simulate), "simulate")
            return None
        return [c.name for c in spec.cohorts]
    for i, cohort in enumerate(config.cohorts):
        known = _reader_options(cohort.format)
        for key in sorted(set(cohort.options) - known) if known else []:
            result.problems.append(
                f"cohorts.{i}.options: unknown {cohort.format} reader option {key!r}"
                f"{did_you_mean(key, known)} (known: {', '.join(sorted(known))})"
            )
        if not Path(cohort.source).exists():
            text = (
                f"cohorts.{i}.source: {cohort.source} does not exist (cohort {cohort.name}; "
                f"set it with --set cohorts.{i}.source=PATH)"
            )
            (result.problems if cohorts_exist else result.notes).append(text)
    return [c.name for c in config.cohorts]


def _reader_options(format_name: str) -> set[str]:
    """Option names a reader accepts (empty if it does not say)."""
    import sys

    from cape.readers import READERS

    reader = READERS[format_name]
    module = sys.modules[reader.__module__]
    known = getattr(module, "_OPTIONS", None) or getattr(reader, "known_options", None)
    return set(known or ())


# ------------------------------------------------------------------------ pretrain
def _pretrain(config: Any, cohorts: list[str] | None, result: CheckResult) -> list[str]:
    """Check the base, the shared settings and every run merged on them; the run names."""
    from cape.pretrain.config import PRESET_NAMES, read_config_file
    from cape.study.stages import _deep_merge

    section = config.pretrain
    names = [run.name for run in section.runs]
    if not section.runs:
        result.problems.append("pretrain.runs: no pretraining runs (give at least one)")
    try:
        base, _ = read_config_file(section.base)
    except CapeError as error:
        result.problems.append(f"pretrain.base: {error}{did_you_mean(section.base, PRESET_NAMES)}")
        return names
    shared = _deep_merge(base, section.settings)
    shared_problems = _pretrain_problems(shared, cohorts)
    result.problems += [f"pretrain.settings{p}" for p in shared_problems]
    for i, run in enumerate(section.runs):
        for seed in run.seeds:
            if seed < 0:
                result.problems.append(f"pretrain.runs.{i}.seeds: seeds must be >= 0, got {seed}")
        merged = _deep_merge(shared, run.settings)
        for problem in _pretrain_problems(merged, cohorts):
            if problem not in shared_problems:
                result.problems.append(f"pretrain.runs.{i}.settings{problem}")
    return names


def _pretrain_problems(values: dict[str, Any], cohorts: list[str] | None) -> list[str]:
    """Problems of raw pretraining values, each starting with ``.key: `` or ``: ``."""
    from cape.pretrain.config import PretrainConfig

    try:
        pretrain_config = PretrainConfig.model_validate(dict(values, seed=0))
    except ValidationError as error:
        lines = validation_messages(error, PretrainConfig, prefix="@")
        return [line.replace("@.", ".").replace("@", "") for line in lines]
    problems = []
    try:
        pretrain_config.augmenter()
    except CapeError as error:
        problems.append(f".masking: {error}")
    if cohorts is not None:
        for name in pretrain_config.cohorts or []:
            if name not in cohorts:
                problems.append(
                    f".cohorts: the study has no cohort {name!r}{did_you_mean(name, cohorts)}"
                )
        exclude = pretrain_config.exclude_splits
        for name in exclude if isinstance(exclude, dict) else {}:
            if name not in cohorts:
                problems.append(
                    f".exclude_splits: the study has no cohort {name!r}"
                    f"{did_you_mean(name, cohorts)}"
                )
    return problems


# ------------------------------------------------------------------------ evaluate
def _evaluate(config: Any, cohorts: list[str] | None, runs: list[str], result: CheckResult) -> None:
    section = config.evaluate
    models = [*runs, UNTRAINED] if config.pretrain.untrained_baseline else runs
    for name, protocol in (("ood", section.ood), ("composition", section.composition)):
        if protocol is None:
            continue
        for task in protocol.tasks:
            if task not in STUDY_TASKS:
                result.problems.append(
                    f"evaluate.{name}.tasks: unknown task {task!r}{did_you_mean(task, STUDY_TASKS)}"
                    f" (tasks: {', '.join(STUDY_TASKS)})"
                )
    ood = section.ood
    if ood is not None:
        if cohorts is not None and ood.train_cohort not in cohorts:
            result.problems.append(
                f"evaluate.ood.train_cohort: the study has no cohort {ood.train_cohort!r}"
                f"{did_you_mean(ood.train_cohort, cohorts)} (cohorts: {', '.join(cohorts)})"
            )
        else:
            result.problems += _heads_test_patients_left_out(config)
        for model in ood.compare or ():
            if model not in models:
                result.problems.append(
                    f"evaluate.ood.compare: no pretraining run {model!r}"
                    f"{did_you_mean(model, models)} (runs: {', '.join(models)})"
                )
    if config.sweep is not None and (ood is None or ood.compare is None):
        result.problems.append(
            "evaluate.ood.compare: a sweep follows the OOD gap of two runs; name them, "
            "e.g. compare: [random, idb]"
        )


def _heads_test_patients_left_out(config: Any) -> list[str]:
    # A per-cohort exclude_splits that forgets the heads' training cohort would put
    # its test patients into pretraining: an error here, hours before the protocol
    # could only warn about it.
    train_cohort = config.evaluate.ood.train_cohort
    sources = [("pretrain.settings", config.pretrain.settings)] + [
        (f"pretrain.runs.{i}.settings", run.settings) for i, run in enumerate(config.pretrain.runs)
    ]
    problems = []
    for where, settings in sources:
        exclude = settings.get("exclude_splits")
        if isinstance(exclude, dict) and "test" not in (exclude.get(train_cohort) or []):
            problems.append(
                f"{where}.exclude_splits: {exclude} keeps the test split of {train_cohort!r}, "
                f"the cohort the OOD heads are trained on; add {train_cohort}: [test]"
            )
    return problems


# ---------------------------------------------------------------- label efficiency
def _label_efficiency(config: Any, cohorts: list[str] | None, result: CheckResult) -> None:
    """The pretraining run and seed, the cohorts, the task, and every setting against
    :class:`cape.label_efficiency.LabelEfficiencyConfig`."""
    from cape.label_efficiency.config import LabelEfficiencyConfig

    section = config.label_efficiency
    where = "label_efficiency"
    runs = {run.name: run.seeds for run in config.pretrain.runs}
    if section.run not in runs:
        known = ", ".join(runs) or "none"
        result.problems.append(
            f"{where}.run: no pretraining run {section.run!r}{did_you_mean(section.run, runs)} "
            f"(runs: {known})"
        )
    elif section.run_seed is not None and section.run_seed not in runs[section.run]:
        result.problems.append(
            f"{where}.run_seed: run {section.run!r} has no seed {section.run_seed} "
            f"(seeds: {', '.join(map(str, runs[section.run]))})"
        )
    if cohorts is not None:
        named = [("cohort", section.cohort)]
        named += [("test_cohorts", name) for name in section.test_cohorts or []]
        for key, name in named:
            if name not in cohorts:
                result.problems.append(
                    f"{where}.{key}: the study has no cohort {name!r}{did_you_mean(name, cohorts)}"
                    f" (cohorts: {', '.join(cohorts)})"
                )
    if section.task not in STUDY_TASKS:
        hint = did_you_mean(section.task, STUDY_TASKS)
        text = f"{where}.task: {section.task!r} is not one of {', '.join(STUDY_TASKS)}{hint}" + (
            "" if hint else "; it must be a list-valued column of the store's manifest"
        )
        (result.problems if hint else result.notes).append(text)
    for name in ("epochs", "batch_size"):
        if getattr(section, name) is not None and name in section.finetune:
            result.problems.append(
                f"{where}.{name}: also given as {where}.finetune.{name}; give one of them"
            )
    try:
        LabelEfficiencyConfig.model_validate(section.protocol_values())
    except ValidationError as error:
        result.problems += validation_messages(error, LabelEfficiencyConfig, where)


# --------------------------------------------------------------------------- sweep
def _sweep(config: Any, result: CheckResult, cohorts_exist: bool) -> None:
    import yaml

    from cape.study.config import StudyConfig
    from cape.study.loading import set_dotted
    from cape.study.sweep import cell_label

    sweep = config.sweep
    axes = [("sweep.key", sweep.key, sweep.values)]
    if sweep.by is not None:
        axes.append(("sweep.by.key", sweep.by.key, sweep.by.values))
        if sweep.by.key == sweep.key:
            result.problems.append(f"sweep.by.key: must differ from sweep.key ({sweep.key!r})")
            return
    bad = False
    for where, key, _ in axes:
        problem = key_problem(key)
        if problem is None and key.split(".")[0] == "sweep":
            problem = "a sweep cannot vary itself"
        if problem:
            result.problems.append(f"{where}: {problem}")
            bad = True
    if bad:
        return
    base = config.model_dump(mode="json")
    base["sweep"] = None
    seen = set(result.problems)
    cells: list[dict[str, Any]] = [{}]
    for _, key, values in axes:
        cells = [{**cell, key: value} for cell in cells for value in values]
    for cell in cells:
        label = f"sweep cell {cell_label(cell)}"
        values = yaml.safe_load(yaml.safe_dump(base))
        try:
            for key, value in cell.items():
                set_dotted(values, key, value)
        except (KeyError, IndexError, TypeError, ValueError) as error:
            result.problems.append(f"{label}: cannot set {key}: {error}")
            continue
        try:
            sub_config = StudyConfig.model_validate(values)
        except ValidationError as error:
            result.problems += [f"{label}: {m}" for m in validation_messages(error, StudyConfig)]
            continue
        sub = check_study(sub_config, cohorts_exist)
        result.problems += [f"{label}: {p}" for p in sub.problems if p not in seen]
        result.notes += [n for n in sub.notes if n not in result.notes]
