"""``cape export``: an encoder in a folder others can load without CAPE's run layout.

The folder follows the layout Hugging Face users know::

    model.safetensors   the encoder's state_dict (float32; names as ResNet1dEncoder's)
    config.json         architecture, signal contract, provenance (docs/api.md)
    README.md           a short model card: what goes in, what comes out, where it came from
    model.onnx          with --format onnx: the same network, dynamic batch axis

:func:`cape.load_encoder` reads it back; so can plain PyTorch or ONNX Runtime
(``docs/api.md`` shows both).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
import shutil
import warnings
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

import cape
from cape.encoder import (
    CONFIG_FILE,
    EXPORT_FORMAT,
    EXPORT_FORMAT_VERSION,
    WEIGHTS_FILE,
    Encoder,
    load_encoder,
)
from cape.errors import CapeError

logger = logging.getLogger(__name__)

ONNX_FILE = "model.onnx"
CARD_FILE = "README.md"
ONNX_OPSET = 18
FORMATS = ("safetensors", "onnx")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def export_config(encoder: Encoder, weights_sha256: str) -> dict[str, Any]:
    """The ``config.json`` of an export: architecture, signal contract, provenance."""
    return {
        "format": EXPORT_FORMAT,
        "format_version": EXPORT_FORMAT_VERSION,
        "model_type": "cape-resnet1d",
        "architecture": encoder.spec.to_dict(),
        "feature_dim": encoder.feature_dim,
        "signal_contract": encoder.contract,
        "provenance": {
            **{k: v for k, v in encoder.info.items() if k != "source"},
            "exported_from": encoder.info.get("source"),
            "exported_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "exported_by": f"cape {cape.__version__}",
            "weights_sha256": weights_sha256,
        },
    }


def model_card(config: dict[str, Any]) -> str:
    """A short README.md for the folder."""
    contract = config["signal_contract"]
    training = config["provenance"].get("training_config", {})
    return (
        "# CAPE ECG encoder\n\n"
        "A 1-D ResNet (Ribeiro et al., Nat Commun 2020) pretrained by patient-contrastive "
        f"learning with CAPE ({training.get('batching', 'unknown')} batching).\n\n"
        f"- input: `{contract['input_shape']}` float32, leads {', '.join(contract['leads'])}, "
        f"{contract['sampling_rate_hz']} Hz, millivolts, band-pass "
        f"{contract['preprocessing']['highpass_hz']}-{contract['preprocessing']['lowpass_hz']} Hz "
        "zero-phase with mains notch, no normalisation\n"
        f"- output: `{config['feature_dim']}`-d post-ReLU features\n"
        "- files: `model.safetensors` (state_dict), `config.json` (architecture, signal contract, "
        "provenance)\n\n"
        "```python\nimport cape\nencoder = cape.load_encoder('THIS_FOLDER')\n"
        "features = encoder.embed(signals, sampling_rate=500, mains_hz=50)\n```\n"
    )


def export_onnx(encoder: Encoder, path: Path) -> None:
    """Write the network as ONNX (opset 18, dynamic batch axis) with the torch.export exporter.

    Raises:
        CapeError: the exporter's dependencies (``onnx``, ``onnxscript``) are missing.
    """
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as error:
        raise CapeError(
            f"--format onnx needs the export extra: pip install 'cape-ecg[export]' ({error})"
        ) from error
    module = encoder.module.float().cpu().eval()
    example = torch.zeros(2, encoder.spec.n_leads, encoder.window_samples)
    batch = torch.export.Dim("batch", min=1)

    chatter = logging.getLogger("torch.onnx")
    level = chatter.level
    chatter.setLevel(logging.ERROR)  # notes about optional packages (torchvision) it skips
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                module,
                (example,),
                input_names=["signals"],
                output_names=["features"],
                dynamic_shapes=({0: batch},),
                opset_version=ONNX_OPSET,
                dynamo=True,
                verbose=False,
            )
    finally:
        chatter.setLevel(level)
    if program is None:  # only when no path is given *and* the legacy exporter runs
        raise CapeError("the ONNX exporter returned nothing")
    program.save(str(path))


def export_encoder_folder(
    source: str | Path, out: str | Path, formats: tuple[str, ...] = ("safetensors",)
) -> Path:
    """Write an encoder as ``model.safetensors`` + ``config.json`` (+ ``model.onnx``).

    Args:
        source: run directory, checkpoint, ``encoder.safetensors`` or an earlier export.
        out: folder to write (created; files in it are replaced).
        formats: ``"safetensors"`` always happens; ``"onnx"`` adds ``model.onnx``.

    Returns:
        ``out``.

    Raises:
        CapeError: unreadable source, unknown format, missing ONNX dependencies.
    """
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise CapeError(f"unknown export formats {unknown}; choose from {list(FORMATS)}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise CapeError(f"{out} exists and is not a folder")
    encoder = load_encoder(source)
    # Written into a hidden sibling first and moved file by file: a failed export (say,
    # ONNX dependencies missing) leaves an earlier export in `out` untouched.
    staging = out.with_name(f".{out.name}.export-{os.getpid()}")
    staging.mkdir(parents=True, exist_ok=True)
    try:
        tensors = {
            k: (v.float() if v.is_floating_point() else v).detach().cpu().contiguous()
            for k, v in encoder.module.state_dict().items()
        }
        save_file(tensors, str(staging / WEIGHTS_FILE), metadata={"format": "pt"})
        os.chmod(staging / WEIGHTS_FILE, 0o644)  # safetensors writes it private (0600)
        config = export_config(encoder, _sha256(staging / WEIGHTS_FILE))
        (staging / CONFIG_FILE).write_text(json.dumps(config, indent=2, default=str) + "\n")
        (staging / CARD_FILE).write_text(model_card(config))
        if "onnx" in formats:
            export_onnx(encoder, staging / ONNX_FILE)
        out.mkdir(parents=True, exist_ok=True)
        stale = out / ONNX_FILE
        if "onnx" not in formats and stale.exists():
            logger.warning("removing %s: it holds the weights of an earlier export", stale)
            stale.unlink()
        for path in staging.iterdir():
            os.replace(path, out / path.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out
