"""Label efficiency: linear probe, MLP head, fine-tuning and from-scratch training on
nested shares of one cohort's training patients, several seeds each.

::

    from cape.label_efficiency import load_config, run_label_efficiency
    config = load_config(None, ["store=stores/demo", "encoder=runs/idb", "task=age",
                                "cohort=harbor", "out_dir=runs/label-efficiency"])
    result = run_label_efficiency(config)   # tables, label-efficiency.md and .png in out_dir
    result.summary                          # mean and t-interval over seeds per method, fraction

See ``docs/label-efficiency.md``.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

# Names resolved on first use, so that `cape study check` (which needs only the
# config) does not import torch through the protocol.
_WHERE = {
    "MEAN_PREDICTOR": "cells",
    "Cell": "cells",
    "read_cell": "cells",
    "DEFAULT_FRACTIONS": "config",
    "METHODS": "config",
    "LabelEfficiencyConfig": "config",
    "load_config": "config",
    "LabelEfficiencyResult": "protocol",
    "plan_cells": "protocol",
    "run_label_efficiency": "protocol",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(f"cape.label_efficiency.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'cape.label_efficiency' has no attribute {name!r}")


__all__ = [
    "DEFAULT_FRACTIONS",
    "MEAN_PREDICTOR",
    "METHODS",
    "Cell",
    "LabelEfficiencyConfig",
    "LabelEfficiencyResult",
    "load_config",
    "plan_cells",
    "read_cell",
    "run_label_efficiency",
]
