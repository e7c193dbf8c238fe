"""Is the AATS gap on AGBL4 in how haplotypes are paired, or in the haplotypes themselves?

The AGBL4 halves are phased VCFs (../shared/data/real/agbl4_1000g_chr1/README.md), so each
person is two haplotypes (`genofast.io.read_vcf`). Three commands, after
`diffusion_acceptance.py splits --out-dir DIR`:

    python bench/haplotype_check.py repaired --out-dir DIR
        DIR/repaired: split1's real haplotypes paired at random into 1,252 people, the cohort a
        perfect haplotype model with random pairing would give (evaluate it like any synthetic
        cohort: `genofast evaluate --real DIR/split2 --synthetic DIR/repaired --train DIR/split1`).
    python bench/haplotype_check.py nearest --out-dir DIR [--run RUN --synthetic PREFIX
            [--seed S] [--steps K] [--correct C] [--correct-t T]]
        the Hamming distance from each haplotype to its nearest split2 haplotype, and the
        mismatches with it by split1 MAF bin, for split1 -> split2 and split2 -> split2 (the
        real reference); with a run trained by `genofast train --vcf`, also for the 2n
        haplotypes behind PREFIX = `genofast sample RUN --n n --seed S --out PREFIX` (sampled
        again the same way, and checked to add up to PREFIX.bed) -> split2 and -> themselves.
        ``copies``: the fraction of haplotypes identical to a split1 haplotype (split2's is the
        real rate: common haplotypes are shared). A synthetic haplotype farther from real ones at
        every MAF is a mosaic of real haplotypes, not a real haplotype with rare alleles lost.
    python bench/haplotype_check.py mosaic --out-dir DIR [--run RUN --synthetic PREFIX ...]
        each haplotype's cheapest path through split1's haplotypes
        (`genofast.metrics.mosaic.copying_path`, a switch costs --switch-cost mismatches):
        switches and mismatches per haplotype for split2 (held-out real), for haplotypes of
        independent SNPs drawn from split1's frequencies, and for the run's sampled haplotypes
        (as for ``nearest``); and split2's haplotypes through the sampled ones, which says how
        well the synthetic haplotypes cover real ones (split2 -> split1 is the real reference
        both ways). Tells a mosaic of too-short stretches (switches) from alleles that no
        stretch of the panel carries (mismatches).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from genofast.ancestry import fill_ancestry
from genofast.io import read_plink, read_vcf, write_plink
from genofast.metrics.mosaic import copying_path
from genofast.runtime import keep_freed_memory
from genofast.sample import add_haplotypes
from genofast.train import autocast, load_weights, run_precision

DATA = Path(__file__).resolve().parents[2] / "shared/data/real/agbl4_1000g_chr1"
MAF_BINS = ((0.0, 0.01), (0.01, 0.02), (0.02, 0.05), (0.05, 0.2), (0.2, 0.5))


def real_haplotypes(k: int) -> torch.Tensor:
    """int8 [2504, 4053] haplotypes of split k (biallelic SNVs, as the splits' .bim)."""
    return read_vcf(DATA / f"AGBL4_split{k}.vcf.gz").haplotypes.unpack()


def repaired(out: Path, seed: int = 5) -> None:
    """DIR/repaired (module docstring)."""
    phased = read_vcf(DATA / "AGBL4_split1.vcf.gz")
    hap = phased.haplotypes.unpack()
    hap = hap[torch.from_numpy(np.random.default_rng(seed).permutation(len(hap)))]
    write_plink(out / "repaired", hap[0::2] + hap[1::2], phased.haplotypes.snps)
    print(f"wrote {out}/repaired ({len(hap) // 2} people of re-paired split1 haplotypes)")


@torch.no_grad()
def sampled_haplotypes(run: Path, prefix: Path, seed: int, batch: int = 1024,
                       **step_kw: float) -> torch.Tensor:
    """The 2n haplotypes behind `genofast sample RUN --n n --seed S --out PREFIX` (the same
    draws: rows keyed 2i, 2i+1, person i's pair of PCs drawn by `fill_ancestry`), checked to add up
    to PREFIX.bed."""
    model, meta = load_weights(run)
    if not meta.get("phased"):
        raise ValueError(f"{run} was not trained on a phased VCF (genofast train --vcf)")
    people = read_plink(prefix).unpack()
    n, specs = len(people), meta["traits"]
    cond = None
    if specs:
        blank = np.full((2 * n, len(specs)), np.nan, np.float32)
        cond = torch.from_numpy(fill_ancestry(blank, specs, run, seed))
    out = []
    dev = torch.device("cpu")
    for start in range(0, n, batch):
        b = min(batch, n - start)
        c = None if cond is None else cond[2 * start:2 * (start + b)]
        with autocast(dev, run_precision(meta, dev)):
            out.append(model.sample(2 * b, c, seed=seed, row_offset=2 * start,
                                    **{k: v for k, v in step_kw.items() if v is not None}))
    hap = torch.cat(out)
    if not torch.equal(add_haplotypes(hap), people):
        raise ValueError(f"the haplotypes sampled from {run} do not add up to {prefix}.bed: "
                         "give the seed and sampling settings it was sampled with")
    return hap.clamp(max=1)


def nearest(out: Path, synthetic: dict[str, torch.Tensor]) -> dict:
    """Haplotype-level nearest-neighbour distances, mismatches by MAF bin, and copies."""
    one, two = real_haplotypes(1).float(), real_haplotypes(2).float()
    p = one.mean(0).numpy()
    maf = np.minimum(p, 1 - p)
    bins = [(lo, hi, torch.from_numpy((maf > lo) & (maf <= hi))) for lo, hi in MAF_BINS]
    cases = [("split1 -> split2", one, two), ("split2 -> split2", two, None)]
    for name, h in synthetic.items():
        cases += [(f"{name} -> split2", h.float(), two), (f"{name} -> itself", h.float(), None)]
    result = {}
    for name, a, b in cases:
        d = torch.cdist(a, a if b is None else b, p=1)
        if b is None:
            d.fill_diagonal_(float("inf"))
        dist, j = d.min(1)
        miss = (a - (a if b is None else b)[j]).abs()
        result[name] = {"median_hamming": float(dist.median()),
                        "mean_hamming": round(float(dist.mean()), 1),
                        "mismatches_by_maf": {
                            f"{lo}-{hi}": round(float(miss[:, m].sum(1).mean()), 1)
                            for lo, hi, m in bins}}
    result["copies_of_split1"] = {
        name: round(float((torch.cdist(h.float(), one, p=1).min(1).values == 0).double().mean()),
                    4) for name, h in {"split2": two, **synthetic}.items()}
    result["snps_by_maf"] = {f"{lo}-{hi}": int(m.sum()) for lo, hi, m in bins}
    print(json.dumps(result, indent=2))
    return result


def mosaic(synthetic: dict[str, torch.Tensor], switch_cost: float, seed: int = 0) -> dict:
    """Switches and mismatches of each cohort's haplotypes through split1's, and of split2's
    through each synthetic cohort's (module docstring)."""
    panel = real_haplotypes(1)
    freq = panel.double().mean(0)
    rng = torch.Generator().manual_seed(seed)
    indep = (torch.rand(len(panel), panel.shape[1], generator=rng, dtype=torch.float64)
             < freq).to(torch.int8)
    held = real_haplotypes(2)
    cases = [("split2 -> split1", held, panel), ("independent SNPs -> split1", indep, panel)]
    for name, h in synthetic.items():  # how real each is; how well they cover real haplotypes
        cases += [(f"{name} -> split1", h, panel), (f"split2 -> {name}", held, h)]
    result = {}
    for name, h, ref in cases:
        path = copying_path(h, ref, switch_cost)
        result[name] = {"haplotypes": len(h),
                        "switches_mean": round(float(path.switches.mean()), 2),
                        "switches_median": float(np.median(path.switches)),
                        "mismatches_mean": round(float(path.mismatches.mean()), 2),
                        "mismatches_median": float(np.median(path.mismatches)),
                        "snps_per_stretch": round(h.shape[1] / (1 + float(path.switches.mean())))}
    result["switch_cost"] = switch_cost
    print(json.dumps(result, indent=2))
    return result


def main() -> None:
    keep_freed_memory()  # as the genofast command does: sampling runs 1.8x faster with it
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=("repaired", "nearest", "mosaic"))
    ap.add_argument("--out-dir", type=Path, required=True)
    ap.add_argument("--run", type=Path)
    ap.add_argument("--synthetic", type=Path)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int)
    ap.add_argument("--correct", type=int)
    ap.add_argument("--correct-t", type=float)
    ap.add_argument("--switch-cost", type=float, default=5.0, help="mosaic: in mismatches")
    args = ap.parse_args()
    if args.what == "repaired":
        repaired(args.out_dir)
        return
    if (args.run is None) != (args.synthetic is None):
        ap.error(f"{args.what}: give --run and --synthetic together")
    synthetic = {}
    if args.run is not None:
        synthetic[args.synthetic.name] = sampled_haplotypes(
            args.run, args.synthetic, args.seed, steps=args.steps, correct=args.correct,
            correct_t=args.correct_t)
    if args.what == "mosaic":
        mosaic(synthetic, args.switch_cost, args.seed)
    else:
        nearest(args.out_dir, synthetic)


if __name__ == "__main__":
    main()
