"""A small fake study run directory, built with the real writers so formats stay honest.

- ``store/``: a tiny cohort store (``create_store_from_arrays``) of three cohorts,
  with a quarantine table; ids and dates are distinctive strings so the
  privacy tests can look for them.
- ``features/``: random-batch features carry a strong cohort offset (so they
  are cohort-identifiable and mislead an OOD age head), IDB features do not;
  the untrained encoder's features are mostly noise.
- ``pretrain/``: ``config.yaml`` with ``batching`` and a ``log.jsonl``.
- ``evaluation/``: the OOD and composition protocols actually run (linear
  heads, few runs), written by :func:`cape.protocols.write_results`, and
  identifiability computed by :func:`cape.diagnostics.cohort_identifiability`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from cape.embed import LABEL_COLUMNS, write_features
from cape.store import QUARANTINE_COLUMNS, create_store_from_arrays

COHORTS = {"harbour": 36, "meadow": 30, "summit": 26}  # patients per cohort
MODELS = {"random": "random", "idb": "idb"}  # model name -> batching
SEEDS = (0, 1)
N_FEATURES = 12


def record_id(cohort: str, patient: int, ecg: int) -> str:
    return f"RECSECRET{cohort[:3].upper()}{patient:04d}X{ecg}"


def patient_id(patient: int) -> str:
    return f"PATSECRET{patient:05d}"


def make_manifest(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for c, (cohort, n_patients) in enumerate(COHORTS.items()):
        order = rng.permutation(n_patients)
        split = np.where(
            order < 0.5 * n_patients, "train", np.where(order < 0.65 * n_patients, "val", "test")
        )
        for p in range(n_patients):
            age = float(np.clip(rng.normal(45 + 10 * c, 14), 18, 95))
            sex = "M" if order[p] % 2 else "F"  # alternating in split order: both sexes per split
            for e in range(2 + (p % 2)):
                rows.append(
                    {
                        "record_id": record_id(cohort, p, e),
                        "patient_id": patient_id(p),
                        "cohort": cohort,
                        "valid_length": 4000 if e % 2 == 0 else 2800,
                        "age": age,
                        "age_topcoded": False,
                        "sex": sex,
                        "device": f"{cohort}-device-{e % 2}" if c < 2 else f"{cohort}-device-0",
                        "site": None,
                        "ethnicity": ["group-a", "group-b"][p % 2] if c != 2 else None,
                        "recording_date": f"2017-0{1 + p % 9}-1{e}",
                        "split": split[p],
                    }
                )
    return pd.DataFrame(rows)


def make_features(index: pd.DataFrame, batching: str, seed: int) -> np.ndarray:
    """Age in dimension 0, sex in 1; random batching adds a cohort offset to both."""
    rng = np.random.default_rng(seed + (0 if batching == "random" else 100))
    n = len(index)
    features = rng.normal(size=(n, N_FEATURES))
    age = index["age"].to_numpy()
    features[:, 0] = (age - 50) / 15 + 0.3 * rng.normal(size=n)
    features[:, 1] = np.where(index["sex"] == "M", 1.0, -1.0) + 0.5 * rng.normal(size=n)
    if batching == "random":
        codes = index["cohort"].map({c: k for k, c in enumerate(COHORTS)}).to_numpy()
        features[:, 0] += 2.5 * codes
        features[:, 2:5] += 3.0 * np.eye(3)[codes]
    elif batching == "untrained":
        features[:, :2] = rng.normal(size=(n, 2))
    return features.astype(np.float32)


def write_store(run: Path) -> pd.DataFrame:
    manifest = make_manifest()
    rng = np.random.default_rng(1)
    signals = (0.05 * rng.standard_normal((len(manifest), 8, 4000))).astype(np.float32)
    create_store_from_arrays(run / "store", signals, manifest)
    quarantine = pd.DataFrame(
        [
            {
                "cohort": "harbour",
                "source_file": "QSECRET/a.dat",
                "record_id": "QRECSECRET1",
                "patient_id": "QPATSECRET1",
                "reason": "flat_lead",
                "detail": "lead V3 flat",
            },
            {
                "cohort": "harbour",
                "source_file": "QSECRET/b.dat",
                "record_id": "QRECSECRET2",
                "patient_id": "QPATSECRET2",
                "reason": "nan",
                "detail": "NaN samples",
            },
            {
                "cohort": "summit",
                "source_file": "QSECRET/c.dat",
                "record_id": "QRECSECRET3",
                "patient_id": "QPATSECRET3",
                "reason": "flat_lead",
                "detail": "lead I flat",
            },
        ],
        columns=QUARANTINE_COLUMNS,
    )
    quarantine.to_parquet(run / "store" / "quarantine.parquet", index=False)
    return pd.read_parquet(run / "store" / "manifest.parquet")


def write_pretraining(run: Path) -> None:
    for model, batching in MODELS.items():
        for seed in SEEDS:
            path = run / "pretrain" / f"{model}-seed{seed}"
            path.mkdir(parents=True)
            (path / "config.yaml").write_text(yaml.safe_dump({"batching": batching, "seed": seed}))
            lines = []
            for epoch in range(3):
                for step in range(2):
                    global_step = epoch * 4 + 2 * (step + 1)
                    loss = 4.0 - 0.3 * global_step**0.5 + 0.05 * seed
                    lines.append(
                        {
                            "kind": "step",
                            "epoch": epoch,
                            "step": 2 * step + 1,
                            "lr": 1e-3,
                            "global_step": global_step,
                            "loss": loss,
                        }
                    )
                lines.append(
                    {
                        "kind": "epoch",
                        "epoch": epoch,
                        "global_step": 4 * (epoch + 1),
                        "loss": 4.0 - 0.5 * epoch,
                        "positive_similarity": 0.5,
                        "negative_similarity": float("nan"),
                        "ecgs_per_s": 120.0,
                    }
                )
            text = "\n".join(json.dumps(line) for line in lines) + "\n"
            (path / "log.jsonl").write_text(text)


def write_feature_dirs(run: Path, manifest: pd.DataFrame) -> list[tuple[str, int, Path, bool]]:
    index = manifest[[c for c in LABEL_COLUMNS if c in manifest]].copy()
    index.insert(0, "store_index", np.arange(len(index)))
    dirs = []
    for model, batching in MODELS.items():
        for seed in SEEDS:
            path = run / "features" / f"{model}-seed{seed}"
            info = {"checkpoint": str(run / "pretrain" / f"{model}-seed{seed}"), "untrained": False}
            write_features(path, make_features(index, batching, seed), index, info)
            dirs.append((model, seed, path, False))
    path = run / "features" / "untrained-seed0"
    write_features(path, make_features(index, "untrained", 0), index, {"untrained": True})
    dirs.append(("untrained", 0, path, True))
    return dirs


def write_evaluation(run: Path, dirs: list[tuple[str, int, Path, bool]], runs: int = 3) -> None:
    from cape.diagnostics import cohort_identifiability
    from cape.protocols import (
        FeatureSpec,
        HeadSettings,
        ProtocolSettings,
        load_feature_sets,
        run_composition,
        run_ood,
        subgroup_table,
        write_results,
    )
    from cape.study.evaluation import RETRIEVAL_FILE, retrieval_table

    specs = [
        FeatureSpec(m, p, encoder_seed=s, baseline="untrained" if u else "") for m, s, p, u in dirs
    ]
    sets, index = load_feature_sets(specs)
    head = HeadSettings("linear", {})
    ood = ProtocolSettings.for_protocol(
        "ood",
        train_cohort="harbour",
        compare=("random", "idb"),
        runs=runs,
        head=head,
        subgroups=False,
    )
    result = run_ood(sets, index, ood, progress=False)
    # Subgroup metrics of one run only keep the fixture fast; the format is the protocol's own.
    first = result.predictions[result.predictions["run"] == 0]
    result.subgroups = subgroup_table(first, index)
    write_results(result, run / "evaluation" / "ood")
    composition = ProtocolSettings.for_protocol(
        "composition", runs=runs, sizes=(30, 8, 12), head=head, compare=("random", "idb")
    )
    write_results(
        run_composition(sets, index, composition, progress=False),
        run / "evaluation" / "composition",
    )
    records = []
    groups = (index["cohort"] + "/" + index["patient_id"]).to_numpy()
    for feature_set in sets:
        for by in ("cohort", "device"):
            summary = cohort_identifiability(
                feature_set.features,
                index[by].astype(str).to_numpy(),
                groups=groups,
                n_splits=3,
                seed=0,
                n_bootstrap=50,
            ).summary()
            records.append(
                {
                    "model": feature_set.model,
                    "encoder_seed": feature_set.encoder_seed,
                    "baseline": feature_set.baseline,
                    "by": by,
                    **summary,
                }
            )
    (run / "evaluation" / "identifiability.json").write_text(json.dumps(records, indent=1))
    retrieval = retrieval_table(sets, index, seed=0, n_draws=120, n_negatives=15)
    retrieval.to_parquet(run / "evaluation" / RETRIEVAL_FILE, index=False)


def write_study_files(run: Path) -> None:
    study = {
        "name": "fake-study",
        "simulate": {"preset": "tiny", "seed": 0},
        "pretrain": {
            "base": "small",
            "runs": [
                {"name": m, "settings": {"batching": b}, "seeds": list(SEEDS)}
                for m, b in MODELS.items()
            ],
        },
        "evaluate": {"ood": {"train_cohort": "harbour", "runs": 2}},
    }
    (run / "study.yaml").write_text(yaml.safe_dump(study, sort_keys=False))
    provenance = {
        "cape_version": "0.0.test",
        "git_revision": "abc123",
        "python": "3.11",
        "torch": "2.x",
        "numpy": "2.x",
        "stages": {"cohort store": {"key": "0123456789abcdef", "stamp": "k@t", "skipped": False}},
    }
    (run / "provenance.json").write_text(json.dumps(provenance))


def build_run(run: Path, evaluation: bool = True) -> Path:
    """Write the whole fake run directory into ``run``; returns it."""
    run.mkdir(parents=True, exist_ok=True)
    write_study_files(run)
    manifest = write_store(run)
    write_pretraining(run)
    dirs = write_feature_dirs(run, manifest)
    if evaluation:
        write_evaluation(run, dirs)
    return run
