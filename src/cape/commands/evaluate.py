"""``cape evaluate``: the composition matrix or the out-of-distribution protocol on saved features."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cape.commands._options import add_cohort_option, positive_int
from cape.errors import CapeError

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)

_SETTING_ORDER = ("in-distribution", "source", "out-of-distribution", "in-cohort")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="train heads on saved features: composition matrix or out-of-distribution",
        description=(
            "Run an evaluation protocol on features written by `cape embed`. composition: "
            "every model x every labelled cohort, fixed train/val/test sizes, R runs, mean "
            "and 95% CI, Kruskal-Wallis across models. ood: heads trained on one cohort and "
            "tested on every other, beside the in-cohort head and the mean predictor, with "
            "paired Wilcoxon / DeLong tests between two models. Several --features with the "
            "same MODEL are that model's encoder seeds. Writes results, summary, tests and "
            "predictions tables (Parquet + csv) and config.json to --out. See docs/evaluation.md."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--protocol",
        required=True,
        choices=["composition", "ood"],
        help="composition: every model x every labelled cohort; ood: heads trained on "
        "--train-cohort, tested on the other cohorts",
    )
    parser.add_argument(
        "--features",
        action="append",
        required=True,
        metavar="MODEL[@SEED]=DIR",
        help="a model's features directory (repeatable; same MODEL = several encoder seeds)",
    )
    parser.add_argument(
        "--baseline-untrained",
        action="append",
        default=[],
        type=Path,
        metavar="DIR",
        help="features of the untrained encoder (`cape embed --untrained`; repeatable)",
    )
    parser.add_argument("--out", required=True, type=Path, help="results directory")
    parser.add_argument("--train-cohort", help="ood: the cohort heads are trained on")
    add_cohort_option(
        parser,
        "composition: labelled cohorts; ood: target cohorts (default: all / all others)",
    )
    parser.add_argument("--tasks", nargs="+", default=["age", "sex"], help="age, sex, superclass")
    parser.add_argument(
        "--runs",
        type=int,
        help="runs per cell (default: 6 composition, 10 ood, as the paper)",
    )
    parser.add_argument(
        "--sizes",
        nargs=3,
        metavar=("TRAIN", "VAL", "TEST"),
        help="ECGs drawn per run from each split, or 'all' (default: composition 10000 2000 "
        "2000; ood all all all); capped at what a split holds, with a warning",
    )
    parser.add_argument("--strict-sizes", action="store_true", help="error instead of capping")
    parser.add_argument(
        "--ood-test-n", type=int, default=10_000, help="ood: random ECGs per target cohort"
    )
    parser.add_argument(
        "--ood-target-pool",
        choices=["unseen", "all", "test"],
        default="unseen",
        help="ood: draw target ECGs from the whole cohort minus the splits the encoders were "
        "pretrained on (unseen), the whole cohort as the paper (all), or the test split (test)",
    )
    parser.add_argument("--compare", nargs=2, metavar=("MODEL_A", "MODEL_B"), help="paired tests")
    parser.add_argument(
        "--head",
        choices=["mlp", "linear"],
        default="mlp",
        help="an MLP or a linear/logistic model on the features",
    )
    parser.add_argument("--max-epochs", type=positive_int, help="MLP head: epoch limit")
    parser.add_argument("--patience", type=positive_int, help="MLP head: early-stopping patience")
    parser.add_argument("--batch-size", type=positive_int, help="MLP head: batch size")
    parser.add_argument("--learning-rate", type=float, help="MLP head: Adam learning rate")
    parser.add_argument(
        "--hidden-sizes", type=positive_int, nargs="+", help="MLP head: hidden widths"
    )
    parser.add_argument(
        "--hidden-grid",
        type=positive_int,
        nargs="+",
        metavar="WIDTH",
        help="MLP head: choose hidden sizes per head on the validation split among every "
        "combination of these widths (the paper: 32 64 128 256)",
    )
    parser.add_argument(
        "--grid-layers", type=positive_int, default=2, help="layers of --hidden-grid"
    )
    parser.add_argument(
        "--std-floor",
        type=float,
        default=0.0,
        help="0: plain z-scoring of the head inputs (the authors' code); e.g. 0.1 floors each "
        "SD at 0.1 x the median SD",
    )
    parser.add_argument(
        "--age-target",
        choices=["standardise", "age-sigmoid"],
        default="standardise",
        help="MLP age head: standardised target and linear output, or the authors' "
        "(age - 7) / 100 with a sigmoid output",
    )
    parser.add_argument(
        "--head-param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any other head constructor parameter (VALUE parsed as YAML), e.g. C=0.1",
    )
    parser.add_argument("--seed", type=int, default=0, help="base seed of samples and heads")
    parser.add_argument(
        "--topcoded",
        choices=["keep", "exclude"],
        default="keep",
        help="age tasks: keep or leave out ages a source top-codes (e.g. PTB-XL's 90+)",
    )
    parser.add_argument("--no-ceiling", action="store_true", help="ood: skip in-cohort heads")
    parser.add_argument("--no-subgroups", action="store_true", help="ood: skip subgroup metrics")
    parser.add_argument("--no-shift", action="store_true", help="ood: skip the feature shift")
    parser.add_argument("--threads", type=positive_int, default=1, help="torch threads")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def _sizes(values: list[str] | None) -> tuple[int | None, ...] | None:
    if values is None:
        return None
    sizes: list[int | None] = []
    for value in values:
        if value.lower() == "all":
            sizes.append(None)
            continue
        try:
            sizes.append(int(value))
        except ValueError:
            raise CapeError(f"--sizes: {value!r} is neither an integer nor 'all'") from None
    return tuple(sizes)


def head_params(args: argparse.Namespace) -> dict[str, Any]:
    """Head constructor overrides from the convenience flags and ``--head-param``."""
    import yaml

    params: dict[str, Any] = {}
    for flag in ("max_epochs", "patience", "batch_size", "learning_rate"):
        if getattr(args, flag) is not None:
            params[flag] = getattr(args, flag)
    if args.hidden_sizes:
        params["hidden_sizes"] = tuple(args.hidden_sizes)
    for item in args.head_param:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise CapeError(f"--head-param expects KEY=VALUE, got {item!r}")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            raise CapeError(f"--head-param {item!r}: {text!r} is not a YAML value") from None
        params[key] = tuple(value) if isinstance(value, list) and key == "hidden_sizes" else value
    return params


def check_head_params(kind: str, params: dict[str, Any], tasks: list[str]) -> None:
    """Build each task's head once with ``params``, so a misspelt parameter fails now.

    Raises:
        CapeError: a parameter the head does not take, with a did-you-mean.
    """
    import inspect

    from cape.errors import did_you_mean
    from cape.heads import make_head
    from cape.protocols.tasks import TASKS

    for task in tasks:
        if task not in TASKS:
            continue  # ProtocolSettings names unknown tasks
        head_kind = TASKS[task].kind
        accepted = set(inspect.signature(type(make_head(head_kind, kind)).__init__).parameters)
        accepted -= {"self", "task", "seed"}
        for name in params:
            if name not in accepted:
                hint = did_you_mean(name, accepted) or f" (it takes: {', '.join(sorted(accepted))})"
                raise CapeError(f"{kind} head ({task}): unknown parameter {name!r}{hint}")


def _cell(row: pd.Series) -> str:
    # AUROCs live in [0.5, 1] where the third decimal matters; MAEs are years.
    digits = 3 if "auroc" in str(row["metric"]) else 2
    text = f"{row['mean']:.{digits}f} ({row['se']:.{digits}f})"
    if row["n_encoder_seeds"] > 1:
        text += f" [{row['seed_min']:.{digits}f}-{row['seed_max']:.{digits}f}]"
    return text


def format_summary(summary: pd.DataFrame) -> str:
    """Compact text tables: per task and setting, models as rows and test cohorts as columns.

    Cells are ``mean (SE)`` over all (encoder seed, run) values, with
    ``[min-max]`` of the per-seed means when a model has several encoder seeds.
    """
    if summary.empty:
        return "(no results)"
    blocks = []
    table = summary.copy()
    # The untrained encoder is flagged even when the user named it something else.
    flagged = (table["baseline"] == "untrained") & (table["model"] != "untrained")
    table["label"] = table["model"].astype(str) + flagged.map({True: " (untrained)", False: ""})
    table["cell"] = table.apply(_cell, axis=1)
    settings = [s for s in _SETTING_ORDER if s in set(table["setting"])]
    for (task, metric), by_task in table.groupby(["task", "metric"], sort=True):
        for setting in settings:
            block = by_task[by_task["setting"] == setting]
            if block.empty:
                continue
            pivot = block.pivot_table(
                index="label", columns="test_cohort", values="cell", aggfunc="first"
            ).fillna("")
            trained_on = sorted(set(block["train_cohort"]) - set(block["test_cohort"]))
            title = f"{task} — {metric} — {setting}"
            if trained_on:
                title += f" (heads trained on {', '.join(trained_on)})"
            blocks.append(f"{title}\n{pivot.to_string()}")
    return "\n\n".join(blocks)


def format_tests(tests: pd.DataFrame) -> str:
    """One line per across-run test (per-run DeLong and per-seed rows are in tests.csv)."""
    import pandas as pd

    if tests.empty:
        return ""
    lines = []
    shown = tests[(tests["scope"] == "all")]
    for row in shown.itertuples(index=False):
        models = row.model_a if row.test == "kruskal_wallis" else f"{row.model_a} vs {row.model_b}"
        cohorts = (
            row.test_cohort
            if row.train_cohort == row.test_cohort
            else f"{row.train_cohort}->{row.test_cohort}"
        )
        estimate = "" if pd.isna(row.estimate) else f", A-B {row.estimate:.3g}"
        lines.append(
            f"{row.test:22s} {row.task:10s} {row.setting:19s} {cohorts:14s} {models}: "
            f"p = {row.p_value:.3g}{estimate} (n = {row.n})"
        )
    return "\n".join(lines)


def format_exclusions(labels: pd.DataFrame) -> str:
    """Lines for cohorts whose ECGs were excluded from a task (missing, invalid, empty labels)."""
    lines = []
    for row in labels.itertuples(index=False):
        if row.n_excluded == 0 and row.n_topcoded == 0:
            continue
        parts = [f"{row.n_missing} missing", f"{row.n_invalid} invalid", f"{row.n_empty} empty"]
        text = ", ".join(p for p in parts if not p.startswith("0 "))
        line = f"{row.task}, cohort {row.cohort}: {row.n_excluded} of {row.n_ecgs} ECGs excluded"
        line += f" ({text})" if text else ""
        if row.n_topcoded:
            line += f"; {row.n_topcoded} top-coded ages"
        lines.append(line)
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    import torch

    from cape.protocols import (
        UNTRAINED,
        FeatureSpec,
        HeadSettings,
        ProtocolSettings,
        load_feature_sets,
        run_protocol,
        write_results,
    )

    torch.set_num_threads(args.threads)
    params = head_params(args)
    check_head_params(args.head, {k: v for k, v in params.items() if k != "seed"}, args.tasks)
    settings = ProtocolSettings.for_protocol(
        args.protocol,
        tasks=tuple(args.tasks),
        runs=args.runs,
        sizes=_sizes(args.sizes),
        strict_sizes=args.strict_sizes,
        seed=args.seed,
        head=HeadSettings(
            kind=args.head,
            params=params,
            std_floor=args.std_floor,
            age_target=args.age_target,
            hidden_grid=tuple(args.hidden_grid) if args.hidden_grid else None,
            grid_layers=args.grid_layers,
        ),
        topcoded=args.topcoded,
        cohorts=tuple(args.cohorts) if args.cohorts else None,
        train_cohort=args.train_cohort,
        ood_test_n=args.ood_test_n,
        ood_target_pool=args.ood_target_pool,
        ceiling=not args.no_ceiling,
        compare=tuple(args.compare) if args.compare else None,
        subgroups=not args.no_subgroups,
        feature_shift=not args.no_shift,
    )
    specs = [FeatureSpec.parse(text) for text in args.features]
    specs += [FeatureSpec(UNTRAINED, path, baseline=UNTRAINED) for path in args.baseline_untrained]
    cohorts = None
    if settings.protocol == "composition" and settings.cohorts:
        cohorts = list(settings.cohorts)
    elif settings.protocol == "ood" and settings.cohorts and settings.train_cohort:
        cohorts = [settings.train_cohort, *settings.cohorts]
    feature_sets, index = load_feature_sets(specs, cohorts=cohorts)
    result = run_protocol(feature_sets, index, settings, progress=not args.no_progress)
    result.config["command"] = vars(args) | {"func": None}
    out = write_results(result, args.out)

    print(format_summary(result.summary))
    for title, text in (
        ("tests", format_tests(result.tests)),
        ("excluded labels", format_exclusions(result.labels)),
        ("capped or skipped", "\n".join(result.config["messages"])),
        ("warnings", "\n".join(result.config["warnings"])),
    ):
        if text:
            print(f"\n{title}:\n{text}")
    print(f"\nresults written to {out}")
    return 0
