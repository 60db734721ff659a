import json
import os

import pytest

from fprt.io import atomic_open, atomic_write_json, sha256_file
from fprt.modelmeta import ModelMeta, larger_is_closer
from fprt.preprocess import Preprocess


def test_atomic_write_leaves_old_content_on_failure(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("old\n")
    with pytest.raises(RuntimeError):
        with atomic_open(target, "w") as fh:
            fh.write("half-written")
            raise RuntimeError("killed")
    assert target.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["out.csv"]  # no temporary file left behind


def test_atomic_write_gives_files_the_usual_permissions(tmp_path):
    umask = os.umask(0o022)
    os.umask(umask)
    path = atomic_write_json(tmp_path / "a.json", {})
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_atomic_write_json_and_hash(tmp_path):
    import hashlib

    path = atomic_write_json(tmp_path / "sub" / "a.json", {"x": 1})
    assert json.loads(path.read_text()) == {"x": 1}
    assert sha256_file(path) == hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(ValueError, match="whole files"):
        with atomic_open(path, "a"):
            pass


def _meta(**kw):
    base = dict(
        model="siamese_cnn",
        kind="embedding",
        task="subsets",
        preprocess=Preprocess(),
        class_names=["t1", "t2"],
        centroids=[[0.0, 1.0], [1.0, 0.0]],
        embedding_dim=2,
    )
    base.update(kw)
    return ModelMeta(**base)


def test_modelmeta_round_trips_through_json_and_onnx_props():
    meta = _meta(threshold=0.25, extra={"note": "x"})
    assert ModelMeta.from_json(meta.to_json()) == meta
    assert ModelMeta.from_onnx_metadata(meta.to_onnx_metadata()) == meta
    assert meta.larger_is_closer is False
    assert larger_is_closer("cosine") and larger_is_closer("ip")


def test_modelmeta_rejects_bad_values_with_clear_messages():
    with pytest.raises(ValueError, match="kind"):
        _meta(kind="regressor")
    with pytest.raises(ValueError, match="2 centroids for 3 classes"):
        _meta(class_names=["t1", "t2", "t3"])
    with pytest.raises(ValueError, match="metric"):
        _meta(metric="manhattan")
    with pytest.raises(ValueError, match="unknown ModelMeta field"):
        ModelMeta.from_dict({**_meta().to_dict(), "colour": 1})
    with pytest.raises(ValueError, match="model.onnx: no 'fprt.meta' metadata"):
        ModelMeta.from_onnx_metadata({}, source="model.onnx")
    with pytest.raises(ValueError, match="corrupt"):
        ModelMeta.from_onnx_metadata({"fprt.meta": "{not json"}, source="m.onnx")
