"""Variational autoencoder over one-hot genotypes, as in Xie et al., GigaScience 2026
(arXiv 2508.09212; code: github.com/SihanXXX/DiscreteGenoGen, models/VAE).

The model in one breath (``backbone="mlp"``, the study's)::

    x int8 [B, M] -> one-hot [B, 3M] (a missing genotype: all zero) ++ condition features
      -> encoder: Linear-BatchNorm1d-LeakyReLU(0.05) blocks of the given widths (three equal
         widths in a row: one residual block Linear-BN-LReLU-Linear-BN + skip, then LReLU)
      -> mu, logvar [B, latent];  z = mu + exp(logvar / 2) * eps
      -> decoder (z ++ condition features): the widths mirrored -> Linear -> logits [B, M, 3]

Loss (Kingma & Welling 2014): per-SNP 3-class cross-entropy summed over the called SNPs plus
``beta`` times KL(q(z | x) || N(0, I)), averaged over the batch (the study sums over the batch
as well; Adam does not see the difference). An optional linear KL warm-up raises beta from 0
over ``kl_warmup_steps`` trainer steps. Conditional VAE (Sohn et al. 2015): the condition
features (`base.cond_features`) are concatenated to the encoder's and the decoder's input; rows
whose condition is dropped (``cond_drop``) or not given see every trait as missing, so sampling
without a condition draws from the marginal.

Generation: z ~ N(0, I), then the decoder's per-SNP distribution. ``decode="argmax"`` is the
study's (the most probable genotype of each SNP): it never emits a genotype whose probability
is below 1/2 given z, so a rare genotype that the latent does not pin down disappears and the
genotype frequencies are distorted. ``decode="categorical"`` (the default) draws each SNP from
softmax(logits) by the exact inverse CDF, which keeps them. All random numbers come from
`row_normal` / `row_uniform` keyed by (seed, row): a seed gives the same cohort for any batch
split. BatchNorm uses its running statistics when sampling (``sample`` switches to eval mode),
so a row does not depend on the other rows of its batch.

``backbone="patch"``: the encoder is `PatchTransformer.pooled` on the genotype tokens (t = 0)
followed by one linear layer to (mu, logvar); the decoder is a `PatchTransformer` with
``latent_dim = latent`` fed all-MASK tokens, the latent entering through its conditioning
vector. Traits then enter through the transformers' condition embedding (dropped rows get its
null embedding). Neither network's size grows with the SNP count.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

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

DECODES = ("categorical", "argmax")
BETAS = (0.9, 0.999)  # Adam betas: the study's (torch's defaults)
BACKBONES = ("mlp", "patch")


@dataclass
class Config:
    """VAE hyperparameters (``--set key=value``)."""

    latent: int = 128
    widths: str = "1024,512,256"  # encoder hidden widths, comma-separated; decoder mirrored
    negative_slope: float = 0.05  # LeakyReLU
    beta: float = 1.0  # weight of the KL term
    kl_warmup_steps: int = 0  # > 0: beta rises linearly from 0 over this many steps
    decode: str = "categorical"  # or "argmax" (the study's)
    cond_drop: float = 0.1  # training rows whose traits are all set missing
    clip_grad: bool = True  # False: never clip (the study trained with plain Adam)
    backbone: str = "mlp"  # or "patch" (meta["backbone"] gives its sizes)


MODEL_CONFIGS: dict[str, type] = {"vae": Config}

# The study's configurations (github.com/SihanXXX/DiscreteGenoGen, models/VAE/*/configs.py and
# train.py): plain Adam (no weight decay, constant learning rate, no clipping, no EMA), decoded
# by argmax, checkpoints picked on k-NN precision/recall F1.
_STUDY_TRAIN: dict[str, Any] = {
    "weight_decay": 0.0,
    "warmup_steps": 0,
    "min_lr_ratio": 1.0,
    "ema_decay": 0.0,
    "select": "knn_f1",
}
_STUDY_MODEL: dict[str, Any] = {"decode": "argmax", "clip_grad": False, "beta": 1.0}
PRESETS: dict[str, dict] = {
    # cattle chromosome 14, 1,771 SNPs (models/VAE/cows/CH14/configs.py)
    "study:vae": {
        "model": "vae",
        "train": {**_STUDY_TRAIN, "batch_size": 256, "lr": 5e-4},
        "model_config": {**_STUDY_MODEL, "latent": 128, "widths": "1024,512,256"},
    },
    # UK Biobank, 3,493 SNPs (models/VAE/human/ENSEMBL/configs.py)
    "study:vae-human": {
        "model": "vae",
        "train": {**_STUDY_TRAIN, "batch_size": 256, "lr": 5e-4},
        "model_config": {**_STUDY_MODEL, "latent": 128, "widths": "1024,512,512,256"},
    },
    # UK Biobank, 42,409 SNPs (models/VAE/human/MULTI/vae_human_multi_configs.py)
    "study:vae-human-multi": {
        "model": "vae",
        "train": {**_STUDY_TRAIN, "batch_size": 3800, "lr": 6e-4},
        "model_config": {**_STUDY_MODEL, "latent": 256,
                         "widths": "4096,2048,2048,2048,1024,1024,1024,512"},
    },
}


def _layer(d_in: int, d_out: int, slope: float) -> list[nn.Module]:
    return [nn.Linear(d_in, d_out), nn.BatchNorm1d(d_out), nn.LeakyReLU(slope)]


class ResidualBlock(nn.Module):
    """LReLU(x + BN(Linear(LReLU(BN(Linear(x)))))): the study's block for three equal widths."""

    def __init__(self, width: int, slope: float) -> None:
        super().__init__()
        self.block = nn.Sequential(
            *_layer(width, width, slope), nn.Linear(width, width), nn.BatchNorm1d(width)
        )
        self.act = nn.LeakyReLU(slope)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.block(x))


def build_mlp(d_in: int, widths: list[int], slope: float) -> tuple[nn.Sequential, int]:
    """(the hidden stack, its output width), laid out as the study's ``build_layers``: each
    width one Linear-BN-LReLU layer, except that three equal widths in a row become one residual
    block (preceded by a layer to that width when the input is narrower or wider)."""
    layers: list[nn.Module] = []
    cur, i = d_in, 0
    while i < len(widths):
        w = widths[i]
        if i + 2 < len(widths) and widths[i + 1] == w and widths[i + 2] == w:
            if cur != w:
                layers += _layer(cur, w, slope)
            layers.append(ResidualBlock(w, slope))
            i += 3
        else:
            layers += _layer(cur, w, slope)
            i += 1
        cur = w
    return nn.Sequential(*layers), cur


def _study_init(module: nn.Module) -> None:
    """The study's initialisation of encoder and decoder: Xavier-uniform weights, biases 0.01."""
    for mod in module.modules():
        if isinstance(mod, nn.Linear):
            nn.init.xavier_uniform_(mod.weight)
            nn.init.constant_(mod.bias, 0.01)


def one_hot_input(x: torch.Tensor) -> torch.Tensor:
    """int8 [B, M] -> float32 [B, 3M] one-hot, a missing genotype (-1) all zero."""
    oh = F.one_hot(x.long().clamp(min=0), 3).float() * (x >= 0)[..., None].float()
    return oh.flatten(1)


class MLPEncoder(nn.Module):
    """[one-hot genotypes ++ condition features] -> hidden stack -> (mu, logvar)."""

    def __init__(self, n_snps: int, cfg: Config, traits: list[dict]) -> None:
        super().__init__()
        self.traits = traits
        widths = parse_ints(cfg.widths, "widths")
        self.hidden, d = build_mlp(3 * n_snps + cond_width(traits), widths, cfg.negative_slope)
        _study_init(self.hidden)
        self.mu = nn.Linear(d, cfg.latent)
        self.logvar = nn.Linear(d, cfg.latent)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None, drop: torch.Tensor | None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        feats = _mlp_cond(cond, drop, self.traits, x.shape[0], x.device)
        h = self.hidden(torch.cat([one_hot_input(x), feats], 1))
        return self.mu(h), self.logvar(h)


class MLPDecoder(nn.Module):
    """[z ++ condition features] -> the widths mirrored -> Linear -> logits [B, M, 3]."""

    def __init__(self, n_snps: int, cfg: Config, traits: list[dict]) -> None:
        super().__init__()
        self.traits, self.n_snps = traits, n_snps
        widths = parse_ints(cfg.widths, "widths")[::-1]
        hidden, d = build_mlp(cfg.latent + cond_width(traits), widths, cfg.negative_slope)
        self.net = nn.Sequential(hidden, nn.Linear(d, 3 * n_snps))
        _study_init(self.net)

    def forward(self, z: torch.Tensor, cond: torch.Tensor | None, drop: torch.Tensor | None
                ) -> torch.Tensor:
        feats = _mlp_cond(cond, drop, self.traits, z.shape[0], z.device)
        return self.net(torch.cat([z, feats.to(z.dtype)], 1)).view(z.shape[0], self.n_snps, 3)


def _mlp_cond(cond: torch.Tensor | None, drop: torch.Tensor | None, traits: list[dict],
              batch: int, device: torch.device) -> torch.Tensor:
    """Condition features; no cond, or a dropped row, reads as every trait missing."""
    if not traits:
        return torch.zeros(batch, 0, device=device)
    if cond is None:
        cond = torch.full((batch, len(traits)), float("nan"), device=device)
    elif drop is not None:
        cond = torch.where(drop[:, None], torch.full_like(cond, float("nan")), cond)
    return cond_features(cond, traits, batch)


class PatchEncoder(nn.Module):
    """`PatchTransformer.pooled` of the genotype tokens at t = 0 -> Linear -> (mu, logvar)."""

    def __init__(self, bb: BackboneConfig, snps: SnpTable, traits: list[Trait], latent: int,
                 freq: torch.Tensor) -> None:
        super().__init__()
        bb = dataclasses.replace(bb, latent_dim=0)
        self.net = PatchTransformer(bb, snps.chromosome, snps.bp_position.astype(float), traits,
                                    freq=freq)
        self.stats = nn.Linear(bb.width, 2 * latent)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None, drop: torch.Tensor | None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        t = torch.zeros(x.shape[0], device=x.device)
        mu, logvar = self.stats(self.net.pooled(x, t, cond, drop)).chunk(2, dim=-1)
        return mu, logvar


class PatchDecoder(nn.Module):
    """A `PatchTransformer` with latent_dim = latent on all-MASK tokens -> logits [B, M, 3]."""

    def __init__(self, bb: BackboneConfig, snps: SnpTable, traits: list[Trait], latent: int,
                 freq: torch.Tensor) -> None:
        super().__init__()
        bb = dataclasses.replace(bb, latent_dim=latent)
        self.net = PatchTransformer(bb, snps.chromosome, snps.bp_position.astype(float), traits,
                                    freq=freq)

    def forward(self, z: torch.Tensor, cond: torch.Tensor | None, drop: torch.Tensor | None
                ) -> torch.Tensor:
        b, dev = z.shape[0], z.device
        x = torch.full((b, self.net.n_snps), MASK, dtype=torch.int8, device=dev)
        return self.net(x, torch.zeros(b, device=dev), cond, drop, latent=z)


def _seed_mix(seed: int, offset: int) -> int:
    """One Philox key per (run seed, trainer step)."""
    return (int(seed) * 0x9E3779B97F4A7C15 + int(offset) * 0xBF58476D1CE4E5B9 + 7) % 2**63


def reconstruction_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Per-row cross-entropy float32 [B] summed over the called SNPs of x int8 [B, M] (a
    missing genotype contributes 0 whatever its logits)."""
    ce = F.cross_entropy(logits.float().transpose(1, 2), x.long().clamp(min=0), reduction="none")
    return torch.where(x >= 0, ce, torch.zeros_like(ce)).sum(1)


def kl_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per row, float32 [B]."""
    mu, logvar = mu.float(), logvar.float()
    return -0.5 * (1 + logvar - mu.square() - logvar.exp()).sum(1)


class VAE(nn.Module):
    """Encoder q(z | x, c), decoder p(x | z, c) with independent 3-class SNPs given z."""

    def __init__(self, n_snps: int, config: Config, traits: list[dict] | None = None,
                 snps: SnpTable | None = None, backbone: BackboneConfig | None = None,
                 freq: torch.Tensor | None = None) -> None:
        super().__init__()
        cfg = self.config = config
        if cfg.decode not in DECODES:
            raise ValueError(f"decode must be one of {DECODES}, got {cfg.decode!r}")
        if cfg.backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {BACKBONES}, got {cfg.backbone!r}")
        if cfg.latent < 1:
            raise ValueError(f"latent must be >= 1, got {cfg.latent}")
        if not 0.0 <= cfg.cond_drop <= 1.0:
            raise ValueError(f"cond_drop must lie in [0, 1], got {cfg.cond_drop}")
        self.traits = list(traits or [])
        self._n_snps = n_snps
        if cfg.backbone == "mlp":
            self.encoder: nn.Module = MLPEncoder(n_snps, cfg, self.traits)
            self.decoder: nn.Module = MLPDecoder(n_snps, cfg, self.traits)
        else:
            if snps is None or backbone is None:
                raise ValueError("backbone='patch' needs the SNP table and a BackboneConfig")
            if len(snps) != n_snps:
                raise ValueError(f"snps: {len(snps)} SNPs, expected {n_snps}")
            tr = [Trait(s["name"], s["kind"], s.get("n_levels", 2)) for s in self.traits]
            if freq is None:  # placeholders: a loaded checkpoint holds the real ones
                freq = torch.full((n_snps, 3), 1 / 3)
            self.encoder = PatchEncoder(backbone, snps, tr, cfg.latent, freq)
            self.decoder = PatchDecoder(backbone, snps, tr, cfg.latent, freq)
            self.ddp_find_unused = True  # the pooled encoder never uses its backbone's head

    @property
    def n_snps(self) -> int:
        return self._n_snps

    def optim_groups(self) -> list[OptimGroup]:
        """One group, Adam betas `BETAS`; ``clip_grad=False`` exempts it from clipping."""
        params = [p for p in self.parameters() if p.requires_grad]
        return [OptimGroup("model", params, betas=BETAS, clip=self.config.clip_grad)]

    def kl_weight(self, step: int) -> float:
        """beta, ramped linearly from 0 over the first kl_warmup_steps steps."""
        w = self.config.kl_warmup_steps
        return self.config.beta * (min(1.0, step / w) if w > 0 else 1.0)

    def _check_cond(self, cond: torch.Tensor | None, batch: int) -> None:
        if cond is None:
            return
        if not self.traits:
            raise ValueError("cond given to a model built without traits")
        if tuple(cond.shape) != (batch, len(self.traits)):
            raise ValueError(f"cond: expected [{batch}, {len(self.traits)}], got "
                             f"{tuple(cond.shape)}")
        for k, spec in enumerate(self.traits):
            if spec["kind"] == "continuous":
                continue
            v = cond[:, k]
            v = v[~v.isnan()]
            n = 2 if spec["kind"] == "binary" else spec["n_levels"]
            if bool(((v < 0) | (v >= n) | (v != v.round())).any()):
                raise ValueError(f"cond: trait {spec['name']!r} takes integers 0..{n - 1}")

    def loss(self, packed: torch.Tensor, row_ids: torch.Tensor, cond: torch.Tensor | None = None,
             *, seed: int = 0, offset: int = 0) -> torch.Tensor:
        """Negative ELBO (nats per individual: summed over SNPs), mean over the batch.

        The reparameterisation noise and the condition dropout are keyed by (seed, offset,
        row), so a resumed run replays them."""
        x = codec.unpack(packed, self.n_snps)
        b = x.shape[0]
        self._check_cond(cond, b)
        key = _seed_mix(seed, offset)
        drop = None
        if self.traits:
            drop = row_uniform(key, row_ids, 1, stream=1)[:, 0] < self.config.cond_drop
        mu, logvar = self.encoder(x, cond, drop)
        eps = row_normal(key, row_ids, self.config.latent, stream=0).to(mu.device)
        z = mu + eps.to(mu.dtype) * torch.exp(0.5 * logvar)
        logits = self.decoder(z, cond, drop)
        nll = reconstruction_nll(logits, x)
        return (nll + self.kl_weight(offset) * kl_normal(mu, logvar)).mean()

    @torch.no_grad()
    def sample(self, n: int, cond: torch.Tensor | None = None, *, steps: int = 50,
               guidance: float = 0.0, seed: int = 0, row_offset: int = 0,
               decode: str | None = None) -> torch.Tensor:
        """int8 [n, M] genotypes: z ~ N(0, I) (`row_normal`, stream 0), decoded by
        ``decode`` (None: the config's): argmax, or a categorical draw (`row_uniform`,
        stream 1). ``steps`` is ignored (one decoder pass); ``guidance`` must be 0. Runs the
        networks in eval mode (BatchNorm running statistics) and restores the mode after."""
        if guidance != 0:
            raise ValueError("the VAE has no classifier-free guidance (guidance must be 0)")
        decode = decode or self.config.decode
        if decode not in DECODES:
            raise ValueError(f"decode must be one of {DECODES}, got {decode!r}")
        self._check_cond(cond, n)
        dev = next(self.parameters()).device
        rows = torch.arange(row_offset, row_offset + n, dtype=torch.int64, device=dev)
        z = row_normal(seed, rows, self.config.latent, stream=0)
        was_training = self.training
        self.eval()
        try:
            logits = self.decoder(z, cond, None)
        finally:
            self.train(was_training)
        if decode == "argmax":
            return logits.argmax(-1).to(torch.int8)
        probs = logits.double().softmax(-1)
        return categorical_draw(probs, row_uniform(seed, rows, self.n_snps, stream=1))


def build(meta: dict[str, Any], snps: SnpTable, data: TrainingData | None) -> VAE:
    """The VAE a run's config.json describes (``data`` is not needed: nothing is fitted)."""
    cfg = Config(**(meta.get("model") or {}))
    m = len(snps)
    if meta.get("n_snps") is not None and int(meta["n_snps"]) != m:
        raise ValueError(f"meta n_snps = {meta['n_snps']}, the SNP table has {m}")
    if data is not None and data.n_snps != m:
        raise ValueError(f"training data: {data.n_snps} SNPs, the SNP table has {m}")
    bb = BackboneConfig(**meta["backbone"]) if cfg.backbone == "patch" else None
    # genotype frequencies for the backbone's snp_features (from the checkpoint when loading)
    freq = genotype_frequencies(data.packed, m) if bb is not None and data is not None else None
    torch.manual_seed(int(meta["train"]["seed"]))
    return VAE(m, cfg, meta.get("traits") or [], snps=snps, backbone=bb, freq=freq)
