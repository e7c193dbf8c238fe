"""Issue-4 acceptance on real data: the AGBL4 splits, a simulated trait, and the conditional check.

The unconditional acceptance is three CLI calls per transition (bench/RESULTS.md lists them);
this script makes their inputs and scores the conditional one:

    python bench/diffusion_acceptance.py splits --out-dir DIR
        DIR/split1, DIR/split2: the two halves of ../shared/data/real/agbl4_1000g_chr1
        (AGBL4_biallelic_snps, by FID), and DIR/trait.pheno: a trait simulated on the real
        genotypes of both halves, 5 causal SNPs (MAF >= 0.1, each 6 % of the variance) plus a
        polygenic background of 200 SNPs (20 % in all), h2 = 0.5; DIR/trait.causal.tsv.
    python bench/diffusion_acceptance.py conditional --out-dir DIR --run RUN [--steps K]
            [--correct C] [--power P]
        samples 1,252 people from RUN (trained with --pheno DIR/trait.pheno --pheno-name trait),
        each conditioned on a split2 person's trait value, runs the same GWAS on them and on
        split2, and reports gwas_beta_r on the causal SNPs (target >= 0.8) and on all SNPs, and
        the per-causal-SNP betas; also a high (+1.5 SD) and a low (-1.5 SD) cohort and their
        allele-frequency difference at the causal SNPs against the real regression's prediction.
    python bench/diffusion_acceptance.py ancestry --out-dir DIR [--k 4]
        DIR/split1.pcs.pheno: split1's top k principal components (standardised genotypes),
        to train on as continuous conditions (--pheno-name PC1 ... PCk), and
        DIR/pcs_draw.pheno: 1,252 condition rows to sample with, each a split1 row's PCs plus
        Gaussian jitter of 0.1 SD per axis (no held-out data is used).
    python bench/diffusion_acceptance.py diagnose --out-dir DIR --synthetic PREFIX [PREFIX ...]
        the two diagnostics behind the AATS gap (bench/RESULTS.md): the mean minor-allele
        frequency of synthetic cohorts in split1 MAF bins (rare-allele loss), and the spread (SD)
        of each cohort on split1's top three principal axes beside split2's (population
        structure kept or blurred), and the nearest-neighbour distances behind AATS: the median
        distance from a split2 person to the nearest other split2 person (d_TT) and to the
        nearest member of the cohort (d_TS), and from a cohort member to the nearest other one
        (d_SS); split2's own row has d_TS = d_SS = its d_TT (Euclidean on allele counts).
    python bench/diffusion_acceptance.py elbo --out-dir DIR --run RUN
        the diffusion negative ELBO (nats per SNP, the training loss with fixed noise, EMA
        weights) of RUN on its training and validation individuals and on split2: a gap
        between them is overfitting, none is under-fitting. A run trained with --ancestry is
        scored given each person's own PCs (a conditional ELBO), other runs at the null
        condition.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from genofast.io import read_pheno, read_plink, write_pheno, write_plink
from genofast.metrics.gwas import linear_gwas
from genofast.sample import sample_cohort

DATA = Path(__file__).resolve().parents[2] / "shared/data/real/agbl4_1000g_chr1"


def make_splits(out: Path, seed: int = 7) -> None:
    """split1/split2 PLINK files and the simulated trait (module docstring)."""
    out.mkdir(parents=True, exist_ok=True)
    cohort = read_plink(DATA / "AGBL4_biallelic_snps")
    for fid in ("split1", "split2"):
        rows = np.flatnonzero(cohort.samples.fid == fid)
        write_plink(out / fid, cohort.subset(samples=rows))
    g = cohort.unpack().numpy().astype(np.float64)
    g[g < 0] = np.nan
    freq = np.nanmean(g, 0) / 2
    g = np.where(np.isnan(g), 2 * freq, g)
    maf = np.minimum(freq, 1 - freq)
    rng = np.random.default_rng(seed)
    common = np.flatnonzero(maf >= 0.1)
    causal = np.sort(common[np.linspace(0, len(common) - 1, 5).round().astype(int)])
    rest = np.setdiff1d(np.flatnonzero(maf >= 0.01), causal)
    poly = rng.choice(rest, 200, replace=False)
    z = (g - g.mean(0)) / np.maximum(g.std(0), 1e-12)
    major = z[:, causal] @ np.sqrt(np.full(5, 0.06))  # 5 x 6 % of the variance
    back = z[:, poly] @ rng.standard_normal(200)
    back *= np.sqrt(0.20) / back.std()
    y = major + back + rng.standard_normal(len(g)) * np.sqrt(0.5)
    y = 10 + 2 * (y - y.mean()) / y.std()  # arbitrary units
    write_pheno(out / "trait.pheno", cohort.samples.fid, cohort.samples.iid, ["trait"], y)
    lines = ["snp_index\tsid\tmaf"] + [f"{j}\t{cohort.snps.sid[j]}\t{maf[j]:.4f}" for j in causal]
    (out / "trait.causal.tsv").write_text("\n".join(lines) + "\n")
    print(f"wrote {out}/split1, split2, trait.pheno; causal SNPs {causal.tolist()}")


def conditional(out: Path, run: Path, steps: int | None, correct: int | None = None,
                seed: int = 1, power: float | None = None) -> dict:
    """Score a trait-conditioned run (module docstring); writes DIR/conditional.json."""
    split2 = read_plink(out / "split2")
    y2 = read_pheno(out / "trait.pheno", split2.samples, allow_unknown=True).column("trait")
    causal = np.loadtxt(out / "trait.causal.tsv", skiprows=1, usecols=0, dtype=np.int64)
    rows = out / "split2.trait.pheno"
    write_pheno(rows, split2.samples.fid, split2.samples.iid, ["trait"], y2)
    sample_cohort(run, None, out / "syn_cond", pheno=rows, steps=steps, correct=correct,
                  power=power, seed=seed)
    syn = read_plink(out / "syn_cond")
    ys = read_pheno(f"{out / 'syn_cond'}.pheno").column("trait")
    real_g, syn_g = split2.unpack(), syn.unpack()
    gr, gs = linear_gwas(real_g, y2), linear_gwas(syn_g, ys)
    br, bs = np.asarray(gr.beta), np.asarray(gs.beta)
    ok = np.isfinite(br) & np.isfinite(bs)
    result = {
        "run": str(run), "steps": steps, "correct": correct, "power": power,
        "gwas_beta_r_causal": float(np.corrcoef(br[causal], bs[causal])[0, 1]),
        "gwas_beta_r_all": float(np.corrcoef(br[ok], bs[ok])[0, 1]),
        "causal": [{"snp": int(j), "beta_real": float(br[j]), "beta_syn": float(bs[j]),
                    "p_real": float(gr.p[j]), "p_syn": float(gs.p[j])} for j in causal],
    }
    # high vs low cohorts: dosage difference at the causal SNPs vs the real regression's
    sd, mean = float(np.nanstd(y2)), float(np.nanmean(y2))
    dos = {}
    for tag, v in (("high", mean + 1.5 * sd), ("low", mean - 1.5 * sd)):
        prefix = out / f"syn_{tag}"
        sample_cohort(run, 400, prefix, cond={"trait": f"{v:.6f}"}, steps=steps, seed=seed,
                      correct=correct, power=power, progress=False)
        g = read_plink(prefix).unpack().to(torch.float64)
        dos[tag] = g[:, torch.from_numpy(causal)].mean(0).numpy()
    # regressing dosage on the trait in split2 predicts the dosage shift over 3 SD
    g2 = real_g[:, torch.from_numpy(causal)].to(torch.float64).numpy()
    keep = np.isfinite(y2)
    slope = np.array([np.polyfit(y2[keep], g2[keep, k], 1)[0] for k in range(len(causal))])
    result["high_minus_low_syn"] = (dos["high"] - dos["low"]).tolist()
    result["high_minus_low_expected"] = (slope * 3 * sd).tolist()
    result["high_low_r"] = float(np.corrcoef(result["high_minus_low_syn"],
                                             result["high_minus_low_expected"])[0, 1])
    (out / "conditional.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return result


MAF_BINS = ((0.005, 0.01), (0.01, 0.02), (0.02, 0.05), (0.05, 0.2), (0.2, 0.5))


def _standardised(g: np.ndarray, freq: np.ndarray) -> np.ndarray:
    """Genotypes centred and scaled per SNP by 2p and sqrt(2p(1-p)), missing at the mean."""
    sd = np.sqrt(np.maximum(2 * freq * (1 - freq), 1e-6))
    return (np.where(np.isnan(g), 2 * freq, g) - 2 * freq) / sd


def _genotypes(prefix: Path) -> np.ndarray:
    g = read_plink(prefix).unpack().numpy().astype(np.float64)
    return np.where(g < 0, np.nan, g)


def ancestry(out: Path, k: int = 4, n: int = 1252, jitter: float = 0.1, seed: int = 3) -> None:
    """split1's top-k PCs as a phenotype file, and condition rows drawn from them."""
    cohort = read_plink(out / "split1")
    g = _genotypes(out / "split1")
    z = _standardised(g, np.nanmean(g, 0) / 2)
    u, sv, _ = np.linalg.svd(z, full_matrices=False)
    pcs = u[:, :k] * sv[:k] / np.sqrt(z.shape[1])
    names = [f"PC{i + 1}" for i in range(k)]
    write_pheno(out / "split1.pcs.pheno", cohort.samples.fid, cohort.samples.iid, names, pcs)
    rng = np.random.default_rng(seed)
    draw = pcs[rng.integers(0, len(pcs), n)] + jitter * pcs.std(0) * rng.standard_normal((n, k))
    write_pheno(out / "pcs_draw.pheno", np.full(n, "syn"), np.array([f"d{i}" for i in range(n)]),
                names, draw)
    print(f"wrote {out}/split1.pcs.pheno and pcs_draw.pheno ({k} PCs, "
          f"{sv[:k] ** 2 / (sv ** 2).sum()} of the variance)")


def diagnose(out: Path, synthetic: list[Path]) -> dict:
    """Rare-allele frequencies and PCA spread of synthetic cohorts (module docstring)."""
    train = _genotypes(out / "split1")
    freq = np.nanmean(train, 0) / 2
    maf, minor_is_alt = np.minimum(freq, 1 - freq), freq <= 0.5
    axes = np.linalg.svd(_standardised(train, freq), full_matrices=False)[2][:3].T
    target = _imputed(_genotypes(out / "split2"))
    d_tt = _nearest(target)
    result = {}
    for prefix in [out / "split2", *synthetic]:
        g = _genotypes(prefix)
        f = np.nanmean(g, 0) / 2
        f = np.where(minor_is_alt, f, 1 - f)
        bins = {f"{lo}-{hi}": [round(float(f[(maf > lo) & (maf <= hi)].mean()), 4),
                               round(float(maf[(maf > lo) & (maf <= hi)].mean()), 4)]
                for lo, hi in MAF_BINS}
        spread = (_standardised(g, freq) @ axes).std(0)
        own = prefix == out / "split2"
        d_ts, d_ss = (d_tt, d_tt) if own else (_nearest(target, _imputed(g)), _nearest(_imputed(g)))
        result[str(prefix)] = {"maf_bins_cohort_vs_split1": bins,
                               "pc_sd": [round(float(v), 2) for v in spread],
                               "median_d_tt_ts_ss": [round(float(np.median(v)), 2)
                                                     for v in (d_tt, d_ts, d_ss)]}
    print(json.dumps(result, indent=2))
    return result


def _imputed(g: np.ndarray) -> torch.Tensor:
    """Allele counts as float32, a missing genotype at its SNP's mean (as the privacy metrics)."""
    return torch.from_numpy(np.where(np.isnan(g), np.nanmean(g, 0), g).astype(np.float32))


def _nearest(a: torch.Tensor, b: torch.Tensor | None = None) -> np.ndarray:
    """Distance from each row of a to its nearest row of b (b = None: of a, itself left out)."""
    d = torch.cdist(a, a if b is None else b)
    if b is None:
        d.fill_diagonal_(float("inf"))
    return d.min(1).values.numpy()


def elbo(out: Path, run: Path, repeats: int = 4, batch: int = 256) -> dict:
    """RUN's negative ELBO on its train and validation individuals and on split2 (docstring)."""
    from genofast.ancestry import ancestry_columns, load_ancestry
    from genofast.train import load_weights

    model, meta = load_weights(run, calibrated=False)
    specs = meta["traits"]
    if specs and len(ancestry_columns(specs)) != len(specs):
        raise ValueError("elbo scores unconditional runs and --ancestry runs only")
    split = json.loads((run / "split.json").read_text())
    one, two = read_plink(out / "split1"), read_plink(out / "split2")
    tr, va = torch.tensor(split["train"]), torch.tensor(split["validation"])
    sets = {"train": one[tr.numpy()], "validation": one[va.numpy()], "split2": two}
    result = {}
    with torch.no_grad():
        for name, cohort in sets.items():
            packed, cond = cohort.genotypes, None
            if specs:  # each person's own PCs, standardised as in training
                mean = np.array([s["mean"] for s in specs])
                sd = np.array([s["sd"] for s in specs])
                z = (load_ancestry(run).scores(cohort.unpack()) - mean) / sd
                cond = torch.from_numpy(z.astype(np.float32))
            total = 0.0
            for r in range(repeats):
                for s in range(0, len(packed), batch):
                    rows = torch.arange(s, min(s + batch, len(packed)))
                    c = None if cond is None else cond[rows]
                    loss = model.loss(packed[rows], rows, c, seed=100 + r, offset=s)
                    total += float(loss) * len(rows)
            result[name] = round(total / repeats / len(packed), 4)
    print(json.dumps(result))
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=("splits", "conditional", "ancestry", "diagnose", "elbo"))
    ap.add_argument("--out-dir", type=Path, required=True)
    ap.add_argument("--run", type=Path)
    ap.add_argument("--steps", type=int)
    ap.add_argument("--correct", type=int)
    ap.add_argument("--power", type=float)
    ap.add_argument("--synthetic", type=Path, nargs="+", default=[])
    args = ap.parse_args()
    if args.what == "splits":
        make_splits(args.out_dir)
    elif args.what == "ancestry":
        ancestry(args.out_dir)
    elif args.what == "diagnose":
        diagnose(args.out_dir, args.synthetic)
    elif args.what == "elbo":
        if args.run is None:
            ap.error("elbo needs --run")
        elbo(args.out_dir, args.run)
    else:
        if args.run is None:
            ap.error("conditional needs --run")
        conditional(args.out_dir, args.run, args.steps, args.correct, power=args.power)


if __name__ == "__main__":
    main()
