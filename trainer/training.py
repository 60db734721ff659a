"""The training loop: ``train(data, out, TrainConfig(...))`` → a run folder (see ``fprt.trainer.checkpoint``).

One loop for every trainable family; what differs is a small *strategy* per family:

- ``siamese`` (``siamese_cnn``, ``siamese_resnet*``), contrastive loss (Euclidean, margin 1.0).
  subsets: balanced (generated, real) pairs plus — unless ``miner="none"`` — an online hard-negative
  miner over every (generated, real) combination of the batch; validation: nearest-centroid accuracy of
  held-out generated images against the real images' class centroids (the AIMultimediaLab rule).
  membership, ``miner="none"``: the paper's balanced (generated, used) / (generated, not used) pairs;
  validation: ROC AUC of held-out real images scored by their distance to the nearest generated image.
  membership, ``miner="hard"`` (default): self-pairs — each real image against trace-like copies of
  itself, in batches of alike slices (``SelfPairStrategy``), which is what finding a used image's trace
  needs; validation AUC on all real images against the generated ones.
- ``pair`` (``pair_xattn``): the same pairs, binary cross-entropy on the pair logits. Validation:
  subsets — accuracy of the class whose reference real images get the highest mean probability;
  membership — AUC of the highest probability over each held-out real image's 5 nearest generated
  images (by ``embed``), as the runtime scores it.
- ``classifier`` (``classifier_resnet*``): cross-entropy on labelled images — the real ones, plus the
  training part of the generated ones unless ``train_on="real"`` (the paper's setting); validation:
  accuracy on held-out generated images, as the paper validated.
- ``features``: no loop; frozen features + a scikit-learn head (``fprt.trainer.heads``).

Validation split: ``val_fraction`` (default 10 %) of each class, stratified — of the generated images
for subsets, of the real images for membership — drawn from ``seed``. Adam; ``epochs``,
``batch_size`` and ``lr`` default to the paper of the model (``ModelSpec.train_defaults``).

Determinism and resume: the model is initialised from ``seed``; epoch e draws its pairs/order from
``numpy.random.default_rng([seed, e])`` and nothing else is random, so a run resumed from its last
finished epoch (weights + Adam state restored exactly from safetensors) ends with the same weights as
an uninterrupted one. Model selection: the untrained model (epoch 0) is the first candidate, so a run
whose training never beats it on validation keeps the untrained weights (and says so). Early stopping:
stop after ``patience`` epochs without a better validation metric; the best epoch's weights are what
``model.safetensors`` holds.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch.nn import functional as F

from fprt import __version__
from fprt.errors import FprtError, ModelError
from fprt.modelmeta import ModelMeta
from fprt.preprocess import Preprocess
from fprt.trainer.augment import copy_transform, half_blend
from fprt.trainer.checkpoint import RunFolder
from fprt.trainer.datasets import ImagePool, TaskData, load_task_data
from fprt.trainer.distances import get_distance
from fprt.trainer.losses import ContrastiveLoss
from fprt.trainer.miners import HardNegativeMiner
from fprt.trainer.models import FAMILIES, create_model, get_spec
from fprt.trainer.pairs import Pairs, check_split_counts, epoch_pairs, validation_split

log = logging.getLogger("fprt.trainer")

DEFAULT_MODELS = {
    "siamese": "siamese_cnn",
    "pair": "pair_xattn",
    "classifier": "classifier_resnet18",
    "features": "features_resnet50",
}
MINERS = ("hard", "none")
TRAIN_ON = ("all", "real")
# arguments that may change when a run is resumed; every other one must match the saved run
RESUMABLE_CHANGES = {"epochs", "patience", "device", "workers", "cache", "eval_batch_size", "progress"}


@dataclass
class TrainConfig:
    """Every argument of a training run (``None`` = the model's default)."""

    family: str = "siamese"
    model: str | None = None
    task: str | None = None
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    seed: int = 0
    val_fraction: float = 0.1
    patience: int | None = 10
    device: str = "cpu"
    miner: str = "hard"
    """siamese: ``hard`` (subsets: online hard-negative mining; membership: self-pairs of transformed
    copies) or ``none`` (the paper's random balanced pairs only)."""
    margin: float | None = None
    """contrastive margin (default 1.0 for Euclidean embeddings)."""
    mined_per_anchor: int = 2
    """hard pairs per anchor: this many farthest positives and closest negatives (membership self-pairs:
    one positive per copy and twice this many negatives)."""
    size: int | None = None
    channels: int | None = None
    normalize: str | None = None
    resize: str | None = None
    weights: str | None = None
    """a local torchvision state dict for the backbone (nothing is downloaded)."""
    head: str | None = None
    """features: svm, logreg, kmeans or agglomerative."""
    train_on: str = "all"
    """classifier: ``all`` (real + training generated images) or ``real`` (the paper's setting)."""
    model_kwargs: dict = field(default_factory=dict)
    steps_per_epoch: int | None = None
    """cap on optimiser steps per epoch (None = one pass over the anchors / images)."""
    workers: int | None = None
    cache: bool | None = None
    eval_batch_size: int = 64
    progress: bool | None = None


@dataclass
class TrainResult:
    run_dir: Path
    meta: ModelMeta
    history: list[dict]
    best_epoch: int | None
    best_metric: float | None
    metric_name: str
    status: str
    seconds: float
    baselines: dict = field(default_factory=dict)  # simple baselines on the same validation split (config.json "baselines")


# ---------------------------------------------------------------------------------------------- helpers
def resolve_preprocess(spec, cfg: TrainConfig) -> Preprocess:
    base = spec.preprocess
    changes = {k: getattr(cfg, k) for k in ("size", "channels", "normalize", "resize") if getattr(cfg, k) is not None}
    try:
        return replace(base, **changes)
    except ValueError as exc:
        raise FprtError(f"preprocessing option: {exc}") from exc


def best_threshold(scores, labels, *, larger_is_positive: bool) -> tuple[float, float]:
    """The threshold on ``scores`` with the best accuracy (midpoint between neighbouring scores)."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels).astype(bool)
    u = np.unique(s)
    cands = np.concatenate([[u[0] - 1e-6], (u[:-1] + u[1:]) / 2, [u[-1] + 1e-6]]) if len(u) else np.array([0.0])
    best_t, best_acc = float(cands[0]), -1.0
    for t in cands:
        pred = s >= t if larger_is_positive else s <= t
        acc = float((pred == y).mean())
        if acc > best_acc:
            best_t, best_acc = float(t), acc
    return best_t, best_acc


def _auc(labels, scores) -> float:
    from sklearn.metrics import roc_auc_score

    labels = np.asarray(labels)
    if len(np.unique(labels)) < 2:
        return float("nan")
    return float(roc_auc_score(labels, np.asarray(scores, dtype=np.float64)))


def _capped_per_class(labels: np.ndarray, cap: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng([seed, 7919])
    keep = []
    for lab in np.unique(labels):
        idx = np.flatnonzero(labels == lab)
        keep.append(np.sort(rng.permutation(idx)[:cap]) if len(idx) > cap else idx)
    return np.sort(np.concatenate(keep))


# ---------------------------------------------------------------------------------------------- strategies
def _gather(pools, items: np.ndarray, batch: np.ndarray, size: int) -> torch.Tensor:
    """uint8 N×1×S×S pixels of ``items[batch]``, each item a (pool index, image index) pair."""
    out = torch.empty((len(batch), 1, size, size), dtype=torch.uint8)
    for src in range(len(pools)):
        sel = np.flatnonzero(items[batch, 0] == src)
        if len(sel):
            out[torch.from_numpy(sel)] = pools[src].get(items[batch[sel], 1])
    return out


class _Strategy:
    metric_name = "accuracy"

    def __init__(self, model, data: TaskData, cfg: TrainConfig, spec, device: torch.device, pre):
        self.model, self.data, self.cfg, self.spec, self.device, self.pre = model, data, cfg, spec, device, pre

    def inputs(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.pre(pixels.to(self.device, non_blocking=True))

    @torch.no_grad()
    def embed(self, pool: ImagePool, fn: Callable | None = None) -> torch.Tensor:
        fn = fn or self.model
        outs = [fn(self.inputs(x)).float().cpu() for x in pool.batches(self.cfg.eval_batch_size)]
        return torch.cat(outs) if outs else torch.empty(0)

    def meta_fields(self, val: dict) -> dict:
        return {}


class _PairSampling(_Strategy):
    """Anchors (generated) and partners (real) with the validation split of the task."""

    def __init__(self, *args):
        super().__init__(*args)
        d = self.data
        if d.task == "subsets":
            tr, va = validation_split(d.generated_labels, self.cfg.val_fraction, self.cfg.seed)
            self.anchors, self.anchor_labels = d.generated.subset(tr), d.generated_labels[tr]
            self.partners, self.partner_labels = d.real, d.real_labels
            self.val, self.val_labels = d.generated.subset(va), d.generated_labels[va]
            self.metric_name = "accuracy"
        else:
            tr, va = validation_split(d.real_labels, self.cfg.val_fraction, self.cfg.seed)
            self.anchors, self.anchor_labels = d.generated, d.generated_labels
            self.partners, self.partner_labels = d.real.subset(tr), d.real_labels[tr]
            self.val, self.val_labels = d.real.subset(va), d.real_labels[va]
            self.metric_name = "auc"
            # generated images the held-out real images are compared with (all, up to 2,000)
            gen_idx = np.arange(len(d.generated))
            if len(gen_idx) > 2000:
                gen_idx = np.sort(np.random.default_rng([self.cfg.seed, 15485863]).permutation(gen_idx)[:2000])
            self.val_generated = d.generated.subset(gen_idx)
        self.n_train, self.n_val = len(self.anchors), len(self.val)

    def epoch_batches(self, rng: np.random.Generator) -> list[Pairs]:
        pairs = epoch_pairs(self.anchor_labels, self.partner_labels, rng)
        return list(pairs.batches(self.cfg.batch_size))

    def pair_inputs(self, b: Pairs):
        xa = self.inputs(self.anchors.get(b.anchors))
        xp = self.inputs(self.partners.get(b.partners))
        return xa, xp


class SiameseStrategy(_PairSampling):
    def __init__(self, *args):
        super().__init__(*args)
        self.distance = get_distance(self.spec.metric)
        self.loss_fn = ContrastiveLoss(self.distance, neg_margin=self.cfg.margin)
        self.miner = (
            HardNegativeMiner(self.distance, negatives_per_anchor=self.cfg.mined_per_anchor,
                              positives_per_anchor=self.cfg.mined_per_anchor)
            if self.cfg.miner == "hard" else None
        )
        if self.data.task == "subsets":
            keep = _capped_per_class(self.partner_labels, 500, self.cfg.seed)
            self.centroid_pool, self.centroid_labels = self.partners.subset(keep), self.partner_labels[keep]

    def loss(self, b: Pairs) -> torch.Tensor:
        xa, xp = self.pair_inputs(b)
        emb = self.model(torch.cat([xa, xp]))
        ea, ep = emb[: len(xa)], emb[len(xa):]
        values = self.distance.pairwise(ea, ep)
        targets = torch.from_numpy(b.targets).to(self.device)
        if self.miner is None:
            return self.loss_fn.from_values(values, targets)
        la = torch.from_numpy(self.anchor_labels[b.anchors]).to(self.device)
        lp = torch.from_numpy(self.partner_labels[b.partners]).to(self.device)
        matrix = self.distance.matrix(ea, ep)
        rows, cols, mined = self.miner.mine(matrix, la, lp)
        return self.loss_fn.from_values(torch.cat([values, matrix[rows, cols]]), torch.cat([targets, mined]))

    @torch.no_grad()
    def validate(self) -> dict:
        closer_min = not self.distance.larger_is_closer
        if self.data.task == "subsets":
            real = self.embed(self.centroid_pool)
            k = len(self.data.class_names)
            centroids = torch.stack([real[torch.from_numpy(self.centroid_labels == c)].mean(0) for c in range(k)])
            val = self.embed(self.val)
            d = self.distance.matrix(val, centroids)
            pred = (d.argmin(1) if closer_min else d.argmax(1)).numpy()
            acc = float((pred == self.val_labels).mean())
            # balanced validation loss over every (held-out generated, real) pair
            m = self.distance.matrix(val, real)
            same = torch.from_numpy(self.val_labels[:, None] == self.centroid_labels[None, :])
            per = self.loss_fn.per_pair(m, same.long())
            val_loss = 0.5 * (float(per[same].mean()) + float(per[~same].mean()))
            return {"val_metric": acc, "val_loss": val_loss, "pred": pred, "centroids": centroids.numpy(),
                    "val_emb": val.numpy(), "real_emb": real.numpy(), "real_labels": self.centroid_labels}
        gen = self.embed(self.val_generated)
        val = self.embed(self.val)
        d = self.distance.matrix(val, gen)
        nearest = (d.min(1).values if closer_min else d.max(1).values).numpy()
        closeness = -nearest if closer_min else nearest
        auc = _auc(self.val_labels, closeness)
        thr, _ = best_threshold(nearest, self.val_labels, larger_is_positive=not closer_min)
        pred = ((nearest <= thr) if closer_min else (nearest >= thr)).astype(np.int64)
        return {"val_metric": auc, "pred": pred, "threshold": thr, "scores": closeness,
                "val_emb": val.numpy(), "real_emb": gen.numpy(), "real_labels": np.ones(len(gen), dtype=np.int64)}

    def meta_fields(self, val: dict) -> dict:
        if self.data.task == "subsets":
            return {"centroids": val["centroids"].astype(np.float64).tolist()}
        rule = "min" if not self.distance.larger_is_closer else "max"
        op = "<=" if rule == "min" else ">="
        return {"threshold": float(val["threshold"]),
                "extra": {"threshold_rule": f"used when the {rule} {self.distance.metric} over generated images {op} threshold",
                          "threshold_score": f"{rule}_{self.distance.metric}_to_generated"}}


class SelfPairStrategy(SiameseStrategy):
    """Membership with ``miner="hard"``: learn to match an image with trace-like copies of itself.

    What makes a real image "used" is a generated image that carries its trace — re-noised, moved,
    warped, restyled or blended with another slice — so the embedding should put an image and such
    copies of it close together and every *other* slice, however alike, far apart.

    - Items: the real images of the training split, used and not used alike (their labels are not
      used for training). Generated images are left out: some of them are copies of a real image or
      of each other, and a self-pair batch would push such a copy away from its source as a stranger.
    - Batches: ``batch_size // neighbours`` groups of alike slices — a random seed image and its
      ``neighbours − 1`` nearest real images by intensity-normalised raw pixels
      (``fprt.runtime.evidence.membership.pixel_vectors`` searched with the similarity extension) — so
      the negatives are the similar slices (same level, same body size) a copy must be told apart from,
      not random easy ones. Every image is a seed once an epoch.
    - Copies: two of each image (``fprt.trainer.augment.copy_transform``: shift, small turn, rescale,
      smooth warp, blur, gamma, window, fresh noise — the demo's and the overview's trace kinds), the
      second glued to half of a batch-mate now and then (``half_blend``, as a generator blends two
      memorised slices). Contrastive loss on every (copy, other copy of the same image) pair and on each
      copy's ``2 × mined_per_anchor`` hardest negatives among the other images' copies (a blend is never a
      negative of its partner).

    Validation, as the test split is scored: every real image of the training split by its distance to
    the nearest generated image, ROC AUC against used / not used; the threshold is chosen on the same
    images. The papers' (generated, random used / not-used) pairs remain available with ``miner="none"``.
    """

    neighbours = 8
    blend_probability = 0.3

    def __init__(self, *args):
        super().__init__(*args)
        d = self.data
        # one positive per copy, so twice --mined-per-anchor negatives: half the copy's group of alike slices
        self.self_miner = HardNegativeMiner(self.distance, negatives_per_anchor=2 * self.cfg.mined_per_anchor)
        self.items = np.arange(len(d.real))
        self.val, self.val_labels = d.real, d.real_labels
        self.n_train, self.n_val = len(self.items), len(self.val)
        self.alike = self._alike(d.real, min(self.neighbours, len(d.real)) - 1)

    @staticmethod
    def _alike(pool: ImagePool, k: int) -> np.ndarray:
        """N×k: each image's ``k`` most alike other images (best raw-pixel NCC at 32×32)."""
        if k < 1:
            return np.empty((len(pool), 0), dtype=np.int64)
        from fprt.runtime.evidence.membership import pixel_vectors
        from fprt.runtime.methods.reductions import search
        from fprt.trainer.baselines import pool_pixels

        vectors = pixel_vectors(pool_pixels(pool))
        return np.asarray(search(vectors, vectors, metric="cosine", k=k, exclude_self=True).row_indices, dtype=np.int64)

    def epoch_batches(self, rng: np.random.Generator) -> list[np.ndarray]:
        self.copy_rng = torch.Generator().manual_seed(int(rng.integers(2**62)))
        seeds = rng.permutation(self.items)
        per = max(1, self.cfg.batch_size // (self.alike.shape[1] + 1))
        return [np.unique(np.concatenate([seeds[s:s + per], self.alike[seeds[s:s + per]].ravel()]))
                for s in range(0, len(seeds), per)]

    def loss(self, batch: np.ndarray) -> torch.Tensor:
        x = self.data.real.get(batch)
        n = len(x)
        partner = torch.randint(0, n, (n,), generator=self.copy_rng)
        blended, which = half_blend(x, x[partner], self.copy_rng, probability=self.blend_probability)
        which &= partner != torch.arange(n)
        copies = torch.cat([copy_transform(x, self.copy_rng), copy_transform(blended, self.copy_rng)])
        emb = self.model(self.inputs(copies))
        matrix = self.distance.matrix(emb[:n], emb[n:])
        # the blend of image i (column i) is not a stranger to its partner (row partner[i])
        closest_never = float("-inf") if self.distance.larger_is_closer else float("inf")
        shared = torch.zeros((n, n), dtype=torch.bool, device=matrix.device)
        shared[partner[which].to(matrix.device), torch.nonzero(which).ravel().to(matrix.device)] = True
        ident = torch.arange(n, device=self.device)
        rows, cols, targets = self.self_miner.mine(matrix.detach().masked_fill(shared, closest_never), ident, ident)
        return self.loss_fn.from_values(matrix[rows, cols], targets)


class PairStrategy(_PairSampling):
    refs_per_class = 8
    topk = 5

    def __init__(self, *args):
        super().__init__(*args)
        self.loss_fn = torch.nn.BCEWithLogitsLoss()
        if self.data.task == "subsets":
            keep = _capped_per_class(self.partner_labels, self.refs_per_class, self.cfg.seed)
            self.refs, self.ref_labels = self.partners.subset(keep), self.partner_labels[keep]

    def loss(self, b: Pairs) -> torch.Tensor:
        xa, xp = self.pair_inputs(b)
        logits = self.model.pair_logits(xa, xp)
        return self.loss_fn(logits, torch.from_numpy(b.targets).to(self.device, torch.float32))

    @torch.no_grad()
    def _tokens(self, pool: ImagePool) -> torch.Tensor:
        return torch.cat([self.model.tokens(self.inputs(x)) for x in pool.batches(self.cfg.eval_batch_size)])

    @torch.no_grad()
    def validate(self) -> dict:
        m = self.model
        if self.data.task == "subsets":
            tv, tr = self._tokens(self.val), self._tokens(self.refs)
            k = len(self.data.class_names)
            probs = torch.empty(len(tv), len(tr))
            for i in range(len(tv)):
                probs[i] = torch.sigmoid(m.logits_from_tokens(tv[i:i + 1].expand(len(tr), -1, -1), tr)).cpu()
            per_class = torch.stack([probs[:, torch.from_numpy(self.ref_labels == c)].mean(1) for c in range(k)], 1)
            pred = per_class.argmax(1).numpy()
            same = torch.from_numpy(self.val_labels[:, None] == self.ref_labels[None, :]).float()
            val_loss = float(F.binary_cross_entropy(probs.clamp(1e-7, 1 - 1e-7), same))
            return {"val_metric": float((pred == self.val_labels).mean()), "val_loss": val_loss, "pred": pred,
                    "val_emb": self.embed(self.val, m.embed).numpy()}
        gen_emb = self.embed(self.val_generated, m.embed)
        val_emb = self.embed(self.val, m.embed)
        k = min(self.topk, len(gen_emb))
        nn_idx = (val_emb @ gen_emb.T).topk(k, dim=1).indices.numpy()
        tv = self._tokens(self.val)
        scores = np.empty(len(tv))
        for i in range(len(tv)):
            tg = self._tokens(self.val_generated.subset(nn_idx[i]))
            scores[i] = float(torch.sigmoid(m.logits_from_tokens(tv[i:i + 1].expand(k, -1, -1), tg)).max())
        thr, _ = best_threshold(scores, self.val_labels, larger_is_positive=True)
        return {"val_metric": _auc(self.val_labels, scores), "pred": (scores >= thr).astype(np.int64), "threshold": thr,
                "scores": scores, "val_emb": val_emb.numpy(), "real_emb": gen_emb.numpy(),
                "real_labels": np.ones(len(gen_emb), dtype=np.int64)}

    def meta_fields(self, val: dict) -> dict:
        if self.data.task == "subsets":
            return {}
        return {"threshold": float(val["threshold"]),
                "extra": {"threshold_rule": f"used when the max pair probability over the {self.topk} nearest generated "
                                            "images (cosine of embed) >= threshold",
                          "threshold_score": f"max_probability_top{self.topk}"}}


class ClassifierStrategy(_Strategy):
    metric_name = "accuracy"

    def __init__(self, *args):
        super().__init__(*args)
        d = self.data
        if d.task != "subsets":
            raise FprtError("classifier models learn the subsets task; for membership train a siamese, pair or features model")
        tr, va = validation_split(d.generated_labels, self.cfg.val_fraction, self.cfg.seed)
        self.val, self.val_labels = d.generated.subset(va), d.generated_labels[va]
        # training items: (source, index) with source 0 = real, 1 = training generated
        items = [(0, i) for i in range(len(d.real))]
        if self.cfg.train_on == "all":
            items += [(1, int(i)) for i in tr]
        self.items = np.asarray(items, dtype=np.int64)
        self.labels = np.concatenate([d.real_labels, d.generated_labels[tr] if self.cfg.train_on == "all" else []]).astype(np.int64)
        self.pools = (d.real, d.generated)
        self.n_train, self.n_val = len(self.items), len(self.val)
        self.loss_fn = torch.nn.CrossEntropyLoss()

    def epoch_batches(self, rng: np.random.Generator) -> list[np.ndarray]:
        order = rng.permutation(len(self.items))
        return [order[s:s + self.cfg.batch_size] for s in range(0, len(order), self.cfg.batch_size)]

    def _pixels(self, batch: np.ndarray) -> torch.Tensor:
        return _gather(self.pools, self.items, batch, self.data.size)

    def loss(self, batch: np.ndarray) -> torch.Tensor:
        logits, _ = self.model(self.inputs(self._pixels(batch)))
        return self.loss_fn(logits, torch.from_numpy(self.labels[batch]).to(self.device))

    @torch.no_grad()
    def validate(self) -> dict:
        logits, embs = [], []
        for x in self.val.batches(self.cfg.eval_batch_size):
            lg, em = self.model(self.inputs(x))
            logits.append(lg.float().cpu())
            embs.append(em.float().cpu())
        logits = torch.cat(logits)
        labels = torch.from_numpy(self.val_labels)
        pred = logits.argmax(1).numpy()
        return {"val_metric": float((pred == self.val_labels).mean()), "val_loss": float(F.cross_entropy(logits, labels)),
                "pred": pred, "val_emb": torch.cat(embs).numpy()}


STRATEGIES = {"siamese": SiameseStrategy, "pair": PairStrategy, "classifier": ClassifierStrategy}


# ---------------------------------------------------------------------------------------------- the loop
def _resolve(cfg: TrainConfig):
    if cfg.family not in FAMILIES:
        raise FprtError(f"unknown model family {cfg.family!r}; expected one of {FAMILIES}")
    spec = get_spec(cfg.model or DEFAULT_MODELS[cfg.family])
    if spec.family != cfg.family:
        raise FprtError(f"--model {spec.name} is a {spec.family} model, not a {cfg.family} one")
    if cfg.miner not in MINERS:
        raise FprtError(f"--miner must be one of {MINERS}, got {cfg.miner!r}")
    if cfg.train_on not in TRAIN_ON:
        raise FprtError(f"--train-on must be one of {TRAIN_ON}, got {cfg.train_on!r}")
    if not 0.0 < cfg.val_fraction < 1.0:
        raise FprtError(f"--val-fraction must be in (0, 1), got {cfg.val_fraction}")
    d = spec.train_defaults
    resolved = replace(
        cfg,
        model=spec.name,
        epochs=int(cfg.epochs if cfg.epochs is not None else d.get("epochs", 1)),
        batch_size=int(cfg.batch_size if cfg.batch_size is not None else d.get("batch_size", 32)),
        lr=float(cfg.lr if cfg.lr is not None else d.get("lr", 1e-4)),
        margin=float(cfg.margin if cfg.margin is not None else d.get("margin", 1.0)),
        head=cfg.head if cfg.head is not None else d.get("head"),
    )
    _check_numbers(resolved)
    return spec, resolved


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def _check_numbers(cfg: TrainConfig) -> None:
    """``FprtError`` naming the option when a number is out of its range (before any data is read)."""
    for name in ("epochs", "batch_size", "mined_per_anchor", "eval_batch_size"):
        if int(getattr(cfg, name)) < 1:
            raise FprtError(f"{_option(name)} must be at least 1, got {getattr(cfg, name)}")
    for name in ("steps_per_epoch", "size", "channels"):
        value = getattr(cfg, name)
        if value is not None and int(value) < 1:
            raise FprtError(f"{_option(name)} must be at least 1, got {value}")
    if cfg.patience is not None and cfg.patience < 0:
        raise FprtError(f"--patience must be 0 (off) or more, got {cfg.patience}")
    if cfg.seed < 0:
        raise FprtError(f"--seed must be 0 or more, got {cfg.seed}")
    if not math.isfinite(cfg.lr) or cfg.lr < 0:  # 0 is allowed: a frozen run (torch's Adam accepts it)
        raise FprtError(f"--lr must be a finite number >= 0 (e.g. 1e-4), got {cfg.lr}")
    if not math.isfinite(cfg.margin):
        raise FprtError(f"--margin must be a finite number, got {cfg.margin}")


def check_split(data: TaskData, source: str | Path = "--data") -> None:
    """``DataError`` naming every class with too few images to split for validation (``check_split_counts``)."""
    check_split_counts(data.task, data.class_names, data.real_labels, data.generated_labels, source)


def _model_kwargs(spec, cfg: TrainConfig, preprocess: Preprocess, n_classes: int) -> dict:
    accepts = spec.accepts()
    kwargs = dict(cfg.model_kwargs)
    if "in_chans" in accepts:
        kwargs.setdefault("in_chans", preprocess.channels)
    if "input_size" in accepts:
        kwargs.setdefault("input_size", preprocess.size)
    if "num_classes" in accepts:
        kwargs.setdefault("num_classes", n_classes)
    return kwargs


def _device(name: str) -> torch.device:
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            from fprt.errors import MissingDependencyError

            raise MissingDependencyError(
                f"--device {name}: torch {torch.__version__} sees no CUDA device (CUDA build: {torch.version.cuda or 'none'})"
            )
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    elif name != "cpu":
        raise FprtError(f"--device must be cpu or cuda, got {name!r}")
    return torch.device(name)


def _warn_random_backbone(model, name: str, weights: str | None) -> None:
    """Say so when a torchvision backbone starts from random weights (fprt downloads nothing)."""
    from fprt.trainer.models.backbones import random_backbones

    found = random_backbones(model)
    if found and weights is None:
        log.warning("%s: the %s backbone starts from random weights (the papers start from ImageNet weights; fprt "
                    "downloads nothing): pass --weights FILE with a local torchvision state dict, e.g. %s",
                    name, "/".join(found), f"torchvision's {found[0]} ImageNet weights saved by torch.save(state_dict)")


def _config_doc(resolved: TrainConfig, preprocess: Preprocess, data: TaskData, model_kwargs: dict) -> dict:
    train = asdict(resolved)
    train["preprocess"] = preprocess.to_dict()
    train["model_kwargs"] = model_kwargs
    return {"train": train, "data": data.summary, "seed": resolved.seed, "fprt_version": __version__}


def saved_config(run: RunFolder) -> dict:
    """The run's config.json, checked to hold a ``train`` object of arguments (``ModelError`` naming the
    file when its shape is wrong): what ``--resume`` compares and restores."""
    saved = run.read_config()
    train = saved.get("train") if isinstance(saved, dict) else None
    if not isinstance(train, dict):
        got = type(saved).__name__ if not isinstance(saved, dict) else f"'train' = {type(train).__name__}"
        raise ModelError(
            f"{run.config}: not an fprt training config (expected a JSON object with a 'train' object of "
            f"arguments, got {got}); restore the run's config.json or start a new --out"
        )
    return saved


def _check_resume(saved: dict, now: dict, out: Path) -> None:
    diffs = [
        f"{k}: run has {saved.get(k)!r}, now {now.get(k)!r}"
        for k in sorted(set(saved) | set(now))
        if k not in RESUMABLE_CHANGES and saved.get(k) != now.get(k)
    ]
    if diffs:
        raise FprtError(f"--resume {out}: the arguments differ from the saved run ({'; '.join(diffs)}); "
                        "resume with the same arguments or start a new --out")


def check_training_inputs(data: str | Path | TaskData, config: TrainConfig | None = None, **overrides: Any):
    """``(model spec, resolved config)`` once every argument is in range and the data has enough
    images per class to split — checked before any folder is made or image decoded (``FprtError``
    naming the option, folder or class otherwise)."""
    cfg = replace(config or TrainConfig(), **overrides)
    spec, cfg = _resolve(cfg)
    if isinstance(data, TaskData):
        check_split(data, "the training data")
    else:
        from fprt.trainer.datasets import training_files

        training_files(data, task=cfg.task)
    return spec, cfg


def train(
    data: str | Path | TaskData,
    out: str | Path,
    config: TrainConfig | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
    on_epoch: Callable[[dict], None] | None = None,
    **overrides: Any,
) -> TrainResult:
    """Train a model on ``data`` (a dataset folder or ``TaskData``) into the run folder ``out``.

    ``out`` follows fprt's output-folder policy (``fprt.outdir``): a non-empty folder is refused unless
    ``resume`` (continue the run there) or ``overwrite`` (the new run is written beside it and swapped in
    when it finishes); one training per folder at a time; never inside the data."""
    from fprt.outdir import OutputFolder

    check_training_inputs(data, config, **overrides)  # refused before any folder is made
    roots = [] if isinstance(data, TaskData) else [Path(data)]
    hint = "pass --resume to continue the training run there, --overwrite to replace it, or choose another folder"
    with OutputFolder(out, overwrite=overwrite or resume, data=roots, command="train",
                      in_place=resume or not overwrite, hint=hint) as folder:
        result = _train(data, folder.path, config, resume=resume, on_epoch=on_epoch, **overrides)
        folder.commit()
    return replace(result, run_dir=folder.out)


def _train(
    data: str | Path | TaskData,
    out: str | Path,
    config: TrainConfig | None = None,
    *,
    resume: bool = False,
    on_epoch: Callable[[dict], None] | None = None,
    **overrides: Any,
) -> TrainResult:
    started = time.perf_counter()
    spec, cfg = check_training_inputs(data, config, **overrides)
    preprocess = resolve_preprocess(spec, cfg)
    run = RunFolder(out)
    if run.is_started() and not resume:
        raise FprtError(f"--out {out}: already holds a training run; pass --resume to continue it or choose another folder")
    if resume and not run.is_started():
        raise FprtError(f"--resume {out}: no training run there to resume")
    device = _device(cfg.device)

    if isinstance(data, TaskData):
        if data.size != preprocess.size:
            raise FprtError(f"the in-memory images are {data.size}² but the model's preprocessing wants {preprocess.size}²")
        task_data = data
    else:
        task_data = load_task_data(data, preprocess, task=cfg.task, workers=cfg.workers, cache=cfg.cache,
                                   progress=cfg.progress is not False)
    if cfg.task is not None and cfg.task != task_data.task:
        raise FprtError(f"--task {cfg.task}: the data holds a {task_data.task} dataset")
    cfg = replace(cfg, task=task_data.task)
    n_classes = len(task_data.class_names)
    model_kwargs = _model_kwargs(spec, cfg, preprocess, n_classes)
    doc = _config_doc(cfg, preprocess, task_data, model_kwargs)
    if resume:
        _check_resume(saved_config(run)["train"], doc["train"], Path(out))
    doc["baselines"] = simple_baselines(task_data, cfg)

    torch.manual_seed(cfg.seed)
    model = create_model(spec.name, weights=cfg.weights, **model_kwargs).to(device)
    _warn_random_backbone(model, spec.name, cfg.weights)
    pre = preprocess.module().to(device)
    base_meta = dict(model=spec.name, kind=spec.kind, task=task_data.task, preprocess=preprocess,
                     class_names=list(task_data.class_names), model_kwargs=model_kwargs, metric=spec.metric,
                     embedding_dim=int(getattr(model, "embedding_dim", 0)) or None)

    if cfg.family == "features":
        from fprt.trainer.features_fit import train_features

        return train_features(model, task_data, cfg, spec, device, pre, run, doc, base_meta, started, resume=resume)

    strategy_cls = STRATEGIES[cfg.family]
    if cfg.family == "siamese" and task_data.task == "membership" and cfg.miner == "hard":
        strategy_cls = SelfPairStrategy
    strategy = strategy_cls(model, task_data, cfg, spec, device, pre)
    doc["data"] = {**doc["data"], "train_items": strategy.n_train, "val_items": strategy.n_val}
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=cfg.lr)
    state: dict[str, Any] = {"epoch": 0, "best_metric": None, "best_epoch": None, "bad_epochs": 0,
                             "stopped_early": False, "history": []}
    if resume and run.has_state():
        state = run.load_state(model, optimizer)
        log.info("resuming %s from epoch %d", out, state["epoch"])
    if not doc["baselines"]:
        doc["baselines"] = simple_baselines(task_data, cfg, strategy)
    base_cols = baseline_columns(doc["baselines"])
    if not run.config.exists() or not resume:
        run.write_config({**doc, "status": "running"})

    from fprt.progress import progress

    history: list[dict] = list(state["history"])
    if not history:  # the untrained model: epoch 0 of the history, and the first candidate for the best
        model.eval()
        val0 = strategy.validate()
        metric0 = float(val0["val_metric"])
        history.append({"epoch": 0, "train_loss": "", "val_metric_name": strategy.metric_name,
                        "val_metric": metric0, "val_loss": val0.get("val_loss", ""), "lr": cfg.lr,
                        "steps": 0, "seconds": 0.0, **base_cols})
        if np.isfinite(metric0):
            state.update(best_metric=metric0, best_epoch=0)
            run.save_model(model, _make_meta(base_meta, strategy, val0, 0, metric0),
                           {**doc, "status": "running", "best": _best(state, strategy)})
    for epoch in range(int(state["epoch"]), cfg.epochs):
        if state["stopped_early"]:
            break
        t0 = time.perf_counter()
        rng = np.random.default_rng([cfg.seed, epoch])
        batches = strategy.epoch_batches(rng)
        if cfg.steps_per_epoch:
            batches = batches[: cfg.steps_per_epoch]
        model.train()
        total, count = 0.0, 0
        bar = progress(total=len(batches), desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch",
                       disable=None if cfg.progress is None else not cfg.progress, leave=True)
        for batch in batches:
            optimizer.zero_grad(set_to_none=True)
            loss = strategy.loss(batch)
            if not torch.isfinite(loss):
                bar.close()
                raise FprtError(f"epoch {epoch + 1}: the loss became {loss.item()}; lower --lr")
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(batch)
            count += len(batch)
            bar.update(1)
            bar.set_postfix(loss=f"{total / max(count, 1):.4f}")
        model.eval()
        val = strategy.validate()
        metric = float(val["val_metric"])
        bar.set_postfix(loss=f"{total / max(count, 1):.4f}", **{f"val_{strategy.metric_name}": f"{metric:.4f}"})
        bar.close()
        row = {"epoch": epoch + 1, "train_loss": total / max(count, 1), "val_metric_name": strategy.metric_name,
               "val_metric": metric, "val_loss": val.get("val_loss", ""), "lr": cfg.lr,
               "steps": len(batches), "seconds": time.perf_counter() - t0, **base_cols}
        history.append(row)
        best = state["best_metric"]
        if best is None or (np.isfinite(metric) and (not np.isfinite(best) or metric > best)):
            state.update(best_metric=metric, best_epoch=epoch + 1, bad_epochs=0)
            meta = _make_meta(base_meta, strategy, val, epoch + 1, metric)
            run.save_model(model, meta, {**doc, "status": "running", "best": _best(state, strategy)})
        else:
            state["bad_epochs"] += 1
        if cfg.patience and state["bad_epochs"] >= cfg.patience:
            state["stopped_early"] = True
        state.update(epoch=epoch + 1, history=history)
        run.write_metrics(history)
        run.save_state(model, optimizer, state)
        log.info("epoch %d/%d: loss %.4f, val %s %.4f", epoch + 1, cfg.epochs, row["train_loss"], strategy.metric_name, metric)
        if on_epoch is not None:
            on_epoch(row)

    # final: reload the best weights, write the plots and the finished config
    from fprt.trainer.checkpoint import load_tensors

    if state["best_epoch"] == 0:
        log.warning("no epoch beat the untrained model's validation %s (%.4f); the run keeps the untrained weights",
                    strategy.metric_name, state["best_metric"])
    tensors, _ = load_tensors(run.weights)
    model.load_state_dict(tensors)
    model.eval()
    val = strategy.validate()
    meta = _make_meta(base_meta, strategy, val, state["best_epoch"], state["best_metric"])
    status = "early_stopped" if state["stopped_early"] else "finished"
    meta = run.save_model(model, meta, {**doc, "status": status, "best": _best(state, strategy)})
    _write_plots(run, history, task_data, strategy, val)
    return TrainResult(run.root, meta, history, state["best_epoch"], state["best_metric"], strategy.metric_name,
                       status, time.perf_counter() - started, doc["baselines"])


def simple_baselines(data: TaskData, cfg: TrainConfig, strategy=None) -> dict:
    """The simple baselines of the task on the run's validation split, ``{name: {"val_metric_name",
    "val_metric", "fitted_on", "what"}}``: subsets — pixel logistic regression (trainer/baselines_subsets.py);
    membership — raw-pixel nearest neighbour and aligned correlation (trainer/baselines.py, needs the
    strategy's validation split)."""
    if data.task == "subsets":
        from fprt.trainer.baselines_subsets import subsets_baselines

        return subsets_baselines(data, cfg.val_fraction, cfg.seed)
    if strategy is not None:
        from fprt.trainer.baselines import task_baselines

        what = {"raw_pixel_nn_auc": "best raw-pixel cosine to the generated images",
                "aligned_correlation_auc": "best patch-aligned correlation to the generated images"}
        return {name: {"val_metric_name": "roc_auc", "val_metric": v, "what": what.get(name, name),
                       "fitted_on": "nothing (no fit)"}
                for name, v in task_baselines(data.task, strategy).items()}
    return {}


def baseline_columns(baselines: dict) -> dict:
    """metrics.csv columns: each baseline's validation metric beside the model's, on every row."""
    return {f"baseline_{name}": b["val_metric"] for name, b in baselines.items()}


def _best(state: dict, strategy) -> dict:
    return {"epoch": state["best_epoch"], "val_metric_name": strategy.metric_name, "val_metric": state["best_metric"]}


def _make_meta(base: dict, strategy, val: dict, best_epoch, metric) -> ModelMeta:
    fields_ = strategy.meta_fields(val)
    extra = {"family": strategy.cfg.family, "val_metric_name": strategy.metric_name, "val_metric": metric,
             "best_epoch": best_epoch, **fields_.pop("extra", {})}
    return ModelMeta(**base, **fields_, extra=extra)


def _write_plots(run: RunFolder, history, data: TaskData, strategy, val: dict) -> None:
    from fprt.metrics import binary_metrics, multiclass_metrics
    from fprt.trainer import plots

    names = list(data.class_names)
    title = f"{strategy.cfg.model} ({data.task})"
    if history:
        plots.plot_curves(history, run.plots / "curves.png", title=title)
    if data.task == "subsets":
        cm = multiclass_metrics(strategy.val_labels, val["pred"], labels=list(range(len(names))))["confusion_matrix"]
    else:
        cm = binary_metrics(strategy.val_labels, val["pred"])["confusion_matrix"]
    plots.plot_confusion(cm, names, run.plots / "confusion.png", title=f"validation confusion matrix — {title}")
    feats, labels, groups = [val["val_emb"]], [strategy.val_labels], ["validation"] * len(strategy.val_labels)
    if "real_emb" in val:
        feats.append(val["real_emb"])
        labels.append(val["real_labels"])
        groups += ["generated" if data.task == "membership" else "real"] * len(val["real_labels"])
    if data.task == "subsets":
        groups = ["generated (val)" if g == "validation" else g for g in groups]
    else:
        groups = ["real (val)" if g == "validation" else g for g in groups]
    plots.plot_pca(np.concatenate(feats), np.concatenate(labels), names, run.plots / "pca.png", groups=groups,
                   title=f"PCA of embeddings — {title}")
