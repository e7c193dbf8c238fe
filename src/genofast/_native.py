"""Lazy access to the optional native CPU core (`genofast._core`, built from kernels/ by CMake).

`import genofast` never needs it: the GPU machine runs from source with `PYTHONPATH=src`, and a CPU
op falls back to its torch reference when the core is absent. Set `GENOFAST_NO_NATIVE=1` to force
the fallback (tests use it to compare paths).
"""

from __future__ import annotations

import os
from functools import cache
from types import ModuleType


@cache
def native() -> ModuleType | None:
    """The compiled core module, or None when it is not built or disabled by GENOFAST_NO_NATIVE."""
    if os.environ.get("GENOFAST_NO_NATIVE", "") not in ("", "0"):
        return None
    try:
        from genofast import _core
    except ImportError:
        return None
    return _core
