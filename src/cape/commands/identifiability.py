"""``cape identifiability``: can a linear model tell the cohort (or device) from the features?"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cape.commands._options import (
    add_cohort_option,
    add_split_option,
    int_at_least,
    non_negative_int,
    positive_int,
)
from cape.errors import CapeError

if TYPE_CHECKING:
    import numpy as np

logger = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "identifiability",
        help="how well the cohort (or device) can be predicted from features",
        description=(
            "Cross-validated multinomial logistic regression predicting the cohort (or the "
            "device) from a features directory, folds grouped by patient. Prints accuracy and "
            "macro one-vs-rest AUROC with bootstrap 95% CIs next to chance level (majority "
            "class and 1/k). Random-batch features tend to be identifiable; in-distribution "
            "batching should bring this towards chance."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--features", required=True, type=Path, help="features directory")
    parser.add_argument(
        "--by", choices=["cohort", "device"], default="cohort", help="what to predict"
    )
    add_cohort_option(parser, "only these cohorts (default: all)")
    add_split_option(parser, "only these splits, e.g. test (default: all)")
    parser.add_argument(
        "--max-per-class",
        type=positive_int,
        help="draw at most this many ECGs per class (seeded; default: all)",
    )
    parser.add_argument("--folds", type=int_at_least(2), default=5, help="cross-validation folds")
    parser.add_argument("--bootstrap", type=positive_int, default=1000, help="bootstrap resamples")
    parser.add_argument(
        "--seed", type=non_negative_int, default=0, help="seed of folds and resamples"
    )
    parser.add_argument("--threads", type=positive_int, default=1, help="torch threads")
    parser.add_argument("--out", type=Path, help="write the result as JSON here")
    parser.set_defaults(func=run)


def select_rows(
    index: Any,
    by: str,
    cohorts: list[str] | None,
    splits: list[str] | None,
    max_per_class: int | None,
    seed: int,
) -> tuple[np.ndarray, dict[str, int]]:
    """Rows to use and how many were left out (unknown label, other cohorts/splits, subsampling).

    Raises:
        CapeError: unknown cohorts, a missing column, or fewer than two classes.
    """
    import numpy as np

    if by not in index:
        raise CapeError(f"the features index has no {by!r} column")
    mask = np.ones(len(index), dtype=bool)
    if cohorts:
        known = set(index["cohort"].astype(str))
        unknown = sorted(set(cohorts) - known)
        if unknown:
            raise CapeError(f"unknown cohorts {unknown}; the features hold {sorted(known)}")
        mask &= index["cohort"].astype(str).isin(cohorts).to_numpy()
    if splits:
        mask &= index["split"].isin(splits).to_numpy()
    unlabelled = mask & index[by].isna().to_numpy()
    mask &= ~unlabelled
    rows = np.flatnonzero(mask)
    dropped = {"unknown_label": int(unlabelled.sum()), "subsampled": 0}
    labels = index[by].astype(str).to_numpy()
    if max_per_class is not None:
        rng = np.random.default_rng(seed)
        kept = []
        for value in np.unique(labels[rows]):
            members = rows[labels[rows] == value]
            if members.size > max_per_class:
                members = np.sort(rng.choice(members, max_per_class, replace=False))
            kept.append(members)
        subsampled = np.sort(np.concatenate(kept)) if kept else rows
        dropped["subsampled"] = int(rows.size - subsampled.size)
        rows = subsampled
    classes = np.unique(labels[rows])
    if classes.size < 2:
        raise CapeError(
            f"need at least two {by} values to identify, found {classes.tolist()} "
            f"among {rows.size} ECGs"
        )
    return rows, dropped


def run(args: argparse.Namespace) -> int:
    import torch

    from cape.diagnostics import cohort_identifiability
    from cape.embed import INFO_FILE, load_features

    torch.set_num_threads(args.threads)
    features, index = load_features(args.features)
    rows, dropped = select_rows(
        index, args.by, args.cohorts, args.split, args.max_per_class, args.seed
    )
    labels = index[args.by].astype(str).to_numpy()[rows]
    # Patient ids are unique within a cohort only.
    groups = (index["cohort"].astype(str) + "/" + index["patient_id"].astype(str)).to_numpy()[rows]
    try:
        result = cohort_identifiability(
            features[rows],
            labels,
            groups=groups,
            n_splits=args.folds,
            seed=args.seed,
            n_bootstrap=args.bootstrap,
        )
    except ValueError as error:
        raise CapeError(f"{args.features}: {error}") from error
    summary = result.summary()
    accuracy, auroc = summary["accuracy_ci"], summary["macro_auroc_ci"]
    print(f"identifiability of {args.by} from {args.features} ({summary['n_samples']} ECGs)")
    for name, count in summary["class_counts"].items():
        print(f"  {name}: {count}")
    print(
        f"accuracy     {result.accuracy:.3f} [{accuracy['low']:.3f}, {accuracy['high']:.3f}]"
        f"  chance {result.chance_majority:.3f} (majority), {result.chance_uniform:.3f} (1/k)"
    )
    print(
        f"macro AUROC  {result.macro_auroc:.3f} [{auroc['low']:.3f}, {auroc['high']:.3f}]"
        "  chance 0.5"
    )
    if dropped["unknown_label"]:
        print(f"{dropped['unknown_label']} ECGs without a {args.by} were left out")
    if args.out:
        info_path = args.features / INFO_FILE
        record = {
            "features": str(args.features),
            "by": args.by,
            "cohorts": args.cohorts,
            "splits": args.split,
            "seed": args.seed,
            "folds": args.folds,
            "dropped": dropped,
            "embed": json.loads(info_path.read_text()) if info_path.is_file() else None,
            **summary,
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(record, indent=2, default=str))
        print(f"written to {args.out}")
    return 0
