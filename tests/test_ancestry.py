"""Ancestry conditioning: the PC mixture, training on PCs, drawing them at sampling time."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import two_chromosome_snps, write_phased_vcf
from safetensors.numpy import load_file

from genofast import read_plink, write_plink
from genofast.ancestry import (
    ANCESTRY_FILE,
    Mixture,
    choose_mixture,
    fill_ancestry,
    fit_ancestry,
    fit_mixture,
    load_ancestry,
)
from genofast.cli import main
from genofast.io import read_pheno
from genofast.train import TrainConfig, Trainer

N, M = 96, 80
TINY = ["patch_size=8", "token_dim=4", "width=32", "depth=1", "n_heads=4", "time_freq_dim=32"]
FAST = ["batch_size=16", "max_steps=4", "warmup_steps=1", "eval_every=4", "eval_samples=8",
        "eval_steps=3", "val_fraction=0.25"]


def _three_clusters(n: int = 900, seed: int = 0) -> tuple[np.ndarray, Mixture]:
    true = Mixture(np.array([0.5, 0.3, 0.2]), np.array([[0.0, 0.0], [6.0, 0.0], [0.0, 6.0]]),
                   np.array([[[1.0, 0.5], [0.5, 1.0]], np.eye(2) * 0.5, np.eye(2) * 2.0]))
    return true.draw(n, seed), true


def test_mixture_recovers_three_clusters() -> None:
    x, true = _three_clusters()
    mix = choose_mixture(x, seed=1)
    assert len(mix.weights) == 3  # BIC
    order = np.argsort([np.linalg.norm(mu - true.means, axis=1).argmin() for mu in mix.means])
    np.testing.assert_allclose(mix.weights[order], true.weights, atol=0.04)
    np.testing.assert_allclose(mix.means[order], true.means, atol=0.25)
    np.testing.assert_allclose(mix.covs[order], true.covs, atol=0.35)
    # EM climbs to at least the generating parameters' likelihood
    assert fit_mixture(x, 3, seed=1)[1] >= true.posterior(x)[1] - 1e-6
    # log_density against scipy's multivariate normal
    from scipy.stats import multivariate_normal

    want = np.log(true.weights[1]) + multivariate_normal(true.means[1], true.covs[1]).logpdf(x)
    np.testing.assert_allclose(true.log_density(x)[:, 1], want, rtol=1e-10)
    # the total log-likelihood against scipy's mixture density
    dens = sum(w * multivariate_normal(mu, c).pdf(x)
               for w, mu, c in zip(true.weights, true.means, true.covs, strict=True))
    assert true.posterior(x)[1] == pytest.approx(np.log(dens).sum(), rel=1e-10)


def test_mixture_draws_are_seeded_and_follow_the_weights() -> None:
    _, true = _three_clusters()
    a, b = true.draw(20000, 5), true.draw(20000, 5)
    assert np.array_equal(a, b) and not np.array_equal(a, true.draw(20000, 6))
    near = np.linalg.norm(a[:, None] - true.means[None], axis=2).argmin(1)
    np.testing.assert_allclose(np.bincount(near) / len(a), true.weights, atol=0.02)


@pytest.fixture(scope="module")
def two_pops(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """96 people of two populations (48 each) with very different allele frequencies."""
    rng = np.random.default_rng(0)
    p = np.stack([rng.uniform(0.05, 0.5, M), rng.uniform(0.5, 0.95, M)])
    pop = np.repeat([0, 1], N // 2)
    g = (rng.random((N, 2, M)) < p[pop][:, None, :]).sum(1).astype(np.int8)
    snps = two_chromosome_snps(M)
    prefix = tmp_path_factory.mktemp("pops") / "pops"
    write_plink(prefix, torch.from_numpy(g), snps)
    fam = read_plink(prefix).samples
    rows = enumerate(zip(fam.fid, fam.iid, strict=True))
    lines = ["FID IID PC1 height"] + [f"{f} {i} 0.5 {170 + k}" for k, (f, i) in rows]
    (prefix.parent / "clash.pheno").write_text("\n".join(lines) + "\n")
    return prefix


def test_pc1_separates_the_populations(two_pops: Path) -> None:
    anc = fit_ancestry(read_plink(two_pops).unpack(), 2)
    side = anc.pca.scores[:, 0] > 0
    assert len(set(side[: N // 2])) == 1 and len(set(side[N // 2:])) == 1
    assert side[0] != side[-1]
    assert len(anc.mixture.weights) >= 2  # two clusters on PC1


def test_train_and_sample_with_ancestry(two_pops: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    argv = ["train", "--bfile", str(two_pops), "--ancestry", "2", "--out", str(run), "--quiet",
            "--device", "cpu"] + [f"--set={s}" for s in TINY + FAST]
    assert main(argv) == 0
    meta = json.loads((run / "config.json").read_text())
    assert [s["name"] for s in meta["traits"]] == ["PC1", "PC2"]
    assert all(s["ancestry"] and s["kind"] == "continuous" for s in meta["traits"])
    assert meta["ancestry"]["k"] == 2 and meta["ancestry"]["components"] >= 1
    # the run keeps loadings and the mixture, no individual's scores
    saved = load_file(run / ANCESTRY_FILE)
    assert all(N * 3 // 4 not in v.shape for v in saved.values())
    assert saved["loadings"].shape == (M, 2)

    # unconditional sampling draws the PCs: written beside the .fam, the same for any batch
    out_a, out_b = tmp_path / "a", tmp_path / "b"
    for out, bs in ((out_a, "7"), (out_b, "64")):
        assert main(["sample", str(run), "--n", "30", "--out", str(out), "--steps", "3",
                     "--seed", "4", "--batch-size", bs, "--device", "cpu", "--quiet"]) == 0
    assert (tmp_path / "a.bed").read_bytes() == (tmp_path / "b.bed").read_bytes()
    ph = read_pheno(tmp_path / "a.pheno")
    assert list(ph.names) == ["PC1", "PC2"]
    want = load_ancestry(run).draw(30, 4)
    np.testing.assert_allclose(np.stack([ph.column("PC1"), ph.column("PC2")], 1), want,
                               rtol=1e-4, atol=1e-6)
    # a PC given is held, the other drawn
    assert main(["sample", str(run), "--n", "5", "--out", str(tmp_path / "c"), "--steps", "3",
                 "--cond", "PC1=0.25", "--device", "cpu", "--quiet"]) == 0
    ph = read_pheno(tmp_path / "c.pheno")
    assert list(ph.names) == ["PC1", "PC2"]
    np.testing.assert_allclose(ph.column("PC1"), 0.25, rtol=1e-5)
    np.testing.assert_allclose(ph.column("PC2"), load_ancestry(run).draw(5, 0)[:, 1], rtol=1e-4)
    # calibration samples at drawn PCs too
    assert main(["calibrate", str(run), "--n", "16", "--iters", "1", "--steps", "3",
                 "--device", "cpu", "--quiet"]) == 0
    assert (run / "best" / "calibration.safetensors").is_file()


def test_resume_rebuilds_the_same_conditions(two_pops: Path, tmp_path: Path) -> None:
    from genofast.train import parse_sets

    run = tmp_path / "run"
    _, backbone, _ = parse_sets(TINY)
    cfg = TrainConfig(batch_size=16, max_steps=4, warmup_steps=1, eval_every=4, eval_samples=8,
                      eval_steps=3, val_fraction=0.25, device="cpu", ancestry=2)
    first = Trainer(two_pops, run, cfg, backbone, progress=False)
    first.fit(stop_step=2)
    again = Trainer(two_pops, run, TrainConfig(device="cpu"), resume=True, progress=False)
    assert torch.equal(first.cond, again.cond)
    assert again.fit()["step"] == 4


def test_ancestry_errors_are_clear(two_pops: Path, tmp_path: Path, capsys) -> None:
    base = ["train", "--bfile", str(two_pops), "--out", str(tmp_path / "r"), "--quiet",
            "--device", "cpu"] + [f"--set={s}" for s in TINY + FAST]
    assert main(base + ["--ancestry", "2", "--pheno", str(two_pops.parent / "clash.pheno"),
                        "--pheno-name", "PC1"]) == 2
    assert "rename the trait(s) ['PC1']" in capsys.readouterr().err
    assert main(base + ["--ancestry", "-1"]) == 2
    assert "--ancestry takes K >= 1" in capsys.readouterr().err
    assert main(base + ["--resume", "--ancestry", "2"]) == 2
    assert "drop --set" in capsys.readouterr().err
    nan = np.full((3, 1), np.nan, np.float32)
    with pytest.raises(FileNotFoundError, match="trained with --ancestry"):
        fill_ancestry(nan, [{"name": "PC1", "ancestry": True, "mean": 0, "sd": 1}],
                      tmp_path, 0)


@pytest.fixture(scope="module")
def two_pops_phased(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A phased VCF of the two populations: each person's two haplotypes from their own."""
    rng = np.random.default_rng(1)
    p = np.stack([rng.uniform(0.05, 0.5, M), rng.uniform(0.5, 0.95, M)])
    pop = np.repeat([0, 1], N)  # haplotype rows: people 0..47 of population 0, the rest 1
    hap = (rng.random((2 * N, M)) < p[pop]).astype(np.uint8)
    path = tmp_path_factory.mktemp("pops_phased") / "pops.vcf"
    write_phased_vcf(path, hap, two_chromosome_snps(M))
    return path


def test_phased_pairs_of_pcs_are_drawn_together(two_pops_phased: Path, tmp_path: Path) -> None:
    """A phased run's mixture is of people's two haplotypes' PCs side by side, so a drawn person
    has both haplotypes in one population (independent draws would mix them half the time);
    the pairs are rows 2i, 2i+1 of a draw; given PCs are refused."""
    from genofast.io import read_vcf

    hap = read_vcf(two_pops_phased).haplotypes.unpack()
    anc, alone = fit_ancestry(hap, 2, paired=True), fit_ancestry(hap, 2)
    assert anc.paired and not alone.paired
    c = len(anc.mixture.weights)
    assert anc.pairs.shape == (c, c) and np.allclose(anc.pairs, anc.pairs.T)
    assert anc.pairs.sum() == pytest.approx(1) and (anc.pairs >= 0).all()
    np.testing.assert_array_equal(anc.mixture.means, alone.mixture.means)  # the same mixture
    np.testing.assert_allclose(anc.pairs.sum(1), anc.mixture.weights, atol=0.02)
    draw = anc.draw(2000, 3)
    assert draw.shape == (2000, 2) and np.array_equal(anc.draw(2000, 3), draw)
    np.testing.assert_array_equal(anc.draw(7, 3), anc.draw(8, 3)[:7])  # odd n: half a pair
    side = np.sign(draw[:, 0])
    assert (side[0::2] == side[1::2]).mean() > 0.95
    assert 0.3 < (side > 0).mean() < 0.7  # both populations drawn
    side = np.sign(alone.draw(2000, 3)[:, 0])
    assert (side[0::2] == side[1::2]).mean() < 0.7  # unpaired draws mix populations
    with pytest.raises(ValueError, match="do not make pairs"):
        fit_ancestry(hap[:-1], 2, paired=True)

    run = tmp_path / "run"
    argv = ["train", "--vcf", str(two_pops_phased), "--ancestry", "2", "--out", str(run),
            "--quiet", "--device", "cpu"] + [f"--set={s}" for s in TINY + FAST]
    assert main(argv) == 0
    assert load_ancestry(run).paired
    for out, bs in (("a", "5"), ("b", "64")):
        assert main(["sample", str(run), "--n", "9", "--out", str(tmp_path / out), "--steps",
                     "3", "--seed", "4", "--batch-size", bs, "--device", "cpu", "--quiet"]) == 0
    assert (tmp_path / "a.bed").read_bytes() == (tmp_path / "b.bed").read_bytes()
    ph = read_pheno(tmp_path / "a.pheno")
    assert list(ph.names) == ["PC1_h1", "PC2_h1", "PC1_h2", "PC2_h2"]
    want = load_ancestry(run).draw(18, 4)
    np.testing.assert_allclose(ph.values, np.concatenate([want[0::2], want[1::2]], 1),
                               rtol=1e-4, atol=1e-5)
    assert main(["sample", str(run), "--n", "3", "--out", str(tmp_path / "c"), "--cond",
                 "PC1=0.2", "--device", "cpu", "--quiet"]) == 2
    assert main(["calibrate", str(run), "--n", "16", "--iters", "1", "--steps", "3",
                 "--device", "cpu", "--quiet"]) == 0
