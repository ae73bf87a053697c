"""What do an encoder's features know about the simulator's ground truth?

For a study run on simulated cohorts, this fits cross-validated ridge probes
(folds grouped by patient) from every feature set -- pretrained encoders, the
untrained encoder -- to the truth behind each ECG: age and sex, the traits
that carry the age and sex effects (heart rate, PR, QRS, QTc, QRS and T
amplitude), and the patient-only shape latents that carry *neither* (heart
rotation, wave elevations, septal/terminal sizes). It answers the learning
control's question, "why do pretrained features not predict age better than
an untrained network?": a contrastive encoder keeps what tells patients apart;
if that is mostly the shape latents, it learns identity without learning more
age.

    python -m cape.simulator.probe RUN [--cohort harbor] [--max-ecgs 3000]

``RUN`` is a study run directory (``data/_truth``, ``features/*``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.metrics import r2_score, roc_auc_score
from sklearn.model_selection import GroupKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

CARRIES_AGE_OR_SEX = (
    "age",
    "heart_rate_bpm",
    "pr_ms",
    "qrs_ms",
    "qtc_ms",
    "qrs_amplitude",
    "t_amplitude",
    "qrs_frontal_deg",
    "t_elevation_deg",
)
PATIENT_ONLY = (
    "heart_rot_x_deg",
    "heart_rot_y_deg",
    "heart_rot_z_deg",
    "qrs_elevation_deg",
    "septal_log_amplitude",
    "terminal_log_amplitude",
)  # shape latents without an age or sex term of their own (physiology.SHAPE_LATENTS)
TARGETS = CARRIES_AGE_OR_SEX + PATIENT_ONLY


def probe_scores(
    features: np.ndarray, truth: pd.DataFrame, groups: np.ndarray, folds: int = 5
) -> dict[str, float]:
    """Cross-validated R^2 per target (sex: AUROC), folds grouped by patient."""
    splitter = GroupKFold(n_splits=folds)
    scores: dict[str, float] = {}
    # Standardised features are clipped at +-5 SD (limits fitted in each fold): a unit
    # nearly constant in the training folds and far off in the test fold (the OOD
    # mechanism of docs/evaluation.md) would otherwise swamp a linear probe's R^2.
    clip = FunctionTransformer(np.clip, kw_args={"a_min": -5.0, "a_max": 5.0})
    regressor = make_pipeline(StandardScaler(), clip, RidgeCV(alphas=np.logspace(-2, 4, 13)))
    for target in TARGETS:
        y = truth[target].to_numpy(dtype=float)
        predicted = cross_val_predict(regressor, features, y, groups=groups, cv=splitter)
        scores[target] = float(r2_score(y, predicted))
    classifier = make_pipeline(StandardScaler(), clip, LogisticRegression(C=0.1, max_iter=2000))
    female = truth["female"].to_numpy(dtype=int)
    probability = cross_val_predict(
        classifier, features, female, groups=groups, cv=splitter, method="predict_proba"
    )[:, 1]
    scores["sex_auroc"] = float(roc_auc_score(female, probability))
    return scores


# Groups of ground-truth cues a patient-contrastive objective could use to tell patients
# apart (per-ECG values, visit noise included); amplitudes on the log scale.
CUE_SETS: dict[str, tuple[str, ...]] = {
    "rate + voltage": ("heart_rate_bpm", "qrs_amplitude", "t_amplitude", "p_amplitude"),
    "intervals": ("pr_ms", "qrs_ms", "qtc_ms", "p_duration_ms"),
    "directions + shape": (
        "qrs_frontal_deg",
        "t_frontal_deg",
        "qrs_elevation_deg",
        "t_elevation_deg",
        "heart_rot_x_deg",
        "heart_rot_y_deg",
        "heart_rot_z_deg",
        "septal_log_amplitude",
        "terminal_log_amplitude",
        "t_asymmetry",
    ),
}
_LOG_CUES = ("qrs_amplitude", "t_amplitude", "p_amplitude")


def cue_retrieval(
    truth: pd.DataFrame,
    cue_sets: dict[str, tuple[str, ...]] | None = None,
    negatives: int = 127,
    draws: int = 2000,
    seed: int = 0,
) -> dict[str, float]:
    """Same-patient retrieval top-1 from ground-truth cues alone, per cue set.

    An anchor ECG, another ECG of the same patient and ``negatives`` ECGs of other
    patients; the cues z-scored, Euclidean nearest neighbour; the fraction of draws in
    which the same-patient ECG is nearest. Set beside an encoder's retrieval (`cape
    retrieval`), it says which cues the encoder's notion of identity matches and which
    better cues it leaves unused. Sets ``all`` (every cue) is added.
    """
    sets = dict(cue_sets or CUE_SETS)
    sets["all"] = tuple(dict.fromkeys(c for cues in sets.values() for c in cues))
    patients = truth["patient_id"].astype(str).to_numpy()
    rows = pd.Series(np.arange(len(truth))).groupby(patients).apply(list)
    multi = [r for r in rows if len(r) >= 2]
    if not multi or len(np.unique(patients)) <= negatives:
        raise ValueError(f"cue retrieval needs patients with >= 2 ECGs and > {negatives} patients")
    rng = np.random.default_rng(seed)
    trials = []
    for _ in range(draws):
        mine = multi[rng.integers(len(multi))]
        anchor, positive = rng.choice(mine, 2, replace=False)
        others = np.flatnonzero(patients != patients[anchor])
        trials.append((anchor, positive, rng.choice(others, negatives, replace=False)))
    scores: dict[str, float] = {}
    for name, cues in sets.items():
        values = np.column_stack(
            [
                np.log(truth[c].to_numpy(dtype=float).clip(min=1e-3))
                if c in _LOG_CUES
                else truth[c].to_numpy(dtype=float)
                for c in cues
            ]
        )
        spread = values.std(axis=0)
        values = (values - values.mean(axis=0)) / np.where(spread > 0, spread, 1.0)
        hits = sum(
            np.linalg.norm(values[p] - values[a])
            < np.linalg.norm(values[n] - values[a], axis=1).min()
            for a, p, n in trials
        )
        scores[name] = float(hits) / draws
    return scores


def probe_run(
    run: Path, cohort: str = "harbor", max_ecgs: int = 3000, seed: int = 0
) -> pd.DataFrame:
    """One row per feature set of ``run``: probe scores on ``cohort``'s ECGs."""
    from cape.embed import load_features

    truth = pd.read_parquet(run / "data" / "_truth" / f"{cohort}.parquet")
    truth = truth.assign(record_id=truth["record_id"].astype(str)).set_index("record_id")
    rows: list[dict[str, Any]] = []
    for directory in sorted(p for p in (run / "features").iterdir() if p.is_dir()):
        features, index = load_features(directory)
        mine = np.flatnonzero((index["cohort"].astype(str) == cohort).to_numpy())
        if mine.size > max_ecgs:
            mine = np.sort(np.random.default_rng(seed).choice(mine, max_ecgs, replace=False))
        ids = index["record_id"].astype(str).to_numpy()[mine]
        matched = truth.reindex(ids)
        keep = matched["age"].notna().to_numpy()
        groups = matched["patient_id"].to_numpy()[keep]
        scores = probe_scores(features[mine][keep], matched[keep], groups)
        rows.append({"features": directory.name, "n": int(keep.sum()), **scores})
    return pd.DataFrame(rows).set_index("features")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cape.simulator.probe",
        description="Ridge probes of the simulator's truth from a study's feature sets",
    )
    parser.add_argument("run", type=Path, help="study run directory")
    parser.add_argument("--cohort", default="harbor")
    parser.add_argument("--max-ecgs", type=int, default=3000)
    parser.add_argument(
        "--no-cues",
        action="store_true",
        help="skip the same-patient retrieval from ground-truth cue sets",
    )
    args = parser.parse_args(argv)
    table = probe_run(args.run, args.cohort, args.max_ecgs)
    print("cross-validated R^2 (sex: AUROC); * = carries an age or sex effect")
    renamed = {t: f"{t}*" if t in CARRIES_AGE_OR_SEX else t for t in TARGETS}
    print(table.rename(columns=renamed).T.round(3).to_string())
    if not args.no_cues:
        truth = pd.read_parquet(args.run / "data" / "_truth" / f"{args.cohort}.parquet")
        print(
            "\nsame-patient retrieval top-1 from ground-truth cues alone (127 negatives, "
            "2,000 draws; compare `cape retrieval` on the features):"
        )
        for name, score in cue_retrieval(truth).items():
            print(f"  {name:<20} {score:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
