"""Writing synthetic cohorts in the layouts of real ECG datasets.

Three layouts, each as its real dataset has it, so that ``cape ingest``
reads synthetic data exactly as it would read the real thing:

- ``ptbxl``: PTB-XL's tree (``ptbxl_database.csv``, ``scp_statements.csv``,
  WFDB records at 500 Hz in ``records500/`` and 100 Hz in ``records100/``,
  16-bit, gain 1000/mV, leads ``I II III AVR AVL AVF V1..V6``);
- ``code15``: CODE-15% (``exams.csv`` shuffled against
  ``exams_part{K}.hdf5``; ``tracings`` (N, 4096, 12) float32 at 400 Hz in
  mV, 7 s or 10 s centred in zeros, last row all zeros with exam_id 0);
- ``wfdb``: a generic WFDB folder (MIMIC-IV-ECG style) at the device's own
  rate and ADC step, plus ``metadata.csv``.

Signal files are written block by block (a worker writes its own files);
the tables are written once at the end from the collected metadata.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import h5py
import numpy as np
import pandas as pd
from scipy import signal

from cape.simulator.cohorts import CohortSpec, DeviceSpec
from cape.simulator.conditions import CONDITION_CODES, CONDITIONS, SCP_STATEMENTS

PTBXL_LEADS = ["I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6"]
WFDB_LEADS = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
CODE15_RATE_HZ = 400
CODE15_SAMPLES = 4096


@dataclass
class SignalChunk:
    """A batch of recorded ECGs of one device, ready to be written.

    Attributes:
        signals: ``(n, 12, T)`` mV, leads I, II, III, aVR, aVL, aVF, V1-V6;
            the recorded leads lie on the device's ADC grid.
        sampling_rate_hz: the device's rate.
        device: the effective device that recorded them.
        ecgs: ``n`` rows of per-ECG metadata and ground truth.
    """

    signals: np.ndarray
    sampling_rate_hz: int
    device: DeviceSpec
    ecgs: pd.DataFrame


def resample(signals: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Polyphase resampling along the last axis (anti-aliased; linear, so lead algebra holds)."""
    if rate_in == rate_out:
        return signals
    g = math.gcd(rate_in, rate_out)
    return signal.resample_poly(signals, rate_out // g, rate_in // g, axis=-1, padtype="line")


def _write_wfdb(
    path: Path, signals: np.ndarray, rate_hz: int, names: list[str], gain_per_mv: float
) -> None:
    """One WFDB record (format 16, one .dat file) from ``(n_leads, T)`` mV.

    Writes the same bytes as ``wfdb.wrsamp(..., d_signal=codes, fmt=['16'] * n,
    adc_gain=[gain] * n, baseline=[0] * n)`` (a test checks this) without
    its per-record header validation: ``wfdb.wrsamp`` was 40-55x slower
    (``python benchmarks/bench_wfdb.py``, docs/benchmarks.md).
    """
    # -32768 is WFDB's missing-sample code in format 16: saturate one step above it.
    codes = np.clip(np.rint(signals * gain_per_mv), -32767, 32767).astype("<i2")
    if not path.parent.is_dir():
        path.parent.mkdir(parents=True, exist_ok=True)
    dat_name = f"{path.name}.dat"
    np.ascontiguousarray(codes.T).tofile(path.parent / dat_name)
    checksums = codes.astype(np.int64).sum(axis=1) % 65536
    lines = [f"{path.name} {len(names)} {rate_hz} {codes.shape[1]}"]
    lines += [
        f"{dat_name} 16 {float(gain_per_mv)!r}(0)/mV 16 0 {int(codes[k, 0])} {int(checksums[k])} 0 {name}"
        for k, name in enumerate(names)
    ]
    (path.parent / f"{path.name}.hea").write_text("\n".join(lines) + "\n")


def whole_years(age: pd.Series) -> np.ndarray:
    """Age as most registries write it: completed years."""
    return np.floor(age.to_numpy(dtype=float)).astype(np.int64)


def diagnoses(ecgs: pd.DataFrame) -> list[list[str]]:
    """Per ECG, the SCP codes of its conditions (empty = normal)."""
    flags = ecgs[list(CONDITION_CODES)].to_numpy(dtype=bool)
    return [[code for code, f in zip(CONDITION_CODES, row, strict=True) if f] for row in flags]


class CohortWriter(ABC):
    """Writes one cohort in one layout. Picklable: only paths and the spec as state."""

    format_name: ClassVar[str]

    def __init__(self, root: Path, cohort: CohortSpec) -> None:
        self.root = Path(root)
        self.cohort = cohort

    @abstractmethod
    def source_files(self, ecgs: pd.DataFrame, block: int) -> list[str]:
        """Where each ECG's signal goes, relative to the cohort folder (recorded in the truth)."""

    def begin_block(self, block: int, n_ecgs: int) -> None:  # noqa: B027 - optional hook
        """Called before the chunks of a block."""

    @abstractmethod
    def write(self, chunk: SignalChunk) -> None:
        """Write the signals of a chunk (its rows carry ``source_file``)."""

    def end_block(self) -> None:  # noqa: B027 - optional hook
        """Called after the chunks of a block."""

    @abstractmethod
    def finish(self, ecgs: pd.DataFrame, rng: np.random.Generator) -> None:
        """Write the metadata tables from every ECG's row (in record order)."""


class PtbxlWriter(CohortWriter):
    """PTB-XL tree: WFDB at 500 and 100 Hz plus ptbxl_database.csv and scp_statements.csv."""

    format_name = "ptbxl"

    def source_files(self, ecgs: pd.DataFrame, block: int) -> list[str]:
        return [_ptbxl_name(int(i), "hr") for i in ecgs["record_id"]]

    def write(self, chunk: SignalChunk) -> None:
        high = resample(chunk.signals, chunk.sampling_rate_hz, 500)
        low = resample(high, 500, 100)
        for row, ecg_id in enumerate(chunk.ecgs["record_id"].to_numpy()):
            _write_wfdb(
                self.root / _ptbxl_name(int(ecg_id), "hr"), high[row], 500, PTBXL_LEADS, 1000.0
            )
            _write_wfdb(
                self.root / _ptbxl_name(int(ecg_id), "lr"), low[row], 100, PTBXL_LEADS, 1000.0
            )

    def finish(self, ecgs: pd.DataFrame, rng: np.random.Generator) -> None:
        codes = diagnoses(ecgs)
        likelihood = rng.choice([50.0, 80.0, 100.0], size=len(ecgs), p=[0.1, 0.2, 0.7])
        rate = ecgs["heart_rate_bpm"].to_numpy()
        scp, reports = [], []
        for k, found in enumerate(codes):
            entry = {code: float(likelihood[k]) for code in found} if found else {"NORM": 100.0}
            if ecgs["AFIB"].iat[k]:
                entry["AFIB"] = 0.0
            else:
                entry["SR"] = 0.0
                if rate[k] < 60:
                    entry["SBRAD"] = 0.0
                elif rate[k] > 100:
                    entry["STACH"] = 0.0
            scp.append(repr(entry))
            reports.append(". ".join(SCP_STATEMENTS[c][0] for c in entry) + ".")
        age = whole_years(ecgs["age"]).astype(float)
        age[age >= 90] = 300.0  # PTB-XL's code for 90 years or older
        n = len(ecgs)
        nan = np.full(n, np.nan)
        table = pd.DataFrame(
            {
                "ecg_id": ecgs["record_id"].to_numpy(dtype=np.int64),
                "patient_id": ecgs["patient_id"].to_numpy(dtype=float),
                "age": age,
                "sex": ecgs["female"].to_numpy(dtype=np.int64),
                "height": np.where(rng.random(n) < 0.3, np.round(rng.normal(170, 9, n)), nan),
                "weight": np.where(rng.random(n) < 0.4, np.round(rng.normal(78, 14, n)), nan),
                "nurse": rng.integers(0, 12, n).astype(float),
                "site": np.zeros(n) + _site_number(self.cohort.site),
                "device": ecgs["device"].to_numpy(),
                "recording_date": pd.to_datetime(ecgs["recording_date"]).dt.strftime(
                    "%Y-%m-%d %H:%M:%S"
                ),
                "report": reports,
                "scp_codes": scp,
                "heart_axis": [_heart_axis(a) for a in ecgs["qrs_axis_deg"].to_numpy()],
                "infarction_stadium1": np.where(ecgs["IMI"] | ecgs["AMI"], "Stadium III", ""),
                "infarction_stadium2": "",
                "validated_by": rng.integers(0, 12, n).astype(float),
                "second_opinion": False,
                "initial_autogenerated_report": False,
                "validated_by_human": True,
                "baseline_drift": "",
                "static_noise": "",
                "burst_noise": "",
                "electrodes_problems": "",
                "extra_beats": "",
                "pacemaker": "",
                "strat_fold": _strat_folds(ecgs, codes, rng),
                "filename_lr": [_ptbxl_name(int(i), "lr") for i in ecgs["record_id"]],
                "filename_hr": [_ptbxl_name(int(i), "hr") for i in ecgs["record_id"]],
            }
        ).sort_values("ecg_id")
        table.to_csv(self.root / "ptbxl_database.csv", index=False)
        statements = pd.DataFrame.from_dict(
            SCP_STATEMENTS,
            orient="index",
            columns=[
                "description",
                "diagnostic",
                "form",
                "rhythm",
                "diagnostic_class",
                "diagnostic_subclass",
                "Statement Category",
            ],
        )
        statements["diagnostic_class"] = statements["diagnostic_class"].replace("", np.nan)
        statements["diagnostic_subclass"] = statements["diagnostic_subclass"].replace("", np.nan)
        statements.to_csv(self.root / "scp_statements.csv")


def _ptbxl_name(ecg_id: int, kind: str) -> str:
    """PTB-XL file name: ``records500/00000/00001_hr`` (folders of 1000 records)."""
    rate = "500" if kind == "hr" else "100"
    return f"records{rate}/{(ecg_id // 1000) * 1000:05d}/{ecg_id:05d}_{kind}"


def _site_number(site: str) -> float:
    digits = "".join(ch for ch in site if ch.isdigit())
    return float(digits) if digits else 0.0


def _heart_axis(axis_deg: float) -> str:
    """PTB-XL's heart_axis categories from the frontal QRS axis."""
    if axis_deg < -90:
        return "AXR"
    if axis_deg < -30:
        return "ALAD"
    if axis_deg < 0:
        return "LAD"
    if axis_deg <= 90:
        return "MID"
    if axis_deg <= 120:
        return "RAD"
    return "ARAD"


def _strat_folds(
    ecgs: pd.DataFrame, codes: list[list[str]], rng: np.random.Generator
) -> np.ndarray:
    """Patient-wise folds 1-10, stratified by the patient's first diagnosis (like PTB-XL)."""
    first = (
        pd.DataFrame(
            {
                "patient": ecgs["patient_id"].to_numpy(),
                "label": [c[0] if c else "NORM" for c in codes],
            }
        )
        .groupby("patient")
        .first()
    )
    first["key"] = rng.random(len(first))
    first = first.sort_values(["label", "key"])
    first["fold"] = np.arange(len(first)) % 10 + 1
    return first.loc[ecgs["patient_id"].to_numpy(), "fold"].to_numpy()


class Code15Writer(CohortWriter):
    """CODE-15%: exams.csv plus one exams_part{K}.hdf5 per block."""

    format_name = "code15"

    def source_files(self, ecgs: pd.DataFrame, block: int) -> list[str]:
        return [f"exams_part{block}.hdf5"] * len(ecgs)

    def begin_block(self, block: int, n_ecgs: int) -> None:
        self._file = h5py.File(self.root / f"exams_part{block}.hdf5", "w")
        # track_times=False keeps the files byte-identical for a seed.
        self._tracings = self._file.create_dataset(
            "tracings",
            shape=(n_ecgs + 1, CODE15_SAMPLES, 12),
            dtype="f4",
            track_times=False,
            chunks=(1, CODE15_SAMPLES, 12),
            fillvalue=0.0,
        )
        self._ids = self._file.create_dataset(
            "exam_id", shape=(n_ecgs + 1,), dtype="i8", track_times=False
        )
        self._row = 0

    def write(self, chunk: SignalChunk) -> None:
        traces = resample(chunk.signals, chunk.sampling_rate_hz, CODE15_RATE_HZ).astype(np.float32)
        n, _, length = traces.shape
        start = (CODE15_SAMPLES - length) // 2  # centred, as the CODE preprocessing pads
        block = np.zeros((n, CODE15_SAMPLES, 12), dtype=np.float32)
        block[:, start : start + length] = traces.transpose(0, 2, 1)
        self._tracings[self._row : self._row + n] = block
        self._ids[self._row : self._row + n] = chunk.ecgs["record_id"].to_numpy(dtype=np.int64)
        self._row += n

    def end_block(self) -> None:
        self._ids[self._row] = 0  # the last row of every part is padding: zeros, exam_id 0
        self._file.close()

    def finish(self, ecgs: pd.DataFrame, rng: np.random.Generator) -> None:
        flags = {code: ecgs[code].to_numpy(dtype=bool) for code in CONDITION_CODES}
        rate = ecgs["heart_rate_bpm"].to_numpy()
        sinus = ~flags["AFIB"]
        age = whole_years(ecgs["age"])
        table = pd.DataFrame(
            {
                "exam_id": ecgs["record_id"].to_numpy(dtype=np.int64),
                "age": age,
                "is_male": ~ecgs["female"].to_numpy(dtype=bool),
                # A network's age estimate, as the real column holds (error SD ~8 y).
                "nn_predicted_age": np.round(
                    ecgs["age"].to_numpy() + rng.normal(0, 8, len(ecgs)), 4
                ),
            }
        )
        for code in CONDITION_CODES:
            column = CONDITIONS[code].code15_column
            if column is not None:
                table[column] = flags[code]
        table["SB"] = sinus & (rate < 50)
        table["ST"] = sinus & (rate > 100)
        table = table[
            [
                "exam_id",
                "age",
                "is_male",
                "nn_predicted_age",
                "1dAVb",
                "RBBB",
                "LBBB",
                "SB",
                "ST",
                "AF",
            ]
        ]
        table["patient_id"] = ecgs["patient_id"].to_numpy(dtype=np.int64)
        # Follow-up: yearly mortality rising with age (Gompertz-like), 0-8 years.
        timey = np.round(rng.uniform(0, 8, len(ecgs)), 3)
        hazard = 0.004 * np.exp(0.08 * (age - 50))
        table["death"] = rng.random(len(ecgs)) < 1 - np.exp(-hazard * timey)
        table["timey"] = timey
        table["normal_ecg"] = ~ecgs[list(CONDITION_CODES)].to_numpy(dtype=bool).any(axis=1)
        table["trace_file"] = ecgs["source_file"].to_numpy()
        # The real exams.csv is not in HDF5 row order.
        table.iloc[rng.permutation(len(table))].to_csv(self.root / "exams.csv", index=False)


class WfdbFolderWriter(CohortWriter):
    """Generic WFDB folder at the device's rate and ADC step, plus metadata.csv."""

    format_name = "wfdb"

    def source_files(self, ecgs: pd.DataFrame, block: int) -> list[str]:
        return [
            f"files/p{pid // 1000:04d}/p{pid:08d}/s{rid:08d}"
            for pid, rid in zip(
                ecgs["patient_id"].to_numpy(), ecgs["record_id"].to_numpy(), strict=True
            )
        ]

    def write(self, chunk: SignalChunk) -> None:
        gain = 1000.0 / chunk.device.adc_lsb_uv  # ADC units per mV
        for row, path in enumerate(chunk.ecgs["source_file"]):
            _write_wfdb(
                self.root / path, chunk.signals[row], chunk.sampling_rate_hz, WFDB_LEADS, gain
            )

    def finish(self, ecgs: pd.DataFrame, rng: np.random.Generator) -> None:
        table = pd.DataFrame(
            {
                "path": ecgs["source_file"].to_numpy(),
                "record_id": ecgs["record_id"].to_numpy(dtype=np.int64),
                "patient_id": ecgs["patient_id"].to_numpy(dtype=np.int64),
                "age": whole_years(ecgs["age"]),
                "sex": np.where(ecgs["female"].to_numpy(dtype=bool), "F", "M"),
                "device": ecgs["device"].to_numpy(),
                "site": self.cohort.site,
                "ethnicity": ecgs["ethnicity"].to_numpy(),
                "recording_date": pd.to_datetime(ecgs["recording_date"]).dt.strftime(
                    "%Y-%m-%d %H:%M:%S"
                ),
            }
        )
        if not self.cohort.demographics.ethnicity:
            table["ethnicity"] = ""  # the cohort does not record it
        table.to_csv(self.root / "metadata.csv", index=False)


WRITERS: dict[str, type[CohortWriter]] = {
    w.format_name: w for w in (PtbxlWriter, Code15Writer, WfdbFolderWriter)
}
