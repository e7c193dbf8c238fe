"""Shared fixtures: the real data in ../shared (skipped cleanly when absent) and PLINK binaries."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_REAL = REPO.parent / "shared" / "data" / "real"


def real_data(*parts: str) -> Path:
    """Path under ../shared/data/real; skips the calling test when it is not there."""
    path = SHARED_REAL.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not available: {path.name} (../shared is absent)")
    return path


@pytest.fixture
def agbl4_prefix() -> Path:
    """PLINK prefix of the 1000 Genomes AGBL4 region (2504 x 4053, split1 then split2)."""
    return real_data("agbl4_1000g_chr1") / "AGBL4_biallelic_snps"


@pytest.fixture
def yelmen_prefix() -> Path:
    """PLINK prefix of the 805 genome-wide 1000 Genomes SNPs (2504 x 805, 22 autosomes)."""
    return real_data("yelmen_805snp_1000g") / "805_SNP_1000G_real"


@pytest.fixture
def holstein_panel() -> Path:
    """The real Holstein 50k chip panel: chromosome, position, allele frequency (50,161 rows)."""
    return real_data("holstein50k_summary") / "holstein50k_alt_allele_freq.tsv"


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (.ci/run installs it with apt-get)")
    return path


@pytest.fixture
def plink2() -> str:
    return _binary("plink2")


@pytest.fixture
def plink19() -> str:
    return _binary("plink1.9")
