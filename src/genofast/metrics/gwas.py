"""Closed-form per-SNP linear regression of a quantitative phenotype on allele-1 dosage.

For every SNP j at once:  y = C a + beta_j x_j + e, C = [1, covariates]. Covariates are projected
out (Frisch-Waugh-Lovell): with S = C'C, b = C'x, e = C'y,

    Sxx = x'x - b' S^-1 b,   Sxy = x'y - b' S^-1 e,   Syy = y'y - e' S^-1 e
    beta = Sxy / Sxx,  se = sqrt((Syy - beta Sxy) / (n - k - 1) / Sxx),  t = beta / se,
    p = 2 P(T_{n-k-1} > |t|)

all sums over the individuals with a called genotype at SNP j: like `plink2 --glm`, an individual
with a missing genotype is left out of that SNP's regression (no imputation), so S, e and y'y are
per-SNP; they are corrected from the complete-data sums with the missing individuals' terms, one
matrix product over the missingness mask, and the k x k systems solved batched. Individuals with
a missing phenotype or covariate are dropped for every SNP. SNPs with fewer than k + 2 calls or no
variance get NaN. Float64 throughout, blockwise over SNPs, on the genotypes' device.

Genomic-control lambda = median chi2(1 df) quantile of p / 0.4549 (chi2 median).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats

SNP_CHUNK = 4096
GENOME_WIDE = 5e-8


@dataclass
class GwasResult:
    """Per-SNP association statistics (NaN where the SNP could not be tested)."""

    beta: np.ndarray
    se: np.ndarray
    t: np.ndarray
    p: np.ndarray
    n: np.ndarray  # individuals in each SNP's regression

    @property
    def lambda_gc(self) -> float:
        return genomic_control(self.p)


def genomic_control(p: np.ndarray) -> float:
    """Genomic-control inflation factor lambda from p-values (NaN ignored)."""
    p = np.asarray(p, dtype=np.float64)
    p = p[np.isfinite(p)]
    if len(p) == 0:
        return float("nan")
    chi2 = stats.chi2.isf(np.clip(p, 1e-300, 1.0), 1)
    return float(np.median(chi2) / stats.chi2.ppf(0.5, 1))


def linear_gwas(g: torch.Tensor, y: np.ndarray | torch.Tensor,
                covariates: np.ndarray | torch.Tensor | None = None) -> GwasResult:
    """Regress ``y`` [N] on every SNP of int8 genotypes ``g`` [N, M] (-1 missing)."""
    dev = g.device
    y = torch.as_tensor(np.asarray(y, dtype=np.float64)).to(dev)
    n_all = g.shape[0]
    if y.shape != (n_all,):
        raise ValueError(f"GWAS: phenotype has shape {tuple(y.shape)}, expected ({n_all},)")
    cols = [torch.ones(n_all, dtype=torch.float64, device=dev)]
    if covariates is not None:
        cov = torch.as_tensor(np.asarray(covariates, dtype=np.float64)).to(dev)
        cov = cov.reshape(n_all, -1)
        cols += list(cov.t())
    c = torch.stack(cols, 1)
    keep = torch.isfinite(y) & torch.isfinite(c).all(1)
    if not bool(keep.all()):
        g, y, c = g[keep], y[keep], c[keep]
    n, k = c.shape
    # centre y and covariates (not the intercept) for conditioning; the fit is unchanged
    y = y - y.mean()
    if k > 1:
        c = torch.cat([c[:, :1], c[:, 1:] - c[:, 1:].mean(0)], 1)
    s_all = c.t() @ c
    e_all = c.t() @ y
    yy_all = y @ y
    cc = (c[:, :, None] * c[:, None, :]).reshape(n, k * k)  # per-individual c c'
    cy = c * y[:, None]
    m = g.shape[1]
    out = {name: np.full(m, np.nan) for name in ("beta", "se", "t", "p")}
    n_obs = np.zeros(m, dtype=np.int64)
    for j0 in range(0, m, SNP_CHUNK):
        blk = g[:, j0:j0 + SNP_CHUNK]
        miss = blk < 0
        x = torch.where(miss, 0, blk).double()
        b = c.t() @ x  # [k, J]
        xx = (x * x).sum(0)
        xy = y @ x
        nj = n - miss.sum(0).double()
        if bool(miss.any()):
            mf = miss.double()
            s = s_all[None] - (mf.t() @ cc).reshape(-1, k, k)  # [J, k, k]
            e = e_all[None] - mf.t() @ cy  # [J, k]
            yy = yy_all - mf.t() @ (y * y)
        else:
            s = s_all.expand(x.shape[1], k, k)
            e = e_all.expand(x.shape[1], k)
            yy = yy_all.expand(x.shape[1])
        rhs = torch.stack([b.t(), e], 2)  # [J, k, 2]
        ok = nj >= k + 2
        sol = torch.zeros_like(rhs)
        if bool(ok.any()):
            sol[ok] = torch.linalg.lstsq(s[ok], rhs[ok]).solution
        bt = b.t()
        sxx = xx - (bt * sol[..., 0]).sum(1)
        sxy = xy - (bt * sol[..., 1]).sum(1)
        syy = yy - (e * sol[..., 1]).sum(1)
        df = nj - k - 1
        good = ok & (sxx > 1e-9 * xx.clamp_min(1.0))
        beta = torch.where(good, sxy / sxx.clamp_min(1e-300), torch.nan)
        rss = (syy - beta * sxy).clamp_min(0.0)
        se = torch.sqrt(rss / df.clamp_min(1.0) / sxx.clamp_min(1e-300))
        se = torch.where(good, se, torch.nan)
        t = beta / se
        sl = slice(j0, j0 + x.shape[1])
        out["beta"][sl] = beta.cpu().numpy()
        out["se"][sl] = se.cpu().numpy()
        tn = t.cpu().numpy()
        out["t"][sl] = tn
        with np.errstate(invalid="ignore"):
            out["p"][sl] = 2 * stats.t.sf(np.abs(tn), df.cpu().numpy())
        n_obs[sl] = nj.long().cpu().numpy()
    return GwasResult(out["beta"], out["se"], out["t"], out["p"], n_obs)


def beta_correlation(a: GwasResult, b: GwasResult) -> float:
    """Pearson r of beta across SNPs tested in both."""
    ok = np.isfinite(a.beta) & np.isfinite(b.beta)
    if ok.sum() < 3:
        return float("nan")
    return float(np.corrcoef(a.beta[ok], b.beta[ok])[0, 1])


def top_hits(p: np.ndarray, top_k: int = 10, threshold: float = GENOME_WIDE) -> np.ndarray:
    """Indices of the top hits: all SNPs with p < threshold, at least the ``top_k`` smallest p."""
    p = np.where(np.isfinite(p), p, np.inf)
    k = max(top_k, int((p < threshold).sum()))
    k = min(k, int(np.isfinite(p).sum()))
    return np.argsort(p, kind="stable")[:k]


def top_hit_recall(real: GwasResult, syn: GwasResult, top_k: int = 10,
                   threshold: float = GENOME_WIDE) -> float:
    """Fraction of the real top hits (K = max(top_k, #SNPs at p < threshold)) that are among the
    synthetic cohort's K smallest p-values."""
    hits = top_hits(real.p, top_k, threshold)
    if len(hits) == 0:
        return float("nan")
    ps = np.where(np.isfinite(syn.p), syn.p, np.inf)
    syn_top = np.argsort(ps, kind="stable")[: len(hits)]
    return float(len(np.intersect1d(hits, syn_top)) / len(hits))
