"""``cape describe``: cohort characteristics tables (the paper's Tables 1 and 2)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "describe",
        help="cohort characteristics: patients, ECGs, age, sex, ethnicity, devices",
        description=(
            "Print one row per cohort of one or more stores — patients, ECGs, ECGs per "
            "patient, patients with >= 2 ECGs, age mean and IQR, sex, ethnicity and devices — "
            "and optionally write it as csv and markdown."
        ),
    )
    parser.add_argument("stores", nargs="+", type=Path, help="store directories")
    parser.add_argument("--csv", type=Path, help="write the table as csv here")
    parser.add_argument("--markdown", type=Path, help="write the table as markdown here")
    parser.add_argument(
        "--quarantine",
        action="store_true",
        help="also list quarantined inputs by cohort and reason",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import pandas as pd

    from cape.describe import describe_cohorts, to_markdown
    from cape.store import CohortStore

    stores = [CohortStore.open(path) for path in args.stores]
    manifest = pd.concat([s.manifest for s in stores], ignore_index=True)
    table = describe_cohorts(manifest)
    with pd.option_context("display.max_columns", None, "display.width", 200):
        print(table.T.to_string(float_format=lambda v: f"{v:.1f}"))
    if args.csv:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.csv)
        print(f"wrote {args.csv}")
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(to_markdown(table) + "\n")
        print(f"wrote {args.markdown}")
    if args.quarantine:
        quarantine = pd.concat([s.quarantine() for s in stores], ignore_index=True)
        if len(quarantine):
            counts = quarantine.groupby(["cohort", "reason"]).size().rename("inputs")
            print("\nquarantined inputs:")
            print(counts.to_string())
        else:
            print("\nno quarantined inputs")
    return 0
