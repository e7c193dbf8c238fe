"""Diffusion training steps on the CPU: float32 against bf16 autocast, and the backbone's
``snp_features`` off against on (pytest-benchmark).

The `cpu-small` backbone (1.3 M parameters) on bench/conftest.py's cached simulated cohort of
1,000 x 4,053 SNPs (the AGBL4 panel's size), mask transition, batch 32: the issue-4 acceptance
recipe. Each round is 20 whole `Trainer.train_step` calls (loss, backward, AdamW, EMA) after 3
warm-up steps, once with ``precision=fp32`` and once with ``precision=bf16`` (the default,
``auto``, on a CPU with native bf16 matmuls; `genofast.train.uses_bf16`). The bf16 arm is
skipped on CPUs without them, where bf16 is emulated. Both run with ``snp_features`` (the named
configs' default); a third arm, bf16 without them, prices the feature.
``GENOFAST_BENCH_TRAIN_SHAPE=N,M,BATCH``
changes the size. extra_info: seconds per step and individuals per second.

Run: ``pytest bench/bench_train.py``.
"""

from __future__ import annotations

import os

import pytest

pytest.importorskip("pytest_benchmark")

from genofast.train import TrainConfig, Trainer, cpu_has_bf16  # noqa: E402

STEPS = 20


def _shape() -> tuple[int, int, int]:
    raw = os.environ.get("GENOFAST_BENCH_TRAIN_SHAPE", "1000,4053,32")
    n, m, batch = (int(v) for v in raw.split(","))
    return n, m, batch


@pytest.mark.parametrize("precision,snp_features",
                         [("fp32", True), ("bf16", True), ("bf16", False)])
def test_train_steps_cpu(benchmark, ld_cohorts, tmp_path, precision, snp_features) -> None:
    if precision == "bf16" and not cpu_has_bf16():
        pytest.skip("this CPU has no native bf16 matmuls")
    n, m, batch = _shape()
    cohort = ld_cohorts(n, m)
    cfg = TrainConfig(batch_size=batch, max_steps=10_000, eval_every=10_000, device="cpu",
                      precision=precision)
    trainer = Trainer(cohort.prefix, tmp_path / "run", cfg, {"snp_features": snp_features},
                      progress=False)
    for _ in range(3):
        trainer.train_step()

    def steps() -> float:
        for _ in range(STEPS):
            losses, _ = trainer.train_step()
        return losses["model"]

    loss = benchmark.pedantic(steps, rounds=3, iterations=1)
    per_step = benchmark.stats.stats.mean / STEPS
    benchmark.extra_info.update({
        "shape": f"{n} x {m}, batch {batch}, cpu-small, mask",
        "snp_features": snp_features,
        "s_per_step": round(per_step, 4),
        "individuals_per_s": round(batch / per_step, 1),
        "threads": os.environ.get("OMP_NUM_THREADS", "default"),
    })
    assert loss == loss and 0 < loss < 10  # finite, a plausible nats-per-SNP loss
