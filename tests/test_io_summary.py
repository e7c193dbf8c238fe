"""`genofast info`: the summary dict, its text, and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from genofast import write_plink
from genofast.cli import main
from genofast.io import SnpTable
from genofast.io import summary as summary_mod
from genofast.io.summary import format_summary, summarize


def test_summary_counts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(summary_mod, "_CHUNK_GENOTYPES", 40)  # many chunks of individuals
    rng = np.random.default_rng(0)
    n, m = 50, 9
    g = rng.integers(0, 3, size=(n, m)).astype(np.int8)
    g[:, 0] = 0  # monomorphic
    g[:, 1] = -1  # nothing called
    g[:3, 2] = -1
    g[:, 3] = 2
    g[0, 3] = 1  # MAF 0.01
    snps = SnpTable.synthetic(m)
    snps.chromosome[:] = ["1"] * 4 + ["X"] * 5
    write_plink(tmp_path / "s", g, snps)
    s = summarize(tmp_path / "s")
    assert (s["n_individuals"], s["n_snps"]) == (n, m)
    assert s["snps_per_chromosome"] == {"1": 4, "X": 5}
    assert s["n_missing_genotypes"] == n + 3
    assert s["missing_rate"] == pytest.approx((n + 3) / (n * m))
    assert s["n_snps_all_missing"] == 1
    called = [j for j in range(m) if j != 1]
    freqs = []
    for j in called:
        col = g[:, j][g[:, j] >= 0].astype(float)
        f = col.mean() / 2
        freqs.append(min(f, 1 - f))
    assert s["maf"]["mean"] == pytest.approx(np.mean(freqs))
    assert s["maf"]["median"] == pytest.approx(np.median(freqs))
    assert s["maf"]["n_monomorphic"] == 1
    hist = s["maf"]["histogram"]
    assert sum(hist.values()) == m - 1
    assert hist["<0.01"] == 1 and hist["0.01-0.05"] == 1
    text = format_summary(s)
    assert "individuals    50" in text and "X  5" in text and "monomorphic 1" in text
    json.dumps(s)


def test_real_summary(agbl4_prefix: Path) -> None:
    s = summarize(agbl4_prefix)
    assert (s["n_individuals"], s["n_snps"]) == (2504, 4053)
    assert s["missing_rate"] == 0.0 and s["maf"]["n_monomorphic"] == 0
    assert s["maf"]["median"] == pytest.approx(0.033, abs=5e-4)  # README: median MAF 0.033
    assert s["maf"]["histogram"]["<0.01"] == 0  # README: all MAF >= 0.01


def test_cli_info(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_plink(tmp_path / "c", np.zeros((5, 3), np.int8), SnpTable.synthetic(3))
    assert main(["info", str(tmp_path / "c"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n_individuals"] == 5 and out["maf"]["n_monomorphic"] == 3
    assert main(["info", str(tmp_path / "c.bed")]) == 0
    assert "SNPs           3" in capsys.readouterr().out
    assert main(["info", str(tmp_path / "missing")]) == 2
    assert "file not found" in capsys.readouterr().err


def test_real_summary_yelmen(yelmen_prefix: Path) -> None:
    s = summarize(yelmen_prefix)
    assert (s["n_individuals"], s["n_snps"], len(s["snps_per_chromosome"])) == (2504, 805, 22)
    assert s["maf"]["n_monomorphic"] == 3 and s["maf"]["histogram"]["<0.01"] == 10  # README
