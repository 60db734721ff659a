"""Balanced pair sampling for Siamese and pair-scorer training.

Every pair is (anchor, partner): the anchor is a generated image, the partner a real image.

- subsets: anchor labels = the generated image's subset, partner labels = the real image's subset;
  positive when they are equal (real of t_i with generated of gen_t_i).
- membership: every generated anchor carries the label ``used`` (1); partners are real images labelled
  1 (used) or 0 (not used); positive = (generated, real used), negative = (generated, real not used).

``epoch_pairs`` walks a fresh permutation of the anchors (each anchor once per epoch) and gives
exactly half of them (rounded down) a positive partner; a negative partner's label is drawn uniformly
among the other labels present, then the partner uniformly within that label, so every class is
equally represented whatever the class sizes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Pairs:
    anchors: np.ndarray
    partners: np.ndarray
    targets: np.ndarray  # 1 = positive (match), 0 = negative

    def __len__(self) -> int:
        return len(self.anchors)

    def batches(self, batch_size: int):
        """Consecutive slices of ``batch_size`` pairs (the last one may be smaller; nothing is dropped)."""
        for start in range(0, len(self), batch_size):
            sl = slice(start, start + batch_size)
            yield Pairs(self.anchors[sl], self.partners[sl], self.targets[sl])


def _by_label(labels: np.ndarray) -> dict[int, np.ndarray]:
    return {int(lab): np.flatnonzero(labels == lab) for lab in np.unique(labels)}


def epoch_pairs(anchor_labels, partner_labels, rng: np.random.Generator, pos_fraction: float = 0.5) -> Pairs:
    """One epoch of balanced pairs: each anchor once, ``pos_fraction`` of them with a positive partner."""
    anchor_labels = np.asarray(anchor_labels, dtype=np.int64)
    partner_labels = np.asarray(partner_labels, dtype=np.int64)
    if len(anchor_labels) == 0 or len(partner_labels) == 0:
        raise ValueError("pair sampling needs at least one anchor and one partner")
    groups = _by_label(partner_labels)
    missing = sorted(set(np.unique(anchor_labels).tolist()) - set(groups))
    if missing:
        raise ValueError(f"no partner (real) image carries label(s) {missing}: no positive pair can be made")
    if len(groups) < 2:
        raise ValueError("pair sampling needs partners of at least two labels to make negative pairs")
    order = rng.permutation(len(anchor_labels))
    n_pos = int(len(order) * pos_fraction)
    positive = np.zeros(len(order), dtype=bool)
    positive[rng.permutation(len(order))[:n_pos]] = True
    labels = sorted(groups)
    partners = np.empty(len(order), dtype=np.int64)
    for i, a in enumerate(order):
        own = int(anchor_labels[a])
        if positive[i]:
            lab = own
        else:
            others = [x for x in labels if x != own]
            lab = others[rng.integers(len(others))]
        pool = groups[lab]
        partners[i] = pool[rng.integers(len(pool))]
    return Pairs(order.astype(np.int64), partners, positive.astype(np.int64))


def stratified_split(labels, fraction: float, rng: np.random.Generator, min_per_class: int = 1):
    """Indices ``(train, val)``: ``fraction`` of each label goes to validation (at least ``min_per_class``,
    never a whole class), both sorted."""
    labels = np.asarray(labels)
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"validation fraction must be in [0, 1), got {fraction}")
    train, val = [], []
    for lab in np.unique(labels):
        idx = np.flatnonzero(labels == lab)
        idx = idx[rng.permutation(len(idx))]
        n_val = 0 if fraction == 0 else max(min_per_class, int(round(fraction * len(idx))))
        n_val = min(n_val, len(idx) - 1)
        val.append(idx[:n_val])
        train.append(idx[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def validation_split(labels, fraction: float, seed: int):
    """The trainer's held-out split: ``stratified_split`` drawn from ``seed`` (the same in every family)."""
    return stratified_split(labels, fraction, np.random.default_rng([int(seed), 104729]))


def check_split_counts(task: str, class_names, real_labels, generated_labels, source="--data") -> None:
    """``DataError`` naming every class with too few images to hold some out for validation.

    The split is stratified over the generated images (subsets) or the real images (membership), so
    each class there needs two: one to train on, one to validate. Subsets also need a real image per
    class (the pairs' partners and the class centroids); membership needs generated images."""
    from fprt.errors import DataError

    names = list(class_names)
    split_labels, what = (generated_labels, "generated") if task == "subsets" else (real_labels, "real")
    counts = np.bincount(np.asarray(split_labels, dtype=np.int64), minlength=len(names))
    short = [f"{names[k]!r} has {int(n)} {what} image(s)" for k, n in enumerate(counts) if n < 2]
    if task == "subsets":
        real = np.bincount(np.asarray(real_labels, dtype=np.int64), minlength=len(names))
        short += [f"{names[k]!r} has no real image" for k, n in enumerate(real) if n < 1]
    elif len(generated_labels) < 1:
        short.append("there are no generated images")
    if short:
        raise DataError(
            f"{source}: too few images to split for validation: {'; '.join(short)}. Each class needs at least 2 "
            f"{what} images (one to train on, one to validate); add images or merge classes"
        )
