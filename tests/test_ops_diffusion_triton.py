"""Triton diffusion kernels (`genofast.ops.diffusion_triton`) against the torch references, bit for
bit. Runs like test_codec_triton.py: without a GPU the ``test_kernel_*`` tests are re-run in a
fresh pytest process with ``TRITON_INTERPRET=1`` on CPU tensors; on a GPU they run here on CUDA.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

pytest.importorskip("triton")

from genofast.ops import codec, diffusion, diffusion_triton  # noqa: E402

INTERPRETED = type(diffusion_triton._forward_kernel).__name__ == "InterpretedFunction"
HAS_CUDA = torch.cuda.is_available()
DEVICE: str | None = "cpu" if INTERPRETED else ("cuda" if HAS_CUDA else None)
kernel_device = pytest.mark.skipif(
    DEVICE is None, reason="no GPU: run under the interpreter by the subprocess test"
)
needs_cuda = pytest.mark.skipif(not HAS_CUDA or INTERPRETED, reason="needs a CUDA GPU")

# (B, M, blocks): default tiles, and small tiles that put seams inside odd shapes
CASES = [(1, 1, None), (5, 7, None), (37, 61, None), (3, 517, None), (9, 23, (4, 2))]


def _case(b: int, m: int, device: str) -> dict:
    g = torch.Generator().manual_seed(b * 1000 + m)
    x0 = (torch.randint(0, 4, (b, m), generator=g) - 1).to(torch.int8)
    pi = torch.rand(m, 3, generator=g)
    pi = pi / pi.sum(1, keepdim=True)
    pi[0] = torch.tensor([0.0, 1.0, 0.0])
    at = torch.rand(b, generator=g) * 0.9
    c = {
        "packed": codec.pack_reference(x0),
        "row_ids": torch.randint(0, 2**40, (b,), generator=g),
        "alpha": torch.rand(b, generator=g),
        "pi": pi,
        "logits": torch.randn(b, m, 3, generator=g) * 3,
        "alpha_t": at,
        "alpha_s": at + (1 - at) * torch.rand(b, generator=g),
    }
    return {k: v.to(device) for k, v in c.items()}


@kernel_device
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}x{c[1]}{'-tiles' if c[2] else ''}")
def test_kernel_matches_reference(case: tuple) -> None:
    b, m, blocks = case
    assert DEVICE is not None
    c = _case(b, m, DEVICE)
    fwd_kw = {} if blocks is None else {"block_rows": blocks[0], "block_bytes": blocks[1]}
    rev_kw = {} if blocks is None else {"block_rows": blocks[0], "block_groups": blocks[1]}
    seed, offset = 2**33 + 5, 2**31 + 7
    for code, transition in enumerate(diffusion.TRANSITIONS):
        pi = c["pi"] if transition == "marginal" else None
        ref = diffusion.diffusion_forward_reference(
            c["packed"], m, c["row_ids"], c["alpha"], transition, pi, seed, offset
        )
        got = diffusion_triton.forward(
            c["packed"], m, c["row_ids"], c["alpha"], code, pi, seed, offset, **fwd_kw
        )
        assert torch.equal(got, ref), transition
        for logits in (c["logits"], c["logits"].bfloat16()):
            args = (logits, ref, c["row_ids"], c["alpha_t"], c["alpha_s"])
            want = diffusion.reverse_step_reference(*args, transition, pi, seed, offset)
            got, n_bad = diffusion_triton.reverse_step(
                *args, code, pi, seed, offset, False, **rev_kw
            )
            assert n_bad == 0 and torch.equal(got, want), transition
        ones = torch.ones_like(c["alpha_s"])
        args = (c["logits"], ref, c["row_ids"], c["alpha_t"], ones)
        want = diffusion.reverse_step_reference(*args, transition, pi, 1, 2, pack_bed=True)
        got, n_bad = diffusion_triton.reverse_step(*args, code, pi, 1, 2, True, **rev_kw)
        assert n_bad == 0 and torch.equal(got, want), transition


@kernel_device
def test_kernel_counts_bad_tokens() -> None:
    assert DEVICE is not None
    c = _case(6, 10, DEVICE)
    x_t = torch.zeros(6, 10, dtype=torch.int8, device=DEVICE)
    x_t[1, 2], x_t[4, 9] = 3, -5
    args = (c["logits"], x_t, c["row_ids"], c["alpha_t"], c["alpha_s"])
    assert diffusion_triton.reverse_step(*args, 1, None, 0, 0, False)[1] == 2  # uniform
    assert diffusion_triton.reverse_step(*args, 0, None, 0, 0, False)[1] == 1  # mask


def test_kernels_under_interpreter_subprocess(run_under_triton_interpreter) -> None:
    """The test_kernel_* tests again, in a fresh process under the Triton interpreter."""
    if INTERPRETED:
        pytest.skip("already interpreting in this process")
    run_under_triton_interpreter(Path(__file__).resolve())


@needs_cuda
def test_cuda_dispatch_and_large_shape() -> None:
    """diffusion.py routes CUDA tensors to Triton; CUDA and CPU (native) samples are identical."""
    b, m = 1001, 5003
    c = _case(b, m, "cuda")
    for transition in diffusion.TRANSITIONS:
        pi = c["pi"] if transition == "marginal" else None
        x_t = diffusion.diffusion_forward(
            c["packed"], m, c["row_ids"], c["alpha"], transition, pi, seed=3
        )
        cpu = {k: v.cpu() for k, v in c.items()}
        x_cpu = diffusion.diffusion_forward(
            cpu["packed"],
            m,
            cpu["row_ids"],
            cpu["alpha"],
            transition,
            None if pi is None else cpu["pi"],
            seed=3,
        )
        assert torch.equal(x_t.cpu(), x_cpu)
        out = diffusion.reverse_step(
            c["logits"], x_t, c["row_ids"], c["alpha_t"], c["alpha_s"], transition, pi, seed=4
        )
        out_cpu = diffusion.reverse_step(
            cpu["logits"],
            x_cpu,
            cpu["row_ids"],
            cpu["alpha_t"],
            cpu["alpha_s"],
            transition,
            None if pi is None else cpu["pi"],
            seed=4,
        )
        assert torch.equal(out.cpu(), out_cpu)
