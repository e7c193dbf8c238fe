"""Ancestry as a condition: learn genotypes given the top principal components, draw the PCs.

``genofast train --ancestry K`` fits a PCA on the training individuals (`genofast.metrics.pca`,
PLINK's standardisation), projects every individual on its top K PCs and adds them to the traits
as continuous conditions ``PC1`` ... ``PCK`` (spec key ``"ancestry": true``), so the model learns
p(genotypes | ancestry). A Gaussian mixture fitted to the training individuals' scores (full
covariances, 1 to ``MAX_COMPONENTS`` components chosen by BIC) is the model of p(ancestry).
`genofast sample` draws every PC not given (``--cond PC1=...`` or a ``--pheno`` column) from it,
so an unconditional cohort is a two-stage draw: ancestry, then genotypes given ancestry.

Why: an under-trained network blurs population structure (synthetic people fall between
populations and lose their population's rare alleles); given the ancestry, it only has to fill
in haplotypes. Measured on AGBL4 (1000 Genomes, five continental groups) in bench/RESULTS.md.

Phased runs (`genofast train --vcf`) learn haplotypes, each conditioned on its own PCs, and a
sampled person is two haplotypes. Their PCs must be drawn neither as one point shared by both (on
the 1.5 Mb AGBL4 region a haplotype's PCs mark its local haplotype group, and such people came
out half as heterozygous as real ones) nor independently (which pairs haplotypes of different
populations). A mixture of the pairs' scores side by side (2K columns) kept the assortment but,
fitted to half as many rows in twice the dimensions, blurred each haplotype's PCs, and the
sampled LD fell with it (bench/RESULTS.md, "Learning haplotypes"). So a phased run keeps the
haplotypes' own mixture and adds ``pairs``: the joint frequency [C, C] of the components of a
training person's two haplotypes (posterior responsibilities, symmetrised). A person draws a pair
of components from it, then each haplotype its scores from its component (`Ancestry.draw`: rows
2i and 2i+1): each haplotype's scores follow the mixture exactly, and the two haplotypes of a
person come from the same populations as often as in the training people.

Privacy: the run keeps the SNP loadings and the mixture (weights, means, covariances; at most
one component per 20 training rows, haplotypes in a phased run; a phased run's C x C pair
frequencies too), never an individual's scores.
``RUN/ancestry.safetensors`` holds them; loading never unpickles.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

if TYPE_CHECKING:  # the PCA (and numba) load only when a run uses ancestry
    from genofast.metrics.pca import PCAFit

ANCESTRY_FILE = "ancestry.safetensors"
MAX_COMPONENTS = 8
_REG = 1e-3  # covariance floor, as a share of each PC's variance


@dataclass
class Mixture:
    """A Gaussian mixture over PC scores: weights [C], means [C, K], covariances [C, K, K]."""

    weights: np.ndarray
    means: np.ndarray
    covs: np.ndarray

    def log_density(self, x: np.ndarray) -> np.ndarray:
        """log p(x) per component, weights included: [n, C]."""
        k = x.shape[1]
        chol = np.linalg.cholesky(self.covs)  # [C, K, K]
        diff = x[None, :, :] - self.means[:, None, :]  # [C, n, K]
        sol = np.linalg.solve(chol, diff.transpose(0, 2, 1))  # [C, K, n]
        maha = (sol ** 2).sum(1)  # [C, n]
        logdet = 2 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(1)
        out = -0.5 * (maha + logdet[:, None] + k * math.log(2 * math.pi))
        return (out + np.log(self.weights)[:, None]).T

    def posterior(self, x: np.ndarray) -> tuple[np.ndarray, float]:
        """(component responsibilities [n, C], total log-likelihood of x)."""
        logp = self.log_density(x)
        top = logp.max(1, keepdims=True)
        resp = np.exp(logp - top)
        total = resp.sum(1, keepdims=True)
        return resp / total, float((top + np.log(total)).sum())

    def draw(self, n: int, seed: int, components: np.ndarray | None = None) -> np.ndarray:
        """n scores [n, K], seeded; ``components`` [n] gives each row's component (drawn from
        the weights when None)."""
        rng = np.random.default_rng(seed)
        comp = components
        if comp is None:
            comp = rng.choice(len(self.weights), size=n, p=self.weights)
        z = rng.standard_normal((n, self.means.shape[1]))
        chol = np.linalg.cholesky(self.covs)
        return self.means[comp] + np.einsum("nij,nj->ni", chol[comp], z)


def fit_mixture(x: np.ndarray, components: int, seed: int = 0, iters: int = 300,
                tol: float = 1e-6) -> tuple[Mixture, float]:
    """EM for a full-covariance Gaussian mixture of ``components`` on x [n, K] (k-means++ start,
    covariances floored at _REG of each column's variance). Returns (mixture, log-likelihood)."""
    n, k = x.shape
    rng = np.random.default_rng(seed)
    floor = _REG * np.diag(x.var(0) + 1e-12)
    centres = [x[rng.integers(n)]]
    for _ in range(1, components):  # k-means++: far points are likelier centres
        d2 = np.min([((x - c) ** 2).sum(1) for c in centres], 0)
        centres.append(x[rng.choice(n, p=d2 / d2.sum())] if d2.sum() > 0 else x[rng.integers(n)])
    means = np.array(centres)
    cov = np.cov(x.T).reshape(k, k) + floor
    mix = Mixture(np.full(components, 1 / components), means, np.repeat(cov[None], components, 0))
    last = -np.inf
    for _ in range(iters):
        resp, ll = mix.posterior(x)
        nk = resp.sum(0) + 1e-12
        means = (resp.T @ x) / nk[:, None]
        diff = x[None] - means[:, None]  # [C, n, K]
        covs = np.einsum("cn,cni,cnj->cij", resp.T, diff, diff) / nk[:, None, None] + floor
        mix = Mixture(nk / n, means, covs)
        if ll - last < tol * abs(ll):
            break
        last = ll
    return mix, mix.posterior(x)[1]


def choose_mixture(x: np.ndarray, max_components: int = MAX_COMPONENTS, seed: int = 0
                   ) -> Mixture:
    """The mixture of 1..max_components components with the lowest BIC (at most n // 20
    components, so each pools about 20 people or more)."""
    n, k = x.shape
    per = k + k * (k + 1) // 2  # free parameters per component (+ one weight each but one)
    best, best_bic = None, np.inf
    for c in range(1, max(1, min(max_components, n // 20)) + 1):
        mix, ll = fit_mixture(x, c, seed)
        bic = -2 * ll + (c * per + c - 1) * math.log(n)
        if bic < best_bic:
            best, best_bic = mix, bic
    return best


@dataclass
class Ancestry:
    """A run's ancestry model: the PCA (to project genotypes) and the mixture of its scores;
    a phased run's also the joint frequency of its people's two haplotypes' components."""

    pca: PCAFit
    mixture: Mixture
    pairs: np.ndarray | None = None  # [C, C], symmetric, sums to 1 (module docstring)

    @property
    def k(self) -> int:
        return self.pca.loadings.shape[1]

    def scores(self, genotypes: torch.Tensor) -> np.ndarray:
        """PC scores [n, K] of int8 genotypes [n, M] (the run's SNPs)."""
        from genofast.metrics.pca import project

        return project(self.pca, genotypes)

    @property
    def paired(self) -> bool:
        """A phased run's: rows of a draw come in pairs of one person's haplotypes."""
        return self.pairs is not None

    def draw(self, n: int, seed: int) -> np.ndarray:
        """n PC scores [n, K] from the mixture, seeded (the same rows for any batch size); in a
        phased run rows 2i and 2i+1 are one person's two haplotypes, their components drawn
        together from ``pairs``."""
        if self.pairs is None:
            return self.mixture.draw(n, seed)
        c, half = len(self.pairs), (n + 1) // 2
        flat = np.random.default_rng([seed, 1]).choice(c * c, size=half, p=self.pairs.ravel())
        comp = np.stack([flat // c, flat % c], 1).reshape(-1)
        return self.mixture.draw(2 * half, seed, components=comp)[:n]

    def save(self, path: str | os.PathLike) -> None:
        p, m = self.pca, self.mixture
        tensors = {"freq": p.freq.cpu().numpy(), "scale": p.scale.cpu().numpy(),
                   "loadings": p.loadings.cpu().numpy(), "eigenvalues": p.eigenvalues,
                   "weights": m.weights, "means": m.means, "covs": m.covs}
        if self.pairs is not None:
            tensors["pairs"] = self.pairs
        save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, os.fspath(path),
                  metadata={"n_snps": str(p.n_snps), "method": p.method})


def fit_ancestry(genotypes: torch.Tensor, k: int, seed: int = 0, paired: bool = False
                 ) -> Ancestry:
    """PCA of int8 genotypes [n, M] (the training individuals) and the mixture of their top-k
    scores; ``paired``: the rows are haplotypes, 2i and 2i+1 one person's, and ``pairs`` is
    fitted too (module docstring)."""
    from genofast.metrics.pca import fit_pca

    if k < 1:
        raise ValueError(f"ancestry needs k >= 1 principal components, got {k}")
    if genotypes.shape[0] < 2 * k + 2:
        raise ValueError(f"ancestry: {genotypes.shape[0]} training individuals are too few for "
                         f"{k} principal components")
    if paired and len(genotypes) % 2:
        raise ValueError(f"ancestry: {len(genotypes)} haplotypes do not make pairs")
    pca = fit_pca(genotypes, k, seed=seed)
    mixture = choose_mixture(pca.scores, seed=seed)
    pairs = None
    if paired:
        resp = mixture.posterior(pca.scores)[0]
        joint = resp[0::2].T @ resp[1::2]
        pairs = (joint + joint.T) / (2 * joint.sum())
    return Ancestry(pca, mixture, pairs)


def load_ancestry(run_dir: str | os.PathLike) -> Ancestry:
    """The ancestry model saved in a run folder."""
    path = Path(run_dir) / ANCESTRY_FILE
    if not path.is_file():
        raise FileNotFoundError(f"the run was trained with --ancestry but {path} is missing")
    from genofast.metrics.pca import PCAFit

    t = load_file(path)
    with safe_open(path, "np") as f:
        info = f.metadata()
    pca = PCAFit(freq=torch.from_numpy(t["freq"]), scale=torch.from_numpy(t["scale"]),
                 loadings=torch.from_numpy(t["loadings"]), eigenvalues=t["eigenvalues"],
                 scores=np.empty((0, t["loadings"].shape[1])), n_snps=int(info["n_snps"]),
                 method=info["method"])
    return Ancestry(pca, Mixture(t["weights"], t["means"], t["covs"]), t.get("pairs"))


def ancestry_columns(specs: list[dict]) -> list[int]:
    """Indices of a run's ancestry conditions (PC1..PCK) among its traits."""
    return [k for k, s in enumerate(specs) if s.get("ancestry")]


def fill_ancestry(cond: np.ndarray, specs: list[dict], run_dir: str | os.PathLike,
                  seed: int) -> np.ndarray:
    """The model cond matrix [n, T] with every missing (NaN) ancestry value drawn from the
    run's mixture (row i gets draw i of ``seed``) and standardised like the trait."""
    cols = ancestry_columns(specs)
    if not cols:
        return cond
    drawn = load_ancestry(run_dir).draw(len(cond), seed)
    out = cond.copy()
    for j, k in enumerate(cols):
        miss = np.isnan(out[:, k])
        out[miss, k] = (drawn[miss, j] - specs[k]["mean"]) / specs[k]["sd"]
    return out
