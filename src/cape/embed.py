"""Features: run a (pre)trained encoder once over a store's ECGs.

The encoder sees what it saw in pretraining — 7 s windows (8 x 2800 at
400 Hz) — taken from inside each record's valid length: the central window by
default, or the mean of the features of several evenly spaced windows.

Features are written as ``features.npy`` (float32, ``(n, feature_dim)``) with
``index.parquet`` beside it (one row per feature row: record id, patient,
cohort, split and the labels from the manifest) and ``embed.json`` (what made
them). Loading returns both; rows are aligned by position.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from cape.errors import CapeError

logger = logging.getLogger(__name__)

FEATURES_FILE = "features.npy"
INDEX_FILE = "index.parquet"
INFO_FILE = "embed.json"
LABEL_COLUMNS = (
    "record_id",
    "patient_id",
    "cohort",
    "split",
    "age",
    "age_topcoded",
    "sex",
    "device",
    "site",
    "ethnicity",
    "diagnoses",
    "superclasses",
    "subclasses",
    "strat_fold",
    "valid_length",
)


def window_starts(valid_length: int, window: int, n_windows: int) -> np.ndarray:
    """Start samples of ``n_windows`` evenly spaced windows inside the valid length.

    One window is the central one. A record shorter than the window (never
    stored: QC needs 7 s) starts at 0 and the encoder sees the zero padding.
    """
    room = max(int(valid_length) - window, 0)
    if n_windows <= 1:
        return np.array([room // 2])
    return np.linspace(0, room, n_windows).round().astype(np.int64)


class WindowDataset(Dataset[torch.Tensor]):
    """``(n_windows, 8, window)`` float32 views of each selected ECG."""

    def __init__(self, store: Any, indices: np.ndarray, window: int, n_windows: int) -> None:
        self.store = store
        self.indices = np.asarray(indices, dtype=np.int64)
        self.window = window
        self.n_windows = n_windows

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, position: int) -> torch.Tensor:
        index = int(self.indices[position])
        signal = self.store.read(index)
        valid = int(self.store.valid_lengths[index])
        starts = window_starts(valid, self.window, self.n_windows)
        views = np.stack([signal[:, s : s + self.window] for s in starts])
        if views.shape[-1] < self.window:  # only for records shorter than a window
            views = np.pad(views, ((0, 0), (0, 0), (0, self.window - views.shape[-1])))
        return torch.from_numpy(np.ascontiguousarray(views))


@dataclass
class EmbedSettings:
    """How features are computed (saved in ``embed.json``)."""

    window_samples: int = 2800
    n_windows: int = 1
    batch_size: int = 64
    num_workers: int = 0


@torch.no_grad()
def embed_indices(
    encoder: torch.nn.Module,
    store: Any,
    indices: np.ndarray,
    settings: EmbedSettings | None = None,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> np.ndarray:
    """Features of the store's ECGs ``indices``.

    Args:
        encoder: maps ``(batch, 8, window)`` mV to ``(batch, feature_dim)``; put in eval mode here.
        store: a :class:`cape.store.CohortStore` (or anything with ``read`` and ``valid_lengths``).
        indices: global ECG indices.
        settings: window length, windows per ECG (features averaged), batch size, workers.
        device: where the encoder runs; bf16 autocast is used on CUDA.

    Returns:
        float32 ``(len(indices), feature_dim)``, deterministic.
    """
    settings = settings or EmbedSettings()
    device = torch.device(device)
    encoder = encoder.to(device).eval()
    dataset = WindowDataset(store, indices, settings.window_samples, settings.n_windows)
    loader = DataLoader(
        dataset,
        batch_size=settings.batch_size,
        shuffle=False,
        num_workers=settings.num_workers,
        persistent_workers=False,
        pin_memory=device.type == "cuda",
    )
    chunks = []
    bar = tqdm(total=len(dataset), unit="ECG", desc="embed", disable=not progress)
    for batch in loader:
        n, k = batch.shape[:2]
        flat = batch.reshape(n * k, *batch.shape[2:]).to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            features = encoder(flat)
        features = features.float().reshape(n, k, -1).mean(dim=1)
        chunks.append(features.cpu().numpy())
        bar.update(n)
    bar.close()
    if not chunks:
        return np.zeros((0, 0), dtype=np.float32)
    return np.concatenate(chunks).astype(np.float32)


def select_indices(
    manifest: pd.DataFrame,
    cohorts: list[str] | None = None,
    splits: list[str] | None = None,
) -> np.ndarray:
    """Global indices of the ECGs of some cohorts and splits (all when ``None``).

    Raises:
        CapeError: a named cohort is not in the store.
    """
    mask = np.ones(len(manifest), dtype=bool)
    if cohorts:
        known = set(manifest["cohort"].astype(str))
        unknown = sorted(set(cohorts) - known)
        if unknown:
            raise CapeError(f"cohorts {unknown} are not in the store (it has {sorted(known)})")
        mask &= manifest["cohort"].isin(cohorts).to_numpy()
    if splits:
        mask &= manifest["split"].isin(splits).to_numpy()
    return np.flatnonzero(mask)


def write_features(
    out: str | Path, features: np.ndarray, index: pd.DataFrame, info: dict[str, Any]
) -> Path:
    """Write ``features.npy``, ``index.parquet`` and ``embed.json`` into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if len(features) != len(index):
        raise ValueError(f"{len(features)} feature rows for {len(index)} index rows")
    tmp = out / (FEATURES_FILE + ".tmp.npy")
    np.save(tmp, features)
    tmp.replace(out / FEATURES_FILE)
    index.reset_index(drop=True).to_parquet(out / INDEX_FILE, index=False)
    (out / INFO_FILE).write_text(json.dumps(info, indent=2, sort_keys=True, default=str))
    return out


def load_features(path: str | Path) -> tuple[np.ndarray, pd.DataFrame]:
    """Read features written by :func:`write_features`.

    Raises:
        CapeError: files missing, or the index does not match the features.
    """
    path = Path(path)
    if not (path / FEATURES_FILE).is_file() or not (path / INDEX_FILE).is_file():
        raise CapeError(
            f"{path} holds no CAPE features ({FEATURES_FILE} + {INDEX_FILE}); run `cape embed`"
        )
    features = np.load(path / FEATURES_FILE)
    index = pd.read_parquet(path / INDEX_FILE)
    if len(features) != len(index):
        raise CapeError(f"{path}: {len(features)} feature rows but {len(index)} index rows")
    return features, index


def embed_store(
    checkpoint: str | Path,
    store_path: str | Path,
    out: str | Path,
    untrained: bool = False,
    cohorts: list[str] | None = None,
    splits: list[str] | None = None,
    settings: EmbedSettings | None = None,
    device: str = "cpu",
    progress: bool = True,
) -> Path:
    """Embed a store's ECGs with a pretraining run's encoder and write the features.

    Args:
        checkpoint: run directory, checkpoint or ``encoder.safetensors``.
        store_path: the cohort store.
        out: features directory.
        untrained: use the randomly initialised twin of the encoder (baseline).
        cohorts, splits: restrict to these (all when ``None``).
    """
    from cape.pretrain import load_encoder
    from cape.store import CohortStore

    settings = settings or EmbedSettings()
    encoder, config = load_encoder(checkpoint, untrained=untrained, device=device)
    settings.window_samples = int(config.crop_samples)
    store = CohortStore.open(store_path)
    indices = select_indices(store.manifest, cohorts, splits)
    if len(indices) == 0:
        raise CapeError(f"no ECGs in {store_path} for cohorts={cohorts} splits={splits}")
    features = embed_indices(encoder, store, indices, settings, device=device, progress=progress)
    manifest = store.manifest.iloc[indices]
    index = manifest[[c for c in LABEL_COLUMNS if c in manifest]].copy()
    index.insert(0, "store_index", indices)
    info = {
        "checkpoint": str(Path(checkpoint).resolve()),
        "untrained": untrained,
        "store": str(Path(store_path).resolve()),
        "store_fingerprint": store.fingerprint(),
        "settings": asdict(settings),
        "feature_dim": int(features.shape[1]),
        "n": len(indices),
    }
    return write_features(out, features, index, info)
