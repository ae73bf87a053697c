"""Same-patient retrieval: can the features find a patient's other ECG, and does the cohort help?

Patient-contrastive pretraining is trained to do exactly this: for an anchor ECG,
rank the same patient's other ECG above ECGs of other patients. Measured twice on
the same anchors and positives,

- with **mixed** negatives (drawn from every cohort, as in a random batch), and
- with **same-cohort** negatives (drawn from the anchor's cohort only, as in an
  in-distribution batch),

retrieval says two things that identifiability alone does not:

1. whether pretraining learnt patient identity at all (top-1 accuracy against
   an untrained encoder's and against chance ``1 / (negatives + 1)``), and
2. how much a cohort shortcut *could* pay: if features carry the cohort,
   negatives from other cohorts are easy to rule out, so mixed-negative
   retrieval beats same-cohort retrieval. The gap (mixed minus same-cohort,
   paired over draws) is the direct measure; a gap near 0 means that knowing
   the cohort rules out no extra negatives for these features.

Features are z-scored with the mean and SD of the rows given (no labels are
used), then compared by cosine similarity; a draw succeeds when the positive's
similarity is strictly above every negative's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from cape.heads.base import check_features
from cape.stats import bootstrap_indices

MIXED = "mixed"
SAME_COHORT = "same-cohort"


@dataclass(frozen=True)
class RetrievalResult:
    """Top-1 same-patient retrieval with mixed and same-cohort negatives.

    Attributes:
        top1_mixed: fraction of draws where the positive beat every mixed negative.
        top1_same_cohort: the same anchors and positives against same-cohort negatives.
        gap: ``top1_mixed - top1_same_cohort`` (what knowing the cohort is worth).
        *_low, *_high: percentile-bootstrap CI over draws (paired for ``gap``).
        chance: ``1 / (n_negatives + 1)``.
        n_draws: anchors drawn (spread equally over cohorts that have a patient with
            two ECGs and enough other patients' ECGs).
        n_negatives: negatives per draw.
        cohorts: cohorts that contributed anchors.
    """

    top1_mixed: float
    top1_mixed_low: float
    top1_mixed_high: float
    top1_same_cohort: float
    top1_same_cohort_low: float
    top1_same_cohort_high: float
    gap: float
    gap_low: float
    gap_high: float
    chance: float
    n_draws: int
    n_negatives: int
    cohorts: tuple[str, ...]

    def summary(self) -> dict[str, Any]:
        """JSON-friendly values."""
        out = asdict(self)
        out["cohorts"] = list(self.cohorts)
        return out


@dataclass(frozen=True)
class RetrievalDraws:
    """The ECG positions of every draw: anchor, positive and both negative sets."""

    anchors: np.ndarray  # (D,)
    positives: np.ndarray  # (D,)
    mixed: np.ndarray  # (D, K)
    same_cohort: np.ndarray  # (D, K)


def draw_retrieval_sets(
    patients: np.ndarray,
    cohorts: np.ndarray,
    n_draws: int = 2000,
    n_negatives: int = 127,
    seed: int = 0,
) -> RetrievalDraws:
    """Anchors, positives and negatives, the same for every feature set of the same ECGs.

    Anchors are spread equally over the cohorts that can supply them (a patient
    with at least two ECGs, and at least ``n_negatives`` ECGs of other patients
    in the cohort); within a cohort, an anchor ECG is drawn uniformly among ECGs
    of patients with two or more ECGs, its positive uniformly among the patient's
    other ECGs. Negatives are drawn without replacement among ECGs of other
    patients: from every cohort (mixed) or from the anchor's cohort.

    Args:
        patients: ``(n,)`` patient keys, unique across cohorts (e.g. ``"cohort/id"``).
        cohorts: ``(n,)`` cohort names.
        n_draws: total anchors.
        n_negatives: negatives per anchor.
        seed: seeds every choice.

    Raises:
        ValueError: mismatched lengths, non-positive counts, or no cohort that can
            supply anchors.
    """
    patients = np.asarray(patients).astype(str)
    cohorts = np.asarray(cohorts).astype(str)
    if patients.shape != cohorts.shape or patients.ndim != 1:
        raise ValueError(
            f"patients and cohorts must be equal-length 1-D, got {patients.shape}, {cohorts.shape}"
        )
    if n_draws < 1 or n_negatives < 1:
        raise ValueError(f"need n_draws >= 1 and n_negatives >= 1, got {n_draws}, {n_negatives}")
    rng = np.random.default_rng(seed)
    _, patient_codes, patient_sizes = np.unique(patients, return_inverse=True, return_counts=True)
    ecg_counts = patient_sizes[patient_codes]  # ECGs of each row's patient
    usable = []
    for name in np.unique(cohorts):
        members = cohorts == name
        has_pairs = members & (ecg_counts >= 2)
        # The smallest pool of other-patient ECGs an anchor of this cohort can have.
        largest_patient = int(ecg_counts[members].max())
        if has_pairs.any() and int(members.sum()) - largest_patient >= n_negatives:
            usable.append(name)
    if not usable:
        raise ValueError(
            f"no cohort has a patient with two ECGs and at least {n_negatives} ECGs of "
            "other patients: lower n_negatives or give more ECGs"
        )
    per_cohort = np.full(len(usable), n_draws // len(usable))
    per_cohort[: n_draws % len(usable)] += 1
    anchors, positives, mixed, same = [], [], [], []
    everyone = np.arange(patients.size)
    for name, count in zip(usable, per_cohort, strict=True):
        candidates = np.flatnonzero((cohorts == name) & (ecg_counts >= 2))
        cohort_rows = np.flatnonzero(cohorts == name)
        for anchor in rng.choice(candidates, size=int(count), replace=True):
            code = patient_codes[anchor]
            own = np.flatnonzero(patient_codes == code)
            positives.append(rng.choice(own[own != anchor]))
            anchors.append(anchor)
            others_all = everyone[patient_codes != code]
            others_cohort = cohort_rows[patient_codes[cohort_rows] != code]
            mixed.append(rng.choice(others_all, size=n_negatives, replace=False))
            same.append(rng.choice(others_cohort, size=n_negatives, replace=False))
    return RetrievalDraws(
        anchors=np.asarray(anchors),
        positives=np.asarray(positives),
        mixed=np.stack(mixed),
        same_cohort=np.stack(same),
    )


def _standardised_unit_rows(features: np.ndarray) -> np.ndarray:
    z = features.astype(np.float64)
    z = z - z.mean(axis=0)
    std = z.std(axis=0)
    z = z / np.where(std > 0, std, 1.0)  # constant dimensions carry nothing; keep them at 0
    norms = np.linalg.norm(z, axis=1, keepdims=True)
    return z / np.where(norms > 0, norms, 1.0)


def _successes(unit: np.ndarray, draws: RetrievalDraws, negatives: np.ndarray) -> np.ndarray:
    anchor = unit[draws.anchors]  # (D, d)
    positive = np.einsum("ij,ij->i", anchor, unit[draws.positives])
    result = np.empty(anchor.shape[0], dtype=bool)
    for start in range(0, anchor.shape[0], 256):  # bounded memory: 256 x K x d at a time
        part = slice(start, start + 256)
        similarity = np.einsum("ij,ikj->ik", anchor[part], unit[negatives[part]])
        result[part] = positive[part] > similarity.max(axis=1)
    return result


def patient_retrieval(
    features: np.ndarray,
    draws: RetrievalDraws,
    n_bootstrap: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    cohorts: tuple[str, ...] = (),
) -> RetrievalResult:
    """Top-1 retrieval of the same patient's other ECG, mixed vs same-cohort negatives.

    Args:
        features: ``(n, d)`` features of the ECGs ``draws`` indexes.
        draws: from :func:`draw_retrieval_sets` (share them across feature sets so
            every model is judged on the same anchors).
        n_bootstrap: resamples of the draws for the CIs.
        seed: seeds the bootstrap.
        confidence: coverage of the CIs.
        cohorts: names recorded in the result.

    Raises:
        ValueError: NaN features or draws that index outside them.
    """
    inputs = check_features(features, "features")
    highest = max(int(draws.anchors.max()), int(draws.mixed.max()), int(draws.same_cohort.max()))
    if highest >= inputs.shape[0]:
        raise ValueError(f"draws index row {highest} of {inputs.shape[0]} features")
    unit = _standardised_unit_rows(inputs)
    mixed = _successes(unit, draws, draws.mixed).astype(np.float64)
    same = _successes(unit, draws, draws.same_cohort).astype(np.float64)
    indices = bootstrap_indices(mixed.size, n_bootstrap, seed)
    alpha = (1.0 - confidence) / 2.0

    def interval(values: np.ndarray) -> tuple[float, float]:
        means = values[indices].mean(axis=1)
        low, high = np.quantile(means, [alpha, 1.0 - alpha])
        return float(low), float(high)

    mixed_ci, same_ci, gap_ci = interval(mixed), interval(same), interval(mixed - same)
    return RetrievalResult(
        top1_mixed=float(mixed.mean()),
        top1_mixed_low=mixed_ci[0],
        top1_mixed_high=mixed_ci[1],
        top1_same_cohort=float(same.mean()),
        top1_same_cohort_low=same_ci[0],
        top1_same_cohort_high=same_ci[1],
        gap=float((mixed - same).mean()),
        gap_low=gap_ci[0],
        gap_high=gap_ci[1],
        chance=1.0 / (draws.mixed.shape[1] + 1),
        n_draws=int(mixed.size),
        n_negatives=int(draws.mixed.shape[1]),
        cohorts=tuple(cohorts),
    )
