"""Tests that kill mutmut's surviving mutants of cape.protocols.ood (docs/testing.md).

Mutant names are mutmut 3.8.1's (``scripts/mutation.sh ood``); each docstring names the
mutants the test kills and the bug they stand for. Every test calls the protocol itself (no
shared module-scoped results: mutmut attributes a fixture's calls to the first test using it).

The features are built in memory: column 0 holds each ECG's row position, so a spy on the head
fitting sees exactly which ECGs a head was trained on; columns 1 and 2 carry age and sex.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest
import yaml

import cape.protocols.ood as ood
from cape.errors import CapeError
from cape.protocols import MEAN_PREDICTOR, HeadSettings, ProtocolSettings, run_ood
from cape.protocols.aggregates import across_cohorts
from cape.protocols.comparisons import empty_tests
from cape.protocols.featuresets import FeatureSet
from cape.protocols.ood_diagnostics import shift_table
from cape.protocols.sampling import derive_seed, draw
from cape.protocols.tasks import extract_labels

LINEAR = HeadSettings("linear", {})
SPLITS = ("train", "val", "test")


def make_index(patients: dict[str, int], seed: int = 0) -> pd.DataFrame:
    """Two ECGs per patient; each cohort's patients split 60/20/20 (in patient order)."""
    rng = np.random.default_rng(seed)
    rows = []
    for cohort, n in patients.items():
        n_train, n_val = round(0.6 * n), round(0.2 * n)
        for p in range(n):
            split = "train" if p < n_train else "val" if p < n_train + n_val else "test"
            age = float(rng.uniform(20, 85))
            for e in range(2):
                rows.append(
                    {
                        "record_id": f"{cohort}-{p}-{e}",
                        "patient_id": f"p{p}",
                        "cohort": cohort,
                        "split": split,
                        "age": age,
                        "age_topcoded": False,
                        "sex": "M" if p % 2 else "F",
                        "device": "dev",
                    }
                )
    return pd.DataFrame(rows)


def feature_set(
    index: pd.DataFrame, model: str = "m", encoder_seed: int = 0, info: dict | None = None
) -> FeatureSet:
    """Column 0: row position; 1: age signal; 2: sex signal; 3: noise; 4: nearly constant."""
    rng = np.random.default_rng(encoder_seed + len(model))
    n = len(index)
    features = np.empty((n, 5))
    features[:, 0] = np.arange(n)
    features[:, 1] = (index["age"].fillna(50.0).to_numpy() - 50.0) / 15.0 + rng.normal(0, 0.3, n)
    features[:, 2] = np.where(index["sex"] == "M", 1.0, -1.0) + rng.normal(0, 0.3, n)
    features[:, 3] = rng.normal(size=n)
    features[:, 4] = 1e-3 * rng.normal(size=n) + (index["cohort"] == "B").to_numpy() * 1e-2
    return FeatureSet(
        model, encoder_seed, Path(f"/nowhere/{model}"), "", features.astype(np.float32), info or {}
    )


def settings(**overrides: Any) -> ProtocolSettings:
    values: dict[str, Any] = {
        "train_cohort": "A",
        "runs": 1,
        "head": LINEAR,
        "tasks": ("age",),
        "ood_test_n": 5,
        "ood_target_pool": "test",
        "subgroups": False,
        "feature_shift": False,
    }
    values.update(overrides)
    return ProtocolSettings.for_protocol("ood", **values)


class FakeBar:
    """Stands in for tqdm in cape.protocols.ood: records its arguments and updates."""

    made: ClassVar[list[FakeBar]] = []

    def __init__(
        self, total: Any = None, desc: Any = None, unit: Any = "it", disable: Any = False
    ) -> None:
        self.total, self.desc, self.unit, self.disable = total, desc, unit, disable
        self.n = 0
        self.closed = False
        FakeBar.made.append(self)

    def update(self, n: int = 1) -> None:
        self.n += n

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def bars(monkeypatch: pytest.MonkeyPatch) -> list[FakeBar]:
    FakeBar.made = []
    monkeypatch.setattr(ood, "tqdm", FakeBar)
    return FakeBar.made


# --- _targets ----------------------------------------------------------------------------


def test_target_errors_carry_their_whole_message() -> None:
    """Kills x__targets__mutmut_4 (needs-a-training-cohort message mangled), _18/_19 (the
    second half of the is-the-training-cohort message mangled) and _25 (the no-other-cohort
    message dropped)."""
    index = make_index({"A": 10, "B": 10})
    sets = [feature_set(index)]
    with pytest.raises(
        CapeError, match=r"^the ood protocol needs a training cohort \(--train-cohort\)$"
    ):
        run_ood(sets, index, settings(train_cohort=None), progress=False)
    message = (
        "test cohort 'A' is the training cohort; out-of-distribution targets must be other "
        "cohorts (its own test split is always scored as setting 'source')"
    )
    with pytest.raises(CapeError, match=f"^{re.escape(message)}$"):
        run_ood(sets, index, settings(cohorts=("A", "B")), progress=False)
    alone = make_index({"A": 10})
    with pytest.raises(CapeError, match=r"^no other cohort than 'A' in the features to test on$"):
        run_ood([feature_set(alone)], alone, settings(), progress=False)


# --- _plan_task ----------------------------------------------------------------------------


def test_no_ceiling_plan_without_the_ceiling() -> None:
    """Kills xǁ_Targetǁ__init____mutmut_4 (a target's ceiling plan starts as "" instead of
    None: without ``settings.ceiling`` callers that test ``is None`` would run the ceiling)."""
    index = make_index({"A": 20, "B": 20, "C": 20})
    labels = extract_labels(index, "age")
    pools: dict[str, tuple[str, ...] | None] = {"B": ("test",), "C": ("test",)}
    _, _, chosen = ood._plan_task(
        settings(ceiling=False), index, labels, "A", ["B", "C"], [], pools
    )
    assert [t.name for t in chosen] == ["B", "C"]
    assert all(t.ceiling_plan is None for t in chosen)


def test_training_cohort_without_labels_is_refused_by_name() -> None:
    """Kills x__plan_task__mutmut_7 (the labels of the other cohorts checked instead of the
    training cohort's) and _8 (message dropped)."""
    index = make_index({"A": 10, "B": 10})
    index.loc[index["cohort"] == "A", "age"] = None
    with pytest.raises(CapeError, match=r"^training cohort 'A' has no age labels$"):
        run_ood([feature_set(index)], index, settings(), progress=False)


def test_a_target_without_labels_is_skipped_and_the_next_is_kept(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Kills x__plan_task__mutmut_1 (task name lost from messages), _29 (the other cohorts'
    labels checked), _30 (message None), _31/_32/_33 (wrong or no message logged) and _34
    (``continue`` -> ``break``: the targets after an unlabelled one dropped)."""
    index = make_index({"A": 30, "B": 20, "C": 20})
    index.loc[index["cohort"] == "B", "age"] = None
    caplog.set_level(logging.WARNING, logger="cape.protocols.ood")
    result = run_ood([feature_set(index)], index, settings(sizes=(10, 4, 4)), progress=False)
    expected = "target cohort 'B' has no age labels; skipped"
    assert result.config["messages"] == [expected]
    logged = [r.getMessage() for r in caplog.records if r.name == "cape.protocols.ood"]
    assert logged == [expected]
    assert set(result.results["test_cohort"]) == {"A", "C"}
    assert set(result.results["setting"]) == {"source", "out-of-distribution", "in-cohort"}


def test_capping_messages_name_cohort_task_and_pool(caplog: pytest.LogCaptureFixture) -> None:
    """Kills x__plan_task__mutmut_19 (source plan's description None), _43/_44 (the target
    pool's label None or 'whole cohort' for a test-split pool), _57/_62 (target plan's
    description None / dropped), _100/_106/_114/_115 (ceiling plan's description None,
    dropped or mangled) and _103/_109/_120 (ceiling capping logged as a WARNING, not INFO:
    a smaller target cohort is the usual case)."""
    index = make_index({"A": 30, "B": 20, "C": 20})
    caplog.set_level(logging.INFO, logger="cape.protocols.sampling")
    result = run_ood(
        [feature_set(index)],
        index,
        settings(sizes=(10_000, None, None), ood_test_n=1000),
        progress=False,
    )

    def ceiling(name: str, split: str, have: int, want: int) -> str:
        return (
            f"in-cohort head of {name!r}, task 'age' (patients of the target ECGs left out): "
            f"split {split!r} holds {have} labelled ECGs, {want} requested; using {have}"
        )

    source = (
        "cohort 'A', task 'age': split 'train' holds 36 labelled ECGs, 10,000 requested; using 36"
    )
    messages = [source]
    for name in ("B", "C"):
        messages += [
            f"target cohort {name!r}, task 'age': split 'test' holds 8 labelled ECGs, "
            "1,000 requested; using 8",
            ceiling(name, "train", 24, 36),
            ceiling(name, "val", 8, 12),
        ]
    assert result.config["messages"] == messages
    logged = [
        (r.levelno, r.getMessage()) for r in caplog.records if r.name == "cape.protocols.sampling"
    ]
    levels = [logging.WARNING] + [logging.WARNING, logging.INFO, logging.INFO] * 2
    assert logged == list(zip(levels, messages, strict=True))


def test_strict_sizes_refuse_instead_of_capping(caplog: pytest.LogCaptureFixture) -> None:
    """Kills x__plan_task__mutmut_20/_23/_24 (strict_sizes not passed to the training cohort's
    plan), _58/_63 (nor to the target's), _101/_107 (nor to the ceiling's) and _139 (the
    skipped ceiling's message not logged)."""
    index = make_index({"A": 30, "B": 20, "C": 20})
    sets = [feature_set(index)]
    tail = " requested (lower the sizes, or allow capping)"
    with pytest.raises(
        CapeError,
        match="^"
        + re.escape(
            "too few labelled ECGs for cohort 'A', task 'age': split 'train' holds 36, 10,000"
            + tail
        )
        + "$",
    ):
        run_ood(sets, index, settings(sizes=(10_000, None, None), strict_sizes=True), False)
    with pytest.raises(
        CapeError,
        match="^"
        + re.escape(
            "too few labelled ECGs for target cohort 'B', task 'age': split 'test' holds 8, "
            "1,000" + tail
        )
        + "$",
    ):
        run_ood(sets, index, settings(ood_test_n=1000, strict_sizes=True), progress=False)
    caplog.set_level(logging.WARNING, logger="cape.protocols.ood")
    result = run_ood(sets, index, settings(strict_sizes=True), progress=False)
    expected = [
        f"in-cohort ceiling of {name!r}, task 'age' skipped: too few labelled ECGs for "
        f"in-cohort head of {name!r}, task 'age' (patients of the target ECGs left out): "
        "split 'train' holds 24, 36" + tail
        for name in ("B", "C")
    ]
    assert result.config["messages"] == expected
    logged = [r.getMessage() for r in caplog.records if r.name == "cape.protocols.ood"]
    assert logged == expected
    assert "in-cohort" not in set(result.results["setting"])


def test_binary_ceiling_kept_with_two_classes_and_skipped_with_one() -> None:
    """Kills x__plan_task__mutmut_130/_131/_132 (the one-class check of a binary ceiling
    always true, or true for two classes: every sex ceiling skipped) and _134/_135/_136
    (its message mangled)."""
    index = make_index({"A": 30, "B": 20, "C": 20})
    index.loc[(index["cohort"] == "B") & (index["split"] == "val"), "sex"] = "F"
    result = run_ood(
        [feature_set(index)], index, settings(tasks=("sex",), sizes=(10, 4, 4)), progress=False
    )
    assert result.config["messages"] == [
        "in-cohort ceiling of 'B', task 'sex' skipped: its val split holds one class only "
        "once the target ECGs' patients are left out"
    ]
    ceiling = result.results[result.results["setting"] == "in-cohort"]
    assert set(ceiling["test_cohort"]) == {"C"}


# --- seeds --------------------------------------------------------------------------------


def _positions(x: np.ndarray) -> list[int]:
    return sorted(int(v) for v in np.asarray(x)[:, 0])


def test_every_sample_and_head_seed_derives_from_the_documented_parts(
    monkeypatch: pytest.MonkeyPatch, bars: list[FakeBar]
) -> None:
    """Kills x__plan_task__mutmut_75.._83 (the target ECGs' seed without its stream name,
    cohort or task), x__source_run__mutmut_5, _9.._20 (the training sample's seed) and
    _21.._33, _68 (the head seed), x__ceiling_run__mutmut_6, _10.._21 (the in-cohort sample's
    seed), _22.._34, _71 (its head seed), _77 (its error context dropped) and _78/_90 (its
    heads not counted on the progress bar). A seed that loses a part makes two runs, tasks or
    cohorts share their draws; one that changes its stream breaks reproducibility."""
    fits: list[dict[str, Any]] = []
    real_fit = ood.fit_predict

    def fit_spy(
        task: Any, head: Any, seed: int, train: Any, val: Any, evaluate: Any, context: str
    ) -> list[np.ndarray]:
        fits.append({"seed": seed, "train": _positions(train[0]), "val": _positions(val[0])})
        return real_fit(task, head, seed, train, val, evaluate, context=context)

    ceilings: list[dict[str, Any]] = []
    real_each = ood.fit_each_and_collect

    def each_spy(
        collector: Any,
        sets: Any,
        task: Any,
        head: Any,
        seed: int,
        sample: dict[str, np.ndarray],
        y_train: np.ndarray,
        y_val: np.ndarray,
        positions: np.ndarray,
        common: dict[str, Any],
        context: str,
        on_head: Any = None,
    ) -> None:
        ceilings.append(
            {
                "seed": seed,
                "train": sorted(sample["train"].tolist()),
                "val": sorted(sample["val"].tolist()),
                "context": context,
            }
        )
        real_each(
            collector,
            sets,
            task,
            head,
            seed,
            sample,
            y_train,
            y_val,
            positions,
            common,
            context=context,
            on_head=on_head,
        )

    monkeypatch.setattr(ood, "fit_predict", fit_spy)
    monkeypatch.setattr(ood, "fit_each_and_collect", each_spy)
    index = make_index({"A": 30, "B": 40})
    base = 3
    s = settings(seed=base, runs=2, sizes=(8, 4, 4), ood_target_pool="all", ood_test_n=10)
    result = run_ood([feature_set(index)], index, s, progress=False)

    cohort = index["cohort"].to_numpy()
    split = index["split"].to_numpy()
    # The target ECGs: 10 of B's 50, drawn once from the target's own stream.
    target = draw(np.flatnonzero(cohort == "B"), 10, derive_seed(base, "ood-target", "B", "age"))
    ood_rows = result.predictions[result.predictions["setting"] == "out-of-distribution"]
    assert set(ood_rows["record_id"]) == set(index["record_id"].to_numpy()[target])
    seen = set(index["patient_id"].to_numpy()[target])
    outside = ~index["patient_id"].isin(seen).to_numpy()
    assert len(fits) == len(ceilings) == 2
    for run in range(2):
        stream = derive_seed(base, "ood-source", "A", "age", run)
        sample = {
            name: draw(
                np.flatnonzero((cohort == "A") & (split == name)),
                n,
                derive_seed(stream, name),
            )
            for name, n in zip(SPLITS, (8, 4, 4), strict=True)
        }
        assert fits[run] == {
            "seed": derive_seed(base, "head", "A", "age", run),
            "train": sample["train"].tolist(),
            "val": sample["val"].tolist(),
        }
        source = result.predictions[
            (result.predictions["setting"] == "source") & (result.predictions["run"] == run)
        ]
        assert set(source["record_id"]) == set(index["record_id"].to_numpy()[sample["test"]])
        stream = derive_seed(base, "ood-ceiling", "B", "age", run)
        own = {
            name: draw(
                np.flatnonzero((cohort == "B") & (split == name) & outside),
                n,
                derive_seed(stream, name),
            ).tolist()
            for name, n in (("train", 8), ("val", 4))
        }
        assert ceilings[run] == {
            "seed": derive_seed(base, "head", "B", "age", run),
            **own,
            "context": f"in-cohort head of 'B', run {run}",
        }
    (bar,) = bars
    assert bar.total == bar.n == 2 * 2


def test_a_head_that_cannot_be_fitted_is_named_in_the_error() -> None:
    """Kills x__source_run__mutmut_72 (the error context of a training-cohort head None)."""
    index = make_index({"A": 30, "B": 20})
    index.loc[(index["cohort"] == "A") & (index["split"] == "train"), "sex"] = "F"
    with pytest.raises(
        CapeError, match=r"^cannot fit the sex head for m@0, training cohort 'A', run 0: "
    ):
        run_ood([feature_set(index)], index, settings(tasks=("sex",)), progress=False)


# --- run_ood -------------------------------------------------------------------------------


def test_progress_bar_counts_every_head(bars: list[FakeBar]) -> None:
    """Kills x_run_ood__mutmut_1 (progress bars off by default), _78/_79/_80/_82 (the number
    of fits per run miscounted), _84.._98 (the bar's total, description, unit or ``disable``
    dropped or changed)."""
    index = make_index({"A": 20, "B": 15, "C": 15})
    sets = [feature_set(index, "m"), feature_set(index, "n")]
    s = settings(runs=2, sizes=(6, 3, 3))
    run_ood(sets, index, s)  # progress on by default
    run_ood(sets, index, settings(runs=2, sizes=(6, 3, 3), ceiling=False), progress=False)
    first, second = bars
    # (1 source head + 2 in-cohort heads) x 2 runs x 2 feature sets
    assert (first.total, first.n, first.desc, first.unit, first.disable) == (
        12,
        12,
        "ood heads",
        "head",
        False,
    )
    assert first.closed
    assert (second.total, second.n, second.disable) == (4, 4, True)


def test_sizes_pools_scaling_and_protocol_are_recorded() -> None:
    """Kills x_run_ood__mutmut_57.._61 (the training cohort's sizes entry lost or its keys
    renamed), _63/_65.._74 (a target's entry: ceiling sizes, keys, pool name), _106/_107 (the
    protocol name in every row), _223/_232 (the head scaling line), _233 (the target pools'
    names) and x__source_run__mutmut_125 (the mean predictor's encoder seed 1 instead of 0)."""
    index = make_index({"A": 20, "B": 15, "C": 15})
    head = HeadSettings("linear", {}, std_floor=0.5)
    s = settings(sizes=(6, 3, 3), head=head)
    result = run_ood([feature_set(index, encoder_seed=4)], index, s, progress=False)
    assert result.config["sizes"] == [
        {"cohort": "A", "task": "age", "train": 6, "val": 3, "test": 3},
        {"cohort": "B", "task": "age", "test": 5, "test_pool": "test", "train": 6, "val": 3},
        {"cohort": "C", "task": "age", "test": 5, "test_pool": "test", "train": 6, "val": 3},
    ]
    assert result.config["target_pools"] == {"B": "test", "C": "test"}
    assert result.config["head_scaling"] == head.describe_scaling()
    assert set(result.results["protocol"]) == {"ood"}
    assert set(result.predictions["protocol"]) == {"ood"}
    results = result.results
    mean = results[results["model"] == MEAN_PREDICTOR]
    assert set(mean["setting"]) == {"source", "out-of-distribution", "in-cohort"}
    assert (mean["encoder_seed"] == 0).all()
    assert (results.loc[results["model"] == "m", "encoder_seed"] == 4).all()


def test_no_comparison_gives_the_empty_tests_table() -> None:
    """Kills x_run_ood__mutmut_151 (``tests`` None without ``compare``: writing or reading the
    results would fail)."""
    index = make_index({"A": 20, "B": 15})
    result = run_ood([feature_set(index)], index, settings(sizes=(6, 3, 3)), progress=False)
    pd.testing.assert_frame_equal(result.tests, empty_tests())


def test_comparison_uses_alpha_and_the_aggregate_tests_the_pair() -> None:
    """Kills x_run_ood__mutmut_159 (``alpha`` not passed to the paired tests), _204 (the
    aggregate table dropped) and _212/_214 (the aggregate computed without the compared
    pair: no Wilcoxon test of the OOD means)."""
    index = make_index({"A": 20, "B": 15, "C": 15})
    sets = [feature_set(index, "m"), feature_set(index, "n")]
    s = settings(tasks=("sex",), runs=2, sizes=(6, 3, 3), compare=("m", "n"), alpha=0.01)
    result = run_ood(sets, index, s, progress=False)
    notes = result.tests.loc[result.tests["test"] == "delong_runs", "note"]
    assert len(notes) > 0 and all("p < 0.01 in" in note for note in notes)
    pd.testing.assert_frame_equal(result.aggregate, across_cohorts(result.results, ("m", "n")))
    tested = result.aggregate[result.aggregate["setting"] == "out-of-distribution"]
    assert set(tested["test"].dropna()) == {"wilcoxon_signed_rank"}


def test_feature_shift_uses_the_target_pools_threshold_and_floor() -> None:
    """Kills x_run_ood__mutmut_161/_162 (the shift table never / always computed), _165 (the
    training cohort not passed: empty table), _168/_175 (target pools not passed: test splits
    instead of the whole cohorts), _174 (the threshold not passed), _176 (the heads' std floor
    not passed) and _202 (the shift table left out of the result)."""
    index = make_index({"A": 20, "B": 15, "C": 15})
    sets = [feature_set(index)]
    head = HeadSettings("linear", {}, std_floor=0.5)
    options = {"sizes": (6, 3, 3), "ood_target_pool": "all", "head": head}
    result = run_ood(
        sets, index, settings(feature_shift=True, shift_threshold_sd=0.5, **options), False
    )
    pools = {"B": None, "C": None}
    expected = shift_table(
        sets, index, "A", ["B", "C"], 0.5, target_splits=pools, relative_std_floor=0.5
    )
    pd.testing.assert_frame_equal(result.shift, expected)
    # each argument matters on these features
    for other in (
        shift_table(sets, index, "A", ["B", "C"], 5.0, target_splits=pools, relative_std_floor=0.5),
        shift_table(sets, index, "A", ["B", "C"], 0.5, relative_std_floor=0.5),
        shift_table(sets, index, "A", ["B", "C"], 0.5, target_splits=pools),
    ):
        assert not expected.equals(other)
    off = run_ood(sets, index, settings(**options), progress=False)
    assert off.shift.empty


def test_subgroups_only_when_asked_with_the_progress_setting(
    monkeypatch: pytest.MonkeyPatch, bars: list[FakeBar]
) -> None:
    """Kills x_run_ood__mutmut_179 (subgroup metrics computed when switched off) and
    _182/_185 (their progress bar not following ``progress``)."""
    calls: list[bool] = []
    real = ood.subgroup_table

    def spy(predictions: pd.DataFrame, index: pd.DataFrame, progress: bool = False) -> pd.DataFrame:
        calls.append(progress)
        return real(predictions, index, False)

    monkeypatch.setattr(ood, "subgroup_table", spy)
    index = make_index({"A": 20, "B": 15})
    sets = [feature_set(index)]
    off = run_ood(sets, index, settings(sizes=(6, 3, 3)), progress=True)
    assert off.subgroups.empty and calls == []
    on = run_ood(sets, index, settings(sizes=(6, 3, 3), subgroups=True), progress=True)
    assert not on.subgroups.empty and calls == [True]


def test_label_counts_follow_topcoding_with_a_fresh_index() -> None:
    """Kills x_run_ood__mutmut_37 (the top-coding policy not passed: top-coded ages kept) and
    _207/_209/_210 (the label-count tables of the tasks concatenated with their own, repeated
    row labels)."""
    index = make_index({"A": 20, "B": 15})
    topcoded = (index["cohort"] == "A") & (index["split"] == "train")
    index.loc[topcoded & (index["patient_id"] == "p0"), "age_topcoded"] = True
    s = settings(tasks=("age", "sex"), sizes=(6, 3, 3), topcoded="exclude")
    result = run_ood([feature_set(index)], index, s, progress=False)
    labels = result.labels
    assert labels.index.equals(pd.RangeIndex(4))
    assert list(zip(labels["cohort"], labels["task"], labels["n_labelled"], strict=True)) == [
        ("A", "age", 38),
        ("B", "age", 30),
        ("A", "sex", 40),
        ("B", "sex", 30),
    ]


def test_pretraining_leak_warning_names_the_training_cohort(tmp_path: Path) -> None:
    """Kills x_run_ood__mutmut_17 (the leak check asked about cohort None instead of the
    training cohort)."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump({"cohorts": None, "exclude_splits": []}))
    index = make_index({"A": 20, "B": 15})
    sets = [feature_set(index, info={"checkpoint": str(run)})]
    s = settings(sizes=(6, 3, 3), ood_target_pool="all")
    result = run_ood(sets, index, s, progress=False)
    assert result.config["warnings"] == [
        "m@0 (/nowhere/m): its pretraining config does not exclude cohort 'A''s 'test' split "
        "(exclude_splits=[]), so it may have seen cohort 'A''s test patients"
    ]
