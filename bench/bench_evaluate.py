"""Whole `genofast evaluate` wall time at 5,000 x 50,000 (pytest-benchmark).

Three PLINK filesets (real, synthetic, train; 5,000 individuals x 50,000 SNPs each on 10
chromosomes, with LD: three row blocks of bench/conftest.py's cached simulated population) are
written once into a temporary folder; the benchmark runs the command end to end: reading, SNP
matching, every metric family (frequencies, LD, PCA, GRM, k-NN, privacy), the real-vs-real
reference block and the report.
``GENOFAST_BENCH_EVAL_SHAPE=N,M`` changes the size. Target on the 2-core CPU machine: under one
minute. Per-step seconds (report.json "info.seconds") go to extra_info.

Run: ``PYTHONPATH=src pytest bench/bench_evaluate.py``.
"""

from __future__ import annotations

import json
import os
import resource
import time
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("pytest_benchmark")

from genofast.cli import main  # noqa: E402
from genofast.io import SampleTable, SnpTable, read_plink, write_plink  # noqa: E402

N_CHROM = 10


def _shape() -> tuple[int, int]:
    raw = os.environ.get("GENOFAST_BENCH_EVAL_SHAPE", "5000,50000")
    n, m = (int(v) for v in raw.split(","))
    return n, m


def _haplotypes(n_hap: int, freq: np.ndarray, copy: float, rng: np.random.Generator) -> np.ndarray:
    """Haplotypes [n_hap, M] with LD: each allele copies the previous SNP's allele with
    probability ``copy``, else is drawn afresh from ``freq``."""
    m = len(freq)
    h = np.empty((n_hap, m), dtype=np.int8)
    h[:, 0] = rng.random(n_hap) < freq[0]
    for j in range(1, m):
        fresh = rng.random(n_hap) < freq[j]
        keep = rng.random(n_hap) < copy
        h[:, j] = np.where(keep, h[:, j - 1], fresh)
    return h


def _panel(m: int) -> SnpTable:
    """M SNPs on N_CHROM chromosomes, 5 kb apart, alleles A/G."""
    chrom = np.repeat(np.arange(1, N_CHROM + 1), -(-m // N_CHROM))[:m]
    within = np.arange(m) - np.searchsorted(chrom, chrom)  # index within the chromosome
    return SnpTable(chrom.astype(str), [f"snp{j}" for j in range(m)], np.zeros(m),
                    10_000 + 5_000 * within, np.full(m, "A"), np.full(m, "G"))


@pytest.fixture(scope="module")
def cohorts(tmp_path_factory, request) -> dict[str, Path]:
    """real, synthetic and train filesets of N x M each: three disjoint row blocks of one
    simulated population (bench/conftest.py's cached ``ld_cohorts`` when present, else the
    simple copying chain here)."""
    n, m = _shape()
    out = tmp_path_factory.mktemp("bench_evaluate")
    names = ("real", "synthetic", "train")
    paths = {name: out / name for name in names}
    try:
        source = request.getfixturevalue("ld_cohorts")(3 * n, m)
    except pytest.FixtureLookupError:
        source = None
    if source is not None:
        for k, name in enumerate(names):
            part = read_plink(source.prefix, samples=slice(k * n, (k + 1) * n))
            write_plink(paths[name], part)
        return paths
    rng = np.random.default_rng(0)
    freq = rng.beta(0.6, 1.2, m).clip(0.01, 0.99)
    snps = _panel(m)
    for name in names:
        h = _haplotypes(2 * n, freq, 0.7, rng)
        write_plink(paths[name], torch.from_numpy(h[0::2] + h[1::2]), snps,
                    SampleTable.default(n))
    return paths


def test_evaluate_whole(benchmark, cohorts, tmp_path) -> None:
    n, m = _shape()
    argv = ["evaluate", "--real", str(cohorts["real"]), "--synthetic", str(cohorts["synthetic"]),
            "--train", str(cohorts["train"]), "--out", str(tmp_path / "report"), "--quiet"]
    t0 = time.perf_counter()
    rc = benchmark.pedantic(main, args=(argv,), rounds=1, iterations=1)
    wall = time.perf_counter() - t0
    assert rc == 0
    rep = json.loads((tmp_path / "report" / "report.json").read_text())
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    cpu = rep["info"]["cpu_seconds"]
    benchmark.extra_info.update({
        "shape": f"{n} x {m} (real, synthetic, train)",
        "wall_s": round(wall, 2),
        "cpu_s": cpu["total"],
        "target_s": 60,
        "threads": torch.get_num_threads(),
        "peak_rss_mb": round(peak_mb),
        "steps_s": rep["info"]["seconds"],
    })
    print(f"\ngenofast evaluate {n} x {m}: {wall:.1f} s wall, {cpu['total']:.1f} s CPU "
          f"({torch.get_num_threads()} threads), peak RSS {peak_mb:.0f} MB")
    for step, s in rep["info"]["seconds"].items():
        print(f"  {step:55s} {s:8.2f} s wall {cpu.get(step, 0.0):8.2f} s CPU")
