"""Categorical diffusion on genotypes: continuous-time ELBO training and ancestral sampling.

Forward process (per SNP j, per row, keep probability alpha_t; `genofast.ops.diffusion`)::

    q(x_t | x0) = alpha_t [x_t = x0] + (1 - alpha_t) pi_j[x_t]

with pi = the MASK token (``mask``), 1/3 (``uniform``) or SNP j's training genotype frequencies
(``marginal``). Schedules, t in [0, 1]: ``linear`` alpha_t = 1 - t (MDLM's default) and ``cosine``
alpha_t = cos(pi t / 2) (gentler near t = 0, the end of sampling). t = 1 is pure noise.

Loss: the continuous-time negative ELBO per SNP, in nats (missing genotypes excluded):

* mask: MDLM (Sahoo et al. 2024), ``-alpha'_t / (1 - alpha_t) * CE(x0, p_theta)`` on masked SNPs.
* uniform / marginal: the same process is a CTMC with rate beta_t pi[y] from any x to y != x,
  ``beta_t = -alpha'_t / alpha_t``. Its ELBO is the score-entropy form of Lou et al. 2024 (SEDD,
  "diffusion weighted denoising score entropy"): ``beta_t pi[x_t] sum_{y != x_t} s* phi(s / s*)``
  with phi(u) = u - 1 - log u >= 0, ``s*_y = q(y | x0) / q(x_t | x0)`` the true and
  ``s_y = sum_x0 p_theta(x0 | x_t) q(y | x0) / q(x_t | x0)`` the model's ratio
  p_t(y) / p_t(x_t). It is exact (no discretisation), zero iff the model's ratios are the true
  ones, and for pi = MASK it reduces to the MDLM loss above. t is drawn stratified over the batch
  (one uniform shift, rows spread 1/B apart) in [t_eps, 1 - t_eps] so the weights stay finite.

The network predicts x0 logits; a fixed (not trained) per-SNP offset log(freq + 1e-3) from the
training genotype frequencies is added, so a fresh model already is the independent-SNP baseline
and the network learns the dependence between SNPs. It is a buffer derived from the data like pi,
so the parameter count still follows only width and depth.

Sampling: K ancestral steps on the grid t_i = 1 - (i / K) ** power with `genofast.ops.reverse_step`
(exact posterior, exact categorical draw, Philox keyed by (seed, row, step): a seed gives the same
cohort on every device and for any batch split, up to the network's own float rounding). Start:
x_1 ~ q(x_1 | .) = pi (all MASK for mask), drawn by `diffusion_forward` at alpha = 0. With
power > 1 (default 2) the first steps draw few SNPs (with the linear schedule, step i draws a
share ((i + 1)^p - i^p) / K^p), so they are drawn almost one after the other and fix each
individual's ancestry before the bulk of the SNPs, which are then drawn in parallel given a rich
context (MaskGIT's order, Chang et al. 2022). On AGBL4 (the 18-minute CPU model, 50 steps) power
2 against 1 cut ld_r2_mae from 0.047 to 0.040 and maf_js_divergence from 0.17 to 0.10 and widened
the synthetic PCA cloud (bench/RESULTS.md); powers 3 and 5 gave the same.

Network skipping. A step with alpha_s == alpha_t changes nothing (every transition) and is
skipped. For mask, only MASK tokens can change and whether a MASK stays is decided by the step's
random word alone: the op stays MASK iff u >= c_2 / c_3, c_k the float32 cumulative weights,
which equals (alpha_s - alpha_t) / (1 - alpha_t) up to a few float32 ulps whatever the logits.
So before calling the network we draw the words of the masked positions (the same Philox words
the op will use) and skip the network and the op when every one lies safely (relative margin
1e-5) above that threshold: the result is bit-identical to running the step. Drawing costs
work, so this is tried only when the expected number of unmaskings is small (<= 30; otherwise
P(no change) < e^-30); with many steps or few masked SNPs left it pays, for ordinary K and
batches it rarely fires. Once nothing is masked the remaining steps are no-ops and end the loop.

Corrector steps (``correct=C``): after the ancestral steps, C renoise-denoise moves at a small
time ``t_c``: x is noised by the forward process to t_c (each SNP replaced by noise with
probability t_c: masked for mask, redrawn from pi otherwise) and the noised SNPs are redrawn from
the network's posterior in one step, t_c -> 0. With an exact network each move leaves the data
distribution invariant (a Gibbs-like update of about t_c M SNPs given all the others), so it only
repairs what the parallel ancestral steps got wrong: SNPs in LD that were unmasked in the same
step and drawn independently. On AGBL4 (the 18-minute CPU model, 50 steps) 30 moves at
t_c = 0.2 cut ld_r2_mae from 0.047 to 0.028 (bench/RESULTS.md); with an inexact network each move
also re-applies its errors (rare alleles stay lost, AATS rises), so it is opt-in. Keyed like the
ancestral steps (offsets after theirs), so still the same cohort for any batch split.

Classifier-free guidance: logits = (1 + w) logits(x, cond) - w logits(x, null); w = 0 is plain
conditional sampling (one network call per step), w = -1 exactly the unconditional model.

Inpainting: ``inpaint=(hold, values)`` holds SNPs (bool [n, M] or [M]) to genotypes (int8, same
shape) from the start and after every step. For mask those tokens are simply unmasked evidence the
model conditions on (the exact MDLM way); for uniform / marginal they are held clean, which q
gives probability alpha_t + (1 - alpha_t) pi, so the model reads them as (strong) evidence.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from genofast.models.backbone import BackboneConfig, PatchTransformer, Trait
from genofast.models.base import OptimGroup, TrainingData, default_groups
from genofast.models.independent import IndependentSNPs
from genofast.ops import codec
from genofast.ops.diffusion import (
    MASK,
    TRANSITIONS,
    diffusion_forward,
    philox_reference,
    reverse_step,
)

SCHEDULES = ("linear", "cosine")
_U32 = 0xFFFFFFFF


def alpha(t: torch.Tensor, schedule: str) -> torch.Tensor:
    """Keep probability alpha_t (1 at t = 0, 0 at t = 1)."""
    if schedule == "linear":
        return (1 - t).clamp(0, 1)
    return torch.cos(t * (math.pi / 2)).clamp(0, 1)


def dalpha(t: torch.Tensor, schedule: str) -> torch.Tensor:
    """d alpha_t / dt."""
    if schedule == "linear":
        return -torch.ones_like(t)
    return -(math.pi / 2) * torch.sin(t * (math.pi / 2))


def elbo_terms(
    logits: torch.Tensor,
    x_t: torch.Tensor,
    x0: torch.Tensor,
    a: torch.Tensor,
    da: torch.Tensor,
    transition: str,
    pi: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-SNP negative-ELBO integrand [B, M] (module docstring); 0 where x0 is missing.

    ``logits`` [B, M, 3], ``x_t``/``x0`` int8 [B, M], ``a``/``da`` alpha_t and alpha'_t [B],
    ``pi`` float32 [M, 3] (marginal only). Computed in float32.
    """
    logits = logits.float()
    valid = x0 >= 0
    x0l = x0.long().clamp(min=0)
    a, da = a.float()[:, None], da.float()[:, None]
    if transition == "mask":
        ce = F.cross_entropy(logits.transpose(1, 2), x0l, reduction="none")
        w = -da / (1 - a).clamp(min=1e-12)  # no row with alpha = 1 has a MASK
        return torch.where((x_t == MASK) & valid, w * ce, torch.zeros_like(ce))
    a, da = a[..., None], da[..., None]  # [B, 1, 1]
    if transition == "uniform":
        pi = torch.full((1, 1, 3), 1 / 3, device=logits.device)
    else:
        pi = pi.float()[None]  # [1, M, 3]
    pi = pi.expand(logits.shape)
    v = x_t.long().clamp(min=0)[..., None]
    onehot_v = F.one_hot(v[..., 0], 3).float()
    pi_v = pi.gather(-1, v)  # [B, M, 1]
    c = a * onehot_v + (1 - a) * pi_v  # C(x0) = q(x_t | x0), over x0
    certain = (1 - a) * pi_v <= 0  # x_t can only be an unnoised token: x0 = x_t
    p = torch.where(certain, onehot_v, logits.softmax(-1))
    r = torch.where(c > 0, p / c.clamp(min=1e-30), torch.zeros_like(p))
    s = a * r + (1 - a) * pi * r.sum(-1, keepdim=True)  # model ratio p_t(y) / p_t(x_t)
    onehot_0 = F.one_hot(x0l, 3).float()
    s_star = (a * onehot_0 + (1 - a) * pi) / c.gather(-1, x0l[..., None]).clamp(min=1e-30)
    d = s / s_star.clamp(min=1e-30) - 1
    term = torch.where(s_star > 0, s_star * (d - torch.log1p(d.clamp(min=-1 + 1e-7))), s)
    term = (term * (1 - onehot_v)).sum(-1)  # y != x_t
    beta = -da[..., 0] / a[..., 0].clamp(min=1e-12)
    ell = beta * pi_v[..., 0] * term
    return torch.where(valid & ~certain[..., 0], ell, torch.zeros_like(ell))


def genotype_frequencies(packed: torch.Tensor, n_snps: int) -> torch.Tensor:
    """Training genotype frequencies float32 [M, 3] (missing left out; 1/3 where none called)."""
    return torch.from_numpy(IndependentSNPs.fit(packed, n_snps).genotype_freq.astype(np.float32))


def _seed_mix(seed: int, offset: int) -> int:
    return (int(seed) * 0x9E3779B97F4A7C15 + int(offset) * 0xBF58476D1CE4E5B9 + 1) % 2**63


def build(meta: dict, snps, data: TrainingData | None) -> CategoricalDiffusion:
    """The run's diffusion model (`genofast.models.base`): a PatchTransformer of
    ``meta["backbone"]`` with ``meta["train"]``'s transition and schedule; the genotype
    frequencies from ``data`` (placeholders when loading: the weights file holds them)."""
    cfg = meta["train"]
    traits = [Trait(s["name"], s["kind"], s.get("n_levels", 2)) for s in meta["traits"]]
    torch.manual_seed(cfg["seed"])  # parameter init
    m = len(snps)
    freq = genotype_frequencies(data.packed, m) if data is not None else torch.full((m, 3), 1 / 3)
    net = PatchTransformer(BackboneConfig(**meta["backbone"]), snps.chromosome,
                           snps.bp_position.astype(np.float64), traits, freq=freq)
    return CategoricalDiffusion(net, cfg["transition"], freq=freq, schedule=cfg["schedule"],
                                cond_drop=cfg["cond_drop"])


class CategoricalDiffusion(nn.Module):
    """Discrete diffusion over genotypes 0/1/2 on a `PatchTransformer` that predicts x0."""

    def __init__(
        self,
        backbone: PatchTransformer,
        transition: str = "mask",
        freq: torch.Tensor | None = None,
        schedule: str = "linear",
        cond_drop: float = 0.1,
        t_eps: float = 1e-3,
    ) -> None:
        super().__init__()
        if transition not in TRANSITIONS:
            raise ValueError(f"transition must be one of {TRANSITIONS}, got {transition!r}")
        if schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
        if transition == "marginal" and freq is None:
            raise ValueError("the marginal transition needs freq (genotype_frequencies)")
        m = backbone.n_snps
        if freq is None:
            freq = torch.full((m, 3), 1 / 3)
        if tuple(freq.shape) != (m, 3):
            raise ValueError(f"freq: expected [{m}, 3], got {tuple(freq.shape)}")
        self.backbone = backbone
        self.transition, self.schedule = transition, schedule
        self.cond_drop, self.t_eps = float(cond_drop), float(t_eps)
        freq = freq.to(torch.float32).contiguous()
        self.register_buffer("freq", freq)  # persistent: sampling needs it
        # sampling-time logit offsets fitted by `calibrate` (kept beside the checkpoint, not in it)
        self.register_buffer("tilt", torch.zeros(m, 3), persistent=False)

    @property
    def n_snps(self) -> int:
        return self.backbone.n_snps

    @property
    def pi(self) -> torch.Tensor | None:
        return self.freq if self.transition == "marginal" else None

    def logits(
        self,
        x_t: torch.Tensor,
        t: torch.Tensor,
        cond: torch.Tensor | None = None,
        drop: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """p_theta(x0 | x_t) logits [B, M, 3] (network output + fixed log-frequency offset)."""
        # the offset follows freq (recomputed: loading weights replaces freq in place)
        return self.backbone(x_t, t, cond, drop) + torch.log(self.freq + 1e-3)

    def optim_groups(self) -> list[OptimGroup]:
        return default_groups(self)

    def _check_cond(self, cond: torch.Tensor | None, batch: int) -> None:
        if cond is not None:
            if self.backbone.cond_emb is None:
                raise ValueError("cond given to a model built without traits")
            self.backbone.cond_emb.check(cond, batch)

    def loss(
        self,
        packed: torch.Tensor,
        row_ids: torch.Tensor,
        cond: torch.Tensor | None = None,
        *,
        seed: int = 0,
        offset: int = 0,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Negative ELBO per SNP (nats), mean over rows, of a packed batch uint8 [B, ceil(M/4)].

        ``seed``/``offset`` key the noise (use a new offset every step); t and the condition
        dropout come from ``generator`` (CPU), by default one seeded from (seed, offset).
        """
        b, m, dev = packed.shape[0], self.n_snps, packed.device
        self._check_cond(cond, b)
        g = generator or torch.Generator().manual_seed(_seed_mix(seed, offset))
        u = (torch.rand(1, generator=g, dtype=torch.float64) + torch.arange(b) / b) % 1.0
        t = (self.t_eps + (1 - 2 * self.t_eps) * u).float().to(dev)
        drop = None
        if self.backbone.cond_emb is not None and self.training:
            # built even at cond_drop = 0 so the null embedding is always in the graph (DDP)
            drop = (torch.rand(b, generator=g) < self.cond_drop).to(dev)
        a = alpha(t, self.schedule)
        x_t = diffusion_forward(packed, m, row_ids, a, self.transition, self.pi, seed=seed,
                                offset=offset)  # fmt: skip
        logits = self.logits(x_t, t, cond, drop)
        x0 = codec.unpack(packed, m)
        ell = elbo_terms(logits, x_t, x0, a, dalpha(t, self.schedule), self.transition, self.pi)
        n_valid = (x0 >= 0).sum(1).clamp(min=1)
        return (ell.sum(1) / n_valid).mean()

    def guided_logits(
        self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None, guidance: float
    ) -> torch.Tensor:
        """Sampling logits: classifier-free guidance, (1 + w) cond - w null (one call when
        w = 0 or no cond), plus the calibration ``tilt`` (zero unless `calibrate` ran)."""
        if cond is None or guidance == 0:
            return self.logits(x, t, cond) + self.tilt
        lc = self.logits(x, t, cond)
        lu = self.logits(x, t, None)
        return (1 + guidance) * lc - guidance * lu + self.tilt

    @torch.no_grad()
    def calibrate(
        self,
        n: int = 512,
        iters: int = 4,
        *,
        cond: torch.Tensor | None = None,
        seed: int = 0,
        batch_size: int = 256,
        progress: Any = None,
        **sample_kw: Any,
    ) -> list[float]:
        """Fit ``tilt`` so sampled genotype frequencies match the training ones (``freq``).

        Each round samples ``n`` individuals (unconditional, ``sample_kw`` as for `sample`, a new
        seed per round) and moves tilt[j, g] by log(freq + eps) - log(sampled + eps), clipped
        to +-1, with gain 1 / (round + 1): the first round takes the whole step, later rounds
        average the sampling noise out (Robbins-Monro). The sampled frequencies are shrunk
        towards freq by one pseudo-individual so unseen genotypes give a finite step. The
        result approximates the I-projection of the model onto the training frequencies:
        p'(x) ~ p(x) exp(sum_j tilt[j, x_j]), the least change to the model that puts the
        frequencies right. It restores the rare alleles the network loses in its own samples
        (bench/RESULTS.md). A conditional model is calibrated at ``cond`` [n, T] (row i for
        individual i; an ancestry run's drawn PCs), by default at the null condition (its
        unconditional model); the same tilt serves every condition. ``progress(done_rows)``
        is called after every batch. Returns the
        mean |log-frequency error| of each round, before its update."""
        if n < 1 or iters < 1 or batch_size < 1:
            raise ValueError("calibrate needs n, iters and batch_size >= 1")
        eps = 1e-3
        target = torch.log(self.freq + eps)
        errors = []
        for r in range(iters):
            counts = torch.zeros_like(self.freq)
            for start in range(0, n, batch_size):
                b = min(batch_size, n - start)
                c = None if cond is None else cond[start:start + b]
                x = self.sample(b, c, seed=_seed_mix(seed, r), row_offset=start, **sample_kw)
                counts += F.one_hot(x.long(), 3).sum(0).float()
                if progress is not None:
                    progress(b)
            sampled = (counts + self.freq) / (n + 1)
            step = target - torch.log(sampled + eps)
            errors.append(float(step.abs().mean()))
            self.tilt += step.clamp(-1.0, 1.0) / (r + 1)
        return errors

    def _mask_step_may_change(
        self, x: torch.Tensor, rows: torch.Tensor, a_t: float, a_s: float, seed: int, offset: int
    ) -> bool:
        """False only when no MASK of x can be unmasked by this step (module docstring)."""
        masked = x == MASK
        p = (a_s - a_t) / (1 - a_t)  # probability a MASK is unmasked
        n_masked = int(masked.sum())
        if n_masked == 0:
            return False
        if n_masked * p > 30:
            return True
        i, j = masked.nonzero(as_tuple=True)
        rid = rows[i]
        words = philox_reference(
            seed, j // 4, rid & _U32, (rid >> 32) & _U32, torch.full_like(j, offset)
        )
        word = torch.stack(words, -1).gather(-1, (j % 4)[:, None])[:, 0]
        u = word.to(torch.float64) / 2.0**32
        return bool((u < p * (1 + 1e-5) + 1e-9).any())

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
        inpaint: tuple[torch.Tensor, torch.Tensor] | None = None,
        pack_bed: bool = False,
        skip: bool = True,
        correct: int = 0,
        correct_t: float = 0.1,
        power: float = 2.0,
    ) -> torch.Tensor:
        """n synthetic individuals: int8 [n, M] genotypes, or the `.bed` body uint8
        [M, ceil(n/4)] with ``pack_bed``. Rows are keyed by row_offset + i (stream in batches
        with increasing row_offset for one cohort). ``skip=False`` calls the network every step
        (for testing that skipping changes nothing). ``correct`` renoise-denoise moves at time
        ``correct_t`` follow the ancestral steps (module docstring)."""
        m, dev = self.n_snps, self.freq.device
        if steps < 1:
            raise ValueError("steps must be >= 1")
        if correct < 0 or not 0 < correct_t < 1:
            raise ValueError("need correct >= 0 and 0 < correct_t < 1")
        if not power > 0:
            raise ValueError(f"power must be > 0, got {power}")
        self._check_cond(cond, n)
        rows = torch.arange(row_offset, row_offset + n, dtype=torch.int64, device=dev)
        hold = values = None
        if inpaint is not None:
            hold, values = (v.to(dev) for v in inpaint)
            hold = hold.bool().expand(n, m)
            values = values.to(torch.int8).expand(n, m)
            if bool(((values[hold] < 0) | (values[hold] > 2)).any()):
                raise ValueError("inpaint: held values must be genotypes 0/1/2")
        zeros = torch.zeros(n, codec.n_packed_bytes(m), dtype=torch.uint8, device=dev)
        x = diffusion_forward(zeros, m, rows, 0.0, self.transition, self.pi, seed=seed, offset=0)
        if hold is not None:
            x = torch.where(hold, values, x)
        grid = 1 - torch.linspace(0.0, 1.0, steps + 1, dtype=torch.float64) ** power
        alphas = alpha(grid, self.schedule).float()
        alphas[0], alphas[-1] = 0.0, 1.0
        fuse_pack = pack_bed and (hold is None or self.transition == "mask") and correct == 0
        mask = self.transition == "mask"
        for i in range(steps):
            a_t, a_s = float(alphas[i]), float(alphas[i + 1])
            last = i == steps - 1
            if a_s == a_t and skip:
                continue
            if mask and skip:
                if not bool((x == MASK).any()):
                    break
                if not self._mask_step_may_change(x, rows, a_t, a_s, seed, i + 1):
                    continue
            t = torch.full((n,), float(grid[i]), dtype=torch.float32, device=dev)
            logits = self.guided_logits(x, t, cond, guidance)
            if last and fuse_pack:
                return reverse_step(logits, x, rows, a_t, a_s, self.transition, self.pi,
                                    seed=seed, offset=i + 1, pack_bed=True)  # fmt: skip
            x = reverse_step(logits, x, rows, a_t, a_s, self.transition, self.pi, seed=seed,
                             offset=i + 1)  # fmt: skip
            if hold is not None:
                x = torch.where(hold, values, x)
        a_c = float(alpha(torch.tensor(correct_t, dtype=torch.float64), self.schedule))
        t_c = torch.full((n,), correct_t, dtype=torch.float32, device=dev)
        for k in range(correct):  # noise and draw use their own offsets: independent words
            off = steps + 1 + 2 * k
            x_c = diffusion_forward(codec.pack(x), m, rows, a_c, self.transition, self.pi,
                                    seed=seed, offset=off)
            if hold is not None:
                x_c = torch.where(hold, values, x_c)
            logits = self.guided_logits(x_c, t_c, cond, guidance)
            x = reverse_step(logits, x_c, rows, a_c, 1.0, self.transition, self.pi, seed=seed,
                             offset=off + 1)
            if hold is not None:
                x = torch.where(hold, values, x)
        return codec.pack_bed(x) if pack_bed else x
