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


# ---------------------------------------------------------------------------------------------
# max_individuals: cohorts too big to unpack, and the memory check
# ---------------------------------------------------------------------------------------------


def _big_small_cohorts(tmp_path):
    """Real 120, synthetic 150, training 100 individuals x 200 SNPs written as PLINK prefixes,
    a phenotype driven by the first SNPs and one covariate per cohort (one row per individual)."""
    p, snps = _random_panel(200, 7)
    rng = np.random.default_rng(8)
    cohorts, y, cov = {}, {}, {}
    for name, n in (("real", 120), ("synthetic", 150), ("train", 100)):
        g = rng.binomial(2, p, (n, 200)).astype(np.int8)
        g[rng.random(g.shape) < 0.01] = -1
        cohorts[name] = _cohort(g, snps, name)
        genofast.write_plink(tmp_path / name, cohorts[name])
        y[name] = np.clip(g[:, :5], 0, 2).sum(1) + rng.normal(size=n)
        cov[name] = rng.normal(size=(n, 1))
    return cohorts, y, cov


def _same_headline(a: dict, b: dict) -> None:
    for key in HEADLINE:
        assert a[key] == b[key], key
    assert a["reference"] == b["reference"]


def test_max_individuals_equals_explicit_subset(tmp_path) -> None:
    from genofast.metrics.evaluate import SUBSET_STREAMS, subset_rows

    cohorts, y, cov = _big_small_cohorts(tmp_path)
    kw = dict(progress=False, device="cpu", seed=3, metrics=["frequency", "pca", "knn",
                                                              "privacy", "gwas"])
    res = evaluate(tmp_path / "real", tmp_path / "synthetic", tmp_path / "train", pheno=y,
                   covariates=cov, max_individuals=80, **kw)
    rows = {n: subset_rows(len(c), 80, 3, SUBSET_STREAMS[n]) for n, c in cohorts.items()}
    assert not np.array_equal(rows["real"], rows["train"])  # one stream per cohort
    sub = {n: c.subset(samples=rows[n]) for n, c in cohorts.items()}
    explicit = evaluate(sub["real"], sub["synthetic"], sub["train"],
                        pheno={n: v[rows[n]] for n, v in y.items()},
                        covariates={n: v[rows[n]] for n, v in cov.items()}, **kw)
    _same_headline(res, explicit)
    # the GWAS numbers tell rows apart: phenotypes of other rows give other numbers
    other = evaluate(sub["real"], sub["synthetic"], pheno={n: v[:80] for n, v in y.items()},
                     progress=False, device="cpu", reference=False, metrics=["gwas"])
    assert res["gwas_beta_r"] is not None and other["gwas_beta_r"] != res["gwas_beta_r"]
    assert res["info"]["subsampled"] == {"real": [120, 80], "synthetic": [150, 80],
                                         "train": [100, 80]}
    assert sum("max_individuals=80" in n for n in res["info"]["notes"]) == 3
    assert res["info"]["n_synthetic"] == 80
    # Cohort objects take the same rows (Cohort.subset)
    objs = evaluate(cohorts["real"], cohorts["synthetic"], cohorts["train"], pheno=y,
                    covariates=cov, max_individuals=80, **kw)
    _same_headline(objs, explicit)
    with pytest.raises(ValueError, match="one per individual"):
        evaluate(cohorts["real"], cohorts["synthetic"], pheno=y,
                 covariates={"synthetic": cov["synthetic"][:10]}, max_individuals=80, **kw)


def test_max_individuals_pheno_file_follows_rows(tmp_path) -> None:
    cohorts, y, _ = _big_small_cohorts(tmp_path)
    lines = ["FID IID y"] + [f"{f} {i} {v!r}" for name, c in cohorts.items()
                             for f, i, v in zip(c.samples.fid, c.samples.iid, y[name].tolist(),
                                                strict=True)]
    (tmp_path / "pheno.txt").write_text("\n".join(lines) + "\n")
    kw = dict(progress=False, device="cpu", reference=False, metrics=["gwas"])
    res = evaluate(tmp_path / "real", tmp_path / "synthetic", pheno=tmp_path / "pheno.txt",
                   max_individuals=90, **kw)
    mapped = evaluate(tmp_path / "real", tmp_path / "synthetic", pheno=y, max_individuals=90,
                      **kw)
    assert res["gwas_beta_r"] == mapped["gwas_beta_r"]
    assert res["gwas_top_hit_recall"] == mapped["gwas_top_hit_recall"]


def test_max_individuals_not_reached_keeps_everyone(tmp_path) -> None:
    cohorts, _, _ = _big_small_cohorts(tmp_path)
    kw = dict(progress=False, device="cpu", metrics=["frequency", "knn"])
    res = evaluate(tmp_path / "real", tmp_path / "synthetic", max_individuals=150, **kw)
    plain = evaluate(tmp_path / "real", tmp_path / "synthetic", **kw)
    _same_headline(res, plain)
    assert res["info"]["subsampled"] == {} and plain["info"]["subsampled"] == {}
    assert not any("max_individuals" in n for n in res["info"]["notes"])
    with pytest.raises(ValueError, match="at least 4"):
        evaluate(cohorts["real"], cohorts["synthetic"], max_individuals=3, **kw)


def test_cli_max_individuals(tmp_path, capsys) -> None:
    _big_small_cohorts(tmp_path)
    out = tmp_path / "report"
    rc = main(["evaluate", "--real", str(tmp_path / "real"), "--synthetic",
               str(tmp_path / "synthetic"), "--metrics", "frequency,ld", "--no-reference",
               "--max-individuals", "100", "--device", "cpu", "--out", str(out), "--quiet"])
    assert rc == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["info"]["subsampled"] == {"real": [120, 100], "synthetic": [150, 100]}
    assert "150 individuals" in capsys.readouterr().out  # the note, printed with the table
    assert "seeded random subset of 100 of its 150" in (out / "report.html").read_text()


def test_memory_check_suggests_max_individuals(tmp_path, monkeypatch, capsys) -> None:
    import importlib

    ev = importlib.import_module("genofast.metrics.evaluate")  # the module (not the function)

    cohorts, _, _ = _big_small_cohorts(tmp_path)
    sizes = {"real": 60, "synthetic": 60, "train": 60}
    families = set(ev.FAMILIES) - {"gwas"}  # no phenotype
    budget = ev.memory_needed(sizes, 200, families, reference=True, on_cpu=True)
    monkeypatch.setattr(ev, "available_memory", lambda device: budget)
    kw = dict(progress=False, device="cpu")
    with pytest.raises(ValueError, match=r"GiB of cpu memory .* --max-individuals \d+") as err:
        evaluate(tmp_path / "real", tmp_path / "synthetic", tmp_path / "train", **kw)
    n = int(str(err.value).split("--max-individuals ")[1].split()[0])
    assert 50 <= n <= 60
    res = evaluate(tmp_path / "real", tmp_path / "synthetic", tmp_path / "train",
                   max_individuals=n, metrics=["frequency"], **kw)  # the suggestion fits
    assert res["info"]["memory"]["available_bytes"] == budget
    rc = main(["evaluate", "--real", str(tmp_path / "real"), "--synthetic",
               str(tmp_path / "synthetic"), "--device", "cpu", "--quiet",
               "--out", str(tmp_path / "rep")])
    assert rc == 2 and "--max-individuals" in capsys.readouterr().err  # the CLI says so
    monkeypatch.setattr(ev, "available_memory", lambda device: 1000)
    with pytest.raises(ValueError, match="even 4 individuals"):
        evaluate(cohorts["real"], cohorts["synthetic"], **kw)
    monkeypatch.setattr(ev, "available_memory", lambda device: None)  # unknown: no check
    assert evaluate(cohorts["real"], cohorts["synthetic"], metrics=["frequency"],
                    **kw)["info"]["memory"]["available_bytes"] is None


def test_cgroup_headroom_counts_container_limits(tmp_path, monkeypatch) -> None:
    """A control-group limit (v2 on the job's folder, v1 on a parent) bounds the memory
    evaluate may use: limit minus (usage - inactive file cache), the tightest over ancestors."""
    import importlib

    ev = importlib.import_module("genofast.metrics.evaluate")
    root = tmp_path / "cg"
    job = root / "slurm" / "job_7"
    job.mkdir(parents=True)
    (job / "memory.max").write_text(f"{8 << 30}\n")
    (job / "memory.current").write_text(f"{3 << 30}\n")
    (job / "memory.stat").write_text(f"anon 1\ninactive_file {1 << 30}\nactive_file 5\n")
    (root / "slurm" / "memory.max").write_text("max\n")  # the parent sets no limit
    (root / "slurm" / "memory.current").write_text("1\n")
    proc = tmp_path / "cgroup"
    proc.write_text("0::/slurm/job_7\n")
    monkeypatch.setattr(ev, "PROC_CGROUP", str(proc))
    monkeypatch.setattr(ev, "CGROUP_ROOT", str(root))
    assert ev.cgroup_headroom() == (8 << 30) - (2 << 30)
    assert ev.available_memory(torch.device("cpu")) <= 6 << 30
    # v1: the limit sits on the parent, tighter than the child's "unlimited"
    v1 = root / "memory" / "docker" / "abc"
    v1.mkdir(parents=True)
    (v1 / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    (v1 / "memory.usage_in_bytes").write_text(f"{1 << 30}\n")
    (v1.parent / "memory.limit_in_bytes").write_text(f"{4 << 30}\n")
    (v1.parent / "memory.usage_in_bytes").write_text(f"{3 << 30}\n")
    (v1.parent / "memory.stat").write_text(f"total_inactive_file {1 << 29}\n")
    proc.write_text("4:memory:/docker/abc\n0::/\n")
    assert ev.cgroup_headroom() == (4 << 30) - (3 << 30) + (1 << 29)
    proc.write_text("0::/\n")  # no limit anywhere (no memory.max at the root)
    assert ev.cgroup_headroom() is None


def test_memory_check_on_cuda_counts_the_host(monkeypatch) -> None:
    """On CUDA the cohorts still pass through host memory (packed, and each unpacked to int8
    before it moves): a host too small stops the run with a --max-individuals that fits both."""
    import importlib

    ev = importlib.import_module("genofast.metrics.evaluate")
    sizes, m, fam = {"real": 600, "synthetic": 600, "train": 600}, 200, {"frequency", "ld"}
    cuda, host = torch.device("cuda"), ev.host_memory_needed(sizes, m, reference=True)
    assert host == m // 4 * 2400 + m * 600
    room = {"cuda": 1 << 40, "cpu": ev.host_memory_needed({"real": 500, "synthetic": 500,
                                                           "train": 500}, m, reference=True)}
    monkeypatch.setattr(ev, "available_memory", lambda device: room[device.type])
    with pytest.raises(ValueError, match=r"GiB of cpu memory .* before it moves to cuda.* "
                                         r"--max-individuals 500 ") as err:
        ev._check_memory(sizes, m, fam, True, ("real",), cuda)
    n = int(str(err.value).split("--max-individuals ")[1].split()[0])
    capped = {c: n for c in sizes}
    assert ev._check_memory(capped, m, fam, True, ("real",), cuda)["host_needed_bytes"] \
        <= room["cpu"]
    room["cpu"] = host  # the host fits: no error, both numbers reported
    got = ev._check_memory(sizes, m, fam, True, ("real",), cuda)
    assert got["host_needed_bytes"] == host and got["host_available_bytes"] == host
    assert got["needed_bytes"] == ev.memory_needed(sizes, m, fam, reference=True, on_cpu=False,
                                                   gwas_cohorts=("real",))
    room["cpu"] = None  # unknown host memory: no host check
    assert ev._check_memory(sizes, m, fam, True, ("real",), cuda)["host_available_bytes"] is None
    # on the CPU the one check is the device's (the host itself)
    cpu = ev._check_memory(sizes, m, fam, True, ("real",), torch.device("cpu"))
    assert "host_needed_bytes" not in cpu


def test_max_individuals_reads_each_fam_once(tmp_path, monkeypatch) -> None:
    """With max_individuals, a PLINK prefix's .fam is read once: its individuals are counted
    and read_plink takes the same table."""
    import importlib

    from genofast.io import plink

    ev = importlib.import_module("genofast.metrics.evaluate")
    _big_small_cohorts(tmp_path)
    reads: list[str] = []
    read_fam = plink.read_fam

    def counting(path):
        reads.append(str(path))
        return read_fam(path)

    monkeypatch.setattr(plink, "read_fam", counting)
    monkeypatch.setattr(ev, "read_fam", counting)
    res = evaluate(tmp_path / "real", tmp_path / "synthetic", max_individuals=100,
                   progress=False, device="cpu", reference=False, metrics=["frequency"])
    assert sorted(reads) == [str(tmp_path / "real.fam"), str(tmp_path / "synthetic.fam")]
    assert res["info"]["subsampled"] == {"real": [120, 100], "synthetic": [150, 100]}
