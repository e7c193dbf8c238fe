"""The evaluation report: DIR/report.json (numbers) and DIR/report.html (one self-contained page).

The HTML embeds every plot as a base64 PNG (matplotlib, Agg backend) beside a metrics table that
puts each number next to its real-vs-real yardstick, so the file can be mailed or archived alone.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

#: (key, label, what good looks like) in table order.
METRICS: tuple[tuple[str, str, str], ...] = (
    ("allele_freq_r", "Allele-frequency r", "1"),
    ("genotype_freq_r", "Genotype-frequency r", "1"),
    ("maf_js_divergence", "Folded SFS JS divergence (bits)", "0"),
    ("fst", "Hudson F_ST real vs synthetic", "0"),
    ("heterozygosity_diff", "|mean heterozygosity difference|", "0"),
    ("ld_r2_mae", "LD r^2 MAE (window)", "0"),
    ("ld_decay_mae", "LD decay MAE", "0"),
    ("pca_wasserstein", "PCA W1 / sd, mean of 10 PCs", "0"),
    ("grm_offdiag_diff", "GRM off-diagonal W1", "0"),
    ("precision", "k-NN precision", "as real"),
    ("recall", "k-NN recall", "as real"),
    ("aats", "AATS synthetic vs real", "0.5"),
    ("aats_train", "AATS synthetic vs train", "0.5"),
    ("privacy_loss", "Privacy loss (aats - aats_train)", "0"),
    ("identical_to_train", "Identical to a training genome", "0"),
    ("dcr_ratio", "DCR ratio (syn->train / real->train)", "1"),
    ("mia_auc", "Membership-inference AUC", "0.5"),
    ("kinship_replay", "Synthetic-train pairs >= 2nd degree", "as real"),
    ("kinship_replay_rate", "  as a fraction of all pairs", "as real"),
    ("gwas_beta_r", "GWAS beta r", "as real"),
    ("gwas_top_hit_recall", "GWAS top-hit recall", "as real"),
)

REAL = "#1f5fa8"
SYN = "#d9622b"
TRAIN = "#4b9e58"


# ---------------------------------------------------------------------------------------------
# numbers
# ---------------------------------------------------------------------------------------------


def summary_json(result: dict[str, Any]) -> dict[str, Any]:
    """The JSON-serialisable part of an `evaluate` result (``details`` left out)."""
    return {k: v for k, v in result.items() if k != "details"}


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            return "-"
        if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e5):
            return f"{v:.3g}"
        return f"{v:.4f}"
    return str(v)


def format_table(result: dict[str, Any]) -> str:
    """A short plain-text table: metric, synthetic, real vs real, ideal."""
    ref = result.get("reference") or {}
    rows = [("metric", "synthetic", "real vs real", "ideal")]
    for key, _label, ideal in METRICS:
        if result.get(key) is None and ref.get(key) is None:
            continue
        rows.append((key, _fmt(result.get(key)), _fmt(ref.get(key)), ideal))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
             for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    info = result.get("info", {})
    notes = info.get("notes") or []
    head = (f"{info.get('n_synthetic')} synthetic vs {info.get('n_real')} real"
            + (f" (train {info['n_train']})" if info.get("n_train") else "")
            + f", {info.get('n_snps_matched')} SNPs matched")
    return "\n".join([head, *lines, *(f"note: {n}" for n in notes)])


# ---------------------------------------------------------------------------------------------
# plots
# ---------------------------------------------------------------------------------------------


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 9, "axes.spines.top": False, "axes.spines.right": False,
                         "figure.dpi": 110, "savefig.dpi": 110})
    return plt


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    _plt().close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _subsample(n: int, limit: int, seed: int = 0) -> np.ndarray:
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, limit, replace=False))


def _fig_allele_freq(det: dict, result: dict) -> str:
    plt = _plt()
    a, b = np.asarray(det["af_real"]), np.asarray(det["af_syn"])
    idx = _subsample(len(a), 50000)
    fig, ax = plt.subplots(figsize=(4.2, 4.0))
    ax.scatter(a[idx], b[idx], s=3, alpha=0.35, color=SYN, linewidths=0, rasterized=True)
    ax.plot([0, 1], [0, 1], color="0.3", lw=0.8, ls="--")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="real allele-1 frequency",
           ylabel="synthetic allele-1 frequency",
           title=f"Allele frequencies, r = {_fmt(result.get('allele_freq_r'))}")
    return _png(fig)


def _fig_sfs(det: dict, result: dict) -> str:
    plt = _plt()
    edges, real, syn = det["sfs"]
    centres = 0.5 * (edges[1:] + edges[:-1])
    fig, ax = plt.subplots(figsize=(4.6, 3.4))
    w = (edges[1] - edges[0]) * 0.42
    ax.bar(centres - w / 2, real, width=w, color=REAL, label="real")
    ax.bar(centres + w / 2, syn, width=w, color=SYN, label="synthetic")
    ax.set(xlabel="minor allele frequency", ylabel="fraction of SNPs",
           title=f"Folded SFS, JS = {_fmt(result.get('maf_js_divergence'))} bits")
    ax.set_yscale("log")
    ax.legend(frameon=False)
    return _png(fig)


def _fig_het(det: dict, result: dict) -> str:
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(7.6, 3.2))
    for ax, (key, label) in zip(axes, (("het", "observed heterozygosity rate"),
                                       ("f", "inbreeding F")), strict=True):
        r = np.asarray(det[f"{key}_real"], dtype=float)
        s = np.asarray(det[f"{key}_syn"], dtype=float)
        r, s = r[np.isfinite(r)], s[np.isfinite(s)]
        both = np.concatenate([r, s]) if len(r) + len(s) else np.zeros(1)
        lo, hi = np.quantile(both, [0.001, 0.999])
        if hi <= lo:
            lo, hi = lo - 0.5, hi + 0.5
        bins = np.linspace(lo, hi, 50)
        ax.hist(r, bins=bins, density=True, histtype="stepfilled", alpha=0.45, color=REAL,
                label="real")
        ax.hist(s, bins=bins, density=True, histtype="step", lw=1.5, color=SYN,
                label="synthetic")
        ax.set(xlabel=label, ylabel="density")
    axes[0].legend(frameon=False)
    fig.suptitle(f"Per-individual heterozygosity (|mean diff| = "
                 f"{_fmt(result.get('heterozygosity_diff'))})", fontsize=10)
    return _png(fig)


def _fig_hwe(det: dict, result: dict) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.2, 3.6))
    for key, color, label in (("hwe_real", REAL, "real"), ("hwe_syn", SYN, "synthetic")):
        p = np.asarray(det[key], dtype=float)
        p = np.sort(p[np.isfinite(p) & (p > 0)])
        if len(p) == 0:
            continue
        exp = -np.log10((np.arange(1, len(p) + 1) - 0.5) / len(p))
        ax.plot(exp, -np.log10(p), ".", ms=2.5, color=color, label=label, rasterized=True)
    lim = ax.get_xlim()[1]
    ax.plot([0, lim], [0, lim], color="0.3", lw=0.8, ls="--")
    ax.set(xlabel="expected -log10 p", ylabel="observed -log10 p",
           title="Hardy-Weinberg exact test, QQ")
    ax.legend(frameon=False)
    return _png(fig)


def _fig_ld_decay(det: dict, result: dict) -> str | None:
    decay = det.get("ld_decay")
    if not decay:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.6, 3.4))
    centres = np.asarray(decay["bin_centres"], dtype=float)
    for key, color, label in (("real", REAL, "real"), ("syn", SYN, "synthetic")):
        y = np.asarray(decay[key], dtype=float)
        ok = np.isfinite(y)
        ax.plot(centres[ok], y[ok], "o-", ms=3, color=color, label=label)
    ref = det.get("reference", {}).get("ld_decay")
    if ref:
        y = np.asarray(ref["real"], dtype=float)
        ok = np.isfinite(y)
        ax.plot(np.asarray(ref["bin_centres"])[ok], y[ok], ":", color="0.45",
                label="real half A (yardstick)")
    ax.set_xscale("log")
    ax.set(xlabel="distance (bp)", ylabel="mean r^2",
           title=f"LD decay, MAE = {_fmt(result.get('ld_decay_mae'))}")
    ax.legend(frameon=False)
    return _png(fig)


def _fig_r2(det: dict, result: dict) -> str | None:
    reg = det.get("r2_region")
    if reg is None:
        return None
    plt = _plt()
    real, syn, bp = (np.asarray(x) for x in reg)
    n = len(real)
    combined = np.where(np.tril(np.ones((n, n), dtype=bool), -1), real, syn)
    np.fill_diagonal(combined, np.nan)
    fig, ax = plt.subplots(figsize=(5.4, 4.8))
    im = ax.imshow(combined, cmap="magma_r", vmin=0, vmax=1, interpolation="nearest")
    fig.colorbar(im, ax=ax, shrink=0.8, label="r^2")
    span = f"{bp[0]:,}-{bp[-1]:,} bp" if n else ""
    ax.set(title=f"r^2: real below, synthetic above the diagonal\n{n} SNPs, {span}",
           xlabel="SNP", ylabel="SNP")
    return _png(fig)


def _fig_pca(det: dict, result: dict) -> str | None:
    pca = det.get("pca")
    if pca is None:
        return None
    plt = _plt()
    real, syn, _ = pca
    k = real.shape[1]
    pairs = [(0, 1), (2, 3)] if k >= 4 else [(0, min(1, k - 1))]
    fig, axes = plt.subplots(1, len(pairs), figsize=(4.0 * len(pairs), 3.8), squeeze=False)
    ir, isy = _subsample(len(real), 20000, 1), _subsample(len(syn), 20000, 2)
    for ax, (a, b) in zip(axes[0], pairs, strict=True):
        ax.scatter(real[ir, a], real[ir, b], s=4, alpha=0.4, color=REAL, linewidths=0,
                   label="real", rasterized=True)
        ax.scatter(syn[isy, a], syn[isy, b], s=4, alpha=0.4, color=SYN, linewidths=0,
                   label="synthetic (projected)", rasterized=True)
        ax.set(xlabel=f"PC{a + 1}", ylabel=f"PC{b + 1}")
    axes[0][0].legend(frameon=False, markerscale=3)
    fig.suptitle(f"PCA fitted on real, W1/sd = {_fmt(result.get('pca_wasserstein'))}",
                 fontsize=10)
    return _png(fig)


def _fig_grm(det: dict, result: dict) -> str | None:
    grm = det.get("grm")
    if grm is None or "spec" not in grm:
        return None
    plt = _plt()
    spec = grm["spec"]
    width = (spec.hi - spec.lo) / spec.bins
    centres = spec.lo + width * (np.arange(spec.bins) + 0.5)
    fig, ax = plt.subplots(figsize=(5.0, 3.5))
    lo_hi = []
    for key, color, label in (("real", REAL, "real x real"), ("syn", SYN, "synthetic x synthetic"),
                              ("syn_train", TRAIN, "synthetic x train")):
        h = grm.get(key)
        if h is None:
            continue
        h = np.asarray(h, dtype=float)
        if h.sum() == 0:
            continue
        # merge 10 bins for a smoother density
        hh = h[: len(h) // 10 * 10].reshape(-1, 10).sum(1)
        cc = centres[: len(h) // 10 * 10].reshape(-1, 10).mean(1)
        dens = hh / hh.sum() / (10 * width)
        ax.plot(cc, dens, color=color, lw=1.3, label=label)
        nz = np.flatnonzero(hh)
        lo_hi += [cc[nz[0]], cc[nz[-1]]]
    thr = 2 * result.get("info", {}).get("kinship_threshold", 2 ** -3.5)
    ax.axvline(thr, color="0.4", ls=":", lw=1)
    ax.text(thr, ax.get_ylim()[1] * 0.5, " 2nd degree", color="0.35", fontsize=8)
    ax.set_yscale("log")
    if lo_hi:
        ax.set_xlim(min(lo_hi) - 0.02, max(max(lo_hi), thr) + 0.05)
    ax.set(xlabel="GRM off-diagonal (VanRaden)", ylabel="density",
           title=f"Relatedness, W1 = {_fmt(result.get('grm_offdiag_diff'))}")
    ax.legend(frameon=False)
    return _png(fig)


def _fig_dcr(det: dict, result: dict) -> str | None:
    dcr = det.get("dcr")
    if dcr is None:
        return None
    plt = _plt()
    syn, real = (np.asarray(x, dtype=float) for x in dcr)
    hi = np.quantile(np.concatenate([syn, real]), 0.999)
    bins = np.linspace(0, max(hi, 1e-9), 60)
    fig, ax = plt.subplots(figsize=(4.6, 3.4))
    ax.hist(real, bins=bins, density=True, histtype="stepfilled", alpha=0.45, color=REAL,
            label="held-out real -> train")
    ax.hist(syn, bins=bins, density=True, histtype="step", lw=1.5, color=SYN,
            label="synthetic -> train")
    ax.set(xlabel="distance to closest training genome", ylabel="density",
           title=f"DCR ratio = {_fmt(result.get('dcr_ratio'))}, identical = "
                 f"{_fmt(result.get('identical_to_train'))}")
    ax.legend(frameon=False)
    return _png(fig)


def _fig_gwas(det: dict, result: dict) -> str | None:
    gw = det.get("gwas")
    if gw is None:
        return None
    plt = _plt()
    snps = det["snps"]
    chrom = np.asarray(snps.chromosome)
    bp = np.asarray(snps.bp_position, dtype=float)
    # cumulative position, chromosomes in order of appearance
    x = np.zeros(len(bp))
    ticks, labels, offset = [], [], 0.0
    _, first = np.unique(chrom, return_index=True)
    for c in chrom[np.sort(first)]:
        sel = chrom == c
        span = bp[sel].max() - bp[sel].min() + 1
        x[sel] = bp[sel] - bp[sel].min() + offset
        ticks.append(offset + span / 2)
        labels.append(str(c))
        offset += span * 1.02 + 1
    colors = np.where(np.unique(chrom, return_inverse=True)[1] % 2 == 0, 0, 1)
    one_chrom = len(labels) == 1
    if one_chrom:  # one chromosome: positions in Mb
        x = bp / 1e6
    fig = plt.figure(figsize=(10.5, 4.0))
    ax = fig.add_axes((0.06, 0.12, 0.62, 0.78))
    qq = fig.add_axes((0.75, 0.12, 0.23, 0.78))
    for key, sign, pal in (("real", 1, (REAL, "#7aa6d6")), ("syn", -1, (SYN, "#f0a57d"))):
        res = gw.get(key)
        if res is None:
            continue
        p = np.asarray(res.p, dtype=float)
        ok = np.isfinite(p) & (p > 0)
        lp = -np.log10(p[ok])
        ax.scatter(x[ok], sign * lp, s=3, c=np.where(colors[ok] == 0, pal[0], pal[1]),
                   linewidths=0, rasterized=True)
        ps = np.sort(p[ok])
        exp = -np.log10((np.arange(1, len(ps) + 1) - 0.5) / max(1, len(ps)))
        qq.plot(exp, -np.log10(ps), ".", ms=2.5, color=pal[0], rasterized=True,
                label=f"{'real' if key == 'real' else 'synthetic'} (lambda "
                      f"{_fmt(res.lambda_gc)})")
    gws = -np.log10(5e-8)
    top = max(abs(v) for v in ax.get_ylim())
    if top > 0.6 * gws:  # the genome-wide line only where it is in reach
        ax.axhline(gws, color="0.5", ls=":", lw=0.8)
        ax.axhline(-gws, color="0.5", ls=":", lw=0.8)
        top = max(top, gws * 1.05)
    ax.set_ylim(-top, top)
    ax.axhline(0, color="0.2", lw=0.6)
    if one_chrom:
        ax.set_xlabel(f"chromosome {labels[0]} position (Mb)")
    else:
        ax.set_xticks(ticks, labels, fontsize=7)
        ax.set_xlabel("chromosome")
    yt = [v for v in ax.get_yticks() if abs(v) <= top]
    ax.set_yticks(yt, [f"{abs(v):g}" for v in yt])
    ax.set(ylabel="-log10 p  (real up, synthetic down)",
           title=f"Mirrored Manhattan, beta r = {_fmt(result.get('gwas_beta_r'))}, "
                 f"top-hit recall = {_fmt(result.get('gwas_top_hit_recall'))}")
    lim = qq.get_xlim()[1]
    qq.plot([0, lim], [0, lim], color="0.3", lw=0.8, ls="--")
    qq.set(xlabel="expected -log10 p", ylabel="observed -log10 p", title="QQ")
    qq.legend(frameon=False, fontsize=7)
    return _png(fig)


FIGURES = (
    ("Allele frequencies", _fig_allele_freq, "frequency"),
    ("Site-frequency spectrum", _fig_sfs, "frequency"),
    ("Heterozygosity", _fig_het, "frequency"),
    ("Hardy-Weinberg", _fig_hwe, "frequency"),
    ("LD decay", _fig_ld_decay, "ld"),
    ("LD heat map", _fig_r2, "ld"),
    ("PCA", _fig_pca, "pca"),
    ("Relatedness (GRM)", _fig_grm, "grm"),
    ("Distance to closest record", _fig_dcr, "privacy"),
    ("GWAS", _fig_gwas, "gwas"),
)


def figures(result: dict[str, Any]) -> list[tuple[str, str]]:
    """(title, base64 PNG) of every plot the result has data for."""
    det = result.get("details") or {}
    out = []
    for title, fn, _family in FIGURES:
        try:
            png = fn(det, result)
        except KeyError:
            continue
        if png is not None:
            out.append((title, png))
    return out


# ---------------------------------------------------------------------------------------------
# HTML
# ---------------------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px auto;
max-width:1180px;color:#222;padding:0 16px}
h1{font-size:22px;margin-bottom:4px}h2{font-size:16px;margin:22px 0 8px}
.sub{color:#666;font-size:13px}
table{border-collapse:collapse;font-size:13px}
th,td{padding:4px 10px;border-bottom:1px solid #e4e4e4;text-align:right}
th:first-child,td:first-child{text-align:left}
th{background:#f5f6f8}
.grid{display:flex;flex-wrap:wrap;gap:14px}
figure{margin:0;border:1px solid #e6e6e6;border-radius:6px;padding:8px;background:#fff}
figcaption{font-size:12px;color:#555;margin-top:4px}
img{display:block;max-width:100%}
.notes{background:#fff8e6;border:1px solid #f0dca0;padding:8px 12px;border-radius:6px;
font-size:13px}
"""


def render_html(result: dict[str, Any]) -> str:
    """The self-contained HTML page of an `evaluate` result."""
    info = result.get("info", {})
    ref = result.get("reference") or {}
    esc = html.escape
    rows = []
    for key, label, ideal in METRICS:
        v, r = result.get(key), ref.get(key)
        if v is None and r is None:
            continue
        rows.append(f"<tr><td>{esc(label)} <span class='sub'>{esc(key)}</span></td>"
                    f"<td><b>{esc(_fmt(v))}</b></td><td>{esc(_fmt(r))}</td>"
                    f"<td>{esc(ideal)}</td></tr>")
    table = ("<table><tr><th>metric</th><th>synthetic</th><th>real vs real</th>"
             "<th>ideal</th></tr>" + "".join(rows) + "</table>")
    notes = info.get("notes") or []
    unmatched = info.get("unmatched_snps", {})
    flipped = info.get("flipped_snps", {})
    facts = [
        f"{info.get('n_synthetic')} synthetic vs {info.get('n_real')} real individuals"
        + (f", {info['n_train']} training" if info.get("n_train") else ""),
        f"{info.get('n_snps_matched')} SNPs matched; unmatched per cohort: "
        + ", ".join(f"{k} {v}" for k, v in unmatched.items())
        + ("; allele-swapped and flipped: " + ", ".join(f"{k} {v}" for k, v in flipped.items())
           if flipped else ""),
        "real vs real = two random halves of the real cohort "
        f"({' + '.join(str(x) for x in info.get('reference_halves', []))}), half A as real, "
        "half B as synthetic",
        f"total time {info.get('seconds', {}).get('total', '-')} s on {info.get('device')}",
    ]
    figs = "".join(
        f"<figure><img alt='{esc(t)}' src='data:image/png;base64,{png}'>"
        f"<figcaption>{esc(t)}</figcaption></figure>" for t, png in figures(result))
    note_html = ("<div class='notes'>" + "<br>".join(esc(n) for n in notes) + "</div>"
                 if notes else "")
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>genofast evaluation</title>"
        f"<style>{_CSS}</style></head><body><h1>genofast evaluation</h1>"
        + "".join(f"<div class='sub'>{esc(f)}</div>" for f in facts)
        + note_html + "<h2>Metrics</h2>" + table + "<h2>Plots</h2><div class='grid'>" + figs
        + "</div><h2>Definitions</h2><p class='sub'>See docs/metrics.md of genofast; "
        "missing genotypes are left out per metric, never counted as 0.</p></body></html>"
    )


def write_report(result: dict[str, Any], out_dir: str | os.PathLike) -> tuple[Path, Path]:
    """Write DIR/report.json and DIR/report.html; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    jpath, hpath = out / "report.json", out / "report.html"
    jpath.write_text(json.dumps(summary_json(result), indent=2, allow_nan=False) + "\n")
    hpath.write_text(render_html(result))
    return jpath, hpath


# ---------------------------------------------------------------------------------------------
# comparison of several models (genofast compare)
# ---------------------------------------------------------------------------------------------

#: Columns of the comparison table: (key, short label, direction). The direction says which
#: model is best in the column: "max" the highest value (correlations, GWAS agreement), "min" the
#: lowest (errors and distances, identical genomes), "ref" the closest to the real-vs-real value
#: (k-NN precision and recall, kinship replay: more is not better than real people), a number the
#: closest to it (0.5 for the adversarial accuracies and membership AUC, 1 for the DCR ratio, 0
#: for F_ST and the privacy loss, which can fall either side of their ideal by chance).
COMPARE_METRICS: tuple[tuple[str, str, str | float], ...] = (
    ("allele_freq_r", "AF r", "max"),
    ("genotype_freq_r", "GF r", "max"),
    ("maf_js_divergence", "SFS JS", "min"),
    ("fst", "F_ST", 0.0),
    ("heterozygosity_diff", "het diff", "min"),
    ("ld_r2_mae", "LD r2 MAE", "min"),
    ("ld_decay_mae", "LD decay MAE", "min"),
    ("pca_wasserstein", "PCA W1", "min"),
    ("grm_offdiag_diff", "GRM W1", "min"),
    ("precision", "precision", "ref"),
    ("recall", "recall", "ref"),
    ("aats", "AATS", 0.5),
    ("aats_train", "AATS train", 0.5),
    ("privacy_loss", "privacy loss", 0.0),
    ("identical_to_train", "identical", "min"),
    ("dcr_ratio", "DCR ratio", 1.0),
    ("mia_auc", "MIA AUC", 0.5),
    ("kinship_replay_rate", "kin replay", "ref"),
    ("gwas_beta_r", "GWAS beta r", "max"),
    ("gwas_top_hit_recall", "GWAS top hits", "max"),
)

#: One colour per model in the comparison plots (real people keep REAL).
MODEL_COLORS = ("#d9622b", "#4b9e58", "#8e5ac8", "#c03d3e", "#8c6d31", "#e377c2", "#17becf",
                "#7f7f7f", "#bcbd22", "#ff9896")


def _number(v: Any) -> float | None:
    """A finite number as float, else None (bools are not numbers here)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v) if math.isfinite(v) else None


def _direction_text(direction: str | float) -> str:
    if direction in ("max", "min"):
        return "higher" if direction == "max" else "lower"
    if direction == "ref":
        return "~real"
    return f"~{direction:g}"


def best_models(metrics: dict[str, dict[str, Any]], reference: dict[str, Any]
                ) -> dict[str, list[str]]:
    """{metric key: the best model name(s)} by COMPARE_METRICS' directions; a column is judged
    only when at least two models have a number in it ("ref" columns also need the real-vs-real
    value); ties are all best."""
    best: dict[str, list[str]] = {}
    for key, _label, direction in COMPARE_METRICS:
        vals = {name: _number(m.get(key)) for name, m in metrics.items()}
        vals = {name: v for name, v in vals.items() if v is not None}
        if len(vals) < 2:
            continue
        if direction == "max":
            score = {n: -v for n, v in vals.items()}
        elif direction == "min":
            score = dict(vals)
        elif direction == "ref":
            r = _number(reference.get(key))
            if r is None:
                continue
            score = {n: abs(v - r) for n, v in vals.items()}
        else:
            score = {n: abs(v - float(direction)) for n, v in vals.items()}
        top = min(score.values())
        tol = 1e-12 * max(1.0, abs(top))
        best[key] = [n for n, s in score.items() if s <= top + tol]
    return best


def _compare_columns(comparison: dict[str, Any]) -> list[tuple[str, str, str | float]]:
    """COMPARE_METRICS entries with a number for some model or for real vs real."""
    ref = comparison.get("reference") or {}
    models = comparison["models"].values()
    return [c for c in COMPARE_METRICS
            if _number(ref.get(c[0])) is not None
            or any(_number(m["metrics"].get(c[0])) is not None for m in models)]


def _seconds(v: Any) -> str:
    return "-" if v is None else f"{float(v):.1f}"


def _run_rows(comparison: dict[str, Any]) -> list[list[str]]:
    """One row per model: its run facts and timings (header first)."""
    rows = [["model", "kind", "trained here", "conditioned", "steps (best)", "parameters",
             "train s", "sample s", "evaluate s"]]
    for name, m in comparison["models"].items():
        sec = m.get("seconds", {})
        steps = "-" if m.get("steps") is None else f"{m['steps']} ({m.get('best_step')})"
        params = "-" if m.get("n_parameters") is None else f"{m['n_parameters']:,}"
        rows.append([name, str(m.get("model")), "yes" if m.get("trained_here") else "no (--runs)",
                     "yes" if m.get("conditioned") else "no", steps, params,
                     _seconds(sec.get("train")), _seconds(sec.get("sample")),
                     _seconds(sec.get("evaluate"))])
    return rows


def _setup_lines(comparison: dict[str, Any]) -> list[str]:
    s = comparison.get("setup", {})
    budget = ("no time limit (each model to its max_steps)" if s.get("max_minutes") is None
              else f"at most {s['max_minutes']:g} minutes of training per model")
    lines = [
        f"{s.get('n_train')} training and {s.get('n_holdout')} held-out individuals "
        f"({s.get('holdout_from')}), {s.get('n_snps')} SNPs; each model samples "
        f"{s.get('n_synthetic')} individuals",
        f"time budget: {budget}",
        "real vs real: two random halves of the held-out individuals, computed once",
    ]
    if s.get("gwas_trait"):
        lines.append(f"GWAS trait: {s['gwas_trait']}")
    return lines


def comparison_markdown(comparison: dict[str, Any]) -> str:
    """The comparison as Markdown: setup, the model x metric table (best of each column in
    bold, the real-vs-real row first, the direction of each column under its name), the runs."""
    cols = _compare_columns(comparison)
    best = comparison.get("best") or best_models(
        {n: m["metrics"] for n, m in comparison["models"].items()},
        comparison.get("reference") or {})
    ref = comparison.get("reference") or {}
    head = ["model", *(label for _k, label, _d in cols)]
    lines = ["# genofast comparison", "", *(f"- {x}" for x in _setup_lines(comparison)), "",
             "| " + " | ".join(head) + " |",
             "| " + " | ".join(["---"] + ["---:"] * len(cols)) + " |",
             "| *best* | " + " | ".join(_direction_text(d) for _k, _l, d in cols) + " |",
             "| real vs real | " + " | ".join(_fmt(ref.get(k)) for k, _l, _d in cols) + " |"]
    for name, m in comparison["models"].items():
        cells = []
        for key, _label, _d in cols:
            text = _fmt(m["metrics"].get(key))
            cells.append(f"**{text}**" if name in best.get(key, []) else text)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    runs = _run_rows(comparison)
    lines += ["", "| " + " | ".join(runs[0]) + " |",
              "| " + " | ".join(["---"] * 5 + ["---:"] * 4) + " |",
              *("| " + " | ".join(r) + " |" for r in runs[1:])]
    keys = ", ".join(f"{label} = {key}" for key, label, _d in cols)
    lines += ["", f"Columns: {keys}.", "Best per column in bold; real vs real is the yardstick, "
              "not a contender."]
    lines += [f"- note: {n}" for n in comparison.get("notes") or []]
    return "\n".join(lines) + "\n"


def _grid(plt, n: int, width: float = 3.0, height: float = 2.9, ncols: int = 4):
    """A figure of ``n`` panels, at most ``ncols`` a row; spare axes hidden."""
    ncols = max(1, min(ncols, n))
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows),
                             squeeze=False)
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def _cmp_ld_decay(results: dict[str, dict], comparison: dict) -> str | None:
    decays = {n: r["details"].get("ld_decay") for n, r in results.items()}
    decays = {n: d for n, d in decays.items() if d}
    if not decays:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.6, 3.8))
    first = next(iter(decays.values()))
    centres = np.asarray(first["bin_centres"], dtype=float)
    y = np.asarray(first["real"], dtype=float)
    ok = np.isfinite(y)
    ax.plot(centres[ok], y[ok], "o-", ms=3, lw=2.2, color=REAL, label="real (held out)")
    for i, (name, d) in enumerate(decays.items()):
        y = np.asarray(d["syn"], dtype=float)
        ok = np.isfinite(y)
        ax.plot(np.asarray(d["bin_centres"], dtype=float)[ok], y[ok], "-", lw=1.3,
                color=MODEL_COLORS[i % len(MODEL_COLORS)], label=name)
    ax.set_xscale("log")
    ax.set(xlabel="distance (bp)", ylabel="mean r^2", title="LD decay")
    ax.legend(frameon=False, fontsize=8)
    return _png(fig)


def _cmp_sfs(results: dict[str, dict], comparison: dict) -> str | None:
    sfs = {n: r["details"].get("sfs") for n, r in results.items()}
    sfs = {n: s for n, s in sfs.items() if s is not None}
    if not sfs:
        return None
    plt = _plt()
    edges, real, _ = next(iter(sfs.values()))
    edges = np.asarray(edges, dtype=float)
    centres = 0.5 * (edges[1:] + edges[:-1])
    fig, ax = plt.subplots(figsize=(5.6, 3.8))
    ax.bar(centres, real, width=(edges[1] - edges[0]) * 0.9, color=REAL, alpha=0.35,
           label="real (held out)")
    for i, (name, (_e, _r, syn)) in enumerate(sfs.items()):
        ax.plot(centres, syn, "o-", ms=2.5, lw=1.2, color=MODEL_COLORS[i % len(MODEL_COLORS)],
                label=name)
    ax.set_yscale("log")
    ax.set(xlabel="minor allele frequency", ylabel="fraction of SNPs",
           title="Folded site-frequency spectrum")
    ax.legend(frameon=False, fontsize=8)
    return _png(fig)


def _cmp_allele_freq(results: dict[str, dict], comparison: dict) -> str | None:
    have = {n: r for n, r in results.items() if "af_real" in r["details"]}
    if not have:
        return None
    plt = _plt()
    fig, axes = _grid(plt, len(have))
    for i, (ax, (name, r)) in enumerate(zip(axes, have.items(), strict=True)):
        a, b = np.asarray(r["details"]["af_real"]), np.asarray(r["details"]["af_syn"])
        idx = _subsample(len(a), 20000)
        ax.scatter(a[idx], b[idx], s=3, alpha=0.35, linewidths=0, rasterized=True,
                   color=MODEL_COLORS[i % len(MODEL_COLORS)])
        ax.plot([0, 1], [0, 1], color="0.3", lw=0.8, ls="--")
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="real allele-1 frequency",
               ylabel="synthetic", title=f"{name}, r = {_fmt(r.get('allele_freq_r'))}")
    return _png(fig)


def _cmp_pca(results: dict[str, dict], comparison: dict) -> str | None:
    have = {n: r["details"]["pca"] for n, r in results.items() if "pca" in r["details"]}
    if not have:
        return None
    plt = _plt()
    fig, axes = _grid(plt, len(have))
    real = np.asarray(next(iter(have.values()))[0])
    b = min(1, real.shape[1] - 1)
    ir = _subsample(len(real), 5000, 1)
    lo = np.quantile(real[:, [0, b]], 0.001, axis=0)
    hi = np.quantile(real[:, [0, b]], 0.999, axis=0)
    pad = 0.25 * (hi - lo) + 1e-9
    for i, (ax, (name, (_r, syn, _ev))) in enumerate(zip(axes, have.items(), strict=True)):
        syn = np.asarray(syn)
        isy = _subsample(len(syn), 5000, 2)
        ax.scatter(real[ir, 0], real[ir, b], s=4, alpha=0.35, color=REAL, linewidths=0,
                   label="real", rasterized=True)
        ax.scatter(syn[isy, 0], syn[isy, b], s=4, alpha=0.35, linewidths=0, rasterized=True,
                   color=MODEL_COLORS[i % len(MODEL_COLORS)], label=name)
        ax.set(xlim=(lo[0] - pad[0], hi[0] + pad[0]), ylim=(lo[1] - pad[1], hi[1] + pad[1]),
               xlabel="PC1", ylabel=f"PC{b + 1}",
               title=f"{name}, W1/sd = {_fmt(results[name].get('pca_wasserstein'))}")
        ax.legend(frameon=False, fontsize=7, markerscale=2, loc="best")
    return _png(fig)


def _cmp_privacy(results: dict[str, dict], comparison: dict) -> str | None:
    names = list(results)
    ref = comparison.get("reference") or {}
    panels = [("aats", "aats_train", "AATS (vs real / vs train)", 0.5),
              ("dcr_ratio", None, "DCR ratio (syn->train / real->train)", 1.0),
              ("mia_auc", None, "Membership-inference AUC", 0.5)]
    panels = [p for p in panels if any(_number(results[n].get(p[0])) is not None for n in names)]
    if not panels:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False)
    x = np.arange(len(names))
    colors = [MODEL_COLORS[i % len(MODEL_COLORS)] for i in range(len(names))]
    for ax, (key, key2, title, ideal) in zip(axes[0], panels, strict=True):
        vals = [_number(results[n].get(key)) for n in names]
        v = np.array([np.nan if u is None else u for u in vals])
        if key2 is None:
            ax.bar(x, v, color=colors)
        else:
            v2 = np.array([np.nan if u is None else u
                           for u in (_number(results[n].get(key2)) for n in names)])
            ax.bar(x - 0.2, v, width=0.4, color=colors, label="vs held-out real")
            ax.bar(x + 0.2, v2, width=0.4, color=colors, alpha=0.45, hatch="//",
                   label="vs train")
            ax.legend(frameon=False, fontsize=7)
        ax.axhline(ideal, color="0.3", lw=0.8, ls="--")
        r = _number(ref.get(key))
        if r is not None:
            ax.axhline(r, color=REAL, lw=1.0, ls=":", label="real vs real")
        ax.set_xticks(x, names, rotation=30, ha="right")
        ax.set(title=title)
    return _png(fig)


COMPARE_FIGURES = (
    ("LD decay", _cmp_ld_decay),
    ("Site-frequency spectrum", _cmp_sfs),
    ("Allele frequencies vs real", _cmp_allele_freq),
    ("PCA fitted on the held-out individuals, synthetic projected", _cmp_pca),
    ("Privacy (dashed: ideal, dotted: real vs real)", _cmp_privacy),
)


def comparison_figures(comparison: dict[str, Any], results: dict[str, dict]
                       ) -> list[tuple[str, str]]:
    """(title, base64 PNG) of every overlaid plot the results have data for."""
    out = []
    for title, fn in COMPARE_FIGURES:
        png = fn(results, comparison)
        if png is not None:
            out.append((title, png))
    return out


def comparison_html(comparison: dict[str, Any], results: dict[str, dict]) -> str:
    """The self-contained comparison page: table (best per column marked), runs, plots."""
    esc = html.escape
    cols = _compare_columns(comparison)
    best = comparison.get("best") or {}
    ref = comparison.get("reference") or {}
    head = "".join(f"<th title='{esc(k)}'>{esc(label)}</th>" for k, label, _d in cols)
    dirs = "".join(f"<td class='sub'>{esc(_direction_text(d))}</td>" for _k, _l, d in cols)
    ref_row = "".join(f"<td>{esc(_fmt(ref.get(k)))}</td>" for k, _l, _d in cols)
    body = []
    for name, m in comparison["models"].items():
        cells = []
        for key, _label, _d in cols:
            text = esc(_fmt(m["metrics"].get(key)))
            cells.append(f"<td class='best'>{text}</td>" if name in best.get(key, [])
                         else f"<td>{text}</td>")
        label = esc(name)
        if m.get("report"):
            link = esc(os.path.relpath(m["report"], comparison.get("out", ".")))
            label = f"<a href='{link}'>{label}</a>"
        body.append(f"<tr><td>{label}</td>{''.join(cells)}</tr>")
    table = ("<div class='wide'><table><tr><th>model</th>" + head + "</tr>"
             "<tr><td class='sub'>best</td>" + dirs + "</tr>"
             "<tr class='ref'><td>real vs real</td>" + ref_row + "</tr>" + "".join(body)
             + "</table></div>")
    runs = _run_rows(comparison)
    run_table = ("<table><tr>" + "".join(f"<th>{esc(c)}</th>" for c in runs[0]) + "</tr>"
                 + "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>"
                           for r in runs[1:]) + "</table>")
    figs = "".join(
        f"<figure><img alt='{esc(t)}' src='data:image/png;base64,{png}'>"
        f"<figcaption>{esc(t)}</figcaption></figure>"
        for t, png in comparison_figures(comparison, results))
    notes = comparison.get("notes") or []
    note_html = ("<div class='notes'>" + "<br>".join(esc(n) for n in notes) + "</div>"
                 if notes else "")
    legend = "; ".join(f"{label} = {key}" for key, label, _d in cols)
    css = _CSS + (".best{background:#e3f4e1;font-weight:bold}.ref td{color:#1f5fa8;"
                  "font-style:italic}.wide{overflow-x:auto}")
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>genofast comparison</title>"
        f"<style>{css}</style></head><body><h1>genofast comparison</h1>"
        + "".join(f"<div class='sub'>{esc(x)}</div>" for x in _setup_lines(comparison))
        + note_html + "<h2>Metrics</h2>" + table
        + f"<p class='sub'>Best model of each column shaded (directions in the 'best' row: "
        f"highest, lowest, closest to real vs real, or closest to the number). {esc(legend)}. "
        "Each model's name links to its own report.</p>"
        + "<h2>Runs</h2>" + run_table + "<h2>Plots</h2><div class='grid'>" + figs
        + "</div><h2>Definitions</h2><p class='sub'>See docs/metrics.md of genofast.</p>"
        "</body></html>"
    )


def write_comparison(comparison: dict[str, Any], results: dict[str, dict],
                     out_dir: str | os.PathLike) -> dict[str, Any]:
    """Write DIR/comparison.json, .html and .md. ``comparison``: {"setup", "reference",
    "models": {name: {"metrics", "report", timings...}}, "notes"}; ``results``: each model's
    `evaluate` result (with ``details``, for the plots). Returns the comparison as written, with
    "best" and "directions" added."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    comparison = dict(comparison)
    comparison["out"] = os.fspath(out)
    comparison["directions"] = {k: d for k, _l, d in COMPARE_METRICS}
    comparison["best"] = best_models({n: m["metrics"] for n, m in comparison["models"].items()},
                                     comparison.get("reference") or {})
    (out / "comparison.json").write_text(json.dumps(comparison, indent=2, allow_nan=False)
                                         + "\n")
    (out / "comparison.html").write_text(comparison_html(comparison, results))
    (out / "comparison.md").write_text(comparison_markdown(comparison))
    return comparison
