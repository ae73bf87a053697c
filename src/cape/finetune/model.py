"""The fine-tuned network: encoder -> fixed feature standardisation -> head; saving, loading.

The head is the protocols' head made a module: the paper's MLP
(:func:`cape.heads.mlp_base.build_mlp`, age 256-128, sex 256-256, multi-label
256-128, dropout 0.2) or one linear layer. Features are z-scored with the
mean and std of the *initial* encoder's features on training ECGs (held in
buffers, so they travel with the weights) -- what the frozen-feature heads do
-- so a linear-probe warm-up on a pretrained encoder starts where the linear
probe protocol does. Regression targets are standardised the same way
(``target_mean``, ``target_scale``); outputs are decoded back to years.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from cape.errors import CapeError
from cape.finetune.config import FinetuneConfig
from cape.heads import MLPClassifierHead, MLPRegressorHead, MultiLabelHead, TaskKind
from cape.heads.mlp_base import build_mlp
from cape.heads.scaling import floored_std
from cape.models import EncoderSpec, ResNet1dEncoder
from cape.samplers import stream_rng

MODEL_FORMAT = "cape-finetuned"
HEAD_STREAM = 24
DEFAULT_HIDDEN_SIZES: dict[str, tuple[int, ...]] = {
    "regression": MLPRegressorHead._default_hidden_sizes,
    "binary": MLPClassifierHead._default_hidden_sizes,
    "multilabel": MultiLabelHead._default_hidden_sizes,
}


class FinetuneModel(nn.Module):
    """Encoder + standardisation + head.

    Args:
        encoder: the ECG encoder, ``(batch, 8, samples)`` mV -> ``(batch, d)``.
        head: ``(batch, d)`` -> ``(batch, k)`` logits or standardised outputs.
        kind: the task kind (how outputs are decoded).
    """

    feature_mean: torch.Tensor
    feature_scale: torch.Tensor
    target_mean: torch.Tensor
    target_scale: torch.Tensor

    def __init__(self, encoder: ResNet1dEncoder, head: nn.Module, kind: TaskKind) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head
        self.kind = kind
        d = encoder.feature_dim
        self.register_buffer("feature_mean", torch.zeros(d))
        self.register_buffer("feature_scale", torch.ones(d))
        self.register_buffer("target_mean", torch.zeros(()))
        self.register_buffer("target_scale", torch.ones(()))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Standardised features ``(batch, d)`` of windows ``(batch, 8, samples)``."""
        return (self.encoder(x) - self.feature_mean) / self.feature_scale

    def forward(self, x: torch.Tensor, freeze_encoder: bool = False) -> torch.Tensor:
        """Head outputs ``(batch, k)``; ``freeze_encoder``: no gradient reaches the encoder."""
        if freeze_encoder:
            with torch.no_grad():
                features = self.features(x)
        else:
            features = self.features(x)
        return self.head(features)

    def head_outputs(self, features: torch.Tensor) -> torch.Tensor:
        """Head outputs of already standardised features."""
        return self.head(features)

    def decode(self, outputs: torch.Tensor) -> torch.Tensor:
        """Outputs -> predictions: years (regression) or probabilities."""
        outputs = outputs.double()
        if self.kind == "regression":
            return outputs * self.target_scale.double() + self.target_mean.double()
        return torch.sigmoid(outputs)

    def encode_targets(self, targets: torch.Tensor) -> torch.Tensor:
        """Targets in the loss's space (regression: standardised)."""
        if self.kind == "regression":
            return (targets - self.target_mean) / self.target_scale
        return targets

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """MSE on standardised targets (regression) or binary cross-entropy per output."""
        encoded = self.encode_targets(targets.to(outputs.dtype))
        if self.kind == "regression":
            return nn.functional.mse_loss(outputs, encoded)
        return nn.functional.binary_cross_entropy_with_logits(outputs, encoded)

    def set_target_scaling(self, targets: np.ndarray) -> None:
        """Regression: standardise with the training targets' mean and std.

        Raises:
            CapeError: constant training targets.
        """
        if self.kind != "regression":
            return
        std = float(np.std(targets))
        if std == 0.0:
            raise CapeError("the training targets are constant: there is nothing to learn")
        self.target_mean.fill_(float(np.mean(targets)))
        self.target_scale.fill_(std)

    def set_feature_scaling(self, features: np.ndarray, relative_floor: float = 0.1) -> None:
        """Fix the feature standardisation from ``(n, d)`` features.

        The std is floored at ``relative_floor`` times the median std
        (:func:`cape.heads.scaling.floored_std`): end to end, the encoder moves, and
        a unit nearly constant at the start, divided by its tiny std, would blow the
        head's input (and the loss) up.
        """
        features = np.asarray(features, dtype=np.float64)
        mean = features.mean(axis=0)
        scale = floored_std(features.std(axis=0), relative_floor=relative_floor)
        self.feature_mean.copy_(torch.from_numpy(mean))
        self.feature_scale.copy_(torch.from_numpy(scale))


def hidden_sizes(config: FinetuneConfig, kind: TaskKind) -> tuple[int, ...]:
    """The head's hidden layer widths (none for a linear head)."""
    if config.head == "linear":
        return ()
    if config.head_hidden_sizes is not None:
        return tuple(int(h) for h in config.head_hidden_sizes)
    return DEFAULT_HIDDEN_SIZES[kind]


def build_head(
    n_inputs: int, sizes: tuple[int, ...], n_outputs: int, dropout: float, seed: int
) -> nn.Module:
    """The head, initialised from ``seed`` on a forked RNG (the global one is untouched)."""
    state = stream_rng(seed, HEAD_STREAM).integers(0, 2**62)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(state))
        return build_mlp(n_inputs, sizes, n_outputs, dropout)


def scratch_encoder(spec: EncoderSpec, seed: int) -> ResNet1dEncoder:
    """A randomly initialised encoder; the same seed gives pretraining's untrained twin.

    :func:`cape.pretrain.build_model` seeds torch with the run seed and builds
    the encoder first, so with equal spec and seed the weights are identical.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return ResNet1dEncoder(spec)


def resolve_encoder(config: FinetuneConfig) -> tuple[ResNet1dEncoder, int, dict[str, Any]]:
    """The starting encoder, its window length in samples, and where it came from.

    ``init: pretrained`` loads ``config.encoder`` through :func:`cape.load_encoder`
    (run directory, checkpoint, ``encoder.safetensors`` or exported folder).
    ``init: scratch`` builds that encoder's architecture -- or ``config.model``'s
    when no encoder is given -- with random weights seeded by ``config.seed``.

    Raises:
        CapeError: no encoder for ``pretrained``; an unreadable source; a window
            length the architecture cannot take.
    """
    info: dict[str, Any] = {"init": config.init}
    if config.encoder is None:
        if config.init == "pretrained":
            raise CapeError(
                "fine-tuning needs a pretrained encoder (--encoder RUN_DIR); "
                "use --from-scratch for the supervised baseline"
            )
        window = config.crop_samples(2800)
        spec = config.scratch_spec(window)
        info["encoder_source"] = None
        return scratch_encoder(spec, config.seed), window, info
    from cape.encoder import load_encoder

    loaded = load_encoder(config.encoder)
    window = config.crop_samples(loaded.window_samples)
    spec = loaded.spec
    if spec.pooling == "flatten" and window != spec.input_samples:
        raise CapeError(
            f"encoder {config.encoder} flattens its last feature map, so it takes windows of "
            f"exactly {spec.input_samples} samples; crop_seconds asks for {window}"
        )
    info["encoder_source"] = str(Path(config.encoder).resolve())
    training = loaded.info.get("training_config") or {}
    info["encoder_seed"] = int(training.get("seed", 0)) if isinstance(training, dict) else 0
    if config.init == "scratch":
        return scratch_encoder(spec, config.seed), window, info
    return loaded.module.cpu().float(), window, info


def param_groups(model: FinetuneModel, config: FinetuneConfig) -> list[dict[str, Any]]:
    """Discriminative learning rates: encoder at ``encoder_lr``, head at ``lr``.

    Weight decay goes to weights only (not to norms and biases). Each group
    keeps its ``name`` and ``base_lr``; the loop scales ``base_lr`` by the schedule.
    """
    groups = []
    for name, module, lr in (
        ("encoder", model.encoder, config.encoder_lr),
        ("head", model.head, config.lr),
    ):
        decay = [p for p in module.parameters() if p.ndim > 1]
        no_decay = [p for p in module.parameters() if p.ndim <= 1]
        for params, weight_decay in ((decay, config.weight_decay), (no_decay, 0.0)):
            if params:
                groups.append(
                    {
                        "params": params,
                        "weight_decay": weight_decay,
                        "lr": lr,
                        "base_lr": lr,
                        "name": name,
                    }
                )
    return groups


def make_optimizer(model: FinetuneModel, config: FinetuneConfig) -> torch.optim.Optimizer:
    """Adam, AdamW or SGD (momentum) over :func:`param_groups`."""
    groups = param_groups(model, config)
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum)
    optimizer_class = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    return optimizer_class(groups, lr=config.lr)


def save_model(model: FinetuneModel, metadata: dict[str, Any], path: Path) -> None:
    """Write the model's weights and buffers as safetensors (atomically), metadata as JSON."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta = {"format": MODEL_FORMAT, "metadata": json.dumps(metadata, default=str)}
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        save_file(tensors, temp_name, metadata=meta)
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def load_finetuned(source: str | Path) -> tuple[FinetuneModel, dict[str, Any]]:
    """Load a fine-tuned model (eval mode, CPU) from a run directory or its ``model.safetensors``.

    Returns:
        ``(model, metadata)``; ``metadata`` has ``encoder_spec``, ``window_samples``,
        ``task``, ``kind``, ``label_names``, ``hidden_sizes`` and the run's ``config``.
        ``model.decode(model(x))`` gives years or probabilities for windows ``x``.

    Raises:
        CapeError: missing or unreadable file, or not a fine-tuned CAPE model.
    """
    path = Path(source)
    if path.is_dir():
        path = path / "model.safetensors"
    if not path.is_file():
        raise CapeError(f"{path} does not exist (run `cape finetune` first)")
    try:
        with safe_open(str(path), framework="pt") as file:
            meta = file.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError) as error:
        raise CapeError(f"{path} cannot be read as safetensors: {error}") from error
    if meta.get("format") != MODEL_FORMAT:
        raise CapeError(f"{path} is not a fine-tuned CAPE model")
    metadata = json.loads(meta["metadata"])
    spec = EncoderSpec.from_dict(metadata["encoder_spec"])
    kind = metadata["kind"]
    head = build_mlp(
        spec.feature_dim,
        tuple(metadata["hidden_sizes"]),
        len(metadata["label_names"]),
        float(metadata["head_dropout"]),
    )
    model = FinetuneModel(ResNet1dEncoder(spec), head, kind)
    model.load_state_dict(tensors)
    return model.eval(), metadata
