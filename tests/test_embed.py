import numpy as np
import pandas as pd
import pytest
import torch

from cape.embed import (
    EmbedSettings,
    embed_indices,
    load_features,
    select_indices,
    window_starts,
    write_features,
)
from cape.errors import CapeError
from cape.store import create_store_from_arrays


class MeanEncoder(torch.nn.Module):
    """Features = per-lead mean and first sample: easy to compute by hand."""

    def forward(self, x):
        return torch.cat([x.mean(dim=-1), x[:, :, 0]], dim=1)


@pytest.fixture()
def store(tmp_path):
    rng = np.random.default_rng(0)
    signals = rng.normal(size=(5, 8, 4000)).astype(np.float32)
    signals[2, :, 2800:] = 0.0
    manifest = pd.DataFrame(
        {
            "record_id": list("abcde"),
            "patient_id": list("11223"),
            "cohort": ["x", "x", "y", "y", "y"],
            "valid_length": [4000, 4000, 2800, 4000, 4000],
            "split": ["train", "test"] * 2 + ["val"],
        }
    )
    return create_store_from_arrays(tmp_path / "s", signals, manifest)


def test_window_starts():
    assert window_starts(4000, 2800, 1).tolist() == [600]
    assert window_starts(2800, 2800, 1).tolist() == [0]
    assert window_starts(4000, 2800, 3).tolist() == [0, 600, 1200]


def test_central_window_and_mean_of_windows(store):
    torch.set_num_threads(1)
    idx = np.arange(len(store))
    central = embed_indices(MeanEncoder(), store, idx, EmbedSettings(batch_size=2), progress=False)
    for k in idx:
        start = window_starts(int(store.valid_lengths[k]), 2800, 1)[0]
        x = store.read(int(k))[:, start : start + 2800]
        np.testing.assert_allclose(central[k, :8], x.mean(axis=1), rtol=1e-5, atol=1e-6)
    three = embed_indices(MeanEncoder(), store, idx, EmbedSettings(n_windows=3), progress=False)
    x = store.read(0)
    expected = np.mean([x[:, s : s + 2800].mean(axis=1) for s in (0, 600, 1200)], axis=0)
    np.testing.assert_allclose(three[0, :8], expected, rtol=1e-5, atol=1e-6)
    again = embed_indices(MeanEncoder(), store, idx, EmbedSettings(num_workers=1), progress=False)
    np.testing.assert_array_equal(again, central)


def test_select_and_round_trip(store, tmp_path):
    assert select_indices(store.manifest, ["y"], ["train"]).tolist() == [2]
    with pytest.raises(CapeError, match="not in the store"):
        select_indices(store.manifest, ["zzz"])
    features = np.ones((2, 3), np.float32)
    write_features(tmp_path / "f", features, store.manifest.iloc[:2], {"n": 2})
    loaded, index = load_features(tmp_path / "f")
    np.testing.assert_array_equal(loaded, features)
    assert list(index["record_id"]) == ["a", "b"]
    with pytest.raises(CapeError, match="no CAPE features"):
        load_features(tmp_path / "none")
