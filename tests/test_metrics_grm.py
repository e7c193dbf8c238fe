"""VanRaden GRM: the full matrix and the blockwise scan (histogram, kinship count) vs numpy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genofast.metrics.grm import KINSHIP_SECOND_DEGREE, grm_spec, hist_summary, vanraden_grm
from genofast.metrics.pairwise import Scan, allele_freq, prepare, scan


def _numpy_grm(a: np.ndarray, b: np.ndarray, p: np.ndarray) -> np.ndarray:
    """VanRaden (2008) method 1, missing genotypes contributing 0 after centring."""
    za = np.where(a < 0, 0.0, a - 2 * p)
    zb = np.where(b < 0, 0.0, b - 2 * p)
    return za @ zb.T / (2 * (p * (1 - p)).sum())


def _data(seed: int = 0):
    rng = np.random.default_rng(seed)
    m = 300
    p = rng.uniform(0.05, 0.95, m)
    a = rng.binomial(2, p, (45, m)).astype(np.int8)
    b = rng.binomial(2, p, (38, m)).astype(np.int8)
    b[:4] = a[:4]  # duplicates: G ~ 1 + F, far above the threshold
    b[4:8, : m // 2] = a[4:8, : m // 2]  # half-genome sharing, about second degree or more
    a[rng.random(a.shape) < 0.02] = -1
    b[rng.random(b.shape) < 0.02] = -1
    return a, b


def test_full_grm_matches_numpy() -> None:
    a, b = _data()
    p = allele_freq(torch.from_numpy(a)).numpy()
    called = a >= 0
    np.testing.assert_allclose(p, np.where(called, a, 0).sum(0) / (2 * called.sum(0)))
    got = vanraden_grm(torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(p)).numpy()
    np.testing.assert_allclose(got, _numpy_grm(a, b, p), atol=1e-12)


@pytest.mark.parametrize("same", [False, True])
def test_scan_histogram_and_kinship_count(same: bool) -> None:
    a, b = _data(1)
    if same:
        b = a
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    freq = allele_freq(ta)
    spec = grm_spec(freq)
    mu = (2 * freq).float()
    res = scan(prepare(tb, mu), prepare(ta, mu), Scan(grm=spec), same=same, block_q=7,
               block_d=11)
    ref = _numpy_grm(b, a, freq.numpy())
    if same:
        vals = ref[np.triu_indices(len(a), 1)]
    else:
        vals = ref.ravel()
    assert res.grm_pairs == len(vals)
    assert res.grm_n_ge == int((vals >= 2 * KINSHIP_SECOND_DEGREE).sum())
    if not same:
        assert res.grm_n_ge >= 4
    width = (spec.hi - spec.lo) / spec.bins
    want = np.bincount(np.clip(np.floor((vals - spec.lo) / width), 0, spec.bins - 1).astype(int),
                       minlength=spec.bins)
    # float32 inner products may move a value sitting on a bin edge by one bin
    diff = np.abs(res.grm_hist.numpy() - want).sum()
    assert diff <= 2 * max(1, len(vals) // 2000)
    s = hist_summary(res.grm_hist, spec)
    assert s["mean"] == pytest.approx(vals.mean(), abs=width)
    assert s["sd"] == pytest.approx(vals.std(), abs=2 * width)
