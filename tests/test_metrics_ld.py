"""Windowed LD (genofast.metrics.ld) against independent references: a numpy pairwise-complete
Pearson r, `plink1.9 --r2` and scikit-allel's rogers_huff_r, on random data with missing calls
and on the real AGBL4 region (skipped cleanly without ../shared)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from numba import njit

from genofast.metrics import ld as L
from genofast.metrics._bits import transpose64, transpose64_ref

# the PLINK / bed helpers live with the per-SNP tests (found whatever pytest's import mode)
sys.path.insert(0, str(Path(__file__).parent))
from test_metrics_stats import (  # noqa: E402
    packed_of,
    read_bed,
    read_table,
    run_plink,
    write_bed,
)

# ---------------------------------------------------------------------------------------------
# references
# ---------------------------------------------------------------------------------------------


def r_numpy(g: np.ndarray, i: int, j: int) -> float:
    """Pearson r of dosages over individuals called at both SNPs (NaN when undefined)."""
    ok = (g[:, i] >= 0) & (g[:, j] >= 0)
    x, y = g[ok, i].astype(float), g[ok, j].astype(float)
    if ok.sum() < 2 or x.std() == 0 or y.std() == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def window_numpy(g: np.ndarray, chrom: np.ndarray | None, window: int) -> np.ndarray:
    m = g.shape[1]
    out = np.full((m, window - 1), np.nan)
    for i in range(m):
        for d in range(1, window):
            j = i + d
            if j >= m or (chrom is not None and chrom[j] != chrom[j - 1]):
                break  # windows stop at the end of a run of one chromosome code
            out[i, d - 1] = r_numpy(g, i, j)
    return out


def ld_genotypes(rng: np.random.Generator, n: int, m: int, missing: float) -> np.ndarray:
    """Genotypes with LD (haplotypes copy their previous allele with probability 0.8), some
    monomorphic SNPs, and missing calls."""
    freq = rng.uniform(0.05, 0.95, m)
    hap = np.empty((2 * n, m), dtype=np.int8)
    hap[:, 0] = rng.random(2 * n) < freq[0]
    for j in range(1, m):
        keep = rng.random(2 * n) < 0.8
        hap[:, j] = np.where(keep, hap[:, j - 1], rng.random(2 * n) < freq[j])
    g = (hap[:n] + hap[n:]).astype(np.int8)
    g[:, 5] = 1 if m > 5 else g[:, 5 % m]  # monomorphic (all het) SNP
    g[rng.random((n, m)) < missing] = -1
    return g


# ---------------------------------------------------------------------------------------------
# building blocks
# ---------------------------------------------------------------------------------------------


def test_transpose64_vector_equals_reference() -> None:
    @njit
    def both(x: np.ndarray, y: np.ndarray) -> None:
        transpose64(x)
        transpose64_ref(y)

    rng = np.random.default_rng(0)
    for _ in range(10):
        x = rng.integers(0, 2**64, 64, dtype=np.uint64, endpoint=False)
        y = x.copy()
        z = x.copy()
        both(y, z)
        assert np.array_equal(y, z)
        bits = (x[:, None] >> np.arange(64, dtype=np.uint64)) & np.uint64(1)  # [row, col]
        back = (y[:, None] >> np.arange(64, dtype=np.uint64)) & np.uint64(1)
        assert np.array_equal(bits.T, back)


# ---------------------------------------------------------------------------------------------
# ld_window against numpy, PLINK 1.9 and scikit-allel
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "n,m,window,missing",
    [(1, 9, 4, 0.0), (2, 40, 7, 0.0), (67, 95, 12, 0.1), (130, 150, 40, 0.02), (64, 33, 100, 0.0)],
)
def test_ld_window_matches_numpy(n: int, m: int, window: int, missing: float) -> None:
    g = ld_genotypes(np.random.default_rng(n + m), n, m, missing)
    chrom = np.repeat([3, 1, 3], [m // 3, m // 3, m - 2 * (m // 3)])  # 3 runs, codes repeat
    got = L.ld_window(packed_of(g), m, chrom, window)
    ref = window_numpy(g, chrom, window)
    assert got.dtype == np.float32 and got.shape == (m, window - 1)
    assert np.array_equal(np.isnan(got), np.isnan(ref))
    np.testing.assert_allclose(got, ref**2, atol=2e-6, equal_nan=True)
    r = L.ld_window(torch.from_numpy(packed_of(g)), m, chrom, window, squared=False)
    np.testing.assert_allclose(r, ref, atol=2e-6, equal_nan=True)


def test_ld_window_missing_is_pairwise_complete() -> None:
    """Missing calls drop the individual from that pair only, never read as genotype 0."""
    rng = np.random.default_rng(1)
    g = ld_genotypes(rng, 500, 6, 0.0)
    gm = g.copy()
    gm[:100, 0] = -1
    got = L.ld_window(packed_of(gm), 6, None, 6, squared=False)
    assert got[0, 0] == pytest.approx(np.corrcoef(g[100:, 0], g[100:, 1])[0, 1], abs=1e-6)
    assert got[1, 0] == pytest.approx(np.corrcoef(g[:, 1], g[:, 2])[0, 1], abs=1e-6)
    as_zero = np.where(gm < 0, 0, gm)
    assert abs(got[0, 0] - np.corrcoef(as_zero[:, 0], as_zero[:, 1])[0, 1]) > 1e-3


def test_ld_window_undefined_pairs_are_nan() -> None:
    g = ld_genotypes(np.random.default_rng(2), 80, 20, 0.0)
    g[:, 3] = 2  # monomorphic
    chrom = np.repeat([1, 2], [10, 10])
    r2 = L.ld_window(packed_of(g), 20, chrom, 6)
    assert np.isnan(r2[3]).all() and np.isnan(r2[0, 2])  # pairs with SNP 3
    assert np.isnan(r2[8, 1:]).all() and np.isfinite(r2[8, 0])  # 8-9 yes, 8-10+ other chrom
    assert np.isnan(r2[18, 1:]).all() and np.isnan(r2[19]).all()  # past the end
    assert L.ld_window(packed_of(g), 20, chrom, 1).shape == (20, 0)


def test_ld_window_equals_plink19_random_missing(plink19: str, tmp_path: Path) -> None:
    g = ld_genotypes(np.random.default_rng(3), 301, 420, 0.03)
    chrom = np.repeat([1, 2, 3], [150, 150, 120])
    window = 40
    prefix = write_bed(tmp_path / "rand", g, chrom)
    run_plink(
        plink19,
        f"--bfile {prefix} --r2 --ld-window-r2 0 --ld-window {window} --ld-window-kb 100000",
        tmp_path / "ld",
    )
    t = read_table(tmp_path / "ld.ld")
    ia = np.array([int(s[3:]) for s in t["SNP_A"]])
    ib = np.array([int(s[3:]) for s in t["SNP_B"]])
    r2 = L.ld_window(packed_of(g), g.shape[1], chrom, window)
    # PLINK lists every defined pair and nothing else
    assert ia.size == np.isfinite(r2).sum()
    np.testing.assert_allclose(r2[ia, ib - ia - 1], t["R2"], atol=1e-4)


def test_ld_window_equals_plink19_agbl4(agbl4_prefix: Path, plink19: str, tmp_path: Path) -> None:
    """First 400 SNPs of the real AGBL4 region, W = 100 (PLINK 1.9 prints 6 significant
    digits)."""
    bim = (agbl4_prefix.parent / (agbl4_prefix.name + ".bim")).read_text().split("\n")
    ids = [line.split()[1] for line in bim[:400]]
    window = 100
    run_plink(
        plink19,
        f"--bfile {agbl4_prefix} --from {ids[0]} --to {ids[-1]} --r2 --ld-window-r2 0 "
        f"--ld-window {window} --ld-window-kb 100000",
        tmp_path / "ld",
    )
    t = read_table(tmp_path / "ld.ld")
    index = {s: k for k, s in enumerate(ids)}
    ia = np.array([index[s] for s in t["SNP_A"]])
    ib = np.array([index[s] for s in t["SNP_B"]])
    g = read_bed(agbl4_prefix)[:, :400]
    r2 = L.ld_window(packed_of(g), 400, None, window)
    assert ia.size == np.isfinite(r2).sum()
    np.testing.assert_allclose(r2[ia, ib - ia - 1], t["R2"], atol=1e-4)


def _condensed(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    return n * i - i * (i + 1) // 2 + j - i - 1


def test_ld_window_equals_scikit_allel_rogers_huff() -> None:
    allel = pytest.importorskip("allel")
    g = ld_genotypes(np.random.default_rng(4), 211, 150, 0.04)
    r = L.ld_window(packed_of(g), 150, None, 30, squared=False)
    ref = allel.rogers_huff_r(g.T.copy())
    ii, kk = np.nonzero(np.ones_like(r, dtype=bool))
    jj = ii + kk + 1
    ok = jj < 150
    want = ref[_condensed(150, ii[ok], jj[ok])]
    np.testing.assert_allclose(r[ii[ok], kk[ok]], want, atol=2e-6, equal_nan=True)


def test_ld_window_equals_scikit_allel_agbl4(agbl4_prefix: Path) -> None:
    """scikit-allel accumulates in float32 (differences up to ~5e-6 near |r| = 1); the float64
    numpy Pearson r is the tighter check."""
    allel = pytest.importorskip("allel")
    g = read_bed(agbl4_prefix)[:, 1000:1300]
    r = L.ld_window(packed_of(g), 300, None, 100, squared=False)
    ref = allel.rogers_huff_r(g.T.copy())
    ii, kk = np.nonzero(np.isfinite(r))
    np.testing.assert_allclose(
        r[ii, kk], ref[_condensed(300, ii, ii + kk + 1)], atol=2e-5, equal_nan=True
    )
    corr = np.corrcoef(g.T.astype(np.float64))
    np.testing.assert_allclose(r[ii, kk], corr[ii, ii + kk + 1], atol=1e-6)


# ---------------------------------------------------------------------------------------------
# MAE, LD decay, region matrix and heat map
# ---------------------------------------------------------------------------------------------


def test_ld_r2_mae() -> None:
    a = np.array([[0.5, np.nan], [0.2, 0.1]], dtype=np.float32)
    b = np.array([[0.25, 0.3], [np.nan, 0.3]], dtype=np.float32)
    assert L.ld_r2_mae(a, b) == pytest.approx((0.25 + 0.2) / 2)
    assert L.ld_r2_mae(a, a) == 0.0


def test_ld_decay_matches_direct_binning() -> None:
    rng = np.random.default_rng(5)
    m, window = 120, 15
    g = ld_genotypes(rng, 150, m, 0.02)
    chrom = np.repeat(["1", "X"], [70, 50])
    bp = np.concatenate(
        [np.cumsum(rng.integers(0, 4000, 70)), np.cumsum(rng.integers(1, 9000, 50))]
    )
    r2 = L.ld_window(packed_of(g), m, chrom, window)
    dec = L.ld_decay(r2, chrom, bp, n_bins=8)
    # direct: every defined in-window pair, its distance, its bin
    sums = np.zeros((2, 8))
    cnts = np.zeros((2, 8))
    for i in range(m):
        for d in range(1, window):
            j = i + d
            if j < m and chrom[j] == chrom[i] and np.isfinite(r2[i, d - 1]):
                b = np.searchsorted(dec.edges, abs(bp[j] - bp[i]), side="right") - 1
                c = 0 if chrom[i] == "1" else 1
                sums[c, min(max(b, 0), 7)] += r2[i, d - 1]
                cnts[c, min(max(b, 0), 7)] += 1
    assert list(dec.chromosomes) == ["1", "X"]
    assert np.array_equal(dec.n_pairs_by_chrom, cnts)
    with np.errstate(invalid="ignore"):
        np.testing.assert_allclose(dec.mean_r2_by_chrom, sums / cnts, rtol=1e-5, equal_nan=True)
        # pooled = the pair-weighted average of the per-chromosome means
        np.testing.assert_allclose(dec.mean_r2, sums.sum(0) / cnts.sum(0), rtol=1e-5)
    assert dec.edges.size == 9 and np.all(np.diff(np.log(dec.edges)) > 0)
    assert L.ld_decay_mae(r2, r2, chrom, bp) == 0.0


def test_ld_summary_and_decay_mae_detect_broken_ld() -> None:
    rng = np.random.default_rng(6)
    m = 200
    real = ld_genotypes(rng, 300, m, 0.0)
    other = ld_genotypes(rng, 300, m, 0.0)
    shuffled = np.stack([rng.permutation(real[:, j]) for j in range(m)], 1)  # no LD
    chrom = np.ones(m, dtype=int)
    bp = np.arange(m) * 5000
    s_same = L.ld_summary(packed_of(real), packed_of(other), m, chrom, bp, window=20)
    s_free = L.ld_summary(packed_of(real), packed_of(shuffled), m, chrom, bp, window=20)
    assert s_free["ld_r2_mae"] > 3 * s_same["ld_r2_mae"]
    assert s_free["ld_decay_mae"] > 3 * s_same["ld_decay_mae"]
    dec = s_same["_decay"]
    assert len(dec["bin_centres"]) == len(dec["real"]) == len(dec["syn"]) == 20
    assert s_same["ld_pairs"] > 0 and s_same["ld_window"] == 20


def test_r2_matrix_and_heatmap() -> None:
    rng = np.random.default_rng(7)
    m = 60
    a = ld_genotypes(rng, 120, m, 0.05)
    b = ld_genotypes(rng, 90, m, 0.0)
    chrom = np.repeat(["2", "7"], [30, 30])
    bp = np.tile(np.arange(30) * 1000 + 500, 2)
    idx = L.region_index(chrom, bp, "7:3000-20000")
    assert np.array_equal(idx, 30 + np.arange(3, 20))
    assert np.array_equal(L.region_index(chrom, bp, None, max_snps=10), np.arange(10))
    mat = L.r2_matrix(packed_of(a), m, idx)
    for p in range(len(idx)):
        for q in range(len(idx)):
            if p != q:
                want = r_numpy(a, idx[p], idx[q]) ** 2
                assert mat[p, q] == pytest.approx(want, abs=2e-6, nan_ok=True)
    a_mono = a.copy()
    a_mono[:, idx[2]] = 0
    assert np.isnan(L.r2_matrix(packed_of(a_mono), m, idx)[2, 2])
    assert mat[0, 0] == 1.0
    heat, hidx = L.ld_heatmap(packed_of(a), packed_of(b), m, chrom, bp, "7:3000-20000")
    mb = L.r2_matrix(packed_of(b), m, idx)
    low = np.tril(np.ones_like(heat, dtype=bool), -1)
    assert np.array_equal(hidx, idx) and np.isnan(np.diag(heat)).all()
    np.testing.assert_array_equal(heat[low], mat[low])
    np.testing.assert_array_equal(heat[low.T], mb[low.T])
    with pytest.raises(ValueError):
        L.region_index(chrom, bp, "9:1-10")
