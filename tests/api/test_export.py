"""`cape export`: the folder loads back through cape.load_encoder, through the plain-PyTorch
code of docs/api.md, and (as ONNX) through ONNX Runtime, each checked against the encoder."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import cape
from cape.cli import main as cape_main
from cape.export import export_encoder_folder
from cape.preprocessing import PreprocessingConfig
from cape.pretrain import export_encoder
from cape.pretrain.config import save_config
from cape.pretrain.rundir import RunDir, write_json
from cape.store import HEADER_FILE, new_header, write_json_atomic

from .helpers import small_encoder

DOCS = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def _run_dir(root: Path, overrides: list[str]) -> Path:
    """A run directory as `cape pretrain` leaves it (config, provenance, encoder), untrained
    weights with non-trivial batch-norm statistics."""
    encoder, config = small_encoder(["seed=5", f"out_dir={root}", *overrides], seed=1)
    run = RunDir(root)
    root.mkdir(parents=True)
    save_config(config, run.config)
    write_json(run.provenance, {"git_revision": "abc123", "cape_version": cape.__version__})
    export_encoder(encoder, config, run.encoder)
    return root


def _windows(n: int, samples: int) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(0).normal(0, 0.5, (n, 8, samples)).astype("f4"))


def test_export_round_trip_and_config(tmp_path: Path, capsys):
    torch.set_num_threads(1)
    run = _run_dir(tmp_path / "run", ["crop_seconds=3.0"])
    assert cape_main(["export", str(run), "--out", str(tmp_path / "out")]) == 0
    assert "model.safetensors" in capsys.readouterr().out
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == [
        "README.md",
        "config.json",
        "model.safetensors",
    ]
    config = json.loads((out / "config.json").read_text())
    assert config["architecture"]["input_samples"] == 1200
    contract = config["signal_contract"]
    assert contract["leads"] == ["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"]
    assert (contract["sampling_rate_hz"], contract["units"], contract["window_samples"]) == (
        400,
        "mV",
        1200,
    )
    assert contract["preprocessing"]["lowpass_hz"] == 100.0
    assert config["provenance"]["run"]["git_revision"] == "abc123"
    assert config["provenance"]["training_config"]["crop_seconds"] == 3.0
    # Same weights, same architecture: the features are bit-identical.
    original, exported = cape.load_encoder(run), cape.load_encoder(out)
    signals = np.random.default_rng(1).normal(0, 0.3, (2, 12, 4500))
    np.testing.assert_array_equal(
        exported.embed(signals, sampling_rate=450), original.embed(signals, sampling_rate=450)
    )
    # An export exports again, unchanged.
    export_encoder_folder(out, tmp_path / "again")
    again = json.loads((tmp_path / "again" / "config.json").read_text())
    assert again["architecture"] == config["architecture"]
    assert again["signal_contract"] == config["signal_contract"]
    assert cape_main(["export", str(tmp_path / "none"), "--out", str(tmp_path / "x")]) == 1


def test_run_reads_its_stores_preprocessing(tmp_path: Path):
    """A store ingested with other filter settings: the encoder (and its export) use them."""
    store = tmp_path / "store"
    store.mkdir()
    header = new_header()
    settings = PreprocessingConfig(lowpass_hz=40.0).to_dict()
    header["cohorts"] = {"a": {"preprocessing": settings}, "b": {"preprocessing": settings}}
    write_json_atomic(store / HEADER_FILE, header)
    run = _run_dir(tmp_path / "run", ["crop_seconds=2.0", f"store={store}"])
    assert cape.load_encoder(run).preprocessing == PreprocessingConfig(lowpass_hz=40.0)
    export_encoder_folder(run, tmp_path / "out")
    assert cape.load_encoder(tmp_path / "out").preprocessing.lowpass_hz == 40.0


def _plain_pytorch_block() -> str:
    text = DOCS.read_text()
    match = re.search(r"<!-- plain-pytorch[^>]*-->\s*```python\n(.*?)```", text, re.S)
    assert match, "docs/api.md lost its plain-PyTorch block"
    return match.group(1)


@pytest.mark.parametrize("pooling", ["avg", "flatten"])
def test_plain_pytorch_code_in_docs(tmp_path: Path, pooling: str):
    """The docs' functional forward pass, an independent implementation, matches the model."""
    torch.set_num_threads(1)
    run = _run_dir(tmp_path / "run", ["crop_seconds=2.0", f"model.pooling={pooling}"])
    export_encoder_folder(run, tmp_path / "exports" / "idb")
    code = _plain_pytorch_block().replace("exports/idb", str(tmp_path / "exports" / "idb"))
    namespace: dict[str, object] = {}
    exec(compile(code, str(DOCS), "exec"), namespace)
    x = _windows(3, 800)
    module = cape.load_encoder(tmp_path / "exports" / "idb").module
    with torch.no_grad():
        expected = module(x)
    got = namespace["encode"](x)  # type: ignore[operator]
    # Same arithmetic in another order (conv1d vs 1 x k conv2d, channels-last): float32
    # rounding, ~1e-7 relative per operation over a few thousand-term sums.
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5 * float(expected.abs().max()))


@pytest.mark.slow
def test_onnx_matches_pytorch(tmp_path: Path):
    """ONNX Runtime against PyTorch on the same windows, with batch sizes other than the
    export's example (the batch axis is dynamic)."""
    import onnxruntime

    torch.set_num_threads(1)
    run = _run_dir(tmp_path / "run", ["crop_seconds=2.0", "model.pooling=flatten"])
    out = tmp_path / "out"
    assert cape_main(["export", str(run), "--out", str(out), "--format", "onnx"]) == 0
    encoder = cape.load_encoder(out)
    session = onnxruntime.InferenceSession(
        str(out / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    assert session.get_inputs()[0].name == "signals"
    for n in (1, 5):
        x = _windows(n, 800)
        with torch.no_grad():
            expected = encoder.module(x).numpy()
        got = session.run(None, {"signals": x.numpy()})[0]
        assert got.shape == expected.shape
        # float32 in both; the kernels differ (oneDNN vs MLAS): rounding only.
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5 * np.abs(expected).max())
    # Exporting again without ONNX leaves no model.onnx of other weights behind.
    export_encoder_folder(run, out)
    assert not (out / "model.onnx").exists()
