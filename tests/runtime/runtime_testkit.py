"""Builders shared by the runtime tests (imported as a plain module: tests/ has no __init__.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fprt.modelmeta import ModelMeta
from fprt.preprocess import Preprocess


def pool_weights(size: int, pool: int, dim: int, seed: int = 0) -> np.ndarray:
    """A fixed random projection of the pooled image (size/pool)² → dim."""
    rng = np.random.default_rng(seed)
    n_in = (size // pool) ** 2
    return (rng.standard_normal((n_in, dim)) / np.sqrt(n_in)).astype(np.float32)


def make_onnx(
    path: Path,
    *,
    kind: str = "embedding",
    task: str = "subsets",
    size: int = 32,
    pool: int = 4,
    dim: int = 16,
    classes=("t1", "t2", "t3"),
    metric: str = "cosine",
    centroids=None,
    threshold=None,
    uint8_input: bool = False,
    seed: int = 0,
    extra_meta: dict | None = None,
) -> tuple[Path, ModelMeta, np.ndarray]:
    """A real ONNX model: average-pool → flatten → matmul W (→ logits for classifiers).

    Returns (path, meta, W). Pair models get ``<stem>.embed.onnx`` and output
    probability = sigmoid(4·cos(a, b)) of the two embeddings.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = pool_weights(size, pool, dim, seed)
    meta = ModelMeta(
        model="test_pool",
        kind=kind,
        task=task,
        preprocess=Preprocess(size=size),
        class_names=list(classes) if task == "subsets" else ["not_used", "used"],
        metric=metric,
        embedding_dim=dim,
        centroids=centroids,
        threshold=threshold,
        extra=extra_meta or {},
    )
    in_type = TensorProto.UINT8 if uint8_input else TensorProto.FLOAT

    def embed_nodes(inp: str, out: str, pfx: str) -> list:
        nodes = []
        src = inp
        if uint8_input:
            nodes += [
                helper.make_node("Cast", [inp], [pfx + "f"], to=TensorProto.FLOAT),
                helper.make_node("Div", [pfx + "f", "c255"], [pfx + "n"]),
            ]
            src = pfx + "n"
        nodes += [
            helper.make_node("AveragePool", [src], [pfx + "p"], kernel_shape=[pool, pool], strides=[pool, pool]),
            helper.make_node("Flatten", [pfx + "p"], [pfx + "fl"], axis=1),
            helper.make_node("MatMul", [pfx + "fl", "W"], [out]),
        ]
        return nodes

    inits = [numpy_helper.from_array(w, "W"), numpy_helper.from_array(np.array(255.0, np.float32), "c255")]

    def graph(nodes, inputs, outputs, extra_inits=()):
        g = helper.make_graph(nodes, "g", inputs, outputs, inits + list(extra_inits))
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
        m.ir_version = 8
        for k, v in meta.to_onnx_metadata().items():
            p = m.metadata_props.add()
            p.key, p.value = k, v
        onnx.checker.check_model(m)
        return m

    def img_input(name):
        return helper.make_tensor_value_info(name, in_type, ["N", 1, size, size])

    emb_out = helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", dim])
    if kind == "embedding":
        m = graph(embed_nodes("image", "embedding", "a"), [img_input("image")], [emb_out])
    elif kind == "classifier":
        k = len(classes)
        wc = np.random.default_rng(seed + 1).standard_normal((dim, k)).astype(np.float32)
        nodes = embed_nodes("image", "embedding", "a") + [helper.make_node("MatMul", ["embedding", "Wc"], ["logits"])]
        m = graph(
            nodes,
            [img_input("image")],
            [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", k]), emb_out],
            [numpy_helper.from_array(wc, "Wc")],
        )
        w = (w, wc)
    elif kind == "pair":
        nodes = embed_nodes("image_a", "ea", "a") + embed_nodes("image_b", "eb", "b")
        nodes += [
            helper.make_node("LpNormalization", ["ea"], ["na"], axis=1, p=2),
            helper.make_node("LpNormalization", ["eb"], ["nb"], axis=1, p=2),
            helper.make_node("Mul", ["na", "nb"], ["prod"]),
            helper.make_node("ReduceSum", ["prod", "axes1"], ["cos"], keepdims=0),
            helper.make_node("Mul", ["cos", "c4"], ["z"]),
            helper.make_node("Sigmoid", ["z"], ["probability"]),
        ]
        m = graph(
            nodes,
            [img_input("image_a"), img_input("image_b")],
            [helper.make_tensor_value_info("probability", TensorProto.FLOAT, ["N"])],
            [numpy_helper.from_array(np.array([1], np.int64), "axes1"), numpy_helper.from_array(np.array(4.0, np.float32), "c4")],
        )
        em = graph(embed_nodes("image", "embedding", "a"), [img_input("image")], [emb_out])
        onnx.save(em, str(path.with_name(path.stem + ".embed.onnx")))
    else:
        raise ValueError(kind)
    onnx.save(m, str(path))
    return path, meta, w


def reference_embed(pixels: np.ndarray, w: np.ndarray, pool: int) -> np.ndarray:
    """NumPy oracle of the pool model: float64 average-pool → flatten → @ W."""
    x = pixels.astype(np.float64) / 255.0
    n, s, _ = x.shape
    p = x.reshape(n, s // pool, pool, s // pool, pool).mean(axis=(2, 4)).reshape(n, -1)
    return p @ w.astype(np.float64)


def torch_pool_module(w: np.ndarray, pool: int, kind: str = "embedding", wc=None):
    """The torch twin of ``make_onnx``'s graph (same forward contract as the trainer's models)."""
    import torch

    class PoolNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.from_numpy(w))
            self.wc = torch.nn.Parameter(torch.from_numpy(wc)) if wc is not None else None

        def embed(self, x):
            p = torch.nn.functional.avg_pool2d(x, pool).flatten(1)
            return p @ self.w

        def forward(self, x, y=None):
            if kind == "pair":
                a = torch.nn.functional.normalize(self.embed(x), dim=1)
                b = torch.nn.functional.normalize(self.embed(y), dim=1)
                return torch.sigmoid(4 * (a * b).sum(1))
            e = self.embed(x)
            if kind == "classifier":
                return e @ self.wc, e
            return e

    return PoolNet().eval()


def _save_png(path: Path, img: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path)


def _blob_image(rng, size: int, level: float, texture: float) -> np.ndarray:
    """A smooth random image: low-frequency structure + texture noise, mean near ``level``."""
    from PIL import Image

    coarse = rng.normal(level, 40, size=(size // 8, size // 8)).clip(0, 255).astype(np.uint8)
    smooth = np.asarray(Image.fromarray(coarse).resize((size, size), Image.Resampling.BICUBIC), dtype=np.float64)
    return (smooth + rng.normal(0, texture, size=(size, size))).clip(0, 255).astype(np.uint8)


def make_membership_data(root: Path, *, size: int = 32, n_real: int = 16, n_gen: int = 40, seed: int = 0) -> Path:
    """train/ (real/used, real/not_used, generated) + test/ (real_unknown, generated, labels.csv).

    The generator "memorises": half its images are near-copies (shift + noise) of used images.
    """
    rng = np.random.default_rng(seed)
    labels = []
    for split in ("train", "test"):
        reals = [(_blob_image(rng, size, 128, 6), i % 2 == 0) for i in range(n_real)]
        used = [im for im, u in reals if u]
        gens = []
        for j in range(n_gen):
            if j % 2 == 0:
                src = used[j // 2 % len(used)]
                shifted = np.roll(src, shift=int(rng.integers(-1, 2)), axis=1).astype(np.float64)
                gens.append((shifted + rng.normal(0, 4, shifted.shape)).clip(0, 255).astype(np.uint8))
            else:
                gens.append(_blob_image(rng, size, 128, 6))
        for j, g in enumerate(gens):
            _save_png(root / split / ("generated" if split == "train" else "generated") / f"gen_{split}_{j:03d}.png", g)
        for i, (im, u) in enumerate(reals):
            if split == "train":
                _save_png(root / split / "real" / ("used" if u else "not_used") / f"real_{i:03d}.png", im)
            else:
                name = f"img_{i:03d}"
                _save_png(root / split / "real_unknown" / f"{name}.png", im)
                labels.append(f"{name},{1 if u else 0}")
    (root / "test" / "labels.csv").write_text("\n".join(labels) + "\n")
    return root


def make_subsets_data(root: Path, *, size: int = 32, k: int = 3, n_real: int = 8, n_gen: int = 8, n_test: int = 6, seed: int = 0) -> Path:
    """train/ (real/t1..tK, generated/gen_t1..gen_tK) + test/ (generated_unknown, labels.csv); class = brightness."""
    rng = np.random.default_rng(seed)
    levels = np.linspace(60, 200, k)
    labels = []
    n = 0
    for c in range(k):
        for i in range(n_real):
            _save_png(root / "train" / "real" / f"t{c + 1}" / f"r{c}_{i:03d}.png", _blob_image(rng, size, levels[c], 5))
        for i in range(n_gen):
            _save_png(root / "train" / "generated" / f"gen_t{c + 1}" / f"g{c}_{i:03d}.png", _blob_image(rng, size, levels[c], 5))
        for i in range(n_test):
            name = f"u{n:04d}"
            n += 1
            _save_png(root / "test" / "generated_unknown" / f"{name}.png", _blob_image(rng, size, levels[c], 5))
            labels.append(f"{name},t{c + 1}")
    (root / "test" / "labels.csv").write_text("\n".join(labels) + "\n")
    return root


def make_conv_onnx(path: Path, *, size: int = 64, channels: int = 48, task: str = "membership", metric: str = "cosine", seed: int = 0):
    """A heavier real model (two 3×3 convolutions + global average pool) for tests that need a run
    to last long enough to be killed half-way."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w1 = (rng.standard_normal((channels, 1, 3, 3)) / 3).astype(np.float32)
    w2 = (rng.standard_normal((channels, channels, 3, 3)) / np.sqrt(9 * channels)).astype(np.float32)
    meta = ModelMeta(model="test_conv", kind="embedding", task=task, preprocess=Preprocess(size=size),
                     class_names=["not_used", "used"] if task == "membership" else ["t1", "t2", "t3"], metric=metric,
                     embedding_dim=channels)
    nodes = [
        helper.make_node("Conv", ["image", "w1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("GlobalAveragePool", ["r2"], ["gp"]),
        helper.make_node("Flatten", ["gp"], ["embedding"], axis=1),
    ]
    g = helper.make_graph(nodes, "conv", [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, size, size])],
                          [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", channels])],
                          [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    for k, v in meta.to_onnx_metadata().items():
        p = m.metadata_props.add()
        p.key, p.value = k, v
    onnx.save(m, str(path))
    return path, meta


def rescore_other_ways(model, data: Path, tmp_path: Path, kw: dict, *, peer_method: str):
    """(other, topped, had): the run ``score(model, data, **kw)`` again, by a runner that leaves the method's
    pixel features to the method (as Ray does), on an empty cache; and on a cache first filled by
    ``peer_method`` (its ``had`` images), to which auto only adds the pixel features."""
    import json

    from fprt.runtime import score
    from fprt.runtime.pipeline import Runner

    class LeavesThemToTheMethod(Runner):
        computes_pixel_features = False

    other = score(model, data, tmp_path / "other", runner=LeavesThemToTheMethod(), **{**kw, "cache": tmp_path / "c2"})
    plain = score(model, data, tmp_path / "plain", **{**kw, "cache": tmp_path / "c3", "method": peer_method})
    had = json.loads(plain.summary_json.read_text())["counts"]["images_total"]
    topped = score(model, data, tmp_path / "topped", **{**kw, "cache": tmp_path / "c3"})
    return other, topped, had


def assert_same_outputs(first, *others) -> None:
    """scores.csv and run.csv of every result in ``others`` are those of ``first``, byte for byte."""
    for res in others:
        assert res.scores_csv.read_bytes() == first.scores_csv.read_bytes()
        assert res.run_csv.read_bytes() == first.run_csv.read_bytes()
