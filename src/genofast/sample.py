"""Stream a synthetic cohort from a trained run folder into a PLINK fileset at constant memory.

Batches of ``batch_size`` individuals are sampled with the run's EMA weights, row ``i`` of the
cohort keyed by ``row_offset + i`` (`CategoricalDiffusion.sample`), and written straight into a
`PlinkWriter` at their rows; nothing larger than one batch is ever held. Because every random draw
is keyed by (seed, row, step), a seed gives the same cohort whatever the batch size. The `.bim` is
the run's training SNPs; with conditioning values, ``PREFIX.pheno`` (FID IID trait...) is written
beside the `.fam` in the trait's own units.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genofast.io import PlinkWriter, write_pheno
from genofast.io.tables import SampleTable, read_bim
from genofast.train import encode_cond, load_weights


def sample_cohort(
    run_dir: str | os.PathLike,
    n: int,
    out: str | os.PathLike,
    *,
    cond: dict[str, str] | None = None,
    guidance: float = 0.0,
    steps: int = 50,
    seed: int = 0,
    batch_size: int = 1024,
    checkpoint: str = "best",
    device: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Write ``n`` synthetic individuals to ``out``.bed/.bim/.fam (+ .pheno with ``cond``).

    ``cond``: trait name -> value as given on the command line (raw units for continuous traits,
    0/1 for binary, a level name for categorical); traits left out are sampled as missing.
    Returns a small summary dict."""
    from tqdm.auto import tqdm

    if n < 1:
        raise ValueError(f"--n must be >= 1, got {n}")
    if batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {batch_size}")
    if steps < 1:
        raise ValueError(f"--steps must be >= 1, got {steps}")
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model, meta = load_weights(run_dir, checkpoint, ema=True, device=dev)
    snps = read_bim(Path(run_dir) / "snps.bim")
    specs = meta["traits"]
    row = None
    if cond:
        row = torch.from_numpy(encode_cond(specs, cond)).to(dev)
    samples = SampleTable.from_iids([f"syn{i}" for i in range(n)])
    with PlinkWriter(out, snps, n, samples=samples) as writer:
        bar = tqdm(total=n, disable=not progress, unit="ind", dynamic_ncols=True)
        for start in range(0, n, batch_size):
            b = min(batch_size, n - start)
            c = None if row is None else row.expand(b, -1)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=dev.type == "cuda"):
                x = model.sample(b, c, steps=steps, guidance=guidance, seed=seed,
                                 row_offset=start)
            writer.write(start, x)
            bar.update(b)
        bar.close()
    pheno_path = None
    if cond:
        names = [s["name"] for s in specs if s["name"] in cond]
        values = np.array([[cond[k] for k in names]] * n, dtype=object)
        pheno_path = Path(os.fspath(out) + ".pheno")
        write_pheno(pheno_path, samples.fid, samples.iid, names, values.astype(str))
    return {"n": n, "n_snps": len(snps), "out": os.fspath(out),
            "pheno": None if pheno_path is None else os.fspath(pheno_path)}
