"""``cape simulate``: write synthetic cohorts in real dataset layouts."""

from __future__ import annotations

import argparse
import logging
import time
from typing import TYPE_CHECKING

from cape.commands._options import non_negative_int, positive_int
from cape.errors import CapeError, validation_messages

if TYPE_CHECKING:
    from cape.simulator.cohorts import SimulationSpec

log = logging.getLogger(__name__)

# cape.simulator.presets.PRESETS, named here so that `cape --help` does not import
# the simulator (scipy); a test keeps the two equal.
PRESET_NAMES = ("demo", "tiny")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "simulate",
        help="generate synthetic multi-cohort ECGs (PTB-XL, CODE-15%%, WFDB layouts)",
        description=(
            "Generate synthetic cohorts with known ground truth and write each in a real "
            "dataset layout under OUT/<cohort>/, plus OUT/cohorts.yaml (what to ingest, with "
            "format and mains frequency) and OUT/_truth/ (true labels and latents, never read "
            "by the readers). Deterministic for a seed. Ingest a cohort with "
            "'cape ingest <format> OUT/<name> --cohort <name> --mains <hz> --out STORE'."
        ),
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--preset",
        choices=PRESET_NAMES,
        default=None,
        help="built-in cohorts: 'demo' (five cohorts, ~13k ECGs) or 'tiny' (unit tests)",
    )
    source.add_argument(
        "--spec", default=None, help="YAML file with a SimulationSpec (see docs/simulator.md)"
    )
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument(
        "--seed", type=non_negative_int, default=None, help="random seed (default: the spec's, 0)"
    )
    parser.add_argument(
        "--scale", type=float, default=None, help="multiply every cohort's patient count"
    )
    parser.add_argument(
        "--age-effect-scale",
        type=float,
        default=None,
        help="multiply every age effect (demo default 2.5; 1 = literature-sized)",
    )
    parser.add_argument(
        "--sex-effect-scale", type=float, default=None, help="multiply every sex difference"
    )
    parser.add_argument(
        "--artefact-strength",
        type=float,
        default=None,
        help="device artefacts: 0 identical devices, 1 as specified, >1 exaggerated",
    )
    parser.add_argument(
        "--visit-variability",
        type=float,
        default=None,
        help="multiply every visit-to-visit SD: 0 a patient's ECGs differ only by age, rhythm, "
        "noise and device; 1 as calibrated; >1 harder positive pairs",
    )
    parser.add_argument(
        "--workers",
        type=positive_int,
        default=None,
        help="parallel processes (default: available cores, at most 4)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace existing cohort folders")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def resolve_spec(args: argparse.Namespace) -> SimulationSpec:
    """The spec from --preset/--spec with the command-line overrides applied and checked.

    Raises:
        CapeError: an override is out of range.
    """
    from pydantic import ValidationError

    from cape.simulator.cohorts import SimulationSpec, load_spec
    from cape.simulator.presets import preset

    spec = load_spec(args.spec) if args.spec else preset(args.preset or "demo")
    overrides = {
        "seed": args.seed,
        "scale": args.scale,
        "age_effect_scale": args.age_effect_scale,
        "sex_effect_scale": args.sex_effect_scale,
        "artefact_strength": args.artefact_strength,
        "visit_variability": args.visit_variability,
    }
    overrides = {key: value for key, value in overrides.items() if value is not None}
    try:
        # Validate through the model so a bad override fails like a bad YAML value.
        return SimulationSpec.model_validate({**spec.model_dump(), **overrides})
    except ValidationError as error:
        # The spec's field names are the options' names with dashes: scale -> --scale.
        problems = [
            f"--{line.replace('_', '-')}" if not line.startswith("(") else line
            for line in validation_messages(error, SimulationSpec)
        ]
        raise CapeError(f"invalid simulate option: {'; '.join(problems)}") from None


def run(args: argparse.Namespace) -> int:
    from cape.simulator.generate import default_workers, simulate

    spec = resolve_spec(args)
    workers = args.workers if args.workers is not None else default_workers()
    started = time.perf_counter()
    summary = simulate(
        spec, args.out, workers=workers, progress=not args.no_progress, overwrite=args.overwrite
    )
    elapsed = time.perf_counter() - started
    n_ecgs = sum(int(info["n_ecgs"]) for info in summary.values())  # type: ignore[call-overload]
    for name, info in summary.items():
        print(
            f"{name:>10}  {info['format']:<6}  {info['n_patients']:>7} patients  {info['n_ecgs']:>8} ECGs"
            f"  mains {info['mains_hz']} Hz"
        )
    print(
        f"wrote {n_ecgs} ECGs to {args.out} in {elapsed:.1f} s ({n_ecgs / max(elapsed, 1e-9):.0f} ECG/s, "
        f"{workers} worker(s)); ground truth in {args.out}/_truth/"
    )
    return 0
