"""Triton kernels of the 2-bit genotype codec (the CUDA path of `genofast.ops.codec`).

Layouts, code tables and the torch references that these kernels must match bit for bit are in
`codec.py`; `codec.py` calls the functions here for CUDA tensors (contiguous, already checked).
Under ``TRITON_INTERPRET=1`` (set before triton is imported) the same functions run on CPU
tensors, which is how the tests exercise them without a GPU.

Kernel design (all memory bound; compatible with triton 3.6 - 3.9: no block pointers, no
libdevice, no tensor descriptors, one fixed config per kernel):

* Every program owns one 2-D tile and reads and writes it with row-contiguous accesses: a row
  segment of the tile is a contiguous run of bytes in memory, so a warp's accesses coalesce into
  full sectors, and the int8 side is wide enough (>= 128 B per row segment) to vectorize.
* Bit work is in int32 (uint8/int8 loaded, widened, shifted and masked, narrowed on store).
  A byte is split into its four 2-bit codes with ``tl.join`` + ``tl.reshape`` and four codes are
  fused into a byte with ``tl.reshape`` + ``tl.split``: both keep the four codes of a byte in one
  thread, so no shuffles and no repeated loads of the same byte.
* The SNP-major <-> individual-major transposes load a tile, unpack it to codes, transpose the
  codes with ``tl.trans`` (the compiler stages it through shared memory, in uint8 to keep that
  small) and pack the other way; both the read and the write side stay row-contiguous.
* PLINK <-> allele-count remapping is branch-free bit logic on whole bytes or single codes
  (see `_remap`). Pad bits are written as 0 explicitly: masked loads give code 0, which the
  remap would turn into a non-zero code, so pad positions are cleared before packing.
* Invalid genotypes (outside -1/0/1/2) are counted in the kernel: one ``tl.atomic_add`` per
  program with a non-zero count into an int32 device scalar, read back once per call.
* Row offsets are computed in int64 (a 100,000 x 50,000 int8 batch has 5e9 elements), and the
  tiles are enumerated on a 1-D grid (axis 0 has no 65,535 limit).
"""

from __future__ import annotations

import contextlib

import torch
import triton
import triton.language as tl

# Fixed launch configurations: (rows per tile, packed bytes per tile, warps). Tiles are powers of
# two; the transposes move 128 x 128 genotypes per program (32-byte row segments on both sides).
_UNPACK_ROWS, _UNPACK_BYTES, _UNPACK_WARPS = 16, 64, 4
_PACK_ROWS, _PACK_BYTES, _PACK_WARPS = 16, 64, 4
_T_ROWS, _T_BYTES, _T_WARPS = 128, 32, 8


def _n_bytes(n: int) -> int:
    return (n + 3) // 4


def _pow2(name: str, value: int, minimum: int = 1) -> None:
    if value < minimum or value & (value - 1):
        raise ValueError(f"{name} must be a power of two >= {minimum}, got {value}")


def _device_of(t: torch.Tensor) -> contextlib.AbstractContextManager:
    """Launch on the tensor's own GPU (Triton launches on the current device otherwise)."""
    return torch.cuda.device(t.device) if t.is_cuda else contextlib.nullcontext()


def _check_2d(t: torch.Tensor, dtype: torch.dtype, what: str) -> None:
    if t.dtype != dtype or t.dim() != 2 or not t.is_contiguous():
        raise ValueError(
            f"{what}: expected a contiguous 2-D {dtype} tensor, got {t.dtype} {tuple(t.shape)}"
            f"{'' if t.is_contiguous() else ' (not contiguous)'}"
        )


def _check_width(t: torch.Tensor, n: int, what: str) -> None:
    if n < 0 or t.shape[1] != _n_bytes(n):
        raise ValueError(f"{what}: {n} values need {_n_bytes(n)} bytes per row, got {t.shape[1]}")


# ---------------------------------------------------------------------------------------------
# device helpers
# ---------------------------------------------------------------------------------------------


@triton.jit
def _unpack4(x):
    """int32 bytes [R, K] -> their 2-bit codes [R, 4K], code s of byte k at column 4k + s."""
    c0 = x & 3
    c1 = (x >> 2) & 3
    c2 = (x >> 4) & 3
    c3 = (x >> 6) & 3
    # join(join(c0, c2), join(c1, c3))[..., t, u] is code 2t + u: row-major flattening of the
    # trailing (2, 2) gives columns 4k + 0, 1, 2, 3 in order.
    quad = tl.join(tl.join(c0, c2), tl.join(c1, c3))
    return tl.reshape(quad, (x.shape[0], 4 * x.shape[1]))


@triton.jit
def _pack4(c):
    """int32 codes [R, 4K] (values 0..3) -> int32 bytes [R, K], column 4k + s at bits 2s."""
    quad = tl.reshape(c, (c.shape[0], c.shape[1] // 4, 2, 2))  # [..., t, u] = column 4k + 2t + u
    even, odd = tl.split(quad)  # u = 0: columns 4k, 4k + 2; u = 1: columns 4k + 1, 4k + 3
    s0, s2 = tl.split(even)
    s1, s3 = tl.split(odd)
    return s0 | (s1 << 2) | (s2 << 4) | (s3 << 6)


@triton.jit
def _remap(x, LO: tl.constexpr, TO_BED: tl.constexpr):
    """Map 2-bit fields between PLINK codes and allele_1 counts, every field of x at once.

    LO = 0x55 treats x as whole bytes, LO = 1 as single codes. With each field as (hi, lo):
    bed -> count (00->2, 01->3, 10->1, 11->0): hi' = not hi, lo' = hi xor lo;
    count -> bed (0->3, 1->2, 2->0, 3->1):     hi' = not hi, lo' = not (hi xor lo).
    """
    hi = (x >> 1) & LO
    lo = x & LO
    new_lo = hi ^ lo
    if TO_BED:
        new_lo = new_lo ^ LO
    return new_lo | ((hi ^ LO) << 1)


# ---------------------------------------------------------------------------------------------
# kernels
# ---------------------------------------------------------------------------------------------


@triton.jit
def _unpack_kernel(
    src,  # uint8 [N, K]
    dst,  # int8 [N, M]
    N,
    M,
    K,
    n_tiles_k,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    pid = tl.program_id(0)
    pid_n = pid // n_tiles_k
    pid_k = pid % n_tiles_k
    rows = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    cols_b = pid_k * BLOCK_K + tl.arange(0, BLOCK_K)
    rows64 = rows.to(tl.int64)[:, None]
    in_mask = (rows < N)[:, None] & (cols_b < K)[None, :]
    x = tl.load(src + rows64 * K + cols_b[None, :], mask=in_mask, other=0).to(tl.int32)
    codes = _unpack4(x)
    vals = tl.where(codes == 3, -1, codes)
    cols = pid_k * (4 * BLOCK_K) + tl.arange(0, 4 * BLOCK_K)
    out_mask = (rows < N)[:, None] & (cols < M)[None, :]
    tl.store(dst + rows64 * M + cols[None, :], vals.to(tl.int8), mask=out_mask)


@triton.jit
def _pack_kernel(
    src,  # int8 [N, M]
    dst,  # uint8 [N, K]
    n_bad,  # int32 [1]
    N,
    M,
    K,
    n_tiles_k,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    pid = tl.program_id(0)
    pid_n = pid // n_tiles_k
    pid_k = pid % n_tiles_k
    rows = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    rows64 = rows.to(tl.int64)[:, None]
    cols = pid_k * (4 * BLOCK_K) + tl.arange(0, 4 * BLOCK_K)
    in_mask = (rows < N)[:, None] & (cols < M)[None, :]
    # masked (pad) positions read as 0, so pad bits come out 0
    g = tl.load(src + rows64 * M + cols[None, :], mask=in_mask, other=0).to(tl.int32)
    bad = ((g < -1) | (g > 2)) & in_mask
    count = tl.sum(bad.to(tl.int32), axis=None)
    tl.atomic_add(n_bad, count, mask=count > 0)
    packed = _pack4(g & 3)  # -1 & 3 = 3 (missing); same bits as the reference for any value
    cols_b = pid_k * BLOCK_K + tl.arange(0, BLOCK_K)
    out_mask = (rows < N)[:, None] & (cols_b < K)[None, :]
    tl.store(dst + rows64 * K + cols_b[None, :], packed.to(tl.uint8), mask=out_mask)


@triton.jit
def _transpose_kernel(
    src,  # uint8 [R, SRC_K]: R rows of C 2-bit values
    dst,  # uint8 [C, DST_K]: C rows of R 2-bit values
    R,
    C,
    SRC_K,
    DST_K,
    n_tiles_c,
    TO_BED: tl.constexpr,
    BLOCK_R: tl.constexpr,
    BLOCK_CB: tl.constexpr,
):
    """2-bit transpose with remap: src tile [BLOCK_R rows, BLOCK_CB bytes] -> dst tile
    [4 * BLOCK_CB rows, BLOCK_R / 4 bytes]."""
    pid = tl.program_id(0)
    pid_r = pid // n_tiles_c
    pid_c = pid % n_tiles_c
    r = pid_r * BLOCK_R + tl.arange(0, BLOCK_R)
    cb = pid_c * BLOCK_CB + tl.arange(0, BLOCK_CB)
    in_mask = (r < R)[:, None] & (cb < SRC_K)[None, :]
    x = tl.load(src + r.to(tl.int64)[:, None] * SRC_K + cb[None, :], mask=in_mask, other=0)
    x = _remap(x.to(tl.int32), 0x55, TO_BED)
    codes = _unpack4(x)  # [BLOCK_R, 4 * BLOCK_CB]
    # src rows past R become the pad bits of each dst row's last byte: they must be 0
    codes = tl.where((r < R)[:, None], codes, 0)
    codes_t = tl.trans(codes.to(tl.uint8)).to(tl.int32)  # [4 * BLOCK_CB, BLOCK_R]
    out = _pack4(codes_t)  # [4 * BLOCK_CB, BLOCK_R // 4]
    d = pid_c * (4 * BLOCK_CB) + tl.arange(0, 4 * BLOCK_CB)
    db = pid_r * (BLOCK_R // 4) + tl.arange(0, BLOCK_R // 4)
    # dst rows past C come from src pad bits: never stored
    out_mask = (d < C)[:, None] & (db < DST_K)[None, :]
    tl.store(dst + d.to(tl.int64)[:, None] * DST_K + db[None, :], out.to(tl.uint8), mask=out_mask)


@triton.jit
def _pack_bed_kernel(
    src,  # int8 [B, M]
    dst,  # uint8 [M, KB]
    n_bad,  # int32 [1]
    B,
    M,
    KB,
    n_tiles_m,
    BLOCK_B: tl.constexpr,
    BLOCK_M: tl.constexpr,
):
    """int8 tile [BLOCK_B individuals, BLOCK_M SNPs] -> `.bed` tile [BLOCK_M, BLOCK_B / 4]."""
    pid = tl.program_id(0)
    pid_b = pid // n_tiles_m
    pid_m = pid % n_tiles_m
    b = pid_b * BLOCK_B + tl.arange(0, BLOCK_B)
    m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    in_mask = (b < B)[:, None] & (m < M)[None, :]
    g = tl.load(src + b.to(tl.int64)[:, None] * M + m[None, :], mask=in_mask, other=0)
    g = g.to(tl.int32)
    bad = ((g < -1) | (g > 2)) & in_mask
    count = tl.sum(bad.to(tl.int32), axis=None)
    tl.atomic_add(n_bad, count, mask=count > 0)
    codes = _remap(g & 3, 1, True)
    codes = tl.where((b < B)[:, None], codes, 0)  # individuals past B: pad bits 0
    codes_t = tl.trans(codes.to(tl.uint8)).to(tl.int32)  # [BLOCK_M, BLOCK_B]
    out = _pack4(codes_t)  # [BLOCK_M, BLOCK_B // 4]
    kb = pid_b * (BLOCK_B // 4) + tl.arange(0, BLOCK_B // 4)
    out_mask = (m < M)[:, None] & (kb < KB)[None, :]
    tl.store(dst + m.to(tl.int64)[:, None] * KB + kb[None, :], out.to(tl.uint8), mask=out_mask)


# ---------------------------------------------------------------------------------------------
# launchers (the functions codec.py calls)
# ---------------------------------------------------------------------------------------------


def unpack(
    packed: torch.Tensor,
    n_snps: int,
    *,
    out: torch.Tensor | None = None,
    block_rows: int = _UNPACK_ROWS,
    block_bytes: int = _UNPACK_BYTES,
) -> torch.Tensor:
    """Packed individual-major ``uint8 [N, ceil(M/4)]`` -> ``int8 [N, M]``, code 3 -> -1,
    into ``out`` when given (contiguous, checked by the caller).

    The block sizes are for tests (small tiles exercise tile seams); keep the defaults.
    """
    _check_2d(packed, torch.uint8, "unpack")
    _check_width(packed, n_snps, "unpack")
    _pow2("block_rows", block_rows)
    _pow2("block_bytes", block_bytes)
    n, k = packed.shape
    if out is None:
        out = torch.empty(n, n_snps, dtype=torch.int8, device=packed.device)
    if out.numel() == 0:
        return out
    tiles_k = triton.cdiv(k, block_bytes)
    grid = (triton.cdiv(n, block_rows) * tiles_k,)
    with _device_of(packed):
        _unpack_kernel[grid](
            packed, out, n, n_snps, k, tiles_k,
            BLOCK_N=block_rows, BLOCK_K=block_bytes, num_warps=_UNPACK_WARPS,
        )  # fmt: skip
    return out


def pack(
    genotypes: torch.Tensor,
    *,
    block_rows: int = _PACK_ROWS,
    block_bytes: int = _PACK_BYTES,
) -> tuple[torch.Tensor, int]:
    """``int8 [N, M]`` -> (packed ``uint8 [N, ceil(M/4)]``, number of values outside -1..2).

    Values are packed as ``value & 3`` whatever they are (as the reference does); the caller
    raises when the count is non-zero. Reading the count back is the call's one sync.
    """
    _check_2d(genotypes, torch.int8, "pack")
    _pow2("block_rows", block_rows)
    _pow2("block_bytes", block_bytes)
    n, m = genotypes.shape
    k = _n_bytes(m)
    out = torch.empty(n, k, dtype=torch.uint8, device=genotypes.device)
    if out.numel() == 0:
        return out, 0
    n_bad = torch.zeros(1, dtype=torch.int32, device=genotypes.device)
    tiles_k = triton.cdiv(k, block_bytes)
    grid = (triton.cdiv(n, block_rows) * tiles_k,)
    with _device_of(genotypes):
        _pack_kernel[grid](
            genotypes, out, n_bad, n, m, k, tiles_k,
            BLOCK_N=block_rows, BLOCK_K=block_bytes, num_warps=_PACK_WARPS,
        )  # fmt: skip
    return out, int(n_bad.item())


def _transpose(
    src: torch.Tensor, n_cols: int, to_bed: bool, block_rows: int, block_bytes: int, what: str
) -> torch.Tensor:
    """src ``uint8 [R, ceil(C/4)]`` -> dst ``uint8 [C, ceil(R/4)]`` with the code remap."""
    _check_2d(src, torch.uint8, what)
    _check_width(src, n_cols, what)
    _pow2("block_rows", block_rows, 4)
    _pow2("block_bytes", block_bytes)
    r, src_k = src.shape
    dst_k = _n_bytes(r)
    out = torch.empty(n_cols, dst_k, dtype=torch.uint8, device=src.device)
    if out.numel() == 0:
        return out
    tiles_c = triton.cdiv(src_k, block_bytes)
    grid = (triton.cdiv(r, block_rows) * tiles_c,)
    with _device_of(src):
        _transpose_kernel[grid](
            src, out, r, n_cols, src_k, dst_k, tiles_c,
            TO_BED=to_bed, BLOCK_R=block_rows, BLOCK_CB=block_bytes, num_warps=_T_WARPS,
        )  # fmt: skip
    return out


def bed_to_packed(
    bed: torch.Tensor,
    n_individuals: int,
    *,
    block_rows: int = _T_ROWS,
    block_bytes: int = _T_BYTES,
) -> torch.Tensor:
    """`.bed` body ``uint8 [M, ceil(N/4)]`` -> packed individual-major ``uint8 [N, ceil(M/4)]``.

    PLINK codes become allele_1 counts (00->2, 01->3, 10->1, 11->0). ``block_rows`` SNPs by
    ``block_bytes`` bed bytes per tile; the defaults are the tuned ones.
    """
    return _transpose(bed, n_individuals, False, block_rows, block_bytes, "bed_to_packed")


def packed_to_bed(
    packed: torch.Tensor,
    n_snps: int,
    *,
    block_rows: int = _T_ROWS,
    block_bytes: int = _T_BYTES,
) -> torch.Tensor:
    """Packed individual-major ``uint8 [B, ceil(M/4)]`` -> `.bed` body ``uint8 [M, ceil(B/4)]``.

    Counts become PLINK codes (0->11, 1->10, 2->00, 3->01); pad bits are 0.
    """
    return _transpose(packed, n_snps, True, block_rows, block_bytes, "packed_to_bed")


def pack_bed(
    genotypes: torch.Tensor,
    *,
    block_rows: int = _T_ROWS,
    block_cols: int = 4 * _T_BYTES,
) -> tuple[torch.Tensor, int]:
    """``int8 [B, M]`` -> (`.bed` body ``uint8 [M, ceil(B/4)]``, number of values outside -1..2).

    The sampler's write path in one pass: validate, remap, transpose and pack. ``block_rows``
    individuals by ``block_cols`` SNPs per tile.
    """
    _check_2d(genotypes, torch.int8, "pack_bed")
    _pow2("block_rows", block_rows, 4)
    _pow2("block_cols", block_cols)
    b, m = genotypes.shape
    kb = _n_bytes(b)
    out = torch.empty(m, kb, dtype=torch.uint8, device=genotypes.device)
    if out.numel() == 0:
        return out, 0
    n_bad = torch.zeros(1, dtype=torch.int32, device=genotypes.device)
    tiles_m = triton.cdiv(m, block_cols)
    grid = (triton.cdiv(b, block_rows) * tiles_m,)
    with _device_of(genotypes):
        _pack_bed_kernel[grid](
            genotypes, out, n_bad, b, m, kb, tiles_m,
            BLOCK_B=block_rows, BLOCK_M=block_cols, num_warps=_T_WARPS,
        )  # fmt: skip
    return out, int(n_bad.item())
