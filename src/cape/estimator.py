"""A scikit-learn transformer that embeds raw ECGs, so an encoder can sit in a ``Pipeline``.

::

    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from cape.estimator import CapeEmbedder

    model = make_pipeline(CapeEmbedder("runs/idb", sampling_rate=500, mains_hz=50), Ridge())
    model.fit(train_signals, train_ages)            # signals: (n, 12, samples)

Nothing is learned by :meth:`CapeEmbedder.fit`: the encoder is pretrained
and frozen; fitting only loads it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from cape.encoder import Encoder, load_encoder


class CapeEmbedder(TransformerMixin, BaseEstimator):
    """Raw ECGs -> frozen CAPE features, as :meth:`cape.encoder.Encoder.embed`.

    Args:
        encoder: a loaded :class:`cape.encoder.Encoder`, or a path
            :func:`cape.load_encoder` accepts (run directory, checkpoint, export).
        sampling_rate: sampling rate of the signals in Hz.
        leads: lead names in row order (``None``: the standard 12, or I, II, V1-V6).
        mains_hz: 50 or 60 for the notch, ``None`` for none.
        units: ``"mV"``, ``"uV"`` or ``"V"``.
        batch_size: windows per forward pass.
        device: ``"cpu"``, ``"cuda"``, ``"auto"``, or ``None`` (where the encoder is).
        n_windows: windows per record, features averaged.

    Attributes:
        encoder_: the loaded encoder (set by :meth:`fit`).
        n_features_out_: feature dimension.
    """

    def __init__(
        self,
        encoder: Encoder | str | Path,
        sampling_rate: float = 500.0,
        leads: Sequence[str] | None = None,
        mains_hz: float | None = None,
        units: str = "mV",
        batch_size: int = 64,
        device: str | None = None,
        n_windows: int = 1,
    ) -> None:
        self.encoder = encoder
        self.sampling_rate = sampling_rate
        self.leads = leads
        self.mains_hz = mains_hz
        self.units = units
        self.batch_size = batch_size
        self.device = device
        self.n_windows = n_windows

    def _loaded(self) -> Encoder:
        if isinstance(self.encoder, Encoder):
            return self.encoder
        return load_encoder(self.encoder, device=self.device or "cpu")

    def fit(self, X: Any, y: Any = None) -> CapeEmbedder:
        """Load the encoder; nothing is learned. Returns ``self``."""
        self.encoder_ = self._loaded()
        self.n_features_out_ = self.encoder_.feature_dim
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Features of ``X`` (``(n, leads, samples)`` or a list of records): float32 ``(n, d)``."""
        encoder = getattr(self, "encoder_", None) or self._loaded()
        return encoder.embed(
            X,
            self.sampling_rate,
            leads=self.leads,
            mains_hz=self.mains_hz,
            units=self.units,
            batch_size=self.batch_size,
            device=self.device,
            n_windows=self.n_windows,
        )

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """``cape0 ... cape{d-1}``."""
        encoder = getattr(self, "encoder_", None) or self._loaded()
        return np.array([f"cape{k}" for k in range(encoder.feature_dim)], dtype=object)
