"""Settings of an evaluation protocol run (saved in the run config next to the results)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from cape.errors import CapeError
from cape.protocols.tasks import TASKS

ProtocolName = Literal["composition", "ood"]
PROTOCOLS: tuple[ProtocolName, ...] = ("composition", "ood")
HEAD_KINDS = ("mlp", "linear")

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
    """

    kind: str = "mlp"
    params: dict[str, Any] = field(default_factory=dict)


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
        ood_test_n: OOD: ECGs drawn from each target cohort's test split (None: all).
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
        if self.head.kind not in HEAD_KINDS:
            raise CapeError(f"unknown head {self.head.kind!r}; expected one of {HEAD_KINDS}")
        if "seed" in self.head.params:
            raise CapeError("head parameter 'seed' is set per run from --seed; do not pass it")
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
