"""Shared benchmark data: deterministic genotype cohorts with LD, cached outside the repository.

``ld_cohort(n, m)`` (session fixture ``ld_cohorts``) simulates ``n`` diploid individuals x ``m``
SNPs on 10 chromosomes by haplotype copying (Li & Stephens style): each haplotype copies one of 64
founder haplotypes and switches founder with probability 0.02 per SNP (and at every chromosome
start), with a 0.3 % per-allele copying error. The founders themselves carry LD: along each
founder, a latent uniform keeps its value from the previous SNP with probability 0.9 (else it
is redrawn) and the allele is ``latent < frequency``, frequencies from Beta(0.4, 0.4) (many rare
and many common SNPs). r^2 between neighbours is about 0.12 on average and decays to the
background over a few dozen SNPs, so a 100-SNP window sees the whole decay. Positions are
exponential gaps with a chip-like density (2.5 Gb over ``m`` SNPs).

Files go to ``$GENOFAST_CACHE`` (default ``~/.cache/genofast/bench``): a PLINK fileset for the
peers, the packed genotypes (``.npy``) and the map (``.npz``); a cohort is simulated once and
reused by later runs (the file name carries the parameters and a format version).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from numba import njit, prange

_VERSION = 3
N_CHROM = 10
N_FOUNDERS = 64
SWITCH = 0.02
FOUNDER_REPEAT = 0.9
ERROR = 0.003


def cache_dir() -> Path:
    root = os.environ.get("GENOFAST_CACHE")
    path = Path(root) if root else Path.home() / ".cache" / "genofast" / "bench"
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass(frozen=True)
class LDCohort:
    """A cached simulated cohort: ``prefix`` (.bed/.bim/.fam), packed genotypes and the map."""

    n: int
    m: int
    prefix: Path

    def packed(self) -> np.ndarray:
        """Individual-major 2-bit packed ``uint8 [n, ceil(m/4)]``."""
        return np.load(self.prefix.with_suffix(".packed.npy"))

    def chromosome(self) -> np.ndarray:
        return np.load(self.prefix.with_suffix(".map.npz"))["chromosome"]

    def bp(self) -> np.ndarray:
        return np.load(self.prefix.with_suffix(".map.npz"))["bp"]

    def genotypes(self) -> np.ndarray:
        """int8 ``[n, m]`` allele_1 counts (0/1/2) read back from the .bed (for the peers)."""
        from bed_reader import open_bed

        with open_bed(str(self.prefix) + ".bed") as bed:
            return bed.read(dtype="int8")


@njit(cache=True, inline="always")
def _splitmix(state: np.uint64) -> tuple[np.uint64, np.uint64]:
    state = state + np.uint64(0x9E3779B97F4A7C15)
    z = state
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return state, z ^ (z >> np.uint64(31))


@njit(cache=True)
def _founders(freq: np.ndarray, u_repeat: np.ndarray, u_fresh: np.ndarray) -> np.ndarray:
    """int8 [K, m] founder haplotypes with LD and exact allele frequencies: a latent uniform
    repeats its previous value with probability FOUNDER_REPEAT, else is drawn afresh; the allele
    is ``latent < freq``."""
    k, m = u_repeat.shape
    out = np.empty((k, m), dtype=np.int8)
    for f in range(k):
        u = u_fresh[f, 0]
        for j in range(m):
            if j > 0 and u_repeat[f, j] >= FOUNDER_REPEAT:
                u = u_fresh[f, j]
            out[f, j] = u < freq[j]
    return out


@njit(cache=True, parallel=True)
def _simulate(
    founders: np.ndarray, starts: np.ndarray, seed: int, switch: float, error: float, n: int
) -> np.ndarray:
    """int8 [n, m] genotypes: two haplotypes per individual copying founders (one 64-bit draw
    per SNP and haplotype: 24 bits switch, 24 bits error, 16 bits founder choice)."""
    k, m = founders.shape
    sw = np.uint64(switch * (1 << 24))
    er = np.uint64(error * (1 << 24))
    out = np.zeros((n, m), dtype=np.int8)
    for i in prange(n):
        for h in range(2):
            state = np.uint64(seed) * np.uint64(0x100000001B3) + np.uint64(2 * i + h + 1)
            f = 0
            for j in range(m):
                state, z = _splitmix(state)
                if starts[j] or (z & np.uint64(0xFFFFFF)) < sw:
                    f = np.int64(z >> np.uint64(48)) % k
                a = founders[f, j]
                if ((z >> np.uint64(24)) & np.uint64(0xFFFFFF)) < er:
                    a = 1 - a
                out[i, j] += a
    return out


def ld_cohort(n: int, m: int, seed: int = 0) -> LDCohort:
    """The cohort ``n x m`` (simulated and written on first use, then read from the cache)."""
    prefix = cache_dir() / f"ldsim_v{_VERSION}_n{n}_m{m}_s{seed}"
    done = prefix.with_suffix(".done")
    if done.exists():
        return LDCohort(n, m, prefix)
    import torch
    from bed_reader import to_bed

    from genofast.ops import pack

    rng = np.random.default_rng(seed)
    freq = rng.beta(0.4, 0.4, m).clip(0.005, 0.995)
    founders = _founders(freq, rng.random((N_FOUNDERS, m)), rng.random((N_FOUNDERS, m)))
    chrom = np.repeat(np.arange(1, N_CHROM + 1), -(-m // N_CHROM))[:m]
    starts = np.r_[True, chrom[1:] != chrom[:-1]]
    gaps = rng.exponential(2.5e9 / m, m).astype(np.int64) + 1
    bp = np.empty(m, dtype=np.int64)
    for c in np.unique(chrom):  # one loop step per chromosome
        sel = chrom == c
        bp[sel] = np.cumsum(gaps[sel])
    g = _simulate(founders, starts, seed, SWITCH, ERROR, n)
    to_bed(
        prefix.with_suffix(".bed"),
        g,
        properties={
            "chromosome": chrom.astype(str),
            "bp_position": bp,
            "sid": np.array([f"snp{j}" for j in range(m)]),
            "allele_1": np.full(m, "A"),
            "allele_2": np.full(m, "G"),
        },
    )
    np.save(prefix.with_suffix(".packed.npy"), pack(torch.from_numpy(g)).numpy())
    np.savez(prefix.with_suffix(".map.npz"), chromosome=chrom, bp=bp)
    done.touch()
    return LDCohort(n, m, prefix)


@pytest.fixture(scope="session")
def ld_cohorts() -> Callable[[int, int], LDCohort]:
    """``ld_cohorts(n, m)`` -> the cached LD-bearing cohort of that shape."""
    made: dict[tuple[int, int], LDCohort] = {}

    def get(n: int, m: int) -> LDCohort:
        if (n, m) not in made:
            made[(n, m)] = ld_cohort(n, m)
        return made[(n, m)]

    return get
