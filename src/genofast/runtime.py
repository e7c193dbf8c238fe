"""Process settings the `genofast` command makes for itself (not the library: they are global).

`keep_freed_memory`: glibc's malloc serves every block above its mmap threshold (128 KiB, rising to
at most 32 MiB as big blocks are freed) with a fresh mmap and gives it back with munmap on free. A
sampling step allocates and frees tensors of batch x SNPs x 3 floats (50 MB at 1,024 x 4,053), so
every step paid a munmap and then a page fault per 4 KiB page to map and zero the memory again. On
the 2-vCPU development VM that was 42% of `genofast sample`'s CPU time, spent in the kernel (1,024
x 4,053 SNPs, 10 steps: 50.7 s wall and 37.8 s system CPU, against 28.6 s and 3.0 s with the blocks
kept; `bench/bench_sample.py`, bench/RESULTS.md). Raising the mmap threshold to 1 GiB and the trim
threshold to 2 GiB lets freed blocks stay in the heap for the next step. The cost: memory freed
inside the process is reused, not returned to the system before exit, which suits a command that
runs one job and ends.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

M_TRIM_THRESHOLD = -1  # <malloc.h>
M_MMAP_THRESHOLD = -3
#: Blocks below this come from the heap and are kept there when freed.
MMAP_THRESHOLD_BYTES = 1 << 30
#: Free memory at the top of the heap kept rather than returned (mallopt takes an int).
TRIM_THRESHOLD_BYTES = 2**31 - 1
#: Set to 0 to leave malloc as it is.
ENV_VAR = "GENOFAST_KEEP_FREED_MEMORY"


def keep_freed_memory() -> bool:
    """Make glibc keep freed blocks up to 1 GiB for reuse (module docstring). Returns whether
    the settings were applied: False off glibc (macOS, musl, Windows) or with
    GENOFAST_KEEP_FREED_MEMORY=0."""
    if os.environ.get(ENV_VAR, "1") == "0":
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
                and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))
