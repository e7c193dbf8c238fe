"""The independent-SNP baseline: fitted frequencies are the counts, samples follow them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genofast.models import IndependentSNPs
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
