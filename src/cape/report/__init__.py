"""The study report: what a run measured, in one self-contained HTML page and a Markdown file.

```python
from cape.report import summarise_claims, write_report
write_report("runs/demo", "runs/demo/report")      # report.html, report.md, figures/
for claim in summarise_claims("runs/demo"):
    print(claim["verdict"], claim["claim"])
```

The report reads what the study saved (:mod:`.collect`) and never recomputes
a result; the t-SNE pictures are the one computation. See ``docs/report.md``.
"""

from cape.report.build import HTML_FILE, MARKDOWN_FILE, build_document, write_report
from cape.report.claims import compared_models, summarise_claims
from cape.report.collect import RunData, collect
from cape.report.simulation import simulation_summary

__all__ = [
    "HTML_FILE",
    "MARKDOWN_FILE",
    "RunData",
    "build_document",
    "collect",
    "compared_models",
    "simulation_summary",
    "summarise_claims",
    "write_report",
]
