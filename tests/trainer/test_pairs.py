"""Balanced pair sampling and the stratified validation split."""

from __future__ import annotations

import numpy as np
import pytest

from fprt.trainer.pairs import epoch_pairs, stratified_split


def test_subsets_pairs_are_balanced_and_correct():
    anchors = np.repeat(np.arange(5), [40, 40, 40, 40, 41])  # generated of gen_t1..gen_t5
    partners = np.repeat(np.arange(5), [10, 20, 30, 40, 50])  # real of t1..t5, unequal sizes
    pairs = epoch_pairs(anchors, partners, np.random.default_rng(0))
    assert sorted(pairs.anchors.tolist()) == list(range(len(anchors)))  # every anchor exactly once
    assert pairs.targets.sum() == len(anchors) // 2
    same = anchors[pairs.anchors] == partners[pairs.partners]
    np.testing.assert_array_equal(same, pairs.targets.astype(bool))
    # negatives draw the partner's class uniformly, not by class size
    big = epoch_pairs(np.repeat(np.arange(5), 2000), partners, np.random.default_rng(1))
    neg_classes = partners[big.partners[big.targets == 0]]
    counts = np.bincount(neg_classes, minlength=5) / len(neg_classes)
    assert np.abs(counts - 0.2).max() < 0.02


def test_membership_pairs():
    generated = np.ones(300, dtype=np.int64)  # every generated image carries "used"
    real = np.array([1] * 20 + [0] * 80)  # 20 used, 80 not used
    pairs = epoch_pairs(generated, real, np.random.default_rng(2))
    assert pairs.targets.sum() == 150
    np.testing.assert_array_equal(real[pairs.partners], pairs.targets)


def test_pairs_are_deterministic_and_batched_without_dropping():
    a, p = np.repeat(np.arange(3), 11), np.repeat(np.arange(3), 4)
    one = epoch_pairs(a, p, np.random.default_rng([7, 3]))
    two = epoch_pairs(a, p, np.random.default_rng([7, 3]))
    np.testing.assert_array_equal(one.partners, two.partners)
    batches = list(one.batches(8))
    assert [len(b) for b in batches] == [8, 8, 8, 8, 1]
    np.testing.assert_array_equal(np.concatenate([b.anchors for b in batches]), one.anchors)


def test_pairs_need_positives_and_negatives():
    with pytest.raises(ValueError, match="no partner"):
        epoch_pairs(np.array([0, 1]), np.array([0, 0]), np.random.default_rng(0))
    with pytest.raises(ValueError, match="at least two labels"):
        epoch_pairs(np.array([0]), np.array([0, 0]), np.random.default_rng(0))


def test_stratified_split():
    labels = np.repeat(np.arange(4), [50, 30, 9, 2])
    train, val = stratified_split(labels, 0.1, np.random.default_rng(0))
    assert len(np.intersect1d(train, val)) == 0 and len(train) + len(val) == len(labels)
    assert np.bincount(labels[val]).tolist() == [5, 3, 1, 1]  # 10 % rounded, at least one, never a whole class
    assert np.bincount(labels[train]).tolist() == [45, 27, 8, 1]
    t2, v2 = stratified_split(labels, 0.1, np.random.default_rng(0))
    np.testing.assert_array_equal(val, v2)
    with pytest.raises(ValueError):
        stratified_split(labels, 1.0, np.random.default_rng(0))
