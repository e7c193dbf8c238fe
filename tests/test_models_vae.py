"""The study's VAE on the model protocol: layers, loss, sampling, checkpoints, conditioning, and
the categorical decode keeping the genotype frequencies that the argmax decode distorts."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from genofast.io.tables import SnpTable
from genofast.models import vae
from genofast.models.backbone import BackboneConfig
from genofast.models.base import TrainingData, parse_ints
from genofast.models.diffusion import genotype_frequencies
from genofast.ops import pack

M = 37  # odd on purpose: not a multiple of 4 (packing) nor of the patch size
TINY_MLP = {"latent": 4, "widths": "32,16"}
TINY_BACKBONE = dataclasses.asdict(
    BackboneConfig(patch_size=8, token_dim=4, width=32, depth=1, n_heads=2, mlp_ratio=2.0,
                   time_freq_dim=16)  # fmt: skip
)
TRAITS = [
    {"name": "height", "kind": "continuous", "mean": 0.0, "sd": 1.0},
    {"name": "breed", "kind": "categorical", "n_levels": 3, "levels": ["a", "b", "c"]},
]


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny matrices: one thread is faster than several on a shared machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def snp_table(m: int = M) -> SnpTable:
    """Two chromosomes (20 + rest SNPs), 1 kbp apart."""
    chrom = np.where(np.arange(m) < 20, "1", "2")
    return SnpTable(chrom, [f"s{j}" for j in range(m)], np.zeros(m), np.arange(m) * 1000 + 1,
                    np.full(m, "A"), np.full(m, "G"))  # fmt: skip


def make_meta(model: dict | None = None, traits: list | None = None, seed: int = 0,
              m: int = M) -> dict:
    return {"train": {"model": "vae", "seed": seed, "lr": 3e-3, "batch_size": 64},
            "model": dataclasses.asdict(vae.Config(**(model or TINY_MLP))),
            "backbone": TINY_BACKBONE, "traits": traits or [], "fitted": {}, "n_snps": m}


def hwe_cohort(n: int, m: int = M, seed: int = 0, lo: float = 0.08, hi: float = 0.25
               ) -> torch.Tensor:
    """Independent SNPs in Hardy-Weinberg proportions, alt frequency uniform in [lo, hi]: the
    heterozygote is a minority genotype and the alt homozygote a rare one."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(lo, hi, m)
    return torch.from_numpy(rng.binomial(2, p, size=(n, m)).astype(np.int8))


def train(model: torch.nn.Module, g: torch.Tensor, steps: int, cond: torch.Tensor | None = None,
          batch: int = 64, lr: float = 3e-3) -> list[float]:
    """The trainer's loop by hand: one Adam per optim group; zero, backward, step."""
    packed = pack(g)
    opts = {gr.name: torch.optim.Adam(gr.params, lr=lr) for gr in model.optim_groups()}
    rng = np.random.default_rng(1)
    losses = []
    for step in range(1, steps + 1):
        rows = torch.from_numpy(rng.choice(g.shape[0], batch, replace=False))
        model.train()
        out = model.loss(packed[rows], rows, None if cond is None else cond[rows], seed=0,
                         offset=step)  # fmt: skip
        out = out if isinstance(out, dict) else {"model": out}
        for name, loss in out.items():
            for o in opts.values():
                o.zero_grad(set_to_none=True)
            loss.backward()
            opts[name].step()
        losses.append(float(sum(v.detach() for v in out.values())))
    return losses


def freqs(g: torch.Tensor) -> np.ndarray:
    """Genotype frequencies [M, 3] of int8 genotypes."""
    return np.stack([(g == k).double().mean(0).numpy() for k in range(3)], 1)


def test_widths_parse_and_three_equal_widths_make_a_residual_block():
    assert parse_ints(" 64, 32,32,32 ,16", "widths") == [64, 32, 32, 32, 16]
    assert parse_ints("", "widths") == []
    with pytest.raises(ValueError, match="comma-separated"):
        parse_ints("64;32", "widths")
    with pytest.raises(ValueError, match="positive"):
        parse_ints("64,0", "widths")
    net, out = vae.build_mlp(10, [64, 32, 32, 32, 16], 0.05)
    blocks = [m for m in net if isinstance(m, vae.ResidualBlock)]
    linears = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    # 10->64, 64->32 (into the block), the block's two 32->32, 32->16
    assert len(blocks) == 1 and out == 16
    assert [(lin.in_features, lin.out_features) for lin in linears] == [
        (10, 64), (64, 32), (32, 32), (32, 32), (32, 16)]
    # the decoder mirrors the encoder: latent -> 16 -> 32 (block) -> 64 -> 3M
    model = vae.build(make_meta({"latent": 4, "widths": "64,32,32,32,16"}), snp_table(), None)
    dec = [(m.in_features, m.out_features) for m in model.decoder.modules()
           if isinstance(m, torch.nn.Linear)]
    assert dec == [(4, 16), (16, 32), (32, 32), (32, 32), (32, 64), (64, 3 * M)]
    x = torch.randn(5, 10)
    net.eval()
    assert net(x).shape == (5, 16)


def test_missing_genotypes_are_zero_input_and_out_of_the_loss():
    x = torch.tensor([[0, 2, -1], [-1, 1, 0]], dtype=torch.int8)
    oh = vae.one_hot_input(x).view(2, 3, 3)
    assert oh[0, 2].sum() == 0 and oh[1, 0].sum() == 0
    assert oh[0, 1].tolist() == [0, 0, 1] and oh[1, 1].tolist() == [0, 1, 0]
    logits = torch.randn(2, 3, 3)
    other = logits.clone()
    other[0, 2] = torch.tensor([50.0, -50.0, 3.0])  # changes only missing positions
    other[1, 0] = torch.tensor([-9.0, 9.0, 0.0])
    ref = vae.reconstruction_nll(logits, x)
    assert torch.allclose(ref, vae.reconstruction_nll(other, x))
    ce = torch.nn.functional.cross_entropy(logits[0, :2], torch.tensor([0, 2]), reduction="sum")
    assert torch.allclose(ref[0], ce)
    # a batch with missing genotypes trains
    g = hwe_cohort(64)
    g[::3, ::5] = -1
    model = vae.build(make_meta(), snp_table(), None)
    loss = model.loss(pack(g), torch.arange(64), seed=0, offset=1)
    assert torch.isfinite(loss)
    loss.backward()


def test_kl_warmup_ramps_beta():
    model = vae.build(make_meta({**TINY_MLP, "beta": 2.0, "kl_warmup_steps": 100}), snp_table(),
                      None)  # fmt: skip
    assert model.kl_weight(0) == 0.0
    assert model.kl_weight(50) == pytest.approx(1.0)
    assert model.kl_weight(100) == model.kl_weight(5000) == 2.0
    assert vae.build(make_meta({**TINY_MLP, "beta": 0.5}), snp_table(), None).kl_weight(1) == 0.5


@pytest.mark.parametrize("backbone", ["mlp", "patch"])
def test_loss_goes_down_and_samples_are_genotypes(backbone):
    g = hwe_cohort(64)
    model = vae.build(make_meta({**TINY_MLP, "backbone": backbone}), snp_table(), None)
    losses = train(model, g, 60, batch=32, lr=3e-3 if backbone == "mlp" else 1e-3)
    first, last = np.mean(losses[:5]), np.mean(losses[-5:])
    # untrained: about M ln 3 = 40.6 nats; the frequencies alone give about 23
    assert last < first - 5, (first, last)
    for decode in vae.DECODES:
        s = model.sample(11, seed=3, decode=decode)
        assert s.dtype == torch.int8 and s.shape == (11, M)
        assert bool(((s >= 0) & (s <= 2)).all())
    assert model.training  # sample() restored the mode it found


@pytest.mark.parametrize("backbone", ["mlp", "patch"])
@pytest.mark.parametrize("decode", ["categorical", "argmax"])
def test_a_seed_gives_the_same_cohort_whatever_the_batch_split(backbone, decode):
    model = vae.build(make_meta({**TINY_MLP, "backbone": backbone, "decode": decode}),
                      snp_table(), None)  # fmt: skip
    train(model, hwe_cohort(64), 3, batch=16)
    whole = model.sample(10, seed=5)
    split = torch.cat([model.sample(4, seed=5), model.sample(6, seed=5, row_offset=4)])
    assert torch.equal(whole, split)
    if decode == "categorical":
        assert not torch.equal(whole, model.sample(10, seed=6))


@pytest.mark.parametrize("backbone", ["mlp", "patch", "patch+snp_features"])
def test_checkpoint_round_trip_gives_the_same_samples(backbone):
    meta = make_meta({**TINY_MLP, "backbone": backbone.split("+")[0]}, traits=TRAITS)
    meta["backbone"] = {**TINY_BACKBONE, "snp_features": backbone.endswith("snp_features")}
    g = hwe_cohort(64)
    cond = torch.stack([torch.randn(64), torch.randint(0, 3, (64,)).float()], 1)
    data = TrainingData(pack(g), M, cond)
    model = vae.build(meta, snp_table(), data)
    if backbone.endswith("snp_features"):  # the backbones read the training frequencies
        freq = genotype_frequencies(pack(g), M)
        torch.testing.assert_close(model.decoder.net.snp_logfreq, torch.log(freq + 1e-3))
    train(model, g, 5, cond=cond, batch=16)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    if backbone == "mlp":  # BatchNorm running statistics travel with the weights
        assert any(k.endswith("running_mean") for k in state)
    loaded = vae.build(meta, snp_table(), None)
    loaded.load_state_dict(state)
    c = cond[:9]
    for decode in vae.DECODES:
        assert torch.equal(model.sample(9, c, seed=2, decode=decode),
                           loaded.sample(9, c, seed=2, decode=decode))


def test_build_seeds_the_initialisation_and_checks_sizes():
    a = vae.build(make_meta(seed=4), snp_table(), None).state_dict()
    b = vae.build(make_meta(seed=4), snp_table(), None).state_dict()
    c = vae.build(make_meta(seed=5), snp_table(), None).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)
    with pytest.raises(ValueError, match="n_snps"):
        vae.build(make_meta(m=M + 1), snp_table(), None)
    with pytest.raises(ValueError, match="decode"):
        vae.build(make_meta({**TINY_MLP, "decode": "mode"}), snp_table(), None)
    with pytest.raises(ValueError, match="backbone"):
        vae.build(make_meta({**TINY_MLP, "backbone": "cnn"}), snp_table(), None)


def test_guidance_and_stray_conditions_are_rejected():
    model = vae.build(make_meta(), snp_table(), None)
    with pytest.raises(ValueError, match="guidance"):
        model.sample(3, guidance=1.0)
    with pytest.raises(ValueError, match="without traits"):
        model.sample(3, torch.zeros(3, 2))
    cmodel = vae.build(make_meta(traits=TRAITS), snp_table(), None)
    with pytest.raises(ValueError, match="breed"):
        cmodel.sample(2, torch.tensor([[0.0, 3.0], [0.0, 1.0]]))
    with pytest.raises(ValueError, match=r"\[2, 2\]"):
        cmodel.sample(2, torch.zeros(2, 1))


def test_conditional_vae_follows_its_traits():
    """SNP 0 is the breed level (0/1/2), SNP 1 is 2 when height > 0 else 0: the decoder sees the
    traits, so conditional samples must follow them; missing traits still sample."""
    n = 192
    gen = torch.Generator().manual_seed(0)
    height = torch.randn(n, generator=gen)
    breed = torch.randint(0, 3, (n,), generator=gen)
    g = hwe_cohort(n)
    g[:, 0] = breed.to(torch.int8)
    g[:, 1] = torch.where(height > 0, 2, 0).to(torch.int8)
    cond = torch.stack([height, breed.float()], 1)
    cond[::10, 1] = float("nan")  # some missing levels
    model = vae.build(make_meta(traits=TRAITS), snp_table(), TrainingData(pack(g), M, cond))
    train(model, g, 300, cond=cond, batch=64)
    k = 300
    # measured: SNP 0 at the asked level 95-99 %, SNP 1 following height 100 %; without the
    # condition each would be right about 1/3 and 1/2 of the time
    for level in range(3):
        c = torch.tensor([[1.5, float(level)]]).expand(k, 2)
        s = model.sample(k, c, seed=1)
        assert (s[:, 0] == level).double().mean() > 0.85, level
        assert (s[:, 1] == 2).double().mean() > 0.9
    low = model.sample(k, torch.tensor([[-1.5, float("nan")]]).expand(k, 2), seed=1)
    assert (low[:, 1] == 0).double().mean() > 0.9
    # no condition at all: every trait missing, breeds come out mixed
    free = model.sample(k, None, seed=1)
    assert all((free[:, 0] == lv).double().mean() > 0.1 for lv in range(3))


def test_categorical_decode_keeps_the_frequencies_that_argmax_distorts():
    """The issue's acceptance. Independent SNPs with alt frequency 8-25 %: the heterozygote
    (15-38 %) and the alt homozygote (0.6-6 %) are never the most probable genotype of a SNP,
    and with no LD the latent cannot make them so, so the argmax decode (the study's) all but
    drops them; the categorical decode of the same model must keep them."""
    g = hwe_cohort(256)
    model = vae.build(make_meta(), snp_table(), None)
    train(model, g, 300, batch=64)
    real = freqs(g)
    arg = freqs(model.sample(2000, seed=1, decode="argmax"))
    cat = freqs(model.sample(2000, seed=1, decode="categorical"))
    err_arg, err_cat = np.abs(arg - real).mean(), np.abs(cat - real).mean()
    # measured: training het 0.277, hom 0.029; argmax het 0.056, hom 0.000, error 0.168;
    # categorical het 0.272, hom 0.031, error 0.011
    assert arg[:, 2].mean() < 0.2 * real[:, 2].mean()
    assert arg[:, 1].mean() < 0.5 * real[:, 1].mean()
    assert abs(cat[:, 1].mean() - real[:, 1].mean()) < 0.03
    assert abs(cat[:, 2].mean() - real[:, 2].mean()) < 0.01
    assert err_cat < 0.03 and err_arg > 4 * err_cat
    r_arg = np.corrcoef(arg.ravel(), real.ravel())[0, 1]
    r_cat = np.corrcoef(cat.ravel(), real.ravel())[0, 1]
    assert r_cat > 0.99 and r_cat > r_arg + 0.02


def test_presets_are_valid_study_configurations():
    study = vae.PRESETS["study:vae"]
    assert study["model"] == "vae"
    assert study["train"]["batch_size"] == 256 and study["train"]["lr"] == 5e-4
    for name, preset in vae.PRESETS.items():
        cfg = vae.Config(**preset["model_config"])
        assert parse_ints(cfg.widths, "widths"), name
        assert cfg.decode == "argmax" and preset["train"]["select"] == "knn_f1"
    cfg = vae.Config(**study["model_config"])
    assert (cfg.latent, parse_ints(cfg.widths, "widths")) == (128, [1024, 512, 256])
    assert vae.MODEL_CONFIGS == {"vae": vae.Config}
    model = vae.build(make_meta({**TINY_MLP, **study["model_config"], "latent": 4,
                                 "widths": "8"}), snp_table(), None)  # fmt: skip
    (group,) = model.optim_groups()
    assert not group.clip and group.betas == (0.9, 0.999)
    assert {id(p) for p in group.params} == {id(p) for p in model.parameters()}
