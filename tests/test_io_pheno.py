"""Phenotype/covariate files: headers, missing markers, categorical columns, the join on ids."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from genofast.io import SampleTable, fam_phenotype, read_fam, read_pheno, write_pheno


@pytest.fixture
def samples() -> SampleTable:
    return SampleTable(fid=["f1", "f1", "f2", "f3"], iid=["a", "b", "a", "c"],
                       father=["0"] * 4, mother=["0"] * 4, sex=[1, 2, 1, 0],
                       phenotype=[0.5, np.nan, 2.0, -1.0])


def test_header_missing_and_categorical(tmp_path: Path) -> None:
    p = tmp_path / "p.txt"
    p.write_text("FID IID height pop age\n"
                 "f1 a 1.5 EUR 30\n"
                 "f1\tb -9 AFR NA\n"
                 "f2 a nan NA 41\n"
                 "\n"
                 "f3 c 2 EAS -9\n")
    ph = read_pheno(p)
    assert ph.names == ["height", "age"]
    expected = [[1.5, 30], [np.nan, np.nan], [np.nan, 41], [2, np.nan]]
    np.testing.assert_array_equal(ph.values, expected)
    assert ph.categorical["pop"].tolist() == ["EUR", "AFR", "", "EAS"]
    assert ph.fid.tolist() == ["f1", "f1", "f2", "f3"] and ph.iid.tolist() == ["a", "b", "a", "c"]
    np.testing.assert_array_equal(ph.column("height"), [1.5, np.nan, np.nan, 2])
    with pytest.raises(KeyError, match="height, age, pop"):
        ph.column("weight")


def test_plink2_style_header(tmp_path: Path) -> None:
    p = tmp_path / "p.txt"
    p.write_text("#FID IID y\nf1 a 1\n")
    assert read_pheno(p).names == ["y"]


def test_headerless_only_when_unambiguous(tmp_path: Path) -> None:
    p = tmp_path / "p.txt"
    p.write_text("f1 a 1.5 -9\nf1 b 2 3\n")
    ph = read_pheno(p)
    assert ph.names == ["PHENO1", "PHENO2"]
    np.testing.assert_array_equal(ph.values, [[1.5, np.nan], [2, 3]])
    p.write_text("f1 a EUR\nf1 b AFR\n")  # header with odd names, or a categorical row?
    msg = rf"{re.escape(str(p))}: line 1 .*header line starting with FID IID"
    with pytest.raises(ValueError, match=msg):
        read_pheno(p)


def test_format_errors(tmp_path: Path) -> None:
    p = tmp_path / "p.txt"
    p.write_text("FID IID y z\nf1 a 1 2\nf1 b 1\n")
    with pytest.raises(ValueError, match=rf"{re.escape(str(p))}: line 3 has 3 columns, expected 4"):
        read_pheno(p)
    p.write_text("FID IID y y\nf1 a 1 2\n")
    with pytest.raises(ValueError, match="duplicated column names"):
        read_pheno(p)
    p.write_text("FID IID\nf1 a\n")
    with pytest.raises(ValueError, match="no phenotype columns"):
        read_pheno(p)
    with pytest.raises(FileNotFoundError, match="phenotype file not found"):
        read_pheno(tmp_path / "none.txt")


def test_join_order_and_absent(tmp_path: Path, samples: SampleTable) -> None:
    p = tmp_path / "p.txt"
    p.write_text("FID IID y pop\nf3 c 3 X\nf1 a 1 Y\nf2 a 2 NA\n")
    ph = read_pheno(p, samples)
    assert ph.iid.tolist() == ["a", "b", "a", "c"] and ph.fid.tolist() == samples.fid.tolist()
    np.testing.assert_array_equal(ph.values[:, 0], [1, np.nan, 2, 3])
    assert ph.categorical["pop"].tolist() == ["Y", "", "", "X"]


def test_join_unknown_ids(tmp_path: Path, samples: SampleTable) -> None:
    p = tmp_path / "p.txt"
    p.write_text("FID IID y\nf1 a 1\nf9 z 2\nf2 c 3\n")
    msg = rf"{re.escape(str(p))}: 2 \(FID, IID\) not among the 4 samples: f9 z, f2 c"
    with pytest.raises(ValueError, match=msg):
        read_pheno(p, samples)
    ph = read_pheno(p, samples, allow_unknown=True)
    np.testing.assert_array_equal(ph.values[:, 0], [1, np.nan, np.nan, np.nan])


def test_join_duplicated_ids(tmp_path: Path, samples: SampleTable) -> None:
    p = tmp_path / "p.txt"
    p.write_text("FID IID y\nf1 a 1\nf1 a 2\nf2 a 3\n")
    with pytest.raises(ValueError, match=r"duplicated \(FID, IID\): f1 a$"):
        read_pheno(p, samples)
    p.write_text("FID IID y\nf1 a 1\n")
    dup = samples[[0, 1, 0]]
    with pytest.raises(ValueError, match=r"samples: duplicated \(FID, IID\): f1 a"):
        read_pheno(p, dup)


def test_fam_column(tmp_path: Path) -> None:
    fam = tmp_path / "x.fam"
    fam.write_text("f1 a 0 0 1 1.25\nf1 b 0 0 2 -9\n")
    ph = fam_phenotype(read_fam(fam))
    assert ph.names == ["PHENO"]
    np.testing.assert_array_equal(ph.values, [[1.25], [np.nan]])


def test_write_read_round_trip(tmp_path: Path, samples: SampleTable) -> None:
    values = np.array([[1.0, 0.1], [np.nan, -2.5], [3.0, 1e-17], [4.0, np.nan]])
    p = tmp_path / "out.pheno"
    write_pheno(p, samples.fid, samples.iid, ["y", "x"], values)
    assert p.read_text().splitlines()[:2] == ["FID IID y x", "f1 a 1 0.1"]
    ph = read_pheno(p, samples)
    np.testing.assert_array_equal(ph.values, values)
    with pytest.raises(ValueError, match="do not match"):
        write_pheno(p, samples.fid, samples.iid, ["y"], values)
