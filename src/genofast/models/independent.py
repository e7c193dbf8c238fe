"""The trivial yardstick: every SNP drawn on its own from its training genotype frequencies.

It keeps allele and genotype frequencies (up to sampling noise) and nothing else: no linkage
disequilibrium, no population structure, no relatedness. Every report should carry it, so a
model's LD and structure figures can be read against what frequencies alone give.

`IndependentSNPs` is the plain fitted distribution; `IndependentModel` is the same baseline as the
trainer's model ``"independent"`` (`genofast.models.base` protocol), fitted by counting when it is
built and optionally conditioned: with a conditioning trait, one set of frequencies per phenotype
bin (quantile bins of a continuous trait, one bin per level of a binary or categorical one), so
the trait's marginal association with each SNP survives, and still nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from genofast.models.base import OptimGroup, TrainingData, categorical_draw, row_uniform
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


# --- the trainer's model "independent" ----------------------------------------------------------


@dataclass
class Config:
    """The baseline's settings (``--set key=value``). ``bins``: quantile bins of a continuous
    conditioning trait (a binary or categorical trait gets one bin per level); ``bin_trait``: the
    trait that picks the bin (empty: the first trait)."""

    bins: int = 5
    bin_trait: str = ""


MODEL_CONFIGS: dict[str, type] = {"independent": Config}
PRESETS: dict[str, dict] = {}


class IndependentModel(nn.Module):
    """`IndependentSNPs` in the trainer's model protocol, optionally per phenotype bin.

    Buffers (persistent, so a checkpoint holds the fit): ``freq`` float64 [n_bins, M, 3], the
    genotype frequencies of the training individuals in each bin of the bin trait; ``pooled``
    float64 [M, 3], those of all training individuals, used for rows whose trait is missing or
    not given, and per SNP for a bin with no called genotype; ``edges`` float64 [n_bins - 1]
    (continuous trait) or [0], the inner quantile edges in the model's (standardised) units. A
    SNP with no called genotype at all gets (1/3, 1/3, 1/3), as in `IndependentSNPs.fit`. Nothing
    is trained: ``loss`` is a constant and ``optim_groups`` is empty.
    """

    def __init__(self, n_snps: int, n_bins: int = 1, trait: int | None = None,
                 kind: str | None = None) -> None:
        super().__init__()
        if n_bins < 1:
            raise ValueError(f"bins must be >= 1, got {n_bins}")
        if trait is None and n_bins != 1:
            raise ValueError("several bins need a bin trait")
        self.trait, self.kind = trait, kind
        n_edges = n_bins - 1 if kind == "continuous" else 0
        self.register_buffer("freq", torch.full((n_bins, n_snps, 3), 1 / 3, dtype=torch.float64))
        self.register_buffer("pooled", torch.full((n_snps, 3), 1 / 3, dtype=torch.float64))
        self.register_buffer("edges", torch.zeros(n_edges, dtype=torch.float64))

    @property
    def n_snps(self) -> int:
        return self.pooled.shape[0]

    @property
    def n_bins(self) -> int:
        return self.freq.shape[0]

    def optim_groups(self) -> list[OptimGroup]:
        return []

    def bin_of(self, cond: torch.Tensor | None, batch: int) -> torch.Tensor:
        """int64 [batch]: each row's bin, -1 for the pooled frequencies (no bin trait, no cond,
        or the trait missing). Raises on a level outside the trait's range."""
        dev = self.pooled.device
        if cond is None or self.trait is None:
            return torch.full((batch,), -1, dtype=torch.int64, device=dev)
        if cond.dim() != 2 or cond.shape[0] != batch or cond.shape[1] <= self.trait:
            raise ValueError(f"cond: expected [{batch}, >{self.trait}], got {tuple(cond.shape)}")
        v = cond[:, self.trait].to(device=dev, dtype=torch.float64)
        miss = v.isnan()
        v0 = torch.where(miss, torch.zeros_like(v), v)
        if self.kind == "continuous":
            b = torch.searchsorted(self.edges, v0, right=True)
        else:
            bad = ~miss & ((v0 < 0) | (v0 >= self.n_bins) | (v0 != v0.round()))
            if bool(bad.any()):
                raise ValueError(f"cond: the bin trait ({self.kind}) takes integers "
                                 f"0..{self.n_bins - 1}")
            b = v0.long()
        return torch.where(miss, torch.full_like(b, -1), b)

    @torch.no_grad()
    def fit(self, packed: torch.Tensor, n_snps: int, cond: torch.Tensor | None = None) -> None:
        """Fill the buffers from the training individuals (packed uint8 [N, ceil(M/4)], cond
        float32 [N, K] or None), counting a chunk of rows at a time, missing genotypes left out."""
        if n_snps != self.n_snps:
            raise ValueError(f"fit: {n_snps} SNPs, the model was built for {self.n_snps}")
        if self.kind == "continuous" and cond is not None and self.n_bins > 1:
            v = cond[:, self.trait].double()
            v = v[~v.isnan()]
            if len(v):
                q = torch.arange(1, self.n_bins, dtype=torch.float64) / self.n_bins
                self.edges.copy_(torch.quantile(v.cpu(), q))
        counts = torch.zeros(self.n_bins + 1, n_snps, 3, dtype=torch.int64)  # last: no bin
        for r in range(0, packed.shape[0], _FIT_ROWS):
            g = unpack(packed[r : r + _FIT_ROWS].cpu(), n_snps)
            c = None if cond is None else cond[r : r + _FIT_ROWS]
            group = self.bin_of(c, g.shape[0]).cpu()
            group = torch.where(group < 0, self.n_bins, group)
            for b in group.unique().tolist():
                sel = g[group == b]
                for k in range(3):
                    counts[b, :, k] += (sel == k).sum(0)
        counts = counts.double()
        total = counts.sum(0)
        n_called = total.sum(-1, keepdim=True)
        pooled = torch.where(n_called > 0, total / n_called.clamp(min=1), 1 / 3)
        per_bin = counts[:-1]
        n_bin = per_bin.sum(-1, keepdim=True)
        freq = torch.where(n_bin > 0, per_bin / n_bin.clamp(min=1), pooled)
        self.pooled.copy_(pooled)
        self.freq.copy_(freq)

    def loss(self, packed: torch.Tensor, row_ids: torch.Tensor, cond: torch.Tensor | None = None,
             *, seed: int = 0, offset: int = 0) -> torch.Tensor:
        """A zero scalar without gradient: the model is fitted by counting in `build`."""
        return torch.zeros((), device=packed.device)

    @torch.no_grad()
    def sample(self, n: int, cond: torch.Tensor | None = None, *, steps: int = 50,
               guidance: float = 0.0, seed: int = 0, row_offset: int = 0) -> torch.Tensor:
        """int8 [n, M]: every SNP drawn on its own from its row's bin frequencies (`row_uniform`
        + `categorical_draw`). ``steps`` is ignored; ``guidance`` must be 0."""
        if guidance != 0:
            raise ValueError("the independent baseline has no guidance (guidance must be 0)")
        if cond is not None and self.trait is None and cond.shape[-1] > 0:
            raise ValueError("cond given to a model built without a bin trait")
        dev = self.pooled.device
        rows = torch.arange(row_offset, row_offset + n, dtype=torch.int64, device=dev)
        u = row_uniform(seed, rows, self.n_snps, stream=0)
        bins = self.bin_of(cond, n)
        out = torch.empty(n, self.n_snps, dtype=torch.int8, device=dev)
        for b in bins.unique().tolist():
            sel = bins == b
            out[sel] = categorical_draw(self.pooled if b < 0 else self.freq[b], u[sel])
        return out


def build(meta: dict[str, Any], snps: Any, data: TrainingData | None) -> IndependentModel:
    """The baseline a run's config.json describes; fitted on ``data`` when given (training),
    left for ``load_state_dict`` otherwise."""
    cfg = Config(**(meta.get("model") or {}))
    traits = meta.get("traits") or []
    m = len(snps)
    trait = kind = None
    n_bins = 1
    if traits:
        names = [s["name"] for s in traits]
        if cfg.bin_trait and cfg.bin_trait not in names:
            raise ValueError(f"bin_trait {cfg.bin_trait!r} is not a trait of this run "
                             f"({', '.join(names)})")
        trait = names.index(cfg.bin_trait) if cfg.bin_trait else 0
        kind = traits[trait]["kind"]
        n_bins = {"continuous": cfg.bins, "binary": 2}.get(kind, traits[trait].get("n_levels", 2))
    model = IndependentModel(m, n_bins, trait, kind)
    if data is not None:
        model.fit(data.packed, data.n_snps, data.cond)
    return model
