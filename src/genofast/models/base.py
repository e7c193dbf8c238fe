"""What the trainer and the sampler need of a model, and the row-keyed random numbers all share.

A model is a ``torch.nn.Module`` with three methods (DESIGN.md: "a model is a small class")::

    loss(packed, row_ids, cond=None, *, seed, offset) -> Tensor | dict[str, Tensor]
        packed uint8 [B, ceil(M/4)]: the batch's individuals (row_ids int64 [B] their cohort
        rows), cond float32 [B, K] or None. ``offset`` is the trainer's step number: a model
        that alternates players (GAN critic / generator) decides from it which one this step
        trains. Returns one scalar, or {group name: scalar} for a model with several
        optimiser groups; the trainer steps the optimiser of each returned group.
    sample(n, cond=None, *, steps, guidance, seed, row_offset) -> int8 [n, M] genotypes 0/1/2
        Row i is keyed by ``row_offset + i`` (`row_uniform`), so a seed gives the same cohort
        whatever the batch split. ``steps`` and ``guidance`` may be ignored by models without
        them.
    optim_groups() -> list[OptimGroup]
        The parameter groups and their optimiser settings (default: one group, "model").

Optional attribute ``ddp_find_unused = True``: some parameters get no gradient in a step (a
pooled patch encoder whose head is unused), so DistributedDataParallel must look for them.

Each model module also has a ``Config`` dataclass (its own hyperparameters, saved as
``meta["model"]``; ``--set key=value`` reaches its fields), optional named ``PRESETS``, and
``build(meta, snps, data) -> model``: ``meta`` is the run's config.json dict, ``snps`` the SNP
table, ``data`` a `TrainingData` when training starts and None when a checkpoint is loaded. Then
data-derived buffers come from the weights file, and data-derived sizes from ``meta["fitted"]``,
a JSON-able dict that ``build`` fills in at training time.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from genofast.ops.diffusion import philox_reference

_U32 = 0xFFFFFFFF


@dataclass
class TrainingData:
    """What a model may fit before training: the training individuals only (never validation).

    ``packed`` uint8 [N, ceil(M/4)] on the CPU; ``cond`` float32 [N, K] (NaN missing) or None."""

    packed: torch.Tensor
    n_snps: int
    cond: torch.Tensor | None = None


@dataclass
class OptimGroup:
    """One optimiser: its parameters and settings. ``lr_scale`` multiplies the trainer's
    scheduled learning rate; None settings take the trainer's (AdamW betas (0.9, 0.99), its
    weight decay on matrices, its gradient clip)."""

    name: str
    params: list[nn.Parameter]
    lr_scale: float = 1.0
    betas: tuple[float, float] | None = None
    weight_decay: float | None = None
    grad_clip: float | None = None
    clip: bool = True  # False: never clip this group's gradients (WGAN-GP critic)


def default_groups(model: nn.Module) -> list[OptimGroup]:
    """One group of every trainable parameter."""
    return [OptimGroup("model", [p for p in model.parameters() if p.requires_grad])]


def row_uniform(seed: int, rows: torch.Tensor, n_cols: int, stream: int) -> torch.Tensor:
    """float64 [len(rows), n_cols] uniforms in (0, 1), a pure function of (seed, row, column,
    stream) (Philox4x32-10): the same row gets the same numbers in any batch and on any device.
    Use a different ``stream`` for each independent use within one sample."""
    dev = rows.device
    groups = torch.arange((n_cols + 3) // 4, dtype=torch.int64, device=dev)[None, :]
    rid = rows.to(torch.int64)[:, None]
    c3 = torch.full((1, 1), (stream + 1) << 20, dtype=torch.int64, device=dev)
    words = philox_reference(seed, groups, rid & _U32, (rid >> 32) & _U32, c3 & _U32)
    w = torch.stack(words, dim=-1).reshape(rid.shape[0], -1)[:, :n_cols]
    return (w.to(torch.float64) + 0.5) / 2.0**32


def row_normal(seed: int, rows: torch.Tensor, n_cols: int, stream: int) -> torch.Tensor:
    """float32 [len(rows), n_cols] standard normals keyed like `row_uniform` (Box-Muller)."""
    u = row_uniform(seed, rows, 2 * n_cols, stream)
    u1, u2 = u[:, :n_cols], u[:, n_cols:]
    z = torch.sqrt(-2 * torch.log(u1)) * torch.cos(2 * torch.pi * u2)
    return z.to(torch.float32)


def categorical_draw(probs: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """int8 genotypes from probabilities [..., 3] and uniforms [...] by the inverse CDF in
    float64 (a genotype of probability 1e-6 keeps it; no Gumbel float32 bias)."""
    p = probs.to(torch.float64)
    c = p.cumsum(-1)
    x = u * c[..., 2]
    return ((x >= c[..., 0]).to(torch.int8) + (x >= c[..., 1]).to(torch.int8))


def parse_ints(text: str, name: str, min_count: int = 0) -> list[int]:
    """``"1024, 512,256"`` -> [1024, 512, 256]: the comma-separated positive integers of a
    string setting (layer widths, width divisors), at least ``min_count`` of them; ValueError
    naming the setting otherwise. Config fields hold lists this way so ``--set`` can reach them."""
    try:
        out = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"{name}: expected comma-separated integers, got {text!r}") from None
    if len(out) < min_count or (out and min(out) < 1):
        raise ValueError(f"{name}: expected at least {min_count} positive integer(s), got "
                         f"{text!r}")
    return out


def cond_features(cond: torch.Tensor | None, traits: list[dict], batch: int) -> torch.Tensor:
    """Dense float32 features [B, F] of the model cond matrix for MLP models that concatenate
    the condition to their inputs: a continuous or binary trait gives (value, missing flag), a
    categorical one its one-hot (all zero when missing). ``traits`` are the run's trait specs
    (``meta["traits"]``: name, kind, n_levels). No traits: a [B, 0] tensor."""
    if not traits:
        dev = cond.device if cond is not None else None
        return torch.zeros(batch, 0, device=dev)
    if cond is None or tuple(cond.shape) != (batch, len(traits)):
        got = None if cond is None else tuple(cond.shape)
        raise ValueError(f"cond: expected [{batch}, {len(traits)}], got {got}")
    cols = []
    for k, spec in enumerate(traits):
        v = cond[:, k].float()
        miss = v.isnan()
        v = torch.where(miss, torch.zeros_like(v), v)
        if spec["kind"] == "categorical":
            onehot = torch.nn.functional.one_hot(v.long(), spec["n_levels"]).float()
            cols.append(onehot * (~miss).float()[:, None])
        else:
            cols += [v[:, None], miss.float()[:, None]]
    return torch.cat(cols, 1)


def cond_width(traits: list[dict]) -> int:
    """Number of columns `cond_features` returns for these trait specs."""
    return sum(s["n_levels"] if s["kind"] == "categorical" else 2 for s in traits)
