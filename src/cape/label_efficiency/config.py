"""Settings of a label-efficiency run: typed, from YAML and ``key=value`` overrides.

A run compares *methods* (:data:`METHODS`) trained on nested, seeded shares
(*fractions*) of one cohort's training patients, for several *seeds*. Every
(method, fraction, seed) is one *cell*. Settings that decide what a cell
computes are fixed for a run directory (:meth:`LabelEfficiencyConfig.fixed`);
fractions, methods and seeds may grow between invocations (new cells), and the
runtime settings (device, threads, progress) may change.

``finetune`` holds :class:`cape.finetune.FinetuneConfig` settings for the
``finetune`` and ``scratch`` methods (epochs, batch size, learning rates,
...); the protocol sets the keys in :data:`RESERVED_FINETUNE_KEYS` itself.
``linear`` and ``mlp`` hold parameters of the frozen-feature heads
(:func:`cape.heads.make_head`, e.g. ``C`` or ``max_epochs``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cape.errors import CapeError, did_you_mean, validation_messages
from cape.settings import parse_override

LINEAR, MLP, FINETUNE, SCRATCH = "linear", "mlp", "finetune", "scratch"
# Methods in the order tables and figures list them.
METHODS: tuple[str, ...] = (LINEAR, MLP, FINETUNE, SCRATCH)
FROZEN_METHODS = (LINEAR, MLP)
TRAINED_METHODS = (FINETUNE, SCRATCH)
METHOD_DESCRIPTIONS = {
    LINEAR: "linear probe on frozen features of the pretrained encoder",
    MLP: "MLP head on frozen features of the pretrained encoder",
    FINETUNE: "pretrained encoder + head trained end to end (cape finetune)",
    SCRATCH: "same architecture from random weights (cape finetune --from-scratch)",
}
DEFAULT_FRACTIONS = (0.01, 0.1, 1.0)
DEFAULT_SEEDS = (0, 1, 2)
# Set per cell by the protocol, so they may not be given under ``finetune``.
RESERVED_FINETUNE_KEYS = frozenset(
    {
        "store",
        "out_dir",
        "encoder",
        "task",
        "cohorts",
        "test_cohorts",
        "train_fraction",
        "seed",
        "init",
        "name",
        "topcoded",
    }
)
# May differ between invocations on one run directory (where and how fast, not what).
RUNTIME_FIELDS = frozenset(
    {"store", "out_dir", "features", "fractions", "methods", "seeds", "device", "threads"}
    | {"progress", "keep_checkpoints"}
)
CONFIG_FILE = "label-efficiency.yaml"


class LabelEfficiencyConfig(BaseModel):
    """Everything that defines a label-efficiency run."""

    model_config = ConfigDict(extra="forbid")

    # -- data
    store: Path | None = Field(default=None, description="cohort store with splits (required)")
    out_dir: Path = Field(default=Path("runs/label-efficiency"), description="run directory")
    encoder: Path | None = Field(
        default=None,
        description="pretrained encoder (run dir, checkpoint, .safetensors or export); needed "
        "by linear, mlp and finetune",
    )
    task: str = Field(
        default="age", description="age, sex, superclass or a list-valued manifest column"
    )
    cohort: str | None = Field(default=None, description="cohort whose train split is subsampled")
    test_cohorts: list[str] | None = Field(
        default=None, description="cohorts whose test split is scored (null: `cohort` only)"
    )
    topcoded: Literal["keep", "exclude"] = "keep"
    features: Path | None = Field(
        default=None,
        description="`cape embed` features of `encoder` on this store (null: embedded here, "
        "into OUT/features)",
    )
    # -- the grid
    fractions: list[float] = Field(default_factory=lambda: list(DEFAULT_FRACTIONS))
    methods: list[str] = Field(default_factory=lambda: list(METHODS))
    seeds: list[int] = Field(default_factory=lambda: list(DEFAULT_SEEDS))
    # -- methods
    finetune: dict[str, Any] = Field(
        default_factory=dict, description="cape finetune settings for finetune and scratch"
    )
    linear: dict[str, Any] = Field(default_factory=dict, description="linear probe parameters")
    mlp: dict[str, Any] = Field(default_factory=dict, description="MLP head parameters")
    head_std_floor: float = Field(
        default=0.0, ge=0.0, description="frozen heads' relative std floor (protocols' default)"
    )
    # -- statistics
    bootstrap_resamples: int = Field(default=1000, ge=10, description="per-cell CI over test ECGs")
    bootstrap_seed: int = Field(default=0, ge=0)
    confidence: float = Field(default=0.95, gt=0.0, lt=1.0)
    alpha: float = Field(default=0.05, gt=0.0, lt=1.0, description="counts DeLong tests")
    # -- runtime
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int | None = Field(default=None, ge=1, description="torch threads")
    progress: bool = Field(default=True, description="progress bars inside a cell")
    keep_checkpoints: bool = Field(
        default=False, description="keep fine-tuning checkpoints once a cell is recorded"
    )

    @field_validator("fractions")
    @classmethod
    def _check_fractions(cls, values: list[float]) -> list[float]:
        if not values:
            raise ValueError("give at least one fraction")
        bad = [v for v in values if not 0.0 < v <= 1.0]
        if bad:
            raise ValueError(f"fractions must be in (0, 1], got {bad}")
        if len(set(values)) != len(values):
            raise ValueError(f"fractions repeat: {values}")
        return sorted(float(v) for v in values)

    @field_validator("methods")
    @classmethod
    def _check_methods(cls, values: list[str]) -> list[str]:
        if not values:
            raise ValueError("give at least one method")
        for value in values:
            if value not in METHODS:
                raise ValueError(
                    f"unknown method {value!r}{did_you_mean(value, METHODS)}; "
                    f"expected some of {', '.join(METHODS)}"
                )
        if len(set(values)) != len(values):
            raise ValueError(f"methods repeat: {values}")
        return [m for m in METHODS if m in values]

    @field_validator("seeds")
    @classmethod
    def _check_seeds(cls, values: list[int]) -> list[int]:
        if not values or any(v < 0 for v in values) or len(set(values)) != len(values):
            raise ValueError(f"seeds must be distinct non-negative integers, got {values}")
        return sorted(int(v) for v in values)

    @field_validator("finetune")
    @classmethod
    def _check_finetune(cls, values: dict[str, Any]) -> dict[str, Any]:
        reserved = sorted(set(values) & RESERVED_FINETUNE_KEYS)
        if reserved:
            raise ValueError(
                f"{reserved} are set by the protocol per cell (use the top-level store, "
                "encoder, task, cohort, test_cohorts, fractions, seeds, topcoded)"
            )
        from cape.finetune.config import FinetuneConfig

        try:
            FinetuneConfig.model_validate(values)
        except ValidationError as error:
            problems = "; ".join(validation_messages(error, FinetuneConfig))
            raise ValueError(problems) from None
        return values

    def needs_encoder(self) -> list[str]:
        """The methods that need ``encoder``: ``finetune``, and the frozen heads unless
        ``features`` are given."""
        frozen = [] if self.features is not None else list(FROZEN_METHODS)
        return [m for m in self.methods if m == FINETUNE or m in frozen]

    def fixed(self) -> dict[str, Any]:
        """The settings that decide what a cell computes (must match on resume)."""
        return {k: v for k, v in self.to_dict().items() if k not in RUNTIME_FIELDS}

    def differences(self, saved: dict[str, Any]) -> list[str]:
        """Names of the fixed settings whose value differs from ``saved`` (a saved config)."""
        mine = self.fixed()
        theirs = {k: v for k, v in saved.items() if k not in RUNTIME_FIELDS}
        return sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))

    def to_dict(self) -> dict[str, Any]:
        """Plain YAML/JSON-safe values."""
        return self.model_dump(mode="json")


_KNOWN = set(LabelEfficiencyConfig.model_fields)
_DICT_FIELDS = ("finetune", "linear", "mlp")


def apply_overrides(values: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply ``key=value`` overrides (YAML values; ``finetune.epochs=2`` reaches a dict field).

    Raises:
        CapeError: a malformed override or an unknown key.
    """
    out = dict(values)
    for item in overrides:
        key, value = parse_override(item)
        top, dot, rest = key.partition(".")
        if top not in _KNOWN or (dot and top not in _DICT_FIELDS) or (dot and not rest):
            raise CapeError(
                f"--set {item!r}: unknown label-efficiency setting {key!r}"
                f"{did_you_mean(top, sorted(_KNOWN))}"
            )
        if dot:
            nested = dict(out.get(top) or {})
            nested[rest] = value
            out[top] = nested
        else:
            out[top] = value
    return out


def validate_config(values: dict[str, Any], source: str) -> LabelEfficiencyConfig:
    """Check a raw dict against :class:`LabelEfficiencyConfig`.

    Raises:
        CapeError: naming ``source`` and each bad setting, on one line.
    """
    try:
        return LabelEfficiencyConfig.model_validate(values)
    except ValidationError as error:
        problems = "; ".join(validation_messages(error, LabelEfficiencyConfig))
        raise CapeError(f"{source}: invalid label-efficiency settings: {problems}") from error


def load_config(
    path: str | Path | None = None, overrides: Sequence[str] = ()
) -> LabelEfficiencyConfig:
    """Load a YAML file (or the defaults) and apply ``key=value`` overrides.

    Raises:
        CapeError: unreadable file, unknown key, or a bad value.
    """
    values: dict[str, Any] = {}
    source = "label-efficiency defaults"
    if path is not None:
        file = Path(path)
        if not file.is_file():
            raise CapeError(f"label-efficiency config {file} does not exist")
        try:
            loaded = yaml.safe_load(file.read_text()) or {}
        except yaml.YAMLError as error:
            raise CapeError(f"{file}: not valid YAML: {error}") from error
        if not isinstance(loaded, dict):
            raise CapeError(f"{file}: a label-efficiency config must be a YAML mapping")
        values, source = loaded, str(file)
    if overrides:
        source = f"{source} with --set overrides"
    return validate_config(apply_overrides(values, overrides), source)


def save_config(config: LabelEfficiencyConfig, path: Path) -> None:
    """Write the resolved config as YAML (atomically; read back by :func:`load_config`)."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
    temporary.replace(path)
