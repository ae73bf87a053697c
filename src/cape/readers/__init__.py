"""Format readers: one module per source format, all behind :class:`Reader`.

``READERS`` maps the format name used on the command line and in study files
to its reader class; :func:`get_reader` builds one. See ``docs/readers.md``
for each format's layout and options.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cape.errors import CapeError
from cape.readers.base import Reader, ReadTask
from cape.readers.code15 import Code15Reader
from cape.readers.dicom import DicomReader
from cape.readers.muse import MuseReader
from cape.readers.ptbxl import PTBXLReader
from cape.readers.wfdb_folder import WFDBFolderReader

READERS: dict[str, type[Reader]] = {
    "ptbxl": PTBXLReader,
    "code15": Code15Reader,
    "wfdb": WFDBFolderReader,
    "dicom": DicomReader,
    "muse": MuseReader,
}


def get_reader(format_name: str, source: str | Path, cohort: str, **options: Any) -> Reader:
    """Build the reader for ``format_name``.

    Args:
        format_name: one of :data:`READERS` (``ptbxl``, ``code15``, ``wfdb``, ``dicom``, ``muse``).
        source: the dataset folder (or one file, for ``dicom`` and ``muse``).
        cohort: cohort name the records will carry.
        **options: reader-specific options (see each reader's docstring).

    Raises:
        CapeError: unknown format, or the reader rejects the source or an option.
    """
    try:
        reader_class = READERS[format_name]
    except KeyError:
        raise CapeError(
            f"unknown input format {format_name!r}; choose one of {', '.join(READERS)}"
        ) from None
    return reader_class(source, cohort, **options)


__all__ = [
    "READERS",
    "Code15Reader",
    "DicomReader",
    "MuseReader",
    "PTBXLReader",
    "ReadTask",
    "Reader",
    "WFDBFolderReader",
    "get_reader",
]
