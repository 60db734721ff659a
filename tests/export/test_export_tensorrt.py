"""TensorRT: everything around the engine build that runs without TensorRT or a GPU.

Profiles, cache keys and the cache, the build plan per TensorRT version, the build call sequence and
the FP16 ONNX it builds from (against ``fake_tensorrt``, which has the documented TensorRT 10/11 API
surface), the runner's name-based binding against a fake engine that computes from the raw addresses
it is given, and the errors without TensorRT or a GPU. A real build runs only where TensorRT and CUDA
exist (skipped here, with the reason printed).
"""

from __future__ import annotations

import json
import sys

import numpy as np
import onnx
import pytest
import torch

from fprt.errors import FprtError, MissingDependencyError, ModelError
from fprt.export import export_onnx
from fprt.export import tensorrt as T
from fprt.export.engine_cache import BatchProfile, EngineCache, EngineKey, engine_matches, sidecar_path
from fprt.export.metadata import set_metadata

from export_testlib import make_model
from fake_tensorrt import FakeCuda, FakeEngine, make_fake_trt

CPU = (torch.device("cpu"), "Fake GPU 80GB", "9.0")  # injected device info: (device, name, compute capability)


@pytest.fixture(scope="module")
def onnx_files(tmp_path_factory):
    """fp32 and fp16 float-input exports of the tiny embedding model, a pair model (TorchScript exporter: fast), and
    the default export (uint8 input, the graph normalises)."""
    root = tmp_path_factory.mktemp("trt")
    model, meta = make_model("embedding")
    kw = dict(batch_sizes=(1, 2), exporter="torchscript", log=lambda s: None)
    fp32 = export_onnx(model, root / "m.onnx", meta=meta, uint8_input=False, **kw).path
    fp16 = export_onnx(model, root / "m16.onnx", meta=meta, fp16=True, uint8_input=False, **kw).path
    fp32_u8 = export_onnx(model, root / "m_u8.onnx", meta=meta, **kw).path
    pmodel, pmeta = make_model("pair")
    pair = export_onnx(pmodel, root / "p.onnx", meta=pmeta, uint8_input=False, **kw).path
    return {"fp32": fp32, "fp16": fp16, "fp32_u8": fp32_u8, "pair": pair, "model": model, "meta": meta}


# ---------------------------------------------------------------- profiles and keys
def test_profile_defaults_and_range_errors():
    assert BatchProfile.choose() == BatchProfile(1, 64, 256)
    assert BatchProfile.choose(max_batch=16) == BatchProfile(1, 16, 16)
    assert BatchProfile.choose(opt_batch=8) == BatchProfile(1, 8, 8)
    assert BatchProfile.choose(min_batch=128) == BatchProfile(128, 128, 256)
    assert BatchProfile(2, 4, 8).shapes((1, 64, 64)) == ((2, 1, 64, 64), (4, 1, 64, 64), (8, 1, 64, 64))
    with pytest.raises(FprtError, match="--min-batch 8 > --max-batch 4"):
        BatchProfile.choose(min_batch=8, max_batch=4)
    with pytest.raises(FprtError, match="--opt-batch 300 > --max-batch 256"):
        BatchProfile.choose(opt_batch=300, max_batch=256)
    with pytest.raises(FprtError, match="positive integer"):
        BatchProfile.choose(min_batch=0)
    with pytest.raises(ModelError, match=r"batch 300 is outside the engine's optimisation profile \(min 1, opt 64, max 256\)"):
        BatchProfile(1, 64, 256).check(300)
    BatchProfile(1, 64, 256).check(256)


def _key(**kw):
    base = dict(tensorrt_version="10.9.0", gpu_name="NVIDIA H100", compute_capability="9.0", onnx_sha256="a" * 64,
                precision="fp16", profile=(1, 64, 256), strongly_typed=False)
    return EngineKey(**{**base, **kw})


def test_engine_key_is_a_content_key():
    k = _key()
    assert k.digest() == _key().digest() and EngineKey.from_dict(json.loads(json.dumps(k.to_dict()))) == k
    for change in ({"tensorrt_version": "11.0.0"}, {"gpu_name": "NVIDIA A100"}, {"compute_capability": "8.0"},
                   {"onnx_sha256": "b" * 64}, {"precision": "fp32"}, {"profile": (1, 32, 256)}, {"strongly_typed": True}):
        other = _key(**change)
        assert other.digest() != k.digest()
        (field,) = change
        assert [m.split(":")[0] for m in k.mismatches(other)] == [field]
    assert k.machine_mismatches(tensorrt_version="10.9.0", gpu_name="NVIDIA H100", compute_capability="9.0") == []
    assert "gpu_name" in k.machine_mismatches(tensorrt_version="10.9.0", gpu_name="RTX 4090", compute_capability="8.9")[0]


def test_engine_cache_store_lookup_and_torn_files(tmp_path):
    cache = EngineCache(tmp_path / "engines")
    k = _key()
    assert cache.lookup(k) is None
    path = cache.store(k, b"PLAN" * 100, {"model": "x"}, {})
    assert cache.lookup(k) == path and path.name == f"{k.digest()}.plan"
    assert cache.lookup(_key(precision="fp32")) is None  # another key, another file
    path.write_bytes(b"PLAN" * 99)  # torn / modified engine
    assert cache.lookup(k) is None
    ok, why = engine_matches(path, k)
    assert not ok and "sha256" in why
    sidecar_path(path).write_text("{not json")
    ok, why = engine_matches(path, k)
    assert not ok and "corrupt engine record" in why


def test_default_cache_root_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv("FPRT_CACHE_DIR", str(tmp_path))
    assert EngineCache().root == tmp_path / "engines"


# ---------------------------------------------------------------- build plans
@pytest.mark.parametrize(
    "major, onnx_precision, fp16, expected",
    [
        (10, "fp32", False, T.BuildPlan("fp32", strongly_typed=False, fp16_flag=False, convert_fp16=False)),
        (10, "fp32", True, T.BuildPlan("fp16", strongly_typed=False, fp16_flag=True, convert_fp16=False)),
        (10, "fp16", False, T.BuildPlan("fp16", strongly_typed=True, fp16_flag=False, convert_fp16=False)),
        (11, "fp32", False, T.BuildPlan("fp32", strongly_typed=True, fp16_flag=False, convert_fp16=False)),
        (11, "fp32", True, T.BuildPlan("fp16", strongly_typed=True, fp16_flag=False, convert_fp16=True)),
        (11, "fp16", True, T.BuildPlan("fp16", strongly_typed=True, fp16_flag=False, convert_fp16=False)),
    ],
)
def test_build_plan_per_tensorrt_version(major, onnx_precision, fp16, expected):
    assert T.plan_build(major, onnx_precision, fp16) == expected
    trt = make_fake_trt(f"{major}.0.0")
    flags = T.network_flags(trt, major, expected)
    assert flags == (2 if (major == 10 and expected.strongly_typed) else 0)  # 1 << STRONGLY_TYPED on 10 only


def test_int8_onnx_is_refused_before_asking_for_tensorrt(onnx_files, tmp_path):
    from fprt.export.metadata import read_onnx

    proto, meta = read_onnx(onnx_files["fp32"])
    meta.extra["export"]["precision"] = "int8"
    set_metadata(proto, meta)
    path = tmp_path / "q.onnx"
    onnx.save(proto, str(path))
    with pytest.raises(ModelError, match="INT8 QDQ made for ONNX Runtime's CPU EP.*build the engine from the fp32 or fp16 export"):
        T.build_engine(path, tmp_path / "q.plan", log=lambda s: None)


# ---------------------------------------------------------------- missing TensorRT / GPU
def test_without_tensorrt_says_how_to_install(onnx_files, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import tensorrt → ImportError, even where it is installed
    with pytest.raises(MissingDependencyError, match=r"TensorRT is not installed .*pip install 'fprt\[gpu\]'"):
        T.build_engine(onnx_files["fp32"], tmp_path / "m.plan", log=lambda s: None)
    with pytest.raises(MissingDependencyError, match="TensorRT is not installed"):
        T.import_tensorrt()
    assert not (tmp_path / "m.plan").exists()


def test_too_old_tensorrt():
    with pytest.raises(MissingDependencyError, match="TensorRT 8.6.1 is too old: fprt needs TensorRT 10 or 11"):
        T.trt_major(make_fake_trt("8.6.1"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_without_gpu_says_what_is_missing(onnx_files, tmp_path):
    with pytest.raises(MissingDependencyError, match=r"no CUDA GPU is visible to PyTorch .*pip install 'fprt\[gpu\]'"):
        T.build_engine(onnx_files["fp32"], tmp_path / "m.plan", _trt=make_fake_trt("10.9.0"), log=lambda s: None)


def test_cli_build_engine_errors_exit_2(onnx_files, tmp_path, monkeypatch):
    from fprt.cli import main

    monkeypatch.setitem(sys.modules, "tensorrt", None)
    for argv, message in [
        ([str(onnx_files["fp32"]), "--out", str(tmp_path / "m.plan")], "TensorRT is not installed"),
        ([str(onnx_files["fp32"]), "--out", str(tmp_path / "m.plan"), "--min-batch", "9", "--max-batch", "3"], "--min-batch 9 > --max-batch 3"),
        ([str(onnx_files["fp32"]), "--out", str(tmp_path / "m.trt")], "must end in .plan or .engine"),
        ([str(tmp_path / "missing.onnx"), "--out", str(tmp_path / "m.plan")], "no such ONNX file"),
    ]:
        monkeypatch.setattr(sys, "argv", ["fprt", "build-engine", *argv])
        with pytest.raises(SystemExit) as exc:
            main()
        assert exc.value.code == 2


# ---------------------------------------------------------------- builds against the fake API
def test_build_on_tensorrt10_fp16_flag_profile_timing_cache_and_reuse(onnx_files, tmp_path):
    trt = make_fake_trt("10.9.0")
    out, tc = tmp_path / "m.plan", tmp_path / "timing.cache"
    lines = []
    r = T.build_engine(onnx_files["fp32"], out, fp16=True, opt_batch=16, max_batch=32, timing_cache=tc,
                       _trt=trt, _device_info=CPU, log=lines.append)
    assert r.reused is None and r.plan.fp16_flag and not r.plan.strongly_typed
    assert ("create_network", 0) in trt.calls and ("set_flag", "FP16") in trt.calls
    assert ("set_shape", "image", (1, 1, 64, 64), (16, 1, 64, 64), (32, 1, 64, 64)) in trt.calls
    assert ("set_timing_cache", False) in trt.calls and ("create_timing_cache", b"") in trt.calls
    assert tc.read_bytes() == b"+entry"  # the serialized timing cache was persisted
    record = json.loads(sidecar_path(out).read_text())
    assert record["key"]["precision"] == "fp16" and record["key"]["profile"] == [1, 16, 32]
    assert record["key"]["gpu_name"] == "Fake GPU 80GB" and record["meta"]["model"] == "tiny_embed"
    assert any("batch profile: min 1, opt 16, max 32" in ln for ln in lines)

    # same request: reused, nothing parsed or built
    n = len(trt.calls)
    r2 = T.build_engine(onnx_files["fp32"], out, fp16=True, opt_batch=16, max_batch=32, timing_cache=tc,
                        _trt=trt, _device_info=CPU, log=lambda s: None)
    assert r2.reused == "--out" and len(trt.calls) == n
    # another profile: the engine at --out does not match → rebuilt, and the timing cache is read back
    r3 = T.build_engine(onnx_files["fp32"], out, fp16=True, max_batch=64, timing_cache=tc,
                        _trt=trt, _device_info=CPU, log=lambda s: None)
    assert r3.reused is None and any("profile: engine has [1, 16, 32], needed [1, 64, 64]" in s for s in r3.notes)
    assert ("create_timing_cache", b"+entry") in trt.calls
    # another GPU: rebuilt, never loaded
    r4 = T.build_engine(onnx_files["fp32"], out, fp16=True, max_batch=64, _trt=trt,
                        _device_info=(torch.device("cpu"), "Other GPU", "8.0"), log=lambda s: None)
    assert r4.reused is None and any("gpu_name" in s for s in r4.notes)
    # --out deleted: found in the engine cache by key
    out.unlink()
    sidecar_path(out).unlink()
    r5 = T.build_engine(onnx_files["fp32"], out, fp16=True, max_batch=64, _trt=trt,
                        _device_info=(torch.device("cpu"), "Other GPU", "8.0"), log=lambda s: None)
    assert r5.reused.startswith("cache ") and out.exists()


@pytest.mark.parametrize("graph", ["fp32", "fp32_u8"], ids=["float-input", "uint8-input"])
def test_build_on_tensorrt11_converts_to_fp16_onnx_and_never_sets_precision_flags(onnx_files, tmp_path, graph):
    trt = make_fake_trt("11.0.0")
    parsed = {}
    real_parser = trt.OnnxParser

    class SpyParser(real_parser):
        def parse(self, data):
            parsed["bytes"] = data
            return super().parse(data)

    trt.OnnxParser = SpyParser
    r = T.build_engine(onnx_files[graph], tmp_path / "m.plan", fp16=True, _trt=trt, _device_info=CPU, log=lambda s: None)
    assert r.plan.convert_fp16 and r.plan.strongly_typed and not r.plan.fp16_flag
    assert ("create_network", 0) in trt.calls  # STRONGLY_TYPED is implied (and deprecated) on 11
    assert not [c for c in trt.calls if c[0] == "set_flag"]

    # the FP16 ONNX TensorRT 11 builds from: FP16 weights, the graph's input type (TensorRT casts uint8 itself),
    # float32 output, and it still computes the model
    proto = onnx.load_from_string(parsed["bytes"])
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in proto.graph.initializer)
    uint8_input = graph == "fp32_u8"
    want = onnx.TensorProto.UINT8 if uint8_input else onnx.TensorProto.FLOAT
    assert proto.graph.input[0].type.tensor_type.elem_type == want
    assert proto.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    from fprt.export.ort import make_session
    from fprt.export.parity import row_cosine

    meta = onnx_files["meta"]
    raw = np.random.default_rng(0).integers(0, 256, (6, 64, 64), dtype=np.uint8)
    x = meta.preprocess.normalize_uint8(raw)
    with torch.no_grad():
        ref = onnx_files["model"](torch.from_numpy(x)).numpy()
    got = make_session(proto).run(None, {"image": raw[:, None] if uint8_input else x})[0]
    assert row_cosine(ref, got).min() >= 0.999
    assert json.loads(sidecar_path(tmp_path / "m.plan").read_text())["key"]["onnx_sha256"] != ""


def test_build_from_fp16_onnx_on_tensorrt10_is_strongly_typed(onnx_files, tmp_path):
    trt = make_fake_trt("10.9.0")
    r = T.build_engine(onnx_files["fp16"], tmp_path / "m.plan", _trt=trt, _device_info=CPU, log=lambda s: None)
    assert r.plan == T.BuildPlan("fp16", strongly_typed=True, fp16_flag=False, convert_fp16=False)
    assert ("create_network", 2) in trt.calls and not [c for c in trt.calls if c[0] == "set_flag"]


def test_parser_errors_are_reported(onnx_files, tmp_path, monkeypatch):
    trt = make_fake_trt("10.9.0")

    class Refusing(trt.OnnxParser):
        def parse(self, data):
            self.errors.append("In node 3 (Conv): UNSUPPORTED_NODE")
            return False

    trt.OnnxParser = Refusing
    with pytest.raises(ModelError, match=r"m\.onnx: TensorRT's ONNX parser failed: In node 3 \(Conv\): UNSUPPORTED_NODE"):
        T.build_engine(onnx_files["fp32"], tmp_path / "m.plan", _trt=trt, _device_info=CPU, log=lambda s: None)
    assert not (tmp_path / "m.plan").exists()


# ---------------------------------------------------------------- the runner
def _engine(tensors_extra=None, profile=((1, 1, 64, 64), (4, 1, 64, 64), (8, 1, 64, 64))):
    tensors = [
        {"name": "image", "mode": "INPUT", "dtype": "FLOAT", "profile": [list(p) for p in profile]},
        {"name": "embedding", "mode": "OUTPUT", "dtype": "FLOAT", "sample_shape": [5]},
    ]
    return FakeEngine(tensors + (tensors_extra or []))


def test_runner_binds_by_name_and_computes_from_bound_memory():
    cuda = FakeCuda()
    runner = T.TensorRTRunner(_engine(), device="cpu", cuda=cuda)
    assert runner.inputs == ["image"] and runner.outputs == ["embedding"]
    assert runner.profile == BatchProfile(1, 4, 8)
    x = torch.rand(3, 1, 64, 64)
    out = runner(x)["embedding"]
    expected = x.reshape(3, -1).double().mean(1)[:, None] * torch.arange(1, 6, dtype=torch.float64)[None]
    torch.testing.assert_close(out.double(), expected, atol=1e-5, rtol=1e-5)
    assert runner.context.streams == [runner.bridge.handle]  # enqueued on the runner's own stream
    # by name, a non-contiguous float64 input: converted to the engine's dtype and made contiguous
    x2 = torch.rand(64, 64, 2, 1, dtype=torch.float64).permute(2, 3, 0, 1)
    out2 = runner(image=x2)["embedding"]
    torch.testing.assert_close(out2[:, 0].double(), x2.reshape(2, -1).mean(1), atol=1e-5, rtol=1e-5)


def test_runner_two_inputs_pair_engine():
    profile = [[1, 1, 64, 64], [4, 1, 64, 64], [8, 1, 64, 64]]
    engine = FakeEngine([
        {"name": "image_a", "mode": "INPUT", "dtype": "FLOAT", "profile": profile},
        {"name": "image_b", "mode": "INPUT", "dtype": "FLOAT", "profile": profile},
        {"name": "probability", "mode": "OUTPUT", "dtype": "FLOAT", "sample_shape": []},
    ])
    runner = T.TensorRTRunner(engine, device="cpu", cuda=FakeCuda())
    a, b = torch.rand(2, 1, 64, 64), torch.rand(2, 1, 64, 64)
    p = runner(a, b)["probability"]
    assert p.shape == (2,)
    torch.testing.assert_close(p.double(), a.reshape(2, -1).double().mean(1) - b.reshape(2, -1).double().mean(1), atol=1e-5, rtol=1e-5)
    with pytest.raises(ModelError, match=r"missing input\(s\) \['image_b'\]"):
        runner(image_a=a)


def test_runner_errors_print_the_allowed_range():
    runner = T.TensorRTRunner(_engine(), device="cpu", cuda=FakeCuda())
    with pytest.raises(ModelError, match=r"batch 9 is outside the engine's optimisation profile \(min 1, opt 4, max 8\)"):
        runner(torch.rand(9, 1, 64, 64))
    with pytest.raises(ModelError, match=r"input 'image' has shape \(2, 1, 32, 32\), expected \(2, 1, 64, 64\)"):
        runner(torch.rand(2, 1, 32, 32))
    with pytest.raises(ModelError, match="got 2 input tensor"):
        runner(torch.rand(2, 1, 64, 64), torch.rand(2, 1, 64, 64))
    assert runner.context.executions == 0  # nothing was enqueued for a rejected batch


def test_load_engine_refuses_foreign_or_modified_engines(onnx_files, tmp_path):
    trt = make_fake_trt("10.9.0")
    out = tmp_path / "m.plan"
    T.build_engine(onnx_files["fp32"], out, max_batch=8, _trt=trt, _device_info=CPU, log=lambda s: None)
    runner, meta = T.load_engine(out, cuda=trt.fake_cuda, _trt=trt, _device_info=CPU)
    assert meta.model == "tiny_embed" and runner.profile == BatchProfile(1, 8, 8)
    y = runner(torch.rand(2, 1, 64, 64))["embedding"]
    assert y.shape == (2, 32)
    with pytest.raises(ModelError, match=r"built for another machine \(gpu_name: engine built with 'Fake GPU 80GB', this machine has 'RTX'"):
        T.load_engine(out, cuda=trt.fake_cuda, _trt=trt, _device_info=(torch.device("cpu"), "RTX", "9.0"))
    with pytest.raises(ModelError, match="tensorrt_version: engine built with '10.9.0'"):
        T.load_engine(out, cuda=trt.fake_cuda, _trt=make_fake_trt("11.0.0"), _device_info=CPU)
    out.write_bytes(out.read_bytes() + b" ")
    with pytest.raises(ModelError, match="does not match its record"):
        T.load_engine(out, cuda=trt.fake_cuda, _trt=trt, _device_info=CPU)
    sidecar_path(out).unlink()
    with pytest.raises(ModelError, match=r"no m\.plan\.json beside it"):
        T.load_engine(out, cuda=trt.fake_cuda, _trt=trt, _device_info=CPU)


# ---------------------------------------------------------------- issue 16: streams, TF32, devices, graphs
def test_runner_uses_its_own_stream_ordered_both_ways_against_torchs():
    """Finding 6: never the legacy default stream; the engine's stream waits for torch's current stream
    (inputs written there) and torch's stream waits for the engine (outputs read there)."""
    cuda = FakeCuda()
    runner = T.TensorRTRunner(_engine(), device="cpu", cuda=cuda)
    own = runner.bridge.handle
    assert own not in (0, cuda.torch_stream.handle)
    cuda.events.clear()
    runner(torch.rand(2, 1, 64, 64))
    waits = [e for e in cuda.events if e[0] == "wait"]
    assert waits == [("wait", own, cuda.torch_stream.handle), ("wait", cuda.torch_stream.handle, own)]
    assert runner.context.streams == [own]
    assert ("keep_alive", own) in cuda.events  # the input is not recycled while the engine reads it


@pytest.mark.parametrize("version", ["10.9.0", "11.0.0"])
def test_fp32_engines_clear_tf32_and_fp16_engines_keep_it(onnx_files, tmp_path, version):
    """Finding 7: TF32 is on in a new builder config; an "fp32" engine must clear it."""
    trt = make_fake_trt(version)
    r = T.build_engine(onnx_files["fp32"], tmp_path / "a.plan", _trt=trt, _device_info=CPU, _cuda=trt.fake_cuda, log=lambda s: None)
    assert r.plan.precision == "fp32" and ("clear_flag", "TF32") in trt.calls
    build = [c for c in trt.calls if c[0] == "build"][-1]
    assert "TF32" not in build[1]
    assert any("TF32 off" in line for line in r.lines())
    trt16 = make_fake_trt(version)
    T.build_engine(onnx_files["fp32"], tmp_path / "b.plan", fp16=True, _trt=trt16, _device_info=CPU, _cuda=trt16.fake_cuda,
                   log=lambda s: None)
    assert ("clear_flag", "TF32") not in trt16.calls


def test_build_and_run_happen_on_the_engines_gpu(onnx_files, tmp_path):
    """Finding 8: on a multi-GPU host, build, deserialize, context, stream and execution all happen with the
    engine's device current (the one whose name the key records), whatever device is current outside."""
    trt = make_fake_trt("10.9.0")
    cuda = trt.fake_cuda
    gpu1 = (torch.device("cpu"), "Fake GPU 80GB", "9.0")  # the injected device stands for "cuda:1"
    out = tmp_path / "m.plan"
    T.build_engine(onnx_files["fp32"], out, max_batch=8, _trt=trt, _device_info=gpu1, _cuda=cuda, log=lambda s: None)
    assert [c[2] for c in trt.calls if c[0] == "build"] == ["cpu"]
    assert cuda.current_device is None  # restored after the build
    runner, _ = T.load_engine(out, cuda=cuda, _trt=trt, _device_info=gpu1)
    runner(torch.rand(2, 1, 64, 64))
    on = {c[0]: c[-1] for c in trt.calls if c[0] in ("deserialize", "create_execution_context", "execute")}
    assert on == {"deserialize": "cpu", "create_execution_context": "cpu", "execute": "cpu"}
    assert [e for e in cuda.events if e[0] == "new_stream"][0][2] == "cpu"  # the stream belongs to that device


def test_captured_graph_has_its_own_execution_context():
    """Finding 9: eager calls with other batch sizes change the runner's context, never the graph's."""
    cuda = FakeCuda()
    engine = _engine()
    runner = T.TensorRTRunner(engine, device="cpu", cuda=cuda)
    graph = runner.capture(4)
    assert graph.context is not runner.context and len(engine.contexts) == 2
    assert graph.context.shapes["image"] == (4, 1, 64, 64)
    x = torch.rand(4, 1, 64, 64)
    runner(torch.rand(7, 1, 64, 64))  # eager, another shape
    assert graph.context.shapes["image"] == (4, 1, 64, 64) and runner.context.shapes["image"] == (7, 1, 64, 64)
    out = graph.run(x)["embedding"]
    expected = x.reshape(4, -1).double().mean(1)[:, None] * torch.arange(1, 6, dtype=torch.float64)[None]
    torch.testing.assert_close(out.double(), expected, atol=1e-5, rtol=1e-5)
    assert ("replay", [e for e in cuda.events if e[0] == "capture"][0][1]) in cuda.events
    with pytest.raises(ModelError, match="captured for shape"):
        graph.run(torch.rand(2, 1, 64, 64))


# ---------------------------------------------------------------- a real GPU, when there is one
def _real_trt_reason():
    if not torch.cuda.is_available():
        return "no CUDA GPU on this machine: the real TensorRT build is not run"
    try:
        import tensorrt  # noqa: F401
    except Exception as exc:
        return f"TensorRT is not installed ({type(exc).__name__}): the real TensorRT build is not run"
    return None


@pytest.mark.gpu
@pytest.mark.skipif(_real_trt_reason() is not None, reason=str(_real_trt_reason()))
def test_real_tensorrt_engine_matches_onnx(onnx_files, tmp_path):  # pragma: no cover - GPU machines only
    from fprt.export.ort import make_session

    out = tmp_path / "m.plan"
    T.build_engine(onnx_files["fp32"], out, max_batch=16, timing_cache=tmp_path / "tc", use_cache=False, log=print)
    runner, _ = T.load_engine(out)
    x = np.random.default_rng(0).random((8, 1, 64, 64), dtype=np.float32)
    got = runner(torch.from_numpy(x).cuda())["embedding"]
    torch.cuda.synchronize()
    ref = make_session(onnx_files["fp32"]).run(None, {"image": x})[0]
    np.testing.assert_allclose(got.cpu().numpy(), ref, atol=1e-3)
    graph = runner.capture(8)
    again = graph.run(torch.from_numpy(x).cuda())["embedding"]
    torch.cuda.synchronize()
    np.testing.assert_allclose(again.cpu().numpy(), ref, atol=1e-3)
