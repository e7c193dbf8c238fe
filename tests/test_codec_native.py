"""The native codec kernels (genofast._core, kernels/codec.cpp) against the torch references.

Kernel tests skip cleanly when the core is not built (`PYTHONPATH=src` use); the tests of the
dispatching entry points run either way.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch

from genofast.ops import codec


def _load_core() -> ModuleType | None:
    try:
        return importlib.import_module("genofast._core")
    except ImportError:
        return None


core = _load_core()
needs_core = pytest.mark.skipif(core is None, reason="native core genofast._core is not built")

# (rows, SNPs): odd sizes, single rows and columns, one tile (64), and more than one staging block
# of the transposes (512 rows x 1024 fields) in both directions.
SHAPES = [(1, 1), (1, 7), (7, 1), (3, 5), (4, 4), (2, 13), (64, 64), (65, 129), (1031, 777),
          (1100, 1500)]


def _genotypes(n: int, m: int, seed: int = 0, missing: float = 0.1) -> np.ndarray:
    """Random int8 genotypes 0/1/2 with about `missing` of them -1."""
    rng = np.random.default_rng(seed)
    g = rng.integers(0, 3, size=(n, m), dtype=np.int8)
    g[rng.random((n, m)) < missing] = -1
    return g


def _packed_bytes(n: int) -> int:
    return (n + 3) // 4


def _ref(fn, *args) -> np.ndarray:
    """Run a torch reference on numpy inputs."""
    args = tuple(torch.from_numpy(a) if isinstance(a, np.ndarray) else a for a in args)
    return fn(*args).numpy()


def _bed_to_packed(bed: np.ndarray, n_out: int, snps: np.ndarray | None = None,
                   samples: np.ndarray | None = None) -> np.ndarray:
    """Call the native read transpose; None means 'all' (an empty index)."""
    empty = np.empty(0, dtype=np.int64)
    snp_index = empty if snps is None else snps.astype(np.int64)
    sample_index = empty if samples is None else samples.astype(np.int64)
    m = bed.shape[0] if snps is None else len(snps)
    out = np.full((n_out, _packed_bytes(m)), 0xEE, dtype=np.uint8)  # garbage: all must be written
    core.bed_to_packed(bed, snp_index, sample_index, out)
    return out


# ---------------------------------------------------------------------------------------------
# each kernel against its reference
# ---------------------------------------------------------------------------------------------


@needs_core
@pytest.mark.parametrize(("n", "m"), SHAPES)
def test_pack_unpack(n: int, m: int) -> None:
    g = _genotypes(n, m, seed=n * 7919 + m)
    packed = np.full((n, _packed_bytes(m)), 0xEE, dtype=np.uint8)
    assert core.pack(g, packed) == 0
    np.testing.assert_array_equal(packed, _ref(codec.pack_reference, g))
    out = np.full((n, m), 99, dtype=np.int8)
    core.unpack(packed, out)
    np.testing.assert_array_equal(out, g)
    np.testing.assert_array_equal(out, _ref(codec.unpack_reference, packed, m))


@needs_core
@pytest.mark.parametrize(("n", "m"), SHAPES)
def test_bed_layouts(n: int, m: int) -> None:
    """pack_bed and packed_to_bed (write path) and bed_to_packed without indices (read path)."""
    g = _genotypes(n, m, seed=n * 31 + m)
    packed = _ref(codec.pack_reference, g)
    bed_expected = _ref(codec.pack_bed_reference, g)
    np.testing.assert_array_equal(bed_expected, _ref(codec.packed_to_bed_reference, packed, m))

    bed = np.full((m, _packed_bytes(n)), 0xEE, dtype=np.uint8)
    assert core.pack_bed(g, bed) == 0
    np.testing.assert_array_equal(bed, bed_expected)
    bed.fill(0xEE)
    core.packed_to_bed(packed, bed)
    np.testing.assert_array_equal(bed, bed_expected)

    got = _bed_to_packed(bed, n)
    np.testing.assert_array_equal(got, packed)
    np.testing.assert_array_equal(got, _ref(codec.bed_to_packed_reference, bed, n))


@needs_core
@pytest.mark.parametrize(("n", "m"), [(1, 1), (5, 3), (37, 70), (1031, 777), (1100, 1500)])
def test_bed_to_packed_indices(n: int, m: int) -> None:
    """SNP and sample selections: unsorted, with duplicates, each alone and both together."""
    rng = np.random.default_rng(n + m)
    g = _genotypes(n, m, seed=n + 3 * m)
    bed = _ref(codec.pack_bed_reference, g)
    snps = rng.integers(0, m, size=m // 2 + 3)
    samples = rng.integers(0, n, size=n + 5)
    for s_idx, i_idx in ((snps, None), (None, samples), (snps, samples)):
        rows = bed if s_idx is None else bed[s_idx]
        expected = _ref(codec.bed_to_packed_reference, rows, n)
        if i_idx is not None:
            expected = expected[i_idx]
        got = _bed_to_packed(bed, len(expected), s_idx, i_idx)
        np.testing.assert_array_equal(got, expected)
        sub = g if s_idx is None else g[:, s_idx]
        sub = sub if i_idx is None else sub[i_idx]
        np.testing.assert_array_equal(got, _ref(codec.pack_reference, sub))


@needs_core
def test_bed_to_packed_prefix_and_sparse() -> None:
    """An empty sample index with fewer output rows reads the first individuals; a selection of a
    few individuals far apart skips the untouched tiles."""
    n, m = 3000, 130
    g = _genotypes(n, m, seed=5)
    bed = _ref(codec.pack_bed_reference, g)
    np.testing.assert_array_equal(_bed_to_packed(bed, 10), _ref(codec.pack_reference, g[:10]))
    samples = np.array([2999, 0, 1500, 1500, 700])
    np.testing.assert_array_equal(
        _bed_to_packed(bed, len(samples), samples=samples), _ref(codec.pack_reference, g[samples])
    )


@needs_core
def test_bed_to_packed_readonly_memmap(tmp_path: Path) -> None:
    """The reader hands over a read-only memory map of the .bed body (after the 3 magic bytes)."""
    n, m = 601, 1029
    g = _genotypes(n, m, seed=11)
    bed = _ref(codec.pack_bed_reference, g)
    path = tmp_path / "x.bed"
    path.write_bytes(bytes([0x6C, 0x1B, 0x01]) + bed.tobytes())
    body = np.memmap(path, dtype=np.uint8, mode="r", offset=3, shape=bed.shape)
    assert not body.flags.writeable
    snps = np.arange(m)[::-3]
    samples = np.arange(0, n, 2)
    np.testing.assert_array_equal(_bed_to_packed(body, n), _ref(codec.pack_reference, g))
    got = _bed_to_packed(body, len(samples), snps, samples)
    np.testing.assert_array_equal(got, _ref(codec.pack_reference, g[samples][:, snps]))
    del body


@needs_core
def test_empty_shapes() -> None:
    """Zero rows or zero SNPs: nothing to do, nothing raised."""
    for n, m in ((0, 5), (5, 0), (0, 0)):
        g = np.zeros((n, m), dtype=np.int8)
        packed = np.zeros((n, _packed_bytes(m)), dtype=np.uint8)
        assert core.pack(g, packed) == 0
        core.unpack(packed, np.zeros((n, m), dtype=np.int8))
        bed = np.zeros((m, _packed_bytes(n)), dtype=np.uint8)
        assert core.pack_bed(g, bed) == 0
        core.packed_to_bed(packed, bed)
        assert _bed_to_packed(bed, n).shape == (n, _packed_bytes(m))


# ---------------------------------------------------------------------------------------------
# invalid values and invalid calls
# ---------------------------------------------------------------------------------------------


@needs_core
def test_bad_values_counted() -> None:
    """Values outside {-1, 0, 1, 2} are counted (in the vector body and in the scalar tail) and
    written as the reference writes them."""
    n, m = 70, 301
    g = _genotypes(n, m, seed=3)
    bad_at = [(0, 0), (5, 100), (69, 300), (30, 299), (12, 257)]
    for (i, j), v in zip(bad_at, (3, -2, 100, -128, 127), strict=True):
        g[i, j] = v
    packed = np.empty((n, _packed_bytes(m)), dtype=np.uint8)
    assert core.pack(g, packed) == len(bad_at)
    np.testing.assert_array_equal(packed, _ref(codec.pack_reference, g))
    bed = np.empty((m, _packed_bytes(n)), dtype=np.uint8)
    assert core.pack_bed(g, bed) == len(bad_at)
    np.testing.assert_array_equal(bed, _ref(codec.pack_bed_reference, g))
    big = np.full((600, 1100), 7, dtype=np.int8)  # many blocks, every value bad, multi-threaded
    assert core.pack(big, np.empty((600, 275), dtype=np.uint8)) == big.size
    assert core.pack_bed(big, np.empty((1100, 150), dtype=np.uint8)) == big.size


@needs_core
def test_bad_shapes_and_types_raise() -> None:
    g = _genotypes(6, 9)
    packed = np.zeros((6, 3), dtype=np.uint8)
    bed = np.zeros((9, 2), dtype=np.uint8)
    empty = np.empty(0, dtype=np.int64)
    with pytest.raises(ValueError, match="unpack"):
        core.unpack(packed, np.zeros((6, 13), dtype=np.int8))  # 13 SNPs need 4 bytes
    with pytest.raises(ValueError, match="unpack"):
        core.unpack(packed, np.zeros((5, 9), dtype=np.int8))
    with pytest.raises(ValueError, match="pack"):
        core.pack(g, np.zeros((6, 4), dtype=np.uint8))
    with pytest.raises(ValueError, match="pack_bed"):
        core.pack_bed(g, np.zeros((9, 1), dtype=np.uint8))
    with pytest.raises(ValueError, match="packed_to_bed"):
        core.packed_to_bed(packed, np.zeros((8, 2), dtype=np.uint8))
    with pytest.raises(ValueError, match="bed_to_packed"):
        core.bed_to_packed(bed, empty, empty, np.zeros((6, 2), dtype=np.uint8))
    with pytest.raises(ValueError, match="bed_to_packed"):
        core.bed_to_packed(bed, empty, empty, np.zeros((9, 3), dtype=np.uint8))  # > 8 individuals
    with pytest.raises(ValueError, match="sample_index"):
        core.bed_to_packed(bed, empty, np.arange(4, dtype=np.int64), np.zeros((6, 3), np.uint8))
    # wrong dtype, read-only or non-contiguous output, wrong rank: rejected, never converted
    with pytest.raises(TypeError):
        core.pack(g.astype(np.int16), packed)
    with pytest.raises(TypeError):
        core.unpack(packed, np.zeros((6, 9), dtype=np.uint8))
    readonly = np.zeros((6, 9), dtype=np.int8)
    readonly.flags.writeable = False
    with pytest.raises(TypeError):
        core.unpack(packed, readonly)
    with pytest.raises(TypeError):
        core.unpack(packed, np.zeros((9, 6), dtype=np.int8).T)
    with pytest.raises(TypeError):
        core.pack(g[:, ::2], np.zeros((6, 2), dtype=np.uint8))
    with pytest.raises(TypeError):
        core.unpack(packed.ravel(), np.zeros(18, dtype=np.int8))
    with pytest.raises(TypeError):
        core.bed_to_packed(bed, np.arange(9, dtype=np.int32), empty, packed)


@needs_core
def test_bed_to_packed_index_out_of_range() -> None:
    bed = np.zeros((9, 2), dtype=np.uint8)  # 9 SNPs, up to 8 individuals
    empty = np.empty(0, dtype=np.int64)
    out = np.zeros((3, 1), dtype=np.uint8)
    for snps in ([0, 9, 1], [-1, 0, 1]):
        with pytest.raises(IndexError, match=r"snp_index\[\d\]"):
            core.bed_to_packed(bed, np.array(snps, dtype=np.int64), empty, out)
    for samples in ([0, 8, 1], [0, 1, -3]):
        with pytest.raises(IndexError, match=r"sample_index\[\d\]"):
            core.bed_to_packed(bed, np.arange(4, dtype=np.int64), np.array(samples, np.int64), out)


# ---------------------------------------------------------------------------------------------
# the dispatching entry points (native when built, torch reference otherwise)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "m"), [(3, 5), (130, 77)])
def test_entry_points_match_references(n: int, m: int) -> None:
    g = torch.from_numpy(_genotypes(n, m, seed=9))
    packed = codec.pack(g)
    torch.testing.assert_close(packed, codec.pack_reference(g), rtol=0, atol=0)
    torch.testing.assert_close(codec.unpack(packed, m), g, rtol=0, atol=0)
    bed = codec.pack_bed(g)
    torch.testing.assert_close(bed, codec.pack_bed_reference(g), rtol=0, atol=0)
    torch.testing.assert_close(codec.packed_to_bed(packed, m), bed, rtol=0, atol=0)
    torch.testing.assert_close(codec.bed_to_packed(bed, n), packed, rtol=0, atol=0)


@pytest.mark.parametrize("value", [3, -2])
@pytest.mark.parametrize("entry", [codec.pack, codec.pack_bed])
def test_entry_points_reject_bad_values(entry, value: int) -> None:
    g = torch.from_numpy(_genotypes(9, 1030, seed=1))
    g[4, 1027] = value
    with pytest.raises(ValueError, match=f"{value} at row 4, SNP 1027"):
        entry(g)


def test_unpack_into_buffer_matches_and_checks_it() -> None:
    """`codec.unpack(..., out=)` fills the given buffer (any CPU path) and rejects a wrong one."""
    g = torch.randint(-1, 3, (9, 23), dtype=torch.int8, generator=torch.Generator().manual_seed(3))
    packed = codec.pack_reference(g)
    buffer = torch.full((9, 23), 7, dtype=torch.int8)
    assert codec.unpack(packed, 23, out=buffer) is buffer
    assert torch.equal(buffer, g)
    with pytest.raises(ValueError, match="out must be"):
        codec.unpack(packed, 23, out=torch.empty(9, 22, dtype=torch.int8))
    with pytest.raises(ValueError, match="out must be"):
        codec.unpack(packed, 23, out=torch.empty(9, 23, dtype=torch.int16))
