"""Fidelity, association and privacy metrics of a synthetic cohort against a real one.

Per-SNP and LD statistics (Numba on the 2-bit packed bytes; ``packed`` is the individual-major
``uint8 [N, ceil(M/4)]`` of ``genofast.ops.codec``, torch or numpy; missing genotypes are left
out of every statistic, never counted as 0). Compute the counts once per cohort, the rest of
the per-SNP statistics derive from them.

genofast.metrics.counts
    genotype_counts(packed, n_snps) -> int64 [M, 4]        individuals with code 0, 1, 2, missing
    allele_frequencies(counts) -> float64 [M]               allele_1 frequency (NaN: none called)
    minor_allele_frequencies(counts) -> float64 [M]
    genotype_frequencies(counts) -> float64 [M, 3]          among called individuals
    allele_freq_r(counts_a, counts_b) -> float              Pearson r of allele frequencies
    genotype_freq_r(counts_a, counts_b) -> float            Pearson r of genotype frequencies
    hwe_pvalues(counts) -> float64 [M]                      exact HWE test (as plink --hardy)
    heterozygosity(packed, n_snps, ref_freq=None) -> Heterozygosity
        per individual: n_called, observed_het, expected_het, het_rate, f (as plink --het)
    folded_sfs(counts, n_bins=50) -> (edges, fractions)     MAF histogram on [0, 0.5]
    js_divergence(p, q) -> float                            Jensen-Shannon divergence, bits
    sfs_js_divergence(counts_a, counts_b, n_bins=50) -> float        maf_js_divergence
    hudson_fst(counts_a, counts_b) -> float                 Hudson F_ST, ratio of averages
    hudson_fst_components(counts_a, counts_b) -> (num [M], den [M])

genofast.metrics.ld
    ld_window(packed, n_snps, chromosome=None, window=100, squared=True) -> float32 [M, W-1]
        r^2(i, i + d) at [i, d - 1] within each chromosome; NaN where undefined
    ld_r2_mae(r2_a, r2_b) -> float                          mean |difference| over shared pairs
    decay_edges(chromosome, bp, window=100, n_bins=20) -> float64 [B + 1]
    ld_decay(r2, chromosome, bp, edges=None, n_bins=20) -> LDDecay
        mean r^2 per log-spaced bp-distance bin, pooled and per chromosome
    ld_decay_mae(r2_a, r2_b, chromosome, bp, n_bins=20) -> float
    ld_summary(real_packed, synthetic_packed, n_snps, chromosome, bp, window=100) -> dict
        ld_r2_mae, ld_decay_mae, ld_window, ld_pairs and the "_decay" curves for plotting
    region_index(chromosome, bp, region=None, max_snps=300) -> int64 [K]
        SNPs of "CHR:START-END" (or the first max_snps)
    r2_matrix(packed, n_snps, index, squared=True) -> float32 [K, K]
    ld_heatmap(real_packed, synthetic_packed, n_snps, chromosome, bp, region=None,
               max_snps=300) -> (float32 [K, K] real below / synthetic above, index [K])
    select_packed(packed, n_snps, index) -> uint8 [N, ceil(K/4)]

genofast.metrics.mosaic (phased haplotypes, 0/1)
    copying_path(query [n, M], panel [K, M], switch_cost=5.0) -> Mosaic
        switches and mismatches on each query's cheapest path through the panel's haplotypes

Distance and matrix metrics (PCA, GRM, k-NN, GWAS, privacy) live in their own modules
(pca, grm, knn, gwas, privacy, pairwise) and the orchestrator in ``evaluate``.
"""

from genofast.metrics.counts import (
    Heterozygosity,
    allele_freq_r,
    allele_frequencies,
    folded_sfs,
    genotype_counts,
    genotype_freq_r,
    genotype_frequencies,
    heterozygosity,
    hudson_fst,
    hudson_fst_components,
    hwe_pvalues,
    js_divergence,
    minor_allele_frequencies,
    sfs_js_divergence,
)
from genofast.metrics.ld import (
    DEFAULT_WINDOW,
    LDDecay,
    decay_edges,
    ld_decay,
    ld_decay_mae,
    ld_heatmap,
    ld_r2_mae,
    ld_summary,
    ld_window,
    r2_matrix,
    region_index,
    select_packed,
)

__all__ = [
    "DEFAULT_WINDOW",
    "Heterozygosity",
    "LDDecay",
    "allele_freq_r",
    "allele_frequencies",
    "decay_edges",
    "folded_sfs",
    "genotype_counts",
    "genotype_freq_r",
    "genotype_frequencies",
    "heterozygosity",
    "hudson_fst",
    "hudson_fst_components",
    "hwe_pvalues",
    "js_divergence",
    "ld_decay",
    "ld_decay_mae",
    "ld_heatmap",
    "ld_r2_mae",
    "ld_summary",
    "ld_window",
    "minor_allele_frequencies",
    "r2_matrix",
    "region_index",
    "select_packed",
    "sfs_js_divergence",
]

# --- population, association and privacy metrics and the evaluate orchestrator --------------
# (pca, grm, knn, gwas, privacy, pairwise, evaluate; maintained with those modules)
from genofast.metrics.evaluate import FAMILIES, HEADLINE, evaluate, match_snps  # noqa: E402
from genofast.metrics.grm import KINSHIP_SECOND_DEGREE, vanraden_grm  # noqa: E402
from genofast.metrics.gwas import GwasResult, genomic_control, linear_gwas  # noqa: E402
from genofast.metrics.knn import knn_precision_recall  # noqa: E402
from genofast.metrics.pca import PCAFit, fit_pca, pca_wasserstein, project  # noqa: E402
from genofast.metrics.privacy import adversarial_accuracy, auc, privacy_metrics  # noqa: E402

__all__ += [
    "FAMILIES",
    "HEADLINE",
    "KINSHIP_SECOND_DEGREE",
    "GwasResult",
    "PCAFit",
    "adversarial_accuracy",
    "auc",
    "evaluate",
    "fit_pca",
    "genomic_control",
    "knn_precision_recall",
    "linear_gwas",
    "match_snps",
    "pca_wasserstein",
    "privacy_metrics",
    "project",
    "vanraden_grm",
]
