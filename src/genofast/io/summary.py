"""`genofast info`: a short summary of a PLINK fileset.

The cohort is read packed (`read_plink`) and counted in chunks of individuals (unpack a chunk,
add up its genotype counts per SNP), so memory stays at the packed size plus one chunk.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from genofast.io.plink import plink_paths, read_plink
from genofast.io.tables import PathLike
from genofast.ops import unpack

MAF_BINS = (0.0, 0.01, 0.05, 0.1, 0.2, 0.5)
MAF_BIN_LABELS = ("<0.01", "0.01-0.05", "0.05-0.1", "0.1-0.2", "0.2-0.5")
_CHUNK_GENOTYPES = 1 << 24


def genotype_counts(packed: torch.Tensor, n_snps: int) -> np.ndarray:
    """Per-SNP counts of genotypes 0, 1, 2 and missing: int64 [M, 4], chunked over individuals."""
    counts = torch.zeros(4, n_snps, dtype=torch.int64)
    step = max(1, _CHUNK_GENOTYPES // max(1, n_snps))
    for r in range(0, packed.shape[0], step):
        g = unpack(packed[r:r + step], n_snps)
        for k, v in enumerate((0, 1, 2, -1)):
            counts[k] += (g == v).sum(0, dtype=torch.int64).cpu()
    return counts.t().numpy()


def _num(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


def summarize(prefix: PathLike) -> dict[str, Any]:
    """Individuals, SNPs, SNPs per chromosome, missing rate and a MAF summary, as a JSON-ready dict.

    MAF uses called genotypes only; SNPs with no called genotype are counted apart and left out
    of the MAF statistics. Monomorphic = MAF 0 (they fall in the "<0.01" bin too).
    """
    bed, _, _ = plink_paths(prefix)
    cohort = read_plink(prefix)
    n, m = cohort.n_individuals, cohort.n_snps
    counts = genotype_counts(cohort.genotypes, m)
    called = counts[:, :3].sum(1)
    n_missing = int(counts[:, 3].sum())
    per_chrom: dict[str, int] = {}
    for c in cohort.snps.chromosome.tolist():
        per_chrom[c] = per_chrom.get(c, 0) + 1

    ok = called > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        freq = (counts[:, 1] + 2 * counts[:, 2]) / (2.0 * called)
    maf = np.minimum(freq, 1.0 - freq)[ok]
    hist = np.histogram(maf, bins=MAF_BINS)[0] if len(maf) else np.zeros(5, dtype=np.int64)
    return {
        "prefix": str(bed)[: -len(".bed")],
        "n_individuals": n,
        "n_snps": m,
        "snps_per_chromosome": per_chrom,
        "missing_rate": _num(n_missing / (n * m)) if n * m else None,
        "n_missing_genotypes": n_missing,
        "n_snps_all_missing": int((~ok).sum()),
        "maf": {
            "mean": _num(float(maf.mean())) if len(maf) else None,
            "median": _num(float(np.median(maf))) if len(maf) else None,
            "n_monomorphic": int((maf == 0).sum()),
            "histogram": {lab: int(v) for lab, v in zip(MAF_BIN_LABELS, hist, strict=True)},
        },
    }


def format_summary(s: dict[str, Any]) -> str:
    """Human-readable text of `summarize`'s dict."""

    def f(x: float | None, spec: str = ".4f") -> str:
        return "n/a" if x is None else format(x, spec)

    lines = [
        f"fileset        {s['prefix']}",
        f"individuals    {s['n_individuals']:,}",
        f"SNPs           {s['n_snps']:,}",
        f"missing rate   {f(s['missing_rate'], '.6f')} ({s['n_missing_genotypes']:,} genotypes)",
    ]
    if s["n_snps_all_missing"]:
        lines.append(f"SNPs with no called genotype: {s['n_snps_all_missing']:,}")
    chroms = s["snps_per_chromosome"]
    lines.append(f"chromosomes    {len(chroms)}")
    width = max((len(c) for c in chroms), default=0)
    lines += [f"  {c:>{width}}  {k:,}" for c, k in chroms.items()]
    maf = s["maf"]
    lines.append(f"MAF            mean {f(maf['mean'])}, median {f(maf['median'])}, "
                 f"monomorphic {maf['n_monomorphic']:,}")
    lines += [f"  {lab:>9}  {k:,}" for lab, k in maf["histogram"].items()]
    return "\n".join(lines)
