"""`genofast compare`: several models trained on the same individuals, scored on the same others.

One call does the whole comparison::

    held-out individuals: --reference PREFIX (a separate cohort with the same SNPs), or a seeded
        random --holdout fraction of --bfile written as data/train.* and data/holdout.*
    for each model: train it on the training individuals (genofast.train, the same time budget
        each) or take its --runs folder; sample as many people as were held out; evaluate them
        against the held-out individuals (privacy against the training individuals)
    real vs real: computed once (evaluate's reference block) and shared by every model
    comparison.json / comparison.html / comparison.md: a model x metric table with the
        real-vs-real row and the best model of each column marked, overlaid plots

The real-vs-real yardstick comes from one ``evaluate(holdout, holdout, train)`` call and every
model is then evaluated with ``reference=False``: evaluate draws its balanced privacy subsets in an
order that depends on whether it also builds the reference, so evaluating the first model with the
reference and the others without would give that model other subsets than the rest.

With traits (``pheno_names``), a model trained on them samples the held-out individuals' own trait
values, one synthetic person per held-out person (`genofast.sample.sample_cohort` with ``pheno=``),
and the GWAS compares the synthetic cohort with the held-out one on the first numeric trait. A
model trained without traits samples unconditionally (its synthetic cohort has no phenotype).

Out folder::

    data/           train.*, holdout.*, split.json (the seeded split; absent with --reference),
                    holdout.NAME.pheno (the traits model NAME samples: the held-out individuals',
                    one row each in their order)
    runs/NAME/      the run folder of each model trained here
    synthetic/NAME  each synthetic cohort (.bed/.bim/.fam)
    reports/NAME/   each model's own report.json / report.html
    comparison.json, comparison.html, comparison.md
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from genofast.io import (
    SampleTable,
    SnpTable,
    read_bim,
    read_fam,
    read_pheno,
    read_plink,
    write_pheno,
    write_plink,
)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")  # a label that is also a file name


# ---------------------------------------------------------------------------------------------
# arguments
# ---------------------------------------------------------------------------------------------


def parse_models(models: str | Iterable[str] | None) -> list[str]:
    """``"diffusion,vae"`` or a list -> model names, checked against `genofast.models.MODELS`."""
    from genofast.models import MODELS

    if models is None:
        return []
    names = [m.strip() for m in (models.split(",") if isinstance(models, str) else models)]
    names = [m for m in names if m]
    unknown = [m for m in names if m not in MODELS]
    if unknown:
        raise ValueError(f"--models: unknown model(s) {', '.join(unknown)}; choose from "
                         f"{', '.join(MODELS)}")
    dups = sorted({m for m in names if names.count(m) > 1})
    if dups:
        raise ValueError(f"--models: {', '.join(dups)} given twice")
    return names


def parse_runs(pairs: Iterable[str] | Mapping[str, Any] | None) -> dict[str, Path]:
    """``["wgan=runs/w"]`` (or a mapping) -> {label: run folder}; the label names the model's
    row, its files and its ``--set LABEL:key=value`` settings."""
    if pairs is None:
        return {}
    items = pairs.items() if isinstance(pairs, Mapping) else []
    if not isinstance(pairs, Mapping):
        parsed = []
        for pair in pairs:
            name, sep, path = pair.partition("=")
            if not sep or not name.strip() or not path.strip():
                raise ValueError(f"--runs {pair!r}: expected NAME=DIR")
            parsed.append((name.strip(), path.strip()))
        items = parsed
    out: dict[str, Path] = {}
    for name, path in items:
        if not _NAME.match(name):
            raise ValueError(f"--runs {name}=...: a name is letters, digits and _.+- only")
        if name in out:
            raise ValueError(f"--runs: {name} given twice")
        out[name] = Path(path)
    return out


def _has_key(model: str, key: str) -> bool:
    """Whether ``--set key=...`` means something for ``model`` (TrainConfig, BackboneConfig or
    the model's own Config)."""
    from genofast.models import BackboneConfig, model_config_class
    from genofast.train import TrainConfig

    classes = [TrainConfig, BackboneConfig, model_config_class(model)]
    return any(key in {f.name for f in dataclasses.fields(c)} for c in classes if c is not None)


def route_sets(names: list[str], sets: Iterable[str] | None) -> dict[str, list[str]]:
    """``--set`` pairs -> {model: its ``key=value`` pairs}. ``NAME:key=value`` is for model NAME
    only; a bare ``key=value`` goes to every model that has the key (an error if none has)."""
    out: dict[str, list[str]] = {name: [] for name in names}
    for pair in sets or []:
        head, sep, raw = pair.partition("=")
        target, colon, key = head.rpartition(":")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise ValueError(f"--set {pair!r}: expected [NAME:]key=value")
        if colon:
            if target.strip() not in out:
                raise ValueError(f"--set {pair!r}: {target.strip()!r} is not among the models "
                                 f"trained here ({', '.join(names) or 'none'})")
            out[target.strip()].append(f"{key}={raw}")
            continue
        hits = [name for name in names if _has_key(name, key)]
        if not hits:
            raise ValueError(f"--set {pair!r}: no model trained here has a setting {key!r}")
        for name in hits:
            out[name].append(f"{key}={raw}")
    return out


# ---------------------------------------------------------------------------------------------
# held-out individuals and checks
# ---------------------------------------------------------------------------------------------


def snp_keys(snps: SnpTable) -> list[tuple[str, int, str, str]]:
    """(chromosome, bp, allele pair sorted) per SNP: the key evaluate matches SNPs on."""
    a1, a2 = snps.allele_1.astype(str), snps.allele_2.astype(str)
    lo, hi = np.where(a1 <= a2, a1, a2), np.where(a1 <= a2, a2, a1)
    return list(zip(snps.chromosome.tolist(), snps.bp_position.tolist(), lo.tolist(),
                    hi.tolist(), strict=True))


def check_same_snps(a: SnpTable, b: SnpTable, name_a: str, name_b: str) -> None:
    """ValueError unless both tables hold the same SNPs (chromosome, bp, alleles; any order)."""
    ka, kb = set(snp_keys(a)), set(snp_keys(b))
    if ka == kb:
        return
    only_a, only_b = sorted(ka - kb), sorted(kb - ka)
    show = "; ".join(f"{c}:{p} {x}/{y}" for c, p, x, y in (only_a or only_b)[:3])
    raise ValueError(f"{name_a} and {name_b} hold different SNPs: {len(only_a)} only in "
                     f"{name_a}, {len(only_b)} only in {name_b} (e.g. {show}); compare needs "
                     f"the same SNP set (matched on chromosome, bp and alleles)")


def split_holdout(bfile: str | os.PathLike, out_dir: str | os.PathLike, fraction: float,
                  seed: int = 0) -> tuple[Path, Path]:
    """Write a seeded random ``fraction`` of ``bfile``'s individuals to OUT/holdout.*, the rest
    to OUT/train.* (both in file order) and OUT/split.json; returns the two prefixes."""
    if not 0 < fraction < 1:
        raise ValueError(f"--holdout must be between 0 and 1, got {fraction}")
    cohort = read_plink(bfile)
    n = cohort.n_individuals
    n_hold = int(round(fraction * n))
    if n_hold < 4 or n - n_hold < 4:
        raise ValueError(f"{bfile}: {n} individuals with --holdout {fraction} leave {n_hold} "
                         f"held out and {n - n_hold} to train; both need at least 4")
    perm = np.random.default_rng(seed).permutation(n)
    hold, train = np.sort(perm[:n_hold]), np.sort(perm[n_hold:])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_plink(out / "train", cohort.subset(samples=train))
    write_plink(out / "holdout", cohort.subset(samples=hold))
    s = cohort.samples
    split = {"bfile": os.fspath(bfile), "seed": seed, "fraction": fraction, "n": n,
             "holdout": hold.tolist(), "train": train.tolist(),
             "holdout_ids": [[s.fid[i], s.iid[i]] for i in hold]}
    (out / "split.json").write_text(json.dumps(split) + "\n")
    return out / "train", out / "holdout"


def check_run(label: str, run_dir: Path, snps: SnpTable, holdout: SampleTable,
              same_file: bool, notes: list[str]) -> dict[str, Any]:
    """The run's config.json after checking that ``run_dir`` is a finished run on the compared
    SNPs that never saw a held-out individual (an error when the held-out individuals come from
    the same file, a note for a separate --reference whose ids may repeat by chance)."""
    if not (run_dir / "config.json").is_file():
        raise ValueError(f"--runs {label}={run_dir}: not a run folder (no config.json)")
    if not (run_dir / "best" / "state.json").is_file() or not (run_dir / "snps.bim").is_file():
        raise ValueError(f"--runs {label}={run_dir}: the run has no best checkpoint yet "
                         f"(best/state.json) or no snps.bim")
    meta = json.loads((run_dir / "config.json").read_text())
    check_same_snps(read_bim(run_dir / "snps.bim"), snps, f"run {run_dir}", "the held-out set")
    split_path = run_dir / "split.json"
    if split_path.is_file():
        split = json.loads(split_path.read_text())
        seen = {tuple(x) for x in split.get("train_ids", []) + split.get("validation_ids", [])}
        held = set(zip(holdout.fid.tolist(), holdout.iid.tolist(), strict=True))
        both = sorted(seen & held)
        if both:
            msg = (f"run {run_dir} was trained (or validated) on {len(both)} of the held-out "
                   f"individuals, e.g. {' '.join(both[0])}")
            if same_file:
                raise ValueError(msg + "; train it on the compare's data/train split or pass "
                                 "--reference")
            notes.append(msg + " (ids only: the --reference cohort may reuse ids by chance)")
    return meta


# ---------------------------------------------------------------------------------------------
# phenotypes
# ---------------------------------------------------------------------------------------------


def _pheno_table(pheno: str | os.PathLike, samples: SampleTable) -> Any:
    return read_pheno(pheno, samples, allow_unknown=True)


def condition_file(pheno: str | os.PathLike, samples: SampleTable, specs: list[dict],
                   path: Path) -> tuple[Path | None, list[str]]:
    """Write the run's traits (``specs``) of ``samples`` to ``path``, one row each in their order:
    the sampler conditions synthetic individual i on row i. A categorical level the run never saw
    becomes missing. Returns (path, notes), path None when the file has none of the traits."""
    table = _pheno_table(pheno, samples)
    have = set(table.names) | set(table.categorical)
    use = [s for s in specs if s["name"] in have]
    if not use:
        return None, [f"{pheno} has none of the traits {', '.join(s['name'] for s in specs)}"]
    notes = []
    values = np.empty((len(samples), len(use)), dtype=object)
    for k, spec in enumerate(use):
        col = table.column(spec["name"])
        if spec["kind"] == "categorical":
            col = col.astype(str)
            unseen = (col != "") & ~np.isin(col, spec["levels"])
            if unseen.any():
                notes.append(f"{int(unseen.sum())} held-out individuals have {spec['name']} "
                             f"levels the run never saw ({', '.join(sorted(set(col[unseen])))})"
                             "; they are sampled with it missing")
                col = np.where(unseen, "", col)
            values[:, k] = col
        else:
            values[:, k] = col.astype(np.float64)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_pheno(path, samples.fid, samples.iid, [s["name"] for s in use], values)
    return path, notes


def gwas_trait(pheno: str | os.PathLike, names: list[str] | None, samples: SampleTable
               ) -> str | None:
    """The trait the GWAS compares: the first numeric of ``names`` (else of the file)."""
    table = _pheno_table(pheno, samples)
    for name in names or table.names:
        if name in table.names:
            return name
    return None


def trait_values(pheno: str | os.PathLike, name: str, samples: SampleTable) -> np.ndarray:
    """float64 values of a numeric trait for ``samples`` (NaN missing)."""
    return np.asarray(_pheno_table(pheno, samples).column(name), dtype=np.float64)


# ---------------------------------------------------------------------------------------------
# the comparison
# ---------------------------------------------------------------------------------------------


def _say(progress: bool, msg: str) -> None:
    if progress:
        print(msg, flush=True)


def _state_step(run_dir: Path, which: str) -> int | None:
    path = run_dir / which / "state.json"
    return int(json.loads(path.read_text())["step"]) if path.is_file() else None


def n_parameters(run_dir: str | os.PathLike) -> int:
    """Trainable parameters of a run's model, counted on a copy built on torch's meta device (no
    memory, no weights read: the study's 1.3 B-parameter MLPs count at once); a model that cannot
    be built there is built on the CPU."""
    import torch

    from genofast.train import build_model

    run = Path(run_dir)
    meta = json.loads((run / "config.json").read_text())
    snps = read_bim(run / "snps.bim")
    try:
        with torch.device("meta"):
            model = build_model(meta, snps, None)
    except (RuntimeError, NotImplementedError):
        model = build_model(meta, snps, None)
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))


def _sample(run_dir: Path, n: int, out: Path, *, pheno_file: Path | None, steps: int | None,
            seed: int, device: str | None, progress: bool, **diffusion: Any) -> dict[str, Any]:
    """Sample ``n`` people from a run, conditioned on ``pheno_file`` row by row when given;
    ``diffusion``: the diffusion sampler's settings (correct, correct_t, power)."""
    from genofast.sample import sample_cohort

    kw: dict[str, Any] = {"seed": seed, "device": device, "progress": progress, **diffusion}
    if steps is not None:
        kw["steps"] = steps
    if pheno_file is not None:
        kw["pheno"] = pheno_file
    return sample_cohort(run_dir, n, out, **kw)


def _with_reference(result: dict[str, Any], ref: dict[str, Any]) -> dict[str, Any]:
    """An evaluate result (reference=False) given the shared real-vs-real block ``ref``."""
    result["reference"] = ref["reference"]
    result["aats_real_baseline"] = ref["reference"].get("aats")
    result["info"]["reference_halves"] = ref["info"]["reference_halves"]
    result["info"]["notes"].append("real vs real computed once for the whole comparison")
    ref_det = ref["details"].get("reference")
    if ref_det is not None:
        result["details"]["reference"] = ref_det
    return result


def compare(
    bfile: str | os.PathLike,
    out: str | os.PathLike,
    models: str | Iterable[str] | None,
    *,
    reference: str | os.PathLike | None = None,
    holdout: float = 0.5,
    pheno: str | os.PathLike | None = None,
    pheno_names: list[str] | None = None,
    max_minutes: float | None = None,
    runs: Iterable[str] | Mapping[str, Any] | None = None,
    sets: Iterable[str] | None = None,
    config: str | None = None,
    seed: int = 0,
    steps: int | None = None,
    correct: int | None = None,
    correct_t: float | None = None,
    power: float | None = None,
    device: str | None = None,
    max_individuals: int | None = None,
    model_reports: bool = True,
    progress: bool = True,
) -> dict[str, Any]:
    """Train (or take from ``runs``) each model, sample as many people as are held out, evaluate
    all against the same held-out individuals and write OUT/comparison.{json,html,md}.

    ``models``: names of `genofast.models.MODELS` to train ("a,b" or a list); ``runs``: ``NAME=DIR``
    pairs (or a mapping) of runs already trained, which are not retrained; ``reference``: a
    separate held-out cohort with the same SNPs (else a seeded ``holdout`` fraction of ``bfile``);
    ``max_minutes``: the training budget of each model; ``sets``: ``[NAME:]key=value`` overrides
    of TrainConfig, the model's Config or BackboneConfig (`route_sets`); ``config``: the named
    backbone size (or a ``genofast train --config`` value) for every model trained here;
    ``steps``: sampling steps (default: the sampler's); ``correct``, ``correct_t``, ``power``:
    the diffusion sampler's settings (`genofast.sample.sample_cohort`), used for the diffusion
    runs and noted as unused for the others; ``max_individuals``: every evaluation reads a
    seeded random subset (``seed``) of that many individuals of each larger cohort
    (`genofast.metrics.evaluate.evaluate`); ``model_reports=False`` skips each
    model's own report (OUT/reports/NAME/, ten plots each). Returns the comparison dict (what
    comparison.json holds)."""
    from genofast.metrics.evaluate import evaluate
    from genofast.report import write_comparison, write_report
    from genofast.train import resolve_settings, train

    t_all = time.perf_counter()
    out = Path(out)
    names = parse_models(models)
    given = parse_runs(runs)
    for name in names:
        if not _NAME.match(name):
            raise ValueError(f"--models: {name!r} is not a usable name")
    labels = names + [r for r in given if r not in names]
    if not labels:
        raise ValueError("nothing to compare: give --models and/or --runs")
    if pheno_names and pheno is None:
        raise ValueError("--pheno-name needs --pheno FILE")
    if steps is not None and steps < 1:
        raise ValueError(f"--steps must be >= 1, got {steps}")
    if max_individuals is not None and max_individuals < 4:
        raise ValueError(f"--max-individuals must be at least 4, got {max_individuals}")
    diffusion = {k: v for k, v in
                 {"correct": correct, "correct_t": correct_t, "power": power}.items()
                 if v is not None}
    notes: list[str] = []

    # held-out individuals
    out.mkdir(parents=True, exist_ok=True)
    data = out / "data"
    if reference is not None:
        train_prefix, hold_prefix = Path(bfile), Path(reference)
        train_c, hold_c = read_plink(train_prefix), read_plink(hold_prefix)
        check_same_snps(train_c.snps, hold_c.snps, f"--bfile {bfile}", f"--reference {reference}")
    else:
        _say(progress, f"splitting {bfile}: {holdout:g} held out (seed {seed}) -> {data}")
        train_prefix, hold_prefix = split_holdout(bfile, data, holdout, seed)
        train_c, hold_c = read_plink(train_prefix), read_plink(hold_prefix)
    n_hold = hold_c.n_individuals
    if n_hold < 4:
        raise ValueError(f"the held-out set has {n_hold} individuals; evaluate needs at least 4")

    # runs given, and what each label trains
    metas: dict[str, dict] = {}
    for label, run_dir in given.items():
        metas[label] = check_run(label, run_dir, hold_c.snps, hold_c.samples,
                                 same_file=reference is None, notes=notes)
    to_train = [n for n in names if n not in given]
    pairs = route_sets(to_train, sets)
    settings = {label: resolve_settings(config, label, [f"seed={seed}", *pairs[label]],
                                        max_minutes=max_minutes, device=device)
                for label in to_train}
    for label in names:
        run_dir = out / "runs" / label
        if label not in given and (run_dir / "config.json").exists():
            raise ValueError(f"{run_dir} already holds a run; reuse it with --runs "
                             f"{label}={run_dir} or choose another --out")

    # phenotypes: the GWAS trait
    gwas = None
    y: dict[str, np.ndarray | None] = {"real": None, "train": None}
    if pheno is not None:
        gwas = gwas_trait(pheno, pheno_names, hold_c.samples)
        if gwas is None:
            notes.append("no numeric trait for the GWAS")
        else:
            y = {"real": trait_values(pheno, gwas, hold_c.samples),
                 "train": trait_values(pheno, gwas, train_c.samples)}
            if np.isnan(y["real"]).all():
                notes.append(f"GWAS: no held-out individual has a value of {gwas}")
                y["real"] = None

    def pheno_map(y_syn: np.ndarray | None) -> dict | None:
        if y["real"] is None:
            return None
        return {"real": y["real"], "train": y["train"], "synthetic": y_syn}

    # the real-vs-real yardstick, once
    _say(progress, f"real vs real: {n_hold} held-out individuals, two random halves")
    ref = evaluate(hold_c, hold_c, train_c, pheno=pheno_map(y["real"]), seed=seed,
                   device=device, progress=progress, max_individuals=max_individuals)
    cut = ref["info"]["subsampled"]  # {cohort: [in file, used]}
    parts = [f"{cut[n][1]:,} of the {cut[n][0]:,} {what}" for n, what in
             (("real", "held-out individuals, as many of each synthetic cohort"),
              ("train", "training individuals")) if n in cut]
    if parts:
        notes.append(f"--max-individuals {max_individuals}: every evaluation used seeded random "
                     f"subsets ({'; '.join(parts)})")

    rows: dict[str, dict[str, Any]] = {}
    results: dict[str, dict[str, Any]] = {}
    for label in labels:
        run_dir = given.get(label, out / "runs" / label)
        train_s = summary = None
        if label not in given:
            cfg, backbone, model_conf = settings[label]
            budget = "" if max_minutes is None else f", at most {max_minutes:g} min"
            _say(progress, f"training {label} on {train_c.n_individuals} individuals{budget}")
            summary = train(train_prefix, run_dir, cfg, backbone, model=model_conf or None,
                            pheno=pheno if pheno_names else None,
                            pheno_names=pheno_names or None, progress=progress)
            if summary["stopped"] in ("SIGINT", "SIGTERM"):
                raise KeyboardInterrupt(f"training {label} stopped by {summary['stopped']}")
            train_s = summary["seconds"]
            metas[label] = json.loads((run_dir / "config.json").read_text())
        # the user's traits; ancestry PCs (train --ancestry) are drawn by the sampler
        specs = [s for s in metas[label].get("traits", []) if not s.get("ancestry")]
        traits = [s["name"] for s in specs]
        use_pheno = None
        if traits and pheno is None:
            notes.append(f"{label}: trained on traits {', '.join(traits)} but no --pheno was "
                         f"given; sampled unconditionally")
        elif traits:
            use_pheno, more = condition_file(pheno, hold_c.samples, specs,
                                             data / f"holdout.{label}.pheno")
            notes += [f"{label}: {n}" for n in more]

        _say(progress, f"sampling {n_hold} individuals from {label}")
        t0 = time.perf_counter()
        syn_prefix = out / "synthetic" / label
        syn_prefix.parent.mkdir(parents=True, exist_ok=True)
        is_diffusion = metas[label]["train"]["model"] == "diffusion"
        if diffusion and not is_diffusion:
            notes.append(f"{label}: --{', --'.join(k.replace('_', '-') for k in diffusion)} "
                         f"apply to diffusion runs only; not used")
        summary_s = _sample(run_dir, n_hold, syn_prefix, pheno_file=use_pheno, steps=steps,
                            seed=seed, device=device, progress=progress,
                            **(diffusion if is_diffusion else {}))
        sample_s = time.perf_counter() - t0
        conditioned = use_pheno is not None
        y_syn = None
        if conditioned and gwas in traits and summary_s.get("pheno"):
            # the sampler's PREFIX.pheno: each synthetic individual's conditioning values
            y_syn = trait_values(summary_s["pheno"], gwas,
                                 read_fam(os.fspath(syn_prefix) + ".fam"))

        _say(progress, f"evaluating {label} against the held-out individuals")
        res = evaluate(hold_c, syn_prefix, train_c, pheno=pheno_map(y_syn), reference=False,
                       seed=seed, device=device, progress=progress,
                       max_individuals=max_individuals)
        res = _with_reference(res, ref)
        if model_reports:
            write_report(res, out / "reports" / label)
        results[label] = res
        metrics = {k: v for k, v in res.items() if k not in ("reference", "info", "details")}
        rows[label] = {
            "model": metas[label]["train"]["model"],
            "run": os.fspath(run_dir),
            "trained_here": label not in given,
            "conditioned": conditioned,
            "steps": _state_step(run_dir, "last"),
            "best_step": _state_step(run_dir, "best"),
            "stopped": None if summary is None else summary["stopped"],
            "n_parameters": n_parameters(run_dir),
            "seconds": {"train": train_s, "sample": round(sample_s, 3),
                        "evaluate": res["info"]["seconds"]["total"]},
            "synthetic": os.fspath(syn_prefix),
            "report": (os.fspath(out / "reports" / label / "report.html") if model_reports
                       else None),
            "metrics": metrics,
            "eval_info": res["info"],
        }

    comparison = {
        "setup": {
            "bfile": os.fspath(bfile),
            "train": os.fspath(train_prefix),
            "holdout": os.fspath(hold_prefix),
            "holdout_from": "--reference" if reference is not None else
            f"a seeded random {holdout:g} of --bfile (seed {seed})",
            "n_train": train_c.n_individuals,
            "n_holdout": n_hold,
            "n_synthetic": n_hold,
            "n_snps": hold_c.n_snps,
            "max_minutes": max_minutes,
            "seed": seed,
            "steps": steps,
            "diffusion_sampling": diffusion,
            "max_individuals": max_individuals,
            "pheno": None if pheno is None else os.fspath(pheno),
            "pheno_names": pheno_names or [],
            "gwas_trait": gwas,
            "sets": list(sets or []),
        },
        "reference": ref["reference"],
        "reference_info": {k: ref["info"][k] for k in ("reference_halves", "seconds", "notes")},
        "models": rows,
        "notes": notes,
        "seconds": round(time.perf_counter() - t_all, 3),
    }
    return write_comparison(comparison, results, out)
