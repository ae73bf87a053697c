"""The study file: one YAML that declares cohorts, pretraining runs, protocols and the report.

Example (the bundled demo is ``cape/studies/demo.yaml``)::

    name: demo
    simulate: {preset: demo, seed: 0}          # or list real cohorts under `cohorts:`
    splits: {fractions: [0.8, 0.1, 0.1], seed: 0}
    pretrain:
      base: small                               # pretraining preset or config file
      settings: {epochs: 10, batch_patients: 64}
      runs:
        - {name: random, settings: {batching: random}, seeds: [0, 1, 2]}
        - {name: idb, settings: {batching: idb}, seeds: [0, 1, 2]}
    evaluate:
      ood: {train_cohort: harbour, tasks: [age, sex], runs: 5}
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cape.errors import CapeError

FORMATS = ("ptbxl", "code15", "wfdb", "dicom", "muse")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SimulateSection(_Section):
    """Generate the cohorts with the simulator instead of reading real ones."""

    preset: str = Field("demo", description="simulator preset (demo, tiny) or a spec YAML file")
    seed: int = 0
    scale: float | None = Field(None, gt=0, description="multiplies cohort sizes")
    age_effect_scale: float | None = Field(None, ge=0)
    sex_effect_scale: float | None = Field(None, ge=0)
    artefact_strength: float | None = Field(
        None, ge=0, description="0 identical devices .. >1 strong"
    )
    visit_variability: float | None = Field(
        None, ge=0, description="multiplies every visit-to-visit SD (positive-pair difficulty)"
    )
    workers: int | None = Field(None, ge=1)


class CohortSource(_Section):
    """A real cohort to ingest."""

    name: str
    format: Literal["ptbxl", "code15", "wfdb", "dicom", "muse"]
    source: Path
    mains: Literal[50, 60] | None = Field(..., description="mains frequency for the notch")
    options: dict[str, Any] = Field(default_factory=dict, description="reader options")


class SplitSection(_Section):
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    seed: int = 0


class PretrainRunSpec(_Section):
    """One pretrained model (several encoder seeds)."""

    name: str = Field(..., pattern=r"^[A-Za-z0-9_.-]+$")
    settings: dict[str, Any] = Field(
        default_factory=dict, description="pretraining config overrides"
    )
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)


class PretrainSection(_Section):
    base: str = Field("small", description="pretraining preset or config file the runs start from")
    settings: dict[str, Any] = Field(default_factory=dict, description="overrides for every run")
    runs: list[PretrainRunSpec] = Field(default_factory=list)
    untrained_baseline: bool = Field(True, description="also embed with an untrained encoder")
    parallel: int = Field(
        1, ge=1, description="runs (and embeddings) at a time, each its own process"
    )

    @model_validator(mode="after")
    def _unique(self) -> PretrainSection:
        names = [r.name for r in self.runs]
        if len(names) != len(set(names)):
            raise ValueError(f"pretraining run names must be unique, got {names}")
        if "untrained" in names:
            raise ValueError("'untrained' is reserved for the untrained baseline")
        return self


class EmbedSection(_Section):
    windows: int = Field(1, ge=1, description="7 s windows per ECG, features averaged")
    batch_size: int = Field(64, ge=1)
    workers: int = Field(0, ge=0)
    threads: int = Field(1, ge=1, description="torch threads per embedding process")


class HeadSettings(_Section):
    kind: Literal["mlp", "linear"] = "mlp"
    max_epochs: int | None = Field(None, ge=1)
    patience: int | None = Field(None, ge=1)
    batch_size: int | None = Field(None, ge=1)
    learning_rate: float | None = Field(None, gt=0)
    hidden_sizes: list[int] | None = None
    std_floor: float = Field(
        0.0,
        ge=0,
        description="0: plain z-scoring of the features (the authors' code); e.g. 0.1 floors "
        "each SD at 0.1 x the median SD",
    )
    age_target: Literal["standardise", "age-sigmoid"] = Field(
        "standardise",
        description="MLP age head: standardised target + linear output, or the authors' "
        "(age - 7) / 100 with a sigmoid output",
    )
    hidden_grid: list[int] | None = Field(
        None,
        description="MLP: pick hidden sizes per head on the validation split among every "
        "combination of these widths (the paper: [32, 64, 128, 256])",
    )
    grid_layers: int = Field(2, ge=1, description="hidden layers of the grid")


class OODSection(_Section):
    train_cohort: str
    tasks: list[str] = Field(default_factory=lambda: ["age", "sex"])
    runs: int = Field(10, ge=1)
    test_n: int = Field(10_000, ge=1, description="random ECGs per other cohort")
    target_pool: Literal["unseen", "all", "test"] = Field(
        "unseen",
        description="where target ECGs come from: the whole cohort minus what pretraining saw "
        "(unseen), the whole cohort (all, the paper's), or the test split (test)",
    )
    compare: tuple[str, str] | None = Field(None, description="two runs for the paired tests")
    head: HeadSettings = Field(default_factory=HeadSettings)


class CompositionSection(_Section):
    tasks: list[str] = Field(default_factory=lambda: ["age", "sex"])
    runs: int = Field(6, ge=1)
    sizes: tuple[int, int, int] = (10_000, 2_000, 2_000)
    head: HeadSettings = Field(default_factory=HeadSettings)


class EvaluateSection(_Section):
    ood: OODSection | None = None
    composition: CompositionSection | None = None
    identifiability: bool = True
    retrieval: bool = Field(
        True, description="same-patient retrieval, mixed vs same-cohort negatives"
    )
    seed: int = 0


class ReportSection(_Section):
    enabled: bool = True
    tsne_per_cohort: int = Field(2000, ge=10, description="embeddings per cohort in t-SNE plots")
    seed: int = 0


class SweepAxis(_Section):
    """The second axis of a 2-D sweep."""

    key: str = Field(..., description="dotted path of the setting to vary")
    values: list[Any] = Field(..., min_length=1)


class SweepSection(_Section):
    """Run the whole study once per value of one setting (e.g. ``simulate.artefact_strength``),
    or once per cell of a grid of two settings (``by``)."""

    key: str = Field(..., description="dotted path of the setting to vary")
    values: list[Any] = Field(..., min_length=1)
    by: SweepAxis | None = Field(None, description="a second setting: a 2-D grid")


class StudyConfig(_Section):
    """A whole study; see the module docstring."""

    name: str = "study"
    sweep: SweepSection | None = None
    simulate: SimulateSection | None = None
    cohorts: list[CohortSource] = Field(default_factory=list)
    splits: SplitSection = Field(default_factory=SplitSection)
    ingest_workers: int = Field(2, ge=1)
    pretrain: PretrainSection = Field(default_factory=PretrainSection)
    embed: EmbedSection = Field(default_factory=EmbedSection)
    evaluate: EvaluateSection = Field(default_factory=EvaluateSection)
    report: ReportSection = Field(default_factory=lambda: ReportSection())

    @model_validator(mode="after")
    def _sources(self) -> StudyConfig:
        if self.simulate is None and not self.cohorts:
            raise ValueError("a study needs `simulate:` or a list of `cohorts:`")
        if self.simulate is not None and self.cohorts:
            raise ValueError("give either `simulate:` or `cohorts:`, not both")
        names = [c.name for c in self.cohorts]
        if len(names) != len(set(names)):
            raise ValueError(f"cohort names must be unique, got {names}")
        return self

    @model_validator(mode="after")
    def _heads_test_patients_left_out(self) -> StudyConfig:
        # A per-cohort exclude_splits that forgets the heads' training cohort would put
        # its test patients into pretraining: an error here, hours before the protocol
        # could only warn about it.
        ood = self.evaluate.ood
        if ood is None:
            return self
        sources = [("pretrain.settings", self.pretrain.settings)] + [
            (f"pretrain.runs[{run.name}].settings", run.settings) for run in self.pretrain.runs
        ]
        for where, settings in sources:
            exclude = settings.get("exclude_splits")
            if isinstance(exclude, dict) and "test" not in (exclude.get(ood.train_cohort) or []):
                raise ValueError(
                    f"{where}.exclude_splits={exclude} keeps the test split of "
                    f"{ood.train_cohort!r}, the cohort the OOD heads are trained on; add "
                    f"{ood.train_cohort}: [test]"
                )
        return self

    @model_validator(mode="before")
    @classmethod
    def _report_bool(cls, values: Any) -> Any:
        # `report: false` is short for `report: {enabled: false}`.
        if isinstance(values, dict) and isinstance(values.get("report"), bool):
            values = dict(values, report={"enabled": values["report"]})
        return values


def _set_dotted(values: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node: Any = values
    for part in parts[:-1]:
        if isinstance(node, list):
            node = node[int(part)]
            continue
        node = node.setdefault(part, {})
    last = parts[-1]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


def bundled_study(name: str) -> str | None:
    """Text of a study bundled with CAPE (``demo``, ``demo-quick``, ``public``, ...), or None."""
    resource = resources.files("cape") / "studies" / f"{name}.yaml"
    return resource.read_text() if resource.is_file() else None


def load_study(path_or_name: str | Path, overrides: Sequence[str] = ()) -> StudyConfig:
    """Read a study file (or a bundled study by name) and apply ``KEY=VALUE`` overrides.

    Overrides use dotted paths (``pretrain.settings.epochs=3``,
    ``cohorts.0.source=/data/ptb-xl``); values are parsed as YAML.

    Raises:
        CapeError: unreadable file, bad override, or a setting that fails validation.
    """
    path = Path(path_or_name)
    if path.is_file():
        text, source = path.read_text(), str(path)
    else:
        bundled = bundled_study(str(path_or_name))
        if bundled is None:
            raise CapeError(f"study {path_or_name} is neither a file nor a bundled study")
        text, source = bundled, f"bundled study {path_or_name!r}"
    try:
        values = yaml.safe_load(text) or {}
    except yaml.YAMLError as error:
        raise CapeError(f"{source}: not valid YAML: {error}") from error
    for item in overrides:
        if "=" not in item:
            raise CapeError(f"--set {item!r}: expected KEY=VALUE")
        key, raw = item.split("=", 1)
        try:
            _set_dotted(values, key.strip(), yaml.safe_load(raw))
        except (IndexError, ValueError, TypeError, AttributeError) as error:
            raise CapeError(f"--set {item!r}: {error}") from error
    try:
        return StudyConfig.model_validate(values)
    except ValidationError as error:
        raise CapeError(f"{source}: invalid study:\n{error}") from error
