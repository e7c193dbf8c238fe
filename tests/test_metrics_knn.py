"""k-NN precision/recall and the blockwise distance scan against brute-force numpy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genofast.metrics import pairwise
from genofast.metrics.knn import knn_precision_recall
from genofast.metrics.pairwise import Scan, prepare, scan


def _cohorts(seed: int, n_real: int, n_syn: int, m: int, missing: float = 0.0):
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.05, 0.5, m)
    real = rng.binomial(2, p, (n_real, m)).astype(np.int8)
    # synthetic: half drawn like real, half from a shifted distribution, a few exact copies
    syn = rng.binomial(2, np.clip(p + rng.normal(0, 0.15, m), 0.01, 0.99), (n_syn, m))
    syn[: n_syn // 2] = rng.binomial(2, p, (n_syn // 2, m))
    syn[:3] = real[:3]
    syn = syn.astype(np.int8)
    for a in (real, syn):
        a[rng.random(a.shape) < missing] = -1
    return real, syn


def _imputed(a: np.ndarray, mu: np.ndarray) -> np.ndarray:
    x = a.astype(np.float64)
    return np.where(a < 0, mu, x)


def _dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))


def _brute_pr(real: np.ndarray, syn: np.ndarray, k: int) -> tuple[float, float]:
    called = real >= 0
    mu = 2 * np.where(called, real, 0).sum(0) / (2 * called.sum(0))
    mu = np.nan_to_num(mu * 1.0)
    r, s = _imputed(real, mu), _imputed(syn, mu)
    drr, dss, dsr = _dist(r, r), _dist(s, s), _dist(s, r)
    np.fill_diagonal(drr, np.inf)
    np.fill_diagonal(dss, np.inf)
    rad_r = np.sort(drr, 1)[:, k - 1]
    rad_s = np.sort(dss, 1)[:, k - 1]
    precision = (dsr <= rad_r[None, :] + 1e-4).any(1).mean()
    recall = (dsr <= rad_s[:, None] + 1e-4).any(0).mean()
    return float(precision), float(recall)


@pytest.mark.parametrize("missing", [0.0, 0.03])
def test_precision_recall_matches_brute_force(missing: float, monkeypatch) -> None:
    real, syn = _cohorts(1, 97, 83, 301, missing)
    # small blocks so the block merging is exercised
    monkeypatch.setattr(pairwise, "BLOCK_Q", 16)
    monkeypatch.setattr(pairwise, "BLOCK_D", 24)
    monkeypatch.setattr(pairwise, "SNP_CHUNK", 64)
    got = knn_precision_recall(torch.from_numpy(real), torch.from_numpy(syn), k=5, device="cpu")
    want = _brute_pr(real, syn, 5)
    assert got["precision"] == pytest.approx(want[0], abs=1e-12)
    assert got["recall"] == pytest.approx(want[1], abs=1e-12)
    assert 0 < got["precision"] < 1 and 0 < got["recall"] <= 1


def test_scan_knn_and_column_minima(monkeypatch) -> None:
    real, syn = _cohorts(2, 50, 41, 133, 0.02)
    mu = torch.full((133,), 0.7)
    pr, ps = prepare(torch.from_numpy(real), mu), prepare(torch.from_numpy(syn), mu)
    mask = torch.zeros(50, dtype=torch.bool)
    mask[::3] = True
    rows = torch.zeros(41, dtype=torch.bool)
    rows[1::2] = True
    res = scan(ps, pr, Scan(k=3, col_subsets={"all": None, "sub": mask}, keep_index=True,
                            row_subsets={"all": None, "odd": rows}), block_q=7, block_d=9)
    d = _dist(_imputed(syn, 0.7), _imputed(real, 0.7))
    np.testing.assert_allclose(res.knn_dist["all"].numpy(), np.sort(d, 1)[:, :3], atol=1e-3)
    np.testing.assert_allclose(res.knn_dist["sub"].numpy(),
                               np.sort(d[:, mask.numpy()], 1)[:, :3], atol=1e-3)
    np.testing.assert_array_equal(res.knn_index["all"][:, 0].numpy(), d.argmin(1))
    np.testing.assert_allclose(res.col_min["all"].numpy(), d.min(0), atol=1e-3)
    np.testing.assert_allclose(res.col_min["odd"].numpy(), d[rows.numpy()].min(0), atol=1e-3)


def test_integer_path_is_exact_for_copies() -> None:
    real, syn = _cohorts(3, 40, 40, 257)
    mu = torch.zeros(257)
    res = scan(prepare(torch.from_numpy(syn), mu), prepare(torch.from_numpy(real), mu),
               Scan(k=1, col_subsets={"all": None}))
    assert (res.knn_dist["all"][:3, 0] == 0).all()
    assert (res.knn_dist["all"][3:, 0] > 0).all()
