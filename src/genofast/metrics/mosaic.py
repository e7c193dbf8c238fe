"""How a haplotype is pieced together from a panel of haplotypes: switches and mismatches.

Over a region, a real haplotype is a mosaic of a few long stretches copied from other people's
haplotypes, with rare point differences (the copying model of Li & Stephens 2003, behind
phasing and imputation). `copying_path` finds, for each query haplotype, the path through the
panel with the fewest ``mismatches + switch_cost * switches`` (the Viterbi path of that model
with constant costs) and reports the switches and mismatches on it.

Why it is here: the distance to the single nearest haplotype (``bench/haplotype_check.py
nearest``) mixes the two. A held-out real haplotype is one or two switches and a few mismatches
from the training panel; a synthetic haplotype that is a looser mosaic shows more switches
(stretches too short) or more mismatches (alleles no stretch carries), and which of the two says
where a model falls short. Haplotypes are 0/1 (copies of allele 1); -1 marks a missing call,
which matches anything.

genofast.metrics.mosaic
    copying_path(query [n, M], panel [K, M], switch_cost=5.0) -> Mosaic
        switches, mismatches int64 [n], cost float64 [n] of each query's best path
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from numba import njit, prange


@dataclass(frozen=True)
class Mosaic:
    """Per query haplotype: ``switches`` and ``mismatches`` on its best path through the panel,
    and that path's ``cost`` = mismatches + switch_cost * switches."""

    switches: np.ndarray
    mismatches: np.ndarray
    cost: np.ndarray


@njit(cache=True)
def _best_path(q: np.ndarray, panel_t: np.ndarray, switch_cost: float) -> tuple[int, int, float]:
    """Viterbi over panel rows for one query: O(M K) time, an [M, K] bit of traceback."""
    m, k = panel_t.shape
    cost = np.zeros(k)
    switched = np.zeros((m, k), np.bool_)  # the path into (j, row) came from best[j]
    best = np.zeros(m, np.int64)  # the row with the lowest cost after SNP j - 1
    for j in range(m):
        if j > 0:
            b = 0
            for r in range(1, k):
                if cost[r] < cost[b]:
                    b = r
            best[j] = b
            jump = cost[b] + switch_cost
            for r in range(k):
                if jump < cost[r]:
                    cost[r] = jump
                    switched[j, r] = True
        if q[j] >= 0:
            for r in range(k):
                if panel_t[j, r] >= 0 and panel_t[j, r] != q[j]:
                    cost[r] += 1.0
    r = 0
    for i in range(1, k):
        if cost[i] < cost[r]:
            r = i
    total = cost[r]
    switches = mismatches = 0
    for j in range(m - 1, -1, -1):
        if q[j] >= 0 and panel_t[j, r] >= 0 and panel_t[j, r] != q[j]:
            mismatches += 1
        if switched[j, r]:
            switches += 1
            r = best[j]
    return switches, mismatches, total


@njit(parallel=True, cache=True)
def _best_paths(query: np.ndarray, panel_t: np.ndarray, switch_cost: float):
    n = query.shape[0]
    switches = np.zeros(n, np.int64)
    mismatches = np.zeros(n, np.int64)
    cost = np.zeros(n)
    for i in prange(n):
        switches[i], mismatches[i], cost[i] = _best_path(query[i], panel_t, switch_cost)
    return switches, mismatches, cost


def _haplotypes(x: np.ndarray | torch.Tensor, name: str) -> np.ndarray:
    a = x.cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if a.ndim != 2 or a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"{name}: expected a non-empty 2-D array [haplotypes, SNPs], "
                         f"got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"{name}: expected integer haplotypes 0/1 (-1 missing), got {a.dtype}")
    if a.size and (a.min() < -1 or a.max() > 1):
        raise ValueError(f"{name}: haplotypes take 0/1 (-1 missing), found values "
                         f"{a.min()}..{a.max()}; genotypes 0/1/2 are not haplotypes")
    return a.astype(np.int8, copy=False)


def copying_path(
    query: np.ndarray | torch.Tensor, panel: np.ndarray | torch.Tensor, switch_cost: float = 5.0
) -> Mosaic:
    """Each query haplotype's cheapest path through the panel's haplotypes (module docstring).

    ``query`` [n, M] and ``panel`` [K, M] integer 0/1 haplotypes over the same SNPs in the same
    order (-1 missing: costs nothing). A switch costs ``switch_cost`` mismatches. Ties go to the
    lower panel row. Time O(n M K) on all cores; memory M x K bytes per core for the traceback.
    """
    q, p = _haplotypes(query, "query"), _haplotypes(panel, "panel")
    if q.shape[1] != p.shape[1]:
        raise ValueError(f"query has {q.shape[1]} SNPs, panel {p.shape[1]}")
    if not switch_cost > 0:
        raise ValueError(f"switch_cost must be > 0, got {switch_cost}")
    switches, mismatches, cost = _best_paths(
        np.ascontiguousarray(q), np.ascontiguousarray(p.T), float(switch_cost))
    return Mosaic(switches, mismatches, cost)
