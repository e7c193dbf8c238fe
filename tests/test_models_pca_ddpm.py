"""PCA + DDPM: the per-chromosome PCA, the Gaussian diffusion, sampling, decoding, build/load."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch

from genofast.io.tables import SnpTable
from genofast.models import model_config_class, presets
from genofast.models.base import TrainingData
from genofast.models.pca_ddpm import (
    MODEL_CONFIGS,
    PRESETS,
    Config,
    alphas_bar,
    build,
    chromosome_groups,
    fit_pca,
    n_kept,
    reverse_coefficients,
    timestep_grid,
)
from genofast.ops import pack, unpack

CHROM = np.array(["1"] * 20 + ["2"] * 17)  # 37 SNPs on two chromosomes
TINY = {"hidden": "32,24,16", "time_dim": 8, "cond_dim": 4, "timesteps": 60, "beta_end": 0.2}
TRAITS = [
    {"name": "height", "kind": "continuous", "n_levels": 0},
    {"name": "breed", "kind": "categorical", "n_levels": 3},
]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny matrices: one intra-op thread is faster than several (and steadier on a busy CI)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def snp_table(chrom: np.ndarray = CHROM) -> SnpTable:
    m = len(chrom)
    return SnpTable(chrom, [f"s{j}" for j in range(m)], np.zeros(m), np.arange(1, m + 1),
                    np.full(m, "A"), np.full(m, "G"))  # fmt: skip


def cohort(n: int = 64, chrom: np.ndarray = CHROM, seed: int = 0, missing: float = 0.02):
    """int8 [n, M]: per chromosome two haplotypes, each individual carries two draws (strong
    structure for the PCA); a few genotypes missing (-1)."""
    rng = np.random.default_rng(seed)
    g = np.zeros((n, len(chrom)), dtype=np.int8)
    for c in np.unique(chrom):
        cols = np.flatnonzero(chrom == c)
        haps = rng.integers(0, 2, size=(3, cols.size))
        pick = rng.integers(0, 3, size=(n, 2))
        g[:, cols] = haps[pick[:, 0]] + haps[pick[:, 1]]
    g[rng.random(g.shape) < missing] = -1
    return torch.from_numpy(g)


def make_meta(traits=(), **model) -> dict:
    return {"train": {"seed": 3}, "model": {**TINY, **model}, "traits": list(traits),
            "fitted": {}, "n_snps": len(CHROM)}  # fmt: skip


def random_cond(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    cond = torch.stack([torch.randn(n, generator=g),
                        torch.randint(0, 3, (n,), generator=g).float()], 1)  # fmt: skip
    cond[::5, 0] = float("nan")
    cond[2::7, 1] = float("nan")
    return cond


def train_steps(model, packed, n_steps: int, cond=None, lr: float = 3e-3) -> list[float]:
    """The trainer's loop in miniature: per returned group zero, backward, step."""
    opts = {g.name: torch.optim.Adam(g.params, lr=lr) for g in model.optim_groups()}
    losses = []
    gen = torch.Generator().manual_seed(0)
    for step in range(1, n_steps + 1):
        rows = torch.randperm(packed.shape[0], generator=gen)[:32]
        out = model.loss(packed[rows], rows, None if cond is None else cond[rows], seed=0,
                         offset=step)  # fmt: skip
        out = out if isinstance(out, dict) else {"model": out}
        for opt in opts.values():
            opt.zero_grad()
        for name, loss in out.items():
            loss.backward()
            opts[name].step()
        losses.append(sum(v.item() for v in out.values()))
    return losses


# ------------------------------------------------------------------------------------------
# PCA
# ------------------------------------------------------------------------------------------


def numpy_reference(x: np.ndarray, variance: float):
    """Centred SVD: kept k, the rank-k reconstruction of the centred data, the kept fraction."""
    xc = x - x.mean(0)
    u, s, vt = np.linalg.svd(xc, full_matrices=False)
    lam = s**2
    frac = np.cumsum(lam) / lam.sum()
    k = int(np.argmax(frac >= variance) + 1)
    return k, (u[:, :k] * s[:k]) @ vt[:k], frac[k - 1], lam


@pytest.mark.parametrize("n", [40, 15])  # 40 > 20, 17 SNPs: covariance route; 15 < 17: Gram
@pytest.mark.parametrize("variance", [0.5, 0.9])
def test_fit_pca_matches_numpy_svd(n: int, variance: float) -> None:
    g = cohort(n, missing=0.0)
    groups = chromosome_groups(snp_table())
    fit = fit_pca(pack(g), len(CHROM), groups, variance, block_rows=7)  # several blocks
    x = g.double().numpy()
    assert np.allclose(fit.mean.numpy(), x.mean(0))
    for c, idx in enumerate(groups):
        k, recon, frac, lam = numpy_reference(x[:, idx], variance)
        assert fit.n_components[c] == k
        assert fit.explained[c] == pytest.approx(frac, rel=1e-9)
        assert fit.explained[c] >= variance > (lam[: k - 1].sum() / lam.sum())
        w = fit.components[c]
        assert torch.allclose(w @ w.T, torch.eye(k, dtype=torch.float64), atol=1e-9)
        xc = torch.from_numpy(x[:, idx] - x[:, idx].mean(0))
        assert np.allclose((xc @ w.T @ w).numpy(), recon, atol=1e-9)
        scores = xc @ w.T
        assert torch.allclose(scores.std(0), fit.score_sd[c], rtol=1e-9)
        assert fit.total_variance[c] == pytest.approx(x[:, idx].var(0, ddof=1).sum())


def test_fit_pca_missing_counts_as_mean_and_bounds() -> None:
    g = cohort(50, missing=0.1)
    groups = chromosome_groups(snp_table())
    fit = fit_pca(pack(g), len(CHROM), groups, 0.99, max_components=2, block_rows=16)
    x = g.double().numpy()
    obs = np.where(x >= 0, x, np.nan)
    mean = np.nanmean(obs, 0)
    assert np.allclose(fit.mean.numpy(), mean)
    imputed = np.where(x >= 0, x, mean)
    for c, idx in enumerate(groups):
        k, recon, _, _ = numpy_reference(imputed[:, idx], 0.99)
        assert k > 2 and fit.n_components[c] == 2  # max_components caps it
        k2, recon2, _, _ = numpy_reference(imputed[:, idx], 1e-9)  # leading component only
        w = fit.components[c]
        xc = imputed[:, idx] - mean[idx]
        lead = xc @ w[:1].numpy().T @ w[:1].numpy()
        assert np.allclose(lead, recon2, atol=1e-9)


def test_n_kept_rules() -> None:
    lam = torch.tensor([5.0, 3.0, 1.0, 1.0, 0.0], dtype=torch.float64)
    assert n_kept(lam, 0.5) == 1  # 5/10
    assert n_kept(lam, 0.51) == 2
    assert n_kept(lam, 0.8) == 2  # exactly reached
    assert n_kept(lam, 1.0) == 4  # never the zero eigenvalue
    assert n_kept(lam, 1.0, max_components=3) == 3
    assert n_kept(torch.zeros(3, dtype=torch.float64), 0.9) == 0


# ------------------------------------------------------------------------------------------
# the Gaussian diffusion
# ------------------------------------------------------------------------------------------


def test_forward_closed_form_matches_markov_chain() -> None:
    t_max, b0, b1 = 40, 1e-3, 0.05
    abar = alphas_bar(t_max, b0, b1)
    betas = np.linspace(b0, b1, t_max)
    prod = 1.0
    for t in range(1, t_max + 1):  # the product, step by step
        prod *= 1 - betas[t - 1]
        assert abar[t].item() == pytest.approx(prod, rel=1e-13)
    # iterate x_t = sqrt(1 - beta_t) x_{t-1} + sqrt(beta_t) eps from a fixed x0
    g = torch.Generator().manual_seed(0)
    x0 = 1.7
    x = torch.full((200_000,), x0, dtype=torch.float64)
    for t in range(1, t_max + 1):
        x = math.sqrt(1 - betas[t - 1]) * x + math.sqrt(betas[t - 1]) * torch.randn(
            x.shape, generator=g, dtype=torch.float64)  # fmt: skip
    a = abar[t_max].item()
    se = math.sqrt((1 - a) / x.numel())
    assert abs(x.mean().item() - math.sqrt(a) * x0) < 5 * se
    assert x.var().item() == pytest.approx(1 - a, rel=0.02)


def test_reverse_coefficients_are_ddpm_posterior() -> None:
    abar = alphas_bar(100, 1e-4, 0.02).tolist()
    for t in (1, 2, 50, 100):
        beta = 1 - abar[t] / abar[t - 1]
        c_x0, c_zt, var = reverse_coefficients(abar[t], abar[t - 1], "posterior")
        # Ho et al. eq. 7: mu~ coefficients and beta~
        assert c_x0 == pytest.approx(math.sqrt(abar[t - 1]) * beta / (1 - abar[t]))
        assert c_zt == pytest.approx(math.sqrt(1 - beta) * (1 - abar[t - 1]) / (1 - abar[t]))
        assert var == pytest.approx((1 - abar[t - 1]) / (1 - abar[t]) * beta)
        assert reverse_coefficients(abar[t], abar[t - 1], "beta")[2] == pytest.approx(beta)
        # with x0_hat from eps this is 1/sqrt(alpha_t) (z_t - beta_t / sqrt(1 - abar_t) eps)
        z, eps = 0.3, -1.1
        x0 = (z - math.sqrt(1 - abar[t]) * eps) / math.sqrt(abar[t])
        ho = (z - beta / math.sqrt(1 - abar[t]) * eps) / math.sqrt(1 - beta)
        assert c_x0 * x0 + c_zt * z == pytest.approx(ho)
    # a strided step keeps the marginals: z_t ~ q(z_t | x0) -> z_s ~ q(z_s | x0) exactly
    t, s, x0 = 80, 30, 0.8
    c_x0, c_zt, var = reverse_coefficients(abar[t], abar[s], "posterior")
    mean = c_x0 * x0 + c_zt * math.sqrt(abar[t]) * x0
    assert mean == pytest.approx(math.sqrt(abar[s]) * x0)
    assert c_zt**2 * (1 - abar[t]) + var == pytest.approx(1 - abar[s])


def test_timestep_grid() -> None:
    assert timestep_grid(5, None) == [5, 4, 3, 2, 1, 0]
    assert timestep_grid(5, 0) == timestep_grid(5, 9) == [5, 4, 3, 2, 1, 0]
    assert timestep_grid(1500, 1) == [1500, 0]
    grid = timestep_grid(1500, 50)
    assert len(grid) == 51 and grid[0] == 1500 and grid[-2:] == [1, 0]
    assert all(a > b for a, b in zip(grid, grid[1:], strict=False))
    with pytest.raises(ValueError):
        timestep_grid(5, -1)


# ------------------------------------------------------------------------------------------
# the model
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained():
    """A tiny unconditional model after 150 steps, its meta, and the loss curve."""
    g = cohort()
    packed = pack(g)
    meta = make_meta()
    model = build(meta, snp_table(), TrainingData(packed, len(CHROM)))
    losses = train_steps(model, packed, 150)
    return model, meta, losses, g


def test_loss_decreases(trained) -> None:
    _, _, losses, _ = trained
    assert all(math.isfinite(v) for v in losses)
    assert np.mean(losses[-20:]) < 0.7 * np.mean(losses[:10])


def test_build_records_fitted_and_encodes(trained) -> None:
    model, meta, _, g = trained
    fitted = meta["fitted"]
    json.dumps(fitted)
    assert fitted["pca_chromosomes"] == ["1", "2"]
    assert fitted["pca_components"] == [c[0] for c in model._chunks]
    assert model.n_components == sum(fitted["pca_components"]) and model.n_snps == len(CHROM)
    z = model.encode(g)
    assert z.dtype == torch.float32 and z.shape == (len(g), model.n_components)
    assert torch.allclose(z.std(0), torch.ones(model.n_components), atol=1e-4)  # standardised
    all_missing = torch.full((1, len(CHROM)), -1, dtype=torch.int8)
    assert torch.allclose(model.encode(all_missing), torch.zeros(1, model.n_components))
    # back-projection of the training scores: at least 90 % of the variance recovered
    d = model.dosages(z)
    ok = g >= 0
    resid = ((d - g.float())[ok] ** 2).sum()
    total = ((g.float() - model.snp_mean)[ok] ** 2).sum()
    assert resid < 0.1 * total


def test_sample_valid_deterministic_and_batch_split_invariant(trained) -> None:
    model, _, _, _ = trained
    a = model.sample(10, seed=5)
    assert a.dtype == torch.int8 and a.shape == (10, len(CHROM))
    assert set(a.unique().tolist()) <= {0, 1, 2}
    b = torch.cat([model.sample(4, seed=5), model.sample(6, seed=5, row_offset=4)])
    assert torch.equal(a, b)
    assert torch.equal(model.sample(10, seed=5), a)
    assert not torch.equal(model.sample(10, seed=6), a)
    short = model.sample(10, seed=5, steps=7)
    assert short.shape == a.shape and set(short.unique().tolist()) <= {0, 1, 2}
    assert torch.equal(model.sample(10, seed=5, steps=10_000), a)  # >= T: the full chain
    with pytest.raises(ValueError, match="guidance"):
        model.sample(2, guidance=1.0)
    with pytest.raises(ValueError, match="without traits"):
        model.sample(2, cond=torch.zeros(2, 2))


def test_samples_follow_the_training_data(trained) -> None:
    """After a little training the full chain gives dosages near the training cohort's: the
    samples' genotype frequencies are far closer to the data's than uniform ones."""
    model, _, _, g = trained
    s = model.sample(400, seed=1)
    ok = g >= 0
    real = torch.stack([((g == k) & ok).sum(0) / ok.sum(0) for k in range(3)], 1)
    syn = torch.stack([(s == k).float().mean(0) for k in range(3)], 1)
    tv = (real - syn).abs().sum(1).mean() / 2
    uniform_tv = (real - 1 / 3).abs().sum(1).mean() / 2
    assert tv < 0.5 * uniform_tv


def test_save_load_round_trip(trained) -> None:
    model, meta, _, _ = trained
    meta = json.loads(json.dumps(meta))  # as config.json stores it
    state = {k: v.clone() for k, v in model.state_dict().items()}
    assert {"snp_mean", "loadings", "score_sd"} <= set(state)
    loaded = build(meta, snp_table(), None)
    loaded.load_state_dict(state)
    for decode in ("softmax", "round"):
        model.config.decode = loaded.config.decode = decode
        assert torch.equal(loaded.sample(9, seed=2, steps=12), model.sample(9, seed=2, steps=12))
    model.config.decode = loaded.config.decode = "softmax"
    with pytest.raises(ValueError, match="pca_components"):
        build({**meta, "fitted": {}}, snp_table(), None)
    with pytest.raises(ValueError, match="chromosomes"):
        build(meta, snp_table(np.array(["1"] * 20 + ["3"] * 17)), None)


def test_decode_options(trained) -> None:
    model, _, _, _ = trained
    rows = torch.arange(3000)
    # round: the study's rint + clip of the back-projected dosage
    z = torch.randn(6, model.n_components, generator=torch.Generator().manual_seed(0)) * 2
    model.config.decode = "round"
    assert torch.equal(model.decode(z, rows[:6], 0),
                       torch.round(model.dosages(z)).clamp(0, 2).to(torch.int8))  # fmt: skip
    # softmax: 3,000 draws of the same dosages follow exp(-(d - k)^2 / tau)
    model.config.decode = "softmax"
    for tau in (0.1, 0.5):
        model.config.tau = tau
        zz = z[:1].expand(3000, -1).contiguous()
        d = model.dosages(zz[:1])[0]
        p = model.genotype_probs(d)  # [M, 3]
        draws = model.decode(zz, rows, seed=4)
        freq = torch.stack([(draws == k).double().mean(0) for k in range(3)], 1)
        se = torch.sqrt(p * (1 - p) / 3000)
        assert bool(((freq - p).abs() <= 5 * se + 2 / 3000).all())
        expect = torch.softmax(-((d.double()[:, None] - torch.arange(3.0)) ** 2) / tau, -1)
        assert torch.allclose(p, expect)
    # tiny tau: the draw is the rounding wherever the dosage is not near a half
    model.config.tau = 1e-4
    d = model.dosages(z)
    far = ((d - torch.round(d)).abs() < 0.45) | (d < 0) | (d > 2)
    assert torch.equal(model.decode(z, rows[:6], 0)[far],
                       torch.round(d).clamp(0, 2).to(torch.int8)[far])  # fmt: skip
    model.config.tau = 0.1


def test_conditional_path() -> None:
    g = cohort(48, seed=2)
    packed = pack(g)
    cond = random_cond(48)
    meta = make_meta(TRAITS, reverse_var="beta", standardize=False)
    model = build(meta, snp_table(), TrainingData(packed, len(CHROM), cond))
    losses = train_steps(model, packed, 5, cond)
    assert all(math.isfinite(v) for v in losses)
    c = random_cond(6, seed=1)
    a = model.sample(6, c, seed=1, steps=8)
    assert a.shape == (6, len(CHROM)) and set(a.unique().tolist()) <= {0, 1, 2}
    b = torch.cat([model.sample(2, c[:2], seed=1, steps=8),
                   model.sample(4, c[2:], seed=1, steps=8, row_offset=2)])  # fmt: skip
    assert torch.equal(a, b)
    # the condition reaches the noise prediction
    z = torch.zeros(2, model.n_components)
    t = torch.full((2,), 10)
    two = torch.tensor([[1.0, 0.0], [-1.0, 2.0]])
    feats = model._cond(two, 2, torch.device("cpu"))
    assert not torch.allclose(model.net(z, t, feats)[0], model.net(z, t, feats)[1])
    with pytest.raises(ValueError, match="cond"):
        model.sample(2, None)
    with pytest.raises(ValueError, match="cond"):
        model.loss(packed[:4], torch.arange(4), torch.zeros(4, 3))


def test_config_validation_and_registry() -> None:
    assert MODEL_CONFIGS["pca-ddpm"] is Config and model_config_class("pca-ddpm") is Config
    for name, preset in PRESETS.items():
        assert name.startswith("study:") and preset["model"] == "pca-ddpm"
        assert presets()[name] == preset
        cfg = Config(**preset["model_config"])
        values = dataclasses.asdict(cfg).values()
        assert all(isinstance(v, int | float | str | bool) for v in values)
    assert PRESETS["study:pca-ddpm"]["model_config"]["timesteps"] == 1500
    packed = pack(cohort(20))
    data = TrainingData(packed, len(CHROM))
    for bad in ({"backbone": "patch"}, {"decode": "nearest"}, {"hidden": "64"},
                {"timesteps": 5000}, {"variance": 1.5}, {"tau": 0.0}, {"widths": "1,2"}):
        with pytest.raises(ValueError):
            build(make_meta(**bad), snp_table(), data)


def test_monomorphic_chromosome_keeps_its_mean() -> None:
    """A chromosome with no variation keeps no component and decodes to its constant."""
    g = cohort(30, missing=0.0)
    g[:, 20:] = 2
    meta = make_meta()
    model = build(meta, snp_table(), TrainingData(pack(g), len(CHROM)))
    assert meta["fitted"]["pca_components"][1] == 0
    s = model.sample(5, seed=0, steps=3)
    assert bool((s[:, 20:] == 2).all())
    assert unpack(pack(s), len(CHROM)).shape == s.shape
