"""`genofast simulate cattle`: a Holstein-like herd from stdpopsim's HolsteinFriesian_1M13."""

from __future__ import annotations

from pathlib import Path

from genofast.simulate.cohort import SimulationResult, simulate_cohort
from genofast.simulate.pedigree import DairyPedigree
from genofast.simulate.species import CATTLE
from genofast.simulate.traits import TraitSpec, parse_trait


def _traits(traits: list[TraitSpec | str] | None) -> list[TraitSpec]:
    if traits is None:
        return [TraitSpec()]
    return [parse_trait(t, i) if isinstance(t, str) else t for i, t in enumerate(traits)]


def simulate_cattle(
    out: str | Path,
    n_individuals: int = 2000,
    *,
    chromosomes: str | list | None = "1-29",
    panel: str | Path | None = None,
    seed: int | None = None,
    traits: list[TraitSpec | str] | None = None,
    n_founders: int = 1000,
    pedigree: DairyPedigree | None = None,
    segment_length: int = 5_000_000,
    window: int = 20_000,
    panel_spacing: int = 50_000,
    dtwf_generations: int = 100,
    max_bp: int | None = None,
    workers: int | None = None,
    batch_rows: int | None = None,
    progress: bool = True,
) -> SimulationResult:
    """Simulate ``n_individuals`` Holstein cows into PLINK files at prefix ``out``.

    Founders: ``n_founders`` diploids drawn from msprime under stdpopsim's BosTau
    HolsteinFriesian_1M13 model (MacLeod et al. 2013), sampled ``pedigree.n_generations``
    generations ago; then the dairy pedigree (`DairyPedigree`) up to the cohort. ``panel``:
    ``None``/"chip50k" for a synthetic 50k chip, or a TSV (chromosome, position, allele
    frequency) such as the real Holstein 50k panel. ``traits``: TraitSpec objects or spec strings
    (``"name=fat,h2=0.4,n_causal=500,qtl=14:0.25"``); default one trait with h2 0.3 and 1,000
    causal SNPs; ``[]`` for none. Writes PREFIX.bed/.bim/.fam, .pheno, .causal.tsv,
    .pedigree.tsv and .json; same seed, same files.
    """
    ped = DairyPedigree() if pedigree is None else pedigree
    ped.validate()
    if n_founders < 2:
        raise ValueError(f"n_founders must be >= 2, got {n_founders}")
    no_ped = ped.n_generations == 0  # then the cohort is a plain coalescent sample of today
    return simulate_cohort(
        CATTLE,
        out=out,
        n_individuals=n_individuals,
        chromosomes=chromosomes,
        panel=panel,
        seed=seed,
        traits=_traits(traits),
        samples=[(CATTLE.populations[0], int(n_individuals if no_ped else n_founders))],
        sample_time=0.0 if no_ped else float(ped.n_generations),
        pedigree=None if no_ped else ped,
        id_prefix="HF",
        sex=2,
        segment_length=segment_length,
        window=window,
        panel_spacing=panel_spacing,
        dtwf_generations=dtwf_generations,
        max_bp=max_bp,
        workers=workers,
        batch_rows=batch_rows,
        progress=progress,
        command="simulate cattle",
    )
