"""Fault catalogue — an ONNX model whose weights live in an external data file beside it.

On the main of 2026-12-04 the model was handed to ONNX Runtime as bytes, so its external data was
looked up in the *current directory*: the same command from another folder loaded other weights
(or failed), and the embedding cache — keyed on the .onnx bytes only — then served embeddings of
different weights. Now the data is read from the model's folder and the key covers every byte loaded.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runtime"))
from runtime_testkit import make_onnx, reference_embed  # noqa: E402

from fprt.errors import ModelError  # noqa: E402

SIZE, POOL, DIM = 32, 4, 16


def external(path: Path, *, seed: int = 0, location: str = "weights.bin") -> tuple[Path, np.ndarray]:
    """An embedding model at ``path`` whose weight W is stored in ``location`` beside it; returns (path, W)."""
    import onnx

    path.parent.mkdir(parents=True, exist_ok=True)
    model, _, w = make_onnx(path, size=SIZE, pool=POOL, dim=DIM, seed=seed)
    proto = onnx.load(str(model))
    onnx.save(proto, str(model), save_as_external_data=True, all_tensors_to_one_file=True, location=location,
              size_threshold=0)
    assert (model.parent / location).exists()
    return model, w


@pytest.fixture
def pixels():
    return np.random.default_rng(5).integers(0, 256, (3, SIZE, SIZE), dtype=np.uint8)


def test_weights_come_from_the_model_folder_whatever_the_current_directory(tmp_path, pixels, monkeypatch):
    from fprt.runtime.backends.onnx_backend import OnnxBackend

    model, w = external(tmp_path / "model" / "m.onnx", seed=0)
    elsewhere = tmp_path / "elsewhere"
    _, w_decoy = external(elsewhere / "decoy.onnx", seed=7)  # elsewhere/weights.bin: other weights, same layout
    monkeypatch.chdir(elsewhere)
    emb = OnnxBackend(model).infer(pixels)["embedding"]
    np.testing.assert_allclose(emb, reference_embed(pixels, w, POOL), rtol=1e-4, atol=1e-5)
    assert not np.allclose(reference_embed(pixels, w, POOL), reference_embed(pixels, w_decoy, POOL), atol=1e-3)


def test_model_hash_covers_the_external_data(tmp_path):
    from fprt.runtime.backends.onnx_backend import OnnxBackend

    model, _ = external(tmp_path / "m.onnx")
    onnx_bytes = model.read_bytes()
    before = OnnxBackend(model).model_sha256
    data = tmp_path / "weights.bin"
    blob = bytearray(data.read_bytes())
    blob[:4] = np.float32([3.5]).tobytes()  # one weight changed, the .onnx file untouched
    data.write_bytes(bytes(blob))
    assert model.read_bytes() == onnx_bytes
    assert OnnxBackend(model).model_sha256 != before


@pytest.mark.parametrize("location", ["../weights.bin", "/tmp/fprt-absolute-weights.bin"])
def test_external_data_outside_the_model_folder_is_refused(location, tmp_path):
    import onnx

    from fprt.runtime.backends.onnx_backend import OnnxBackend

    model, _ = external(tmp_path / "m" / "m.onnx")
    proto = onnx.load(str(model), load_external_data=False)
    for t in proto.graph.initializer:
        for entry in t.external_data:
            if entry.key == "location":
                entry.value = location
    onnx.save(proto, str(model))
    with pytest.raises(ModelError, match=f"{model}: .*outside the model's folder"):
        OnnxBackend(model)


def test_missing_external_data_names_the_model_and_the_file(tmp_path):
    from fprt.runtime.backends.onnx_backend import OnnxBackend

    model, _ = external(tmp_path / "m.onnx")
    os.remove(tmp_path / "weights.bin")
    with pytest.raises(ModelError, match=f"{model}: cannot read external data of tensor 'W' at {tmp_path / 'weights.bin'}"):
        OnnxBackend(model)
