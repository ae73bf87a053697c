"""``cape demo``: the bundled demo study on the simulator's five synthetic cohorts."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the whole pipeline on built-in synthetic cohorts and write a report",
        description=(
            "Simulate five synthetic cohorts in real formats (PTB-XL, CODE-15%, WFDB), ingest "
            "them, pretrain random-batch and in-distribution-batch encoders (3 seeds each), "
            "embed, run the out-of-distribution protocol and cohort identifiability, and write "
            "report.html. About 20 minutes on 2 idle CPU cores; --quick takes a few minutes. "
            "Re-running continues where it stopped."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--out", type=Path, default=Path("runs/demo"), help="run directory")
    parser.add_argument("--quick", action="store_true", help="tiny cohorts, 1 epoch, 1 seed")
    parser.add_argument(
        "--composition",
        action="store_true",
        help="also pretrain one model per cohort and run the composition matrix (Fig. 2); "
        "adds ~10 minutes (~2 with --quick)",
    )
    parser.add_argument(
        "--seeds",
        type=_positive_int,
        default=None,
        metavar="N",
        help="encoder seeds per model (0..N-1) instead of the demo's 3; 10 takes about an "
        "hour on 2 cores and is what claim 1 needs to decide at the seed spread the demo "
        "measures (3 seeds detect only OOD age differences of ~1.2 y or more); a run "
        "directory that has 3 keeps them and adds the rest",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a study setting, e.g. pretrain.settings.epochs=20",
    )
    parser.add_argument(
        "--force",
        action="append",
        default=[],
        metavar="STAGE",
        help="rerun this stage (simulate, ingest, pretrain, embed, evaluate, report) and "
        "what depends on it, even if cached; repeatable",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cape.study import load_study, run_study

    name = "demo-quick" if args.quick else "demo"
    out = (
        args.out if not (args.quick and args.out == Path("runs/demo")) else Path("runs/demo-quick")
    )
    config = load_study(name, args.overrides)
    if args.seeds is not None:
        config = with_seeds(config, args.seeds)
    if args.composition:
        config = with_composition(config)
    run_dir = run_study(config, out, force=set(args.force), progress=not args.no_progress)
    from cape.report import simulation_summary, summarise_claims
    from cape.report.controls import summarise_controls

    for line in simulation_summary(run_dir):
        print(f"\n{line}" if line.startswith("These cohorts") else line)
    print("\nWhat this run says about the paper's claims:")
    claims = summarise_claims(run_dir)
    for claim in claims:
        print(f"- {claim['claim']}")
        print(f"    measured: {claim.get('measured', '')}")
        print(f"    verdict:  {claim['verdict'].upper()} — {claim.get('reason', '')}")
    undecided = [
        c
        for c in claims
        if c["id"].startswith("ood_")
        and c["verdict"] == "inconclusive"
        and len((c.get("aggregate") or {}).get("encoder_seeds", [])) < 10
    ]
    if undecided and not args.quick:
        print(
            "    (claim 1 is undecided with this many encoder seeds: `cape demo --seeds 10 "
            "--out <this run>` adds seeds to this run, about an hour on 2 cores in all)"
        )
    print("\nPositive controls (could this run have seen the effects?):")
    for line in summarise_controls(run_dir):
        print(f"- {line}")
    from cape.report.sanity import summarise_sanity

    print("\nSanity checks (can these results be trusted?):")
    for line in summarise_sanity(run_dir):
        print(f"- {line}")
    report = run_dir / "report" / "report.html"
    print(f"\nrun directory: {run_dir}")
    if report.is_file():
        print(f"report: {report}")
    return 0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text!r}")
    return value


def with_seeds(config: Any, n: int) -> Any:
    """The study with every pretraining run on encoder seeds 0..n-1 (its runs' names,
    settings and untrained twins otherwise unchanged)."""
    runs = [run.model_copy(update={"seeds": list(range(n))}) for run in config.pretrain.runs]
    pretrain = config.pretrain.model_copy(update={"runs": runs})
    return config.model_copy(update={"pretrain": pretrain})


def with_composition(config: Any) -> Any:
    """The study plus one pretraining run per cohort and the composition-matrix protocol.

    A model pretrained on one cohort has single-cohort batches whatever the
    batching, so these runs use random batching; the models on all cohorts are
    the study's own runs. One encoder seed each (the first seed of the first run).
    """
    from cape.study.config import CompositionSection, HeadSettings, PretrainRunSpec
    from cape.study.stages import simulation_spec

    cohorts = [c.name for c in simulation_spec(config.simulate).cohorts]
    seed = config.pretrain.runs[0].seeds[0]
    runs = list(config.pretrain.runs) + [
        PretrainRunSpec(
            name=f"only-{c}", settings={"batching": "random", "cohorts": [c]}, seeds=[seed]
        )
        for c in cohorts
    ]
    head = config.evaluate.ood.head if config.evaluate.ood else HeadSettings()
    composition = CompositionSection(
        tasks=["age", "sex"], runs=3, sizes=(1000, 150, 250), head=head
    )
    pretrain = config.pretrain.model_copy(update={"runs": runs})
    evaluate = config.evaluate.model_copy(update={"composition": composition})
    return config.model_copy(update={"pretrain": pretrain, "evaluate": evaluate})
