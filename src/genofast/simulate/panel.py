"""SNP panels: which simulated sites become the chip's SNPs.

A panel is a list of (chromosome, position, target frequency of the counted allele). It comes
from a TSV file (a real chip layout such as the Holstein 50k panel) or is drawn as a synthetic
"chip50k": about one SNP per 50 kb with the allele-frequency spectrum of a commercial chip (SNP
chips are ascertained for common variants, so their MAF spectrum is nearly flat above 0.05,
unlike the L-shaped spectrum of sequence variants).

Matching (`select_sites`): each panel position takes the simulated biallelic site within
``window`` bp (widened when none is free) whose frequency *in the final cohort* is closest to the
target; the pedigree is simulated before the coalescent so that this frequency, drift in the
pedigree included, is known from the founder haplotypes. Each site goes to one panel position
only, and the allele coding is set so that the counted allele (allele_1) is the one whose
frequency matches (`orient`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

# MAF spectrum of a commercial 50k bovine chip: the share of SNPs per MAF bin, from the public
# summary of the Holstein 50k panel (Xie et al. 2026, DiscreteGenoGen; 50,161 SNPs).
CHIP_MAF_EDGES = np.array([0.0005, 0.005, 0.01, 0.02, 0.05, 0.10, 0.15, 0.20, 0.25, 0.30, 0.35,
                           0.40, 0.45, 0.50])
CHIP_MAF_SHARE = np.array([0.0254, 0.0133, 0.0196, 0.0511, 0.0916, 0.0911, 0.0972, 0.0994,
                           0.0992, 0.1022, 0.1009, 0.1032, 0.1058])

DEFAULT_SPACING = 50_000
MATCH_TOLERANCE = 0.02  # widen the search window while the best site misses the target by more
MAX_WIDEN = 4  # ... up to this many times the window


@dataclass
class Panel:
    """Target SNPs: chromosome names, 1-based bp positions, target allele_1 frequencies."""

    chromosome: np.ndarray  # str
    position: np.ndarray  # int64
    target: np.ndarray  # float64 in [0, 1]
    source: str

    def __len__(self) -> int:
        return len(self.position)

    def on(self, chrom: str) -> np.ndarray:
        """Indices of this chromosome's panel rows, sorted by position."""
        idx = np.flatnonzero(self.chromosome == chrom)
        return idx[np.argsort(self.position[idx], kind="stable")]

    def counts(self) -> dict[str, int]:
        names, n = np.unique(self.chromosome, return_counts=True)
        return {str(a): int(b) for a, b in zip(names, n, strict=True)}


def read_panel(path: str | Path, chromosomes: list[str], lengths: dict[str, int]) -> Panel:
    """Read a panel TSV: chromosome, position (bp), target allele frequency (0-1), one SNP a line.

    A header line is allowed (detected when its position field is not a number). Rows on
    chromosomes outside ``chromosomes`` are dropped. Raises ValueError for wrong column counts,
    non-numeric values, frequencies outside 0-1, positions outside the chromosome, or a selection
    that leaves no SNP.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"panel file not found: {path}")
    lines = path.read_text().splitlines()
    rows: list[tuple[int, list[str]]] = [(i, ln.split()) for i, ln in enumerate(lines, 1)]
    rows = [(i, t) for i, t in rows if t and not t[0].startswith("#")]
    if not rows:
        raise ValueError(f"{path}: empty panel file")
    first = rows[0][1]
    if len(first) >= 2 and not _is_int(first[1]):
        rows = rows[1:]
    if not rows:
        raise ValueError(f"{path}: panel file has a header but no SNP")
    wanted = set(chromosomes)
    chrom, pos, freq = [], [], []
    for lineno, toks in rows:
        if len(toks) != 3:
            raise ValueError(f"{path}: line {lineno} has {len(toks)} columns; a panel file has 3 "
                             f"(chromosome, position_bp, allele_frequency)")
        c = _norm_chrom(toks[0])
        if c not in wanted:
            continue
        if not _is_int(toks[1]):
            raise ValueError(f"{path}: line {lineno}: position {toks[1]!r} is not an integer")
        try:
            f = float(toks[2])
        except ValueError:
            raise ValueError(f"{path}: line {lineno}: frequency {toks[2]!r} is not a number") \
                from None
        if not 0.0 <= f <= 1.0:
            raise ValueError(f"{path}: line {lineno}: frequency {f} outside 0-1")
        p = int(float(toks[1]))
        if p < 1 or p > lengths[c]:
            raise ValueError(f"{path}: line {lineno}: position {p} outside chromosome {c} "
                             f"(1-{lengths[c]})")
        chrom.append(c)
        pos.append(p)
        freq.append(f)
    if not chrom:
        raise ValueError(f"{path}: no panel SNP on the selected chromosomes "
                         f"({', '.join(chromosomes)})")
    return Panel(np.array(chrom, dtype=str), np.array(pos, dtype=np.int64),
                 np.array(freq, dtype=np.float64), str(path))


def _is_int(tok: str) -> bool:
    try:
        v = float(tok)
    except ValueError:
        return False
    return v == int(v)


def _norm_chrom(tok: str) -> str:
    s = tok.strip()
    for prefix in ("chr", "Chr", "CHR", "BTA", "bta"):
        if s.startswith(prefix):
            s = s[len(prefix):]
    return s.lstrip("0") or s


def chip_panel(chromosomes: list[str], lengths: dict[str, int], rng: np.random.Generator,
               spacing: int = DEFAULT_SPACING) -> Panel:
    """A synthetic chip: one SNP per ``spacing`` bp (jittered grid) with a chip-like MAF spectrum,
    the counted allele being the minor one half of the time."""
    if spacing < 1:
        raise ValueError(f"panel spacing must be >= 1 bp, got {spacing}")
    chrom, pos = [], []
    for c in chromosomes:
        length = lengths[c]
        n = max(1, int(round(length / spacing)))
        step = length / n
        p = (np.arange(n) + 0.5 + rng.uniform(-0.45, 0.45, n)) * step
        p = np.clip(np.round(p).astype(np.int64), 1, length)
        chrom.append(np.full(n, c))
        pos.append(p)
    chrom_a = np.concatenate(chrom)
    pos_a = np.concatenate(pos)
    n = len(pos_a)
    share = CHIP_MAF_SHARE / CHIP_MAF_SHARE.sum()
    b = rng.choice(len(share), size=n, p=share)
    maf = rng.uniform(CHIP_MAF_EDGES[b], CHIP_MAF_EDGES[b + 1])
    flip = rng.random(n) < 0.5
    target = np.where(flip, 1.0 - maf, maf)
    return Panel(chrom_a.astype(str), pos_a, target, f"chip50k (one SNP per {spacing} bp)")


def site_score(freq: np.ndarray, target: np.ndarray | float) -> np.ndarray:
    """Distance of a site's frequency to the target, either allele being countable."""
    return np.minimum(np.abs(freq - target), np.abs(1.0 - freq - target))


def select_sites(site_pos: np.ndarray, site_count: np.ndarray, n_haplotypes: int,
                 panel_pos: np.ndarray, panel_target: np.ndarray, window: int,
                 haplotypes: np.ndarray | None = None, weights: np.ndarray | None = None,
                 n_cohort_haplotypes: int | None = None,
                 tolerance: float = MATCH_TOLERANCE,
                 max_widen: int = MAX_WIDEN) -> tuple[np.ndarray, np.ndarray]:
    """For each panel position (sorted), the unclaimed site within ``window`` bp whose cohort
    frequency is closest to the target, either allele counted; each site goes to one panel
    position at most. The window is doubled (up to ``max_widen`` times its size, further only
    while no site is free) while the best site misses the target by more than ``tolerance``.

    Cohort frequency: with ``weights`` [P, H] (how many cohort haplotypes descend from each
    founder haplotype at the panel position) and ``haplotypes`` [S, H] (the founders' derived
    alleles), it is weights[p] . haplotypes[site] / n_cohort_haplotypes, so drift in the
    pedigree is accounted for; otherwise the founders are the cohort and it is
    site_count / n_haplotypes. Returns the chosen site index per panel row (-1: none) and its
    estimated derived-allele count in the cohort.
    """
    n_sites = len(site_pos)
    pick = np.full(len(panel_pos), -1, dtype=np.int64)
    est = np.full(len(panel_pos), -1, dtype=np.int64)
    claimed = np.zeros(n_sites, dtype=bool)
    use_weights = weights is not None and haplotypes is not None
    n_h = (n_cohort_haplotypes or n_haplotypes) if use_weights else n_haplotypes
    for i, (x, t) in enumerate(zip(panel_pos.tolist(), panel_target.tolist(), strict=True)):
        w = window
        best = (-1, -1, np.inf)
        while True:
            lo = int(np.searchsorted(site_pos, x - w, "left"))
            hi = int(np.searchsorted(site_pos, x + w, "right"))
            free = np.flatnonzero(~claimed[lo:hi]) + lo
            everything = lo == 0 and hi == n_sites
            if len(free):
                if use_weights:
                    counts = haplotypes[free].astype(np.int32) @ weights[i].astype(np.int32)
                else:
                    counts = site_count[free]
                score = site_score(counts / float(n_h), t)
                score = np.where((counts <= 0) | (counts >= n_h), score + 2.0, score)
                j = int(np.lexsort((np.abs(site_pos[free] - x), score))[0])
                best = (int(free[j]), int(counts[j]), float(score[j]))
                if best[2] <= tolerance or w >= window * max_widen or everything:
                    break
            elif everything:
                break
            w *= 2
        if best[0] >= 0:
            pick[i], est[i] = best[0], best[1]
            claimed[best[0]] = True
    return pick, est


def orient(count: np.ndarray, n_haplotypes: int,
           target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Whether allele_1 should be the ancestral allele (so its frequency is nearer the target)
    and the resulting allele_1 frequency, from the derived-allele ``count`` per SNP."""
    f = count / float(n_haplotypes)
    flip = np.abs(1.0 - f - target) < np.abs(f - target)
    return flip, np.where(flip, 1.0 - f, f)
