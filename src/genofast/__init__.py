"""genofast: deep generative models for synthetic SNP genotype cohorts.

The public API is small: read a PLINK fileset into a 2-bit packed `Cohort`, stream genotypes into a
`PlinkWriter` (or `write_plink` a whole cohort), and the ops in `genofast.ops`. Everything else
lives in its own subpackage.
"""

from genofast.io import Cohort, PlinkWriter, read_plink, write_plink

__version__ = "0.1.0"
__all__ = ["Cohort", "PlinkWriter", "__version__", "read_plink", "write_plink"]
