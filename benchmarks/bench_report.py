"""Time of ``fprt report`` against the ``fprt score`` run it reports on, measured in the same run.

    python benchmarks/bench_report.py [--real 10000 --generated 25000] [--work /tmp/fprt-bench-report] [--json out.json]

Data: a membership test split of distinct 256×256 8-bit PNGs (``real_unknown/`` + ``generated/``; every
file different, so the embedding cache cannot fold them), half of the generated images noisy shifted
copies of real ones so the top of the ranking holds real matches. Peer: ``fprt.runtime.score`` with the
Siamese CNN of the trainer (``siamese_cnn`` at 256×256, untrained: speed does not depend on the weights;
the model of ``bench_score.py``), default method, an empty cache. Then ``write_report`` on its output
folder with the defaults (24 at each end, 4 neighbours, alignment of the top matches).

Goal (issue 17): report seconds ≤ 10 % of score seconds at 35,000 images. Also recorded: the page's
size and the images in it (they do not grow with the number of scored images) and, where headless
Chromium is installed, the seconds it takes to load the page with every image decoded. ``pytest benchmarks
--benchmark-only`` runs a small version.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _blob(rng, size: int) -> np.ndarray:
    from PIL import Image

    coarse = rng.normal(128, 40, size=(size // 16, size // 16)).clip(0, 255).astype(np.uint8)
    return np.asarray(Image.fromarray(coarse).resize((size, size), Image.Resampling.BICUBIC), dtype=np.float64)


def _write_chunk(args) -> int:
    """Images [start, stop) of one folder; image i of generated/ copies real image i // 2 when i is even."""
    from PIL import Image

    root, kind, start, stop, size, seed = args
    folder = Path(root) / "test" / kind
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(start, stop):
        if kind == "generated" and i % 2 == 0:
            src = _blob(np.random.default_rng((seed, i // 2)), size)
            img = np.roll(src, (i % 5) - 2, axis=1) + np.random.default_rng((seed, 7, i)).normal(0, 3, (size, size))
            name = f"gen_{i:06d}.png"
        elif kind == "generated":
            img = _blob(np.random.default_rng((seed, 1 << 20, i)), size)
            name = f"gen_{i:06d}.png"
        else:
            img = _blob(np.random.default_rng((seed, i)), size)
            name = f"real_{i:06d}.png"
        img = img + np.random.default_rng((seed, 9, i, kind == "generated")).normal(0, 1.5, (size, size))
        Image.fromarray(img.clip(0, 255).astype(np.uint8)).save(folder / name, compress_level=1)
    return stop - start


def make_data(root: Path, n_real: int, n_generated: int, *, size: int = 256, seed: int = 0, workers: int = 2) -> Path:
    """The membership test split (kept when it is already there with the same counts)."""
    stamp = root / f".complete-{n_real}-{n_generated}-{size}-{seed}"
    if stamp.exists():
        return root
    if root.exists():  # another size, or half written: start again
        import shutil

        shutil.rmtree(root)
    chunk = 500
    jobs = [(str(root), "real_unknown", a, min(a + chunk, n_real), size, seed) for a in range(0, n_real, chunk)]
    jobs += [(str(root), "generated", a, min(a + chunk, n_generated), size, seed) for a in range(0, n_generated, chunk)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        assert sum(pool.map(_write_chunk, jobs)) == n_real + n_generated
    stamp.touch()
    return root


def run(data: Path, work: Path, *, threads: int, workers: int, batch: int = 64, previous: dict | None = None) -> dict:
    """Score ``data`` then report on it; with ``previous`` (an earlier result of this function on the same
    ``work``), time the report again on that score output, against that score time."""
    import json

    from bench_score import siamese_onnx

    from fprt.runtime import score
    from fprt.runtime.report import write_report

    work.mkdir(parents=True, exist_ok=True)
    out = work / "score_out"
    load_start = os.getloadavg()[0]
    if previous is None:
        model = siamese_onnx(work)
        cache = Path(tempfile.mkdtemp(prefix="bench-cache-", dir=work))
        t0 = time.perf_counter()
        r = score(model, data, out, threads=threads, workers=workers, batch_size=batch, cache=cache, progress=None)
        score_s = time.perf_counter() - t0
        summary, n_test, score_load = r.summary, r.n_test, {"start": round(load_start, 2), "end": round(os.getloadavg()[0], 2)}
    else:
        summary = json.loads((out / "summary.json").read_text())
        score_s, n_test, score_load = previous["score_s"], summary["counts"]["test_images"], previous["score_load_1min"]
    load_report = os.getloadavg()[0]
    t0 = time.perf_counter()
    rep = write_report(out)
    report_s = time.perf_counter() - t0
    return {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "score_load_1min": score_load,
        "report_load_1min": {"start": round(load_report, 2), "end": round(os.getloadavg()[0], 2)},
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "images": summary["counts"]["images_total"],
        "test_images": n_test,
        "method": summary["method"]["name"],
        "score_s": round(score_s, 2),
        "report_s": round(report_s, 2),
        "ratio_report_vs_score": round(report_s / score_s, 4),
        "goal": "ratio <= 0.10",
        "report_html_bytes": rep.html.stat().st_size,
        "report_images": rep.images,
        "report_rows": rep.rows_shown,
        "evidence_png_bytes": rep.evidence_png.stat().st_size if rep.evidence_png else 0,
        "chromium_load_s": browser_load_seconds(rep.html),
    }


def browser_load_seconds(html: Path) -> float | None:
    """Seconds headless Chromium takes to load the page with every image decoded (None without Chromium)."""
    import shutil

    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        return None
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        return None
    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)
    try:
        t0 = time.perf_counter()
        driver.get(html.as_uri())  # returns once the load event fired: every data-URI image decoded
        ok = driver.execute_script("return Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
        return round(time.perf_counter() - t0, 2) if ok else None
    finally:
        driver.quit()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--real", type=int, default=10_000)
    p.add_argument("--generated", type=int, default=25_000)
    p.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "fprt-bench-report")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--json", type=Path, default=None, help="also write the result here")
    p.add_argument("--report-again", type=Path, default=None, metavar="RESULT_JSON",
                   help="time the report again on the score output of an earlier run (its result JSON) instead of scoring")
    a = p.parse_args(argv)
    t0 = time.perf_counter()
    data = make_data(a.work / "data", a.real, a.generated, workers=a.workers)
    print(f"data: {data} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    import json

    previous = json.loads(a.report_again.read_text()) if a.report_again else None
    res = run(data, a.work, threads=a.threads, workers=a.workers, previous=previous)
    print(f"fprt report on {res['test_images']:,} scored images ({res['images']:,} images in all, {res['method']}): "
          f"report {res['report_s']:.1f} s vs score {res['score_s']:.1f} s = {100 * res['ratio_report_vs_score']:.1f} % "
          f"(goal <= 10 %); page {res['report_html_bytes'] / 1e6:.2f} MB, {res['report_images']} images, "
          f"loads in Chromium in {res['chromium_load_s']} s; "
          f"load (1 min) during score {res['score_load_1min']}, during report {res['report_load_1min']}")
    if a.json:
        from fprt.io import atomic_write_json

        atomic_write_json(a.json, res)
    return 0


def test_report_vs_score_small(benchmark, tmp_path):
    """pytest-benchmark: the same comparison on 300 + 600 images (make bench)."""
    data = make_data(tmp_path / "data", 300, 600)
    res = benchmark.pedantic(lambda: run(data, tmp_path / "work", threads=2, workers=2), rounds=1, iterations=1)
    benchmark.extra_info.update(res)
    assert res["report_s"] > 0 and res["report_rows"] == 48


if __name__ == "__main__":
    sys.exit(main())
