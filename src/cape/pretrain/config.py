"""The pretraining configuration: typed, loaded from YAML, overridable from the CLI.

Defaults are the CAPE paper's training settings (Adam, learning rate 0.1,
half-period cosine decay, 512 patients = 1024 ECGs per batch, 200 epochs,
the ``paper`` encoder) with in-distribution batching. The bundled presets
(``paper``, ``small``) live in ``cape/presets/pretrain-<name>.yaml``.
``--set key=value`` overrides take dotted keys (``model.norm=group``); the
value is read as YAML (``0.1``, ``[a, b]``, ``null``) and then checked against
the field's type like the file's values.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cape import settings
from cape.augment import ViewAugmenter
from cape.errors import CapeError, did_you_mean, validation_messages
from cape.store import SAMPLING_RATE_HZ

if TYPE_CHECKING:
    from cape.models import EncoderSpec

PRESET_NAMES = ("paper", "small")

# Settings that may change when a run is resumed (where and how fast it runs,
# not what it computes). Everything else must match the checkpoint's config.
RUNTIME_FIELDS = frozenset(
    {
        "store",
        "out_dir",
        "num_workers",
        "threads",
        "device",
        "log_every_steps",
        "checkpoint_every_steps",
        "tensorboard",
        "progress",
        "compile",
    }
)


SplitName = Literal["train", "val", "test"]


def _test_split_only() -> list[SplitName]:
    return ["test"]


class ModelSettings(BaseModel):
    """Encoder preset, its overrides, and the projection head."""

    model_config = ConfigDict(extra="forbid")

    preset: Literal["paper", "small"] = Field(
        default="paper", description="encoder architecture preset"
    )
    norm: Literal["batch", "group"] | None = Field(
        default=None, description="normalisation layers (null: the preset's, batch norm)"
    )
    dropout: float | None = Field(default=None, ge=0.0, lt=1.0, description="dropout in the blocks")
    pooling: Literal["flatten", "avg"] | None = Field(
        default=None, description="how the last feature map becomes a vector (null: the preset's)"
    )
    feature_dim: int | None = Field(default=None, ge=1, description="encoder output size")
    projection_hidden_dim: int | None = Field(
        default=None, ge=1, description="projection head hidden size (null: feature_dim)"
    )
    projection_dim: int = Field(default=128, ge=1, description="projection head output size")


class MaskingSettings(BaseModel):
    """Zero masking of each view (see :mod:`cape.augment`)."""

    model_config = ConfigDict(extra="forbid")

    spans: int = Field(default=2, ge=0, description="zero spans per view (per lead if per_lead)")
    min_seconds: float = Field(default=0.1, ge=0.0, description="shortest span, seconds")
    max_seconds: float = Field(default=0.5, ge=0.0, description="longest span, seconds")
    per_lead: bool = Field(
        default=False, description="draw spans per lead instead of across all leads"
    )
    probability: float = Field(default=1.0, ge=0.0, le=1.0, description="chance a view is masked")


class PretrainConfig(BaseModel):
    """Everything that defines a pretraining run."""

    model_config = ConfigDict(extra="forbid")

    # -- data
    store: Path | None = Field(default=None, description="cohort store directory (required)")
    out_dir: Path = Field(default=Path("runs/pretrain"), description="run directory")
    cohorts: list[str] | None = Field(
        default=None, description="cohorts to pretrain on (null: all)"
    )
    exclude_splits: list[SplitName] | dict[str, list[SplitName]] = Field(
        default_factory=_test_split_only,
        description="splits left out of pretraining: a list (every cohort) or a mapping "
        "cohort -> list (only those cohorts; e.g. the heads' training cohort's test split)",
    )
    batching: Literal["random", "idb", "idb-mask"] = Field(
        default="idb",
        description="random (CAPE-X), idb (CAPE-Z, the paper's Eq. 3) or idb-mask (mixed batches, "
        "same-cohort negatives: this project's variant)",
    )
    small_cohorts: Literal["error", "drop"] = Field(
        default="error", description="idb: a cohort smaller than one batch is an error or dropped"
    )
    batch_patients: int = Field(
        default=512, ge=1, description="patients per global batch (2x ECGs)"
    )
    crop_seconds: float = Field(default=7.0, gt=0.0, description="view length, seconds")
    masking: MaskingSettings = Field(default_factory=lambda: MaskingSettings())
    # -- model and loss
    model: ModelSettings = Field(default_factory=lambda: ModelSettings())
    temperature: float = Field(default=0.1, gt=0.0, description="NT-Xent temperature")
    # -- optimisation
    epochs: int = Field(default=200, ge=1)
    optimizer: Literal["adam", "adamw", "sgd"] = Field(
        default="adam", description="adam (the paper's), adamw, or sgd (momentum below)"
    )
    momentum: float = Field(default=0.9, ge=0.0, lt=1.0, description="sgd momentum")
    lr: float = Field(default=0.1, gt=0.0, description="peak learning rate")
    min_lr: float = Field(default=0.0, ge=0.0, description="learning rate at the end of the cosine")
    weight_decay: float = Field(default=0.0, ge=0.0, description="not applied to norms and biases")
    warmup_epochs: float = Field(default=0.0, ge=0.0, description="linear warm-up from 0, epochs")
    schedule: Literal["cosine", "constant"] = "cosine"
    seed: int = Field(default=0, ge=0)
    # -- runtime
    device: Literal["auto", "cpu", "cuda"] = "auto"
    num_workers: int = Field(default=2, ge=0, description="DataLoader worker processes per rank")
    threads: int | None = Field(
        default=None, ge=1, description="torch threads per process (null: torch's)"
    )
    bf16: bool = Field(default=True, description="bf16 autocast on CUDA (ignored on CPU)")
    compile: bool = Field(default=False, description="torch.compile the model")
    deterministic: bool = Field(default=False, description="torch.use_deterministic_algorithms")
    precision: Literal["float32", "float64"] = Field(
        default="float32",
        description="parameter and input dtype; float64 for exact checks, not for training",
    )
    checkpoint_every_steps: int = Field(default=0, ge=0, description="0: at epoch ends only")
    log_every_steps: int = Field(default=50, ge=1)
    tensorboard: bool = False
    progress: bool = True

    def encoder_spec(self) -> EncoderSpec:
        """The encoder architecture this config trains.

        Raises:
            CapeError: an invalid combination of model settings.
        """
        # Imported here: checking a config (cape study check) must not load torch.
        from cape.models import encoder_spec

        try:
            return encoder_spec(
                self.model.preset,
                input_samples=self.crop_samples,
                norm=self.model.norm,
                dropout=self.model.dropout,
                pooling=self.model.pooling,
                feature_dim=self.model.feature_dim,
            )
        except ValueError as error:
            raise CapeError(f"config model settings: {error}") from error

    @property
    def crop_samples(self) -> int:
        """View length in samples at the store's 400 Hz."""
        return round(self.crop_seconds * SAMPLING_RATE_HZ)

    def augmenter(self) -> ViewAugmenter:
        """The view augmentation this config describes.

        Raises:
            CapeError: ``masking.min_seconds > masking.max_seconds``.
        """
        mask = self.masking
        if mask.min_seconds > mask.max_seconds:
            raise CapeError(
                f"masking.min_seconds ({mask.min_seconds}) exceeds masking.max_seconds "
                f"({mask.max_seconds})"
            )
        return ViewAugmenter(
            crop_samples=self.crop_samples,
            mask_spans=mask.spans,
            mask_min_samples=round(mask.min_seconds * SAMPLING_RATE_HZ),
            mask_max_samples=round(mask.max_seconds * SAMPLING_RATE_HZ),
            mask_per_lead=mask.per_lead,
            mask_probability=mask.probability,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain YAML/JSON-safe values."""
        return self.model_dump(mode="json")

    def differences(
        self, other: PretrainConfig, ignore: frozenset[str] = RUNTIME_FIELDS
    ) -> list[str]:
        """Dotted names of the settings that differ, ``ignore`` left out."""
        return settings.differences(self.to_dict(), other.to_dict(), ignore)


def apply_overrides(values: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply ``key=value`` overrides (dotted keys, YAML values) to a raw config dict.

    Raises:
        CapeError: a malformed override or an unknown key.
    """
    return settings.apply_overrides(
        values, overrides, PretrainConfig, "setting", " (`cape pretrain --print-config` lists them)"
    )


def validate_config(values: dict[str, Any], source: str) -> PretrainConfig:
    """Check a raw dict against :class:`PretrainConfig`.

    Raises:
        CapeError: naming ``source`` and each bad setting.
    """
    try:
        return PretrainConfig.model_validate(values)
    except ValidationError as error:
        problems = "; ".join(validation_messages(error, PretrainConfig))
        raise CapeError(f"{source}: invalid pretraining config: {problems}") from None


def read_config_file(path_or_preset: str | Path) -> tuple[dict[str, Any], str]:
    """Raw values of a config file or bundled preset, and a name for messages.

    Raises:
        CapeError: neither a file nor a preset, or not a YAML mapping.
    """
    path = Path(path_or_preset)
    if path.is_file():
        text, source = path.read_text(), str(path)
    elif str(path_or_preset) in PRESET_NAMES:
        resource = resources.files("cape") / "presets" / f"pretrain-{path_or_preset}.yaml"
        text, source = resource.read_text(), f"preset {path_or_preset!r}"
    else:
        raise CapeError(
            f"config {path_or_preset!s} is neither a file nor a preset ({', '.join(PRESET_NAMES)})"
            f"{did_you_mean(path_or_preset, PRESET_NAMES)}"
        )
    try:
        values = yaml.safe_load(text) or {}
    except yaml.YAMLError as error:
        raise CapeError(f"{source}: not valid YAML: {error}") from error
    if not isinstance(values, dict):
        raise CapeError(f"{source}: a pretraining config must be a YAML mapping")
    return values, source


def load_config(
    path_or_preset: str | Path | None = None, overrides: Sequence[str] = ()
) -> PretrainConfig:
    """Load a config file (or preset name, or the defaults) and apply ``--set`` overrides.

    Raises:
        CapeError: unreadable file, unknown key, or a value of the wrong type.
    """
    values, source = read_config_file(path_or_preset) if path_or_preset else ({}, "defaults")
    if overrides:
        source = f"{source} with --set overrides"
    return validate_config(apply_overrides(values, overrides), source)


def save_config(config: PretrainConfig, path: Path) -> None:
    """Write the resolved config as YAML (read back by :func:`load_config`)."""
    path.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
