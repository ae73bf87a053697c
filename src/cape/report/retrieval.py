"""Same-patient retrieval results (``evaluation/retrieval.{parquet,csv}``) for the report."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def fmt(value: float, digits: int) -> str:
    """A number with ``digits`` decimals; ``–`` when missing (no import of the tables module,
    which depends on the collected data this module is part of)."""
    return "–" if value is None or pd.isna(value) else f"{value:.{digits}f}"


RETRIEVAL_NOTE = (
    "Same-patient retrieval: for anchors drawn equally from every cohort, is the patient's "
    "other ECG the most similar (cosine of z-scored features) among {k} ECGs of other "
    "patients? Mixed negatives come from every cohort (as in a random batch), same-cohort "
    "negatives from the anchor's (as in an in-distribution batch). Top-1 far above chance "
    "means the features hold patient identity; a positive gap (mixed minus same-cohort, "
    "paired over the same anchors) is what knowing the cohort is worth to a contrastive "
    "loss, i.e. how much a cohort shortcut could pay. Bootstrap 95% CIs over anchors; "
    "chance {chance}."
)


def read_retrieval(evaluation: Path) -> pd.DataFrame | None:
    """The retrieval table a study's evaluate stage wrote, if any."""
    for suffix in (".parquet", ".csv"):
        path = evaluation / f"retrieval{suffix}"
        if path.is_file():
            return pd.read_parquet(path) if suffix == ".parquet" else pd.read_csv(path)
    return None


def _ci(value: float, low: float, high: float, signed: bool = False) -> str:
    if signed:
        return f"{value:+.3f} [{low:+.3f}, {high:+.3f}]"
    return f"{fmt(value, 3)} [{fmt(low, 3)}–{fmt(high, 3)}]"


def retrieval_table(table: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, encoder seed): top-1 mixed, same-cohort and the gap, with CIs."""
    rows = []
    for row in table.sort_values(["model", "encoder_seed"]).itertuples(index=False):
        rows.append(
            {
                "model": row.model,
                "encoder seed": fmt(row.encoder_seed, 0),
                "top-1, mixed negatives": _ci(
                    row.top1_mixed, row.top1_mixed_low, row.top1_mixed_high
                ),
                "top-1, same-cohort negatives": _ci(
                    row.top1_same_cohort, row.top1_same_cohort_low, row.top1_same_cohort_high
                ),
                "gap (mixed - same)": _ci(row.gap, row.gap_low, row.gap_high, signed=True),
                "anchors": fmt(row.n_draws, 0),
            }
        )
    return pd.DataFrame(rows).set_index(["model", "encoder seed"])


def retrieval_caption(table: pd.DataFrame) -> str:
    """The table's caption, with its number of negatives and chance level."""
    first = table.iloc[0]
    return RETRIEVAL_NOTE.format(k=int(first["n_negatives"]), chance=fmt(first["chance"], 3))
