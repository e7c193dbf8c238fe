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

Large cohorts: ``max_individuals=N`` reads a seeded random subset of N individuals (file order)
of every larger cohort, phenotypes and covariates following the same rows; before unpacking,
`memory_needed` is compared with the memory available on the device (`available_memory`), and on
CUDA `host_memory_needed` with the host's, and a run that would not fit stops with a ValueError
suggesting an N that fits.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genofast.io import Cohort, read_fam, read_plink
from genofast.io.plink import plink_paths
from genofast.metrics import counts as cnt
from genofast.metrics import gwas as gw
from genofast.metrics import pca as pca_mod
from genofast.metrics.grm import KINSHIP_SECOND_DEGREE, grm_spec, hist_summary
from genofast.metrics.pairwise import (
    BLOCK_D,
    BLOCK_Q,
    COLUMN_BLOCK_BYTES,
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


#: Random stream of each cohort's ``max_individuals`` subset: seed (``seed``, stream).
SUBSET_STREAMS = {"real": 0, "synthetic": 1, "train": 2}


def subset_rows(n: int, max_individuals: int | None, seed: int, stream: int) -> np.ndarray | None:
    """Rows (sorted, file order) of the seeded random subset of ``max_individuals`` of ``n``
    individuals that `evaluate` uses, or None when all ``n`` are kept."""
    if max_individuals is None or n <= max_individuals:
        return None
    rng = np.random.default_rng([seed % 2**64, stream])  # SeedSequence takes no negative seed
    return np.sort(rng.choice(n, size=max_individuals, replace=False))


def _load(c: CohortLike, max_individuals: int | None, seed: int, stream: int,
          ) -> tuple[Cohort, int, np.ndarray | None]:
    """The cohort, its number of individuals in the file (or object) and the rows kept (None:
    all, see `subset_rows`). A PLINK prefix is read as only the kept rows, so a cohort too big
    to hold is never read whole."""
    if max_individuals is None:
        cohort = c if isinstance(c, Cohort) else read_plink(c)
        return cohort, cohort.n_individuals, None
    if isinstance(c, Cohort):
        rows = subset_rows(c.n_individuals, max_individuals, seed, stream)
        return (c if rows is None else c.subset(samples=rows)), c.n_individuals, rows
    fam = read_fam(plink_paths(c)[2])  # read once: read_plink takes it as is
    rows = subset_rows(len(fam), max_individuals, seed, stream)
    return read_plink(c, samples=rows, fam=fam), len(fam), rows


def _follow_rows(values: Any, rows: np.ndarray | None, n_file: int, what: str) -> Any:
    """Per-individual ``values`` (phenotype or covariates, one row per individual of the file)
    at the kept ``rows`` of a subsampled cohort; unchanged when nothing was subsampled."""
    if values is None or rows is None:
        return values
    arr = np.asarray(values)
    if len(arr) != n_file:
        raise ValueError(f"{what}: {len(arr)} rows, expected one per individual of the cohort "
                         f"({n_file}) to select the rows kept by max_individuals")
    return arr[rows]


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
# memory
# ---------------------------------------------------------------------------------------------


def memory_needed(sizes: Mapping[str, int], n_snps: int, families: Iterable[str], *,
                  reference: bool, on_cpu: bool,
                  gwas_cohorts: Iterable[str] = ("real", "synthetic")) -> int:
    """Estimated peak bytes `evaluate` needs on its device once the packed cohorts are read.

    ``sizes``: individuals per cohort ("real", "synthetic", "train"). With M = ``n_snps``:

    * held for the whole run: int8 genotypes, M bytes per individual of every cohort and once
      more per real individual with ``reference`` (the two halves are copies); on the CPU also
      their 2-bit packed copies (M / 4 bytes per individual);
    * plus the largest transient of one step (steps run one after the other), over the largest
      cohort n it runs on:
      GWAS (real and ``gwas_cohorts``): n x (4 x 8 x min(M, gwas.SNP_CHUNK) + M), four float64
      SNP chunks (dosages, squares, missing mask, temporaries; 3.5 measured on the CPU) and a
      copy of the genotypes of the individuals with a phenotype;
      PCA (real, synthetic): n x 2 x 4 x min(M, pca.SNP_CHUNK), two float32 copies of a chunk;
      distances: 4 M (q + d) + 16 q d with q, d the rows of a block (pairwise.BLOCK_Q, BLOCK_D),
      float32 copies of both sides' rows and four float32 [q, d] blocks.
    """
    fam = set(families)
    m = int(n_snps)
    held = m * (sum(sizes.values()) + (sizes.get("real", 0) if reference else 0))
    if on_cpu:
        held += held // 4
    transient = [0]
    if "gwas" in fam:
        n = max(sizes.get(c, 0) for c in {"real", *gwas_cohorts})
        transient.append(n * (4 * 8 * min(m, gw.SNP_CHUNK) + m))
    if "pca" in fam:
        n = max(sizes.get("real", 0), sizes.get("synthetic", 0))
        transient.append(n * 2 * 4 * min(m, pca_mod.SNP_CHUNK))
    if fam & {"grm", "knn", "privacy"}:
        n = max(sizes.values())
        q, d = min(n, BLOCK_Q), min(n, BLOCK_D, max(1, COLUMN_BLOCK_BYTES // max(1, m)))
        transient.append(4 * m * (q + d) + 16 * q * d)
    return held + max(transient)


def host_memory_needed(sizes: Mapping[str, int], n_snps: int, *, reference: bool) -> int:
    """Estimated peak host bytes of `evaluate` on a CUDA device, once the packed cohorts are
    read: the 2-bit packed copy of every cohort's genotypes held for the run (M / 4 bytes per
    individual, once more per real individual with ``reference``) plus the largest cohort
    unpacked to int8 on the host (M bytes per individual), before it moves to the device."""
    m = int(n_snps)
    held = m // 4 * (sum(sizes.values()) + (sizes.get("real", 0) if reference else 0))
    return held + m * max(sizes.values(), default=0)


#: Where the process's control groups are described and mounted (tests point them elsewhere).
PROC_CGROUP = "/proc/self/cgroup"
CGROUP_ROOT = "/sys/fs/cgroup"
_NO_LIMIT = 1 << 60  # cgroup v1 writes "unlimited" as a number near 2**63


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None  # "max" (v2): no limit


def _stat_value(path: Path, key: str) -> int:
    """One counter of a cgroup's memory.stat (0 when absent)."""
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except (OSError, ValueError):
        pass
    return 0


def cgroup_headroom() -> int | None:
    """Bytes this process may still use under its memory control group and every ancestor that
    sets a limit (a container's or a SLURM job's; Linux cgroup v2 or v1), None when none does.
    Usage counts the working set: usage minus inactive file cache, which the kernel reclaims
    before it kills anyone (as `docker stats` and the kubelet count)."""
    try:
        lines = Path(PROC_CGROUP).read_text().splitlines()
    except OSError:
        return None
    places = []  # (hierarchy root, the process's group in it, limit, usage, inactive-file key)
    for line in lines:
        _, controllers, path = line.split(":", 2)
        parts = Path(path.strip("/")).parts
        if controllers == "":  # v2 (unified hierarchy)
            places.append((Path(CGROUP_ROOT), parts, "memory.max", "memory.current",
                           "inactive_file"))
        elif "memory" in controllers.split(","):  # v1 memory controller
            places.append((Path(CGROUP_ROOT) / "memory", parts, "memory.limit_in_bytes",
                           "memory.usage_in_bytes", "total_inactive_file"))
    best: int | None = None
    for root, parts, limit_file, usage_file, inactive in places:
        for depth in range(len(parts), -1, -1):  # the group, then each ancestor up to the root
            folder = root.joinpath(*parts[:depth])
            limit = _read_int(folder / limit_file)
            usage = _read_int(folder / usage_file)
            if limit is not None and limit < _NO_LIMIT and usage is not None:
                used = usage - _stat_value(folder / "memory.stat", inactive)
                room = max(0, limit - max(0, used))
                best = room if best is None else min(best, room)
    return best


def available_memory(device: torch.device) -> int | None:
    """Bytes available to `evaluate` on ``device``, None when unknown: on the CPU (Linux) the
    smaller of /proc/meminfo's MemAvailable and the control groups' headroom
    (`cgroup_headroom`), so a container or batch-job limit counts; on a CUDA device free plus
    PyTorch-cached bytes."""
    if device.type == "cuda":
        try:
            free, _ = torch.cuda.mem_get_info(device)
        except RuntimeError:
            return None
        return int(free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device))
    if device.type != "cpu":
        return None
    avail = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024  # kB
                    break
    except (OSError, ValueError, IndexError):
        avail = None
    room = cgroup_headroom()
    if avail is None or room is None:
        return room if avail is None else avail
    return min(avail, room)


def _check_memory(sizes: Mapping[str, int], n_snps: int, families: set[str], reference: bool,
                  gwas_cohorts: tuple[str, ...], device: torch.device) -> dict[str, int | None]:
    """Raise a ValueError, with a ``max_individuals`` that fits, when `memory_needed` exceeds
    `available_memory` on ``device`` or, on a non-CPU device, `host_memory_needed` exceeds the
    host's (each check skipped when unknown); returns the numbers for the report."""
    on_cpu = device.type == "cpu"
    places = [device] if on_cpu else [device, torch.device("cpu")]

    def needs(cap: int | None) -> list[int]:
        capped = {c: n if cap is None else min(n, cap) for c, n in sizes.items()}
        out = [memory_needed(capped, n_snps, families, reference=reference, on_cpu=on_cpu,
                             gwas_cohorts=gwas_cohorts)]
        if not on_cpu:
            out.append(host_memory_needed(capped, n_snps, reference=reference))
        return out

    def fits(need: list[int]) -> bool:
        return all(a is None or n <= a for n, a in zip(need, avail, strict=True))

    needed, avail = needs(None), [available_memory(d) for d in places]
    report = {"needed_bytes": needed[0], "available_bytes": avail[0]}
    if not on_cpu:
        report.update(host_needed_bytes=needed[1], host_available_bytes=avail[1])
    if fits(needed):
        return report
    lo, hi = 4, max(sizes.values())  # largest cap that fits (needs grow with the cap)
    if not fits(needs(lo)):
        hint = "even 4 individuals per cohort do not fit; use fewer SNPs or another device"
    else:
        while lo < hi:
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if fits(needs(mid)) else (lo, mid - 1)
        digits = 10 ** max(0, len(str(lo)) - 2)  # two significant digits, rounded down
        cap = max(4, lo // digits * digits)
        hint = (f"pass --max-individuals {cap} (evaluate(..., max_individuals={cap})) to "
                f"evaluate a seeded random subset of each larger cohort")
    i = next(i for i, (n, a) in enumerate(zip(needed, avail, strict=True))
             if a is not None and n > a)
    counts = ", ".join(f"{n:,} {c}" for c, n in sizes.items())
    what = ("unpacked to int8, plus working space" if i == 0 else
            f"held 2-bit packed, each cohort unpacked to int8 before it moves to {device.type}")
    raise ValueError(f"evaluate needs about {needed[i] / 2**30:.1f} GiB of {places[i].type} "
                     f"memory ({counts} individuals x {n_snps:,} SNPs {what}) but "
                     f"{avail[i] / 2**30:.1f} GiB is available; {hint}")


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
    max_individuals: int | None = None,
) -> dict[str, Any]:
    """Compare ``synthetic`` with ``real`` (held-out real people) and, for privacy, ``train``.

    Cohorts are `Cohort` objects or PLINK prefixes. ``pheno``: phenotype file path (column
    ``pheno_name``, default the first), `Phenotypes` table or mapping ``{"real": y, "synthetic":
    y, "train": y}``; ``covariates``: mapping cohort name -> [N, C] array for the GWAS.
    ``region``: ``"CHR:START-END"`` for the r^2 heat map (default: the first 300 SNPs).
    ``metrics``: subset of FAMILIES (default all); ``reference=False`` skips real vs real.
    ``max_individuals``: a cohort with more individuals is reduced to a random subset of that
    many (seeded by ``seed``, one stream per cohort, file order), read from disk as only those
    rows; mapping phenotypes and covariates (one row per individual) follow the same rows.
    Raises ValueError when the run will not fit in the device's memory (`memory_needed`; on
    CUDA also the host's, `host_memory_needed`).

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

    if max_individuals is not None and max_individuals < 4:
        raise ValueError(f"max_individuals must be at least 4, got {max_individuals}")
    given = {"real": real, "synthetic": synthetic}
    if train is not None:
        given["train"] = train
    cohorts: dict[str, Cohort] = {}
    n_file: dict[str, int] = {}
    kept: dict[str, np.ndarray | None] = {}
    for name, c in given.items():
        cohorts[name], n_file[name], kept[name] = _load(c, max_individuals, seed,
                                                         SUBSET_STREAMS[name])
    subsampled = {n: [n_file[n], cohorts[n].n_individuals] for n in cohorts
                  if kept[n] is not None}
    for name, (n_in, n_used) in subsampled.items():
        notes.append(f"{name}: a seeded random subset of {n_used:,} of its {n_in:,} individuals "
                     f"was evaluated (max_individuals={max_individuals})")
    if isinstance(pheno, Mapping):
        pheno = {n: _follow_rows(v, kept.get(n), n_file.get(n, 0), f"pheno[{n!r}]")
                 for n, v in pheno.items()}
    covariates = {n: _follow_rows(v, kept.get(n), n_file.get(n, 0), f"covariates[{n!r}]")
                  for n, v in (covariates or {}).items()}
    if train is None:
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

    memory = _check_memory({n: c.n_individuals for n, c in cohorts.items()}, n_snps, families,
                           reference, ("real", "synthetic") if phenos["synthetic"] is not None
                           else ("real",), dev)

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
        "subsampled": subsampled,
        "memory": memory,
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
