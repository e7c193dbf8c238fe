"""`evaluate`: fidelity, association and privacy of a synthetic cohort against real people.

One call computes every metric family on the SNPs shared by the cohorts, then the same metrics for
real vs real (two seeded random halves of ``real``: half A plays "real", half B "synthetic"), the
yardstick printed beside each number. A ``metrics=`` subset gives a light path for model
selection during training (e.g. ``metrics={"frequency", "ld"}``, ``reference=False``).

SNP matching: SNPs are matched on (chromosome, bp position, unordered allele pair); a SNP whose
allele_1/allele_2 are swapped relative to ``real`` is flipped (g -> 2 - g, missing kept); SNPs
absent from a cohort, with other alleles, or duplicated are left out and counted in
``info.unmatched``. The order is that of ``real``.

Missing genotypes are left out per metric, never counted as 0: frequencies, counts, HWE and
heterozygosity use the called genotypes of each SNP; LD uses the pairs called in both SNPs (see
the per-SNP section of docs/metrics.md); PCA sets a missing standardised genotype to 0 (mean
imputation); distances (k-NN, privacy) and the GRM impute twice the real allele frequency; the GWAS
drops an individual from a SNP's regression when its genotype is missing (as plink2 --glm).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from genofast.io import Cohort, read_plink
from genofast.metrics import counts as cnt
from genofast.metrics import gwas as gw
from genofast.metrics.grm import KINSHIP_SECOND_DEGREE, grm_spec, hist_summary
from genofast.metrics.pairwise import (
    Scan,
    ScanResult,
    balanced_mask,
    default_device,
    hist_wasserstein,
    prepare,
    scan,
)
from genofast.metrics.pca import fit_pca, pca_wasserstein, project
from genofast.metrics.privacy import privacy_from_scans
from genofast.ops import pack

#: Metric families; ``metrics=`` takes any subset.
FAMILIES = ("frequency", "ld", "pca", "grm", "knn", "privacy", "gwas")
#: Families needing ``train``.
TRAIN_FAMILIES = ("privacy",)
#: The numbers every report carries at top level (None when skipped).
HEADLINE = (
    "allele_freq_r", "genotype_freq_r", "maf_js_divergence", "fst", "ld_r2_mae", "ld_decay_mae",
    "heterozygosity_diff", "pca_wasserstein", "grm_offdiag_diff", "precision", "recall", "aats",
    "aats_real_baseline", "aats_train", "privacy_loss", "identical_to_train", "dcr_ratio",
    "mia_auc", "kinship_replay", "gwas_beta_r", "gwas_top_hit_recall",
)
HEATMAP_SNPS = 300

CohortLike = Cohort | str | os.PathLike


# ---------------------------------------------------------------------------------------------
# SNP matching
# ---------------------------------------------------------------------------------------------


@dataclass
class SnpMatch:
    """Columns of each cohort for the SNPs shared by all, in ``real`` order, and which to flip."""

    index: dict[str, np.ndarray]  # cohort name -> SNP indices into that cohort
    flip: dict[str, np.ndarray]  # cohort name -> bool, allele_1/allele_2 swapped vs real
    unmatched: dict[str, int] = field(default_factory=dict)  # SNPs of a cohort left out
    allele_mismatch: dict[str, int] = field(default_factory=dict)  # same position, other alleles


def _keys(c: Cohort) -> tuple[list[tuple[str, int, str, str]], np.ndarray]:
    s = c.snps
    a1, a2 = s.allele_1.astype(str), s.allele_2.astype(str)
    lo = np.where(a1 <= a2, a1, a2)
    hi = np.where(a1 <= a2, a2, a1)
    keys = list(zip(s.chromosome.tolist(), s.bp_position.tolist(), lo.tolist(), hi.tolist(),
                    strict=True))
    return keys, a1


def match_snps(cohorts: Mapping[str, Cohort]) -> SnpMatch:
    """Match SNPs of every cohort to the first one (``real``) on (chromosome, bp, alleles)."""
    names = list(cohorts)
    ref_keys, ref_a1 = _keys(cohorts[names[0]])
    pos: dict[tuple, int] = {}
    dup_ref = set()
    for i, k in enumerate(ref_keys):
        if k in pos:
            dup_ref.add(k)
        else:
            pos[k] = i
    keep = np.array([k not in dup_ref for k in ref_keys], dtype=bool)
    where: dict[str, np.ndarray] = {}
    flips: dict[str, np.ndarray] = {}
    mismatch: dict[str, int] = {}
    for name in names[1:]:
        keys, a1 = _keys(cohorts[name])
        at = np.full(len(ref_keys), -1, dtype=np.int64)
        flip = np.zeros(len(ref_keys), dtype=bool)
        seen: dict[tuple, int] = {}
        for j, k in enumerate(keys):
            seen[k] = -2 if k in seen else j  # -2: duplicated in this cohort
        for k, j in seen.items():
            i = pos.get(k)
            if i is None:
                continue
            if j == -2:
                keep[i] = False
                continue
            at[i] = j
            flip[i] = a1[j] != ref_a1[i]
        keep &= at >= 0
        where[name], flips[name] = at, flip
        ref_pos = {(c, b) for c, b, _, _ in ref_keys}
        mismatch[name] = sum(1 for k in keys if k not in pos and (k[0], k[1]) in ref_pos)
    idx = np.flatnonzero(keep)
    index = {names[0]: idx}
    flip_out = {names[0]: np.zeros(len(idx), dtype=bool)}
    for name in names[1:]:
        index[name] = where[name][idx]
        flip_out[name] = flips[name][idx]
    unmatched = {n: int(cohorts[n].n_snps - len(idx)) for n in names}
    return SnpMatch(index, flip_out, unmatched, mismatch)


def _aligned(c: Cohort, idx: np.ndarray, flip: np.ndarray) -> torch.Tensor:
    """int8 genotypes of the selected SNPs, allele-swapped SNPs flipped to real's allele_1."""
    sub = c.subset(snps=idx) if (len(idx) != c.n_snps or (idx != np.arange(c.n_snps)).any()) \
        else c
    g = sub.unpack()
    if flip.any():
        cols = torch.from_numpy(np.flatnonzero(flip))
        part = g[:, cols]
        g[:, cols] = torch.where(part >= 0, 2 - part, part)
    return g


# ---------------------------------------------------------------------------------------------
# inputs
# ---------------------------------------------------------------------------------------------


def _load(c: CohortLike | None) -> Cohort | None:
    if c is None or isinstance(c, Cohort):
        return c
    return read_plink(c)


def parse_region(region: str | tuple | None) -> tuple[str, int, int] | None:
    """``"CHR:START-END"`` (bp, inclusive) or a (chr, start, end) tuple."""
    if region is None or isinstance(region, tuple):
        return None if region is None else (str(region[0]), int(region[1]), int(region[2]))
    try:
        chrom, span = region.rsplit(":", 1)
        start, end = (int(v.replace(",", "")) for v in span.split("-"))
    except ValueError:
        raise ValueError(f"region {region!r}: expected CHR:START-END, e.g. 1:48500000-49000000") \
            from None
    if end < start:
        raise ValueError(f"region {region!r}: END is before START")
    return chrom, start, end


def _phenotype(pheno: Any, pheno_name: str | None, cohort: Cohort, name: str) -> np.ndarray | None:
    """The phenotype of each individual of ``cohort`` (NaN missing), or None if it has none.

    ``pheno``: a mapping cohort name -> array, a `Phenotypes` table, or a file path (read with
    `genofast.io.read_pheno`, joined on FID/IID). Individuals absent from the table fall back to
    the `.fam` sixth column.
    """
    from genofast.io import Phenotypes, read_pheno
    from genofast.io.pheno import join

    if pheno is None:
        return None
    if isinstance(pheno, Mapping):
        v = pheno.get(name)
        return None if v is None else np.asarray(v, dtype=np.float64).reshape(-1)
    if isinstance(pheno, (str, os.PathLike)):
        table = read_pheno(pheno, cohort.samples, allow_unknown=True)
    elif isinstance(pheno, Phenotypes):
        table = join(pheno, cohort.samples, allow_unknown=True)
    else:
        raise TypeError(f"pheno: expected a path, a Phenotypes table or a mapping, got "
                        f"{type(pheno).__name__}")
    col = pheno_name or (table.names[0] if table.names else None)
    if col is None:
        raise ValueError("pheno: no numeric phenotype column")
    y = np.asarray(table.column(col), dtype=np.float64)
    fam = cohort.samples.phenotype
    y = np.where(np.isnan(y), fam, y)
    return None if np.isnan(y).all() else y


# ---------------------------------------------------------------------------------------------
# one block: metrics of a "real" cohort R against a "synthetic" cohort S (and training set T)
# ---------------------------------------------------------------------------------------------


@dataclass
class _Side:
    """One cohort of a block: int8 genotypes on the device, packed bytes, genotype counts."""

    g: torch.Tensor
    packed: torch.Tensor
    counts: np.ndarray
    pheno: np.ndarray | None = None

    @classmethod
    def of(cls, g: torch.Tensor, pheno: np.ndarray | None = None) -> _Side:
        packed = pack(g.cpu().contiguous())
        return cls(g, packed, cnt.genotype_counts(packed, g.shape[1]), pheno)

    @property
    def freq(self) -> torch.Tensor:
        """Allele-1 frequencies (float64, NaN: no calls) on the genotypes' device."""
        return torch.from_numpy(cnt.allele_frequencies(self.counts)).to(self.g.device)


@dataclass
class _Ctx:
    snps: Any  # SnpTable of the matched SNPs (real's rows)
    families: set[str]
    k: int
    ld_window: int
    seed: int
    region_idx: np.ndarray
    ref_freq: torch.Tensor  # allele-1 frequencies of the whole real cohort
    notes: list[str]
    step: Callable[[str], None]


def _frequency_metrics(r: _Side, s: _Side, m: int, out: dict, det: dict) -> None:
    cr, cs = r.counts, s.counts
    out["allele_freq_r"] = cnt.allele_freq_r(cr, cs)
    out["genotype_freq_r"] = cnt.genotype_freq_r(cr, cs)
    out["maf_js_divergence"] = cnt.sfs_js_divergence(cr, cs)
    out["fst"] = cnt.hudson_fst(cr, cs)
    p_real = cnt.allele_frequencies(cr)
    hr = cnt.heterozygosity(r.packed, m, p_real)
    hs = cnt.heterozygosity(s.packed, m, p_real)
    het_r, het_s = np.nanmean(hr.het_rate), np.nanmean(hs.het_rate)
    out["heterozygosity_diff"] = float(abs(het_s - het_r))
    out["heterozygosity_real"] = float(het_r)
    out["heterozygosity_syn"] = float(het_s)
    out["inbreeding_f_real"] = float(np.nanmean(hr.f))
    out["inbreeding_f_syn"] = float(np.nanmean(hs.f))
    hwe_r, hwe_s = cnt.hwe_pvalues(cr), cnt.hwe_pvalues(cs)
    out["hwe_frac_p_lt_1e-6_real"] = float(np.nanmean(hwe_r < 1e-6))
    out["hwe_frac_p_lt_1e-6_syn"] = float(np.nanmean(hwe_s < 1e-6))
    det.update(af_real=p_real, af_syn=cnt.allele_frequencies(cs),
               sfs=(cnt.folded_sfs(cr)[0], cnt.folded_sfs(cr)[1], cnt.folded_sfs(cs)[1]),
               het_real=hr.het_rate, het_syn=hs.het_rate, f_real=hr.f, f_syn=hs.f,
               hwe_real=hwe_r, hwe_syn=hwe_s)


def _ld_metrics(r: _Side, s: _Side, ctx: _Ctx, out: dict, det: dict) -> None:
    from genofast.metrics import ld

    m = r.g.shape[1]
    snps = ctx.snps
    out.update(ld.ld_summary(r.packed, s.packed, m, chromosome=snps.chromosome,
                             bp=snps.bp_position, window=ctx.ld_window))
    det["ld_decay"] = out.pop("_decay", None)
    idx = ctx.region_idx
    if len(idx) >= 2:
        det["r2_region"] = (ld.r2_matrix(r.packed, m, idx), ld.r2_matrix(s.packed, m, idx),
                            snps.bp_position[idx])


def _pca_metrics(r: _Side, s: _Side, ctx: _Ctx, out: dict, det: dict) -> None:
    fit = fit_pca(r.g, k=10, seed=ctx.seed, freq=r.freq)
    syn_scores = project(fit, s.g)
    out["pca_wasserstein"], per = pca_wasserstein(fit.scores, syn_scores)
    out["pca_wasserstein_per_pc"] = per
    out["pca_eigenvalues"] = fit.eigenvalues.tolist()
    out["pca_method"] = fit.method
    det["pca"] = (fit.scores, syn_scores, fit.eigenvalues)


def _pairwise_metrics(r: _Side, s: _Side, t: _Side | None, tt_cache: dict, ctx: _Ctx,
                      out: dict, det: dict, label: str) -> None:
    """k-NN, GRM and privacy metrics from six shared scans (R x R, S x S, S x R, and with a
    training set T x T, S x T, R x T)."""
    fam = ctx.families
    want_knn, want_grm = "knn" in fam, "grm" in fam
    want_priv = "privacy" in fam and t is not None
    # one imputation mean and one GRM centring (the whole real cohort's) for every block, so
    # that the training set's prepared rows serve both blocks and GRM values are comparable
    freq = ctx.ref_freq
    mu = (2 * freq).nan_to_num(0.0).float()
    spec = grm_spec(freq) if want_grm else None
    pr, ps = prepare(r.g, mu), prepare(s.g, mu)
    gen = torch.Generator().manual_seed(ctx.seed)
    r_bal = s_bal_r = None
    if want_priv:
        r_bal, s_bal_r = balanced_mask(pr.n, ps.n, gen), balanced_mask(ps.n, pr.n, gen)
    k_self = ctx.k if want_knn else (1 if want_priv else 0)
    ctx.step(f"{label}: distances real x real")
    rr = scan(pr, pr, Scan(k=k_self, col_subsets={"all": None, "bal": r_bal}, grm=spec),
              same=True)
    pt = t_bal = s_bal_t = None
    if want_priv:
        pt = tt_cache.get("prepared") or prepare(t.g, mu)
        t_bal, s_bal_t = tt_cache["masks"].get(ps.n), balanced_mask(ps.n, pt.n, gen)
    ctx.step(f"{label}: distances synthetic x synthetic")
    ss = scan(ps, ps, Scan(k=k_self, col_subsets={"all": None, "r": s_bal_r, "t": s_bal_t},
                           grm=spec), same=True)
    rad_r = rr.knn_sq["all"][:, -1] if want_knn else None  # squared radii
    rad_s = ss.knn_sq["all"][:, -1] if want_knn else None
    if want_knn or want_priv:
        ctx.step(f"{label}: distances synthetic x real")
        sr = scan(ps, pr, Scan(k=1 if want_priv else 0, col_subsets={"bal": r_bal},
                               row_subsets={"all": None, "bal": s_bal_r} if want_priv else {},
                               radius2_q=rad_s, radius2_d=rad_r))
        if want_knn:
            out["precision"] = float(sr.q_in_ball.double().mean())
            out["recall"] = float(sr.d_in_ball.double().mean())
    if want_grm:
        out["grm_offdiag_diff"] = hist_wasserstein(rr.grm_hist, ss.grm_hist,
                                                   (spec.hi - spec.lo) / spec.bins)
        out["grm_offdiag_real"] = hist_summary(rr.grm_hist, spec)
        out["grm_offdiag_syn"] = hist_summary(ss.grm_hist, spec)
        det["grm"] = {"spec": spec, "real": rr.grm_hist.cpu(), "syn": ss.grm_hist.cpu()}
    if t is None:
        return
    want_kin = want_grm
    if not (want_priv or want_kin):
        return
    if want_priv:
        tt = tt_cache.get("scan")
        ctx.step(f"{label}: distances synthetic x train")
    st = scan(ps, pt if pt is not None else prepare(t.g, mu),
              Scan(k=1 if want_priv else 0, col_subsets={"all": None, "bal": t_bal},
                   keep_index=want_priv,
                   row_subsets={"all": None, "bal": s_bal_t} if want_priv else {},
                   grm=spec))
    if want_kin:
        out["kinship_replay"] = st.grm_n_ge
        out["kinship_replay_rate"] = st.grm_n_ge / max(1, st.grm_pairs)
        out["grm_offdiag_syn_train"] = hist_summary(st.grm_hist, spec)
        det.setdefault("grm", {})["syn_train"] = st.grm_hist.cpu()
    if want_priv:
        ctx.step(f"{label}: distances real x train")
        rt = scan(pr, pt, Scan(k=1, col_subsets={"all": None}))
        priv = privacy_from_scans(rr, tt, ss, sr, st, rt, r_bal, s_bal_r, t_bal, s_bal_t,
                                  s.g, t.g)
        out.update(priv)
        det["dcr"] = (st.knn_dist["all"][:, 0].cpu().numpy(), rt.knn_dist["all"][:, 0]
                      .cpu().numpy())


def _gwas_metrics(r: _Side, s: _Side, ctx: _Ctx, cov_r, cov_s, out: dict, det: dict) -> None:
    gr = gw.linear_gwas(r.g, r.pheno, cov_r)
    out["gwas_lambda_real"] = gr.lambda_gc
    det["gwas"] = {"real": gr}
    if s.pheno is None:
        ctx.notes.append("gwas: the synthetic cohort has no phenotype; only the real GWAS ran")
        return
    gs = gw.linear_gwas(s.g, s.pheno, cov_s)
    out["gwas_lambda_syn"] = gs.lambda_gc
    out["gwas_beta_r"] = gw.beta_correlation(gr, gs)
    out["gwas_top_hit_recall"] = gw.top_hit_recall(gr, gs)
    det["gwas"]["syn"] = gs


def _block(r: _Side, s: _Side, t: _Side | None, tt_cache: dict, ctx: _Ctx,
           cov: tuple, label: str) -> tuple[dict, dict]:
    out: dict[str, Any] = {}
    det: dict[str, Any] = {}
    m = r.g.shape[1]
    fam = ctx.families
    if "frequency" in fam:
        ctx.step(f"{label}: frequencies, HWE, heterozygosity")
        _frequency_metrics(r, s, m, out, det)
    if "ld" in fam:
        ctx.step(f"{label}: LD")
        _ld_metrics(r, s, ctx, out, det)
    if "pca" in fam:
        ctx.step(f"{label}: PCA")
        _pca_metrics(r, s, ctx, out, det)
    if fam & {"grm", "knn", "privacy"}:
        ctx.step(f"{label}: prepare distances")
        _pairwise_metrics(r, s, t, tt_cache, ctx, out, det, label)
    if "gwas" in fam and r.pheno is not None:
        ctx.step(f"{label}: GWAS")
        _gwas_metrics(r, s, ctx, cov[0], cov[1], out, det)
    return out, det


# ---------------------------------------------------------------------------------------------
# entry point
# ---------------------------------------------------------------------------------------------


def evaluate(
    real: CohortLike,
    synthetic: CohortLike,
    train: CohortLike | None = None,
    pheno: Any = None,
    region: str | tuple | None = None,
    *,
    pheno_name: str | None = None,
    covariates: Mapping[str, np.ndarray] | None = None,
    metrics: Iterable[str] | None = None,
    reference: bool = True,
    k: int = 5,
    ld_window: int = 100,
    seed: int = 0,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Compare ``synthetic`` with ``real`` (held-out real people) and, for privacy, ``train``.

    Cohorts are `Cohort` objects or PLINK prefixes. ``pheno``: phenotype file path (column
    ``pheno_name``, default the first), `Phenotypes` table or mapping ``{"real": y, "synthetic":
    y, "train": y}``; ``covariates``: mapping cohort name -> [N, C] array for the GWAS.
    ``region``: ``"CHR:START-END"`` for the r^2 heat map (default: the first 300 SNPs).
    ``metrics``: subset of FAMILIES (default all); ``reference=False`` skips real vs real.

    Returns a dict: the HEADLINE numbers at top level (None when skipped), every other number
    of the main block, ``reference`` (the same for real half A vs real half B), ``info``
    (sizes, SNP matching, notes, timings) and ``details`` (arrays for the plots; `report`
    leaves them out of report.json).
    """
    t_start = time.perf_counter()
    families = set(FAMILIES if metrics is None else metrics)
    unknown = families - set(FAMILIES)
    if unknown:
        raise ValueError(f"metrics: unknown {sorted(unknown)}; choose from {', '.join(FAMILIES)}")
    dev = torch.device(device) if device is not None else default_device()
    notes: list[str] = []
    timings: dict[str, float] = {}
    cpu_timings: dict[str, float] = {}
    cpu_start = time.process_time()

    cohorts = {"real": _load(real), "synthetic": _load(synthetic)}
    if train is not None:
        cohorts["train"] = _load(train)
    else:
        if families & {"privacy", "grm"}:
            notes.append("no training set (--train): privacy metrics and kinship_replay skipped")
        families -= set(TRAIN_FAMILIES)
    if cohorts["real"].n_individuals < 4:
        raise ValueError("real cohort: at least 4 individuals are needed")

    match = match_snps(cohorts)
    n_snps = len(match.index["real"])
    if n_snps < 2:
        raise ValueError(f"only {n_snps} SNPs are shared by the cohorts (matched on chromosome, "
                         f"bp and alleles); nothing to compare")
    snps = cohorts["real"].snps[match.index["real"]]
    phenos = {n: _phenotype(pheno, pheno_name, c, n) for n, c in cohorts.items()}
    if "gwas" in families and phenos["real"] is None:
        if pheno is not None:
            notes.append("gwas: the real cohort has no phenotype values; GWAS skipped")
        families.discard("gwas")

    reg = parse_region(region)
    if reg is None:
        region_idx = np.arange(min(HEATMAP_SNPS, n_snps))
    else:
        chrom, start, end = reg
        region_idx = np.flatnonzero((snps.chromosome == chrom) & (snps.bp_position >= start)
                                    & (snps.bp_position <= end))
        if len(region_idx) > 2000:
            notes.append(f"region has {len(region_idx)} SNPs; the heat map shows the first 2000")
            region_idx = region_idx[:2000]
        if len(region_idx) < 2:
            notes.append(f"region {region}: fewer than 2 matched SNPs, no heat map")

    has_train_priv = train is not None and "privacy" in families
    n_steps = _count_steps(families, has_train_priv, phenos["real"] is not None, reference)
    bar = _progress(n_steps, progress)
    state = {"name": None, "t": time.perf_counter(), "cpu": time.process_time()}

    def step(name: str) -> None:
        """Start step ``name``: the bar advances past the previous one, whose wall and CPU
        seconds (all threads; robust to a shared machine) are kept."""
        now, cpu = time.perf_counter(), time.process_time()
        if state["name"] is not None:
            timings[state["name"]] = round(now - state["t"], 3)
            cpu_timings[state["name"]] = round(cpu - state["cpu"], 3)
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.set_description(name[:40])
        state.update(name=name, t=now, cpu=cpu)

    step("read and match SNPs")
    g = {n: _aligned(c, match.index[n], match.flip[n]).to(dev) for n, c in cohorts.items()}
    sides = {n: _Side.of(g[n], phenos[n]) for n in cohorts}
    ctx = _Ctx(snps, families, k, ld_window, seed, region_idx, sides["real"].freq, notes, step)
    cov = covariates or {}

    t_side = sides.get("train")
    tt_cache: dict[str, Any] = {"masks": {}}
    gen_ref = torch.Generator().manual_seed(seed + 1)
    perm = torch.randperm(sides["real"].g.shape[0], generator=gen_ref)
    half_a, half_b = perm[: len(perm) // 2].sort().values, perm[len(perm) // 2:].sort().values
    if t_side is not None and "privacy" in families:
        # one train x train scan serves the main block and the reference block
        mu = (2 * ctx.ref_freq).nan_to_num(0.0).float()
        pt = prepare(t_side.g, mu)
        gen_t = torch.Generator().manual_seed(seed + 2)
        sizes = {sides["synthetic"].g.shape[0]}
        if reference:
            sizes.add(len(half_b))
        masks = {f"bal{n}": balanced_mask(pt.n, n, gen_t) for n in sorted(sizes)}
        step("distances train x train")
        tt = scan(pt, pt, Scan(k=1, col_subsets=masks), same=True)
        tt_cache.update(prepared=pt, masks={n: masks[f"bal{n}"] for n in sizes})
        tt_cache["scans"] = {n: _rename(tt, f"bal{n}") for n in sizes}

    main_cache = _cache_for(tt_cache, sides["synthetic"].g.shape[0])
    res, det = _block(sides["real"], sides["synthetic"], t_side, main_cache, ctx,
                      (cov.get("real"), cov.get("synthetic")), "real vs synthetic")
    result: dict[str, Any] = {}
    ref: dict[str, Any] = {}
    if reference:
        ra = _subside(sides["real"], half_a, cov.get("real"))
        rb = _subside(sides["real"], half_b, cov.get("real"))
        ref_cache = _cache_for(tt_cache, len(half_b))
        ref, ref_det = _block(ra[0], rb[0], t_side, ref_cache, ctx, (ra[1], rb[1]),
                              "real vs real")
        det["reference"] = ref_det
        ref = {key: _jsonable(v) for key, v in ref.items()}
    step("done")
    if bar is not None:
        bar.close()
    timings.pop("done", None)
    cpu_timings.pop("done", None)

    for key in HEADLINE:
        result[key] = None
    result.update({key: _jsonable(v) for key, v in res.items()})
    result["aats_real_baseline"] = ref.get("aats")
    result["reference"] = ref
    result["info"] = {
        "n_real": cohorts["real"].n_individuals,
        "n_synthetic": cohorts["synthetic"].n_individuals,
        "n_train": cohorts["train"].n_individuals if "train" in cohorts else None,
        "n_snps_matched": n_snps,
        "snps_per_cohort": {n: c.n_snps for n, c in cohorts.items()},
        "unmatched_snps": match.unmatched,
        "allele_mismatch_snps": match.allele_mismatch,
        "flipped_snps": {n: int(f.sum()) for n, f in match.flip.items() if n != "real"},
        "missing_rate": {n: float(sd.counts[:, 3].sum() / max(1, sd.counts.sum()))
                         for n, sd in sides.items()},
        "reference_halves": [len(half_a), len(half_b)],
        "families": sorted(families),
        "k": k,
        "ld_window": ld_window,
        "kinship_threshold": KINSHIP_SECOND_DEGREE,
        "region": None if reg is None else f"{reg[0]}:{reg[1]}-{reg[2]}",
        "seed": seed,
        "device": str(dev),
        "notes": notes,
        "seconds": {**timings, "total": round(time.perf_counter() - t_start, 3)},
        "cpu_seconds": {**cpu_timings, "total": round(time.process_time() - cpu_start, 3)},
    }
    det["snps"] = snps
    det["region_idx"] = region_idx
    result["details"] = det
    return result


def _rename(res: ScanResult, name: str) -> ScanResult:
    """A view of a train x train scan whose subset ``name`` is called "bal"."""
    return ScanResult(knn_dist={"bal": res.knn_dist[name]})


def _cache_for(tt_cache: dict, n_syn: int) -> dict:
    if "scans" not in tt_cache:
        return {"masks": {}}
    return {"prepared": tt_cache["prepared"], "scan": tt_cache["scans"][n_syn],
            "masks": {n_syn: tt_cache["masks"][n_syn]}}


def _subside(side: _Side, rows: torch.Tensor, cov: np.ndarray | None) -> tuple[_Side, Any]:
    idx = rows.numpy()
    y = None if side.pheno is None else side.pheno[idx]
    return _Side.of(side.g[rows.to(side.g.device)], y), (None if cov is None else
                                                        np.asarray(cov)[idx])


def _count_steps(families: set[str], train_privacy: bool, has_pheno: bool,
                 reference: bool) -> int:
    """Number of `step` calls evaluate makes (the progress bar's total)."""
    per = sum(f in families for f in ("frequency", "ld", "pca"))
    per += int("gwas" in families and has_pheno)
    if families & {"grm", "knn", "privacy"}:
        per += 3 + int(bool(families & {"knn", "privacy"})) + 2 * int(train_privacy)
    return 1 + int(train_privacy) + per * (2 if reference else 1)


def _progress(total: int, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="step", leave=False)


def _jsonable(v: Any) -> Any:
    """Numbers and lists as plain Python (NaN -> None) for report.json."""
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.ndarray):
        return [_jsonable(x) for x in v.tolist()]
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return None if not math.isfinite(float(v)) else float(v)
    return v
