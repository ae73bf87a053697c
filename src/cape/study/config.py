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
    label_efficiency:                           # optional (cape/studies/label-efficiency.yaml)
      run: idb                                  # one of pretrain.runs
      cohort: linden
      task: sex
      fractions: [0.05, 0.1, 1.0]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cape.errors import did_you_mean

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
    fractions: tuple[float, float, float] = Field(
        (0.8, 0.1, 0.1), description="train/val/test fractions of each cohort's patients"
    )
    seed: int = 0

    @model_validator(mode="after")
    def _fractions(self) -> SplitSection:
        if any(not 0.0 <= f <= 1.0 for f in self.fractions):
            raise ValueError(f"fractions must lie in [0, 1], got {list(self.fractions)}")
        if abs(sum(self.fractions) - 1.0) > 1e-6:
            raise ValueError(
                f"fractions must sum to 1, got {list(self.fractions)} (sum {sum(self.fractions):g})"
            )
        return self


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
    untrained_baseline: bool = Field(
        True,
        description="also embed with untrained encoders: the initial weights of each seed of the first run (its untrained twins)",
    )
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


_MLP_ONLY = ("max_epochs", "patience", "batch_size", "learning_rate", "hidden_sizes", "hidden_grid")


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

    @model_validator(mode="after")
    def _combinations(self) -> HeadSettings:
        # The protocol's own checks (cape.protocols.settings), here so that a study
        # fails when it is read, not when its evaluate stage starts.
        if self.kind != "mlp":
            mlp_only = [name for name in _MLP_ONLY if getattr(self, name) is not None]
            if self.age_target != "standardise":
                mlp_only.append("age_target")
            if mlp_only:
                raise ValueError(f"{', '.join(mlp_only)} need kind: mlp (kind is {self.kind!r})")
        if self.hidden_grid is not None and self.hidden_sizes is not None:
            raise ValueError("give either hidden_sizes or hidden_grid, not both")
        for name in ("hidden_sizes", "hidden_grid"):
            widths = getattr(self, name)
            if widths is not None and (not widths or min(widths) < 1):
                raise ValueError(f"{name} needs positive widths, got {widths}")
        return self


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
    sizes: tuple[int, int, int] = Field(
        (10_000, 2_000, 2_000), description="train/val/test ECGs drawn per run"
    )

    @model_validator(mode="after")
    def _positive_sizes(self) -> CompositionSection:
        if min(self.sizes) < 1:
            raise ValueError(f"sizes must be positive, got {list(self.sizes)}")
        return self

    head: HeadSettings = Field(default_factory=HeadSettings)


class EvaluateSection(_Section):
    ood: OODSection | None = None
    composition: CompositionSection | None = None
    identifiability: bool = True
    retrieval: bool = Field(
        True, description="same-patient retrieval, mixed vs same-cohort negatives"
    )
    learning_probe: bool = Field(
        True,
        description="learning control with linear probes on ood.train_cohort: each "
        "pretrained seed against its untrained twin, patient-bootstrap 95% CI "
        "(needs ood and an untrained baseline)",
    )
    seed: int = 0


class LabelEfficiencySection(_Section):
    """``cape label-efficiency`` on one of the study's pretrained models (docs/label-efficiency.md).

    The fields mirror :class:`cape.label_efficiency.LabelEfficiencyConfig` (which
    ``cape study check`` validates them against); ``run``/``run_seed`` name the
    pretrained encoder, and ``epochs``/``batch_size`` are short for
    ``finetune.epochs``/``finetune.batch_size``. Outputs go to ``RUN/label-efficiency/``.
    """

    run: str = Field(..., description="the pretraining run (a name under pretrain.runs)")
    run_seed: int | None = Field(
        None, ge=0, description="its encoder seed (default: the run's first seed)"
    )
    cohort: str = Field(..., description="cohort whose training patients are subsampled")
    task: str = Field("sex", description="age, sex, superclass or a list-valued manifest column")
    test_cohorts: list[str] | None = Field(None, description="scored cohorts (null: `cohort`)")
    topcoded: Literal["keep", "exclude"] = "keep"
    fractions: list[float] = Field(default_factory=lambda: [0.01, 0.1, 1.0])
    methods: list[str] = Field(default_factory=lambda: ["linear", "mlp", "finetune", "scratch"])
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2])
    epochs: int | None = Field(None, ge=1, description="finetune.epochs (finetune, scratch)")
    batch_size: int | None = Field(None, ge=1, description="finetune.batch_size")
    study_features: bool = Field(
        True,
        description="frozen heads read the embed stage's features of the run (embed.windows); "
        "false: the protocol embeds by fine-tuning's evaluation rule",
    )
    finetune: dict[str, Any] = Field(default_factory=dict, description="cape finetune settings")
    linear: dict[str, Any] = Field(default_factory=dict, description="linear probe parameters")
    mlp: dict[str, Any] = Field(default_factory=dict, description="MLP head parameters")
    head_std_floor: float = Field(0.0, ge=0)
    bootstrap_resamples: int = Field(1000, ge=10)
    bootstrap_seed: int = Field(0, ge=0)
    confidence: float = Field(0.95, gt=0, lt=1)
    alpha: float = Field(0.05, gt=0, lt=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int | None = Field(None, ge=1, description="torch threads")
    keep_checkpoints: bool = False

    # Fields that are not LabelEfficiencyConfig's own (the rest pass through by name).
    STUDY_ONLY: ClassVar[tuple[str, ...]] = (
        "run",
        "run_seed",
        "epochs",
        "batch_size",
        "study_features",
    )

    def protocol_values(self) -> dict[str, Any]:
        """The section as :class:`LabelEfficiencyConfig` values (no store, encoder, out_dir)."""
        values = {k: v for k, v in self.model_dump(mode="json").items() if k not in self.STUDY_ONLY}
        finetune = dict(values["finetune"])
        for name in ("epochs", "batch_size"):
            if getattr(self, name) is not None:
                finetune[name] = getattr(self, name)
        values["finetune"] = finetune
        return values


class ReportSection(_Section):
    enabled: bool = True
    tsne_per_cohort: int = Field(2000, ge=10, description="embeddings per cohort in t-SNE plots")
    seed: int = 0
    # Read back from study.yaml by cape.report.settings (cape report honours them too).
    min_cell_n: int = Field(20, ge=1, description="suppress subgroup rows with fewer test ECGs")
    signal_share: float = Field(
        0.5,
        gt=0,
        le=1,
        description="flag encoders keeping less of signal-spectrum's identifiability",
    )
    equivalence_margins: dict[str, float] = Field(
        default_factory=lambda: {"mae": 0.5, "auroc": 0.02},
        description="claim 1's 'no difference' margins per metric (TOST on per-seed "
        "differences; docs/report.md)",
    )


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
    # QC threshold overrides for ingest (`cape ingest --qc NAME=VALUE`): e.g. a stress
    # study whose exaggerated device filters stretch the measured QRS (docs/simulator.md).
    ingest_qc: dict[str, float | int | str] = Field(default_factory=dict)
    pretrain: PretrainSection = Field(default_factory=PretrainSection)
    embed: EmbedSection = Field(default_factory=EmbedSection)
    evaluate: EvaluateSection = Field(default_factory=EvaluateSection)
    label_efficiency: LabelEfficiencySection | None = None
    report: ReportSection = Field(default_factory=lambda: ReportSection())

    @model_validator(mode="after")
    def _ingest_qc(self) -> StudyConfig:
        if self.ingest_qc:
            from cape.qc import QCConfig

            known = sorted(QCConfig.__dataclass_fields__)
            for name in self.ingest_qc:
                if name not in known:
                    raise ValueError(
                        f"ingest_qc: unknown QC setting {name!r}{did_you_mean(name, known)}"
                    )
            try:
                QCConfig.from_overrides({k: str(v) for k, v in self.ingest_qc.items()})
            except (TypeError, ValueError) as error:
                raise ValueError(f"ingest_qc: {error}") from None
        return self

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

    @model_validator(mode="before")
    @classmethod
    def _report_bool(cls, values: Any) -> Any:
        # `report: false` is short for `report: {enabled: false}`.
        if isinstance(values, dict) and isinstance(values.get("report"), bool):
            values = dict(values, report={"enabled": values["report"]})
        return values
