"""``fprt.runtime.score``: images → run.csv, the Python API behind ``fprt score``.

    from fprt.runtime import score
    result = score("model.onnx", "demo/subsets", "runs/score", labels="demo/subsets/test/labels.csv")
    print(result.run_csv, result.metrics["accuracy"], result.images_per_s)

Steps: find the test (and training/reference) images with ``fprt.data.discover``; load the model
with the backend its format calls for; hash every image file and look its embeddings up in the
cache; screen the images still to compute for bad files (the data layer's rule: stop before any
model work listing every bad file, or ``on_error="skip"`` + a report); run the overlapping
decode → infer → store stages; hand the embeddings to the scoring method (similarity reductions
through ``fprt.runtime.similarity``); write run.csv (validated), scores.csv, summary.json and,
with labels, metrics.json and plots.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fprt.errors import DataError, FprtError
from fprt.runtime.methods.base import SCORE_CONVENTION, Context, ImageSet, MethodOptions, as_numpy
from fprt.runtime.outputs import RunCsvFormat

log = logging.getLogger("fprt.runtime")

ON_ERROR = ("stop", "skip")
CHECK_LEVELS = ("verify", "decode")


@dataclass
class ScoreResult:
    out: Path
    run_csv: Path
    scores_csv: Path
    summary_json: Path
    task: str
    method: str
    n_test: int
    images_per_s: float  # end to end: all images handled / wall seconds of the run
    model_images_per_s: float | None  # images the model computed / seconds of the pipeline stages
    metrics: dict | None = None
    metrics_json: Path | None = None
    plots: list[Path] = field(default_factory=list)
    bad_files: list = field(default_factory=list)
    summary: dict = field(default_factory=dict)


class ScoreData:
    """The image sets of one scoring job: the test split and, when given, the training split."""

    def __init__(self, layout, reference=None, meta=None) -> None:
        self.layout = layout
        self.reference = reference
        self.meta = meta
        self.task = layout.task
        if self.task == "membership":
            if not layout.test_real or not layout.test_generated:
                raise DataError(f"{layout.root}: a membership test split needs real_unknown/ and generated/ images")
            self.test = ImageSet("test", list(layout.test_real))
            self.test_generated = ImageSet("test_generated", list(layout.test_generated))
        else:
            if not layout.test_generated:
                raise DataError(f"{layout.root}: a subsets test split needs generated_unknown/ images")
            self.test = ImageSet("test", list(layout.test_generated))
            self.test_generated = None

    def _ref(self, required_for: str, why: str = ""):
        if self.reference is None:
            extra = f" ({why})" if why else ""
            raise FprtError(
                f"--method {required_for} needs the training split{extra}: pass --reference DIR with the training "
                "data (real/ + generated/ folders), or score a dataset root that holds train/ and test/"
            )
        return self.reference

    def ref_real(self, required_for: str, why: str = "") -> ImageSet:
        ref = self._ref(required_for, why)
        paths, labels = [], []
        for cls in ref.classes or sorted(ref.real):
            for p in ref.real.get(cls, []):
                paths.append(p)
                labels.append(cls)
        return ImageSet("ref_real", paths, labels)

    def ref_generated(self, required_for: str, why: str = "") -> ImageSet:
        ref = self._ref(required_for, why)
        paths, labels = [], []
        for key in sorted(ref.generated, key=_natural):
            for p in ref.generated[key]:
                paths.append(p)
                labels.append(key)
        return ImageSet("ref_generated", paths, labels)

    def ref_all(self, required_for: str, why: str = "") -> ImageSet:
        a, b = self.ref_real(required_for, why), self.ref_generated(required_for, why)
        return ImageSet("ref_all", a.paths + b.paths, a.labels + b.labels)


def _natural(c: str):
    import re

    m = re.fullmatch(r"t(\d+)", c)
    return (int(m.group(1)), c) if m else (1 << 30, c)


def _resolve_data(data, reference):
    from fprt.data import discover

    layout = discover(data)
    if not layout.has_test:
        raise DataError(
            f"{data}: holds a training split only ({layout.kind}); `fprt score` scores a test split "
            "(subsets: generated_unknown/; membership: real_unknown/ + generated/). Pass the training data as --reference"
        )
    ref = None
    if reference is not None:
        ref = discover(reference)
        if not ref.has_train:
            raise DataError(f"--reference {reference}: holds no training split ({ref.kind}); expected real/ + generated/ folders")
        if ref.task != layout.task:
            raise DataError(f"--reference {reference} is a {ref.task} training split but {data} is a {layout.task} test split")
    elif layout.has_train:
        ref = layout
    return layout, ref


def score(
    model: str | Path | None,
    data: str | Path,
    out: str | Path,
    *,
    method: str | None = None,
    reference: str | Path | None = None,
    labels: str | Path | None = None,
    backend: str | None = None,
    device: str = "cpu",
    threads: int | None = None,
    compile: bool = False,
    batch_size: int = 64,
    workers: int | None = None,
    cache: str | Path | None = None,
    use_cache: bool = True,
    on_error: str = "stop",
    check: str = "verify",
    k: int = 5,
    alpha: float = 0.5,
    threshold: float | None = None,
    ssim_size: int = 256,
    csv_header: str | None = None,
    keep_extension: bool = False,
    subset_labels: str = "names",
    plots: bool = True,
    progress: bool | None = None,
    model_object=None,
    stages=None,
    hasher=None,
    screener=None,
) -> ScoreResult:
    """Score the test split of ``data`` with ``model`` into ``out``; see ``fprt score --help`` for the options.

    ``model`` may be None for the classical methods (``ssim-max``, ``phash``). ``model_object``
    passes an already loaded backend (tests, notebooks, a Ray driver that loaded it once).
    ``stages`` replaces ``fprt.runtime.pipeline.run_stages`` (same signature and result): how a
    distributed runner (``--ray``) computes the missing embeddings into the same cache; wrap the call
    in ``fprt.runtime.methods.reductions.use_engine`` to shard the similarity step as well.
    ``hasher`` / ``screener`` replace ``pipeline.hash_files`` / ``fprt.data.screen_files`` (same signatures):
    how a cluster run reads the files for their content hashes and bad-file checks on its workers.
    """
    from fprt import __version__
    from fprt.runtime import outputs as O
    from fprt.runtime.backends import load_backend
    from fprt.runtime.cache import default_cache_dir
    from fprt.runtime.methods import default_method, get_method
    from fprt.runtime.pipeline import Embedder, StageClock, hash_files, run_stages

    t_start = time.perf_counter()
    clock = StageClock()
    out = Path(out)
    if on_error not in ON_ERROR:
        raise FprtError(f"--on-error {on_error!r}: expected one of {list(ON_ERROR)}")
    if check not in CHECK_LEVELS:
        raise FprtError(f"--check {check!r}: expected one of {list(CHECK_LEVELS)}")
    if k < 1:
        raise FprtError(f"--top-k must be >= 1, got {k}")
    if batch_size < 1:
        raise FprtError(f"--batch-size must be >= 1, got {batch_size}")
    fmt = RunCsvFormat(header=csv_header, keep_extension=keep_extension, subset_labels=subset_labels)
    options = MethodOptions(k=k, alpha=alpha, threshold=threshold, ssim_size=ssim_size)

    # ------------------------------------------------------------------ data, method, model
    with clock.timed("discover"):
        layout, ref = _resolve_data(data, reference)
    task = layout.task
    meth = get_method(method, task) if method else None
    model_given = model is not None or model_object is not None
    if meth is None and not model_given and ref is not None:
        meth = _model_free_auto(task)  # a training split and no model: auto on pixels, where the task has one
    # a method that can run either way (model_optional) stands its features in only when no model is given
    features = meth.features(options) if meth is not None and not (model_given and meth.model_optional) else None
    if features is not None:
        model_obj = features
        if model is not None:
            log.warning("--method %s needs no model; %s is not used", meth.name, model)
    else:
        if model is None and model_object is None:
            raise FprtError("a model is needed (--model FILE: an .onnx file, a training run folder or an engine), "
                            "except for the classical methods ssim-max and phash")
        with clock.timed("load_model"):
            model_obj = model_object or load_backend(model, backend=backend, device=device, threads=threads, compile=compile)
        meta = model_obj.meta
        if meta.task != task:
            log.warning("%s was trained for %s but %s is a %s test split: its embeddings are used as they are",
                        model, meta.task, data, task)
        if meth is None:
            meth = default_method(task, meta, has_reference=ref is not None)
        if model_obj.kind not in meth.kinds:
            raise FprtError(f"--method {meth.name} needs a {' or '.join(meth.kinds)} model; {model} is a {model_obj.kind} model")
    meta = model_obj.meta
    metric = meta.metric
    classes = list(meta.class_names) if task == "subsets" else ["0", "1"]
    sd = ScoreData(layout, ref, meta)
    sets = {s.name: s for s in meth.image_sets(sd)}
    test_ids = O.check_ids(sets["test"].paths, fmt)  # clashing ids fail before any work
    if labels is not None and not Path(labels).is_file():
        raise DataError(f"--labels {labels}: no such file")

    cache_root = None
    if use_cache and getattr(model_obj, "cacheable", True):
        cache_root = Path(cache) if cache else default_cache_dir()
    spec = None
    if features is None and model is not None:
        from fprt.runtime.backends import BackendSpec

        spec = BackendSpec(str(model), backend=backend, device=device, threads=threads, compile=compile)
    embedder = Embedder(model_obj, cache_root, spec=spec if spec is not None else (features if features is not None else None))

    # ------------------------------------------------------------------ hash + cache lookup
    all_paths = [p for s in sets.values() for p in s.paths]
    with clock.timed("hash", len(all_paths)):
        all_keys = (hasher or hash_files)(all_paths, workers=max(2, workers or 2))
    unique: dict[bytes, Path] = {}
    for key, p in zip(all_keys, all_paths):
        unique.setdefault(key, p)
    ukeys = list(unique)
    with clock.timed("cache_lookup", len(ukeys)):
        hit, hit_rows = embedder.lookup(ukeys)
    miss = [i for i in range(len(ukeys)) if not hit[i]]

    # ------------------------------------------------------------------ bad files: before any model work
    bad_files: list = []
    if miss:
        from fprt.data import screen_files

        with clock.timed("screen", len(miss)):
            _, bad_files = (screener or screen_files)([unique[ukeys[i]] for i in miss], on_error, workers=workers, level=check,
                                        report=None)
    bad_paths = {b.path for b in bad_files}
    out.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ decode → infer → store
    n_hit = int(hit.sum())
    todo = [i for i in miss if unique[ukeys[i]] not in bad_paths]
    bar = _progress_bar(len(todo), progress, n_hit)
    t_pipe = time.perf_counter()
    try:
        res = (stages or run_stages)([unique[ukeys[i]] for i in todo], [ukeys[i] for i in todo], embedder, batch_size=batch_size,
                         workers=workers, on_error=on_error, clock=clock, progress=_bar_update(bar, clock, t_pipe))
    finally:
        if bar is not None:
            bar.close()
    pipe_seconds = time.perf_counter() - t_pipe
    bad_files += res.bad
    bad_paths |= {b.path for b in res.bad}
    if on_error == "skip":
        from fprt.data import write_bad_file_report

        write_bad_file_report(bad_files, out / "bad_files.csv")

    # rows of every unique key: cached rows and computed rows
    rows: dict[str, Any] = {}
    row_of = np.full(len(ukeys), -1, dtype=np.int64)
    parts: dict[str, list] = {name: [] for name in embedder.outputs}
    offset = 0
    if n_hit:
        hit_idx = np.flatnonzero(hit)
        row_of[hit_idx] = np.arange(len(hit_idx))
        for name in embedder.outputs:
            parts[name].append(_on_device(hit_rows[name], embedder.device))
        offset = len(hit_idx)
    if todo:
        done = np.asarray(todo)[res.done]
        row_of[done] = offset + np.flatnonzero(res.done)
        for name in embedder.outputs:
            parts[name].append(res.outputs[name])
    for name in embedder.outputs:
        rows[name] = _concat(parts[name])

    key_index = {key: i for i, key in enumerate(ukeys)}
    kept_sets: dict[str, ImageSet] = {}
    set_outputs: dict[str, dict[str, Any]] = {}
    pos = 0
    for name, s in sets.items():
        keys = all_keys[pos : pos + len(s.paths)]
        pos += len(s.paths)
        r = np.array([row_of[key_index[key]] for key in keys], dtype=np.int64)
        keep = r >= 0
        if not keep.all() and on_error == "stop":  # cannot happen: stop raises before; guard anyway
            raise DataError(f"{int((~keep).sum())} image(s) of {name} have no embedding")
        paths = [p for p, k_ in zip(s.paths, keep) if k_]
        labels_ = [lab for lab, k_ in zip(s.labels, keep) if k_] if s.labels is not None else None
        if not paths:
            raise DataError(f"every image of the {name} set was skipped as bad; nothing to score")
        kept_sets[name] = ImageSet(name, paths, labels_)
        sel = r[keep]
        set_outputs[name] = {o: _take(rows[o], sel) for o in embedder.outputs}

    # ------------------------------------------------------------------ similarity + decisions
    def load_pixels(paths):
        from fprt.data import iter_batches

        batches = list(iter_batches(list(paths), meta.preprocess, max(1, len(paths)), workers, "stop"))
        return np.concatenate([b.pixels for b in batches]) if batches else np.zeros((0,), np.uint8)

    ctx = Context(task=task, classes=classes, metric=metric, meta=meta, options=options, sets=kept_sets,
                  outputs=set_outputs, backend=model_obj, load_pixels=load_pixels)
    with clock.timed("similarity_and_decisions", len(kept_sets["test"].paths)):
        result = meth.score(ctx)
    if task == "subsets" and result.params.get("classes"):
        classes = list(result.params["classes"])  # knn / centroids from --reference: the reference's subsets

    # ------------------------------------------------------------------ outputs
    test_paths = kept_sets["test"].paths
    test_ids = [O.run_id(p, fmt) for p in test_paths]
    with clock.timed("write_outputs", len(test_paths)):
        run_labels = [O.run_label(task, d, classes if task == "subsets" else [], fmt) for d in result.decisions]
        run_csv = O.write_run_csv(out / "run.csv", test_ids, run_labels, task=task, classes=classes, fmt=fmt)
        root = layout.root
        cols: dict[str, Any] = {
            "image_id": test_ids,
            "file": [_rel(p, root) for p in test_paths],
            "decision": result.decisions,
            "score": result.score,
        }
        cols.update({name: as_numpy(v) for name, v in result.columns.items()})
        if result.neighbours is not None:
            cols["neighbours"] = result.neighbours
            cols["neighbour_scores"] = [list(r) for r in np.asarray(result.neighbour_scores)]
        scores_csv = O.write_scores_csv(out / "scores.csv", cols)
        metrics = metrics_json = None
        plot_files: list[Path] = []
        if labels is not None:
            truth = O.load_truth(Path(labels), [O.run_id(p, RunCsvFormat()) for p in test_paths], task, classes)
            metrics = O.compute_metrics(task, truth, result.decisions, result.score if task == "membership" else None, classes)
            if task == "subsets" and result.class_scores is not None and len(set(truth)) > 1:
                metrics["roc_auc_ovr_macro"] = _ovr_auc(truth, result.class_scores, classes)
            metrics_json = O.write_json(out / "metrics.json", {"task": task, "method": meth.name, **metrics})
            if plots:
                emb_name = "embedding" if "embedding" in set_outputs["test"] else next(iter(set_outputs["test"]))
                emb = as_numpy(set_outputs["test"][emb_name])
                emb = emb.reshape(len(emb), -1) if emb.ndim > 2 else emb
                plot_files = O.write_plots(out, O.PlotInputs(
                    task=task, classes=classes, truth=truth, decisions=result.decisions, scores=np.asarray(result.score, float),
                    score_label=result.score_name, embeddings=emb if emb.shape[1] <= 4096 else None,
                    class_scores=result.class_scores))

    wall = time.perf_counter() - t_start
    n_images = len(all_paths)
    computed = int(res.done.sum())
    infer_s = clock.busy.get("infer", 0.0)
    model_rate = computed / pipe_seconds if computed and pipe_seconds > 0 else None
    summary = {
        "fprt_version": __version__,
        "task": task,
        "method": {"name": meth.name, "source": meth.source, "summary": meth.summary, "params": result.params,
                   "options": options.to_dict()},
        "score": {"column": "score", "is": result.score_name, "larger_means": result.larger_means,
                  "convention": SCORE_CONVENTION,
                  "neighbour_scores": result.neighbour_score_name},
        "metric": metric,
        "data": {"root": str(layout.root), "layout": layout.kind,
                 "reference": str(ref.root) if ref is not None else None},
        "counts": {
            "test_images": len(test_paths),
            "decisions": {d: result.decisions.count(d) for d in sorted(set(result.decisions))},
            "sets": {name: len(s.paths) for name, s in kept_sets.items()},
            "images_total": n_images,
            "unique_files": len(ukeys),
            "cache_hits": n_hit,
            "computed": computed,
            "bad_files": len(bad_files),
        },
        "bad_files": [str(b) for b in bad_files[:100]],
        "timings": {**clock.to_dict(), "pipeline_wall_s": round(pipe_seconds, 4), "total_wall_s": round(wall, 4)},
        "images_per_s": round(n_images / wall, 2) if wall > 0 else None,
        "model_images_per_s": round(model_rate, 2) if model_rate else None,
        "infer_only_images_per_s": round(computed / infer_s, 2) if infer_s > 0 else None,
        "backend": model_obj.describe(),
        "model_sha256": model_obj.model_sha256,
        "cache": {"dir": str(cache_root) if cache_root else None,
                  **(embedder.cache.stats.to_dict() if embedder.cache is not None else {})},
        "run_csv": {"path": "run.csv", **fmt.to_dict(), "validated": True},
        "outputs": sorted(p.name for p in [run_csv, scores_csv, *( [metrics_json] if metrics_json else []), *plot_files]),
        "metrics": {k: v for k, v in (metrics or {}).items() if isinstance(v, (int, float)) or v is None} or None,
    }
    if result.evidence is not None:
        summary["evidence"] = result.evidence.to_dict()
    summary_json = O.write_json(out / "summary.json", summary)
    return ScoreResult(
        out=out, run_csv=run_csv, scores_csv=scores_csv, summary_json=summary_json, task=task, method=meth.name,
        n_test=len(test_paths), images_per_s=summary["images_per_s"] or 0.0, model_images_per_s=summary["model_images_per_s"],
        metrics=metrics, metrics_json=metrics_json, plots=plot_files, bad_files=bad_files, summary=summary,
    )


def _model_free_auto(task: str):
    """``auto`` for ``task`` when it can run without a model (``Method.model_optional``), else None."""
    from fprt.runtime.methods import get_method, method_names

    if "auto" not in method_names(task):
        return None
    meth = get_method("auto", task)
    return meth if meth.model_optional else None


def _ovr_auc(truth, class_scores, classes) -> float | None:
    from sklearn.metrics import roc_auc_score

    aucs = []
    for g, c in enumerate(classes):
        y = np.array([t == c for t in truth], dtype=int)
        if 0 < y.sum() < len(y):
            aucs.append(roc_auc_score(y, np.asarray(class_scores)[:, g]))
    return float(np.mean(aucs)) if aucs else None


def _rel(p: Path, root: Path) -> str:
    try:
        return str(Path(p).relative_to(root))
    except ValueError:
        return str(p)


def _on_device(x, device: str):
    if device == "cuda":
        import torch

        return torch.from_numpy(np.ascontiguousarray(x)).to("cuda")
    return x


def _concat(parts: list):
    if not parts:
        return np.zeros((0,), np.float32)
    if hasattr(parts[0], "detach"):
        import torch

        return torch.cat([p if hasattr(p, "detach") else torch.from_numpy(p).to(parts[0].device) for p in parts])
    return np.concatenate(parts) if len(parts) > 1 else parts[0]


def _take(x, idx: np.ndarray):
    if hasattr(x, "detach"):
        import torch

        return x[torch.as_tensor(idx, device=x.device)]
    return x[idx]


def _progress_bar(total: int, progress: bool | None, hits: int):
    from fprt.progress import progress as bar

    if total == 0 or progress is False:
        return None
    return bar(total=total, desc=f"score ({hits} cached)" if hits else "score", unit="img", disable=None if progress is None else not progress)


def _bar_update(bar, clock, t0):
    if bar is None:
        return None

    def update(n: int) -> None:
        bar.update(n)
        infer = clock.rate("infer")
        dec = clock.rate("decode")
        bar.set_postfix_str(
            f"infer {infer:.0f}/s, decode {dec:.0f}/s, waited for input {clock.busy.get('infer_wait_input', 0):.1f}s"
            if infer and dec else "", refresh=False)

    return update


def describe_result(r: ScoreResult) -> str:
    """The lines ``fprt score`` prints: method, counts, metrics, throughput, where the outputs are."""
    s = r.summary
    c = s["counts"]
    lines = [
        f"scored {r.n_test} {r.task} test image(s) with {r.method} ({s['method']['source']}); "
        f"decisions: {', '.join(f'{k}: {v}' for k, v in c['decisions'].items())}",
        f"images: {c['images_total']} ({c['cache_hits']} from the cache, {c['computed']} computed, {c['bad_files']} bad)"
        f"  backend: {s['backend'].get('format')} on {s['backend'].get('device')}"
        + (f" ({', '.join(s['backend']['providers'])})" if s["backend"].get("providers") else ""),
    ]
    if r.metrics:
        keys = ("accuracy", "f1", "f1_macro", "precision", "recall", "roc_auc", "cohen_kappa")
        lines.append("metrics: " + ", ".join(f"{k} {r.metrics[k]:.4f}" for k in keys if isinstance(r.metrics.get(k), float)))
    rate = f"{r.images_per_s:.1f} images/s end to end"
    if r.model_images_per_s:
        rate += f", {r.model_images_per_s:.1f} images/s through decode+model"
    stages = {k: v["seconds"] for k, v in s["timings"].items() if isinstance(v, dict) and v.get("seconds")}
    slowest = sorted(stages, key=stages.get, reverse=True)[:3]
    lines.append(f"throughput: {rate} ({s['timings']['total_wall_s']:.1f} s; slowest stages: "
                 + ", ".join(f"{k} {stages[k]:.1f} s" for k in slowest) + ")")
    if s.get("evidence"):
        from fprt.runtime.evidence import EvidenceTable

        lines.append(EvidenceTable.from_dict(s["evidence"]).to_text())
    lines.append(f"outputs: {r.out}/ ({', '.join(s['outputs'] + ['summary.json'])})")
    return "\n".join(lines)
