"""Report sections about the run itself: the claims summary, cohorts, pretraining, provenance."""

from __future__ import annotations

import json

import pandas as pd
import yaml

from cape.report import figures, power, sanity, tables
from cape.report.claims import compared_models
from cape.report.context import ReportContext
from cape.report.controls import UNTRAINED, control_lines, controls_from_data
from cape.report.document import BulletList, CodeBlock, Paragraph, Section, TableBlock
from cape.report.simulation import read_simulation, summary_lines

VERDICT_WORDS = {
    "agrees": "This run AGREES",
    "disagrees": "This run DISAGREES",
    "no difference": "This run finds NO DIFFERENCE beyond the declared margin",
    "inconclusive": "This run is INCONCLUSIVE",
    "not measured": "NOT MEASURED in this run",
}


def claims_section(context: ReportContext) -> Section:
    """What this run says about the paper's claims (verdicts computed from the results)."""
    section = Section("What this run says", "summary")
    pair = compared_models(context.data)
    pretrained = [m for m in context.data.model_order() if m != UNTRAINED]
    controls = controls_from_data(context.data, pair[0] if pair else None, pretrained)
    floors = power.power_table(context.data, pair, controls)
    headline = power.cannot_reach_verdict(floors)
    if headline:
        section.note(headline + ".")
    simulation = read_simulation(context.data)
    if simulation is not None:
        section.add(Paragraph(" ".join(summary_lines(simulation)) + " See the next section."))
    items, verdicts = [], []
    for claim in context.claims:
        text = f"Paper: {claim['claim']}. {VERDICT_WORDS[claim['verdict']]}"
        text += f" ({claim['reason']})." if claim["reason"] else "."
        if claim["measured"]:
            text += f" Measured: {claim['measured']}."
        for caveat in claim.get("caveats", []):
            text += f" Caveat: {caveat}."
        items.append(text)
        verdicts.append(claim["verdict"])
    section.add(BulletList(items, verdicts))
    if len(controls):
        section.add(
            Paragraph(
                "Positive controls (could this run have seen the effects? rules in docs/report.md):"
            )
        )
        section.add(BulletList(control_lines(controls), list(controls["verdict"])))
    checks = sanity.sanity_from_data(context.data, pair, controls, context.settings)
    section.add(
        Paragraph(
            "Sanity checks (can these results be trusted? they flag, they do not change the "
            "verdicts above; rules in docs/report.md):"
        )
    )
    section.add(BulletList(sanity.sanity_lines(checks), [c.status for c in checks]))
    if any(c.check == "signal" and c.status != sanity.NOT_MEASURED for c in checks):
        section.add(Paragraph(f"The {sanity.SIGNAL_EXPLAINED}."))
    if not floors.empty:
        section.add(
            TableBlock(
                power.power_display(floors),
                "Smallest p each test can give with this run's numbers (t-tests over "
                "encoder seeds: 0, their limit is power; exact Wilcoxon: 2 / 2^n with n "
                "matched heads; exact one-sided Mann-Whitney: 1 / C(n1 + n2, n1))",
                show_index=False,
            )
        )
    detail = tables.claims_table(context.claims)
    if not detail.empty:
        section.add(
            TableBlock(
                detail,
                "Claim 1 per target cohort: mean over encoder seeds [min–max of the per-seed "
                "means], paired Wilcoxon test over matched (encoder seed, run) heads",
                show_index=False,
            )
        )
    section.add(
        Paragraph(
            "How verdicts are decided: a target cohort agrees with claim 1 when the paired "
            "Wilcoxon test gives p < alpha (the protocol's alpha, 0.05 by default) and every "
            "encoder seed's mean favours IDB; it disagrees when p < alpha and every seed favours "
            "random batching; anything else is inconclusive. Claim 1 agrees (disagrees) when "
            "more than half of the target cohorts do and none says the opposite. Claim 2 "
            "agrees when every random-batch seed identifies the cohort more accurately than "
            "every IDB seed (bootstrap 95% intervals not overlapping when there is one seed). "
            "See docs/report.md."
        )
    )
    if context.pair:
        section.add(
            Paragraph(
                f"Compared models: {context.pair[0]} (random batching) and {context.pair[1]} "
                "(in-distribution batching), chosen from the pretraining configs."
            )
        )
    return section


def cohorts_section(context: ReportContext) -> Section:
    """Tables 1 and 2: cohort characteristics, quarantined inputs, age distribution."""
    data = context.data
    section = Section("Cohorts", "cohorts")
    if data.manifest is None:
        return section.note("No cohort store in this run directory: cohort tables skipped.")
    section.add(
        TableBlock(
            tables.cohort_table(data.manifest),
            "Cohort characteristics (the paper's Tables 1 and 2). Age per ECG at recording; "
            "sex per patient (most common recorded value); ethnicity and devices per ECG.",
        )
    )
    quarantine = tables.quarantine_table(data.quarantine)
    if quarantine.empty:
        section.add(Paragraph("No input was quarantined."))
    else:
        section.add(TableBlock(quarantine, "Quarantined inputs by cohort and reason"))
    figure = figures.age_distribution(data.manifest, context.cohort_colours)
    if figure is None:
        section.note("No ages recorded: age distribution skipped.")
    else:
        section.add(
            context.figure(
                figure,
                "age_distribution",
                "Age at recording per cohort (5-year bins, density; violins show median and "
                "range). Colours are the cohorts' throughout the report.",
                "age distribution per cohort",
            )
        )
    return section


def pretraining_section(context: ReportContext) -> Section:
    """Loss curves (encoder seeds overlaid) and a table of the runs."""
    runs = context.data.pretrain_runs
    section = Section("Pretraining", "pretraining")
    if not runs:
        return section.note("No pretraining runs (pretrain/) in this run directory.")
    order = [*(context.pair or ()), *context.data.model_order()]
    figure = figures.pretraining_curves(runs, context.model_colours, order)
    if figure is None:
        section.note("The pretraining logs (log.jsonl) are empty.")
    else:
        section.add(
            context.figure(
                figure,
                "pretraining_loss",
                "Contrastive training loss against optimizer step; thin lines are the logged "
                "step windows, markers the epoch means; line styles are encoder seeds. IDB "
                "and random-batch losses are not on the same scale: IDB's negatives come from "
                "one cohort, so they are typically harder.",
                "pretraining loss curves",
            )
        )
    rank = {m: k for k, m in enumerate(dict.fromkeys(order))}
    ordered = sorted(runs, key=lambda r: (rank.get(r.model, len(rank)), r.model, r.seed))
    section.add(TableBlock(tables.pretraining_table(ordered), "Pretraining runs"))
    return section


def _versions(context: ReportContext) -> dict[str, str]:
    """Software versions from the run's provenance, else from what the stages recorded."""
    data = context.data
    names = {
        "cape_version": "CAPE version",
        "git_revision": "git revision",
        "python": "Python",
        "torch": "PyTorch",
        "numpy": "NumPy",
    }
    sources = [data.provenance]
    # Pretraining and protocol runs record versions too (the study's provenance.json is
    # written after the report stage, so a first run's report finds only these).
    for run in data.pretrain_runs:
        sources.append(
            {
                "cape_version": run.provenance.get("cape_version"),
                "git_revision": run.provenance.get("git_revision"),
                "python": run.provenance.get("python_version"),
                "torch": run.provenance.get("torch_version"),
            }
        )
    for result in (data.ood, data.composition):
        if result is not None:
            sources.append(result.config)
    versions: dict[str, str] = {}
    for key, name in names.items():
        for source in sources:
            if source.get(key) is not None:
                versions[name] = str(source[key])
                break
    return versions


def _stages(context: ReportContext) -> pd.DataFrame:
    stages = context.data.provenance.get("stages") or {}
    rows = {
        label: {
            "content hash": str(s.get("key")),
            "status": "reused from cache" if s.get("skipped") else "ran",
        }
        for label, s in stages.items()
    }
    if not rows:  # no provenance.json yet: the stage folders' markers say the same
        rows = {
            label: {"content hash": str(m.get("key")), "status": str(m.get("status"))}
            for label, m in context.data.stage_markers.items()
        }
    frame = pd.DataFrame(rows).T
    frame.index.name = "stage"
    return frame


def provenance_section(context: ReportContext) -> Section:
    """The study config, software versions, stage hashes and the store fingerprint."""
    data = context.data
    section = Section("Provenance", "provenance")
    facts = _versions(context)
    if data.store_fingerprint:
        facts["store fingerprint"] = data.store_fingerprint
    header = data.store_header
    for key, name in (
        ("schema_version", "store schema version"),
        ("sampling_rate_hz", "store sampling rate (Hz)"),
        ("units", "store units"),
        ("slot_samples", "store slot (samples per lead)"),
    ):
        if key in header:
            facts[name] = str(header[key])
    if header.get("leads"):
        facts["store leads"] = " ".join(header["leads"])
    if facts:
        frame = pd.DataFrame({"value": facts})
        frame.index.name = "item"
        section.add(TableBlock(frame, "Versions and data"))
    cohorts = header.get("cohorts") or {}
    if cohorts:
        rows = {
            name: {
                "format": str(entry.get("format", "–")),
                "mains (Hz)": str(entry.get("mains_hz", "–")),
                "stored ECGs": str(entry.get("n_stored", "–")),
                "source rates (Hz)": ", ".join(sorted((entry.get("filter_plans") or {}).keys()))
                or "–",
            }
            for name, entry in cohorts.items()
        }
        frame = pd.DataFrame(rows).T
        frame.index.name = "cohort"
        section.add(TableBlock(frame, "Cohorts in the store header"))
    stages = _stages(context)
    if len(stages):
        section.add(TableBlock(stages, "Stage hashes (a changed hash means the stage reran)"))
    if data.study:
        text = yaml.safe_dump(data.study, sort_keys=False)
        section.add(CodeBlock(text, "The resolved study (study.yaml)"))
    else:
        section.note("No study.yaml in the run directory.")
    for result, name in ((data.ood, "out-of-distribution"), (data.composition, "composition")):
        if result is not None and result.config.get("settings"):
            settings = yaml.safe_dump(
                json.loads(json.dumps(result.config["settings"], default=str)), sort_keys=False
            )
            section.add(CodeBlock(settings, f"Protocol settings ({name})"))
    if data.messages:
        section.add(Paragraph("Inputs the report could not find or read:"))
        section.add(BulletList(list(data.messages)))
    return section
