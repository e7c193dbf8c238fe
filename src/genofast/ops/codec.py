"""2-bit genotype codec: pack, unpack and the two PLINK `.bed` transposes.

Layouts (DESIGN.md, "Representations"):

* packed, individual-major: ``uint8 [N, ceil(M/4)]``; SNP ``j`` of a row sits in byte ``j // 4`` at
  bits ``2 * (j % 4)``. Code = number of copies of allele_1 (0, 1, 2); 3 = missing. Pad bits are 0.
* genotypes: ``int8 [N, M]`` with 0/1/2 and -1 for missing.
* ``.bed`` body, SNP-major: ``uint8 [M, ceil(N/4)]``; individual ``i`` of a SNP row in byte
  ``i // 4`` at bits ``2 * (i % 4)``, PLINK codes 00 = hom allele_1, 01 = missing, 10 = het,
  11 = hom allele_2. Pad bits are 0.

Each op has one entry point here that dispatches on the tensor's device: the Triton kernel
(`codec_triton.py`) on CUDA, the native C++ kernel (`kernels/codec.cpp`) on CPU, and the torch
reference (`*_reference`, below) when the native core is not built. Tests compare all three.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from genofast._native import native

# PLINK .bed code -> our code (count of allele_1, 3 = missing), and back.
BED_TO_CODE = (2, 3, 1, 0)
CODE_TO_BED = (3, 2, 0, 1)
_SHIFTS = (0, 2, 4, 6)


def n_packed_bytes(n: int) -> int:
    """Bytes needed for ``n`` 2-bit values."""
    return (n + 3) // 4


# ---------------------------------------------------------------------------------------------
# torch references: short, obviously right, used as the oracle and as the CPU fallback
# ---------------------------------------------------------------------------------------------


def _codes_reference(packed: torch.Tensor, n: int) -> torch.Tensor:
    """uint8 [R, ceil(n/4)] -> the raw 2-bit codes, uint8 [R, n]."""
    shifts = torch.tensor(_SHIFTS, dtype=torch.uint8, device=packed.device)
    codes = (packed.unsqueeze(-1) >> shifts) & 3
    return codes.reshape(packed.shape[0], 4 * packed.shape[1])[:, :n]


def _pack_codes_reference(codes: torch.Tensor) -> torch.Tensor:
    """uint8 [R, n] of 2-bit codes -> uint8 [R, ceil(n/4)], pad bits 0."""
    rows, n = codes.shape
    padded = torch.zeros(rows, 4 * n_packed_bytes(n), dtype=torch.uint8, device=codes.device)
    padded[:, :n] = codes
    quads = padded.view(rows, n_packed_bytes(n), 4)
    return quads[..., 0] | (quads[..., 1] << 2) | (quads[..., 2] << 4) | (quads[..., 3] << 6)


def bed_to_code_bytes(packed: torch.Tensor) -> torch.Tensor:
    """Every 2-bit field of uint8 bytes from PLINK code to allele_1 count (``BED_TO_CODE``).

    Per field (hi, lo): new hi = not hi, new lo = hi xor lo. Bitwise on whole bytes, so no index
    tensor is materialised. Pad fields 00 become 10; callers drop pad fields after unpacking.
    """
    hi = (packed >> 1) & 0x55
    lo = packed & 0x55
    return ((hi ^ 0x55) << 1) | (hi ^ lo)


def code_to_bed_bytes(packed: torch.Tensor) -> torch.Tensor:
    """Every 2-bit field of uint8 bytes from allele_1 count to PLINK code (``CODE_TO_BED``):
    new hi = not hi, new lo = not (hi xor lo)."""
    hi = (packed >> 1) & 0x55
    lo = packed & 0x55
    return ((hi ^ 0x55) << 1) | (hi ^ lo ^ 0x55)


def unpack_reference(packed: torch.Tensor, n_snps: int) -> torch.Tensor:
    """Packed individual-major -> int8 [N, M] with -1 for missing."""
    codes = _codes_reference(packed, n_snps).to(torch.int8)
    return torch.where(codes == 3, torch.full_like(codes, -1), codes)


def pack_reference(genotypes: torch.Tensor) -> torch.Tensor:
    """int8 [N, M] (0/1/2, -1 missing) -> packed individual-major."""
    return _pack_codes_reference(genotypes.to(torch.uint8) & 3)


def bed_to_packed_reference(bed: torch.Tensor, n_individuals: int) -> torch.Tensor:
    """`.bed` body [M, ceil(N/4)] -> packed individual-major [N, ceil(M/4)] (the read transpose)."""
    codes = _codes_reference(bed_to_code_bytes(bed), n_individuals)
    return _pack_codes_reference(codes.t().contiguous())


def packed_to_bed_reference(packed: torch.Tensor, n_snps: int) -> torch.Tensor:
    """Packed individual-major [B, ceil(M/4)] -> `.bed` body [M, ceil(B/4)]: the write transpose."""
    codes = _codes_reference(code_to_bed_bytes(packed), n_snps)
    return _pack_codes_reference(codes.t().contiguous())


def pack_bed_reference(genotypes: torch.Tensor) -> torch.Tensor:
    """int8 [B, M] -> `.bed` body [M, ceil(B/4)]: a sampled batch straight into the file layout."""
    return packed_to_bed_reference(pack_reference(genotypes), genotypes.shape[1])


# ---------------------------------------------------------------------------------------------
# checks shared by every path
# ---------------------------------------------------------------------------------------------


def _check_packed(packed: torch.Tensor, n: int, what: str) -> None:
    if packed.dtype != torch.uint8 or packed.dim() != 2:
        raise TypeError(
            f"{what}: expected a 2-D uint8 tensor, got {packed.dtype} {tuple(packed.shape)}"
        )
    if n < 0 or packed.shape[1] != n_packed_bytes(n):
        raise ValueError(
            f"{what}: {n} values need {n_packed_bytes(n)} bytes per row, "
            f"the tensor has {packed.shape[1]}"
        )


def _check_genotypes(genotypes: torch.Tensor) -> None:
    if genotypes.dtype != torch.int8 or genotypes.dim() != 2:
        raise TypeError(
            f"genotypes: expected a 2-D int8 tensor of 0/1/2 and -1 for missing, "
            f"got {genotypes.dtype} {tuple(genotypes.shape)}"
        )


def _raise_bad_values(genotypes: torch.Tensor) -> None:
    bad = (genotypes < -1) | (genotypes > 2)
    if bool(bad.any()):
        row, col = (int(v) for v in bad.nonzero()[0])
        raise ValueError(
            f"genotypes: {int(bad.sum())} values outside 0/1/2 and -1 (missing); the first is "
            f"{int(genotypes[row, col])} at row {row}, SNP {col}"
        )


def _np(t: torch.Tensor) -> np.ndarray:
    return t.numpy()


# ---------------------------------------------------------------------------------------------
# entry points
# ---------------------------------------------------------------------------------------------


def unpack(packed: torch.Tensor, n_snps: int, out: torch.Tensor | None = None) -> torch.Tensor:
    """Packed individual-major ``uint8 [N, ceil(M/4)]`` -> ``int8 [N, M]`` (-1 = missing).

    ``out``: a contiguous ``int8 [N, M]`` on the same device to write into, so a loop over
    batches reuses one buffer instead of faulting in fresh pages on every call.
    """
    _check_packed(packed, n_snps, "unpack")
    packed = packed.contiguous()
    if out is not None:
        shape = (packed.shape[0], n_snps)
        if out.dtype != torch.int8 or tuple(out.shape) != shape or not out.is_contiguous():
            raise ValueError(f"unpack: out must be a contiguous int8 tensor of shape {shape}, "
                             f"got {out.dtype} {tuple(out.shape)}")
        if out.device != packed.device:
            raise ValueError(f"unpack: out is on {out.device}, packed on {packed.device}")
    if packed.is_cuda:
        from genofast.ops import codec_triton

        return codec_triton.unpack(packed, n_snps, out=out)
    core = native()
    if core is None:
        result = unpack_reference(packed, n_snps)
        return result if out is None else out.copy_(result)
    if out is None:
        out = torch.empty(packed.shape[0], n_snps, dtype=torch.int8)
    core.unpack(_np(packed), _np(out))
    return out


def _pack_checked(genotypes: torch.Tensor, name: str, out_shape: tuple[int, int],
                  reference: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Run the packing op ``name`` (``pack`` or ``pack_bed``) on the genotypes' device; the
    kernels count invalid values as they go, so the values are scanned again only to say which
    one was bad (the reference path scans once)."""
    genotypes = genotypes.contiguous()
    if genotypes.is_cuda:
        from genofast.ops import codec_triton

        out, n_bad = getattr(codec_triton, name)(genotypes)
    else:
        core = native()
        if core is None:
            out, n_bad = reference(genotypes), None
        else:
            out = torch.empty(out_shape, dtype=torch.uint8)
            n_bad = getattr(core, name)(_np(genotypes), _np(out))
    if n_bad is None or n_bad:
        _raise_bad_values(genotypes)
    return out


def pack(genotypes: torch.Tensor) -> torch.Tensor:
    """``int8 [N, M]`` (0/1/2, -1 = missing) -> packed individual-major ``uint8 [N, ceil(M/4)]``.

    Raises ValueError on any value outside {-1, 0, 1, 2}.
    """
    _check_genotypes(genotypes)
    shape = (genotypes.shape[0], n_packed_bytes(genotypes.shape[1]))
    return _pack_checked(genotypes, "pack", shape, pack_reference)


def bed_to_packed(bed: torch.Tensor, n_individuals: int) -> torch.Tensor:
    """`.bed` body ``uint8 [M, ceil(N/4)]`` -> packed individual-major ``uint8 [N, ceil(M/4)]``.

    The 2-bit transpose of the read path, PLINK codes mapped to allele_1 counts on the way.
    (read_plink calls the native kernel directly on the memory-mapped file with its SNP and
    sample selections; this entry point is for tensors already in memory.)
    """
    _check_packed(bed, n_individuals, "bed_to_packed")
    bed = bed.contiguous()
    if bed.is_cuda:
        from genofast.ops import codec_triton

        return codec_triton.bed_to_packed(bed, n_individuals)
    core = native()
    if core is None:
        return bed_to_packed_reference(bed, n_individuals)
    out = torch.empty(n_individuals, n_packed_bytes(bed.shape[0]), dtype=torch.uint8)
    empty = np.empty(0, dtype=np.int64)
    core.bed_to_packed(_np(bed), empty, empty, _np(out))
    return out


def packed_to_bed(packed: torch.Tensor, n_snps: int) -> torch.Tensor:
    """Packed individual-major ``uint8 [B, ceil(M/4)]`` -> `.bed` body ``uint8 [M, ceil(B/4)]``."""
    _check_packed(packed, n_snps, "packed_to_bed")
    packed = packed.contiguous()
    if packed.is_cuda:
        from genofast.ops import codec_triton

        return codec_triton.packed_to_bed(packed, n_snps)
    core = native()
    if core is None:
        return packed_to_bed_reference(packed, n_snps)
    out = torch.empty(n_snps, n_packed_bytes(packed.shape[0]), dtype=torch.uint8)
    core.packed_to_bed(_np(packed), _np(out))
    return out


def pack_bed(genotypes: torch.Tensor) -> torch.Tensor:
    """``int8 [B, M]`` -> `.bed` body ``uint8 [M, ceil(B/4)]``: a batch of individuals packed
    straight into PLINK's SNP-major layout (what the sampler emits). Raises on invalid values."""
    _check_genotypes(genotypes)
    shape = (genotypes.shape[1], n_packed_bytes(genotypes.shape[0]))
    return _pack_checked(genotypes, "pack_bed", shape, pack_bed_reference)
