"""PlinkWriter: batches in any order and at any row, every input kind, and its failure modes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from bed_reader import open_bed

from genofast import PlinkWriter, read_plink, write_plink
from genofast.io import SampleTable, SnpTable
from genofast.io.writer import shift_bed_bytes
from genofast.ops import pack


def genotypes(seed: int, n: int, m: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    g = rng.integers(0, 3, size=(n, m)).astype(np.int8)
    g[rng.random((n, m)) < 0.15] = -1
    return g


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def as_kind(batch: np.ndarray, kind: str):
    """The same batch as each accepted input: int8/packed, numpy/torch, a wider int dtype."""
    t = torch.from_numpy(batch)
    return {
        "int8-numpy": batch,
        "int8-torch": t,
        "packed-torch": pack(t),
        "packed-numpy": pack(t).numpy(),
        "int64-numpy": batch.astype(np.int64),
        "int8-noncontiguous": np.asfortranarray(batch),
    }[kind]


KINDS = ["int8-numpy", "int8-torch", "packed-torch", "packed-numpy", "int64-numpy",
         "int8-noncontiguous"]


def test_random_batches_any_order_any_start(tmp_path: Path, codec_path: str) -> None:
    """Random partitions of the rows into batches (unaligned starts and ends, single rows),
    written in random order with mixed input kinds, read back by us and by bed-reader."""
    rng = np.random.default_rng(0)
    for trial in range(12):
        n, m = int(rng.integers(1, 40)), int(rng.integers(1, 23))
        g = genotypes(trial, n, m)
        cuts = np.unique(np.r_[0, rng.integers(0, n + 1, size=rng.integers(0, 8)), n])
        batches = list(zip(cuts[:-1], cuts[1:], strict=True))
        order = rng.permutation(len(batches))
        prefix = tmp_path / f"t{trial}"
        with PlinkWriter(prefix, SnpTable.synthetic(m), n, flush_bytes=7) as w:
            for k in order:
                a, b = batches[k]
                w.write(int(a), as_kind(g[a:b], KINDS[int(rng.integers(len(KINDS)))]))
            assert w.rows_written == n
        np.testing.assert_array_equal(read_plink(prefix).unpack().numpy(), g)
        with open_bed(f"{prefix}.bed") as bed:
            r = bed.read(dtype="int8")
        np.testing.assert_array_equal(np.where(r == -127, -1, r), g)


@pytest.mark.parametrize("kind", KINDS)
def test_every_input_kind_unaligned(tmp_path: Path, codec_path: str, kind: str) -> None:
    n, m = 19, 11
    g = genotypes(5, n, m)
    with PlinkWriter(tmp_path / "k", SnpTable.synthetic(m), n) as w:
        for a, b in [(5, 6), (13, 19), (0, 5), (6, 13)]:
            w.write(a, as_kind(g[a:b], kind))
    np.testing.assert_array_equal(read_plink(tmp_path / "k").unpack().numpy(), g)


def test_shift_bed_bytes_matches_repacking() -> None:
    g = genotypes(2, 14, 3)
    from genofast.ops import pack_bed

    for shift in range(4):
        padded = np.vstack([np.zeros((shift, 3), np.int8), g])
        want = pack_bed(torch.from_numpy(padded)).numpy().copy()
        got = shift_bed_bytes(pack_bed(torch.from_numpy(g)).numpy(), shift, want.shape[1])
        lowmask = np.uint8((0xFF << (2 * shift)) & 0xFF)
        want[:, 0] &= lowmask  # the padding rows are not ours
        np.testing.assert_array_equal(got, want)


def test_rows_written_twice(tmp_path: Path) -> None:
    g = genotypes(0, 10, 5)
    with pytest.raises(ValueError, match="already written, the first is row 4"):
        with PlinkWriter(tmp_path / "d", SnpTable.synthetic(5), 10) as w:
            w.write(0, g[:6])
            w.write(4, g[4:])
    assert files(tmp_path) == []


def test_rows_never_written(tmp_path: Path) -> None:
    g = genotypes(0, 10, 5)
    w = PlinkWriter(tmp_path / "m", SnpTable.synthetic(5), 10)
    w.write(0, g[:3])
    w.write(7, g[7:])
    with pytest.raises(ValueError, match="4 of 10 rows were never written, the first is row 3"):
        w.close()
    assert files(tmp_path) == []


def test_rows_outside_file(tmp_path: Path) -> None:
    with PlinkWriter(tmp_path / "o", SnpTable.synthetic(5), 10) as w:
        with pytest.raises(ValueError, match="outside the 10 individuals"):
            w.write(8, genotypes(0, 3, 5))
        with pytest.raises(ValueError, match="outside"):
            w.write(-1, genotypes(0, 1, 5))
        w.write(0, genotypes(0, 10, 5))


@pytest.mark.parametrize("bad", [3, -2, 100])
def test_values_out_of_range(tmp_path: Path, codec_path: str, bad: int) -> None:
    g = genotypes(0, 6, 5)
    g[2, 3] = bad
    with PlinkWriter(tmp_path / "v", SnpTable.synthetic(5), 6) as w:
        with pytest.raises(ValueError, match="outside 0/1/2 and -1"):
            w.write(0, g)
        with pytest.raises(ValueError, match="outside 0/1/2 and -1"):
            w.write(0, g.astype(np.int32))
        assert w.rows_written == 0
        w.write(0, np.clip(g, -1, 2))
    wide = np.zeros((2, 5), np.int64)
    wide[0, 0] = 258  # would wrap to 2 as int8
    with PlinkWriter(tmp_path / "w", SnpTable.synthetic(5), 2) as w:
        with pytest.raises(ValueError, match="258"):
            w.write(0, wide)
        w.write(0, wide * 0)


def test_wrong_shapes_and_dtypes(tmp_path: Path) -> None:
    with PlinkWriter(tmp_path / "s", SnpTable.synthetic(9), 4) as w:
        with pytest.raises(ValueError, match="9"):
            w.write(0, np.zeros((4, 8), np.int8))
        with pytest.raises(ValueError, match="packed uint8 batch needs ceil"):
            w.write(0, np.zeros((4, 9), np.uint8))
        with pytest.raises(TypeError, match="int8"):
            w.write(0, np.zeros((4, 9), np.float32))
        w.write(0, np.zeros((4, 3), np.uint8))


def test_exception_inside_with_leaves_nothing(tmp_path: Path) -> None:
    g = genotypes(0, 8, 5)
    with pytest.raises(RuntimeError):
        with PlinkWriter(tmp_path / "x", SnpTable.synthetic(5), 8) as w:
            w.write(0, g)  # complete, but the block fails
            raise RuntimeError("boom")
    assert files(tmp_path) == []


def test_final_names_appear_only_at_close(tmp_path: Path) -> None:
    g = genotypes(0, 8, 5)
    w = PlinkWriter(tmp_path / "late", SnpTable.synthetic(5), 8)
    w.write(0, g)
    names = files(tmp_path)
    assert not any(n in names for n in ("late.bed", "late.bim", "late.fam"))
    assert len(names) == 1 and names[0].startswith("late.bed.") and names[0].endswith(".tmp")
    w.close()
    assert files(tmp_path) == ["late.bed", "late.bim", "late.fam"]


def test_overwrite_existing_fileset(tmp_path: Path) -> None:
    write_plink(tmp_path / "o", genotypes(0, 8, 5), SnpTable.synthetic(5))
    g = genotypes(1, 6, 7)
    write_plink(tmp_path / "o", g, SnpTable.synthetic(7))
    np.testing.assert_array_equal(read_plink(tmp_path / "o").unpack().numpy(), g)
    assert files(tmp_path) == ["o.bed", "o.bim", "o.fam"]


def test_samples_and_iids(tmp_path: Path) -> None:
    g = genotypes(0, 3, 4)
    with PlinkWriter(tmp_path / "i", SnpTable.synthetic(4), 3, iids=["a", "b", "c"]) as w:
        w.write(0, g)
    s = read_plink(tmp_path / "i").samples
    assert s.iid.tolist() == ["a", "b", "c"] and s.fid.tolist() == ["a", "b", "c"]
    samples = SampleTable(fid=["F"] * 3, iid=["x", "y", "z"], father=["0"] * 3,
                          mother=["0"] * 3, sex=[1, 2, 0], phenotype=[1.5, np.nan, -2.0])
    write_plink(tmp_path / "s", g, SnpTable.synthetic(4), samples)
    back = read_plink(tmp_path / "s").samples
    assert back.sex.tolist() == [1, 2, 0]
    np.testing.assert_array_equal(back.phenotype, [1.5, np.nan, -2.0])
    with pytest.raises(ValueError, match="2 samples"):
        PlinkWriter(tmp_path / "bad", SnpTable.synthetic(4), 3, iids=["a", "b"])
    with pytest.raises(FileNotFoundError, match="output folder"):
        PlinkWriter(tmp_path / "nope" / "x", SnpTable.synthetic(4), 3)


def test_empty_dimensions(tmp_path: Path) -> None:
    write_plink(tmp_path / "nosnp", np.zeros((5, 0), np.int8), SnpTable.synthetic(0))
    c = read_plink(tmp_path / "nosnp")
    assert (c.n_individuals, c.n_snps, tuple(c.genotypes.shape)) == (5, 0, (5, 0))
    write_plink(tmp_path / "noind", np.zeros((0, 6), np.int8), SnpTable.synthetic(6))
    c = read_plink(tmp_path / "noind")
    assert (c.n_individuals, c.n_snps) == (0, 6)
    assert (tmp_path / "noind.bed").stat().st_size == 3
