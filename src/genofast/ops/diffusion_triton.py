"""Triton kernels of categorical diffusion (the CUDA path of `genofast.ops.diffusion`).

Semantics, random-number layout and sampling rule are in `diffusion.py`'s docstring; these
kernels reproduce its torch references bit for bit. `diffusion.py` calls the launchers here with
checked, contiguous tensors. Under ``TRITON_INTERPRET=1`` (set before triton is imported) they run
on CPU tensors, which is how the tests exercise them without a GPU.

Kernel design (compatible with triton 3.6 - 3.9: no block pointers, no libdevice, one config per
kernel, every access masked):

* A program owns a tile of BLOCK_B rows x 4 * BLOCK_K SNPs. One ``tl.philox`` call per 4 SNPs
  (counter (j // 4, row_id lo, row_id hi, offset), key = seed), its four words interleaved to
  columns 4g + s with ``tl.join`` + ``tl.reshape`` exactly like the codec's 2-bit unpacking; in
  the forward kernel the Philox group is the packed byte, so one load and one Philox call feed
  the same four SNPs.
* Float work is float32, written op for op as the reference (same order, same constants), and
  the kernels are launched with ``enable_fp_fusion=False`` so no FMA changes a rounding. The one
  float64 op per element (``r * total``) decides the inverse-CDF class exactly as on CPU.
* Logits are read as three strided loads (classes 0, 1, 2) in their own dtype (float32 or
  bfloat16) and widened in registers. The `.bed` variant of the reverse step transposes the
  sampled tile with ``tl.trans`` and packs it with the codec's helpers (`_remap`, `_pack4`).
* Invalid tokens (and, for `.bed`, non-genotype samples) are counted with one ``tl.atomic_add``
  per program into an int32 device scalar, read back once per call.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from genofast.ops import diffusion as _d
from genofast.ops.codec_triton import _device_of, _pack4, _pow2, _remap

_FWD_ROWS, _FWD_BYTES, _FWD_WARPS = 16, 64, 4
_REV_ROWS, _REV_GROUPS, _REV_WARPS = 16, 32, 4
_BED_ROWS, _BED_GROUPS = 32, 16

_THIRD = tl.constexpr(_d.THIRD)
_LOG2E = tl.constexpr(_d.LOG2E)
_LN2_HI = tl.constexpr(_d.LN2_HI)
_LN2_LO = tl.constexpr(_d.LN2_LO)
_EXP_CUT = tl.constexpr(_d.EXP_CUT)
_C0 = tl.constexpr(_d.EXP_C[0])
_C1 = tl.constexpr(_d.EXP_C[1])
_C2 = tl.constexpr(_d.EXP_C[2])
_C3 = tl.constexpr(_d.EXP_C[3])
_C4 = tl.constexpr(_d.EXP_C[4])
_C5 = tl.constexpr(_d.EXP_C[5])
_C6 = tl.constexpr(_d.EXP_C[6])
_TWO32 = tl.constexpr(_d.TWO32)


# ---------------------------------------------------------------------------------------------
# device helpers
# ---------------------------------------------------------------------------------------------


@triton.jit
def _words(seed, offset, rid, groups):
    """uint32 words [R, 4G] for rows with ids rid [R] (int64) and Philox groups [G] (int32):
    column 4g + s holds word s of the group's Philox output."""
    zero = tl.zeros([rid.shape[0], groups.shape[0]], dtype=tl.uint32)
    c0 = zero + groups.to(tl.uint32)[None, :]
    c1 = zero + (rid & 0xFFFFFFFF).to(tl.uint32)[:, None]
    c2 = zero + ((rid >> 32) & 0xFFFFFFFF).to(tl.uint32)[:, None]
    c3 = zero + offset.to(tl.uint32)
    w0, w1, w2, w3 = tl.philox(seed, c0, c1, c2, c3)
    quad = tl.join(tl.join(w0, w2), tl.join(w1, w3))
    return tl.reshape(quad, (rid.shape[0], 4 * groups.shape[0]))


@triton.jit
def _exp_neg(x):
    """exp(x) for x <= 0, float32, exactly as diffusion.exp_reference."""
    xc = tl.maximum(x, _EXP_CUT)
    n = tl.floor(xc * _LOG2E + 0.5)
    r = xc - n * _LN2_HI
    r = r - n * _LN2_LO
    p = r * _C0 + _C1
    p = p * r + _C2
    p = p * r + _C3
    p = p * r + _C4
    p = p * r + _C5
    p = p * r + _C6
    scale = ((n.to(tl.int32) + 127) << 23).to(tl.float32, bitcast=True)
    return tl.where(x < _EXP_CUT, 0.0, p * scale)


@triton.jit
def _scaled(c):
    return c.to(tl.float64) * _TWO32


# ---------------------------------------------------------------------------------------------
# kernels
# ---------------------------------------------------------------------------------------------


@triton.jit(do_not_specialize=["seed", "offset"])
def _forward_kernel(
    src,  # uint8 [B, K]
    row_ids,  # int64 [B]
    alpha,  # float32 [B]
    pi,  # float32 [M, 3] (marginal) or any tensor
    dst,  # int8 [B, M]
    B,
    M,
    K,
    n_tiles_k,
    seed,
    offset,
    TRANSITION: tl.constexpr,
    BLOCK_B: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    pid = tl.program_id(0)
    pid_b = pid // n_tiles_k
    pid_k = pid % n_tiles_k
    rows = pid_b * BLOCK_B + tl.arange(0, BLOCK_B)
    row_ok = rows < B
    rows64 = rows.to(tl.int64)
    cols_b = pid_k * BLOCK_K + tl.arange(0, BLOCK_K)
    x = tl.load(
        src + rows64[:, None] * K + cols_b[None, :],
        mask=row_ok[:, None] & (cols_b < K)[None, :],
        other=0,
    ).to(tl.int32)
    c = x & 3
    quad = tl.join(tl.join(c, (x >> 4) & 3), tl.join((x >> 2) & 3, (x >> 6) & 3))
    codes = tl.reshape(quad, (BLOCK_B, 4 * BLOCK_K))
    rid = tl.load(row_ids + rows, mask=row_ok, other=0)
    rnd = _words(seed, offset, rid, cols_b)
    a = tl.load(alpha + rows, mask=row_ok, other=0.0)[:, None]
    om = 1.0 - a
    cols = pid_k * (4 * BLOCK_K) + tl.arange(0, 4 * BLOCK_K)
    col_ok = cols < M
    if TRANSITION == 0:
        c0 = tl.where(codes == 0, a, 0.0)
        c1 = c0 + tl.where(codes == 1, a, 0.0)
        c2 = c1 + tl.where(codes == 2, a, 0.0)
        tot = c2 + om
        prod = rnd.to(tl.float64) * tot.to(tl.float64)
        cls = (
            (prod >= _scaled(c0)).to(tl.int32)
            + (prod >= _scaled(c1)).to(tl.int32)
            + (prod >= _scaled(c2)).to(tl.int32)
        )
    else:
        if TRANSITION == 1:
            n0 = om * _THIRD
            n1 = n0
            n2 = n0
        else:
            p0 = tl.load(pi + cols * 3, mask=col_ok, other=0.0)[None, :]
            p1 = tl.load(pi + cols * 3 + 1, mask=col_ok, other=0.0)[None, :]
            p2 = tl.load(pi + cols * 3 + 2, mask=col_ok, other=0.0)[None, :]
            n0 = om * p0
            n1 = om * p1
            n2 = om * p2
        c0 = tl.where(codes == 0, a + n0, n0)
        c1 = c0 + tl.where(codes == 1, a + n1, n1)
        tot = c1 + tl.where(codes == 2, a + n2, n2)
        prod = rnd.to(tl.float64) * tot.to(tl.float64)
        cls = (prod >= _scaled(c0)).to(tl.int32) + (prod >= _scaled(c1)).to(tl.int32)
    vals = tl.where(codes == 3, -1, cls)
    tl.store(
        dst + rows64[:, None] * M + cols[None, :],
        vals.to(tl.int8),
        mask=row_ok[:, None] & col_ok[None, :],
    )


@triton.jit(do_not_specialize=["seed", "offset"])
def _reverse_kernel(
    logits,  # float32 | bfloat16 [B, M, 3]
    x_t,  # int8 [B, M]
    row_ids,  # int64 [B]
    alpha_t,  # float32 [B]
    alpha_s,  # float32 [B]
    pi,  # float32 [M, 3] (marginal) or any tensor
    dst,  # int8 [B, M], or uint8 [M, KB] when PACK_BED
    n_bad,  # int32 [1]
    B,
    M,
    KB,
    n_tiles_m,
    seed,
    offset,
    TRANSITION: tl.constexpr,
    PACK_BED: tl.constexpr,
    BLOCK_B: tl.constexpr,
    BLOCK_G: tl.constexpr,
):
    BLOCK_M: tl.constexpr = 4 * BLOCK_G
    pid = tl.program_id(0)
    pid_b = pid // n_tiles_m
    pid_m = pid % n_tiles_m
    rows = pid_b * BLOCK_B + tl.arange(0, BLOCK_B)
    row_ok = rows < B
    rows64 = rows.to(tl.int64)
    cols = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    col_ok = cols < M
    ok = row_ok[:, None] & col_ok[None, :]
    x = tl.load(x_t + rows64[:, None] * M + cols[None, :], mask=ok, other=0).to(tl.int32)
    base = logits + rows64[:, None] * (3 * M) + (cols * 3)[None, :]
    l0 = tl.load(base, mask=ok, other=0.0).to(tl.float32)
    l1 = tl.load(base + 1, mask=ok, other=0.0).to(tl.float32)
    l2 = tl.load(base + 2, mask=ok, other=0.0).to(tl.float32)
    mx = tl.maximum(tl.maximum(l0, l1), l2)
    e0 = _exp_neg(l0 - mx)
    e1 = _exp_neg(l1 - mx)
    e2 = _exp_neg(l2 - mx)
    rid = tl.load(row_ids + rows, mask=row_ok, other=0)
    rnd = _words(seed, offset, rid, pid_m * BLOCK_G + tl.arange(0, BLOCK_G))
    at = tl.load(alpha_t + rows, mask=row_ok, other=0.0)[:, None]
    as_ = tl.load(alpha_s + rows, mask=row_ok, other=0.0)[:, None]
    d = as_ - at
    oms = 1.0 - as_
    if TRANSITION == 0:
        s = (e0 + e1) + e2
        c0 = d * e0
        c1 = c0 + d * e1
        c2 = c1 + d * e2
        tot = c2 + oms * s
        prod = rnd.to(tl.float64) * tot.to(tl.float64)
        cls = (
            (prod >= _scaled(c0)).to(tl.int32)
            + (prod >= _scaled(c1)).to(tl.int32)
            + (prod >= _scaled(c2)).to(tl.int32)
        )
        vals = tl.where((x == 3) | (x == -1), cls, x)
        bad = ((x < -1) | (x > 3)) & ok
    else:
        if TRANSITION == 1:
            p0 = tl.zeros([1, BLOCK_M], dtype=tl.float32) + _THIRD
            p1 = p0
            p2 = p0
        else:
            p0 = tl.load(pi + cols * 3, mask=col_ok, other=0.0)[None, :]
            p1 = tl.load(pi + cols * 3 + 1, mask=col_ok, other=0.0)[None, :]
            p2 = tl.load(pi + cols * 3 + 2, mask=col_ok, other=0.0)[None, :]
        pv = tl.where(x == 0, p0, tl.where(x == 1, p1, p2))
        co = (1.0 - at) * pv
        cv = at + co
        certain = co <= 0.0
        dpi = d * pv
        obs = x >= 0
        r0 = tl.where(x == 0, e0 * co, e0 * cv)
        r0 = tl.where(obs, tl.where(certain, tl.where(x == 0, 1.0, 0.0), r0), e0)
        r1 = tl.where(x == 1, e1 * co, e1 * cv)
        r1 = tl.where(obs, tl.where(certain, tl.where(x == 1, 1.0, 0.0), r1), e1)
        r2 = tl.where(x == 2, e2 * co, e2 * cv)
        r2 = tl.where(obs, tl.where(certain, tl.where(x == 2, 1.0, 0.0), r2), e2)
        a0 = tl.where(obs, tl.where(x == 0, at + dpi, dpi), 1.0)
        a1 = tl.where(obs, tl.where(x == 1, at + dpi, dpi), 1.0)
        a2 = tl.where(obs, tl.where(x == 2, at + dpi, dpi), 1.0)
        rs = (r0 + r1) + r2
        c0 = a0 * (as_ * r0 + (oms * p0) * rs)
        c1 = c0 + a1 * (as_ * r1 + (oms * p1) * rs)
        tot = c1 + a2 * (as_ * r2 + (oms * p2) * rs)
        prod = rnd.to(tl.float64) * tot.to(tl.float64)
        cls = (prod >= _scaled(c0)).to(tl.int32) + (prod >= _scaled(c1)).to(tl.int32)
        bad = ((x < -1) | (x > 2)) & ok
        vals = tl.where(bad, x, cls)
    if PACK_BED:
        bad = bad | (((vals < 0) | (vals > 2)) & ok)
        codes = _remap(vals & 3, 1, True)
        codes = tl.where(row_ok[:, None], codes, 0)  # individuals past B: pad bits 0
        codes_t = tl.trans(codes.to(tl.uint8)).to(tl.int32)  # [BLOCK_M, BLOCK_B]
        out = _pack4(codes_t)  # [BLOCK_M, BLOCK_B // 4]
        kb = pid_b * (BLOCK_B // 4) + tl.arange(0, BLOCK_B // 4)
        tl.store(
            dst + cols.to(tl.int64)[:, None] * KB + kb[None, :],
            out.to(tl.uint8),
            mask=col_ok[:, None] & (kb < KB)[None, :],
        )
    else:
        tl.store(dst + rows64[:, None] * M + cols[None, :], vals.to(tl.int8), mask=ok)
    count = tl.sum(bad.to(tl.int32), axis=None)
    tl.atomic_add(n_bad, count, mask=count > 0)


# ---------------------------------------------------------------------------------------------
# launchers (the functions diffusion.py calls)
# ---------------------------------------------------------------------------------------------


def forward(
    packed: torch.Tensor,
    n_snps: int,
    row_ids: torch.Tensor,
    alpha: torch.Tensor,
    transition: int,
    pi: torch.Tensor | None,
    seed: int,
    offset: int,
    *,
    block_rows: int = _FWD_ROWS,
    block_bytes: int = _FWD_BYTES,
) -> torch.Tensor:
    """Packed x0 ``uint8 [B, ceil(M/4)]`` -> x_t ``int8 [B, M]`` (checked inputs; transition code
    0 mask, 1 uniform, 2 marginal). Block sizes are for tests; keep the defaults."""
    _pow2("block_rows", block_rows)
    _pow2("block_bytes", block_bytes)
    b, k = packed.shape
    out = torch.empty(b, n_snps, dtype=torch.int8, device=packed.device)
    if out.numel() == 0:
        return out
    tiles_k = triton.cdiv(k, block_bytes)
    grid = (triton.cdiv(b, block_rows) * tiles_k,)
    pi_arg = pi if pi is not None else alpha
    with _device_of(packed):
        _forward_kernel[grid](
            packed, row_ids, alpha, pi_arg, out, b, n_snps, k, tiles_k, seed, offset,
            TRANSITION=transition, BLOCK_B=block_rows, BLOCK_K=block_bytes,
            num_warps=_FWD_WARPS, enable_fp_fusion=False,
        )  # fmt: skip
    return out


def reverse_step(
    logits: torch.Tensor,
    x_t: torch.Tensor,
    row_ids: torch.Tensor,
    alpha_t: torch.Tensor,
    alpha_s: torch.Tensor,
    transition: int,
    pi: torch.Tensor | None,
    seed: int,
    offset: int,
    pack_bed: bool,
    *,
    block_rows: int | None = None,
    block_groups: int | None = None,
) -> tuple[torch.Tensor, int]:
    """One reverse step (checked inputs) -> (int8 [B, M] or `.bed` body uint8 [M, ceil(B/4)],
    number of invalid tokens / non-genotype `.bed` samples). Reading the count is the one sync."""
    if block_rows is None:
        block_rows = _BED_ROWS if pack_bed else _REV_ROWS
    if block_groups is None:
        block_groups = _BED_GROUPS if pack_bed else _REV_GROUPS
    _pow2("block_rows", block_rows, 4 if pack_bed else 1)
    _pow2("block_groups", block_groups)
    b, m = x_t.shape
    kb = (b + 3) // 4
    if pack_bed:
        out = torch.empty(m, kb, dtype=torch.uint8, device=x_t.device)
    else:
        out = torch.empty(b, m, dtype=torch.int8, device=x_t.device)
    if b == 0 or m == 0:
        return out, 0
    n_bad = torch.zeros(1, dtype=torch.int32, device=x_t.device)
    tiles_m = triton.cdiv(m, 4 * block_groups)
    grid = (triton.cdiv(b, block_rows) * tiles_m,)
    pi_arg = pi if pi is not None else alpha_t
    with _device_of(x_t):
        _reverse_kernel[grid](
            logits, x_t, row_ids, alpha_t, alpha_s, pi_arg, out, n_bad, b, m, kb, tiles_m,
            seed, offset,
            TRANSITION=transition, PACK_BED=pack_bed, BLOCK_B=block_rows, BLOCK_G=block_groups,
            num_warps=_REV_WARPS, enable_fp_fusion=False,
        )  # fmt: skip
    return out, int(n_bad.item())
