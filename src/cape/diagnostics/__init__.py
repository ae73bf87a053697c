"""Diagnostics of features across cohorts: identifiability, feature shift, subgroup metrics.

- :func:`cohort_identifiability` (:mod:`.identifiability`): cross-validated
  multinomial logistic regression predicting cohort (or device) from features,
  with bootstrap CIs and chance levels.
- :func:`feature_shift` (:mod:`.shift`): per-dimension shift of each cohort's
  centroid from the training cohort's, in floored training SDs.
- :func:`band_power_features` (:mod:`.spectral`): log band powers of stored
  signals, the reference level for identifiability before any encoder.
- :func:`patient_retrieval` (:mod:`.retrieval`): top-1 retrieval of a
  patient's other ECG with mixed vs same-cohort negatives -- whether features
  hold patient identity, and how much a cohort shortcut could pay.
- :func:`subgroup_metrics` and :func:`age_bins` (:mod:`.subgroups`): a metric
  per subgroup with counts, as tidy rows.

No file I/O; every random choice takes a seed.
"""

from cape.diagnostics.identifiability import IdentifiabilityResult, cohort_identifiability
from cape.diagnostics.retrieval import (
    RetrievalDraws,
    RetrievalResult,
    draw_retrieval_sets,
    patient_retrieval,
)
from cape.diagnostics.shift import FeatureShift, feature_shift
from cape.diagnostics.spectral import band_power_features
from cape.diagnostics.subgroups import age_bins, subgroup_metrics

__all__ = [
    "FeatureShift",
    "IdentifiabilityResult",
    "RetrievalDraws",
    "RetrievalResult",
    "age_bins",
    "band_power_features",
    "cohort_identifiability",
    "draw_retrieval_sets",
    "feature_shift",
    "patient_retrieval",
    "subgroup_metrics",
]
