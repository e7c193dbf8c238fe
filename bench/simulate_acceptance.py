"""Acceptance figures of `genofast simulate cattle` (issue 6), measured on this machine.

1. A cohort of N = 10,000 cows on all 29 autosomes with the real Holstein 50k panel (../shared):
   SNPs per chromosome against the panel, allele-frequency correlation with the real Holstein
   frequencies, plink2 reading it (`--cow --freq`), wall time.
2. LD decay: mean r^2 (squared correlation of genotype dosages, SNPs with MAF >= 0.05, a random
   subsample of animals) by distance bin, plotted against published Holstein figures:
   Khatkar et al. 2008, BMC Genomics 9:187, Table 2 (Australian Holstein-Friesian, 1,546
   animals, 15,036-SNP panel; r^2 of phased haplotypes), and Bohmanova et al. 2010, BMC
   Genomics 11:421 (North American Holstein bulls, BovineSNP50: mean r^2 0.20 at 40-60 kb).
3. Wall time of N = 100,000 (same panel and settings).

Run it as a script (it simulates the whole genome, minutes each; be nice on a shared machine):

    nice -n 10 .venv/bin/python bench/simulate_acceptance.py --out-dir /some/folder/outside/repo

Writes cohorts, the LD plot (``ld_decay.png``) and ``acceptance.json`` under ``--out-dir``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "bench"))

# Khatkar et al. 2008 (BMC Genomics 9:187), Table 2: mean r^2 by distance bin, all autosomes.
KHATKAR_2008 = [  # (from bp, to bp, mean r^2)
    (0, 1_000, 0.767), (1_000, 10_000, 0.592), (10_000, 20_000, 0.402),
    (20_000, 40_000, 0.309), (40_000, 60_000, 0.196), (60_000, 100_000, 0.153),
    (100_000, 200_000, 0.108), (200_000, 500_000, 0.073), (500_000, 1_000_000, 0.057),
    (1_000_000, 2_000_000, 0.049), (2_000_000, 5_000_000, 0.036),
    (5_000_000, 10_000_000, 0.024), (10_000_000, 20_000_000, 0.013),
    (20_000_000, 50_000_000, 0.006),
]
# Bohmanova et al. 2010 (BMC Genomics 11:421), abstract: mean r^2 0.20 for SNPs 40-60 kb apart.
BOHMANOVA_2010 = [(40_000, 60_000, 0.20)]
BINS = [0, 10_000, 20_000, 40_000, 60_000, 100_000, 200_000, 500_000, 1_000_000, 2_000_000,
        5_000_000, 10_000_000, 20_000_000, 50_000_000]


def ld_decay(prefix: Path, n_sample: int, min_maf: float, seed: int = 0) -> dict:
    """Mean r^2 between SNP pairs on the same chromosome, by distance bin."""
    from genofast.io import read_plink

    c = read_plink(prefix)
    rng = np.random.default_rng(seed)
    n = c.n_individuals
    rows = np.sort(rng.choice(n, size=min(n_sample, n), replace=False))
    g = c.unpack(rows).numpy().astype(np.float32)
    sums = np.zeros(len(BINS) - 1)
    counts = np.zeros(len(BINS) - 1, dtype=np.int64)
    for chrom in np.unique(c.snps.chromosome):
        j = np.flatnonzero(c.snps.chromosome == chrom)
        x = g[:, j]
        p = x.mean(axis=0) / 2
        keep = (np.minimum(p, 1 - p) >= min_maf) & (x.std(axis=0) > 0)
        x, bp = x[:, keep], c.snps.bp_position[j][keep].astype(np.int64)
        z = (x - x.mean(axis=0)) / x.std(axis=0)
        r2 = (z.T @ z / len(rows)) ** 2
        iu = np.triu_indices(len(bp), k=1)
        d = np.abs(bp[iu[1]] - bp[iu[0]])
        b = np.digitize(d, BINS) - 1
        ok = (b >= 0) & (b < len(BINS) - 1)
        sums += np.bincount(b[ok], weights=r2[iu][ok], minlength=len(BINS) - 1)
        counts += np.bincount(b[ok], minlength=len(BINS) - 1)
    return {"bins_bp": BINS, "mean_r2": (sums / np.maximum(counts, 1)).tolist(),
            "pairs": counts.tolist(), "animals": int(len(rows)), "min_maf": min_maf}


def plot_ld(decays: dict[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for label, d in decays.items():
        lo, hi = np.array(d["bins_bp"][:-1]), np.array(d["bins_bp"][1:])
        mid = np.sqrt(np.maximum(lo, 1_000) * hi)
        ok = np.array(d["pairs"]) > 0
        ax.plot(mid[ok] / 1e3, np.array(d["mean_r2"])[ok], "o-", label=label)
    for rows, label, marker in ((KHATKAR_2008, "Khatkar et al. 2008, Australian HF (Table 2)",
                                 "s"),
                                (BOHMANOVA_2010, "Bohmanova et al. 2010, N. American Holstein",
                                 "D")):
        lo = np.array([r[0] for r in rows], dtype=float)
        hi = np.array([r[1] for r in rows], dtype=float)
        mid = np.sqrt(np.maximum(lo, 100) * hi)
        ax.errorbar(mid / 1e3, [r[2] for r in rows], xerr=[(mid - lo) / 1e3, (hi - mid) / 1e3],
                    fmt=marker, color="k" if marker == "s" else "tab:red", ms=5, capsize=2,
                    alpha=0.8, label=label)
    ax.set_xscale("log")
    ax.set_xlabel("distance between SNPs (kb)")
    ax.set_ylabel("mean r$^2$")
    ax.set_title("LD decay: simulated Holstein cohort vs published Holstein figures")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def simulate(prefix: Path, n: int, panel: Path, seed: int, workers: int | None) -> dict:
    from genofast.simulate.cattle import simulate_cattle

    t0 = time.perf_counter()
    res = simulate_cattle(prefix, n, chromosomes="1-29", panel=panel, seed=seed,
                          workers=workers, progress=True)
    wall = time.perf_counter() - t0
    return {"n_individuals": n, "n_snps": res.n_snps, "wall_s": wall,
            "phases_s": res.timings, "snps_per_chromosome": res.snps_per_chromosome}


def panel_checks(prefix: Path, panel: Path) -> dict:
    """Exact SNP counts per chromosome and allele-frequency agreement with the real panel."""
    from genofast.io import read_plink

    rows = [ln.split() for ln in panel.read_text().splitlines()[1:] if ln.strip()]
    want: dict[str, int] = {}
    real = {}
    for c, pos, f in rows:
        want[c] = want.get(c, 0) + 1
        real[(c, int(pos))] = float(f)
    c = read_plink(prefix)
    got = {ch: int((c.snps.chromosome == ch).sum()) for ch in want}
    freq = c.unpack().numpy().mean(axis=0, dtype=np.float64) / 2  # allele_1 frequency
    # which panel SNP each simulated SNP stands for (PREFIX.panel.tsv, written by the simulator)
    tab = [ln.split("\t") for ln in prefix.with_name(prefix.name + ".panel.tsv").read_text()
           .splitlines()[1:]]
    sid_to_real = {t[0]: real[(t[1], int(t[3]))] for t in tab}
    target = np.array([sid_to_real[s] for s in c.snps.sid])
    maf_sim, maf_real = np.minimum(freq, 1 - freq), np.minimum(target, 1 - target)
    hist_edges = [0, 0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5001]
    return {
        "panel_snps": len(rows),
        "simulated_snps": len(c.snps),
        "per_chromosome_exact": got == want,
        "per_chromosome": {ch: [got[ch], want[ch]] for ch in want},
        "allele_frequency_correlation": float(np.corrcoef(freq, target)[0, 1]),
        "maf_correlation": float(np.corrcoef(maf_sim, maf_real)[0, 1]),
        "mean_abs_frequency_difference": float(np.abs(freq - target).mean()),
        "maf_histogram_edges": hist_edges,
        "maf_histogram_simulated": np.histogram(maf_sim, hist_edges)[0].tolist(),
        "maf_histogram_real": np.histogram(maf_real, hist_edges)[0].tolist(),
    }


def plink2_check(prefix: Path, work: Path) -> dict:
    exe = shutil.which("plink2")
    if exe is None:
        return {"plink2": "not installed"}
    r = subprocess.run([exe, "--cow", "--bfile", str(prefix), "--freq", "--out",
                        str(work / "plink2_freq")], capture_output=True, text=True)
    out = {"returncode": r.returncode}
    if r.returncode == 0:
        lines = (work / "plink2_freq.afreq").read_text().splitlines()[1:]
        out["variants"] = len(lines)
        log = (work / "plink2_freq.log").read_text()
        out["log"] = [ln for ln in log.splitlines() if "loaded from" in ln]
    else:
        out["stderr"] = r.stderr[-2000:]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out-dir", type=Path, required=True, help="folder outside the repository")
    ap.add_argument("--panel", type=Path, default=None,
                    help="Holstein 50k panel TSV (default: ../shared)")
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--big-n", type=int, default=100_000)
    ap.add_argument("--skip-big", action="store_true")
    ap.add_argument("--keep-big", action="store_true", help="keep the big cohort's files")
    ap.add_argument("--reuse", action="store_true", help="reuse an existing N cohort")
    ap.add_argument("--ld-animals", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=6)
    ap.add_argument("--workers", type=int, default=None)
    args = ap.parse_args()

    from datasets import holstein_panel

    panel = args.panel or holstein_panel()
    if panel is None or not Path(panel).is_file():
        print("the real Holstein panel is not available", file=sys.stderr)
        return 1
    out = args.out_dir.expanduser().resolve()
    if REPO in out.parents or out == REPO:
        print("--out-dir must be outside the repository", file=sys.stderr)
        return 1
    out.mkdir(parents=True, exist_ok=True)
    summary: dict = {"machine_cpus": __import__("os").cpu_count()}
    summary_path = out / "acceptance.json"
    if summary_path.is_file():
        summary.update(json.loads(summary_path.read_text()))

    def save() -> None:
        summary_path.write_text(json.dumps(summary, indent=2) + "\n")

    prefix = out / f"holstein{args.n // 1000}k"
    if not (args.reuse and prefix.with_name(prefix.name + ".json").is_file()):
        summary["run_n"] = simulate(prefix, args.n, Path(panel), args.seed, args.workers)
        save()
    summary["panel"] = panel_checks(prefix, Path(panel))
    summary["plink2"] = plink2_check(prefix, out)
    save()
    decays = {
        f"simulated, N={args.n} (MAF>=0.05)": ld_decay(prefix, args.ld_animals, 0.05),
        f"simulated, N={args.n} (all SNPs)": ld_decay(prefix, args.ld_animals, 0.0),
    }
    summary["ld_decay"] = decays
    summary["ld_published"] = {"khatkar_2008_table2": KHATKAR_2008,
                               "bohmanova_2010": BOHMANOVA_2010}
    plot_ld(decays, out / "ld_decay.png")
    save()
    if not args.skip_big:
        big = out / f"holstein{args.big_n // 1000}k"
        summary["run_big"] = simulate(big, args.big_n, Path(panel), args.seed + 1, args.workers)
        save()
        if not args.keep_big:
            for p in out.glob(big.name + ".*"):
                p.unlink()
    print(json.dumps({k: v for k, v in summary.items() if k != "ld_decay"}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
