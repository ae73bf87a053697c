"""Property-based checks: NT-Xent against the naive loop, and the sampler's invariants.

``derandomize=True``: the examples are a fixed function of each test, so CI is
reproducible; ``max_examples`` keeps each property to a few seconds.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from cape.losses import nt_xent_loss
from cape.samplers import PairBatchSampler, PatientTable

from .test_losses import naive_nt_xent

torch.set_num_threads(1)

PROPERTY = settings(max_examples=40, derandomize=True, deadline=None, database=None)


# ---- NT-Xent -------------------------------------------------------------------------------------


@PROPERTY
@given(
    n=st.integers(1, 7),
    dim=st.integers(1, 6),
    temperature=st.sampled_from([0.05, 0.1, 0.5, 1.0, 3.0]),
    masked=st.booleans(),
    n_cohorts=st.integers(1, 3),
    seed=st.integers(0, 2**32 - 1),
)
def test_nt_xent_equals_the_naive_loop(
    n: int, dim: int, temperature: float, masked: bool, n_cohorts: int, seed: int
) -> None:
    """Loss and gradients equal the textbook double loop for any batch size,
    dimension, temperature and cohort mask (including one patient, one dimension,
    and masks that leave a view no negative at all).

    float64 on both sides: the loss is a log-sum-exp of at most 14 terms of
    size <= 1/0.05 = 20, so both sides agree to ~1e-14 relative; 1e-9 is slack
    for any CPU. Gradients pass through one more normalisation: 1e-7.
    """
    generator = torch.Generator().manual_seed(seed)
    z_a = torch.randn(n, dim, generator=generator, dtype=torch.float64, requires_grad=True)
    z_b = torch.randn(n, dim, generator=generator, dtype=torch.float64, requires_grad=True)
    cohorts = torch.randint(0, n_cohorts, (n,), generator=generator) if masked else None
    out = nt_xent_loss(z_a, z_b, temperature, cohorts)
    reference = naive_nt_xent(
        z_a, z_b, temperature, cohorts.tolist() if cohorts is not None else None
    )
    torch.testing.assert_close(out.loss, reference, rtol=1e-9, atol=1e-12)
    grads = torch.autograd.grad(out.loss, (z_a, z_b))
    expected = torch.autograd.grad(reference, (z_a, z_b))
    for grad, want in zip(grads, expected, strict=True):
        torch.testing.assert_close(grad, want, rtol=1e-7, atol=1e-10)


# ---- sampler ------------------------------------------------------------------------------------


@st.composite
def cohort_manifests(draw: st.DrawFn) -> pd.DataFrame:
    """1-3 cohorts of 0-12 patients with 1-4 ECGs each (one-ECG patients are ineligible);
    patient ids repeat across cohorts, rows are shuffled."""
    rows = []
    for c in range(draw(st.integers(1, 3))):
        counts = draw(st.lists(st.integers(1, 4), min_size=0, max_size=12))
        for p, count in enumerate(counts):
            rows += [{"cohort": f"c{c}", "patient_id": f"p{p}", "split": "train"}] * count
    assume(rows)
    order = np.random.default_rng(draw(st.integers(0, 2**16))).permutation(len(rows))
    return pd.DataFrame([rows[k] for k in order]).reset_index(drop=True)


@PROPERTY
@given(
    manifest=cohort_manifests(),
    world=st.sampled_from([1, 2]),
    per_rank=st.integers(1, 3),
    batching=st.sampled_from(["random", "idb", "idb-mask"]),
    epoch=st.integers(0, 5),
    seed=st.integers(0, 2**16),
)
def test_sampler_invariants(
    manifest: pd.DataFrame, world: int, per_rank: int, batching: str, epoch: int, seed: int
) -> None:
    """For any cohort sizes, batch size, world size and epoch:

    - each key's pair is two different ECGs of one patient, of the key's cohort;
    - no patient appears twice in an epoch, and the patients left out are fewer
      than one batch (per cohort under ``idb``; cohorts smaller than a batch are
      dropped whole under ``small_cohorts="drop"``);
    - the ranks' slices of a step are disjoint and together one global batch,
      with consecutive positions;
    - under ``idb`` every global batch holds one cohort -- the same on every rank.
    """
    batch = world * per_rank
    patients = manifest.groupby(["cohort", "patient_id"]).size()
    eligible = patients[patients >= 2]
    per_cohort = eligible.groupby(level="cohort").size()
    if batching == "idb":
        assume((per_cohort >= batch).any())
    else:
        assume(len(eligible) >= batch)
    table = PatientTable.from_manifest(manifest, exclude_splits=())
    samplers = [
        PairBatchSampler(table, batch, batching, seed, rank, world, small_cohorts="drop")  # type: ignore[arg-type]
        for rank in range(world)
    ]
    for sampler in samplers:
        sampler.set_epoch(epoch)
    steps = [list(sampler) for sampler in samplers]
    assert all(len(s) == samplers[0].steps_per_epoch for s in steps)

    cohort_of = manifest["cohort"].to_numpy()
    patient_of = manifest["patient_id"].to_numpy()
    seen: Counter[tuple[str, str]] = Counter()
    for step, keys in enumerate(zip(*steps, strict=True)):
        positions = np.concatenate([key.positions for key in keys])
        np.testing.assert_array_equal(positions, step * batch + np.arange(batch))
        global_cohorts = np.concatenate([key.cohorts for key in keys])
        for key in keys:
            assert key.epoch == epoch and key.step == step
            assert key.single_cohort == bool((global_cohorts == global_cohorts[0]).all())
            for a, b, code in zip(key.record_a, key.record_b, key.cohorts, strict=True):
                assert a != b
                assert (cohort_of[a], patient_of[a]) == (cohort_of[b], patient_of[b])
                assert cohort_of[a] == table.cohort_names[code]
                seen[(cohort_of[a], patient_of[a])] += 1
        if batching == "idb":
            assert len(set(global_cohorts.tolist())) == 1 and keys[0].single_cohort

    assert max(seen.values(), default=1) == 1  # nobody twice in an epoch
    if batching == "idb":
        for cohort, n in per_cohort.items():
            used = sum(1 for c, _ in seen if c == cohort)
            assert used == (n // batch) * batch  # small cohorts (n < batch) dropped whole
    else:
        assert len(seen) == (len(eligible) // batch) * batch
