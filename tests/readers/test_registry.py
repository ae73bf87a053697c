from __future__ import annotations

import pickle
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file

from cape.errors import CapeError
from cape.readers import READERS, get_reader
from cape.readers.base import Reader

from .conftest import read_all


def test_registry_names_match_reader_classes():
    assert set(READERS) == {"ptbxl", "code15", "wfdb", "dicom", "muse"}
    for name, reader_class in READERS.items():
        assert issubclass(reader_class, Reader)
        assert reader_class.format_name == name


def test_unknown_format_is_a_cape_error(tmp_path):
    with pytest.raises(CapeError, match="unknown input format 'scp'"):
        get_reader("scp", tmp_path, "c")


def test_get_reader_passes_options(ptbxl_tree):
    reader = get_reader("ptbxl", ptbxl_tree.root, "ptb", sampling_rate=100)
    assert reader.cohort == "ptb"
    assert {r.sampling_rate_hz for r in read_all(reader)[0]} == {100.0}


def test_readers_survive_pickling_after_use(ptbxl_tree, code15_tree):
    sources = {
        "ptbxl": ptbxl_tree.root,
        "code15": code15_tree.root,
        "dicom": Path(get_testdata_file("waveform_ecg.dcm")),
    }
    for name, source in sources.items():
        reader = get_reader(name, source, name)
        expected = read_all(reader)  # fills the readers' lazy caches
        clone = pickle.loads(pickle.dumps(reader))
        again = read_all(clone)
        assert [r.record_id for r in again[0]] == [r.record_id for r in expected[0]]
        assert [r.reason for r in again[1]] == [r.reason for r in expected[1]]
