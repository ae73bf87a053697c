"""t-SNE subsampling and panels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cape.embed import write_features
from cape.report.collect import FeatureDir
from cape.report.embedding import embed_tsne, subsample, tsne_figure


def test_subsample_caps_each_cohort_and_is_seeded() -> None:
    cohorts = np.array(["a"] * 50 + ["b"] * 7 + ["c"] * 20)
    rows = subsample(cohorts, 10, seed=3)
    counts = pd.Series(cohorts[rows]).value_counts().to_dict()
    assert counts == {"a": 10, "b": 7, "c": 10}
    assert np.all(np.diff(rows) > 0)
    assert np.array_equal(rows, subsample(cohorts, 10, seed=3))
    assert not np.array_equal(rows, subsample(cohorts, 10, seed=4))
    with pytest.raises(ValueError, match="per_cohort"):
        subsample(cohorts, 0, seed=0)


def test_tsne_separates_separated_cohorts(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    n = 40
    index = pd.DataFrame(
        {
            "record_id": [f"r{k}" for k in range(2 * n)],
            "cohort": ["a"] * n + ["b"] * n,
            "device": ["d1"] * n + [None] * n,
        }
    )
    features = rng.normal(size=(2 * n, 6)).astype(np.float32)
    features[n:, 0] += 12.0
    write_features(tmp_path / "f", features, index, {})
    embedding = embed_tsne(FeatureDir("m", 0, tmp_path / "f", False), per_cohort=30, seed=0)
    assert embedding.coordinates.shape == (60, 2)
    assert set(embedding.labels["device"]) == {"d1", "unknown"}
    assert set(embedding.labels["ethnicity"]) == {"unknown"}
    # Well-separated cohorts stay separated: every point's nearest neighbour is of its cohort.
    xy = embedding.coordinates
    distances = np.linalg.norm(xy[:, None] - xy[None], axis=-1)
    np.fill_diagonal(distances, np.inf)
    labels = embedding.labels["cohort"].to_numpy()
    assert np.mean(labels[distances.argmin(axis=1)] == labels) > 0.95
    figure = tsne_figure(embedding, {"a": "#000000", "b": "#ff0000"}, "m", ["line one"])
    assert len(figure.axes) == 2  # ethnicity is all unknown: no panel
