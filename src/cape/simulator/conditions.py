"""The diagnostic conditions the simulator can give a patient, and their labels.

Each condition carries the label it gets in the formats CAPE reads: the
PTB-XL SCP code with its diagnostic superclass and subclass (as in PTB-XL's
``scp_statements.csv``) and, where CODE-15% has one, its boolean column.
How each condition changes the ECG is in :mod:`cape.simulator.physiology`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Condition:
    """A condition and its labels.

    Attributes:
        scp_code: PTB-XL SCP-ECG statement code; also the key in cohort specs.
        description: PTB-XL's description of the statement.
        superclass: PTB-XL diagnostic class (NORM, MI, STTC, CD, HYP); ``None``
            for rhythm statements, which are not diagnostic in PTB-XL.
        subclass: PTB-XL diagnostic subclass; ``None`` for rhythm statements.
        code15_column: CODE-15% ``exams.csv`` column that flags it, if any.
        odds_ratio_per_decade: how the odds of having the condition grow per
            decade of age (scaled by the age-effect knob). Rough literature
            orders of magnitude: AF prevalence roughly doubles per decade
            after 50; conduction disease, LVH and prior MI rise more slowly.
    """

    scp_code: str
    description: str
    superclass: str | None
    subclass: str | None
    code15_column: str | None
    odds_ratio_per_decade: float


CONDITIONS: dict[str, Condition] = {
    c.scp_code: c
    for c in (
        Condition("CRBBB", "complete right bundle branch block", "CD", "CRBBB", "RBBB", 1.4),
        Condition("IRBBB", "incomplete right bundle branch block", "CD", "IRBBB", None, 1.1),
        Condition("CLBBB", "complete left bundle branch block", "CD", "CLBBB", "LBBB", 1.5),
        Condition("1AVB", "first degree AV block", "CD", "_AVB", "1dAVb", 1.4),
        Condition("AFIB", "atrial fibrillation", None, None, "AF", 2.0),
        Condition("LVH", "left ventricular hypertrophy", "HYP", "LVH", None, 1.3),
        Condition("IMI", "inferior myocardial infarction", "MI", "IMI", None, 1.5),
        Condition("AMI", "anterior myocardial infarction", "MI", "AMI", None, 1.5),
        Condition("ISC_", "non-specific ischemic", "STTC", "ISC_", None, 1.4),
    )
}
"""Conditions keyed by SCP code, in the column order used everywhere."""

CONDITION_CODES: tuple[str, ...] = tuple(CONDITIONS)

# Pairs that exclude each other: when both are drawn the first one wins
# (a complete block subsumes the incomplete form; LBBB masks RBBB).
EXCLUSIVE_PAIRS: tuple[tuple[str, str], ...] = (
    ("CLBBB", "CRBBB"),
    ("CLBBB", "IRBBB"),
    ("CRBBB", "IRBBB"),
)

# Rows of PTB-XL's scp_statements.csv for every code the simulator writes:
# the diagnostic ones above plus NORM and the rhythm statements.
# Columns: description, diagnostic, form, rhythm, diagnostic_class,
# diagnostic_subclass, Statement Category.
SCP_STATEMENTS: dict[str, tuple[str, float, float, float, str, str, str]] = {
    "NORM": ("normal ECG", 1.0, float("nan"), float("nan"), "NORM", "NORM", "Normal/abnormal"),
    "IMI": (
        "inferior myocardial infarction",
        1.0,
        float("nan"),
        float("nan"),
        "MI",
        "IMI",
        "Myocardial Infarction",
    ),
    "AMI": (
        "anterior myocardial infarction",
        1.0,
        float("nan"),
        float("nan"),
        "MI",
        "AMI",
        "Myocardial Infarction",
    ),
    "LVH": (
        "left ventricular hypertrophy",
        1.0,
        float("nan"),
        float("nan"),
        "HYP",
        "LVH",
        "Ventricular Hypertrophy",
    ),
    "ISC_": (
        "non-specific ischemic",
        1.0,
        float("nan"),
        float("nan"),
        "STTC",
        "ISC_",
        "Basic roots for coding ST-T changes and abnormalities",
    ),
    "IRBBB": (
        "incomplete right bundle branch block",
        1.0,
        float("nan"),
        float("nan"),
        "CD",
        "IRBBB",
        "Intraventricular and intra-atrial Conduction disturbances",
    ),
    "CRBBB": (
        "complete right bundle branch block",
        1.0,
        float("nan"),
        float("nan"),
        "CD",
        "CRBBB",
        "Intraventricular and intra-atrial Conduction disturbances",
    ),
    "CLBBB": (
        "complete left bundle branch block",
        1.0,
        float("nan"),
        float("nan"),
        "CD",
        "CLBBB",
        "Intraventricular and intra-atrial Conduction disturbances",
    ),
    "1AVB": (
        "first degree AV block",
        1.0,
        float("nan"),
        float("nan"),
        "CD",
        "_AVB",
        "Sinus node dysfunction, atrial and AV-conduction defects",
    ),
    "SR": (
        "sinus rhythm",
        float("nan"),
        float("nan"),
        1.0,
        "",
        "",
        "Statements related to impulse formation (abnormalities)",
    ),
    "AFIB": (
        "atrial fibrillation",
        float("nan"),
        float("nan"),
        1.0,
        "",
        "",
        "Statements related to impulse formation (abnormalities)",
    ),
    "STACH": (
        "sinus tachycardia",
        float("nan"),
        float("nan"),
        1.0,
        "",
        "",
        "Statements related to impulse formation (abnormalities)",
    ),
    "SBRAD": (
        "sinus bradycardia",
        float("nan"),
        float("nan"),
        1.0,
        "",
        "",
        "Statements related to impulse formation (abnormalities)",
    ),
}

# Rate limits of the rhythm labels. PTB-XL's SBRAD/STACH follow the usual
# 60/100 bpm limits; CODE-15%'s SB/ST columns use < 50 and > 100 bpm
# (Ribeiro et al., Nat Commun 2020, Table of abnormalities).
PTBXL_BRADY_BPM = 60.0
CODE15_BRADY_BPM = 50.0
TACHY_BPM = 100.0
