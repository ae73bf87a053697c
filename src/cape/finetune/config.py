"""The fine-tuning configuration: typed, loaded from YAML, overridable from the CLI.

One config describes both methods that train an encoder on labels:

- ``init: pretrained`` -- a CAPE encoder (run directory, checkpoint,
  ``encoder.safetensors`` or ``cape export`` folder; resolved by
  :func:`cape.load_encoder`) plus a head, trained end to end;
- ``init: scratch`` -- the same architecture randomly initialised (from the
  ``encoder`` given, or from ``model`` settings when none is), trained with the
  same loop: the supervised baseline every fine-tuning number is compared with.

``key=value`` overrides take dotted keys (``masking.spans=0``); values are read
as YAML and checked against the field's type, as for pretraining.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cape import settings
from cape.augment import ViewAugmenter
from cape.errors import CapeError
from cape.pretrain.config import MaskingSettings
from cape.store import SAMPLING_RATE_HZ

if TYPE_CHECKING:  # cape.models imports torch; a study check needs only the config
    from cape.models import EncoderSpec

# Settings that may change when a run is resumed (where and how fast it runs,
# not what it computes). Everything else must match the checkpoint's config.
RUNTIME_FIELDS = frozenset(
    {
        "store",
        "out_dir",
        "encoder",
        "num_workers",
        "threads",
        "device",
        "log_every_steps",
        "checkpoint_every_steps",
        "progress",
        "eval_batch_size",
    }
)


class ScratchModelSettings(BaseModel):
    """The architecture of a from-scratch encoder when no ``encoder`` names one."""

    model_config = ConfigDict(extra="forbid")

    preset: Literal["paper", "small"] = Field(default="paper", description="encoder preset")
    norm: Literal["batch", "group"] | None = Field(default=None, description="null: the preset's")
    dropout: float | None = Field(default=None, ge=0.0, lt=1.0, description="dropout in blocks")
    pooling: Literal["flatten", "avg"] | None = Field(default=None, description="null: preset's")
    feature_dim: int | None = Field(default=None, ge=1, description="encoder output size")


class FinetuneConfig(BaseModel):
    """Everything that defines a fine-tuning (or from-scratch) run."""

    model_config = ConfigDict(extra="forbid")

    # -- data
    store: Path | None = Field(default=None, description="cohort store with splits (required)")
    out_dir: Path = Field(default=Path("runs/finetune"), description="run directory")
    task: str = Field(
        default="age",
        description="age (regression), sex (binary), superclass, or the name of any "
        "list-valued manifest column (multi-label, e.g. diagnoses)",
    )
    cohorts: list[str] | None = Field(
        default=None, description="cohorts whose train/val splits train the model (null: all)"
    )
    test_cohorts: list[str] | None = Field(
        default=None, description="cohorts whose test split is predicted (null: `cohorts`)"
    )
    train_fraction: float = Field(
        default=1.0,
        gt=0.0,
        le=1.0,
        description="share of the training patients used (per cohort, seeded, nested: "
        "a smaller fraction is a subset of a larger one for the same seed)",
    )
    topcoded: Literal["keep", "exclude"] = Field(
        default="keep", description="age: keep top-coded ages (PTB-XL's 90) or exclude them"
    )
    crop_seconds: float | None = Field(
        default=None, gt=0.0, description="window length (null: the encoder's, or 7 s)"
    )
    masking: MaskingSettings = Field(default_factory=lambda: MaskingSettings())
    eval_windows: int = Field(
        default=1, ge=1, description="evaluation windows per ECG (features averaged), as embed"
    )
    # -- model
    encoder: Path | None = Field(
        default=None, description="pretrained encoder: run dir, checkpoint, .safetensors, export"
    )
    init: Literal["pretrained", "scratch"] = Field(
        default="pretrained", description="pretrained weights or random initialisation"
    )
    model: ScratchModelSettings = Field(default_factory=lambda: ScratchModelSettings())
    head: Literal["mlp", "linear"] = Field(default="mlp", description="head on the features")
    head_hidden_sizes: list[int] | None = Field(
        default=None, description="MLP widths (null: the paper's: age 256-128, sex 256-256)"
    )
    head_dropout: float = Field(default=0.2, ge=0.0, lt=1.0)
    standardise_features: bool | None = Field(
        default=None,
        description="z-score the features with training statistics of the initial encoder "
        "(as the frozen-feature heads do) before the head; null: for a pretrained encoder "
        "only (a scratch encoder's initial features carry no statistics worth fixing, and "
        "a scale fixed from them blows the head's input up as the encoder learns)",
    )
    standardise_samples: int = Field(default=1024, ge=2, description="ECGs for those statistics")
    standardise_floor: float = Field(
        default=0.1,
        ge=0.0,
        description="std floor, a fraction of the median feature std: a nearly constant unit "
        "divided by its tiny std would turn any change of the encoder into a huge input",
    )
    # -- optimisation
    epochs: int = Field(default=30, ge=1)
    probe_epochs: int = Field(
        default=0, ge=0, description="first epochs train the head only (encoder frozen)"
    )
    batch_size: int = Field(default=64, ge=1, description="ECGs per global batch")
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    momentum: float = Field(default=0.9, ge=0.0, lt=1.0, description="sgd momentum")
    lr: float = Field(default=1e-3, gt=0.0, description="head learning rate")
    encoder_lr: float = Field(default=1e-4, ge=0.0, description="encoder learning rate")
    weight_decay: float = Field(default=0.0, ge=0.0, description="not applied to norms, biases")
    schedule: Literal["cosine", "constant"] = "cosine"
    patience: int = Field(
        default=5, ge=0, description="epochs without validation gain before stopping (0: never)"
    )
    min_delta: float = Field(default=0.0, ge=0.0, description="smallest gain that counts")
    seed: int = Field(default=0, ge=0)
    name: str | None = Field(
        default=None, description="model name in the results (null: finetune or scratch)"
    )
    # -- runtime
    device: Literal["auto", "cpu", "cuda"] = "auto"
    num_workers: int = Field(default=2, ge=0, description="DataLoader workers per rank")
    threads: int | None = Field(default=None, ge=1, description="torch threads per process")
    bf16: bool = Field(default=True, description="bf16 autocast on CUDA (ignored on CPU)")
    deterministic: bool = Field(default=False, description="torch.use_deterministic_algorithms")
    precision: Literal["float32", "float64"] = Field(
        default="float32", description="float64 for exact checks, not for training"
    )
    eval_batch_size: int = Field(default=128, ge=1)
    checkpoint_every_steps: int = Field(default=0, ge=0, description="0: at epoch ends only")
    log_every_steps: int = Field(default=50, ge=1)
    progress: bool = True

    @property
    def feature_standardisation(self) -> bool:
        """Whether the head sees features z-scored with the initial encoder's statistics."""
        if self.standardise_features is None:
            return self.init == "pretrained"
        return self.standardise_features

    @property
    def model_name(self) -> str:
        """Name of the model in the results tables."""
        return self.name or ("scratch" if self.init == "scratch" else "finetune")

    def crop_samples(self, default_samples: int) -> int:
        """Window length in samples (``default_samples`` when ``crop_seconds`` is unset)."""
        if self.crop_seconds is None:
            return int(default_samples)
        return round(self.crop_seconds * SAMPLING_RATE_HZ)

    def scratch_spec(self, input_samples: int) -> EncoderSpec:
        """The architecture named by ``model`` (used with ``init: scratch`` and no encoder).

        Raises:
            CapeError: an invalid combination of model settings.
        """
        from cape.models import encoder_spec

        try:
            return encoder_spec(
                self.model.preset,
                input_samples=input_samples,
                norm=self.model.norm,
                dropout=self.model.dropout,
                pooling=self.model.pooling,
                feature_dim=self.model.feature_dim,
            )
        except ValueError as error:
            raise CapeError(f"config model settings: {error}") from error

    def augmenter(self, crop_samples: int) -> ViewAugmenter:
        """Random crop + zero masking, as in pretraining.

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
            crop_samples=crop_samples,
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
        self, other: FinetuneConfig, ignore: frozenset[str] = RUNTIME_FIELDS
    ) -> list[str]:
        """Dotted names of the settings that differ, ``ignore`` left out."""
        return settings.differences(self.to_dict(), other.to_dict(), ignore)


def apply_overrides(values: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply ``key=value`` overrides (dotted keys, YAML values) to a raw config dict.

    Raises:
        CapeError: a malformed override or an unknown key.
    """
    return settings.apply_overrides(values, overrides, FinetuneConfig, "fine-tuning setting", "")


def validate_config(values: dict[str, Any], source: str) -> FinetuneConfig:
    """Check a raw dict against :class:`FinetuneConfig`.

    Raises:
        CapeError: naming ``source`` and each bad setting, on one line.
    """
    try:
        return FinetuneConfig.model_validate(values)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}"
            f" (got {e.get('input')!r})"
            for e in error.errors()
        )
        raise CapeError(f"{source}: invalid fine-tuning config: {problems}") from error


def load_finetune_config(
    path: str | Path | None = None, overrides: Sequence[str] = ()
) -> FinetuneConfig:
    """Load a YAML config file (or the defaults) and apply ``key=value`` overrides.

    Raises:
        CapeError: unreadable file, unknown key, or a value of the wrong type.
    """
    values: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        file = Path(path)
        if not file.is_file():
            raise CapeError(f"fine-tuning config {file} does not exist")
        try:
            loaded = yaml.safe_load(file.read_text()) or {}
        except yaml.YAMLError as error:
            raise CapeError(f"{file}: not valid YAML: {error}") from error
        if not isinstance(loaded, dict):
            raise CapeError(f"{file}: a fine-tuning config must be a YAML mapping")
        values, source = loaded, str(file)
    if overrides:
        source = f"{source} with --set overrides"
    return validate_config(apply_overrides(values, overrides), source)


def save_config(config: FinetuneConfig, path: Path) -> None:
    """Write the resolved config as YAML (read back by :func:`load_finetune_config`)."""
    path.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
