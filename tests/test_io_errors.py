"""Every reader error names the file and says what was expected."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from genofast import read_plink, write_plink
from genofast.io import SnpTable, read_bim, read_fam


@pytest.fixture
def fileset(tmp_path: Path) -> Path:
    g = np.random.default_rng(0).integers(-1, 3, size=(9, 6)).astype(np.int8)
    write_plink(tmp_path / "x", g, SnpTable.synthetic(6))
    return tmp_path / "x"


def _names(path: Path) -> str:
    return re.escape(str(path))


@pytest.mark.parametrize("ext", [".bed", ".bim", ".fam"])
def test_missing_file(fileset: Path, ext: str) -> None:
    path = fileset.with_suffix(ext)
    path.unlink()
    msg = rf"{re.escape(ext)} file not found: {_names(path)}"
    with pytest.raises(FileNotFoundError, match=msg):
        read_plink(fileset)


def test_prefix_forms(fileset: Path) -> None:
    a = read_plink(fileset)
    b = read_plink(str(fileset) + ".bed")
    assert a.genotypes.equal(b.genotypes)


def test_bad_magic(fileset: Path) -> None:
    bed = fileset.with_suffix(".bed")
    data = bytearray(bed.read_bytes())
    data[0:2] = b"\x00\x00"
    bed.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=rf"{_names(bed)}: not a PLINK .bed.*6c 1b 01"):
        read_plink(fileset)


def test_legacy_individual_major(fileset: Path) -> None:
    bed = fileset.with_suffix(".bed")
    data = bytearray(bed.read_bytes())
    data[2] = 0
    bed.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=rf"{_names(bed)}: individual-major.*legacy.*--make-bed"):
        read_plink(fileset)


def test_unknown_mode(fileset: Path) -> None:
    bed = fileset.with_suffix(".bed")
    data = bytearray(bed.read_bytes())
    data[2] = 7
    bed.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="mode byte 07"):
        read_plink(fileset)


@pytest.mark.parametrize("delta", [-1, 1, -3, 3])  # +-3: a whole SNP row (threaded path)
def test_size_mismatch(fileset: Path, delta: int) -> None:
    bed = fileset.with_suffix(".bed")
    data = bed.read_bytes()
    bed.write_bytes(data[:delta] if delta < 0 else data + b"\x00" * delta)
    # 6 SNPs x ceil(9/4) = 3 bytes + 3 header bytes = 21
    with pytest.raises(ValueError, match=rf"{_names(bed)}: size {21 + delta} bytes, expected 21"):
        read_plink(fileset)


def test_truncated_header(tmp_path: Path) -> None:
    (tmp_path / "t.bim").write_text("")
    (tmp_path / "t.fam").write_text("")
    (tmp_path / "t.bed").write_bytes(b"\x6c\x1b")
    with pytest.raises(ValueError, match="truncated header"):
        read_plink(tmp_path / "t")


def test_bim_wrong_columns(fileset: Path) -> None:
    bim = fileset.with_suffix(".bim")
    lines = bim.read_text().splitlines()
    lines[3] = "\t".join(lines[3].split()[:5])
    bim.write_text("\n".join(lines) + "\n")
    msg = rf"{_names(bim)}: line 4 has 5 columns, a .bim line has 6"
    with pytest.raises(ValueError, match=msg):
        read_plink(fileset)
    with pytest.raises(ValueError, match="line 4 has 5 columns"):
        read_bim(bim)


def test_bim_bad_number(fileset: Path) -> None:
    bim = fileset.with_suffix(".bim")
    lines = bim.read_text().splitlines()
    f = lines[2].split()
    f[3] = "12x"
    lines[2] = "\t".join(f)
    bim.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=rf"{_names(bim)}: .bim line 3: bp position '12x'"):
        read_bim(bim)


def test_fam_wrong_columns(fileset: Path) -> None:
    fam = fileset.with_suffix(".fam")
    lines = fam.read_text().splitlines()
    lines[8] += " extra"
    fam.write_text("\n".join(lines) + "\n")
    msg = rf"{_names(fam)}: line 9 has 7 columns, a .fam line has 6"
    with pytest.raises(ValueError, match=msg):
        read_plink(fileset)
    with pytest.raises(ValueError, match="line 9 has 7"):
        read_fam(fam)


def test_fam_bad_sex(fileset: Path) -> None:
    fam = fileset.with_suffix(".fam")
    fam.write_text(fam.read_text().replace("ind1 0 0 0", "ind1 0 0 M", 1))
    with pytest.raises(ValueError, match=rf"{_names(fam)}: .fam line 2: sex 'M'"):
        read_fam(fam)


def test_fam_phenotype_parsing(tmp_path: Path) -> None:
    fam = tmp_path / "p.fam"
    fam.write_text("a a 0 0 1 -9\nb b 0 0 2 1.5\nc c 0 0 0 NA\nd d 0 0 0 0\n")
    s = read_fam(fam)
    np.testing.assert_array_equal(s.phenotype, [np.nan, 1.5, np.nan, 0.0])  # quantitative: 0 kept
    assert s.phenotype_raw.tolist() == ["-9", "1.5", "NA", "0"]
    fam.write_text("a a 0 0 1 1\nb b 0 0 2 2\nc c 0 0 0 0\nd d 0 0 0 -9\n")
    np.testing.assert_array_equal(read_fam(fam).phenotype, [1, 2, np.nan, np.nan])  # case/control


def test_bad_selections(fileset: Path) -> None:
    with pytest.raises(IndexError, match="snps: index 6 out of range for 6"):
        read_plink(fileset, snps=[0, 6])
    with pytest.raises(ValueError, match="samples: boolean mask has 3 entries, expected 9"):
        read_plink(fileset, samples=np.ones(3, bool))
    with pytest.raises(TypeError, match="snps"):
        read_plink(fileset, snps=np.array([0.5]))
    with pytest.raises(ValueError, match=r"chromosome\(s\) 7 not in the file \(it has 1\)"):
        read_plink(fileset, chromosomes=["7"])
    c = read_plink(fileset, chromosomes=[1], snps=[], samples=slice(0, 0))
    assert (c.n_individuals, c.n_snps) == (0, 0)
