"""Ancestry and mutations with msprime under a stdpopsim demographic model, in segments.

A chromosome is cut into equal segments of at most ``segment_length`` bp, each simulated
independently (its own seed) in a pool of worker processes: coalescent cost grows faster than
linearly with length (a 158 Mb cattle chromosome takes tens of minutes, a 5 Mb segment about a
second), so segments make a genome take minutes. The price is that haplotypes are independent
across a segment join: linkage disequilibrium from the coalescent stops at segment ends (the
recent pedigree still carries long haplotypes across them).

Each worker keeps only what the panel needs: for each panel position in its segment, the
biallelic site chosen by `panel.select_sites` (frequency in the final cohort closest to the
target), with its alleles and founder haplotypes bit-packed. Nothing else leaves the worker, so
memory stays small whatever the number of sequence variants.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from genofast.simulate.panel import select_sites
from genofast.simulate.species import PopulationModel, demography


@dataclass
class SegmentTask:
    """One segment to simulate: where, with which samples and seed, and its panel targets."""

    index: int
    model: PopulationModel
    chromosome: str
    left: int  # 0-based, inclusive
    right: int  # 0-based, exclusive
    samples: list[tuple[str, int]]  # (population, diploid individuals)
    sample_time: float  # generations before present at which the samples are taken
    recombination_rate: float
    mutation_rate: float
    seed: int
    panel_pos: np.ndarray  # 1-based bp, sorted, within (left, right]
    panel_target: np.ndarray
    window: int
    dtwf_generations: int = 0
    weights: np.ndarray | None = None  # int32 [P, H] cohort copies of each founder haplotype
    n_cohort_haplotypes: int | None = None


@dataclass
class SegmentResult:
    """The chosen site of each panel position of one segment ([P] arrays, -1 / '' for none)."""

    index: int
    n_sites: int
    position: np.ndarray  # int64, 1-based bp
    count: np.ndarray  # int64, estimated derived-allele copies in the cohort
    ancestral: np.ndarray  # str
    derived: np.ndarray  # str
    bits: np.ndarray  # uint8 [P, ceil(H/8)] derived allele per founder haplotype, little-endian


def segment_bounds(length: int, segment_length: int) -> list[tuple[int, int]]:
    """Equal segments of at most ``segment_length`` bp covering [0, length)."""
    n = max(1, -(-length // segment_length))
    edges = np.linspace(0, length, n + 1).round().astype(np.int64)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True)]


def simulate_segment(task: SegmentTask) -> SegmentResult:
    """Run msprime on one segment and keep one site per panel position (runs in a worker)."""
    import msprime

    ss = np.random.SeedSequence(task.seed)
    anc_seed, mut_seed = (int(s) for s in ss.generate_state(2) % (2**31 - 2) + 1)
    model = None
    if task.dtwf_generations > 0:
        model = [msprime.DiscreteTimeWrightFisher(duration=task.dtwf_generations),
                 msprime.StandardCoalescent()]
    samples = [msprime.SampleSet(n, population=pop, time=task.sample_time, ploidy=2)
               for pop, n in task.samples if n > 0]
    ts = msprime.sim_ancestry(
        samples=samples,
        demography=demography(task.model),
        sequence_length=task.right - task.left,
        recombination_rate=task.recombination_rate,
        model=model,
        random_seed=anc_seed,
    )
    ts = msprime.sim_mutations(ts, rate=task.mutation_rate, random_seed=mut_seed)
    n_hap = ts.num_samples

    ids, pos_arr, anc, der = _biallelic_sites(ts)
    pos_arr = pos_arr + task.left + 1
    haps = None
    if task.weights is not None:
        haps = ts.genotype_matrix()[ids]  # int8 [S, H], biallelic sites only
        cnt_arr = haps.sum(axis=1, dtype=np.int64)
    else:
        cnt_arr = _derived_counts(ts, ids)
    pick, est = select_sites(pos_arr, cnt_arr, n_hap, task.panel_pos, task.panel_target,
                             task.window, haps, task.weights, task.n_cohort_haplotypes)

    P = len(task.panel_pos)
    nbytes = -(-n_hap // 8)
    position = np.full(P, -1, dtype=np.int64)
    ancestral = np.full(P, "", dtype="U1")
    derived = np.full(P, "", dtype="U1")
    bits = np.zeros((P, nbytes), dtype=np.uint8)
    ok = pick >= 0
    if ok.any():
        chosen = pick[ok]
        if haps is not None:
            gm = haps[chosen]
        else:
            keep_ids = ids[chosen]
            order = np.argsort(keep_ids)
            sub = ts.delete_sites(np.setdiff1d(np.arange(ts.num_sites), keep_ids))
            rows = np.empty_like(order)
            rows[order] = np.arange(len(order))
            gm = sub.genotype_matrix()[rows]  # [n_chosen, H]
        bits[ok] = np.packbits(gm.astype(np.uint8), axis=1, bitorder="little")
        position[ok] = pos_arr[chosen]
        ancestral[ok] = anc[chosen]
        derived[ok] = der[chosen]
    return SegmentResult(task.index, len(ids), position, est, ancestral, derived, bits)


def _biallelic_sites(ts) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sites with exactly one mutation: ids, 0-based positions, ancestral and derived alleles."""
    import tskit

    t = ts.tables
    msite = t.mutations.site
    ids = np.flatnonzero(np.bincount(msite, minlength=ts.num_sites) == 1)
    mut = np.searchsorted(msite, ids)  # mutations are sorted by site
    anc_all = np.asarray(tskit.unpack_strings(t.sites.ancestral_state,
                                              t.sites.ancestral_state_offset), dtype="U1")
    der_all = np.asarray(tskit.unpack_strings(t.mutations.derived_state,
                                              t.mutations.derived_state_offset), dtype="U1")
    pos = t.sites.position[ids].astype(np.int64)
    return ids, pos, anc_all[ids], der_all[mut]


def _derived_counts(ts, ids: np.ndarray) -> np.ndarray:
    """Derived-allele copies among the samples at single-mutation sites ``ids``."""
    t = ts.tables
    msite = t.mutations.site
    mnode = t.mutations.node
    mut = np.searchsorted(msite, ids)
    site_pos = t.sites.position[ids]
    out = np.zeros(len(ids), dtype=np.int64)
    k = 0
    for tree in ts.trees():
        right = tree.interval.right
        while k < len(ids) and site_pos[k] < right:
            out[k] = tree.num_samples(int(mnode[mut[k]]))
            k += 1
    return out


def default_workers() -> int:
    """Worker processes: the CPUs this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def run_segments(tasks: Iterable[SegmentTask], n_tasks: int, workers: int | None = None,
                 progress: bool = True, desc: str = "coalescent") -> list[SegmentResult]:
    """Simulate every segment (in worker processes when ``workers`` > 1); results in task order.

    ``tasks`` may be a generator: at most ``2 * workers`` tasks are pending at a time, so their
    inputs need not all be in memory. Results do not depend on the number of workers: each
    segment has its own seed.
    """
    from tqdm.auto import tqdm

    workers = default_workers() if workers is None else max(1, int(workers))
    workers = max(1, min(workers, n_tasks))
    results: list[SegmentResult | None] = [None] * n_tasks
    bar = tqdm(total=n_tasks, desc=desc, unit="segment", disable=not progress)
    try:
        if workers <= 1:
            for t in tasks:
                results[t.index] = simulate_segment(t)
                bar.update(1)
        else:
            import multiprocessing as mp
            from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
            from concurrent.futures.process import BrokenProcessPool

            ctx = mp.get_context("spawn")  # no fork: the parent may hold threads (torch, tqdm)
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
                pending: set = set()
                it = iter(tasks)
                try:
                    exhausted = False
                    while pending or not exhausted:
                        while not exhausted and len(pending) < 2 * workers:
                            t = next(it, None)
                            if t is None:
                                exhausted = True
                            else:
                                pending.add(pool.submit(simulate_segment, t))
                        if not pending:
                            break
                        done, pending = wait(pending, return_when=FIRST_COMPLETED)
                        for fut in done:
                            r = fut.result()
                            results[r.index] = r
                            bar.update(1)
                except BrokenProcessPool as err:
                    raise RuntimeError(
                        "a coalescent worker process died (out of memory, or a script that "
                        "calls the simulation without an `if __name__ == \"__main__\":` guard, "
                        "which worker processes re-run); use workers=1 to run in-process"
                    ) from err
                except BaseException:
                    for f in pending:
                        f.cancel()
                    raise
    finally:
        bar.close()
    missing = [i for i, r in enumerate(results) if r is None]
    if missing:
        raise RuntimeError(f"internal: {len(missing)} segments without a result")
    return results  # type: ignore[return-value]
