"""Shared synthetic features directories (built once per test session)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cape.protocols import FeatureSpec, HeadSettings

from .synthetic import make_index, write_dir

SHIFT = {"B": 3.0}  # cohort B's age dimension is shifted by 3 (45 years of age)


@pytest.fixture(autouse=True)
def one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def feature_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """good@0, good@1 (little noise), bad@0, bad@1 (much noise), untrained; cohorts A, B, C."""
    root = tmp_path_factory.mktemp("features")
    index = make_index({"A": 90, "B": 60, "C": 60})
    for seed in range(2):
        # good@1's rows are shuffled: loading must re-align them.
        write_dir(root / f"good{seed}", index, 0.2, SHIFT, seed=seed, order_seed=seed or None)
        write_dir(root / f"bad{seed}", index, 3.0, SHIFT, seed=10 + seed)
    write_dir(root / "untrained", index, 6.0, SHIFT, seed=99, untrained=True)
    return root


@pytest.fixture(scope="session")
def specs(feature_root: Path) -> list[FeatureSpec]:
    return [
        FeatureSpec("good", feature_root / "good0"),
        FeatureSpec("good", feature_root / "good1"),
        FeatureSpec("bad", feature_root / "bad0"),
        FeatureSpec("bad", feature_root / "bad1"),
        FeatureSpec("untrained", feature_root / "untrained"),
    ]


@pytest.fixture(scope="session")
def linear_head() -> HeadSettings:
    return HeadSettings("linear", {})
