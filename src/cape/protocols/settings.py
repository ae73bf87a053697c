"""Settings of an evaluation protocol run (saved in the run config next to the results)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from cape.errors import CapeError
from cape.protocols.tasks import TASKS

ProtocolName = Literal["composition", "ood"]
PROTOCOLS: tuple[ProtocolName, ...] = ("composition", "ood")
HEAD_KINDS = ("mlp", "linear")
AGE_TARGETS = ("standardise", "age-sigmoid")
TargetPool = Literal["unseen", "all", "test"]
TARGET_POOLS: tuple[TargetPool, ...] = ("unseen", "all", "test")
# The paper's hidden-size grid: every combination of these widths over two layers.
PAPER_HIDDEN_GRID = (32, 64, 128, 256)

# The paper's settings: 10,000/2,000/2,000 ECGs and 6 runs for the composition
# matrix; 10 runs on the training cohort's whole 50/10/40 split for OOD.
PAPER_DEFAULTS: dict[str, dict[str, Any]] = {
    "composition": {"runs": 6, "sizes": (10_000, 2_000, 2_000)},
    "ood": {"runs": 10, "sizes": (None, None, None)},
}


@dataclass
class HeadSettings:
    """Which head to train and overrides of its constructor parameters.

    Attributes:
        kind: ``"mlp"`` (the paper's heads) or ``"linear"`` (ridge / logistic probe).
        params: passed to :func:`cape.heads.make_head`, e.g. ``max_epochs``,
            ``patience``, ``batch_size``, ``learning_rate``, ``hidden_sizes``
            (MLP) or ``C`` (linear). The seed is set per run and may not be given.
        std_floor: the heads' ``relative_std_floor``: 0 (default) is plain
            z-scoring of the features with the training split's statistics, as the
            authors' code; e.g. 0.1 floors each std at a tenth of the median std
            (:mod:`cape.heads.scaling`). Recorded so the report can say which.
        age_target: MLP age head: ``"standardise"`` (target standardised, linear
            output) or ``"age-sigmoid"`` (the authors': ``(age - 7) / 100``, sigmoid).
        hidden_grid: MLP: choose the hidden sizes per head by validation score over
            every combination of these widths in ``grid_layers`` layers (the paper:
            32, 64, 128, 256 in 2 layers: 16 fits per head); None uses ``hidden_sizes``.
        grid_layers: hidden layers of the grid.
    """

    kind: str = "mlp"
    params: dict[str, Any] = field(default_factory=dict)
    std_floor: float = 0.0
    age_target: str = "standardise"
    hidden_grid: tuple[int, ...] | None = None
    grid_layers: int = 2

    def validate(self) -> None:
        """Check the head settings.

        Raises:
            CapeError: naming the setting and the problem.
        """
        if self.kind not in HEAD_KINDS:
            raise CapeError(f"unknown head {self.kind!r}; expected one of {HEAD_KINDS}")
        if "seed" in self.params:
            raise CapeError("head parameter 'seed' is set per run from --seed; do not pass it")
        for key, setting in (
            ("relative_std_floor", "std_floor"),
            ("target_transform", "age_target"),
        ):
            if key in self.params:
                raise CapeError(f"head parameter {key!r}: use the head setting {setting!r}")
        if self.std_floor < 0:
            raise CapeError(f"std_floor must be >= 0, got {self.std_floor}")
        if self.age_target not in AGE_TARGETS:
            raise CapeError(f"age_target must be one of {AGE_TARGETS}, got {self.age_target!r}")
        if self.age_target != "standardise" and self.kind != "mlp":
            raise CapeError(f"age_target={self.age_target!r} needs the mlp head")
        if self.hidden_grid is not None:
            if self.kind != "mlp":
                raise CapeError("a hidden-size grid needs the mlp head")
            if not self.hidden_grid or any(int(w) < 1 for w in self.hidden_grid):
                raise CapeError(f"hidden_grid needs positive widths, got {self.hidden_grid}")
            if self.grid_layers < 1:
                raise CapeError(f"grid_layers must be >= 1, got {self.grid_layers}")
            if "hidden_sizes" in self.params:
                raise CapeError("give either hidden_sizes or a hidden-size grid, not both")

    def describe_scaling(self) -> str:
        """One line for reports: how the head's inputs were standardised."""
        if self.std_floor == 0:
            return "plain z-scoring with the training split's mean and SD (the authors' code)"
        return (
            f"z-scoring with each SD floored at {self.std_floor:g} x the median SD "
            "(cape.heads.scaling; damps units that are nearly constant in training)"
        )


@dataclass
class ProtocolSettings:
    """Everything that defines a protocol run besides the features.

    Attributes:
        protocol: ``"composition"`` or ``"ood"``.
        tasks: task names (see :data:`cape.protocols.tasks.TASKS`).
        runs: runs per cell; run ``r`` has its own sampling and head seed.
        sizes: train/val/test ECGs drawn per run (None: the whole split).
        strict_sizes: raise instead of capping sizes at what a split holds.
        seed: base seed; every sample and head seed derives from it.
        head: head kind and parameter overrides.
        topcoded: keep or exclude top-coded ages.
        cohorts: composition: labelled cohorts (default all); OOD: target cohorts
            (default all but the training cohort).
        train_cohort: OOD: the cohort the heads are trained on.
        ood_test_n: OOD: ECGs drawn once from each target cohort's pool (None: all);
            the paper: 10,000.
        ood_target_pool: OOD: where the target ECGs come from. ``"unseen"``
            (default): the whole cohort except the splits that any evaluated
            encoder's pretraining used (read from its pretraining config);
            ``"all"``: the whole cohort, as the paper (its encoders were pretrained
            on those cohorts' ECGs, without labels) — say so in the study;
            ``"test"``: only the target's test split (this project's former protocol).
        ceiling: OOD: also train the in-cohort head on every target cohort.
        compare: two model names for paired tests (Wilcoxon, DeLong).
        subgroups: OOD: metrics per sex, age bin, ethnicity and device.
        feature_shift: OOD: feature-shift diagnostic per model and target.
        shift_threshold_sd: a dimension counts as shifted beyond this many training SDs.
        alpha: significance level used to count per-run DeLong tests.
    """

    protocol: ProtocolName = "composition"
    tasks: tuple[str, ...] = ("age", "sex")
    runs: int = 6
    sizes: tuple[int | None, int | None, int | None] = (10_000, 2_000, 2_000)
    strict_sizes: bool = False
    seed: int = 0
    head: HeadSettings = field(default_factory=HeadSettings)
    topcoded: Literal["keep", "exclude"] = "keep"
    cohorts: tuple[str, ...] | None = None
    train_cohort: str | None = None
    ood_test_n: int | None = 10_000
    ood_target_pool: TargetPool = "unseen"
    ceiling: bool = True
    compare: tuple[str, str] | None = None
    subgroups: bool = True
    feature_shift: bool = True
    shift_threshold_sd: float = 5.0
    alpha: float = 0.05

    @classmethod
    def for_protocol(cls, protocol: str, **overrides: Any) -> ProtocolSettings:
        """Settings with the paper's defaults for ``protocol``; None overrides are ignored.

        Raises:
            CapeError: unknown protocol, or invalid settings (see :meth:`validate`).
        """
        if protocol not in PROTOCOLS:
            raise CapeError(f"unknown protocol {protocol!r}; expected one of {PROTOCOLS}")
        values = {**PAPER_DEFAULTS[protocol], "protocol": protocol}
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        """Check the settings.

        Raises:
            CapeError: naming the setting and the problem.
        """
        if self.protocol not in PROTOCOLS:
            raise CapeError(f"unknown protocol {self.protocol!r}; expected one of {PROTOCOLS}")
        unknown = [t for t in self.tasks if t not in TASKS]
        if unknown or not self.tasks:
            raise CapeError(f"unknown tasks {unknown}; expected some of {sorted(TASKS)}")
        if self.runs < 1:
            raise CapeError(f"runs must be >= 1, got {self.runs}")
        if len(self.sizes) != 3 or any(s is not None and s < 1 for s in self.sizes):
            raise CapeError(f"sizes must be three positive train/val/test sizes, got {self.sizes}")
        self.head.validate()
        if self.ood_target_pool not in TARGET_POOLS:
            raise CapeError(
                f"ood_target_pool must be one of {TARGET_POOLS}, got {self.ood_target_pool!r}"
            )
        if self.topcoded not in ("keep", "exclude"):
            raise CapeError(f"topcoded must be 'keep' or 'exclude', got {self.topcoded!r}")
        if self.ood_test_n is not None and self.ood_test_n < 1:
            raise CapeError(f"ood_test_n must be >= 1, got {self.ood_test_n}")
        if self.compare is not None and (
            len(self.compare) != 2 or self.compare[0] == self.compare[1]
        ):
            raise CapeError(f"compare needs two different model names, got {self.compare}")
        if not 0.0 < self.alpha < 1.0:
            raise CapeError(f"alpha must be in (0, 1), got {self.alpha}")
        if self.seed < 0:
            raise CapeError(f"seed must be >= 0, got {self.seed}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly copy."""
        return asdict(self)
