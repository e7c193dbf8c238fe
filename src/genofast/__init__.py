"""genofast: deep generative models for synthetic SNP genotype cohorts.

The public API is small: read a PLINK fileset into a 2-bit packed `Cohort`, stream genotypes into a
`PlinkWriter` (or `write_plink` a whole cohort), and the ops in `genofast.ops`. Everything else
lives in its own subpackage.
"""

import os
import sys

import torch

# Numba's OpenMP thread pool sets OpenMP's thread count to NUMBA_NUM_THREADS (default: every
# logical CPU) when it starts, and torch reads the same setting from the same libgomp: without
# this, a process limited to OMP_NUM_THREADS=1 ran torch on every core after its first metric
# kernel (training slowed 4x after the first evaluation). Giving numba torch's count makes the
# pool's start a no-op for torch. Only possible before numba is imported.
if "numba" not in sys.modules:
    os.environ.setdefault("NUMBA_NUM_THREADS", str(torch.get_num_threads()))

from genofast.io import Cohort, PlinkWriter, read_plink, write_plink  # noqa: E402

__version__ = "0.1.0"
__all__ = ["Cohort", "PlinkWriter", "__version__", "read_plink", "write_plink"]
