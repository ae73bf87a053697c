"""Read what a study run saved: store, pretraining logs, features, protocol results.

Nothing here recomputes a result. Every part is optional: a missing or
unreadable part becomes ``None`` (or an empty list) plus a message in
:attr:`RunData.messages`, and the report skips the section that needs it with
a note.

Run directory (see :mod:`cape.study.runner`)::

    study.yaml  provenance.json  store/  pretrain/NAME-seedK/  features/NAME-seedK/
    evaluation/  (protocol result directories; identifiability.{json,parquet,csv};
                  retrieval.{parquet,csv}; learning_probe.{parquet,csv})
    finetune/NAME/results/   (``cape finetune --out RUN/finetune/NAME``; protocol
                              ``finetune`` results may also sit under evaluation/)
    label-efficiency/        (``cape label-efficiency --out RUN/label-efficiency``, or one
                              run per subfolder: label-efficiency/NAME/)
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import yaml

from cape.markers import MARKER
from cape.protocols.results import CONFIG_FILE, TABLE_FILES, ProtocolResult
from cape.report.identifiability import read_identifiability
from cape.report.naming import split_label
from cape.report.retrieval import read_retrieval

if TYPE_CHECKING:
    from cape.report.downstream import LabelEfficiencyRun

logger = logging.getLogger(__name__)

IDB_BATCHING = ("idb", "idb-mask")
FINETUNE_PROTOCOL = "finetune"  # cape.finetune.evaluate.PROTOCOL


@dataclass
class PretrainRun:
    """One pretraining run directory (``pretrain/NAME-seedK``)."""

    model: str
    seed: int
    path: Path
    config: dict[str, Any]
    log: pd.DataFrame  # log.jsonl rows; "kind" is "step" or "epoch"
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def batching(self) -> str | None:
        value = self.config.get("batching")
        return str(value) if value is not None else None


@dataclass
class FeatureDir:
    """One features directory (``features/NAME-seedK``)."""

    model: str
    seed: int
    path: Path
    untrained: bool


@dataclass
class RunData:
    """Everything the report reads from one run directory."""

    run_dir: Path
    study: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    manifest: pd.DataFrame | None = None
    quarantine: pd.DataFrame | None = None
    store_header: dict[str, Any] = field(default_factory=dict)
    store_fingerprint: str | None = None
    pretrain_runs: list[PretrainRun] = field(default_factory=list)
    feature_dirs: list[FeatureDir] = field(default_factory=list)
    ood: ProtocolResult | None = None
    composition: ProtocolResult | None = None
    finetune: ProtocolResult | None = None
    finetune_runs: list[dict[str, Any]] = field(default_factory=list)  # one per run folder
    label_efficiency: list[LabelEfficiencyRun] = field(default_factory=list)
    identifiability: pd.DataFrame | None = None
    retrieval: pd.DataFrame | None = None
    learning_probe: pd.DataFrame | None = None
    stage_markers: dict[str, dict[str, Any]] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)

    @property
    def cohorts(self) -> list[str]:
        """Sorted cohort names (store first, else whatever the results name)."""
        if self.manifest is not None and "cohort" in self.manifest:
            return sorted(self.manifest["cohort"].astype(str).unique())
        names: set[str] = set()
        for result in (self.ood, self.composition):
            if result is not None and len(result.results):
                names |= set(result.results["test_cohort"].astype(str))
                names |= set(result.results["train_cohort"].astype(str))
        return sorted(names)

    def batching(self) -> dict[str, str]:
        """Model name -> batching (``random``, ``idb``, ``idb-mask``) of each pretrained model.

        Read from the runs' resolved ``config.yaml``; models without one fall
        back to the study file's settings.
        """
        known = {run.model: run.batching for run in self.pretrain_runs if run.batching}
        section = self.study.get("pretrain") or {}
        default = (section.get("settings") or {}).get("batching")
        for spec in section.get("runs") or []:
            name = spec.get("name")
            value = (spec.get("settings") or {}).get("batching", default)
            if name and name not in known and value:
                known[name] = str(value)
        return {name: value for name, value in known.items() if value}

    def model_order(self) -> list[str]:
        """Pretrained model names in the study file's order (then any others, sorted)."""
        section = self.study.get("pretrain") or {}
        order = [str(spec["name"]) for spec in section.get("runs") or [] if spec.get("name")]
        others = {run.model for run in self.pretrain_runs} | {
            f.model for f in self.feature_dirs if not f.untrained
        }
        return order + sorted(others - set(order))


# ---------------------------------------------------------------------------- helpers
def _read_json(path: Path, messages: list[str]) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        messages.append(f"{path}: unreadable ({error})")
        return None


def _read_yaml(path: Path, messages: list[str]) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        messages.append(f"{path}: unreadable ({error})")
        return None


def read_log(path: Path) -> pd.DataFrame:
    """The rows of a pretraining ``log.jsonl`` (a torn last line, from a crash, is skipped)."""
    rows = []
    if path.is_file():
        for line in path.read_text().splitlines():
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except ValueError:
                logger.warning("%s: skipped an unreadable line", path)
    return pd.DataFrame(rows)


def _read_table(path: Path) -> pd.DataFrame:
    if path.is_file():
        return pd.read_parquet(path)
    csv = path.with_suffix(".csv")
    return pd.read_csv(csv) if csv.is_file() else pd.DataFrame()


def read_protocol_dir(path: Path) -> ProtocolResult:
    """A protocol results directory written by :func:`cape.protocols.write_results`.

    Tolerant of missing tables (they come back empty) so that an older or
    partial directory still gives a report.

    Raises:
        FileNotFoundError: there is no results table at all.
    """
    if not (path / TABLE_FILES["results"]).is_file():
        raise FileNotFoundError(f"{path} holds no {TABLE_FILES['results']}")
    tables = {name: _read_table(path / file_name) for name, file_name in TABLE_FILES.items()}
    config_path = path / CONFIG_FILE
    config = json.loads(config_path.read_text()) if config_path.is_file() else {}
    return ProtocolResult(**tables, config=config)


def _concat(parts: list[ProtocolResult]) -> ProtocolResult:
    """Several result directories of one protocol (e.g. one per training cohort) as one."""
    if len(parts) == 1:
        return parts[0]
    tables = {
        name: pd.concat([getattr(p, name) for p in parts], ignore_index=True)
        for name in TABLE_FILES
    }
    return ProtocolResult(**tables, config=parts[0].config)


def training_cohorts(result: ProtocolResult) -> list[str]:
    """The OOD training cohorts of a result (one per protocol run that was read)."""
    summary = result.summary
    if summary.empty or "setting" not in summary:
        return []
    return sorted(summary.loc[summary["setting"] == "source", "train_cohort"].astype(str).unique())


def for_training_cohort(result: ProtocolResult, train_cohort: str) -> ProtocolResult:
    """The rows of an OOD result that belong to heads trained on ``train_cohort``.

    In-cohort (ceiling) rows name the target as their training cohort; they are
    kept for the targets of ``train_cohort``. A result with one training
    cohort comes back unchanged.
    """
    if training_cohorts(result) == [train_cohort]:
        return result
    summary = result.summary if len(result.summary) else result.summary_by_seed
    if summary.empty:
        return result
    own = summary["train_cohort"].astype(str) == train_cohort
    targets = set(summary.loc[own & (summary["setting"] == "out-of-distribution"), "test_cohort"])

    def keep(table: pd.DataFrame, cohort_column: str = "test_cohort") -> pd.DataFrame:
        if table.empty or "train_cohort" not in table:
            return table
        mine = table["train_cohort"].astype(str) == train_cohort
        if "setting" in table:
            ceiling = (table["setting"] == "in-cohort") & table[cohort_column].isin(targets)
            mine = (mine & (table["setting"] != "in-cohort")) | ceiling
        return table[mine].reset_index(drop=True)

    tables = {name: keep(getattr(result, name)) for name in TABLE_FILES if name != "predictions"}
    tables["predictions"] = keep(result.predictions, "cohort")
    return ProtocolResult(**tables, config=result.config)


def _protocol_of(path: Path, result: ProtocolResult) -> str | None:
    protocol = (result.config.get("settings") or {}).get("protocol")
    if protocol is None and len(result.results) and "protocol" in result.results:
        protocol = str(result.results["protocol"].iloc[0])
    if protocol is None and path.name in ("ood", "composition"):
        protocol = path.name
    return str(protocol) if protocol else None


# ------------------------------------------------------------------------------ reading
def _read_store(data: RunData) -> None:
    from cape.errors import CapeError
    from cape.store import CohortStore

    path = data.run_dir / "store"
    if not path.exists():
        data.messages.append("no cohort store (store/) in the run directory")
        return
    try:
        store = CohortStore.open(path)
    except CapeError as error:
        data.messages.append(f"cohort store unreadable: {error}")
        return
    data.manifest = store.manifest
    data.quarantine = store.quarantine()
    data.store_header = store.header
    data.store_fingerprint = store.fingerprint()


def _read_pretraining(data: RunData) -> None:
    root = data.run_dir / "pretrain"
    for path in sorted(p for p in root.glob("*") if p.is_dir()) if root.is_dir() else []:
        model, seed = split_label(path.name)
        config = (
            _read_yaml(path / "config.yaml", data.messages)
            if (path / "config.yaml").is_file()
            else {}
        )
        data.pretrain_runs.append(
            PretrainRun(model, seed or 0, path, config or {}, read_log(path / "log.jsonl"))
        )


def _read_features(data: RunData) -> None:
    from cape.embed import FEATURES_FILE, INFO_FILE

    root = data.run_dir / "features"
    for path in sorted(p for p in root.glob("*") if p.is_dir()) if root.is_dir() else []:
        if not (path / FEATURES_FILE).is_file():
            continue
        model, seed = split_label(path.name)
        info = _read_json(path / INFO_FILE, data.messages) if (path / INFO_FILE).is_file() else {}
        untrained = bool((info or {}).get("untrained")) or model == "untrained"
        data.feature_dirs.append(FeatureDir(model, seed or 0, path, untrained))


def _read_evaluation(data: RunData) -> list[tuple[Path, ProtocolResult]]:
    """Read evaluation/; returns the fine-tuning results found there (read with the others)."""
    evaluation = data.run_dir / "evaluation"
    if not evaluation.is_dir():
        data.messages.append("no evaluation/ directory: protocol results are missing")
        return []
    found: dict[str, list[ProtocolResult]] = {}
    finetune: list[tuple[Path, ProtocolResult]] = []
    for results_file in sorted(evaluation.rglob(TABLE_FILES["results"])):
        directory = results_file.parent
        try:
            result = read_protocol_dir(directory)
        except (OSError, ValueError) as error:
            data.messages.append(f"{directory}: unreadable protocol results ({error})")
            continue
        protocol = _protocol_of(directory, result)
        if protocol in ("ood", "composition"):
            found.setdefault(protocol, []).append(result)
        elif protocol == FINETUNE_PROTOCOL:
            finetune.append((directory, result))
        else:
            data.messages.append(f"{directory}: results of unknown protocol {protocol!r}")
    data.ood = _concat(found["ood"]) if "ood" in found else None
    data.composition = _concat(found["composition"]) if "composition" in found else None
    data.identifiability = read_identifiability(evaluation, data.messages)
    data.retrieval = read_retrieval(evaluation)
    probe = _read_table(evaluation / "learning_probe.parquet")
    data.learning_probe = probe if len(probe) else None
    return finetune


def _read_stage_markers(data: RunData) -> None:
    """The study runner's ``.stage.json`` markers: content hash and status per stage folder.

    The report's own folder is left out (its marker says "running" while it is written).
    """
    for path in sorted(data.run_dir.glob(f"*/{MARKER}")) + sorted(
        data.run_dir.glob(f"*/*/{MARKER}")
    ):
        label = path.parent.relative_to(data.run_dir).as_posix()
        if label.split("/")[0] == "report":
            continue
        marker = _read_json(path, data.messages)
        if isinstance(marker, dict):
            data.stage_markers[label] = {
                "key": marker.get("key"),
                "status": marker.get("status"),
            }


def collect(run_dir: str | Path) -> RunData:
    """Read every part of a study run directory that exists.

    Raises:
        CapeError: ``run_dir`` does not exist or is not a directory.
    """
    from cape.errors import CapeError

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CapeError(f"run directory {run_dir} does not exist")
    data = RunData(run_dir=run_dir)
    if (run_dir / "study.yaml").is_file():
        data.study = _read_yaml(run_dir / "study.yaml", data.messages) or {}
    if (run_dir / "provenance.json").is_file():
        data.provenance = _read_json(run_dir / "provenance.json", data.messages) or {}
    _read_store(data)
    _read_pretraining(data)
    _read_features(data)
    from cape.report.downstream import read_finetune, read_label_efficiency

    data.finetune, data.finetune_runs = read_finetune(
        run_dir, _read_evaluation(data), data.messages
    )
    data.label_efficiency = read_label_efficiency(run_dir, data.messages)
    _read_stage_markers(data)
    for message in data.messages:
        logger.info("report: %s", message)
    return data
