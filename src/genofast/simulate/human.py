"""`genofast simulate human`: three human populations from stdpopsim's OutOfAfrica_3G09."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from genofast.simulate.cohort import SimulationResult, simulate_cohort
from genofast.simulate.species import HUMAN
from genofast.simulate.traits import TraitSpec, parse_trait


def population_sizes(n_individuals: int, populations: tuple[str, ...]) -> list[tuple[str, int]]:
    """Split the cohort as evenly as possible, earlier populations taking the remainder."""
    k = len(populations)
    base, extra = divmod(int(n_individuals), k)
    return [(p, base + (1 if i < extra else 0)) for i, p in enumerate(populations)]


def simulate_human(
    out: str | Path,
    n_individuals: int = 1000,
    *,
    chromosomes: str | list | None = "1-22",
    panel: str | Path | None = None,
    seed: int | None = None,
    traits: list[TraitSpec | str] | None = None,
    populations: tuple[str, ...] = HUMAN.populations,
    segment_length: int = 5_000_000,
    window: int = 20_000,
    panel_spacing: int = 50_000,
    max_bp: int | None = None,
    workers: int | None = None,
    batch_rows: int | None = None,
    progress: bool = True,
) -> SimulationResult:
    """Simulate ``n_individuals`` people, split evenly over YRI, CEU and CHB, under the
    Gutenkunst et al. (2009) Out-of-Africa model (stdpopsim HomSap OutOfAfrica_3G09) with each
    chromosome's mean recombination rate. No pedigree: individuals are a coalescent sample. The
    phenotype file carries the traits and a categorical ``population`` column. Memory grows as
    2 x N x M bits for the haplotypes (100,000 people x 57,000 SNPs: about 1.4 GB)."""
    unknown = [p for p in populations if p not in HUMAN.populations]
    if unknown or not populations:
        raise ValueError(f"unknown population(s) {unknown}: choose from "
                         f"{', '.join(HUMAN.populations)}")
    trait_specs = [TraitSpec()] if traits is None else [
        parse_trait(t, i) if isinstance(t, str) else t for i, t in enumerate(traits)]
    n_individuals = int(n_individuals)
    if n_individuals < 1:
        raise ValueError(f"--n-individuals must be >= 1, got {n_individuals}")
    sizes = population_sizes(n_individuals, tuple(populations))
    labels = np.concatenate([np.full(n, p) for p, n in sizes]).astype(object)
    return simulate_cohort(
        HUMAN,
        out=out,
        n_individuals=n_individuals,
        chromosomes=chromosomes,
        panel=panel,
        seed=seed,
        traits=trait_specs,
        samples=sizes,
        sample_time=0.0,
        pedigree=None,
        population_of=labels,
        id_prefix="",
        sex=0,
        segment_length=segment_length,
        window=window,
        panel_spacing=panel_spacing,
        dtwf_generations=0,
        max_bp=max_bp,
        workers=workers,
        batch_rows=batch_rows,
        progress=progress,
        command="simulate human",
    )
