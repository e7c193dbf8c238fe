"""`evaluate`, the report and `genofast evaluate`: SNP matching, behaviour on real data."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import genofast
from genofast.cli import main
from genofast.io import Cohort, SampleTable, SnpTable
from genofast.metrics.evaluate import HEADLINE, evaluate, match_snps, parse_region
from genofast.ops import pack
from genofast.report import format_table, write_report


def _cohort(g: np.ndarray, snps: SnpTable, prefix: str = "ind") -> Cohort:
    samples = SampleTable.from_iids(f"{prefix}{i}" for i in range(len(g)))
    return Cohort(pack(torch.from_numpy(g.astype(np.int8))), snps, samples)


def _random_panel(m: int, seed: int = 0) -> tuple[np.ndarray, SnpTable]:
    rng = np.random.default_rng(seed)
    alleles = np.array(["A", "C", "G", "T"])
    a1 = alleles[rng.integers(0, 4, m)]
    a2 = np.array([alleles[(np.flatnonzero(alleles == a)[0] + 1 + rng.integers(0, 3)) % 4]
                   for a in a1])
    snps = SnpTable(np.where(np.arange(m) < m // 2, "1", "2"), [f"rs{j}" for j in range(m)],
                    np.zeros(m), 1000 + 137 * np.arange(m), a1, a2)
    return rng.uniform(0.05, 0.5, m), snps


def _swap(snps: SnpTable, cols: np.ndarray) -> SnpTable:
    a1, a2 = snps.allele_1.copy(), snps.allele_2.copy()
    a1[cols], a2[cols] = snps.allele_2[cols], snps.allele_1[cols]
    return SnpTable(snps.chromosome, snps.sid, snps.cm_position, snps.bp_position, a1, a2)


def test_match_snps_flips_swapped_alleles_and_counts_unmatched() -> None:
    p, snps = _random_panel(40)
    rng = np.random.default_rng(1)
    g = rng.binomial(2, p, (30, 40)).astype(np.int8)
    g[0, 5] = -1
    swapped = np.array([3, 5, 17])
    syn_snps = _swap(snps, swapped)[np.r_[0:10, 12:40]]  # SNPs 10, 11 absent
    syn_g = g[:, np.r_[0:10, 12:40]].copy()
    cols = [c if c < 10 else c - 2 for c in swapped]
    syn_g[:, cols] = np.where(syn_g[:, cols] >= 0, 2 - syn_g[:, cols], -1)
    # a SNP at a real position with other alleles
    a1 = syn_snps.allele_1.copy()
    a1[20], a2 = "N", syn_snps.allele_2.copy()
    syn_snps = SnpTable(syn_snps.chromosome, syn_snps.sid, syn_snps.cm_position,
                        syn_snps.bp_position, a1, a2)
    real, syn = _cohort(g, snps), _cohort(syn_g, syn_snps)
    match = match_snps({"real": real, "synthetic": syn})
    assert len(match.index["real"]) == 37
    assert match.unmatched == {"real": 3, "synthetic": 1}
    assert match.allele_mismatch == {"synthetic": 1}
    assert match.flip["synthetic"].sum() == 3
    res = evaluate(real, syn, train=real, metrics=["frequency", "privacy"], reference=False,
                   progress=False, device="cpu")
    # after flipping, the synthetic cohort is the real one on the 37 shared SNPs
    assert res["allele_freq_r"] == pytest.approx(1.0)
    assert res["identical_to_train"] == 30
    assert res["info"]["flipped_snps"] == {"synthetic": 3, "train": 0}
    assert res["info"]["n_snps_matched"] == 37


def test_light_path_and_report(tmp_path) -> None:
    p, snps = _random_panel(300, 2)
    rng = np.random.default_rng(3)
    real = _cohort(rng.binomial(2, p, (80, 300)), snps)
    syn = _cohort(rng.binomial(2, p, (60, 300)), snps, "syn")
    res = evaluate(real, syn, metrics={"frequency", "privacy"}, reference=False,
                   progress=False)
    assert set(HEADLINE) <= set(res)
    assert res["allele_freq_r"] > 0.8 and res["precision"] is None and res["aats"] is None
    assert res["reference"] == {}
    assert any("privacy metrics" in n for n in res["info"]["notes"])  # no train: said so
    jpath, hpath = write_report(res, tmp_path / "rep")
    loaded = json.loads(jpath.read_text())
    assert loaded["allele_freq_r"] == pytest.approx(res["allele_freq_r"])
    assert "details" not in loaded
    assert hpath.read_text().count("data:image/png;base64,") >= 3
    assert "allele_freq_r" in format_table(res)
    with pytest.raises(ValueError, match="unknown"):
        evaluate(real, syn, metrics={"nope"})


def test_parse_region() -> None:
    assert parse_region("1:48,500,000-49000000") == ("1", 48500000, 49000000)
    assert parse_region(None) is None
    with pytest.raises(ValueError, match="CHR:START-END"):
        parse_region("chr1-5")


# ---------------------------------------------------------------------------------------------
# behaviour on real data (AGBL4): the three scenarios
# ---------------------------------------------------------------------------------------------


def _splits(agbl4_prefix):
    c = genofast.read_plink(agbl4_prefix)
    split1 = np.flatnonzero(c.samples.fid == "split1")
    split2 = np.flatnonzero(c.samples.fid == "split2")
    perm = np.random.default_rng(0).permutation(split2)
    half = len(perm) // 2
    return c[split1], c[np.sort(perm[:half])], c[np.sort(perm[half:])]


def _independent_snps(train: Cohort, n: int, seed: int) -> Cohort:
    """Each SNP drawn independently from the training genotype frequencies (no LD)."""
    g = train.unpack().numpy()
    freq = np.stack([(g == k).mean(0) for k in range(3)], 1)
    u = np.random.default_rng(seed).random((n, g.shape[1]))
    draw = (u > freq[:, 0]).astype(np.int8) + (u > freq[:, 0] + freq[:, 1])
    return _cohort(draw, train.snps, "indep")


def test_behaviour_on_agbl4(agbl4_prefix, tmp_path) -> None:
    train, real, held = _splits(agbl4_prefix)
    rows = {}
    # 1. held-out real people as the "synthetic" cohort: what a perfect generator scores
    h = evaluate(real, held, train, progress=False, metrics=["frequency", "ld", "privacy"])
    rows["held-out"] = h
    assert h["allele_freq_r"] > 0.99
    assert abs(h["aats"] - h["aats_real_baseline"]) < 0.07
    assert abs(h["mia_auc"] - 0.5) < 0.05
    assert 0.9 < h["dcr_ratio"] < 1.1
    assert h["identical_to_train"] == 0
    # 2. a copy of the training set: a generator that memorised
    copy = Cohort(train.genotypes.clone(), train.snps, SampleTable.default(len(train)))
    c = evaluate(real, copy, train, progress=False, reference=False,
                 metrics=["frequency", "privacy"])
    rows["copy"] = c
    assert c["identical_to_train"] == len(train)
    assert c["aats_train"] < 0.02
    assert c["mia_auc"] > 0.8
    assert c["dcr_ratio"] == 0.0
    # 3. independent SNPs drawn from the training genotype frequencies: right margins, no LD
    ind = _independent_snps(train, len(held), 5)
    i = evaluate(real, ind, train, progress=False, reference=False, metrics=["frequency", "ld"])
    rows["independent"] = i
    assert i["allele_freq_r"] > 0.99
    assert i["ld_r2_mae"] > 3 * h["ld_r2_mae"]
    keys = ["allele_freq_r", "ld_r2_mae", "aats", "aats_real_baseline", "aats_train",
            "identical_to_train", "dcr_ratio", "mia_auc"]
    table = "\n".join(f"{name:12s} " + " ".join(f"{k}={r.get(k)!s:.6s}" for k in keys)
                      for name, r in rows.items())
    (tmp_path / "rows.txt").write_text(table)
    print("\n" + table)


def test_cli_evaluate(agbl4_prefix, tmp_path, capsys) -> None:
    c = genofast.read_plink(agbl4_prefix, snps=slice(0, 400))
    real, syn, train = c[np.arange(0, 200)], c[np.arange(1252, 1452)], c[np.arange(200, 500)]
    for name, part in (("real", real), ("syn", syn), ("train", train)):
        genofast.write_plink(tmp_path / name, part)
    y = np.random.default_rng(0).normal(size=len(c))
    lines = ["FID IID y"] + [f"{f} {i} {v!r}" for f, i, v in zip(c.samples.fid, c.samples.iid,
                                                                   y.tolist(), strict=True)]
    (tmp_path / "pheno.txt").write_text("\n".join(lines) + "\n")
    out = tmp_path / "report"
    rc = main(["evaluate", "--real", str(tmp_path / "real"), "--synthetic", str(tmp_path / "syn"),
               "--train", str(tmp_path / "train"), "--pheno", str(tmp_path / "pheno.txt"),
               "--pheno-name", "y", "--region", "1:48532948-48700000", "--out", str(out),
               "--quiet"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "allele_freq_r" in printed and "gwas_beta_r" in printed
    rep = json.loads((out / "report.json").read_text())
    for key in HEADLINE:
        assert key in rep
        assert rep[key] is not None, key
    assert rep["reference"]["aats"] is not None
    assert (out / "report.html").stat().st_size > 50_000
