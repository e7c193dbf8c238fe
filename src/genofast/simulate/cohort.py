"""The simulation pipeline shared by the cattle and human commands.

coalescent segments (founder haplotypes at panel candidates) -> pedigree (mosaics of founder
haplotypes) -> panel choice on cohort frequencies -> traits -> PLINK fileset streamed batch by
batch, plus PREFIX.pheno, PREFIX.causal.tsv, PREFIX.pedigree.tsv (when there is a pedigree) and
PREFIX.json with every parameter. Same parameters and seed, same files: every random stream is
derived from the seed, and segments have their own seeds whatever the number of workers.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from genofast.simulate.coalescent import SegmentResult, SegmentTask, run_segments, segment_bounds
from genofast.simulate.panel import (
    MATCH_TOLERANCE,
    MAX_WIDEN,
    Panel,
    chip_panel,
    orient,
    read_panel,
)
from genofast.simulate.pedigree import (
    DairyPedigree,
    Genotyper,
    Mosaics,
    PedigreeResult,
    founder_bit_matrix,
    founder_weights,
    simulate_dairy_pedigree,
)
from genofast.simulate.species import PopulationModel, parse_chromosomes
from genofast.simulate.traits import TraitSpec, pick_causal, simulate_phenotypes

# random streams derived from the seed
_PANEL, _PEDIGREE, _TRAITS, _SEGMENTS = 1, 2, 3, 4


@dataclass
class SimulationResult:
    """What a simulation wrote, with the numbers a caller most often wants."""

    prefix: Path
    files: dict[str, Path]
    n_individuals: int
    n_snps: int
    snps_per_chromosome: dict[str, int]
    allele_frequency: np.ndarray  # allele_1 frequency per SNP, in file order
    metadata: dict[str, Any]
    iids: np.ndarray
    pedigree: PedigreeResult | None = None
    phenotypes: np.ndarray | None = None
    trait_names: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


def genofast_version() -> str:
    """The package version (installed metadata, else the package attribute)."""
    try:
        from importlib.metadata import version

        return version("genofast")
    except Exception:
        import genofast

        return str(getattr(genofast, "__version__", "unknown"))


def resolve_seed(seed: int | None) -> int:
    """A fixed seed, or a fresh one (recorded in the JSON so the run can be repeated)."""
    if seed is None:
        return int(np.random.SeedSequence().entropy % (2**32))
    seed = int(seed)
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    return seed


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, stream]))


def _segment_seed(seed: int, chrom_index: int, seg_index: int) -> int:
    ss = np.random.SeedSequence([seed, _SEGMENTS, chrom_index, seg_index])
    return int(ss.generate_state(1)[0])


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def simulate_cohort(
    model: PopulationModel,
    *,
    out: str | Path,
    n_individuals: int,
    chromosomes: str | list | None,
    panel: str | Path | None,
    seed: int | None,
    traits: list[TraitSpec],
    samples: list[tuple[str, int]],
    sample_time: float,
    pedigree: DairyPedigree | None,
    population_of: np.ndarray | None = None,
    id_prefix: str = "ind",
    sex: int = 0,
    segment_length: int = 5_000_000,
    window: int = 20_000,
    panel_spacing: int = 50_000,
    dtwf_generations: int = 0,
    max_bp: int | None = None,
    workers: int | None = None,
    batch_rows: int | None = None,
    progress: bool = True,
    command: str = "simulate",
) -> SimulationResult:
    """Simulate and write one cohort; the cattle and human functions fill in the model parts.

    ``samples``: coalescent sample (population, diploid count): the founders of ``pedigree``, or
    the cohort itself when ``pedigree`` is None (then their total must be ``n_individuals``).
    ``population_of``: per cohort row, a population label written to the phenotype file.
    ``max_bp``: simulate only the first ``max_bp`` of each chromosome (quick runs, tests); panel
    rows beyond it are dropped.
    """
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    n_individuals = int(n_individuals)
    if n_individuals < 1:
        raise ValueError(f"--n-individuals must be >= 1, got {n_individuals}")
    if segment_length < 10_000:
        raise ValueError(f"segment length must be >= 10 kb, got {segment_length} bp")
    if window < 1:
        raise ValueError(f"panel window must be >= 1 bp, got {window}")
    for t in traits:
        t.validate()
    names = [t.name for t in traits]
    if len(set(names)) != len(names):
        raise ValueError(f"trait names must be distinct: {names}")
    if population_of is not None and "population" in names:
        raise ValueError("trait name 'population' is taken by the population column")
    seed = resolve_seed(seed)
    prefix = Path(out)
    if prefix.name in ("", ".", ".."):
        raise ValueError(f"--out must be a file prefix, got {str(out)!r}")
    prefix.parent.mkdir(parents=True, exist_ok=True)

    chroms = parse_chromosomes(chromosomes, model.autosomes)
    if max_bp is not None and max_bp < 100_000:
        raise ValueError(f"max_bp must be >= 100 kb, got {max_bp}")
    lengths = {c: min(model.length(c), max_bp or model.length(c)) for c in chroms}
    rates = {c: model.recombination_rate(c) for c in chroms}
    mu = model.mutation_rate()

    pan, panel_info = _choose_panel(panel, chroms, lengths, model, max_bp, seed, panel_spacing)
    chroms = [c for c in chroms if (pan.chromosome == c).any()]

    # -- pedigree (first: the panel choice needs each founder haplotype's share of the cohort) --
    n_samples = sum(n for _, n in samples)
    n_hap = 2 * n_samples
    lengths_l = [lengths[c] for c in chroms]
    rates_l = [rates[c] for c in chroms]
    t0 = time.perf_counter()
    if pedigree is not None:
        ped = simulate_dairy_pedigree(pedigree, n_samples, n_individuals, lengths_l, rates_l,
                                      _rng(seed, _PEDIGREE), progress=progress)
        cohort = ped.cohort
    else:
        if n_samples != n_individuals:
            raise ValueError(f"internal: {n_samples} samples for {n_individuals} individuals")
        ped = None
        cohort = Mosaics.founders_of(n_hap, len(chroms))
    timings["pedigree_s"] = time.perf_counter() - t0

    # -- coalescent -----------------------------------------------------------------------------
    # (chromosome index, name, segment index, left, right, panel rows, first row's rank on the
    # chromosome); a segment's rows are consecutive in the chromosome's position order
    plan: list[tuple[int, str, int, int, int, np.ndarray, int]] = []
    for ci, c in enumerate(chroms):
        rows = pan.on(c)
        pos = pan.position[rows]
        for si, (left, right) in enumerate(segment_bounds(lengths[c], segment_length)):
            inside = np.flatnonzero((pos > left) & (pos <= right))
            if len(inside):
                plan.append((ci, c, si, left, right, rows[inside], int(inside[0])))

    def tasks():
        cached: tuple[int, np.ndarray] | None = None  # weights of one chromosome at a time
        for index, (ci, c, si, left, right, rows, first) in enumerate(plan):
            weights = None
            if ped is not None:
                if cached is None or cached[0] != ci:
                    cached = (ci, founder_weights(cohort, ci, pan.position[pan.on(c)], n_hap))
                weights = cached[1][first:first + len(rows)]
            yield SegmentTask(
                index=index, model=model, chromosome=c, left=left, right=right,
                samples=samples, sample_time=sample_time, recombination_rate=rates[c],
                mutation_rate=mu, seed=_segment_seed(seed, ci, si),
                panel_pos=pan.position[rows], panel_target=pan.target[rows], window=window,
                dtwf_generations=dtwf_generations, weights=weights,
                n_cohort_haplotypes=2 * n_individuals)

    t0 = time.perf_counter()
    results = run_segments(tasks(), len(plan), workers=workers, progress=progress)
    timings["coalescent_s"] = time.perf_counter() - t0
    cand = _gather(results, [p[5] for p in plan], len(pan), -(-n_hap // 8))
    missing = np.flatnonzero(cand["position"] < 0)
    if len(missing):
        i = int(missing[0])
        raise ValueError(f"no simulated site near panel SNP {pan.chromosome[i]}:"
                         f"{pan.position[i]} ({len(missing)} such SNPs)")

    # -- SNP table, allele coding and founder alleles --------------------------------------------
    t0 = time.perf_counter()
    flip, _ = orient(cand["count"], 2 * n_individuals, pan.target)
    # file order: chromosome order, then position
    order = np.concatenate([pan.on(c)[np.argsort(cand["position"][pan.on(c)], kind="stable")]
                            for c in chroms])
    snp_chrom = pan.chromosome[order]
    snp_bp = cand["position"][order]
    anc, der = cand["ancestral"][order], cand["derived"][order]
    a1 = np.where(flip[order], anc, der)
    a2 = np.where(flip[order], der, anc)
    cm = snp_bp * np.array([rates[c] for c in snp_chrom]) * 100.0 if len(order) else \
        np.zeros(0)
    founder_bits = founder_bit_matrix(cand["bits"][order], n_hap, flip[order])
    freq_est = cand["count"][order] / (2.0 * n_individuals)
    freq_est = np.where(flip[order], 1.0 - freq_est, freq_est)
    del cand
    positions = [snp_bp[snp_chrom == c] for c in chroms]
    geno = Genotyper(cohort, positions, founder_bits)
    timings["panel_s"] = time.perf_counter() - t0

    from genofast.io import SampleTable, SnpTable

    sid = np.array([f"{c}:{p}" for c, p in zip(snp_chrom, snp_bp, strict=True)], dtype=str)
    snps = SnpTable(snp_chrom, sid, cm, snp_bp, a1, a2)

    # -- traits ---------------------------------------------------------------------------------
    t0 = time.perf_counter()
    trait_rng = _rng(seed, _TRAITS)
    plans = pick_causal(traits, snp_chrom, snp_bp, freq_est, model.label, trait_rng)

    def causal_genotypes(idx: np.ndarray) -> np.ndarray:
        sub_pos = [snp_bp[idx][snp_chrom[idx] == c] for c in chroms]
        sub_bits = _take_columns(founder_bits, idx)
        g = Genotyper(cohort, sub_pos, sub_bits)
        out = np.empty((n_individuals, len(idx)), dtype=np.int8)
        for s, b in g.batches(16384):
            out[s:s + len(b)] = b
        return out

    tr = simulate_phenotypes(plans, causal_genotypes, n_individuals, trait_rng)
    timings["traits_s"] = time.perf_counter() - t0

    # -- samples --------------------------------------------------------------------------------
    # parents stay "0" in the .fam (plink2 counts any sample with parent IDs as a non-founder,
    # so --freq etc. would see no founders); the pedigree is in PREFIX.pedigree.tsv
    if ped is not None:
        iids = np.array([f"{id_prefix}{a:07d}" for a in ped.cohort_animals], dtype=str)
    elif population_of is not None:
        iids = np.array([f"{p}_{i:07d}" for i, p in enumerate(population_of)], dtype=str)
    else:
        iids = np.array([f"{id_prefix}{i:07d}" for i in range(n_individuals)], dtype=str)
    father = np.full(n_individuals, "0")
    mother = np.full(n_individuals, "0")
    pheno_fam = np.round(tr.values[:, 0], 6) if tr.names else np.full(n_individuals, np.nan)
    sample_table = SampleTable(
        fid=iids.copy(), iid=iids, father=father, mother=mother,
        sex=np.full(n_individuals, sex, dtype=np.int64), phenotype=pheno_fam)

    # -- write ----------------------------------------------------------------------------------
    from genofast.io import write_pheno

    t0 = time.perf_counter()
    m = len(snps)
    freq = _write_genotypes(prefix, snps, sample_table, geno, batch_rows, progress)
    timings["write_s"] = time.perf_counter() - t0

    files = {"bed": prefix.with_name(prefix.name + ".bed"),
             "bim": prefix.with_name(prefix.name + ".bim"),
             "fam": prefix.with_name(prefix.name + ".fam")}
    pheno_names = list(tr.names)
    columns: list[np.ndarray] = [np.round(tr.values[:, j], 6) for j in range(len(tr.names))]
    if population_of is not None:
        pheno_names.append("population")
        columns.append(np.asarray(population_of, dtype=object))
    if pheno_names:
        values = np.empty((n_individuals, len(columns)), dtype=object)
        for j, col_v in enumerate(columns):
            values[:, j] = [float(v) if isinstance(v, (float, np.floating)) else str(v)
                            for v in col_v]
        files["pheno"] = prefix.with_name(prefix.name + ".pheno")
        write_pheno(files["pheno"], iids, iids, pheno_names, values)
    files["panel"] = prefix.with_name(prefix.name + ".panel.tsv")
    _write_panel(files["panel"], snps, pan.position[order], pan.target[order], freq)
    if tr.causal:
        files["causal"] = prefix.with_name(prefix.name + ".causal.tsv")
        _write_causal(files["causal"], tr.causal, snps, freq)
    if ped is not None:
        files["pedigree"] = prefix.with_name(prefix.name + ".pedigree.tsv")
        _write_pedigree(files["pedigree"], ped, id_prefix)
    files["json"] = prefix.with_name(prefix.name + ".json")

    per_chrom = {c: int((snp_chrom == c).sum()) for c in chroms}
    maf = np.minimum(freq, 1 - freq)
    metadata: dict[str, Any] = {
        "genofast_version": genofast_version(),
        "command": command,
        "seed": seed,
        "n_individuals": n_individuals,
        "n_snps": m,
        "chromosomes": chroms,
        "snps_per_chromosome": per_chrom,
        "model": {
            **model.describe(),
            "recombination_rate_per_bp": {c: rates[c] for c in chroms},
            "recombination_map": "flat (species default rate; no genetic map)",
            "chromosome_length_bp": {c: lengths[c] for c in chroms},
            "coalescent_samples": [{"population": p, "individuals": n} for p, n in samples],
            "sample_time_generations": sample_time,
            "dtwf_generations": dtwf_generations,
            "segment_length_bp": segment_length,
            "max_bp": max_bp,
            "n_segments": len(plan),
            "n_biallelic_sites_simulated": int(sum(r.n_sites for r in results)),
            "msprime_version": _version("msprime"),
            "stdpopsim_version": _version("stdpopsim"),
        },
        "panel": {**panel_info, "window_bp": window,
                  "widened_window_max_bp": MAX_WIDEN * window,
                  "frequency_tolerance": MATCH_TOLERANCE, "n_snps": m},
        "pedigree": None if ped is None else {
            **pedigree.as_dict(),
            "n_founders": n_samples,
            "n_animals": int(len(ped.animal)),
            "cohort_generations": sorted({int(g) for g in ped.generation[ped.row >= 0]}),
        },
        "traits": [{**s, "qtl_snp": None if s["qtl_snp"] is None else str(sid[s["qtl_snp"]])}
                   for s in tr.summary],
        "summary": {
            "mean_maf": float(maf.mean()) if m else 0.0,
            "monomorphic_snps": int(((freq == 0) | (freq == 1)).sum()),
        },
        "files": {k_: p.name for k_, p in files.items()},
    }
    if panel_info["source"] != "chip50k":
        tgt = pan.target[order]
        metadata["panel"]["allele_frequency_correlation"] = float(np.corrcoef(tgt, freq)[0, 1]) \
            if m > 1 else None
        metadata["panel"]["mean_abs_frequency_difference"] = float(np.abs(tgt - freq).mean())
    files["json"].write_text(json.dumps(metadata, indent=2) + "\n")
    timings["total_s"] = time.perf_counter() - t_start
    return SimulationResult(prefix, files, n_individuals, m, per_chrom, freq, metadata, iids,
                            ped, tr.values if tr.names else None, tr.names, timings)


def _write_genotypes(prefix: Path, snps: Any, samples: Any, geno: Genotyper,
                     batch_rows: int | None, progress: bool) -> np.ndarray:
    """Stream the cohort's genotypes into PREFIX.bed/.bim/.fam in batches of ``batch_rows``
    (default: about 48 MB of int8 per batch, a multiple of 4 rows); returns the allele-1
    frequencies of what was written."""
    from tqdm.auto import tqdm

    from genofast.io import PlinkWriter

    n, m = len(samples), len(snps)
    if batch_rows is None:
        batch_rows = max(4, min(8192, (48 << 20) // max(1, m)))
    batch_rows = max(4, batch_rows - batch_rows % 4)
    allele_sum = np.zeros(m, dtype=np.int64)
    with PlinkWriter(prefix, snps, n, samples=samples) as w, \
            tqdm(total=n, desc="writing", unit="ind", disable=not progress) as bar:
        for s, b in geno.batches(batch_rows):
            w.write(s, b)
            allele_sum += b.sum(axis=0, dtype=np.int64)
            bar.update(len(b))
    return allele_sum / (2.0 * n)


def _choose_panel(panel: str | Path | None, chroms: list[str], lengths: dict[str, int],
                  model: PopulationModel, max_bp: int | None, seed: int, spacing: int
                  ) -> tuple[Panel, dict[str, Any]]:
    """The SNP panel to genotype: the built-in 50k chip layout (``panel`` None or "chip50k")
    or a panel file (its rows beyond ``max_bp`` dropped), and how it was chosen."""
    panel_arg = "chip50k" if panel is None else str(panel)
    if panel_arg == "chip50k":
        pan = chip_panel(chroms, lengths, _rng(seed, _PANEL), spacing=spacing)
        return pan, {"source": "chip50k", "spacing_bp": spacing}
    pan = read_panel(panel_arg, chroms, {c: model.length(c) for c in chroms})
    if max_bp is not None:
        keep = np.array([p <= lengths[c] for c, p in zip(pan.chromosome, pan.position,
                                                         strict=True)], dtype=bool)
        if not keep.any():
            raise ValueError(f"no panel SNP in the first {max_bp} bp of the chromosomes")
        pan = Panel(pan.chromosome[keep], pan.position[keep], pan.target[keep], pan.source)
    return pan, {"source": "file", "file_name": Path(panel_arg).name,
                 "sha256": _sha256(Path(panel_arg))}


def _version(mod: str) -> str:
    try:
        from importlib.metadata import version

        return version(mod)
    except Exception:
        return "unknown"


def _gather(results: list[SegmentResult], seg_rows: list[np.ndarray], n_panel: int,
            nbytes: int) -> dict[str, np.ndarray]:
    """Per panel row (panel order): the chosen site's arrays from the segments."""
    out = {
        "position": np.full(n_panel, -1, dtype=np.int64),
        "count": np.full(n_panel, -1, dtype=np.int64),
        "ancestral": np.full(n_panel, "", dtype="U1"),
        "derived": np.full(n_panel, "", dtype="U1"),
        "bits": np.zeros((n_panel, nbytes), dtype=np.uint8),
    }
    for r, rows in zip(results, seg_rows, strict=True):
        for key in out:
            out[key][rows] = getattr(r, key)
    return out


def _take_columns(bits: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Columns ``idx`` of a haplotype-major bit matrix [H, ceil(M/8)], re-packed the same way."""
    idx = np.asarray(idx, dtype=np.int64)
    cols = (bits[:, idx >> 3] >> (idx & 7).astype(np.uint8)) & np.uint8(1)  # [H, n_idx]
    return np.packbits(cols, axis=1, bitorder="little")


def _write_causal(path: Path, rows: list[dict], snps, freq: np.ndarray) -> None:
    with open(path, "w") as f:
        f.write("trait\tkind\tsnp\tchromosome\tbp\tallele_1\tallele_1_freq\teffect\n")
        for r in rows:
            j = r["snp"]
            f.write(f"{r['trait']}\t{r['kind']}\t{snps.sid[j]}\t{snps.chromosome[j]}\t"
                    f"{snps.bp_position[j]}\t{snps.allele_1[j]}\t{freq[j]:.6f}\t"
                    f"{r['effect']:.8g}\n")


def _write_panel(path: Path, snps, panel_pos: np.ndarray, target: np.ndarray,
                 freq: np.ndarray) -> None:
    """Which panel SNP each simulated SNP stands for, with target and realised frequencies."""
    with open(path, "w") as f:
        f.write("snp\tchromosome\tbp\tpanel_bp\ttarget_freq\tallele_1_freq\n")
        for j in range(len(snps)):
            f.write(f"{snps.sid[j]}\t{snps.chromosome[j]}\t{snps.bp_position[j]}\t"
                    f"{panel_pos[j]}\t{target[j]:.6g}\t{freq[j]:.6f}\n")


def _write_pedigree(path: Path, ped: PedigreeResult, id_prefix: str) -> None:
    def name(a: int) -> str:
        return f"{id_prefix}{a:07d}" if a >= 0 else "0"

    with open(path, "w") as f:
        f.write("iid\tsire\tdam\tsex\tgeneration\tin_cohort\n")
        for a, s, d, x, g, r in zip(ped.animal.tolist(), ped.sire.tolist(), ped.dam.tolist(),
                                    ped.sex.tolist(), ped.generation.tolist(), ped.row.tolist(),
                                    strict=True):
            f.write(f"{name(a)}\t{name(s)}\t{name(d)}\t{x}\t{g}\t{int(r >= 0)}\n")

