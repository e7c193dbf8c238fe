"""Triton codec kernels (`genofast.ops.codec_triton`) against the torch references in codec.py.

Where the kernels run:
* ``TRITON_INTERPRET=1`` must be in the environment before the kernels are decorated (in
  practice: before triton is first imported), and other test files in the same pytest process
  may import triton first. So when this process's kernels are compiled ones, the ``test_kernel_*``
  tests are re-run in a fresh ``python -m pytest`` subprocess with ``TRITON_INTERPRET=1`` set
  from its start (`test_kernels_under_interpreter_subprocess`), on CPU tensors. Nothing global
  is touched (no conftest side effects), and the result does not depend on test order.
* If this process already interprets them (``TRITON_INTERPRET=1 pytest ...``) they run here on
  CPU tensors and the subprocess test is skipped as redundant.
* On a GPU machine the compiled ``test_kernel_*`` tests run here on CUDA tensors, together with
  the CUDA-only checks at the bottom (larger shapes, and codec.py routing CUDA tensors here).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

pytest.importorskip("triton")

from genofast.ops import codec, codec_triton  # noqa: E402

INTERPRETED = type(codec_triton._unpack_kernel).__name__ == "InterpretedFunction"
HAS_CUDA = torch.cuda.is_available()
if INTERPRETED:
    DEVICE: str | None = "cpu"
elif HAS_CUDA:
    DEVICE = "cuda"
else:
    DEVICE = None

kernel_device = pytest.mark.skipif(
    DEVICE is None,
    reason="no GPU and the kernels are compiled in this process: run under the interpreter by "
    "test_kernels_under_interpreter_subprocess",
)
needs_cuda = pytest.mark.skipif(
    not HAS_CUDA or INTERPRETED, reason="needs a CUDA GPU with compiled Triton kernels"
)

# odd sizes (not multiples of 4), one row, one column, one value, a larger multi-tile case, an
# exact multiple of every block size
SHAPES = [(37, 61), (5, 1), (1, 13), (1, 1), (130, 259), (3, 517), (128, 256)]


def _ids(shape: tuple[int, int]) -> str:
    return f"{shape[0]}x{shape[1]}"


def _genotypes(n: int, m: int, seed: int = 0) -> torch.Tensor:
    """Random int8 [n, m] over 0/1/2 and -1 (missing), about a quarter each."""
    gen = torch.Generator().manual_seed(seed)
    return (torch.randint(0, 4, (n, m), generator=gen, dtype=torch.int8) - 1).contiguous()


def _dirty_pad_bits(packed: torch.Tensor, n: int, seed: int = 1) -> torch.Tensor:
    """A copy of packed [R, ceil(n/4)] with random garbage in the pad bits of each row's last
    byte (a foreign .bed may have them); every kernel must ignore them."""
    out = packed.clone()
    if n % 4 and out.numel():
        gen = torch.Generator().manual_seed(seed)
        junk = torch.randint(0, 256, (out.shape[0],), generator=gen, dtype=torch.int32)
        keep = (1 << (2 * (n % 4))) - 1
        out[:, -1] = (out[:, -1].to(torch.int32) | (junk & ~keep & 0xFF)).to(torch.uint8)
    return out


def _on(t: torch.Tensor) -> torch.Tensor:
    assert DEVICE is not None
    return t.to(DEVICE)


def _cpu(t: torch.Tensor) -> torch.Tensor:
    return t.cpu()


# ---------------------------------------------------------------------------------------------
# kernels vs references (interpreter on CPU tensors, or compiled on CUDA tensors)
# ---------------------------------------------------------------------------------------------


@kernel_device
@pytest.mark.parametrize("shape", SHAPES, ids=_ids)
def test_kernel_unpack(shape: tuple[int, int]) -> None:
    n, m = shape
    packed = codec.pack_reference(_genotypes(n, m))
    got = _cpu(codec_triton.unpack(_on(packed), m))
    assert got.dtype == torch.int8 and got.shape == (n, m)
    assert torch.equal(got, codec.unpack_reference(packed, m))
    assert torch.equal(got, _genotypes(n, m))


@kernel_device
@pytest.mark.parametrize("shape", SHAPES, ids=_ids)
def test_kernel_pack(shape: tuple[int, int]) -> None:
    n, m = shape
    g = _genotypes(n, m)
    got, n_bad = codec_triton.pack(_on(g))
    assert n_bad == 0
    assert got.dtype == torch.uint8 and got.shape == (n, codec.n_packed_bytes(m))
    assert torch.equal(_cpu(got), codec.pack_reference(g))


@kernel_device
@pytest.mark.parametrize("shape", SHAPES, ids=_ids)
def test_kernel_bed_to_packed(shape: tuple[int, int]) -> None:
    n, m = shape  # n individuals, m SNPs; the .bed body is [m, ceil(n/4)]
    bed = codec.pack_bed_reference(_genotypes(n, m))
    got = _cpu(codec_triton.bed_to_packed(_on(bed), n))
    assert got.shape == (n, codec.n_packed_bytes(m))
    assert torch.equal(got, codec.bed_to_packed_reference(bed, n))
    assert torch.equal(got, codec.pack_reference(_genotypes(n, m)))


@kernel_device
@pytest.mark.parametrize("shape", SHAPES, ids=_ids)
def test_kernel_packed_to_bed(shape: tuple[int, int]) -> None:
    b, m = shape
    packed = codec.pack_reference(_genotypes(b, m))
    got = _cpu(codec_triton.packed_to_bed(_on(packed), m))
    assert got.shape == (m, codec.n_packed_bytes(b))
    assert torch.equal(got, codec.packed_to_bed_reference(packed, m))


@kernel_device
@pytest.mark.parametrize("shape", SHAPES, ids=_ids)
def test_kernel_pack_bed(shape: tuple[int, int]) -> None:
    b, m = shape
    g = _genotypes(b, m)
    got, n_bad = codec_triton.pack_bed(_on(g))
    assert n_bad == 0
    assert got.shape == (m, codec.n_packed_bytes(b))
    assert torch.equal(_cpu(got), codec.pack_bed_reference(g))


@kernel_device
def test_kernel_plink_code_table() -> None:
    """One individual with SNPs 0, 1, 2, missing, spelled out in PLINK's bit codes."""
    g = torch.tensor([[0, 1, 2, -1]], dtype=torch.int8)  # 1 individual x 4 SNPs
    expected = [0b11, 0b10, 0b00, 0b01]  # one .bed row (one byte) per SNP
    bed = _cpu(codec_triton.packed_to_bed(_on(codec.pack_reference(g)), 4))
    assert bed.flatten().tolist() == expected
    bed2, _ = codec_triton.pack_bed(_on(g))
    assert _cpu(bed2).flatten().tolist() == expected
    back = _cpu(codec_triton.bed_to_packed(_on(bed), 1))
    assert back.flatten().tolist() == [0b11_10_01_00]  # codes 0, 1, 2, 3 from the low bits up


@kernel_device
@pytest.mark.parametrize(("shape", "rows", "nbytes"), [((37, 61), 8, 4), ((130, 259), 32, 16)])
def test_kernel_tile_seams(shape: tuple[int, int], rows: int, nbytes: int) -> None:
    """Small tiles so that many programs run and tile edges land mid-tensor on both axes (the
    interpreter runs programs one by one, so the tiles are only as small as that affords)."""
    n, m = shape
    g = _genotypes(n, m, seed=3)
    packed = codec.pack_reference(g)
    bed = codec.pack_bed_reference(g)
    small = {"block_rows": rows, "block_bytes": nbytes}
    assert torch.equal(_cpu(codec_triton.unpack(_on(packed), m, **small)), g)
    got, n_bad = codec_triton.pack(_on(g), **small)
    assert n_bad == 0 and torch.equal(_cpu(got), packed)
    assert torch.equal(_cpu(codec_triton.bed_to_packed(_on(bed), n, **small)), packed)
    assert torch.equal(_cpu(codec_triton.packed_to_bed(_on(packed), m, **small)), bed)
    got, n_bad = codec_triton.pack_bed(_on(g), block_rows=rows, block_cols=4 * nbytes)
    assert n_bad == 0 and torch.equal(_cpu(got), bed)


@kernel_device
@pytest.mark.parametrize("shape", [(37, 61), (5, 1), (130, 259)], ids=_ids)
def test_kernel_ignores_pad_bits_of_input(shape: tuple[int, int]) -> None:
    n, m = shape
    g = _genotypes(n, m, seed=4)
    packed = _dirty_pad_bits(codec.pack_reference(g), m)
    bed = _dirty_pad_bits(codec.pack_bed_reference(g), n)
    assert torch.equal(_cpu(codec_triton.unpack(_on(packed), m)), g)
    expected_bed = codec.pack_bed_reference(g)
    assert torch.equal(_cpu(codec_triton.packed_to_bed(_on(packed), m)), expected_bed)
    assert torch.equal(_cpu(codec_triton.bed_to_packed(_on(bed), n)), codec.pack_reference(g))


@kernel_device
@pytest.mark.parametrize("shape", [(37, 61), (1, 13), (130, 259)], ids=_ids)
def test_kernel_counts_bad_values(shape: tuple[int, int]) -> None:
    """Values outside -1..2 are counted exactly (across tiles) and packed as value & 3, like
    the reference, so the output bits do not depend on which path ran."""
    n, m = shape
    g = _genotypes(n, m, seed=5)
    spots = {(0, 0): 3, (n - 1, m - 1): -2, (n // 2, m // 3): 127, (n - 1, 0): -128}
    spots[(0, m - 1)] = 100  # may land on a spot above (1 x 13 has n - 1 == 0): a dict dedups
    for (r, c), v in spots.items():
        g[r, c] = v
    expected = len(spots)
    got, n_bad = codec_triton.pack(_on(g))
    assert n_bad == expected
    assert torch.equal(_cpu(got), codec.pack_reference(g))
    got, n_bad = codec_triton.pack_bed(_on(g))
    assert n_bad == expected
    assert torch.equal(_cpu(got), codec.pack_bed_reference(g))
    # small tiles: the per-program partial counts must add up
    assert codec_triton.pack(_on(g), block_rows=8, block_bytes=4)[1] == expected
    assert codec_triton.pack_bed(_on(g), block_rows=16, block_cols=16)[1] == expected


@kernel_device
def test_kernel_empty() -> None:
    for n, m in [(0, 7), (6, 0), (0, 0)]:
        g = _on(torch.zeros(n, m, dtype=torch.int8))
        packed = _on(torch.zeros(n, codec.n_packed_bytes(m), dtype=torch.uint8))
        bed = _on(torch.zeros(m, codec.n_packed_bytes(n), dtype=torch.uint8))
        assert codec_triton.unpack(packed, m).shape == (n, m)
        out, n_bad = codec_triton.pack(g)
        assert out.shape == (n, codec.n_packed_bytes(m)) and n_bad == 0
        out, n_bad = codec_triton.pack_bed(g)
        assert out.shape == (m, codec.n_packed_bytes(n)) and n_bad == 0
        assert codec_triton.bed_to_packed(bed, n).shape == (n, codec.n_packed_bytes(m))
        assert codec_triton.packed_to_bed(packed, m).shape == (m, codec.n_packed_bytes(n))


@kernel_device
def test_kernel_rejects_malformed_input() -> None:
    packed = _on(torch.zeros(4, 3, dtype=torch.uint8))
    with pytest.raises(ValueError, match="bytes per row"):
        codec_triton.unpack(packed, 13)
    with pytest.raises(ValueError, match="not contiguous"):
        codec_triton.unpack(_on(torch.zeros(3, 4, dtype=torch.uint8)).t(), 12)
    with pytest.raises(ValueError, match="int8"):
        codec_triton.pack(packed)
    with pytest.raises(ValueError, match="power of two"):
        codec_triton.bed_to_packed(packed, 12, block_rows=2)


# ---------------------------------------------------------------------------------------------
# the same kernel tests under the interpreter, in a clean process
# ---------------------------------------------------------------------------------------------


@pytest.mark.skipif(INTERPRETED, reason="the kernels are already interpreted in this process")
def test_kernels_under_interpreter_subprocess(run_under_triton_interpreter) -> None:
    """Every test_kernel_* test again, in a fresh process under the Triton interpreter."""
    run_under_triton_interpreter(Path(__file__).resolve())


# ---------------------------------------------------------------------------------------------
# GPU only: larger shapes and codec.py's dispatch
# ---------------------------------------------------------------------------------------------


@needs_cuda
@pytest.mark.parametrize("shape", [(1001, 5003), (4099, 777), (3, 100_003)], ids=_ids)
def test_cuda_kernels_match_reference_large(shape: tuple[int, int]) -> None:
    n, m = shape
    g = _genotypes(n, m, seed=7).cuda()
    packed = codec.pack_reference(g)
    bed = codec.pack_bed_reference(g)
    assert torch.equal(codec_triton.unpack(packed, m), g)
    out, n_bad = codec_triton.pack(g)
    assert n_bad == 0 and torch.equal(out, packed)
    out, n_bad = codec_triton.pack_bed(g)
    assert n_bad == 0 and torch.equal(out, bed)
    assert torch.equal(codec_triton.bed_to_packed(bed, n), packed)
    assert torch.equal(codec_triton.packed_to_bed(packed, m), bed)


@needs_cuda
def test_codec_routes_cuda_tensors_to_triton(monkeypatch: pytest.MonkeyPatch) -> None:
    """codec.py's entry points send CUDA tensors to codec_triton, and the results match."""
    calls: list[str] = []
    for name in ("unpack", "pack", "bed_to_packed", "packed_to_bed", "pack_bed"):
        real = getattr(codec_triton, name)

        def spy(*args, _real=real, _name=name, **kwargs):
            calls.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(codec_triton, name, spy)
    n, m = 37, 61
    g = _genotypes(n, m).cuda()
    packed = codec.pack(g)
    bed = codec.pack_bed(g)
    assert torch.equal(packed, codec.pack_reference(g))
    assert torch.equal(bed, codec.pack_bed_reference(g))
    assert torch.equal(codec.unpack(packed, m), g)
    assert torch.equal(codec.bed_to_packed(bed, n), packed)
    assert torch.equal(codec.packed_to_bed(packed, m), bed)
    assert sorted(calls) == sorted(["pack", "pack_bed", "unpack", "bed_to_packed", "packed_to_bed"])
    bad = g.clone()
    bad[5, 7] = 3
    with pytest.raises(ValueError, match="row 5, SNP 7"):
        codec.pack(bad)
    with pytest.raises(ValueError, match="row 5, SNP 7"):
        codec.pack_bed(bad)
