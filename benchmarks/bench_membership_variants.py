"""Leaner membership evidence: what each cut saves at 35,000 images and what it costs in accuracy (issue 12).

    python benchmarks/bench_membership_variants.py --images 35000 --data DEMO/membership --model DEMO/membership.onnx \
        --json benchmarks/results/membership_variants_35k.json

The evidence of ``--method auto`` for membership costs 0.75-0.86 of the embedding's time at 35,000 images on 2 cores
(goal ≤ 0.15). This measures variants that drop parts of it, cumulatively (an experiment: the variants are
applied by patching the evidence's module functions for the length of one run, nothing in fprt changes):

- ``A current``: the default;
- ``B no alignment``: no RANSAC similarity alignment before the patch search (``verify_pairs(align=False)``);
- ``C ... + k_edge 3``: 3 structure-map candidates per real image instead of 5;
- ``D ... + k_typical 1``: 1 "typical" real neighbour for the margins instead of 2;
- ``E ... + 16 px vectors``: the raw-pixel and structure-map searches on 16×16 vectors instead of 32×32.

Time: ``membership_evidence`` + ``fit_fusion`` of every variant on the images of ``bench_evidence_membership``
(the demo set grown with shifted noisy repeats), as a share of the untrained 256-px Siamese CNN's embedding of the
same images, in one process. Accuracy: ``fprt score --method auto`` on a membership demo set with its trained
model (``--data``/``--model``, e.g. ``make demo``'s): the test ROC AUC of the fused decision and of each feature.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

VARIANTS = {
    "A current": {},
    "B no alignment": {"align": False},
    "C B + k_edge 3": {"align": False, "k_edge": 3},
    "D C + k_typical 1": {"align": False, "k_edge": 3, "k_typical": 1},
    "E D + 16 px vectors": {"align": False, "k_edge": 3, "k_typical": 1, "size": 16},
}
FEATURES = ("geometric_patch_ncc", "geometric_margin", "ssim_best", "pixel_best_ncc", "edge_best_ncc", "edge_margin")


@contextlib.contextmanager
def variant(opts: dict):
    """The evidence functions patched to ``opts`` inside the block (restored after it)."""
    from fprt.runtime.evidence import geometry as G
    from fprt.runtime.evidence import membership as M
    from fprt.runtime.methods import auto_membership as AM

    saved = (G.verify_pairs, M.membership_evidence, AM.membership_evidence, M.pixel_vectors, M.edge_vectors)
    try:
        if opts.get("align") is False:
            G.verify_pairs = partial(saved[0], align=False)
        kw = {k: opts[k] for k in ("k_edge", "k_typical") if k in opts}
        if kw:
            M.membership_evidence = AM.membership_evidence = partial(saved[1], **kw)
        if "size" in opts:
            M.pixel_vectors = lambda images, size=None: saved[3](images, opts["size"])
            M.edge_vectors = partial(saved[4], size=opts["size"])
        yield
    finally:
        G.verify_pairs, M.membership_evidence, AM.membership_evidence, M.pixel_vectors, M.edge_vectors = saved


def timing(total: int, work: Path) -> dict:
    import bench_evidence_membership as B

    from fprt.demo import make_demo_data
    from fprt.runtime.evidence import membership as M
    from fprt.runtime.methods.auto_membership import fit_fusion

    root = work / "demo-membership"
    if not (root / "data").exists():
        make_demo_data(root / "data", "membership", seed=0, n_used=100, n_not_used=100, n_generated=300, progress=False)
    inp = B.embedded_inputs(root / "data", total, work / "onnx")
    real, labels, gen, re, ge, t_embed = (inp[k] for k in ("real", "labels", "gen", "real_emb", "gen_emb", "embed_s"))
    out = {"images": total, "real": len(real), "generated": len(gen), "embed_s": round(t_embed, 2),
           "load_start": round(os.getloadavg()[0], 2), "variants": {}}
    for name, opts in VARIANTS.items():
        with variant(opts):
            t0 = time.perf_counter()
            ev = M.membership_evidence(real, gen, real_emb=re, gen_emb=ge, metric=inp["metric"], k=3)
            t_ev = time.perf_counter() - t0
            fit_fusion(ev, labels, 5)
            t = time.perf_counter() - t0
        out["variants"][name] = {"evidence_s": round(t_ev, 2), "evidence_and_fusion_s": round(t, 2),
                                 "share_of_embedding": round(t / t_embed, 4),
                                 "pairs_per_real": round(float(np.mean((ev.candidates >= 0).sum(1))), 2)}
        print(name, out["variants"][name], flush=True)
    out["load_end"] = round(os.getloadavg()[0], 2)
    return out


def accuracy(data: Path, model: Path, work: Path) -> dict:
    import csv

    from sklearn.metrics import roc_auc_score

    from fprt.runtime import score

    truth = {}
    for line in (data / "test" / "labels.csv").read_text().split():
        if "," in line:
            name, label = line.split(",")[:2]
            truth[name] = int(label)
    out = {}
    for name, opts in VARIANTS.items():
        with variant(opts):
            res = score(model, data, work / "score", labels=data / "test" / "labels.csv", plots=False, progress=False,
                        overwrite=True, cache=work / "cache")
        rows = list(csv.DictReader(open(res.scores_csv)))
        y = np.array([truth[r["image_id"]] for r in rows])
        out[name] = {"auto_roc_auc": round(res.metrics["roc_auc"], 4), "chosen": res.summary["method"]["params"]["chosen"],
                     **{f: round(roc_auc_score(y, [float(r[f]) for r in rows]), 4) for f in FEATURES}}
        print(name, out[name], flush=True)
    return out


def main(argv=None) -> int:
    import tempfile

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=35000)
    p.add_argument("--data", type=Path, default=None, help="a membership demo set (make-demo-data) for the accuracy part")
    p.add_argument("--model", type=Path, default=None, help="its trained model (.onnx)")
    p.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "fprt-bench-membership-variants")
    p.add_argument("--json", type=Path, default=None)
    a = p.parse_args(argv)
    from bench_evidence_subsets import show_and_save

    from fprt.runtime.bench import machine_info

    res = {"machine": machine_info(), "variants": VARIANTS}
    if a.data is not None and a.model is not None:
        res["accuracy_test_roc_auc"] = accuracy(a.data, a.model, a.work)
    res["time"] = timing(a.images, a.work)
    show_and_save(res, a.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
