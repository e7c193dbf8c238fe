"""`genofast.runtime.keep_freed_memory`: big blocks come from the heap, not fresh mmaps."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import subprocess
import sys

import pytest

libc_name = ctypes.util.find_library("c")
has_mallinfo2 = libc_name is not None and hasattr(ctypes.CDLL(libc_name), "mallinfo2")

# Reports the bytes glibc holds in mmapped blocks (mallinfo2().hblkhd) while a 64 MiB array lives.
PROBE = """
import ctypes, ctypes.util, sys
import numpy as np
from genofast.runtime import keep_freed_memory

class MallInfo2(ctypes.Structure):
    _fields_ = [(f, ctypes.c_size_t) for f in ("arena", "ordblks", "smblks", "hblks", "hblkhd",
                "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.mallinfo2.restype = MallInfo2
applied = keep_freed_memory()
a = np.ones(64 << 20, dtype=np.uint8)
print(int(applied), libc.mallinfo2().hblkhd)
"""


def _probe(keep: str) -> tuple[bool, int]:
    env = {**os.environ, "GENOFAST_KEEP_FREED_MEMORY": keep, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                         env=env, check=True).stdout.split()
    return bool(int(out[0])), int(out[1])


@pytest.mark.skipif(not has_mallinfo2, reason="needs glibc >= 2.33 (mallinfo2)")
def test_big_blocks_stay_in_the_heap() -> None:
    applied, mapped = _probe("1")
    assert applied
    assert mapped < 64 << 20  # the 64 MiB array came from the heap
    applied, mapped = _probe("0")  # opted out: glibc's default serves it with mmap
    assert not applied
    assert mapped >= 64 << 20
