"""Head settings reach the heads: std floor, the authors' age head, the hidden-size grid."""

from __future__ import annotations

import numpy as np
import pytest

from cape.errors import CapeError
from cape.heads import grid_search_hidden_sizes
from cape.protocols import HeadSettings, ProtocolSettings, get_task
from cape.protocols.fitting import fit_predict, head_params

FAST = {"max_epochs": 6, "patience": 3, "learning_rate": 1e-2, "batch_size": 32}


def _data(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(n, 5))
    return features, 50.0 + 10.0 * features[:, 0] + rng.normal(size=n)


def test_head_params_carry_the_floor_and_the_age_target_only_where_they_apply() -> None:
    settings = HeadSettings("mlp", dict(FAST), std_floor=0.1, age_target="age-sigmoid")
    age = head_params(get_task("age"), settings)
    sex = head_params(get_task("sex"), settings)
    assert age["relative_std_floor"] == 0.1 and age["target_transform"] == "age-sigmoid"
    assert sex["relative_std_floor"] == 0.1 and "target_transform" not in sex
    assert head_params(get_task("age"), HeadSettings())["relative_std_floor"] == 0.0
    assert "plain z-scoring" in HeadSettings().describe_scaling()
    assert "floored at 0.1" in settings.describe_scaling()


def test_hidden_grid_is_the_heads_grid_search() -> None:
    train, val, test = _data(0, 200), _data(1, 80), _data(2, 30)
    settings = HeadSettings("mlp", dict(FAST), hidden_grid=(4, 16), grid_layers=1)
    (predicted,) = fit_predict(get_task("age"), settings, 7, train, val, [test[0]], "test")
    direct = grid_search_hidden_sizes(
        "regression",
        *train,
        *val,
        widths=(4, 16),
        n_layers=1,
        seed=7,
        relative_std_floor=0.0,
        target_transform="standardise",
        **FAST,
    )
    np.testing.assert_allclose(predicted, direct.head.predict(test[0]))
    assert len(direct.trials) == 2


@pytest.mark.parametrize(
    ("head", "message"),
    [
        (HeadSettings("linear", hidden_grid=(8,)), "mlp head"),
        (HeadSettings("mlp", {"hidden_sizes": (8,)}, hidden_grid=(8,)), "not both"),
        (HeadSettings("mlp", {"relative_std_floor": 0.1}), "std_floor"),
        (HeadSettings("linear", age_target="age-sigmoid"), "mlp head"),
        (HeadSettings("mlp", std_floor=-1.0), "std_floor"),
        (HeadSettings("mlp", hidden_grid=(8,), grid_layers=0), "grid_layers"),
    ],
)
def test_bad_head_settings(head: HeadSettings, message: str) -> None:
    with pytest.raises(CapeError, match=message):
        ProtocolSettings.for_protocol("ood", train_cohort="A", head=head)
