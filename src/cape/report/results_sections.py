"""Report sections about the protocol results: OOD, composition, embeddings, diagnostics."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from cape.errors import CapeError
from cape.report import figures, means, ood_tables, retrieval, tables
from cape.report.collect import FeatureDir, for_training_cohort, training_cohorts
from cape.report.context import ReportContext
from cape.report.document import BulletList, Paragraph, Section, TableBlock
from cape.report.embedding import embed_tsne, tsne_figure
from cape.report.sanity import SIGNAL_EXPLAINED, SIGNAL_REFERENCE

logger = logging.getLogger(__name__)

TASK_TITLES = {"age": "age (MAE, years; lower is better)", "sex": "sex (AUROC; higher is better)"}


def _tasks(frame: pd.DataFrame) -> list[str]:
    known = [t for t in ("age", "sex", "superclass") if (frame["task"] == t).any()]
    return known + sorted(set(frame["task"].astype(str)) - set(known))


def head_scaling_text(config: dict[str, Any]) -> str:
    """Which standardisation the heads' inputs had, from a protocol's saved config."""
    head = (config.get("settings") or {}).get("head") or {}
    if "std_floor" not in head:
        return (
            "Head inputs: standardisation not recorded (results written before the setting "
            "existed, when the heads floored each SD at 0.1 × the median SD by default)."
        )
    floor = float(head["std_floor"])
    text = (
        "Head inputs: plain z-scoring with the training split's mean and SD, as the authors' code."
        if floor == 0
        else f"Head inputs: z-scoring with each SD floored at {floor:g} × the median SD, which "
        "damps units that are nearly constant in the training cohort — exactly the feature "
        "shift random batching is said to cause."
    )
    if head.get("age_target") == "age-sigmoid":
        text += " Age head: the authors' target (age − 7) / 100 with a sigmoid output."
    if head.get("hidden_grid"):
        text += (
            f" Hidden sizes chosen per head on the validation split among "
            f"{list(head['hidden_grid'])} in {head.get('grid_layers', 2)} layers."
        )
    return text


def _target_pool_text(config: dict[str, Any]) -> str:
    pools = config.get("target_pools")
    settings = config.get("settings") or {}
    if not pools:
        return "Target ECGs: drawn from each target cohort's test split."
    n = settings.get("ood_test_n")
    described = "; ".join(f"{cohort}: {pool}" for cohort, pool in sorted(pools.items()))
    meaning = {
        "all": "the whole cohort, as the paper (its encoders saw those ECGs in pretraining, "
        "without labels)",
        "unseen": "the whole cohort minus the splits any evaluated encoder was pretrained on",
        "test": "each target's test split",
    }.get(str(settings.get("ood_target_pool")), "")
    return (
        f"Target ECGs: {n if n is not None else 'all'} random ECGs per target cohort (capped at "
        f"what it holds), drawn once from {meaning} ({described}); the in-cohort ceiling "
        "trains on none of their patients."
    )


def ood_section(context: ReportContext) -> Section:
    """Table 3 per task, the encoder-seed spread, MAE per age bin (Fig. 5)."""
    result = context.data.ood
    section = Section("Out of distribution (Table 3)", "ood")
    if result is None or result.summary.empty:
        return section.note(
            "No out-of-distribution results (evaluation/ood/): this section is skipped."
        )
    settings = result.config.get("settings") or {}
    trains = training_cohorts(result)
    section.add(
        Paragraph(
            f"Heads trained on {', '.join(trains) or 'the training cohort'} "
            f"({settings.get('runs', '?')} runs per encoder seed, "
            f"{settings.get('head', {}).get('kind', 'mlp')} head) and tested on their own "
            "cohort's test split and on target ECGs of every other cohort (below). Cells are "
            "mean (SE) over all (encoder seed, run) heads; the "
            "untrained encoder and the mean predictor (the training cohort's mean age or sex "
            "prevalence) are baselines; the in-cohort ceiling is a head trained on the target "
            "cohort itself, tested on the same ECGs."
        )
    )
    section.add(Paragraph(_target_pool_text(result.config)))
    section.add(Paragraph(head_scaling_text(result.config)))
    aggregate, computed = means.aggregate_of(result, context.pair)
    if computed:
        section.note(
            "These results predate the saved means over cohorts (aggregate.parquet): the mean "
            "row was computed here from the saved per-head results."
        )
    # The first protocol directory's sizes (several training cohorts: each has its own).
    sizes = ood_tables.sizes_table(result.config)
    if not sizes.empty:
        section.add(
            TableBlock(
                sizes,
                "ECGs per head (train / val / test): the training cohort's heads, and for "
                "each target its test ECGs and its in-cohort ceiling's training sample; "
                "'ceiling smaller' marks a ceiling that had fewer ECGs to learn from than "
                "the heads it bounds (the protocol caps it at what the target holds once "
                "the test ECGs' patients are left out)",
            )
        )
    for train in trains:
        own = for_training_cohort(result, train)
        where = f", heads trained on {train}" if len(trains) > 1 else ""
        own_aggregate = aggregate[aggregate["train_cohort"].isin([train, "each target"])]
        for task in _tasks(own.summary):
            table = ood_tables.ood_table(own, task, context.pair)
            table = means.add_ood_mean_row(table, own_aggregate, task, context.pair)
            if not table.empty:
                title = f"Out-of-distribution {TASK_TITLES.get(task, task)}{where}"
                section.add(TableBlock(table, title))
            spread = ood_tables.seed_spread_table(own, task, context.pair or ())
            if not spread.empty:
                section.add(
                    TableBlock(
                        spread,
                        f"Spread across encoder seeds, {task}{where}: median [min–max] of the "
                        "per-seed means",
                    )
                )
    models = [m for m in context.data.model_order() if (result.summary["model"] == m).any()]
    models += sorted(set(result.summary.loc[result.summary["baseline"] == "untrained", "model"]))
    min_n = context.settings.min_cell_n
    for train in trains:
        figure, dropped = figures.mae_per_age_bin(
            for_training_cohort(result, train),
            models,
            context.model_colours,
            context.cohort_colours,
            min_n,
        )
        left_out = (
            f" {', '.join(dropped)}: no age bin with {min_n} or more test ECGs, no panel."
            if dropped
            else ""
        )
        if figure is None and dropped:
            section.add(
                Paragraph(
                    f"MAE per age bin, heads trained on {train}: no age bin of any cohort "
                    f"holds {min_n} or more test ECGs per head (report.min_cell_n), so the "
                    "figure is left out."
                )
            )
            continue
        if figure is None:
            section.note(
                f"No saved age predictions of heads trained on {train}: MAE per age bin skipped."
            )
            continue
        section.add(
            context.figure(
                figure,
                "mae_per_age_bin" + (f"_{train}" if len(trains) > 1 else ""),
                f"Age MAE per 10-year bin of true age (Fig. 5), heads trained on {train}; mean "
                "over heads (encoder seeds × runs), error bars SE across heads; n under each "
                f"bin is its test ECGs per head. Bins with fewer than {min_n} ECGs are left "
                "out, as in the subgroup table." + left_out,
                "MAE per age bin",
            )
        )
    notes = list(result.config.get("warnings") or [])
    if notes:
        section.add(Paragraph("Warnings recorded by the protocol:"))
        section.add(BulletList(notes))
    return section


def composition_section(context: ReportContext) -> Section:
    """Fig. 2 grouped bars and the table with Kruskal-Wallis p-values."""
    result = context.data.composition
    section = Section("Composition matrix (Fig. 2)", "composition")
    if result is None or result.summary.empty:
        return section.note(
            "No composition-matrix results (evaluation/composition/): this section is skipped."
        )
    tasks = _tasks(result.summary)
    section.add(Paragraph(head_scaling_text(result.config)))
    aggregate, computed = means.aggregate_of(result)
    mean_table = means.composition_mean_table(aggregate, tasks)
    if not mean_table.empty:
        section.add(
            TableBlock(
                mean_table,
                "Mean over the labelled cohorts (Fig. 2 aggregate): per model, the metric "
                "averaged over the cohorts run by run; mean [95% t-interval] over (encoder seed, "
                "run); Kruskal–Wallis across the pretrained models on those per-run means"
                + (" (computed here from the saved per-head results)" if computed else ""),
            )
        )
        figure = means.composition_mean_figure(aggregate, tasks, context.model_colours)
        if figure is not None:
            section.add(
                context.figure(
                    figure,
                    "composition_mean",
                    "Fig. 2 aggregate: each model's metric averaged over the labelled cohorts, "
                    "mean and 95% CI over (encoder seed, run).",
                    "mean over cohorts per model",
                )
            )
    order = [*(context.pair or ()), *context.data.model_order()]
    figure = figures.composition_bars(result, tasks, context.model_colours, order)
    if figure is not None:
        section.add(
            context.figure(
                figure,
                "composition_matrix",
                "Every pretrained model on every labelled cohort: mean and 95% t-interval over "
                "runs (all encoder seeds pooled).",
                "composition matrix bar plots",
            )
        )
    for task in tasks:
        table = tables.composition_table(result, task)
        if not table.empty:
            section.add(
                TableBlock(
                    table,
                    f"Composition matrix, {TASK_TITLES.get(task, task)}: mean [95% CI]; "
                    "Kruskal–Wallis across the pretrained models",
                )
            )
    return section


def _first_seeds(context: ReportContext) -> list[FeatureDir]:
    """The first encoder seed of each model (study order), then the untrained encoder."""
    dirs = context.data.feature_dirs
    chosen = []
    order = context.data.model_order()
    for model in order + sorted({d.model for d in dirs} - set(order)):
        mine = sorted((d for d in dirs if d.model == model), key=lambda d: d.seed)
        if mine:
            chosen.append(mine[0])
    return sorted(chosen, key=lambda d: d.untrained)


def _identifiability_lines(context: ReportContext, feature_dir: FeatureDir) -> list[str]:
    table = context.data.identifiability
    if table is None:
        return ["identifiability not measured"]
    parts = []
    for by in ("cohort", "device"):
        rows = table[(table["model"] == feature_dir.model) & (table["by"] == by)]
        if rows.empty:
            continue
        this = rows[rows["encoder_seed"] == feature_dir.seed]
        row = this.iloc[0] if len(this) else rows.iloc[0]
        text = (
            f"{by} identifiability: accuracy {row['accuracy']:.3f} (chance "
            f"{row['chance_majority']:.3f}), macro AUROC {row['macro_auroc']:.3f}"
        )
        if len(rows) > 1:
            text += f" (median accuracy over {len(rows)} seeds {rows['accuracy'].median():.3f})"
        parts.append(text)
    return parts or ["identifiability not measured for this model"]


def embeddings_section(context: ReportContext) -> Section:
    """Identifiability table and t-SNE panels per model (Fig. 4)."""
    data = context.data
    section = Section("Embeddings and cohort identifiability (Fig. 4)", "embeddings")
    if data.identifiability is None:
        section.note("No identifiability results (evaluation/identifiability.*): numbers skipped.")
    else:
        section.add(
            TableBlock(
                tables.identifiability_table(data.identifiability),
                "Cohort (and device) identifiability: cross-validated logistic regression "
                "from the features, folds grouped by patient; bootstrap 95% CIs",
            )
        )
    if data.retrieval is not None and len(data.retrieval):
        section.add(
            TableBlock(
                retrieval.retrieval_table(data.retrieval),
                retrieval.retrieval_caption(data.retrieval),
            )
        )
    has_signal = any(
        table is not None and len(table) and (table["model"] == SIGNAL_REFERENCE).any()
        for table in (data.identifiability, data.retrieval)
    )
    if has_signal:
        section.add(Paragraph(f"The {SIGNAL_EXPLAINED}."))
    chosen = _first_seeds(context)
    if not chosen:
        return section.note("No features (features/) in this run directory: t-SNE skipped.")
    for feature_dir in tqdm(chosen, desc="t-SNE", disable=not context.progress):
        try:
            embedding = embed_tsne(feature_dir, context.tsne_per_cohort, context.seed)
        except (CapeError, ValueError, OSError) as error:
            section.note(f"t-SNE of {feature_dir.path.name} skipped: {error}")
            continue
        lines = _identifiability_lines(context, feature_dir)
        numbers = "; ".join(lines)
        kind = "untrained encoder" if feature_dir.untrained else f"encoder seed {feature_dir.seed}"
        figure = tsne_figure(
            embedding, context.cohort_colours, f"{feature_dir.model} ({kind})", lines
        )
        n_per_cohort = embedding.labels["cohort"].value_counts()
        section.add(
            context.figure(
                figure,
                f"tsne_{feature_dir.model}",
                f"t-SNE of {feature_dir.model} features ({kind}), at most "
                f"{context.tsne_per_cohort:,} ECGs per cohort ({int(n_per_cohort.min()):,}–"
                f"{int(n_per_cohort.max()):,} drawn, seed {context.seed}). {numbers}.",
                f"t-SNE of {feature_dir.model} features",
            )
        )
    return section


def diagnostics_section(context: ReportContext) -> Section:
    """Feature shift and subgroup metrics of the OOD heads."""
    result = context.data.ood
    section = Section("Feature shift and subgroups", "diagnostics")
    if result is None:
        return section.note("No out-of-distribution results: diagnostics skipped.")
    shift = ood_tables.shift_summary(result)
    if shift.empty:
        section.note("No feature-shift table was saved.")
    else:
        section.add(
            TableBlock(
                shift,
                "Feature shift of each target cohort's centroid from the training cohort's, in "
                "training-cohort SDs (standardised as the heads' inputs): median [min–max] over "
                "encoder seeds",
            )
        )
    models = [m for m in (context.pair or ()) if (result.summary["model"] == m).any()]
    models += sorted(set(result.summary.loc[result.summary["baseline"] == "untrained", "model"]))
    if not models:
        models = sorted(set(result.summary["model"]) - {"mean-predictor"})
    subgroups = ood_tables.subgroup_summary(result, models, context.settings.min_cell_n)
    small = (
        f"{subgroups.suppressed} subgroup rows with fewer than {subgroups.min_n} test ECGs per "
        "head are suppressed (report.min_cell_n): a metric on so few ECGs says little and can "
        "point at few patients."
    )
    if subgroups.table.empty:
        if subgroups.suppressed:
            section.add(Paragraph(small))
        else:
            section.note("No subgroup metrics were saved.")
    else:
        variables = np.unique(subgroups.table.index.get_level_values("variable"))
        section.add(
            TableBlock(
                subgroups.table,
                "Out-of-distribution metric per subgroup (" + ", ".join(variables) + "), mean "
                "over encoder seeds and runs; n: test ECGs per head in the group (median over "
                "heads)",
            )
        )
        if subgroups.suppressed:
            section.add(Paragraph(small))
        if subgroups.omitted:
            section.add(
                Paragraph(
                    f"{subgroups.omitted} further subgroup rows are not shown (the table stops "
                    f"at {len(subgroups.table)} rows); they are in "
                    "evaluation/ood/subgroups.parquet."
                )
            )
    return section
