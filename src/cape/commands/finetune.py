"""``cape finetune``: a pretrained encoder plus a head trained end to end (or from scratch)."""

from __future__ import annotations

import argparse
import json
import os

from cape.errors import CapeError

# Shorthand options and the config keys they set (``--set KEY=VALUE`` reaches every key).
SHORTHANDS = {
    "store": "store",
    "out": "out_dir",
    "encoder": "encoder",
    "task": "task",
    "init": "init",
    "preset": "model.preset",
    "train_fraction": "train_fraction",
    "seed": "seed",
    "epochs": "epochs",
    "probe_epochs": "probe_epochs",
    "batch_size": "batch_size",
    "lr": "lr",
    "encoder_lr": "encoder_lr",
    "head": "head",
    "patience": "patience",
    "device": "device",
    "name": "name",
}
LIST_SHORTHANDS = {"cohorts": "cohorts", "test_cohorts": "test_cohorts"}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "finetune",
        help="fine-tune a pretrained encoder on a labelled task (or train it from scratch)",
        description=(
            "Train an encoder and a head end to end on a labelled task of a cohort store "
            "(age: regression, sex: binary, superclass or any list-valued manifest column: "
            "multi-label), on the store's patient-level train/val splits (`cape split`), with "
            "early stopping on val and the best epoch restored; the test split's predictions "
            "go to OUT/results/ as protocol tables (read by cape.protocols.read_results). "
            "--from-scratch trains the same architecture from random weights: the supervised "
            "baseline. Runs under `torchrun --nproc_per_node=N -m cape finetune ...` (DDP). "
            "See docs/finetuning.md."
        ),
    )
    parser.add_argument("--config", default=None, help="YAML config file")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one setting (repeatable; dotted keys, YAML values)",
    )
    parser.add_argument("--store", default=None, help="cohort store with splits")
    parser.add_argument("--out", default=None, help="run directory")
    parser.add_argument(
        "--encoder", default=None, help="pretrained run dir, checkpoint, .safetensors or export"
    )
    parser.add_argument(
        "--task", default=None, help="age, sex, superclass or a list-valued manifest column"
    )
    parser.add_argument("--init", choices=("pretrained", "scratch"), default=None)
    parser.add_argument(
        "--from-scratch",
        action="store_true",
        help="random initialisation (same as --init scratch): the supervised baseline",
    )
    parser.add_argument(
        "--preset", choices=("paper", "small"), default=None, help="scratch without --encoder"
    )
    parser.add_argument(
        "--train-fraction", type=float, default=None, help="share of training patients, (0, 1]"
    )
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--cohorts", nargs="+", default=None, help="training cohorts")
    parser.add_argument("--test-cohorts", nargs="+", default=None, help="cohorts to predict")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--probe-epochs", type=int, default=None, help="head-only warm-up")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--lr", type=float, default=None, help="head learning rate")
    parser.add_argument("--encoder-lr", type=float, default=None, help="encoder learning rate")
    parser.add_argument("--head", choices=("mlp", "linear"), default=None)
    parser.add_argument("--patience", type=int, default=None, help="0: no early stopping")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None)
    parser.add_argument("--name", default=None, help="model name in the results")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out")
    parser.add_argument(
        "--print-config", action="store_true", help="print the resolved config and exit"
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
    if args.from_scratch:
        if args.init == "pretrained":
            raise CapeError("--from-scratch contradicts --init pretrained")
        overrides.append("init=scratch")
    return overrides


def run(args: argparse.Namespace) -> int:
    from cape.finetune import load_finetune_config, run_finetune

    config = load_finetune_config(args.config, overrides_from(args))
    if args.print_config:
        print(json.dumps(config.to_dict(), indent=2))
        return 0
    result = run_finetune(config, resume=args.resume)
    # The process group is gone by now; torchrun's RANK says who should print.
    if os.environ.get("RANK", "0") == "0":
        print(
            f"best epoch {result.best_epoch} of {result.epochs_run} "
            f"(validation {result.best_val_score:.4f})"
        )
        print(result.test_scores.to_string(index=False))
        print(f"fine-tuning finished: {result.run_dir}")
    return 0
