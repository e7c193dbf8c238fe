"""Privacy of a synthetic cohort against the people its generator was trained on.

* Nearest-neighbour adversarial accuracy (Yale et al. 2020), between a target cohort T and the
  synthetic cohort S of equal size (the larger one is subsampled, seeded)::

      AA_TS = 1/2 [ mean_t 1(d_TS(t) > d_TT(t)) + mean_s 1(d_ST(s) > d_SS(s)) ]

  d_TS(t) = distance from t to its nearest synthetic individual, d_TT(t) to its nearest other
  target individual (leave-one-out), and so on. 0.5 = indistinguishable; near 0 = synthetic
  individuals sit on top of target ones (copies); near 1 = far from them. The two halves are
  reported too (``aats_terms``): a cohort far from the target and spread out scores 1 and 0,
  whose mean is also 0.5. ``aats`` uses T = the
  held-out real cohort, ``aats_train`` T = the training cohort; privacy_loss = aats - aats_train
  (> 0: the generator is closer to the people it saw than to new people of the same population).
* identical_to_train: synthetic rows equal (every genotype, missing included) to a training row.
* dcr_ratio: median distance synthetic -> nearest training individual over median distance
  held-out real -> nearest training individual (about 1 is good, near 0 is copying).
* mia_auc: AUC of a distance attack telling training individuals from held-out real ones by their
  distance to the nearest synthetic individual (smaller = "member"); 0.5 is ideal.

Distances are Euclidean on allele counts, missing genotypes mean-imputed (`pairwise`).
"""

from __future__ import annotations

import numpy as np
import torch

from genofast.metrics.pairwise import (
    Scan,
    allele_freq,
    balanced_mask,
    default_device,
    prepare,
    scan,
)


def adversarial_terms(d_tt: torch.Tensor, d_ts: torch.Tensor, d_ss: torch.Tensor,
                      d_st: torch.Tensor) -> tuple[float, float]:
    """The two halves of AA_TS: mean_t 1(d_TS > d_TT) and mean_s 1(d_ST > d_SS). Each is 0.5
    when the cohorts are exchangeable; reporting both tells "too close" (both low) from "too
    far and too spread" (first high, second low), which average to the same AA_TS."""
    return float((d_ts > d_tt).double().mean()), float((d_st > d_ss).double().mean())


def adversarial_accuracy(d_tt: torch.Tensor, d_ts: torch.Tensor, d_ss: torch.Tensor,
                         d_st: torch.Tensor) -> float:
    """AA_TS from the four nearest-neighbour distance vectors (target rows: d_tt, d_ts;
    synthetic rows: d_ss, d_st). Strict inequalities: a tie (e.g. an exact copy) counts as
    "not farther"."""
    a, b = adversarial_terms(d_tt, d_ts, d_ss, d_st)
    return 0.5 * (a + b)


def auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """Area under the ROC curve of scores (higher = positive) by the Mann-Whitney rank formula,
    ties counted one half."""
    pos = np.asarray(positive, dtype=np.float64)
    neg = np.asarray(negative, dtype=np.float64)
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    allv = np.concatenate([pos, neg])
    order = np.argsort(allv, kind="mergesort")
    ranks = np.empty(len(allv), dtype=np.float64)
    sorted_v = allv[order]
    # average ranks over ties (1-based)
    _, first, counts = np.unique(sorted_v, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    r_pos = ranks[: len(pos)].sum()
    return float((r_pos - len(pos) * (len(pos) + 1) / 2.0) / (len(pos) * len(neg)))


def mia_auc(d_train_to_syn: torch.Tensor, d_holdout_to_syn: torch.Tensor) -> float:
    """Membership-inference AUC: members (training) scored by minus their distance to the
    nearest synthetic individual, against held-out non-members."""
    return auc(-d_train_to_syn.double().cpu().numpy(), -d_holdout_to_syn.double().cpu().numpy())


def _median(v: torch.Tensor) -> float:
    """Median with the two middle values averaged (torch.median returns the lower one)."""
    return float(np.median(v.double().cpu().numpy()))


def dcr_ratio(d_syn_to_train: torch.Tensor, d_real_to_train: torch.Tensor) -> float:
    """Median distance to closest training record, synthetic over held-out real."""
    den = _median(d_real_to_train)
    num = _median(d_syn_to_train)
    return num / den if den > 0 else float("nan")


def identical_rows(a: torch.Tensor, b: torch.Tensor, nearest: torch.Tensor,
                   nearest_dist: torch.Tensor) -> torch.Tensor:
    """Which rows of ``a`` equal a row of ``b``: candidates are the rows whose nearest neighbour
    in ``b`` is at distance 0; equality of the int8 codes is then checked exactly."""
    cand = torch.nonzero(nearest_dist == 0).flatten()
    same = torch.zeros(a.shape[0], dtype=torch.bool, device=a.device)
    if len(cand):
        same[cand] = (a[cand] == b[nearest[cand]]).all(1)
    return same


def privacy_metrics(real: torch.Tensor, synthetic: torch.Tensor, train: torch.Tensor,
                    seed: int = 0, device: str | torch.device | None = None) -> dict[str, float]:
    """All privacy metrics from int8 genotypes [N, M] (-1 missing) with matched SNPs.

    A straightforward sequence of scans; `genofast.metrics.evaluate` shares these scans with the
    k-NN and GRM metrics instead.
    """
    dev = torch.device(device) if device is not None else default_device()
    real, synthetic, train = real.to(dev), synthetic.to(dev), train.to(dev)
    mu = (2 * allele_freq(real)).nan_to_num(0.0).float()
    pr, ps, pt = prepare(real, mu), prepare(synthetic, mu), prepare(train, mu)
    gen = torch.Generator().manual_seed(seed)
    nr, ns, nt = pr.n, ps.n, pt.n
    r_bal, s_bal_r = balanced_mask(nr, ns, gen), balanced_mask(ns, nr, gen)
    t_bal, s_bal_t = balanced_mask(nt, ns, gen), balanced_mask(ns, nt, gen)

    rr = scan(pr, pr, Scan(k=1, col_subsets={"bal": r_bal}), same=True)
    tt = scan(pt, pt, Scan(k=1, col_subsets={"bal": t_bal}), same=True)
    ss = scan(ps, ps, Scan(k=1, col_subsets={"r": s_bal_r, "t": s_bal_t}), same=True)
    sr = scan(ps, pr, Scan(k=1, col_subsets={"bal": r_bal},
                           row_subsets={"all": None, "bal": s_bal_r}))
    st = scan(ps, pt, Scan(k=1, col_subsets={"all": None, "bal": t_bal}, keep_index=True,
                           row_subsets={"all": None, "bal": s_bal_t}))
    rt = scan(pr, pt, Scan(k=1, col_subsets={"all": None}))
    return privacy_from_scans(rr, tt, ss, sr, st, rt, r_bal, s_bal_r, t_bal, s_bal_t,
                              synthetic, train)


def _sel(v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    return v if mask is None else v[mask.to(v.device)]


def privacy_from_scans(rr, tt, ss, sr, st, rt, r_bal, s_bal_r, t_bal, s_bal_t,
                       synthetic: torch.Tensor, train: torch.Tensor) -> dict[str, float]:
    """Privacy metrics from the scans made by `privacy_metrics` (or `evaluate`).

    rr: real x real (k=1 over subset "bal" = r_bal); tt: train x train ("bal" = t_bal);
    ss: syn x syn ("r" = s_bal_r, "t" = s_bal_t); sr: syn x real (k=1 over "bal", column minima
    over rows "all" and "bal"); st: syn x train (k=1 "all" with index, "bal"; column minima
    "all", "bal"); rt: real x train (k=1 "all").
    """
    terms = adversarial_terms(
        _sel(rr.knn_dist["bal"][:, 0], r_bal), _sel(sr.col_min["bal"], r_bal),
        _sel(ss.knn_dist["r"][:, 0], s_bal_r), _sel(sr.knn_dist["bal"][:, 0], s_bal_r))
    terms_train = adversarial_terms(
        _sel(tt.knn_dist["bal"][:, 0], t_bal), _sel(st.col_min["bal"], t_bal),
        _sel(ss.knn_dist["t"][:, 0], s_bal_t), _sel(st.knn_dist["bal"][:, 0], s_bal_t))
    aats, aats_train = 0.5 * sum(terms), 0.5 * sum(terms_train)
    d_st = st.knn_dist["all"][:, 0]
    ident = identical_rows(synthetic, train, st.knn_index["all"][:, 0], d_st)
    n_ident = int(ident.sum())
    return {
        "aats": aats,
        "aats_train": aats_train,
        "aats_terms": list(terms),
        "aats_train_terms": list(terms_train),
        "privacy_loss": aats - aats_train,
        "identical_to_train": n_ident,
        "identical_to_train_frac": n_ident / max(1, synthetic.shape[0]),
        "dcr_ratio": dcr_ratio(d_st, rt.knn_dist["all"][:, 0]),
        "dcr_syn_train_median": _median(d_st),
        "dcr_real_train_median": _median(rt.knn_dist["all"][:, 0]),
        "mia_auc": mia_auc(st.col_min["all"], sr.col_min["all"]),
    }
