"""``cape ptbxl-benchmark``: the PTB-XL benchmark (Strodthoff et al. 2021) on saved features."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cape.errors import CapeError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "ptbxl-benchmark",
        help="PTB-XL benchmark: six label sets, folds 1-8/9/10, macro AUROC on fold 10",
        description=(
            "Run the PTB-XL benchmark protocol of Strodthoff et al. (IEEE JBHI 2021) on "
            "features written by `cape embed`: the label sets all, diagnostic, subdiagnostic, "
            "superdiagnostic, form and rhythm built from scp_statements.csv, a head per label "
            "set trained on strat_fold 1-8 with fold 9 for validation, macro AUROC on fold 10 "
            "with the benchmark's bootstrap interval. On the real PTB-XL the published "
            "results are printed beside CAPE's, labelled as literature values. Writes the "
            "protocols' tables plus benchmark.csv, classes.csv and literature.csv to --out. "
            "With --predictions, a model's own fold-10 scores are scored the same way. "
            "See docs/ptbxl-benchmark.md."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--features",
        action="append",
        default=[],
        metavar="MODEL[@SEED]=DIR",
        help="a model's features directory (repeatable; same MODEL = several encoder seeds)",
    )
    parser.add_argument(
        "--predictions",
        action="append",
        default=[],
        metavar="MODEL=FILE",
        help="instead of features: a model's own fold-10 scores (csv/Parquet with record_id, "
        "label_set, label, y_pred; repeatable); needs --store for the labels and folds",
    )
    parser.add_argument(
        "--store", type=Path, help="with --predictions: the store holding the PTB-XL cohort"
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
    parser.add_argument(
        "--cohort", help="the PTB-XL cohort (default: the one ingested with the ptbxl reader)"
    )
    parser.add_argument(
        "--statements",
        type=Path,
        help="PTB-XL's scp_statements.csv (default: the one in the cohort's source folder)",
    )
    parser.add_argument(
        "--label-sets",
        nargs="+",
        default=None,
        metavar="SET",
        help="all diagnostic subdiagnostic superdiagnostic form rhythm (default: all six)",
    )
    parser.add_argument("--head", choices=["linear", "mlp"], default="linear")
    parser.add_argument(
        "--head-param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="head constructor parameter, VALUE parsed as YAML (linear default: "
        "C=[0.001, 0.01, 0.1, 1.0], chosen on fold 9; mlp e.g. max_epochs=100)",
    )
    parser.add_argument(
        "--n-bootstrap", type=int, default=100, help="bootstrap resamples of fold 10"
    )
    parser.add_argument(
        "--confidence", type=float, default=0.90, help="bootstrap interval (benchmark: 90%%)"
    )
    parser.add_argument("--seed", type=int, default=0, help="head seed and resample seed")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def _head_params(items: list[str]) -> dict[str, Any]:
    import yaml

    params: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise CapeError(f"--head-param expects KEY=VALUE, got {item!r}")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            raise CapeError(f"--head-param {item!r}: {text!r} is not a YAML value") from None
        params[key] = tuple(value) if isinstance(value, list) and key == "hidden_sizes" else value
    return params


def run(args: argparse.Namespace) -> int:
    import torch

    from cape.benchmark_ptbxl import LABEL_SETS, BenchmarkSettings, default_head
    from cape.benchmark_ptbxl.outputs import format_scores, write_benchmark
    from cape.protocols import HeadSettings

    if args.threads < 1:
        raise CapeError(f"--threads must be >= 1, got {args.threads}")
    torch.set_num_threads(args.threads)
    params = _head_params(args.head_param)
    if args.head == "linear":
        head = default_head()
        head.params.update(params)
    else:
        head = HeadSettings("mlp", params)
    settings = BenchmarkSettings(
        label_sets=tuple(args.label_sets) if args.label_sets else LABEL_SETS,
        head=head,
        n_resamples=args.n_bootstrap,
        confidence=args.confidence,
        seed=args.seed,
    )
    settings.validate()
    if bool(args.features or args.baseline_untrained) == bool(args.predictions):
        raise CapeError("give --features (heads are trained) or --predictions (scored), not both")
    if args.predictions:
        result = _score_predictions(args, settings)
    else:
        result = _run_heads(args, settings)
    out = write_benchmark(result, args.out)
    print(format_scores(result))
    print(f"results written to {out}")
    return 0


def _run_heads(args: argparse.Namespace, settings: Any) -> Any:
    from cape.benchmark_ptbxl import read_statements, run_benchmark
    from cape.benchmark_ptbxl.inputs import (
        choose_cohort,
        cohort_sources,
        find_statements,
        store_cohorts,
    )
    from cape.protocols import UNTRAINED, FeatureSpec, load_feature_sets

    specs = [FeatureSpec.parse(text) for text in args.features]
    specs += [
        FeatureSpec(UNTRAINED, path, encoder_seed=k, baseline=UNTRAINED)
        for k, path in enumerate(args.baseline_untrained)
    ]
    feature_sets, index = load_feature_sets(specs)
    header_cohorts = store_cohorts(feature_sets[0].info)
    cohort = choose_cohort(index, args.cohort, header_cohorts)
    sources = cohort_sources(header_cohorts, cohort)
    statements = read_statements(find_statements(args.statements, sources))
    return run_benchmark(
        feature_sets,
        index,
        statements,
        cohort,
        settings,
        sources=sources,
        progress=not args.no_progress,
    )


def _score_predictions(args: argparse.Namespace, settings: Any) -> Any:
    from cape.benchmark_ptbxl import read_statements
    from cape.benchmark_ptbxl.inputs import (
        choose_cohort,
        cohort_sources,
        find_statements,
        store_cohorts,
    )
    from cape.benchmark_ptbxl.predictions import PredictionFile, score_predictions
    from cape.store import CohortStore

    if args.store is None:
        raise CapeError("--predictions needs --store: the store with the PTB-XL cohort's labels")
    store = CohortStore.open(args.store)
    header_cohorts = store_cohorts({"store": str(args.store)})
    cohort = choose_cohort(store.manifest, args.cohort, header_cohorts)
    sources = cohort_sources(header_cohorts, cohort)
    statements = read_statements(find_statements(args.statements, sources))
    predictions = [PredictionFile.parse(text) for text in args.predictions]
    return score_predictions(predictions, store.manifest, statements, cohort, settings, sources)
