"""One store of the simulator's ``tiny`` preset and one small encoder per test session.

The store is the preset's ``harbor`` cohort with 30 patients (the training
cohort: 18 train patients after a 0.6/0.2/0.2 split) and ``jade`` with 12
(an out-of-distribution test cohort), simulated in their WFDB layout and
ingested as any real cohort is.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cape.store import CohortStore

COHORT_SIZES = {"harbor": 30, "jade": 12}


@pytest.fixture(autouse=True)
def one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> CohortStore:
    from cape.cli import main
    from cape.ingest import ingest
    from cape.simulator.generate import simulate
    from cape.simulator.presets import preset

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("label-efficiency")
    spec = preset("tiny")
    cohorts = [
        cohort.model_copy(update={"n_patients": COHORT_SIZES[cohort.name]})
        for cohort in spec.cohorts
        if cohort.name in COHORT_SIZES
    ]
    spec = spec.model_copy(update={"cohorts": cohorts})
    simulate(spec, root / "simulated", progress=False)
    for cohort in cohorts:
        ingest(
            cohort.output_format,
            root / "simulated" / cohort.name,
            cohort.name,
            root / "store",
            mains_hz=cohort.mains_hz,
            workers=1,
            progress=False,
        )
    assert main(["split", str(root / "store"), "--fractions", "0.6", "0.2", "0.2"]) == 0
    return CohortStore.open(root / "store")


@pytest.fixture(scope="session")
def encoder_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An ``encoder.safetensors`` of the small preset on 1 s windows (an initialisation)."""
    from cape.pretrain import build_model, export_encoder, load_config

    config = load_config(None, ["model.preset=small", "crop_seconds=1.0", "seed=7"])
    path = tmp_path_factory.mktemp("encoder") / "encoder.safetensors"
    export_encoder(build_model(config).encoder, config, path)
    return path


def fast_settings(store: CohortStore, encoder: Path, out: Path) -> list[str]:
    """``--set`` overrides for a run of seconds: 1 epoch, tiny heads, one thread."""
    return [
        f"store={store.path}",
        f"encoder={encoder}",
        f"out_dir={out}",
        "cohort=harbor",
        "device=cpu",
        "threads=1",
        "progress=false",
        "bootstrap_resamples=50",
        "finetune.epochs=1",
        "finetune.batch_size=8",
        "finetune.num_workers=0",
        "finetune.head_hidden_sizes=[16]",
        "finetune.standardise_samples=32",
        "finetune.eval_batch_size=64",
        "mlp.max_epochs=5",
        "mlp.hidden_sizes=[16]",
    ]
