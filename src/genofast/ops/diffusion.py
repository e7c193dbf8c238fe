"""Fused kernels of categorical diffusion on genotypes: forward noising and one reverse step.

Classes and tokens
------------------
Genotype classes ``K = 3`` (0/1/2 = copies of allele_1). Noisy tokens are ``int8``: 0/1/2, ``MASK``
(= 3, absorbing transition only) and -1 where the clean genotype is missing (packed code 3). The
model treats -1 like a mask at input, the loss ignores it. Continuous time enters only as a
per-row keep probability ``alpha`` in [0, 1] (the schedule is the model's business).

Transitions (``pi`` float32 ``[M, 3]``: per-SNP genotype frequencies, marginal only)::

    mask:     q(x_t | x0) = alpha [x_t = x0] + (1 - alpha) [x_t = MASK]
    uniform:  q(x_t | x0) = alpha [x_t = x0] + (1 - alpha) / 3
    marginal: q(x_t | x0) = alpha [x_t = x0] + (1 - alpha) pi_j[x_t]

1. `diffusion_forward` draws x_t ~ q(x_t | x0) straight from the packed batch (unpack fused in).
2. `reverse_step` draws x_s ~ p(x_s | x_t) = sum_x0 softmax(logits)[x0] q(x_s | x_t, x0) for
   alpha_s >= alpha_t (alpha_s = 1 is the last step), with q(x_t | x_s) = (alpha_t / alpha_s)
   [x_t = x_s] + (1 - alpha_t / alpha_s) pi[x_t] (pi = 1/3 for uniform).

   * mask: an unmasked token (0/1/2) stays; a MASK or -1 token stays MASK with probability
     (1 - alpha_s) / (1 - alpha_t), else becomes class k with probability
     (alpha_s - alpha_t) / (1 - alpha_t) p_k. A -1 input is treated as MASK (so it comes out as
     MASK or a genotype, never -1).
   * uniform / marginal, observed x_t = v: the exact D3PM posterior, averaged over the model's
     p(x0) as above. With C(x0) = q(x_t = v | x0) the weight of x_s = k is
     ``A_k (alpha_s r_k + (1 - alpha_s) pi_k sum(r))``, ``r_x0 = p_x0 / C(x0)``,
     ``A_k = alpha_s q(x_t = v | x_s = k) = alpha_t [k = v] + (alpha_s - alpha_t) pi_v``.
     When (1 - alpha_t) pi_v = 0, x_t = v can only be an unnoised token, so x0 = v.
   * uniform / marginal, x_t = -1 (our choice): x_t is treated as unobserved and marginalised
     out, x_s ~ sum_x0 p_x0 q(x_s | x0). At alpha_s = 1 that is a draw from p(x0), so no -1
     survives the last step.
   * ``pack_bed=True`` (requires alpha_s = 1 on every row): the sample is written straight into
     the PLINK `.bed` body ``uint8 [M, ceil(B/4)]`` (batch position i = individual i; the codes of
     `codec.pack_bed`). A MASK cannot survive alpha_s = 1; the kernels count any that would and
     the call raises.

Randomness (bit-identical on every path, device, batch size and order)
--------------------------------------------------------------------
One 32-bit word per (row, SNP) from Philox4x32-10 exactly as Triton's ``tl.philox`` computes it:
key = (seed & 0xffffffff, seed >> 32), counter = (j // 4, row_id & 0xffffffff, row_id >> 32,
offset); word ``j % 4`` of the four outputs belongs to SNP j. ``row_id`` is the dataset/cohort
row number of the row (not its batch position), so a row's tokens do not depend on the batch.
``0 <= seed < 2**63``, ``0 <= offset < 2**32`` (use a different offset per step / epoch).

Exact categorical sampling by inverse CDF with 32-bit resolution: from float32 class weights
``w`` (cumulative sums ``c_k`` left to right, total ``c_last``) the class is
``sum_k [r * c_last >= c_k * 2**32]`` over k < last, r the random word, compared in float64
(r * c_last is the only rounded float64 operation; c_k * 2**32 is exact). So a class of
probability p is drawn with probability p +- 2**-32 (a 1e-4 genotype keeps its 1e-4), a
zero-weight class never, and there is no Gumbel-max temperature bias.

Every path computes the float32 weights with the same exactly-rounded operations in the same
order (no FMA contraction: the C++ file is built with ``-ffp-contract=off``, Triton launches with
``enable_fp_fusion=False``) and the softmax exponential with the same polynomial `exp` (Cody-Waite
reduction, degree-6 Taylor, 2**n by bits; about 1 ulp; arguments below -87 give 0), so the
three paths give identical samples, not just the same distribution. NaN logits give an
unspecified (but valid) class.

Paths: the Triton kernels (`diffusion_triton.py`) on CUDA, the native C++ kernels
(`kernels/diffusion.cpp`) on CPU, the torch references (``*_reference``) otherwise. bfloat16
logits are read as such by Triton and the native kernel (bits widened to float32, exact).
"""

from __future__ import annotations

import numpy as np
import torch

from genofast._native import native
from genofast.ops import codec

MASK = 3
N_CLASSES = 3
TRANSITIONS = ("mask", "uniform", "marginal")

# float32 constants shared bit for bit by all paths (each is exactly representable in float32)
THIRD = float(np.float32(1.0 / 3.0))
LOG2E = float(np.float32(1.4426950408889634))
LN2_HI = 0.693359375  # 9 significant bits: n * LN2_HI is exact for |n| < 2**15
LN2_LO = float(np.float32(-2.12194440e-4))
EXP_CUT = -87.0  # exp(x) for x < EXP_CUT is 0
EXP_C = tuple(float(np.float32(1.0 / f)) for f in (720.0, 120.0, 24.0, 6.0, 2.0, 1.0, 1.0))
TWO32 = 4294967296.0

# Philox4x32 constants (Random123 / triton.language.random)
PHILOX_ROUND_A = 0xD2511F53
PHILOX_ROUND_B = 0xCD9E8D57
PHILOX_KEY_A = 0x9E3779B9
PHILOX_KEY_B = 0xBB67AE85
_U32 = 0xFFFFFFFF


# ---------------------------------------------------------------------------------------------
# torch references (uint32 arithmetic emulated in int64; float32 weights, float64 compare)
# ---------------------------------------------------------------------------------------------


def _mulhilo(a: int, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(hi, lo) 32-bit halves of a * b for a constant a < 2**32 and int64 b in [0, 2**32)."""
    p_lo = (b & 0xFFFF) * a  # < 2**48
    mid = (b >> 16) * a + (p_lo >> 16)  # < 2**49
    return mid >> 16, ((mid & 0xFFFF) << 16) | (p_lo & 0xFFFF)


def philox_reference(
    seed: int, c0: torch.Tensor, c1: torch.Tensor, c2: torch.Tensor, c3: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Philox4x32-10 of (broadcastable) int64 counters in [0, 2**32) under key (seed lo, seed hi),
    exactly as ``tl.philox``; returns four int64 tensors of uint32 values."""
    k0, k1 = seed & _U32, (seed >> 32) & _U32
    shape = torch.broadcast_shapes(c0.shape, c1.shape, c2.shape, c3.shape)
    c0, c1, c2, c3 = (c.expand(shape) for c in (c0, c1, c2, c3))
    for _ in range(10):
        hi_b, lo_b = _mulhilo(PHILOX_ROUND_B, c2)
        hi_a, lo_a = _mulhilo(PHILOX_ROUND_A, c0)
        c0, c1, c2, c3 = hi_b ^ c1 ^ k0, lo_b, hi_a ^ c3 ^ k1, lo_a
        k0, k1 = (k0 + PHILOX_KEY_A) & _U32, (k1 + PHILOX_KEY_B) & _U32
    return c0, c1, c2, c3


def random_words_reference(
    row_ids: torch.Tensor, n_snps: int, seed: int, offset: int
) -> torch.Tensor:
    """The random word of every (row, SNP): int64 [B, M] of uint32 values (module docstring)."""
    dev = row_ids.device
    groups = torch.arange((n_snps + 3) // 4, dtype=torch.int64, device=dev)[None, :]
    rid = row_ids.to(torch.int64)[:, None]
    c3 = torch.full((1, 1), offset, dtype=torch.int64, device=dev)
    words = philox_reference(seed, groups, rid & _U32, (rid >> 32) & _U32, c3)
    return torch.stack(words, dim=-1).reshape(rid.shape[0], -1)[:, :n_snps]


def _f32(v: float, like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(v, dtype=torch.float32, device=like.device)


def exp_reference(x: torch.Tensor) -> torch.Tensor:
    """The shared float32 exp for x <= 0 (module docstring): identical on every path."""
    xc = torch.clamp(x, min=EXP_CUT)
    n = torch.floor(xc * _f32(LOG2E, x) + _f32(0.5, x))
    r = xc - n * _f32(LN2_HI, x)
    r = r - n * _f32(LN2_LO, x)
    p = torch.full_like(r, EXP_C[0])
    for c in EXP_C[1:]:
        p = p * r + _f32(c, x)
    scale = ((n.to(torch.int32) + 127) << 23).view(torch.float32)
    return torch.where(x < EXP_CUT, torch.zeros_like(p), p * scale)


def sample_reference(weights: list[torch.Tensor], words: torch.Tensor) -> torch.Tensor:
    """Inverse-CDF class index (int64) from float32 class weights and uint32 words (int64)."""
    cums = [weights[0]]
    for w in weights[1:]:
        cums.append(cums[-1] + w)
    prod = words.to(torch.float64) * cums[-1].to(torch.float64)
    cls = torch.zeros(words.shape, dtype=torch.int64, device=words.device)
    for c in cums[:-1]:
        cls += (prod >= c.to(torch.float64) * TWO32).to(torch.int64)
    return cls


def _pi_columns(pi: torch.Tensor | None, like: torch.Tensor) -> list[torch.Tensor]:
    """pi_k as float32 tensors broadcastable against [B, M]: pi[:, k] or the constant 1/3."""
    if pi is None:
        return [_f32(THIRD, like)] * N_CLASSES
    return [pi[:, k].to(torch.float32)[None, :] for k in range(N_CLASSES)]


def diffusion_forward_reference(
    packed: torch.Tensor,
    n_snps: int,
    row_ids: torch.Tensor,
    alpha: torch.Tensor,
    transition: str,
    pi: torch.Tensor | None = None,
    seed: int = 0,
    offset: int = 0,
) -> torch.Tensor:
    """x_t ~ q(x_t | x0) from packed x0: int8 [B, M] (see the module docstring)."""
    x0 = codec.unpack_reference(packed, n_snps).to(torch.int64)
    words = random_words_reference(row_ids, n_snps, seed, offset)
    a = alpha.to(torch.float32)[:, None]
    om = 1 - a
    if transition == "mask":
        zero = torch.zeros_like(a)
        weights = [torch.where(x0 == k, a, zero) for k in range(N_CLASSES)]
        weights.append(om.expand(x0.shape))
    else:
        pis = _pi_columns(pi if transition == "marginal" else None, a)
        weights = []
        for k in range(N_CLASSES):
            noise = om * pis[k]
            weights.append(torch.where(x0 == k, a + noise, noise).expand(x0.shape))
    cls = sample_reference(weights, words)
    return torch.where(x0 < 0, -1, cls).to(torch.int8)


def reverse_step_reference(
    logits: torch.Tensor,
    x_t: torch.Tensor,
    row_ids: torch.Tensor,
    alpha_t: torch.Tensor,
    alpha_s: torch.Tensor,
    transition: str,
    pi: torch.Tensor | None = None,
    seed: int = 0,
    offset: int = 0,
    pack_bed: bool = False,
) -> torch.Tensor:
    """x_s ~ p(x_s | x_t): int8 [B, M], or the `.bed` body when ``pack_bed`` (module docstring).

    Inputs are assumed valid (the entry point checks them)."""
    b, m = x_t.shape
    lg = logits.to(torch.float32)
    lk = [lg[..., k] for k in range(N_CLASSES)]
    mx = torch.maximum(torch.maximum(lk[0], lk[1]), lk[2])
    e = [exp_reference(v - mx) for v in lk]
    words = random_words_reference(row_ids, m, seed, offset)
    at = alpha_t.to(torch.float32)[:, None]
    as_ = alpha_s.to(torch.float32)[:, None]
    d = as_ - at
    oms = 1 - as_
    v = x_t.to(torch.int64)
    if transition == "mask":
        s = (e[0] + e[1]) + e[2]
        weights = [d * ek for ek in e] + [oms * s]
        cls = sample_reference(weights, words)
        out = torch.where((v == MASK) | (v < 0), cls, v)
    else:
        pis = _pi_columns(pi if transition == "marginal" else None, at)
        pis = [p.expand(b, m) for p in pis]
        pi_v = torch.where(v == 0, pis[0], torch.where(v == 1, pis[1], pis[2]))
        co = (1 - at) * pi_v
        cv = at + co
        obs = v >= 0
        certain = co <= 0
        one, zero = torch.ones_like(co), torch.zeros_like(co)
        dpi = d * pi_v
        r, a_k = [], []
        for k in range(N_CLASSES):
            is_v = v == k
            rk = torch.where(is_v, e[k] * co, e[k] * cv)
            rk = torch.where(certain, torch.where(is_v, one, zero), rk)
            r.append(torch.where(obs, rk, e[k]))
            a_k.append(torch.where(obs, torch.where(is_v, at + dpi, dpi), one))
        rs = (r[0] + r[1]) + r[2]
        weights = [a_k[k] * (as_ * r[k] + (oms * pis[k]) * rs) for k in range(N_CLASSES)]
        out = sample_reference(weights, words)
    out = out.to(torch.int8)
    return codec.pack_bed_reference(out) if pack_bed else out


# ---------------------------------------------------------------------------------------------
# checks shared by every path
# ---------------------------------------------------------------------------------------------


def _transition_code(transition: str) -> int:
    if transition not in TRANSITIONS:
        raise ValueError(f"transition must be one of {TRANSITIONS}, got {transition!r}")
    return TRANSITIONS.index(transition)


def _check_rng(seed: int, offset: int) -> None:
    if not 0 <= int(seed) < 2**63:
        raise ValueError(f"seed must be in [0, 2**63), got {seed}")
    if not 0 <= int(offset) < 2**32:
        raise ValueError(f"offset must be in [0, 2**32), got {offset}")


def _row_vector(
    value: torch.Tensor | float, b: int, device: torch.device, what: str
) -> torch.Tensor:
    """A per-row float32 [B] tensor on `device` (a Python float is broadcast); checks [0, 1]."""
    if not isinstance(value, torch.Tensor):
        value = torch.full((b,), float(value), dtype=torch.float32, device=device)
    if value.dim() != 1 or value.shape[0] != b:
        raise ValueError(f"{what}: expected shape ({b},), got {tuple(value.shape)}")
    if value.device != device:
        raise ValueError(f"{what}: on {value.device}, the batch is on {device}")
    value = value.to(torch.float32).contiguous()
    if bool(((value < 0) | (value > 1) | value.isnan()).any()):
        raise ValueError(f"{what}: values must lie in [0, 1]")
    return value


def _check_row_ids(row_ids: torch.Tensor, b: int, device: torch.device) -> torch.Tensor:
    if row_ids.dtype != torch.int64 or row_ids.dim() != 1 or row_ids.shape[0] != b:
        raise TypeError(
            f"row_ids: expected int64 [{b}], got {row_ids.dtype} {tuple(row_ids.shape)}"
        )
    if row_ids.device != device:
        raise ValueError(f"row_ids: on {row_ids.device}, the batch is on {device}")
    if b and int(row_ids.min()) < 0:
        raise ValueError("row_ids must be >= 0")
    return row_ids.contiguous()


def _check_pi(
    pi: torch.Tensor | None, transition: str, m: int, device: torch.device
) -> torch.Tensor | None:
    if transition != "marginal":
        return None
    if pi is None:
        raise ValueError("the marginal transition needs pi, float32 [M, 3]")
    if pi.dtype != torch.float32 or tuple(pi.shape) != (m, N_CLASSES):
        raise TypeError(f"pi: expected float32 [{m}, 3], got {pi.dtype} {tuple(pi.shape)}")
    if pi.device != device:
        raise ValueError(f"pi: on {pi.device}, the batch is on {device}")
    if bool(((pi < 0) | (pi > 1) | pi.isnan()).any()):
        raise ValueError("pi: frequencies must lie in [0, 1]")
    return pi.contiguous()


def _raise_bad_tokens(x_t: torch.Tensor, transition: str) -> None:
    hi = MASK if transition == "mask" else N_CLASSES - 1
    bad = (x_t < -1) | (x_t > hi)
    if bool(bad.any()):
        row, col = (int(v) for v in bad.nonzero()[0])
        raise ValueError(
            f"x_t: {int(bad.sum())} tokens outside -1..{hi} for the {transition} transition; "
            f"the first is {int(x_t[row, col])} at row {row}, SNP {col}"
        )


def _np(t: torch.Tensor) -> np.ndarray:
    return t.numpy()


# ---------------------------------------------------------------------------------------------
# entry points
# ---------------------------------------------------------------------------------------------


def diffusion_forward(
    packed: torch.Tensor,
    n_snps: int,
    row_ids: torch.Tensor,
    alpha: torch.Tensor | float,
    transition: str = "mask",
    pi: torch.Tensor | None = None,
    *,
    seed: int = 0,
    offset: int = 0,
) -> torch.Tensor:
    """Noisy tokens x_t ~ q(x_t | x0) from a packed batch ``uint8 [B, ceil(M/4)]``.

    ``row_ids`` int64 [B] (dataset row numbers, they key the random numbers), ``alpha`` float32
    [B] keep probabilities. Returns int8 [B, M]: 0/1/2, MASK (3, mask transition) and -1 where
    x0 is missing.
    """
    code = _transition_code(transition)
    codec._check_packed(packed, n_snps, "diffusion_forward")
    _check_rng(seed, offset)
    b = packed.shape[0]
    packed = packed.contiguous()
    row_ids = _check_row_ids(row_ids, b, packed.device)
    alpha = _row_vector(alpha, b, packed.device, "alpha")
    pi = _check_pi(pi, transition, n_snps, packed.device)
    if packed.is_cuda:
        from genofast.ops import diffusion_triton

        return diffusion_triton.forward(packed, n_snps, row_ids, alpha, code, pi, seed, offset)
    core = native()
    if core is None or not hasattr(core, "diffusion_forward"):
        return diffusion_forward_reference(
            packed, n_snps, row_ids, alpha, transition, pi, seed, offset
        )
    out = torch.empty(b, n_snps, dtype=torch.int8)
    pi_np = _np(pi) if pi is not None else np.empty((0, N_CLASSES), dtype=np.float32)
    core.diffusion_forward(
        _np(packed), _np(row_ids), _np(alpha), code, pi_np, int(seed), int(offset), _np(out)
    )
    return out


def reverse_step(
    logits: torch.Tensor,
    x_t: torch.Tensor,
    row_ids: torch.Tensor,
    alpha_t: torch.Tensor | float,
    alpha_s: torch.Tensor | float,
    transition: str = "mask",
    pi: torch.Tensor | None = None,
    *,
    seed: int = 0,
    offset: int = 0,
    pack_bed: bool = False,
) -> torch.Tensor:
    """One ancestral step x_s ~ p(x_s | x_t) from the model's p(x0 | x_t) logits.

    ``logits`` float32 or bfloat16 [B, M, 3]; ``x_t`` int8 [B, M]; ``alpha_t <= alpha_s`` float32
    [B] (alpha_t < 1). Returns int8 [B, M], or with ``pack_bed`` (alpha_s = 1 everywhere) the
    `.bed` body uint8 [M, ceil(B/4)]. Raises ValueError on tokens outside the transition's
    vocabulary. Validation costs one host sync per call on CUDA.
    """
    code = _transition_code(transition)
    _check_rng(seed, offset)
    if x_t.dtype != torch.int8 or x_t.dim() != 2:
        raise TypeError(f"x_t: expected a 2-D int8 tensor, got {x_t.dtype} {tuple(x_t.shape)}")
    b, m = x_t.shape
    if logits.dtype not in (torch.float32, torch.bfloat16) or tuple(logits.shape) != (b, m, 3):
        raise TypeError(
            f"logits: expected float32 or bfloat16 [{b}, {m}, 3], "
            f"got {logits.dtype} {tuple(logits.shape)}"
        )
    dev = x_t.device
    if logits.device != dev:
        raise ValueError(f"logits: on {logits.device}, x_t is on {dev}")
    row_ids = _check_row_ids(row_ids, b, dev)
    alpha_t = _row_vector(alpha_t, b, dev, "alpha_t")
    alpha_s = _row_vector(alpha_s, b, dev, "alpha_s")
    if bool((alpha_t > alpha_s).any()) or bool((alpha_t >= 1).any()):
        raise ValueError("reverse_step needs alpha_t <= alpha_s and alpha_t < 1 on every row")
    if pack_bed and not bool((alpha_s == 1).all()):
        raise ValueError("pack_bed=True is for the last step: alpha_s must be 1 on every row")
    pi = _check_pi(pi, transition, m, dev)
    logits, x_t = logits.contiguous(), x_t.contiguous()
    if x_t.is_cuda:
        from genofast.ops import diffusion_triton

        out, n_bad = diffusion_triton.reverse_step(
            logits, x_t, row_ids, alpha_t, alpha_s, code, pi, seed, offset, pack_bed
        )
    else:
        core = native()
        if core is None or not hasattr(core, "diffusion_reverse"):
            _raise_bad_tokens(x_t, transition)
            return reverse_step_reference(
                logits, x_t, row_ids, alpha_t, alpha_s, transition, pi, seed, offset, pack_bed
            )
        if pack_bed:
            out = torch.empty(m, codec.n_packed_bytes(b), dtype=torch.uint8)
        else:
            out = torch.empty(b, m, dtype=torch.int8)
        lg = logits.view(torch.int16) if logits.dtype == torch.bfloat16 else logits
        pi_np = _np(pi) if pi is not None else np.empty((0, N_CLASSES), dtype=np.float32)
        n_bad = core.diffusion_reverse(
            _np(lg), _np(x_t), _np(row_ids), _np(alpha_t), _np(alpha_s), code, pi_np,
            int(seed), int(offset), bool(pack_bed), _np(out),
        )  # fmt: skip
    if n_bad:
        _raise_bad_tokens(x_t, transition)
        raise ValueError(f"reverse_step: {n_bad} invalid tokens or MASK left in a .bed sample")
    return out
