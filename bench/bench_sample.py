"""Whole `genofast sample` on the CPU: glibc's default malloc against freed memory kept
(`genofast.runtime.keep_freed_memory`, which the command applies), and float32 against bf16
autocast (the run's `precision`) (pytest-benchmark).

Diffusion runs (the cpu-small configuration, trained 2 steps: sampling costs the same whatever
the weights; one with ``precision=fp32``, one with ``bf16``) on bench/conftest.py's cached
simulated cohort of 1,000 x 4,053 SNPs (the AGBL4 panel's size); each round runs ``genofast
sample RUN --n 1024 --batch-size 1024 --steps 10`` in a fresh process: float32 with
``GENOFAST_KEEP_FREED_MEMORY=0`` and with the default, and bf16 with the default (skipped on a
CPU without native bf16 matmuls). Process start (importing torch) is inside every time.
``GENOFAST_BENCH_SAMPLE_SHAPE=N,M,STEPS`` (individuals sampled, SNPs, steps) changes the size.
extra_info: individuals per second, and user / system CPU seconds of the child: glibc's
default's extra time is system time (munmap and page faults).

Run: ``pytest bench/bench_sample.py``.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("pytest_benchmark")

from genofast.cli import main  # noqa: E402
from genofast.train import cpu_has_bf16  # noqa: E402

BATCH = 1024


def _shape() -> tuple[int, int, int]:
    raw = os.environ.get("GENOFAST_BENCH_SAMPLE_SHAPE", "1024,4053,10")
    n, m, steps = (int(v) for v in raw.split(","))
    return n, m, steps


@pytest.fixture(scope="module")
def run_dirs(tmp_path_factory, ld_cohorts) -> dict[str, Path]:
    _, m, _ = _shape()
    cohort = ld_cohorts(1000, m)
    runs = {}
    for precision in ("fp32", "bf16"):
        out = runs[precision] = tmp_path_factory.mktemp("bench_sample") / f"run_{precision}"
        rc = main(["train", "--bfile", str(cohort.prefix), "--set", "max_steps=2",
                   "--set", "eval_every=100", "--set", f"precision={precision}",
                   "--device", "cpu", "--out", str(out), "--quiet"])
        assert rc == 0
    return runs


def _children_cpu() -> tuple[float, float]:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime, r.ru_stime


@pytest.mark.parametrize(("malloc", "precision"), [
    ("glibc-default", "fp32"), ("keep-freed", "fp32"), ("keep-freed", "bf16")])
def test_sample_cli_cpu(benchmark, run_dirs, tmp_path, malloc, precision) -> None:
    if precision == "bf16" and not cpu_has_bf16():
        pytest.skip("this CPU has no native bf16 matmuls")
    n, m, steps = _shape()
    env = {**os.environ, "GENOFAST_KEEP_FREED_MEMORY": "0" if malloc == "glibc-default" else "1"}
    argv = [sys.executable, "-m", "genofast.cli", "sample", str(run_dirs[precision]),
            "--n", str(n), "--batch-size", str(BATCH), "--steps", str(steps), "--device", "cpu",
            "--quiet", "--out", str(tmp_path / "syn")]
    u0, s0 = _children_cpu()
    benchmark.pedantic(subprocess.run, args=(argv,), kwargs={"env": env, "check": True},
                       rounds=2, iterations=1)
    u1, s1 = _children_cpu()
    wall = benchmark.stats.stats.mean
    benchmark.extra_info.update({
        "shape": f"{n} x {m}, {steps} steps, batch {BATCH}",
        "individuals_per_s": round(n / wall, 1),
        "child_user_s_per_round": round((u1 - u0) / 2, 1),
        "child_system_s_per_round": round((s1 - s0) / 2, 1),
        "threads": os.environ.get("OMP_NUM_THREADS", "default"),
    })
    assert (tmp_path / "syn.bed").stat().st_size == 3 + m * ((n + 3) // 4)
