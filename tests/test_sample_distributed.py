"""Several processes fill one PLINK fileset: the shared `PlinkWriter` (2 gloo processes) and
`genofast sample` under torchrun, byte-identical to one process (fast, CPU)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from conftest import two_chromosome_snps, write_phased_vcf

from genofast import read_plink, write_plink
from genofast.cli import main
from genofast.io import PlinkWriter
from genofast.train import TrainConfig, Trainer

N, M = 37, 13  # the writer's cohort: N is not a multiple of 4 nor of the batch size
TINY = {"patch_size": 8, "token_dim": 4, "width": 32, "depth": 1, "n_heads": 4,
        "time_freq_dim": 32}


def _genotypes() -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(0).integers(-1, 3, (N, M), dtype=np.int8))


def _writer_worker(rank: int, world: int, store: str, folder: str) -> None:
    """One rank of the shared-writer scenarios; what each scenario raised goes to a JSON file."""
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world,
                            timeout=timedelta(seconds=60))  # a mismatched collective fails
    snps, g, out = two_chromosome_snps(M), _genotypes(), Path(folder)
    errors: dict[str, str] = {}

    def attempt(name: str, prefix: str, n: int, starts: list[int], fail: bool = False) -> None:
        try:
            with PlinkWriter(out / prefix, snps, n, distributed=True) as w:
                for s in starts:
                    w.write(s, g[s:min(n, s + 8)])
                if fail:
                    raise RuntimeError("rank 1 fell over")
        except (ValueError, RuntimeError) as err:
            errors[name] = str(err)

    mine = list(range(8 * rank, N, 8 * world))  # batch k of 8 rows to rank k % world
    attempt("ok", "ok", N, mine)
    attempt("idle", "idle", 3, [0] if rank == 0 else [])  # fewer rows than ranks
    attempt("failed", "failed", N, mine, fail=rank == 1)
    attempt("missing", "missing", N, mine[:-1] if rank == 1 else mine)
    try:
        with PlinkWriter(out / "unaligned", snps, N, distributed=True) as w:
            if rank == 0:
                w.write(2, g[2:6])
    except ValueError as err:
        errors["unaligned"] = str(err)
    (out / f"errors{rank}.json").write_text(json.dumps(errors))
    dist.destroy_process_group()


def test_two_processes_fill_one_fileset(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    mp.spawn(_writer_worker, args=(2, str(tmp_path / "store"), str(out)), nprocs=2, join=True)
    write_plink(tmp_path / "single", _genotypes(), two_chromosome_snps(M))
    for ext in ("bed", "bim", "fam"):
        assert (out / f"ok.{ext}").read_bytes() == (tmp_path / f"single.{ext}").read_bytes()
    assert torch.equal(read_plink(out / "idle").unpack(), _genotypes()[:3])
    e0, e1 = (json.loads((out / f"errors{r}.json").read_text()) for r in (0, 1))
    assert e1["failed"] == "rank 1 fell over" and "1 of 2 processes failed" in e0["failed"]
    assert all("rows were not written exactly once" in e["missing"] for e in (e0, e1))
    assert "multiple of 4" in e0["unaligned"] and "1 of 2 processes failed" in e1["unaligned"]
    assert "ok" not in e0 and "ok" not in e1 and "idle" not in e0
    # the failures left nothing behind: no final names, no temporaries
    left = {p.name for p in out.iterdir() if not p.name.startswith("errors")}
    assert left == {f"{p}.{x}" for p in ("ok", "idle") for x in ("bed", "bim", "fam")}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny diffusion run conditioned on two traits and two ancestry PCs (2 steps)."""
    rng = np.random.default_rng(0)
    n, m = 64, 80
    founders = rng.random((4, m)) < rng.uniform(0.1, 0.6, m)
    hap = founders[rng.integers(0, 4, (2 * n, 1)), np.arange(m)]
    g = (hap ^ (rng.random(hap.shape) < 0.05)).reshape(n, 2, m).sum(1).astype(np.int8)
    folder = tmp_path_factory.mktemp("dist")
    write_plink(folder / "toy", torch.from_numpy(g), two_chromosome_snps(m))
    fam = read_plink(folder / "toy").samples
    height = 170 + 10 * rng.standard_normal(n)
    (folder / "toy.pheno").write_text("FID IID height case\n" + "".join(
        f"{f} {i} {h:.3f} {int(h > 170)}\n" for f, i, h in zip(fam.fid, fam.iid, height,
                                                                strict=True)))
    cfg = TrainConfig(batch_size=16, max_steps=2, warmup_steps=1, eval_every=2, eval_samples=8,
                      eval_steps=2, val_fraction=0.25, device="cpu", ancestry=2)
    Trainer(folder / "toy", folder / "run", cfg, TINY, pheno=folder / "toy.pheno",
            pheno_names=["height", "case"], progress=False).fit()
    return folder / "run"


def _one_and_two_processes(common: list[str], tmp_path: Path, files: tuple[str, ...]) -> None:
    """`genofast sample` in this process to ``one`` and under torchrun with 2 CPU processes to
    ``two``: rank 0 alone reports, and the ``files`` are byte for byte the same."""
    assert main(["sample", *common, "--out", str(tmp_path / "one")]) == 0
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "genofast.cli", "sample", *common, "--out", str(tmp_path / "two")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("wrote ") == 1
    for ext in files:
        assert (tmp_path / f"two.{ext}").read_bytes() == (tmp_path / f"one.{ext}").read_bytes()


@pytest.mark.parametrize("conditions, batch", [
    (["--cond", "height=185", "-n", "37"], "8"),  # PCs drawn per rank from the seed
    (["--pheno", "{rows}"], "6"),  # one individual per row; batch rounded down to 4
])
def test_torchrun_sample_matches_one_process(run: Path, tmp_path: Path, conditions: list[str],
                                             batch: str) -> None:
    rows = tmp_path / "rows.pheno"
    rows.write_text("FID IID height case\n" + "".join(
        f"a{i} a{i} {'NA' if i % 5 == 0 else 160 + i} {i % 2}\n" for i in range(37)))
    conditions = [c.format(rows=rows) for c in conditions]
    common = [str(run), *conditions, "--batch-size", batch, "--steps", "3", "--seed", "3",
              "--device", "cpu", "--quiet"]
    _one_and_two_processes(common, tmp_path, ("bed", "bim", "fam", "pheno"))
    assert read_plink(tmp_path / "two").n_individuals == 37
    assert not list(tmp_path.glob("*.tmp"))


def test_torchrun_phased_run_writes_the_same_vcf(tmp_path: Path) -> None:
    """A phased run sampled with --vcf by 2 processes: the people and their haplotypes' VCF are
    byte for byte a single process's, and the haplotype fileset behind the VCF is gone."""
    rng = np.random.default_rng(1)
    n, m = 24, 40
    founders = rng.random((4, m)) < rng.uniform(0.1, 0.6, m)
    hap = founders[rng.integers(0, 4, 2 * n), :] ^ (rng.random((2 * n, m)) < 0.05)
    write_phased_vcf(tmp_path / "toy.vcf.gz", hap.astype(np.uint8), two_chromosome_snps(m))
    cfg = TrainConfig(batch_size=16, max_steps=2, warmup_steps=1, eval_every=2, eval_samples=8,
                      eval_steps=2, val_fraction=0.25, device="cpu")
    Trainer(tmp_path / "toy.vcf.gz", tmp_path / "run", cfg, TINY, progress=False).fit()
    common = [str(tmp_path / "run"), "-n", "13", "--batch-size", "4", "--steps", "3", "--seed",
              "2", "--device", "cpu", "--quiet", "--vcf"]
    _one_and_two_processes(common, tmp_path, ("bed", "bim", "fam", "vcf.gz"))
    assert not list(tmp_path.glob("*.haplotypes.*")) and not list(tmp_path.glob("*.part"))
