"""GAN and WGAN-GP with Gumbel-softmax outputs: schedules, penalty, training, sampling, loading."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from genofast.io.tables import SnpTable
from genofast.models import gan, n_params
from genofast.models.base import TrainingData, row_normal
from genofast.ops import pack, unpack

M, N = 37, 64  # odd on purpose: 37 SNPs pack into 10 bytes with a partial last one
CHROM = np.array(["1"] * 20 + ["2"] * 17)
TINY_BACKBONE = {"patch_size": 8, "token_dim": 4, "width": 32, "depth": 2, "n_heads": 4,
                 "time_freq_dim": 32}
TRAITS = [{"name": "height", "kind": "continuous", "n_levels": 2},
          {"name": "breed", "kind": "categorical", "n_levels": 3}]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors: one intra-op thread (on a busy 2-core machine, OpenMP's second thread made
    a 5 ms step take 700 ms)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def snp_table(m: int = M) -> SnpTable:
    chrom = CHROM if m == M else np.full(m, "1")
    pos = np.r_[np.arange(20), np.arange(17)] * 1000 + 1 if m == M else np.arange(m) + 1
    return SnpTable(chromosome=chrom, sid=np.array([f"rs{j}" for j in range(m)]),
                    cm_position=np.zeros(m), bp_position=pos, allele_1=np.full(m, "A"),
                    allele_2=np.full(m, "G"))


def cohort(seed: int = 0) -> torch.Tensor:
    """64 x 37 genotypes from 3 haplotypes (strong LD), 3% missing, packed."""
    rng = np.random.default_rng(seed)
    haps = rng.integers(0, 2, (3, M))
    pick = rng.integers(0, 3, (N, 2))
    g = (haps[pick[:, 0]] + haps[pick[:, 1]]).astype(np.int8)
    g[rng.random(g.shape) < 0.03] = -1
    return pack(torch.from_numpy(g))


def conditions(n: int = N, seed: int = 0) -> torch.Tensor:
    """[n, 2]: a standardised continuous trait and a 3-level categorical one, some NaN."""
    gen = torch.Generator().manual_seed(seed)
    cond = torch.stack([torch.randn(n, generator=gen),
                        torch.randint(0, 3, (n,), generator=gen).float()], 1)
    cond[::7, 0] = float("nan")
    cond[3::11, 1] = float("nan")
    return cond


def make_meta(model: str = "wgan", backbone: str = "mlp", traits=(), max_steps: int = 100,
              **cfg) -> dict:
    """The run's config.json as the trainer writes it, for a tiny network."""
    sizes = {"latent_dim": 8, "generator_div": "4,2", "critic_div": "2,4", **cfg}
    config = gan.MODEL_CONFIGS[model](backbone=backbone, **sizes)
    return {"train": {"model": model, "seed": 0, "lr": 1e-3, "batch_size": 32,
                      "max_steps": max_steps},
            "model": dataclasses.asdict(config), "backbone": dict(TINY_BACKBONE),
            "traits": list(traits), "fitted": {}, "n_snps": M}


def build(meta: dict, packed: torch.Tensor | None = None) -> gan.GumbelGAN:
    data = None if packed is None else TrainingData(packed, M)
    return gan.build(meta, snp_table(), data)


def run_steps(model: gan.GumbelGAN, packed: torch.Tensor, steps: range,
              cond: torch.Tensor | None = None, lr: float = 1e-3) -> list[tuple[str, float]]:
    """The trainer's loop in miniature: Adam per optimiser group, one batch of 32 per step."""
    opts = {g.name: torch.optim.Adam(g.params, lr=lr * g.lr_scale, betas=g.betas)
            for g in model.optim_groups()}
    history = []
    for step in steps:
        rows = (torch.arange(32) + 32 * step) % packed.shape[0]
        losses = model.loss(packed[rows], rows, None if cond is None else cond[rows], seed=0,
                            offset=step)
        for name, value in losses.items():
            model.zero_grad(set_to_none=True)
            value.backward()
            opts[name].step()
            history.append((name, value.item()))
    return history


def noise_onehot(n: int, seed: int = 1) -> torch.Tensor:
    """One-hot genotypes drawn uniformly: what a critic should score below real rows."""
    x = torch.randint(0, 3, (n, M), generator=torch.Generator().manual_seed(seed))
    return torch.nn.functional.one_hot(x, 3).float()


# ---------------------------------------------------------------------------------------------
# schedules and pieces
# ---------------------------------------------------------------------------------------------


def test_temperature_schedule_endpoints() -> None:
    assert gan.temperature(0, 1000) == 1.0
    assert gan.temperature(1000, 1000) == pytest.approx(0.1)
    assert gan.temperature(500, 1000) == pytest.approx(0.55)
    assert gan.temperature(5000, 1000) == pytest.approx(0.1)  # stays at the end value
    model = build(make_meta("gan", max_steps=40))
    assert model.temperature(0) == 1.0
    assert model.temperature(40) == pytest.approx(0.1)
    assert model.temperature(10) == pytest.approx(1.0 - 0.9 / 4)


def test_player_schedule() -> None:
    critic = [gan.trains_critic(s, 5) for s in range(1, 19)]
    assert critic == ([True] * 5 + [False]) * 3
    assert [gan.trains_critic(s, 1) for s in range(1, 7)] == [True, False] * 3
    wgan = build(make_meta("wgan"))
    assert [wgan.player(s) for s in (1, 5, 6, 7, 12)] == [
        "critic", "critic", "generator", "critic", "generator"]
    packed = cohort()
    rows = torch.arange(16)
    for step in (5, 6):
        assert set(wgan.loss(packed[rows], rows, offset=step)) == {wgan.player(step)}
    plain = build(make_meta("gan"))
    assert [plain.player(s) for s in (1, 2, 3, 4)] == ["discriminator", "generator"] * 2
    assert set(plain.loss(packed[rows], rows, offset=3)) == {"discriminator"}


def test_gumbel_softmax_draws_the_softmax_categories() -> None:
    probs = torch.tensor([0.2, 0.3, 0.5])
    logits = probs.log().expand(40_000, 3).clone().requires_grad_(True)
    y = gan.gumbel_softmax(logits, 0.1, torch.Generator().manual_seed(0))
    assert torch.allclose(y.sum(-1), torch.ones(40_000))
    freq = torch.bincount(y.argmax(-1), minlength=3).float() / 40_000
    assert torch.allclose(freq, probs, atol=0.01)
    (y[:, 0]).sum().backward()  # soft: differentiable in the logits
    assert logits.grad is not None and logits.grad.abs().sum() > 0


def test_real_onehot_jitter_and_missing() -> None:
    x = torch.tensor([[0, 1, 2, -1, -1], [2, 2, 0, -1, 1]], dtype=torch.int8)
    freq = torch.tensor([[1 / 3] * 3] * 3 + [[0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    out = gan.real_onehot(x, freq, 0.025, torch.Generator().manual_seed(0))
    assert out.shape == (2, 5, 3)
    assert torch.allclose(out.sum(-1), torch.ones(2, 5))
    filled = torch.tensor([[0, 1, 2, 2, 1], [2, 2, 0, 2, 1]])
    assert torch.equal(out.argmax(-1), filled)  # missing drawn from a certain frequency
    hot = out.gather(-1, filled[..., None])[..., 0]
    assert bool((hot >= 1 - 0.05).all()) and bool((hot < 1).all())
    cold = out.masked_fill(torch.nn.functional.one_hot(filled, 3).bool(), 0.0)
    assert bool((cold >= 0).all()) and bool((cold <= 0.025).all()) and cold.sum() > 0
    plain = gan.real_onehot(x, freq, 0.0, torch.Generator().manual_seed(0))
    assert torch.equal(plain, torch.nn.functional.one_hot(filled, 3).float())


def test_hidden_widths_follow_three_times_the_snp_count() -> None:
    assert gan.hidden_widths(50_161, "144,72,36") == [1045, 2090, 4180]
    assert gan.hidden_widths(50_161, "36,72,144") == [4180, 2090, 1045]
    assert gan.hidden_widths(3_493, "24,12,6") == [436, 873, 1746]
    assert gan.hidden_widths(37, "4,2", min_width=16) == [27, 55]
    assert gan.hidden_widths(37, "100", min_width=16) == [16]
    for bad in ("", "0,2", "a,b", "1.5"):
        with pytest.raises(ValueError, match="^critic_div: "):
            gan.hidden_widths(37, bad, name="critic_div")


# ---------------------------------------------------------------------------------------------
# the gradient penalty against finite differences
# ---------------------------------------------------------------------------------------------


def _fd_grad_norms(f, x: torch.Tensor, h: float = 1e-6) -> torch.Tensor:
    """Per-row norm of the central finite-difference gradient of f (row-wise scores), every
    input coordinate of a row perturbed in one batched call."""
    b = x.shape[0]
    d = x[0].numel()
    eye = torch.eye(d, dtype=x.dtype).view(d, *x.shape[1:])
    norms = []
    for i in range(b):
        xs = torch.cat([x[i] + h * eye, x[i] - h * eye])
        s = f(xs, i).detach()
        norms.append(((s[:d] - s[d:]) / (2 * h)).norm())
    return torch.stack(norms)


def test_gradient_penalty_matches_finite_differences() -> None:
    torch.manual_seed(0)
    model = build(make_meta("wgan", traits=TRAITS), cohort()).double()
    b = 3
    feats = model.cond_input(conditions(b), b)
    real = gan.real_onehot(unpack(cohort()[:b], M), model.freq, 0.025,
                           torch.Generator().manual_seed(1)).double()
    fake = torch.softmax(torch.randn(b, M, 3, dtype=torch.float64), -1)
    alpha = torch.tensor([0.2, 0.5, 0.9], dtype=torch.float64)

    def critic(x: torch.Tensor) -> torch.Tensor:
        return model.score(x, feats).double()

    def critic_row(xs: torch.Tensor, i: int) -> torch.Tensor:
        return model.score(xs, feats[i : i + 1].expand(xs.shape[0], -1)).double()

    x_hat = alpha[:, None, None] * real + (1 - alpha[:, None, None]) * fake
    auto = gan.input_grad_norm(critic, x_hat, create_graph=False)
    fd = _fd_grad_norms(critic_row, x_hat)
    assert auto.dtype == torch.float64
    assert torch.allclose(auto, fd, rtol=1e-7, atol=0)
    gp = gan.gradient_penalty(critic, real, fake, alpha)
    assert gp.item() == pytest.approx(((fd - 1) ** 2).mean().item(), rel=1e-7)

    # differentiable in the critic's weights (create_graph): d gp / d w against a central
    # difference in one weight of the first and of the last layer
    gp.backward()
    for w in (model.critic.net.initial[0].weight, model.critic.net.final.weight):
        eps, w0 = 1e-6, w[0, 0].item()
        with torch.no_grad():
            w[0, 0] = w0 + eps
        up = gan.gradient_penalty(critic, real, fake, alpha).item()
        with torch.no_grad():
            w[0, 0] = w0 - eps
        down = gan.gradient_penalty(critic, real, fake, alpha).item()
        with torch.no_grad():
            w[0, 0] = w0
        assert w.grad[0, 0].item() == pytest.approx((up - down) / (2 * eps), rel=1e-5)


def test_gradient_penalty_through_the_patch_critic() -> None:
    model = build(make_meta("wgan", "patch"), cohort())
    real = torch.nn.functional.one_hot(unpack(cohort()[:4], M).clamp(min=0).long(), 3).float()
    fake = torch.softmax(torch.randn(4, M, 3), -1)

    def critic(x: torch.Tensor) -> torch.Tensor:
        return model.score(x, None, double_backward=True)

    gp = gan.gradient_penalty(critic, real, fake, torch.rand(4))
    gp.backward()
    grads = [p.grad for p in model.critic.parameters() if p.grad is not None]
    assert math.isfinite(gp.item()) and gp.item() > 0
    assert grads and sum(g.abs().sum() for g in grads) > 0


# ---------------------------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------------------------


def separation_auc(model: gan.GumbelGAN, packed: torch.Tensor) -> float:
    """P(score of a real row > score of a uniform-noise row), over all pairs."""
    real = gan.real_onehot(unpack(packed, M), model.freq, 0.0, torch.Generator().manual_seed(0))
    c = model.cond_input(None, N)
    with torch.no_grad():
        s_real, s_noise = model.score(real, c), model.score(noise_onehot(N), c)
    return (s_real[:, None] > s_noise[None, :]).double().mean().item()


def test_wgan_critic_separates_real_from_noise() -> None:
    packed = cohort()
    model = build(make_meta("wgan"), packed)
    auc_before = separation_auc(model, packed)
    history = run_steps(model, packed, range(1, 25), lr=2e-3)
    critic = [v for name, v in history if name == "critic"]
    assert len(critic) == 20 and len(history) == 24
    assert np.mean(critic[-3:]) < np.mean(critic[:3]) - 3.0  # the critic loss goes down
    assert auc_before < 0.75 and separation_auc(model, packed) > 0.9


def test_gan_discriminator_separates_real_from_noise() -> None:
    packed = cohort()
    model = build(make_meta("gan", generator_lr_scale=1.0), packed)
    history = run_steps(model, packed, range(1, 19), lr=2e-3)
    disc = [v for name, v in history if name == "discriminator"]
    assert len(disc) == 9
    assert np.mean(disc[-3:]) < np.mean(disc[:3]) - 0.1
    assert separation_auc(model, packed) > 0.95


@pytest.mark.parametrize("name", ["gan", "wgan"])
def test_generator_steps_lower_the_generator_loss_against_a_fixed_critic(name: str) -> None:
    packed = cohort()
    model = build(make_meta(name, generator_lr_scale=1.0), packed)
    every = model.config.n_critic + 1
    run_steps(model, packed, range(1, 2 * every + 1))  # give the critic something to say
    rows = torch.arange(32)
    probe = every * 50  # a generator step whose noise is used before and after

    def generator_loss() -> float:
        with torch.no_grad():
            return model.loss(packed[rows], rows, offset=probe)["generator"].item()

    before = generator_loss()
    critic_state = {k: v.clone() for k, v in model.critic.state_dict().items()}
    run_steps(model, packed, range(every, 20 * every + 1, every), lr=3e-3)  # generator only
    assert all(torch.equal(v, model.critic.state_dict()[k]) for k, v in critic_state.items())
    assert generator_loss() < before


def test_each_step_touches_only_its_players_gradients() -> None:
    packed = cohort()
    model = build(make_meta("gan"), packed)
    rows = torch.arange(16)
    for step, trained, idle in ((1, model.critic, model.generator),
                                (2, model.generator, model.critic)):
        model.zero_grad(set_to_none=True)
        next(iter(model.loss(packed[rows], rows, offset=step).values())).backward()
        assert all(p.grad is not None for p in trained.parameters())
        assert all(p.grad is None for p in idle.parameters())
        assert all(p.requires_grad for p in model.parameters())  # frozen() restored them


def test_training_noise_is_keyed_by_seed_and_step() -> None:
    packed = cohort()
    rows = torch.arange(16)
    a, b = build(make_meta("wgan"), packed), build(make_meta("wgan"), packed)
    la = a.loss(packed[rows], rows, seed=3, offset=4)["critic"]
    lb = b.loss(packed[rows], rows, seed=3, offset=4)["critic"]
    assert la.item() == lb.item()
    assert a.loss(packed[rows], rows, seed=3, offset=5)["critic"].item() != la.item()
    assert a.loss(packed[rows], rows, seed=4, offset=4)["critic"].item() != la.item()


def test_optim_groups() -> None:
    for name, critic_name in (("gan", "discriminator"), ("wgan", "critic")):
        model = build(make_meta(name))
        groups = {g.name: g for g in model.optim_groups()}
        assert set(groups) == {"generator", critic_name}
        for g in groups.values():
            assert g.betas == (0.5, 0.9) and g.weight_decay == 0.0
        assert groups[critic_name].clip is (name == "gan")
        ids = [id(p) for g in groups.values() for p in g.params]
        assert len(ids) == len(set(ids)) == len(list(model.parameters()))
    assert gan.build(make_meta("gan", generator_lr_scale=5.0), snp_table(), None) \
        .optim_groups()[0].lr_scale == 5.0


# ---------------------------------------------------------------------------------------------
# sampling and loading
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name,backbone", [("gan", "mlp"), ("wgan", "mlp"), ("wgan", "patch")])
def test_sample_valid_and_independent_of_the_batch_split(name: str, backbone: str) -> None:
    packed = cohort()
    model = build(make_meta(name, backbone), packed)
    run_steps(model, packed, range(1, 3))
    model.train()
    x = model.sample(10, seed=5)
    assert x.dtype == torch.int8 and x.shape == (10, M)
    assert bool(((x >= 0) & (x <= 2)).all())
    assert model.generator.training  # sampling ran in eval mode and restored the flag
    parts = torch.cat([model.sample(4, seed=5), model.sample(6, seed=5, row_offset=4)])
    assert torch.equal(x, parts)
    assert torch.equal(model.sample(10, seed=5, steps=3), x)  # steps mean nothing here
    assert not torch.equal(model.sample(10, seed=6), x)
    with pytest.raises(ValueError, match="guidance"):
        model.sample(2, guidance=1.0)


def test_sample_follows_the_generator_probabilities() -> None:
    model = build(make_meta("gan"), cohort())
    n = 4000
    x = model.sample(n, seed=0)
    rows = torch.arange(n)
    with torch.no_grad():
        model.generator.eval()
        z = row_normal(0, rows, model.config.latent_dim, stream=0)
        probs = model.logits(z, model.cond_input(None, n)).softmax(-1).double()
    expected = probs.mean(0)  # [M, 3] genotype frequencies implied by the generator
    observed = torch.nn.functional.one_hot(x.long(), 3).double().mean(0)
    assert (observed - expected).abs().max() < 0.04


@pytest.mark.parametrize("name,backbone", [("gan", "mlp"), ("wgan", "patch")])
def test_save_load_round_trip(name: str, backbone: str) -> None:
    packed = cohort()
    meta = make_meta(name, backbone, traits=TRAITS)
    meta["backbone"]["snp_features"] = backbone == "patch"  # the frequencies travel too
    model = build(meta, packed)
    run_steps(model, packed, range(1, 3), cond=conditions())  # moves weights and BN statistics
    cond = conditions(8, seed=2)
    before = model.sample(8, cond, seed=1)
    loaded = gan.build(meta, snp_table(), None)
    assert not torch.equal(loaded.freq, model.freq)  # placeholder until the weights arrive
    loaded.load_state_dict(model.state_dict())
    assert torch.equal(loaded.freq, model.freq)
    assert torch.equal(loaded.sample(8, cond, seed=1), before)


def test_build_is_seeded_and_checks_its_inputs() -> None:
    a, b = build(make_meta("wgan")), build(make_meta("wgan"))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    meta = make_meta("wgan")
    meta["model"]["not_a_field"] = 1
    with pytest.raises(ValueError, match="not_a_field"):
        gan.build(meta, snp_table(), None)
    with pytest.raises(ValueError, match="SNP"):
        gan.build(make_meta("wgan"), snp_table(36), None)
    with pytest.raises(ValueError, match="backbone"):
        build(make_meta("wgan", backbone="conv"))


# ---------------------------------------------------------------------------------------------
# conditioning
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backbone", ["mlp", "patch"])
def test_conditional_path(backbone: str) -> None:
    packed, cond = cohort(), conditions()
    model = build(make_meta("wgan", backbone, traits=TRAITS), packed)
    if backbone == "patch":  # give the zero-initialised adaLN weights values
        torch.manual_seed(1)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.05 * torch.randn_like(p))
    history = run_steps(model, packed, range(1, 7), cond=cond)  # 5 critic steps, 1 generator
    assert [name for name, _ in history] == ["critic"] * 5 + ["generator"]
    assert all(math.isfinite(v) for _, v in history)
    n = 64
    one = torch.tensor([[1.5, 0.0]]).expand(n, 2).contiguous()
    other = torch.tensor([[-1.5, 2.0]]).expand(n, 2).contiguous()
    x1, x2 = model.sample(n, one, seed=0), model.sample(n, other, seed=0)
    assert x1.shape == (n, M) and not torch.equal(x1, x2)  # same noise, other condition
    c1, c2 = model.cond_input(one, n), model.cond_input(other, n)
    x = torch.softmax(torch.randn(n, M, 3), -1)
    with torch.no_grad():
        assert not torch.allclose(model.score(x, c1), model.score(x, c2))
    assert model.sample(3, cond[:3], seed=0).shape == (3, M)  # NaN = missing is accepted
    with pytest.raises(ValueError, match="conditional"):
        model.sample(4)
    with pytest.raises(ValueError):
        model.sample(4, torch.zeros(4, 3))
    with pytest.raises(ValueError, match="without traits"):
        build(make_meta("wgan")).sample(4, torch.zeros(4, 2))


# ---------------------------------------------------------------------------------------------
# presets
# ---------------------------------------------------------------------------------------------


def test_presets_reproduce_the_study_sizes() -> None:
    assert {"study:gan-cow-ch14", "study:wgan-cow-all", "study:wgan-human"} <= set(gan.PRESETS)
    for preset in gan.PRESETS.values():
        fields = {f.name for f in dataclasses.fields(gan.MODEL_CONFIGS[preset["model"]])}
        assert set(preset["model_config"]) <= fields
        assert preset["train"]["lr"] == 1e-4
    cow = gan.PRESETS["study:wgan-cow-all"]
    assert cow["train"]["batch_size"] == 128
    cfg = gan.WGANConfig(**cow["model_config"])
    assert cfg.latent_dim == 256 and cfg.n_critic == 5 and cfg.gp_lambda == 10.0
    m = 50_161
    meta = {"train": {"model": "wgan", "seed": 0, "max_steps": 10},
            "model": dataclasses.asdict(cfg), "n_snps": m,
            "traits": [{"name": "milk", "kind": "continuous", "n_levels": 2}]}
    with torch.device("meta"):  # 1.3 B parameters: count them without allocating
        model = gan.build(meta, SnpTable.synthetic(m), None)
    total = n_params(model)
    assert 1.30e9 < total < 1.36e9
    assert model.generator.net.final.in_features == 4180 + 2  # + (value, missing) of the trait
    assert model.critic.net.initial[0].out_features == 4180
