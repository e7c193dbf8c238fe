"""`.bim`/`.fam` text tables: the numpy tokeniser and writers against a plain ``str.split``
reference, on the layouts PLINK allows (any whitespace, CRLF, blank lines, no final newline)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from genofast.io.tables import SampleTable, SnpTable, read_bim, read_fam, write_bim, write_fam


def _reference(path: Path, kind: str) -> list[list[str]]:
    """The obviously-correct parser: rows of whitespace-split tokens, blank lines skipped."""
    rows = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        tok = line.split()
        if tok and len(tok) != 6:
            raise ValueError(f"{path}: line {lineno} has {len(tok)} columns, a {kind} line has 6")
        if tok:
            rows.append(tok)
    return [list(c) for c in zip(*rows, strict=True)] if rows else [[] for _ in range(6)]


def _check_bim(path: Path) -> SnpTable:
    got = read_bim(path)
    chrom, sid, cm, bp, a1, a2 = _reference(path, ".bim")
    for name, col in (("chromosome", chrom), ("sid", sid), ("allele_1", a1), ("allele_2", a2)):
        want = np.array(col, dtype=str) if col else np.empty(0, dtype=str)
        assert getattr(got, name).dtype == want.dtype, name
        np.testing.assert_array_equal(getattr(got, name), want)
    want_cm = np.array([float(v) for v in cm], dtype=np.float64)
    assert got.cm_position.dtype == np.float64 and got.bp_position.dtype == np.int64
    np.testing.assert_array_equal(got.cm_position, want_cm)
    np.testing.assert_array_equal(np.signbit(got.cm_position), np.signbit(want_cm))
    np.testing.assert_array_equal(got.bp_position, np.array([int(v) for v in bp], dtype=np.int64))
    return got


BIM_LAYOUTS = {
    "tabs": "1\trs1\t0\t100\tA\tG\n2\trs2\t0.0\t200\tC\tT\n",
    "spaces": "1  rs1 0 100   A G\n 2 rs2 0.0 200 C T  \n",
    "crlf": "1\trs1\t0\t100\tA\tG\r\n2\trs2\t0\t200\tC\tT\r\n",
    "no_final_newline": "1\trs1\t0\t100\tA\tG\n2\trs2\t0\t200\tC\tT",
    "crlf_no_final_newline": "1 rs1 0 100 A G\r\n2 rs2 0 200 C T\r",
    "blank_lines": "\n1 rs1 0 100 A G\n\n   \n\t\n2 rs2 0 200 C T\n\n",
    "empty": "",
    "only_blank": "\n \n\t\n",
    "non_ascii": "1 rsé1 0 100 A G\n2 日本 0 200 C T\n",
    "lone_cr": "1 rs1 0 100 A G\r2 rs2 0 200 C T\r",
    "form_feed": "1 rs1 0 100 A G\x0c2 rs2 0 200 C T\n",
    "float_cm": "1 rs1 -0.5 1 A G\n1 rs2 1e-7 2 A G\n1 rs3 12345.678901 3 A G\n1 rs4 -0 4 A G\n"
                "1 rs5 1E300 5 A G\n1 rs6 .5 6 A G\n1 rs7 5. 7 A G\n1 rs8 nan 8 A G\n"
                "1 rs9 -inf 9 A G\n1 rs10 0.10000000000000001 10 A G\n",
    "bp_forms": "1 a 0 0007 A G\n1 b 0 +5 A G\n1 c 0 -3 A G\n1 d 0 1_000 A G\n"
                "1 e 0 999999999999999999 A G\n1 f 0 1234567890123456789 A G\n1 g 0 0 A G\n",
    "long_ids": "chr10 " + "x" * 300 + " 0 1 ACGTACGT A\nX y 0 2 A " + "G" * 50 + "\n",
}


@pytest.mark.parametrize("layout", sorted(BIM_LAYOUTS))
def test_bim_layouts_match_reference(tmp_path: Path, layout: str) -> None:
    path = tmp_path / "t.bim"
    path.write_bytes(BIM_LAYOUTS[layout].encode())
    _check_bim(path)


@pytest.mark.parametrize("text, line", [
    ("1 rs1 0 100 A G\n1 rs2 0 200 A\n", 2),
    ("1 rs1 0 100 A G\n\n1 rs2 0 200 A G T\n", 3),
    ("1 rs1 0 100 A G\r\n1 rs2 0 200 A G T\r\n", 2),
    ("1 rs1 0 100 A G 1 rs2 0 200 A G\n\n", 1),  # twelve tokens on one line: still an error
    ("1 rs1 0 100 A G\n1 rs2 0 200 A", 2),
    ("1 rs1 0 100 A G\n1 rsé 0 200 A\n", 2),
])
def test_bim_wrong_column_count(tmp_path: Path, text: str, line: int) -> None:
    path = tmp_path / "t.bim"
    path.write_bytes(text.encode())
    with pytest.raises(ValueError) as ref:
        _reference(path, ".bim")
    assert f"line {line} has" in str(ref.value)
    with pytest.raises(ValueError, match=re.escape(str(ref.value))):
        read_bim(path)


@pytest.mark.parametrize("text, msg", [
    ("1 a 0 1 A G\n\n1 b 0 12x A G\n", ".bim line 2: bp position '12x' is not an integer"),
    ("1 a 0 1 A G\n1 b 0 1.5 A G\n", ".bim line 2: bp position '1.5' is not an integer"),
    ("1 a 0 - A G\n", ".bim line 1: bp position '-' is not an integer"),
    ("1 a 0 1 A G\n1 b x1 1 A G\n", ".bim line 2: cM position 'x1' is not a number"),
    ("1 a 0 1 A G\n1 b 1.2.3 1 A G\n", ".bim line 2: cM position '1.2.3' is not a number"),
])
def test_bim_bad_numbers(tmp_path: Path, text: str, msg: str) -> None:
    path = tmp_path / "t.bim"
    path.write_text(text)
    with pytest.raises(ValueError, match=re.escape(f"{path}: {msg}")):
        read_bim(path)


def test_fam_matches_reference(tmp_path: Path) -> None:
    path = tmp_path / "t.fam"
    path.write_bytes(b"f1 i1 0 0 1 -9\r\n\r\nf1  i2 i1 0 2 1.5\r\nf2\ti\xc3\xa9 0 0 0 NA\r\n"
                     b"f3 i4 0 0 002 x")
    got = read_fam(path)
    fid, iid, father, mother, sex, pheno = _reference(path, ".fam")
    np.testing.assert_array_equal(got.fid, np.array(fid, dtype=str))
    np.testing.assert_array_equal(got.iid, np.array(iid, dtype=str))
    assert got.iid.dtype == np.array(iid, dtype=str).dtype
    np.testing.assert_array_equal(got.father, father)
    np.testing.assert_array_equal(got.mother, mother)
    np.testing.assert_array_equal(got.sex, [int(v) for v in sex])
    np.testing.assert_array_equal(got.phenotype_raw, pheno)
    np.testing.assert_array_equal(got.phenotype, [np.nan, 1.5, np.nan, np.nan])


def test_fam_bad_sex_line(tmp_path: Path) -> None:
    path = tmp_path / "t.fam"
    path.write_text("a a 0 0 1 1\n\nb b 0 0 M 2\n")
    with pytest.raises(ValueError, match=re.escape(f"{path}: .fam line 2: sex 'M' is not an")):
        read_fam(path)


def _random_snps(rng: np.random.Generator, n: int) -> SnpTable:
    cm = rng.normal(size=n) * 10.0 ** rng.integers(-9, 18, size=n)
    cm[rng.random(n) < 0.2] = 0.0
    cm[:6] = [0.0, -0.0, 1e-7, -2.5, 1e16, 123456789.125][:n]
    return SnpTable(
        chromosome=rng.choice(["1", "22", "X", "MT", "chr7"], size=n),
        sid=np.array([f"rs{rng.integers(0, 10**12)}_{'x' * int(rng.integers(0, 5))}"
                      for _ in range(n)]),
        cm_position=cm,
        bp_position=rng.integers(0, 3 * 10**9, size=n),
        allele_1=rng.choice(["A", "C", "G", "T", "ACGT", "0", "-"], size=n),
        allele_2=rng.choice(["A", "C", "G", "T", "I", "D"], size=n),
    )


def _line_writer_bim(snps: SnpTable) -> str:
    return "".join(f"{c}\t{s}\t{float(g)!r}\t{b}\t{a1}\t{a2}\n" for c, s, g, b, a1, a2 in zip(
        snps.chromosome, snps.sid, snps.cm_position, snps.bp_position, snps.allele_1,
        snps.allele_2, strict=True))


@pytest.mark.parametrize("n", [0, 1, 7, 2000])
@pytest.mark.parametrize("all_zero_cm", [False, True])
def test_bim_write_read_round_trip(tmp_path: Path, n: int, all_zero_cm: bool) -> None:
    rng = np.random.default_rng(n)
    snps = _random_snps(rng, n)
    if all_zero_cm:
        snps.cm_position[:] = 0.0
    if n:
        snps.bp_position[0] = -12  # negative written as str(int)
    path = tmp_path / "r.bim"
    write_bim(path, snps)
    assert path.read_text() == _line_writer_bim(snps)
    back = _check_bim(path)
    for c in SnpTable.columns():
        np.testing.assert_array_equal(getattr(back, c), getattr(snps, c))


def test_bim_write_non_ascii_and_strided(tmp_path: Path) -> None:
    snps = _random_snps(np.random.default_rng(1), 50)
    snps.sid[3] = "rsé"
    path = tmp_path / "u.bim"
    write_bim(path, snps)
    assert path.read_text() == _line_writer_bim(snps)
    strided = SnpTable(*(getattr(snps, c)[::2] for c in SnpTable.columns()))
    strided.sid = snps.sid[::2]  # a non-contiguous column
    write_bim(path, strided)
    assert path.read_text() == _line_writer_bim(strided)
    np.testing.assert_array_equal(read_bim(path).sid, strided.sid)


@pytest.mark.parametrize("n", [0, 5, 1000])
def test_fam_write_read_round_trip(tmp_path: Path, n: int) -> None:
    rng = np.random.default_rng(n)
    samples = SampleTable(
        fid=np.array([f"fam{i // 3}" for i in range(n)], dtype=str),
        iid=np.array([f"ind{rng.integers(0, 10**9)}" for _ in range(n)], dtype=str),
        father=rng.choice(["0", "dad1", "p"], size=n),
        mother=rng.choice(["0", "mum1"], size=n),
        sex=rng.integers(0, 3, size=n),
        phenotype=rng.normal(size=n),
    )
    if n:
        samples.iid[0] = "indé"  # non-ASCII: the line-by-line writer
    path = tmp_path / "r.fam"
    write_fam(path, samples)
    want = "".join(f"{a} {b} {c} {d} {e} {p}\n" for a, b, c, d, e, p in zip(
        samples.fid, samples.iid, samples.father, samples.mother, samples.sex,
        samples.phenotype_raw, strict=True))
    assert path.read_text() == want
    back = read_fam(path)
    for c in SampleTable.columns():
        np.testing.assert_array_equal(getattr(back, c), getattr(samples, c))
