"""k-NN precision and recall (Kynkaanniemi et al., NeurIPS 2019) on allele-count vectors.

Each real individual gets a ball whose radius is the distance to its k-th nearest other real
individual; precision = fraction of synthetic individuals inside at least one real ball (fidelity:
synthetic people look like someone real), recall = fraction of real individuals inside at least
one synthetic ball (built the same way within the synthetic cohort; coverage: the real diversity
is reproduced). Distances are Euclidean on 0/1/2 allele counts (`pairwise`), blockwise in torch;
missing genotypes are mean-imputed with the real cohort's mean dosage.
"""

from __future__ import annotations

import torch

from genofast.metrics.pairwise import Prepared, Scan, allele_freq, default_device, prepare, scan

DEFAULT_K = 5


def knn_radii2(cohort: Prepared, k: int = DEFAULT_K) -> torch.Tensor:
    """Squared distance of each individual to its k-th nearest other individual of the same
    cohort (squared: exact for complete genotypes, so ties on the ball boundary stay ties)."""
    res = scan(cohort, cohort, Scan(k=k, col_subsets={"all": None}), same=True)
    return res.knn_sq["all"][:, -1]


def precision_recall_prepared(real: Prepared, synthetic: Prepared, k: int = DEFAULT_K,
                              radius2_real: torch.Tensor | None = None,
                              radius2_syn: torch.Tensor | None = None) -> dict[str, float]:
    """Precision and recall of prepared cohorts (squared radii computed unless given)."""
    if radius2_real is None:
        radius2_real = knn_radii2(real, k)
    if radius2_syn is None:
        radius2_syn = knn_radii2(synthetic, k)
    res = scan(synthetic, real, Scan(radius2_q=radius2_syn, radius2_d=radius2_real))
    return {"precision": float(res.q_in_ball.double().mean()),
            "recall": float(res.d_in_ball.double().mean())}


def knn_precision_recall(real: torch.Tensor, synthetic: torch.Tensor, k: int = DEFAULT_K,
                         device: str | torch.device | None = None) -> dict[str, float]:
    """k-NN precision and recall of int8 genotypes [N, M] (-1 missing), SNPs already matched."""
    dev = torch.device(device) if device is not None else default_device()
    real, synthetic = real.to(dev), synthetic.to(dev)
    mu = (2 * allele_freq(real)).nan_to_num(0.0).float()
    return precision_recall_prepared(prepare(real, mu), prepare(synthetic, mu), k)
