"""Building the model from a config, exporting the encoder, loading it back.

``encoder.safetensors`` carries the encoder's weights plus, in its metadata,
the encoder spec and the run's resolved config -- it is self-contained, so a
shared file needs no run directory to be used.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from cape.errors import CapeError
from cape.models import ContrastiveModel, EncoderSpec, ResNet1dEncoder
from cape.pretrain.checkpoint import checkpoint_config, load_checkpoint
from cape.pretrain.config import PretrainConfig, load_config, validate_config
from cape.pretrain.rundir import RunDir

ENCODER_FORMAT = "cape-encoder"


def build_model(config: PretrainConfig) -> ContrastiveModel:
    """Encoder + projection head initialised from ``config.seed``.

    The initialisation runs on a forked RNG, so it neither depends on nor
    disturbs the global torch RNG: the same config always gives the same
    initial weights (the "untrained" baseline of the evaluation stage).
    """
    spec = config.encoder_spec()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        return ContrastiveModel(
            ResNet1dEncoder(spec), config.model.projection_hidden_dim, config.model.projection_dim
        )


def export_encoder(encoder: ResNet1dEncoder, config: PretrainConfig, path: Path) -> None:
    """Write the encoder's weights as safetensors (atomically), spec and config in metadata."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in encoder.state_dict().items()}
    metadata = {
        "format": ENCODER_FORMAT,
        "encoder_spec": json.dumps(encoder.spec.to_dict()),
        "config": json.dumps(config.to_dict()),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        save_file(tensors, temp_name, metadata=metadata)
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def _load_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], EncoderSpec, PretrainConfig]:
    try:
        with safe_open(str(path), framework="pt") as file:
            metadata = file.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError) as error:
        raise CapeError(f"{path} cannot be read as safetensors: {error}") from error
    if metadata.get("format") != ENCODER_FORMAT:
        raise CapeError(f"{path} is not a CAPE encoder export")
    spec = EncoderSpec.from_dict(json.loads(metadata["encoder_spec"]))
    config = validate_config(json.loads(metadata["config"]), f"config stored in {path}")
    return tensors, spec, config


def load_encoder(
    source: str | Path, untrained: bool = False, device: str | torch.device = "cpu"
) -> tuple[ResNet1dEncoder, PretrainConfig]:
    """Load a pretrained encoder (or its untrained twin) in eval mode.

    Args:
        source: a run directory (uses ``encoder.safetensors``, else
            ``checkpoints/last.pt``), a checkpoint ``.pt`` or an ``encoder.safetensors``.
        untrained: return a randomly initialised encoder of the same
            architecture and seed instead of the trained weights.
        device: where to put it.

    Returns:
        ``(encoder, config)``; ``encoder(x)`` maps ``(batch, 8, crop_samples)`` mV to
        ``(batch, feature_dim)`` features.

    Raises:
        CapeError: missing or unreadable files, or weights that do not fit the architecture.
    """
    path = Path(source)
    if not path.exists():
        raise CapeError(f"{path} does not exist (expected a run directory, checkpoint or encoder)")
    state: dict[str, torch.Tensor] | None = None
    if path.is_dir():
        run = RunDir(path)
        if not run.config.is_file():
            raise CapeError(f"{path} is not a pretraining run directory (no config.yaml)")
        config = load_config(run.config)
        if not untrained:
            if run.encoder.is_file():
                state, _, _ = _load_safetensors(run.encoder)
            elif run.last_checkpoint.is_file():
                state = _encoder_state(load_checkpoint(run.last_checkpoint)["model"])
            else:
                raise CapeError(f"{path} holds no encoder.safetensors or checkpoints/last.pt yet")
    elif path.suffix == ".safetensors":
        state, _, config = _load_safetensors(path)
    else:
        payload = load_checkpoint(path)
        config = checkpoint_config(payload, path)
        state = _encoder_state(payload["model"])
    encoder = build_model(config).encoder
    if state is not None and not untrained:
        try:
            encoder.load_state_dict(state)
        except RuntimeError as error:
            raise CapeError(
                f"weights in {path} do not fit the encoder of its config: {error}"
            ) from error
    return encoder.to(device).eval(), config


def _encoder_state(model_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    prefix = "encoder."
    return {k[len(prefix) :]: v for k, v in model_state.items() if k.startswith(prefix)}
