"""Closed-form GWAS against `plink2 --glm` on AGBL4 genotypes and a simulated phenotype."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
import torch

import genofast
from genofast.metrics.gwas import (
    GwasResult,
    beta_correlation,
    genomic_control,
    linear_gwas,
    top_hit_recall,
)


def _write_table(path, samples, names, values) -> None:
    lines = ["FID IID " + " ".join(names)]
    for f, i, row in zip(samples.fid, samples.iid, values, strict=True):
        lines.append(f"{f} {i} " + " ".join(repr(float(v)) for v in np.atleast_1d(row)))
    path.write_text("\n".join(lines) + "\n")


def _read_glm(path) -> dict[str, np.ndarray]:
    t = np.genfromtxt(path, names=True, comments=None, dtype=None, encoding=None)
    return {k: t[k] for k in ("ID", "A1", "OBS_CT", "BETA", "SE", "T_STAT", "P")}


def test_linear_gwas_matches_plink2_glm(tmp_path, agbl4_prefix, plink2) -> None:
    cohort = genofast.read_plink(agbl4_prefix, snps=slice(0, 300), samples=slice(0, 800))
    g = cohort.unpack()
    rng = np.random.default_rng(11)
    g[torch.from_numpy(rng.random(g.shape) < 0.02)] = -1  # plink2 drops these per SNP
    prefix = tmp_path / "geno"
    genofast.write_plink(prefix, g, cohort.snps, cohort.samples)
    x = g.numpy().astype(float)
    freq = np.nanmean(np.where(x < 0, np.nan, x), 0) / 2
    causal = np.argsort(-np.minimum(freq, 1 - freq))[:3]  # the commonest SNPs
    y = rng.normal(size=len(x)) + (np.where(x[:, causal] < 0, 0, x[:, causal]) * 0.4).sum(1)
    cov = rng.normal(size=(len(x), 2))
    y += 0.8 * cov[:, 0]
    _write_table(tmp_path / "pheno.txt", cohort.samples, ["y"], y)
    _write_table(tmp_path / "covar.txt", cohort.samples, ["c1", "c2"], cov)
    base = [plink2, "--bfile", str(prefix), "--pheno", str(tmp_path / "pheno.txt"),
            "--threads", "1"]
    subprocess.run([*base, "--glm", "allow-no-covars", "--out", str(tmp_path / "g0")],
                   check=True, capture_output=True)
    subprocess.run([*base, "--covar", str(tmp_path / "covar.txt"), "--glm", "hide-covar",
                    "--out", str(tmp_path / "g1")], check=True, capture_output=True)

    for covariates, out in ((None, "g0"), (cov, "g1")):
        ours = linear_gwas(g, y, covariates)
        ref = _read_glm(tmp_path / f"{out}.y.glm.linear")
        assert (ref["ID"] == cohort.snps.sid).all()
        # plink2 reports A1 = the allele whose dosage is regressed; ours counts allele_1
        sign = np.where(ref["A1"] == cohort.snps.allele_1, 1.0, -1.0)
        assert (sign < 0).any()  # the alignment is exercised
        np.testing.assert_array_equal(ours.n, ref["OBS_CT"])
        np.testing.assert_allclose(ours.beta * sign, ref["BETA"], rtol=1e-4)
        np.testing.assert_allclose(ours.se, ref["SE"], rtol=1e-4)
        np.testing.assert_allclose(ours.t * sign, ref["T_STAT"], rtol=1e-4)
        np.testing.assert_allclose(ours.p, ref["P"], rtol=1e-4)
        assert ours.p[causal].min() < 1e-4


def test_summaries() -> None:
    rng = np.random.default_rng(0)
    p = rng.uniform(size=20000)
    assert genomic_control(p) == pytest.approx(1.0, abs=0.03)
    from scipy import stats

    inflated = stats.chi2.sf(stats.chi2.isf(p, 1) * 1.3, 1)
    assert genomic_control(inflated) == pytest.approx(1.3, abs=0.05)
    beta = rng.normal(size=50)
    pa = np.full(50, 0.5)
    pa[[3, 7, 9]] = [1e-9, 1e-10, 1e-3]
    a = GwasResult(beta, np.ones(50), beta, pa, np.full(50, 100))
    b = GwasResult(beta * 2, np.ones(50), beta, pa[::-1].copy(), np.full(50, 100))
    assert beta_correlation(a, b) == pytest.approx(1.0)
    assert top_hit_recall(a, a, top_k=3) == 1.0
    assert top_hit_recall(a, b, top_k=3) == 0.0


def test_missing_phenotype_and_monomorphic_snp() -> None:
    rng = np.random.default_rng(2)
    g = torch.from_numpy(rng.integers(0, 3, (60, 5)).astype(np.int8))
    g[:, 2] = 1  # no variance
    y = rng.normal(size=60)
    y[:5] = np.nan
    r = linear_gwas(g, y)
    assert np.isnan(r.beta[2]) and np.isfinite(r.beta[[0, 1, 3, 4]]).all()
    assert (r.n[[0, 1, 3, 4]] == 55).all()
    xs = g.numpy()[5:, 0].astype(float)
    ys = y[5:]
    assert r.beta[0] == pytest.approx(np.polyfit(xs, ys, 1)[0])
