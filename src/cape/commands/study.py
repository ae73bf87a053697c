"""``cape study run``: run a whole study from one YAML file, each stage cached."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "study",
        help="run a study (simulate/ingest -> pretrain -> embed -> evaluate -> report) from YAML",
        description=(
            "Studies declare cohorts, pretraining runs, protocols and the report in one YAML "
            "file. Each stage is cached by a content hash of its inputs: re-running skips what is "
            "done, a changed setting reruns only what depends on it, an interrupted study "
            "continues where it stopped."
        ),
    )
    actions = parser.add_subparsers(title="actions", metavar="ACTION")
    run = actions.add_parser(
        "run",
        help="run or continue a study",
        description="Run or continue a study. STUDY is a YAML file or a bundled study name "
        "(demo, demo-quick, artefact-sweep, normalisation, public).",
    )
    run.add_argument("study", help="study YAML file or bundled study name")
    run.add_argument("--out", required=True, type=Path, help="run directory")
    run.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a study setting by dotted path, e.g. pretrain.settings.epochs=3",
    )
    run.add_argument(
        "--force",
        action="append",
        default=[],
        metavar="STAGE",
        help="rerun this stage (and what depends on it) even if cached; repeatable",
    )
    run.add_argument("--no-progress", action="store_true")
    run.set_defaults(func=run_command)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)


def run_command(args: argparse.Namespace) -> int:
    from cape.study import load_study, run_study

    config = load_study(args.study, args.overrides)
    out = run_study(config, args.out, force=set(args.force), progress=not args.no_progress)
    print(f"study {config.name} finished: {out}")
    report = out / "report" / "report.html"
    if report.is_file():
        print(f"report: {report}")
    return 0
