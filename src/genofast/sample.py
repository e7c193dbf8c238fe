"""Stream a synthetic cohort from a trained run folder into a PLINK fileset at constant memory.

Batches of ``batch_size`` individuals are sampled with the run's EMA weights, row ``i`` of the
cohort keyed by ``row_offset + i`` (`CategoricalDiffusion.sample`), and written straight into a
`PlinkWriter` at their rows; nothing larger than one batch is ever held. Because every random draw
is keyed by (seed, row, step), a seed gives the same cohort whatever the batch size. The `.bim` is
the run's training SNPs; with conditioning values, ``PREFIX.pheno`` (FID IID trait...) is written
beside the `.fam` in the trait's own units. Conditions are either one set of values for everyone
(``cond``) or a phenotype file whose rows condition the individuals one by one (``pheno``: the
cohort has one individual per row, e.g. the trait values of a real cohort to mirror).

Several processes (``torchrun --nproc_per_node K -m genofast.cli sample RUN -n N --out PREFIX``):
every rank joins the process group (`genofast.train.join_ranks`: cuda:LOCAL_RANK with NCCL, the CPU
with gloo), loads the model and samples batch k when k % K is its rank, into one fileset shared
through `PlinkWriter` (``distributed=True``); rank 0 alone names the files, writes the `.pheno` and
shows progress. The batch size is rounded down to a multiple of 4 (at least 4) so that no two ranks
share a `.bed` byte; as rows are keyed by their index, the files are byte-identical to a single
process's with the same seed (with a batch size that is a multiple of 4, as the default, each batch
is the very one a single process samples). Ancestry PCs not given are drawn from the seed alone, so
every rank draws the same ones.

A run trained on a phased VCF (``"phased"`` in its config.json, `genofast.train`) samples
haplotypes: person i of the cohort is haplotype rows 2i and 2i+1 (keyed 2i, 2i+1, so still the same
cohort for a seed whatever the batch size), both under person i's traits, each under its own PCs
(the pair drawn together, `genofast.ancestry`; they are written as ``PC1_h1`` ... ``PCK_h2``), and
added up (`add_haplotypes`). A batch of B people samples 2B haplotypes. With ``vcf`` the
haplotypes are also written as a phased ``PREFIX.vcf.gz``: batches stream into a PLINK fileset of
haplotype rows (``PREFIX.haplotypes``, SNP-major like a VCF, 2N/4 bytes per SNP on disk), which
`genofast.io.bed_to_vcf` turns into the VCF at the end and which is then removed.
"""

from __future__ import annotations

import os
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genofast.ancestry import ancestry_columns, fill_ancestry
from genofast.io import PlinkWriter, bed_to_vcf, write_pheno
from genofast.io.pheno import read_pheno
from genofast.io.plink import plink_paths
from genofast.io.tables import SampleTable, read_bim
from genofast.io.vcf import haplotype_rows
from genofast.train import (
    autocast,
    encode_cond,
    encode_cond_table,
    join_ranks,
    load_weights,
    run_precision,
)


def add_haplotypes(h: torch.Tensor) -> torch.Tensor:
    """People int8 [B, M] from their sampled haplotypes int8 [2B, M] (rows 2i, 2i+1 person
    i's). A haplotype model puts a vanishing probability on class 2, which has no training
    example; a 2 drawn all the same is read as the ALT allele it stands for."""
    h = h.clamp(max=1)
    return h[0::2] + h[1::2]


def sample_cohort(
    run_dir: str | os.PathLike,
    n: int | None,
    out: str | os.PathLike,
    *,
    cond: dict[str, str] | None = None,
    pheno: str | os.PathLike | None = None,
    model_sets: list[str] | None = None,
    guidance: float = 0.0,
    steps: int | None = None,
    correct: int | None = None,
    correct_t: float | None = None,
    power: float | None = None,
    seed: int = 0,
    batch_size: int = 1024,
    checkpoint: str = "best",
    calibrated: bool = True,
    device: str | None = None,
    progress: bool = True,
    vcf: bool = False,
) -> dict[str, Any]:
    """Write ``n`` synthetic individuals to ``out``.bed/.bim/.fam (+ .pheno with ``cond``).

    ``cond``: trait name -> value as given on the command line (raw units for continuous traits,
    0/1 for binary, a level name for categorical); traits left out are sampled as missing.
    ``pheno``: a phenotype file, one individual per row (``n`` None or its row count).
    ``model_sets``: sampling-time model settings (``["decode=argmax"]``).
    ``correct``: diffusion only, renoise-denoise corrector moves after the ancestral steps
    at time ``correct_t``; ``power``: the step grid t_i = 1 - (i / K) ** power
    (`CategoricalDiffusion.sample`; None: the model's defaults).
    ``calibrated``: apply the checkpoint's calibration when it has one (`genofast.calibrate`).
    ``vcf``: a phased run also writes its haplotypes to ``out``.vcf.gz (module docstring).
    Under torchrun every rank calls this with the same arguments (module docstring).
    Returns a small summary dict (the same on every rank)."""
    from tqdm.auto import tqdm

    if cond and pheno is not None:
        raise ValueError("give --cond or --pheno, not both")
    table = None
    if pheno is not None:
        table = read_pheno(pheno)
        if n is not None and n != len(table):
            raise ValueError(f"--n {n}: the phenotype file {pheno} has {len(table)} rows "
                             "(one per individual); drop --n or make them agree")
        n = len(table)
    if n is None or n < 1:
        raise ValueError(f"--n must be >= 1, got {n}")
    if batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {batch_size}")
    if steps is not None and steps < 1:
        raise ValueError(f"--steps must be >= 1, got {steps}")
    step_kw: dict[str, Any] = {} if steps is None else {"steps": steps}  # None: model default
    if correct is not None:
        if correct < 0:
            raise ValueError(f"--correct must be >= 0, got {correct}")
        step_kw["correct"] = correct
    if correct_t is not None:
        step_kw["correct_t"] = correct_t
    if power is not None:
        if not power > 0:
            raise ValueError(f"--power must be > 0, got {power}")
        step_kw["power"] = power
    dev, rank, world = join_ranks(device)
    if world > 1:  # whole bytes per rank: batches start on multiples of 4 individuals
        batch_size = max(4, batch_size - batch_size % 4)
    model, meta = load_weights(run_dir, checkpoint, ema=True, device=dev, model_sets=model_sets,
                               calibrated=calibrated)
    if (correct, correct_t, power) != (None,) * 3 and meta["train"]["model"] != "diffusion":
        raise ValueError(f"--correct, --correct-t and --power apply to diffusion runs; this is "
                         f"{meta['train']['model']}")
    precision = run_precision(meta, dev)
    phased = meta.get("phased", False)
    if vcf and not phased:
        raise ValueError("--vcf writes the sampled haplotypes, and this run samples genotypes: "
                         "train on a phased VCF (genofast train --vcf) to get them")
    snps = read_bim(Path(run_dir) / "snps.bim")
    specs = meta["traits"]
    if (cond or table is not None) and not specs:
        raise ValueError("this run was trained without traits; drop --cond / --pheno")
    row = rows = None
    if cond:
        row = torch.from_numpy(encode_cond(specs, cond)).to(dev)
    if table is not None:
        rows = torch.from_numpy(encode_cond_table(specs, table)).to(dev)
    per = 2 if phased else 1  # model rows per person: a phased run samples two haplotypes
    drawn: list[int] = []  # ancestry conditions not given: drawn from the run's mixture
    if ancestry_columns(specs):
        given = np.full((n, len(specs)), np.nan, np.float32)
        if row is not None or rows is not None:
            given[:] = (row if rows is None else rows).cpu().numpy()
        if phased and not np.isnan(given[:, ancestry_columns(specs)]).all():
            raise ValueError("a phased run draws each person's two haplotypes' PCs together; "
                             "drop the PC values from --cond / --pheno")
        drawn = [k for k in ancestry_columns(specs) if np.isnan(given[:, k]).any()]
        given = np.repeat(given, per, 0)
        rows, row = torch.from_numpy(fill_ancestry(given, specs, run_dir, seed)).to(dev), None
    elif rows is not None:
        rows = rows.repeat_interleave(per, 0)
    samples = SampleTable.from_iids([f"syn{i}" for i in range(n)])
    hap_prefix = Path(os.fspath(out) + ".haplotypes")
    with ExitStack() as files:
        writer = files.enter_context(
            PlinkWriter(out, snps, n, samples=samples, distributed=world > 1))
        haps = None if not vcf else files.enter_context(PlinkWriter(
            hap_prefix, snps, 2 * n, samples=haplotype_rows(samples.iid), distributed=world > 1))
        bar = tqdm(total=n, disable=not progress or rank != 0, unit="ind", dynamic_ncols=True)
        for start in range(rank * batch_size, n, world * batch_size):  # batch k: rank k % world
            b = min(batch_size, n - start)
            c = None if row is None else row.expand(per * b, -1)
            if rows is not None:
                c = rows[per * start:per * (start + b)]
            with autocast(dev, precision):
                x = model.sample(per * b, c, **step_kw, guidance=guidance, seed=seed,
                                 row_offset=per * start)
            writer.write(start, add_haplotypes(x) if phased else x)
            if haps is not None:
                haps.write(per * start, x.clamp(max=1))
            bar.update(min(n, start + world * batch_size) - start)  # the round, all ranks
        bar.close()
    vcf_path = Path(os.fspath(out) + ".vcf.gz") if vcf else None
    if vcf_path is not None and rank == 0:
        try:
            bed_to_vcf(hap_prefix, vcf_path, people=list(samples.iid))
        finally:
            for p in plink_paths(hap_prefix):
                p.unlink(missing_ok=True)
    pheno_path = Path(os.fspath(out) + ".pheno") if cond or table is not None or drawn else None
    if pheno_path is not None and rank == 0:  # one process writes it
        names, values = [], np.empty((n, 0), dtype=object)
        if cond:
            names = [s["name"] for s in specs if s["name"] in cond]
            values = np.array([[cond[k] for k in names]] * n, dtype=object).astype(str)
        elif table is not None:
            have = set(table.names) | set(table.categorical)
            names = [s["name"] for s in specs if s["name"] in have]
            values = np.stack([table.column(k).astype(object) for k in names], 1)
            values = np.where(values == "", np.nan, values)
        if drawn:  # every individual's ancestry (a phased run: each haplotype's), in PC units
            keep = [i for i, name in enumerate(names) if name not in {specs[k]["name"]
                                                                       for k in drawn}]
            full = rows.cpu().numpy()
            parts = [("_h1", full[0::2]), ("_h2", full[1::2])] if phased else [("", full)]
            raw = [p[:, k] * specs[k]["sd"] + specs[k]["mean"] for _, p in parts for k in drawn]
            names = [names[i] for i in keep] + [specs[k]["name"] + suffix for suffix, _ in parts
                                                for k in drawn]
            values = np.concatenate([values[:, keep], np.stack(raw, 1).astype(object)], 1)
        write_pheno(pheno_path, samples.fid, samples.iid, names, values)
    return {"n": n, "n_snps": len(snps), "out": os.fspath(out),
            "calibrated": meta["calibration"] is not None,
            "ancestry_drawn": [specs[k]["name"] for k in drawn],
            "pheno": None if pheno_path is None else os.fspath(pheno_path),
            "vcf": None if vcf_path is None else os.fspath(vcf_path)}
