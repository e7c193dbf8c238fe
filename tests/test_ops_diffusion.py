"""Diffusion ops (`genofast.ops.diffusion`): torch reference vs native kernel bit for bit, batch
invariance, and the sampled frequencies against the exact transition / posterior (chi-square).

The Triton kernels are compared with the same references in test_ops_diffusion_triton.py. Tests
of the native kernel skip cleanly when the core is not built; the statistical tests then run on
the reference (slower).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from genofast._native import native
from genofast.ops import codec, diffusion

HAS_NATIVE = native() is not None and hasattr(native(), "diffusion_forward")
needs_native = pytest.mark.skipif(not HAS_NATIVE, reason="native core genofast._core not built")
SHAPES = [(1, 1), (1, 13), (5, 7), (37, 61), (3, 517), (70, 4099)]


def _ids(shape: tuple[int, int]) -> str:
    return f"{shape[0]}x{shape[1]}"


def _case(b: int, m: int, seed: int = 0) -> dict:
    """Random inputs with missing genotypes, row ids above 2**32 and a degenerate pi row."""
    g = torch.Generator().manual_seed(seed)
    x0 = (torch.randint(0, 4, (b, m), generator=g) - 1).to(torch.int8)
    pi = torch.rand(m, 3, generator=g)
    pi = pi / pi.sum(1, keepdim=True)
    pi[0] = torch.tensor([0.0, 1.0, 0.0])  # monomorphic SNP: the "certain" posterior branch
    at = torch.rand(b, generator=g) * 0.9
    at[0] = 0.0
    return {
        "packed": codec.pack_reference(x0),
        "row_ids": torch.randint(0, 2**40, (b,), generator=g),
        "alpha": torch.rand(b, generator=g),
        "pi": pi,
        "logits": torch.randn(b, m, 3, generator=g) * 3,
        "alpha_t": at,
        "alpha_s": at + (1 - at) * torch.rand(b, generator=g),
    }


def _pi(c: dict, transition: str) -> torch.Tensor | None:
    return c["pi"] if transition == "marginal" else None


# ---------------------------------------------------------------------------------------------
# random numbers
# ---------------------------------------------------------------------------------------------


def test_philox_known_answers() -> None:
    """Random123's Philox4x32-10 known-answer vectors (the ones tl.philox also satisfies)."""

    def run(seed: int, ctr: tuple[int, ...]) -> list[int]:
        words = diffusion.philox_reference(seed, *(torch.tensor([c]) for c in ctr))
        return [int(w) for w in words]

    assert run(0, (0, 0, 0, 0)) == [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]
    assert run(2**64 - 1, (2**32 - 1,) * 4) == [0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD]
    ctr = (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344)
    assert run(0x299F31D0A4093822, ctr) == [0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1]


def test_exp_reference_accuracy() -> None:
    x = torch.linspace(-86.9, 0.0, 200_001)
    rel = (diffusion.exp_reference(x).double() - torch.exp(x.double())).abs() / torch.exp(
        x.double()
    )
    assert float(rel.max()) < 5e-7
    assert float(diffusion.exp_reference(torch.tensor([-87.5, -1e30]))[0]) == 0.0


# ---------------------------------------------------------------------------------------------
# native == reference, bit for bit
# ---------------------------------------------------------------------------------------------


@needs_native
@pytest.mark.parametrize("transition", diffusion.TRANSITIONS)
@pytest.mark.parametrize("shape", SHAPES, ids=_ids)
def test_native_matches_reference(shape: tuple[int, int], transition: str) -> None:
    b, m = shape
    c = _case(b, m)
    pi = _pi(c, transition)
    seed, offset = 2**40 + 17, 2**32 - 5
    x_t = diffusion.diffusion_forward_reference(
        c["packed"], m, c["row_ids"], c["alpha"], transition, pi, seed, offset
    )
    got = diffusion.diffusion_forward(
        c["packed"], m, c["row_ids"], c["alpha"], transition, pi, seed=seed, offset=offset
    )
    assert torch.equal(got, x_t)
    args = (c["row_ids"], c["alpha_t"], c["alpha_s"], transition, pi)
    for logits in (c["logits"], c["logits"].bfloat16()):
        ref = diffusion.reverse_step_reference(logits, x_t, *args, seed, offset)
        assert torch.equal(
            diffusion.reverse_step(logits, x_t, *args, seed=seed, offset=offset), ref
        )
    ones = torch.ones(b)
    args = (c["row_ids"], c["alpha_t"], ones, transition, pi)
    ref = diffusion.reverse_step_reference(c["logits"], x_t, *args, 3, 4)
    bed = diffusion.reverse_step(c["logits"], x_t, *args, seed=3, offset=4, pack_bed=True)
    assert torch.equal(bed, codec.pack_bed_reference(ref))
    assert torch.equal(bed, diffusion.reverse_step_reference(c["logits"], x_t, *args, 3, 4, True))


def test_forward_batch_invariance() -> None:
    """A row's tokens depend on its row id, not on its batch or position."""
    b, m = 40, 203
    c = _case(b, m, seed=3)
    for transition in diffusion.TRANSITIONS:
        pi = _pi(c, transition)
        full = diffusion.diffusion_forward(
            c["packed"], m, c["row_ids"], c["alpha"], transition, pi, seed=9, offset=1
        )
        perm = torch.randperm(b, generator=torch.Generator().manual_seed(1))[:7]
        part = diffusion.diffusion_forward(
            c["packed"][perm], m, c["row_ids"][perm], c["alpha"][perm], transition, pi,
            seed=9, offset=1,
        )  # fmt: skip
        assert torch.equal(part, full[perm])
        args = (c["row_ids"], c["alpha_t"], c["alpha_s"], transition, pi)
        rev = diffusion.reverse_step(c["logits"], full, *args, seed=2, offset=3)
        sub = tuple(a[perm] if isinstance(a, torch.Tensor) and a.shape[0] == b else a for a in args)
        assert torch.equal(
            diffusion.reverse_step(c["logits"][perm], full[perm], *sub, seed=2, offset=3), rev[perm]
        )
        other = diffusion.diffusion_forward(
            c["packed"], m, c["row_ids"], c["alpha"], transition, pi, seed=9, offset=2
        )
        assert not torch.equal(other, full)


# ---------------------------------------------------------------------------------------------
# exact distributions (float64, straight from the definitions)
# ---------------------------------------------------------------------------------------------


def _q(alpha: float, transition: str, pi: np.ndarray) -> np.ndarray:
    """Transition matrix q(x_t = column | x0 = row): 4 x 4 for mask (MASK absorbing), else 3 x 3."""
    if transition == "mask":
        q = alpha * np.eye(4)
        q[:, 3] += 1 - alpha
        return q
    return alpha * np.eye(3) + (1 - alpha) * np.tile(pi, (3, 1))


def _posterior(
    p0: np.ndarray, v: int, at: float, as_: float, transition: str, pi: np.ndarray
) -> np.ndarray:
    """p(x_s | x_t = v) = sum_x0 p0[x0] q(x_s | x_t, x0); v = -1 per the documented choices."""
    if transition == "mask":
        if v == -1:
            v = 3
        k = 4
        p0 = np.append(p0, 0.0)
    else:
        k = 3
        if v == -1:
            return p0 @ _q(as_, transition, pi)
    q_s, q_t, q_ts = _q(as_, transition, pi), _q(at, transition, pi), _q(at / as_, transition, pi)
    out = np.zeros(k)
    for x0 in range(k):
        if p0[x0] == 0 or q_t[x0, v] == 0:
            continue
        out += p0[x0] * q_ts[:, v] * q_s[x0, :] / q_t[x0, v]
    return out / out.sum()


def _chi2_ok(counts: np.ndarray, probs: np.ndarray) -> float:
    keep = probs > 0
    assert counts[~keep].sum() == 0, (counts, probs)
    exp = probs[keep] / probs[keep].sum() * counts.sum()
    return float(stats.chisquare(counts[keep], exp).pvalue)


@pytest.mark.parametrize("transition", diffusion.TRANSITIONS)
def test_forward_frequencies(transition: str) -> None:
    b, m = 400, 1000
    pi_row = np.array([0.7, 0.25, 0.05])
    x0 = torch.arange(b * m).reshape(b, m) % 4 - 1  # every class, and missing
    packed = codec.pack_reference(x0.to(torch.int8))
    pi = torch.tensor(pi_row, dtype=torch.float32).expand(m, 3).contiguous()
    alpha = torch.full((b,), 0.3)
    out = diffusion.diffusion_forward(
        packed,
        m,
        torch.arange(b),
        alpha,
        transition,
        pi if transition == "marginal" else None,
        seed=5,
    )
    assert torch.equal(out[x0 < 0], torch.full_like(out[x0 < 0], -1))
    noise_pi = pi_row if transition == "marginal" else np.full(3, 1 / 3)
    q = _q(0.3, transition, noise_pi)
    for v in range(3):
        counts = np.bincount(out[x0 == v].long().numpy(), minlength=q.shape[1])
        assert _chi2_ok(counts, q[v]) > 1e-3


@pytest.mark.parametrize("transition", diffusion.TRANSITIONS)
def test_reverse_frequencies(transition: str) -> None:
    """Every x_t value (and -1) at two (alpha_t, alpha_s) pairs, one of them the last step."""
    rows, m = 100, 2000
    p0 = torch.tensor([0.6, 0.3, 0.1])
    pi_row = np.array([0.5, 0.2, 0.3])
    pi = torch.tensor(pi_row, dtype=torch.float32).expand(m, 3).contiguous()
    logits = torch.log(p0).expand(rows, m, 3).contiguous()
    vals = [-1, 3] if transition == "mask" else [-1, 0, 1, 2]
    for at, as_ in ((0.2, 0.55), (0.4, 1.0)):
        for v in vals:
            x_t = torch.full((rows, m), v, dtype=torch.int8)
            out = diffusion.reverse_step(
                logits, x_t, torch.arange(rows), torch.full((rows,), at), torch.full((rows,), as_),
                transition, pi if transition == "marginal" else None, seed=11, offset=v + 1,
            )  # fmt: skip
            noise_pi = pi_row if transition == "marginal" else np.full(3, 1 / 3)
            probs = _posterior(p0.double().numpy(), v, at, as_, transition, noise_pi)
            counts = np.bincount(out.long().flatten().numpy(), minlength=len(probs))
            assert _chi2_ok(counts, probs) > 1e-3, (v, at, as_, counts, probs)
    if transition == "mask":  # unmasked tokens never move
        x_t = torch.randint(0, 3, (4, 50), dtype=torch.int8)
        out = diffusion.reverse_step(torch.randn(4, 50, 3), x_t, torch.arange(4), 0.1, 0.5)
        assert torch.equal(out, x_t)


def test_rare_probability_kept() -> None:
    """A genotype of probability 1e-4 is drawn at that rate (2e6 draws, about 200 expected)."""
    rows, m, p_rare = 500, 4000, 1e-4
    logits = torch.log(torch.tensor([1 - 2 * p_rare, p_rare, p_rare])).expand(rows, m, 3)
    x_t = torch.full((rows, m), diffusion.MASK, dtype=torch.int8)
    out = diffusion.reverse_step(
        logits.contiguous(), x_t, torch.arange(rows), 0.0, 1.0, "mask", seed=1
    )
    n = rows * m
    for k in (1, 2):
        hits = int((out == k).sum())
        assert stats.binomtest(hits, n, p_rare).pvalue > 1e-3, hits
    assert int((out == diffusion.MASK).sum()) == 0


def test_pack_bed_matches_codec() -> None:
    b, m = 37, 101
    c = _case(b, m, seed=4)
    for transition in diffusion.TRANSITIONS:
        pi = _pi(c, transition)
        x_t = diffusion.diffusion_forward(c["packed"], m, c["row_ids"], c["alpha"], transition, pi)
        args = (c["logits"], x_t, c["row_ids"], c["alpha_t"], 1.0, transition, pi)
        sample = diffusion.reverse_step(*args, seed=8)
        assert int(((sample < 0) | (sample > 2)).sum()) == 0
        assert torch.equal(
            diffusion.reverse_step(*args, seed=8, pack_bed=True), codec.pack_bed(sample)
        )


def test_validation_errors() -> None:
    b, m = 4, 9
    c = _case(b, m)
    x_t = torch.zeros(b, m, dtype=torch.int8)
    args = (c["logits"], x_t, c["row_ids"], c["alpha_t"], c["alpha_s"])
    with pytest.raises(ValueError, match="transition"):
        diffusion.reverse_step(*args, "gaussian")
    with pytest.raises(ValueError, match="pi"):
        diffusion.reverse_step(*args, "marginal")
    with pytest.raises(ValueError, match="pack_bed"):
        diffusion.reverse_step(*args, "mask", pack_bed=True)
    with pytest.raises(ValueError, match="alpha_t <= alpha_s"):
        diffusion.reverse_step(c["logits"], x_t, c["row_ids"], 0.5, 0.4, "mask")
    bad = x_t.clone()
    bad[2, 3] = 3  # MASK is not a token of the uniform transition
    with pytest.raises(ValueError, match="tokens outside"):
        diffusion.reverse_step(c["logits"], bad, c["row_ids"], 0.1, 0.5, "uniform")
    bad[2, 3] = 7
    with pytest.raises(ValueError, match="tokens outside"):
        diffusion.reverse_step(c["logits"], bad, c["row_ids"], 0.1, 0.5, "mask")
    with pytest.raises(ValueError, match="seed"):
        diffusion.diffusion_forward(c["packed"], m, c["row_ids"], 0.5, seed=-1)
    with pytest.raises(ValueError, match="alpha"):
        diffusion.diffusion_forward(c["packed"], m, c["row_ids"], 1.5)
    with pytest.raises(TypeError, match="row_ids"):
        diffusion.diffusion_forward(c["packed"], m, c["row_ids"].int(), 0.5)
