"""PCA fitted on the real cohort, synthetic cohort projected, Wasserstein-1 per PC.

Genotypes are standardised as PLINK 2 (`--pca`, `--make-rel`) does: z = (x - 2p) / sqrt(2p(1-p))
with p the real cohort's allele-1 frequencies, missing genotypes set to 0 (mean imputation), SNPs
monomorphic in the real cohort left out. Eigenvalues are those of the relationship matrix
Z Z^T / M (M = polymorphic SNPs), the numbers `plink2 --pca` prints. Each individual's score on
PC k is z . v_k / sqrt(M) with v_k the unit SNP loading, so real scores are u_k sqrt(lambda_k).

Two engines, both blockwise over SNPs (the float matrix Z is never held whole):
* exact: eigendecomposition of the smaller Gram matrix (Z Z^T, n x n, or Z^T Z, M x M), float64;
* randomized: subspace iteration (Halko et al. 2011) with oversampling and power iterations,
  float32; its cost grows as n x M x (k + oversampling) per pass instead of n^2 M.
``auto`` takes exact when forming the Gram matrix costs at most 3e10 multiply-adds (min(n, M)^2
max(n, M); e.g. 1,000 x 30,000), randomized otherwise.

pca_wasserstein = mean over PCs of W1(real scores, synthetic scores) / sd(real scores), so every
PC weighs the same whatever its variance. Projected scores of people outside the fit shrink
toward 0 on PCs near the noise level (a known effect, Lee et al. 2010); the real-vs-real
reference (fit on one half, project the other) carries the same shrinkage, hence the yardstick.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import wasserstein_distance

from genofast.metrics.pairwise import allele_freq

SNP_CHUNK = 4096
#: ``auto`` takes the exact engine when the Gram matrix costs at most this many multiply-adds.
EXACT_MAX_FLOPS = 3e10
#: int8 digits of the float operand in the CPU's int8 matrix products (see _quantize).
DIGITS = 3


@dataclass
class PCAFit:
    """A PCA fitted on a real cohort."""

    freq: torch.Tensor  # float64 [M] allele-1 frequency of the fit cohort (0 if monomorphic)
    scale: torch.Tensor  # float32 [M] 1/sqrt(2p(1-p)), 0 for monomorphic SNPs
    loadings: torch.Tensor  # float [M, k] unit SNP loadings (0 rows for monomorphic SNPs)
    eigenvalues: np.ndarray  # [k] eigenvalues of Z Z^T / M
    scores: np.ndarray  # [n, k] scores of the fit cohort
    n_snps: int  # polymorphic SNPs used
    method: str


def _z(g: torch.Tensor, freq: torch.Tensor, scale: torch.Tensor,
       dtype: torch.dtype) -> torch.Tensor:
    """Standardised genotypes of a SNP chunk; missing and monomorphic -> 0."""
    x = g.to(dtype)
    z = (x - (2 * freq).to(dtype)) * scale.to(dtype)
    return torch.where(g < 0, torch.zeros((), dtype=dtype, device=g.device), z)


def _quantize(w: torch.Tensor, digits: int = DIGITS) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """w [K, l] ~= sum_d q_d s_d with int8 q_d and one float scale per column and digit
    (base-127 digits: 3 digits carry about 21 bits, float32's precision)."""
    s = w.abs().amax(0).clamp_min(1e-30) / 127.0
    r = w / s
    out = []
    for _ in range(digits):
        q = r.round().clamp_(-127, 127)
        out.append((q.to(torch.int8), s))
        r = (r - q) * 127.0
        s = s / 127.0
    return out


class _Right:
    """A float operand w [K, l] for products x @ w[rows] with genotype chunks x; on the int8
    path it is quantized once per pass into int8 digits laid side by side, so one exact int8
    product (int32 results) reads the genotypes once for all digits."""

    def __init__(self, w: torch.Tensor, int8: bool) -> None:
        self.w = w
        self.q = self.s = None
        if int8:
            digits = _quantize(w.float())
            self.q = torch.cat([q for q, _ in digits], 1)  # [K, D l]
            self.s = torch.stack([sc for _, sc in digits])  # [D, l]

    def rmul(self, x: torch.Tensor, rows: slice) -> torch.Tensor:
        """x [n, c] @ w[rows] -> float [n, l]."""
        if self.q is None:
            return x @ self.w[rows].to(x.dtype)
        part = torch._int_mm(x, self.q[rows].contiguous()).float()
        return (part.view(x.shape[0], *self.s.shape) * self.s).sum(1)


class _Left:
    """A float operand p [n, l] for products x^T @ p with genotype chunks x [n, c]; on the
    int8 path quantized once per pass, digits stacked and transposed ([D l, n])."""

    def __init__(self, p: torch.Tensor, int8: bool) -> None:
        self.p = p
        self.qt = self.s = None
        if int8:
            digits = _quantize(p.float())
            self.qt = torch.cat([q.t() for q, _ in digits], 0).contiguous()  # [D l, n]
            self.s = torch.stack([sc for _, sc in digits])  # [D, l]

    def tmul(self, x: torch.Tensor) -> torch.Tensor:
        """x^T @ p -> float [c, l]."""
        if self.qt is None:
            return x.t() @ self.p.to(x.dtype)
        part = torch._int_mm(self.qt, x).float().view(*self.s.shape, x.shape[1])
        return (part * self.s[:, :, None]).sum(0).t()


def _int8_ok(device: torch.device) -> bool:
    """Whether int8 matrix products (torch._int_mm) run here: CPUs (VNNI/AMX); on a GPU the
    float path is fast and has no shape constraints."""
    if device.type != "cpu":
        return False
    try:
        torch._int_mm(torch.ones(17, 8, dtype=torch.int8), torch.ones(8, 8, dtype=torch.int8))
    except RuntimeError:
        return False
    return True


class _Chunks:
    """A cohort as SNP chunks (slice, dosages with missing -> 0, missing mask or None): int8
    where int8 products run (``dt`` float64 forces floats), else ``dt``. Complete int8 data is
    one chunk, the whole matrix, so a pass is a few large matrix products."""

    def __init__(self, g: torch.Tensor, dt: torch.dtype) -> None:
        self.g = g
        self.int8 = dt == torch.float32 and _int8_ok(g.device)
        self.dt = torch.int8 if self.int8 else dt
        self.any_missing = g.numel() > 0 and int(g.min()) < 0

    def __iter__(self):
        if self.int8 and not self.any_missing:
            yield slice(0, self.g.shape[1]), self.g.contiguous(), None
            return
        for c in range(0, self.g.shape[1], SNP_CHUNK):
            sl = slice(c, c + SNP_CHUNK)
            blk = self.g[:, sl]
            if self.any_missing and int(blk.min()) < 0:
                yield sl, blk.clamp_min(0).to(self.dt), (blk < 0).to(self.dt)
            else:
                yield sl, blk.to(self.dt).contiguous(), None


def _zmul(src: _Chunks, p, scale, right: torch.Tensor) -> torch.Tensor:
    """Z @ right (right [M, l]) without forming Z: with a = 2 p s and C = called mask,
    Z = X0 diag(s) - C diag(a) and C = 1 - missing."""
    dt = right.dtype
    sr = _Right(scale.to(dt)[:, None] * right, src.int8)
    ar = (2 * p * scale).to(dt)[:, None] * right
    out = torch.zeros(src.g.shape[0], right.shape[1], dtype=dt, device=right.device)
    out -= ar.sum(0)[None, :]
    arq = _Right(ar, src.int8) if src.any_missing else None
    for sl, x0, miss in src:
        out += sr.rmul(x0, sl).to(dt)
        if miss is not None:
            out += arq.rmul(miss, sl).to(dt)
    return out


def _ztmul(src: _Chunks, p, scale, left: torch.Tensor) -> torch.Tensor:
    """Z^T @ left (left [n, l]) without forming Z (see _zmul)."""
    dt = left.dtype
    lq = _Left(left, src.int8)
    total = left.sum(0)[None, :]
    out = torch.empty(src.g.shape[1], left.shape[1], dtype=dt, device=left.device)
    for sl, x0, miss in src:
        called = total if miss is None else total - lq.tmul(miss).to(dt)
        out[sl] = scale[sl, None].to(dt) * (lq.tmul(x0).to(dt)
                                            - (2 * p[sl, None]).to(dt) * called)
    return out


def _zztmul(src: _Chunks, p, scale, left: torch.Tensor) -> torch.Tensor:
    """Z Z^T @ left (two passes; each quantizes its float operand once)."""
    return _zmul(src, p, scale, _ztmul(src, p, scale, left))


def fit_pca(g: torch.Tensor, k: int = 10, method: str = "auto", seed: int = 0,
            oversample: int = 40, power_iters: int = 4,
            freq: torch.Tensor | np.ndarray | None = None) -> PCAFit:
    """Fit the PCA on int8 genotypes [n, M] (-1 missing) of the real cohort; ``freq``: its
    allele-1 frequencies when already known (e.g. from `counts`)."""
    n, m = g.shape
    dev = g.device
    freq = allele_freq(g) if freq is None else torch.as_tensor(freq, dtype=torch.float64)
    freq = freq.to(dev)
    poly = (freq > 0) & (freq < 1)
    p = torch.where(poly, freq, 0.0)  # only polymorphic SNPs enter (their scale is 0 otherwise)
    m_eff = int(poly.sum())
    if m_eff == 0:
        raise ValueError("PCA: no polymorphic SNP in the real cohort")
    scale = torch.where(poly, 1.0 / torch.sqrt(2 * p * (1 - p)).clamp_min(1e-12), 0.0).float()
    k = min(k, n - 1, m_eff)
    if method == "auto":
        small, large = min(n, m_eff), max(n, m_eff)
        method = "exact" if small * small * large <= EXACT_MAX_FLOPS else "randomized"
    if method == "exact":
        dt = torch.float64
        if n <= m_eff:
            gram = torch.zeros(n, n, dtype=dt, device=dev)
            for c in range(0, m, SNP_CHUNK):
                sl = slice(c, c + SNP_CHUNK)
                z = _z(g[:, sl], p[sl], scale[sl], dt)
                gram += z @ z.t()
            w, u = torch.linalg.eigh(gram)
            w, u = w.flip(0)[:k], u.flip(1)[:, :k]
            v = _ztmul(_Chunks(g, dt), p, scale, u) / w.clamp_min(1e-300).sqrt()
        else:
            cov = torch.zeros(m, m, dtype=dt, device=dev)
            step = max(1, (1 << 24) // m)
            for r in range(0, n, step):
                z = _z(g[r:r + step], p, scale, dt)
                cov += z.t() @ z
            w, v = torch.linalg.eigh(cov)
            w, v = w.flip(0)[:k], v.flip(1)[:, :k]
    elif method == "randomized":
        # subspace iteration: Y = (Z Z^T)^q Z Omega, one pass over the genotypes per power
        # step; the passes are memory-bound, so a generous oversampling costs almost nothing
        dt = torch.float32
        gen = torch.Generator(device="cpu").manual_seed(seed)
        l_ = min(k + oversample, n, m_eff)
        omega = torch.randn(m, l_, generator=gen, dtype=dt).to(dev) * scale[:, None].ne(0)
        src = _Chunks(g, dt)
        q, _ = torch.linalg.qr(_zmul(src, p, scale, omega))
        for _ in range(power_iters):
            q, _ = torch.linalg.qr(_zztmul(src, p, scale, q))
        bt = _ztmul(src, p, scale, q)  # [M, l] = (Q^T Z)^T = V S U~^T
        vv, sv, uu_t = torch.linalg.svd(bt, full_matrices=False)
        v, w = vv[:, :k], (sv[:k] ** 2)
    else:
        raise ValueError(f"PCA: unknown method {method!r} (auto, exact, randomized)")
    # sign convention: the largest-magnitude loading of each PC is positive
    sign = torch.sign(v.gather(0, v.abs().argmax(0, keepdim=True)))
    v = v * torch.where(sign == 0, 1.0, sign).to(v.dtype)
    v = v.float()
    fit = PCAFit(freq=p, scale=scale, loadings=v,
                 eigenvalues=(w / m_eff).double().cpu().numpy(), scores=np.empty((0, k)),
                 n_snps=m_eff, method=method)
    fit.scores = project(fit, g, src if method == "randomized" else None)
    return fit


def project(fit: PCAFit, g: torch.Tensor, _src: _Chunks | None = None) -> np.ndarray:
    """Scores [n, k] of int8 genotypes (same SNPs as the fit) on the fitted PCs."""
    dev = fit.loadings.device
    src = _src if _src is not None else _Chunks(g.to(dev), torch.float32)
    scores = _zmul(src, fit.freq.to(dev), fit.scale.to(dev), fit.loadings.float())
    return (scores / float(np.sqrt(fit.n_snps))).double().cpu().numpy()


def pca_wasserstein(real_scores: np.ndarray, syn_scores: np.ndarray) -> tuple[float, list[float]]:
    """Mean over PCs of W1(real, synthetic) / sd(real), and the per-PC values."""
    per = []
    for j in range(real_scores.shape[1]):
        sd = float(np.std(real_scores[:, j]))
        w = wasserstein_distance(real_scores[:, j], syn_scores[:, j])
        per.append(w / sd if sd > 0 else float("nan"))
    return float(np.nanmean(per)) if per else float("nan"), per
