"""ECGs per head in the OOD section, and the ceiling's routine capping kept off the console."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from cape.protocols.sampling import plan_sizes
from cape.report.ood_tables import sizes_table

CONFIG = {
    "train_cohort": "big",
    "sizes": [
        {"cohort": "big", "task": "age", "train": 197, "val": 26, "test": 91},
        {"cohort": "small", "task": "age", "train": 54, "val": 8, "test": 50},
        {"cohort": "large", "task": "age", "train": 197, "val": 30, "test": 50},
    ],
}


def test_sizes_table_marks_ceilings_smaller_than_the_heads_they_bound() -> None:
    """Bug caught: a ceiling trained on 54 ECGs shown as if it matched the 197-ECG heads."""
    table = sizes_table(CONFIG)
    assert list(table.index) == ["big (training cohort)", "large", "small"]
    column = table["age: train / val / test"]
    assert column["big (training cohort)"] == "197 / 26 / 91"
    assert column["large"] == "197 / 30 / 50"  # as many as the heads: not marked
    assert column["small"] == "54 / 8 / 50 (ceiling smaller)"
    assert sizes_table({}).empty


def test_expected_capping_is_recorded_but_not_a_console_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Bug caught (cape demo --quick): 16 WARNING lines for a ceiling capped as designed."""
    pools = {"train": np.arange(10), "val": np.arange(10, 15)}
    with caplog.at_level(logging.INFO, logger="cape.protocols.sampling"):
        quiet = plan_sizes(pools, [20, 5], "ceiling", splits=("train", "val"), expected=True)
        loud = plan_sizes(pools, [20, 5], "source", splits=("train", "val"))
    assert quiet.sizes == loud.sizes == {"train": 10, "val": 5}
    assert len(quiet.messages) == len(loud.messages) == 1
    levels = {r.getMessage().split(":")[0]: r.levelno for r in caplog.records}
    assert levels == {"ceiling": logging.INFO, "source": logging.WARNING}
