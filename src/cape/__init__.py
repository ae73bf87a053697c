"""CAPE: Contrasting by Augmented Patient Electrocardiograms.

A toolkit for patient-contrastive ECG foundation models: read clinical ECG
formats into a cohort store, pretrain with random or in-distribution batches,
extract features, train small heads and measure in- and out-of-distribution
performance with proper statistics.

From Python (see docs/api.md)::

    import cape
    encoder = cape.load_encoder("runs/idb")
    features = encoder.embed(signals, sampling_rate=500, mains_hz=50)
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# Top-level names, imported on first use so that `import cape` and `cape --help`
# do not load torch or scikit-learn.
_LAZY = {
    "load_encoder": "cape.encoder",
    "Encoder": "cape.encoder",
    "preprocess": "cape.preprocessing",
    "PreprocessingConfig": "cape.preprocessing",
    "CapeEmbedder": "cape.estimator",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'cape' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
