"""Fixtures that lay out small datasets exactly like the real ones, written with
each format's own library (wfdb, h5py, pandas, pydicom) or, for MUSE XML, a
small generator of base64 little-endian int16 leads."""

from __future__ import annotations

import base64
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd
import pytest
import wfdb

from cape.readers.base import Reader
from cape.record import ECGRecord, Rejection

PTBXL_LEADS = ["I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6"]


def synthetic_ecg(n_samples: int, sampling_rate_hz: float, seed: int) -> np.ndarray:
    """A 12-lead ECG-like signal in mV, ``(12, n_samples)``, leads as in PTB-XL.

    Gaussian "QRS" spikes once a second on I and II, the other limb leads derived
    (III = II - I, Goldberger), chest leads with their own gains, plus noise.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(n_samples) / sampling_rate_hz
    beats = np.zeros(n_samples)
    for beat_time in np.arange(0.3, t[-1] + 1e-9, 1.0):
        beats += np.exp(-0.5 * ((t - beat_time) / 0.012) ** 2)
    lead_i = 0.6 * beats + 0.02 * rng.standard_normal(n_samples)
    lead_ii = 1.1 * beats + 0.02 * rng.standard_normal(n_samples)
    chest = rng.uniform(-1.5, 2.0, size=(6, 1)) * beats + 0.02 * rng.standard_normal((6, n_samples))
    return np.vstack(
        [
            lead_i,
            lead_ii,
            lead_ii - lead_i,
            -(lead_i + lead_ii) / 2,
            lead_i - lead_ii / 2,
            lead_ii - lead_i / 2,
            chest,
        ]
    )


def write_wfdb(
    directory: Path,
    name: str,
    signal_mv: np.ndarray,
    sampling_rate_hz: float,
    lead_names: Sequence[str],
    units: Sequence[str] | None = None,
    gain: float | Sequence[float] = 1000.0,
) -> np.ndarray:
    """Write ``signal`` (``(n_leads, n)``, in ``units``) as 16-bit WFDB; return what a reader
    should get back (the values after quantisation at ``gain`` digital units per unit)."""
    directory.mkdir(parents=True, exist_ok=True)
    n_leads = signal_mv.shape[0]
    gains = np.broadcast_to(np.asarray(gain, dtype=float), (n_leads,))
    digital = np.round(signal_mv * gains[:, None]).astype(np.int32)
    wfdb.wrsamp(
        name,
        fs=sampling_rate_hz,
        units=list(units or ["mV"] * n_leads),
        sig_name=list(lead_names),
        d_signal=digital.T,
        fmt=["16"] * n_leads,
        adc_gain=[float(g) for g in gains],
        baseline=[0] * n_leads,
        write_dir=str(directory),
    )
    return digital / gains[:, None]


def read_all(reader: Reader) -> tuple[list[ECGRecord], list[Rejection]]:
    """Run every task of ``reader``; records and rejections in task order."""
    records: list[ECGRecord] = []
    rejections: list[Rejection] = []
    for task in reader.tasks():
        for item in reader.read(task):
            (records if isinstance(item, ECGRecord) else rejections).append(item)
    return records, rejections


# --------------------------------------------------------------------------- PTB-XL


@dataclass
class PTBXLTree:
    root: Path
    signals_hr: dict[int, np.ndarray] = field(default_factory=dict)
    signals_lr: dict[int, np.ndarray] = field(default_factory=dict)
    database: pd.DataFrame | None = None


PTBXL_ROWS: list[dict[str, Any]] = [
    {
        "ecg_id": 1,
        "patient_id": 15709.0,
        "age": 56.0,
        "sex": 1,
        "site": 2.0,
        "device": "CS-12   E",
        "recording_date": "1984-11-09 09:17:34",
        "scp_codes": "{'NORM': 100.0, 'LVOLT': 0.0, 'SR': 0.0}",
        "strat_fold": 3,
        "height": np.nan,
    },
    {
        "ecg_id": 2,
        "patient_id": 13243.0,
        "age": 300.0,
        "sex": 0,
        "site": 0.0,
        "device": "AT-6 C 5.5",
        "recording_date": "1984-11-14 12:55:37",
        "scp_codes": "{'IMI': 35.0, 'LVH': 0.0, 'SR': 0.0}",
        "strat_fold": 2,
        "height": 175.0,
    },
    {
        "ecg_id": 3,
        "patient_id": 15709.0,
        "age": 57.0,
        "sex": 1,
        "site": 2.0,
        "device": "CS-12   E",
        "recording_date": "1985-06-01 10:00:00",
        "scp_codes": "{'ASMI': 100.0, 'IMI': 50.0}",
        "strat_fold": 3,
        "height": np.nan,
    },
]
SCP_STATEMENTS = pd.DataFrame(
    {
        "description": [
            "normal ECG",
            "inferior MI",
            "anteroseptal MI",
            "LV hypertrophy",
            "sinus rhythm",
            "low QRS voltages",
        ],
        "diagnostic": [1.0, 1.0, 1.0, 1.0, np.nan, np.nan],
        "form": [np.nan, np.nan, np.nan, np.nan, np.nan, 1.0],
        "rhythm": [np.nan, np.nan, np.nan, np.nan, 1.0, np.nan],
        "diagnostic_class": ["NORM", "MI", "MI", "HYP", np.nan, np.nan],
        "diagnostic_subclass": ["NORM", "IMI", "AMI", "LVH", np.nan, np.nan],
    },
    index=["NORM", "IMI", "ASMI", "LVH", "SR", "LVOLT"],
)


@pytest.fixture(scope="session")
def _ptbxl_master(tmp_path_factory: pytest.TempPathFactory) -> PTBXLTree:
    # wfdb.wrsamp is slow (~0.2 s a record): write once, copy per test.
    tree = PTBXLTree(tmp_path_factory.mktemp("ptbxl_master") / "ptbxl")
    rows = []
    for row in PTBXL_ROWS:
        ecg_id = row["ecg_id"]
        stem = f"{ecg_id:05d}"
        folder = f"{(ecg_id // 1000) * 1000:05d}"
        tree.signals_hr[ecg_id] = write_wfdb(
            tree.root / "records500" / folder,
            f"{stem}_hr",
            synthetic_ecg(1000, 500.0, seed=ecg_id),
            500.0,
            PTBXL_LEADS,
        )
        tree.signals_lr[ecg_id] = write_wfdb(
            tree.root / "records100" / folder,
            f"{stem}_lr",
            synthetic_ecg(200, 100.0, seed=ecg_id),
            100.0,
            PTBXL_LEADS,
        )
        rows.append(
            {
                **row,
                "filename_lr": f"records100/{folder}/{stem}_lr",
                "filename_hr": f"records500/{folder}/{stem}_hr",
            }
        )
    tree.database = pd.DataFrame(rows)
    tree.database.to_csv(tree.root / "ptbxl_database.csv", index=False)
    SCP_STATEMENTS.to_csv(tree.root / "scp_statements.csv")  # index -> unnamed first column
    return tree


@pytest.fixture
def ptbxl_tree(_ptbxl_master: PTBXLTree, tmp_path: Path) -> PTBXLTree:
    """A 3-record PTB-XL folder: csvs as in the release, 2 s records at 500 and 100 Hz."""
    root = tmp_path / "ptbxl"
    shutil.copytree(_ptbxl_master.root, root)
    return PTBXLTree(
        root, dict(_ptbxl_master.signals_hr), dict(_ptbxl_master.signals_lr), _ptbxl_master.database
    )


# --------------------------------------------------------------------------- CODE-15%


@dataclass
class Code15Tree:
    root: Path
    tracings: dict[int, np.ndarray]  # exam_id -> (4096, 12) as stored
    windows: dict[int, tuple[int, int]]  # exam_id -> (valid_start, valid_length)
    exams: pd.DataFrame


def _padded(n_valid: int, seed: int, zero_edges: int = 0) -> np.ndarray:
    """A centred, zero-padded (4096, 12) float32 tracing with ``n_valid`` real samples."""
    signal = synthetic_ecg(n_valid, 400.0, seed).T.astype(np.float32)
    signal += 0.05  # no sample of the real signal is exactly zero ...
    if zero_edges:  # ... unless asked: a recording that happens to start and end at 0
        signal[:zero_edges] = 0.0
        signal[-zero_edges:] = 0.0
    tracing = np.zeros((4096, 12), dtype=np.float32)
    start = (4096 - n_valid) // 2
    tracing[start : start + n_valid] = signal
    return tracing


@pytest.fixture
def code15_tree(tmp_path: Path) -> Code15Tree:
    """Two parts; csv shuffled; exam 1003 has zero edges; 9999 only in HDF5; 1005 only in csv."""
    root = tmp_path / "code15"
    root.mkdir()
    lengths = {1001: 4000, 1002: 2800, 9999: 4000, 1003: 4000, 1004: 2800}
    tracings = {
        exam: _padded(n, seed=exam, zero_edges=10 if exam == 1003 else 0)
        for exam, n in lengths.items()
    }
    windows = {exam: ((4096 - n) // 2, n) for exam, n in lengths.items()}
    for part, exams in (
        ("exams_part0.hdf5", [1001, 1002, 9999]),
        ("exams_part1.hdf5", [1003, 1004]),
    ):
        with h5py.File(root / part, "w") as handle:
            stack = np.stack([tracings[e] for e in exams] + [np.zeros((4096, 12), np.float32)])
            handle.create_dataset("tracings", data=stack)
            handle.create_dataset("exam_id", data=np.array([*exams, 0], dtype=np.int64))
    exams = pd.DataFrame(
        {
            "exam_id": [1004, 1001, 1005, 1003, 1002],  # deliberately not in HDF5 row order
            "age": [71, 45, 33, 62, 46],
            "is_male": [True, False, True, True, False],
            "nn_predicted_age": [70.2, 47.9, 30.1, 60.0, 44.4],
            "1dAVb": [False, False, False, True, False],
            "RBBB": [False, True, False, False, False],
            "LBBB": [False, False, False, False, False],
            "SB": [False, False, False, False, False],
            "ST": [False, False, False, False, True],
            "AF": [True, False, False, False, True],
            "patient_id": [9, 7, 10, 8, 7],
            "death": [False, np.nan, np.nan, True, False],
            "timey": [3.5, np.nan, np.nan, 1.2, 4.0],
            "normal_ecg": [False, True, True, False, False],
            "trace_file": [
                "exams_part1.hdf5",
                "exams_part0.hdf5",
                "exams_part1.hdf5",
                "exams_part1.hdf5",
                "exams_part0.hdf5",
            ],
        }
    )
    exams.to_csv(root / "exams.csv", index=False)
    return Code15Tree(root, tracings, windows, exams)


# --------------------------------------------------------------------------- MUSE XML


def muse_lead_xml(
    lead_id: str, samples: np.ndarray, units_per_bit: float = 4.88, units: str | None = "MICROVOLTS"
) -> str:
    data = base64.b64encode(samples.astype("<i2").tobytes()).decode("ascii")
    # Real exports wrap the base64 text; the reader must ignore the line breaks.
    wrapped = "\n".join(data[i : i + 76] for i in range(0, len(data), 76))
    unit_tag = f"<LeadAmplitudeUnits>{units}</LeadAmplitudeUnits>" if units else ""
    return (
        "<LeadData>"
        f"<LeadByteCountTotal>{samples.size * 2}</LeadByteCountTotal>"
        f"<LeadSampleCountTotal>{samples.size}</LeadSampleCountTotal>"
        f"<LeadAmplitudeUnitsPerBit>{units_per_bit}</LeadAmplitudeUnitsPerBit>{unit_tag}"
        f"<LeadID>{lead_id}</LeadID><LeadSampleSize>2</LeadSampleSize>"
        f"<WaveFormData>\n{wrapped}\n</WaveFormData></LeadData>"
    )


def muse_xml(
    leads: dict[str, np.ndarray],
    *,
    patient: str = "<PatientID>MRN001</PatientID><PatientAge>63</PatientAge>"
    "<AgeUnits>YEARS</AgeUnits><Gender>FEMALE</Gender><Race>CAUCASIAN</Race>",
    sample_base: str = "500",
    median: dict[str, np.ndarray] | None = None,
    rhythm: bool = True,
    units_per_bit: float = 4.88,
) -> str:
    """A GE MUSE RestingECG export with a Median and a Rhythm waveform (int16 counts)."""

    def waveform(kind: str, data: dict[str, np.ndarray]) -> str:
        return (
            f"<Waveform><WaveformType>{kind}</WaveformType><WaveformStartTime>0</WaveformStartTime>"
            f"<NumberofLeads>{len(data)}</NumberofLeads><SampleType>CONTINUOUS_SAMPLES</SampleType>"
            f"<SampleBase>{sample_base}</SampleBase><SampleExponent>0</SampleExponent>"
            "<HighPassFilter>5</HighPassFilter><LowPassFilter>150</LowPassFilter>"
            "<ACFilter>60</ACFilter>"
            + "".join(muse_lead_xml(k, v, units_per_bit) for k, v in data.items())
            + "</Waveform>"
        )

    median_xml = waveform("Median", median) if median else ""
    rhythm_xml = waveform("Rhythm", leads) if rhythm else ""
    return (
        '<?xml version="1.0" encoding="ISO-8859-1"?>\n'
        '<!DOCTYPE RestingECG SYSTEM "restecg.dtd">\n'
        "<RestingECG><MuseInfo><MuseVersion>9.0.9.18167</MuseVersion></MuseInfo>"
        f"<PatientDemographics>{patient}</PatientDemographics>"
        "<TestDemographics><DataType>RESTING</DataType><Site>1</Site>"
        "<SiteName>Main Hospital</SiteName><AcquisitionDevice>MAC5500</AcquisitionDevice>"
        "<AcquisitionTime>13:15:18</AcquisitionTime><AcquisitionDate>05-10-2021</AcquisitionDate>"
        "</TestDemographics>"
        "<Diagnosis><DiagnosisStatement><StmtText>Normal sinus rhythm</StmtText>"
        "</DiagnosisStatement></Diagnosis>"
        f"{median_xml}{rhythm_xml}</RestingECG>"
    )


@pytest.fixture
def muse_counts() -> Callable[[int, int], dict[str, np.ndarray]]:
    """int16 counts of an 8-lead MUSE rhythm strip (I, II, V1-V6): (n_samples, seed) -> leads."""

    def make(n_samples: int = 5000, seed: int = 0) -> dict[str, np.ndarray]:
        mv = synthetic_ecg(n_samples, 500.0, seed)[[0, 1, 6, 7, 8, 9, 10, 11]]
        counts = np.round(mv * 1000 / 4.88).astype(np.int16)
        return dict(zip(["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"], counts, strict=True))

    return make
