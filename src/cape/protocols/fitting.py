"""Train one head on one sample and predict: the unit of work every protocol repeats."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from cape.errors import CapeError
from cape.heads import grid_search_hidden_sizes, make_head
from cape.protocols.settings import HeadSettings
from cape.protocols.tasks import TaskSpec


def predict_scores(head: Any, task: TaskSpec, features: np.ndarray) -> np.ndarray:
    """What the task's metric scores: ``(n,)`` values (age, years), ``(n,)`` positive-class
    probabilities (sex: male), or ``(n, k)`` label probabilities (superclass)."""
    if task.kind == "regression":
        return np.asarray(head.predict(features), dtype=np.float64)
    probabilities = np.asarray(head.predict_proba(features), dtype=np.float64)
    return probabilities[:, 1] if task.kind == "binary" else probabilities


def fit_predict(
    task: TaskSpec,
    head_settings: HeadSettings,
    seed: int,
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    evaluate: Sequence[np.ndarray],
    context: str,
) -> list[np.ndarray]:
    """Fit a head on ``train``, early-stopping (MLP) or choosing C (linear) on ``val``.

    Args:
        task: the task.
        head_settings: head kind and parameter overrides.
        seed: the head's seed (initialisation, dropout, shuffling).
        train: ``(X (n, d), y)`` training features and targets.
        val: ``(X (n_val, d), y)`` validation features and targets (patient-disjoint).
        evaluate: feature arrays ``(m_i, d)`` to predict.
        context: names the model, cohort, task and run in error messages.

    Returns:
        Scores for each array of ``evaluate`` (see :func:`predict_scores`).

    Raises:
        CapeError: a head parameter the head does not accept, or a head that
            cannot be fitted on this sample (e.g. one class in the validation set).
    """
    params = head_params(task, head_settings)
    try:
        if head_settings.hidden_grid is not None:
            # The validation split both early-stops each candidate and picks among them.
            head = grid_search_hidden_sizes(
                task.kind,
                train[0],
                train[1],
                val[0],
                val[1],
                widths=head_settings.hidden_grid,
                n_layers=head_settings.grid_layers,
                seed=seed,
                **params,
            ).head
        else:
            head = make_head(task.kind, head_settings.kind, seed=seed, **params)
            head.fit(train[0], train[1], val[0], val[1])
    except TypeError as error:
        raise CapeError(
            f"head parameters {sorted(params)} do not fit the {head_settings.kind} head: {error}"
        ) from error
    except ValueError as error:
        raise CapeError(f"cannot fit the {task.name} head for {context}: {error}") from error
    return [predict_scores(head, task, features) for features in evaluate]


def head_params(task: TaskSpec, head_settings: HeadSettings) -> dict[str, Any]:
    """Constructor parameters of a task's head: the overrides, the std floor, the age target."""
    params = {**head_settings.params, "relative_std_floor": head_settings.std_floor}
    if task.kind == "regression" and head_settings.kind == "mlp":
        params["target_transform"] = head_settings.age_target
    return params


def fit_each_and_collect(
    collector: Any,
    feature_sets: Sequence[Any],
    task: TaskSpec,
    head_settings: HeadSettings,
    seed: int,
    sample: dict[str, np.ndarray],
    y_train: np.ndarray,
    y_val: np.ndarray,
    test_positions: np.ndarray,
    common: dict[str, Any],
    context: str,
    on_head: Any = None,
) -> None:
    """One head per feature set on the same sample and seed, plus the mean predictor.

    Every model sees the same train/val ECGs, head seed and test ECGs, so
    their predictions pair up for the paired tests.

    Args:
        collector: receives one ``add(model=..., baseline=..., encoder_seed=...,
            y_pred=..., **common)`` per head and one for the mean predictor.
        sample: ``train`` and ``val`` row positions.
        test_positions: rows predicted.
        on_head: called after every head (progress bars).
    """
    from cape.protocols.baselines import mean_predictor
    from cape.protocols.featuresets import MEAN_PREDICTOR

    for feature_set in feature_sets:
        features = feature_set.features
        (prediction,) = fit_predict(
            task,
            head_settings,
            seed,
            (features[sample["train"]], y_train),
            (features[sample["val"]], y_val),
            [features[test_positions]],
            context=f"{feature_set.label}, {context}",
        )
        collector.add(
            model=feature_set.model,
            baseline=feature_set.baseline,
            encoder_seed=feature_set.encoder_seed,
            y_pred=prediction,
            **common,
        )
        if on_head is not None:
            on_head()
    collector.add(
        model=MEAN_PREDICTOR,
        baseline=MEAN_PREDICTOR,
        encoder_seed=0,
        y_pred=mean_predictor(task, y_train, test_positions.size),
        **common,
    )
