import numpy as np
import pytest
import torch

from cape.heads import (
    LinearProbe,
    MLPClassifierHead,
    MLPRegressorHead,
    MultiLabelHead,
    grid_search_hidden_sizes,
    make_head,
)

torch.set_num_threads(1)


def test_make_head_maps_tasks_to_paper_defaults() -> None:
    age = make_head("age", seed=3)
    sex = make_head("sex")
    assert isinstance(age, MLPRegressorHead) and age.seed == 3
    assert isinstance(sex, MLPClassifierHead)
    assert isinstance(make_head("multilabel"), MultiLabelHead)
    assert age._resolved_hidden_sizes() == (256, 128)
    assert sex._resolved_hidden_sizes() == (256, 256)
    assert age.dropout == 0.2 and age.learning_rate == 1e-4
    probe = make_head("sex", kind="linear", C=0.1)
    assert isinstance(probe, LinearProbe) and probe.task == "binary" and probe.C == 0.1


def test_make_head_rejects_unknown_names() -> None:
    with pytest.raises(ValueError, match="unknown task"):
        make_head("height")
    with pytest.raises(ValueError, match="unknown head kind"):
        make_head("age", kind="forest")
    with pytest.raises(TypeError):
        make_head("age", n_trees=3)


def test_grid_search_keeps_the_best_validation_score() -> None:
    rng = np.random.default_rng(0)
    X, X_val = rng.normal(size=(150, 5)), rng.normal(size=(60, 5))
    y, y_val = (X[:, 0] > 0).astype(int), (X_val[:, 0] > 0).astype(int)
    result = grid_search_hidden_sizes(
        "sex",
        X,
        y,
        X_val,
        y_val,
        widths=(2, 8),
        n_layers=1,
        learning_rate=1e-2,
        max_epochs=15,
        patience=5,
        batch_size=32,
    )
    assert [t["hidden_sizes"] for t in result.trials] == [(2,), (8,)]
    best_trial = max(result.trials, key=lambda t: t["val_score"])
    assert result.hidden_sizes == best_trial["hidden_sizes"]
    assert result.best_score == pytest.approx(best_trial["val_score"])
    assert result.head.hidden_sizes_ == result.hidden_sizes
    with pytest.raises(ValueError, match="hidden_sizes"):
        grid_search_hidden_sizes("sex", X, y, X_val, y_val, hidden_sizes=(4,))
