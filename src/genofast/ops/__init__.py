"""Hot per-element ops: Triton (CUDA), native C++ (CPU), torch reference."""

from genofast.ops.codec import (
    bed_to_packed,
    n_packed_bytes,
    pack,
    pack_bed,
    packed_to_bed,
    unpack,
)

__all__ = ["bed_to_packed", "n_packed_bytes", "pack", "pack_bed", "packed_to_bed", "unpack"]
