"""A dairy-like pedigree simulated forward from the coalescent founders, and genotype filling.

Haplotypes are never stored as alleles during the pedigree: each is a *mosaic*, a list of
segments (start bp, founder haplotype) per chromosome. A meiosis draws Poisson(length in Morgans)
crossovers uniformly on the chromosome (the flat map of the species) and splices the parent's two
mosaics. After a few generations a haplotype has only a few dozen segments per genome, so 100,000
animals take some hundred MB, and genotypes are filled batch by batch from the founder alleles
only when written (`Genotyper`).

The pedigree (`DairyPedigree`): founders split at random into bulls and cows; each generation,
``n_sires`` bulls are drawn from the previous generation's bull calves and used with very unequal
intensity (log-normal weights, as artificial insemination concentrates daughters on few popular
sires), every calf's dam is drawn from the previous generation's cows, and
``n_sires * males_per_sire`` bull calves are kept as next sire candidates. The cows of the last
``output_generations`` generations are the cohort, so it holds paternal half-sib families, dams
with their daughters and more distant relatives, as a herd-book sample does.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numba as nb
import numpy as np

_INT64_MAX = np.iinfo(np.int64).max


@dataclass
class Mosaics:
    """``n_haps`` haplotypes as founder segments, per chromosome: ``offsets[c]`` [n_haps + 1]
    into ``starts[c]`` (1-based bp where a segment begins; the first is 0) and ``founders[c]``
    (founder haplotype index). Haplotypes 2i and 2i+1 are individual i (paternal, maternal)."""

    n_haps: int
    offsets: list[np.ndarray]
    starts: list[np.ndarray]
    founders: list[np.ndarray]

    @classmethod
    def founders_of(cls, n_haps: int, n_chrom: int) -> Mosaics:
        """Founder haplotypes: one segment each, founder index = haplotype index."""
        off = np.arange(n_haps + 1, dtype=np.int64)
        return cls(n_haps, [off.copy() for _ in range(n_chrom)],
                   [np.zeros(n_haps, dtype=np.int64) for _ in range(n_chrom)],
                   [np.arange(n_haps, dtype=np.int32) for _ in range(n_chrom)])

    def n_segments(self) -> int:
        return int(sum(len(s) for s in self.starts))

    def take(self, individuals: np.ndarray) -> Mosaics:
        """The haplotypes of the given individuals, in that order."""
        haps = np.stack([2 * individuals, 2 * individuals + 1], axis=1).reshape(-1)
        offs, starts, fids = [], [], []
        for off, st, fi in zip(self.offsets, self.starts, self.founders, strict=True):
            n = off[haps + 1] - off[haps]
            new_off = np.zeros(len(haps) + 1, dtype=np.int64)
            np.cumsum(n, out=new_off[1:])
            idx = _ranges(off[haps], n)
            offs.append(new_off)
            starts.append(st[idx])
            fids.append(fi[idx])
        return Mosaics(len(haps), offs, starts, fids)

    @staticmethod
    def concat(parts: list[Mosaics]) -> Mosaics:
        n_chrom = len(parts[0].offsets)
        offs, starts, fids = [], [], []
        for c in range(n_chrom):
            base = 0
            o = [np.zeros(1, dtype=np.int64)]
            for p in parts:
                o.append(p.offsets[c][1:] + base)
                base += int(p.offsets[c][-1])
            offs.append(np.concatenate(o))
            starts.append(np.concatenate([p.starts[c] for p in parts]))
            fids.append(np.concatenate([p.founders[c] for p in parts]))
        return Mosaics(sum(p.n_haps for p in parts), offs, starts, fids)


def _ranges(first: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Concatenation of arange(first[i], first[i] + n[i])."""
    total = int(n.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    rep = np.repeat(first - np.concatenate([[0], np.cumsum(n)[:-1]]), n)
    return rep + np.arange(total, dtype=np.int64)


@nb.njit(cache=True)
def _meiosis_kernel(p_off, p_start, p_fid, parent, first, xo_off, xo_pos, ub_off,
                    o_start, o_fid, o_n):
    for c in range(parent.shape[0]):
        ha = 2 * parent[c] + first[c]
        hb = 2 * parent[c] + 1 - first[c]
        w0 = ub_off[c]
        w = w0
        nx = xo_off[c + 1] - xo_off[c]
        b0 = 0
        cur = ha
        for i in range(nx + 1):
            b1 = xo_pos[xo_off[c] + i] if i < nx else _INT64_MAX
            if b1 > b0:
                s0 = p_off[cur]
                s1 = p_off[cur + 1]
                k = s0 + np.searchsorted(p_start[s0:s1], b0, side="right") - 1
                while k < s1 and p_start[k] < b1:
                    st = p_start[k] if p_start[k] > b0 else b0
                    f = p_fid[k]
                    if w == w0 or o_fid[w - 1] != f:
                        o_start[w] = st
                        o_fid[w] = f
                        w += 1
                    k += 1
                b0 = b1
            cur = hb if cur == ha else ha
        o_n[c] = w - w0


def meiosis(parents: Mosaics, parent: np.ndarray, lengths: list[int], rates: list[float],
            rng: np.random.Generator) -> Mosaics:
    """One gamete from each ``parent`` (diploid index into ``parents``): Poisson crossovers,
    uniform on each chromosome (flat map), random first haplotype."""
    n = len(parent)
    parent = parent.astype(np.int64)
    offs, starts, fids = [], [], []
    for c, (length, rate) in enumerate(zip(lengths, rates, strict=True)):
        n_xo = rng.poisson(length * rate, size=n)
        total = int(n_xo.sum())
        owner = np.repeat(np.arange(n, dtype=np.int64), n_xo)
        pos = rng.integers(2, length + 1, size=total, dtype=np.int64)
        key = np.sort(owner * (length + 2) + pos)
        xo_pos = key % (length + 2)
        xo_off = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(n_xo, out=xo_off[1:])
        first = rng.integers(0, 2, size=n, dtype=np.int64)
        p_off = parents.offsets[c]
        seg = np.diff(p_off)
        ub = seg[2 * parent] + seg[2 * parent + 1] + n_xo + 1
        ub_off = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(ub, out=ub_off[1:])
        o_start = np.empty(int(ub_off[-1]), dtype=np.int64)
        o_fid = np.empty(int(ub_off[-1]), dtype=np.int32)
        o_n = np.empty(n, dtype=np.int64)
        _meiosis_kernel(p_off, parents.starts[c], parents.founders[c], parent, first, xo_off,
                        xo_pos, ub_off, o_start, o_fid, o_n)
        idx = _ranges(ub_off[:-1], o_n)
        off = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(o_n, out=off[1:])
        offs.append(off)
        starts.append(o_start[idx])
        fids.append(o_fid[idx])
    return Mosaics(n, offs, starts, fids)


def interleave(pat: Mosaics, mat: Mosaics) -> Mosaics:
    """Individuals from a paternal and a maternal gamete each: haplotypes 2i, 2i+1."""
    n = pat.n_haps
    both = Mosaics.concat([pat, mat])
    order = np.stack([np.arange(n), np.arange(n) + n], axis=1).reshape(-1)
    # take() works on diploid pairs; re-pair the concatenated haplotypes as (i, n + i)
    offs, starts, fids = [], [], []
    for off, st, fi in zip(both.offsets, both.starts, both.founders, strict=True):
        cnt = off[order + 1] - off[order]
        new_off = np.zeros(2 * n + 1, dtype=np.int64)
        np.cumsum(cnt, out=new_off[1:])
        idx = _ranges(off[order], cnt)
        offs.append(new_off)
        starts.append(st[idx])
        fids.append(fi[idx])
    return Mosaics(2 * n, offs, starts, fids)


@dataclass
class DairyPedigree:
    """Parameters of the forward dairy pedigree (see the module docstring)."""

    n_generations: int = 5
    output_generations: int = 3
    n_sires: int = 50
    sire_usage_sigma: float = 1.0
    males_per_sire: int = 5

    def validate(self) -> None:
        if self.n_generations < 0:
            raise ValueError(f"pedigree generations must be >= 0, got {self.n_generations}")
        if self.n_generations and not 1 <= self.output_generations <= self.n_generations:
            raise ValueError(f"output generations must be 1-{self.n_generations}, got "
                             f"{self.output_generations}")
        if self.n_sires < 1:
            raise ValueError(f"n_sires must be >= 1, got {self.n_sires}")
        if self.males_per_sire < 1:
            raise ValueError(f"males_per_sire must be >= 1, got {self.males_per_sire}")
        if self.sire_usage_sigma < 0:
            raise ValueError("sire_usage_sigma must be >= 0")

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class PedigreeResult:
    """The cohort's mosaics and every animal of the pedigree (founders included).

    Animal arrays: ``animal`` id, ``sire``/``dam`` ids (-1 for founders), ``sex`` (1 bull,
    2 cow), ``generation`` (0 = founders), ``row`` (row in the cohort, -1 if not in it)."""

    cohort: Mosaics
    animal: np.ndarray
    sire: np.ndarray
    dam: np.ndarray
    sex: np.ndarray
    generation: np.ndarray
    row: np.ndarray

    @property
    def cohort_animals(self) -> np.ndarray:
        """Animal ids of the cohort rows, in row order."""
        idx = np.flatnonzero(self.row >= 0)
        return self.animal[idx[np.argsort(self.row[idx])]]


def simulate_dairy_pedigree(spec: DairyPedigree, n_founders: int, n_output: int,
                            lengths: list[int], rates: list[float], rng: np.random.Generator,
                            progress: bool = False) -> PedigreeResult:
    """Run the pedigree from ``n_founders`` founders (haplotypes 2i, 2i+1 of the coalescent
    sample) to a cohort of ``n_output`` cows."""
    from tqdm.auto import tqdm

    spec.validate()
    n_chrom = len(lengths)
    founders = Mosaics.founders_of(2 * n_founders, n_chrom)
    if spec.n_generations == 0:
        if n_output != n_founders:
            raise ValueError("without pedigree generations the cohort is the founders: "
                             f"n_output ({n_output}) must equal n_founders ({n_founders})")
        ids = np.arange(n_founders, dtype=np.int64)
        return PedigreeResult(founders, ids, np.full(n_founders, -1), np.full(n_founders, -1),
                              np.zeros(n_founders, dtype=np.int64), np.zeros(n_founders,
                                                                            dtype=np.int64),
                              ids.copy())
    k_out = min(spec.output_generations, n_output)
    per_gen = np.full(k_out, n_output // k_out, dtype=np.int64)
    per_gen[-1] += n_output - per_gen.sum()
    n_burn = spec.n_generations - k_out
    cows_per_gen = [int(per_gen[0])] * n_burn + per_gen.tolist()
    n_bulls = spec.n_sires * spec.males_per_sire

    # founders: bulls and cows at random
    sex0 = np.where(rng.random(n_founders) < 0.5, 1, 2)
    if n_founders >= 2:  # at least one of each
        sex0[0], sex0[1] = 1, 2
    animal = [np.arange(n_founders, dtype=np.int64)]
    sire = [np.full(n_founders, -1, dtype=np.int64)]
    dam = [np.full(n_founders, -1, dtype=np.int64)]
    sex = [sex0.astype(np.int64)]
    gen = [np.zeros(n_founders, dtype=np.int64)]
    row = [np.full(n_founders, -1, dtype=np.int64)]
    next_id = n_founders
    next_row = 0

    prev = founders
    prev_ids = animal[0]
    prev_sex = sex[0]
    outputs: list[Mosaics] = []
    for g in tqdm(range(1, spec.n_generations + 1), desc="pedigree", unit="generation",
                  disable=not progress):
        bulls = np.flatnonzero(prev_sex == 1)
        cows = np.flatnonzero(prev_sex == 2)
        if len(bulls) == 0 or len(cows) == 0:
            raise ValueError(f"pedigree generation {g}: no bull or no cow to breed from "
                             f"(too few founders: {n_founders})")
        n_s = min(spec.n_sires, len(bulls))
        sires = rng.choice(bulls, size=n_s, replace=False)
        w = rng.lognormal(0.0, spec.sire_usage_sigma, size=n_s) if spec.sire_usage_sigma > 0 \
            else np.ones(n_s)
        n_cows = cows_per_gen[g - 1]
        n_child = n_cows + n_bulls
        c_sire = sires[rng.choice(n_s, size=n_child, p=w / w.sum())]
        c_dam = rng.choice(cows, size=n_child)
        pat = meiosis(prev, c_sire, lengths, rates, rng)
        mat = meiosis(prev, c_dam, lengths, rates, rng)
        child = interleave(pat, mat)
        c_sex = np.concatenate([np.full(n_cows, 2), np.full(n_bulls, 1)]).astype(np.int64)
        ids = np.arange(next_id, next_id + n_child, dtype=np.int64)
        next_id += n_child
        c_row = np.full(n_child, -1, dtype=np.int64)
        if g > n_burn:
            c_row[:n_cows] = np.arange(next_row, next_row + n_cows)
            next_row += n_cows
            outputs.append(child.take(np.arange(n_cows)))
        animal.append(ids)
        sire.append(prev_ids[c_sire])
        dam.append(prev_ids[c_dam])
        sex.append(c_sex)
        gen.append(np.full(n_child, g, dtype=np.int64))
        row.append(c_row)
        prev, prev_ids, prev_sex = child, ids, c_sex
    return PedigreeResult(Mosaics.concat(outputs), np.concatenate(animal), np.concatenate(sire),
                          np.concatenate(dam), np.concatenate(sex), np.concatenate(gen),
                          np.concatenate(row))


# ---------------------------------------------------------------------------------------------
# from mosaics to alleles
# ---------------------------------------------------------------------------------------------


@nb.njit(cache=True)
def _weights_kernel(off, start, fid, pos, out):
    P = pos.shape[0]
    for h in range(off.shape[0] - 1):
        for s in range(off[h], off[h + 1]):
            a = np.searchsorted(pos, start[s], side="left")
            b = P if s + 1 == off[h + 1] else np.searchsorted(pos, start[s + 1], side="left")
            if b > a:
                out[a, fid[s]] += 1
                out[b, fid[s]] -= 1
    for p in range(1, P):
        for f in range(out.shape[1]):
            out[p, f] += out[p - 1, f]


def founder_weights(mosaics: Mosaics, chrom: int, positions: np.ndarray,
                    n_founder_haps: int) -> np.ndarray:
    """How many of the mosaics' haplotypes carry each founder haplotype at each position:
    int32 [P, n_founder_haps] for sorted 1-based ``positions`` on chromosome index ``chrom``."""
    out = np.zeros((len(positions) + 1, n_founder_haps), dtype=np.int32)
    _weights_kernel(mosaics.offsets[chrom], mosaics.starts[chrom], mosaics.founders[chrom],
                    np.ascontiguousarray(positions, dtype=np.int64), out)
    return out[:-1]


@nb.njit(cache=True, parallel=True)
def _fill_kernel(off, start, fid, h0, pos, col0, F, out):
    P = pos.shape[0]
    for i in nb.prange(out.shape[0]):
        for hh in range(2):
            h = h0 + 2 * i + hh
            for s in range(off[h], off[h + 1]):
                a = np.searchsorted(pos, start[s], side="left")
                b = P if s + 1 == off[h + 1] else np.searchsorted(pos, start[s + 1], side="left")
                f = fid[s]
                for j in range(col0 + a, col0 + b):
                    out[i, j] += (F[f, j >> 3] >> (j & 7)) & 1


def founder_bit_matrix(bits: np.ndarray, n_founder_haps: int, flip: np.ndarray) -> np.ndarray:
    """Transpose SNP-major founder bits (uint8 [M, ceil(H/8)], derived allele) into
    haplotype-major bits of the counted allele (uint8 [H, ceil(M/8)], little-endian), flipping
    the SNPs whose counted allele is the ancestral one."""
    m = bits.shape[0]
    out = np.zeros((n_founder_haps, -(-m // 8)), dtype=np.uint8)
    chunk = max(8, ((32 << 20) // max(1, n_founder_haps)) // 8 * 8)
    for j0 in range(0, m, chunk):
        j1 = min(m, j0 + chunk)
        u = np.unpackbits(bits[j0:j1], axis=1, count=n_founder_haps, bitorder="little")
        u ^= flip[j0:j1, None].astype(np.uint8)
        out[:, j0 // 8:-(-j1 // 8)] = np.packbits(u.T, axis=1, bitorder="little")
    return out


class Genotyper:
    """Fills int8 genotype batches [B, M] (copies of allele_1) of the cohort from its mosaics.

    ``positions``: per chromosome of the mosaics, the sorted 1-based positions of its SNPs (the
    SNP columns are the chromosomes' SNPs one after the other); ``founder_bits``: the founder
    haplotypes' allele_1 bits from `founder_bit_matrix`.
    """

    def __init__(self, mosaics: Mosaics, positions: list[np.ndarray],
                 founder_bits: np.ndarray) -> None:
        self.mosaics = mosaics
        self.positions = [np.ascontiguousarray(p, dtype=np.int64) for p in positions]
        self.col0 = np.concatenate([[0], np.cumsum([len(p) for p in positions])]).astype(int)
        self.n_snps = int(self.col0[-1])
        self.bits = founder_bits
        self.n_individuals = mosaics.n_haps // 2

    def batch(self, start: int, stop: int) -> np.ndarray:
        """Genotypes of cohort rows ``start .. stop - 1``."""
        out = np.zeros((stop - start, self.n_snps), dtype=np.int8)
        for c, pos in enumerate(self.positions):
            if len(pos) == 0:
                continue
            m = self.mosaics
            _fill_kernel(m.offsets[c], m.starts[c], m.founders[c], 2 * start, pos,
                         int(self.col0[c]), self.bits, out)
        return out

    def batches(self, batch_rows: int):
        """(start row, genotypes) over the whole cohort."""
        for s in range(0, self.n_individuals, batch_rows):
            e = min(self.n_individuals, s + batch_rows)
            yield s, self.batch(s, e)
