import numpy as np
import pandas as pd

from cape.describe import describe_cohorts, to_markdown


def test_describe_counts_and_age_stats():
    manifest = pd.DataFrame(
        {
            "cohort": ["a", "a", "a", "b"],
            "patient_id": ["1", "1", "2", "9"],
            "age": [40.0, 42.0, 70.0, np.nan],
            "sex": ["M", "M", "F", "F"],
            "device": ["x", "x", "y", "z"],
        }
    )
    table = describe_cohorts(manifest)
    a = table.loc["a"]
    assert a["patients"] == 2 and a["ecgs"] == 3 and a["patients_with_2plus_ecgs"] == 1
    assert a["age_mean"] == np.mean([40, 42, 70])
    assert a["age_q1"] == np.percentile([40, 42, 70], 25)
    assert a["male_patients"] == 1 and a["female_pct"] == 50.0
    assert a["device_counts"] == "x: 2; y: 1"
    assert table.loc["b", "female_patients"] == 1
    markdown = to_markdown(table)
    assert markdown.splitlines()[0].startswith("| cohort | patients")
