"""``cape split``: patient-level train/val/test splits written into a store's manifest."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cape.commands._options import fraction, non_negative_int
from cape.errors import CapeError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "split",
        help="assign patient-level train/val/test splits in a store",
        description=(
            "Assign every patient of every cohort to train, val or test and write the split "
            "into the manifest. Patients that already have a split keep it unless --reset. "
            "Cohorts with PTB-XL's strat_fold use folds 1-8/9/10."
        ),
    )
    parser.add_argument("store", type=Path, help="store directory")
    parser.add_argument(
        "--fractions",
        type=fraction,
        nargs=3,
        default=[0.8, 0.1, 0.1],
        metavar=("TRAIN", "VAL", "TEST"),
        help="fractions of each cohort's patients, summing to 1",
    )
    parser.add_argument(
        "--seed", type=non_negative_int, default=0, help="seed of the patient permutation"
    )
    parser.add_argument(
        "--ignore-strat-fold", action="store_true", help="random splits for PTB-XL too"
    )
    parser.add_argument("--reset", action="store_true", help="reassign patients that have a split")
    parser.set_defaults(func=run)


def check_fractions(fractions: list[float]) -> None:
    """Check that the split fractions sum to 1 (each is in [0, 1] by its argparse type).

    Raises:
        CapeError: the three fractions do not sum to 1 (each is in [0, 1] by its type).
    """
    total = sum(fractions)
    if abs(total - 1.0) > 1e-6:
        shown = " ".join(f"{f:g}" for f in fractions)
        raise CapeError(f"--fractions {shown}: must sum to 1, they sum to {total:g}")


def run(args: argparse.Namespace) -> int:
    from cape.ingest import store_lock
    from cape.splits import assign_splits, check_patient_disjoint, split_counts
    from cape.store import CohortStore, write_splits

    check_fractions(args.fractions)
    # Open before locking: the lock creates the directory, and a misspelt store
    # must fail without leaving an empty folder and a lock file behind.
    CohortStore.open(args.store)
    with store_lock(args.store):
        store = CohortStore.open(args.store)
        splits = assign_splits(
            store.manifest,
            fractions=args.fractions,
            seed=args.seed,
            use_strat_fold=not args.ignore_strat_fold,
            keep_existing=not args.reset,
        )
        manifest = write_splits(args.store, splits)
    check_patient_disjoint(manifest)
    print(split_counts(manifest).to_string(index=False))
    return 0
