"""Calibrate a trained diffusion run's sampler to the training genotype frequencies.

The network's conditionals are calibrated on real contexts but not on its own partial samples:
there, a context that matches no training carrier's haplotype gets a rare allele with too little
probability, and the loss compounds over the sampling steps (on AGBL4 the sampled SNPs of MAF
1-2 % had about half their minor alleles). `CategoricalDiffusion.calibrate` fits per-SNP,
per-genotype logit offsets (the "tilt") that put the sampled frequencies back on the training
ones: the least change to the model, in KL, that does (an I-projection). This module runs it on a
run folder's checkpoint and keeps the tilt beside the weights, in
``RUN/<checkpoint>/calibration.safetensors`` with the step it belongs to and the settings it was
fitted under; `genofast.train.load_weights` applies it, so `genofast sample` uses it. Saving the
checkpoint again (more training) deletes it.

Only training frequencies are matched, which the model already holds (``freq``), so the
calibration uses no individual's genotypes. A run trained with ``--ancestry`` is calibrated at
PCs drawn from its mixture, as it is sampled; other conditional runs at the null condition.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from genofast.ancestry import ancestry_columns, fill_ancestry
from genofast.train import CALIBRATION_FILE, _atomic, autocast, load_weights, run_precision


def calibrate_run(
    run_dir: str | os.PathLike,
    *,
    n: int = 512,
    iters: int = 4,
    steps: int | None = None,
    correct: int | None = None,
    correct_t: float | None = None,
    power: float | None = None,
    seed: int = 12345,
    batch_size: int = 256,
    checkpoint: str = "best",
    device: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Fit the sampling tilt of ``run_dir``'s ``checkpoint`` (EMA weights) from ``iters`` rounds
    of ``n`` sampled individuals, with the sampling settings ``steps``/``correct``/``correct_t``/
    ``power`` (None: the model's defaults; sample with the same ones), and save it. Returns a
    summary with the mean |log-frequency error| of each round."""
    from tqdm.auto import tqdm

    run = Path(run_dir)
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model, meta = load_weights(run, checkpoint, ema=True, device=dev, calibrated=False)
    if not hasattr(model, "calibrate"):
        raise ValueError(f"calibration applies to diffusion runs; this is "
                         f"{meta['train']['model']}")
    kw: dict[str, Any] = {k: v for k, v in
                          (("steps", steps), ("correct", correct), ("correct_t", correct_t),
                           ("power", power))
                          if v is not None}
    cond = None
    if ancestry_columns(meta["traits"]):  # sampled cohorts have drawn PCs: calibrate at them
        nan = np.full((n, len(meta["traits"])), np.nan, np.float32)
        cond = torch.from_numpy(fill_ancestry(nan, meta["traits"], run, seed)).to(dev)
    with safe_open(run / checkpoint / "ema.safetensors", "pt") as f:
        step = f.metadata()["step"]
    t0 = time.perf_counter()
    bar = tqdm(total=n * iters, disable=not progress, unit="ind", dynamic_ncols=True,
               desc="calibrating")
    with autocast(dev, run_precision(meta, dev)):
        errors = model.calibrate(n, iters, cond=cond, seed=seed, batch_size=batch_size,
                                 progress=bar.update, **kw)
    bar.close()
    info = {"step": step, "n": str(n), "iters": str(iters), "seed": str(seed),
            "errors": ",".join(f"{e:.4f}" for e in errors),
            **{k: str(v) for k, v in kw.items()}}
    path = run / checkpoint / CALIBRATION_FILE
    _atomic(path, lambda p: save_file({"tilt": model.tilt.float().cpu().contiguous()}, p,
                                      metadata=info))
    return {"path": os.fspath(path), "step": int(step), "errors": errors,
            "seconds": round(time.perf_counter() - t0, 1), **kw}
