"""``cape report``: the study report of a run directory (HTML, Markdown, figures)."""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path
from typing import Any

from cape.commands._options import non_negative_int


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "report",
        help="write the study report of a run directory (HTML, Markdown, figures)",
        description=(
            "Read what a study run saved — cohort store, pretraining logs, features, protocol "
            "results — and write RUN_DIR/report/report.html (self-contained: figures embedded, "
            "no external links), report.md and figures/*.png. Prints whether the run agrees "
            "with the paper's claims (IDB generalises better out of distribution; random-batch "
            "features cluster by cohort). Nothing is recomputed except the t-SNE pictures. "
            "See docs/report.md."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="study run directory")
    parser.add_argument("--out", type=Path, help="report folder (default: RUN_DIR/report)")
    parser.add_argument(
        "--tsne-per-cohort",
        type=int,
        default=10_000,
        help="at most this many ECGs per cohort in each t-SNE (smaller is faster)",
    )
    parser.add_argument(
        "--seed", type=non_negative_int, default=0, help="seed of the t-SNE subsample"
    )
    parser.add_argument("--svg", action="store_true", help="also write figures as SVG")
    parser.add_argument(
        "--min-cell-n",
        type=int,
        help="suppress subgroup rows and age bins with fewer test ECGs per head "
        "(default: the study's report.min_cell_n, else 20)",
    )
    parser.add_argument(
        "--signal-share",
        type=float,
        help="flag the raw-signal reference when the best encoder keeps less than this share "
        "of its above-chance cohort identifiability (default: the study's "
        "report.signal_share, else 0.5)",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def print_claims(claims: list[dict[str, Any]]) -> None:
    """The claims summary, one wrapped paragraph per claim."""
    print("What this run says:")
    for claim in claims:
        text = f"[{claim['verdict']}] {claim['claim']}"
        text += f" — {claim['reason']}" if claim["reason"] else ""
        print(textwrap.fill(text, width=100, initial_indent="  ", subsequent_indent="    "))
        if claim["measured"]:
            print(
                textwrap.fill(
                    claim["measured"], width=100, initial_indent="    ", subsequent_indent="    "
                )
            )
        for caveat in claim.get("caveats", []):
            print(
                textwrap.fill(
                    f"caveat: {caveat}", width=100, initial_indent="    ", subsequent_indent="    "
                )
            )


def run(args: argparse.Namespace) -> int:
    import torch

    from cape.errors import CapeError
    from cape.report import summarise_claims, write_report

    torch.set_num_threads(max(1, args.threads))
    if args.tsne_per_cohort < 1:
        raise CapeError(f"--tsne-per-cohort must be >= 1, got {args.tsne_per_cohort}")
    out = args.out or args.run_dir / "report"
    path = write_report(
        args.run_dir,
        out,
        tsne_per_cohort=args.tsne_per_cohort,
        seed=args.seed,
        svg=args.svg,
        progress=not args.no_progress,
        min_cell_n=args.min_cell_n,
        signal_share=args.signal_share,
    )
    print_claims(summarise_claims(args.run_dir))
    print(f"report written to {path}")
    return 0
