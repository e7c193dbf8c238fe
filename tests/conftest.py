"""Shared fixtures: the real data in ../shared (skipped cleanly when absent), PLINK binaries, and
the SNP table of the small simulated cohorts."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from genofast._native import native
from genofast.io.tables import SnpTable

REPO = Path(__file__).resolve().parents[1]


def two_chromosome_snps(m: int) -> SnpTable:
    """m SNPs, the first half on chromosome 1 and the rest on 2, 1 kb apart, alleles A/G."""
    half = m // 2
    return SnpTable(chromosome=np.repeat(["1", "2"], [half, m - half]),
                    sid=np.array([f"rs{j}" for j in range(m)]), cm_position=np.zeros(m),
                    bp_position=np.r_[np.arange(half), np.arange(m - half)] * 1000 + 1,
                    allele_1=np.full(m, "A"), allele_2=np.full(m, "G"))


def write_phased_vcf(path: Path, hap: np.ndarray, snps: SnpTable, names: list[str] | None = None,
                     fmt: str = "GT") -> None:
    """A phased VCF (gzip when ``path`` ends in .gz) of haplotypes uint8 [2N, M] (rows 2i and
    2i+1 person i's; 1 = ALT = snps.allele_1). ``fmt`` "GT:DS" adds a dosage field to every
    call, as imputation servers write."""
    import gzip

    n = hap.shape[0] // 2
    names = names or [f"p{i}" for i in range(n)]
    lines = ["##fileformat=VCFv4.2", '##FORMAT=<ID=GT,Number=1,Type=String,Description="GT">',
             "\t".join(["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT",
                        *names])]
    for j in range(hap.shape[1]):
        calls = [f"{hap[2 * i, j]}|{hap[2 * i + 1, j]}" for i in range(n)]
        if fmt == "GT:DS":
            calls = [f"{c}:{int(c[0]) + int(c[2])}" for c in calls]
        lines.append("\t".join([snps.chromosome[j], str(snps.bp_position[j]), snps.sid[j],
                                snps.allele_2[j], snps.allele_1[j], ".", "PASS", ".", fmt,
                                *calls]))
    text = "\n".join(lines) + "\n"
    if path.name.endswith(".gz"):
        with gzip.open(path, "wt") as f:
            f.write(text)
    else:
        path.write_text(text)


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


@pytest.fixture(params=["native", "reference"])
def codec_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Run the test on the native core, then on the torch-reference fallback."""
    if request.param == "native":
        monkeypatch.delenv("GENOFAST_NO_NATIVE", raising=False)
        native.cache_clear()
        if native() is None:
            pytest.skip("native core not built (pip install -e .)")
    else:
        monkeypatch.setenv("GENOFAST_NO_NATIVE", "1")
        native.cache_clear()
    yield request.param
    native.cache_clear()


@pytest.fixture
def run_under_triton_interpreter() -> Callable[[Path], None]:
    """``run(test_file)`` runs the file's ``test_kernel_*`` tests in a fresh pytest process with
    TRITON_INTERPRET=1 set from its start (Triton decides at ``@triton.jit`` time, so it cannot be
    switched inside a process that already imported the kernels); all must pass, none skip."""

    def run(test_file: Path) -> None:
        env = dict(os.environ, TRITON_INTERPRET="1")
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO / "src"), os.environ.get("PYTHONPATH", "")) if p
        )
        cmd = [
            sys.executable, "-m", "pytest", str(test_file), "-q", "-k", "test_kernel_",
            "-p", "no:cacheprovider", "-o", "addopts=", "-rfEs",
        ]  # fmt: skip
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        report = (proc.stdout + proc.stderr)[-6000:]
        assert proc.returncode == 0, f"interpreter run failed (exit {proc.returncode}):\n{report}"
        summary = proc.stdout.strip().splitlines()[-1]
        assert re.search(r"\d+ passed", summary), report
        assert not re.search(r"skipped|failed|error", summary), report

    return run
