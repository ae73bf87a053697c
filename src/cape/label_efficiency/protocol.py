"""The label-efficiency protocol: every (method, fraction, seed) cell, then tables and figure.

Reads top to bottom: settings checked against the run directory -> store and
the task's ECGs -> the cells (skipped when recorded, each recorded
atomically, one progress line each) -> tables, Markdown and figure from the
recorded cells. A killed run resumes where it stopped: finished cells are
skipped and an interrupted fine-tuning cell continues from its checkpoint.

Outputs in ``OUT``: ``label-efficiency.yaml`` (settings), ``run.json``
(store fingerprint, provenance of the first invocation; every invocation's in
``invocations.jsonl``), ``cells/`` (one directory per cell),
``runs/`` (fine-tuning run directories), ``features/`` (frozen features),
``results.{csv,parquet}``, ``summary.csv``, ``tests.csv``,
``predictions.parquet``, ``label-efficiency.md`` and ``label-efficiency.png``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from cape.errors import CapeError
from cape.finetune.labels import Selection
from cape.label_efficiency.cells import (
    MEAN_PREDICTOR,
    Cell,
    is_done,
    write_cell,
)
from cape.label_efficiency.config import (
    CONFIG_FILE,
    FROZEN_METHODS,
    TRAINED_METHODS,
    LabelEfficiencyConfig,
    save_config,
)
from cape.label_efficiency.figure import label_efficiency_figure, save_figure
from cape.label_efficiency.markdown import metric_name, summary_markdown
from cape.label_efficiency.methods import (
    FrozenFeatures,
    cell_selection,
    finetune_base,
    frozen_features,
    long_predictions,
    run_frozen_cell,
    run_mean_cell,
    run_trained_cell,
    selection_facts,
)
from cape.label_efficiency.tables import collect, summarise, tests_table

logger = logging.getLogger(__name__)

RUN_FILE = "run.json"
INVOCATIONS_FILE = "invocations.jsonl"
FIGURE_FILE = "label-efficiency.png"
MARKDOWN_FILE = "label-efficiency.md"


@dataclass
class LabelEfficiencyResult:
    """What :func:`run_label_efficiency` returns.

    Attributes:
        out_dir: the run directory.
        results: one row per (method, fraction, seed, test cohort).
        summary: per (method, fraction, test cohort), over seeds.
        tests: paired tests per fraction and pair of methods.
        ran: cells computed by this call; skipped: cells found recorded.
    """

    out_dir: Path
    results: pd.DataFrame
    summary: pd.DataFrame
    tests: pd.DataFrame
    ran: list[Cell]
    skipped: list[Cell]

    @property
    def figure(self) -> Path:
        return self.out_dir / FIGURE_FILE

    @property
    def markdown(self) -> Path:
        return self.out_dir / MARKDOWN_FILE


def plan_cells(config: LabelEfficiencyConfig) -> list[Cell]:
    """Every cell, smallest fraction first; per (fraction, seed) the mean predictor first."""
    return [
        Cell(method, fraction, seed)
        for fraction in config.fractions
        for seed in config.seeds
        for method in (MEAN_PREDICTOR, *config.methods)
    ]


def _check_run_dir(config: LabelEfficiencyConfig, root: Path, fingerprint: str) -> None:
    """Refuse to mix cells of different settings or stores in one run directory."""
    saved_config = root / CONFIG_FILE
    if saved_config.is_file():
        saved = yaml.safe_load(saved_config.read_text()) or {}
        changed = config.differences(saved)
        if changed:
            raise CapeError(
                f"{root} holds a label-efficiency run with other settings ({', '.join(changed)} "
                f"differ from {saved_config}); use another --out, or the same settings "
                "(fractions, methods and seeds may change)"
            )
    saved_run = root / RUN_FILE
    if saved_run.is_file():
        previous = json.loads(saved_run.read_text()).get("store_fingerprint")
        if previous and previous != fingerprint:
            raise CapeError(
                f"{root} was run on another store (fingerprint {previous}, {config.store} has "
                f"{fingerprint}); use another --out"
            )


def _provenance(config: LabelEfficiencyConfig, fingerprint: str) -> dict[str, Any]:
    from cape.pretrain.rundir import provenance

    return provenance({"store_path": str(config.store), "store_fingerprint": fingerprint})


def run_label_efficiency(
    config: LabelEfficiencyConfig,
    *,
    log: Callable[[str], None] = print,
    store: Any = None,
) -> LabelEfficiencyResult:
    """Run (or resume) a label-efficiency comparison and write its tables and figure.

    Args:
        config: the settings.
        log: receives one line per cell and per phase.
        store: an already open store (tests); default: open ``config.store``.

    Raises:
        CapeError: missing store, cohort or encoder; unknown task, cohort or
            column; a run directory holding other settings or another store;
            a bad fine-tuning or head setting.
    """
    # ---- settings, store, run directory ---------------------------------------------------
    if config.store is None:
        raise CapeError("label efficiency needs a store: --store PATH")
    if config.cohort is None:
        raise CapeError("label efficiency needs the training cohort: --cohort NAME")
    if config.needs_encoder() and config.encoder is None:
        raise CapeError(
            f"methods {config.needs_encoder()} need the pretrained encoder: --encoder PATH"
        )
    if config.encoder is not None and not Path(config.encoder).exists():
        raise CapeError(f"encoder {config.encoder} does not exist")
    if store is None:
        from cape.store import CohortStore

        store = CohortStore.open(config.store)
    if config.threads:
        import torch

        torch.set_num_threads(config.threads)
    base = finetune_base(config)  # checks the fine-tuning settings before any work
    for method in FROZEN_METHODS:
        if method in config.methods:
            from cape.label_efficiency.methods import head_settings

            head_settings(config, method)
    root = Path(config.out_dir).resolve()
    fingerprint = store.fingerprint()
    _check_run_dir(config, root, fingerprint)
    manifest = store.manifest
    full = cell_selection(config, manifest, 1.0, config.seeds[0])  # task, cohorts, splits
    root.mkdir(parents=True, exist_ok=True)
    save_config(config, root / CONFIG_FILE)
    facts = _provenance(config, fingerprint)
    if not (root / RUN_FILE).is_file():  # the first invocation's; later ones are appended
        (root / RUN_FILE).write_text(json.dumps(facts, indent=2, default=str))
    with (root / INVOCATIONS_FILE).open("a") as invocations:
        invocations.write(json.dumps(facts, default=str) + "\n")

    # ---- cells ------------------------------------------------------------------------------
    cells = plan_cells(config)
    done = [cell for cell in cells if is_done(cell, root)]
    log(
        f"label efficiency: task {full.task.name} ({metric_name(full.task.metric)}), cohort "
        f"{config.cohort} ({_patients(full, manifest)} training patients), test cohorts "
        f"{', '.join(full.test_cohorts)}; {len(cells)} cells ({len(config.methods)} methods + "
        f"mean predictor x {len(config.fractions)} fractions x {len(config.seeds)} seeds), "
        f"{len(done)} already recorded"
    )
    selections: dict[tuple[float, int], Selection] = {}
    features: FrozenFeatures | None = None
    ran, skipped = [], []
    for position, cell in enumerate(cells, start=1):
        prefix = f"[{position}/{len(cells)}] {cell.name}"
        if is_done(cell, root):
            skipped.append(cell)
            log(f"{prefix}: recorded, skipped")
            continue
        key = (cell.fraction, cell.seed)
        if key not in selections:
            selections[key] = cell_selection(config, manifest, cell.fraction, cell.seed)
        selection = selections[key]
        if cell.method in FROZEN_METHODS and features is None:
            features = frozen_features(config, base, store, _all_records(full), root, log)
        started = time.perf_counter()
        info = {"status": "ok", "error": "", **selection_facts(selection, manifest)}
        predictions = pd.DataFrame()
        try:
            if cell.method == MEAN_PREDICTOR:
                predictions = long_predictions(selection, manifest, run_mean_cell(selection))
            elif cell.method in FROZEN_METHODS:
                assert features is not None
                scores = run_frozen_cell(cell, config, selection, features)
                predictions = long_predictions(selection, manifest, scores)
            else:
                assert cell.method in TRAINED_METHODS
                predictions, facts = run_trained_cell(
                    cell, base, selection, store, root, config.keep_checkpoints
                )
                info.update(facts)
        except CapeError as error:
            # A sample a method cannot learn from (one class in a 1 % sample, fewer ECGs than
            # a batch) is a result of the protocol, recorded as such; anything else stops it.
            if not _is_sample_problem(error):
                raise
            info.update(status="failed", error=str(error))
        info["seconds"] = round(time.perf_counter() - started, 3)
        write_cell(cell, root, info, predictions)
        ran.append(cell)
        log(f"{prefix}: {_cell_line(info, predictions, selection, config.cohort)}")

    # ---- tables, Markdown, figure -----------------------------------------------------------
    return write_outputs(config, root, cells, full, manifest, ran, skipped)


def write_outputs(
    config: LabelEfficiencyConfig,
    root: Path,
    cells: list[Cell],
    full: Selection,
    manifest: pd.DataFrame,
    ran: list[Cell],
    skipped: list[Cell],
) -> LabelEfficiencyResult:
    """Tables, Markdown and figure from the recorded ``cells``."""
    results, predictions = collect(
        cells,
        root,
        full,
        manifest,
        config.bootstrap_resamples,
        config.bootstrap_seed,
        config.confidence,
    )
    summary = summarise(results, config.confidence)
    tests = tests_table(results, predictions, config.methods, config.alpha)
    _write_table(results, root / "results", parquet=True)
    _write_table(summary, root / "summary")
    _write_table(tests, root / "tests")
    predictions.to_parquet(root / "predictions.parquet", index=False)
    markdown = summary_markdown(summary, tests, config.methods, config.confidence)
    temporary = root / f".{MARKDOWN_FILE}.tmp"
    temporary.write_text(markdown)
    temporary.replace(root / MARKDOWN_FILE)
    save_figure(label_efficiency_figure(summary, results, config.methods), root / FIGURE_FILE)
    return LabelEfficiencyResult(root, results, summary, tests, ran, skipped)


def _write_table(table: pd.DataFrame, stem: Path, parquet: bool = False) -> None:
    temporary = stem.with_name(f".{stem.name}.tmp.csv")
    table.to_csv(temporary, index=False)
    temporary.replace(stem.with_suffix(".csv"))
    if parquet:
        table.to_parquet(stem.with_suffix(".parquet"), index=False)


def _all_records(selection: Selection) -> np.ndarray:
    return np.unique(np.concatenate([selection.records[s] for s in ("train", "val", "test")]))


def _patients(selection: Selection, manifest: pd.DataFrame) -> int:
    return int(manifest["patient_id"].iloc[selection.records["train"]].nunique())


SAMPLE_PROBLEMS = ("cannot fit", "cannot fill one batch", "targets are constant")


def _is_sample_problem(error: CapeError) -> bool:
    return any(text in str(error) for text in SAMPLE_PROBLEMS)


def _cell_line(
    info: dict[str, Any], predictions: pd.DataFrame, selection: Selection, cohort: str
) -> str:
    patients, ecgs = info["n_train_patients"], info["n_train"]
    sizes = f"{patients} patient{'s' * (patients != 1)}, {ecgs} ECG{'s' * (ecgs != 1)}"
    seconds = f"{info['seconds']:.1f} s"
    if info["status"] != "ok":
        return f"{sizes} -> failed: {info['error']} ({seconds})"
    rows = predictions[predictions["cohort"] == cohort]
    task = selection.task
    if task.kind == "multilabel":
        true = rows.pivot(index="record_id", columns="label", values="y_true").to_numpy()
        pred = rows.pivot(index="record_id", columns="label", values="y_pred").to_numpy()
    else:
        true, pred = rows["y_true"].to_numpy(), rows["y_pred"].to_numpy()
    value = task.score(true, pred)
    return f"{sizes} -> {metric_name(task.metric)} {value:.4g} on {cohort} test ({seconds})"
