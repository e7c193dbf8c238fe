"""Genomic relationship matrix (VanRaden 2008, method 1) and kinship replay.

    G_ij = sum_k (x_ik - 2 p_k)(x_jk - 2 p_k) / (2 sum_k p_k (1 - p_k))

with p the allele-1 frequencies of the reference (real) cohort, the same for every GRM of one
evaluation so values are comparable across cohorts. Missing genotypes are set to 2p (contribute
0). Off-diagonal entries estimate twice the kinship coefficient (G ~ 2 phi) between unrelated
(0), second-degree (0.25), first-degree (0.5) relatives and duplicates (1).

kinship_replay = number of synthetic x training pairs with kinship phi = G/2 at or above
KINSHIP_SECOND_DEGREE = 2^-3.5 ~ 0.0884, the lower bound of second-degree relationships in KING
(Manichaikul et al. 2010; bounds 2^-1.5, 2^-2.5, 2^-3.5, 2^-4.5 between duplicate / first /
second / third degree). A generator that replays training genomes or stitches large pieces of one
training individual shows up as synthetic "relatives" of the training set. With few SNPs (one
region) or rare variants the GRM is noisy and unrelated pairs can cross the threshold; compare
with the real-vs-real reference (held-out real people x training set).

grm_offdiag_diff = Wasserstein-1 distance between the off-diagonal G distributions within the real
cohort and within the synthetic cohort (histograms of width 0.001 on [-1, 2)).

The scan (`pairwise.scan`) reduces G block by block, never holding the N x N matrix.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from genofast.metrics.pairwise import GrmSpec, allele_freq, impute

#: KING's lower bound of second-degree kinship (phi), 2^-3.5.
KINSHIP_SECOND_DEGREE = 2.0 ** -3.5


def grm_spec(freq: torch.Tensor, kinship_threshold: float | None = KINSHIP_SECOND_DEGREE,
             bins: int = 3000, lo: float = -1.0, hi: float = 2.0) -> GrmSpec:
    """Scan settings for the VanRaden GRM with reference frequencies ``freq`` (NaN = no calls,
    treated as monomorphic). The threshold is given in kinship units (G >= 2 phi)."""
    p = freq.double().nan_to_num(0.0)
    mu = 2 * p
    denom = float((2 * p * (1 - p)).sum())
    if denom <= 0:
        raise ValueError("GRM: no polymorphic SNP in the reference cohort")
    thr = None if kinship_threshold is None else 2.0 * kinship_threshold
    return GrmSpec(mu_sq=float((mu * mu).sum()), denom=denom, threshold=thr, lo=lo, hi=hi,
                   bins=bins)


def vanraden_grm(a: torch.Tensor, b: torch.Tensor | None = None,
                 freq: torch.Tensor | None = None) -> torch.Tensor:
    """The full VanRaden GRM between int8 cohorts a [n, M] and b [m, M] (b = a by default), as
    float64 [n, m]: a small-cohort reference and for plots; evaluate uses the blockwise scan."""
    b = a if b is None else b
    p = (allele_freq(a) if freq is None else freq).double().nan_to_num(0.0).to(a.device)
    mu = 2 * p
    za = impute(a, mu, torch.float64) - mu
    zb = impute(b, mu, torch.float64) - mu
    return za @ zb.t() / float((2 * p * (1 - p)).sum())


def hist_summary(hist: torch.Tensor, spec: GrmSpec) -> dict[str, float]:
    """Mean, standard deviation and 99.9th percentile of an off-diagonal GRM histogram."""
    h = hist.double().cpu().numpy()
    n = h.sum()
    if n == 0:
        return {"mean": math.nan, "sd": math.nan, "q999": math.nan}
    width = (spec.hi - spec.lo) / spec.bins
    centres = spec.lo + width * (np.arange(spec.bins) + 0.5)
    mean = float((h * centres).sum() / n)
    sd = float(math.sqrt(max(0.0, (h * (centres - mean) ** 2).sum() / n)))
    q = float(centres[min(spec.bins - 1, int(np.searchsorted(np.cumsum(h), 0.999 * n)))])
    return {"mean": mean, "sd": sd, "q999": q}
