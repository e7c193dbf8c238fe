"""PLINK I/O and codec throughput: genofast beside bed-reader, and beside this machine's memory
bandwidth (a large numpy copy timed in the same run).

Rows of the table (`make bench`, then `bench/RESULTS.md`):
* read: `genofast.read_plink` (SNP-major `.bed` -> individual-major 2-bit packed) vs bed-reader's
  `read(dtype="int8")` on the same file;
* unpack: packed -> int8 [N, M] (`genofast.ops.unpack`), as a fraction of copy bandwidth;
* write: `PlinkWriter` fed int8 batches of 1,024 individuals vs bed-reader's `to_bed` of the same
  int8 matrix; the writer's peak resident memory is recorded too (constant in N);
* vcf: `genofast.io.bed_to_vcf` (a fileset of 2N haplotype rows -> phased BGZF VCF, what
  `genofast sample --vcf` ends with; one thread) vs `plink2 --export vcf bgz` of the N people's
  genotypes (unphased, its default threads): the same N x M calls of 4 characters each.

Peers run first, so each genofast row carries in ``extra_info`` its genotypes per second (median
round), ``x_bedreader`` (bed-reader's median seconds / genofast's) and ``of_copy_bandwidth`` (bytes
read + written per second / those of the 1 GiB numpy copy timed at the start of the run).
"""

from __future__ import annotations

import gzip
import shutil
import subprocess

import numpy as np
import pytest
import torch

import genofast
from genofast.io import SampleTable, bed_to_vcf
from genofast.io.vcf import haplotype_rows
from genofast.ops import unpack

SHAPES = [(5_000, 50_000), (2_000, 200_000)]
IDS = [f"{n}x{m}" for n, m in SHAPES]
WRITE_BATCH = 1024
# median seconds of the yardstick and the peers, filled by the rows that run first
_MEDIAN: dict[str, float] = {}


def _peak_rss_reset() -> bool:
    """Reset this process's peak RSS (Linux: write 5 to /proc/self/clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def _record(benchmark, key: str, n_genotypes: int, moved_bytes: int, peer: str | None = None,
            **extra) -> None:
    """Store this row's median under ``key``; with ``peer``, add the ratio and bandwidth share."""
    median = benchmark.stats.stats.median
    _MEDIAN[key] = median
    info = benchmark.extra_info
    info["bytes_per_s"] = moved_bytes / median
    if n_genotypes:
        info["genotypes_per_s"] = n_genotypes / median
    if peer is not None and peer in _MEDIAN:
        info["x_bedreader"] = _MEDIAN[peer] / median
    if "copy" in _MEDIAN and key != "copy":
        info["of_copy_bandwidth"] = info["bytes_per_s"] / _MEDIAN["copy_bytes_per_s"]
    info.update(extra)


@pytest.mark.benchmark(group="bandwidth")
def test_memory_copy(benchmark):
    """The yardstick: a 1 GiB numpy copy (bytes read + written per second)."""
    src = np.ones(1 << 30, dtype=np.uint8)
    dst = np.empty_like(src)
    benchmark.pedantic(np.copyto, args=(dst, src), rounds=5, warmup_rounds=1)
    _record(benchmark, "copy", 0, 2 * src.nbytes)
    _MEDIAN["copy_bytes_per_s"] = benchmark.extra_info["bytes_per_s"]


@pytest.mark.parametrize("shape", SHAPES, ids=IDS)
@pytest.mark.benchmark(group="read")
def test_read_bedreader(benchmark, ld_cohorts, shape):
    from bed_reader import open_bed

    n, m = shape
    bed = str(ld_cohorts(n, m).prefix) + ".bed"

    def read():
        with open_bed(bed) as b:
            return b.read(dtype="int8")

    g = benchmark.pedantic(read, rounds=3, warmup_rounds=1)
    assert g.shape == (n, m)
    _record(benchmark, f"read-bedreader-{n}x{m}", n * m, m * ((n + 3) // 4) + n * m)


@pytest.mark.parametrize("shape", SHAPES, ids=IDS)
@pytest.mark.benchmark(group="read")
def test_read_genofast(benchmark, ld_cohorts, shape):
    n, m = shape
    bed = str(ld_cohorts(n, m).prefix) + ".bed"
    cohort = benchmark.pedantic(genofast.read_plink, args=(bed,), rounds=5, warmup_rounds=1)
    assert cohort.genotypes.shape == (n, (m + 3) // 4)
    _record(benchmark, f"read-genofast-{n}x{m}", n * m,
            m * ((n + 3) // 4) + n * ((m + 3) // 4), peer=f"read-bedreader-{n}x{m}")


@pytest.mark.parametrize("shape", SHAPES, ids=IDS)
@pytest.mark.benchmark(group="unpack")
def test_unpack_genofast(benchmark, ld_cohorts, shape):
    n, m = shape
    packed = torch.from_numpy(ld_cohorts(n, m).packed())
    out = benchmark.pedantic(unpack, args=(packed, m), rounds=5, warmup_rounds=1)
    assert out.shape == (n, m)
    _record(benchmark, f"unpack-genofast-{n}x{m}", n * m, packed.numel() + n * m,
            output="allocated per call")


@pytest.mark.parametrize("shape", SHAPES, ids=IDS)
@pytest.mark.benchmark(group="unpack")
def test_unpack_genofast_into_buffer(benchmark, ld_cohorts, shape):
    """unpack into a preallocated buffer, as a training loop does (and as the copy yardstick)."""
    n, m = shape
    packed = torch.from_numpy(ld_cohorts(n, m).packed())
    buffer = torch.empty(n, m, dtype=torch.int8)
    benchmark.pedantic(unpack, args=(packed, m, buffer), rounds=5, warmup_rounds=1)
    assert torch.equal(buffer[:3], unpack(packed[:3], m))
    _record(benchmark, f"unpack-genofast-out-{n}x{m}", n * m, packed.numel() + n * m,
            output="preallocated")


@pytest.mark.parametrize("shape", SHAPES, ids=IDS)
@pytest.mark.benchmark(group="write")
def test_write_bedreader(benchmark, ld_cohorts, shape, tmp_path):
    from bed_reader import to_bed

    n, m = shape
    genotypes = torch.from_numpy(ld_cohorts(n, m).packed())
    genotypes = unpack(genotypes, m).numpy()
    out = tmp_path / "peer.bed"
    benchmark.pedantic(to_bed, args=(out, genotypes), rounds=3, warmup_rounds=1)
    _record(benchmark, f"write-bedreader-{n}x{m}", n * m, n * m + m * ((n + 3) // 4))


@pytest.mark.parametrize("shape", SHAPES, ids=IDS)
@pytest.mark.benchmark(group="write")
def test_write_genofast(benchmark, ld_cohorts, shape, tmp_path):
    n, m = shape
    cohort = genofast.read_plink(str(ld_cohorts(n, m).prefix) + ".bed")
    genotypes = cohort.unpack()
    out = tmp_path / "out"
    resettable = _peak_rss_reset()
    base = _peak_rss_bytes()

    def write():
        with genofast.PlinkWriter(out, cohort.snps, n, samples=cohort.samples) as w:
            for start in range(0, n, WRITE_BATCH):
                w.write(start, genotypes[start : start + WRITE_BATCH])

    benchmark.pedantic(write, rounds=3, warmup_rounds=1)
    peak = _peak_rss_bytes() - base if resettable else None
    assert genofast.read_plink(out).genotypes.equal(cohort.genotypes)
    _record(benchmark, f"write-genofast-{n}x{m}", n * m, n * m + m * ((n + 3) // 4),
            peer=f"write-bedreader-{n}x{m}", peak_rss_growth_bytes=peak)


VCF_SHAPE = (5_000, 50_000)  # haplotype rows x SNPs: 2,500 people


@pytest.fixture(scope="module")
def vcf_filesets(ld_cohorts, tmp_path_factory):
    """The simulated cohort's rows as 0/1 haplotypes (allele present), and the people they
    make in pairs: the input of each VCF writer."""
    n, m = VCF_SHAPE
    cohort = genofast.read_plink(str(ld_cohorts(n, m).prefix) + ".bed")
    hap = (cohort.unpack() > 0).to(torch.int8)
    people = [f"p{i}" for i in range(n // 2)]
    folder = tmp_path_factory.mktemp("vcf")
    genofast.write_plink(folder / "haps", hap, cohort.snps, haplotype_rows(people))
    genofast.write_plink(folder / "people", hap[0::2] + hap[1::2], cohort.snps,
                         SampleTable.from_iids(people))
    return folder


@pytest.mark.benchmark(group="vcf")
def test_vcf_plink2(benchmark, vcf_filesets, tmp_path):
    plink2 = shutil.which("plink2")
    if plink2 is None:
        pytest.skip("plink2 is not installed")
    n, m = VCF_SHAPE
    cmd = [plink2, "--bfile", str(vcf_filesets / "people"), "--export", "vcf", "bgz",
           "--out", str(tmp_path / "peer")]

    def export():
        done = subprocess.run(cmd, capture_output=True)
        assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()

    benchmark.pedantic(export, rounds=2, warmup_rounds=1)
    _record(benchmark, "vcf-plink2", n * m // 2, 2 * n * m,
            compressed_bytes=(tmp_path / "peer.vcf.gz").stat().st_size)


@pytest.mark.benchmark(group="vcf")
def test_vcf_genofast(benchmark, vcf_filesets, tmp_path):
    n, m = VCF_SHAPE
    out = tmp_path / "ours.vcf.gz"
    benchmark.pedantic(bed_to_vcf, args=(vcf_filesets / "haps", out), rounds=2, warmup_rounds=1)
    with gzip.open(out, "rt") as f:
        line = next(ln for ln in f if not ln.startswith("#"))
    assert line.count("|") == n // 2
    info = benchmark.extra_info
    _record(benchmark, "vcf-genofast", n * m // 2, 2 * n * m, compressed_bytes=out.stat().st_size)
    if "vcf-plink2" in _MEDIAN:
        info["x_plink2"] = _MEDIAN["vcf-plink2"] / _MEDIAN["vcf-genofast"]
