"""Escaping user-given text for Markdown, shared by the report and the protocols' tables.

Lives below both (:mod:`cape.report` imports the label-efficiency figure, and the
label-efficiency tables escape names the same way as the report), so neither imports
the other for it.
"""

from __future__ import annotations

import re

# Characters that would start markup, a link, an HTML tag or entity, or end a table cell.
_SPECIAL = re.compile(r"([\\`*_\[\]<>#|~&])")


def escape(value: object) -> str:
    """Text as literal Markdown: markup characters backslash-escaped, lines joined.

    Cohort, model and study names come from users: ``<script>`` must stay text,
    ``a|b`` must not split a table cell, and a newline must not start a heading.
    """
    return _SPECIAL.sub(r"\\\1", str(value).replace("\r", " ").replace("\n", " "))
