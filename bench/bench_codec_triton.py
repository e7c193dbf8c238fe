"""Triton codec kernels vs their torch references on one GPU (pytest-benchmark).

Each op is timed twice in the same group, Triton kernel and torch reference, on a cattle-genome
sized batch: 100,000 individuals x 50,000 SNPs by default (5 GB of int8, 1.25 GB packed);
``GENOFAST_BENCH_CODEC_SHAPE=N,M`` changes it. Reported as extra_info: effective bandwidth
(minimum bytes read + written per call / median time, in GB/s) and genotypes per second.
The torch references widen to int64 on the way (about 50 GB peak at the default size, so an
80 GB GPU is needed for them). Skips without CUDA, and under TRITON_INTERPRET=1.

Run: ``pytest bench/bench_codec_triton.py`` (on the GPU machine: ``PYTHONPATH=src``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest
import torch

pytest.importorskip("triton")
pytest.importorskip("pytest_benchmark")

from genofast.ops import codec, codec_triton  # noqa: E402

pytestmark = [
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
    pytest.mark.skipif(
        type(codec_triton._unpack_kernel).__name__ == "InterpretedFunction",
        reason="TRITON_INTERPRET=1: the kernels are interpreted, timings would be meaningless",
    ),
]


def _shape() -> tuple[int, int]:
    raw = os.environ.get("GENOFAST_BENCH_CODEC_SHAPE", "100000,50000")
    n, m = (int(v) for v in raw.split(","))
    return n, m


@pytest.fixture(scope="module")
def data() -> Iterator[dict[str, torch.Tensor]]:
    """One random batch (a quarter each of 0/1/2/missing) in the three layouts, on the GPU."""
    n, m = _shape()
    gen = torch.Generator(device="cuda").manual_seed(0)
    g = torch.randint(-1, 3, (n, m), generator=gen, dtype=torch.int8, device="cuda")
    packed, _ = codec_triton.pack(g)
    bed, _ = codec_triton.pack_bed(g)
    torch.cuda.synchronize()
    yield {"genotypes": g, "packed": packed, "bed": bed}
    del g, packed, bed
    torch.cuda.empty_cache()


def _ops(d: dict[str, torch.Tensor]) -> dict[str, dict[str, Callable[[], object]]]:
    g, packed, bed = d["genotypes"], d["packed"], d["bed"]
    n, m = g.shape
    return {
        "unpack": {
            "triton": lambda: codec_triton.unpack(packed, m),
            "torch": lambda: codec.unpack_reference(packed, m),
        },
        "pack": {
            "triton": lambda: codec_triton.pack(g),
            "torch": lambda: codec.pack_reference(g),
        },
        "bed_to_packed": {
            "triton": lambda: codec_triton.bed_to_packed(bed, n),
            "torch": lambda: codec.bed_to_packed_reference(bed, n),
        },
        "packed_to_bed": {
            "triton": lambda: codec_triton.packed_to_bed(packed, m),
            "torch": lambda: codec.packed_to_bed_reference(packed, m),
        },
        "pack_bed": {
            "triton": lambda: codec_triton.pack_bed(g),
            "torch": lambda: codec.pack_bed_reference(g),
        },
    }


def _bytes_moved(op: str, n: int, m: int) -> int:
    """Minimum global-memory traffic of one call: input read once, output written once."""
    geno = n * m  # int8
    packed = n * codec.n_packed_bytes(m)
    bed = m * codec.n_packed_bytes(n)
    return {
        "unpack": packed + geno,
        "pack": geno + packed,
        "bed_to_packed": bed + packed,
        "packed_to_bed": packed + bed,
        "pack_bed": geno + bed,
    }[op]


@pytest.mark.parametrize("impl", ["triton", "torch"])
@pytest.mark.parametrize("op", ["unpack", "pack", "bed_to_packed", "packed_to_bed", "pack_bed"])
def test_codec(benchmark, data: dict[str, torch.Tensor], op: str, impl: str) -> None:
    fn = _ops(data)[op][impl]
    n, m = data["genotypes"].shape

    def call() -> None:
        fn()
        torch.cuda.synchronize()

    benchmark.group = f"codec {op} {n}x{m}"
    fast = impl == "triton"
    benchmark.pedantic(call, rounds=10 if fast else 3, warmup_rounds=2 if fast else 1, iterations=1)
    if benchmark.stats is not None:  # None under --benchmark-disable
        seconds = benchmark.stats.stats.median
        benchmark.extra_info["GB/s"] = round(_bytes_moved(op, n, m) / seconds / 1e9, 1)
        benchmark.extra_info["G genotypes/s"] = round(n * m / seconds / 1e9, 2)
        benchmark.extra_info["shape"] = f"{n}x{m}"
    torch.cuda.empty_cache()
