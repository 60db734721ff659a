"""ONNX Runtime's CUDA session and its stream (issue 16, finding 10), on the CPU.

ORT fixes ``user_compute_stream`` when the session is created; a session created while one torch stream
was current used to keep running on that stream later, unordered against the caller's current stream.
Each CUDA session now owns a stream (``StreamBridge``) and orders it both ways against torch's current
stream at every run. Here onnxruntime's provider list, torch's CUDA check and the CUDA operations are
stand-ins (no GPU); the real CUDA EP runs in ``pytest -m gpu`` (benchmarks/gpu.sh).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from fprt.runtime.backends import onnx_backend

from runtime_testkit import make_onnx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "export"))
from fake_tensorrt import FakeCuda  # noqa: E402


def test_cuda_session_gets_its_own_stream_ordered_against_torchs(tmp_path, monkeypatch):
    import onnxruntime as ort

    path, _, _ = make_onnx(tmp_path / "m.onnx")
    cuda = FakeCuda()
    made = {}
    real_session = ort.InferenceSession

    class RecordingSession:
        def __init__(self, data, sess_options=None, providers=None):
            made["providers"] = providers
            self._s = real_session(data, sess_options=sess_options, providers=["CPUExecutionProvider"])

        def get_providers(self):
            return ["CUDAExecutionProvider", "CPUExecutionProvider"]

        def __getattr__(self, name):
            return getattr(self._s, name)

    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    monkeypatch.setattr(ort, "InferenceSession", RecordingSession)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    monkeypatch.setattr(onnx_backend, "TorchCuda", lambda: cuda)
    session = onnx_backend._Session(Path(path), device="cuda", threads=1, ort_tensorrt=False, spinning=False)
    name, opts = made["providers"][0]
    assert name == "CUDAExecutionProvider" and opts["device_id"] == 1
    own = session.bridge.handle
    assert opts["user_compute_stream"] == str(own) and own != cuda.torch_stream.handle  # not torch's stream of the moment
    assert ("new_stream", own, "cuda:1") in cuda.events  # made on the session's device
    cuda.events.clear()
    with session.bridge.enqueue([torch.zeros(1)]) as handle:
        assert handle == own
    assert [e for e in cuda.events if e[0] == "wait"] == [("wait", own, cuda.torch_stream.handle),
                                                          ("wait", cuda.torch_stream.handle, own)]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU visible to torch")
def test_ort_cuda_session_on_a_side_stream_matches_cpu(tmp_path):  # pragma: no cover - GPU machines only
    import numpy as np
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("onnxruntime without the CUDA EP")
    path, _, _ = make_onnx(tmp_path / "m.onnx")
    cpu = onnx_backend._Session(Path(path), device="cpu", threads=1, ort_tensorrt=False, spinning=False)
    gpu = onnx_backend._Session(Path(path), device="cuda", threads=1, ort_tensorrt=False, spinning=False)
    x = np.random.default_rng(0).random((4, 1, 32, 32), dtype=np.float32)
    ref = cpu.run({"image": x})
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):  # another stream than at session creation
        out = gpu.run_cuda({"image": torch.from_numpy(x).cuda()})
        got = {k: v.cpu().numpy() for k, v in out.items()}
    for k in ref:
        np.testing.assert_allclose(got[k], ref[k], rtol=1e-4, atol=1e-5)
