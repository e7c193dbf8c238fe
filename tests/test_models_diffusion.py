"""Patch-transformer backbone and categorical diffusion: layout, loss, sampling, guidance."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from genofast.models import (
    BackboneConfig,
    CategoricalDiffusion,
    PatchTransformer,
    Trait,
    genotype_frequencies,
    n_params,
)
from genofast.models.backbone import attention, patch_layout
from genofast.models.diffusion import alpha, dalpha, elbo_terms
from genofast.ops import pack, pack_bed

TINY = BackboneConfig(patch_size=8, token_dim=4, width=32, depth=2, n_heads=4, time_freq_dim=32)
CHROM = np.repeat([1, 2], 37)  # 2 chromosomes x 37 SNPs
TRAITS = (Trait("height", "continuous"), Trait("sex", "binary"), Trait("breed", "categorical", 3))
TRANSITIONS = ("mask", "uniform", "marginal")


def haplotype_cohort(n: int = 64, seed: int = 0) -> torch.Tensor:
    """Strong structure: per chromosome two haplotypes; each individual carries two draws."""
    rng = np.random.default_rng(seed)
    g = np.zeros((n, CHROM.size), dtype=np.int8)
    for c in (1, 2):
        cols = np.flatnonzero(CHROM == c)
        haps = rng.integers(0, 2, size=(2, cols.size))
        pick = rng.integers(0, 2, size=(n, 2))
        g[:, cols] = haps[pick[:, 0]] + haps[pick[:, 1]]
    return torch.from_numpy(g)


def build(transition: str = "mask", traits=(), packed=None, **kw) -> CategoricalDiffusion:
    torch.manual_seed(0)
    backbone = PatchTransformer(TINY, CHROM, np.arange(CHROM.size) * 5000.0, traits)
    freq = genotype_frequencies(packed, CHROM.size) if packed is not None else None
    return CategoricalDiffusion(backbone, transition, freq=freq, **kw)


def perturb(model: torch.nn.Module) -> None:
    """Give the zero-initialised (adaLN-Zero) weights values, so conditioning has an effect."""
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))


def random_cond(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.stack(
        [
            torch.randn(n, generator=g),
            torch.randint(0, 2, (n,), generator=g).float(),
            torch.randint(0, 3, (n,), generator=g).float(),
        ],
        dim=1,
    )


# ---------------------------------------------------------------------------------------------
# backbone
# ---------------------------------------------------------------------------------------------


def test_param_count_follows_config_not_snp_count():
    torch.manual_seed(0)
    small = PatchTransformer(TINY, CHROM)
    big = PatchTransformer(TINY, np.repeat([1, 2, 3], [300, 451, 20]), np.arange(771) * 10.0)
    assert n_params(small) == n_params(big)
    # the SNP layout is buffers only, and none of it is saved
    assert set(small.state_dict()) == set(big.state_dict())
    wider = PatchTransformer(BackboneConfig(**{**TINY.__dict__, "width": 64}), CHROM)
    assert n_params(wider) > n_params(small)


def test_no_patch_spans_two_chromosomes():
    chrom = np.array(["1"] * 10 + ["2"] * 17 + ["X"] * 3 + ["2"] * 5)  # a label may come back
    layout = patch_layout(chrom, None, 8)
    m = chrom.size
    assert layout.n_patches == 2 + 3 + 1 + 1
    seen = []
    for row in layout.index:
        real = row[row < m]
        assert real.size > 0 and (row[: real.size] < m).all()  # padding only at the end
        assert len(set(chrom[real])) == 1 and np.all(np.diff(real) == 1)
        seen.extend(real.tolist())
    assert sorted(seen) == list(range(m))  # every SNP exactly once
    assert layout.chrom.tolist() == [0, 0, 1, 1, 1, 2, 1]


def test_output_is_per_snp_and_padding_has_no_effect():
    torch.manual_seed(0)
    net = PatchTransformer(TINY, CHROM)
    perturb(net)
    x = haplotype_cohort(4)
    t = torch.full((4,), 0.3)
    out = net(x, t)
    assert out.shape == (4, CHROM.size, 3) and out.isfinite().all()
    # changing one SNP on chromosome 2 leaves chromosome-1-only patches' inputs alone but the
    # transformer mixes genome-wide: outputs elsewhere change too
    x2 = x.clone()
    x2[:, 50] = 3
    assert not torch.equal(net(x2, t)[:, :37], out[:, :37])
    # the pad slot embedding starts at zero and never gets a gradient
    assert torch.count_nonzero(PatchTransformer(TINY, CHROM).tok_emb.weight[-1]) == 0
    out.sum().backward()
    assert torch.count_nonzero(net.tok_emb.weight.grad[-1]) == 0


def test_snp_features_read_each_snps_frequencies():
    """snp_features: each SNP's token embedding also reads log pi_j (3 values) and log pi_j of
    its called genotype, checked against a per-SNP loop; the projection starts at zero, the
    frequencies are saved with the weights, and the parameter count still ignores M."""
    g = haplotype_cohort(64)
    g[0, :5] = torch.tensor([-1, 3, 0, 1, 2], dtype=torch.int8)  # missing, MASK, 0, 1, 2
    m = CHROM.size
    freq = genotype_frequencies(pack(g[1:]), m)
    cfg = dataclasses.replace(TINY, snp_features=True)
    with pytest.raises(ValueError, match="snp_features"):
        PatchTransformer(cfg, CHROM)
    torch.manual_seed(0)
    net = PatchTransformer(cfg, CHROM, freq=freq)
    assert torch.count_nonzero(net.freq_proj.weight) == 0  # a fresh net: plain tokens
    assert n_params(net) == n_params(PatchTransformer(TINY, CHROM)) + 6 * TINY.token_dim
    perturb(net)
    x, t = g[:3], torch.full((3,), 0.4)
    # reference: the per-SNP embedding written out one SNP at a time, then patched
    lf, w = torch.log(freq + 1e-3), net.freq_proj.weight
    ref = torch.zeros(3, m + 1, TINY.token_dim)
    for i in range(3):
        for j in range(m):
            v = int(x[i, j])
            obs = torch.zeros(3)
            if 0 <= v <= 2:
                obs[v] = lf[j, v]
            ref[i, j] = net.tok_emb.weight[v + 1] + w @ torch.cat([lf[j], obs])
    ref = ref[:, net.patch_index].flatten(2)
    want = net.patch_proj(ref) + net.chrom_emb(net.patch_chrom) + net.pos_emb
    torch.testing.assert_close(net.embed(x), want, rtol=1e-5, atol=1e-5)
    # soft one-hot genotypes embed as the hard ones
    hard = g[1:4]
    torch.testing.assert_close(net.embed(F.one_hot(hard.long(), 3).float()), net.embed(hard))
    # the frequencies are part of the state: a net built with placeholders and loaded is the same
    out = net(x, t)
    loaded = PatchTransformer(cfg, CHROM, freq=torch.full((m, 3), 1 / 3))
    assert not torch.equal(loaded.snp_logfreq, net.snp_logfreq)
    loaded.load_state_dict(net.state_dict())
    torch.testing.assert_close(loaded(x, t), out)


def test_dropout_only_in_training():
    """dropout > 0: two training-mode forwards differ, eval-mode ones are equal and match the
    same weights built without dropout."""
    torch.manual_seed(0)
    net = PatchTransformer(dataclasses.replace(TINY, dropout=0.3), CHROM)
    perturb(net)
    plain = PatchTransformer(TINY, CHROM)
    plain.load_state_dict(net.state_dict())
    x, t = haplotype_cohort(3), torch.full((3,), 0.5)
    net.train()
    assert not torch.equal(net(x, t), net(x, t))
    net.eval()
    torch.testing.assert_close(net(x, t), plain.eval()(x, t))
    with pytest.raises(ValueError, match="dropout"):
        PatchTransformer(dataclasses.replace(TINY, dropout=1.0), CHROM)


def test_written_out_bf16_attention_matches_sdpa():
    """The CPU bf16 branch of `attention` (written out) against float32 SDPA on the same
    rounded inputs, values and gradients, within bfloat16 resolution."""
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(3, 2, 37, 16, generator=g).bfloat16() for _ in range(3))
    ref_in = [t.float().requires_grad_() for t in (q, k, v)]
    ref = F.scaled_dot_product_attention(*ref_in)
    got_in = [t.clone().requires_grad_() for t in (q, k, v)]
    got = attention(*got_in)
    assert got.dtype == torch.bfloat16
    torch.testing.assert_close(got.float(), ref, atol=3e-2, rtol=3e-2)
    w = torch.randn(ref.shape, generator=g)
    (ref * w).sum().backward()
    (got.float() * w).sum().backward()
    for a, b in zip(got_in, ref_in, strict=True):
        torch.testing.assert_close(a.grad.float(), b.grad, atol=6e-2, rtol=6e-2)
    # float32 goes to SDPA unchanged
    assert torch.equal(attention(*ref_in), ref)


# ---------------------------------------------------------------------------------------------
# loss
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("transition", TRANSITIONS)
def test_elbo_of_bayes_posterior_is_minus_log_prior(transition):
    """Model = exact posterior under a prior rho -> the ELBO integral is -log rho(x0): checks the
    continuous-time weighting of every transition (float32, as in training). t on
    [1e-5, 1 - 1e-5], grid clustered at both ends."""
    rho = torch.tensor([0.2, 0.5, 0.3], dtype=torch.float64)
    pi = torch.tensor([[0.6, 0.3, 0.1]], dtype=torch.float64)
    n = 4000
    u = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    eps = 1e-5
    t = eps + (1 - 2 * eps) * (1 - torch.cos(math.pi * u)) / 2
    dt = (1 - 2 * eps) * (math.pi / 2) * torch.sin(math.pi * u) / n
    for schedule in ("linear", "cosine"):
        a, da = alpha(t, schedule), dalpha(t, schedule)
        for x0 in range(3):
            total = 0.0
            for v in range(4 if transition == "mask" else 3):
                if transition == "mask":
                    q_v = a if v == x0 else (1 - a if v == 3 else torch.zeros_like(a))
                    post = rho.expand(n, 3) if v == 3 else torch.eye(3)[v].expand(n, 3)
                else:
                    p = pi[0] if transition == "marginal" else torch.full((3,), 1 / 3)
                    c = a[:, None] * torch.eye(3, dtype=torch.float64)[v] + (1 - a[:, None]) * p[v]
                    q_v = c[:, x0]
                    post = rho * c / (rho * c).sum(1, keepdim=True)
                logits = torch.log(post.clamp(min=1e-300)).float()[:, None]
                x_t = torch.full((n, 1), v, dtype=torch.int8)
                x0_t = torch.full((n, 1), x0, dtype=torch.int8)
                ell = elbo_terms(logits, x_t, x0_t, a.float(), da.float(), transition,
                                 pi.float())[:, 0].double()  # fmt: skip
                total += float((q_v * ell * dt).sum())
            assert total == pytest.approx(-math.log(rho[x0]), abs=5e-3), (schedule, x0)


def test_missing_genotypes_are_ignored_by_the_loss():
    x0 = torch.tensor([[0, -1, 2]], dtype=torch.int8)
    logits = torch.randn(1, 3, 3)
    for transition in TRANSITIONS:
        x_t = torch.tensor([[3 if transition == "mask" else 1, -1, 0]], dtype=torch.int8)
        ell = elbo_terms(logits, x_t, x0, torch.tensor([0.5]), torch.tensor([-1.0]), transition,
                         torch.full((3, 3), 1 / 3))  # fmt: skip
        assert ell[0, 1] == 0 and ell[0, 0] > 0 and ell.isfinite().all()


@pytest.mark.parametrize("transition", TRANSITIONS)
def test_loss_finite_and_decreasing(transition):
    g = haplotype_cohort(64)
    g[3, 5] = -1  # a missing genotype
    packed = pack(g)
    model = build(transition, packed=packed)
    rows = torch.arange(64)

    def eval_loss() -> float:
        model.eval()
        with torch.no_grad():
            return sum(float(model.loss(packed, rows, seed=7, offset=o)) for o in range(4)) / 4

    before = eval_loss()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    for step in range(30):
        loss = model.loss(packed, rows, seed=1, offset=step)
        assert loss.isfinite()
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = eval_loss()
    assert math.isfinite(before) and after < 0.8 * before, (before, after)
    # same seed and offset -> the same loss
    model.eval()
    with torch.no_grad():
        assert float(model.loss(packed, rows, seed=3, offset=5)) == float(
            model.loss(packed, rows, seed=3, offset=5)
        )


# ---------------------------------------------------------------------------------------------
# sampling
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("transition", TRANSITIONS)
@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_samples_valid_and_seeded(transition, schedule):
    packed = pack(haplotype_cohort(64))
    model = build(transition, packed=packed, schedule=schedule)
    perturb(model)
    model.eval()
    x = model.sample(16, steps=7, seed=5)
    assert x.dtype == torch.int8 and x.shape == (16, CHROM.size)
    assert bool(((x >= 0) & (x <= 2)).all())
    assert torch.equal(x, model.sample(16, steps=7, seed=5))
    assert not torch.equal(x, model.sample(16, steps=7, seed=6))
    assert torch.equal(model.sample(16, steps=7, seed=5, pack_bed=True), pack_bed(x))
    assert model.sample(3, steps=1, seed=0).shape == (3, CHROM.size)


def test_step_grid_power_reveals_few_snps_first():
    model = build("mask")
    perturb(model)
    model.eval()
    seen = []
    forward = model.backbone.forward

    def record(x, t, *args, **kw):
        seen.append((float(t[0]), float((x == 3).double().mean())))
        return forward(x, t, *args, **kw)

    model.backbone.forward = record
    x = model.sample(64, steps=10, seed=3, power=3.0, skip=False)
    ts = [t for t, _ in seen]
    np.testing.assert_allclose(ts, 1 - (np.arange(10) / 10) ** 3, atol=1e-6)
    # masked share before step i+1 = t_(i+1) (linear schedule): 0.1 % after the first step
    assert seen[1][1] > 0.99 and abs(seen[1][1] - ts[1]) < 0.02
    assert bool(((x >= 0) & (x <= 2)).all())
    parts = torch.cat([model.sample(40, steps=10, seed=3, power=3.0),
                       model.sample(24, steps=10, seed=3, power=3.0, row_offset=40)])
    assert torch.equal(x, parts)
    with pytest.raises(ValueError, match="power"):
        model.sample(2, power=0.0)


def _count_calls(model: CategoricalDiffusion) -> list[int]:
    calls = [0]
    forward = model.backbone.forward

    def counted(*args, **kw):
        calls[0] += 1
        return forward(*args, **kw)

    model.backbone.forward = counted
    return calls


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_mask_skipping_is_exact_and_saves_calls(schedule):
    model = build("mask", schedule=schedule)
    perturb(model)
    model.eval()
    calls = _count_calls(model)
    full = model.sample(4, steps=300, seed=11, skip=False)
    n_full = calls[0]
    calls[0] = 0
    fast = model.sample(4, steps=300, seed=11)
    assert torch.equal(full, fast)
    assert n_full == 300 and 0 < calls[0] < 250, calls[0]
    assert torch.equal(model.sample(4, steps=300, seed=11, pack_bed=True), pack_bed(full))


@pytest.mark.parametrize("transition", TRANSITIONS)
def test_inpainted_positions_hold_their_values(transition):
    packed = pack(haplotype_cohort(64))
    model = build(transition, packed=packed)
    perturb(model)
    model.eval()
    gen = torch.Generator().manual_seed(0)
    hold = torch.rand(8, CHROM.size, generator=gen) < 0.3
    hold[:4] = False  # individuals 0..3 unconstrained
    values = torch.randint(0, 3, (8, CHROM.size), generator=gen, dtype=torch.int8)
    x = model.sample(8, steps=6, seed=2, inpaint=(hold, values))
    assert torch.equal(x[hold], values[hold])
    assert bool(((x >= 0) & (x <= 2)).all())
    bed = model.sample(8, steps=6, seed=2, inpaint=(hold, values), pack_bed=True)
    assert torch.equal(bed, pack_bed(x))
    # one SNP mask for every individual
    snps = torch.zeros(CHROM.size, dtype=torch.bool)
    snps[::5] = True
    twos = torch.full((CHROM.size,), 2, dtype=torch.int8)
    x = model.sample(8, steps=4, seed=3, inpaint=(snps, twos))
    assert bool((x[:, snps] == 2).all())
    with pytest.raises(ValueError, match="0/1/2"):
        model.sample(2, steps=2, inpaint=(snps, torch.full((CHROM.size,), 3, dtype=torch.int8)))


@pytest.mark.parametrize("transition", TRANSITIONS)
def test_corrector_moves_are_keyed_by_row_and_keep_frequencies(transition):
    packed = pack(haplotype_cohort(64))
    model = build(transition, packed=packed)
    model.eval()  # fresh network: p(x0 | x_t) is the per-SNP frequency model
    calls = _count_calls(model)
    x = model.sample(3000, steps=2, seed=4, skip=False, correct=3, correct_t=0.3)
    assert calls[0] == 2 + 3
    base = model.sample(3000, steps=2, seed=4)
    assert not torch.equal(x, base)
    # with an exact posterior a renoise-denoise move leaves the distribution invariant
    f_after = torch.stack([(x == k).double().mean(0) for k in range(3)], 1)
    f_before = torch.stack([(base == k).double().mean(0) for k in range(3)], 1)
    sd = torch.sqrt(f_before * (1 - f_before) / 3000).clamp(min=1e-3)
    assert float(((f_after - f_before).abs() / sd).max()) < 5.5
    perturb(model)
    whole = model.sample(10, steps=3, seed=9, correct=2)
    parts = torch.cat([model.sample(4, steps=3, seed=9, correct=2),
                       model.sample(6, steps=3, seed=9, correct=2, row_offset=4)])
    assert torch.equal(whole, parts)
    assert torch.equal(model.sample(10, steps=3, seed=9, correct=2, pack_bed=True),
                       pack_bed(whole))
    hold = torch.zeros(CHROM.size, dtype=torch.bool)
    hold[::3] = True
    ones = torch.ones(CHROM.size, dtype=torch.int8)
    held = model.sample(10, steps=3, seed=9, correct=4, correct_t=0.5, inpaint=(hold, ones))
    assert bool((held[:, hold] == 1).all())
    with pytest.raises(ValueError, match="correct"):
        model.sample(2, steps=2, correct=1, correct_t=1.0)


def test_calibration_tilt_puts_sampled_frequencies_back_on_the_training_ones():
    packed = pack(haplotype_cohort(64))
    model = build("mask", packed=packed)
    model.eval()
    # a fresh network is the frequency model; shift its logits so that it is off
    shift = torch.tensor([0.6, 0.0, -1.2])
    model.backbone.register_forward_hook(lambda mod, args, out: out + shift)

    def freq_error(seed: int) -> float:
        x = model.sample(4000, steps=2, seed=seed).long()
        return float((torch.nn.functional.one_hot(x, 3).double().mean(0) - model.freq).abs().mean())

    before = freq_error(1)
    assert before > 0.05
    errors = model.calibrate(1000, 3, seed=5, batch_size=300, steps=2)
    assert len(errors) == 3 and errors[-1] < errors[0]
    after = freq_error(1)
    assert after < before / 4  # sampling noise of 4,000 draws: about 0.005 per genotype
    assert "tilt" not in model.state_dict()  # kept beside the checkpoint, not in it
    x, t = haplotype_cohort(3), torch.full((3,), 0.5)
    with torch.no_grad():
        torch.testing.assert_close(model.guided_logits(x, t, None, 0.0),
                                   model.logits(x, t) + model.tilt)
    with pytest.raises(ValueError, match="calibrate"):
        model.calibrate(0)


# ---------------------------------------------------------------------------------------------
# conditioning and guidance
# ---------------------------------------------------------------------------------------------


def test_guidance_mixes_conditional_and_null_logits():
    model = build("mask", traits=TRAITS)
    perturb(model)
    model.eval()
    x = haplotype_cohort(6)
    x[:, ::3] = 3
    t = torch.full((6,), 0.4)
    cond = random_cond(6)
    with torch.no_grad():
        lc, lu = model.logits(x, t, cond), model.logits(x, t, None)
        assert not torch.allclose(lc, lu)  # the condition matters
        assert torch.equal(model.logits(x, t, cond, torch.ones(6, dtype=torch.bool)), lu)
        assert torch.equal(model.guided_logits(x, t, cond, 0.0), lc)
        assert torch.equal(model.guided_logits(x, t, cond, -1.0), lu)
        torch.testing.assert_close(model.guided_logits(x, t, cond, 2.0), 3 * lc - 2 * lu)
    calls = _count_calls(model)
    s0 = model.sample(6, cond, steps=5, guidance=0.0, seed=4)
    assert calls[0] == 5  # guidance 0: one network call per step
    assert torch.equal(model.sample(6, cond, steps=5, guidance=-1.0, seed=4),
                       model.sample(6, None, steps=5, seed=4))  # fmt: skip
    assert not torch.equal(s0, model.sample(6, cond, steps=5, guidance=3.0, seed=4))


def test_condition_dropout():
    packed = pack(haplotype_cohort(64))
    rows = torch.arange(64)
    cond = random_cond(64)
    model = build("mask", traits=TRAITS, packed=packed, cond_drop=1.0)
    perturb(model)
    model.train()
    with torch.no_grad():
        # every row dropped -> exactly the unconditional loss
        assert float(model.loss(packed, rows, cond, seed=2)) == float(
            model.loss(packed, rows, None, seed=2)
        )
        model.cond_drop = 0.0
        assert float(model.loss(packed, rows, cond, seed=2)) != float(
            model.loss(packed, rows, None, seed=2)
        )
        # no dropout outside training
        model.cond_drop = 1.0
        model.eval()
        assert float(model.loss(packed, rows, cond, seed=2)) != float(
            model.loss(packed, rows, None, seed=2)
        )
    # about the asked fraction of rows is dropped
    model.train()
    model.cond_drop = 0.5
    seen = []
    forward = model.backbone.forward
    model.backbone.forward = lambda x, t, c, drop: seen.append(drop) or forward(x, t, c, drop)
    with torch.no_grad():
        model.loss(packed, rows, cond, seed=3)
    assert 16 <= int(seen[0].sum()) <= 48


def test_condition_values_are_checked():
    model = build("mask", traits=TRAITS)
    model.eval()
    rows = torch.arange(4)
    packed = pack(haplotype_cohort(4))
    ok = random_cond(4)
    ok[1, 0] = float("nan")  # missing values are allowed
    ok[2, 2] = float("nan")
    assert model.loss(packed, rows, ok).isfinite()
    for col, bad in ((1, 2.0), (2, 3.0), (2, 0.5)):
        c = random_cond(4)
        c[0, col] = bad
        with pytest.raises(ValueError, match="takes integers"):
            model.loss(packed, rows, c)
    with pytest.raises(ValueError, match="expected"):
        model.loss(packed, rows, ok[:, :2])
    with pytest.raises(ValueError, match="without traits"):
        build("mask").sample(4, ok, steps=2)
