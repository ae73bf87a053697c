"""The marker file of a study's stage folders, shared by the runner that writes it and the
report that reads it.

:mod:`cape.study.runner` writes ``.stage.json`` into every stage folder (the
stage's content hash, its status ``running``/``done``, start and end times);
:mod:`cape.report.collect` reads it back. The name lives here, below both, so
that the report does not import the study runner, whose stages import the
report.
"""

from __future__ import annotations

MARKER = ".stage.json"
