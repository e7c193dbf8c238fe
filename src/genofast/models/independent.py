"""The trivial yardstick: every SNP drawn on its own from its training genotype frequencies.

It keeps allele and genotype frequencies (up to sampling noise) and nothing else: no linkage
disequilibrium, no population structure, no relatedness. Every report should carry it, so a
model's LD and structure figures can be read against what frequencies alone give.
"""

from __future__ import annotations

import numpy as np
import torch

from genofast.ops import unpack

_FIT_ROWS = 4096  # individuals unpacked at a time while counting


class IndependentSNPs:
    """Per-SNP categorical over genotypes 0/1/2, fitted by counting (missing left out)."""

    def __init__(self, genotype_freq: np.ndarray) -> None:
        freq = np.asarray(genotype_freq, dtype=np.float64)
        if freq.ndim != 2 or freq.shape[1] != 3:
            raise ValueError(f"genotype_freq: expected [M, 3], got {freq.shape}")
        if (freq < 0).any() or not np.allclose(freq.sum(1), 1.0):
            raise ValueError("genotype_freq: rows must be probabilities summing to 1")
        self.genotype_freq = freq

    @property
    def n_snps(self) -> int:
        return self.genotype_freq.shape[0]

    @classmethod
    def fit(cls, packed: torch.Tensor, n_snps: int) -> IndependentSNPs:
        """Count genotypes of a packed cohort ``uint8 [N, ceil(M/4)]``, a chunk of rows at a time.

        A SNP with no called genotype gets frequencies (1/3, 1/3, 1/3) rather than a guess.
        """
        counts = torch.zeros(n_snps, 3, dtype=torch.int64)
        for r in range(0, packed.shape[0], _FIT_ROWS):
            g = unpack(packed[r : r + _FIT_ROWS].cpu(), n_snps)
            for k in range(3):
                counts[:, k] += (g == k).sum(0)
        counts = counts.numpy().astype(np.float64)
        total = counts.sum(1, keepdims=True)
        freq = np.where(total > 0, counts / np.maximum(total, 1), 1.0 / 3.0)
        return cls(freq)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``int8 [n, M]`` genotypes, each SNP an independent inverse-CDF draw (float64 CDF, so
        a genotype of frequency 1e-6 keeps it)."""
        cdf = torch.from_numpy(np.cumsum(self.genotype_freq[:, :2], axis=1))
        u = torch.rand(n, self.n_snps, generator=generator, dtype=torch.float64)
        return ((u >= cdf[:, 0]).to(torch.int8) + (u >= cdf[:, 1]).to(torch.int8))
