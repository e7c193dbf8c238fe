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

import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from genofast._native import native
from genofast.io.tables import (
    PathLike,
    SampleTable,
    Selection,
    SnpTable,
    as_index,
    read_bim,
    read_fam,
)
from genofast.ops import codec
from genofast.ops.codec import n_packed_bytes

BED_MAGIC = b"\x6c\x1b"
MODE_SNP_MAJOR = 0x01
MODE_INDIVIDUAL_MAJOR = 0x00
HEADER_BYTES = 3

# Fallback transpose budget: codes (one byte per genotype) handled per SNP chunk. The torch
# reference holds a few copies of it, so a chunk costs ~4x this many bytes whatever N.
_FALLBACK_CODES_PER_CHUNK = 1 << 24
_FALLBACK_MAX_SNPS = 8192


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
    fam: SampleTable | None = None,
) -> Cohort:
    """Read a PLINK 1 fileset into a packed `Cohort`, reading only the selected SNPs.

    ``prefix`` may end in `.bed`. ``snps``/``samples`` take a slice, an index array or a boolean
    mask over the file's SNPs/individuals (index arrays keep their order). ``chromosomes`` keeps
    only SNPs on the named chromosomes; with ``snps`` too, the chromosome filter applies to the
    selected SNPs (their order kept). Genotype codes count allele_1 (bed-reader's count_A1=True).
    ``fam``: the fileset's `.fam` already read (`read_fam`), so it is not read again.
    """
    bed_path, bim_path, fam_path = plink_paths(prefix)
    for p, kind in ((bim_path, ".bim"), (fam_path, ".fam"), (bed_path, ".bed")):
        if not p.is_file():
            raise FileNotFoundError(f"{kind} file not found: {p}")
    sample_table = read_fam(fam_path) if fam is None else fam
    n_file = len(sample_table)
    sidx = as_index(samples, n_file, "samples")
    core = native()
    m_bed = _snp_rows_of_bed(bed_path, n_file)
    if core is not None and chromosomes is None and m_bed is not None:
        # The .bed size already gives the SNP count, so the transpose (native, GIL released)
        # runs in a worker thread while this one parses the .bim; then the two must agree.
        body = open_bed_body(bed_path, m_bed, n_file)
        jidx = as_index(snps, m_bed, "snps")
        with ThreadPoolExecutor(max_workers=1) as pool:
            job = pool.submit(_transpose, core, body, jidx, sidx, n_file)
            snp_table = read_bim(bim_path)
            out = job.result()
        if len(snp_table) != m_bed:
            open_bed_body(bed_path, len(snp_table), n_file)  # raises the size mismatch
    else:
        snp_table = read_bim(bim_path)
        m_file = len(snp_table)
        body = open_bed_body(bed_path, m_file, n_file)
        jidx = as_index(snps, m_file, "snps")
        if chromosomes is not None:
            keep = _chromosome_index(snp_table, chromosomes, bim_path)
            jidx = np.flatnonzero(keep) if jidx is None else jidx[keep[jidx]]
            if len(jidx) == m_file:
                jidx = None
        out = _transpose(core, body, jidx, sidx, n_file)
    del body
    snp_sel = snp_table if jidx is None else snp_table[jidx]
    sample_sel = sample_table if sidx is None else sample_table[sidx]
    return Cohort(torch.from_numpy(out), snp_sel, sample_sel)


def _snp_rows_of_bed(bed_path: Path, n_individuals: int) -> int | None:
    """SNP rows implied by the `.bed` size for ``n_individuals``, or None when it does not divide
    (read_plink then reports the mismatch against the `.bim`)."""
    row_bytes = n_packed_bytes(n_individuals)
    body = bed_path.stat().st_size - HEADER_BYTES
    if row_bytes == 0 or body < 0 or body % row_bytes:
        return None
    return body // row_bytes


def _transpose(core, body: np.ndarray, jidx: np.ndarray | None, sidx: np.ndarray | None,
               n_file: int) -> np.ndarray:
    """Selected rows of the mapped `.bed` body -> packed individual-major ``uint8 [n, ceil(m/4)]``
    (native kernel when built, else the chunked torch reference)."""
    m = body.shape[0] if jidx is None else len(jidx)
    n = n_file if sidx is None else len(sidx)
    out = np.zeros((n, n_packed_bytes(m)), dtype=np.uint8)
    if m and n:
        if core is not None:
            empty = np.empty(0, dtype=np.int64)
            core.bed_to_packed(body, empty if jidx is None else np.ascontiguousarray(jidx),
                               empty if sidx is None else np.ascontiguousarray(sidx), out)
        else:
            _bed_to_packed_chunks(body, n_file, jidx, sidx, out)
    return out


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
