"""Blockwise pairwise products between two genotype cohorts, reduced block by block.

Distances between individuals are Euclidean distances between allele-count vectors (0/1/2 per
SNP); the VanRaden GRM entries come from the same inner products. One scan over the pairs of two
cohorts (``q`` rows against ``d`` rows) computes a block of inner products at a time and feeds it
to every reduction asked for (nearest neighbours, column minima, k-NN ball membership, GRM
histogram and threshold count), so memory stays bounded by one block whatever the cohort sizes.

Missing genotypes are mean-imputed with a reference dosage ``mu`` (twice the real cohort's
allele-1 frequency), the same value the GRM is centred on, so a missing genotype contributes
nothing to a GRM entry and the population-average amount to a distance. Complete cohorts take an
exact integer path (int8 x int8 -> int32 matrix products, `torch._int_mm`, VNNI on CPU), so
identical rows are at distance exactly 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from numba import njit, prange

#: Rows of ``q`` and of ``d`` per block; a float32 block is at most 2048 x 8192 (64 MB).
BLOCK_Q = 2048
BLOCK_D = 8192
#: SNPs per chunk where genotypes are converted to floats (imputation path, frequencies).
SNP_CHUNK = 8192
#: A transposed column block holds at most this many bytes (int8: rows x SNPs).
COLUMN_BLOCK_BYTES = 1 << 28

_INT_MM_OK: dict[str, bool] = {}


def default_device() -> torch.device:
    """CUDA when present, else CPU: distance and matrix work runs where the GPU is."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def allele_freq(g: torch.Tensor) -> torch.Tensor:
    """Allele-1 frequency per SNP of int8 genotypes [N, M] (-1 missing) as float64 [M].

    Missing genotypes are left out of numerator and denominator; NaN where a SNP has no calls.
    (`genofast.metrics.counts` computes the same from packed bytes, faster, on the CPU.)
    """
    n, m = g.shape
    total = torch.zeros(m, dtype=torch.float64, device=g.device)
    missing = torch.zeros(m, dtype=torch.float64, device=g.device)
    step = 1 << 16  # int32 partial sums cannot overflow
    for r in range(0, n, step):
        blk = g[r:r + step]
        if blk.numel() and int(blk.min()) < 0:
            missing += (blk < 0).sum(0, dtype=torch.int32).double()
            blk = blk.clamp_min(0)
        total += blk.sum(0, dtype=torch.int32).double()
    called = n - missing
    return torch.where(called > 0, total / (2 * called).clamp_min(1), float("nan"))


def impute(g: torch.Tensor, mu: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """int8 genotypes -> floats with missing (-1) replaced by ``mu`` (per SNP)."""
    x = g.to(dtype)
    return torch.where(g < 0, mu.to(dtype), x)


@dataclass
class Prepared:
    """A cohort ready for scans: int8 genotypes, whether any are missing, and per-row terms."""

    g: torch.Tensor  # int8 [n, M], -1 missing
    mu: torch.Tensor  # float32 [M], imputation mean (2 p_ref)
    has_missing: bool
    sq: torch.Tensor  # float64 [n]: ||x||^2 of the imputed dosages
    dot_mu: torch.Tensor  # float64 [n]: x . mu

    @property
    def n(self) -> int:
        return int(self.g.shape[0])


@njit(cache=True, parallel=True, nogil=True, fastmath=True)
def _row_stats(g: np.ndarray, mu: np.ndarray, sq: np.ndarray, dot: np.ndarray) -> None:
    """Per row: sum of squared imputed dosages and dot product with ``mu`` (one int8 pass)."""
    n, m = g.shape
    for i in prange(n):
        s2 = np.float32(0.0)
        sd = np.float32(0.0)
        for j in range(m):  # float32 lanes (exact for complete rows below 2**24), vectorised
            v = g[i, j]
            x = mu[j] if v < 0 else np.float32(v)
            s2 += x * x
            sd += x * mu[j]
        sq[i] = s2
        dot[i] = sd


def prepare(g: torch.Tensor, mu: torch.Tensor) -> Prepared:
    """Per-row squared norms and projections on ``mu`` of the imputed dosages (Numba on CPU,
    torch in bounded row chunks on the GPU)."""
    n, m = g.shape
    mu = mu.to(device=g.device, dtype=torch.float32)
    has_missing = g.numel() > 0 and int(g.min()) < 0
    sq = torch.empty(n, dtype=torch.float64, device=g.device)
    dot = torch.empty(n, dtype=torch.float64, device=g.device)
    if g.device.type == "cpu":
        _row_stats(g.contiguous().numpy(), mu.numpy(), sq.numpy(), dot.numpy())
        return Prepared(g, mu, has_missing, sq, dot)
    step = max(1, (1 << 24) // max(1, m))
    for r in range(0, n, step):
        x = impute(g[r:r + step], mu, torch.float64)
        sq[r:r + step] = (x * x).sum(1)
        dot[r:r + step] = x @ mu.double()
    return Prepared(g, mu, has_missing, sq, dot)


def _int_mm_ok(device: torch.device) -> bool:
    """Whether to use torch._int_mm (int8 x int8 -> int32): on CPUs (VNNI/AMX) when it runs.
    GPUs take float32 products (exact for these integer sums, no shape constraints)."""
    key = device.type
    if key != "cpu":
        return False
    if key not in _INT_MM_OK:
        try:
            a = torch.ones(32, 64, dtype=torch.int8, device=device)
            torch._int_mm(a, a.t().contiguous())
            _INT_MM_OK[key] = True
        except RuntimeError:
            _INT_MM_OK[key] = False
    return _INT_MM_OK[key]


def column_block(d: Prepared, cols: slice, exact_int: bool) -> torch.Tensor:
    """The d rows of a column block, transposed and contiguous ([M, cols], int8) for the int8
    product (about 30 % faster than a transposed view), or as is for the float path."""
    b = d.g[cols]
    if exact_int and _int_mm_ok(b.device):
        return b.t().contiguous()
    return b


def gram(q: Prepared, rows: slice, d: Prepared, cols: slice,
         bt: torch.Tensor | None = None) -> torch.Tensor:
    """Inner products of imputed dosages, float32 [rows, cols]; ``bt`` = column_block(...)."""
    a = q.g[rows]
    exact_int = not (q.has_missing or d.has_missing)
    if bt is None:
        bt = column_block(d, cols, exact_int)
    if exact_int:
        if _int_mm_ok(a.device):
            return torch._int_mm(a, bt).float()
        # float32 holds these integer sums exactly below 2**24 (M < 4 million SNPs)
        return a.float() @ bt.float().t()
    out = torch.zeros(a.shape[0], bt.shape[0], dtype=torch.float32, device=a.device)
    for c in range(0, a.shape[1], SNP_CHUNK):
        sl = slice(c, c + SNP_CHUNK)
        out += impute(a[:, sl], q.mu[sl]) @ impute(bt[:, sl], d.mu[sl]).t()
    return out


@dataclass
class GrmSpec:
    """VanRaden GRM from inner products: G = (x.y - 2p.x - 2p.y + 4p.p) / (2 sum p(1-p)).

    ``mu`` = 2p of the reference (real) cohort; the histogram covers [lo, hi) in ``bins`` bins,
    values outside are counted in the edge bins.
    """

    mu_sq: float  # mu . mu = 4 p.p
    denom: float  # 2 sum p(1-p) = sum mu (1 - mu/2)
    threshold: float | None = None  # count pairs with G >= threshold
    lo: float = -1.0
    hi: float = 2.0
    bins: int = 3000


@dataclass
class Scan:
    """What one scan of all (q, d) pairs reduces. ``same`` means q and d are the same cohort
    (self-pairs are left out of every reduction)."""

    k: int = 0  # nearest neighbours of each q row, over each column subset
    col_subsets: dict[str, torch.Tensor | None] = field(default_factory=dict)
    row_subsets: dict[str, torch.Tensor | None] = field(default_factory=dict)
    keep_index: bool = False  # also keep the index of the nearest neighbours
    radius2_q: torch.Tensor | None = None  # squared k-NN radii of q rows (ball membership)
    radius2_d: torch.Tensor | None = None  # squared k-NN radii of d rows
    grm: GrmSpec | None = None


@dataclass
class ScanResult:
    """Reductions of one scan. Distances are Euclidean (float32)."""

    knn_dist: dict[str, torch.Tensor] = field(default_factory=dict)  # [nq, k] ascending
    knn_sq: dict[str, torch.Tensor] = field(default_factory=dict)  # the same, squared (exact)
    knn_index: dict[str, torch.Tensor] = field(default_factory=dict)  # [nq, k] rows of d
    col_min: dict[str, torch.Tensor] = field(default_factory=dict)  # [nd]
    q_in_ball: torch.Tensor | None = None  # [nq] bool: within radius_d of some d row
    d_in_ball: torch.Tensor | None = None  # [nd] bool: within radius_q of some q row
    grm_hist: torch.Tensor | None = None  # int64 [bins]; each pair once (unordered if same)
    grm_n_ge: int = 0  # pairs with G >= threshold (unordered if same)
    grm_pairs: int = 0


def scan(q: Prepared, d: Prepared, spec: Scan, *, same: bool = False,
         block_q: int | None = None, block_d: int | None = None) -> ScanResult:
    """Scan all (q row, d row) pairs block by block and reduce them as ``spec`` asks.

    Column blocks outside, row blocks inside (a column block is transposed once). With ``same``
    only the blocks on and above the diagonal are computed; an off-diagonal block also feeds the
    reductions as its transpose, so every ordered pair is still seen once.
    """
    block_q = block_q or BLOCK_Q
    block_d = block_d or BLOCK_D
    block_d = max(1, min(block_d, COLUMN_BLOCK_BYTES // max(1, d.g.shape[1])))
    if same:
        block_q = block_d = min(block_q, block_d)
    dev = q.g.device
    nq, nd = q.n, d.n
    res = ScanResult()
    inf = float("inf")
    k = min(spec.k, nd - (1 if same else 0))
    col_masks = {n: (None if m is None else m.to(dev)) for n, m in spec.col_subsets.items()}
    row_masks = {n: (None if m is None else m.to(dev)) for n, m in spec.row_subsets.items()}
    if k > 0:
        for name in col_masks:
            res.knn_dist[name] = torch.full((nq, k), inf, device=dev)
            res.knn_index[name] = torch.full((nq, k), -1, dtype=torch.int64, device=dev)
    for name in row_masks:
        res.col_min[name] = torch.full((nd,), inf, device=dev)
    # reductions work on squared distances (same order, no square root per pair); subsets
    # with the same mask are reduced once
    rad_d = rad_q = None
    if spec.radius2_d is not None:
        res.q_in_ball = torch.zeros(nq, dtype=torch.bool, device=dev)
        rad_d = spec.radius2_d.to(dev).float()
    if spec.radius2_q is not None:
        res.d_in_ball = torch.zeros(nd, dtype=torch.bool, device=dev)
        rad_q = spec.radius2_q.to(dev).float()
    col_groups = _group_masks(col_masks) if k > 0 else []
    row_groups = _group_masks(row_masks)
    g = spec.grm
    n_ge = torch.zeros((), dtype=torch.int64, device=dev)
    if g is not None:
        res.grm_hist = torch.zeros(g.bins, dtype=torch.int64, device=dev)

    def reduce(r0: int, r1: int, c0: int, c1: int, d2: torch.Tensor) -> None:
        for names, m in col_groups:
            blk = d2 if m is None else d2.masked_fill(~m[None, c0:c1], inf)
            bd, bi = torch.topk(blk, min(k, c1 - c0), dim=1, largest=False)
            first = names[0]
            alld = torch.cat([res.knn_dist[first][r0:r1], bd], 1)
            alli = torch.cat([res.knn_index[first][r0:r1], bi + c0], 1)
            top, pos = torch.topk(alld, k, dim=1, largest=False)
            res.knn_dist[first][r0:r1] = top
            res.knn_index[first][r0:r1] = torch.gather(alli, 1, pos)
        for names, m in row_groups:
            blk = d2 if m is None else d2.masked_fill(~m[r0:r1, None], inf)
            first = names[0]
            res.col_min[first][c0:c1] = torch.minimum(res.col_min[first][c0:c1],
                                                       blk.min(0).values)
        if rad_d is not None:
            res.q_in_ball[r0:r1] |= (d2 <= rad_d[None, c0:c1]).any(1)
        if rad_q is not None:
            res.d_in_ball[c0:c1] |= (d2 <= rad_q[r0:r1, None]).any(0)

    def reduce_grm(r0: int, r1: int, c0: int, c1: int, ip: torch.Tensor,
                   selfmask: torch.Tensor | None, weight: int) -> None:
        nonlocal n_ge
        grm = ip.sub_(q.dot_mu[r0:r1, None].float()).sub_(d.dot_mu[None, c0:c1].float())
        grm = grm.add_(g.mu_sq).div_(g.denom)
        vals = grm if selfmask is None else grm[~selfmask]
        if g.threshold is not None:
            n_ge = n_ge + weight * (vals >= g.threshold).sum()
        idx = ((vals - g.lo) * (g.bins / (g.hi - g.lo))).floor_().clamp_(0, g.bins - 1)
        res.grm_hist += weight * torch.bincount(idx.long().flatten(), minlength=g.bins)

    exact_int = not (q.has_missing or d.has_missing)
    for c0 in range(0, nd, block_d):
        c1 = min(nd, c0 + block_d)
        bt = column_block(d, slice(c0, c1), exact_int)
        for r0 in range(0, min(nq, c1) if same else nq, block_q):
            r1 = min(nq, r0 + block_q)
            ip = gram(q, slice(r0, r1), d, slice(c0, c1), bt)
            d2 = (q.sq[r0:r1, None].float() + d.sq[None, c0:c1].float()).sub_(2 * ip)
            d2.clamp_min_(0)
            selfmask = None
            if same and r0 == c0:
                selfmask = torch.eye(r1 - r0, dtype=torch.bool, device=dev)
                d2.masked_fill_(selfmask, inf)
            reduce(r0, r1, c0, c1, d2)
            if same and r0 != c0:
                reduce(c0, c1, r0, r1, d2.t())
            if g is not None:  # symmetric: an off-diagonal block stands for its transpose too
                reduce_grm(r0, r1, c0, c1, ip, selfmask, 2 if same and r0 != c0 else 1)
    for names, _ in row_groups:
        res.col_min[names[0]].sqrt_()
        for other in names[1:]:
            res.col_min[other] = res.col_min[names[0]]
    for names, _ in col_groups:
        res.knn_sq[names[0]] = res.knn_dist[names[0]]
        res.knn_dist[names[0]] = res.knn_sq[names[0]].sqrt()
        for other in names[1:]:
            for store in (res.knn_sq, res.knn_dist, res.knn_index):
                store[other] = store[names[0]]
    if not spec.keep_index:
        res.knn_index = {}
    if g is not None:
        pairs = nq * nd - (min(nq, nd) if same else 0)
        if same:  # every unordered pair was seen twice
            res.grm_hist //= 2
            n_ge = n_ge // 2
            pairs //= 2
        res.grm_n_ge = int(n_ge)
        res.grm_pairs = pairs
    return res


Groups = list[tuple[list[str], torch.Tensor | None]]


def _group_masks(masks: dict[str, torch.Tensor | None]) -> Groups:
    """Names sharing one mask (the same object, or both None) grouped: reduced once."""
    groups: Groups = []
    for name, m in masks.items():
        for names, gm in groups:
            if gm is m:
                names.append(name)
                break
        else:
            groups.append(([name], m))
    return groups


def balanced_mask(n: int, size: int, generator: torch.Generator) -> torch.Tensor | None:
    """A seeded random subset of ``size`` out of ``n`` rows as a bool mask (None: all rows)."""
    if size >= n:
        return None
    mask = torch.zeros(n, dtype=torch.bool)
    mask[torch.randperm(n, generator=generator)[:size]] = True
    return mask


def hist_wasserstein(h1: torch.Tensor, h2: torch.Tensor, width: float) -> float:
    """Wasserstein-1 distance between two distributions given as histograms on the same bins."""
    if int(h1.sum()) == 0 or int(h2.sum()) == 0:
        return math.nan
    c1 = torch.cumsum(h1.double(), 0) / h1.sum()
    c2 = torch.cumsum(h2.double(), 0) / h2.sum()
    return float((c1 - c2).abs().sum() * width)
