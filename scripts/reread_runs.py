"""Re-read finished study runs with the report's current verdict rules: one CSV row per run.

    python scripts/reread_runs.py "LABEL=RUN_DIR" ... > table.csv

Nothing is recomputed from the features: the claims and positive controls are read from
each run's saved evaluation tables (what ``cape report`` does), so a rule change can be
applied to old runs in seconds. docs/figures/seed-unit-reread.csv was made with it.
"""

from __future__ import annotations

import math
import re
import sys

import pandas as pd

from cape.report.claims import claims_from_data, compared_models
from cape.report.collect import collect
from cape.report.controls import UNTRAINED, controls_from_data


def _row(label: str, path: str) -> dict[str, object]:
    data = collect(path)
    pair = compared_models(data)
    if pair is None:
        raise SystemExit(f"{path}: no random/IDB pair of models")
    claims = {c["id"]: c for c in claims_from_data(data)}
    pretrained = [m for m in data.model_order() if m != UNTRAINED]
    controls = controls_from_data(data, pair[0], pretrained)
    row: dict[str, object] = {"run": label}
    for claim_id, digits in (("ood_age", 2), ("ood_sex", 3)):
        claim = claims[claim_id]
        aggregate = claim.get("aggregate") or {}
        p_value = aggregate.get("p_value")
        row[f"{claim_id} verdict"] = claim["verdict"]
        row[f"{claim_id} mean diff (>0 IDB better)"] = round(
            aggregate.get("mean_difference", math.nan), digits
        )
        row[f"{claim_id} p"] = round(p_value, 3) if p_value is not None else math.nan
        low, high = (
            aggregate.get("interval_low", math.nan),
            aggregate.get("interval_high", math.nan),
        )
        row[f"{claim_id} 90% CI"] = f"[{low:+.{digits}f}, {high:+.{digits}f}]"
        called = [f"{c['test_cohort']} {c['verdict']}" for c in claim["cells"]]
        called = [c for c in called if not c.endswith("inconclusive")]
        row[f"{claim_id} cohorts"] = "; ".join(called) or "all inconclusive"
    identifiability = claims["identifiability"]
    row["claim 2"] = identifiability["verdict"]
    found = re.findall(r"p (?:= |< )([0-9.]+)", identifiability["reason"])
    row["claim 2 p"] = found[0] if found else ""
    for control, name in (("learning", "MLP"), ("learning-probe", "probe")):
        rows = controls[controls["control"] == control]
        for task in ("age", "sex"):
            cell = rows[rows["task"] == task]
            verdicts = dict(zip(cell["model"], cell["verdict"], strict=True))
            p_values = [
                (re.findall(r"p = ([0-9.e-]+)", text) or ["?"])[-1].rstrip(".")
                for text in cell["measured"]
            ]
            row[f"{name} {task} random/idb"] = (
                f"{verdicts.get(pair[0], '-')} / {verdicts.get(pair[1], '-')} "
                f"(p {' / '.join(p_values)})"
            )
    shortcut = controls[controls["control"] == "shortcut"]["verdict"]
    row["shortcut"] = shortcut.iloc[0] if len(shortcut) else "not measured"
    return row


def main(arguments: list[str]) -> None:
    if not arguments or any("=" not in a for a in arguments):
        raise SystemExit(__doc__)
    rows = [_row(*argument.split("=", 1)) for argument in arguments]
    pd.DataFrame(rows).to_csv(sys.stdout, index=False)


if __name__ == "__main__":
    main(sys.argv[1:])
