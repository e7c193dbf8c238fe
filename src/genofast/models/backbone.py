"""Whole-genome patch transformer: genotype tokens -> per-SNP logits over x0 in {0, 1, 2}.

The model in one breath::

    x int8 [B, M]  (-1 missing, 0/1/2, 3 = MASK)
      -> token embedding (5 entries, dim E) per SNP
         (+ with snp_features: a linear map of the SNP's log training genotype frequencies
          log pi_j [3] and of log pi_j[x] in the called genotype's slot [3], zeros otherwise)
      -> SNPs cut into patches of P within each chromosome (last patch of a chromosome padded with
         a fixed zero embedding), flattened [P * E] -> linear -> width D
      -> + chromosome embedding + sinusoidal embedding of the patch centre's bp position
      -> depth x DiT block (pre-norm, adaLN-Zero from c = time embedding + condition embedding,
         attention by scaled_dot_product_attention (`attention`), GELU MLP)
      -> adaLN final norm -> linear D -> P * 3 -> back to SNP order, padding dropped: [B, M, 3]

Every parameter is sized by E, P, D, depth and the trait spec, none by the SNP count M: the SNP
layout (which SNP sits in which patch slot, patch chromosome and position) lives in non-persistent
buffers rebuilt from the `.bim` columns. The position embedding is fixed (sinusoids of bp position,
wavelengths 100 bp to 1 Gbp) rather than learned per patch, which would grow with M and would not
carry physical distance. adaLN-Zero (Peebles & Xie 2023, DiT) zero-initialises every residual gate
and the output layer, so a fresh network is the identity on its residual stream and outputs 0.

SNP features (``snp_features``). The patch projection and the output head are shared by all
patches, so without them a token says only "genotype 2 in slot 5", and which SNP that is, common
or rare, must be recovered from the patch's position embedding deep in the network. The training
genotype frequencies (``freq``, kept as a saved [M, 3] buffer: data like the layout, not
parameters; 6 x E weights whatever M) tell every token at the input how common its SNP's
genotypes are and how surprising the called one is. The projection starts at zero. On AGBL4 (20
CPU minutes, bench/RESULTS.md) it lowered the held-out ELBO by 7 % (mask and marginal) and the LD
errors with it, at no measurable cost per step.

Conditioning: any number of continuous (standardised), binary (0/1) and categorical (level index)
traits, given as one float tensor ``[B, n_traits]`` in the order of the trait spec, NaN for a
missing value (which gets its own learned per-trait embedding). The per-trait embeddings are summed,
passed through an MLP and added to the time embedding. Rows flagged ``drop`` get a learned null
embedding instead (condition dropout in training, the unconditional branch of classifier-free
guidance at sampling).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

N_TOKENS = 5  # -1 (missing), 0, 1, 2, MASK; token index = value + 1
_PAD_TOKEN = N_TOKENS  # index of the fixed zero embedding used for patch padding
TRAIT_KINDS = ("continuous", "binary", "categorical")


@dataclass(frozen=True)
class BackboneConfig:
    """Sizes of the patch transformer (see the module docstring)."""

    patch_size: int = 64  # P, SNPs per patch
    token_dim: int = 8  # E, token embedding width
    width: int = 512  # D
    depth: int = 12
    n_heads: int = 8
    mlp_ratio: float = 4.0
    max_chromosomes: int = 64  # rows of the chromosome embedding table
    time_freq_dim: int = 256  # sinusoidal features of t fed to the time MLP
    latent_dim: int = 0  # > 0: forward takes a latent vector [B, latent_dim] (GAN/VAE decoders)
    # token embeddings also read each SNP's training genotype frequencies (module docstring);
    # on in the named configs, off here so runs saved before it existed load unchanged
    snp_features: bool = False
    dropout: float = 0.0  # on each block's attention and MLP outputs, in training only


CONFIGS: dict[str, BackboneConfig] = {
    # Whole cattle 50k chip: 29 autosomes, 50,161 SNPs -> 796 patches of 64 (the real Holstein
    # panel). 58.0 M parameters (weights + AdamW state in fp32: about 0.9 GB). Activations saved
    # for backward under bf16 autocast, measured with saved-tensor hooks on a forward: about
    # 25 MB per individual per block, 300 MB per individual in all. Suggested batch 128: about
    # 39 GB of activations plus the packed cohort (1.2 GB) and the [B, M, 3] float32 logits and
    # loss temporaries (under 0.5 GB), well inside one 80 GB GPU (batch 192: about 58 GB).
    "cattle-50k": BackboneConfig(patch_size=64, token_dim=8, width=512, depth=12, n_heads=8,
                                 snp_features=True),
    # ~1,000 x 4,000 on a 2-core CPU: 125 patches of 32, 1.3 M parameters.
    "cpu-small": BackboneConfig(patch_size=32, token_dim=8, width=128, depth=4, n_heads=4,
                                snp_features=True),
}


@dataclass(frozen=True)
class Trait:
    """One conditioning trait. ``continuous`` values are standardised floats, ``binary`` 0/1,
    ``categorical`` level indices 0..n_levels-1; NaN marks a missing value."""

    name: str
    kind: str
    n_levels: int = 2

    def __post_init__(self) -> None:
        if self.kind not in TRAIT_KINDS:
            raise ValueError(f"trait {self.name!r}: kind must be one of {TRAIT_KINDS}")
        if self.kind == "categorical" and self.n_levels < 2:
            raise ValueError(f"trait {self.name!r}: a categorical trait needs n_levels >= 2")


@dataclass(frozen=True)
class PatchLayout:
    """Where every SNP sits: ``index`` int64 [n_patches, P] (SNP number, M for padding),
    ``chrom`` int64 [n_patches] (chromosome number in order of first appearance), ``centre``
    float64 [n_patches] (bp midpoint of the patch's first and last SNP)."""

    index: np.ndarray
    chrom: np.ndarray
    centre: np.ndarray
    n_snps: int

    @property
    def n_patches(self) -> int:
        return self.index.shape[0]


def patch_layout(
    chromosomes: Sequence | np.ndarray, positions: Sequence | np.ndarray | None, patch_size: int
) -> PatchLayout:
    """Cut SNPs into patches of ``patch_size`` within each run of equal chromosome labels, so no
    patch spans two chromosomes. Without positions, SNPs are placed 1 kbp apart."""
    chrom = np.asarray(chromosomes)
    m = chrom.shape[0]
    if chrom.ndim != 1 or m == 0:
        raise ValueError("chromosomes: expected a non-empty 1-D array, one label per SNP")
    pos = np.arange(m) * 1000.0 if positions is None else np.asarray(positions, np.float64)
    if pos.shape != (m,):
        raise ValueError(f"positions: expected shape ({m},), got {pos.shape}")
    starts = np.flatnonzero(np.r_[True, chrom[1:] != chrom[:-1]])
    ends = np.r_[starts[1:], m]
    ids: dict = {}
    index, pchrom, centre = [], [], []
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        cid = ids.setdefault(chrom[s].item() if hasattr(chrom[s], "item") else chrom[s], len(ids))
        for p0 in range(s, e, patch_size):
            p1 = min(p0 + patch_size, e)
            row = np.full(patch_size, m, dtype=np.int64)
            row[: p1 - p0] = np.arange(p0, p1)
            index.append(row)
            pchrom.append(cid)
            centre.append(0.5 * (pos[p0] + pos[p1 - 1]))
    return PatchLayout(np.stack(index), np.asarray(pchrom, np.int64), np.asarray(centre), m)


def sinusoid(x: torch.Tensor, dim: int, min_period: float, max_period: float) -> torch.Tensor:
    """[..., dim] features cos/sin(2 pi x / period), periods geometric from min to max."""
    half = dim // 2
    periods = min_period * (max_period / min_period) ** (
        torch.arange(half, dtype=torch.float64, device=x.device) / max(half - 1, 1)
    )
    ang = (2 * math.pi) * x.to(torch.float64)[..., None] / periods
    out = torch.cat([torch.cos(ang), torch.sin(ang)], dim=-1)
    if dim % 2:
        out = F.pad(out, (0, 1))
    return out.to(torch.float32)


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale) + shift


class ConditionEmbedding(nn.Module):
    """Traits [B, n_traits] -> [B, D]: per-trait embeddings summed, then an MLP; a learned null
    embedding for dropped rows; a learned per-trait embedding for missing (NaN) values."""

    def __init__(self, traits: Sequence[Trait], width: int) -> None:
        super().__init__()
        self.traits = tuple(traits)
        self.tables = nn.ModuleList()
        for tr in self.traits:
            n_in = 1 if tr.kind == "continuous" else (2 if tr.kind == "binary" else tr.n_levels)
            self.tables.append(nn.Linear(1, width) if n_in == 1 else nn.Embedding(n_in, width))
        self.missing = nn.Parameter(torch.zeros(len(self.traits), width))
        self.null = nn.Parameter(torch.zeros(width))
        self.mlp = nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width))

    def check(self, cond: torch.Tensor, batch: int) -> None:
        """Raise on a wrong shape or an out-of-range binary/categorical value (one host sync)."""
        if cond.dim() != 2 or tuple(cond.shape) != (batch, len(self.traits)):
            raise ValueError(
                f"cond: expected [{batch}, {len(self.traits)}] "
                f"({', '.join(t.name for t in self.traits)}), got {tuple(cond.shape)}"
            )
        for k, tr in enumerate(self.traits):
            if tr.kind == "continuous":
                continue
            v = cond[:, k]
            v = v[~v.isnan()]
            n = 2 if tr.kind == "binary" else tr.n_levels
            if bool(((v < 0) | (v >= n) | (v != v.round())).any()):
                raise ValueError(f"cond: trait {tr.name!r} ({tr.kind}) takes integers 0..{n - 1}")

    def forward(self, cond: torch.Tensor | None, drop: torch.Tensor | None, batch: int):
        if cond is None:
            return self.null.expand(batch, -1)
        emb = 0
        for k, (tr, table) in enumerate(zip(self.traits, self.tables, strict=True)):
            v = cond[:, k]
            miss = v.isnan()
            v = torch.where(miss, torch.zeros_like(v), v)
            e = table(v[:, None].float()) if tr.kind == "continuous" else table(v.long())
            emb = emb + torch.where(miss[:, None], self.missing[k], e)
        emb = self.mlp(emb)
        if drop is not None:
            emb = torch.where(drop[:, None], self.null.to(emb.dtype), emb)
        return emb


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Softmax attention [B, H, N, Dh] (no mask): `scaled_dot_product_attention`, except for
    bfloat16 on the CPU, where it is written out (softmax(q k^T / sqrt(Dh)) v): torch's CPU
    flash-attention backward in bf16 is 4x slower than in float32 (cpu-small shapes, 2 threads:
    30 ms against 13 ms fwd + bwd per block), the written-out form 8 ms."""
    if q.device.type == "cpu" and q.dtype == torch.bfloat16:
        return ((q @ k.transpose(-1, -2)) * q.shape[-1] ** -0.5).softmax(-1) @ v
    return F.scaled_dot_product_attention(q, k, v)


class Block(nn.Module):
    """Pre-norm transformer block with adaLN-Zero: shift/scale/gate for attention and MLP."""

    def __init__(self, width: int, n_heads: int, mlp_ratio: float, dropout: float = 0.0) -> None:
        super().__init__()
        self.n_heads, self.dropout = n_heads, dropout
        self.norm1 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        hidden = int(width * mlp_ratio)
        self.mlp = nn.Sequential(
            nn.Linear(width, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, width)
        )
        self.ada = nn.Linear(width, 6 * width)

    def forward(self, h: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        b, n, d = h.shape
        sh1, sc1, g1, sh2, sc2, g2 = self.ada(c)[:, None].chunk(6, dim=-1)
        q, k, v = (
            self.qkv(modulate(self.norm1(h), sh1, sc1))
            .view(b, n, 3, self.n_heads, d // self.n_heads)
            .permute(2, 0, 3, 1, 4)
        )
        a = attention(q, k, v).transpose(1, 2).reshape(b, n, d)
        h = h + g1 * F.dropout(self.proj(a), self.dropout, self.training)
        mlp = self.mlp(modulate(self.norm2(h), sh2, sc2))
        return h + g2 * F.dropout(mlp, self.dropout, self.training)


class PatchTransformer(nn.Module):
    """x int8 [B, M] tokens, t float [B] in [0, 1], optional traits -> logits [B, M, 3].

    ``freq`` float [M, 3]: the training genotype frequencies, required with ``snp_features``."""

    def __init__(
        self,
        config: BackboneConfig,
        chromosomes: Sequence | np.ndarray,
        positions: Sequence | np.ndarray | None = None,
        traits: Sequence[Trait] = (),
        freq: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        cfg = self.config = config
        if cfg.width % cfg.n_heads:
            raise ValueError("width must be a multiple of n_heads")
        if not 0.0 <= cfg.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {cfg.dropout}")
        layout = self.layout = patch_layout(chromosomes, positions, cfg.patch_size)
        if int(layout.chrom.max()) >= cfg.max_chromosomes:
            raise ValueError(
                f"{int(layout.chrom.max()) + 1} chromosomes; the config allows "
                f"{cfg.max_chromosomes} (raise max_chromosomes)"
            )
        d, p = cfg.width, cfg.patch_size
        # SNP layout: buffers, not parameters (rebuilt from the .bim, never saved)
        slot = np.empty(layout.n_snps, dtype=np.int64)
        flat = layout.index.reshape(-1)
        real = flat < layout.n_snps
        slot[flat[real]] = np.flatnonzero(real)
        self.register_buffer("patch_index", torch.from_numpy(layout.index), persistent=False)
        self.register_buffer("snp_slot", torch.from_numpy(slot), persistent=False)
        self.register_buffer("patch_chrom", torch.from_numpy(layout.chrom), persistent=False)
        pos = sinusoid(torch.from_numpy(layout.centre), d, 100.0, 1e9)
        self.register_buffer("pos_emb", pos, persistent=False)

        self.tok_emb = nn.Embedding(N_TOKENS + 1, cfg.token_dim, padding_idx=_PAD_TOKEN)
        self.freq_proj = None
        if cfg.snp_features:
            if freq is None or tuple(freq.shape) != (layout.n_snps, 3):
                raise ValueError(f"snp_features: expected freq [{layout.n_snps}, 3], the "
                                 "training genotype frequencies")
            self.register_buffer("snp_logfreq", torch.log(freq.float() + 1e-3))
            self.freq_proj = nn.Linear(6, cfg.token_dim, bias=False)
        self.patch_proj = nn.Linear(p * cfg.token_dim, d)
        self.chrom_emb = nn.Embedding(cfg.max_chromosomes, d)
        self.time_mlp = nn.Sequential(nn.Linear(cfg.time_freq_dim, d), nn.SiLU(), nn.Linear(d, d))
        self.cond_emb = ConditionEmbedding(traits, d) if traits else None
        self.latent_proj = nn.Linear(cfg.latent_dim, d) if cfg.latent_dim > 0 else None
        self.blocks = nn.ModuleList(Block(d, cfg.n_heads, cfg.mlp_ratio, cfg.dropout)
                                    for _ in range(cfg.depth))
        self.norm_out = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.ada_out = nn.Linear(d, 2 * d)
        self.head = nn.Linear(d, p * 3)
        self._init_weights()

    def _init_weights(self) -> None:
        """DiT initialisation: Xavier linears, N(0, 0.02) embeddings, zero adaLN and output."""
        for mod in self.modules():
            if isinstance(mod, nn.Linear):
                nn.init.xavier_uniform_(mod.weight)
                if mod.bias is not None:
                    nn.init.zeros_(mod.bias)
            elif isinstance(mod, nn.Embedding):
                nn.init.normal_(mod.weight, std=0.02)
        with torch.no_grad():
            self.tok_emb.weight[_PAD_TOKEN].zero_()
        for lin in [blk.ada for blk in self.blocks] + [self.ada_out, self.head]:
            nn.init.zeros_(lin.weight)
            nn.init.zeros_(lin.bias)
        if self.freq_proj is not None:  # starts as the plain token embedding
            nn.init.zeros_(self.freq_proj.weight)

    @property
    def n_snps(self) -> int:
        return self.layout.n_snps

    @property
    def traits(self) -> tuple[Trait, ...]:
        return self.cond_emb.traits if self.cond_emb is not None else ()

    def conditioning(
        self, t: torch.Tensor, cond: torch.Tensor | None, drop: torch.Tensor | None
    ) -> torch.Tensor:
        """c [B, D] = time embedding (+ condition embedding, null for dropped rows / no cond)."""
        c = self.time_mlp(sinusoid(t * 1000.0, self.config.time_freq_dim, 1.0, 1e4))
        if self.cond_emb is not None:
            c = c + self.cond_emb(cond, drop, t.shape[0])
        elif cond is not None:
            raise ValueError("cond given to a model built without traits")
        return c

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Patch embeddings [B, n_patches, D] of int8 tokens [B, M] or of genotype probabilities
        float [B, M, 3] (soft one-hot, e.g. Gumbel-softmax output: the expected embedding
        ``probs @ tok_emb[0/1/2]``, differentiable in the probabilities)."""
        if x.dim() == 3:
            if tuple(x.shape[1:]) != (self.n_snps, 3):
                raise ValueError(f"x: expected [B, {self.n_snps}, 3] probabilities, got "
                                 f"{tuple(x.shape)}")
            probs = x.to(self.tok_emb.weight.dtype)
            e = probs @ self.tok_emb.weight[1:4]  # [B, M, E]
        else:
            if x.shape[1] != self.n_snps:
                raise ValueError(f"x: {x.shape[1]} SNPs, the model was built for {self.n_snps}")
            e = self.tok_emb(x.long() + 1)
        if self.freq_proj is not None:
            if x.dim() == 2:  # one-hot of the called genotype; zeros for missing and MASK
                probs = (x[..., None] == torch.arange(3, device=x.device)).to(e.dtype)
            lf = self.snp_logfreq
            w = self.freq_proj.weight.T  # [6, E]: rows on log pi_j, then on log pi_j[genotype]
            e = e + (lf @ w[:3]).to(e.dtype) + (probs * lf.to(e.dtype)) @ w[3:].to(e.dtype)
        e = F.pad(e, (0, 0, 0, 1))[:, self.patch_index]  # padding slot -> zero embedding
        h = self.patch_proj(e.flatten(2))
        return h + self.chrom_emb(self.patch_chrom) + self.pos_emb

    def trunk(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        cond: torch.Tensor | None = None,
        drop: torch.Tensor | None = None,
        latent: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(final normalised patch states [B, n_patches, D], conditioning c [B, D])."""
        h = self.embed(x)
        c = self.conditioning(t, cond, drop)
        if self.latent_proj is not None:
            if latent is None:
                raise ValueError(f"this backbone needs a latent [B, {self.config.latent_dim}]")
            c = c + self.latent_proj(latent)
        elif latent is not None:
            raise ValueError("latent given to a backbone built with latent_dim = 0")
        c = F.silu(c)
        for blk in self.blocks:
            h = blk(h, c)
        shift, scale = self.ada_out(c)[:, None].chunk(2, dim=-1)
        return modulate(self.norm_out(h), shift, scale), c

    def forward(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        cond: torch.Tensor | None = None,
        drop: torch.Tensor | None = None,
        latent: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Per-SNP logits [B, M, 3]."""
        h, _ = self.trunk(x, t, cond, drop, latent)
        out = self.head(h)  # [B, n_patches, P * 3]
        return out.reshape(x.shape[0], -1, 3)[:, self.snp_slot]

    def pooled(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        cond: torch.Tensor | None = None,
        drop: torch.Tensor | None = None,
        latent: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """One vector per individual [B, D]: the mean of the final patch states (a critic's or
        an encoder's summary; `head` is unused)."""
        return self.trunk(x, t, cond, drop, latent)[0].mean(1)


def n_params(module: nn.Module) -> int:
    """Trainable parameter count."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
