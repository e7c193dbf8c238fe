"""The two published population models we simulate from, and chromosome selection.

Everything comes from stdpopsim's catalogue (species genome, default flat recombination rate per
chromosome, demographic model and its mutation rate), so nothing is downloaded: genetic maps are
never requested.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any


@dataclass(frozen=True)
class PopulationModel:
    """A stdpopsim species + demographic model pair and the populations we sample from."""

    species: str
    model: str
    populations: tuple[str, ...]
    autosomes: tuple[str, ...]
    label: str

    def chromosome(self, chrom: str) -> Any:
        """The stdpopsim Chromosome (length, default recombination and mutation rates)."""
        return _species(self.species).genome.get_chromosome(chrom)

    def length(self, chrom: str) -> int:
        return int(self.chromosome(chrom).length)

    def recombination_rate(self, chrom: str) -> float:
        """Per-bp per-generation rate: the species default (flat; no genetic map)."""
        return float(self.chromosome(chrom).recombination_rate)

    def mutation_rate(self) -> float:
        """The demographic model's own mutation rate (the one its sizes were inferred with)."""
        m = _model(self.species, self.model)
        rate = getattr(m, "mutation_rate", None)
        return float(rate) if rate else float(self.chromosome(self.autosomes[0]).mutation_rate)

    def describe(self) -> dict[str, Any]:
        """Model facts and citations for the output JSON."""
        sp = _species(self.species)
        m = _model(self.species, self.model)
        cites = [str(c) for c in list(m.citations) + list(sp.genome.citations)]
        return {
            "species": self.species,
            "species_name": sp.name,
            "demographic_model": self.model,
            "model_description": m.description,
            "populations": list(self.populations),
            "mutation_rate": self.mutation_rate(),
            "generation_time_years": float(sp.generation_time),
            "citations": cites,
        }


CATTLE = PopulationModel(
    species="BosTau",
    model="HolsteinFriesian_1M13",
    populations=("Holstein_Friesian",),
    autosomes=tuple(str(i) for i in range(1, 30)),
    label="cattle",
)

HUMAN = PopulationModel(
    species="HomSap",
    model="OutOfAfrica_3G09",
    populations=("YRI", "CEU", "CHB"),
    autosomes=tuple(str(i) for i in range(1, 23)),
    label="human",
)


@cache
def _species(species_id: str) -> Any:
    import stdpopsim

    return stdpopsim.get_species(species_id)


@cache
def _model(species_id: str, model_id: str) -> Any:
    return _species(species_id).get_demographic_model(model_id)


def demography(pm: PopulationModel) -> Any:
    """The msprime Demography of the model (cached per process)."""
    return _model(pm.species, pm.model).model


_RANGE = re.compile(r"^\s*(\w+)\s*-\s*(\w+)\s*$")


def parse_chromosomes(spec: str | int | Iterable[str | int] | None,
                      autosomes: Sequence[str]) -> list[str]:
    """Chromosome names from ``"1-29"``, ``"1,5,14"``, ``"1-3,14"``, ``"all"``, an int or a list.

    Returned in genome order without duplicates; raises ValueError naming the bad part.
    """
    order = {c: i for i, c in enumerate(autosomes)}
    if spec is None:
        return list(autosomes)
    parts: list[str]
    if isinstance(spec, int):
        parts = [str(spec)]
    elif isinstance(spec, str):
        if spec.strip().lower() in ("all", "*", ""):
            if spec.strip() == "":
                raise ValueError("empty chromosome list")
            return list(autosomes)
        parts = [p for p in spec.split(",")]
    else:
        parts = [str(p) for p in spec]
    chosen: set[str] = set()
    known = f"{autosomes[0]}-{autosomes[-1]}"
    for raw in parts:
        part = raw.strip()
        if not part:
            raise ValueError(f"bad chromosome list {spec!r}: empty item")
        m = _RANGE.match(part)
        if m:
            a, b = (_norm(x) for x in m.groups())
            if a not in order or b not in order:
                raise ValueError(f"bad chromosome range {part!r}: chromosomes are {known}")
            if order[a] > order[b]:
                raise ValueError(f"bad chromosome range {part!r}: start after end")
            chosen.update(autosomes[order[a]:order[b] + 1])
        else:
            c = _norm(part)
            if c not in order:
                raise ValueError(f"unknown chromosome {part!r}: chromosomes are {known}")
            chosen.add(c)
    if not chosen:
        raise ValueError(f"bad chromosome list {spec!r}: no chromosome")
    return sorted(chosen, key=order.__getitem__)


def _norm(name: str) -> str:
    """'chr14', 'BTA14', '014' -> '14'."""
    s = name.strip()
    for prefix in ("chr", "bta", "CHR", "BTA", "Chr"):
        if s.startswith(prefix):
            s = s[len(prefix):]
    return s.lstrip("0") or s
