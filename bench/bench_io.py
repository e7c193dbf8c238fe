"""PLINK I/O and codec throughput: genofast beside bed-reader, and beside this machine's memory
bandwidth (a large numpy copy timed in the same run).

Rows of the table (`make bench`, then `bench/RESULTS.md`):
* read: `genofast.read_plink` (SNP-major `.bed` -> individual-major 2-bit packed) vs bed-reader's
  `read(dtype="int8")` on the same file;
* unpack: packed -> int8 [N, M] (`genofast.ops.unpack`), as a fraction of copy bandwidth;
* write: `PlinkWriter` fed int8 batches of 1,024 individuals vs bed-reader's `to_bed` of the same
  int8 matrix; the writer's peak resident memory is recorded too (constant in N).

Throughput is genotypes per second on the median round (`extra_info`); the summary at the end of
the run (bench/conftest.py) prints the ratios.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import genofast
from genofast.ops import unpack

SHAPES = [(5_000, 50_000), (2_000, 200_000)]
IDS = [f"{n}x{m}" for n, m in SHAPES]
WRITE_BATCH = 1024


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


def _record(benchmark, n_genotypes: int, moved_bytes: int, **extra) -> None:
    median = benchmark.stats.stats.median
    benchmark.extra_info["genotypes_per_s"] = n_genotypes / median
    benchmark.extra_info["bytes_per_s"] = moved_bytes / median
    benchmark.extra_info.update(extra)


@pytest.mark.benchmark(group="bandwidth")
def test_memory_copy(benchmark):
    """The yardstick: a 1 GiB numpy copy (bytes read + written per second)."""
    src = np.ones(1 << 30, dtype=np.uint8)
    dst = np.empty_like(src)
    benchmark.pedantic(np.copyto, args=(dst, src), rounds=5, warmup_rounds=1)
    _record(benchmark, 0, 2 * src.nbytes)


@pytest.mark.parametrize("shape", SHAPES, ids=IDS)
@pytest.mark.benchmark(group="read")
def test_read_genofast(benchmark, ld_cohorts, shape):
    n, m = shape
    bed = str(ld_cohorts(n, m).prefix) + ".bed"
    cohort = benchmark.pedantic(genofast.read_plink, args=(bed,), rounds=5, warmup_rounds=1)
    assert cohort.genotypes.shape == (n, (m + 3) // 4)
    _record(benchmark, n * m, m * ((n + 3) // 4) + n * ((m + 3) // 4), peer="bed-reader")


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
    _record(benchmark, n * m, m * ((n + 3) // 4) + n * m)


@pytest.mark.parametrize("shape", SHAPES, ids=IDS)
@pytest.mark.benchmark(group="unpack")
def test_unpack_genofast(benchmark, ld_cohorts, shape):
    n, m = shape
    packed = torch.from_numpy(ld_cohorts(n, m).packed())
    out = benchmark.pedantic(unpack, args=(packed, m), rounds=5, warmup_rounds=1)
    assert out.shape == (n, m)
    _record(benchmark, n * m, packed.numel() + n * m)


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
    _record(benchmark, n * m, n * m + m * ((n + 3) // 4), peer="bed-reader",
            peak_rss_above_input_bytes=peak)


@pytest.mark.parametrize("shape", SHAPES, ids=IDS)
@pytest.mark.benchmark(group="write")
def test_write_bedreader(benchmark, ld_cohorts, shape, tmp_path):
    from bed_reader import to_bed

    n, m = shape
    genotypes = genofast.read_plink(str(ld_cohorts(n, m).prefix) + ".bed").unpack().numpy()
    out = tmp_path / "peer.bed"
    benchmark.pedantic(to_bed, args=(out, genotypes), rounds=3, warmup_rounds=1)
    _record(benchmark, n * m, n * m + m * ((n + 3) // 4))
