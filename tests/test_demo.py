"""`genofast demo` end to end on a tiny herd: every stage runs, the report has its numbers."""

from __future__ import annotations

import json
from pathlib import Path

from genofast import read_plink
from genofast.cli import main


def test_demo_runs_the_whole_pipeline(tmp_path: Path, capsys) -> None:
    out = tmp_path / "demo"
    rc = main(["demo", "--out", str(out), "--n-individuals", "120", "--chromosomes", "26",
               "--max-mb", "10", "--seed", "3", "--minutes", "0.05"])
    assert rc == 0
    herd, train, holdout, synthetic = (read_plink(out / name)
                                       for name in ("herd", "train", "holdout", "synthetic"))
    assert herd.n_individuals == 120 and train.n_individuals == holdout.n_individuals == 60
    assert synthetic.n_individuals == 60 and synthetic.n_snps == herd.n_snps > 0
    g = synthetic.unpack()
    assert int(g.min()) >= 0 and int(g.max()) <= 2
    report = json.loads((out / "report" / "report.json").read_text())
    # even a few seconds of training keep the frequencies (the model starts from them) and
    # copy nobody; the GWAS of the conditioning trait ran on both sides
    assert report["allele_freq_r"] > 0.9
    assert report["identical_to_train"] == 0
    assert report["gwas_beta_r"] is not None
    assert read_plink(out / "synthetic").n_individuals == 60
    assert (out / "synthetic.pheno").is_file() and (out / "run" / "best").is_dir()
    assert (out / "report" / "report.html").stat().st_size > 10_000
    assert "report:" in capsys.readouterr().out
