"""Bit-level Numba building blocks shared by the per-SNP and LD kernels.

* ``popcount``: LLVM ``ctpop`` on uint64 (the loop vectoriser turns it into ``vpopcntq`` where
  the CPU has it), which Numba does not expose itself.
* ``load_u64``: an unaligned little-endian 8-byte load from a flat uint8 array, so that kernels can
  walk packed rows 32 genotypes at a time whatever the row length.
* ``transpose64``: the 64 x 64 bit-matrix transpose (Hacker's Delight 7-3, LSB-first), which turns
  64 individuals x 32 packed SNPs into per-SNP bit planes over those 64 individuals. It is
  emitted as portable LLVM vector IR (8 vectors of 8 x i64, the row swaps of the last three
  rounds as lane shuffles), which the backend lowers to AVX-512 / AVX2 / NEON; ``transpose64_ref``
  is the scalar reference the tests compare it with.
* ``as_packed_numpy``: input normalisation (torch or numpy, any device) for every public function.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

_U64 = np.uint64
MASK_55 = np.uint64(0x5555555555555555)


@intrinsic
def popcount(typingctx: Any, x: types.Type) -> Any:
    """Number of set bits of a uint64 (LLVM ctpop)."""
    if not isinstance(x, types.Integer) or x.bitwidth != 64:
        return None
    sig = types.uint64(x)

    def codegen(context: Any, builder: ir.IRBuilder, signature: Any, args: Any) -> Any:
        return builder.ctpop(args[0])

    return sig, codegen


@intrinsic
def load_u64(typingctx: Any, arr: types.Type, offset: types.Type) -> Any:
    """Unaligned little-endian uint64 load of ``arr[offset : offset + 8]`` (flat uint8 array).

    No bounds check: the caller guarantees ``offset + 8 <= arr.size``.
    """
    if not (isinstance(arr, types.Array) and arr.dtype == types.uint8 and arr.ndim == 1):
        return None
    if not isinstance(offset, types.Integer):
        return None
    sig = types.uint64(arr, offset)

    def codegen(context: Any, builder: ir.IRBuilder, signature: Any, args: Any) -> Any:
        ary = context.make_array(signature.args[0])(context, builder, value=args[0])
        off = args[1]
        if off.type != ir.IntType(64):
            off = builder.sext(off, ir.IntType(64))
        ptr = builder.gep(ary.data, [off], inbounds=True)
        i64 = ir.IntType(64)
        ptr64 = builder.bitcast(ptr, i64.as_pointer())
        return builder.load(ptr64, align=1, typ=i64)

    return sig, codegen


@njit(cache=True, nogil=True, inline="always")
def load_u64_tail(flat: np.ndarray, offset: int, n_valid: int) -> np.uint64:
    """Little-endian load of the ``n_valid`` (< 8) bytes at ``offset``; the rest reads as 0."""
    w = _U64(0)
    for b in range(n_valid):
        w |= _U64(flat[offset + b]) << _U64(8 * b)
    return w


@njit(cache=True, nogil=True, inline="always")
def transpose64_ref(x: np.ndarray) -> None:
    """In-place transpose of a 64 x 64 bit matrix held as 64 uint64 rows (bit c of row r moves
    to bit r of row c)."""
    j = 32
    m = _U64(0x00000000FFFFFFFF)
    while j != 0:
        sj = _U64(j)
        for k0 in range(0, 64, 2 * j):
            for k in range(k0, k0 + j):
                t = ((x[k] >> sj) ^ x[k + j]) & m
                x[k] ^= t << sj
                x[k + j] ^= t
        j >>= 1
        m ^= m << _U64(j)


def as_packed_numpy(packed: Any, n_snps: int) -> np.ndarray:
    """Packed genotypes (torch tensor on any device, or numpy) as a C-contiguous uint8 ndarray,
    with the shape checked against ``n_snps``."""
    if hasattr(packed, "detach"):  # torch.Tensor without importing torch here
        packed = packed.detach().cpu().numpy()
    arr = np.ascontiguousarray(packed)
    if arr.dtype != np.uint8 or arr.ndim != 2:
        raise TypeError(f"packed genotypes: expected 2-D uint8, got {arr.dtype} {arr.shape}")
    if n_snps < 0 or arr.shape[1] != (n_snps + 3) // 4:
        raise ValueError(
            f"packed genotypes: {n_snps} SNPs need {(n_snps + 3) // 4} bytes per row, "
            f"the array has {arr.shape[1]}"
        )
    return arr


_MASKS = (
    0x00000000FFFFFFFF,
    0x0000FFFF0000FFFF,
    0x00FF00FF00FF00FF,
    0x0F0F0F0F0F0F0F0F,
    0x3333333333333333,
    0x5555555555555555,
)


@intrinsic
def transpose64(typingctx: Any, x: types.Type) -> Any:
    """In-place transpose of a 64 x 64 bit matrix held as ``x[0:64]`` (uint64, C-contiguous;
    bit c of row r moves to bit r of row c). Same result as ``transpose64_ref``.

    Rows 8 a .. 8 a + 7 form vector ``V[a]``. Rounds with a row distance j of 32, 16 and 8 swap
    bits between whole vectors; for j = 4, 2, 1 the partner rows are lanes of the same vector,
    reached with a lane shuffle.
    """
    if not (isinstance(x, types.Array) and x.dtype == types.uint64 and x.ndim == 1):
        return None
    sig = types.void(x)

    def codegen(context: Any, builder: ir.IRBuilder, signature: Any, args: Any) -> Any:
        i64 = ir.IntType(64)
        i32 = ir.IntType(32)
        vt = ir.VectorType(i64, 8)
        ary = context.make_array(signature.args[0])(context, builder, value=args[0])
        ptrs = []
        vecs = []
        for a in range(8):
            p = builder.gep(ary.data, [ir.Constant(i64, 8 * a)], inbounds=True)
            p = builder.bitcast(p, vt.as_pointer())
            ptrs.append(p)
            vecs.append(builder.load(p, align=8, typ=vt))

        def splat(v: int) -> ir.Constant:
            return ir.Constant(vt, [v] * 8)

        def swap(u: Any, w: Any, j: int, m: int) -> tuple[Any, Any]:
            t = builder.and_(builder.xor(builder.lshr(u, splat(j)), w), splat(m))
            return builder.xor(u, builder.shl(t, splat(j))), builder.xor(w, t)

        for rnd, (j, step) in enumerate(((32, 4), (16, 2), (8, 1))):
            m = _MASKS[rnd]
            for a in range(8):
                if (a // step) % 2 == 0:
                    vecs[a], vecs[a + step] = swap(vecs[a], vecs[a + step], j, m)
        for rnd, j in ((3, 4), (4, 2), (5, 1)):
            m = _MASKS[rnd]
            lanes = [lane ^ j for lane in range(8)]  # partner lane
            perm = ir.Constant(ir.VectorType(i32, 8), lanes)
            low = ir.Constant(vt, [(1 << 64) - 1 if (lane & j) == 0 else 0 for lane in range(8)])
            for a in range(8):
                v = vecs[a]
                partner = builder.shuffle_vector(v, v, perm)
                t = builder.and_(builder.xor(builder.lshr(v, splat(j)), partner), splat(m))
                t = builder.and_(t, low)  # computed on the lower lane of each pair
                moved = builder.shuffle_vector(t, t, perm)  # ... and applied to its partner
                vecs[a] = builder.xor(builder.xor(v, builder.shl(t, splat(j))), moved)
        for a in range(8):
            builder.store(vecs[a], ptrs[a], align=8)
        return context.get_dummy_value()

    return sig, codegen
