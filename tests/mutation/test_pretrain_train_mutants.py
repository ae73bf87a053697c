"""Tests that kill mutmut's surviving mutants of cape.pretrain.train (docs/testing.md).

Mutant names are mutmut 3.8.1's (``scripts/mutation.sh pretrain-train``); each docstring names
the mutants it kills and the bug they stand for. Prefixes are shortened: ``resolve_device_N``
is ``x_resolve_device__mutmut_N``, ``Window.add_N`` is ``xǁ_Windowǁadd__mutmut_N``.

Every mutant costs a run of this module's tests, so the tests here are fast: the helpers are
tested directly with fakes (a fake CUDA, a fake ``torch.distributed`` environment, a fake
clock), and the few runs of ``pretrain`` are one epoch of two steps on a tiny store.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import types
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
import torch

from cape import dist
from cape.errors import CapeError
from cape.losses import ContrastiveOutput
from cape.pretrain import load_config, pretrain
from cape.pretrain import train as train_module
from cape.pretrain.checkpoint import load_checkpoint
from cape.pretrain.train import (
    _Window,
    open_store,
    resolve_device,
    signal_digest,
    start_process,
    store_fingerprint,
)

torch.set_num_threads(1)


def tiny_overrides(out_dir: Path) -> list[str]:
    """Settings for a fast CPU run (as tests/pretrain/helpers.py): small encoder, 2 s views."""
    return [
        f"out_dir={out_dir}",
        "model.preset=small",
        "crop_seconds=2.0",
        "batch_patients=4",
        "epochs=2",
        "lr=0.001",
        "device=cpu",
        "num_workers=0",
        "threads=1",
        "progress=false",
        "log_every_steps=2",
        "batching=idb",
    ]


class RunStore:
    """In-memory store for ``pretrain``: cohorts ``a`` and ``b`` of four patients with two
    ECGs each (8 leads x 4000 samples of noise), so that ``batch_patients=4`` makes one
    batch per cohort: two steps per epoch. ``small_cohort`` adds a cohort ``c`` of two
    patients, smaller than one batch."""

    def __init__(self, small_cohort: bool = False) -> None:
        patients = {"a": 4, "b": 4, "c": 2} if small_cohort else {"a": 4, "b": 4}
        self.manifest = pd.DataFrame(
            [
                {
                    "record_id": f"{c}-{p}-{k}",
                    "patient_id": f"P{p}",
                    "cohort": c,
                    "valid_length": 4000,
                    "split": "train",
                }
                for c, n in patients.items()
                for p in range(n)
                for k in range(2)
            ]
        )
        rng = np.random.default_rng(0)
        self.signals = rng.standard_normal((len(self.manifest), 8, 4000)).astype(np.float32)
        self.valid_lengths = self.manifest["valid_length"].to_numpy(np.int32)

    def __len__(self) -> int:
        return len(self.manifest)

    def read(self, index: int) -> np.ndarray:
        return self.signals[index].copy()

    def fingerprint(self) -> str:
        return "run-store"


def raises_exactly(error: type[Exception], message: str):  # type: ignore[no-untyped-def]
    """``pytest.raises`` whose message must equal ``message`` (``match`` only searches, so a
    message wrapped in ``XX...XX`` would still match)."""

    class _Check:
        def __enter__(self):  # type: ignore[no-untyped-def]
            self.context = pytest.raises(error)
            self.info = self.context.__enter__()
            return self.info

        def __exit__(self, *exc):  # type: ignore[no-untyped-def]
            handled = self.context.__exit__(*exc)
            assert str(self.info.value) == message
            return handled

    return _Check()


# ---- resolve_device, open_store ----------------------------------------------------------------

NO_GPU = "device=cuda but no CUDA GPU is available; use device=auto or cpu"


def test_cuda_without_a_gpu_is_refused_with_the_exact_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Kills resolve_device_3/4 (the ``"cuda"`` comparison misspelt: the request falls
    through to ``torch.device("cuda")`` and fails later, without the advice), 6-9 (the
    message dropped or changed)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with raises_exactly(CapeError, NO_GPU):
        resolve_device("cuda")


def test_device_settings_resolve_with_and_without_a_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """Kills resolve_device_5 (``not`` dropped: cuda refused exactly when a GPU exists),
    10 (``kind != "auto"``: ``cpu`` becomes cuda on a GPU machine), 11/12 (``"auto"``
    misspelt: passed to ``torch.device`` as it is), 13-19 (the auto choice ``None``, always
    CPU, always CUDA, or misspelt device names)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")
    assert resolve_device("cuda") == torch.device("cuda")
    assert resolve_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device("cpu") == torch.device("cpu")


def test_missing_store_message(tmp_path: Path) -> None:
    """Kills open_store_3/4 (the advice of the message changed)."""
    config = load_config(None, tiny_overrides(tmp_path / "run"))
    with raises_exactly(
        CapeError,
        "pretraining needs a store: set `store:` in the config or --set store=PATH",
    ):
        open_store(config)


# ---- signal_digest, store_fingerprint -------------------------------------------------------


class Store:
    """``n`` records of 8 x 5 distinct values; remembers which records were read. With
    ``hashes`` the manifest has a ``signal_hash`` column. No ``fingerprint`` method, so
    :func:`store_fingerprint` hashes the manifest."""

    def __init__(self, n: int, hashes: list[str] | None = None, index: list[int] | None = None):
        columns: dict[str, object] = {
            "cohort": ["a"] * n,
            "patient_id": [f"P{i}" for i in range(n)],
        }
        if hashes is not None:
            columns["signal_hash"] = hashes
        self.manifest = pd.DataFrame(columns, index=index)
        self.signals = np.arange(n * 40, dtype=np.float32).reshape(n, 8, 5)
        self.indices: list[int] = []

    def __len__(self) -> int:
        return len(self.manifest)

    def read(self, index: int) -> np.ndarray:
        self.indices.append(index)
        return self.signals[index].copy()


def expected_digest(store: Store, picks: list[int]) -> str:
    """The documented digest, by hand: the ``signal_hash`` column hashed without the index,
    then the samples of the picked records."""
    hasher = hashlib.sha256()
    if "signal_hash" in store.manifest.columns:
        hashed = pd.util.hash_pandas_object(store.manifest["signal_hash"], index=False)
        hasher.update(hashed.to_numpy().tobytes())
    for index in picks:
        hasher.update(store.signals[index].tobytes())
    return hasher.hexdigest()[:16]


def test_signal_digest_reads_evenly_spaced_records_first_and_last_included() -> None:
    """Kills signal_digest_24 (``linspace(1, ...)``: the first record never read), 26
    (``n - 2``: the last never read), 23 (``num`` dropped: NumPy's default of 50 records
    instead of ``n_records``), 32 (``read(None)``: the digest no longer depends on the
    signals), 35 (17 hex digits instead of 16)."""
    store = Store(10)
    digest = signal_digest(store, n_records=3)
    assert store.indices == [0, 4, 9]  # linspace(0, 9, 3) = 0, 4.5, 9; 4.5 rounds to even
    assert digest == expected_digest(store, [0, 4, 9]) and len(digest) == 16
    big = Store(200)
    signal_digest(big)
    assert len(big.indices) == 64 and big.indices[0] == 0 and big.indices[-1] == 199
    small = Store(5)
    signal_digest(small)
    assert small.indices == [0, 1, 2, 3, 4]  # fewer records than n_records: each once
    before = signal_digest(Store(5))
    changed = Store(5)
    changed.signals[2, 3, 1] += 1.0
    assert signal_digest(changed) != before


def test_signal_digest_includes_the_signal_hash_column_but_not_the_row_labels() -> None:
    """Kills signal_digest_2/3 (the column's name misspelt: the per-ECG hashes ignored),
    5/6/8/10/11/13 (the column's hashes replaced by ``None``, or the column misspelt: a
    crash), 9/12 (hashed with the row index: a manifest re-indexed (e.g. filtered and
    concatenated) changes the digest of identical signals)."""
    hashes = ["h0", "h1", "h2", "h3"]
    store = Store(4, hashes)
    digest = signal_digest(store)
    assert digest == expected_digest(store, [0, 1, 2, 3])
    assert digest != signal_digest(Store(4))
    assert digest != signal_digest(Store(4, ["h0", "h1", "h2", "hX"]))
    assert signal_digest(Store(4, hashes, index=[7, 8, 9, 10])) == digest


def test_store_fingerprint_without_a_fingerprint_method_hashes_the_manifest_with_its_index() -> (
    None
):
    """Kills store_fingerprint_6 (``getattr`` without a default: a store with no
    ``fingerprint`` method raises AttributeError), 12-15/17-20 (the manifest's hash replaced
    by ``None``, hashed without its index, or cut to 17 digits)."""
    store = Store(3)
    hashed = pd.util.hash_pandas_object(store.manifest, index=True).to_numpy()
    manifest = hashlib.sha256(hashed.tobytes()).hexdigest()[:16]
    assert store_fingerprint(store) == f"{manifest}-{signal_digest(Store(3))}"
    with_method = Store(3)
    with_method.fingerprint = lambda: 12345  # type: ignore[attr-defined]
    assert store_fingerprint(with_method) == f"12345-{signal_digest(Store(3))}"


# ---- start_process ----------------------------------------------------------------------------


@pytest.fixture
def fake_env(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """``start_process`` with its side effects recorded instead of applied."""
    calls: dict[str, list] = {"init": [], "deterministic": [], "threads": []}

    def init_from_env(use_cuda: bool) -> dist.DistInfo:
        calls["init"].append(use_cuda)
        return dist.DistInfo(rank=1, world_size=2, local_rank=3, backend="fake")

    monkeypatch.setattr(dist, "init_from_env", init_from_env)
    monkeypatch.setattr(dist, "is_distributed", lambda: False)
    monkeypatch.setattr(torch, "use_deterministic_algorithms", calls["deterministic"].append)
    monkeypatch.setattr(torch, "set_num_threads", calls["threads"].append)
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    return calls


def test_start_process_on_cpu(fake_env, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """Kills start_process_3/4 (``owns_process_group`` None or inverted: a run that created
    its process group never shuts it down), 6/7 (``init_from_env`` not told ``False`` on
    CPU: it would pick NCCL and bind a GPU), 21-29 (``CUBLAS_WORKSPACE_CONFIG`` not set or set
    to another key or value, deterministic algorithms not switched on)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    info, device, owns = start_process("cpu", 2, True)
    assert info.local_rank == 3 and device == torch.device("cpu") and owns is True
    assert fake_env["init"] == [False] and fake_env["init"][0] is False
    assert fake_env["threads"] == [2]
    assert fake_env["deterministic"] == [True] and fake_env["deterministic"][0] is True
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    # A value set by the user is kept; a non-deterministic run sets nothing.
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":16:8")
    start_process("cpu", None, True)
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":16:8"
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG")
    _, _, owns = start_process("cpu", None, False)
    assert "CUBLAS_WORKSPACE_CONFIG" not in os.environ and fake_env["threads"] == [2]
    assert fake_env["deterministic"] == [True, True]
    monkeypatch.setattr(dist, "is_distributed", lambda: True)
    assert start_process("cpu", None, False)[2] is False  # joined an existing group


def test_start_process_binds_the_local_rank_gpu(fake_env, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """Kills start_process_11/16/17 (the CUDA device not re-indexed by ``LOCAL_RANK``, or
    built as ``torch.device(local_rank)`` / ``"CUDA"``): every rank would train on GPU 0.
    No GPU is needed: ``torch.device("cuda", 3)`` is only a name."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    _, device, _ = start_process("cuda", None, False)
    assert device == torch.device("cuda", 3)
    assert fake_env["init"] == [True]


# ---- _Window ----------------------------------------------------------------------------------


def output(loss: float, positive: float, negative: float) -> ContrastiveOutput:
    return ContrastiveOutput(
        loss=torch.tensor(loss, dtype=torch.float64),
        positive_similarity=torch.tensor(positive, dtype=torch.float64),
        negative_similarity=torch.tensor(negative, dtype=torch.float64),
    )


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_window_means_counts_and_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    """Kills Window.__init___4/7 (the sums in the default float32: 0.1 + 0.2 no longer
    exact in float64), 13 (``ecgs`` starting at 1), Window.add_12 (a step without negatives
    adding 1 instead of 0 to the negative sum), 18/19 (``ecgs`` overwritten or subtracted),
    Window.summary_8 (``perf_counter() + started``), 18 (the loss sum multiplied by the
    steps), 40 (``ecgs * seconds``), 43/44 (the ``seconds`` key renamed)."""
    clock = Clock(100.0)
    monkeypatch.setattr(train_module.time, "perf_counter", clock)
    window = _Window(torch.device("cpu"))
    window.add(output(0.1, 0.5, 0.25), True, 8)
    window.add(output(0.2, 0.25, float("nan")), False, 8)  # no negatives in this batch
    window.add(output(0.3, 0.75, 0.5), True, 8)
    assert window.sums.dtype == torch.float64
    clock.now = 104.0
    summary = window.summary()
    assert summary == {
        "loss": (0.1 + 0.2 + 0.3) / 3,
        "positive_similarity": 0.5,
        "negative_similarity": 0.375,
        "single_cohort_fraction": 2 / 3,
        "ecgs_per_s": 6.0,
        "steps": 3,
        "seconds": 4.0,
    }


def test_window_short_and_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    """Kills Window.summary_9 (the floor on the elapsed time raised from 1e-9 s to ~1 s: a
    window shorter than a second reports a wrong rate), 27 (the NaN guard dropped: a window
    whose batches had no negatives divides by zero), 32/33 (``float(None)``,
    ``float("XXnanXX")``: a crash)."""
    clock = Clock(10.0)
    monkeypatch.setattr(train_module.time, "perf_counter", clock)
    window = _Window(torch.device("cpu"))
    window.add(output(1.0, 0.5, float("nan")), True, 8)
    clock.now = 10.5
    summary = window.summary()
    assert summary["ecgs_per_s"] == 16.0 and summary["seconds"] == 0.5
    assert np.isnan(summary["negative_similarity"])
    clock.now = 10.0
    empty = _Window(torch.device("cpu")).summary()
    assert empty["seconds"] == 1e-9 and empty["steps"] == 0 and empty["loss"] == 0.0


def test_window_sums_live_on_the_training_device() -> None:
    """Kills Window.__init___5/8 (``device`` dropped: the sums on the CPU while the step's
    statistics are on the GPU -- a device mismatch in ``add``, found here on the ``meta``
    device)."""
    assert _Window(torch.device("meta")).sums.device == torch.device("meta")


# ---- _tensorboard_writer and a short run -------------------------------------------------------


class FakeWriter:
    instances: ClassVar[list[FakeWriter]] = []

    def __init__(self, log_dir: str) -> None:
        self.log_dir = log_dir
        self.scalars: list[tuple[str, float, int]] = []
        self.closed = False
        FakeWriter.instances.append(self)

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        self.scalars.append((tag, value, step))

    def close(self) -> None:
        self.closed = True


def tiny_run(tmp_path: Path, *extra: str) -> list[str]:
    return [
        *tiny_overrides(tmp_path / "run"),
        "epochs=1",
        "log_every_steps=1",
        *extra,
    ]


def test_tensorboard_missing_package_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kills _tensorboard_writer_1-3 (the install advice dropped or changed)."""
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails
    config = load_config(None, tiny_run(tmp_path, "tensorboard=true"))
    with raises_exactly(
        CapeError, "tensorboard: true needs the tensorboard package (pip install tensorboard)"
    ):
        pretrain(config, store=RunStore())


def test_one_epoch_run_logs_provenance_checkpoint_and_tensorboard(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A one-epoch run of two steps, every step logged, started with relative paths from
    another directory: the exact record keys and step numbering, the provenance facts, the
    checkpoint's position, the TensorBoard scalars and what the run hands its helpers.

    Kills _tensorboard_writer_4/5 (the writer's ``log_dir`` lost); x_pretrain_3-5/10/11 (the
    store and out_dir paths not made absolute in the saved config: it could not be re-run
    from elsewhere), x_pretrain_15/16 (``threads`` or ``deterministic`` not passed on);
    _pretrain_31/38 (``small_cohorts`` not passed to the sampler: ``drop`` ignored),
    _pretrain_51/57 (``pin_memory`` not ``False`` on the CPU); the loop's record keys,
    step counters, provenance facts and checkpoint fingerprints.
    """
    module = types.ModuleType("torch.utils.tensorboard")
    module.SummaryWriter = FakeWriter  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", module)
    FakeWriter.instances.clear()
    processes: list[tuple] = []
    real_start = train_module.start_process

    def start_process(device: str, threads: int | None, deterministic: bool):  # type: ignore[no-untyped-def]
        processes.append((device, threads, deterministic))
        return real_start(device, threads, False)  # leave torch's global determinism alone

    loaders: list[dict] = []
    real_loader = train_module.make_loader

    def make_loader(*args, **kwargs):  # type: ignore[no-untyped-def]
        loaders.append(kwargs)
        return real_loader(*args, **kwargs)

    monkeypatch.setattr(train_module, "start_process", start_process)
    monkeypatch.setattr(train_module, "make_loader", make_loader)
    monkeypatch.chdir(tmp_path)
    store = RunStore(small_cohort=True)
    settings = [
        *tiny_run(tmp_path, "tensorboard=true", "deterministic=true", "small_cohorts=drop"),
        "out_dir=run",
        "store=data/s",
    ]
    config = load_config(None, settings)
    run_dir = pretrain(config, store=store)
    records = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    summary_keys = {
        "loss",
        "positive_similarity",
        "negative_similarity",
        "single_cohort_fraction",
        "ecgs_per_s",
        "steps",
        "seconds",
    }
    assert [r["kind"] for r in records] == ["step", "step", "epoch"]
    for k, record in enumerate(records[:2]):
        assert set(record) == {"kind", "epoch", "step", "lr", "global_step"} | summary_keys
        assert (record["epoch"], record["step"], record["global_step"]) == (0, k, k + 1)
        assert record["steps"] == 1 and record["single_cohort_fraction"] == 1.0
    epoch = records[2]
    assert set(epoch) == {"kind", "epoch", "global_step"} | summary_keys
    assert (epoch["epoch"], epoch["global_step"], epoch["steps"]) == (0, 2, 2)

    assert run_dir == tmp_path / "run"
    saved = load_config(run_dir / "config.yaml")
    assert Path(saved.out_dir) == run_dir and Path(saved.store) == tmp_path / "data" / "s"
    assert processes == [("cpu", 1, True)]
    assert len(loaders) == 1 and loaders[0]["pin_memory"] is False

    facts = json.loads((run_dir / "provenance.json").read_text())
    assert {k: facts[k] for k in ("world_size", "device", "store_path", "steps_per_epoch")} == {
        "world_size": 1,
        "device": "cpu",
        "store_path": str(tmp_path / "data" / "s"),
        "steps_per_epoch": 2,
    }
    assert facts["store_fingerprint"] == store_fingerprint(store)
    assert facts["patients_per_cohort"] == {"a": 4, "b": 4, "c": 2}
    assert facts["skipped_cohorts"] == ["c"] and facts["resumed_at_step"] is None
    assert len(facts["selection_fingerprint"]) > 0

    checkpoint = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert (checkpoint["epoch"], checkpoint["step_in_epoch"], checkpoint["global_step"]) == (
        1,
        0,
        2,
    )
    assert checkpoint["store_fingerprint"] == facts["store_fingerprint"]
    assert checkpoint["selection_fingerprint"] == facts["selection_fingerprint"]

    (writer,) = FakeWriter.instances
    assert writer.log_dir == str(run_dir / "tensorboard") and writer.closed
    tags = ["loss", "lr", "ecgs_per_s", "positive_similarity", "negative_similarity"]
    tags.append("single_cohort_fraction")
    assert writer.scalars == [
        (f"train/{tag}", records[k][tag], k + 1) for k in range(2) for tag in tags
    ]


def test_store_at_another_rate_is_refused(tmp_path: Path) -> None:
    """The loop refuses a store that is not at 400 Hz, naming the store and its rate."""
    store = RunStore()
    store.sampling_rate_hz = 500  # type: ignore[attr-defined]
    config = load_config(None, tiny_run(tmp_path))
    with raises_exactly(CapeError, "store None is at 500 Hz; pretraining expects 400 Hz"):
        pretrain(config, store=store)


class Crash(Exception):
    """Stands in for a process killed mid-epoch."""


def crash_at(step: int):  # type: ignore[no-untyped-def]
    def callback(global_step: int) -> None:
        if global_step == step:
            raise Crash

    return callback


def test_mid_epoch_checkpoint_and_resume_provenance(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run checkpointed after step 1 (mid-epoch) and killed after logging step 2: the
    checkpoint says where to continue; ``--resume`` logs where it resumes and the dropped log
    line, writes ``provenance-resume-1.json`` with ``resumed_at_step: 1``, keeps the original
    config and provenance, and finishes the epoch; a second run in the same directory
    without ``--resume`` is refused with the exact advice.

    Kills _pretrain_163/206/474 (the resume, dropped-lines and epoch log messages changed),
    116 (the checkpoint's path not given to ``check_resumable``: its errors name ``None``),
    146/147 (``restore_rng`` without the seed or dropout stream: a resume on another world
    size reseeds dropout from ``None``), 166 (the refusal's advice changed), and the resume
    path's checkpoint keys and provenance file name.
    """
    store = RunStore()
    config = load_config(None, tiny_run(tmp_path, "checkpoint_every_steps=1", "seed=11"))
    with pytest.raises(Crash):
        pretrain(config, store=store, step_callback=crash_at(2))
    calls: dict[str, tuple] = {}
    real_check, real_restore = train_module.check_resumable, train_module.restore_rng

    def check_resumable(*args):  # type: ignore[no-untyped-def]
        calls["check"] = args
        return real_check(*args)

    def restore_rng(*args):  # type: ignore[no-untyped-def]
        calls["restore"] = args
        return real_restore(*args)

    monkeypatch.setattr(train_module, "check_resumable", check_resumable)
    monkeypatch.setattr(train_module, "restore_rng", restore_rng)
    run_dir = tmp_path / "run"
    saved = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert (saved["epoch"], saved["step_in_epoch"], saved["global_step"]) == (0, 1, 1)
    first = (run_dir / "provenance.json").read_text()
    seen: list[int] = []
    with caplog.at_level(logging.INFO, logger="cape.pretrain.train"):
        pretrain(config, store=store, resume=True, step_callback=seen.append)
    messages = [r.getMessage() for r in caplog.records if r.name == "cape.pretrain.train"]
    assert messages[:2] == [
        "resuming at epoch 0 step 1",
        "dropped 1 log lines past the checkpoint's step 1",
    ]
    assert messages[2].startswith("epoch 0: {'kind': 'epoch', 'epoch': 0, 'global_step': 2, ")
    assert seen == [2]
    last = run_dir / "checkpoints" / "last.pt"
    assert calls["check"][1] == last  # named in check_resumable's errors
    assert calls["restore"][1:] == (0, 1, 11, 4, 1)  # rank, world size, seed, stream, step
    resumed = json.loads((run_dir / "provenance-resume-1.json").read_text())
    assert resumed["resumed_at_step"] == 1 and resumed["steps_per_epoch"] == 2
    assert (run_dir / "provenance.json").read_text() == first
    records = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    assert [(r["kind"], r["global_step"]) for r in records] == [
        ("step", 1),
        ("step", 2),
        ("epoch", 2),
    ]
    assert records[2]["steps"] == 1  # the resumed epoch's window holds only its own step
    final = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert (final["epoch"], final["step_in_epoch"], final["global_step"]) == (1, 0, 2)
    with raises_exactly(
        CapeError,
        f"{run_dir} already holds a run ({run_dir / 'checkpoints' / 'last.pt'}); pass --resume "
        "to continue it or choose another out_dir",
    ):
        pretrain(config, store=store)


def test_resume_without_a_checkpoint_warns_and_float64_trains_in_float64(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """``--resume`` in a directory without a checkpoint warns (exact message) and starts
    afresh; ``precision=float64`` trains and saves float64 weights.

    Kills _pretrain_105 (the warning's text changed) and 70 (``"float64"`` misspelt: a
    float64 run silently trains in float32).
    """
    config = load_config(None, tiny_run(tmp_path, "precision=float64"))
    with caplog.at_level(logging.WARNING, logger="cape.pretrain.train"):
        run_dir = pretrain(config, store=RunStore(), resume=True)
    last = run_dir / "checkpoints" / "last.pt"
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        f"{run_dir} has no checkpoint yet ({last}): --resume starts the run from the beginning"
    ]
    weights = load_checkpoint(last)["model"]
    assert {t.dtype for t in weights.values() if t.is_floating_point()} == {torch.float64}


def test_a_cohort_smaller_than_a_batch_is_an_error_by_default(tmp_path: Path) -> None:
    """Kills _pretrain_31 (``small_cohorts`` passed as ``None``: the sampler then drops the
    small cohort silently instead of refusing it as configured)."""
    config = load_config(None, tiny_run(tmp_path))
    with pytest.raises(CapeError, match=r"cohorts \['c'\] have fewer"):
        pretrain(config, store=RunStore(small_cohort=True))


def test_several_processes_wrap_the_model_in_ddp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a job of two processes (faked: rank 0 of 2, no process group; the DDP wrapper
    replaced by a recorder) the model is wrapped once, with ``device_ids=None`` on the CPU.

    Kills _pretrain_176 (``world_size > 2``: a two-process job trains unsynchronised
    replicas), 177/178/180 (the wrapper dropped or given no model), 181/183/184 (the CPU
    wrapper given ``device_ids`` of ``[None]`` or none at all).
    """
    info = dist.DistInfo(rank=0, world_size=2, local_rank=0, backend="gloo")
    monkeypatch.setattr(
        train_module, "start_process", lambda *args: (info, torch.device("cpu"), False)
    )
    wrapped: list[tuple] = []

    def ddp(*args, **kwargs):  # type: ignore[no-untyped-def]
        wrapped.append((args, kwargs))
        return args[0]

    monkeypatch.setattr(train_module, "DistributedDataParallel", ddp)
    run_dir = pretrain(load_config(None, tiny_run(tmp_path)), store=RunStore())
    assert len(wrapped) == 1
    (args, kwargs) = wrapped[0]
    assert (
        len(args) == 1 and isinstance(args[0], torch.nn.Module) and kwargs == {"device_ids": None}
    )
    assert json.loads((run_dir / "provenance.json").read_text())["world_size"] == 2


# --------------------------------------------------------------------------- second round
# Survivors of the --survivors run of 2026-12-03 (707 mutants, 90.8 % killed).


class RecordingBar:
    """Stands in for tqdm in the training loop: records its arguments and calls."""

    made: ClassVar[list[RecordingBar]] = []

    def __init__(self, **kwargs: object) -> None:
        self.kwargs = kwargs
        self.updates: list[object] = []
        self.postfixes: list[dict[str, object]] = []
        RecordingBar.made.append(self)

    def update(self, n: object) -> None:
        self.updates.append(n)

    def set_postfix(self, **kwargs: object) -> None:
        self.postfixes.append(kwargs)

    def close(self) -> None:
        pass


def test_epoch_boundary_resume_bars_rates_and_cpu_precision(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two epochs of two steps, killed after the first step of epoch 2 and resumed from
    the epoch-boundary checkpoint, into a run directory whose parents do not exist yet.

    Kills _pretrain_289 (the epoch loop restarting at epoch 0 on resume: epoch 1 trained
    twice, the schedule overrun), 192/194/196 (the run directory's parents not created),
    304-318 (the progress bar's total, start, "epoch k/n" text, on/off switch or
    ``leave``), 380/381 (the bar advanced by another amount), 400-403 (the loss or lr
    dropped from the bar), 378/379 (ECGs counted per step other than 2 x batch_patients:
    a wrong ECG/s rate) and 352 (autocast switched on by default: CPU float32 training
    silently in bfloat16).
    """
    RecordingBar.made.clear()
    monkeypatch.setattr(train_module, "tqdm", RecordingBar)
    autocasts: list[dict[str, object]] = []
    real_autocast = torch.autocast

    def autocast(*args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        context = real_autocast(*args, **kwargs)  # type: ignore[arg-type]
        autocasts.append({"enabled": context.fast_dtype is not None and context._enabled})
        return context

    monkeypatch.setattr(torch, "autocast", autocast)
    out = tmp_path / "not" / "yet" / "run"
    overrides = [*tiny_overrides(out), "log_every_steps=1", "progress=true"]
    config = load_config(None, overrides)
    store = RunStore()
    with pytest.raises(Crash):
        pretrain(config, store=store, step_callback=crash_at(3))
    saved = load_checkpoint(out / "checkpoints" / "last.pt")
    assert (saved["epoch"], saved["step_in_epoch"], saved["global_step"]) == (1, 0, 2)
    seen: list[int] = []
    pretrain(config, store=store, resume=True, step_callback=seen.append)
    assert seen == [3, 4]
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [(r["kind"], r["epoch"], r["global_step"]) for r in records] == [
        ("step", 0, 1),
        ("step", 0, 2),
        ("epoch", 0, 2),
        ("step", 1, 3),
        ("step", 1, 4),
        ("epoch", 1, 4),
    ]
    for record in records:
        ecgs = record["ecgs_per_s"] * record["seconds"]
        assert ecgs == pytest.approx(2 * 4 * record["steps"], rel=1e-9)
    first, killed, resumed = RecordingBar.made
    assert first.kwargs == {
        "total": 2,
        "initial": 0,
        "desc": "epoch 1/2",
        "disable": False,
        "leave": False,
    }
    assert killed.kwargs["desc"] == "epoch 2/2" and resumed.kwargs["desc"] == "epoch 2/2"
    assert first.updates == [1, 1] and resumed.updates == [1, 1]
    assert [sorted(p) for p in first.postfixes] == [["loss", "lr"], ["loss", "lr"]]
    loss = next(r["loss"] for r in records if r["global_step"] == 1)
    assert first.postfixes[0]["loss"] == f"{loss:.4f}"
    assert first.postfixes[0]["lr"] == f"{records[0]['lr']:.1e}"
    assert autocasts and not any(a["enabled"] for a in autocasts)


def test_compile_wraps_the_training_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Kills _pretrain_187/188 (``compile: true`` ignored or compiling nothing). The real
    ``torch.compile`` needs a C++ toolchain on CPU; a pass-through spy stands in."""
    compiled: list[torch.nn.Module] = []

    def spy(module: torch.nn.Module) -> torch.nn.Module:
        compiled.append(module)
        return module

    monkeypatch.setattr(torch, "compile", spy)
    config = load_config(None, tiny_run(tmp_path, "compile=true"))
    pretrain(config, store=RunStore())
    assert len(compiled) == 1 and isinstance(compiled[0], torch.nn.Module)
    assert any(p.requires_grad for p in compiled[0].parameters())
