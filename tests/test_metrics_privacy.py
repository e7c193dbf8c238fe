"""Privacy metrics against brute-force numpy: AATS, identical rows, DCR, membership AUC."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genofast.metrics import pairwise
from genofast.metrics.privacy import adversarial_accuracy, auc, privacy_metrics


def _dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sqrt(((a[:, None, :].astype(float) - b[None, :, :]) ** 2).sum(-1))


def _aats_brute(t: np.ndarray, s: np.ndarray) -> float:
    dtt, dss, dts = _dist(t, t), _dist(s, s), _dist(t, s)
    np.fill_diagonal(dtt, np.inf)
    np.fill_diagonal(dss, np.inf)
    a = (dts.min(1) > dtt.min(1)).mean()
    b = (dts.min(0) > dss.min(1)).mean()
    return 0.5 * (a + b)


def _auc_pairs(pos: np.ndarray, neg: np.ndarray) -> float:
    d = pos[:, None] - neg[None, :]
    return float(((d > 0) + 0.5 * (d == 0)).mean())


def test_auc_rank_formula_matches_pair_count() -> None:
    rng = np.random.default_rng(0)
    pos = rng.integers(0, 20, 57).astype(float)  # many ties
    neg = rng.integers(0, 18, 43).astype(float)
    assert auc(pos, neg) == pytest.approx(_auc_pairs(pos, neg), abs=1e-12)
    assert auc(np.arange(5.0) + 10, np.arange(5.0)) == 1.0
    assert auc(np.ones(3), np.ones(4)) == 0.5


def test_privacy_metrics_match_brute_force(monkeypatch) -> None:
    monkeypatch.setattr(pairwise, "BLOCK_Q", 13)
    monkeypatch.setattr(pairwise, "BLOCK_D", 17)
    rng = np.random.default_rng(4)
    m = 211
    p = rng.uniform(0.05, 0.5, m)
    train = rng.binomial(2, p, (60, m)).astype(np.int8)
    real = rng.binomial(2, p, (40, m)).astype(np.int8)  # held out
    syn = rng.binomial(2, p, (40, m)).astype(np.int8)
    syn[:10] = train[:10]  # copies
    syn[10:15] = train[20:25]
    syn[10:15, :5] = rng.binomial(2, p[:5], (5, 5))  # near-copies (most not identical)
    got = privacy_metrics(torch.from_numpy(real), torch.from_numpy(syn), torch.from_numpy(train),
                          device="cpu")

    # aats: equal sizes, no subsampling
    assert got["aats"] == pytest.approx(_aats_brute(real, syn), abs=1e-12)
    d_st = _dist(syn, train)
    d_rt = _dist(real, train)
    n_ident = int(sum((train == row).all(1).any() for row in syn))
    assert got["identical_to_train"] == n_ident >= 10
    assert got["dcr_ratio"] == pytest.approx(np.median(d_st.min(1)) / np.median(d_rt.min(1)),
                                             rel=1e-5)
    want_auc = _auc_pairs(-d_st.min(0), -_dist(syn, real).min(0))
    assert got["mia_auc"] == pytest.approx(want_auc, abs=1e-12)
    assert got["privacy_loss"] == pytest.approx(got["aats"] - got["aats_train"])
    # aats_train: train (60) is subsampled to the synthetic size (40), seeded; check it against
    # the brute force on the same subset
    gen = torch.Generator().manual_seed(0)
    pairwise.balanced_mask(40, 40, gen)  # the real/syn masks drawn first (None here)
    pairwise.balanced_mask(40, 40, gen)
    sub = pairwise.balanced_mask(60, 40, gen).numpy()
    assert got["aats_train"] == pytest.approx(_aats_brute(train[sub], syn), abs=1e-12)


def test_copies_score_zero_and_adversarial_accuracy_ties() -> None:
    d = torch.tensor([1.0, 2.0])
    assert adversarial_accuracy(d, torch.zeros(2), d, torch.zeros(2)) == 0.0
    assert adversarial_accuracy(d, d + 1, d, d + 1) == 1.0
    rng = np.random.default_rng(5)
    train = rng.integers(0, 3, (30, 64)).astype(np.int8)
    real = rng.integers(0, 3, (30, 64)).astype(np.int8)
    got = privacy_metrics(torch.from_numpy(real), torch.from_numpy(train.copy()),
                          torch.from_numpy(train), device="cpu")
    assert got["identical_to_train"] == 30
    assert got["aats_train"] == 0.0
    assert got["dcr_ratio"] == 0.0
    assert got["mia_auc"] == 1.0
