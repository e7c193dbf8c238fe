"""PLINK read/write against bed-reader, the real files in ../shared, and plink2/plink1.9 as clients.

Every reader/writer test runs twice: with the native core (skipped when it is not built) and with
the torch-reference fallback (GENOFAST_NO_NATIVE=1).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from bed_reader import open_bed, to_bed

from genofast import Cohort, PlinkWriter, read_plink, write_plink
from genofast._native import native
from genofast.io import SampleTable, SnpTable, plink
from genofast.ops import pack

BR_MISSING = -127  # bed-reader's int8 missing value


def random_genotypes(rng: np.random.Generator, n: int, m: int, p_missing: float = 0.1):
    g = rng.integers(0, 3, size=(n, m)).astype(np.int8)
    g[rng.random((n, m)) < p_missing] = -1
    return g


def random_snps(rng: np.random.Generator, m: int) -> SnpTable:
    chrom = np.sort(rng.integers(1, 4, size=m)).astype(str)
    return SnpTable(
        chromosome=chrom,
        sid=[f"rs{j}" for j in range(m)],
        cm_position=np.round(rng.random(m), 3),
        bp_position=np.arange(m) * 100 + 7,
        allele_1=rng.choice(["A", "C"], size=m),
        allele_2=rng.choice(["G", "T"], size=m),
    )


def to_br(g: np.ndarray) -> np.ndarray:
    return np.where(g < 0, BR_MISSING, g).astype(np.int8)


def from_br(g: np.ndarray) -> np.ndarray:
    return np.where(g == BR_MISSING, -1, g).astype(np.int8)


SHAPES = [(1, 1), (1, 9), (7, 1), (5, 3), (13, 17), (64, 33), (101, 250)]


# --- bed-reader, both directions ----------------------------------------------------------------


@pytest.mark.parametrize("n,m", SHAPES)
def test_we_write_bed_reader_reads(tmp_path: Path, codec_path: str, n: int, m: int) -> None:
    rng = np.random.default_rng(n * 1000 + m)
    g = random_genotypes(rng, n, m)
    snps = random_snps(rng, m)
    write_plink(tmp_path / "ours", g, snps, batch_rows=8)
    with open_bed(tmp_path / "ours.bed") as bed:
        np.testing.assert_array_equal(from_br(bed.read(dtype="int8")), g)
        f = bed.read(dtype="float32")
        np.testing.assert_array_equal(np.isnan(f), g < 0)
        np.testing.assert_array_equal(bed.sid, snps.sid)
        np.testing.assert_array_equal(bed.chromosome, snps.chromosome)
        np.testing.assert_array_equal(bed.bp_position, snps.bp_position)
        np.testing.assert_allclose(bed.cm_position, snps.cm_position, rtol=1e-6)  # float32
        np.testing.assert_array_equal(bed.allele_1, snps.allele_1)
        np.testing.assert_array_equal(bed.allele_2, snps.allele_2)
        assert list(bed.iid) == [f"ind{i}" for i in range(n)]


@pytest.mark.parametrize("n,m", SHAPES)
def test_bed_reader_writes_we_read(tmp_path: Path, codec_path: str, n: int, m: int) -> None:
    rng = np.random.default_rng(n * 7 + m)
    g = random_genotypes(rng, n, m)
    props = {
        "fid": [f"f{i}" for i in range(n)],
        "iid": [f"s{i}" for i in range(n)],
        "sex": rng.integers(0, 3, size=n),
        "pheno": [str(v) for v in np.round(rng.normal(size=n), 3)],
        "sid": [f"snp{j}" for j in range(m)],
        "chromosome": [str(1 + j % 3) for j in range(m)],
        "bp_position": np.arange(m) + 1000,
        "allele_1": ["A"] * m,
        "allele_2": ["T"] * m,
    }
    to_bed(tmp_path / "br.bed", to_br(g), properties=props)
    cohort = read_plink(tmp_path / "br")
    assert (cohort.n_individuals, cohort.n_snps) == (n, m)
    assert cohort.genotypes.dtype == torch.uint8 and cohort.genotypes.shape == (n, (m + 3) // 4)
    np.testing.assert_array_equal(cohort.unpack().numpy(), g)
    np.testing.assert_array_equal(cohort.samples.iid, props["iid"])
    np.testing.assert_array_equal(cohort.samples.fid, props["fid"])
    np.testing.assert_array_equal(cohort.samples.sex, props["sex"])
    np.testing.assert_allclose(cohort.samples.phenotype, np.array(props["pheno"], dtype=float))
    np.testing.assert_array_equal(cohort.snps.sid, props["sid"])
    np.testing.assert_array_equal(cohort.snps.chromosome, props["chromosome"])
    np.testing.assert_array_equal(cohort.snps.bp_position, props["bp_position"])
    # packed layout: byte j//4 of a row holds SNP j at bits 2*(j%4), missing = 3
    np.testing.assert_array_equal(cohort.genotypes, pack(torch.from_numpy(g)))


def test_fallback_chunks_and_selections(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The chunked torch fallback with tiny chunks: boundaries, index order, repeats, masks."""
    monkeypatch.setenv("GENOFAST_NO_NATIVE", "1")
    native.cache_clear()
    monkeypatch.setattr(plink, "_FALLBACK_MAX_SNPS", 8)
    rng = np.random.default_rng(3)
    g = random_genotypes(rng, 29, 45)
    write_plink(tmp_path / "x", g, random_snps(rng, 45))
    sel_snps = rng.permutation(45)[:30]
    sel_snps[3] = sel_snps[7]  # a repeat
    sel_samples = rng.random(29) < 0.5
    c = read_plink(tmp_path / "x", snps=sel_snps, samples=sel_samples)
    np.testing.assert_array_equal(c.unpack().numpy(), g[sel_samples][:, sel_snps])
    c = read_plink(tmp_path / "x", snps=slice(3, 40, 3), samples=[-1, 0, 5])
    np.testing.assert_array_equal(c.unpack().numpy(), g[[-1, 0, 5]][:, 3:40:3])
    native.cache_clear()


# --- the real files -----------------------------------------------------------------------------


@pytest.fixture(params=["agbl4", "yelmen"])
def real_prefix(request: pytest.FixtureRequest) -> Path:
    return request.getfixturevalue(f"{request.param}_prefix")


def test_real_read_equals_bed_reader(real_prefix: Path, codec_path: str) -> None:
    cohort = read_plink(real_prefix)
    with open_bed(real_prefix.with_suffix(".bed")) as bed:
        np.testing.assert_array_equal(cohort.unpack().numpy(), from_br(bed.read(dtype="int8")))
        for ours, theirs in [
            (cohort.snps.sid, bed.sid), (cohort.snps.chromosome, bed.chromosome),
            (cohort.snps.bp_position, bed.bp_position),
            (cohort.snps.allele_1, bed.allele_1), (cohort.snps.allele_2, bed.allele_2),
            (cohort.samples.fid, bed.fid), (cohort.samples.iid, bed.iid),
            (cohort.samples.sex, bed.sex),
        ]:
            np.testing.assert_array_equal(ours, theirs)
        np.testing.assert_allclose(cohort.snps.cm_position, bed.cm_position, rtol=1e-6)


def test_real_subsets_equal_bed_reader(real_prefix: Path, codec_path: str) -> None:
    with open_bed(real_prefix.with_suffix(".bed")) as bed:
        full = from_br(bed.read(dtype="int8"))
        chrom = bed.chromosome
    n, m = full.shape
    rng = np.random.default_rng(0)
    snp_idx = rng.choice(m, size=min(m, 301), replace=False)
    sample_mask = rng.random(n) < 0.3
    snp_mask = rng.random(m) < 0.5
    cases = [
        (dict(snps=slice(5, m - 3, 2)), full[:, 5:m - 3:2]),
        (dict(samples=slice(100, 350)), full[100:350]),
        (dict(snps=snp_idx, samples=np.arange(n)[::-7]), full[::-7][:, snp_idx]),
        (dict(snps=snp_mask, samples=sample_mask), full[sample_mask][:, snp_mask]),
    ]
    names = list(dict.fromkeys(chrom.tolist()))
    picked = names[-2:] if len(names) > 1 else names
    cases.append((dict(chromosomes=picked), full[:, np.isin(chrom, picked)]))
    cases.append((dict(chromosomes=picked, snps=snp_mask),
                  full[:, snp_mask & np.isin(chrom, picked)]))
    for kwargs, expected in cases:
        c = read_plink(real_prefix, **kwargs)
        np.testing.assert_array_equal(c.unpack().numpy(), expected, err_msg=str(kwargs.keys()))
        assert c.n_snps == expected.shape[1] and c.n_individuals == expected.shape[0]
    c = read_plink(real_prefix, chromosomes=picked)
    assert set(c.snps.chromosome.tolist()) == set(picked)


def test_real_write_read_round_trip(real_prefix: Path, tmp_path: Path, codec_path: str) -> None:
    cohort = read_plink(real_prefix)
    write_plink(tmp_path / "copy", cohort)
    original = real_prefix.with_suffix(".bed").read_bytes()
    assert (tmp_path / "copy.bed").read_bytes() == original
    back = read_plink(tmp_path / "copy.bed")
    assert torch.equal(back.genotypes, cohort.genotypes)
    for col in SnpTable.columns():
        np.testing.assert_array_equal(getattr(back.snps, col), getattr(cohort.snps, col))
    for col in SampleTable.columns():
        np.testing.assert_array_equal(getattr(back.samples, col), getattr(cohort.samples, col))


def test_cohort_subset_and_tables(agbl4_prefix: Path) -> None:
    cohort = read_plink(agbl4_prefix, snps=slice(0, 203), samples=slice(0, 61))
    g = cohort.unpack().numpy()
    rows, cols = np.arange(0, 61, 5), np.arange(202, -1, -3)
    sub = cohort.subset(samples=rows, snps=cols)
    np.testing.assert_array_equal(sub.unpack().numpy(), g[rows][:, cols])
    np.testing.assert_array_equal(sub.snps.sid, cohort.snps.sid[cols])
    np.testing.assert_array_equal(sub.samples.iid, cohort.samples.iid[rows])
    np.testing.assert_array_equal(cohort[rows[:3]].unpack().numpy(), g[rows[:3]])
    assert len(cohort.snps[cohort.snps.bp_position > cohort.snps.bp_position[100]]) == 102
    assert len(cohort) == 61 and isinstance(cohort, Cohort)


# --- PLINK itself as a client ---------------------------------------------------------------------


def _run(cmd: list[str]) -> None:
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_plink2_freq_counts_agree(tmp_path: Path, plink2: str) -> None:
    rng = np.random.default_rng(11)
    n, m = 203, 157
    g = random_genotypes(rng, n, m, p_missing=0.07)
    snps = random_snps(rng, m)
    with PlinkWriter(tmp_path / "ours", snps, n) as w:  # unaligned, out-of-order batches
        for start, stop in [(150, 203), (0, 37), (37, 150)]:
            w.write(start, g[start:stop])
    _run([plink2, "--bfile", str(tmp_path / "ours"), "--freq", "counts", "--threads", "1",
          "--memory", "1024", "--out", str(tmp_path / "f")])
    lines = (tmp_path / "f.acount").read_text().splitlines()
    header = lines[0].lstrip("#").split()
    rows = [dict(zip(header, ln.split(), strict=True)) for ln in lines[1:]]
    assert len(rows) == m
    cohort = read_plink(tmp_path / "ours")
    ours = cohort.unpack().numpy().astype(np.int64)
    a1 = np.where(ours < 0, 0, ours).sum(0)
    obs = 2 * (ours >= 0).sum(0)
    for j, row in enumerate(rows):
        assert row["ID"] == snps.sid[j]
        assert int(row["OBS_CT"]) == obs[j]
        alt = int(row["ALT_CTS"])
        # plink2 reads .bim column 5 (our allele_1) as ALT
        expected = a1[j] if row["ALT"] == snps.allele_1[j] else obs[j] - a1[j]
        assert alt == expected, (j, row)


def test_plink19_reads_our_file(tmp_path: Path, plink19: str) -> None:
    rng = np.random.default_rng(12)
    n, m = 45, 38
    g = random_genotypes(rng, n, m)
    write_plink(tmp_path / "ours", g, random_snps(rng, m), batch_rows=12)
    _run([plink19, "--bfile", str(tmp_path / "ours"), "--make-bed", "--keep-allele-order",
          "--threads", "1", "--memory", "256", "--out", str(tmp_path / "again")])
    back = read_plink(tmp_path / "again")
    np.testing.assert_array_equal(back.unpack().numpy(), g)
