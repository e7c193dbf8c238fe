"""The independent-SNP baseline: fitted frequencies are the counts, samples follow them; as the
trainer's model, optionally per phenotype bin."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genofast.io.tables import SnpTable
from genofast.models import IndependentSNPs, independent
from genofast.models.base import TrainingData
from genofast.ops import pack


def test_fit_counts_genotypes_and_leaves_missing_out():
    g = torch.tensor([[0, 1, 2, -1], [0, 2, 2, -1], [1, 2, -1, -1]], dtype=torch.int8)
    model = IndependentSNPs.fit(pack(g), 4)
    counts = np.array([[2, 1, 0], [0, 1, 2], [0, 0, 2], [1, 1, 1]])
    expected = counts / counts.sum(1, keepdims=True)
    np.testing.assert_allclose(model.genotype_freq, expected)


def test_samples_follow_the_frequencies_and_keep_rare_genotypes():
    freq = np.array([[0.25, 0.5, 0.25], [0.999, 0.0, 0.001], [0.0, 0.0, 1.0]])
    model = IndependentSNPs(freq)
    g = model.sample(200_000, generator=torch.Generator().manual_seed(0))
    assert g.dtype == torch.int8 and g.shape == (200_000, 3)
    observed = np.stack([(g == k).double().mean(0).numpy() for k in range(3)], axis=1)
    # binomial standard error at n = 200,000 is at most 0.0011
    np.testing.assert_allclose(observed, freq, atol=0.005)
    assert 100 < int((g[:, 1] == 2).sum()) < 300  # 0.001 x 200,000 = 200 expected
    assert int((g[:, 1] == 1).sum()) == 0 and bool((g[:, 2] == 2).all())


def test_rejects_bad_frequencies():
    with pytest.raises(ValueError, match="summing to 1"):
        IndependentSNPs(np.array([[0.5, 0.5, 0.5]]))
    with pytest.raises(ValueError, match=r"\[M, 3\]"):
        IndependentSNPs(np.ones((3, 2)) / 2)


# --- the trainer's model "independent" ----------------------------------------------------------

M = 7


@pytest.fixture(autouse=True)
def one_thread():
    """Small tensors: one thread is faster than several on a shared machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def meta(traits: list | None = None, **model) -> dict:
    return {"train": {"model": "independent", "seed": 0}, "model": model,
            "traits": traits or [], "fitted": {}, "n_snps": M}


def freqs(g: torch.Tensor) -> np.ndarray:
    return np.stack([(g == k).double().mean(0).numpy() for k in range(3)], 1)


def cohort(n: int, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    g = rng.binomial(2, rng.uniform(0.02, 0.5, M), size=(n, M)).astype(np.int8)
    return torch.from_numpy(g)


def test_unconditional_model_is_the_fitted_frequencies_and_trains_nothing():
    g = cohort(300)
    g[::7, 3] = -1
    model = independent.build(meta(), SnpTable.synthetic(M), TrainingData(pack(g), M))
    assert model.n_snps == M and model.n_bins == 1 and model.optim_groups() == []
    np.testing.assert_allclose(model.pooled.numpy(), IndependentSNPs.fit(pack(g), M).genotype_freq)
    np.testing.assert_allclose(model.freq[0].numpy(), model.pooled.numpy())
    loss = model.loss(pack(g[:8]), torch.arange(8), seed=0, offset=1)
    assert loss.shape == () and float(loss) == 0.0 and not loss.requires_grad
    with pytest.raises(ValueError, match="guidance"):
        model.sample(2, guidance=0.5)


def test_sampled_frequencies_match_the_fitted_ones():
    model = independent.build(meta(), SnpTable.synthetic(M), TrainingData(pack(cohort(300)), M))
    n = 40_000
    s = model.sample(n, seed=3)
    assert s.dtype == torch.int8 and s.shape == (n, M)
    p = model.pooled.numpy()
    sd = np.sqrt(p * (1 - p) / n)  # binomial SD of a sampled frequency
    assert (np.abs(freqs(s) - p) <= 5 * sd + 1e-12).all()
    # a seed gives the same cohort whatever the batch split, another seed another one
    assert torch.equal(s[:10], torch.cat([model.sample(4, seed=3),
                                          model.sample(6, seed=3, row_offset=4)]))
    assert not torch.equal(s[:10], model.sample(10, seed=4))


def test_continuous_trait_bins_shift_the_frequencies_of_an_associated_snp():
    """SNP 0 is 2 for the top fifth of the trait, 0 below; SNP 1 does not depend on it."""
    n = 1000
    gen = torch.Generator().manual_seed(0)
    height = torch.randn(n, generator=gen)
    g = cohort(n)
    top = height > torch.quantile(height, 0.8)
    g[:, 0] = torch.where(top, 2, 0).to(torch.int8)
    cond = height[:, None].clone()
    cond[:50, 0] = float("nan")  # missing trait: counted in the pooled frequencies only
    traits = [{"name": "height", "kind": "continuous", "mean": 0.0, "sd": 1.0}]
    model = independent.build(meta(traits, bins=5), SnpTable.synthetic(M),
                              TrainingData(pack(g), M, cond))  # fmt: skip
    assert model.n_bins == 5 and model.edges.shape == (4,)
    np.testing.assert_allclose(model.edges.numpy(),
                               np.quantile(height[50:].double().numpy(), [0.2, 0.4, 0.6, 0.8]))
    assert model.freq[4, 0, 2] > 0.9 and model.freq[:3, 0, 2].max() == 0.0
    np.testing.assert_allclose(model.pooled.numpy(), freqs(g), atol=1e-12)
    k = 4000
    hi = model.sample(k, torch.full((k, 1), 2.5), seed=1)
    lo = model.sample(k, torch.full((k, 1), -2.5), seed=1)
    assert (hi[:, 0] == 2).double().mean() > 0.9 and (lo[:, 0] == 2).sum() == 0
    # the unrelated SNP keeps its bin frequencies: within 5 binomial SDs
    for s, b in ((hi, 4), (lo, 0)):
        p = model.freq[b, 1].numpy()
        assert (np.abs(freqs(s)[1] - p) <= 5 * np.sqrt(p * (1 - p) / k) + 1e-12).all()
    # a missing trait, or no condition, samples the pooled frequencies
    pooled = model.pooled.numpy()
    for c in (torch.full((k, 1), float("nan")), None):
        f = freqs(model.sample(k, c, seed=2))[0, 2]
        assert abs(f - pooled[0, 2]) < 5 * np.sqrt(pooled[0, 2] * (1 - pooled[0, 2]) / k)


def test_categorical_bin_trait_gets_one_bin_per_level_and_survives_a_checkpoint():
    n = 600
    gen = torch.Generator().manual_seed(1)
    breed = torch.randint(0, 3, (n,), generator=gen)
    g = cohort(n, seed=1)
    g[:, 2] = breed.to(torch.int8)
    traits = [{"name": "height", "kind": "continuous", "mean": 0.0, "sd": 1.0},
              {"name": "breed", "kind": "categorical", "n_levels": 3, "levels": ["a", "b", "c"]}]
    cond = torch.stack([torch.randn(n, generator=gen), breed.float()], 1)
    m = meta(traits, bin_trait="breed")
    model = independent.build(m, SnpTable.synthetic(M), TrainingData(pack(g), M, cond))
    assert model.n_bins == 3 and model.edges.numel() == 0
    for level in range(3):
        np.testing.assert_allclose(model.freq[level].numpy(), freqs(g[breed == level]))
        assert model.freq[level, 2, level] == 1.0
    loaded = independent.build(m, SnpTable.synthetic(M), None)
    loaded.load_state_dict(model.state_dict())
    c = torch.tensor([[0.0, 2.0], [0.3, float("nan")], [1.0, 0.0]]).repeat(5, 1)
    assert torch.equal(model.sample(15, c, seed=9), loaded.sample(15, c, seed=9))
    assert (loaded.sample(15, c, seed=9)[::3, 2] == 2).all()
    with pytest.raises(ValueError, match="integers 0..2"):
        model.sample(1, torch.tensor([[0.0, 3.0]]))
    with pytest.raises(ValueError, match="not a trait"):
        independent.build(meta(traits, bin_trait="weight"), SnpTable.synthetic(M), None)
