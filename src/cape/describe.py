"""Cohort characteristics: the paper's Tables 1 and 2, computed from manifests."""

from __future__ import annotations

import numpy as np
import pandas as pd


def describe_cohorts(manifest: pd.DataFrame) -> pd.DataFrame:
    """One row per cohort: patients, ECGs, age, sex, ethnicity and devices.

    Args:
        manifest: store manifest rows (``cohort``, ``patient_id`` and, when
            present, ``age``, ``age_topcoded``, ``sex``, ``ethnicity``, ``device``).

    Returns:
        DataFrame indexed by cohort. Age statistics are per ECG (the age at
        recording); top-coded ages count at their lower bound and are counted
        in ``age_topcoded``. Counts of categorical columns are ``;``-joined
        ``value: count`` strings, most common first.
    """
    rows = []
    for cohort, group in manifest.groupby("cohort", sort=True):
        per_patient = group.groupby("patient_id").size()
        row: dict[str, object] = {
            "cohort": cohort,
            "patients": int(per_patient.size),
            "ecgs": len(group),
            "ecgs_per_patient_mean": float(per_patient.mean()),
            "ecgs_per_patient_median": float(per_patient.median()),
            "patients_with_2plus_ecgs": int((per_patient >= 2).sum()),
        }
        age = pd.to_numeric(group.get("age"), errors="coerce") if "age" in group else None
        if age is not None and age.notna().any():
            row.update(
                age_mean=float(age.mean()),
                age_q1=float(age.quantile(0.25)),
                age_q3=float(age.quantile(0.75)),
                age_missing=int(age.isna().sum()),
            )
            if "age_topcoded" in group:
                row["age_topcoded"] = int(group["age_topcoded"].fillna(False).astype(bool).sum())
        if "sex" in group:
            # Sex is a patient attribute: count patients, by their most common recorded sex.
            sex = (
                group.dropna(subset=["sex"])
                .groupby("patient_id")["sex"]
                .agg(lambda s: s.mode().iloc[0])
            )
            n_known = max(int(sex.size), 1)
            for label, name in (("M", "male"), ("F", "female")):
                count = int((sex == label).sum())
                row[f"{name}_patients"] = count
                row[f"{name}_pct"] = 100.0 * count / n_known
        for column in ("ethnicity", "device", "site"):
            if column in group and group[column].notna().any():
                counts = group[column].fillna("unknown").astype(str).value_counts()
                row[f"{column}_counts"] = "; ".join(f"{k}: {v}" for k, v in counts.items())
        rows.append(row)
    return pd.DataFrame(rows).set_index("cohort")


def to_markdown(frame: pd.DataFrame, float_format: str = "{:.1f}") -> str:
    """A GitHub-flavoured markdown table (no extra dependency)."""
    frame = frame.reset_index()
    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    lines = [header, rule]
    for _, row in frame.iterrows():
        cells = []
        for value in row:
            if isinstance(value, (float, np.floating)):
                cells.append("" if np.isnan(value) else float_format.format(value))
            else:
                cells.append(str(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
