"""copying_path against every path enumerated (small panels) and against a vectorised numpy
recursion of the path cost (real AGBL4 haplotypes)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from conftest import real_data

from genofast.io import read_vcf
from genofast.metrics.mosaic import copying_path


def brute_force(q: np.ndarray, panel: np.ndarray, s: float) -> tuple[float, int, int]:
    """(cost, switches, mismatches) of the cheapest of all K^M paths."""
    k, m = panel.shape
    miss = (q[None] >= 0) & (panel >= 0) & (panel != q[None])  # [K, M]
    best = None
    for path in itertools.product(range(k), repeat=m):
        mm = int(sum(miss[r, j] for j, r in enumerate(path)))
        sw = sum(a != b for a, b in zip(path[:-1], path[1:], strict=True))
        key = (mm + s * sw, sw, mm)
        best = key if best is None or key[0] < best[0] else best
    return best


def min_cost_numpy(q: np.ndarray, panel: np.ndarray, s: float) -> float:
    """The same recursion written over the panel with numpy: cost_j = min(cost, min + s) + miss."""
    cost = np.zeros(panel.shape[0])
    for j in range(panel.shape[1]):
        if j:
            cost = np.minimum(cost, cost.min() + s)
        cost += (q[j] >= 0) & (panel[:, j] >= 0) & (panel[:, j] != q[j])
    return float(cost.min())


def test_matches_every_path_enumerated() -> None:
    rng = np.random.default_rng(3)
    s = 1.7  # mismatches + 1.7 switches <= 7 + 1.7 * 6 is reached by one (switches, mismatches)
    for _ in range(40):
        k, m = int(rng.integers(1, 4)), int(rng.integers(1, 7))
        panel = rng.integers(0, 2, (k, m)).astype(np.int8)
        q = rng.integers(-1, 2, (3, m)).astype(np.int8)
        panel[rng.random((k, m)) < 0.1] = -1
        got = copying_path(q, panel, s)
        for i in range(len(q)):
            cost, sw, mm = brute_force(q[i], panel, s)
            assert got.cost[i] == pytest.approx(cost)
            assert (got.switches[i], got.mismatches[i]) == (sw, mm)


def test_copies_and_splices_of_panel_rows() -> None:
    rng = np.random.default_rng(0)
    panel = rng.integers(0, 2, (6, 200)).astype(np.int8)
    splice = np.r_[panel[2, :120], panel[4, 120:]][None]
    noisy = panel[1:2].copy()
    noisy[0, [10, 50, 90]] ^= 1
    got = copying_path(torch.from_numpy(np.concatenate([panel[3:4], splice, noisy])), panel)
    assert got.switches.tolist() == [0, 1, 0]
    assert got.mismatches.tolist() == [0, 0, 3]
    assert got.cost.tolist() == [0.0, 5.0, 3.0]


def test_refuses_bad_input() -> None:
    panel = np.zeros((2, 5), np.int8)
    with pytest.raises(ValueError, match="not haplotypes"):
        copying_path(np.full((1, 5), 2, np.int8), panel)
    with pytest.raises(ValueError, match="SNPs"):
        copying_path(np.zeros((1, 4), np.int8), panel)
    with pytest.raises(ValueError, match="integer"):
        copying_path(np.zeros((1, 5)), panel)
    with pytest.raises(ValueError, match="switch_cost"):
        copying_path(panel, panel, 0.0)
    with pytest.raises(ValueError, match="2-D"):
        copying_path(np.zeros(5, np.int8), panel)


def test_real_haplotypes_against_the_numpy_recursion() -> None:
    """AGBL4: split2 haplotypes against split1's (the first 600 SNPs). The path's counts add up
    to its cost, the cost equals numpy's, and real haplotypes are few-piece mosaics of the panel
    while haplotypes of independent SNPs (drawn from split1's frequencies) are not."""
    folder = real_data("agbl4_1000g_chr1")
    panel = read_vcf(folder / "AGBL4_split1.vcf.gz").haplotypes.unpack()[:, :600].numpy()
    held = read_vcf(folder / "AGBL4_split2.vcf.gz").haplotypes.unpack()[:40, :600].numpy()
    rng = np.random.default_rng(1)
    indep = (rng.random((40, 600)) < panel.mean(0)).astype(np.int8)
    real, noise = copying_path(held, panel), copying_path(indep, panel)
    for i in range(0, 40, 8):
        assert real.cost[i] == pytest.approx(min_cost_numpy(held[i], panel, 5.0))
        assert noise.cost[i] == pytest.approx(min_cost_numpy(indep[i], panel, 5.0))
    np.testing.assert_allclose(real.cost, real.mismatches + 5.0 * real.switches)
    assert real.switches.mean() < 2 and real.mismatches.mean() < 5
    assert noise.mismatches.mean() > 5 * real.mismatches.mean()
    assert (copying_path(panel[:10], panel).cost == 0).all()
