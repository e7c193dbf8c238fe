"""PCA: eigenvalues and eigenvectors against `plink2 --pca` (exact mode), projection, W1."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
import torch

import genofast
from genofast.metrics.pca import fit_pca, pca_wasserstein, project

N_FIT = 600


@pytest.fixture
def plink2_pca(tmp_path, agbl4_prefix, plink2):
    """600 AGBL4 individuals, all 4053 SNPs: genotypes and plink2's eigenvalues/vectors."""
    agbl4, out = agbl4_prefix, tmp_path
    keep = out / "keep.txt"
    cohort = genofast.read_plink(agbl4, samples=slice(0, N_FIT))
    keep.write_text("".join(f"{f} {i}\n" for f, i in zip(cohort.samples.fid, cohort.samples.iid,
                                                          strict=True)))
    subprocess.run([plink2, "--bfile", str(agbl4), "--keep", str(keep), "--pca", "10",
                    "--threads", "1", "--out", str(out / "pca")], check=True,
                   capture_output=True)
    vals = np.loadtxt(out / "pca.eigenval")
    vecs = np.loadtxt(out / "pca.eigenvec", skiprows=1, usecols=range(2, 12))
    return cohort.unpack(), vals, vecs


def test_eigenvalues_match_plink2(plink2_pca) -> None:
    g, vals, vecs = plink2_pca
    for method in ("exact", "randomized"):
        fit = fit_pca(g, k=10, method=method)
        rel = np.abs(fit.eigenvalues / vals - 1)
        assert rel.max() < 0.01, (method, rel)
        # same axes: |correlation| of the scores with plink2's eigenvectors
        corr = [abs(np.corrcoef(fit.scores[:, j], vecs[:, j])[0, 1]) for j in range(10)]
        assert min(corr) > 0.999, (method, corr)
        if method == "exact":
            assert rel.max() < 1e-4  # plink2 prints 6 significant digits


def test_projection_of_the_fit_cohort_reproduces_its_scores() -> None:
    rng = np.random.default_rng(0)
    p = rng.uniform(0.1, 0.9, 500)
    pop = rng.binomial(1, 0.5, 120)
    shift = np.where(pop[:, None] == 1, 0.15, -0.15)
    g = rng.binomial(2, np.clip(p + shift, 0.01, 0.99)).astype(np.int8)
    g[rng.random(g.shape) < 0.01] = -1
    t = torch.from_numpy(g)
    fit = fit_pca(t, k=5, method="exact")
    np.testing.assert_allclose(project(fit, t), fit.scores, atol=1e-5)
    assert abs(np.corrcoef(fit.scores[:, 0], pop)[0, 1]) > 0.95  # PC1 = the two groups
    # real scores are u_k sqrt(lambda_k) with u_k unit and centred
    np.testing.assert_allclose(fit.scores.std(0) * np.sqrt(len(g)), np.sqrt(fit.eigenvalues),
                               rtol=1e-4)
    mean, per = pca_wasserstein(fit.scores, fit.scores)
    assert mean == 0.0 and len(per) == 5
    mean_shift, _ = pca_wasserstein(fit.scores, fit.scores + fit.scores.std(0))
    assert mean_shift == pytest.approx(1.0)
