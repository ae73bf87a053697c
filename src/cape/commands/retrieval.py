"""``cape retrieval``: does a feature set find a patient's other ECG, and does the cohort help?"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from cape.commands._options import (
    add_cohort_option,
    add_split_option,
    non_negative_int,
    positive_int,
)
from cape.errors import CapeError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "retrieval",
        help="same-patient retrieval with mixed vs same-cohort negatives",
        description=(
            "For anchors drawn equally from every cohort, rank the same patient's other ECG "
            "against NEGATIVES ECGs of other patients by cosine similarity of z-scored "
            "features; report top-1 accuracy with mixed negatives (every cohort, as in a "
            "random batch) and with same-cohort negatives (as in an in-distribution batch), "
            "and their paired gap with a bootstrap 95% CI. Retrieval far above chance says "
            "the features hold patient identity; a positive gap says knowing the cohort "
            "rules out negatives, i.e. a cohort shortcut could lower a contrastive loss."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--features", required=True, type=Path, nargs="+", help="features directories"
    )
    add_cohort_option(parser, "only these cohorts (default: all)")
    add_split_option(parser, "only these splits, e.g. test (default: all)")
    parser.add_argument("--negatives", type=positive_int, default=127, help="negatives per anchor")
    parser.add_argument(
        "--draws", type=positive_int, default=2000, help="anchors, spread over cohorts"
    )
    parser.add_argument("--bootstrap", type=positive_int, default=1000, help="bootstrap resamples")
    parser.add_argument(
        "--seed", type=non_negative_int, default=0, help="seed of the draws and resamples"
    )
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from cape.diagnostics import draw_retrieval_sets, patient_retrieval
    from cape.embed import load_features

    if args.negatives < 1 or args.draws < 1 or args.bootstrap < 1:
        raise CapeError("--negatives, --draws and --bootstrap must be at least 1")
    loaded = [(path, *load_features(path)) for path in args.features]
    reference = loaded[0][2]
    keys = ["cohort", "patient_id", "record_id"]
    for path, _, index in loaded[1:]:
        if not all(c in index for c in keys) or not index[keys].equals(reference[keys]):
            raise CapeError(
                f"{path} holds other ECGs than {args.features[0]} (or in another order): "
                "embed the same store and selection for every feature set"
            )
    mask = np.ones(len(reference), dtype=bool)
    if args.cohorts:
        known = set(reference["cohort"].astype(str))
        unknown = sorted(set(args.cohorts) - known)
        if unknown:
            raise CapeError(f"unknown cohorts {unknown}; the features hold {sorted(known)}")
        mask &= reference["cohort"].astype(str).isin(args.cohorts).to_numpy()
    if args.split:
        mask &= reference["split"].isin(args.split).to_numpy()
    rows = np.flatnonzero(mask)
    cohorts = reference["cohort"].astype(str).to_numpy()[rows]
    patients = reference["cohort"].astype(str) + "/" + reference["patient_id"].astype(str)
    try:
        draws = draw_retrieval_sets(
            patients.to_numpy()[rows], cohorts, args.draws, args.negatives, args.seed
        )
    except ValueError as error:
        raise CapeError(f"{args.features[0]}: {error}") from error
    used = tuple(sorted(set(cohorts[draws.anchors])))
    print(
        f"same-patient retrieval: {draws.anchors.size} anchors from {', '.join(used)}; "
        f"{args.negatives} negatives each; chance {1 / (args.negatives + 1):.3f}"
    )
    print(f"{'features':<40} {'mixed':>21} {'same-cohort':>21} {'gap (mixed - same)':>24}")
    records = []
    for path, features, _ in loaded:
        result = patient_retrieval(
            features[rows], draws, n_bootstrap=args.bootstrap, seed=args.seed, cohorts=used
        )
        print(
            f"{str(path)[-40:]:<40} "
            f"{result.top1_mixed:.3f} [{result.top1_mixed_low:.3f}, {result.top1_mixed_high:.3f}] "
            f"{result.top1_same_cohort:.3f} [{result.top1_same_cohort_low:.3f}, "
            f"{result.top1_same_cohort_high:.3f}] "
            f"{result.gap:+.3f} [{result.gap_low:+.3f}, {result.gap_high:+.3f}]"
        )
        records.append({"features": str(path), **result.summary()})
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(records, indent=2))
        print(f"written to {args.out}")
    return 0
