"""Windowed linkage disequilibrium: r^2 of each SNP with the next W - 1 SNPs, LD decay, heat maps.

r is the Rogers-Huff r for unphased genotypes, i.e. the Pearson correlation of the allele-count
dosages over the individuals called at both SNPs (pairwise-complete, as ``plink1.9 --r2`` and
scikit-allel's ``rogers_huff_r``). It is computed as PLINK does, from bit planes and popcounts:

* each SNP becomes three bit sets over the individuals, 64 per uint64 word: ``H`` (called and
  homozygous), ``T`` (two copies of allele_1) and ``C`` (called). With the centred dosage
  ``x' = x - 1`` in {-1, 0, +1}, ``x'_i x'_j`` is 0 unless both are homozygous, then +1 when they
  agree and -1 when they do not, so ``sum x'_i x'_j = pop(Hi & Hj) - 2 pop(Hi & Hj & (Ti ^ Tj))``:
  3 logic ops and 2 popcounts per 64 individuals. Pearson r is shift invariant, so these
  centred sums give r exactly (integer arithmetic up to the final division).
* SNPs without missing calls use their own sums (``sum x' = 2 pop(T) - pop(H)``,
  ``sum x'^2 = pop(H)``); a pair with a missing call at either SNP restricts every sum to the
  individuals called at both (``C_i & C_j``): 5 more popcounts.
* The bit planes come from the individual-major packed bytes through 64 x 64 bit-matrix
  transposes (64 individuals x 32 SNPs at a time), built per chunk of SNPs in each thread, so
  memory stays bounded; the pair loop runs 4 partner SNPs per pass over SNP i's words.

Windows never cross a chromosome boundary (a change of chromosome code between neighbouring
SNPs) and have no base-pair limit. Undefined pairs (out of range, another chromosome, fewer than
2 individuals called at both, or a SNP monomorphic over those individuals) are NaN.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from numba import get_num_threads, njit, prange

from genofast.metrics._bits import (
    as_packed_numpy,
    load_u64,
    load_u64_tail,
    popcount,
    transpose64,
)

_U64 = np.uint64
_ALL = np.uint64(0xFFFFFFFFFFFFFFFF)
DEFAULT_WINDOW = 100

# ---------------------------------------------------------------------------------------------
# bit planes
# ---------------------------------------------------------------------------------------------


@njit(cache=True, nogil=True)
def _build_planes(
    flat: np.ndarray,
    n_rows: int,
    nbytes: int,
    s0: int,
    s1: int,
    nwp: int,
    planes: np.ndarray,
    stats: np.ndarray,
    isd: np.ndarray,
) -> None:
    """Bit planes of SNPs ``[s0, s1)`` (``s0 % 32 == 0``) into ``planes[s - s0]`` = H | T | C
    (``nwp`` words each, zero padded), ``stats[s - s0]`` = (n called, sum x', sum x'^2) and
    ``isd[s - s0]`` = 1 / sqrt(n sum x'^2 - (sum x')^2) (NaN if that is 0) for SNPs called in
    every individual, the only ones the fast pair path uses."""
    nw = (n_rows + 63) // 64
    x = np.empty(64, dtype=np.uint64)
    n_groups = (s1 - s0 + 31) // 32
    # tiles of 64 individuals outside, 32-SNP groups inside: each row segment is read once,
    # sequentially
    for t in range(nw):
        r0 = 64 * t
        n_r = min(64, n_rows - r0)
        valid = _ALL if n_r == 64 else (_U64(1) << _U64(n_r)) - _U64(1)
        for g in range(n_groups):
            sg = s0 + 32 * g
            byte0 = sg // 4
            n_in = min(8, nbytes - byte0)
            n_snp = min(32, s1 - sg)
            if n_in == 8:
                for r in range(n_r):
                    x[r] = load_u64(flat, (r0 + r) * nbytes + byte0)
            else:
                for r in range(n_r):
                    x[r] = load_u64_tail(flat, (r0 + r) * nbytes + byte0, n_in)
            for r in range(n_r, 64):
                x[r] = 0
            transpose64(x)
            for k in range(n_snp):
                lo = x[2 * k]
                hi = x[2 * k + 1]
                ls = sg - s0 + k
                planes[ls, t] = ~lo & valid  # code 0 or 2: called homozygote
                planes[ls, nwp + t] = hi & ~lo  # code 2
                planes[ls, 2 * nwp + t] = ~(lo & hi) & valid  # called
    for ls in range(s1 - s0):
        h = _U64(0)
        tt = _U64(0)
        c = _U64(0)
        for t in range(nw):
            h += popcount(planes[ls, t])
            tt += popcount(planes[ls, nwp + t])
            c += popcount(planes[ls, 2 * nwp + t])
        n = np.int64(c)
        sx = 2 * np.int64(tt) - np.int64(h)
        sxx = np.int64(h)
        stats[ls, 0] = n
        stats[ls, 1] = sx
        stats[ls, 2] = sxx
        var = n * sxx - sx * sx
        isd[ls] = 1.0 / np.sqrt(float(var)) if var > 0 else np.nan


# ---------------------------------------------------------------------------------------------
# pair kernels
# ---------------------------------------------------------------------------------------------


@njit(cache=True, nogil=True, inline="always")
def _finish(n: int, sx: int, sxx: int, sy: int, syy: int, sxy: int, squared: bool) -> float:
    """Pearson r (or r^2) from integer sums; NaN when undefined."""
    if n < 2:
        return np.nan
    vx = n * sxx - sx * sx
    vy = n * syy - sy * sy
    if vx <= 0 or vy <= 0:
        return np.nan
    cov = float(n * sxy - sx * sy)
    if squared:
        return cov * cov / (float(vx) * float(vy))
    return cov / np.sqrt(float(vx) * float(vy))


@njit(cache=True, nogil=True, inline="always")
def _finish_full(
    n: int, sx: int, isd_a: float, sy: int, isd_b: float, sxy: int, squared: bool
) -> float:
    """r (or r^2) of two SNPs without missing calls, from their inverse standard deviations."""
    r = float(n * sxy - sx * sy) * isd_a * isd_b
    return r * r if squared else r


@njit(cache=True, nogil=True, inline="always")
def _dot(P: np.ndarray, a: int, b: int, nwp: int) -> int:
    """sum over individuals of x'_a x'_b (0 where either is missing)."""
    s1 = _U64(0)
    s2 = _U64(0)
    for k in range(nwp):
        h = P[a, k] & P[b, k]
        s1 += popcount(h)
        s2 += popcount(h & (P[a, nwp + k] ^ P[b, nwp + k]))
    return np.int64(s1) - 2 * np.int64(s2)


@njit(cache=True, nogil=True)
def _pair_general(
    P: np.ndarray, st: np.ndarray, a: int, b: int, nwp: int, n_rows: int, squared: bool
) -> float:
    """r for one pair with pairwise-complete sums (either SNP may have missing calls)."""
    sxy = _dot(P, a, b, nwp)
    if st[a, 0] == n_rows and st[b, 0] == n_rows:
        return _finish(n_rows, st[a, 1], st[a, 2], st[b, 1], st[b, 2], sxy, squared)
    n = _U64(0)
    ha = _U64(0)
    ta = _U64(0)
    hb = _U64(0)
    tb = _U64(0)
    c2 = 2 * nwp
    for k in range(nwp):
        ca = P[a, c2 + k]
        cb = P[b, c2 + k]
        n += popcount(ca & cb)
        ha += popcount(P[a, k] & cb)
        ta += popcount(P[a, nwp + k] & cb)
        hb += popcount(P[b, k] & ca)
        tb += popcount(P[b, nwp + k] & ca)
    sx = 2 * np.int64(ta) - np.int64(ha)
    sy = 2 * np.int64(tb) - np.int64(hb)
    return _finish(np.int64(n), sx, np.int64(ha), sy, np.int64(hb), sxy, squared)


@njit(cache=True, nogil=True)
def _row_window(
    P: np.ndarray,
    st: np.ndarray,
    isd: np.ndarray,
    a: int,
    dmax: int,
    nwp: int,
    n_rows: int,
    squared: bool,
    out_row: np.ndarray,
) -> None:
    """out_row[d - 1] = r(a, a + d) for d = 1..dmax; 4 partners per pass when none has missing."""
    full_a = st[a, 0] == n_rows
    d = 1
    while d + 3 <= dmax:
        b = a + d
        if (
            full_a
            and st[b, 0] == n_rows
            and st[b + 1, 0] == n_rows
            and st[b + 2, 0] == n_rows
            and st[b + 3, 0] == n_rows
        ):
            p1 = _U64(0)
            q1 = _U64(0)
            p2 = _U64(0)
            q2 = _U64(0)
            p3 = _U64(0)
            q3 = _U64(0)
            p4 = _U64(0)
            q4 = _U64(0)
            for k in range(nwp):
                ha = P[a, k]
                ta = P[a, nwp + k]
                h1 = ha & P[b, k]
                h2 = ha & P[b + 1, k]
                h3 = ha & P[b + 2, k]
                h4 = ha & P[b + 3, k]
                p1 += popcount(h1)
                q1 += popcount(h1 & (ta ^ P[b, nwp + k]))
                p2 += popcount(h2)
                q2 += popcount(h2 & (ta ^ P[b + 1, nwp + k]))
                p3 += popcount(h3)
                q3 += popcount(h3 & (ta ^ P[b + 2, nwp + k]))
                p4 += popcount(h4)
                q4 += popcount(h4 & (ta ^ P[b + 3, nwp + k]))
            sx = st[a, 1]
            ia = isd[a]
            out_row[d - 1] = _finish_full(
                n_rows, sx, ia, st[b, 1], isd[b], np.int64(p1) - 2 * np.int64(q1), squared
            )
            out_row[d] = _finish_full(
                n_rows, sx, ia, st[b + 1, 1], isd[b + 1], np.int64(p2) - 2 * np.int64(q2), squared
            )
            out_row[d + 1] = _finish_full(
                n_rows, sx, ia, st[b + 2, 1], isd[b + 2], np.int64(p3) - 2 * np.int64(q3), squared
            )
            out_row[d + 2] = _finish_full(
                n_rows, sx, ia, st[b + 3, 1], isd[b + 3], np.int64(p4) - 2 * np.int64(q4), squared
            )
        else:
            for e in range(4):
                out_row[d - 1 + e] = _pair_general(P, st, a, b + e, nwp, n_rows, squared)
        d += 4
    while d <= dmax:
        out_row[d - 1] = _pair_general(P, st, a, a + d, nwp, n_rows, squared)
        d += 1
    for k in range(dmax, out_row.size):
        out_row[k] = np.nan


@njit(cache=True, nogil=True, parallel=True)
def _ld_window_kernel(
    flat: np.ndarray,
    n_rows: int,
    nbytes: int,
    n_snps: int,
    run_end: np.ndarray,
    window: int,
    chunk: int,
    n_threads: int,
    squared: bool,
    out: np.ndarray,
) -> None:
    """out[i, d - 1] = r(i, i + d) for 1 <= d < window and i + d < run_end[i], NaN elsewhere
    (every entry is written). One task per thread takes every ``n_threads``-th chunk of
    ``chunk`` SNPs (a multiple of 32), building the bit planes of the chunk's SNPs plus the
    ``window - 1`` that follow into buffers it reuses."""
    nw = (n_rows + 63) // 64
    nwp = (nw + 7) // 8 * 8
    n_chunks = (n_snps + chunk - 1) // chunk
    n_tasks = min(n_chunks, n_threads)
    for task in prange(n_tasks):
        # one set of buffers per task, reused (and so cache-warm) for all its chunks
        planes = np.zeros((chunk + window - 1, 3 * nwp), dtype=np.uint64)
        stats = np.zeros((chunk + window - 1, 3), dtype=np.int64)
        isd = np.empty(chunk + window - 1, dtype=np.float64)
        for c in range(task, n_chunks, n_tasks):
            s0 = c * chunk
            s1 = min(s0 + chunk, n_snps)
            e = min(s1 + window - 1, n_snps)
            _build_planes(flat, n_rows, nbytes, s0, e, nwp, planes, stats, isd)
            for i in range(s0, s1):
                dmax = max(0, min(window - 1, run_end[i] - 1 - i))
                _row_window(planes, stats, isd, i - s0, dmax, nwp, n_rows, squared, out[i])


def _run_end(chromosome: Any, n_snps: int) -> np.ndarray:
    """For each SNP, one past the last SNP of its run of equal chromosome codes."""
    if chromosome is None:
        return np.full(n_snps, n_snps, dtype=np.int64)
    chrom = np.asarray(chromosome)
    if chrom.shape != (n_snps,):
        raise ValueError(f"chromosome: expected shape ({n_snps},), got {chrom.shape}")
    if n_snps == 0:
        return np.zeros(0, dtype=np.int64)
    change = np.flatnonzero(chrom[1:] != chrom[:-1]) + 1
    ends = np.append(change, n_snps)
    run = np.repeat(np.arange(ends.size), np.diff(np.concatenate([[0], ends])))
    return ends[run].astype(np.int64)


def _chunk_size(n_snps: int, n_rows: int, window: int) -> int:
    """SNPs per parallel chunk: about 2 MiB of bit planes (they are written tile by tile across
    all SNPs of the chunk, so they should stay in cache), at least 4 windows (each chunk rebuilds
    the planes of the window - 1 SNPs after it) and at most a quarter of a thread's share."""
    bytes_per_snp = 3 * 8 * ((((n_rows + 63) // 64) + 7) // 8 * 8)
    lo = max(256, 4 * window)
    want = min((2 << 20) // max(bytes_per_snp, 1), -(-n_snps // (4 * get_num_threads())))
    return int(-(-max(want, lo) // 32) * 32)


def ld_window(
    packed: Any,
    n_snps: int,
    chromosome: Any = None,
    window: int = DEFAULT_WINDOW,
    squared: bool = True,
) -> np.ndarray:
    """r^2 (or r with ``squared=False``) between each SNP and the next ``window - 1`` SNPs.

    Returns float32 ``[M, window - 1]`` with ``out[i, d - 1] = r^2(i, i + d)``; NaN where the
    pair is undefined (past the end, across a chromosome boundary in ``chromosome``, or a SNP
    monomorphic over the individuals called at both). ``chromosome`` (any array of codes, one
    per SNP) may be None for a single chromosome.
    """
    arr = as_packed_numpy(packed, n_snps)
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    n_rows, nbytes = arr.shape
    if n_snps == 0 or window == 1 or n_rows == 0:
        return np.full((n_snps, window - 1), np.nan, dtype=np.float32)
    out = np.empty((n_snps, window - 1), dtype=np.float32)  # the kernel writes every entry
    run_end = _run_end(chromosome, n_snps)
    chunk = _chunk_size(n_snps, n_rows, window)
    _ld_window_kernel(
        arr.reshape(-1),
        n_rows,
        nbytes,
        n_snps,
        run_end,
        window,
        chunk,
        get_num_threads(),
        squared,
        out,
    )
    return out


def ld_r2_mae(r2_a: np.ndarray, r2_b: np.ndarray) -> float:
    """Mean |r^2_a - r^2_b| over the window pairs defined in both (the report's ``ld_r2_mae``)."""
    a = np.asarray(r2_a)
    b = np.asarray(r2_b)
    if a.shape != b.shape:
        raise ValueError(f"ld_r2_mae: shapes differ, {a.shape} vs {b.shape}")
    d = np.abs(a - b)
    ok = np.isfinite(d)
    n = int(ok.sum())
    return float(np.sum(d, where=ok, dtype=np.float64) / n) if n else float("nan")


# ---------------------------------------------------------------------------------------------
# LD decay
# ---------------------------------------------------------------------------------------------


class LDDecay(NamedTuple):
    """Mean r^2 per base-pair-distance bin, pooled over chromosomes and per chromosome."""

    edges: np.ndarray  # float64 [B + 1], log-spaced bp distances
    mean_r2: np.ndarray  # float64 [B], pooled over chromosomes (NaN for empty bins)
    n_pairs: np.ndarray  # int64 [B]
    chromosomes: np.ndarray  # [C] chromosome codes in order of first appearance
    mean_r2_by_chrom: np.ndarray  # float64 [C, B]
    n_pairs_by_chrom: np.ndarray  # int64 [C, B]


@njit(cache=True, nogil=True)
def _decay_sums(
    r2: np.ndarray,
    chrom_idx: np.ndarray,
    bp: np.ndarray,
    run_end: np.ndarray,
    edges: np.ndarray,
    n_chrom: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Per (chromosome, bin) sums of r^2 and counts of the defined in-window pairs."""
    m, w1 = r2.shape
    nb = edges.size - 1
    sums = np.zeros((n_chrom, nb), dtype=np.float64)
    cnts = np.zeros((n_chrom, nb), dtype=np.int64)
    for i in range(m):
        for k in range(min(w1, run_end[i] - 1 - i)):
            v = r2[i, k]
            if not np.isfinite(v):
                continue
            dist = float(abs(bp[i + k + 1] - bp[i]))
            b = np.searchsorted(edges, dist, side="right") - 1
            b = min(max(b, 0), nb - 1)
            sums[chrom_idx[i], b] += v
            cnts[chrom_idx[i], b] += 1
    return sums, cnts


@njit(cache=True, nogil=True)
def _distance_range(bp: np.ndarray, run_end: np.ndarray, w1: int) -> tuple[float, float]:
    """Smallest positive and largest bp distance over the in-window pairs."""
    dmin = np.inf
    dmax = 0.0
    for i in range(bp.size):
        for k in range(min(w1, run_end[i] - 1 - i)):
            dist = float(abs(bp[i + k + 1] - bp[i]))
            if dist > 0:
                dmin = min(dmin, dist)
            dmax = max(dmax, dist)
    return dmin, dmax


def decay_edges(
    chromosome: Any, bp: Any, window: int = DEFAULT_WINDOW, n_bins: int = 20
) -> np.ndarray:
    """Log-spaced distance bin edges spanning the in-window pairs' distances (from the smallest
    positive to the largest; pairs at distance 0 go to the first bin). They depend only on the
    SNP map, so a real and a synthetic cohort on the same SNPs share them."""
    bp = np.ascontiguousarray(bp, dtype=np.int64)
    dmin, dmax = _distance_range(bp, _run_end(chromosome, bp.size), max(window - 1, 0))
    if not np.isfinite(dmin) or dmax <= dmin:
        dmin, dmax = 1.0, max(dmax, 10.0)
    return np.logspace(np.log10(dmin), np.log10(dmax) + 1e-9, n_bins + 1)


def ld_decay(
    r2: np.ndarray, chromosome: Any, bp: Any, edges: np.ndarray | None = None, n_bins: int = 20
) -> LDDecay:
    """LD decay: mean r^2 of the window pairs (``ld_window`` output) in log-spaced bp-distance
    bins, per chromosome and pooled (the pair-weighted average of the per-chromosome means)."""
    r2 = np.ascontiguousarray(r2, dtype=np.float32)
    m = r2.shape[0]
    bp = np.asarray(bp, dtype=np.int64)
    chrom = np.zeros(m, dtype=np.int64) if chromosome is None else np.asarray(chromosome)
    if bp.shape != (m,) or chrom.shape != (m,):
        raise ValueError(f"ld_decay: chromosome and bp must have shape ({m},)")
    if edges is None:
        edges = decay_edges(chrom, bp, r2.shape[1] + 1, n_bins)
    edges = np.asarray(edges, dtype=np.float64)
    _, first = np.unique(chrom, return_index=True)
    codes = chrom[np.sort(first)]
    lookup = {c: k for k, c in enumerate(codes.tolist())}
    chrom_idx = np.array([lookup[c] for c in chrom.tolist()], dtype=np.int64)
    sums, cnts = _decay_sums(r2, chrom_idx, bp, _run_end(chrom, m), edges, len(codes))
    with np.errstate(invalid="ignore", divide="ignore"):
        by_chrom = sums / cnts
        pooled = sums.sum(0) / cnts.sum(0)
    return LDDecay(edges, pooled, cnts.sum(0), codes, by_chrom, cnts)


def ld_decay_mae(
    r2_a: np.ndarray, r2_b: np.ndarray, chromosome: Any, bp: Any, n_bins: int = 20
) -> float:
    """Mean |difference| of the pooled LD-decay curves of two cohorts on the same SNPs, over
    the bins populated in both (the report's ``ld_decay_mae``)."""
    w = np.asarray(r2_a).shape[1] + 1
    edges = decay_edges(chromosome, bp, w, n_bins)
    a = ld_decay(r2_a, chromosome, bp, edges).mean_r2
    b = ld_decay(r2_b, chromosome, bp, edges).mean_r2
    d = np.abs(a - b)
    ok = np.isfinite(d)
    return float(d[ok].mean()) if ok.any() else float("nan")


# ---------------------------------------------------------------------------------------------
# r^2 matrix of a region (heat map)
# ---------------------------------------------------------------------------------------------


def select_packed(packed: Any, n_snps: int, index: np.ndarray) -> np.ndarray:
    """The packed genotypes of the SNPs ``index`` (in that order), uint8 ``[N, ceil(K/4)]``."""
    arr = as_packed_numpy(packed, n_snps)
    idx = np.asarray(index, dtype=np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= n_snps):
        raise IndexError("SNP index out of range")
    k = idx.size
    codes = np.zeros((arr.shape[0], 4 * ((k + 3) // 4)), dtype=np.uint8)
    codes[:, :k] = (arr[:, idx // 4] >> (2 * (idx % 4)).astype(np.uint8)) & 3
    q = codes.reshape(arr.shape[0], -1, 4)
    return np.ascontiguousarray(q[..., 0] | (q[..., 1] << 2) | (q[..., 2] << 4) | (q[..., 3] << 6))


def r2_matrix(packed: Any, n_snps: int, index: Any, squared: bool = True) -> np.ndarray:
    """Full symmetric r^2 (or r) matrix, float32 ``[K, K]``, of the SNPs ``index``; the diagonal
    is 1 for polymorphic SNPs and NaN for monomorphic ones, undefined pairs NaN."""
    idx = np.asarray(index, dtype=np.int64)
    k = idx.size
    sub = select_packed(packed, n_snps, idx)
    out = np.full((k, k), np.nan, dtype=np.float32)
    if k == 0:
        return out
    w = ld_window(sub, k, None, window=k, squared=squared)  # [k, k - 1]
    ii, dd = np.nonzero(np.ones((k, k - 1), dtype=bool))
    jj = ii + dd + 1
    ok = jj < k
    out[ii[ok], jj[ok]] = w[ii[ok], dd[ok]]
    out[jj[ok], ii[ok]] = w[ii[ok], dd[ok]]
    from genofast.metrics.counts import genotype_counts

    c = genotype_counts(sub, k)
    poly = (c[:, 1] > 0) | ((c[:, 0] > 0) & (c[:, 2] > 0))
    out[np.arange(k)[poly], np.arange(k)[poly]] = 1.0
    return out


def region_index(
    chromosome: Any, bp: Any, region: str | None = None, max_snps: int = 300
) -> np.ndarray:
    """Indices of the SNPs in ``region`` ("CHR:START-END", bp inclusive, or "CHR"), or of the
    first ``max_snps`` SNPs when ``region`` is None; at most ``max_snps`` (the first ones)."""
    chrom = np.asarray(chromosome).astype(str)
    pos = np.asarray(bp, dtype=np.int64)
    if region is None:
        return np.arange(min(max_snps, chrom.size), dtype=np.int64)
    name, _, span = region.partition(":")
    keep = chrom == name.strip()
    if span:
        start_s, _, end_s = span.replace(",", "").partition("-")
        start = int(start_s) if start_s else 0
        end = int(end_s) if end_s else np.iinfo(np.int64).max
        keep &= (pos >= start) & (pos <= end)
    idx = np.flatnonzero(keep)
    if idx.size == 0:
        raise ValueError(f"region {region!r} contains no SNP")
    return idx[:max_snps]


def ld_heatmap(
    real_packed: Any,
    synthetic_packed: Any,
    n_snps: int,
    chromosome: Any,
    bp: Any,
    region: str | None = None,
    max_snps: int = 300,
) -> tuple[np.ndarray, np.ndarray]:
    """The heat-map matrix ``[K, K]``: real r^2 below the diagonal, synthetic r^2 above, NaN on
    it; and the SNP indices it covers (``region`` or the first ``max_snps`` SNPs)."""
    idx = region_index(chromosome, bp, region, max_snps)
    real = r2_matrix(real_packed, n_snps, idx)
    syn = r2_matrix(synthetic_packed, n_snps, idx)
    k = idx.size
    out = np.where(np.tril(np.ones((k, k), dtype=bool), -1), real, syn).astype(np.float32)
    out[np.arange(k), np.arange(k)] = np.nan
    return out, idx


# ---------------------------------------------------------------------------------------------
# one call for the report
# ---------------------------------------------------------------------------------------------


def ld_summary(
    real_packed: Any,
    synthetic_packed: Any,
    n_snps: int,
    chromosome: Any = None,
    bp: Any = None,
    window: int = DEFAULT_WINDOW,
    n_bins: int = 20,
) -> dict[str, Any]:
    """LD metrics of a synthetic cohort against a real one on the same SNPs.

    Returns ``{"ld_r2_mae", "ld_decay_mae", "ld_window", "ld_pairs", "_decay"}``: ``ld_pairs`` is
    the number of window pairs defined in both cohorts; ``_decay`` holds the two decay curves for
    plotting (``edges``, ``bin_centres`` (geometric), ``real``, ``syn``, ``n_pairs_real``,
    ``n_pairs_syn``, as lists). Without ``bp`` the decay metrics are NaN and ``_decay`` is None.
    """
    r2_real = ld_window(real_packed, n_snps, chromosome, window)
    r2_syn = ld_window(synthetic_packed, n_snps, chromosome, window)
    both = np.isfinite(r2_real) & np.isfinite(r2_syn)
    out: dict[str, Any] = {
        "ld_r2_mae": ld_r2_mae(r2_real, r2_syn),
        "ld_decay_mae": float("nan"),
        "ld_window": int(window),
        "ld_pairs": int(both.sum()),
        "_decay": None,
    }
    if bp is None or window < 2 or n_snps < 2:
        return out
    edges = decay_edges(chromosome, bp, window, n_bins)
    a = ld_decay(r2_real, chromosome, bp, edges)
    b = ld_decay(r2_syn, chromosome, bp, edges)
    d = np.abs(a.mean_r2 - b.mean_r2)
    ok = np.isfinite(d)
    out["ld_decay_mae"] = float(d[ok].mean()) if ok.any() else float("nan")
    out["_decay"] = {
        "edges": edges.tolist(),
        "bin_centres": np.sqrt(edges[:-1] * edges[1:]).tolist(),
        "real": a.mean_r2.tolist(),
        "syn": b.mean_r2.tolist(),
        "n_pairs_real": a.n_pairs.tolist(),
        "n_pairs_syn": b.n_pairs.tolist(),
    }
    return out
