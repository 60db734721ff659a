"""Cost of ``--method auto``'s subsets evidence and fusion against the embedding, in the same run.

    python benchmarks/bench_evidence_subsets.py --images 35000 [--model siamese.onnx] [--work DIR]

One ``fprt.runtime.score(model, data, method="auto")`` run with an empty cache on a subsets dataset of
``--images`` images (2/7 training: real + generated of 5 subsets, 5/7 generated test images), and its
stage timings from summary.json:

- embedding: the pipeline's ``decode`` + ``infer`` stages (the model, ONNX Runtime, ``--threads``);
- evidence + fusion: the ``similarity_and_decisions`` stage of auto — decoding the images again at their
  own size, noise residual + fingerprint + 32×32 pixels, centroid / k-NN through the similarity
  extension, the cross-validated probes and the stacked probe, the neighbours;
- the peer: the same stage of ``--method centroid`` on the cached embeddings (what the old default cost).

Goal (issue 12): evidence + fusion ≤ 15 % of the embedding time at 35,000 images.

The data: the demo's subsets set (``make_demo_data``, 256×256) expanded to ``--images`` by copies of its
images with ±1 gray-level noise (distinct files, the same generators' traces), so that a 35,000-image set
is made in a minute instead of drawing every image. Without ``--model`` the trainer's ``siamese_cnn``
(256×256, untrained: speed does not depend on the weights) is exported to ONNX into ``--work``.
``pytest benchmarks/bench_evidence_subsets.py --benchmark-only`` runs a small version (1,400 images).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TRAIN_SHARE = 2 / 7  # of the images: training (half real, half generated); the rest are test images


def siamese_onnx(work: Path) -> Path:
    out = work / "siamese_cnn_subsets.onnx"
    if out.exists():
        return out
    import torch

    from fprt.export import export_onnx
    from fprt.modelmeta import ModelMeta
    from fprt.preprocess import Preprocess
    from fprt.trainer import create_model

    torch.manual_seed(0)
    model = create_model("siamese_cnn").eval()
    meta = ModelMeta(model="siamese_cnn", kind="embedding", task="subsets", preprocess=Preprocess(size=256),
                     class_names=[f"t{i}" for i in range(1, 6)], metric="l2", embedding_dim=256)
    work.mkdir(parents=True, exist_ok=True)
    export_onnx(model, out, meta=meta, log=lambda line: None)
    return out


def expanded_demo(work: Path, images: int, seed: int = 0) -> Path:
    """The demo subsets set grown to ``images`` files by noisy copies (cached in ``work``)."""
    from PIL import Image

    from fprt.demo import make_demo_data

    root = work / f"subsets_{images}"
    if (root / "test" / "labels.csv").exists():
        return root
    base = work / "demo_subsets"
    if not (base / "test" / "labels.csv").exists():
        make_demo_data(base, task="subsets", progress=False)
    rng = np.random.default_rng(seed)
    n_train = int(round(images * TRAIN_SHARE))
    want = {"real": n_train // 2, "generated": n_train - n_train // 2, "test": images - n_train}
    groups = {
        "real": sorted((base / "train" / "real").glob("*/*.png")),
        "generated": sorted((base / "train" / "generated").glob("*/*.png")),
        "test": sorted((base / "test" / "generated_unknown").glob("*.png")),
    }
    truth = dict(line.split(",") for line in (base / "test" / "labels.csv").read_text().split())
    labels = []
    for kind, paths in groups.items():
        for j in range(want[kind]):
            src = paths[j % len(paths)]
            px = np.asarray(Image.open(src), dtype=np.int16)
            if j >= len(paths):
                px = px + rng.integers(-1, 2, size=px.shape)
            px = np.clip(px, 0, 255).astype(np.uint8)
            if kind == "test":
                name = f"c{j:06d}"
                dst = root / "test" / "generated_unknown" / f"{name}.png"
                labels.append(f"{name},{truth[src.stem]}")
            else:
                dst = root / "train" / kind / src.parent.name / f"c{j:06d}.png"
            dst.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(px).save(dst, compress_level=1)
    (root / "test" / "labels.csv").write_text("\n".join(labels) + "\n")
    return root


def run(images: int, model: Path | None, work: Path, *, threads: int, workers: int) -> dict:
    from fprt.runtime import score
    from fprt.runtime.bench import machine_info

    work.mkdir(parents=True, exist_ok=True)
    data = expanded_demo(work, images)
    model = model or siamese_onnx(work)
    cache = work / f"cache_{images}_{time.time_ns()}"
    load0 = os.getloadavg()[0]
    kw = dict(labels=data / "test" / "labels.csv", threads=threads, workers=workers, cache=cache, plots=False, progress=False)
    auto = score(model, data, work / "out_auto", method="auto", **kw)
    peer = score(model, data, work / "out_centroid", method="centroid", **kw)  # embeddings from the cache
    t = auto.summary["timings"]
    sec = lambda timings, stage: float(timings.get(stage, {}).get("seconds", 0.0))  # noqa: E731
    embedding = sec(t, "decode") + sec(t, "infer")
    evidence = sec(t, "similarity_and_decisions")
    return {
        "machine": machine_info(),
        "load_average": {"start": round(load0, 2), "end": round(os.getloadavg()[0], 2)},
        "images": images,
        "test_images": auto.n_test,
        "model": str(model),
        "threads": threads,
        "workers": workers,
        "embedding_s": round(embedding, 2),
        "embedding_stages_s": {"decode": sec(t, "decode"), "infer": sec(t, "infer")},
        "evidence_and_fusion_s": round(evidence, 2),
        "share_of_embedding": round(evidence / embedding, 4) if embedding else None,
        "goal_share": 0.15,
        "centroid_decisions_s": sec(peer.summary["timings"], "similarity_and_decisions"),
        "auto_accuracy": auto.metrics.get("accuracy"),
        "centroid_accuracy_untrained_model": peer.metrics.get("accuracy"),
        "chosen": auto.summary["method"]["params"].get("chosen"),
        "evidence_cv": auto.summary["method"]["params"].get("cv_accuracy"),
        "wall_s": auto.summary["timings"]["total_wall_s"],
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=35000)
    p.add_argument("--model", type=Path, default=None)
    p.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "fprt-bench-evidence")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--json", type=Path, default=None, help="also write the result here")
    a = p.parse_args(argv)
    res = run(a.images, a.model, a.work, threads=a.threads, workers=a.workers)
    text = json.dumps(res, indent=2)
    print(text)
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(text + "\n")
    return 0


def test_evidence_share_small(benchmark, tmp_path):
    """pytest-benchmark: the same measurement on 1,400 images (make bench)."""
    res = benchmark.pedantic(lambda: run(1400, None, tmp_path / "work", threads=2, workers=2), rounds=1, iterations=1)
    benchmark.extra_info.update(res)
    assert res["share_of_embedding"] is not None


if __name__ == "__main__":
    sys.exit(main())
