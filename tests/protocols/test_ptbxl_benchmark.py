"""The PTB-XL benchmark protocol: label sets, folds, scoring, literature values, the command.

The label-set rules were checked against the authors' code
(github.com/helme/ecg_ptbxl_benchmarking, code/utils/utils.py) by running its
``compute_label_aggregations`` + ``select_data`` beside ours on random
databases; these tests pin the same rules on hand-made records.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from cape.benchmark_ptbxl import (
    LABEL_SETS,
    PUBLISHED_N_CLASSES,
    BenchmarkSettings,
    benchmark_resamples,
    build_label_set,
    fold_roles,
    is_ptbxl_statements,
    leaderboard_text,
    literature_applies,
    literature_table,
    read_statements,
    run_benchmark,
    score_label_set,
    scoring,
    statements_from_frame,
)
from cape.benchmark_ptbxl.inputs import choose_cohort, find_statements
from cape.errors import CapeError
from cape.protocols import RESULT_COLUMNS, FeatureSet, HeadSettings
from cape.simulator.conditions import SCP_STATEMENTS

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "ptbxl" / "scp_statements.csv"


@pytest.fixture(scope="module")
def statements():
    return read_statements(FIXTURE)


def simulator_statements():
    frame = pd.DataFrame.from_dict(
        SCP_STATEMENTS,
        orient="index",
        columns=[
            "description",
            "diagnostic",
            "form",
            "rhythm",
            "diagnostic_class",
            "diagnostic_subclass",
            "Statement Category",
        ],
    ).replace("", np.nan)
    return statements_from_frame(frame, "simulator")


# ------------------------------------------------------------------ label sets


def test_fixture_is_ptbxls_statements_file():
    """Catches a corrupted fixture: a spreadsheet round trip turns 1AVB into 1.0AVB."""
    frame = pd.read_csv(FIXTURE, index_col=0)
    assert len(frame) == 71 and frame.index.is_unique
    assert {"1AVB", "2AVB", "3AVB", "NORM", "PRC(S)", "LAO/LAE"} <= set(frame.index)
    assert list(frame.columns[:7]) == [
        "description",
        "diagnostic",
        "form",
        "rhythm",
        "diagnostic_class",
        "diagnostic_subclass",
        "Statement Category",
    ]


def test_real_statements_give_the_published_numbers_of_classes(statements):
    """Catches counting NaN subclasses as a class, taking classes of non-diagnostic
    statements, or reading the flags as truthy strings."""
    for name in LABEL_SETS:
        assert len(statements.classes(name)) == PUBLISHED_N_CLASSES[name], name
    # And from records: one record per statement gives every class of every set.
    records = [[code] for code in statements.codes]
    for name in LABEL_SETS:
        assert len(build_label_set(records, statements, name).classes) == PUBLISHED_N_CLASSES[name]
    assert statements.classes("superdiagnostic") == ("CD", "HYP", "MI", "NORM", "STTC")
    assert is_ptbxl_statements(statements)
    assert not is_ptbxl_statements(simulator_statements())


def test_record_labels_follow_the_benchmark_rules(statements):
    """Catches dropping codes listed with likelihood 0 (the benchmark keeps every key),
    filtering `all` against the statements table, keeping classes absent from the data,
    and keeping records without a label of the set."""
    # Keys of scp_codes; PTB-XL lists SR with likelihood 0, which still counts.
    records = [
        ["NORM", "SR"],  # likelihoods {NORM: 100, SR: 0}
        ["NDT", "SR"],  # NDT is diagnostic (STTC/STTC) and form
        ["PVC"],  # form only
        ["AFIB", "XYZ"],  # rhythm; XYZ unknown to the table
        ["IMI", "ILMI", "ASMI"],  # two MI subclasses, one superclass
    ]
    diagnostic = build_label_set(records, statements, "diagnostic")
    assert diagnostic.classes == ("ASMI", "ILMI", "IMI", "NDT", "NORM")
    assert diagnostic.rows.tolist() == [0, 1, 4] and diagnostic.n_dropped == 2
    sub = build_label_set(records, statements, "subdiagnostic")
    assert sub.classes == ("AMI", "IMI", "NORM", "STTC")
    assert sub.y[sub.rows.tolist().index(4)].tolist() == [1, 1, 0, 0]
    sup = build_label_set(records, statements, "superdiagnostic")
    assert sup.classes == ("MI", "NORM", "STTC") and sup.y.sum() == 3
    form = build_label_set(records, statements, "form")
    assert form.classes == ("NDT", "PVC") and form.rows.tolist() == [1, 2]
    rhythm = build_label_set(records, statements, "rhythm")
    assert rhythm.classes == ("AFIB", "SR") and rhythm.rows.tolist() == [0, 1, 3]
    everything = build_label_set(records, statements, "all")
    assert "XYZ" in everything.classes and everything.n_dropped == 0
    assert everything.y.sum() == sum(len(set(r)) for r in records)


def test_statements_errors_name_the_file(tmp_path):
    bad = tmp_path / "scp_statements.csv"
    bad.write_text(",description,diagnostic\nNORM,normal,1\n")
    with pytest.raises(CapeError, match=r"scp_statements.csv: missing column"):
        read_statements(bad)
    with pytest.raises(CapeError, match="not found"):
        read_statements(tmp_path / "nowhere.csv")
    with pytest.raises(CapeError, match="unknown PTB-XL label set"):
        build_label_set([["NORM"]], read_statements(FIXTURE), "superclass")


# ------------------------------------------------------------------ folds and scoring


def test_fold_roles_and_bad_folds():
    """Catches fold 9 in training or fold 10 anywhere but the test set."""
    roles = fold_roles(list(range(1, 11)))
    assert roles.tolist() == ["train"] * 8 + ["val", "test"]
    for bad in ([1, None], [0, 3], [11], [2.5], ["x"]):
        with pytest.raises(CapeError, match="strat_fold 1-10"):
            fold_roles(bad)


def test_macro_auroc_equals_sklearn_macro(statements):
    """Catches a weighted or micro average, or per-label AUROC on the wrong column."""
    rng = np.random.default_rng(3)
    y = (rng.random((300, 6)) < [0.05, 0.1, 0.3, 0.5, 0.7, 0.2]).astype(int)
    score = y * rng.normal(0.6, 1.0, y.shape) + rng.normal(0, 1.0, y.shape)
    result = score_label_set(y, score, list("abcdef"), None)
    assert result.macro_auroc == pytest.approx(roc_auc_score(y, score, average="macro"), abs=1e-12)
    # A label with no positive in the test fold is left out (sklearn would fail) and named.
    y[:, 2] = 0
    result = score_label_set(y, score, list("abcdef"), None)
    kept = [0, 1, 3, 4, 5]
    expected = roc_auc_score(y[:, kept], score[:, kept], average="macro")
    assert result.macro_auroc == pytest.approx(expected, abs=1e-12)
    assert result.skipped == ("c",) and len(result.scored) == 5


def test_bootstrap_interval_is_the_percentile_of_sklearn_on_each_resample():
    """Catches resamples that lose a label's positives (the benchmark redraws them),
    an unseeded generator, or the wrong quantiles (the benchmark: 5 % and 95 %)."""
    rng = np.random.default_rng(4)
    y = (rng.random((120, 4)) < [0.04, 0.1, 0.4, 0.6]).astype(int)
    y[0, 0] = 1
    score = y + rng.normal(0, 0.8, y.shape)
    indices, n_draws = benchmark_resamples(y, 100, seed=7)
    again, _ = benchmark_resamples(y, 100, seed=7)
    assert np.array_equal(indices, again) and n_draws >= 100
    positives = np.stack([y[i].sum(axis=0) for i in indices])
    assert (positives > 0).all() and (positives < y.shape[0]).all()
    result = score_label_set(y, score, list("abcd"), indices, confidence=0.90)
    values = [roc_auc_score(y[i], score[i], average="macro") for i in indices]
    low, high = np.quantile(values, [0.05, 0.95])
    assert result.ci_low == pytest.approx(low, abs=1e-12)
    assert result.ci_high == pytest.approx(high, abs=1e-12)
    point = roc_auc_score(y, score, average="macro")
    assert result.plus_minus == pytest.approx(max(high - point, point - low), abs=1e-12)


def test_resampling_gives_up_with_a_clear_error(monkeypatch):
    """Catches an endless loop when rare labels make acceptable resamples unlikely."""
    monkeypatch.setattr(scoring, "MAX_DRAWS_PER_RESAMPLE", 1)
    y = np.zeros((400, 8), dtype=int)
    y[np.arange(8), np.arange(8)] = 1  # eight labels with one positive each
    with pytest.raises(CapeError, match="bootstrap resamples"):
        benchmark_resamples(y, 50, seed=0)


def test_leaderboard_text_is_the_authors_format():
    """The authors print ``"%.3f(%.2d)" % (np.round(point, 3), int(pm * 1000))``."""
    for point, plus_minus in [(0.92544, 0.00692), (0.9, 0.0251), (0.8749, 0.0071)]:
        authors = "%.3f(%.2d)" % (np.round(point, 3), int(plus_minus * 1000))  # noqa: UP031
        assert leaderboard_text(point, plus_minus) == authors
    assert leaderboard_text(float("nan"), 0.1) == "--"


# ------------------------------------------------------------------ literature


def test_literature_values_as_published():
    """Catches a transcription slip in the table (xresnet1d101, the paper's best)."""
    table = literature_table()
    assert len(table) == 7 * 6 and set(table["label_set"]) == set(LABEL_SETS)
    xresnet = table[table["model"] == "xresnet1d101"].set_index("label_set")["macro_auroc"]
    assert xresnet.to_dict() == {
        "all": 0.925,
        "diagnostic": 0.937,
        "subdiagnostic": 0.929,
        "superdiagnostic": 0.928,
        "form": 0.896,
        "rhythm": 0.957,
    }
    assert table["macro_auroc"].between(0.7, 1.0).all()


def test_literature_applies_only_to_real_ptbxl(statements, tmp_path):
    applies, note = literature_applies(statements, 21_837)
    assert applies and "literature" in note
    applies, note = literature_applies(simulator_statements(), 21_837)
    assert not applies and "not PTB-XL's" in note
    applies, note = literature_applies(statements, 500)
    assert not applies and "subset" in note
    (tmp_path / "_truth").mkdir()
    (tmp_path / "_truth" / "simulation.yaml").write_text("seed: 0\n")
    (tmp_path / "linden").mkdir()
    applies, note = literature_applies(statements, 21_837, [tmp_path / "linden"])
    assert not applies and "simulated" in note


# ------------------------------------------------------------------ the protocol


def synthetic_cohort(n: int = 600, seed: int = 0):
    """Records with real SCP codes, folds 1-10, informative and noise features."""
    rng = np.random.default_rng(seed)
    pool = ["NORM", "IMI", "ASMI", "LVH", "CRBBB", "NDT", "PVC", "AFIB", "STACH", "SR"]
    prevalence = np.array([0.4, 0.15, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.8])
    present = rng.random((n, len(pool))) < prevalence
    present[present[:, 7], 9] = False  # AF is not sinus rhythm
    codes = [[c for c, p in zip(pool, row, strict=True) if p] for row in present]
    index = pd.DataFrame(
        {
            "record_id": [str(i) for i in range(n)],
            "patient_id": [str(i) for i in range(n)],
            "cohort": "ptbxl",
            "diagnoses": codes,
            "strat_fold": np.arange(n) % 10 + 1,
            # What the reader keeps with min_likelihood=100 when PTB-XL lists codes with
            # lower likelihoods: the benchmark ignores likelihoods, so these must not be used.
            "superclasses": [[] for _ in range(n)],
        }
    )
    good = present.astype(np.float32) * 2.0 + rng.normal(0, 0.5, present.shape)
    noise = rng.normal(0, 1.0, present.shape).astype(np.float32)
    sets = [
        FeatureSet("good", 0, Path("good"), "", good.astype(np.float32)),
        FeatureSet("noise", 0, Path("noise"), "", noise),
    ]
    return sets, index, codes


def test_run_benchmark_uses_folds_and_drops_unlabelled_records(statements):
    """Catches training on fold 9/10, testing outside fold 10, keeping records without a
    label of the set, and scores that ignore the features."""
    sets, index, codes = synthetic_cohort()
    settings = BenchmarkSettings(head=HeadSettings("linear", {"C": [0.1, 1.0]}), n_resamples=30)
    result = run_benchmark(sets, index, statements, "ptbxl", settings, progress=False)
    scores = result.scores.set_index(["label_set", "model"])
    folds = index["strat_fold"].to_numpy()
    for name in LABEL_SETS:
        labelled = np.array([bool(statements.record_labels(c, name)) for c in codes])
        row = scores.loc[(name, "good")]
        assert row["n_train"] == int((labelled & (folds <= 8)).sum())
        assert row["n_val"] == int((labelled & (folds == 9)).sum())
        assert row["n_test"] == int((labelled & (folds == 10)).sum())
        assert row["n_dropped"] == int((~labelled).sum())
        assert row["macro_auroc"] > 0.9, name
        assert scores.loc[(name, "mean-predictor"), "macro_auroc"] == 0.5
        assert row["ci_low"] <= row["ci_high"]
        predicted = result.tables.predictions
        ids = predicted[(predicted["task"] == f"ptbxl-{name}") & (predicted["model"] == "good")]
        expected = index.loc[labelled & (folds == 10), "record_id"]
        assert set(ids["record_id"]) == set(expected)
    good = result.scores[result.scores["model"] == "good"]["macro_auroc"]
    noise = result.scores[result.scores["model"] == "noise"]["macro_auroc"]
    assert (good.to_numpy() > noise.to_numpy()).all()
    assert list(result.tables.results.columns) == list(RESULT_COLUMNS)
    assert set(result.tables.results["protocol"]) == {"ptbxl-benchmark"}
    assert result.literature.empty and "not PTB-XL's" not in result.literature_note


def test_printed_table_labels_literature_values(statements):
    """Catches literature values printed without their label, or on a simulated cohort."""
    import dataclasses

    from cape.benchmark_ptbxl.outputs import format_scores

    sets, index, _ = synthetic_cohort(300)
    settings = BenchmarkSettings(label_sets=("superdiagnostic",), n_resamples=10)
    result = run_benchmark(sets, index, statements, "ptbxl", settings, progress=False)
    text = format_scores(result)
    assert "Literature values: the cohort has 300 records" in text
    assert "0.928" not in text
    real = dataclasses.replace(
        result, literature=literature_table(), literature_note="real PTB-XL (test)"
    )
    text = format_scores(real)
    assert "Literature values (Strodthoff et al." in text and "not CAPE results" in text
    assert "xresnet1d101: superdiagnostic 0.928(05)" in text
    assert "form" not in text.split("Literature values")[1].split("\n")[1]


def test_missing_folds_and_empty_sets(statements):
    sets, index, _ = synthetic_cohort(200)
    with pytest.raises(CapeError, match="strat_fold"):
        run_benchmark(sets, index.drop(columns="strat_fold"), statements, "ptbxl", progress=False)
    holed = index.astype({"strat_fold": float})
    holed.loc[5, "strat_fold"] = np.nan
    with pytest.raises(CapeError, match="1 of 200 records have no strat_fold"):
        run_benchmark(sets, holed, statements, "ptbxl", progress=False)
    with pytest.raises(CapeError, match="cohort 'other' is not in the features"):
        run_benchmark(sets, index, statements, "other", progress=False)
    # No record with a form statement: that set is skipped and said so.
    no_form = index.copy()
    no_form["diagnoses"] = [
        [c for c in codes if c not in ("NDT", "PVC")] for codes in index["diagnoses"]
    ]
    settings = BenchmarkSettings(label_sets=("form", "rhythm"), n_resamples=10)
    result = run_benchmark(sets, no_form, statements, "ptbxl", settings, progress=False)
    assert set(result.scores["label_set"]) == {"rhythm"}
    assert any("'form' skipped" in m for m in result.messages)


def test_scoring_a_models_own_predictions(statements, tmp_path):
    """Catches scores matched to the wrong record or class, and silently missing ones."""
    from cape.benchmark_ptbxl.predictions import PredictionFile, read_predictions, score_predictions

    _, index, _ = synthetic_cohort(400)
    rng = np.random.default_rng(5)
    test = index[index["strat_fold"] == 10]
    rows = []
    for record_id, record in zip(test["record_id"], test["diagnoses"], strict=True):
        labels = statements.record_labels(record, "superdiagnostic")
        for label in statements.classes("superdiagnostic"):
            rows.append(
                (record_id, "superdiagnostic", label, (label in labels) + rng.normal(0, 0.7))
            )
    table = pd.DataFrame(rows, columns=["record_id", "label_set", "label", "y_pred"])
    table = table.sample(frac=1.0, random_state=0)  # order must not matter
    table.to_csv(tmp_path / "p.csv", index=False)
    settings = BenchmarkSettings(label_sets=("superdiagnostic",), n_resamples=10)
    prediction = PredictionFile.parse(f"net={tmp_path / 'p.csv'}")
    result = score_predictions([prediction], index, statements, "ptbxl", settings)
    row = result.scores.set_index("model").loc["net"]
    kept = [bool(statements.record_labels(c, "superdiagnostic")) for c in test["diagnoses"]]
    ids = test.loc[kept, "record_id"].tolist()
    wide = table.pivot(index="record_id", columns="label", values="y_pred").loc[ids]
    truth = np.array(
        [
            [int(x in statements.record_labels(c, "superdiagnostic")) for x in wide.columns]
            for c in test.loc[kept, "diagnoses"]
        ]
    )
    present = truth.sum(axis=0) > 0
    expected = roc_auc_score(truth[:, present], wide.to_numpy()[:, present], average="macro")
    assert row["macro_auroc"] == pytest.approx(expected, abs=1e-12)
    assert row["n_test"] == len(ids)
    one_short = table[table["record_id"] != ids[0]]
    with pytest.raises(CapeError, match="lacks 1 of the"):
        score_predictions(
            [PredictionFile("net", Path("x"), one_short)], index, statements, "ptbxl", settings
        )
    no_mi = table[table["label"] != "MI"]
    with pytest.raises(CapeError, match=r"lacks class\(es\) \['MI'\]"):
        score_predictions(
            [PredictionFile("net", Path("x"), no_mi)], index, statements, "ptbxl", settings
        )
    pd.concat([table, table.head(1)]).to_csv(tmp_path / "twice.csv", index=False)
    with pytest.raises(CapeError, match="repeated rows"):
        read_predictions(tmp_path / "twice.csv")


def test_inputs_cohort_and_statements(tmp_path):
    index = pd.DataFrame({"cohort": ["a", "b"], "strat_fold": [3, None]})
    assert choose_cohort(index, None, {}) == "a"
    assert choose_cohort(index, None, {"b": {"format": "ptbxl"}, "a": {"format": "wfdb"}}) == "b"
    with pytest.raises(CapeError, match="pass --cohort"):
        choose_cohort(index.assign(strat_fold=1), None, {})
    (tmp_path / "scp_statements.csv").write_text(FIXTURE.read_text())
    assert find_statements(None, [str(tmp_path)]) == tmp_path / "scp_statements.csv"
    assert find_statements(FIXTURE, []) == FIXTURE
    with pytest.raises(CapeError, match="pass --statements"):
        find_statements(None, [str(tmp_path / "elsewhere")])


# ------------------------------------------------------------------ the command, end to end


@pytest.mark.slow
def test_command_end_to_end_on_the_simulated_ptbxl_cohort(tmp_path, capsys):
    """simulate (the tiny preset's PTB-XL-layout cohort, 200 patients so that fold 10 holds
    some) -> ingest ptbxl -> embed (untrained small encoder) -> cape ptbxl-benchmark."""
    import yaml

    from cape.cli import main
    from cape.pretrain.config import load_config, save_config
    from cape.simulator.presets import preset

    spec = preset("tiny")
    linden = [c.model_copy(update={"n_patients": 200}) for c in spec.cohorts if c.name == "linden"]
    spec_file = tmp_path / "linden.yaml"
    spec_file.write_text(
        yaml.safe_dump(spec.model_copy(update={"cohorts": linden}).model_dump(mode="json"))
    )
    sim, store, run, features, out = (tmp_path / p for p in ("sim", "store", "run", "feats", "out"))
    assert (
        main(
            [
                "simulate",
                "--spec",
                str(spec_file),
                "--out",
                str(sim),
                "--workers",
                "1",
                "--no-progress",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "ingest",
                "ptbxl",
                str(sim / "linden"),
                "--cohort",
                "linden",
                "--mains",
                "50",
                "--out",
                str(store),
                "--no-progress",
            ]
        )
        == 0
    )
    run.mkdir()
    config = load_config(
        None, ["model.preset=small", "crop_seconds=2.0", "device=cpu", f"out_dir={run}"]
    )
    save_config(config, run / "config.yaml")
    assert (
        main(
            [
                "embed",
                "--checkpoint",
                str(run),
                "--untrained",
                "--store",
                str(store),
                "--out",
                str(features),
                "--no-progress",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert (
        main(
            [
                "ptbxl-benchmark",
                "--features",
                f"small={features}",
                "--out",
                str(out),
                "--n-bootstrap",
                "20",
                "--no-progress",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "literature values do not apply" in printed and "simulated" in printed
    scores = pd.read_csv(out / "benchmark.csv")
    # The simulator writes no form statements: five label sets are scored, form is skipped.
    # Its rhythm statements are all listed with likelihood 0: rhythm exists only because
    # the benchmark (and this protocol) ignores likelihoods.
    assert set(scores["label_set"]) == set(LABEL_SETS) - {"form"}
    assert set(scores["model"]) == {"small", "mean-predictor"}
    assert set(scores.loc[scores["model"] == "small", "baseline"]) == {"untrained"}
    manifest = pd.read_parquet(store / "manifest.parquet")
    assert scores["n_test"].max() == int((manifest["strat_fold"] == 10).sum())
    config_saved = json.loads((out / "config.json").read_text())
    assert config_saved["literature_applies"] is False
    assert config_saved["statements"].endswith("linden/scp_statements.csv")
    assert (out / "predictions.parquet").is_file() and (out / "classes.csv").is_file()
    # A model's own predictions are scored the same way: re-scoring the head's saved
    # predictions gives the same numbers (same folds, labels and resamples).
    saved = pd.read_parquet(out / "predictions.parquet")
    saved[saved["model"] == "small"].to_parquet(tmp_path / "own.parquet")
    assert (
        main(
            [
                "ptbxl-benchmark",
                "--predictions",
                f"net={tmp_path / 'own.parquet'}",
                "--store",
                str(store),
                "--out",
                str(tmp_path / "out2"),
                "--n-bootstrap",
                "20",
            ]
        )
        == 0
    )
    rescored = pd.read_csv(tmp_path / "out2" / "benchmark.csv")
    columns = ["label_set", "macro_auroc", "ci_low", "ci_high", "n_test"]
    head = scores[scores["model"] == "small"][columns].reset_index(drop=True)
    own = rescored[rescored["model"] == "net"][columns].reset_index(drop=True)
    pd.testing.assert_frame_equal(head, own)


def test_command_error_is_one_line(tmp_path, capsys):
    from cape.cli import main
    from cape.embed import write_features

    index = pd.DataFrame(
        {"record_id": ["1", "2"], "cohort": "x", "split": "train", "diagnoses": [["NORM"], ["SR"]]}
    )
    write_features(tmp_path / "f", np.zeros((2, 3), np.float32), index, {})
    code = main(
        [
            "ptbxl-benchmark",
            "--features",
            f"m={tmp_path / 'f'}",
            "--out",
            str(tmp_path / "o"),
            "--cohort",
            "x",
            "--statements",
            str(FIXTURE),
            "--no-progress",
        ]
    )
    assert code == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("cape: error:") and "strat_fold" in error
