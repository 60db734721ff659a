"""Simple baselines on the `make demo` test splits, independent of fprt's own methods (PIL, NumPy, scikit-learn,
scikit-image), to set beside the default `--method auto`:

    .venv/bin/python benchmarks/demo_baselines.py demo_out      # prints the baselines as JSON

benchmarks/results/demo_baselines.json holds one run's output with the machine, date and auto's figures.
"""
import csv, json, sys
from pathlib import Path
import numpy as np
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.metrics import roc_auc_score, accuracy_score
from skimage.metrics import structural_similarity as ssim

root = Path(sys.argv[1])
def load(paths, size):
    return np.stack([np.asarray(Image.open(p).convert("L").resize((size, size), Image.BILINEAR), np.float32) for p in paths])
def ncc_rows(x):
    x = x.reshape(len(x), -1).astype(np.float64); x -= x.mean(1, keepdims=True)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
def labels(task):
    return {r[0]: r[1] for r in csv.reader(open(root / task / "test/labels.csv")) if r and r[0] != "image_id"}
def ssim_matrix(a, b):
    return np.array([[ssim(x, y, data_range=255) for y in b] for x in a])
out = {}
# subsets
S = root / "subsets"
classes = sorted(p.name for p in (S / "train/real").iterdir())
gen_dirs = {c: next(d for d in (S / "train/generated").iterdir() if d.name.endswith(c)) for c in classes}
tr_g = [(p, c) for c in classes for p in sorted(gen_dirs[c].glob("*.png"))]
tr_r = [(p, c) for c in classes for p in sorted((S / "train/real" / c).glob("*.png"))]
te = sorted((S / "test/generated_unknown").glob("*.png")); lab = labels("subsets"); yt = [lab[p.stem] for p in te]
Xg, Xr, Xt = load([p for p, _ in tr_g], 32), load([p for p, _ in tr_r], 32), load(te, 32)
for name, X, y in (("pixel_logreg_on_generated", Xg, [c for _, c in tr_g]), ("pixel_logreg_on_real", Xr, [c for _, c in tr_r])):
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000)).fit(X.reshape(len(X), -1), y)
    out[f"subsets {name}"] = accuracy_score(yt, clf.predict(Xt.reshape(len(Xt), -1)))
ref = np.concatenate([Xr, Xg]); ref_y = np.array([c for _, c in tr_r] + [c for _, c in tr_g])
nn = (ncc_rows(Xt) @ ncc_rows(ref).T).argmax(1)
out["subsets raw_pixel_nn (32px NCC, real+generated training images)"] = accuracy_score(yt, ref_y[nn])
Xt64 = load(te, 64); ref64 = load([p for p, _ in tr_r] + [p for p, _ in tr_g], 64)
out["subsets ssim_nn (64px, real+generated training images)"] = accuracy_score(yt, ref_y[ssim_matrix(Xt64, ref64).argmax(1)])
# membership
M = root / "membership"
used = sorted((M / "train/real/used").glob("*.png")); nused = sorted((M / "train/real/not_used").glob("*.png"))
tr_gen = sorted((M / "train/generated").glob("*.png"))
te_r = sorted((M / "test/real_unknown").glob("*.png")); te_g = sorted((M / "test/generated").glob("*.png"))
lab = labels("membership"); ym = np.array([int(lab[p.stem]) for p in te_r])
Xtr = load(used + nused, 32).reshape(len(used) + len(nused), -1); ytr = [1] * len(used) + [0] * len(nused)
clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000, C=0.01)).fit(Xtr, ytr)
out["membership pixel_logreg (used vs not_used, 32px) ROC AUC"] = roc_auc_score(ym, clf.predict_proba(load(te_r, 32).reshape(len(te_r), -1))[:, 1])
for size in (32, 64):
    s = (ncc_rows(load(te_r, size)) @ ncc_rows(load(te_g, size)).T).max(1)
    out[f"membership raw_pixel_nn ({size}px NCC, max to test generated) ROC AUC"] = roc_auc_score(ym, s)
s = ssim_matrix(load(te_r, 64), load(te_g, 64)).max(1)
out["membership ssim_max (64px, exact, max to test generated) ROC AUC"] = roc_auc_score(ym, s)
print(json.dumps({k: round(float(v), 4) for k, v in out.items()}, indent=1))
