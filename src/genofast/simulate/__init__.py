"""Realistic synthetic cohorts from published population-genetic models (`genofast simulate`).

Cattle (`simulate_cattle`): founders are a coalescent sample (msprime, Baumdicker et al. 2022)
under stdpopsim's (Adrion et al. 2020; Lauterbur et al. 2023) BosTau ``HolsteinFriesian_1M13``
model, the piecewise-constant effective sizes that MacLeod et al. (2013, Mol. Biol. Evol.
30:2209) inferred for Holstein-Friesian cattle (Ne 62,000 in the distant past down to 90 in the
last generations), with the species' flat recombination rate (no genetic map, so nothing is
downloaded). The founders are sampled a few generations ago and a dairy-like pedigree is
simulated forward from them to the present (few heavily used sires, many dams; `pedigree`), so
the cohort has half-sib families, dams with daughters, and the long shared haplotypes of a real
herd. Human (`simulate_human`): YRI, CEU and CHB samples under ``OutOfAfrica_3G09``
(Gutenkunst et al. 2009, PLoS Genet. 5:e1000695), no pedigree.

Chromosomes are simulated in independent segments (default 5 Mb) in parallel processes;
linkage disequilibrium from the coalescent does not cross a segment join (in Holstein cattle
r^2 beyond a few Mb is near its background level, and the pedigree's long haplotypes still
span the joins). A SNP panel (the real Holstein 50k layout from a TSV, or a synthetic chip50k)
picks for each panel position the nearby simulated site whose frequency in the final cohort is
closest to the target frequency. Traits are additive (heritability, number of causal SNPs,
optional major QTL such as DGAT1 on BTA14). Output: PLINK .bed/.bim/.fam through the streaming
writer, PREFIX.pheno, PREFIX.causal.tsv, PREFIX.panel.tsv, PREFIX.pedigree.tsv (cattle) and
PREFIX.json with every parameter and the seed. See docs/simulate.md.
"""

from genofast.simulate.cattle import simulate_cattle
from genofast.simulate.cohort import SimulationResult
from genofast.simulate.human import simulate_human
from genofast.simulate.pedigree import DairyPedigree
from genofast.simulate.species import CATTLE, HUMAN, parse_chromosomes
from genofast.simulate.traits import TraitSpec, parse_trait

__all__ = [
    "CATTLE",
    "HUMAN",
    "DairyPedigree",
    "SimulationResult",
    "TraitSpec",
    "parse_chromosomes",
    "parse_trait",
    "simulate_cattle",
    "simulate_human",
]
