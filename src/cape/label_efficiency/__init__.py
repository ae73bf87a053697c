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

from cape.label_efficiency.cells import MEAN_PREDICTOR, Cell, read_cell
from cape.label_efficiency.config import (
    DEFAULT_FRACTIONS,
    METHODS,
    LabelEfficiencyConfig,
    load_config,
)
from cape.label_efficiency.protocol import (
    LabelEfficiencyResult,
    plan_cells,
    run_label_efficiency,
)

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
