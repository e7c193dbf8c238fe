"""Phased VCF reading (`genofast.io.vcf`): real 1000 Genomes halves against the PLINK fileset
derived from them, small files through both parsers and across packing chunks, and the errors."""

from __future__ import annotations

import gzip
import re
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import real_data, two_chromosome_snps, write_phased_vcf

from genofast.io import PlinkWriter, read_plink
from genofast.io import vcf as vcf_mod
from genofast.io.vcf import PhasedCohort, bed_to_vcf, haplotype_rows, read_vcf, write_vcf


@pytest.mark.parametrize("half", ["split1", "split2"])
def test_agbl4_halves_add_up_to_the_derived_plink_fileset(half: str) -> None:
    """The shared folder's .bed was derived from the same VCFs by the data's curator (biallelic
    SNVs, ALT dosage): the pairs of haplotypes must give it exactly, SNP table included."""
    folder = real_data("agbl4_1000g_chr1")
    phased = read_vcf(folder / f"AGBL4_{half}.vcf.gz")
    bed = read_plink(folder / "AGBL4_biallelic_snps")
    want = bed[np.flatnonzero(bed.samples.fid == half)]
    assert (phased.n_people, phased.haplotypes.n_individuals) == (1252, 2504)
    assert phased.skipped == 4531 - 4053  # indels and multi-allelic sites
    got = phased.genotypes()
    assert torch.equal(got.unpack(), want.unpack())
    for col in ("chromosome", "sid", "bp_position", "allele_1", "allele_2"):
        np.testing.assert_array_equal(getattr(got.snps, col), getattr(want.snps, col))
    h = phased.haplotypes.unpack()
    assert int(h.min()) == 0 and int(h.max()) == 1
    assert phased.people.iid[0] == "GENERATEDSAMPLE0"
    assert list(phased.haplotypes.samples.iid[:2]) == ["GENERATEDSAMPLE0_h1",
                                                       "GENERATEDSAMPLE0_h2"]


@pytest.mark.parametrize("name, fmt", [("a.vcf", "GT"), ("a.vcf.gz", "GT:DS"),
                                       ("a.vcf.gz", "GT")])
def test_small_vcf_roundtrip_across_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           name: str, fmt: str) -> None:
    """11 SNPs packed 4 at a time (chunks end mid-cohort, the last one short), through the
    vectorised GT parser and the per-sample one (GT:DS), plain and gzipped."""
    rng = np.random.default_rng(1)
    hap = (rng.random((10, 11)) < 0.4).astype(np.uint8)
    snps = two_chromosome_snps(11)
    write_phased_vcf(tmp_path / name, hap, snps, fmt=fmt)
    monkeypatch.setattr(vcf_mod, "_CHUNK_BYTES", 1)
    phased = read_vcf(tmp_path / name)
    assert phased.skipped == 0
    np.testing.assert_array_equal(phased.haplotypes.unpack().numpy(), hap)
    np.testing.assert_array_equal(phased.genotypes().unpack().numpy(), hap[0::2] + hap[1::2])
    np.testing.assert_array_equal(phased.haplotypes.snps.allele_1, snps.allele_1)
    np.testing.assert_array_equal(phased.people.iid, [f"p{i}" for i in range(5)])


def test_records_that_are_not_biallelic_snvs_are_skipped(tmp_path: Path) -> None:
    head = "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\ta\tb\n"
    body = ["1\t10\t.\tA\tG\t.\t.\t.\tGT\t0|1\t1|1",
            "1\t20\trs2\tAT\tA\t.\t.\t.\tGT\t0|1\t0|0",  # deletion
            "1\t30\trs3\tC\tA,T\t.\t.\t.\tGT\t0|2\t1|0",  # multi-allelic
            "1\t40\trs4\tC\t*\t.\t.\t.\tGT\t0|1\t1|0",  # spanning deletion
            "2\t50\trs5\tc\tt\t.\t.\t.\tGT:GQ\t1|0:30\t0|0:20"]
    path = tmp_path / "x.vcf.gz"
    with gzip.open(path, "wt") as f:
        f.write("##fileformat=VCFv4.3\n" + head + "\n".join(body) + "\n")
    phased = read_vcf(path)
    assert phased.skipped == 3
    assert list(phased.haplotypes.snps.sid) == ["1:10", "rs5"]
    assert list(phased.haplotypes.snps.allele_1) == ["G", "T"]
    np.testing.assert_array_equal(phased.haplotypes.unpack().numpy().T, [[0, 1, 1, 1],
                                                                         [1, 0, 0, 0]])


_HEAD = "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\ta\tb\n"


@pytest.mark.parametrize("text, message", [
    (_HEAD + "1\t10\t.\tA\tG\t.\t.\t.\tGT\t0/1\t1|1\n", "'0/1' is not phased"),
    (_HEAD + "1\t10\t.\tA\tG\t.\t.\t.\tGT\t0|1\t.|.\n", "'.|.' is missing"),
    (_HEAD + "1\t10\t.\tA\tG\t.\t.\t.\tGT\t0|1\t1\n", "'1' is not a diploid call"),
    (_HEAD + "1\t10\t.\tA\tG\t.\t.\t.\tGT\t0|1\n", "1 sample columns, the header names 2"),
    (_HEAD + "1\t10\t.\tA\tG\t.\t.\t.\tDS:GT\t1:0|1\t0:0|0\n", "does not start with GT"),
    (_HEAD + "1\t10\t.\tA\tG\n", "line 2 has 5 columns"),
    ("1\t10\t.\tA\tG\t.\t.\t.\tGT\t0|1\t1|1\n", "before the #CHROM header"),
    ("##fileformat=VCFv4.2\n", "no #CHROM header"),
    ("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n", "has no samples"),
    ("#CHROM POS ID REF ALT\n", "not a VCF header line"),
    (_HEAD + "1\t10\t.\tAC\tG\t.\t.\t.\tGT\t0|1\t1|1\n", "no biallelic SNV among its 1"),
])
def test_bad_vcf_is_refused_by_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.vcf"
    path.write_text(text)
    with pytest.raises(ValueError, match=re.escape(message)):
        read_vcf(path)


def test_missing_file_and_mismatched_cohort(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="VCF not found"):
        read_vcf(tmp_path / "nope.vcf.gz")
    phased = read_vcf(_one_snp(tmp_path))
    with pytest.raises(ValueError, match="3 haplotype rows for 2 people"):
        PhasedCohort(phased.haplotypes[[0, 1, 2]], phased.people)


def _one_snp(tmp_path: Path) -> Path:
    path = tmp_path / "one.vcf"
    path.write_text(_HEAD + "1\t10\t.\tA\tG\t.\t.\t.\tGT\t0|1\t1|1\n")
    return path


def _haplotype_fileset(tmp_path: Path, n: int, m: int, seed: int = 0) -> tuple[Path, np.ndarray]:
    """A PLINK fileset of 2n haplotype rows (as `genofast sample --vcf` streams them), written in
    unaligned batches; returns its prefix and the haplotypes uint8 [2n, m]."""
    rng = np.random.default_rng(seed)
    hap = (rng.random((2 * n, m)) < rng.uniform(0.02, 0.6, m)).astype(np.int8)
    snps = two_chromosome_snps(m)
    prefix = tmp_path / "haps"
    with PlinkWriter(prefix, snps, 2 * n, samples=haplotype_rows([f"q{i}" for i in range(n)])) as w:
        for a, b in [(0, 7), (7, 2 * n - 5), (2 * n - 5, 2 * n)]:
            w.write(a, torch.from_numpy(hap[a:b]))
    return prefix, hap.astype(np.uint8)


def bgzf_blocks(data: bytes) -> list[bytes]:
    """The uncompressed blocks of a BGZF file, each checked against the format (SAMv1 4.1):
    gzip header with FLG.FEXTRA, a BC subfield of length 2 holding the block size - 1,
    at most 64 KiB each, and the 28-byte empty block last."""
    blocks, i = [], 0
    while i < len(data):
        id1, id2, cm, flg, _, _, _, xlen = struct.unpack_from("<4BI2BH", data, i)
        assert (id1, id2, cm, flg) == (31, 139, 8, 4)
        si1, si2, slen, bsize = struct.unpack_from("<2BHH", data, i + 12)
        assert (xlen, si1, si2, slen) == (6, ord("B"), ord("C"), 2)
        block = data[i:i + bsize + 1]
        assert len(block) == bsize + 1 <= 1 << 16
        body = zlib.decompress(block, wbits=31)  # checks the CRC32 and the size
        assert len(body) <= 1 << 16
        blocks.append(body)
        i += bsize + 1
    assert data.endswith(vcf_mod._BGZF_EOF) and blocks[-1] == b""
    return blocks


def test_written_vcf_reads_back_and_is_bgzf(tmp_path: Path) -> None:
    """bed_to_vcf over several SNP chunks and several BGZF blocks; read_vcf gives the same
    haplotypes, SNPs and people back, and any gzip reader the same text."""
    n, m = 101, 400  # ~160 KB of calls: three BGZF blocks
    prefix, hap = _haplotype_fileset(tmp_path, n, m)
    out = tmp_path / "out.vcf.gz"
    bed_to_vcf(prefix, out, chunk_bytes=2 * n * 24, threads=1)  # 24 SNPs a chunk
    blocks = bgzf_blocks(out.read_bytes())
    bed_to_vcf(prefix, tmp_path / "threads.vcf.gz", threads=3)  # blocks compressed side by side
    assert (tmp_path / "threads.vcf.gz").read_bytes() == out.read_bytes()
    assert len(blocks) >= 4  # three of text and the end marker
    assert b"".join(blocks) == gzip.decompress(out.read_bytes())
    back = read_vcf(out)
    assert list(back.people.iid) == [f"q{i}" for i in range(n)] and back.skipped == 0
    assert torch.equal(back.haplotypes.unpack(), torch.from_numpy(hap.astype(np.int8)))
    snps = read_plink(prefix).snps
    for col in ("chromosome", "sid", "bp_position", "allele_1", "allele_2"):
        assert list(getattr(back.haplotypes.snps, col)) == list(getattr(snps, col)), col
    plain = tmp_path / "out.vcf"
    write_vcf(plain, snps, [f"q{i}" for i in range(n)], [hap.T[:150], hap.T[150:]])
    assert plain.read_bytes() == gzip.decompress(out.read_bytes())
    assert not list(tmp_path.glob("*.part"))


def test_plink2_reads_our_vcf(tmp_path: Path, plink2: str) -> None:
    """An independent reader: plink2 --vcf turns our VCF into the genotypes of the pairs."""
    n, m = 23, 61
    prefix, hap = _haplotype_fileset(tmp_path, n, m, seed=4)
    bed_to_vcf(prefix, tmp_path / "ours.vcf.gz")
    res = subprocess.run([plink2, "--vcf", str(tmp_path / "ours.vcf.gz"), "--double-id",
                          "--make-bed", "--threads", "1", "--memory", "1024",
                          "--out", str(tmp_path / "p2")], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    got = read_plink(tmp_path / "p2")
    assert list(got.samples.iid) == [f"q{i}" for i in range(n)]
    assert list(got.snps.allele_1) == list(read_plink(prefix).snps.allele_1)  # ALT counted
    expected = hap[0::2].astype(np.int8) + hap[1::2]
    assert torch.equal(got.unpack(), torch.from_numpy(expected))


def test_write_vcf_refuses_bad_haplotypes_and_leaves_nothing(tmp_path: Path) -> None:
    snps, people = two_chromosome_snps(6), ["a", "b"]
    good = np.zeros((6, 4), np.uint8)
    for chunks, message in [([good + 2], "take 0/1"), ([good[:, :3]], r"expected \[k, 4\]"),
                            ([good[:4]], "for 4 of 6 SNPs"), ([good, good], "more SNP rows")]:
        with pytest.raises(ValueError, match=message):
            write_vcf(tmp_path / "x.vcf.gz", snps, people, chunks)
        assert not list(tmp_path.iterdir())
    with pytest.raises(ValueError, match="no people"):
        write_vcf(tmp_path / "x.vcf", snps, [], [])
    with pytest.raises(ValueError, match="without whitespace"):
        write_vcf(tmp_path / "x.vcf", snps, ["a", "b c"], [good])
    assert not list(tmp_path.iterdir())
