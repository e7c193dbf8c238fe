"""PLINK 1 filesets (`.bed`/`.bim`/`.fam`) read straight into the 2-bit packed, individual-major
layout of `genofast.ops.codec` (DESIGN.md, "Representations").

The `.bed` is memory-mapped SNP-major and transposed two bits at a time into
``uint8 [N, ceil(M/4)]``; the whole cohort never exists as an int8 or float matrix, so the peak
memory of a read is about twice the packed size. The transpose runs in the native core when it is
built (`genofast._native.native()`), otherwise in bounded SNP chunks through the torch references.

Codes follow bed-reader's default ``count_A1=True``: 0/1/2 copies of ``allele_1`` (the `.bim`
fifth column), 3 = missing.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from genofast._native import native
from genofast.ops import codec
from genofast.ops.codec import n_packed_bytes

BED_MAGIC = b"\x6c\x1b"
MODE_SNP_MAJOR = 0x01
MODE_INDIVIDUAL_MAJOR = 0x00
HEADER_BYTES = 3

#: What ``snps=`` and ``samples=`` accept: a slice, an index array (ints, negatives count from the
#: end, repeats allowed) or a boolean mask over the file's rows.
Selection = slice | Sequence[int] | Sequence[bool] | np.ndarray | torch.Tensor | None
PathLike = str | os.PathLike

# Fallback transpose budget: codes (one byte per genotype) handled per SNP chunk. The torch
# reference holds a few copies of it, so a chunk costs ~4x this many bytes whatever N.
_FALLBACK_CODES_PER_CHUNK = 1 << 24
_FALLBACK_MAX_SNPS = 8192
_MISSING_PHENO = {"-9", "na", "nan", "", "."}


# ---------------------------------------------------------------------------------------------
# selections
# ---------------------------------------------------------------------------------------------


def as_index(sel: Selection, n: int, what: str) -> np.ndarray | None:
    """Normalise a selection over ``n`` rows to an int64 index array, or None for "all rows"."""
    if sel is None:
        return None
    if isinstance(sel, slice):
        idx = np.arange(n, dtype=np.int64)[sel]
        return None if len(idx) == n and (n == 0 or (idx[0] == 0 and idx[-1] == n - 1)) else idx
    if isinstance(sel, torch.Tensor):
        sel = sel.detach().cpu().numpy()
    arr = np.asarray(sel)
    if arr.ndim != 1:
        raise ValueError(f"{what}: expected a slice, a 1-D index array or a boolean mask, "
                         f"got an array of shape {arr.shape}")
    if arr.dtype == np.bool_:
        if len(arr) != n:
            raise ValueError(f"{what}: boolean mask has {len(arr)} entries, expected {n}")
        return np.flatnonzero(arr).astype(np.int64)
    if arr.size == 0:
        return np.empty(0, dtype=np.int64)
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{what}: expected integer indices or a boolean mask, got {arr.dtype}")
    idx = arr.astype(np.int64)
    bad = (idx < -n) | (idx >= n)
    if bad.any():
        raise IndexError(f"{what}: index {int(idx[bad][0])} out of range for {n} rows")
    return np.where(idx < 0, idx + n, idx)


def _take(arr: np.ndarray, idx: np.ndarray | None) -> np.ndarray:
    return arr.copy() if idx is None else arr[idx]


# ---------------------------------------------------------------------------------------------
# tables
# ---------------------------------------------------------------------------------------------


@dataclass(eq=False)
class SnpTable:
    """The `.bim` columns as numpy arrays, one entry per SNP."""

    chromosome: np.ndarray  # str
    sid: np.ndarray  # str
    cm_position: np.ndarray  # float64
    bp_position: np.ndarray  # int64
    allele_1: np.ndarray  # str, the counted allele (code = copies of allele_1)
    allele_2: np.ndarray  # str

    def __post_init__(self) -> None:
        self.chromosome = np.asarray(self.chromosome, dtype=str)
        self.sid = np.asarray(self.sid, dtype=str)
        self.cm_position = np.asarray(self.cm_position, dtype=np.float64)
        self.bp_position = np.asarray(self.bp_position, dtype=np.int64)
        self.allele_1 = np.asarray(self.allele_1, dtype=str)
        self.allele_2 = np.asarray(self.allele_2, dtype=str)
        n = len(self.sid)
        for name in ("chromosome", "cm_position", "bp_position", "allele_1", "allele_2"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"SnpTable: column {name} has {len(getattr(self, name))} "
                                 f"entries, sid has {n}")

    def __len__(self) -> int:
        return len(self.sid)

    def __getitem__(self, sel: Selection) -> SnpTable:
        idx = as_index(sel, len(self), "SnpTable")
        return SnpTable(*(_take(getattr(self, c), idx) for c in self.columns()))

    @staticmethod
    def columns() -> tuple[str, ...]:
        return ("chromosome", "sid", "cm_position", "bp_position", "allele_1", "allele_2")

    @classmethod
    def synthetic(cls, n_snps: int, chromosome: str = "1") -> SnpTable:
        """A placeholder panel (``snp0``.., bp 1.., alleles A/G) for data without a `.bim`."""
        return cls(
            chromosome=np.full(n_snps, chromosome),
            sid=np.array([f"snp{j}" for j in range(n_snps)], dtype=str),
            cm_position=np.zeros(n_snps),
            bp_position=np.arange(1, n_snps + 1, dtype=np.int64),
            allele_1=np.full(n_snps, "A"),
            allele_2=np.full(n_snps, "G"),
        )

    def chromosome_names(self) -> list[str]:
        """Distinct chromosome names in order of first appearance."""
        _, first = np.unique(self.chromosome, return_index=True)
        return [str(self.chromosome[i]) for i in np.sort(first)]


@dataclass(eq=False)
class SampleTable:
    """The `.fam` columns as numpy arrays, one entry per individual.

    ``phenotype`` is float64 with NaN for missing (-9, NA, non-numeric, and 0 when the column is
    case/control-coded, PLINK 1's rule); ``phenotype_raw`` keeps the text so that a fileset written
    back carries the column unchanged.
    """

    fid: np.ndarray  # str
    iid: np.ndarray  # str
    father: np.ndarray  # str
    mother: np.ndarray  # str
    sex: np.ndarray  # int64: 1 male, 2 female, 0 unknown
    phenotype: np.ndarray  # float64, NaN missing
    phenotype_raw: np.ndarray | None = field(default=None)  # str, as in the file

    def __post_init__(self) -> None:
        self.fid = np.asarray(self.fid, dtype=str)
        self.iid = np.asarray(self.iid, dtype=str)
        self.father = np.asarray(self.father, dtype=str)
        self.mother = np.asarray(self.mother, dtype=str)
        self.sex = np.asarray(self.sex, dtype=np.int64)
        self.phenotype = np.asarray(self.phenotype, dtype=np.float64)
        if self.phenotype_raw is None:
            self.phenotype_raw = np.array(
                ["-9" if math.isnan(v) else repr(float(v)) for v in self.phenotype], dtype=str
            ).reshape(-1)
        else:
            self.phenotype_raw = np.asarray(self.phenotype_raw, dtype=str)
        n = len(self.iid)
        for name in ("fid", "father", "mother", "sex", "phenotype", "phenotype_raw"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"SampleTable: column {name} has {len(getattr(self, name))} "
                                 f"entries, iid has {n}")

    def __len__(self) -> int:
        return len(self.iid)

    def __getitem__(self, sel: Selection) -> SampleTable:
        idx = as_index(sel, len(self), "SampleTable")
        return SampleTable(*(_take(getattr(self, c), idx) for c in self.columns()))

    @staticmethod
    def columns() -> tuple[str, ...]:
        return ("fid", "iid", "father", "mother", "sex", "phenotype", "phenotype_raw")

    @classmethod
    def from_iids(cls, iids: Iterable[str], fid: Iterable[str] | None = None) -> SampleTable:
        """Unrelated individuals with unknown sex and phenotype; FID = IID unless given."""
        iid = np.asarray(list(iids), dtype=str).reshape(-1)
        n = len(iid)
        return cls(
            fid=iid.copy() if fid is None else np.asarray(list(fid), dtype=str),
            iid=iid,
            father=np.full(n, "0"),
            mother=np.full(n, "0"),
            sex=np.zeros(n, dtype=np.int64),
            phenotype=np.full(n, np.nan),
            phenotype_raw=np.full(n, "-9"),
        )

    @classmethod
    def default(cls, n: int) -> SampleTable:
        """``ind0``, ``ind1``, ... for synthetic cohorts."""
        return cls.from_iids(f"ind{i}" for i in range(n))


# ---------------------------------------------------------------------------------------------
# .bim / .fam
# ---------------------------------------------------------------------------------------------


def _read_table(path: PathLike, n_cols: int, kind: str) -> list[list[str]]:
    """Whitespace table -> its ``n_cols`` columns as lists of str; errors name the file and line.

    One ``split()`` of the whole text; the per-line check runs only when the token count does not
    fit (a bad line), so a 50k-line `.bim` parses in a few milliseconds.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{kind} file not found: {path}")
    text = path.read_text()
    tokens = text.split()
    n_lines = text.count("\n") + (0 if text.endswith("\n") or not text else 1)
    if len(tokens) != n_cols * n_lines:
        n_lines = 0
        for lineno, ln in enumerate(text.splitlines(), 1):
            k = len(ln.split())
            if k and k != n_cols:
                raise ValueError(f"{path}: line {lineno} has {k} columns, a {kind} line has "
                                 f"{n_cols}")
            n_lines += k > 0
    return [tokens[c::n_cols] for c in range(n_cols)]


def _strings(col: list[str]) -> np.ndarray:
    return np.array(col, dtype=str) if col else np.empty(0, dtype=str)


def _convert(col: list[str], dtype: type, path: Path, kind: str, name: str) -> np.ndarray:
    """A column of numbers; a bad value raises naming the file, line and column."""
    np_dtype = np.float64 if dtype is float else np.int64
    try:
        return np.fromiter(map(dtype, col), dtype=np_dtype, count=len(col))
    except ValueError:
        for i, v in enumerate(col):
            try:
                dtype(v)
            except ValueError:
                raise ValueError(f"{path}: {kind} line {i + 1}: {name} {v!r} is not "
                                 f"{'a number' if dtype is float else 'an integer'}") from None
        raise


def read_bim(path: PathLike) -> SnpTable:
    """Read a `.bim`: chromosome, SNP id, cM, bp, allele_1, allele_2 (6 whitespace columns)."""
    path = Path(path)
    chrom, sid, cm, bp, a1, a2 = _read_table(path, 6, ".bim")
    return SnpTable(
        chromosome=_strings(chrom),
        sid=_strings(sid),
        cm_position=_convert(cm, float, path, ".bim", "cM position"),
        bp_position=_convert(bp, int, path, ".bim", "bp position"),
        allele_1=_strings(a1),
        allele_2=_strings(a2),
    )


def parse_phenotype(raw: np.ndarray) -> np.ndarray:
    """`.fam` phenotype text -> float64, NaN for -9/NA/non-numeric; 0 too when case/control."""
    out = np.full(len(raw), np.nan)
    for i, v in enumerate(raw):
        if v.lower() in _MISSING_PHENO:
            continue
        try:
            out[i] = float(v)
        except ValueError:
            pass
    present = out[~np.isnan(out)]
    if len(present) and np.isin(present, (0.0, 1.0, 2.0)).all():
        out[out == 0.0] = np.nan  # PLINK 1: case/control column, 0 = missing
    return out


def read_fam(path: PathLike) -> SampleTable:
    """Read a `.fam`: FID, IID, father, mother, sex, phenotype (6 whitespace columns)."""
    path = Path(path)
    fid, iid, father, mother, sex, pheno = _read_table(path, 6, ".fam")
    raw = _strings(pheno)
    return SampleTable(
        fid=_strings(fid),
        iid=_strings(iid),
        father=_strings(father),
        mother=_strings(mother),
        sex=_convert(sex, int, path, ".fam", "sex"),
        phenotype=parse_phenotype(raw),
        phenotype_raw=raw,
    )


def write_bim(path: PathLike, snps: SnpTable) -> None:
    """Write a `.bim` (tab separated, as PLINK does)."""
    cm = [repr(float(v)) for v in snps.cm_position]
    with open(path, "w") as f:
        f.writelines(
            f"{c}\t{s}\t{g}\t{b}\t{a1}\t{a2}\n"
            for c, s, g, b, a1, a2 in zip(snps.chromosome, snps.sid, cm, snps.bp_position,
                                          snps.allele_1, snps.allele_2, strict=True)
        )


def write_fam(path: PathLike, samples: SampleTable) -> None:
    """Write a `.fam` (space separated); the phenotype column is written as read."""
    with open(path, "w") as f:
        f.writelines(
            f"{a} {b} {c} {d} {e} {p}\n"
            for a, b, c, d, e, p in zip(samples.fid, samples.iid, samples.father, samples.mother,
                                        samples.sex, samples.phenotype_raw, strict=True)
        )


# ---------------------------------------------------------------------------------------------
# cohort
# ---------------------------------------------------------------------------------------------


@dataclass(eq=False)
class Cohort:
    """A genotype cohort held 2-bit packed, individual-major (codec.py layout), with its tables."""

    genotypes: torch.Tensor  # uint8 [N, ceil(M/4)]
    snps: SnpTable
    samples: SampleTable

    def __post_init__(self) -> None:
        g = self.genotypes
        if g.dtype != torch.uint8 or g.dim() != 2:
            raise TypeError(f"Cohort.genotypes: expected 2-D uint8 packed, got {g.dtype} "
                            f"{tuple(g.shape)}")
        if g.shape[0] != len(self.samples) or g.shape[1] != n_packed_bytes(len(self.snps)):
            raise ValueError(
                f"Cohort: genotypes {tuple(g.shape)} do not match {len(self.samples)} samples x "
                f"{len(self.snps)} SNPs (expected [{len(self.samples)}, "
                f"{n_packed_bytes(len(self.snps))}])"
            )

    @property
    def n_individuals(self) -> int:
        return len(self.samples)

    @property
    def n_snps(self) -> int:
        return len(self.snps)

    def __len__(self) -> int:
        return self.n_individuals

    def __repr__(self) -> str:
        return (f"Cohort({self.n_individuals} individuals x {self.n_snps} SNPs, "
                f"packed on {self.genotypes.device})")

    def unpack(self, rows: Selection = None) -> torch.Tensor:
        """int8 [N, M] (0/1/2, -1 missing) of all or the selected individuals."""
        from genofast.ops import unpack

        idx = as_index(rows, self.n_individuals, "rows")
        g = self.genotypes if idx is None else self.genotypes[torch.from_numpy(idx)]
        return unpack(g, self.n_snps)

    def subset(self, *, samples: Selection = None, snps: Selection = None) -> Cohort:
        """A new cohort of the selected individuals and SNPs (packed throughout: SNP selections
        are applied in chunks of individuals, never on the whole unpacked matrix)."""
        from genofast.ops import pack, unpack

        sidx = as_index(samples, self.n_individuals, "samples")
        jidx = as_index(snps, self.n_snps, "snps")
        g = self.genotypes if sidx is None else self.genotypes[torch.from_numpy(sidx)]
        if jidx is not None:
            cols = torch.from_numpy(jidx).to(g.device)
            out = torch.empty(g.shape[0], n_packed_bytes(len(jidx)), dtype=torch.uint8,
                              device=g.device)
            step = max(1, (1 << 24) // max(1, self.n_snps))
            for r in range(0, g.shape[0], step):
                out[r:r + step] = pack(unpack(g[r:r + step], self.n_snps)[:, cols].contiguous())
            g = out
        elif sidx is None:
            g = g.clone()
        return Cohort(g, self.snps[jidx], self.samples[sidx])

    def __getitem__(self, rows: Selection) -> Cohort:
        """``cohort[rows]``: the selected individuals, all SNPs."""
        return self.subset(samples=rows)

    def to(self, device: str | torch.device) -> Cohort:
        return Cohort(self.genotypes.to(device), self.snps, self.samples)


# ---------------------------------------------------------------------------------------------
# read
# ---------------------------------------------------------------------------------------------


def plink_paths(prefix: PathLike) -> tuple[Path, Path, Path]:
    """(.bed, .bim, .fam) of a prefix given with or without a `.bed`/`.bim`/`.fam` suffix."""
    s = os.fspath(prefix)
    for ext in (".bed", ".bim", ".fam"):
        if s.endswith(ext):
            s = s[: -len(ext)]
            break
    return Path(s + ".bed"), Path(s + ".bim"), Path(s + ".fam")


def open_bed_body(bed_path: Path, n_snps: int, n_individuals: int) -> np.memmap | np.ndarray:
    """Validate a `.bed` (magic, mode, size) and map its body read-only as uint8 [M, ceil(N/4)]."""
    if not bed_path.is_file():
        raise FileNotFoundError(f".bed file not found: {bed_path}")
    with open(bed_path, "rb") as f:
        head = f.read(HEADER_BYTES)
    if len(head) < 2 or head[:2] != BED_MAGIC:
        raise ValueError(f"{bed_path}: not a PLINK .bed file (first bytes {head.hex(' ')}, "
                         f"expected magic 6c 1b 01)")
    if len(head) < HEADER_BYTES:
        raise ValueError(f"{bed_path}: truncated header (expected 3 bytes 6c 1b 01)")
    if head[2] == MODE_INDIVIDUAL_MAJOR:
        raise ValueError(f"{bed_path}: individual-major .bed (legacy PLINK mode byte 00); convert "
                         f"it to SNP-major with `plink --bfile PREFIX --make-bed --out NEW`")
    if head[2] != MODE_SNP_MAJOR:
        raise ValueError(f"{bed_path}: unknown .bed mode byte {head[2]:02x} (expected 01, "
                         f"SNP-major)")
    nb = n_packed_bytes(n_individuals)
    expected = HEADER_BYTES + n_snps * nb
    actual = bed_path.stat().st_size
    if actual != expected:
        raise ValueError(
            f"{bed_path}: size {actual} bytes, expected {expected} = 3 + {n_snps} SNPs x "
            f"{nb} bytes ({n_individuals} individuals) from the .bim and .fam"
        )
    if n_snps == 0 or nb == 0:
        return np.empty((n_snps, nb), dtype=np.uint8)
    return np.memmap(bed_path, dtype=np.uint8, mode="r", offset=HEADER_BYTES, shape=(n_snps, nb))


def _chromosome_index(snps: SnpTable, chromosomes: Iterable, where: Path) -> np.ndarray:
    wanted = [str(c) for c in chromosomes]
    present = set(snps.chromosome.tolist())
    unknown = [c for c in wanted if c not in present]
    if unknown:
        raise ValueError(f"{where}: chromosome(s) {', '.join(unknown)} not in the file (it has "
                         f"{', '.join(snps.chromosome_names())})")
    return np.isin(snps.chromosome, wanted)


def read_plink(
    prefix: PathLike,
    *,
    snps: Selection = None,
    samples: Selection = None,
    chromosomes: Iterable[str | int] | None = None,
) -> Cohort:
    """Read a PLINK 1 fileset into a packed `Cohort`, reading only the selected SNPs.

    ``prefix`` may end in `.bed`. ``snps``/``samples`` take a slice, an index array or a boolean
    mask over the file's SNPs/individuals (index arrays keep their order). ``chromosomes`` keeps
    only SNPs on the named chromosomes; with ``snps`` too, the chromosome filter applies to the
    selected SNPs (their order kept). Genotype codes count allele_1 (bed-reader's count_A1=True).
    """
    bed_path, bim_path, fam_path = plink_paths(prefix)
    for p, kind in ((bim_path, ".bim"), (fam_path, ".fam"), (bed_path, ".bed")):
        if not p.is_file():
            raise FileNotFoundError(f"{kind} file not found: {p}")
    snp_table = read_bim(bim_path)
    sample_table = read_fam(fam_path)
    m_file, n_file = len(snp_table), len(sample_table)
    body = open_bed_body(bed_path, m_file, n_file)

    jidx = as_index(snps, m_file, "snps")
    if chromosomes is not None:
        keep = _chromosome_index(snp_table, chromosomes, bim_path)
        jidx = np.flatnonzero(keep) if jidx is None else jidx[keep[jidx]]
        if len(jidx) == m_file:
            jidx = None
    sidx = as_index(samples, n_file, "samples")
    snp_sel = snp_table if jidx is None else snp_table[jidx]
    sample_sel = sample_table if sidx is None else sample_table[sidx]
    m, n = len(snp_sel), len(sample_sel)

    out = np.zeros((n, n_packed_bytes(m)), dtype=np.uint8)
    if m and n:
        core = native()
        if core is not None:
            empty = np.empty(0, dtype=np.int64)
            core.bed_to_packed(body, empty if jidx is None else np.ascontiguousarray(jidx),
                               empty if sidx is None else np.ascontiguousarray(sidx), out)
        else:
            _bed_to_packed_chunks(body, n_file, jidx, sidx, out)
    del body
    return Cohort(torch.from_numpy(out), snp_sel, sample_sel)


def _bed_to_packed_chunks(
    body: np.ndarray,
    n_file: int,
    jidx: np.ndarray | None,
    sidx: np.ndarray | None,
    out: np.ndarray,
) -> None:
    """Torch-reference transpose, SNP chunk by chunk (multiples of 4 SNPs) into ``out``'s columns.

    Memory per chunk is a few times ``chunk x n_file`` bytes, bounded by _FALLBACK_CODES_PER_CHUNK.
    """
    m = body.shape[0] if jidx is None else len(jidx)
    chunk = min(_FALLBACK_MAX_SNPS, max(4, _FALLBACK_CODES_PER_CHUNK // max(1, n_file)))
    chunk -= chunk % 4
    rows_t = None if sidx is None else torch.from_numpy(sidx)
    out_t = torch.from_numpy(out)
    for j0 in range(0, m, chunk):
        j1 = min(m, j0 + chunk)
        rows = np.array(body[j0:j1]) if jidx is None else np.asarray(body[jidx[j0:j1]])
        codes = codec._codes_reference(codec.bed_to_code_bytes(torch.from_numpy(rows)), n_file)
        if rows_t is not None:
            codes = codes.index_select(1, rows_t)
        out_t[:, j0 // 4: j0 // 4 + n_packed_bytes(j1 - j0)] = codec._pack_codes_reference(
            codes.t().contiguous()
        )
