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

Writing (`write_vcf`, `bed_to_vcf`): the same layout back, ``a|b`` per person, REF = allele_2,
ALT = allele_1, one line per SNP. VCF is SNP-major, so haplotypes sampled person by person go to
a PLINK fileset of haplotype rows first (its `.bed` is SNP-major too) and `bed_to_vcf` turns it
into text a chunk of SNPs at a time. A path ending in `.gz` is written BGZF-compressed (blocks of
at most 64 KiB, each a gzip member carrying its size, and the empty end-of-file block: the SAM/VCF
specification's format), so `tabix` and `bcftools index` take it and any gzip reader reads it.
"""

from __future__ import annotations

import gzip
import io
import os
import struct
import zlib
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from genofast.io.plink import Cohort, open_bed_body, plink_paths
from genofast.io.tables import PathLike, SampleTable, SnpTable, read_bim, read_fam
from genofast.ops import codec, pack

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
    return PhasedCohort(Cohort(torch.cat(packed, 1), snps, haplotype_rows(names)),
                        SampleTable.from_iids(names), skipped)


def haplotype_rows(people: Sequence[str]) -> SampleTable:
    """The sample table of people's haplotype rows: IID ``NAME_h1``, ``NAME_h2``, FID ``NAME``."""
    ids = np.asarray(people, dtype=str)
    return SampleTable.from_iids(np.char.add(np.repeat(ids, 2), np.tile(["_h1", "_h2"], len(ids))),
                                 fid=np.repeat(ids, 2))


_BGZF_INPUT = 0xFF00  # uncompressed bytes per BGZF block (htslib's): stored blocks stay < 64 KiB
# zlib level 1: the whole VCF write 2.4x faster than at level 6 (bgzip's default) for a 1.6x
# larger file (bench/bench_io.py, vcf group; bench/RESULTS.md, "Phased VCF out")
_BGZF_LEVEL = 1
_BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")


def _bgzf_block(data: bytes) -> bytes:
    """One BGZF block: a gzip member whose ``BC`` extra field holds the block size minus one."""
    for level in (_BGZF_LEVEL, 0):  # incompressible data: a stored block, which always fits
        z = zlib.compressobj(level, zlib.DEFLATED, -15)
        body = z.compress(data) + z.flush()
        if len(body) + 26 <= 1 << 16:
            break
    head = struct.pack("<4BI2BH2BHH", 0x1F, 0x8B, 8, 4, 0, 0, 0xFF, 6, ord("B"), ord("C"), 2,
                       len(body) + 25)
    return head + body + struct.pack("<II", zlib.crc32(data), len(data))


class _BgzfWriter:
    """Binary file written as BGZF blocks, then the 28-byte empty block that marks the end.
    Blocks are independent, so ``threads`` compress them side by side (zlib releases the GIL);
    the bytes are the same for any number of threads."""

    def __init__(self, path: Path, threads: int | None = None) -> None:
        self._threads = max(1, threads or os.cpu_count() or 1)
        self._pool = ThreadPoolExecutor(self._threads) if self._threads > 1 else None
        self._f = open(path, "wb")  # noqa: SIM115 (closed by close())
        self._buf = bytearray()

    def write(self, data: bytes) -> None:
        self._buf += data
        if len(self._buf) >= 4 * self._threads * _BGZF_INPUT:
            self._flush(whole_blocks_only=True)

    def _flush(self, whole_blocks_only: bool) -> None:
        end = len(self._buf) // _BGZF_INPUT * _BGZF_INPUT if whole_blocks_only else len(self._buf)
        pieces = [bytes(self._buf[i:i + _BGZF_INPUT]) for i in range(0, end, _BGZF_INPUT)]
        del self._buf[:end]
        blocks = self._pool.map(_bgzf_block, pieces) if self._pool else map(_bgzf_block, pieces)
        for block in blocks:
            self._f.write(block)

    def close(self) -> None:
        if self._f.closed:
            return
        try:
            self._flush(whole_blocks_only=False)
            self._f.write(_BGZF_EOF)
        finally:
            self._f.close()
            if self._pool is not None:
                self._pool.shutdown()


def write_vcf(
    path: PathLike, snps: SnpTable, people: Sequence[str], chunks: Iterable[np.ndarray],
    threads: int | None = None,
) -> None:
    """Write a phased VCF (BGZF when ``path`` ends in .gz) of ``people`` over ``snps``.

    ``chunks`` gives the haplotypes SNP by SNP: arrays ``[k, 2N]`` of 0/1 (copies of allele_1)
    for consecutive SNPs, column 2i and 2i+1 person i's. The file is written under a temporary
    name and renamed when complete, so a crash leaves no truncated VCF. ``threads``: BGZF
    compression threads (default: every core)."""
    path = Path(os.fspath(path))
    n = len(people)
    if n == 0:
        raise ValueError("write_vcf: no people")
    bad = [p for p in people if not p or any(c.isspace() for c in p)]
    if bad:
        raise ValueError(f"write_vcf: sample names must be non-empty without whitespace, got "
                         f"{bad[0]!r}")
    final = path
    path = path.with_name(path.name + ".part")
    gz = final.name.endswith(".gz")
    out = _BgzfWriter(path, threads) if gz else open(path, "wb")  # noqa: SIM115
    try:
        chroms = list(dict.fromkeys(str(c) for c in snps.chromosome))
        head = ["##fileformat=VCFv4.2", "##source=genofast",
                *(f"##contig=<ID={c}>" for c in chroms),
                '##FORMAT=<ID=GT,Number=1,Type=String,Description="Phased genotype">',
                "\t".join(["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO",
                           "FORMAT", *people])]
        out.write(("\n".join(head) + "\n").encode())
        j = 0
        for h in chunks:
            h = np.asarray(h)
            if h.ndim != 2 or h.shape[1] != 2 * n:
                raise ValueError(f"write_vcf: a chunk of shape {h.shape}, expected [k, {2 * n}]")
            if h.size and (h.min() < 0 or h.max() > 1):
                raise ValueError(f"write_vcf: haplotypes take 0/1; SNPs {j}..{j + len(h) - 1} "
                                 f"hold {h.min()}..{h.max()}")
            if j + len(h) > len(snps):
                raise ValueError(f"write_vcf: more SNP rows than the {len(snps)} SNPs")
            calls = np.empty((len(h), n, 4), np.uint8)  # "a|b\t" per person, "\n" at the end
            calls[:, :, 0] = h[:, 0::2] + ord("0")
            calls[:, :, 1] = ord("|")
            calls[:, :, 2] = h[:, 1::2] + ord("0")
            calls[:, :, 3] = ord("\t")
            calls[:, -1, 3] = ord("\n")
            lines = []
            for r in range(len(h)):
                ref, alt = str(snps.allele_2[j + r]), str(snps.allele_1[j + r])
                lines.append(f"{snps.chromosome[j + r]}\t{snps.bp_position[j + r]}\t"
                             f"{snps.sid[j + r]}\t{ref if ref != '0' else 'N'}\t"
                             f"{alt if alt != '0' else '.'}\t.\tPASS\t.\tGT\t".encode())
                lines.append(calls[r].tobytes())
            out.write(b"".join(lines))
            j += len(h)
        if j != len(snps):
            raise ValueError(f"write_vcf: haplotypes for {j} of {len(snps)} SNPs")
        out.close()
        os.replace(path, final)
    except BaseException:
        out.close()
        path.unlink(missing_ok=True)
        raise


def bed_to_vcf(
    prefix: PathLike, path: PathLike, people: Sequence[str] | None = None,
    chunk_bytes: int = _CHUNK_BYTES, threads: int | None = None,
) -> None:
    """A phased VCF from a PLINK fileset whose rows are haplotypes (2i and 2i+1 person i's,
    0/1), read ``chunk_bytes`` of unpacked haplotypes at a time. ``people``: the N names
    (default: the FIDs of every second row, as `read_vcf` names haplotype rows); ``threads`` as
    in `write_vcf`."""
    bed_path, bim_path, fam_path = plink_paths(prefix)
    snps, rows = read_bim(bim_path), read_fam(fam_path)
    if len(rows) % 2:
        raise ValueError(f"{fam_path}: {len(rows)} rows; haplotypes come in pairs")
    people = list(rows.fid[0::2] if people is None else people)
    if 2 * len(people) != len(rows):
        raise ValueError(f"{len(people)} people for {len(rows)} haplotype rows")
    body = open_bed_body(bed_path, len(snps), len(rows))
    step = max(4, chunk_bytes // max(len(rows), 1) // 4 * 4)

    def chunks() -> Iterable[np.ndarray]:
        for j in range(0, len(snps), step):
            k = min(step, len(snps) - j)
            packed = codec.bed_to_packed(torch.from_numpy(np.array(body[j:j + k])),
                                         len(rows))
            yield codec.unpack(packed, k).numpy().T

    write_vcf(path, snps, people, chunks(), threads)
