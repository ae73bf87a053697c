"""A hostile corpus: every way a source can lie or break, each with its exact outcome.

Valid records (the simulator's ECGs) are mixed with hostile ones in one run;
every valid record must be stored exactly as in a run without the hostile
ones, and every hostile one quarantined with its reason (or stored correctly).
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _hostile_corpus import (
    BILLION_LAUGHS,
    FS,
    LEADS12,
    ecg,
    muse_xml,
    write_dicom,
    write_hostile_212_header,
    write_metadata,
    write_wfdb,
)

from cape.errors import CapeError
from cape.ingest import ingest, shard_name
from cape.qc import QCConfig
from cape.readers import get_reader
from cape.readers.base import ReadTask
from cape.readers.wfdb_folder import WFDBFolderReader
from cape.store import CohortStore

N_VALID = 8


def _valid_rows(folder: Path) -> list[dict[str, str]]:
    rows = []
    for k in range(N_VALID):
        write_wfdb(folder / "rec", f"v{k}", ecg(k))
        rows.append({"path": f"rec/v{k}", "record_id": f"v{k}", "patient_id": f"p{k // 2}"})
    return rows


def _by_record(store_path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    store = CohortStore.open(store_path)
    quarantine = pd.read_parquet(store_path / "quarantine.parquet")
    return store.manifest, quarantine.set_index("record_id")


def _assert_equal_to_reference(store_path: Path, reference_path: Path) -> None:
    store, reference = CohortStore.open(store_path), CohortStore.open(reference_path)
    ids = reference.manifest["record_id"].tolist()
    positions = {r: i for i, r in enumerate(store.manifest["record_id"])}
    assert set(ids) <= set(positions), f"valid records lost: {set(ids) - set(positions)}"
    for k, record_id in enumerate(ids):
        np.testing.assert_array_equal(store.read(positions[record_id]), reference.read(k))


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store of the valid records alone."""
    folder = tmp_path_factory.mktemp("reference")
    source = folder / "src"
    write_metadata(source, _valid_rows(source))
    ingest("wfdb", source, "wfdb_cohort", folder / "store", mains_hz=50, progress=False)
    return folder / "store"


def test_mixed_wfdb_run_keeps_every_valid_record(tmp_path: Path, reference: Path) -> None:
    source = tmp_path / "src"
    rows = _valid_rows(source)
    outside = tmp_path / "outside"
    write_wfdb(outside, "secret", ecg(21))
    hostile = {
        # header says 100 Hz / 257 Hz for a 500 Hz recording
        "rate100": dict(signal=ecg(8), header_fs=100),
        "rate257": dict(signal=ecg(22), header_fs=257),
        # header gain 200 or 100 ADC units per mV for data written at 1000: x5, x10
        "gain5": dict(signal=ecg(10), header_gain=200.0),
        "gain10": dict(signal=ecg(13), header_gain=100.0),
        # V2 labelled C1 (an alias of V1): two channels claim V1
        "twice_v1": dict(signal=ecg(12), lead_names=[*LEADS12[:7], "C1", *LEADS12[8:]]),
    }
    for name, spec in hostile.items():
        signal = spec.pop("signal")
        write_wfdb(source / "rec", name, signal, **spec)
        rows.append({"path": f"rec/{name}", "record_id": name, "patient_id": f"h_{name}"})
    rows += [
        {"path": "../outside/secret", "record_id": "dotdot", "patient_id": "h1"},
        {"path": str(outside / "secret"), "record_id": "absolute", "patient_id": "h2"},
        {"path": "rec/v0", "record_id": "copy_of_v0", "patient_id": "someone_else"},
        {"path": "rec/v1", "record_id": "na_patient", "patient_id": "NA"},
        {"path": "rec/v1", "record_id": "removed_patient", "patient_id": "removed"},
        {"path": "rec/huge", "record_id": "huge212", "patient_id": "h3"},
        {"path": "rec/link", "record_id": "symlinked_out", "patient_id": "h4"},
    ]
    write_hostile_212_header(source / "rec", "huge")
    for suffix in (".hea", ".dat"):
        os.symlink(outside / f"secret{suffix}", source / "rec" / f"link{suffix}")
    # A row with a byte that is not UTF-8: quarantined, the rest of the table read.
    write_metadata(source, rows, extra_bytes=b"rec/v2,bad\xffbytes,p9\n")

    summary = ingest("wfdb", source, "wfdb_cohort", tmp_path / "store", mains_hz=50, progress=False)

    manifest, quarantine = _by_record(tmp_path / "store")
    expected = {
        "rate100": "implausible_rate",
        "rate257": "implausible_rate",
        "gain5": "implausible_amplitude",
        "gain10": "implausible_amplitude",
        "twice_v1": "ambiguous_leads",
        "dotdot": "outside_source",
        "absolute": "outside_source",
        "symlinked_out": "outside_source",
        "copy_of_v0": "duplicate_signal",
        "na_patient": "missing_patient_id",
        "removed_patient": "missing_patient_id",
        "huge212": "unreadable",
    }
    for record_id, reason in expected.items():
        assert quarantine.loc[record_id, "reason"] == reason, (record_id, quarantine.loc[record_id])
    assert "claims 1000000000 samples" in quarantine.loc["huge212", "detail"]
    bad = quarantine[quarantine["reason"] == "bad_metadata"]
    assert len(bad) == 1 and "undecodable" in bad["detail"].iloc[0]
    assert sorted(manifest["record_id"]) == [f"v{k}" for k in range(N_VALID)]
    assert manifest["signal_hash"].is_unique
    _assert_equal_to_reference(tmp_path / "store", reference)
    assert summary.duplicate_signals == 1
    # Nothing is dropped silently: every table row is stored or quarantined.
    assert len(manifest) + len(quarantine) == len(rows) + 1


def test_too_long_records_are_capped_or_read_in_windows(tmp_path: Path) -> None:
    source = tmp_path / "src"
    long_signal = np.tile(ecg(0), 62)  # 620 s, over the 600 s cap
    write_wfdb(source / "rec", "long", long_signal)
    write_metadata(source, [{"path": "rec/long", "record_id": "long", "patient_id": "p"}])
    ingest("wfdb", source, "whole", tmp_path / "store", mains_hz=50, progress=False)
    _, quarantine = _by_record(tmp_path / "store")
    assert quarantine.loc["long", "reason"] == "too_long"
    ingest(
        "wfdb",
        source,
        "windows",
        tmp_path / "store",
        mains_hz=50,
        progress=False,
        reader_options={"window_seconds": 10},
    )
    manifest, quarantine = _by_record(tmp_path / "store")
    windows = manifest[manifest["cohort"] == "windows"]
    # 62 windows of one 10 s signal: the first is kept, the other 61 are exact copies.
    assert len(windows) == 1 and windows["record_id"].iloc[0] == "long_w0"
    copies = quarantine[(quarantine["cohort"] == "windows")]
    assert (copies["reason"] == "duplicate_signal").sum() == 61


def test_window_seconds_that_rounds_to_nothing_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "src"
    write_wfdb(source / "rec", "v0", ecg(0))
    write_metadata(source, [{"path": "rec/v0", "record_id": "v0", "patient_id": "p"}])
    with pytest.raises(CapeError, match="window_seconds"):
        get_reader("wfdb", source, "c", window_seconds=1e-9)


def test_placeholder_patient_ids_are_configurable(tmp_path: Path) -> None:
    source = tmp_path / "src"
    write_wfdb(source / "rec", "v0", ecg(0))
    write_wfdb(source / "rec", "v1", ecg(1))
    rows = [
        {"path": "rec/v0", "record_id": "v0", "patient_id": "NA"},
        {"path": "rec/v1", "record_id": "v1", "patient_id": "000"},
    ]
    write_metadata(source, rows)
    qc = QCConfig(placeholder_patient_ids=("", "000"))  # "NA" is a real id here
    ingest("wfdb", source, "c", tmp_path / "store", mains_hz=50, qc=qc, progress=False)
    manifest, quarantine = _by_record(tmp_path / "store")
    assert manifest["patient_id"].tolist() == ["NA"]
    assert quarantine.loc["v1", "reason"] == "missing_patient_id"


@pytest.mark.parametrize("name", ["site a", "site/a", "", "-a", "ä", "a" * 65])
def test_cohort_names_outside_the_character_set_are_refused(tmp_path: Path, name: str) -> None:
    source = tmp_path / "src"
    write_wfdb(source / "rec", "v0", ecg(0))
    write_metadata(source, [{"path": "rec/v0", "record_id": "v0", "patient_id": "p"}])
    with pytest.raises(CapeError, match="cohort name"):
        ingest("wfdb", source, name, tmp_path / "store", mains_hz=50, progress=False)
    assert not (tmp_path / "store").exists()


def test_shard_names_are_unique_per_exact_cohort_name() -> None:
    task = ReadTask("rows-0000000-0000249", ("rows", 0, 250))
    names = {shard_name(c, task, "/src", {}) for c in ("site_a", "Site_A", "site_a.", "site-a")}
    assert len(names) == 4
    # Case-insensitive file systems: the digest differs too, not only the prefix.
    assert len({n.lower() for n in names}) == 4


# --------------------------------------------------------------------------- DICOM


def test_dicom_corpus(tmp_path: Path) -> None:
    source = tmp_path / "dcm"
    source.mkdir()
    for k in range(3):
        write_dicom(source / f"d{k}.dcm", ecg(k), f"p{k}")
    write_dicom(source / "sens10.dcm", ecg(10), "q1", sensitivity_error=10.0)
    write_dicom(source / "badrate.dcm", ecg(11), "q2", sampling_frequency="abcdefgh")
    write_dicom(source / os.fsdecode(b"caf\xe9.dcm"), ecg(3), "p3")  # Latin-1 file name
    os.symlink("loop.dcm", source / "loop.dcm")
    os.symlink("/dev/null", source / "device.dcm")
    os.mkfifo(source / "fifo.dcm")
    summary = ingest("dicom", source, "dcm", tmp_path / "store", mains_hz=50, progress=False)
    store = CohortStore.open(tmp_path / "store")
    quarantine = pd.read_parquet(tmp_path / "store" / "quarantine.parquet")
    reasons = {
        Path(f).name: r for f, r in zip(quarantine.source_file, quarantine.reason, strict=True)
    }
    assert reasons == {
        "sens10.dcm": "implausible_amplitude",
        "badrate.dcm": "unknown_sampling_rate",
        "loop.dcm": "unreadable",
        "device.dcm": "unreadable",
        "fifo.dcm": "unreadable",
    }
    assert sorted(store.manifest["patient_id"]) == ["p0", "p1", "p2", "p3"]
    assert any(f.endswith("caf\\xe9.dcm") for f in store.manifest["source_file"])
    # One more file: only its group is read again, nothing is counted twice.
    write_dicom(source / "d9.dcm", ecg(9), "p9")
    again = ingest("dicom", source, "dcm", tmp_path / "store", mains_hz=50, progress=False)
    assert again.tasks_total - again.tasks_skipped <= 2  # the group it joined (maybe split)
    assert again.read == 1 and again.stored == 1 and not again.quarantined
    assert summary.stored == 4
    quarantine2 = pd.read_parquet(tmp_path / "store" / "quarantine.parquet")
    assert len(quarantine2) == len(quarantine)
    assert len(CohortStore.open(tmp_path / "store").manifest) == 5


# --------------------------------------------------------------------------- MUSE


def test_muse_corpus(tmp_path: Path) -> None:
    source = tmp_path / "xml"
    source.mkdir()
    (source / "m0.xml").write_text(muse_xml(ecg(0), "p0"))
    (source / "exp400.xml").write_text(muse_xml(ecg(1), "p1", sample_exponent="400"))
    (source / "gain10.xml").write_text(muse_xml(ecg(10), "p2", written_units_per_bit=48.8))
    (source / "bomb.xml").write_text(BILLION_LAUGHS)
    ingest("muse", source, "muse", tmp_path / "store", mains_hz=60, progress=False)
    store = CohortStore.open(tmp_path / "store")
    quarantine = pd.read_parquet(tmp_path / "store" / "quarantine.parquet")
    reasons = {
        Path(f).name: r for f, r in zip(quarantine.source_file, quarantine.reason, strict=True)
    }
    assert reasons == {
        "exp400.xml": "unknown_sampling_rate",
        "gain10.xml": "implausible_amplitude",
        "bomb.xml": "unreadable",
    }
    assert store.manifest["patient_id"].tolist() == ["p0"]


# --------------------------------------------------------------------------- PTB-XL


def test_ptbxl_row_with_undecodable_bytes_is_quarantined(tmp_path: Path) -> None:
    source = tmp_path / "ptbxl"
    rows = []
    for k in range(3):
        name = f"records500/00000/0000{k + 1}_hr"
        write_wfdb(source / "records500" / "00000", f"0000{k + 1}_hr", ecg(k))
        rows.append(
            {
                "ecg_id": k + 1,
                "patient_id": float(100 + k),
                "age": 50,
                "sex": 0,
                "scp_codes": "{'NORM': 100.0}",
                "strat_fold": 1,
                "filename_lr": name.replace("500", "100").replace("_hr", "_lr"),
                "filename_hr": name,
                "report": "sinus rhythm",
            }
        )
    (source / "records100").mkdir()
    text = pd.DataFrame(rows).to_csv(index=False).encode()
    text = text.replace(b"sinus rhythm\n2", b"sinus \xe4 rhythm\n2", 1)  # row 1 (ecg_id 2)
    (source / "ptbxl_database.csv").write_bytes(text)
    pd.DataFrame(
        {"diagnostic": [1.0], "diagnostic_class": ["NORM"], "diagnostic_subclass": ["NORM"]},
        index=["NORM"],
    ).to_csv(source / "scp_statements.csv")
    ingest("ptbxl", source, "ptb", tmp_path / "store", mains_hz=50, progress=False)
    manifest, quarantine = _by_record(tmp_path / "store")
    assert sorted(manifest["record_id"]) == ["2", "3"] or sorted(manifest["record_id"]) == [
        "1",
        "3",
    ]
    assert quarantine["reason"].tolist() == ["bad_metadata"]


# --------------------------------------------------------------------------- store


def test_orphan_quarantine_part_of_an_uncommitted_shard_is_ignored(
    tmp_path: Path, reference: Path
) -> None:
    store = tmp_path / "store"
    shutil.copytree(reference, store)
    orphan = pd.DataFrame(
        [{"cohort": "x", "source_file": "f", "record_id": "r", "patient_id": "p"}]
    ).assign(reason="unreadable", detail="from a shard that never committed")
    orphan.to_parquet(store / "parts" / "never__committed.quarantine.parquet", index=False)
    from cape.store import rebuild_manifest

    rebuild_manifest(store)
    assert len(pd.read_parquet(store / "quarantine.parquet")) == 0


def test_crash_before_the_first_commit_leaves_a_store_a_rerun_completes(
    tmp_path: Path, reference: Path
) -> None:
    source = tmp_path / "src"
    write_metadata(source, _valid_rows(source))

    class Boom(BaseException):
        pass

    from cape.readers.wfdb_folder import WFDBFolderReader

    original = WFDBFolderReader.read

    def crash(self, task):  # type: ignore[no-untyped-def]
        raise Boom
        yield  # pragma: no cover

    WFDBFolderReader.read = crash  # type: ignore[method-assign]
    try:
        with pytest.raises(Boom):
            ingest("wfdb", source, "wfdb_cohort", tmp_path / "store", mains_hz=50, progress=False)
    finally:
        WFDBFolderReader.read = original  # type: ignore[method-assign]
    assert len(CohortStore.open(tmp_path / "store").manifest) == 0  # readable, empty
    assert not list((tmp_path / "store" / "parts").glob("*"))
    ingest("wfdb", source, "wfdb_cohort", tmp_path / "store", mains_hz=50, progress=False)
    _assert_equal_to_reference(tmp_path / "store", reference)


def test_stale_lock_is_taken_over_with_a_warning(
    tmp_path: Path, reference: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = tmp_path / "store"
    shutil.copytree(reference, store)
    (store / ".lock").write_text("pid 999999999 on elsewhere\n")
    source = tmp_path / "src"
    write_metadata(source, _valid_rows(source))
    with caplog.at_level(logging.WARNING, logger="cape.ingest"):
        ingest("wfdb", source, "other", store, mains_hz=50, progress=False)
    assert "stale lock" in caplog.text and "999999999" in caplog.text
    assert (store / ".lock").read_text() == ""


def test_header_sample_count_is_checked_before_reading(tmp_path: Path) -> None:
    from cape.readers.wfdb_io import inspect_header, read_wfdb

    write_hostile_212_header(tmp_path, "huge")
    with pytest.raises(ValueError, match="claims 1000000000 samples"):
        inspect_header(tmp_path / "huge")
    with pytest.raises(ValueError, match="claims"):
        read_wfdb(tmp_path / "huge")
    write_wfdb(tmp_path, "ok", ecg(0))
    signal, rate, names, _ = read_wfdb(tmp_path / "ok", 1000, 3000)
    assert signal.shape == (12, 2000) and rate == FS and names == LEADS12
    full, *_ = read_wfdb(tmp_path / "ok")
    np.testing.assert_array_equal(signal, full[:, 1000:3000])


# --------------------------------------------------------------------------- dying workers


class _Segfaulting(WFDBFolderReader):
    """Stands in for a C library that crashes on one hostile file: kills its process."""

    def read(self, task):  # type: ignore[no-untyped-def]
        for item in super().read(task):
            if getattr(item, "record_id", None) == "crash" and os.getpid() != self.parent:
                os.kill(os.getpid(), 9)
            yield item


def test_a_worker_killed_by_one_input_costs_only_its_task(tmp_path: Path) -> None:
    from cape.ingest import ingest_reader

    source = tmp_path / "src"
    rows = []
    for k in range(8):
        name = "crash" if k == 3 else f"r{k}"
        write_wfdb(source / "rec", name, ecg(k))
        rows.append({"path": f"rec/{name}", "record_id": name, "patient_id": f"p{k}"})
    write_metadata(source, rows)
    reader = _Segfaulting(source, "c", records_per_task=2)
    reader.parent = os.getpid()  # type: ignore[attr-defined]
    summary = ingest_reader(reader, tmp_path / "store", 50.0, workers=2, progress=False)
    manifest, quarantine = _by_record(tmp_path / "store")
    assert sorted(manifest["record_id"]) == ["r0", "r1", "r4", "r5", "r6", "r7"]
    assert quarantine["reason"].tolist() == ["unreadable"]
    assert "killed the worker" in quarantine["detail"].iloc[0]
    assert summary.stored == 6
    # The task that killed its worker is committed: a rerun does not try it again.
    again = ingest_reader(reader, tmp_path / "store", 50.0, workers=2, progress=False)
    assert again.tasks_skipped == again.tasks_total


# --------------------------------------------------------------------------- kill -9


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        text = (task / "children").read_text() if (task / "children").exists() else ""
        found.update(int(c) for c in text.split())
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")
def test_kill_9_during_parallel_ingest_reruns_to_an_identical_store(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import signal
    import subprocess
    import sys
    import time

    source = tmp_path / "src"
    rows = []
    for k in range(24):
        write_wfdb(source / "rec", f"r{k}", ecg(k))
        rows.append({"path": f"rec/r{k}", "record_id": f"r{k}", "patient_id": f"p{k // 3}"})
    rows.append({"path": "rec/missing", "record_id": "gone", "patient_id": "p0"})
    write_metadata(source, rows)
    options = {"records_per_task": 2}
    ingest(
        "wfdb", source, "c", tmp_path / "ref", mains_hz=50, progress=False, reader_options=options
    )
    store = tmp_path / "store"
    script = (
        "from cape.ingest import ingest\n"
        f"ingest('wfdb', {str(source)!r}, 'c', {str(store)!r}, mains_hz=50, workers=2, "
        f"progress=False, reader_options={options!r})\n"
    )
    process = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.monotonic() + 120
    while not list((store / "parts").glob("*.quarantine.parquet")):
        assert process.poll() is None, "ingest finished before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    workers = _children(process.pid)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert workers, "the pool had no workers"
    time.sleep(1.0)
    assert not [pid for pid in workers if _alive(pid)], "pool workers outlived their parent"
    assert (store / ".lock").read_text().startswith(f"pid {process.pid}")

    with caplog.at_level(logging.WARNING, logger="cape.ingest"):
        ingest(
            "wfdb",
            source,
            "c",
            store,
            mains_hz=50,
            workers=2,
            progress=False,
            reader_options=options,
        )
    assert "stale lock" in caplog.text
    sort = ["record_id"]
    manifest = pd.read_parquet(store / "manifest.parquet").sort_values(sort, ignore_index=True)
    expected = pd.read_parquet(tmp_path / "ref" / "manifest.parquet").sort_values(
        sort, ignore_index=True
    )
    pd.testing.assert_frame_equal(manifest, expected)
    quarantine = pd.read_parquet(store / "quarantine.parquet")
    assert quarantine["record_id"].tolist() == ["gone"]
    _assert_equal_to_reference(store, tmp_path / "ref")


def test_a_live_owner_keeps_the_lock(tmp_path: Path) -> None:
    import subprocess
    import sys

    store = tmp_path / "store"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom cape.ingest import store_lock\n"
            f"with store_lock(__import__('pathlib').Path({str(store)!r})):\n"
            "    print('locked', flush=True); time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        source = tmp_path / "src"
        write_wfdb(source / "rec", "v0", ecg(0))
        write_metadata(source, [{"path": "rec/v0", "record_id": "v0", "patient_id": "p"}])
        with pytest.raises(CapeError, match=f"another cape process .*pid {holder.pid}"):
            ingest("wfdb", source, "c", store, mains_hz=50, progress=False)
    finally:
        holder.kill()
        holder.wait()


def test_cli_refuses_a_bad_cohort_name_and_takes_qc_overrides(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cape.cli import main as cape_main

    source = tmp_path / "src"
    write_wfdb(source / "rec", "v0", ecg(10), header_gain=200.0)  # x5
    write_metadata(source, [{"path": "rec/v0", "record_id": "v0", "patient_id": "p"}])
    common = ["ingest", "wfdb", str(source), "--mains", "50", "--no-progress", "--workers", "1"]
    assert cape_main([*common, "--cohort", "site a", "--out", str(tmp_path / "s")]) != 0
    assert "cohort name 'site a'" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()
    out = str(tmp_path / "store")
    assert cape_main([*common, "--cohort", "c", "--out", out]) == 0
    assert "implausible_amplitude: 1" in capsys.readouterr().out
    loose = ["--qc", "max_qrs_amplitude_mv=50"]
    assert cape_main([*common, "--cohort", "loose", "--out", out, *loose]) == 0
    assert "stored this run: 1" in capsys.readouterr().out


def test_signal_file_symlinked_out_of_the_source_is_outside_source(tmp_path: Path) -> None:
    source, outside = tmp_path / "src", tmp_path / "outside"
    write_wfdb(outside, "v0", ecg(0))
    (source / "rec").mkdir(parents=True)
    shutil.copy(outside / "v0.hea", source / "rec" / "v0.hea")  # the header is inside ...
    os.symlink(outside / "v0.dat", source / "rec" / "v0.dat")  # ... its data is not
    write_metadata(source, [{"path": "rec/v0", "record_id": "v0", "patient_id": "p"}])
    ingest("wfdb", source, "c", tmp_path / "store", mains_hz=50, progress=False)
    _, quarantine = _by_record(tmp_path / "store")
    assert quarantine.loc["v0", "reason"] == "outside_source"
    assert "v0.dat" in quarantine.loc["v0", "detail"]


def test_code15_part_declaring_huge_rows_is_refused_unread(tmp_path: Path) -> None:
    import h5py

    source = tmp_path / "code15"
    source.mkdir()
    with h5py.File(source / "exams_part0.hdf5", "w") as handle:
        # 2 KB on disk, 9.6 GB if a row were read: the shape is a claim.
        handle.create_dataset("tracings", shape=(2, 10**8, 12), dtype="f4", chunks=(1, 4096, 12))
        handle.create_dataset("exam_id", data=np.array([5, 0]))
    pd.DataFrame({"exam_id": [5], "patient_id": [1], "trace_file": ["exams_part0.hdf5"]}).to_csv(
        source / "exams.csv", index=False
    )
    ingest("code15", source, "c15", tmp_path / "store", mains_hz=60, progress=False)
    quarantine = pd.read_parquet(tmp_path / "store" / "quarantine.parquet")
    assert sorted(quarantine["reason"]) == ["unreadable", "unreadable"]
    assert quarantine["detail"].str.contains("exceed the cap").any()
