"""Allele frequencies and windowed LD (W = 100): genofast vs PLINK and scikit-allel, one run.

Data: simulated cohorts with LD (bench/conftest.py, cached in ``$GENOFAST_CACHE``), by default
5,000 x 50,000 and 2,000 x 200,000; ``GENOFAST_BENCH_STATS_SIZES="300x4000,..."`` changes them
(small sizes to check that the suite runs). Peers run first in each size so that the genofast
rows carry the ratios (peer seconds / genofast seconds) in extra_info, together with:

* frequencies: GB/s of packed bytes read, and that as a fraction of the memory-read bandwidth
  measured in the same run (a Numba parallel sum over a 1 GiB array with the same thread count;
  the single-thread numpy sum is recorded too). ``genotype_counts`` works on the packed array in
  memory; the ``from file`` row adds ``genofast.read_plink`` so it is comparable with
  ``plink2 --freq``, whose wall time includes reading the .bed (page cache) and writing .afreq.
* LD: SNP pairs per second, in total and per thread. ``plink1.9 --r2`` runs with the same thread
  count and ``--ld-window-r2 0.99`` (every pair is computed, few are written). scikit-allel's
  ``rogers_huff_r_between`` runs on the first 500 SNPs in 100-SNP blocks against the next 199
  SNPs (about twice the window pairs; only window pairs are counted, so its rate is generous).
  The installed plink2 (v2.00a3.5) has no windowed r^2 (only ``--ld`` for one pair): skipped.

genofast rows run twice: with one thread (``threads=1``: the per-core figures) and with all of
Numba's threads. Each also records the CPU seconds of one extra call (``cpu_s``, process time):
on a shared machine the one-thread CPU time is the trustworthy per-core measure.

Run: ``PYTHONPATH=src pytest bench/bench_metrics_stats.py`` (add ``--benchmark-disable`` to run
everything once without timing statistics).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from numba import get_num_threads, njit, prange, set_num_threads

pytest.importorskip("pytest_benchmark")

from genofast.metrics.counts import allele_frequencies, genotype_counts  # noqa: E402
from genofast.metrics.ld import _run_end, ld_window  # noqa: E402

WINDOW = 100
ALLEL_LD_SNPS = 500


def _sizes() -> list[tuple[int, int]]:
    raw = os.environ.get("GENOFAST_BENCH_STATS_SIZES", "5000x50000,2000x200000")
    return [tuple(int(v) for v in s.split("x")) for s in raw.split(",") if s]  # type: ignore[misc]


SIZES = _sizes()
IDS = [f"{n}x{m}" for n, m in SIZES]
# seconds per (size, tool, op), filled by the peer rows, read by the genofast rows
_TIMES: dict[tuple[str, str, str], float] = {}


# ---------------------------------------------------------------------------------------------
# memory bandwidth, measured in the same run
# ---------------------------------------------------------------------------------------------


@njit(cache=True, parallel=True)
def _parallel_sum(a: np.ndarray) -> np.uint64:
    s = np.uint64(0)
    for i in prange(a.size):
        s += a[i]
    return s


def _best(fn: Callable[[], object], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


@pytest.fixture(scope="session")
def bandwidth() -> dict[str, float]:
    """Memory-read bandwidth (GB/s) over 1 GiB: a Numba parallel sum with one thread
    (``read_gbps_1thread``) and with all of Numba's threads (``read_gbps_allthreads``), and
    numpy's single-thread sum (``read_gbps_numpy``)."""
    a = np.ones(1 << 27, dtype=np.uint64)
    _parallel_sum(a[:1024])
    out = {"read_gbps_numpy": a.nbytes / _best(lambda: a.sum()) / 1e9}
    for name, n in (("1thread", 1), ("allthreads", None)):
        with _Threads(n):
            out[f"read_gbps_{name}"] = a.nbytes / _best(lambda: _parallel_sum(a)) / 1e9
    return out


class _Threads:
    """Run a block with ``n`` Numba threads (None: leave as is)."""

    def __init__(self, n: int | None) -> None:
        self.n = n
        self.old = get_num_threads()

    def __enter__(self) -> int:
        if self.n is not None:
            set_num_threads(self.n)
        return get_num_threads()

    def __exit__(self, *exc: object) -> None:
        set_num_threads(self.old)


def _pedantic(benchmark, fn: Callable, args: tuple = (), rounds: int = 1, warmup: int = 0):
    """benchmark.pedantic, returning (result, best seconds); with --benchmark-disable (one call,
    no statistics) the seconds of that call."""
    t = time.perf_counter()
    out = benchmark.pedantic(fn, args=args, rounds=rounds, iterations=1, warmup_rounds=warmup)
    wall = time.perf_counter() - t
    stats = getattr(benchmark, "stats", None)
    return out, (stats.stats.min if stats is not None else wall)


def _cpu_seconds(fn: Callable[[], object]) -> float:
    t = time.process_time()
    fn()
    return time.process_time() - t


THREADS = [1, None]
THREAD_IDS = ["1thread", "allthreads"]


def _key(n: int, m: int) -> str:
    return f"{n}x{m}"


def _window_pairs(chrom: np.ndarray, window: int) -> int:
    m = chrom.size
    run_end = _run_end(chrom, m)
    return int(np.minimum(window - 1, run_end - 1 - np.arange(m)).sum())


def _plink(binary: str, args: list[str], tmp: Path) -> None:
    done = subprocess.run([binary, *args, "--out", str(tmp / "out")], capture_output=True)
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed")
    return path


# ---------------------------------------------------------------------------------------------
# allele frequencies
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES, ids=IDS)
def test_freq_plink2(benchmark, ld_cohorts, size, tmp_path) -> None:
    plink2 = _binary("plink2")
    c = ld_cohorts(*size)
    args = ["--bfile", str(c.prefix), "--freq", "--threads", str(get_num_threads())]
    benchmark.group = f"freq {_key(*size)}"
    _, t = _pedantic(benchmark, _plink, (plink2, args, tmp_path), rounds=2)
    _TIMES[(_key(*size), "plink2", "freq")] = t
    benchmark.extra_info.update(threads=get_num_threads(), includes="read .bed + write .afreq")


@pytest.mark.parametrize("size", SIZES, ids=IDS)
def test_freq_allel(benchmark, ld_cohorts, size) -> None:
    allel = pytest.importorskip("allel")
    c = ld_cohorts(*size)
    g = c.genotypes().T  # [M, N] allele_1 counts, no missing
    calls = np.stack([g >= 1, g == 2], axis=-1).astype(np.int8)  # [M, N, 2] haplotype calls
    ga = allel.GenotypeArray(calls)
    del g, calls
    benchmark.group = f"freq {_key(*size)}"
    ac, t = _pedantic(benchmark, lambda: ga.count_alleles(max_allele=1), rounds=2)
    _TIMES[(_key(*size), "allel", "freq")] = t
    benchmark.extra_info.update(threads=1, input="GenotypeArray [M, N, 2] in memory")
    p = allele_frequencies(genotype_counts(c.packed(), c.m))
    assert np.allclose(np.asarray(ac)[:, 1] / np.asarray(ac).sum(1), p)


@pytest.mark.parametrize("threads", THREADS, ids=THREAD_IDS)
@pytest.mark.parametrize("size", SIZES, ids=IDS)
def test_freq_genofast(benchmark, ld_cohorts, bandwidth, size, threads) -> None:
    c = ld_cohorts(*size)
    packed = c.packed()
    with _Threads(threads) as nt:
        genotype_counts(packed, c.m)  # compile / warm
        benchmark.group = f"freq {_key(*size)}"
        counts, t = _pedantic(benchmark, genotype_counts, (packed, c.m), rounds=7, warmup=1)
        cpu = _cpu_seconds(lambda: genotype_counts(packed, c.m))
    gbps = packed.nbytes / t / 1e9
    info = {
        "threads": nt,
        "packed_GB": round(packed.nbytes / 1e9, 3),
        "GB_per_s": round(gbps, 2),
        "GB_per_cpu_s": round(packed.nbytes / cpu / 1e9, 2),
        "cpu_s": round(cpu, 4),
        "fraction_of_read_bandwidth": round(
            gbps / bandwidth["read_gbps_1thread" if nt == 1 else "read_gbps_allthreads"], 3
        ),
        **{k: round(v, 2) for k, v in bandwidth.items()},
    }
    for peer in ("plink2", "allel"):
        if (_key(*size), peer, "freq") in _TIMES:
            info[f"speedup_vs_{peer}"] = round(_TIMES[(_key(*size), peer, "freq")] / t, 1)
    benchmark.extra_info.update(info)
    assert counts.sum() == c.n * c.m


@pytest.mark.parametrize("size", SIZES, ids=IDS)
def test_freq_genofast_from_file(benchmark, ld_cohorts, size) -> None:
    """read_plink + genotype_counts: the whole job plink2 --freq does (minus writing)."""
    try:
        from genofast import read_plink
    except ImportError:
        pytest.skip("genofast.read_plink is not available")
    c = ld_cohorts(*size)

    def job() -> np.ndarray:
        cohort = read_plink(c.prefix)
        return allele_frequencies(genotype_counts(cohort.genotypes, c.m))

    job()
    benchmark.group = f"freq {_key(*size)}"
    _, t = _pedantic(benchmark, job, rounds=3)
    if (_key(*size), "plink2", "freq") in _TIMES:
        benchmark.extra_info["speedup_vs_plink2"] = round(
            _TIMES[(_key(*size), "plink2", "freq")] / t, 1
        )
    benchmark.extra_info["threads"] = get_num_threads()


# ---------------------------------------------------------------------------------------------
# windowed LD
# ---------------------------------------------------------------------------------------------


def test_ld_plink2_windowed_r2_unavailable() -> None:
    plink2 = _binary("plink2")
    out = subprocess.run([plink2, "--help", "r2-unphased"], capture_output=True, text=True)
    if "No help entry" in out.stdout + out.stderr:
        pytest.skip("this plink2 has no windowed r^2 (--r2-unphased came after v2.00a3.5)")
    pytest.skip("plink2 has --r2-unphased: add it as a peer")  # pragma: no cover


@pytest.mark.parametrize("size", SIZES, ids=IDS)
def test_ld_plink19(benchmark, ld_cohorts, size, tmp_path) -> None:
    plink19 = _binary("plink1.9")
    c = ld_cohorts(*size)
    args = [
        "--bfile", str(c.prefix), "--r2", "--ld-window", str(WINDOW), "--ld-window-kb", "1000000",
        "--ld-window-r2", "0.99", "--threads", str(get_num_threads()),
    ]  # fmt: skip
    benchmark.group = f"ld {_key(*size)}"
    _, t = _pedantic(benchmark, _plink, (plink19, args, tmp_path))
    _TIMES[(_key(*size), "plink1.9", "ld")] = t
    pairs = _window_pairs(c.chromosome(), WINDOW)
    benchmark.extra_info.update(
        threads=get_num_threads(),
        pairs=pairs,
        M_pairs_per_s=round(pairs / t / 1e6, 2),
        M_pairs_per_s_per_thread=round(pairs / t / 1e6 / get_num_threads(), 2),
    )


@pytest.mark.parametrize("size", SIZES, ids=IDS)
def test_ld_allel(benchmark, ld_cohorts, size) -> None:
    allel = pytest.importorskip("allel")
    c = ld_cohorts(*size)
    k = min(ALLEL_LD_SNPS, c.m)
    gn = np.ascontiguousarray(c.genotypes()[:, :k].T)  # [k, N] int8

    def blocks() -> None:
        for s in range(0, k, WINDOW):
            allel.rogers_huff_r_between(gn[s : s + WINDOW], gn[s : s + 2 * WINDOW - 1])

    benchmark.group = f"ld {_key(*size)}"
    _, t = _pedantic(benchmark, blocks)
    pairs = _window_pairs(c.chromosome()[:k], WINDOW)
    rate = pairs / t
    _TIMES[(_key(*size), "allel", "ld_rate")] = rate
    benchmark.extra_info.update(threads=1, snps=k, pairs=pairs, M_pairs_per_s=round(rate / 1e6, 2))


@pytest.mark.parametrize("threads", THREADS, ids=THREAD_IDS)
@pytest.mark.parametrize("size", SIZES, ids=IDS)
def test_ld_genofast(benchmark, ld_cohorts, size, threads) -> None:
    c = ld_cohorts(*size)
    packed, chrom = c.packed(), c.chromosome()
    with _Threads(threads) as nt:
        ld_window(packed[:, :256], 1024, None, WINDOW)  # compile / warm
        benchmark.group = f"ld {_key(*size)}"
        r2, t = _pedantic(benchmark, ld_window, (packed, c.m, chrom, WINDOW), rounds=3, warmup=1)
        cpu = _cpu_seconds(lambda: ld_window(packed, c.m, chrom, WINDOW))
    pairs = _window_pairs(chrom, WINDOW)
    info = {
        "threads": nt,
        "pairs": pairs,
        "M_pairs_per_s": round(pairs / t / 1e6, 2),
        "M_pairs_per_s_per_thread": round(pairs / t / 1e6 / nt, 2),
        "M_pairs_per_cpu_s": round(pairs / cpu / 1e6, 2),
        "cpu_s": round(cpu, 4),
        "target_M_pairs_per_s_per_core_at_N5000": 40,
        "mean_r2_adjacent": round(float(np.nanmean(r2[:, 0])), 3),
    }
    if (_key(*size), "plink1.9", "ld") in _TIMES:
        info["speedup_vs_plink1.9"] = round(_TIMES[(_key(*size), "plink1.9", "ld")] / t, 1)
    if (_key(*size), "allel", "ld_rate") in _TIMES:
        info["speedup_vs_allel_per_pair"] = round(
            pairs / t / _TIMES[(_key(*size), "allel", "ld_rate")], 1
        )
    benchmark.extra_info.update(info)
    assert r2.shape == (c.m, WINDOW - 1)
