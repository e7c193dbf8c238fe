"""PCA + DDPM: a Gaussian diffusion model on per-chromosome principal-component scores.

The "PCA+DM" model of Xie et al., GigaScience 2026 (arXiv 2508.09212; code: github.com/SihanXXX/
DiscreteGenoGen, ``models/PCA_DM``). Genotypes are discrete, a Gaussian DDPM wants continuous
data, so the study moves to a continuous space first:

1. PCA per chromosome of the training dosages 0/1/2 (centred by the SNP means, a missing genotype
   counts as its SNP's mean), keeping the leading components that explain ``variance`` (0.9 in
   the study) of the chromosome's variance, at most ``max_components``. Here the scores are
   also divided by their training SD (``standardize``), so every coordinate the diffusion sees has
   unit variance, like its noise; the study fed raw scores (``standardize=False``).
2. One DDPM (Ho et al. 2020) over the concatenated scores z (K = sum of kept components): linear
   betas ``beta_start``..``beta_end`` over T = ``timesteps`` (1e-4..0.02, T = 1,500 for cattle in
   the study), ``z_t = sqrt(abar_t) z_0 + sqrt(1 - abar_t) eps``, loss = MSE(eps_theta(z_t, t, c),
   eps), t stratified over the batch in 1..T.
3. eps_theta is the study's MLP: input [z_t, sinusoidal time embedding, condition embedding];
   Linear-LayerNorm-ReLU layers of widths ``hidden``; the time and condition embeddings are
   concatenated again to the input of the second layer; a linear skip from the input to the
   output is added to the last layer's projection.
4. Sampling: ancestral DDPM from z_T ~ N(0, I). ``steps`` (< T) runs a strided subsequence
   T = t_1 > ... > t_S = 1 and then 0 (DDIM's respacing, Song et al. 2021, with eta = 1, i.e. the
   exact DDPM posterior between the kept steps): with x0_hat = (z_t - sqrt(1 - abar_t) eps) /
   sqrt(abar_t), z_s ~ q(z_s | z_t, x0_hat), mean
   ``sqrt(abar_s) (1 - a) / (1 - abar_t) x0_hat + sqrt(a) (1 - abar_s) / (1 - abar_t) z_t`` with
   a = abar_t / abar_s, variance ``(1 - abar_s) / (1 - abar_t) (1 - a)`` (``reverse_var=
   "posterior"``, Ho et al.'s beta-tilde, no noise on the last step) or ``1 - a`` (``"beta"``,
   the study's sigma_t^2 = beta_t, noise on every step). With all T steps this is exactly Ho et
   al.'s sampler. The noise of row i at step j comes from `row_normal` keyed by (seed, row_offset
   + i, stream j), so a seed gives the same cohort whatever the batch split.
5. Decoding: back-projection ``d = z * sd @ components + mean`` per chromosome (a dosage), then
   per SNP either the study's round-and-clip (``decode="round"``) or a categorical draw with
   p(k) proportional to exp(-(d - k)^2 / tau), k in {0, 1, 2} (``decode="softmax"``, default
   tau = 0.1). Why tau = 0.1: rounding maps every dosage of a rare SNP that the kept components do
   not explain (d close to its mean 0.03, say) to 0, so such SNPs come out monomorphic; a small
   tau keeps a few of them, a large one adds noise that erodes LD and inflates heterozygosity.
   Measured on AGBL4 (1000 Genomes chr1, 4,053 SNPs, median MAF 0.033; PCA on 1,252 people, 83
   components for 0.9), decoding the PCA reconstructions of the 1,252 other people: round loses
   4.0 % of the polymorphic SNPs with LD r^2 error 0.0103 and 98.5 % genotype accuracy; tau 0.1
   loses 2.4 %, LD error 0.0097, 98.4 %; tau 0.2 loses none but doubles the LD error (0.022);
   tau >= 0.3 inflates heterozygosity (0.143 vs 0.119 real) and allele-frequency error 3-fold.
   On samples of a briefly trained model (4,000 steps, widths 512/512/256) the trade-off shows
   more: tau 0.1 loses 10 % of the polymorphic SNPs against 13 % for round, allele-frequency
   error 0.024 both, but its per-SNP noise raises the LD r^2 error from 0.025 to 0.039.

Conditioning: ``base.cond_features`` (value and missing flag per continuous/binary trait, one-hot
per categorical one) through one Linear to ``cond_dim`` (the study: Linear(1, 64) of one trait).
No classifier-free guidance (the study has none): ``guidance`` must be 0.

Backbone: ``"mlp"`` only. The patch transformer reads SNPs in position order, patch by patch;
a PCA score is a chromosome-wide linear combination with no position, so there is nothing for
patches or position embeddings to work on, and running the transformer on back-projected dosages
would undo the reason for the PCA.

Scale of the PCA fit (`fit_pca`, float64 on the CPU, blockwise over individuals): a chromosome
with M_c <= N SNPs accumulates its M_c x M_c covariance (all such chromosomes in one pass over
the cohort), one with M_c > N its N x N Gram matrix; either way memory is O(min(N, M_c)^2) and
time O(N M_c min(N, M_c)). A cattle chip (29 chromosomes of <= 3,000 SNPs, 100k animals) needs
under 1 GB and minutes; a chromosome with both N and M_c beyond ~30,000 (a dense human chromosome
in a biobank) would need a randomized or out-of-core SVD, which this does not do. The loadings are
stored per chromosome (sum of k_c M_c floats, not K x M).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from genofast.io.tables import SnpTable
from genofast.models.base import (
    OptimGroup,
    TrainingData,
    categorical_draw,
    cond_features,
    cond_width,
    default_groups,
    parse_ints,
    row_normal,
    row_uniform,
)
from genofast.ops import codec

DECODES = ("softmax", "round")
REVERSE_VARS = ("posterior", "beta")
#: `row_uniform` streams are distinct modulo 4096: stream 0 draws z_T, stream j the noise of
#: reverse step j (1..T), the last one the genotype draw; so T may be at most 4094.
_DRAW_STREAM = 4095
MAX_TIMESTEPS = _DRAW_STREAM - 1
_DRAW_COLS = 16384  # SNPs per chunk of the categorical draw (bounds its float64 temporaries)


@dataclass
class Config:
    """Hyperparameters of PCA + DDPM (module docstring); ``--set key=value`` reaches each."""

    variance: float = 0.9  # fraction of each chromosome's variance the kept components explain
    max_components: int = 0  # per chromosome; 0 = no bound but the rank
    standardize: bool = True  # divide scores by their training SD (the study: False)
    timesteps: int = 1500  # T
    beta_start: float = 1e-4
    beta_end: float = 0.02
    hidden: str = "1024,1024,768"  # MLP widths, at least two (time + condition re-enter layer 2)
    time_dim: int = 128  # sinusoidal time embedding width
    cond_dim: int = 64  # condition embedding width (unused without traits)
    reverse_var: str = "posterior"  # "posterior" (beta-tilde) | "beta" (the study's)
    decode: str = "softmax"  # "softmax" (draw, temperature tau) | "round" (the study's)
    tau: float = 0.1
    backbone: str = "mlp"  # only "mlp": the patch backbone does not fit score space
    fit_rows: int = 4096  # individuals unpacked at a time while fitting the PCA


MODEL_CONFIGS: dict[str, type] = {"pca-ddpm": Config}

# The study's configurations, from github.com/SihanXXX/DiscreteGenoGen models/PCA_DM:
# cows/ALL/dm_cow_all_configs.py and train.py (29 autosomes, 4,819 components at 0.9 variance
# per pca/README.md; T 1500, time embedding 256, label embedding 64, widths 8192/8192/6144,
# Adam lr 3e-4, 1,000 warm-up steps, cosine to 1e-6, batch 4086 as written there, 20,000
# epochs, no EMA, checkpoint kept on the best k-NN precision/recall F1 every 100 epochs) and
# human/MULTI/dm_human_multi_configs.py (T 1200, sex 16 + height 32 embedding, widths
# 12288/16384/16384, batch 8096). They fed raw PCA scores, used sigma_t^2 = beta_t and decoded
# by round-and-clip; those choices are set here. max_steps is left to the run: 20,000 epochs is
# ~460k steps on their 93k cows. Their loop was plain Adam (betas 0.9/0.999), no weight decay
# (set to 0 here) and no gradient clipping (the trainer's grad_clip and betas still apply).
_STUDY_TRAIN = {
    "lr": 3e-4,
    "warmup_steps": 1000,
    "min_lr_ratio": 1e-6 / 3e-4,
    "weight_decay": 0.0,
    "ema_decay": 0.0,
    "select": "knn_f1",
}
_STUDY_MODEL = {
    "variance": 0.9,
    "max_components": 0,
    "standardize": False,
    "beta_start": 1e-4,
    "beta_end": 0.02,
    "reverse_var": "beta",
    "decode": "round",
    "backbone": "mlp",
}
PRESETS: dict[str, dict] = {
    "study:pca-ddpm": {
        "model": "pca-ddpm",
        "train": {**_STUDY_TRAIN, "batch_size": 4086, "eval_steps": 1500},
        "model_config": {**_STUDY_MODEL, "timesteps": 1500, "hidden": "8192,8192,6144",
                         "time_dim": 256, "cond_dim": 64},
    },
    "study:pca-ddpm-human": {
        "model": "pca-ddpm",
        "train": {**_STUDY_TRAIN, "batch_size": 8096, "eval_steps": 1200},
        "model_config": {**_STUDY_MODEL, "timesteps": 1200, "hidden": "12288,16384,16384",
                         "time_dim": 256, "cond_dim": 48},
    },
}


def check_config(cfg: Config) -> None:
    """ValueError naming the first invalid field of ``cfg``."""
    if not 0 < cfg.variance <= 1:
        raise ValueError(f"variance must be in (0, 1], got {cfg.variance}")
    if cfg.max_components < 0:
        raise ValueError(f"max_components must be >= 0, got {cfg.max_components}")
    if not 1 <= cfg.timesteps <= MAX_TIMESTEPS:
        raise ValueError(f"timesteps must be in 1..{MAX_TIMESTEPS}, got {cfg.timesteps}")
    if not 0 < cfg.beta_start <= cfg.beta_end < 1:
        raise ValueError(f"need 0 < beta_start <= beta_end < 1, got {cfg.beta_start}, "
                         f"{cfg.beta_end}")
    parse_ints(cfg.hidden, "hidden", min_count=2)
    if cfg.time_dim < 2 or cfg.cond_dim < 1:
        raise ValueError(f"time_dim must be >= 2 and cond_dim >= 1, got {cfg.time_dim}, "
                         f"{cfg.cond_dim}")
    if cfg.reverse_var not in REVERSE_VARS:
        raise ValueError(f"reverse_var must be one of {REVERSE_VARS}, got {cfg.reverse_var!r}")
    if cfg.decode not in DECODES:
        raise ValueError(f"decode must be one of {DECODES}, got {cfg.decode!r}")
    if cfg.tau <= 0:
        raise ValueError(f"tau must be > 0, got {cfg.tau}")
    if cfg.backbone != "mlp":
        raise ValueError(f"pca-ddpm: backbone must be 'mlp', got {cfg.backbone!r} (the patch "
                         "transformer works on SNP positions; PCA scores have none)")
    if cfg.fit_rows < 1:
        raise ValueError(f"fit_rows must be >= 1, got {cfg.fit_rows}")


def alphas_bar(timesteps: int, beta_start: float, beta_end: float) -> torch.Tensor:
    """float64 [T + 1]: abar_0 = 1 and abar_t = prod_{i <= t} (1 - beta_i), linear betas."""
    betas = torch.linspace(beta_start, beta_end, timesteps, dtype=torch.float64)
    return torch.cat([torch.ones(1, dtype=torch.float64), torch.cumprod(1 - betas, 0)])


def timestep_grid(timesteps: int, steps: int | None) -> list[int]:
    """Descending timesteps visited by the sampler, ending in 0: all T..1 when ``steps`` is None,
    0 or >= T; otherwise ``steps`` of them evenly spaced from T down to 1."""
    if steps is not None and steps < 0:
        raise ValueError(f"steps must be >= 0 (0 or None: all {timesteps}), got {steps}")
    if steps is None or steps == 0 or steps >= timesteps:
        return list(range(timesteps, -1, -1))
    grid = np.floor(np.linspace(timesteps, 1, steps) + 0.5).astype(np.int64)  # distinct
    return [int(t) for t in grid] + [0]


def reverse_coefficients(
    abar_t: float, abar_s: float, reverse_var: str
) -> tuple[float, float, float]:
    """(c_x0, c_zt, variance) of the step t -> s < t: z_s = c_x0 x0_hat + c_zt z_t + sqrt(var)
    noise (module docstring; for s = t - 1 Ho et al.'s eq. 7)."""
    a = abar_t / abar_s
    c_x0 = math.sqrt(abar_s) * (1 - a) / (1 - abar_t)
    c_zt = math.sqrt(a) * (1 - abar_s) / (1 - abar_t)
    var = (1 - abar_s) / (1 - abar_t) * (1 - a) if reverse_var == "posterior" else 1 - a
    return c_x0, c_zt, var


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding [B, dim] of integer timesteps (Ho et al.; the study's formula)."""
    half = dim // 2
    freqs = torch.exp(
        -math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=t.device)
        / max(half - 1, 1)
    )
    arg = t.float()[:, None] * freqs[None, :]
    emb = torch.cat([torch.sin(arg), torch.cos(arg)], 1)
    return F.pad(emb, (0, 1)) if dim % 2 else emb


# ---------------------------------------------------------------------------------------------
# PCA per chromosome
# ---------------------------------------------------------------------------------------------


@dataclass
class PcaFit:
    """Per-chromosome PCA of a cohort, float64: ``mean`` [M] SNP means (missing left out),
    ``components[c]`` [k_c, M_c] orthonormal rows over chromosome c's SNPs (``groups[c]``),
    ``score_sd[c]`` [k_c] training SD of each score, ``explained[c]`` the kept variance fraction,
    ``total_variance[c]`` the chromosome's summed SNP variance (N - 1 denominator)."""

    mean: torch.Tensor
    components: list[torch.Tensor]
    score_sd: list[torch.Tensor]
    explained: list[float]
    total_variance: list[float]

    @property
    def n_components(self) -> list[int]:
        return [int(c.shape[0]) for c in self.components]


def n_kept(eigenvalues: torch.Tensor, variance: float, max_components: int = 0) -> int:
    """How many leading eigenvalues (descending, float64) explain ``variance`` of their sum:
    the smallest k with cumsum[k - 1] >= variance * total, capped by ``max_components`` (> 0)
    and by the count of numerically non-zero eigenvalues."""
    lam = eigenvalues.clamp(min=0)
    total = float(lam.sum())
    if total <= 0:
        return 0
    n_pos = int((lam > lam[0] * 1e-10).sum())
    frac = torch.cumsum(lam, 0) / total
    k = int(torch.searchsorted(frac, torch.tensor([variance * (1 - 1e-12)], dtype=lam.dtype)))
    k = min(k + 1, n_pos)
    return min(k, max_components) if max_components > 0 else k


def _flip_signs(components: torch.Tensor) -> torch.Tensor:
    """Make each row's largest-magnitude entry positive (a deterministic sign, like sklearn)."""
    if components.shape[0] == 0:
        return components
    pivot = components.gather(1, components.abs().argmax(1, keepdim=True))
    return components * torch.where(pivot < 0, -1.0, 1.0).to(components.dtype)


def fit_pca(
    packed: torch.Tensor,
    n_snps: int,
    groups: list[np.ndarray],
    variance: float,
    max_components: int = 0,
    block_rows: int = 4096,
) -> PcaFit:
    """PCA of each SNP group (chromosome) of a packed cohort ``uint8 [N, ceil(M/4)]``, in float64
    on the CPU, ``block_rows`` individuals unpacked at a time (module docstring: covariance route
    for M_c <= N, Gram route otherwise). Missing genotypes count as their SNP's mean (0 for a SNP
    with no called genotype)."""
    n = packed.shape[0]
    packed = packed.cpu()
    blocks = [(r, min(r + block_rows, n)) for r in range(0, n, block_rows)]
    sums = torch.zeros(n_snps, dtype=torch.float64)
    counts = torch.zeros(n_snps, dtype=torch.float64)
    for r0, r1 in blocks:
        g = codec.unpack(packed[r0:r1], n_snps)
        ok = g >= 0
        sums += torch.where(ok, g, 0).sum(0, dtype=torch.float64)
        counts += ok.sum(0, dtype=torch.float64)
    mean = torch.where(counts > 0, sums / counts.clamp(min=1), 0.0)
    index = [torch.as_tensor(np.asarray(idx, dtype=np.int64)) for idx in groups]

    def centred(g: torch.Tensor, c: int) -> torch.Tensor:
        x = g[:, index[c]]
        return torch.where(x >= 0, x.double() - mean[index[c]], 0.0)

    cov = {c: torch.zeros(len(i), len(i), dtype=torch.float64)
           for c, i in enumerate(index) if len(i) <= n}  # fmt: skip
    if cov:
        for r0, r1 in blocks:
            g = codec.unpack(packed[r0:r1], n_snps)
            for c in cov:
                x = centred(g, c)
                cov[c] += x.T @ x
    components, score_sd, explained, totals = [], [], [], []
    for c, idx in enumerate(index):
        if c in cov:
            lam, vec = torch.linalg.eigh(cov.pop(c))
            lam, vec = lam.flip(0), vec.flip(1)
            k = n_kept(lam, variance, max_components)
            comp = vec[:, :k].T.contiguous()
        else:
            lam, comp = _gram_pca(packed, n_snps, blocks, lambda g, c=c: centred(g, c),
                                  len(idx), variance, max_components)  # fmt: skip
            k = comp.shape[0]
        lam = lam.clamp(min=0)
        total = float(lam.sum())
        components.append(_flip_signs(comp))
        score_sd.append(torch.sqrt(lam[:k] / max(n - 1, 1)))
        explained.append(float(lam[:k].sum()) / total if total > 0 else 0.0)
        totals.append(total / max(n - 1, 1))
    return PcaFit(mean, components, score_sd, explained, totals)


def _gram_pca(
    packed: torch.Tensor,
    n_snps: int,
    blocks: list[tuple[int, int]],
    centred: Callable[[torch.Tensor], torch.Tensor],
    m: int,
    variance: float,
    max_components: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvalues (descending) and kept components [k, m] of one group from its N x N Gram
    matrix G = Xc Xc^T, built block pair by block pair; components = Lambda^-1/2 U^T Xc."""
    n = blocks[-1][1]
    gram = torch.zeros(n, n, dtype=torch.float64)
    for i, (a0, a1) in enumerate(blocks):
        xi = centred(codec.unpack(packed[a0:a1], n_snps))
        for b0, b1 in blocks[: i + 1]:
            xj = xi if b0 == a0 else centred(codec.unpack(packed[b0:b1], n_snps))
            prod = xi @ xj.T
            gram[a0:a1, b0:b1] = prod
            gram[b0:b1, a0:a1] = prod.T
    lam, u = torch.linalg.eigh(gram)
    lam, u = lam.flip(0), u.flip(1)
    k = n_kept(lam, variance, max_components)
    comp = torch.zeros(k, m, dtype=torch.float64)
    if k:
        for b0, b1 in blocks:
            comp += u[b0:b1, :k].T @ centred(codec.unpack(packed[b0:b1], n_snps))
        comp /= torch.sqrt(lam[:k])[:, None]
    return lam, comp


# ---------------------------------------------------------------------------------------------
# the model
# ---------------------------------------------------------------------------------------------


class NoisePredictor(nn.Module):
    """The study's eps_theta: [z_t, time emb, cond emb] -> Linear-LayerNorm-ReLU layers, the two
    embeddings concatenated again before layer 2, plus a linear skip from the input."""

    def __init__(self, dim: int, widths: list[int], time_dim: int, cond_in: int,
                 cond_dim: int) -> None:  # fmt: skip
        super().__init__()
        self.time_dim = time_dim
        self.cond_proj = nn.Linear(cond_in, cond_dim) if cond_in > 0 else None
        emb = time_dim + (cond_dim if cond_in > 0 else 0)
        in_dim = dim + emb
        self.layers = nn.ModuleList()
        self.norms = nn.ModuleList()
        prev = in_dim
        for i, w in enumerate(widths):
            self.layers.append(nn.Linear(prev + (emb if i == 1 else 0), w))
            self.norms.append(nn.LayerNorm(w))
            prev = w
        self.out = nn.Linear(prev, dim)
        self.skip = nn.Linear(in_dim, dim)

    def forward(self, z: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        """Predicted noise [B, K] from z_t [B, K], integer t [B] and cond features [B, F]."""
        e = timestep_embedding(t, self.time_dim)
        if self.cond_proj is not None:
            e = torch.cat([e, self.cond_proj(cond)], 1)
        x_in = torch.cat([z, e], 1)
        h = x_in
        for i, (lin, norm) in enumerate(zip(self.layers, self.norms, strict=True)):
            if i == 1:
                h = torch.cat([h, e], 1)
            h = F.relu(norm(lin(h)))
        return self.out(h) + self.skip(x_in)


def _seed_mix(seed: int, offset: int) -> int:
    return (int(seed) * 0x9E3779B97F4A7C15 + int(offset) * 0xBF58476D1CE4E5B9 + 7) % 2**63


class PcaDDPM(nn.Module):
    """Gaussian DDPM over standardised per-chromosome PCA scores (module docstring).

    ``groups`` are the SNP indices of each chromosome, ``n_components`` the kept components of
    each; the PCA buffers (``snp_mean``, ``loadings``, ``score_sd``) are zeros until `set_pca`
    or ``load_state_dict`` fills them."""

    def __init__(self, config: Config, groups: list[np.ndarray], n_components: list[int],
                 traits: list[dict] | None = None) -> None:  # fmt: skip
        super().__init__()
        check_config(config)
        if len(groups) != len(n_components):
            raise ValueError(f"{len(groups)} SNP groups but {len(n_components)} component counts")
        self.config = config
        self.traits = list(traits or [])
        sizes = [len(g) for g in groups]
        for c, (k, m) in enumerate(zip(n_components, sizes, strict=True)):
            if not 0 <= k <= m:
                raise ValueError(f"group {c}: {k} components for {m} SNPs")
        self.n_components = int(sum(n_components))
        if self.n_components == 0:
            raise ValueError("pca-ddpm: no principal component kept (no SNP varies)")
        order = np.concatenate([np.asarray(g, dtype=np.int64) for g in groups])
        m = len(order)
        if not np.array_equal(np.sort(order), np.arange(m)):
            raise ValueError("groups must partition the SNPs 0..M-1")
        # (k, m_c, loading offset, SNP offset in chromosome order, score offset) per chromosome
        self._chunks: list[tuple[int, int, int, int, int]] = []
        lo = so = ko = 0
        for k, mc in zip(n_components, sizes, strict=True):
            self._chunks.append((int(k), mc, lo, so, ko))
            lo, so, ko = lo + k * mc, so + mc, ko + k
        order_t = torch.from_numpy(order)
        self.register_buffer("order", order_t, persistent=False)
        self.register_buffer("inverse", torch.argsort(order_t), persistent=False)
        self.register_buffer("snp_mean", torch.zeros(m))
        self.register_buffer("loadings", torch.zeros(lo))
        self.register_buffer("score_sd", torch.ones(ko))
        self.abar = alphas_bar(config.timesteps, config.beta_start, config.beta_end)  # CPU f64
        widths = parse_ints(config.hidden, "hidden", min_count=2)
        self.net = NoisePredictor(self.n_components, widths, config.time_dim,
                                  cond_width(self.traits), config.cond_dim)

    @property
    def n_snps(self) -> int:
        return int(self.snp_mean.shape[0])

    def optim_groups(self) -> list[OptimGroup]:
        return default_groups(self)

    def set_pca(self, fit: PcaFit) -> None:
        """Copy a `fit_pca` result (same groups and component counts) into the buffers."""
        if fit.n_components != [c[0] for c in self._chunks]:
            raise ValueError(f"fit has components {fit.n_components}, model "
                             f"{[c[0] for c in self._chunks]}")
        with torch.no_grad():
            self.snp_mean.copy_(fit.mean)
            self.loadings.copy_(torch.cat([c.reshape(-1) for c in fit.components]))
            sd = torch.cat(fit.score_sd)
            self.score_sd.copy_(torch.where(sd > 0, sd, torch.ones_like(sd)))

    def _loading(self, chunk: tuple[int, int, int, int, int]) -> torch.Tensor:
        k, mc, lo, _, _ = chunk
        return self.loadings[lo : lo + k * mc].view(k, mc)

    def encode(self, genotypes: torch.Tensor) -> torch.Tensor:
        """Scores float32 [B, K] of genotypes int8 [B, M] (missing -> the SNP mean), standardised
        when ``config.standardize``. Always float32, also under autocast."""
        with torch.autocast(genotypes.device.type, enabled=False):
            x = genotypes.float() - self.snp_mean
            x = torch.where(genotypes >= 0, x, torch.zeros_like(x))[:, self.order]
            parts = []
            for ch in self._chunks:
                k, mc, _, so, _ = ch
                if k:
                    parts.append(x[:, so : so + mc] @ self._loading(ch).T)
            z = torch.cat(parts, 1)
            return z / self.score_sd if self.config.standardize else z

    def dosages(self, z: torch.Tensor) -> torch.Tensor:
        """Back-projection float32 [B, M] of scores [B, K]: per chromosome scores @ components
        + mean (the SNP mean alone where a chromosome kept no component)."""
        with torch.autocast(z.device.type, enabled=False):
            s = z.float() * self.score_sd if self.config.standardize else z.float()
            xs = torch.zeros(z.shape[0], self.n_snps, device=z.device)
            for ch in self._chunks:
                k, mc, _, so, ko = ch
                if k:
                    xs[:, so : so + mc] = s[:, ko : ko + k] @ self._loading(ch)
            return xs[:, self.inverse] + self.snp_mean

    def genotype_probs(self, dosage: torch.Tensor) -> torch.Tensor:
        """float64 [..., 3]: softmax over k of -(dosage - k)^2 / tau."""
        k = torch.arange(3, dtype=torch.float64, device=dosage.device)
        return torch.softmax(-((dosage.double()[..., None] - k) ** 2) / self.config.tau, -1)

    def decode(self, z: torch.Tensor, rows: torch.Tensor, seed: int) -> torch.Tensor:
        """Genotypes int8 [B, M] from scores: round-and-clip or the tau draw (uniforms keyed by
        (seed, row, SNP) on the last stream)."""
        d = self.dosages(z)
        if self.config.decode == "round":
            return torch.round(d).clamp(0, 2).to(torch.int8)
        u = row_uniform(seed, rows, self.n_snps, _DRAW_STREAM)
        out = torch.empty(d.shape, dtype=torch.int8, device=d.device)
        for j in range(0, self.n_snps, _DRAW_COLS):
            cols = slice(j, j + _DRAW_COLS)
            out[:, cols] = categorical_draw(self.genotype_probs(d[:, cols]), u[:, cols])
        return out

    def _cond(self, cond: torch.Tensor | None, batch: int, device: torch.device):
        if not self.traits:
            if cond is not None:
                raise ValueError("cond given to a model built without traits")
            return None
        return cond_features(cond, self.traits, batch).to(device)

    def loss(
        self,
        packed: torch.Tensor,
        row_ids: torch.Tensor,
        cond: torch.Tensor | None = None,
        *,
        seed: int = 0,
        offset: int = 0,
    ) -> torch.Tensor:
        """Epsilon-prediction MSE of a packed batch uint8 [B, ceil(M/4)]. t is stratified over
        the batch in 1..T and the noise drawn from generators seeded by (seed, offset), so a step
        is reproducible (``row_ids`` are not needed: rows are exchangeable here)."""
        b, dev = packed.shape[0], packed.device
        feats = self._cond(cond, b, dev)
        z0 = self.encode(codec.unpack(packed, self.n_snps))
        mix = _seed_mix(seed, offset)
        g = torch.Generator().manual_seed(mix)
        u = (torch.rand(1, generator=g, dtype=torch.float64) + torch.arange(b) / b) % 1.0
        t = (u * self.config.timesteps).long().clamp(max=self.config.timesteps - 1) + 1
        ab = self.abar[t].to(dev)
        g_dev = torch.Generator(device=dev).manual_seed(mix ^ 0x5DEECE66D)
        eps = torch.randn(z0.shape, generator=g_dev, device=dev)
        z_t = (ab.sqrt()[:, None] * z0 + (1 - ab).sqrt()[:, None] * eps).float()
        pred = self.net(z_t, t.to(dev), feats)
        return F.mse_loss(pred.float(), eps)

    @torch.no_grad()
    def sample(
        self,
        n: int,
        cond: torch.Tensor | None = None,
        *,
        steps: int | None = None,
        guidance: float = 0.0,
        seed: int = 0,
        row_offset: int = 0,
    ) -> torch.Tensor:
        """n synthetic individuals, int8 [n, M] genotypes 0/1/2. ``steps``: None, 0 or >= T runs
        all T reverse steps (the study), fewer a strided subsequence (module docstring). Row i is
        keyed by ``row_offset + i``. No guidance: ``guidance`` must be 0."""
        if guidance != 0:
            raise ValueError("pca-ddpm has no classifier-free guidance; guidance must be 0")
        dev = self.snp_mean.device
        feats = self._cond(cond, n, dev)
        rows = torch.arange(row_offset, row_offset + n, dtype=torch.int64, device=dev)
        grid = timestep_grid(self.config.timesteps, steps)
        abar = self.abar.tolist()
        z = row_normal(seed, rows, self.n_components, 0)
        for j, (t, s) in enumerate(zip(grid[:-1], grid[1:], strict=True), start=1):
            eps = self.net(z, torch.full((n,), t, dtype=torch.int64, device=dev), feats).float()
            c_x0, c_zt, var = reverse_coefficients(abar[t], abar[s], self.config.reverse_var)
            x0 = (z - math.sqrt(1 - abar[t]) * eps) / math.sqrt(abar[t])
            z = c_x0 * x0 + c_zt * z
            if var > 0:
                z = z + math.sqrt(var) * row_normal(seed, rows, self.n_components, j)
        return self.decode(z, rows, seed)


# ---------------------------------------------------------------------------------------------
# build
# ---------------------------------------------------------------------------------------------


def chromosome_groups(snps: SnpTable) -> list[np.ndarray]:
    """SNP indices of each chromosome, chromosomes in order of first appearance."""
    return [np.flatnonzero(snps.chromosome == c) for c in snps.chromosome_names()]


def build(meta: dict, snps: SnpTable, data: TrainingData | None) -> PcaDDPM:
    """The model of a run: fits the PCA on ``data`` and records the kept component counts in
    ``meta["fitted"]`` (``pca_chromosomes``, ``pca_components``, ``pca_explained``), or, with
    ``data`` None (loading a checkpoint), takes the counts from there and leaves the buffers to
    ``load_state_dict``."""
    given = dict(meta.get("model") or {})
    unknown = sorted(set(given) - {f.name for f in fields(Config)})
    if unknown:
        raise ValueError(f"pca-ddpm: unknown model settings {unknown}")
    cfg = Config(**given)
    check_config(cfg)
    groups = chromosome_groups(snps)
    if meta.get("n_snps") is not None and int(meta["n_snps"]) != len(snps):
        raise ValueError(f"meta n_snps {meta['n_snps']} != {len(snps)} SNPs in the table")
    fit = None
    if data is not None:
        if data.n_snps != len(snps):
            raise ValueError(f"data has {data.n_snps} SNPs, the SNP table {len(snps)}")
        fit = fit_pca(data.packed, data.n_snps, groups, cfg.variance, cfg.max_components,
                      cfg.fit_rows)  # fmt: skip
        if meta.get("fitted") is None:
            meta["fitted"] = {}
        meta["fitted"]["pca_chromosomes"] = snps.chromosome_names()
        meta["fitted"]["pca_components"] = fit.n_components
        meta["fitted"]["pca_explained"] = [round(e, 6) for e in fit.explained]
        sizes = fit.n_components
    else:
        fitted = meta.get("fitted") or {}
        if fitted.get("pca_components") is None:
            raise ValueError("pca-ddpm: meta['fitted']['pca_components'] is missing; build with "
                             "data first")
        names = fitted.get("pca_chromosomes")
        if names is not None and list(names) != snps.chromosome_names():
            raise ValueError(f"pca-ddpm: fitted on chromosomes {names}, the SNP table has "
                             f"{snps.chromosome_names()}")
        sizes = [int(k) for k in fitted["pca_components"]]
    torch.manual_seed(int(meta["train"]["seed"]))
    model = PcaDDPM(cfg, groups, sizes, meta.get("traits") or [])
    if fit is not None:
        model.set_pca(fit)
    return model
