"""Hot per-element ops: Triton (CUDA), native C++ (CPU), torch reference."""

from genofast.ops.codec import (
    bed_to_packed,
    n_packed_bytes,
    pack,
    pack_bed,
    packed_to_bed,
    unpack,
)
from genofast.ops.diffusion import diffusion_forward, reverse_step

__all__ = [
    "bed_to_packed",
    "diffusion_forward",
    "n_packed_bytes",
    "pack",
    "pack_bed",
    "packed_to_bed",
    "reverse_step",
    "unpack",
]
