"""The ``fprt`` command line: thin typer wrappers, each one a call into the Python API.

Heavy modules (torch, onnxruntime) are imported inside the commands, never at module level, so
``fprt --help`` is instant.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="fprt",
    help="fprt, the fingerprint runtime: audit synthetic medical images for traces of their training images.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """fprt, the fingerprint runtime: audit synthetic medical images for traces of their training images."""


@app.command()
def checks() -> None:
    """Show what this machine offers fprt: torch/CUDA, GPU, nvcc, ONNX Runtime, TensorRT, extension."""
    from fprt.checks import print_checks, run_checks

    print_checks(run_checks())


@app.command("make-demo-data")
def make_demo_data_cmd(
    out: str = typer.Argument(..., metavar="OUT", help="Folder to create (must be missing or empty unless --overwrite)."),
    task: str = typer.Option("subsets", "--task", help="subsets | membership"),
    seed: int = typer.Option(0, "--seed", help="Same seed and options → byte-identical files."),
    classes: int = typer.Option(None, "--classes", help="subsets: number of subsets t1..tK [5]."),
    n_real: int = typer.Option(None, "--n-real", help="subsets: real training images per subset [60]."),
    n_generated: int = typer.Option(None, "--n-generated", help="Generated training images: per subset [60] | membership total [400]."),
    n_test: int = typer.Option(None, "--n-test", help="subsets: test generated images per subset [40]."),
    n_used: int = typer.Option(None, "--n-used", help="membership: real images the generator was trained on [150]."),
    n_not_used: int = typer.Option(None, "--n-not-used", help="membership: real images it never saw [150]."),
    n_test_used: int = typer.Option(None, "--n-test-used", help="membership test split: used images [= --n-used]."),
    n_test_not_used: int = typer.Option(None, "--n-test-not-used", help="membership test split: not-used images [= --n-not-used]."),
    n_test_generated: int = typer.Option(None, "--n-test-generated", help="membership test split: generated images [= --n-generated]."),
    copy_fraction: float = typer.Option(None, "--copy-fraction", help="membership: share of generated images that are near-copies/blends of used ones [0.4]."),
    memorised_fraction: float = typer.Option(None, "--memorised-fraction", help="membership: share of used images the generator memorised [0.7]."),
    blend_fraction: float = typer.Option(None, "--blend-fraction", help="membership: share of the copies that blend two used images [0.15]."),
    separation: float = typer.Option(None, "--separation", help="subsets: distance between cohorts (1 = default; <1 harder, >1 easier)."),
    artifact_strength: float = typer.Option(1.0, "--artifact-strength", help="Scale of each generator's weak artefact (0 = none)."),
    generated_naming: str = typer.Option("gen_t", "--generated-naming", help="subsets: generated folders gen_t1..gen_tK (gen_t) or t1..tK (t)."),
    size: int = typer.Option(256, "--size", help="Image side in pixels."),
    compress_level: int = typer.Option(6, "--compress-level", help="PNG zlib level 0-9 (PIL's default 6)."),
    workers: int = typer.Option(None, "--workers", help="Processes drawing images (0 = all cores; default: all cores for 200+ images)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty OUT."),
) -> None:
    """Write a synthetic CT-like demo dataset with its test labels.

    subsets: OUT/train/real/t1..tK, OUT/train/generated/gen_t1..gen_tK, OUT/test/generated_unknown;
    membership: OUT/train/real/{used,not_used}, OUT/train/generated, OUT/test/{real_unknown,generated};
    plus OUT/test/labels.csv (image_id,label), OUT/demo.json and OUT/sources.csv.
    """
    from fprt.demo import make_demo_data

    info = make_demo_data(
        out, task, seed=seed, classes=classes, n_real=n_real, n_generated=n_generated, n_test=n_test, n_used=n_used,
        n_not_used=n_not_used, n_test_used=n_test_used, n_test_not_used=n_test_not_used,
        n_test_generated=n_test_generated, copy_fraction=copy_fraction, memorised_fraction=memorised_fraction,
        blend_fraction=blend_fraction, separation=separation, artifact_strength=artifact_strength,
        generated_naming=generated_naming, size=size, compress_level=compress_level, workers=workers,
        overwrite=overwrite,
    )
    print(info.summary())
    print(f"labels: {info.out / 'test' / 'labels.csv'}   parameters: {info.out / 'demo.json'}")


@app.command("export-onnx")
def export_onnx_cmd(
    source: str = typer.Argument(..., metavar="RUN_OR_CHECKPOINT", help="A training run folder or its .safetensors checkpoint."),
    out: str = typer.Option(..., "--out", "-o", help="The ONNX file to write (model.onnx)."),
    opset: int = typer.Option(None, "--opset", help="ONNX opset (default: the exporter's, 20 with torch 2.14)."),
    fp16: bool = typer.Option(False, "--fp16", help="FP16 weights and compute, float32 inputs/outputs kept (for GPUs / TensorRT)."),
    int8: bool = typer.Option(False, "--int8", help="Static INT8 QDQ for ONNX Runtime's CPU EP; needs --calib."),
    calib: str = typer.Option(None, "--calib", help="Folder of real images (or a training dataset) to calibrate INT8 on."),
    uint8_input: bool = typer.Option(False, "--uint8-input", help="The graph takes raw uint8 N×1×H×W pixels and normalises them itself."),
    images: str = typer.Option(None, "--images", help="Folder of real images for the parity check (default: --calib, else the run's data)."),
    max_drop: float = typer.Option(0.02, "--max-drop", help="INT8 gate: the largest accuracy drop against fp32 allowed."),
    no_reduce_range: bool = typer.Option(False, "--no-reduce-range", help="INT8: 8-bit weights (for CPUs with VNNI)."),
    exporter: str = typer.Option("auto", "--exporter", help="auto (dynamo, then TorchScript if it fails) | dynamo | torchscript."),
) -> None:
    """Export a trained model to ONNX, check it against PyTorch (always) and print the parity figures."""
    from fprt.export import export_onnx
    from fprt.export.precision import Int8Gate, Int8Options

    export_onnx(
        source,
        out,
        opset=opset,
        fp16=fp16,
        int8=int8,
        calib=calib,
        uint8_input=uint8_input,
        images=images,
        gate=Int8Gate(max_drop=max_drop),
        int8_options=Int8Options(reduce_range=not no_reduce_range),
        exporter=exporter,
    )


@app.command("build-engine")
def build_engine_cmd(
    onnx: str = typer.Argument(..., metavar="MODEL_ONNX", help="An ONNX file written by `fprt export-onnx`."),
    out: str = typer.Option(..., "--out", "-o", help="The engine file to write (model.plan)."),
    fp16: bool = typer.Option(False, "--fp16", help="FP16 engine (TensorRT 11: built from an FP16 conversion of the ONNX)."),
    min_batch: int = typer.Option(None, "--min-batch", help="Smallest batch the engine accepts (default 1)."),
    opt_batch: int = typer.Option(None, "--opt-batch", help="Batch the engine is tuned for (default 64)."),
    max_batch: int = typer.Option(None, "--max-batch", help="Largest batch the engine accepts (default 256)."),
    timing_cache: str = typer.Option(None, "--timing-cache", help="TensorRT timing cache file, read and updated."),
    rebuild: bool = typer.Option(False, "--rebuild", help="Build even when a matching engine exists."),
) -> None:
    """Build a TensorRT engine for this GPU from an fprt ONNX file (needs the [gpu] extra and a GPU)."""
    from fprt.export import build_engine

    build_engine(
        onnx, out, fp16=fp16, min_batch=min_batch, opt_batch=opt_batch, max_batch=max_batch, timing_cache=timing_cache, rebuild=rebuild
    )


@app.command("info")
def info_cmd(
    root: str = typer.Argument(..., metavar="DIR", help="A dataset folder in one of the ImageCLEFmedical GANs layouts."),
    json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON instead of tables."),
    sample: int = typer.Option(2000, "--sample", min=0, help="Read sizes/modes from at most this many files, spread evenly (0: all)."),
    check: str = typer.Option("all", "--check", help="Find bad files by decoding: all | sample | none."),
    workers: int = typer.Option(None, "--workers", min=0, help="Decode threads (default: one per CPU, at most 8; 0: none)."),
) -> None:
    """Show a dataset folder's layout, image counts per class, image sizes/modes and bad files."""
    import json

    from fprt.data.summary import CHECKS, print_summary, summarize

    if check not in CHECKS:
        raise typer.BadParameter(f"must be one of {', '.join(CHECKS)}, got {check!r}", param_hint="--check")
    summary = summarize(root, sample=sample or None, check=check, workers=workers, progress=not json_out)
    if json_out:
        typer.echo(json.dumps(summary, indent=2))
    else:
        print_summary(summary)


@app.command("train")
def train_cmd(
    family: str = typer.Argument(..., metavar="FAMILY", help="siamese | pair | classifier | features"),
    data: str = typer.Option(..., "--data", help="Dataset folder with a training layout (or train*/ + test*/ subfolders)."),
    out: str = typer.Option(..., "--out", "-o", help="Run folder to write (weights, config.json, metrics.csv, plots/)."),
    task: str = typer.Option(None, "--task", help="subsets | membership (default: what --data holds)."),
    model: str = typer.Option(None, "--model", help="Registered model (default: siamese_cnn, pair_xattn, classifier_resnet18, features_resnet50)."),
    epochs: int = typer.Option(None, "--epochs", min=1, help="Epochs (default: the paper's: 50 siamese, 20 pair, 10 classifier)."),
    batch_size: int = typer.Option(None, "--batch-size", min=1, help="Pairs (siamese/pair) or images (classifier) per step."),
    lr: float = typer.Option(None, "--lr", help="Adam learning rate (default 1e-4)."),
    device: str = typer.Option("cpu", "--device", help="cpu | cuda"),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its last finished epoch."),
    seed: int = typer.Option(0, "--seed", help="Seed of the initialisation, the validation split and the pairs."),
    val_fraction: float = typer.Option(0.1, "--val-fraction", help="Held-out share of each class for validation."),
    patience: int = typer.Option(10, "--patience", min=0, help="Early stopping: epochs without improvement (0: off)."),
    size: int = typer.Option(None, "--size", help="Input size (default: the model's: 256 siamese_cnn, 224 others)."),
    weights: str = typer.Option(None, "--weights", help="Local torchvision state dict for the backbone (nothing is downloaded)."),
    head: str = typer.Option(None, "--head", help="features: svm | logreg | kmeans | agglomerative (default svm)."),
    miner: str = typer.Option("hard", "--miner", help="siamese: hard (online hard-negative mining) | none (random pairs only)."),
    train_on: str = typer.Option("all", "--train-on", help="classifier: all (real + generated) | real (the paper's setting)."),
    backbone: str = typer.Option(None, "--backbone", help="pair_xattn backbone: resnet50 (paper), resnet18, ... or cnn (small)."),
    steps_per_epoch: int = typer.Option(None, "--steps-per-epoch", min=1, help="Cap on optimiser steps per epoch."),
    workers: int = typer.Option(None, "--workers", min=0, help="Decode threads (default: one per CPU, at most 8)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty --out (the new run is swapped in when it finishes)."),
) -> None:
    """Train a Siamese net, pair scorer, classifier or features+head on a dataset; writes a run folder."""
    from fprt.trainer import TrainConfig, train
    from fprt.trainer.models import FAMILIES

    if family not in FAMILIES:
        raise typer.BadParameter(f"must be one of {', '.join(FAMILIES)}, got {family!r}", param_hint="FAMILY")
    config = TrainConfig(
        family=family, model=model, task=task, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
        val_fraction=val_fraction, patience=patience or None, device=device, miner=miner, size=size, weights=weights,
        head=head, train_on=train_on, model_kwargs={"backbone": backbone} if backbone else {},
        steps_per_epoch=steps_per_epoch, workers=workers,
    )

    def on_epoch(row: dict) -> None:
        typer.echo(f"epoch {row['epoch']}: loss {row['train_loss']:.4f}  val {row['val_metric_name']} "
                   f"{row['val_metric']:.4f}  ({row['seconds']:.1f} s)")

    result = train(data, out, config, resume=resume, overwrite=overwrite, on_epoch=on_epoch)
    meta = result.meta
    typer.echo(
        f"trained {meta.model} ({meta.task}): best val {result.metric_name} {result.best_metric:.4f} at epoch "
        f"{result.best_epoch} ({result.status}, {result.seconds:.1f} s)\n"
        f"run: {result.run_dir}  (model.safetensors, config.json, metrics.csv, plots/)"
    )
    for name, b in result.baselines.items():  # the simple baselines on the same validation split
        typer.echo(f"baseline {name}: val {b['val_metric_name']} {b['val_metric']:.4f} ({b['what']}; fitted on {b['fitted_on']})")


@app.command("score")
def score_cmd(
    data: str = typer.Argument(..., metavar="DATA", help="Dataset folder with a test split (or train*/ + test*/ subfolders)."),
    out: str = typer.Option(..., "--out", "-o", help="Folder for run.csv, scores.csv, summary.json (+ metrics.json, plots)."),
    model: str = typer.Option(None, "--model", "-m", help="An .onnx file, a training run folder / .safetensors, or a .plan engine."),
    method: str = typer.Option(None, "--method", help="subsets: centroid | classifier | knn; membership: auto | max-sigma | max-threshold | logreg | pair | vcmi-max | vcmi-std | vcmi-retrieval | ssim-max | phash (default: per task and model)."),
    reference: str = typer.Option(None, "--reference", help="Training data (real/ + generated/) for centroid/knn/logreg; default: DATA's train split."),
    labels: str = typer.Option(None, "--labels", help="True labels (run.csv format) → metrics.json and plots."),
    backend: str = typer.Option(None, "--backend", help="Override the backend chosen from the model file: onnx | torch | tensorrt."),
    device: str = typer.Option("cpu", "--device", help="cpu | cuda"),
    threads: int = typer.Option(None, "--threads", min=1, help="CPU threads of the model (default: physical cores)."),
    compile_: bool = typer.Option(False, "--compile", help="torch backend: torch.compile the model."),
    batch_size: int = typer.Option(64, "--batch-size", min=1, help="Images per model call."),
    workers: int = typer.Option(None, "--workers", min=0, help="Decode threads (default: one per CPU, at most 8); with --ray: embed actors (default: the cluster's CPUs)."),
    ray: str = typer.Option(None, "--ray", metavar="auto|ADDRESS", help="Run decode+embed and the similarity step on Ray: auto = a local instance with every core, or a cluster address (HOST:6379, ray://HOST:10001). Needs the ray extra: pip install 'fprt\\[ray]'."),
    cache: str = typer.Option(None, "--cache", help="Embedding cache folder (default $FPRT_CACHE_DIR/embeddings or ~/.cache/fprt/embeddings)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Neither read nor write the embedding cache."),
    on_error: str = typer.Option("stop", "--on-error", help="Bad images: stop (list every one, write nothing; the good ones' embeddings stay cached) | skip (+ bad_files.csv)."),
    check: str = typer.Option("verify", "--check", help="Kept for compatibility: every image the model needs is fully decoded in the one read that hashes it."),
    top_k: int = typer.Option(5, "--top-k", min=1, help="Neighbours per image in scores.csv (k of knn and pair)."),
    alpha: float = typer.Option(0.5, "--alpha", help="max-sigma: threshold = mu + alpha * sigma."),
    threshold: float = typer.Option(None, "--threshold", help="Fixed decision threshold in the score's units (overrides the method's rule)."),
    ssim_size: int = typer.Option(256, "--ssim-size", min=16, help="ssim-max: compare images at this size."),
    ssim_exact: bool = typer.Option(False, "--ssim-exact", help="ssim-max: SSIM of every real x generated pair (slow) instead of on each real image's raw-pixel NCC candidates."),
    csv_header: str = typer.Option(None, "--csv-header", help="Write this header line into run.csv, e.g. 'image_path,predicted_class'."),
    keep_extension: bool = typer.Option(False, "--keep-extension", help="run.csv ids keep the file extension."),
    subset_labels: str = typer.Option("names", "--subset-labels", help="subsets run.csv labels: names (t1..tK) | index (1..K)."),
    no_plots: bool = typer.Option(False, "--no-plots", help="With --labels: skip the plots."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty --out (swapped in whole when the run finishes)."),
    allow_task_mismatch: bool = typer.Option(False, "--allow-task-mismatch", help="Score with a model trained for the other task (its embeddings as they are)."),
    report: bool = typer.Option(False, "--report", help="Then write OUT/report.html and OUT/evidence.png (as `fprt report OUT`)."),
) -> None:
    """Score a test split: images → run.csv (validated submission), scores.csv, summary.json."""
    from fprt.runtime import score

    if ray is not None:  # Ray is imported only here, only with --ray
        from functools import partial

        from fprt.runtime.distributed import score_on_ray

        score, workers = partial(score_on_ray, ray=ray, actors=workers), None
    result = score(
        model, data, out, method=method, reference=reference, labels=labels, backend=backend, device=device,
        threads=threads, compile=compile_, batch_size=batch_size, workers=workers, cache=cache, use_cache=not no_cache,
        on_error=on_error, check=check, k=top_k, alpha=alpha, threshold=threshold, ssim_size=ssim_size, ssim_exact=ssim_exact,
        csv_header=csv_header, keep_extension=keep_extension, subset_labels=subset_labels, plots=not no_plots,
        overwrite=overwrite, allow_task_mismatch=allow_task_mismatch,
    )
    from fprt.runtime.api import describe_result

    typer.echo(describe_result(result))
    if report:
        from fprt.runtime.report import write_report

        typer.echo(write_report(out, labels=labels).describe())


@app.command("report")
def report_cmd(
    out: str = typer.Argument(..., metavar="OUT", help="The --out folder of `fprt score` (summary.json, scores.csv, ...)."),
    top: int = typer.Option(24, "--top", min=1, help="membership: real images shown at each end of the ranking."),
    per_class: int = typer.Option(4, "--per-class", min=1, help="subsets: generated images shown per predicted subset."),
    neighbours: int = typer.Option(4, "--neighbours", min=1, help="Nearest images shown beside each image."),
    labels: str = typer.Option(None, "--labels", help="True labels (run.csv format) → ROC, confusion matrix and truth on the page."),
) -> None:
    """Write OUT/report.html (one self-contained page: the evidence behind the decisions) and OUT/evidence.png."""
    from fprt.runtime.report import write_report

    typer.echo(write_report(out, top=top, per_class=per_class, neighbours=neighbours, labels=labels).describe())


@app.command("bench")
def bench_cmd(
    model: str = typer.Argument(..., metavar="MODEL", help="A training run folder / .safetensors (every format is exported and timed) or an fprt .onnx file."),
    data: str = typer.Option(None, "--data", help="Dataset folder: timing images, INT8 calibration (training split), accuracy (test/labels.csv)."),
    batch_sizes: str = typer.Option("1,8,64", "--batch-sizes", help="Comma-separated batch sizes."),
    backends: str = typer.Option(None, "--backends", help="Formats to time, comma-separated: torch,onnx,tensorrt (default: all)."),
    precisions: str = typer.Option(None, "--precisions", help="Precisions, comma-separated: fp32,int8,fp16,bf16 (default: each format's own)."),
    device: str = typer.Option("cpu", "--device", help="cpu | cuda"),
    threads: int = typer.Option(None, "--threads", min=1, help="CPU intra-op threads of PyTorch and ONNX Runtime (default: physical cores)."),
    rounds: int = typer.Option(None, "--rounds", min=1, help="Timed rounds per batch size (default: as many as fit in --seconds)."),
    seconds: float = typer.Option(6.0, "--seconds", min=0.0, help="Time budget per batch size that sets the rounds."),
    images: int = typer.Option(64, "--images", min=1, help="Images decoded once for timing and embedding drift."),
    no_accuracy: bool = typer.Option(False, "--no-accuracy", help="Skip the accuracy runs on --data's labels."),
    out: str = typer.Option("runs/bench", "--out", "-o", help="Folder for bench.json and bench.md."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty --out."),
) -> None:
    """Time every format × precision × batch size of MODEL and print one table (status, p50/p99 ms, images/s, accuracy, drift, size)."""
    params = dict(locals())
    from pathlib import Path

    from fprt.outdir import check_out_path
    from fprt.runtime.bench import command_line, run_bench

    check_out_path(Path(out), overwrite=overwrite, data=[Path(data)] if data else [])  # before the timing, not after

    report = run_bench(
        model, data=data, batch_sizes=batch_sizes, backends=backends, precisions=precisions, device=device, threads=threads,
        rounds=rounds, seconds=seconds, images=images, accuracy=not no_accuracy,
        command=command_line(params=params),
        log=lambda line: typer.echo(line, err=True),
    )
    report.print()
    written = report.write(out, overwrite=overwrite)
    typer.echo(f"wrote {written['json']} and {written['markdown']}")


def main() -> None:
    import sys

    from fprt.errors import FprtError

    try:
        app()
    except FprtError as exc:
        print(f"fprt: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
