"""``cape label-efficiency``: linear probe vs MLP head vs fine-tuning vs from scratch on shares
of one cohort's training patients."""

from __future__ import annotations

import argparse
import json

# Shorthand options and the settings they set (``--set KEY=VALUE`` reaches every setting).
SHORTHANDS = {
    "store": "store",
    "out": "out_dir",
    "encoder": "encoder",
    "task": "task",
    "cohort": "cohort",
    "features": "features",
    "device": "device",
    "threads": "threads",
}
LIST_SHORTHANDS = {
    "test_cohorts": "test_cohorts",
    "fractions": "fractions",
    "methods": "methods",
    "seeds": "seeds",
}
# Common fine-tuning settings as options of their own (they go under ``finetune``).
FINETUNE_SHORTHANDS = {"epochs": "epochs", "batch_size": "batch_size"}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "label-efficiency",
        help="linear probe vs MLP head vs fine-tuning vs from scratch on shares of the labels",
        description=(
            "For nested, seeded shares of one cohort's training patients (default 1%%, 10%%, "
            "100%%) and several seeds, train a linear probe and an MLP head on frozen features "
            "of the pretrained encoder, fine-tune the encoder end to end, and train the same "
            "architecture from scratch (cape finetune), plus the mean predictor; score each on "
            "the test split of the cohort (and of --test-cohort ones). Writes results.csv "
            "(method, fraction, seed, n_train_patients, metric, bootstrap CI), summary.csv "
            "(over seeds), tests.csv (Wilcoxon over seeds, DeLong on the same test ECGs), "
            "label-efficiency.md and label-efficiency.png to --out. Each (method, fraction, "
            "seed) cell is recorded atomically and skipped when the command runs again. "
            "See docs/label-efficiency.md."
        ),
    )
    parser.add_argument("--config", default=None, help="YAML file with the settings")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one setting (repeatable; YAML values; finetune.KEY, linear.KEY and "
        "mlp.KEY reach the methods' settings)",
    )
    parser.add_argument("--store", default=None, help="cohort store with splits")
    parser.add_argument("--out", default=None, help="run directory")
    parser.add_argument(
        "--encoder", default=None, help="pretrained run dir, checkpoint, .safetensors or export"
    )
    parser.add_argument(
        "--task", default=None, help="age, sex, superclass or a list-valued manifest column"
    )
    parser.add_argument("--cohort", default=None, help="cohort whose training split is used")
    parser.add_argument(
        "--test-cohort",
        dest="test_cohorts",
        action="append",
        default=None,
        help="another cohort whose test split is scored (repeatable)",
    )
    parser.add_argument("--fractions", nargs="+", type=float, default=None, help="shares in (0, 1]")
    parser.add_argument(
        "--methods", nargs="+", default=None, help="some of linear, mlp, finetune, scratch"
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=None, help="seeds")
    parser.add_argument(
        "--features", default=None, help="`cape embed` features of --encoder on this store"
    )
    parser.add_argument("--epochs", type=int, default=None, help="fine-tuning epochs")
    parser.add_argument("--batch-size", type=int, default=None, help="fine-tuning batch")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None)
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars in cells")
    parser.add_argument(
        "--print-config", action="store_true", help="print the resolved settings and exit"
    )
    parser.set_defaults(func=run)


def overrides_from(args: argparse.Namespace) -> list[str]:
    """The ``--set`` overrides plus those the shorthand options stand for."""
    overrides = list(args.overrides)
    for option, key in SHORTHANDS.items():
        value = getattr(args, option)
        if value is not None:
            overrides.append(f"{key}={json.dumps(value) if isinstance(value, str) else value}")
    for option, key in LIST_SHORTHANDS.items():
        value = getattr(args, option)
        if value is not None:
            overrides.append(f"{key}={json.dumps(list(value))}")
    for option, key in FINETUNE_SHORTHANDS.items():
        value = getattr(args, option)
        if value is not None:
            overrides.append(f"finetune.{key}={value}")
    if args.no_progress:
        overrides.append("progress=false")
    return overrides


def run(args: argparse.Namespace) -> int:
    import time

    from cape.label_efficiency import load_config, run_label_efficiency

    config = load_config(args.config, overrides_from(args))
    if args.print_config:
        print(json.dumps(config.to_dict(), indent=2))
        return 0
    started = time.perf_counter()
    result = run_label_efficiency(config)
    print(result.markdown.read_text())
    print(
        f"label efficiency finished in {time.perf_counter() - started:.0f} s: "
        f"{len(result.ran)} cells run, {len(result.skipped)} skipped; {result.out_dir}"
    )
    return 0
