"""Diffusion ops: native C++ vs torch reference on CPU, Triton vs reference on CUDA
(pytest-benchmark).

CPU: 4,096 x 50,000 by default (``GENOFAST_BENCH_DIFFUSION_SHAPE=B,M``) for the native kernels;
the torch reference (int64 Philox emulation, several GB of temporaries at that size) is timed on
the first 64 rows and reported per element. CUDA: 100,000 x 50,000 for Triton (skips without a
GPU). extra_info: genotypes per second.

Run: ``pytest bench/bench_ops_diffusion.py`` (on the GPU machine: ``PYTHONPATH=src``).
"""

from __future__ import annotations

import os

import pytest
import torch

pytest.importorskip("pytest_benchmark")

from genofast._native import native  # noqa: E402
from genofast.ops import codec, diffusion  # noqa: E402

HAS_NATIVE = native() is not None and hasattr(native(), "diffusion_forward")
REF_ROWS = 64


def _shape(default: str) -> tuple[int, int]:
    b, m = (int(v) for v in os.environ.get("GENOFAST_BENCH_DIFFUSION_SHAPE", default).split(","))
    return b, m


def _inputs(b: int, m: int, device: str) -> dict:
    g = torch.Generator().manual_seed(0)
    x0 = torch.randint(0, 3, (b, m), generator=g, dtype=torch.int8)
    pi = torch.full((m, 3), 1 / 3)
    return {
        "packed": codec.pack(x0).to(device),
        "row_ids": torch.arange(b, device=device),
        "alpha_t": torch.full((b,), 0.3, device=device),
        "alpha_s": torch.full((b,), 0.5, device=device),
        "pi": pi.to(device),
        "logits": torch.randn(b, m, 3, generator=g).to(device),
    }


def _run(benchmark, fn, n: int, rounds: int = 3) -> None:
    benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=1)
    benchmark.extra_info["genotypes_per_s"] = n / benchmark.stats.stats.median


@pytest.mark.parametrize("transition", diffusion.TRANSITIONS)
@pytest.mark.parametrize("path", ["native", "reference"])
def test_cpu_forward(benchmark, path: str, transition: str) -> None:
    if path == "native" and not HAS_NATIVE:
        pytest.skip("native core not built")
    b, m = _shape("4096,50000")
    if path == "reference":
        b = min(b, REF_ROWS)
    c = _inputs(b, m, "cpu")
    pi = c["pi"] if transition == "marginal" else None
    if path == "native":
        fn = lambda: diffusion.diffusion_forward(
            c["packed"], m, c["row_ids"], c["alpha_t"], transition, pi
        )
    else:
        fn = lambda: diffusion.diffusion_forward_reference(
            c["packed"], m, c["row_ids"], c["alpha_t"], transition, pi
        )
    benchmark.group = f"cpu forward {transition}"
    _run(benchmark, fn, b * m)


@pytest.mark.parametrize("transition", diffusion.TRANSITIONS)
@pytest.mark.parametrize("path", ["native", "reference"])
def test_cpu_reverse(benchmark, path: str, transition: str) -> None:
    if path == "native" and not HAS_NATIVE:
        pytest.skip("native core not built")
    b, m = _shape("4096,50000")
    if path == "reference":
        b = min(b, REF_ROWS)
    c = _inputs(b, m, "cpu")
    pi = c["pi"] if transition == "marginal" else None
    x_t = diffusion.diffusion_forward(c["packed"], m, c["row_ids"], c["alpha_t"], transition, pi)
    args = (c["logits"], x_t, c["row_ids"], c["alpha_t"], c["alpha_s"], transition, pi)
    if path == "native":
        fn = lambda: diffusion.reverse_step(*args)
    else:
        fn = lambda: diffusion.reverse_step_reference(*args)
    benchmark.group = f"cpu reverse {transition}"
    _run(benchmark, fn, b * m)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("op", ["forward", "reverse", "reverse_bed"])
@pytest.mark.parametrize("path", ["triton", "reference"])
def test_cuda(benchmark, path: str, op: str) -> None:
    from genofast.ops import diffusion_triton

    if type(diffusion_triton._forward_kernel).__name__ == "InterpretedFunction":
        pytest.skip("TRITON_INTERPRET=1: timings would be meaningless")
    b, m = _shape("100000,50000") if path == "triton" else (4096, 50000)
    if op != "forward":
        b = min(b, 16384)  # float32 logits [B, M, 3]: 9.8 GB at 16,384 x 50,000
    c = _inputs(b, m, "cuda")
    x_t = diffusion.diffusion_forward(c["packed"], m, c["row_ids"], c["alpha_t"], "mask")
    ones = torch.ones_like(c["alpha_s"])
    ref = path == "reference"
    if op == "forward":
        f = diffusion.diffusion_forward_reference if ref else diffusion.diffusion_forward
        fn = lambda: f(c["packed"], m, c["row_ids"], c["alpha_t"], "mask")
    else:
        bed = op == "reverse_bed"
        a_s = ones if bed else c["alpha_s"]
        args = (c["logits"], x_t, c["row_ids"], c["alpha_t"], a_s, "mask")
        if ref:
            fn = lambda: diffusion.reverse_step_reference(*args, None, 0, 0, bed)
        else:
            fn = lambda: diffusion.reverse_step(*args, pack_bed=bed)

    def timed() -> None:
        fn()
        torch.cuda.synchronize()

    benchmark.group = f"cuda {op}"
    _run(benchmark, timed, b * m)
