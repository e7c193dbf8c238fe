"""`genofast compare`: best-marking, the held-out split, the report files, errors, one tiny run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import two_chromosome_snps

from genofast import read_plink, write_plink
from genofast.cli import main
from genofast.compare import check_run, condition_file, route_sets, split_holdout
from genofast.io import read_pheno
from genofast.io.tables import SnpTable, write_bim
from genofast.report import COMPARE_METRICS, best_models, comparison_markdown, write_comparison
from genofast.sample import sample_cohort

N, M = 80, 60


def _snps(m: int = M) -> SnpTable:
    return two_chromosome_snps(m)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """80 x 60 SNPs on 2 chromosomes with some LD (haplotypes copied from 4 founders) and a
    phenotype file with one continuous and one categorical trait."""
    rng = np.random.default_rng(0)
    founders = rng.random((4, M)) < rng.uniform(0.1, 0.6, M)
    hap = founders[rng.integers(0, 4, (2 * N, 1)), np.arange(M)]
    flip = rng.random(hap.shape) < 0.05
    g = (hap ^ flip).reshape(N, 2, M).sum(1).astype(np.int8)
    prefix = tmp_path_factory.mktemp("data") / "toy"
    write_plink(prefix, torch.from_numpy(g), _snps())
    fam = read_plink(prefix).samples
    height = 170 + 10 * rng.standard_normal(N) + 3 * g[:, 5]
    herd = rng.choice(["north", "south"], N)
    lines = ["FID IID height herd"] + [
        f"{f} {i} {h:.3f} {c}" for f, i, h, c in zip(fam.fid, fam.iid, height, herd, strict=True)]
    (prefix.parent / "toy.pheno").write_text("\n".join(lines) + "\n")
    return prefix


# --- the table ---------------------------------------------------------------------------------


def _metrics() -> tuple[dict[str, dict], dict]:
    models = {
        "a": {"allele_freq_r": 0.99, "ld_r2_mae": 0.05, "precision": 0.95, "aats": 0.62,
              "dcr_ratio": 0.8, "fst": -0.002, "identical_to_train": 0},
        "b": {"allele_freq_r": 0.97, "ld_r2_mae": 0.02, "precision": 0.70, "aats": 0.45,
              "dcr_ratio": 1.1, "fst": 0.001, "identical_to_train": 0},
        "c": {"allele_freq_r": None, "ld_r2_mae": 0.09, "precision": 0.86, "aats": 0.70,
              "dcr_ratio": 1.5, "fst": 0.004, "identical_to_train": 3, "gwas_beta_r": 0.5},
    }
    reference = {"allele_freq_r": 0.995, "ld_r2_mae": 0.01, "precision": 0.85, "aats": 0.55}
    return models, reference


def test_best_models_follow_each_columns_direction() -> None:
    models, reference = _metrics()
    best = best_models(models, reference)
    assert best["allele_freq_r"] == ["a"]  # max; c has no value
    assert best["ld_r2_mae"] == ["b"]  # min
    assert best["precision"] == ["c"]  # closest to real vs real (0.85), not the highest
    assert best["aats"] == ["b"]  # closest to 0.5 (0.45 beats 0.62 and 0.70)
    assert best["dcr_ratio"] == ["b"]  # closest to 1
    assert best["fst"] == ["b"]  # closest to 0 from either side
    assert best["identical_to_train"] == ["a", "b"]  # a tie marks both
    assert "gwas_beta_r" not in best  # one model only: nothing to judge
    # a "ref" column without the real-vs-real value is not judged
    assert "precision" not in best_models(models, {})
    directions = {k: d for k, _l, d in COMPARE_METRICS}
    assert set(best) <= set(directions)


def _comparison(models: dict[str, dict], reference: dict, out: Path) -> dict:
    rows = {}
    for name, m in models.items():
        rows[name] = {"model": name, "metrics": m, "trained_here": name != "c",
                      "conditioned": False, "steps": 10, "best_step": 5, "n_parameters": 1234,
                      "seconds": {"train": 1.5, "sample": 0.25, "evaluate": 2.0},
                      "report": str(out / "reports" / name / "report.html")}
    setup = {"n_train": 40, "n_holdout": 40, "n_synthetic": 40, "n_snps": M,
             "holdout_from": "test", "max_minutes": 2.0, "gwas_trait": None}
    return {"setup": setup, "reference": reference, "models": rows, "notes": ["a note"]}


def _details(rng: np.random.Generator, shift: float) -> dict:
    af = rng.random(M)
    edges = np.linspace(0, 0.5, 11)
    sfs = np.full(10, 0.1)
    centres = np.geomspace(1e3, 1e5, 8)
    pca = (rng.standard_normal((40, 4)), rng.standard_normal((40, 4)) + shift, np.ones(4))
    return {"af_real": af, "af_syn": np.clip(af + shift, 0, 1), "sfs": (edges, sfs, sfs + shift),
            "ld_decay": {"bin_centres": centres, "real": 0.3 / np.log(centres),
                         "syn": 0.2 / np.log(centres)},
            "pca": pca}


def test_write_comparison_writes_json_html_markdown(tmp_path: Path) -> None:
    models, reference = _metrics()
    comparison = _comparison(models, reference, tmp_path)
    rng = np.random.default_rng(1)
    results = {n: {**m, "details": _details(rng, 0.1 * i)}
               for i, (n, m) in enumerate(models.items())}
    written = write_comparison(comparison, results, tmp_path)
    data = json.loads((tmp_path / "comparison.json").read_text())
    assert data["best"] == written["best"] == best_models(models, reference)
    assert data["directions"]["precision"] == "ref" and data["directions"]["aats"] == 0.5
    assert set(data["models"]) == {"a", "b", "c"}

    md = (tmp_path / "comparison.md").read_text()
    assert md == comparison_markdown(written)
    table = [ln for ln in md.splitlines() if ln.startswith("| ")]
    assert table[0].startswith("| model | AF r | ")
    assert table[3].startswith("| real vs real | 0.9950 |")
    row_b = next(ln for ln in table if ln.startswith("| b |"))
    assert "**0.0200**" in row_b and "**0.4500**" in row_b  # LD MAE and AATS best
    row_a = next(ln for ln in table if ln.startswith("| a |"))
    assert "**0.9900**" in row_a and "0.0500" in row_a and "**0.0500**" not in row_a
    assert "note: a note" in md

    html = (tmp_path / "comparison.html").read_text()
    assert html.count("<img ") == 5  # LD decay, SFS, allele frequencies, PCA, privacy
    assert html.count("class='best'") == sum(len(v) for v in data["best"].values())
    assert "href='reports/a/report.html'" in html and "real vs real" in html


# --- the held-out split, --set routing, checks --------------------------------------------------


def test_split_holdout_partitions_the_cohort(cohort: Path, tmp_path: Path) -> None:
    train, hold = split_holdout(cohort, tmp_path / "d", 0.25, seed=3)
    full, tr, ho = read_plink(cohort), read_plink(train), read_plink(hold)
    assert ho.n_individuals == 20 and tr.n_individuals == 60
    split = json.loads((tmp_path / "d" / "split.json").read_text())
    assert sorted(split["train"] + split["holdout"]) == list(range(N))
    g = full.unpack()
    assert torch.equal(ho.unpack(), g[split["holdout"]])
    assert torch.equal(tr.unpack(), g[split["train"]])
    assert list(ho.samples.iid) == [full.samples.iid[i] for i in split["holdout"]]
    assert list(tr.snps.sid) == list(full.snps.sid)
    again, _ = split_holdout(cohort, tmp_path / "e", 0.25, seed=3)
    other, _ = split_holdout(cohort, tmp_path / "f", 0.25, seed=4)
    assert list(read_plink(again).samples.iid) == list(tr.samples.iid)
    assert list(read_plink(other).samples.iid) != list(tr.samples.iid)
    with pytest.raises(ValueError, match="at least 4"):
        split_holdout(cohort, tmp_path / "g", 0.02)


def test_route_sets_per_model_and_shared() -> None:
    got = route_sets(["diffusion", "independent"],
                     ["diffusion:width=16", "max_steps=3", "independent:seed=2"])
    assert got == {"diffusion": ["width=16", "max_steps=3"],
                   "independent": ["max_steps=3", "seed=2"]}
    with pytest.raises(ValueError, match="not among the models"):
        route_sets(["diffusion"], ["vae:lr=1"])
    with pytest.raises(ValueError, match="no model trained here"):
        route_sets(["diffusion"], ["no_such_key=1"])
    with pytest.raises(ValueError, match="expected"):
        route_sets(["diffusion"], ["width"])


def test_condition_file_keeps_row_order_and_blanks_unseen_levels(cohort: Path,
                                                                  tmp_path: Path) -> None:
    samples = read_plink(cohort).samples[np.array([7, 2, 5])]
    table = read_pheno(cohort.parent / "toy.pheno", samples, allow_unknown=True)
    specs = [{"name": "herd", "kind": "categorical", "n_levels": 1, "levels": [table.column(
        "herd")[0]]}, {"name": "height", "kind": "continuous", "mean": 170.0, "sd": 10.0},
             {"name": "absent", "kind": "binary", "n_levels": 2}]
    path, notes = condition_file(cohort.parent / "toy.pheno", samples, specs, tmp_path / "c")
    got = read_pheno(path)
    assert list(got.iid) == list(samples.iid)  # row i conditions synthetic individual i
    assert got.names == ["height"] and list(got.categorical) == ["herd"]
    np.testing.assert_allclose(got.column("height"), table.column("height"))
    seen = table.column("herd") == table.column("herd")[0]
    assert not seen.all()  # the fixture gives these three individuals both herds
    assert list(got.column("herd") != "") == list(seen)
    assert len(notes) == 1 and f"{(~seen).sum()} held-out individuals" in notes[0]
    none, notes = condition_file(cohort.parent / "toy.pheno", samples, specs[2:], tmp_path / "d")
    assert none is None and "none of the traits absent" in notes[0]


def _fake_run(run: Path, snps: SnpTable, train_ids: list[list[str]]) -> Path:
    (run / "best").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"train": {"model": "diffusion"}}))
    (run / "best" / "state.json").write_text(json.dumps({"step": 1, "best_score": 0.0}))
    write_bim(run / "snps.bim", snps)
    (run / "split.json").write_text(json.dumps({"train_ids": train_ids, "validation_ids": []}))
    return run


def test_check_run_refuses_leaks_and_other_snps(cohort: Path, tmp_path: Path) -> None:
    full = read_plink(cohort)
    hold = full.samples[np.arange(10)]
    notes: list[str] = []
    ok = _fake_run(tmp_path / "ok", full.snps, [[full.samples.fid[20], full.samples.iid[20]]])
    assert check_run("ok", ok, full.snps, hold, True, notes)["train"]["model"] == "diffusion"
    leak = _fake_run(tmp_path / "leak", full.snps, [[hold.fid[3], hold.iid[3]]])
    with pytest.raises(ValueError, match="trained .or validated. on 1 of the held-out"):
        check_run("leak", leak, full.snps, hold, True, notes)
    assert notes == []
    check_run("leak", leak, full.snps, hold, False, notes)  # --reference: ids may repeat
    assert len(notes) == 1
    other = _fake_run(tmp_path / "other", _snps(M - 4), [])
    with pytest.raises(ValueError, match="different SNPs: 0 only in run"):
        check_run("other", other, full.snps, hold, True, notes)
    with pytest.raises(ValueError, match="not a run folder"):
        check_run("empty", tmp_path, full.snps, hold, True, notes)


def test_cli_errors_are_clear(cohort: Path, tmp_path: Path, capsys) -> None:
    out = str(tmp_path / "out")
    assert main(["compare", "--bfile", str(cohort), "--models", "diffusion,nope",
                 "--out", out]) == 2
    assert "unknown model(s) nope; choose from diffusion" in capsys.readouterr().err
    assert main(["compare", "--bfile", str(cohort), "--out", out]) == 2
    assert "nothing to compare" in capsys.readouterr().err
    assert main(["compare", "--bfile", str(cohort), "--runs", f"x={tmp_path}",
                 "--out", out]) == 2
    assert "--runs x=" in capsys.readouterr().err
    # a --reference cohort on other SNPs
    ref = tmp_path / "ref"
    write_plink(ref, torch.zeros(8, M - 1, dtype=torch.int8), _snps(M - 1))
    assert main(["compare", "--bfile", str(cohort), "--reference", str(ref), "--models",
                 "diffusion", "--out", out]) == 2
    err = capsys.readouterr().err
    assert "hold different SNPs: 1 only in --bfile" in err
    assert main(["compare", "--bfile", str(cohort), "--reference", str(ref), "--holdout", "0.3",
                 "--models", "diffusion", "--out", out]) == 2
    assert "--holdout" in capsys.readouterr().err


# --- end to end ----------------------------------------------------------------------------------


def _independent_trains() -> bool:
    from genofast.models import model_module

    try:
        return hasattr(model_module("independent"), "build")
    except ModuleNotFoundError:
        return False


def test_compare_end_to_end(cohort: Path, tmp_path: Path, capsys) -> None:
    if not _independent_trains():
        pytest.skip("the independent model has no build() yet")
    out = tmp_path / "cmp"
    sets = ["max_steps=3", "eval_every=1000", "batch_size=8", "eval_steps=4", "warmup_steps=1",
            "diffusion:width=16", "diffusion:depth=1", "diffusion:n_heads=2",
            "diffusion:patch_size=8"]
    argv = ["compare", "--bfile", str(cohort), "--models", "independent,diffusion",
            "--pheno", str(cohort.parent / "toy.pheno"), "--pheno-name", "height",
            "--pheno-name", "herd", "--config", "cpu-small", "--steps", "4", "--seed", "1",
            "--power", "1.5", "--correct", "1", "--device", "cpu", "--quiet", "--out", str(out)]
    for s in sets:
        argv += ["--set", s]
    assert main(argv) == 0
    stdout = capsys.readouterr().out
    data = json.loads((out / "comparison.json").read_text())
    assert list(data["models"]) == ["independent", "diffusion"]
    n_hold = data["setup"]["n_holdout"]
    assert n_hold == 40 and data["setup"]["n_train"] == 40
    assert data["setup"]["gwas_trait"] == "height"
    hold = read_plink(out / "data" / "holdout").samples
    assert data["reference"]["allele_freq_r"] is not None
    for name, row in data["models"].items():
        syn = read_plink(out / "synthetic" / name)
        assert syn.n_individuals == n_hold and syn.n_snps == M
        g = syn.unpack()
        assert int(g.min()) >= 0 and int(g.max()) <= 2
        m = row["metrics"]
        assert m["allele_freq_r"] > 0.5 and m["identical_to_train"] is not None
        report = json.loads((out / "reports" / name / "report.json").read_text())
        assert report["reference"] == data["reference"]  # one yardstick for all
        assert report["allele_freq_r"] == m["allele_freq_r"]
        assert row["seconds"]["train"] is not None and row["steps"] is not None
        # conditioned on the held-out individuals' own traits, one synthetic person each
        assert row["conditioned"]
        cond = read_pheno(out / "data" / f"holdout.{name}.pheno")
        assert list(cond.iid) == list(hold.iid)
        syn_pheno = read_pheno(out / "synthetic" / f"{name}.pheno")
        np.testing.assert_allclose(syn_pheno.column("height"), cond.column("height"))
        assert m["gwas_beta_r"] is not None  # the synthetic cohort carries the trait
    assert data["models"]["diffusion"]["n_parameters"] > 0
    # the diffusion sampler's settings reach the diffusion run (the cohort `genofast sample`
    # gives with them) and are noted as unused for the other model
    assert data["setup"]["diffusion_sampling"] == {"correct": 1, "power": 1.5}
    assert "independent: --correct, --power apply to diffusion runs only; not used" in data["notes"]
    sample_cohort(out / "runs" / "diffusion", n_hold, tmp_path / "direct", steps=4, seed=1,
                  correct=1, power=1.5, pheno=out / "data" / "holdout.diffusion.pheno",
                  device="cpu", progress=False)
    assert (tmp_path / "direct.bed").read_bytes() == (out / "synthetic" / "diffusion.bed"
                                                      ).read_bytes()
    assert json.loads((out / "runs" / "diffusion" / "config.json").read_text()
                      )["backbone"]["width"] == 16
    assert data["best"]  # two models: every shared column is judged
    md = (out / "comparison.md").read_text()
    assert md in stdout and "| independent |" in md and "| diffusion |" in md
    html = (out / "comparison.html").read_text()
    assert html.count("<img ") == 5
    # a run can be compared again without retraining: same split, yardstick and numbers
    again = tmp_path / "again"
    argv = ["compare", "--bfile", str(cohort), "--pheno", str(cohort.parent / "toy.pheno"),
            "--seed", "1", "--steps", "4", "--power", "1.5", "--correct", "1", "--device", "cpu",
            "--quiet", "--no-model-reports",
            "--runs", f"diff={out / 'runs' / 'diffusion'}", "--out", str(again)]
    assert main(argv) == 0
    data2 = json.loads((again / "comparison.json").read_text())
    assert data2["reference"] == data["reference"]
    assert list(data2["models"]) == ["diff"] and not data2["models"]["diff"]["trained_here"]
    assert not (again / "reports").exists() and (again / "comparison.html").is_file()
    assert data2["models"]["diff"]["metrics"] == data["models"]["diffusion"]["metrics"]


def test_compare_max_individuals_reaches_every_evaluate(cohort: Path, tmp_path: Path,
                                                        monkeypatch, capsys) -> None:
    """--max-individuals goes to every evaluate call (the yardstick and each model) and is
    recorded in comparison.json and, with the subsets, in the notes of comparison.md."""
    import importlib

    import genofast.compare as cmp

    ev = importlib.import_module("genofast.metrics.evaluate")
    real_evaluate, seen = ev.evaluate, []

    def evaluate(*args, **kw):
        seen.append(kw.get("max_individuals"))
        return real_evaluate(*args, **{**kw, "metrics": ["frequency", "ld"]})

    def fake_sample(run_dir, n, out, **kw):  # a synthetic cohort without training a model
        g = np.random.default_rng(5).binomial(2, 0.3, (n, M)).astype(np.int8)
        write_plink(out, torch.from_numpy(g), _snps())
        return {"pheno": None}

    monkeypatch.setattr(ev, "evaluate", evaluate)
    monkeypatch.setattr(cmp, "_sample", fake_sample)
    monkeypatch.setattr(cmp, "n_parameters", lambda run_dir: 0)
    run = _fake_run(tmp_path / "run", _snps(), [])
    out = tmp_path / "cmp"
    argv = ["compare", "--bfile", str(cohort), "--runs", f"fake={run}", "--max-individuals",
            "30", "--device", "cpu", "--quiet", "--no-model-reports", "--out", str(out)]
    assert main(argv) == 0
    assert seen == [30, 30]  # the real-vs-real yardstick, then the model
    data = json.loads((out / "comparison.json").read_text())
    assert data["setup"]["max_individuals"] == 30
    info = data["models"]["fake"]["eval_info"]
    assert info["subsampled"] == {"real": [40, 30], "synthetic": [40, 30], "train": [40, 30]}
    assert "--max-individuals 30: every evaluation used seeded random subsets (30 of the 40 " \
        "held-out" in (out / "comparison.md").read_text()
    capsys.readouterr()
    assert main([*argv[:-2], "--max-individuals", "3", "--out", str(tmp_path / "x")]) == 2
    assert "--max-individuals must be at least 4" in capsys.readouterr().err
