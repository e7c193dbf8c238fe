"""Phased VCF (`.vcf` or `.vcf.gz`) read as haplotypes, 2-bit packed like every other cohort.

A phased genotype ``a|b`` is two haplotypes; a model that learns haplotypes and pairs them never
has to learn the phase, which unphased genotypes hide (`genofast.train`, ``phased``). Person i's
haplotypes are rows 2i and 2i+1 of a `Cohort` coded 0/1 (copies of ALT), so the packed layout,
the codec and every model work on them unchanged; `PhasedCohort.genotypes` adds the pairs up
into the people's 0/1/2 genotypes.

Biallelic SNVs are kept (REF and ALT one base each of A/C/G/T), as `AGBL4_biallelic_snps` was
derived; other records (indels, multi-allelic sites, ``*``) are skipped and counted. A kept
record must have GT first in FORMAT and a phased diploid call ``0|0 0|1 1|0 1|1`` for every
person: an unphased (``/``), missing (``.``) or haploid call is an error that names the record,
since a haplotype model has no way to use it (phase and impute first: Beagle, SHAPEIT, Eagle).

The `.bim`-like SNP table has allele_1 = ALT (the counted allele), allele_2 = REF, the record's
ID (``CHROM:POS`` where it is ``.``) and cM 0; people get FID = IID = the VCF sample name (PLINK's
``--double-id``), haplotype rows IID ``NAME_h1`` / ``NAME_h2`` with FID = NAME. Records are parsed
line by line and packed every few thousand SNPs, so the peak memory is about twice the packed
haplotypes.
"""

from __future__ import annotations

import gzip
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from genofast.io.plink import Cohort
from genofast.io.tables import PathLike, SampleTable, SnpTable
from genofast.ops import pack

_BASES = frozenset("ACGT")
_CHUNK_BYTES = 64 << 20  # unpacked haplotype bytes held before a chunk of SNPs is packed


@dataclass(eq=False)
class PhasedCohort:
    """Haplotypes (a `Cohort` of 2N rows, rows 2i and 2i+1 person i's, 0/1 copies of allele_1)
    and the N people they belong to."""

    haplotypes: Cohort
    people: SampleTable
    skipped: int = 0  # VCF records that are not biallelic SNVs

    def __post_init__(self) -> None:
        if self.haplotypes.n_individuals != 2 * len(self.people):
            raise ValueError(f"PhasedCohort: {self.haplotypes.n_individuals} haplotype rows for "
                             f"{len(self.people)} people (expected two each)")

    @property
    def n_people(self) -> int:
        return len(self.people)

    def genotypes(self) -> Cohort:
        """The people's genotypes: each pair of haplotype rows added up (0/1/2)."""
        h = self.haplotypes.unpack()
        return Cohort(pack(h[0::2] + h[1::2]), self.haplotypes.snps, self.people)


def _open_text(path: Path) -> io.TextIOBase:
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"  # gzip or BGZF, whatever the file is called
    return gzip.open(path, "rt") if gz else open(path)  # noqa: SIM115 (the caller closes it)


def _gt_slow(fields: str, n: int, where: str) -> np.ndarray:
    """uint8 [2n] haplotypes of one record's sample columns in any FORMAT with GT first."""
    cols = fields.split("\t")
    if len(cols) != n:
        raise ValueError(f"{where}: {len(cols)} sample columns, the header names {n}")
    out = np.empty(2 * n, np.uint8)
    for i, col in enumerate(cols):
        gt = col.split(":", 1)[0]
        if len(gt) != 3 or gt[1] != "|" or gt[0] not in "01" or gt[2] not in "01":
            why = ("is not phased (phase it first: Beagle, SHAPEIT, Eagle)" if "/" in gt
                   else "is missing (impute it first)" if "." in gt
                   else "is not a diploid call of REF (0) and one ALT (1)")
            raise ValueError(f"{where}: sample {i + 1}'s genotype {gt!r} {why}")
        out[2 * i], out[2 * i + 1] = ord(gt[0]) - 48, ord(gt[2]) - 48
    return out


def _gt(fields: str, n: int, where: str) -> np.ndarray:
    """uint8 [2n] haplotypes of one record: a vectorised path for the plain ``a|b\\t...`` layout
    of FORMAT=GT, the per-sample parser (and its errors) for anything else."""
    raw = np.frombuffer(fields.encode("ascii") + b"\t", np.uint8)
    if len(raw) == 4 * n:
        cells = raw.reshape(n, 4)
        alleles = cells[:, [0, 2]]
        if ((cells[:, 1] == ord("|")).all() and (cells[:, 3] == ord("\t")).all()
                and ((alleles == ord("0")) | (alleles == ord("1"))).all()):
            return (alleles - ord("0")).reshape(-1)
    return _gt_slow(fields, n, where)


def read_vcf(path: PathLike) -> PhasedCohort:
    """Read a phased VCF's biallelic SNVs as haplotypes (module docstring)."""
    path = Path(os.fspath(path))
    if not path.is_file():
        raise FileNotFoundError(f"VCF not found: {path}")
    names: list[str] | None = None
    cols: dict[str, list] = {c: [] for c in ("chromosome", "sid", "bp", "alt", "ref")}
    chunk: list[np.ndarray] = []
    packed: list[torch.Tensor] = []
    skipped = 0
    per_chunk = 4
    with _open_text(path) as f:
        for lineno, line in enumerate(f, 1):
            if line.startswith("##"):
                continue
            line = line.rstrip("\r\n")
            if line.startswith("#"):
                head = line.split("\t")
                if head[:8] != ["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO"]:
                    raise ValueError(f"{path}: line {lineno} is not a VCF header line")
                names = head[9:]
                if not names:
                    raise ValueError(f"{path}: the VCF has no samples")
                per_chunk = max(4, _CHUNK_BYTES // (2 * len(names)) // 4 * 4)
                continue
            if names is None:
                raise ValueError(f"{path}: line {lineno}: a record before the #CHROM header")
            if not line:
                continue
            c = line.split("\t", 9)
            if len(c) < 10:
                raise ValueError(f"{path}: line {lineno} has {len(c)} columns, expected "
                                 f"{9 + len(names)}")
            ref, alt = c[3].upper(), c[4].upper()
            if ref not in _BASES or alt not in _BASES:
                skipped += 1
                continue
            if c[8].split(":", 1)[0] != "GT":
                raise ValueError(f"{path}: line {lineno}: FORMAT {c[8]!r} does not start "
                                 f"with GT")
            chunk.append(_gt(c[9], len(names), f"{path}: line {lineno}"))
            cols["chromosome"].append(c[0])
            cols["sid"].append(c[2] if c[2] != "." else f"{c[0]}:{c[1]}")
            cols["bp"].append(int(c[1]))
            cols["alt"].append(alt)
            cols["ref"].append(ref)
            if len(chunk) == per_chunk:
                packed.append(pack(torch.from_numpy(np.stack(chunk, 1).view(np.int8))))
                chunk = []
    if names is None:
        raise ValueError(f"{path}: no #CHROM header line: not a VCF")
    if chunk:
        packed.append(pack(torch.from_numpy(np.stack(chunk, 1).view(np.int8))))
    if not packed:
        raise ValueError(f"{path}: no biallelic SNV among its {skipped} records")
    m = len(cols["sid"])
    snps = SnpTable(chromosome=cols["chromosome"], sid=cols["sid"], cm_position=np.zeros(m),
                    bp_position=cols["bp"], allele_1=cols["alt"], allele_2=cols["ref"])
    ids = np.asarray(names, dtype=str)
    haps = SampleTable.from_iids(np.char.add(np.repeat(ids, 2), np.tile(["_h1", "_h2"],
                                                                          len(ids))),
                                 fid=np.repeat(ids, 2))
    return PhasedCohort(Cohort(torch.cat(packed, 1), snps, haps), SampleTable.from_iids(ids),
                        skipped)
