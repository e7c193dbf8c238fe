"""The `genofast` command: one sub-command per job, each a thin layer over the library.

Each sub-command has one `_add_<name>` function that declares its arguments and points at a
`_run_<name>` handler; heavy imports happen inside the handlers so `genofast --help` stays fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    from genofast.runtime import keep_freed_memory

    parser = build_parser()
    args = parser.parse_args(argv)
    keep_freed_memory()  # CPU sampling spent 40% of its time in munmap and page faults
    try:
        return int(args.run(args) or 0)
    except (FileNotFoundError, ValueError) as err:
        print(f"genofast {args.command}: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `genofast info X | head`: the reader left, nothing to report
        sys.stderr.close()
        return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="genofast",
        description="Synthetic SNP genotype cohorts: simulate, train, sample, evaluate.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_info(sub)
    _add_evaluate(sub)
    _add_simulate(sub)
    _add_demo(sub)
    _add_train(sub)
    _add_calibrate(sub)
    _add_sample(sub)
    _add_compare(sub)
    return parser


# --- info --------------------------------------------------------------------------------------


def _add_info(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "info",
        help="summarise a PLINK fileset",
        description="Individuals, SNPs, SNPs per chromosome, missing rate and allele frequencies "
        "of a PLINK .bed/.bim/.fam fileset.",
    )
    p.add_argument("prefix", help="PLINK prefix (PREFIX.bed, PREFIX.bim, PREFIX.fam)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(run=_run_info)


def _run_info(args: argparse.Namespace) -> int:
    from genofast.io.summary import format_summary, summarize

    summary = summarize(args.prefix)
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary))
    return 0


# --- evaluate ----------------------------------------------------------------------------------


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="fidelity, association and privacy of a synthetic cohort",
        description="Compare a synthetic cohort with held-out real people (and, for privacy, "
        "with the training set): frequencies, LD, PCA, GRM, k-NN, GWAS and privacy metrics, each "
        "beside its real-vs-real yardstick. Writes DIR/report.json and DIR/report.html.",
    )
    p.add_argument("--real", required=True, metavar="PREFIX",
                   help="PLINK prefix of real people the generator never saw")
    p.add_argument("--synthetic", required=True, metavar="PREFIX",
                   help="PLINK prefix of the synthetic cohort")
    p.add_argument("--train", metavar="PREFIX",
                   help="PLINK prefix of the training set (privacy metrics need it)")
    p.add_argument("--pheno", metavar="FILE",
                   help="phenotype file (FID IID name...) for the GWAS; individuals absent "
                   "from it fall back to the .fam phenotype")
    p.add_argument("--pheno-name", metavar="NAME", help="phenotype column (default: the first)")
    p.add_argument("--region", metavar="CHR:START-END",
                   help="region of the r^2 heat map (default: the first 300 SNPs)")
    p.add_argument("--out", default="genofast_report", metavar="DIR",
                   help="output folder (default: %(default)s)")
    p.add_argument("--metrics", metavar="LIST",
                   help="comma-separated subset of: frequency, ld, pca, grm, knn, privacy, gwas")
    p.add_argument("--no-reference", action="store_true",
                   help="skip the real-vs-real yardstick (faster)")
    p.add_argument("--k", type=int, default=5, help="k of the k-NN metrics (default: 5)")
    p.add_argument("--ld-window", type=int, default=100,
                   help="LD window in SNPs (default: 100)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the real-vs-real split and of --max-individuals' subsets")
    p.add_argument("--max-individuals", type=int, metavar="N",
                   help="evaluate a seeded random subset of N individuals of every larger "
                   "cohort, read from disk as only those rows (for cohorts too big to unpack)")
    p.add_argument("--device", help="torch device (default: cuda when present, else cpu)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=_run_evaluate)


def _run_evaluate(args: argparse.Namespace) -> int:
    from genofast.metrics.evaluate import evaluate
    from genofast.report import format_table, write_report

    metrics = None if args.metrics is None else [m.strip() for m in args.metrics.split(",")
                                                 if m.strip()]
    result = evaluate(args.real, args.synthetic, args.train, pheno=args.pheno,
                      pheno_name=args.pheno_name, region=args.region, metrics=metrics,
                      reference=not args.no_reference, k=args.k, ld_window=args.ld_window,
                      seed=args.seed, device=args.device, progress=not args.quiet,
                      max_individuals=args.max_individuals)
    jpath, hpath = write_report(result, args.out)
    print(format_table(result))
    print(f"wrote {jpath} and {hpath}")
    return 0


# --- simulate ----------------------------------------------------------------------------------


def _add_simulate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "simulate",
        help="simulate a realistic cohort (cattle herd or human populations)",
        description="Cohorts from published population models (msprime + stdpopsim, offline): "
        "coalescent founders, a dairy pedigree for cattle, a chip-like SNP panel and additive "
        "traits, written as PLINK files with PREFIX.pheno and PREFIX.json (every parameter and "
        "the seed: same seed, same files). Cattle files need `plink2 --cow`.",
    )
    kinds = p.add_subparsers(dest="species", required=True, metavar="SPECIES")
    for kind in ("cattle", "human"):
        cattle = kind == "cattle"
        k = kinds.add_parser(
            kind,
            help="Holstein herd (BosTau HolsteinFriesian_1M13 + dairy pedigree)" if cattle
            else "YRI/CEU/CHB (HomSap OutOfAfrica_3G09)",
            description="Simulate a Holstein-Friesian herd: founders from stdpopsim's "
            "HolsteinFriesian_1M13 model, then a few generations of a dairy pedigree (few sires, "
            "many dams)." if cattle else "Simulate people of three populations (YRI, CEU, CHB) "
            "under stdpopsim's OutOfAfrica_3G09 model; population is a column of PREFIX.pheno.",
        )
        k.add_argument("--n-individuals", "-n", type=int, required=True, metavar="N",
                       help="individuals in the cohort")
        k.add_argument("--out", "-o", required=True, metavar="PREFIX",
                       help="output prefix (PREFIX.bed/.bim/.fam/.pheno/.json ...)")
        k.add_argument("--chromosomes", default="1-29" if cattle else "1-22", metavar="LIST",
                       help="autosomes, e.g. 1-29, 1,14,25-29 (default: %(default)s)")
        k.add_argument("--panel", default="chip50k", metavar="chip50k|FILE",
                       help="chip50k (one SNP per ~50 kb, chip-like frequencies) or a TSV of "
                       "chromosome, position, allele frequency (default: %(default)s)")
        k.add_argument("--seed", type=int, default=None,
                       help="random seed (default: fresh, recorded in PREFIX.json)")
        k.add_argument("--trait", action="append", default=None, metavar="SPEC",
                       help="a trait as key=value list: name, h2, n_causal, qtl (CHR:SHARE or "
                       "CHR:POS:SHARE), min_maf; repeat for several (default: one trait, "
                       "h2=0.3, n_causal=1000); e.g. 'name=fat,h2=0.4,qtl=14:0.25'")
        k.add_argument("--no-trait", action="store_true", help="simulate no trait")
        if cattle:
            k.add_argument("--founders", type=int, default=1000, metavar="N",
                           help="coalescent founders of the pedigree (default: %(default)s)")
            k.add_argument("--generations", type=int, default=5, metavar="G",
                           help="pedigree generations after the founders; 0 = no pedigree "
                           "(default: %(default)s)")
            k.add_argument("--output-generations", type=int, default=None, metavar="K",
                           help="last generations whose cows form the cohort "
                           "(default: 3, or --generations if fewer)")
            k.add_argument("--sires", type=int, default=50, metavar="S",
                           help="sires used per generation (default: %(default)s)")
        k.add_argument("--segment-mb", type=float, default=5.0, metavar="MB",
                       help="coalescent segment length; LD does not cross segment joins "
                       "(default: %(default)s)")
        k.add_argument("--window-kb", type=float, default=20.0, metavar="KB",
                       help="search window around each panel position (default: %(default)s)")
        k.add_argument("--max-mb", type=float, default=None, metavar="MB",
                       help="simulate only the first MB of each chromosome (quick runs)")
        k.add_argument("--workers", type=int, default=None,
                       help="coalescent worker processes (default: available CPUs)")
        k.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
        k.set_defaults(run=_run_simulate)


def _run_simulate(args: argparse.Namespace) -> int:
    if args.no_trait and args.trait:
        raise ValueError("--trait and --no-trait exclude each other")
    traits = [] if args.no_trait else args.trait
    common = dict(
        chromosomes=args.chromosomes,
        panel=None if args.panel == "chip50k" else args.panel,
        seed=args.seed,
        traits=traits,
        segment_length=int(round(args.segment_mb * 1e6)),
        window=int(round(args.window_kb * 1e3)),
        max_bp=None if args.max_mb is None else int(round(args.max_mb * 1e6)),
        workers=args.workers,
        progress=not args.quiet,
    )
    if args.species == "cattle":
        from genofast.simulate.cattle import simulate_cattle
        from genofast.simulate.pedigree import DairyPedigree

        k_out = args.output_generations
        if k_out is None:
            k_out = max(1, min(3, args.generations))
        ped = DairyPedigree(n_generations=args.generations, output_generations=k_out,
                            n_sires=args.sires)
        res = simulate_cattle(args.out, args.n_individuals, n_founders=args.founders,
                              pedigree=ped, **common)
    else:
        from genofast.simulate.human import simulate_human

        res = simulate_human(args.out, args.n_individuals, **common)
    print(f"{res.n_individuals} individuals x {res.n_snps} SNPs on "
          f"{len(res.snps_per_chromosome)} chromosomes, seed {res.metadata['seed']}, "
          f"{res.timings['total_s']:.1f} s")
    for name in res.files.values():
        print(f"  {name}")
    return 0


# --- demo --------------------------------------------------------------------------------------


def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="the whole pipeline on a built-in simulated herd",
        description="Simulate a small Holstein-like herd with a fat-like trait, split it into "
        "training and held-out animals, train a small categorical diffusion model conditioned on "
        "the trait on the CPU, sample as many synthetic animals as were held out (each "
        "conditioned on a held-out animal's trait value), stream them to PLINK files and "
        "evaluate them against the held-out half (fidelity, association, privacy).",
    )
    p.add_argument("--out", default="demo", metavar="DIR",
                   help="output folder (default: %(default)s)")
    p.add_argument("--n-individuals", type=int, default=2000,
                   help="animals to simulate (default: %(default)s)")
    p.add_argument("--chromosomes", default="14,29",
                   help="cattle autosomes to simulate (default: %(default)s, ~2,800 SNPs)")
    p.add_argument("--max-mb", type=float, metavar="MB",
                   help="simulate only the first MB megabases of each chromosome (a quick run)")
    p.add_argument("--minutes", type=float, default=5.0,
                   help="training time on this machine (default: %(default)s)")
    p.add_argument("--seed", type=int, default=1, help="seed of every step (default: 1)")
    p.set_defaults(run=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from pathlib import Path

    import numpy as np

    from genofast.io import read_pheno, read_plink, write_pheno, write_plink
    from genofast.io.summary import format_summary, summarize
    from genofast.metrics.evaluate import evaluate
    from genofast.report import format_table, write_report
    from genofast.sample import sample_cohort
    from genofast.simulate import CATTLE, parse_chromosomes, simulate_cattle
    from genofast.train import TrainConfig, train

    if args.n_individuals < 20:
        raise ValueError(f"--n-individuals must be at least 20, got {args.n_individuals}")
    if args.minutes <= 0:
        raise ValueError(f"--minutes must be positive, got {args.minutes}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    print(f"1/5 simulating {args.n_individuals} animals on chromosomes {args.chromosomes}")
    # 2 Mb coalescent segments (default 5 Mb) keep the demo under a minute; they cost some LD
    # beyond 0.5 Mb (docs/simulate.md). The trait has a DGAT1-like QTL when BTA14 is simulated.
    trait = "name=fat,h2=0.4,n_causal=100"
    if "14" in parse_chromosomes(args.chromosomes, CATTLE.autosomes):
        trait += ",qtl=14:0.2"
    sim = simulate_cattle(out / "herd", args.n_individuals, chromosomes=args.chromosomes,
                          seed=args.seed, segment_length=2_000_000, traits=[trait],
                          max_bp=None if args.max_mb is None else int(args.max_mb * 1e6))
    print(format_summary(summarize(sim.prefix)))

    print("2/5 splitting into training and held-out halves")
    herd = read_plink(sim.prefix)
    order = np.random.default_rng(args.seed).permutation(herd.n_individuals)
    half = herd.n_individuals // 2
    train_c, holdout = herd.subset(samples=np.sort(order[:half])), herd.subset(
        samples=np.sort(order[half:]))
    write_plink(out / "train", train_c)
    write_plink(out / "holdout", holdout)
    pheno = Path(f"{sim.prefix}.pheno")

    print(f"3/5 training a conditional diffusion model for {args.minutes:g} min (cpu-small; "
          f"Ctrl-C stops early and keeps the best checkpoint)")
    cfg = TrainConfig(max_minutes=args.minutes, max_steps=100_000, batch_size=32,
                      eval_every=500, eval_samples=256, eval_steps=25, seed=args.seed,
                      device="cpu")
    train(out / "train", out / "run", cfg, pheno=pheno, pheno_names=["fat"])

    print(f"4/5 sampling {holdout.n_individuals} synthetic animals, each conditioned on a "
          f"held-out animal's fat value, to {out / 'synthetic'}.bed")
    rows = out / "holdout.pheno"
    fat = {name: read_pheno(pheno, c.samples, allow_unknown=True).column("fat")
           for name, c in (("real", holdout), ("train", train_c))}
    write_pheno(rows, holdout.samples.fid, holdout.samples.iid, ["fat"], fat["real"])
    sample_cohort(out / "run", None, out / "synthetic", pheno=rows, seed=args.seed)
    fat["synthetic"] = read_pheno(f"{out / 'synthetic'}.pheno").column("fat")

    print("5/5 evaluating synthetic vs held-out (privacy vs training, GWAS of fat)")
    result = evaluate(out / "holdout", out / "synthetic", out / "train", pheno=fat,
                      seed=args.seed)
    json_path, html_path = write_report(result, out / "report")
    print(format_table(result))
    print(f"report: {html_path} (numbers in {json_path})")
    return 0


# --- train -------------------------------------------------------------------------------------


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a generative model on a PLINK cohort or a phased VCF",
        description="Train a model (categorical diffusion) on a PLINK cohort or a phased VCF "
        "into RUN_DIR: seeded train/validation split, periodic sampled-cohort evaluation keeping "
        "the best checkpoint, JSONL log, resumable checkpoints. Ctrl-C saves before exiting.",
    )
    data = p.add_mutually_exclusive_group(required=True)
    data.add_argument("--bfile", metavar="PREFIX", help="PLINK prefix to train on")
    data.add_argument("--vcf", metavar="FILE",
                      help="phased VCF (.vcf, .vcf.gz) to train on: the model learns haplotypes "
                      "and samples people as pairs of them (biallelic SNVs are kept)")
    p.add_argument("--pheno", metavar="FILE", help="phenotype file (FID IID name...)")
    p.add_argument("--pheno-name", action="append", metavar="NAME",
                   help="trait to condition on (repeat for several)")
    p.add_argument("--ancestry", type=int, metavar="K",
                   help="also condition on the top K principal components of the training "
                   "individuals; sampling draws them from a mixture fitted to them (4 is a good "
                   "start for a structured cohort)")
    p.add_argument("--model", help="diffusion (default), vae, gan, wgan, pca-ddpm or independent")
    p.add_argument("--transition", help="diffusion transition: mask (default), uniform or marginal")
    p.add_argument("--config", metavar="NAME|FILE.toml",
                   help="a backbone size (cpu-small, the default; cattle-50k), a preset of the "
                   "reference study (study:vae, study:wgan-cow-all, ...) or a TOML file with "
                   "[train], [backbone] and [model] tables")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", default=[],
                   help="override a training, backbone or model setting (e.g. lr=3e-4, "
                   "width=64, latent=32)")
    p.add_argument("--max-minutes", type=float, metavar="M", help="stop after M minutes")
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run folder")
    p.add_argument("--resume", action="store_true", help="continue the run in RUN_DIR")
    p.add_argument("--device", help="torch device (default: cuda when present, else cpu)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=_run_train)


def _run_train(args: argparse.Namespace) -> int:
    from genofast.train import VCF_SUFFIXES, Trainer, resolve_settings

    if args.resume and (args.set or args.config or args.model or args.transition
                        or args.ancestry is not None):
        raise ValueError("--resume continues the saved configuration; drop --set, --config, "
                         "--model, --transition and --ancestry")
    cfg, backbone, model = resolve_settings(
        args.config, args.model, args.set, transition=args.transition,
        max_minutes=args.max_minutes, device=args.device, ancestry=args.ancestry)
    if args.vcf is not None and not args.vcf.lower().endswith(VCF_SUFFIXES):
        raise ValueError(f"--vcf {args.vcf}: expected a .vcf or .vcf.gz file")
    trainer = Trainer(args.bfile or args.vcf, args.out, cfg, backbone, model, pheno=args.pheno,
                      pheno_names=args.pheno_name, resume=args.resume, progress=not args.quiet)
    try:
        summary = trainer.fit()
    finally:
        if trainer.world > 1:
            import torch.distributed as dist

            dist.destroy_process_group()
    if trainer.main:
        print(json.dumps(summary))
    return 130 if summary["stopped"] in ("SIGINT", "SIGTERM") else 0


# --- calibrate ---------------------------------------------------------------------------------


def _add_sampler_settings(p: argparse.ArgumentParser) -> None:
    """The sampling settings of `sample`, which `calibrate` must be given the same of and
    `compare` passes to its diffusion runs."""
    p.add_argument("--steps", type=int, help="sampling steps (default: the model's, 50 for "
                   "diffusion, T for pca-ddpm; ignored by one-shot models)")
    p.add_argument("--correct", type=int, metavar="K", help="diffusion: K renoise-denoise "
                   "corrector moves after the steps; they repair LD between SNPs drawn in the "
                   "same step (default: none)")
    p.add_argument("--correct-t", type=float, metavar="T", help="diffusion: noise level of "
                   "each corrector move, the share of SNPs redrawn (default: 0.1)")
    p.add_argument("--power", type=float, metavar="P", help="diffusion: step grid "
                   "t_i = 1 - (i/K)^P; P > 1 draws few SNPs in the first steps, which sets each "
                   "individual's ancestry before the bulk of the SNPs (default: the model's, 2)")


def _add_calibrate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "calibrate",
        help="fit a diffusion run's sampler to the training genotype frequencies",
        description="Sample ITERS rounds of N individuals from RUN_DIR's checkpoint and fit "
        "per-SNP genotype logit offsets that put the sampled genotype frequencies on the "
        "training ones (the network loses rare alleles in its own samples). Kept beside the "
        "checkpoint; genofast sample applies it. Give the sampling settings you will sample "
        "with.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="run folder written by genofast train")
    p.add_argument("--n", type=int, default=512, help="individuals per round (default: 512)")
    p.add_argument("--iters", type=int, default=4, help="rounds (default: 4)")
    _add_sampler_settings(p)
    p.add_argument("--seed", type=int, default=12345, help="seed (default: 12345)")
    p.add_argument("--batch-size", type=int, default=256, help="individuals per batch")
    p.add_argument("--checkpoint", default="best", choices=("best", "last"),
                   help="checkpoint to calibrate (default: best)")
    p.add_argument("--device", help="torch device (default: cuda when present, else cpu)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=_run_calibrate)


def _run_calibrate(args: argparse.Namespace) -> int:
    from genofast.calibrate import calibrate_run

    summary = calibrate_run(args.run_dir, n=args.n, iters=args.iters, steps=args.steps,
                            correct=args.correct, correct_t=args.correct_t, power=args.power,
                            seed=args.seed, batch_size=args.batch_size,
                            checkpoint=args.checkpoint, device=args.device,
                            progress=not args.quiet)
    print(json.dumps(summary))
    return 0


# --- sample ------------------------------------------------------------------------------------


def _add_sample(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sample",
        help="stream a synthetic cohort from a trained run to PLINK files",
        description="Sample N individuals from RUN_DIR's best checkpoint (EMA weights) in "
        "batches written straight into PREFIX.bed/.bim/.fam at constant memory; the same seed "
        "gives the same cohort whatever the batch size. Several GPUs: torchrun "
        "--nproc_per_node K -m genofast.cli sample RUN_DIR -n N --out PREFIX; every process "
        "samples its share of the batches into the same files, byte-identical to one process.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="run folder written by genofast train")
    p.add_argument("-n", "--n", type=int,
                   help="individuals to sample (default with --pheno: its rows); under torchrun "
                   "write -n N: torchrun's own parser takes --n for an ambiguous abbreviation")
    p.add_argument("--out", required=True, metavar="PREFIX", help="output PLINK prefix")
    p.add_argument("--cond", action="append", metavar="NAME=VALUE", default=[],
                   help="condition on a trait value (repeat for several)")
    p.add_argument("--pheno", metavar="FILE", help="phenotype file (FID IID trait...): one "
                   "individual per row, conditioned on that row's values")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", default=[],
                   help="sampling-time model setting, e.g. decode=argmax (VAE)")
    p.add_argument("--guidance", type=float, default=0.0,
                   help="classifier-free guidance weight (default: 0)")
    _add_sampler_settings(p)
    p.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    p.add_argument("--batch-size", type=int, default=1024, help="individuals per batch")
    p.add_argument("--checkpoint", default="best", choices=("best", "last"),
                   help="checkpoint to sample from (default: best)")
    p.add_argument("--no-calibration", action="store_true",
                   help="diffusion: ignore the checkpoint's calibration (genofast calibrate)")
    p.add_argument("--vcf", action="store_true",
                   help="runs trained with --vcf: also write the people's sampled haplotypes as "
                   "a phased PREFIX.vcf.gz (BGZF; a PLINK fileset of 2N haplotype rows is "
                   "kept on disk beside it until the end)")
    p.add_argument("--device", help="torch device (default: cuda when present, else cpu)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=_run_sample)


def _run_sample(args: argparse.Namespace) -> int:
    import os

    import torch.distributed as dist

    from genofast.sample import sample_cohort

    cond = {}
    for pair in args.cond:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ValueError(f"--cond {pair!r}: expected NAME=VALUE")
        cond[name.strip()] = value.strip()
    if args.n is None and args.pheno is None:
        raise ValueError("--n is required (or --pheno FILE, one individual per row)")
    try:  # under torchrun every rank samples its batches into the one fileset
        summary = sample_cohort(args.run_dir, args.n, args.out, cond=cond or None,
                                pheno=args.pheno, model_sets=args.set or None,
                                guidance=args.guidance, steps=args.steps, correct=args.correct,
                                correct_t=args.correct_t, power=args.power, seed=args.seed,
                                batch_size=args.batch_size, checkpoint=args.checkpoint,
                                calibrated=not args.no_calibration, vcf=args.vcf,
                                device=args.device, progress=not args.quiet)
    finally:
        if int(os.environ.get("WORLD_SIZE", "1")) > 1 and dist.is_initialized():
            dist.destroy_process_group()
    if os.environ.get("RANK", "0") != "0":  # rank 0 reports for all
        return 0
    print(f"wrote {summary['out']}.bed/.bim/.fam ({summary['n']} x {summary['n_snps']})"
          + (f" and {summary['pheno']}" if summary["pheno"] else "")
          + (f" and {summary['vcf']}" if summary["vcf"] else "")
          + (", calibrated sampler" if summary["calibrated"] else ""))
    return 0


# --- compare -----------------------------------------------------------------------------------


def _add_compare(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare",
        help="train several models, evaluate all on the same held-out people, one report",
        description="Train each model on the same training individuals (or take its --runs "
        "folder), sample as many people as are held out, evaluate every synthetic cohort "
        "against the same held-out individuals and write DIR/comparison.html, .json and .md: "
        "a model x metric table with the real-vs-real row, the best model of each column "
        "marked, and overlaid plots. Each model's own report goes to DIR/reports/NAME/.",
    )
    p.add_argument("--bfile", required=True, metavar="PREFIX", help="PLINK prefix to train on")
    p.add_argument("--reference", metavar="PREFIX",
                   help="held-out cohort with the same SNPs (default: split --bfile)")
    p.add_argument("--holdout", type=float, metavar="F",
                   help="fraction of --bfile held out, seeded by --seed (default: 0.5)")
    p.add_argument("--pheno", metavar="FILE", help="phenotype file (FID IID name...)")
    p.add_argument("--pheno-name", action="append", metavar="NAME",
                   help="trait to condition on (repeat for several); the first numeric one is "
                   "the GWAS trait")
    p.add_argument("--models", metavar="LIST",
                   help="comma-separated models to train, e.g. diffusion,wgan,vae,gan,pca-ddpm,"
                   "independent")
    p.add_argument("--runs", action="append", metavar="NAME=DIR", default=[],
                   help="a run already trained, compared as NAME without retraining (repeat)")
    p.add_argument("--max-minutes", type=float, metavar="M",
                   help="training time budget of each model")
    p.add_argument("--config", metavar="NAME",
                   help="named backbone size for every model trained here (default: cpu-small)")
    p.add_argument("--set", action="append", metavar="[NAME:]KEY=VALUE", default=[],
                   help="a setting of model NAME, or of every model that has KEY (repeat)")
    _add_sampler_settings(p)
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the split, training and sampling (default: 0)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--device", help="torch device (default: cuda when present, else cpu)")
    p.add_argument("--max-individuals", type=int, metavar="N",
                   help="evaluate a seeded random subset (--seed) of N individuals of every "
                   "larger cohort: held-out, training and synthetic (for cohorts too big to "
                   "unpack)")
    p.add_argument("--no-model-reports", action="store_true",
                   help="skip each model's own report (DIR/reports/NAME/)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(run=_run_compare)


def _run_compare(args: argparse.Namespace) -> int:
    from pathlib import Path

    from genofast.compare import compare

    if args.reference is not None and args.holdout is not None:
        raise ValueError("--holdout splits --bfile; it cannot go with --reference")
    try:
        compare(args.bfile, args.out, args.models, reference=args.reference,
                holdout=0.5 if args.holdout is None else args.holdout, pheno=args.pheno,
                pheno_names=args.pheno_name, max_minutes=args.max_minutes, runs=args.runs,
                sets=args.set, config=args.config, seed=args.seed, steps=args.steps,
                correct=args.correct, correct_t=args.correct_t, power=args.power,
                device=args.device, max_individuals=args.max_individuals,
                model_reports=not args.no_model_reports,
                progress=not args.quiet)
    except KeyboardInterrupt as err:  # a training stopped by Ctrl-C saved its run first
        print(f"genofast compare: interrupted {err}".rstrip(), file=sys.stderr)
        return 130
    out = Path(args.out)
    print((out / "comparison.md").read_text(), end="")
    print(f"wrote {out / 'comparison.html'}, {out / 'comparison.json'} and "
          f"{out / 'comparison.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
