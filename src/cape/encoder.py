"""The notebook entry point: load an encoder, embed raw ECG arrays.

::

    import cape
    encoder = cape.load_encoder("runs/idb")             # run dir, checkpoint or export
    features = encoder.embed(signals, sampling_rate=500, mains_hz=50)   # (n, 256) float32

:meth:`Encoder.embed` runs exactly what ``cape ingest`` + ``cape embed`` run:
lead selection and derivation, units, 400 Hz resampling with band-pass and
notch, the 10 s slot with its int16 microvolt rounding
(:func:`cape.arrays.store_slots`), then the central window of each record's
valid part through the encoder (:func:`cape.embed.embed_indices`). The
features equal those of the CLI path on the same signals up to the float
rounding of the encoder's arithmetic.

An *exported folder* (``cape export``) holds ``model.safetensors`` (the
encoder's ``state_dict``) and ``config.json`` (architecture, signal
contract, provenance); see ``docs/api.md``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cape.arrays import Signals, as_records, store_slots
from cape.embed import EmbedSettings, embed_indices
from cape.errors import CapeError
from cape.leads import STORE_LEADS
from cape.models import EncoderSpec, ResNet1dEncoder
from cape.preprocessing import PreprocessingConfig
from cape.store.layout import SAMPLING_RATE_HZ, SLOT_SAMPLES

logger = logging.getLogger(__name__)

EXPORT_FORMAT = "cape-encoder"
EXPORT_FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
_CHUNK_RECORDS = 512  # records preprocessed at once: bounded memory for any n


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"``: CUDA when available, else the CPU."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def signal_contract(window_samples: int, preprocessing: PreprocessingConfig) -> dict[str, Any]:
    """What the encoder expects as input, as plain JSON values (``config.json``)."""
    return {
        "leads": list(STORE_LEADS),
        "sampling_rate_hz": SAMPLING_RATE_HZ,
        "units": "mV",
        "input_shape": ["batch", len(STORE_LEADS), window_samples],
        "window_samples": window_samples,
        "window_seconds": window_samples / SAMPLING_RATE_HZ,
        "window_rule": (
            "the central window of the record's valid part (after fitting it into a "
            f"{SLOT_SAMPLES}-sample slot: central {SLOT_SAMPLES} samples of longer records); "
            "shorter records are zero-padded at the end"
        ),
        "slot_samples": SLOT_SAMPLES,
        "quantisation": "rounded to int16 microvolts (1 µV steps), as the cohort store keeps them",
        "normalisation": "none: millivolts as preprocessed, no per-record or per-lead scaling",
        "preprocessing": preprocessing.to_dict(),
        "output": "post-ReLU features, (batch, feature_dim) float32",
    }


class Encoder:
    """A pretrained CAPE encoder with its signal contract; embeds raw ECG arrays.

    Args:
        module: the network, ``(batch, 8, window_samples)`` mV -> ``(batch, feature_dim)``.
        window_samples: input length at 400 Hz (the pretraining crop).
        preprocessing: the parameters the training store was ingested with.
        info: provenance (where the weights came from, the training config).
    """

    def __init__(
        self,
        module: ResNet1dEncoder,
        window_samples: int,
        preprocessing: PreprocessingConfig | None = None,
        info: dict[str, Any] | None = None,
    ) -> None:
        self.module = module.eval()
        self.window_samples = int(window_samples)
        self.preprocessing = preprocessing or PreprocessingConfig()
        self.info = dict(info or {})

    @property
    def spec(self) -> EncoderSpec:
        return self.module.spec

    @property
    def feature_dim(self) -> int:
        return self.module.feature_dim

    @property
    def contract(self) -> dict[str, Any]:
        """The signal contract (leads, rate, window, units, preprocessing)."""
        return signal_contract(self.window_samples, self.preprocessing)

    def __repr__(self) -> str:
        return (
            f"Encoder(feature_dim={self.feature_dim}, window={self.window_samples} samples "
            f"at {SAMPLING_RATE_HZ} Hz, source={self.info.get('source')!r})"
        )

    def embed(
        self,
        signals: Signals,
        sampling_rate: float,
        leads: Sequence[str] | None = None,
        mains_hz: float | None = None,
        units: str = "mV",
        batch_size: int = 64,
        device: str | torch.device | None = None,
        n_windows: int = 1,
        progress: bool = False,
    ) -> np.ndarray:
        """Features of raw ECGs, computed as ``cape ingest`` + ``cape embed`` would.

        Args:
            signals: ``(n, leads, samples)`` array, one ``(leads, samples)``
                record, or a list of ``(leads, samples)`` arrays of different
                lengths; all samples valid, at ``sampling_rate``, in ``units``.
            sampling_rate: source sampling rate in Hz (any rate 50-10,000 Hz).
            leads: lead names in row order, any common spelling (``DI``,
                ``AVR``, ``C1``, ``Lead II``); ``None``: the standard 12 (I, II,
                III, aVR, aVL, aVF, V1-V6) for 12 rows, I, II, V1-V6 for 8.
                Missing I or II is derived from III or the augmented leads.
            mains_hz: mains frequency of the recording's country (50 or 60)
                for the notch; ``None``: no notch (``--mains none``).
            units: ``"mV"``, ``"uV"`` or ``"V"``.
            batch_size: windows per forward pass.
            device: ``"cpu"``, ``"cuda"`` or ``"auto"`` (``None``: where the
                network is); CUDA runs in bf16
                autocast, as ``cape embed`` does.
            n_windows: windows per record (features averaged), as ``cape embed --windows``.
            progress: show a progress bar.

        Returns:
            float32 ``(n, feature_dim)``, rows in input order.

        Raises:
            ValueError: bad shapes, unknown units or lead names, missing leads,
                non-finite samples, records too short to filter (< 1 s).
        """
        if device is None:
            torch_device = next(self.module.parameters()).device
        else:
            torch_device = resolve_device(device)
        settings = EmbedSettings(
            window_samples=self.window_samples, n_windows=n_windows, batch_size=batch_size
        )
        records = as_records(signals)
        chunks = []
        for start in range(0, len(records), _CHUNK_RECORDS):
            slots = store_slots(
                records[start : start + _CHUNK_RECORDS],
                sampling_rate,
                leads=leads,
                units=units,
                mains_hz=mains_hz,
                config=self.preprocessing,
            )
            chunks.append(
                embed_indices(
                    self.module,
                    slots,
                    np.arange(len(slots)),
                    settings,
                    device=torch_device,
                    progress=progress,
                )
            )
        if not chunks:
            return np.zeros((0, self.feature_dim), dtype=np.float32)
        return np.concatenate(chunks)

    __call__ = embed


def load_encoder(path: str | Path, device: str | torch.device = "cpu") -> Encoder:
    """Load a pretrained encoder for :meth:`Encoder.embed`.

    Args:
        path: a pretraining run directory, a checkpoint ``.pt``, an
            ``encoder.safetensors``, or a folder written by ``cape export``.
        device: where the network lives (``"auto"``: CUDA when available).

    Returns:
        The :class:`Encoder`, in eval mode.

    Raises:
        CapeError: the path holds none of those, or its files are unreadable.
    """
    path = Path(path)
    torch_device = resolve_device(device)
    if path.is_dir() and (path / CONFIG_FILE).is_file():
        encoder = _load_exported(path)
        encoder.module.to(torch_device)
        return encoder
    from cape.pretrain import load_encoder as load_pretrained
    from cape.pretrain.rundir import RunDir

    module, config = load_pretrained(path, device=torch_device)
    info: dict[str, Any] = {"source": str(path.resolve()), "training_config": config.to_dict()}
    if path.is_dir() and RunDir(path).provenance.is_file():
        info["run"] = json.loads(RunDir(path).provenance.read_text())
    return Encoder(module, config.crop_samples, _store_preprocessing(config.store), info)


def _store_preprocessing(store: Path | None) -> PreprocessingConfig:
    """The preprocessing the training store's cohorts were ingested with (ingest's default
    when the store is not reachable from here or its cohorts disagree)."""
    from cape.store.layout import HEADER_FILE

    header_path = Path(store) / HEADER_FILE if store is not None else None
    if header_path is None or not header_path.is_file():
        return PreprocessingConfig()
    cohorts = json.loads(header_path.read_text()).get("cohorts", {})
    found = {json.dumps(c.get("preprocessing"), sort_keys=True) for c in cohorts.values()}
    if len(found) != 1:
        logger.warning("%s: cohorts differ in preprocessing; using the defaults", store)
        return PreprocessingConfig()
    values = json.loads(found.pop())
    return PreprocessingConfig(**values) if values else PreprocessingConfig()


def _load_exported(path: Path) -> Encoder:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        config = json.loads((path / CONFIG_FILE).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise CapeError(f"{path / CONFIG_FILE} cannot be read: {error}") from error
    if config.get("format") != EXPORT_FORMAT:
        raise CapeError(f"{path / CONFIG_FILE} is not a CAPE encoder export (no format field)")
    if int(config.get("format_version", 0)) > EXPORT_FORMAT_VERSION:
        raise CapeError(
            f"{path} was exported by a newer CAPE (format {config['format_version']}); upgrade"
        )
    try:
        spec = EncoderSpec.from_dict(config["architecture"])
        contract = config["signal_contract"]
        preprocessing = PreprocessingConfig(**contract["preprocessing"])
        window = int(contract["window_samples"])
    except (KeyError, TypeError, ValueError) as error:
        raise CapeError(f"{path / CONFIG_FILE}: bad or missing field ({error})") from error
    try:
        state = load_file(str(path / WEIGHTS_FILE))
    except (SafetensorError, OSError) as error:
        raise CapeError(f"{path / WEIGHTS_FILE} cannot be read: {error}") from error
    module = ResNet1dEncoder(spec)
    try:
        module.load_state_dict(state)
    except RuntimeError as error:
        raise CapeError(f"{path / WEIGHTS_FILE} does not fit its config.json: {error}") from error
    info = {"source": str(path.resolve()), **config.get("provenance", {})}
    return Encoder(module, window, preprocessing, info)
