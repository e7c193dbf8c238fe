"""End-to-end tests of `genofast simulate`: small cohorts on the first Mb of a few chromosomes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from genofast.cli import main
from genofast.io import read_pheno, read_plink
from genofast.simulate.cattle import simulate_cattle
from genofast.simulate.human import simulate_human
from genofast.simulate.pedigree import DairyPedigree

SIDECARS = (".bed", ".bim", ".fam", ".pheno", ".json", ".causal.tsv", ".panel.tsv",
            ".pedigree.tsv")
SMALL = dict(chromosomes="28-29", max_bp=3_000_000, segment_length=1_000_000, n_founders=150,
             pedigree=DairyPedigree(n_generations=4, output_generations=2, n_sires=8),
             traits=["name=fat,h2=0.5,n_causal=60,qtl=29:1000000:0.2"], progress=False)


@pytest.fixture(scope="module")
def herd(tmp_path_factory):
    out = tmp_path_factory.mktemp("herd") / "herd"
    res = simulate_cattle(out, 1200, seed=11, workers=1, **SMALL)
    return out, res


def _read(prefix: Path, suffix: str) -> bytes:
    return prefix.with_name(prefix.name + suffix).read_bytes()


def test_same_seed_same_files(herd, tmp_path):
    out, res = herd
    again = tmp_path / "again"
    simulate_cattle(again, 1200, seed=11, workers=2, **SMALL)  # workers do not matter
    for suffix in SIDECARS:
        if suffix == ".json":  # names its own files; everything else must match
            a, b = json.loads(_read(out, suffix)), json.loads(_read(again, suffix))
            assert a.pop("files") != b.pop("files") and a == b
        else:
            assert _read(out, suffix) == _read(again, suffix), suffix
    other = tmp_path / "other"
    simulate_cattle(other, 1200, seed=12, workers=1, **SMALL)
    assert _read(out, ".bed") != _read(other, ".bed")


def test_genotypes_valid_and_metadata(herd):
    out, res = herd
    c = read_plink(out)
    g = c.unpack().numpy()
    assert g.shape == (1200, res.n_snps)
    assert g.min() >= 0 and g.max() <= 2  # no missing
    assert np.allclose(g.mean(axis=0) / 2, res.allele_frequency)
    for chrom in ("28", "29"):
        bp = c.snps.bp_position[c.snps.chromosome == chrom]
        assert np.all(np.diff(bp) > 0) and bp.max() <= 3_000_000
    assert np.all(c.snps.allele_1 != c.snps.allele_2)
    assert set(np.unique(c.snps.allele_1)) <= set("ACGT")
    assert (c.samples.sex == 2).all()
    meta = json.loads(_read(out, ".json"))
    assert meta["seed"] == 11 and meta["n_individuals"] == 1200
    assert meta["snps_per_chromosome"] == res.snps_per_chromosome
    assert meta["model"]["demographic_model"] == "HolsteinFriesian_1M13"
    assert meta["genofast_version"]
    assert meta["pedigree"]["n_sires"] == 8
    # chip-like: one SNP per ~50 kb, mostly common
    assert abs(res.n_snps - 2 * 3_000_000 / 50_000) <= 2
    maf = np.minimum(res.allele_frequency, 1 - res.allele_frequency)
    assert 0.18 < maf.mean() < 0.32


def test_trait_heritability_and_causal_file(herd):
    out, res = herd
    c = read_plink(out)
    g = c.unpack().numpy().astype(np.float64)
    ph = read_pheno(out.with_name(out.name + ".pheno"), c.samples)
    y = ph.column("fat")
    assert np.allclose(y, c.samples.phenotype)  # first trait also in the .fam
    rows = [ln.split("\t") for ln in _read(out, ".causal.tsv").decode().splitlines()[1:]]
    assert len(rows) == 61 and sum(r[1] == "qtl" for r in rows) == 1
    col = {s: j for j, s in enumerate(c.snps.sid)}
    meta = json.loads(_read(out, ".json"))
    gv = meta["traits"][0]["intercept"] + sum(float(r[7]) * g[:, col[r[2]]] for r in rows)
    h2 = gv.var() / y.var()
    assert abs(h2 - 0.5) < 0.1
    qtl = next(r for r in rows if r[1] == "qtl")
    assert qtl[3] == "29" and abs(int(qtl[4]) - 1_000_000) < 100_000
    assert abs((float(qtl[7]) * g[:, col[qtl[2]]]).var() / y.var() - 0.2) < 0.06


def test_pedigree_relatedness(herd):
    """Dam-daughter and paternal half-sib pairs share more genome than unrelated pairs."""
    out, res = herd
    c = read_plink(out)
    x = c.unpack().numpy().astype(np.float64)
    p = x.mean(axis=0) / 2
    keep = (p > 0.01) & (p < 0.99)
    z = (x[:, keep] - 2 * p[keep]) / np.sqrt(2 * p[keep] * (1 - p[keep]))
    grm = z @ z.T / keep.sum()
    lines = [ln.split("\t") for ln in _read(out, ".pedigree.tsv").decode().splitlines()[1:]]
    sire = {a[0]: a[1] for a in lines}
    dam = {a[0]: a[2] for a in lines}
    iid = c.samples.iid.tolist()
    row = {a: i for i, a in enumerate(iid)}
    dd = [grm[row[a], row[dam[a]]] for a in iid if dam[a] in row]
    hs, un = [], []
    rng = np.random.default_rng(0)
    for _ in range(20000):
        i, j = rng.integers(0, len(iid), 2)
        a, b = iid[i], iid[j]
        if i == j or dam[a] == b or dam[b] == a or dam[a] == dam[b]:
            continue
        (hs if sire[a] == sire[b] else un).append(grm[i, j])
    assert len(dd) > 100 and len(hs) > 100
    assert abs(np.mean(dd) - 0.5) < 0.12
    assert np.mean(hs) > np.mean(un) + 0.15
    assert abs(np.mean(hs) - 0.25) < 0.1


def test_real_panel_exact_counts(holstein_panel, tmp_path):
    """With a panel file, each chromosome gets exactly the panel's SNPs, frequencies matched."""
    rows = [ln.split() for ln in holstein_panel.read_text().splitlines()[1:]]
    sub = [r for r in rows if r[0] in ("28", "29") and int(r[1]) <= 4_000_000]
    panel = tmp_path / "panel.tsv"
    panel.write_text("chromosome\tposition_bp\talt_allele_freq\n" +
                     "".join("\t".join(r) + "\n" for r in sub))
    res = simulate_cattle(tmp_path / "p", 800, panel=panel, seed=3, workers=1,
                          **{**SMALL, "max_bp": 4_000_000, "traits": []})
    want = {c: sum(r[0] == c for r in sub) for c in ("28", "29")}
    assert res.snps_per_chromosome == want
    bim = (tmp_path / "p.bim").read_text().splitlines()
    assert len(bim) == len(sub)
    tab = np.loadtxt(tmp_path / "p.panel.tsv", skiprows=1, usecols=(4, 5))
    assert np.corrcoef(tab[:, 0], tab[:, 1])[0, 1] > 0.97
    assert not (tmp_path / "p.pheno").exists()


def test_plink2_reads_cattle(herd, plink2, tmp_path):
    out, res = herd
    r = subprocess.run([plink2, "--cow", "--bfile", str(out), "--freq", "--out",
                        str(tmp_path / "f")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr + r.stdout
    lines = (tmp_path / "f.afreq").read_text().splitlines()[1:]
    assert len(lines) == res.n_snps
    alt = np.array([float(ln.split("\t")[4]) for ln in lines])
    ref = np.array([ln.split("\t")[2] for ln in lines])
    c = read_plink(out)
    # plink2 reports the ALT (= allele_1 of the .bim) frequency; REF is allele_2
    assert (ref == c.snps.allele_2).all()
    assert np.allclose(alt, res.allele_frequency, atol=1e-6)


def test_human_populations(tmp_path, plink2):
    out = tmp_path / "hum"
    res = simulate_human(out, 61, chromosomes="21-22", max_bp=2_000_000,
                         segment_length=1_000_000, seed=5, workers=1, progress=False,
                         traits=["h2=0.4,n_causal=20"])
    ph = read_pheno(out.with_name("hum.pheno"))
    pops = ph.column("population")
    assert sorted(set(pops.tolist())) == ["CEU", "CHB", "YRI"]
    assert [int((pops == p).sum()) for p in ("YRI", "CEU", "CHB")] == [21, 20, 20]
    assert res.snps_per_chromosome == {"21": 40, "22": 40}
    meta = json.loads(out.with_name("hum.json").read_text())
    assert meta["model"]["demographic_model"] == "OutOfAfrica_3G09"
    r = subprocess.run([plink2, "--bfile", str(out), "--freq", "--out", str(tmp_path / "h")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr + r.stdout


def test_cli(tmp_path, capsys):
    out = tmp_path / "cli"
    rc = main(["simulate", "cattle", "-n", "40", "--out", str(out), "--chromosomes", "29",
               "--max-mb", "1", "--segment-mb", "1", "--founders", "40", "--sires", "5",
               "--seed", "1", "--trait", "h2=0.3,n_causal=5", "--workers", "1", "--quiet"])
    assert rc == 0
    assert "40 individuals" in capsys.readouterr().out
    assert out.with_name("cli.bed").exists() and out.with_name("cli.pheno").exists()
    for bad in (["--chromosomes", "31"], ["-n", "0"], ["--panel", str(tmp_path / "no.tsv")],
                ["--trait", "h2=3"], ["--generations", "1", "--output-generations", "2"]):
        rc = main(["simulate", "cattle", "-n", "10", "--out", str(tmp_path / "bad"), "--quiet",
                   *bad])
        assert rc == 2, bad
        assert "error" in capsys.readouterr().err
