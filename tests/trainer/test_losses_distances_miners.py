"""Distances, the contrastive loss and the hard-negative miner against hand-computed values and
independent references (torch.cdist, scikit-learn)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fprt.trainer.distances import CosineSimilarity, DotProductSimilarity, LpDistance, get_distance
from fprt.trainer.losses import ContrastiveLoss
from fprt.trainer.miners import HardNegativeMiner


# ---------------------------------------------------------------------------------------------- distances
@pytest.mark.parametrize("n, m, d", [(15, 33, 7), (1, 1, 256), (149, 2, 3)])
def test_distance_matrices_match_references(n, m, d):
    from sklearn.metrics.pairwise import cosine_similarity

    g = torch.Generator().manual_seed(n * m)
    a, b = torch.randn(n, d, generator=g, dtype=torch.float64), torch.randn(m, d, generator=g, dtype=torch.float64)
    torch.testing.assert_close(LpDistance().matrix(a, b), torch.cdist(a, b))
    torch.testing.assert_close(CosineSimilarity().matrix(a, b), torch.from_numpy(cosine_similarity(a.numpy(), b.numpy())))
    torch.testing.assert_close(DotProductSimilarity().matrix(a, b), a @ b.T)
    k = min(n, m)
    for dist in (LpDistance(), CosineSimilarity(), DotProductSimilarity()):
        torch.testing.assert_close(dist.pairwise(a[:k], b[:k]), torch.diagonal(dist.matrix(a[:k], b[:k])))


def test_distances_know_their_direction():
    assert not LpDistance().larger_is_closer and LpDistance().metric == "l2"
    assert CosineSimilarity().larger_is_closer and get_distance("cosine").metric == "cosine"
    assert get_distance("ip").larger_is_closer
    with pytest.raises(ValueError, match="unknown metric"):
        get_distance("hamming")


def test_identical_embeddings_have_finite_gradients():
    a = torch.ones(2, 4, requires_grad=True)
    loss = ContrastiveLoss()(a, a.detach().clone(), torch.tensor([1, 0]))
    loss.backward()
    assert torch.isfinite(a.grad).all()


# ---------------------------------------------------------------------------------------------- contrastive loss
def test_contrastive_loss_euclidean_by_hand():
    a = torch.tensor([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [1.0, 1.0]])
    b = torch.tensor([[3.0, 4.0], [3.0, 4.0], [0.3, 0.4], [1.0, 1.0]])
    y = torch.tensor([1, 0, 0, 0])
    # d = 5, 5, 0.5, 0 → y·d² + (1−y)·max(0, 1 − d)² = 25, 0, 0.25, 1
    loss = ContrastiveLoss(reduction="none")(a, b, y)
    torch.testing.assert_close(loss, torch.tensor([25.0, 0.0, 0.25, 1.0]), atol=1e-5, rtol=0)
    torch.testing.assert_close(ContrastiveLoss()(a, b, y), torch.tensor(26.25 / 4), atol=1e-5, rtol=0)
    torch.testing.assert_close(ContrastiveLoss(reduction="sum")(a, b, y), torch.tensor(26.25), atol=1e-5, rtol=0)
    torch.testing.assert_close(ContrastiveLoss(reduction="nonzero")(a, b, y), torch.tensor(26.25 / 3), atol=1e-5, rtol=0)
    # margin 2, power 1: y·d + (1−y)·max(0, 2 − d) = 5, 0, 1.5, 2
    loss = ContrastiveLoss(neg_margin=2.0, power=1, reduction="none")(a, b, y)
    torch.testing.assert_close(loss, torch.tensor([5.0, 0.0, 1.5, 2.0]), atol=1e-5, rtol=0)
    # a positive margin: positives closer than it cost nothing
    loss = ContrastiveLoss(pos_margin=4.0, reduction="none")(a, b, torch.ones(4, dtype=torch.long))
    torch.testing.assert_close(loss, torch.tensor([1.0, 1.0, 0.0, 0.0]), atol=1e-5, rtol=0)


def test_contrastive_loss_cosine_by_hand():
    a = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    b = torch.tensor([[0.0, 2.0], [1.0, 1.0], [1.0, 1.0]])
    y = torch.tensor([1, 1, 0])
    # s = 0, 1/√2, 1/√2 → y·(1 − s)² + (1 − y)·max(0, s − 0)²
    s = 2 ** -0.5
    loss = ContrastiveLoss(CosineSimilarity(), reduction="none")(a, b, y)
    torch.testing.assert_close(loss, torch.tensor([1.0, (1 - s) ** 2, s ** 2]), atol=1e-6, rtol=0)


def test_contrastive_loss_rejects_unknown_reduction():
    with pytest.raises(ValueError, match="reduction"):
        ContrastiveLoss(reduction="max")


# ---------------------------------------------------------------------------------------------- miner
def test_hard_negative_miner_by_hand():
    d = torch.tensor(
        [
            [0.1, 0.9, 0.3, 0.5],  # anchor label 0; partners labels 0, 0, 1, 2
            [0.7, 0.2, 0.8, 0.4],  # anchor label 1
        ]
    )
    la, lb = torch.tensor([0, 1]), torch.tensor([0, 0, 1, 2])
    rows, cols, y = HardNegativeMiner(LpDistance(), negatives_per_anchor=1).mine(d, la, lb)
    got = sorted(zip(rows.tolist(), cols.tolist(), y.tolist()))
    # positives: (0,0), (0,1), (1,2); hardest negatives: anchor 0 → col 2 (0.3), anchor 1 → col 1 (0.2)
    assert got == [(0, 0, 1), (0, 1, 1), (0, 2, 0), (1, 1, 0), (1, 2, 1)]
    # balanced: the farthest positive per anchor, the two closest negatives
    rows, cols, y = HardNegativeMiner(LpDistance(), negatives_per_anchor=2, positives_per_anchor=1).mine(d, la, lb)
    got = sorted(zip(rows.tolist(), cols.tolist(), y.tolist()))
    assert got == [(0, 1, 1), (0, 2, 0), (0, 3, 0), (1, 1, 0), (1, 2, 1), (1, 3, 0)]
    # a margin drops the negatives already far enough
    rows, cols, y = HardNegativeMiner(LpDistance(), negatives_per_anchor=2, positives_per_anchor=1, margin=0.35).mine(d, la, lb)
    got = sorted(zip(rows.tolist(), cols.tolist(), y.tolist()))
    assert got == [(0, 1, 1), (0, 2, 0), (1, 1, 0), (1, 2, 1)]


def test_miner_with_a_similarity_picks_the_most_similar_negatives():
    s = torch.tensor([[0.9, 0.1, 0.8], [0.2, 0.95, 0.6]])
    la, lb = torch.tensor([0, 1]), torch.tensor([0, 1, 2])
    rows, cols, y = HardNegativeMiner(CosineSimilarity(), negatives_per_anchor=1, positives_per_anchor=1).mine(s, la, lb)
    assert sorted(zip(rows.tolist(), cols.tolist(), y.tolist())) == [(0, 0, 1), (0, 2, 0), (1, 1, 1), (1, 2, 0)]


def test_miner_matches_brute_force_on_random_batches():
    rng = np.random.default_rng(0)
    for _ in range(20):
        n, m, k = rng.integers(1, 12), rng.integers(2, 15), rng.integers(1, 4)
        d = torch.from_numpy(rng.random((n, m)))
        la, lb = torch.from_numpy(rng.integers(0, 3, n)), torch.from_numpy(rng.integers(0, 3, m))
        rows, cols, y = HardNegativeMiner(LpDistance(), negatives_per_anchor=int(k)).mine(d, la, lb)
        got = set(zip(rows.tolist(), cols.tolist(), y.tolist()))
        want = set()
        for i in range(n):
            negs = [(float(d[i, j]), j) for j in range(m) if la[i] != lb[j]]
            want |= {(i, j, 0) for _, j in sorted(negs)[:k]}
            want |= {(i, j, 1) for j in range(m) if la[i] == lb[j]}
        assert got == want
