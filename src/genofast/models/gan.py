"""GAN and conditional WGAN-GP with Gumbel-softmax genotype outputs, as in the reference study.

Xie et al., GigaScience 2026 (arXiv 2508.09212), compared both on the flattened one-hot genotype
(3 values per SNP) with dense residual MLPs; the conditional WGAN-GP was their best model on the
whole cattle genome. Model names: ``gan`` and ``wgan``.

Generator: z ~ N(0, I) [latent_dim] (+ condition features) -> residual MLP -> logits [B, M, 3]
-> Gumbel-softmax (Jang et al. 2017; Maddison et al. 2017), soft (hard=False) so the critic's
gradient reaches the generator. The temperature anneals linearly from ``tau_start`` (1) at step 0
to ``tau_end`` (0.1) at the trainer's ``max_steps`` (the study annealed per epoch).

Real inputs: the batch's genotypes one-hot, a missing genotype drawn from its SNP's training
genotype frequencies (a soft vector there would tell the critic the row is real), then jittered
as in the study: U(0, jitter) added to the two zero entries and their sum taken from the hot one,
so rows still sum to 1 and real rows leave the simplex's vertices, which the generator's soft
rows never reach.

``gan`` (Goodfellow et al. 2014): discriminator MLP -> logit (the study's sigmoid + BCE, computed
as BCE with logits for stability); real -> 1, fake -> 0; the generator minimises the
non-saturating BCE(D(G(z)), 1). ``wgan`` (Gulrajani et al. 2017, WGAN-GP): critic without batch
norm or sigmoid; critic loss E[D(fake)] - E[D(real)] + lambda E[(||grad_x D(x_hat)||_2 - 1)^2] on
x_hat = a real + (1 - a) fake, a ~ U(0, 1) per row; generator loss -E[D(G(z))].

Players take turns by the trainer's step number (``offset``, counted from 1): step o trains the
critic (discriminator) when ``(o - 1) % (n_critic + 1) < n_critic`` and the generator otherwise.
``gan`` (n_critic = 1) alternates by parity, odd steps the discriminator, as the study's one D
step then one G step per batch; ``wgan`` (n_critic = 5) runs five critic steps, then one
generator step. Each critic step sees a fresh real batch (Gulrajani et al., Algorithm 1; the
study reused one batch for its five). ``max_steps`` counts both players' steps.

Conditioning (continuous, binary, categorical traits): `base.cond_features` concatenated to the
input of every block of both networks (the study concatenated sex and height the same way). The
generator of a conditional run is given the real batch's conditions.

MLP sizes (the study's "proportional neurons"): hidden width k = 3M // div_k, ``generator_div`` and
``critic_div`` listing the divisors from input to output (floor ``min_width``). Blocks: linear
(+ batch norm in the generator) -> LeakyReLU, then per further width a residual block (two linears,
batch norm in the generator only: a critic with batch norm would couple the rows that the
gradient penalty treats one at a time) and a linear transition, then the output linear.

Sampling: z from `row_normal` keyed by (seed, row), genotypes drawn by `categorical_draw` from
softmax(logits) with `row_uniform`. The study sampled with hard Gumbel-softmax + argmax, which is
a draw from softmax(logits) whatever the temperature (the Gumbel-max trick): the same
distribution, here drawn exactly and reproducibly. ``steps`` means nothing to a GAN and is
ignored; there is no guidance (ValueError). A conditional model needs ``cond`` (no null
condition was trained). The generator samples in eval mode (batch norm running statistics), so
rows do not depend on each other and a seed gives the same cohort for any batch split.

Patch backbone (``backbone="patch"``): generator = `PatchTransformer` with ``latent_dim`` set,
all-MASK input tokens, t = 0, z through its adaLN conditioning, per-SNP logits out; critic =
`PatchTransformer.pooled` on the soft one-hot [B, M, 3], then a linear to a scalar. Traits enter
through the backbone's own condition embedding; the MLP settings are unused. The penalty's second
derivative through attention runs on the math SDPA backend (the fused kernels have no double
backward).

Training randomness (z, jitter, imputation, Gumbel noise, interpolation weights) comes from a
``torch.Generator`` on the batch's device seeded by (seed, offset): a step is reproducible.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from genofast.io.tables import SnpTable
from genofast.models.backbone import BackboneConfig, PatchTransformer, Trait
from genofast.models.base import (
    OptimGroup,
    TrainingData,
    categorical_draw,
    cond_features,
    cond_width,
    parse_ints,
    row_normal,
    row_uniform,
)
from genofast.models.diffusion import genotype_frequencies
from genofast.ops import codec
from genofast.ops.diffusion import MASK

BACKBONES = ("mlp", "patch")
BETAS = (0.5, 0.9)  # Adam betas of both players (the study's, after Gulrajani et al.)


@dataclass
class GANConfig:
    """Model ``gan``. Defaults: the study's GAN of cattle chromosome 14 (1,771 SNPs)."""

    backbone: str = "mlp"  # "mlp" (the study's) or "patch" (genofast's patch transformer)
    latent_dim: int = 128
    generator_div: str = "6,3"  # generator hidden widths 3M // d, input side first
    critic_div: str = "5,10"  # discriminator / critic hidden widths 3M // d
    min_width: int = 16  # floor of every hidden width (tiny panels)
    negative_slope: float = 0.05  # LeakyReLU
    batch_norm: bool = True  # batch norm in the generator's blocks (never in the critic)
    jitter: float = 0.025  # U(0, jitter) on the zero entries of the real one-hot
    tau_start: float = 1.0  # Gumbel-softmax temperature at step 0 ...
    tau_end: float = 0.1  # ... and at max_steps, linear in between
    n_critic: int = 1  # critic steps per generator step
    generator_lr_scale: float = 5.0  # x the trainer's lr (study: lr_g 5e-4 = 5 x lr_d 1e-4)
    critic_lr_scale: float = 1.0


@dataclass
class WGANConfig(GANConfig):
    """Model ``wgan``. Defaults: the study's conditional WGAN-GP of 3,493 human SNPs."""

    generator_div: str = "24,12,6"
    critic_div: str = "8,16,32"
    n_critic: int = 5
    generator_lr_scale: float = 1.0  # study: lr_g = lr_d = 1e-4
    gp_lambda: float = 10.0  # gradient penalty weight


MODEL_CONFIGS: dict[str, type] = {"gan": GANConfig, "wgan": WGANConfig}

# The study's settings, from its code (github.com/SihanXXX/DiscreteGenoGen, models/GAN_GS and
# models/WGAN_GS, one *_configs.py per data set): Adam, constant learning rate, betas (0.5, 0.9),
# no EMA, checkpoints chosen on the F1 of k-NN precision and recall on a validation split.
_STUDY_TRAIN = {"warmup_steps": 0, "min_lr_ratio": 1.0, "weight_decay": 0.0, "ema_decay": 0.0,
                "select": "knn_f1"}
_HUMAN_SIZES = {"latent_dim": 128, "generator_div": "24,12,6", "critic_div": "8,16,32"}
PRESETS: dict[str, dict] = {
    # GAN, cattle chromosome 14 (1,771 SNPs): latent 128, generator 3M/6, 3M/3, discriminator
    # 3M/5, 3M/10; lr_d 1e-4, lr_g 5e-4, batch 256 (cows/CH14/gan_cow_ch14_configs.py).
    "study:gan-cow-ch14": {
        "model": "gan",
        "train": {**_STUDY_TRAIN, "batch_size": 256, "lr": 1e-4},
        "model_config": {"latent_dim": 128, "generator_div": "6,3", "critic_div": "5,10",
                         "generator_lr_scale": 5.0},
    },
    # GAN on the 3,493-SNP human region (sex, height): latent 128, generator 3M/24, 3M/12, 3M/6,
    # discriminator 3M/8, 3M/16, 3M/32; lr 1e-4 both, batch 512
    # (human/ENSEMBL/gan_human_en_configs.py).
    "study:gan-human": {
        "model": "gan",
        "train": {**_STUDY_TRAIN, "batch_size": 512, "lr": 1e-4},
        "model_config": {**_HUMAN_SIZES, "generator_lr_scale": 1.0},
    },
    # Conditional WGAN-GP, all 29 cattle autosomes (50,161 SNPs): latent 256, generator
    # 1045/2090/4180 (3M/144, 3M/72, 3M/36), critic 4180/2090/1045, about 1.33 B parameters;
    # lr 1e-4 both, batch 128, n_critic 5, lambda 10 (cows/ALL/wgan_cow_all_configs.py).
    "study:wgan-cow-all": {
        "model": "wgan",
        "train": {**_STUDY_TRAIN, "batch_size": 128, "lr": 1e-4},
        "model_config": {"latent_dim": 256, "generator_div": "144,72,36",
                         "critic_div": "36,72,144", "n_critic": 5, "gp_lambda": 10.0,
                         "generator_lr_scale": 1.0},
    },
    # Conditional WGAN-GP on the 3,493-SNP human region (sex, height), the study's size for a
    # ~4,000-SNP panel: the human GAN's widths; lr 1e-4 both, batch 512, n_critic 5, lambda 10
    # (human/ENSEMBL/wgan_human_en_configs.py).
    "study:wgan-human": {
        "model": "wgan",
        "train": {**_STUDY_TRAIN, "batch_size": 512, "lr": 1e-4},
        "model_config": {**_HUMAN_SIZES, "n_critic": 5, "gp_lambda": 10.0,
                         "generator_lr_scale": 1.0},
    },
}


# ---------------------------------------------------------------------------------------------
# schedules and the pieces of the objectives
# ---------------------------------------------------------------------------------------------


def hidden_widths(n_snps: int, divisors: str, min_width: int = 1,
                  name: str = "divisors") -> list[int]:
    """Widths ``max(min_width, 3 * n_snps // d)`` for the comma-separated divisors d (the
    setting ``name``, for the error message)."""
    return [max(min_width, 3 * n_snps // d) for d in parse_ints(divisors, name, 1)]


def temperature(step: int, max_steps: int, start: float = 1.0, end: float = 0.1) -> float:
    """Gumbel-softmax temperature: ``start`` at step 0, linear to ``end`` at ``max_steps``."""
    frac = min(max(step / max(max_steps, 1), 0.0), 1.0)
    return start + (end - start) * frac


def trains_critic(step: int, n_critic: int) -> bool:
    """True when trainer step ``step`` (from 1) trains the critic: n_critic critic steps, then
    one generator step, repeated."""
    return (step - 1) % (n_critic + 1) < n_critic


def gumbel_softmax(logits: torch.Tensor, tau: float, generator: torch.Generator) -> torch.Tensor:
    """Soft Gumbel-softmax sample softmax((logits + g) / tau) over the last axis, g standard
    Gumbel noise from ``generator`` (F.gumbel_softmax would draw from the global RNG)."""
    u = torch.rand(logits.shape, generator=generator, device=logits.device)
    g = -torch.log(-torch.log(u.clamp_(min=torch.finfo(torch.float32).tiny)))
    return ((_at_least_f32(logits) + g) / tau).softmax(-1)


def input_grad_norm(critic: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                    create_graph: bool = True) -> torch.Tensor:
    """||d critic(x)_i / d x_i||_2 per row, float32 [B] (float64 for float64 x). The critic must
    score rows independently (no batch norm), so the gradient of the sum is per row."""
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x).sum(), x, create_graph=create_graph)
    return _at_least_f32(grad.flatten(1)).norm(dim=1)


def gradient_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor,
                     fake: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """WGAN-GP penalty mean_i (||grad D(x_hat_i)||_2 - 1)^2 on x_hat = alpha real + (1 - alpha)
    fake (``alpha`` [B], one weight per row), differentiable in the critic's parameters."""
    a = alpha.to(real.dtype).view(-1, *[1] * (real.dim() - 1))
    x_hat = a * real.detach() + (1 - a) * fake.detach()
    return ((input_grad_norm(critic, x_hat) - 1) ** 2).mean()


def real_onehot(x: torch.Tensor, freq: torch.Tensor, jitter: float,
                generator: torch.Generator) -> torch.Tensor:
    """Jittered one-hot float32 [B, M, 3] of genotypes int8 [B, M]; a missing (-1) genotype is
    first drawn from its SNP's frequencies ``freq`` [M, 3]."""
    dev = x.device
    u = torch.rand(x.shape, generator=generator, dtype=torch.float64, device=dev)
    drawn = categorical_draw(freq.expand(*x.shape, 3), u)
    onehot = F.one_hot(torch.where(x < 0, drawn, x).long(), 3).float()
    noise = jitter * torch.rand(onehot.shape, generator=generator, device=dev) * (1 - onehot)
    return onehot + noise - onehot * noise.sum(-1, keepdim=True)


@contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """Forward passes inside record no graph for ``module``'s parameters (input gradients still
    flow), so a generator step spends nothing on the critic's weight gradients."""
    params = [p for p in module.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


def _at_least_f32(x: torch.Tensor) -> torch.Tensor:
    """float32 of a bf16 / fp16 result (autocast), float64 kept (gradient checks)."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def _step_seed(seed: int, offset: int) -> int:
    return (int(seed) * 0x9E3779B97F4A7C15 + int(offset) * 0xBF58476D1CE4E5B9 + 7) % 2**63


# ---------------------------------------------------------------------------------------------
# networks
# ---------------------------------------------------------------------------------------------


class ResBlock(nn.Module):
    """x -> LeakyReLU(x + Linear(act(BN(Linear(x))))) (batch norms optional), width kept."""

    def __init__(self, width: int, slope: float, batch_norm: bool) -> None:
        super().__init__()
        norm = (lambda: nn.BatchNorm1d(width)) if batch_norm else nn.Identity
        self.block = nn.Sequential(nn.Linear(width, width), norm(), nn.LeakyReLU(slope),
                                   nn.Linear(width, width), norm())
        self.act = nn.LeakyReLU(slope)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.block(x))


class CondMLP(nn.Module):
    """The study's residual MLP: input -> widths[0] -> ... -> widths[-1] -> output, the condition
    features concatenated to the input of every stage."""

    def __init__(self, n_in: int, widths: list[int], n_out: int, n_cond: int, slope: float,
                 batch_norm: bool) -> None:
        super().__init__()
        first = [nn.Linear(n_in + n_cond, widths[0])]
        first += [nn.BatchNorm1d(widths[0])] if batch_norm else []
        self.initial = nn.Sequential(*first, nn.LeakyReLU(slope))
        self.blocks = nn.ModuleList(
            nn.Sequential(ResBlock(w + n_cond, slope, batch_norm), nn.Linear(w + n_cond, w_next),
                          nn.LeakyReLU(slope))
            for w, w_next in zip(widths[:-1], widths[1:], strict=True)
        )
        self.final = nn.Linear(widths[-1] + n_cond, n_out)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        h = self.initial(torch.cat([x, c.to(x.dtype)], 1))
        for blk in self.blocks:
            h = blk(torch.cat([h, c.to(h.dtype)], 1))
        return self.final(torch.cat([h, c.to(h.dtype)], 1))


class MLPGenerator(nn.Module):
    """z [B, latent], condition features [B, C] -> logits [B, M, 3]."""

    def __init__(self, n_snps: int, latent_dim: int, widths: list[int], n_cond: int,
                 slope: float, batch_norm: bool) -> None:
        super().__init__()
        self.n_snps = n_snps
        self.net = CondMLP(latent_dim, widths, 3 * n_snps, n_cond, slope, batch_norm)

    def forward(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self.net(z, c).view(z.shape[0], self.n_snps, 3)


class MLPCritic(nn.Module):
    """Soft one-hot [B, M, 3], condition features [B, C] -> score [B] (no batch norm)."""

    def __init__(self, n_snps: int, widths: list[int], n_cond: int, slope: float) -> None:
        super().__init__()
        self.net = CondMLP(3 * n_snps, widths, 1, n_cond, slope, batch_norm=False)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1), c)[:, 0]


class PatchGenerator(nn.Module):
    """z [B, latent], traits [B, K] -> logits [B, M, 3]: a latent-conditioned patch transformer
    on all-MASK tokens at t = 0."""

    def __init__(self, backbone: PatchTransformer) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, z: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        b, dev = z.shape[0], z.device
        x = torch.full((b, self.backbone.n_snps), MASK, dtype=torch.int8, device=dev)
        return self.backbone(x, torch.zeros(b, device=dev), cond, latent=z)


class PatchCritic(nn.Module):
    """Soft one-hot [B, M, 3], traits [B, K] -> score [B]: mean patch state, then a linear."""

    def __init__(self, backbone: PatchTransformer) -> None:
        super().__init__()
        self.backbone = backbone
        self.out = nn.Linear(backbone.config.width, 1)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        t = torch.zeros(x.shape[0], device=x.device)
        return self.out(self.backbone.pooled(x, t, cond))[:, 0]


# ---------------------------------------------------------------------------------------------
# the model
# ---------------------------------------------------------------------------------------------


class GumbelGAN(nn.Module):
    """Generator + critic over one-hot genotypes: ``gan`` (BCE) or ``wgan`` (WGAN-GP)."""

    def __init__(
        self,
        config: GANConfig,
        n_snps: int,
        *,
        wasserstein: bool,
        traits: list[dict] | None = None,
        max_steps: int = 1,
        freq: torch.Tensor | None = None,
        snps: SnpTable | None = None,
        backbone: BackboneConfig | None = None,
    ) -> None:
        super().__init__()
        cfg = self.config = config
        if cfg.backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {BACKBONES}, got {cfg.backbone!r}")
        if cfg.latent_dim < 1 or cfg.n_critic < 1:
            raise ValueError("latent_dim and n_critic must be >= 1")
        if not 0 <= cfg.jitter < 0.5:
            raise ValueError(f"jitter must be in [0, 0.5), got {cfg.jitter}")
        if cfg.tau_start <= 0 or cfg.tau_end <= 0:
            raise ValueError("tau_start and tau_end must be > 0")
        if wasserstein and not isinstance(cfg, WGANConfig):
            raise ValueError("a WGAN-GP needs a WGANConfig (gp_lambda)")
        self.wasserstein = wasserstein
        self.critic_name = "critic" if wasserstein else "discriminator"
        self.traits = list(traits or [])
        self.max_steps = int(max_steps)
        self._n_snps = m = int(n_snps)
        if freq is None:
            freq = torch.full((m, 3), 1 / 3)
        if tuple(freq.shape) != (m, 3):
            raise ValueError(f"freq: expected [{m}, 3], got {tuple(freq.shape)}")
        self.register_buffer("freq", freq.to(torch.float32).contiguous())  # persistent
        if cfg.backbone == "mlp":
            n_cond = cond_width(self.traits)
            gw = hidden_widths(m, cfg.generator_div, cfg.min_width, "generator_div")
            cw = hidden_widths(m, cfg.critic_div, cfg.min_width, "critic_div")
            self.generator: nn.Module = MLPGenerator(m, cfg.latent_dim, gw, n_cond,
                                                     cfg.negative_slope, cfg.batch_norm)
            self.critic: nn.Module = MLPCritic(m, cw, n_cond, cfg.negative_slope)
        else:
            if snps is None or len(snps) != m:
                raise ValueError("the patch backbone needs the SNP table (chromosome, position)")
            bcfg = dataclasses.replace(backbone or BackboneConfig(), latent_dim=cfg.latent_dim)
            specs = [Trait(t["name"], t["kind"], t.get("n_levels", 2)) for t in self.traits]
            pos = snps.bp_position.astype(float)
            self.generator = PatchGenerator(PatchTransformer(bcfg, snps.chromosome, pos, specs,
                                                             freq=freq))
            critic_cfg = dataclasses.replace(bcfg, latent_dim=0)
            self.critic = PatchCritic(PatchTransformer(critic_cfg, snps.chromosome, pos, specs,
                                                       freq=freq))

    @property
    def n_snps(self) -> int:
        return self._n_snps

    def temperature(self, step: int) -> float:
        """Gumbel-softmax temperature at trainer step ``step``."""
        return temperature(step, self.max_steps, self.config.tau_start, self.config.tau_end)

    def player(self, step: int) -> str:
        """The optimiser group trainer step ``step`` trains: the critic's or "generator"."""
        return self.critic_name if trains_critic(step, self.config.n_critic) else "generator"

    def cond_input(self, cond: torch.Tensor | None, batch: int) -> torch.Tensor | None:
        """What the networks take as condition: features [B, C] (MLP) or the traits (patch)."""
        dev = self.freq.device
        if cond is not None:
            if not self.traits:
                raise ValueError("cond given to a model built without traits")
            cond = cond.to(dev)
        elif self.traits:
            names = ", ".join(t["name"] for t in self.traits)
            raise ValueError(f"this model is conditional: give cond [{batch}, "
                             f"{len(self.traits)}] ({names}; NaN for missing)")
        if self.config.backbone == "mlp":
            return cond_features(cond, self.traits, batch).to(dev)
        if cond is not None:
            self.generator.backbone.cond_emb.check(cond, batch)
        return cond

    def logits(self, z: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        """Generator logits float32 [B, M, 3] of latents z [B, latent] (``c`` from cond_input)."""
        return _at_least_f32(self.generator(z, c))

    def score(self, x: torch.Tensor, c: torch.Tensor | None,
              double_backward: bool = False) -> torch.Tensor:
        """Critic scores float32 [B] (float64 in a float64 model) of soft one-hots x [B, M, 3].
        ``double_backward``: for the gradient penalty (math attention backend, patch critic)."""
        patch = self.config.backbone == "patch"
        with sdpa_kernel(SDPBackend.MATH) if double_backward and patch else nullcontext():
            return _at_least_f32(self.critic(x, c))

    def fake(self, batch: int, c: torch.Tensor | None, tau: float,
             generator: torch.Generator) -> torch.Tensor:
        """Generated soft one-hot [B, M, 3]: Gumbel-softmax at temperature ``tau``."""
        z = torch.randn(batch, self.config.latent_dim, generator=generator,
                        device=self.freq.device)
        return gumbel_softmax(self.logits(z, c), tau, generator)

    def loss(
        self,
        packed: torch.Tensor,
        row_ids: torch.Tensor,
        cond: torch.Tensor | None = None,
        *,
        seed: int = 0,
        offset: int = 0,
    ) -> dict[str, torch.Tensor]:
        """{player: loss} for the player that trainer step ``offset`` trains (module docstring).
        The noise is keyed by (seed, offset); ``row_ids`` are not needed."""
        b, dev = packed.shape[0], packed.device
        g = torch.Generator(device=dev).manual_seed(_step_seed(seed, offset))
        c = self.cond_input(cond, b)
        tau = self.temperature(offset)
        player = self.player(offset)
        if player == "generator":
            fake = self.fake(b, c, tau, g)
            with frozen(self.critic):
                s = self.score(fake, c)
            if self.wasserstein:
                return {player: -s.mean()}
            return {player: F.binary_cross_entropy_with_logits(s, torch.ones_like(s))}
        real = real_onehot(codec.unpack(packed, self.n_snps), self.freq, self.config.jitter, g)
        with torch.no_grad():
            fake = self.fake(b, c, tau, g)
        c2 = None if c is None else torch.cat([c, c])
        s = self.score(torch.cat([real, fake]), c2)
        s_real, s_fake = s[:b], s[b:]
        if not self.wasserstein:
            ones = torch.ones_like(s_real)
            bce = F.binary_cross_entropy_with_logits
            return {player: bce(s_real, ones) + bce(s_fake, torch.zeros_like(s_fake))}
        alpha = torch.rand(b, generator=g, device=dev)
        gp = gradient_penalty(lambda x: self.score(x, c, double_backward=True), real, fake, alpha)
        return {player: s_fake.mean() - s_real.mean() + self.config.gp_lambda * gp}

    @torch.no_grad()
    def sample(
        self,
        n: int,
        cond: torch.Tensor | None = None,
        *,
        steps: int = 50,
        guidance: float = 0.0,
        seed: int = 0,
        row_offset: int = 0,
    ) -> torch.Tensor:
        """n synthetic individuals, int8 [n, M] genotypes 0/1/2, row i keyed by row_offset + i:
        z by `row_normal` (stream 0), the genotype draw by `row_uniform` (stream 1) from
        softmax(logits). ``steps`` is ignored; ``guidance`` must be 0."""
        if guidance != 0:
            raise ValueError("a GAN has no classifier-free guidance: guidance must be 0")
        dev = self.freq.device
        rows = torch.arange(row_offset, row_offset + n, dtype=torch.int64, device=dev)
        c = self.cond_input(cond, n)
        z = row_normal(seed, rows, self.config.latent_dim, stream=0)
        was_training = self.generator.training
        self.generator.eval()  # batch norm on running statistics: rows independent
        try:
            probs = self.logits(z, c).softmax(-1)
        finally:
            self.generator.train(was_training)
        return categorical_draw(probs, row_uniform(seed, rows, self.n_snps, stream=1))

    def optim_groups(self) -> list[OptimGroup]:
        """"generator" and the critic's group ("critic" / "discriminator"), both Adam betas
        (0.5, 0.9) without weight decay; the WGAN-GP critic is never clipped."""
        cfg = self.config
        return [
            OptimGroup("generator", [p for p in self.generator.parameters() if p.requires_grad],
                       lr_scale=cfg.generator_lr_scale, betas=BETAS, weight_decay=0.0),
            OptimGroup(self.critic_name, [p for p in self.critic.parameters() if p.requires_grad],
                       lr_scale=cfg.critic_lr_scale, betas=BETAS, weight_decay=0.0,
                       clip=not self.wasserstein),
        ]


def build(meta: dict, snps: SnpTable, data: TrainingData | None) -> GumbelGAN:
    """The run's GAN (``meta["train"]["model"]`` "gan" or "wgan"). With ``data`` the missing-value
    frequencies are fitted; without, they come from the checkpoint (load_state_dict)."""
    train = meta["train"]
    name = train["model"]
    if name not in MODEL_CONFIGS:
        raise ValueError(f"genofast.models.gan builds {', '.join(MODEL_CONFIGS)}; got {name!r}")
    cfg_cls = MODEL_CONFIGS[name]
    known = {f.name for f in dataclasses.fields(cfg_cls)}
    given = dict(meta.get("model") or {})
    if set(given) - known:
        raise ValueError(f"unknown {name} settings {sorted(set(given) - known)}; valid: "
                         f"{', '.join(sorted(known))}")
    cfg = cfg_cls(**given)
    n_snps = int(meta.get("n_snps") or len(snps))
    if len(snps) != n_snps:
        raise ValueError(f"the SNP table has {len(snps)} SNPs, the run {n_snps}")
    freq = None
    if data is not None:
        if data.n_snps != n_snps:
            raise ValueError(f"training data has {data.n_snps} SNPs, the run {n_snps}")
        freq = genotype_frequencies(data.packed, n_snps)
    backbone = BackboneConfig(**meta["backbone"]) if meta.get("backbone") else None
    torch.manual_seed(int(train.get("seed", 0)))
    return GumbelGAN(cfg, n_snps, wasserstein=name == "wgan", traits=meta.get("traits") or [],
                     max_steps=int(train.get("max_steps", 1)), freq=freq, snps=snps,
                     backbone=backbone)
