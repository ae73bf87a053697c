"""``cape ingest``: read a dataset in its own format into a cohort store."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from cape.commands._options import positive_int
from cape.errors import CapeError, did_you_mean

FORMATS = ("ptbxl", "code15", "wfdb", "dicom", "muse")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "ingest",
        help="read PTB-XL, CODE-15%%, WFDB, DICOM or MUSE XML into a cohort store",
        description=(
            "Read a dataset in its own format, check every ECG, preprocess it (leads I, II, "
            "V1-V6; band-pass 0.5-100 Hz; mains notch; 400 Hz; 10 s int16 µV slot) and add it "
            "to a cohort store. Rejected inputs are quarantined with their reason. Re-running "
            "skips what is already stored, so a killed run resumes."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("format", choices=FORMATS, help="source format")
    parser.add_argument("source", type=Path, help="dataset folder (or a single DICOM/XML file)")
    parser.add_argument("--cohort", required=True, help="cohort name for these ECGs")
    parser.add_argument(
        "--mains",
        required=True,
        choices=["50", "60", "none"],
        help="mains frequency of the cohort's country, for the notch filter",
    )
    parser.add_argument("--out", required=True, type=Path, help="store directory (created)")
    parser.add_argument(
        "--workers", type=positive_int, default=min(2, os.cpu_count() or 1), help="worker processes"
    )
    group = parser.add_argument_group("reader options")
    group.add_argument(
        "--sampling-rate", type=int, choices=[100, 500], help="PTB-XL: which records (default 500)"
    )
    group.add_argument("--metadata", type=Path, help="wfdb: metadata table (csv or parquet)")
    group.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="FIELD=COLUMN",
        help="wfdb: metadata column for a CAPE field, e.g. patient_id=subject_id (repeatable)",
    )
    group.add_argument("--mapping", type=Path, help="wfdb: YAML file of FIELD: COLUMN pairs")
    group.add_argument(
        "--window-seconds", type=float, help="wfdb: cut long recordings into windows of this length"
    )
    parser.add_argument(
        "--qc",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help=(
            "override a quality-control threshold (repeatable), e.g. max_qrs_amplitude_mv=8 or "
            "placeholder_patient_ids=,na,removed; see docs/data-contract.md"
        ),
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def reader_options(args: argparse.Namespace) -> dict[str, Any]:
    import yaml

    options: dict[str, Any] = {}
    if args.sampling_rate is not None:
        options["sampling_rate"] = args.sampling_rate
    if args.metadata is not None:
        options["metadata"] = args.metadata
    columns: dict[str, str] = {}
    if args.mapping is not None:
        if not args.mapping.is_file():
            raise CapeError(f"--mapping {args.mapping}: no such file")
        try:
            loaded = yaml.safe_load(args.mapping.read_text()) or {}
        except yaml.YAMLError as error:
            first = " ".join(str(error).split())
            raise CapeError(f"--mapping {args.mapping}: not valid YAML: {first}") from None
        if not isinstance(loaded, dict):
            raise CapeError(f"{args.mapping}: expected a mapping of FIELD: COLUMN")
        columns.update({str(k): str(v) for k, v in loaded.items()})
    for item in args.map:
        if "=" not in item:
            raise CapeError(f"--map {item!r}: expected FIELD=COLUMN")
        key, value = item.split("=", 1)
        columns[key.strip()] = value.strip()
    if columns:
        options["columns"] = columns
    if args.window_seconds is not None:
        options["window_seconds"] = args.window_seconds
    return options


def qc_config(args: argparse.Namespace) -> Any:
    """The QC thresholds with the ``--qc NAME=VALUE`` overrides.

    Raises:
        CapeError: a malformed override, an unknown name or a bad value.
    """
    from cape.qc import QCConfig

    known = set(QCConfig.__dataclass_fields__)
    overrides: dict[str, str] = {}
    for item in args.qc:
        if "=" not in item:
            raise CapeError(f"--qc {item!r}: expected NAME=VALUE")
        key, value = item.split("=", 1)
        if key.strip() not in known:
            raise CapeError(
                f"--qc {item!r}: unknown QC setting {key.strip()!r}"
                f"{did_you_mean(key.strip(), known)} (all of them: docs/data-contract.md)"
            )
        overrides[key.strip()] = value.strip()
    try:
        return QCConfig.from_overrides(overrides)
    except (TypeError, ValueError) as error:
        raise CapeError(f"--qc: {error}") from None


def run(args: argparse.Namespace) -> int:
    from cape.ingest import ingest, validate_cohort_name

    validate_cohort_name(args.cohort)
    mains = None if args.mains == "none" else float(args.mains)
    qc = qc_config(args)
    if args.window_seconds is not None and args.window_seconds < qc.min_seconds:
        raise CapeError(
            f"--window-seconds {args.window_seconds:g}: shorter than the {qc.min_seconds:g} s "
            "that quality control requires (--qc min_seconds): every window would be "
            "quarantined as too_short"
        )
    summary = ingest(
        args.format,
        args.source,
        args.cohort,
        args.out,
        mains_hz=mains,
        workers=args.workers,
        reader_options=reader_options(args),
        qc=qc,
        progress=not args.no_progress,
    )
    print(f"cohort {args.cohort} -> {args.out}")
    print(summary.format())
    if summary.quarantined:
        print(f"details: {args.out / 'quarantine.parquet'} (or `cape describe --quarantine`)")
    return 0
