"""Backends: selection from the model file, --backend/--device errors, ONNX and torch outputs
against a NumPy oracle, uint8-input graphs, pair scorers, and the picklable BackendSpec."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from fprt.errors import FprtError, MissingDependencyError, ModelError
from fprt.runtime.backends import BackendSpec, load_backend, physical_cores

from runtime_testkit import make_onnx, reference_embed, torch_pool_module


def _pixels(rng, n=5, size=32):
    return rng.integers(0, 256, size=(n, size, size), dtype=np.uint8)


def test_onnx_embedding_matches_oracle_and_meta(tmp_path, rng):
    path, meta, w = make_onnx(tmp_path / "m.onnx", centroids=[[0.0] * 16] * 3)
    b = load_backend(path)
    assert b.format == "onnx" and b.meta == meta and b.kind == "embedding"
    assert b.details["providers"] == ["CPUExecutionProvider"]
    assert b.threads == physical_cores()
    px = _pixels(rng)
    out = b.infer(px)
    assert set(out) == {"embedding"}
    np.testing.assert_allclose(out["embedding"], reference_embed(px, w, 4), rtol=1e-5, atol=1e-5)
    from fprt.io import sha256_file

    assert b.model_sha256 == sha256_file(path)
    assert b.describe()["model_sha256"] == b.model_sha256


def test_onnx_uint8_input_graph_gets_raw_pixels(tmp_path, rng):
    path, _, w = make_onnx(tmp_path / "u8.onnx", uint8_input=True)
    b = load_backend(path)
    assert b.uint8_input
    px = _pixels(rng)
    np.testing.assert_allclose(b.infer(px)["embedding"], reference_embed(px, w, 4), rtol=1e-5, atol=1e-5)


def test_onnx_classifier_and_pair(tmp_path, rng):
    path, _, (w, wc) = make_onnx(tmp_path / "c.onnx", kind="classifier")
    out = load_backend(path).infer(_pixels(rng))
    assert set(out) == {"logits", "embedding"}
    np.testing.assert_allclose(out["logits"], out["embedding"] @ wc, rtol=1e-4, atol=1e-5)

    path, _, w = make_onnx(tmp_path / "p.onnx", kind="pair", task="membership")
    b = load_backend(path)
    a, c = _pixels(rng), _pixels(rng)
    ea, ec = reference_embed(a, w, 4), reference_embed(c, w, 4)
    cos = (ea * ec).sum(1) / np.linalg.norm(ea, axis=1) / np.linalg.norm(ec, axis=1)
    np.testing.assert_allclose(b.pair_probability(a, c), 1 / (1 + np.exp(-4 * cos)), rtol=1e-5)
    np.testing.assert_allclose(b.infer(a)["embedding"], ea, rtol=1e-5, atol=1e-5)
    (tmp_path / "p.embed.onnx").unlink()
    with pytest.raises(ModelError, match="embed graph"):
        load_backend(path)


def test_torch_backend_equals_onnx(tmp_path, rng):
    from fprt.runtime.backends.torch_backend import TorchBackend

    path, meta, w = make_onnx(tmp_path / "m.onnx")
    tb = TorchBackend("in-memory", module=torch_pool_module(w, 4), meta=meta)
    px = _pixels(rng, n=7)
    np.testing.assert_allclose(tb.infer(px)["embedding"], load_backend(path).infer(px)["embedding"], rtol=1e-5, atol=1e-5)
    assert len(tb.model_sha256) == 64


def test_backend_selection_and_errors(tmp_path):
    path, _, _ = make_onnx(tmp_path / "m.onnx")
    with pytest.raises(FprtError, match="Did you mean 'onnx'"):
        load_backend(path, backend="onnnx")
    with pytest.raises(FprtError, match="that is a onnx model"):
        load_backend(path, backend="torch")
    with pytest.raises(FprtError, match="Did you mean 'cuda'"):
        load_backend(path, device="cuad")
    with pytest.raises(ModelError, match="no such model"):
        load_backend(tmp_path / "missing.onnx")
    (tmp_path / "m.pkl").write_bytes(b"x")
    with pytest.raises(ModelError, match="cannot tell the model format"):
        load_backend(tmp_path / "m.pkl")
    (tmp_path / "bad.onnx").write_bytes(b"not an onnx file")
    with pytest.raises(ModelError, match="bad.onnx: ONNX Runtime cannot load"):
        load_backend(tmp_path / "bad.onnx")
    (tmp_path / "e.plan").write_bytes(b"x")
    with pytest.raises(FprtError, match="GPU only"):
        load_backend(tmp_path / "e.plan")


def test_foreign_onnx_without_fprt_metadata(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    g = helper.make_graph(
        [helper.make_node("Identity", ["image"], ["embedding"])],
        "g",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", 4])],
    )
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(tmp_path / "f.onnx"))
    with pytest.raises(ModelError, match="not exported by `fprt export-onnx`"):
        load_backend(tmp_path / "f.onnx")


def test_cuda_requested_without_cuda_fails_loudly(tmp_path):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this machine has the CUDA EP; the missing-CUDA error cannot be provoked")
    path, _, _ = make_onnx(tmp_path / "m.onnx")
    with pytest.raises(MissingDependencyError, match="no CUDAExecutionProvider"):
        load_backend(path, device="cuda")


def test_backend_spec_is_picklable_and_loads(tmp_path, rng):
    path, _, w = make_onnx(tmp_path / "m.onnx")
    spec = pickle.loads(pickle.dumps(BackendSpec(str(path), threads=1)))
    b = spec.load()
    assert b.threads == 1
    px = _pixels(rng, n=2)
    np.testing.assert_allclose(b.infer(px)["embedding"], reference_embed(px, w, 4), rtol=1e-5, atol=1e-5)


class _FakeRunner:
    """Stands in for fprt.export.tensorrt.TensorRTRunner on the CPU: the pool model in torch."""

    def __init__(self, w, uint8):
        import torch

        self.inputs, self.outputs = ["image"], ["embedding"]
        self.device = torch.device("cpu")
        self.dtypes = {"image": torch.uint8 if uint8 else torch.float32, "embedding": torch.float32}
        self.net = torch_pool_module(w, 4)
        self.uint8 = uint8
        self.seen = []

    def __call__(self, **named):
        import torch

        x = named["image"]
        self.seen.append(x.dtype)
        with torch.no_grad():
            return {"embedding": self.net(x.float() / 255.0 if self.uint8 else x)}


@pytest.mark.parametrize("uint8", [False, True])
def test_tensorrt_adapter_with_fake_runner(tmp_path, rng, monkeypatch, uint8):
    import torch

    from fprt.export import tensorrt as trt_export

    _, meta, w = make_onnx(tmp_path / "m.onnx")
    plan = tmp_path / "m.plan"
    plan.write_bytes(b"engine bytes")
    runner = _FakeRunner(w, uint8)
    monkeypatch.setattr(trt_export, "load_engine", lambda path, **kw: (runner, meta))
    b = load_backend(plan, device="cuda")
    assert b.format == "tensorrt" and b.meta == meta
    px = _pixels(rng)
    out = b.infer(px)["embedding"]
    assert isinstance(out, torch.Tensor)
    np.testing.assert_allclose(out.numpy(), reference_embed(px, w, 4), rtol=1e-5, atol=1e-5)
    assert runner.seen == [torch.uint8 if uint8 else torch.float32]
