"""Per-SNP and per-individual statistics from genotype counts (Numba on the packed 2-bit codes).

Packed layout (genofast.ops.codec): individual-major ``uint8 [N, ceil(M/4)]``, SNP ``j`` in byte
``j // 4`` at bits ``2 * (j % 4)``, code = copies of allele_1 (0, 1, 2), 3 = missing.

One pass over the packed bytes gives the genotype counts ``[M, 4]`` (code 0, 1, 2, missing);
every per-SNP statistic here is then a cheap function of those counts, so a caller computes the
counts once per cohort. Missing genotypes are left out of every statistic (each SNP uses its own
number of called individuals), never counted as 0.

The counting kernel is a SWAR (SIMD-within-a-register) vertical counter: 8 packed bytes (32 SNPs)
at a time, the "low bit", "high bit" and "both bits" planes of the 2-bit codes are summed in their
own 2-bit lanes over 3 rows, in 4-bit lanes over 12 rows, in 8-bit lanes over 252 rows, then into
int64 counts. The inner loop is about 16 vector instructions per 64 bytes and row; one core counts
about 24 GB/s from cache and about 10 GB/s streaming from memory (AMD EPYC Zen 4), so a few cores
saturate the memory bus.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from numba import get_num_threads, njit, prange
from numba.cpython.unsafe.numbers import trailing_zeros

from genofast.metrics._bits import (
    MASK_55,
    as_packed_numpy,
    load_u64,
    load_u64_tail,
    popcount,
)

_U64 = np.uint64
_K3 = np.uint64(0x3333333333333333)
_K0F = np.uint64(0x0F0F0F0F0F0F0F0F)
_KFF = np.uint64(0xFF)
# words (8 bytes, 32 SNPs) per column block (16 KiB of each row, 192 KiB of accumulators); a
# compile-time constant so that the 12 accumulator slots are fixed offsets of one array and LLVM
# vectorises the word loop with a single alias check
_BW = 2048
# accumulator slot stride: _BW plus 128 bytes, so that the 12 slots of one word do not share the
# low 12 address bits (4K aliasing stalls every load behind the previous slot's store)
_ST = _BW + 16
# rows summed into the 4-bit lanes before they are folded into 8-bit lanes (at most 15; LLVM 20
# stops vectorising the word loop when this fully unrolled row loop reaches 15)
_ROWS = 12

# ---------------------------------------------------------------------------------------------
# genotype counts
# ---------------------------------------------------------------------------------------------


@njit(cache=True, nogil=True, inline="always")
def _fold_nibbles(acc: np.ndarray, p: int, w: int, e: np.uint64, o: np.uint64) -> None:
    """Add two nibble-lane accumulators (even / odd SNPs) of plane ``p`` into its 4 byte-lane
    accumulators: byte b of slot q counts SNP 4 b + q of word w."""
    acc[(4 * p + 0) * _ST + w] += e & _K0F
    acc[(4 * p + 1) * _ST + w] += o & _K0F
    acc[(4 * p + 2) * _ST + w] += (e >> _U64(4)) & _K0F
    acc[(4 * p + 3) * _ST + w] += (o >> _U64(4)) & _K0F


@njit(cache=True, nogil=True, inline="always")
def _planes(x: np.uint64) -> tuple[np.uint64, np.uint64, np.uint64]:
    hi = (x >> _U64(1)) & MASK_55
    return x & MASK_55, hi, x & hi


@njit(cache=True, nogil=True)
def _accumulate_rows(
    flat: np.ndarray, row0: int, nbytes: int, wg: int, nw: int, acc: np.ndarray
) -> None:
    """_ROWS full rows x ``nw`` full words (from word ``wg`` of the rows; ``acc`` column 0 is
    word ``wg``) into the byte-lane accumulators (rows unrolled, words vectorised). The three
    planes are first summed over 3 rows in their own 2-bit lanes (at most 3, no carry), then
    split into even/odd-SNP 4-bit lanes."""
    for w in range(nw):
        off = row0 * nbytes + 8 * (wg + w)
        e0 = _U64(0)
        o0 = _U64(0)
        e1 = _U64(0)
        o1 = _U64(0)
        e2 = _U64(0)
        o2 = _U64(0)
        for t in range(_ROWS // 3):
            r = off + 3 * t * nbytes
            lo_a, hi_a, bo_a = _planes(load_u64(flat, r))
            lo_b, hi_b, bo_b = _planes(load_u64(flat, r + nbytes))
            lo_c, hi_c, bo_c = _planes(load_u64(flat, r + 2 * nbytes))
            lo = lo_a + lo_b + lo_c
            hi = hi_a + hi_b + hi_c
            bo = bo_a + bo_b + bo_c
            e0 += lo & _K3
            o0 += (lo >> _U64(2)) & _K3
            e1 += hi & _K3
            o1 += (hi >> _U64(2)) & _K3
            e2 += bo & _K3
            o2 += (bo >> _U64(2)) & _K3
        _fold_nibbles(acc, 0, w, e0, o0)
        _fold_nibbles(acc, 1, w, e1, o1)
        _fold_nibbles(acc, 2, w, e2, o2)


@njit(cache=True, nogil=True)
def _accumulate_few(
    flat: np.ndarray, row0: int, n_rows: int, nbytes: int, w0: int, nw: int, acc: np.ndarray
) -> None:
    """Like _accumulate_rows for fewer than _ROWS rows (the end of the cohort)."""
    for w in range(nw):
        off = row0 * nbytes + 8 * (w0 + w)
        e0 = _U64(0)
        o0 = _U64(0)
        e1 = _U64(0)
        o1 = _U64(0)
        e2 = _U64(0)
        o2 = _U64(0)
        for r in range(n_rows):
            lo, hi, bo = _planes(load_u64(flat, off + r * nbytes))
            e0 += lo & _K3
            o0 += (lo >> _U64(2)) & _K3
            e1 += hi & _K3
            o1 += (hi >> _U64(2)) & _K3
            e2 += bo & _K3
            o2 += (bo >> _U64(2)) & _K3
        _fold_nibbles(acc, 0, w, e0, o0)
        _fold_nibbles(acc, 1, w, e1, o1)
        _fold_nibbles(acc, 2, w, e2, o2)


@njit(cache=True, nogil=True)
def _flush(acc: np.ndarray, w0: int, nw: int, cnt: np.ndarray) -> None:
    """Byte-lane accumulators -> int64 counts ``cnt[slot * 8 + byte, w0 + word]``; zeroes
    ``acc``. Word-contiguous, so the word loop vectorises."""
    for t in range(12):
        for b in range(8):
            sh = _U64(8 * b)
            row = t * 8 + b
            for w in range(nw):
                cnt[row, w0 + w] += np.int64((acc[t * _ST + w] >> sh) & _KFF)
        for w in range(nw):
            acc[t * _ST + w] = 0


@njit(cache=True, nogil=True, parallel=True)
def _plane_counts(flat: np.ndarray, n_rows: int, nbytes: int, n_tasks: int) -> np.ndarray:
    """Counts of the low-bit, high-bit and both-bit planes over the full 8-byte words, as int64
    ``[n_tasks, 96, nbytes // 8]``: row ``(4 p + q) * 8 + b``, column ``w`` counts plane ``p`` of
    SNP ``32 w + 4 b + q`` over task's rows (the caller sums the tasks).

    Each task (one per thread) takes a contiguous run of rows and streams through it in column
    blocks of _BW words, so memory is read in long sequential runs.
    """
    n_full = nbytes // 8
    part = np.zeros((n_tasks, 96, n_full), dtype=np.int64)
    per = -(-n_rows // n_tasks)
    per = -(-per // _ROWS) * _ROWS
    for task in prange(n_tasks):
        r_begin = min(n_rows, task * per)
        r_end = min(n_rows, r_begin + per)
        acc = np.zeros(12 * _ST, dtype=np.uint64)
        cnt = part[task]
        for w0 in range(0, n_full, _BW):
            nw = min(_BW, n_full - w0)
            r = r_begin
            while r < r_end:
                stop = min(r_end, r + _ROWS * (255 // _ROWS))
                while r < stop:
                    k = min(_ROWS, stop - r)
                    if k == _ROWS:
                        _accumulate_rows(flat, r, nbytes, w0, nw, acc)
                    else:
                        _accumulate_few(flat, r, k, nbytes, w0, nw, acc)
                    r += k
                _flush(acc, w0, nw, cnt)
    return part


@njit(cache=True, nogil=True)
def _tail_counts(flat: np.ndarray, n_rows: int, nbytes: int) -> np.ndarray:
    """Plane counts of the last, partial word (nbytes % 8 bytes), int64 [4 * (nbytes % 8), 3]."""
    n_full = nbytes // 8
    n_tail = nbytes - 8 * n_full
    out = np.zeros((4 * n_tail, 3), dtype=np.int64)
    for i in range(n_rows):
        lo, hi, bo = _planes(load_u64_tail(flat, i * nbytes + 8 * n_full, n_tail))
        for s in range(4 * n_tail):
            sh = _U64(2 * s)
            out[s, 0] += np.int64((lo >> sh) & _U64(1))
            out[s, 1] += np.int64((hi >> sh) & _U64(1))
            out[s, 2] += np.int64((bo >> sh) & _U64(1))
    return out


def genotype_counts(packed: Any, n_snps: int) -> np.ndarray:
    """Per-SNP genotype counts, int64 ``[M, 4]``: individuals with code 0, 1, 2 and missing.

    ``packed``: individual-major 2-bit packed ``uint8 [N, ceil(M/4)]`` (torch or numpy).
    """
    arr = as_packed_numpy(packed, n_snps)
    n_rows, nbytes = arr.shape
    out = np.zeros((n_snps, 4), dtype=np.int64)
    if n_rows == 0 or n_snps == 0:
        return out
    flat = arr.reshape(-1)
    n_full = nbytes // 8
    n_tasks = max(1, min(get_num_threads(), n_rows // 64))
    part = _plane_counts(flat, n_rows, nbytes, n_tasks).sum(axis=0)  # [96, n_full]
    # row (4 p + q) * 8 + b, column w -> SNP 32 w + 4 b + q, plane p
    planes = part.reshape(3, 4, 8, n_full).transpose(3, 2, 1, 0).reshape(32 * n_full, 3)
    if nbytes > 8 * n_full:
        planes = np.concatenate([planes, _tail_counts(flat, n_rows, nbytes)])
    planes = planes[:n_snps]
    lo, hi, both = planes[:, 0], planes[:, 1], planes[:, 2]
    out[:, 3] = both
    out[:, 1] = lo - both
    out[:, 2] = hi - both
    out[:, 0] = n_rows - out[:, 1] - out[:, 2] - out[:, 3]
    return out


# ---------------------------------------------------------------------------------------------
# frequencies
# ---------------------------------------------------------------------------------------------


def _counts(counts: np.ndarray) -> np.ndarray:
    c = np.asarray(counts)
    if c.ndim != 2 or c.shape[1] != 4:
        raise ValueError(f"genotype counts: expected [M, 4] (from genotype_counts), got {c.shape}")
    return c.astype(np.int64, copy=False)


def allele_frequencies(counts: np.ndarray) -> np.ndarray:
    """Frequency of allele_1 (the counted allele, code = its copy number) per SNP, float64 [M]:
    ``(n1 + 2 n2) / (2 (n0 + n1 + n2))``; NaN where no individual is called."""
    c = _counts(counts)
    called = c[:, 0] + c[:, 1] + c[:, 2]
    with np.errstate(invalid="ignore", divide="ignore"):
        return (c[:, 1] + 2.0 * c[:, 2]) / (2.0 * called)


def minor_allele_frequencies(counts: np.ndarray) -> np.ndarray:
    """min(p, 1 - p) per SNP, float64 [M]; NaN where no individual is called."""
    p = allele_frequencies(counts)
    return np.minimum(p, 1.0 - p)


def genotype_frequencies(counts: np.ndarray) -> np.ndarray:
    """Frequencies of genotypes 0, 1, 2 among called individuals, float64 [M, 3]; NaN rows where
    no individual is called."""
    c = _counts(counts)
    called = (c[:, 0] + c[:, 1] + c[:, 2]).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return c[:, :3] / called[:, None]


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    if a.size < 2 or a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def allele_freq_r(counts_a: np.ndarray, counts_b: np.ndarray) -> float:
    """Pearson r of allele_1 frequencies between two cohorts over SNPs called in both."""
    return _pearson(allele_frequencies(counts_a), allele_frequencies(counts_b))


def genotype_freq_r(counts_a: np.ndarray, counts_b: np.ndarray) -> float:
    """Pearson r of the genotype 0/1/2 frequencies (3 M values) between two cohorts."""
    return _pearson(genotype_frequencies(counts_a).ravel(), genotype_frequencies(counts_b).ravel())


# ---------------------------------------------------------------------------------------------
# folded site-frequency spectrum, Jensen-Shannon divergence
# ---------------------------------------------------------------------------------------------


def folded_sfs(counts: np.ndarray, n_bins: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Folded site-frequency spectrum as a MAF histogram: ``(edges [n_bins + 1], fraction of
    SNPs per bin [n_bins])`` over ``[0, 0.5]`` (equal-width bins, both ends closed, so
    monomorphic SNPs fall in the first bin). SNPs with no called individual are left out.
    MAF bins instead of minor-allele-count classes make cohorts of different sizes comparable."""
    maf = minor_allele_frequencies(counts)
    maf = maf[np.isfinite(maf)]
    edges = np.linspace(0.0, 0.5, n_bins + 1)
    hist, _ = np.histogram(maf, bins=edges)
    total = hist.sum()
    return edges, (hist / total if total else hist.astype(np.float64))


def js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence in bits (0 = identical, 1 = disjoint) of two histograms
    (normalised here)."""
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    if p.sum() <= 0 or q.sum() <= 0:
        return float("nan")
    p = p / p.sum()
    q = q / q.sum()
    m = 0.5 * (p + q)

    def kl(a: np.ndarray) -> float:
        nz = a > 0
        return float(np.sum(a[nz] * np.log2(a[nz] / m[nz])))

    return max(0.0, 0.5 * kl(p) + 0.5 * kl(q))


def sfs_js_divergence(counts_a: np.ndarray, counts_b: np.ndarray, n_bins: int = 50) -> float:
    """Jensen-Shannon divergence (bits) between the folded SFS (MAF histograms) of two cohorts:
    the ``maf_js_divergence`` of the report."""
    return js_divergence(folded_sfs(counts_a, n_bins)[1], folded_sfs(counts_b, n_bins)[1])


# ---------------------------------------------------------------------------------------------
# Hudson F_ST
# ---------------------------------------------------------------------------------------------


def hudson_fst_components(
    counts_a: np.ndarray, counts_b: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per-SNP numerator and denominator of Hudson's F_ST (Bhatia et al. 2013, eq. 10):
    ``num = (p1 - p2)^2 - p1 q1 / (n1 - 1) - p2 q2 / (n2 - 1)``, ``den = p1 q2 + p2 q1``, with
    ``n`` = called chromosomes (2 x called individuals). NaN where a cohort has < 2 chromosomes."""
    ca, cb = _counts(counts_a), _counts(counts_b)
    if ca.shape != cb.shape:
        raise ValueError(f"F_ST: counts for different SNP sets, {ca.shape} vs {cb.shape}")
    p1, p2 = allele_frequencies(ca), allele_frequencies(cb)
    n1 = 2.0 * (ca[:, 0] + ca[:, 1] + ca[:, 2])
    n2 = 2.0 * (cb[:, 0] + cb[:, 1] + cb[:, 2])
    q1, q2 = 1.0 - p1, 1.0 - p2
    with np.errstate(invalid="ignore", divide="ignore"):
        num = (p1 - p2) ** 2 - p1 * q1 / (n1 - 1.0) - p2 * q2 / (n2 - 1.0)
    den = p1 * q2 + p2 * q1
    bad = (n1 < 2) | (n2 < 2)
    num[bad] = np.nan
    den[bad] = np.nan
    return num, den


def hudson_fst(counts_a: np.ndarray, counts_b: np.ndarray) -> float:
    """Hudson F_ST between two cohorts as a ratio of averages (sum num / sum den over SNPs where
    both are defined), as Bhatia et al. 2013 recommend and scikit-allel's ``average_hudson_fst``."""
    num, den = hudson_fst_components(counts_a, counts_b)
    ok = np.isfinite(num) & np.isfinite(den)
    d = den[ok].sum()
    return float(num[ok].sum() / d) if d > 0 else float("nan")


# ---------------------------------------------------------------------------------------------
# Hardy-Weinberg exact test
# ---------------------------------------------------------------------------------------------

# Probabilities within this relative distance of the observed one count as ties (included in the
# p-value), as PLINK does, so that mathematically equal terms are not split by rounding.
_HWE_TIE = 1e-7


@njit(cache=True, nogil=True)
def _hwe_exact(n_het: int, n_hom_a: int, n_hom_b: int) -> float:
    """Exact HWE p-value (Wigginton, Cutler & Abecasis 2005): the probability, given the allele
    counts, of a heterozygote count at most as likely as the observed one.

    Terms come from the paper's recurrences, relative to the observed term, walking outward
    from the observed het count in both directions; a direction stops once its terms decrease
    and fall below 1e-20 of the observed term, so the cost is about sqrt(N) steps per SNP. Terms
    near the mode can exceed the observed one by hundreds of orders of magnitude, so the running
    sums are rescaled by 1e-100 when they grow large; p-values below ~1e-300 return 0.
    """
    n = n_het + n_hom_a + n_hom_b
    if n == 0:
        return np.nan
    rare = 2 * min(n_hom_a, n_hom_b) + n_het
    if rare == 0:
        return 1.0
    unit = 1.0  # the observed term in the current scale
    thresh = 1.0 + _HWE_TIE
    total = 1.0
    tail = 1.0
    n_rescale = 0
    for direction in range(2):
        h = n_het
        r_hom = (rare - h) // 2
        c_hom = n - h - r_hom
        cur = unit
        prev = cur
        while (h >= 2) if direction == 0 else (h <= rare - 2):
            if direction == 0:
                cur = cur * h * (h - 1.0) / (4.0 * (r_hom + 1.0) * (c_hom + 1.0))
                h -= 2
                r_hom += 1
                c_hom += 1
            else:
                cur = cur * 4.0 * r_hom * c_hom / ((h + 2.0) * (h + 1.0))
                h += 2
                r_hom -= 1
                c_hom -= 1
            total += cur
            if cur <= thresh:
                tail += cur
            if cur > 1e200:
                n_rescale += 1
                if n_rescale > 2:
                    return 0.0
                cur *= 1e-100
                prev *= 1e-100
                total *= 1e-100
                tail *= 1e-100
                thresh *= 1e-100
                unit *= 1e-100
            if cur < prev and cur < thresh * 1e-20:
                break
            prev = cur
    return min(1.0, tail / total)


@njit(cache=True, nogil=True, parallel=True)
def _hwe_all(counts: np.ndarray) -> np.ndarray:
    m = counts.shape[0]
    out = np.empty(m, dtype=np.float64)
    for j in prange(m):
        out[j] = _hwe_exact(counts[j, 1], counts[j, 0], counts[j, 2])
    return out


def hwe_pvalues(counts: np.ndarray) -> np.ndarray:
    """Hardy-Weinberg exact-test p-values per SNP, float64 [M] (Wigginton et al. 2005, as
    ``plink --hardy``; not the mid-p variant). Missing genotypes are left out; NaN where no
    individual is called, 1 for monomorphic SNPs."""
    return _hwe_all(np.ascontiguousarray(_counts(counts)))


# ---------------------------------------------------------------------------------------------
# per-individual heterozygosity and inbreeding F
# ---------------------------------------------------------------------------------------------


class Heterozygosity(NamedTuple):
    """Per-individual heterozygosity, float64/int64 arrays of length N (as ``plink --het``)."""

    n_called: np.ndarray  # SNPs called in the individual and polymorphic in the reference
    observed_het: np.ndarray  # heterozygous calls
    expected_het: np.ndarray  # sum of 2 p (1 - p) over the individual's called SNPs
    het_rate: np.ndarray  # observed_het / n_called
    f: np.ndarray  # inbreeding F = 1 - observed_het / expected_het


@njit(cache=True, nogil=True, parallel=True)
def _het_kernel(
    flat: np.ndarray, n_rows: int, nbytes: int, n_snps: int, h2: np.ndarray, out: np.ndarray
) -> None:
    """out[i] = (called, het, sum of h2 over called SNPs) for each row; SNPs with h2 = NaN
    (undefined frequency) are left out. SNP slots >= n_snps in the last word are masked off."""
    n_full = nbytes // 8
    n_tail = nbytes - 8 * n_full
    h2_total = 0.0
    n_def = 0
    for j in range(n_snps):
        if not np.isnan(h2[j]):
            h2_total += h2[j]
            n_def += 1
    for i in prange(n_rows):
        het = _U64(0)
        called = n_def
        exp = h2_total
        for w in range(n_full + (1 if n_tail else 0)):
            off = i * nbytes + 8 * w
            if w < n_full:
                x = load_u64(flat, off)
            else:
                x = load_u64_tail(flat, off, n_tail)
            lo = x & MASK_55
            hi = (x >> _U64(1)) & MASK_55
            het_bits = lo & ~hi
            miss = lo & hi
            # undefined-frequency SNPs and pad slots are dropped below
            het += popcount(het_bits)
            while miss != 0:
                j = 32 * w + np.int64(trailing_zeros(miss)) // 2
                if j < n_snps and not np.isnan(h2[j]):
                    called -= 1
                    exp -= h2[j]
                miss &= miss - _U64(1)
        out[i, 0] = called
        out[i, 1] = np.int64(het)
        out[i, 2] = exp


@njit(cache=True, nogil=True, parallel=True)
def _het_undefined(flat: np.ndarray, n_rows: int, nbytes: int, bad: np.ndarray) -> np.ndarray:
    """Heterozygous calls per row at the SNPs listed in ``bad`` (undefined frequency)."""
    out = np.zeros(n_rows, dtype=np.int64)
    for i in prange(n_rows):
        c = 0
        for j in bad:
            code = (flat[i * nbytes + j // 4] >> (2 * (j % 4))) & 3
            if code == 1:
                c += 1
        out[i] = c
    return out


def heterozygosity(packed: Any, n_snps: int, ref_freq: np.ndarray | None = None) -> Heterozygosity:
    """Per-individual observed heterozygosity and inbreeding F.

    Expected heterozygosity of an individual = sum over its called SNPs of ``2 p (1 - p)``, with
    ``p`` the allele_1 frequency of ``ref_freq`` (pass the real cohort's frequencies to score a
    synthetic cohort against the real spectrum) or, by default, of the cohort itself.
    ``F = 1 - O(het) / E(het)``, which equals PLINK's ``(O(HOM) - E(HOM)) / (N(NM) - E(HOM))``.
    Missing genotypes are left out, and so are SNPs that are monomorphic (or have no frequency)
    in the reference, as ``plink --het`` does; ``het_rate`` is over the remaining SNPs.
    """
    arr = as_packed_numpy(packed, n_snps)
    n_rows, nbytes = arr.shape
    if ref_freq is None:
        ref_freq = allele_frequencies(genotype_counts(arr, n_snps))
    p = np.asarray(ref_freq, dtype=np.float64)
    if p.shape != (n_snps,):
        raise ValueError(f"ref_freq: expected shape ({n_snps},), got {p.shape}")
    h2 = 2.0 * p * (1.0 - p)
    h2[~(h2 > 0)] = np.nan  # monomorphic in the reference, or no frequency: left out, as PLINK
    h2 = np.ascontiguousarray(h2)
    out = np.zeros((n_rows, 3), dtype=np.float64)
    if n_rows:
        _het_kernel(arr.reshape(-1), n_rows, nbytes, n_snps, h2, out)
    called = out[:, 0].astype(np.int64)
    het = out[:, 1].astype(np.int64)
    bad = np.flatnonzero(np.isnan(h2))
    if bad.size and n_rows:
        het -= _het_undefined(arr.reshape(-1), n_rows, nbytes, bad.astype(np.int64))
    exp = out[:, 2]
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = het / called
        f = 1.0 - het / exp
    return Heterozygosity(called, het, exp, rate, f)
