"""``cape study``: check a study file, or run a whole study from it, each stage cached."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

_SET_HELP = "override a study setting by dotted path, e.g. pretrain.settings.epochs=3 (repeatable)"


# The study runner's stages (cape.study.runner.STAGES; a test keeps the two equal),
# named here so that `cape --help` does not import the runner.
STAGE_NAMES = ("simulate", "ingest", "pretrain", "embed", "evaluate", "label-efficiency", "report")


def _bundled() -> list[str]:
    """Names of the bundled studies (src/cape/studies/*.yaml), standard library only."""
    from importlib import resources

    folder = resources.files("cape") / "studies"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "study",
        help="check or run a study (simulate/ingest -> pretrain -> embed -> evaluate -> report)",
        description=(
            "Studies declare cohorts, pretraining runs, protocols and the report in one YAML "
            "file. `cape study check` validates every section in seconds; `cape study run` "
            "checks, then runs. Each stage is cached by a content hash of its inputs: re-running "
            "skips what is done, a changed setting reruns only what depends on it, an "
            "interrupted study continues where it stopped."
        ),
    )
    actions = parser.add_subparsers(title="actions", metavar="ACTION")
    study_help = "study YAML file or bundled study name"
    check = actions.add_parser(
        "check",
        help="validate a study without running anything",
        description="Validate every section of a study -- cohorts or simulation, pretraining "
        "settings of every run merged on the base, head and protocol settings, sweep keys and "
        "every sweep cell -- and print one line per problem. Exit code 1 if any. STUDY is a "
        "YAML file or a bundled study name (" + ", ".join(_bundled()) + ").",
    )
    check.add_argument("study", help=study_help)
    check.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=_SET_HELP
    )
    check.set_defaults(func=check_command)
    run = actions.add_parser(
        "run",
        help="run or continue a study",
        description="Check a study (as `cape study check`), then run or continue it. STUDY is "
        "a YAML file or a bundled study name (" + ", ".join(_bundled()) + ").",
    )
    run.add_argument("study", help=study_help)
    run.add_argument("--out", required=True, type=Path, help="run directory")
    run.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=_SET_HELP
    )
    run.add_argument(
        "--force",
        action="append",
        default=[],
        metavar="STAGE",
        help=f"rerun this stage ({', '.join(STAGE_NAMES)}) and what "
        "depends on it, even if cached; repeatable",
    )
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    run.set_defaults(func=run_command)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)


def check_command(args: argparse.Namespace) -> int:
    import time

    from cape.study.check import check_study
    from cape.study.loading import load_study

    started = time.perf_counter()
    config = load_study(args.study, args.overrides)  # raises on every problem
    result = check_study(config)
    for note in result.notes:
        print(f"note: {note}")
    runs = sum(len(run.seeds) for run in config.pretrain.runs)
    cells = ""
    if config.sweep is not None:
        n_cells = len(config.sweep.values) * (len(config.sweep.by.values) if config.sweep.by else 1)
        cells = f" x {n_cells} sweep cells"
    print(
        f"study {config.name}: ok ({runs} pretraining run{'s' * (runs != 1)}{cells}; "
        f"checked in {time.perf_counter() - started:.1f} s)"
    )
    return 0


def run_command(args: argparse.Namespace) -> int:
    from cape.errors import CapeError
    from cape.study import load_study, run_study
    from cape.study.check import check_study

    config = load_study(args.study, args.overrides)
    # Running also needs the cohorts' data: every problem at once, before any stage.
    problems = check_study(config, cohorts_exist=True).problems
    if problems:
        raise CapeError("\n".join(f"study {args.study}: {problem}" for problem in problems))
    out = run_study(config, args.out, force=set(args.force), progress=not args.no_progress)
    print(f"study {config.name} finished: {out}")
    report = out / "report" / "report.html"
    if report.is_file():
        print(f"report: {report}")
    return 0
