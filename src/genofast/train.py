"""One trainer for every generative model: packed cohort on the device, AdamW, EMA, checkpoints.

The loop, in one breath::

    cohort (uint8 [N, ceil(M/4)], resident on the device) -> seeded train/validation split
    for step in 1..max_steps:
        rows = a slice of this epoch's seeded permutation of the training individuals
        loss = model.loss(packed[rows], rows, cond[rows], seed, offset=step)  # unpacks in the op
        AdamW step (warm-up + cosine LR, grad clipping, bf16 autocast: `autocast`), EMA update
        every eval_every steps: sample a validation-sized cohort with the EMA weights, score it
        against the validation split, keep the best checkpoint

The model is any class of `genofast.models` (``--model``; `genofast.models.base` says what the
trainer needs of it): diffusion, vae, gan, wgan, pca-ddpm, independent. A model with several
optimiser groups (GAN generator / critic) returns {group: loss} from ``loss`` for the group(s) it
trains at a step; each group has its own AdamW. A model without parameters (independent) is fitted
when built: the loop is skipped, it is evaluated and saved once.

Everything random in a step is keyed by (seed, step): the batch by a permutation seeded per epoch,
the diffusion noise and t by ``seed``/``offset=step`` inside ``loss``. So a resumed run replays the
same batches and noise as an uninterrupted one, and resuming only needs the weights, EMA, AdamW
state and step (the torch RNG state is saved too, for models that draw from it).

Selection score (lower is better), ``select``: ``freq_ld`` (default) is
``(1 - allele_freq_r) + ld_r2_mae`` of the sampled cohort against the validation individuals, both
from `genofast.metrics.evaluate` (frequency and LD families, no real-vs-real reference). The first
term catches drift of the frequencies (a fresh diffusion model already starts at the
independent-SNP frequencies), the second is what the network is there to learn: the LD structure.
``knn_f1`` is the reference study's: ``1 - F1`` of k-NN precision and recall.

Run folder::

    config.json     the TrainConfig, backbone sizes, the model's own config ("model") and its
                    data-derived sizes ("fitted"), traits (+ standardisation stats), SNP count
    snps.bim        the training SNPs (the sampler writes them as the synthetic .bim)
    split.json      seeded train/validation split of the people (row indices into the training
                    cohort, FID/IID)
    log.jsonl       one JSON object per logged step / evaluation (evaluations: the sampled
                    cohort's scores and val_loss, the validation individuals' loss)
    ancestry.safetensors  with --ancestry: the PCA loadings and the PC mixture (genofast.ancestry)
    last/, best/    model.safetensors, ema.safetensors, trainer.pt (AdamW per group + RNG),
                    state.json (step, best score); every file written to a temp name then
                    os.replace'd, state.json last

Loading never unpickles: safetensors, JSON, and ``torch.load(weights_only=True)``.

Phased input (a `.vcf`/`.vcf.gz` instead of a PLINK prefix, `genofast.io.vcf`): the model learns
haplotypes, person i's two being rows 2i and 2i+1 coded 0/1, and `genofast.sample` adds sampled
pairs up into people. The split is of people (both haplotypes on the same side), a person's
traits condition both their haplotypes, ``--ancestry`` conditions each haplotype on its own PCs
(sampling draws a person's two together, `genofast.ancestry`), and the in-training
evaluation compares sampled haplotypes with the validation haplotypes.
``config.json`` records ``"phased": true``.

Several processes (``torchrun --nproc_per_node K -m genofast.cli train ...``):
DistributedDataParallel (NCCL on CUDA, gloo on CPU). Every rank holds the packed cohort; a step's
global batch is ``batch_size x K`` rows of the same seeded permutation and rank r takes the r-th
block of ``batch_size`` (its shard of the step's individuals); DDP averages the gradients. Rank 0
alone writes files, evaluates and keeps checkpoints; the stop decision (time, signal) is reduced
over the ranks every step so they all stop at the same step.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import math
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from genofast.io import Cohort, read_pheno, read_plink, read_vcf
from genofast.io.tables import SampleTable, SnpTable, read_bim, write_bim
from genofast.models import MODELS, model_config_class, model_module, presets
from genofast.models.backbone import CONFIGS, BackboneConfig
from genofast.models.base import TrainingData
from genofast.models.diffusion import SCHEDULES
from genofast.ops import pack
from genofast.ops.diffusion import TRANSITIONS

_STOPS = ("", "max_minutes", "SIGINT", "SIGTERM")  # stop reasons, by priority
CHECKPOINTS = ("last", "best")
#: A checkpoint's sampling calibration (`genofast.calibrate`), next to its weights.
CALIBRATION_FILE = "calibration.safetensors"
SELECT = ("freq_ld", "knn_f1")
PRECISIONS = ("auto", "bf16", "fp32")
VCF_SUFFIXES = (".vcf", ".vcf.gz", ".vcf.bgz")  # training data read as phased haplotypes


@dataclass
class TrainConfig:
    """Every knob of a run (``--set key=value`` sets any of these, a BackboneConfig field or a field
    of the model's own Config)."""

    model: str = "diffusion"
    transition: str = "mask"
    schedule: str = "linear"
    config: str = "cpu-small"  # named BackboneConfig (backbone.CONFIGS)
    batch_size: int = 64
    lr: float = 1e-3
    min_lr_ratio: float = 0.1  # cosine decays to lr * min_lr_ratio at max_steps
    warmup_steps: int = 100
    max_steps: int = 5000
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    cond_drop: float = 0.1
    val_fraction: float = 0.1
    eval_every: int = 250
    eval_samples: int = 512  # sampled individuals per evaluation (at most the validation size)
    eval_steps: int = 50  # reverse diffusion steps when sampling for evaluation
    select: str = "freq_ld"  # checkpoint selection score: freq_ld | knn_f1 (module docstring)
    log_every: int = 10
    seed: int = 0
    max_minutes: float | None = None
    device: str | None = None
    compile: bool = False
    precision: str = "auto"  # auto | bf16 | fp32: autocast of the network (`autocast`)
    ancestry: int = 0  # condition on the top K PCs, drawn from a fitted mixture when sampling


def resolve_settings(config: str | None = None, model: str | None = None,
                     sets: list[str] | None = None, **flags: Any
                     ) -> tuple[TrainConfig, dict[str, Any], dict[str, Any]]:
    """The run's (TrainConfig, backbone overrides, model Config overrides) from, lowest priority
    first: the defaults; ``config`` (a backbone name such as ``cpu-small``, a preset such as
    ``study:wgan-cow-all``, or a TOML file with tables ``[train]``, ``[backbone]``, ``[model]`` and
    an optional top-level ``preset``); ``--set`` pairs; explicit flags (model, transition,
    max_minutes, device: None means not given)."""
    train: dict[str, Any] = {}
    layers: list[tuple[dict, dict, dict]] = []

    def preset(name: str) -> None:
        table = presets()
        if name not in table:
            raise ValueError(f"unknown preset {name!r}; presets: {', '.join(sorted(table))}")
        p = table[name]
        layers.append(({"model": p["model"], **p.get("train", {})}, p.get("backbone", {}),
                       p.get("model_config", {})))

    if config is None:
        pass
    elif config.endswith(".toml"):
        import tomllib

        path = Path(config)
        if not path.is_file():
            raise FileNotFoundError(f"--config: no such file {config}")
        doc = tomllib.loads(path.read_text())
        unknown = set(doc) - {"preset", "train", "backbone", "model"}
        if unknown:
            raise ValueError(f"{config}: unknown table(s) {sorted(unknown)}; use preset, [train], "
                             "[backbone], [model]")
        if "preset" in doc:
            preset(doc["preset"])
        layers.append((doc.get("train", {}), doc.get("backbone", {}), doc.get("model", {})))
    elif config.startswith("study:") or config in presets():
        preset(config)
    elif config in CONFIGS:
        layers.append(({"config": config}, {}, {}))
    else:
        raise ValueError(f"--config {config!r}: not a backbone ({', '.join(sorted(CONFIGS))}), "
                         f"a preset ({', '.join(sorted(presets()))}) or a .toml file")
    for t, _, _ in layers:
        train.update(t)
    name = model or train.get("model", "diffusion")
    if model is not None and "model" in train and train["model"] != model:
        raise ValueError(f"--model {model} contradicts --config {config} (model {train['model']})")
    backbone: dict[str, Any] = {}
    mconf: dict[str, Any] = {}
    for _, b, m in layers:
        backbone.update(b)
        mconf.update(m)
    set_train, set_back, set_model = parse_sets(sets, name)
    train.update(set_train)
    backbone.update(set_back)
    mconf.update(set_model)
    train.update({k: v for k, v in flags.items() if v is not None})
    train["model"] = name
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    bad = set(train) - known
    if bad:
        raise ValueError(f"unknown training setting(s) {sorted(bad)}; valid: {sorted(known)}")
    return TrainConfig(**train), backbone, mconf


def parse_sets(pairs: list[str] | None, model: str = "diffusion"
               ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """``["lr=3e-4", "width=64", "latent=32"]`` -> (TrainConfig, BackboneConfig, model Config)
    overrides, values cast to the field's type; an unknown key raises ValueError listing the
    valid ones. A bare key goes to the model's own Config if it has the field, else to the
    TrainConfig, else to the BackboneConfig; ``model.KEY``, ``train.KEY`` and ``backbone.KEY``
    name the place (``backbone.latent_dim=8`` for a GAN, whose own Config has latent_dim)."""
    mcls = model_config_class(model)
    places = {"model": mcls, "train": TrainConfig, "backbone": BackboneConfig}
    slot = {"train": 0, "backbone": 1, "model": 2}
    out: list[dict[str, Any]] = [{}, {}, {}]
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep:
            raise ValueError(f"--set {pair!r}: expected key=value")
        where, dot, field = key.partition(".")
        order = [where] if dot else ["model", "train", "backbone"]
        key = field if dot else key
        if dot and where not in places:
            raise ValueError(f"--set {pair!r}: the prefix must be model., train. or backbone.")
        for name in order:
            cls = places[name]
            if cls is not None and key in {f.name for f in dataclasses.fields(cls)}:
                out[slot[name]][key] = _cast(raw, getattr(cls(), key), key)
                break
        else:
            valid = sorted({f.name for name in order if places[name] is not None
                            for f in dataclasses.fields(places[name])})
            raise ValueError(f"--set: unknown key {key!r} for model {model!r}; valid keys: "
                             f"{', '.join(valid)}")
    return out[0], out[1], out[2]


def _cast(raw: str, default: Any, key: str) -> Any:
    raw = raw.strip()
    if raw.lower() in ("none", "null"):
        return None
    try:
        if isinstance(default, bool):
            if raw.lower() not in ("1", "0", "true", "false", "yes", "no"):
                raise ValueError
            return raw.lower() in ("1", "true", "yes")
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float) or key == "max_minutes":
            return float(raw)
    except ValueError:
        raise ValueError(f"--set {key}={raw!r}: expected a {type(default).__name__}") from None
    return raw


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up over warmup_steps, then cosine from lr to lr * min_lr_ratio."""
    if step <= cfg.warmup_steps:
        return cfg.lr * step / max(1, cfg.warmup_steps)
    frac = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps))
    floor = cfg.lr * cfg.min_lr_ratio
    return floor + 0.5 * (cfg.lr - floor) * (1 + math.cos(math.pi * frac))


def selection_score(result: dict[str, Any], select: str = "freq_ld") -> float:
    """Lower is better: (1 - allele_freq_r) + ld_r2_mae, or 1 - k-NN F1 (module docstring)."""
    if select == "knn_f1":
        p, r = result.get("precision"), result.get("recall")
        if p is None or r is None or not np.isfinite(p) or not np.isfinite(r):
            return float("inf")
        return 1.0 - (2 * p * r / (p + r) if p + r > 0 else 0.0)
    r, ld = result.get("allele_freq_r"), result.get("ld_r2_mae")
    if r is None or ld is None or not np.isfinite(r) or not np.isfinite(ld):
        return float("inf")
    return float((1 - r) + ld)


# --- conditioning -------------------------------------------------------------------------------


def traits_from_pheno(path: str | os.PathLike, names: list[str], samples: SampleTable
                      ) -> tuple[list[dict[str, Any]], np.ndarray]:
    """Trait specs (JSON-able) and the model's cond matrix float32 [N, K] (NaN missing).

    Numeric columns holding only 0/1 are binary, other numeric columns continuous (standardised
    by the mean and SD of the cohort, both kept in the spec), text columns categorical (levels
    sorted, kept in the spec)."""
    ph = read_pheno(path, samples, allow_unknown=True)
    specs, cols = [], []
    for name in names:
        try:
            col = ph.column(name)
        except KeyError as err:
            raise ValueError(str(err.args[0])) from None
        if col.dtype.kind in "US":
            levels = sorted({str(v) for v in col if v != ""})
            if len(levels) < 2:
                raise ValueError(f"phenotype {name!r}: a categorical trait needs >= 2 levels")
            index = {v: i for i, v in enumerate(levels)}
            cols.append(np.array([index.get(str(v), np.nan) for v in col], np.float64))
            specs.append({"name": name, "kind": "categorical", "n_levels": len(levels),
                          "levels": levels})
            continue
        vals = col[np.isfinite(col)]
        if len(vals) == 0:
            raise ValueError(f"phenotype {name!r}: no values for the training individuals")
        if np.isin(vals, (0.0, 1.0)).all():
            cols.append(col)
            specs.append({"name": name, "kind": "binary", "n_levels": 2})
        else:
            mean, sd = float(vals.mean()), float(vals.std())
            sd = sd if sd > 0 else 1.0
            cols.append((col - mean) / sd)
            specs.append({"name": name, "kind": "continuous", "mean": mean, "sd": sd})
    return specs, np.stack(cols, 1).astype(np.float32)


def _encode_column(s: dict[str, Any], col: np.ndarray, where: str) -> np.ndarray:
    """One trait's values -> model cond column float32 [N]: level index (categorical, level
    names, "" missing), 0/1 (binary) or standardised with the run's stats (continuous); NaN =
    missing. ``where`` names the source in errors (``--cond height``)."""
    if s["kind"] == "categorical":
        col = col.astype(str)
        bad = sorted(set(col[col != ""]) - set(s["levels"]))
        if bad:
            raise ValueError(f"{where}: unknown level(s) {bad[:5]}; levels: "
                             f"{', '.join(s['levels'])}")
        index = {v: i for i, v in enumerate(s["levels"])}
        return np.array([index.get(v, np.nan) for v in col], np.float32)
    if col.dtype.kind in "US":
        raise ValueError(f"{where}: expected numbers")
    col = col.astype(np.float64)
    if s["kind"] == "binary":
        if not np.isin(col[np.isfinite(col)], (0.0, 1.0)).all():
            raise ValueError(f"{where}: a binary trait takes 0 or 1")
        return col.astype(np.float32)
    return ((col - s["mean"]) / s["sd"]).astype(np.float32)


def encode_cond(specs: list[dict[str, Any]], values: dict[str, str]) -> np.ndarray:
    """``{"height": "1.8"}`` (raw units / 0-1 / level names) -> one model cond row [K]
    (continuous standardised with the run's stats; traits not given are NaN = missing)."""
    unknown = set(values) - {s["name"] for s in specs}
    if unknown:
        raise ValueError(f"--cond: unknown trait(s) {sorted(unknown)}; the run was trained on "
                         f"{', '.join(s['name'] for s in specs) or 'no traits'}")
    row = np.full(len(specs), np.nan, np.float32)
    for k, s in enumerate(specs):
        if s["name"] not in values:
            continue
        raw = values[s["name"]]
        if raw == "":
            raise ValueError(f"--cond {s['name']}=: no value given")
        col = np.array([raw])
        if s["kind"] != "categorical":
            try:
                col = np.array([float(raw)])
            except ValueError:
                raise ValueError(f"--cond {s['name']}={raw!r}: expected a number") from None
        row[k] = _encode_column(s, col, f"--cond {s['name']}")[0]
    return row


def encode_cond_table(specs: list[dict[str, Any]], pheno: Any) -> np.ndarray:
    """The model cond matrix float32 [N, K] of a `Phenotypes` table, one row per individual
    (raw units / 0-1 / level names as in `encode_cond`; a trait absent from the file or a missing
    value is NaN = missing)."""
    out = np.full((len(pheno), len(specs)), np.nan, np.float32)
    have = set(pheno.names) | set(pheno.categorical)
    if not have & {s["name"] for s in specs}:
        raise ValueError(f"--pheno: none of the run's traits "
                         f"({', '.join(s['name'] for s in specs) or 'none'}) is a column")
    for k, s in enumerate(specs):
        if s["name"] in have:
            out[:, k] = _encode_column(s, pheno.column(s["name"]), f"--pheno {s['name']}")
    return out


# --- model and checkpoints -----------------------------------------------------------------------


def read_training_cohort(source: str | os.PathLike) -> tuple[Cohort, SampleTable | None]:
    """(cohort, people) to train on: a PLINK prefix gives its cohort and None; a phased VCF
    (``.vcf``, ``.vcf.gz``, ``.vcf.bgz``) its haplotypes, 2N rows, and the N people."""
    if os.fspath(source).lower().endswith(VCF_SUFFIXES):
        phased = read_vcf(source)
        return phased.haplotypes, phased.people
    return read_plink(source), None


def build_model(meta: dict[str, Any], snps: SnpTable, data: TrainingData | None = None
                ) -> torch.nn.Module:
    """The model a run's config.json describes, on the CPU, freshly initialised; ``data`` (the
    training individuals) when training starts, None when loading weights."""
    return model_module(meta["train"]["model"]).build(meta, snps, data)


def _atomic(path: Path, write: Any) -> None:
    """Call write(temp_path), then move it over path (readers never see half a file)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _write_json(path: Path, obj: Any) -> None:
    _atomic(path, lambda p: p.write_text(json.dumps(obj, indent=2) + "\n"))


def _tensors(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in state.items()}


def load_weights(run_dir: str | os.PathLike, which: str = "best", ema: bool = True,
                 device: str | torch.device = "cpu", model_sets: list[str] | None = None,
                 calibrated: bool = True) -> tuple[torch.nn.Module, dict]:
    """Rebuild a run's model with its saved (EMA) weights, in eval mode; returns (model, meta).
    ``model_sets`` (``["decode=argmax"]``) override fields of the model's own Config, for
    sampling-time choices. With ``calibrated``, the checkpoint's calibration tilt
    (`genofast.calibrate`) is applied when there is one; ``meta["calibration"]`` says which."""
    run = Path(run_dir)
    if not (run / "config.json").is_file():
        raise FileNotFoundError(f"not a run folder (no config.json): {run}")
    if which not in CHECKPOINTS:
        raise ValueError(f"checkpoint must be one of {CHECKPOINTS}")
    path = run / which / ("ema.safetensors" if ema else "model.safetensors")
    if not path.is_file():
        raise FileNotFoundError(f"no {which} checkpoint in {run} (missing {path.name})")
    meta = json.loads((run / "config.json").read_text())
    if model_sets:
        _, _, sets = parse_sets(model_sets, meta["train"]["model"])
        if len(sets) != len(model_sets):
            raise ValueError(f"--set at sampling time takes settings of the model "
                             f"{meta['train']['model']!r} only; got {model_sets}")
        meta["model"] = {**meta.get("model", {}), **sets}
    weights = load_file(path)
    model = build_model(meta, read_bim(run / "snps.bim"))
    model.load_state_dict(weights)
    meta["calibration"] = None
    cal = run / which / CALIBRATION_FILE
    if calibrated and ema and cal.is_file() and hasattr(model, "tilt"):
        with safe_open(cal, "pt") as f:
            info = f.metadata()
            tilt = f.get_tensor("tilt")
        with safe_open(path, "pt") as f:
            step = f.metadata().get("step")
        if info.get("step") != step or tuple(tilt.shape) != tuple(model.tilt.shape):
            raise ValueError(f"{cal} belongs to another checkpoint (step {info.get('step')}, "
                             f"weights at step {step}); run `genofast calibrate {run}` again")
        model.tilt.copy_(tilt)
        meta["calibration"] = info
    return model.to(device).eval(), meta


def uses_bf16(device: torch.device, precision: str = "auto") -> bool:
    """Whether the network runs under bf16 autocast: for ``bf16``, and for ``auto`` on CUDA and
    on CPUs with native bf16 matmuls (AVX512-BF16, AMX: 2.5-3.5x the float32 matmul rate on
    the development VM's EPYC, 1.6x a whole cpu-small training step, bench/RESULTS.md)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    return precision == "bf16" or (precision == "auto" and (
        device.type == "cuda" or (device.type == "cpu" and cpu_has_bf16())))


def autocast(device: torch.device, precision: str = "auto") -> torch.autocast:
    """The network's autocast context (`uses_bf16`): bfloat16 matmuls, while the weights, the
    optimiser state and the loss stay float32."""
    return torch.autocast(device.type, dtype=torch.bfloat16,
                          enabled=uses_bf16(device, precision))


def run_precision(meta: dict[str, Any], device: torch.device) -> str:
    """A run's `precision`. Runs saved before the setting existed autocast on CUDA only: they
    keep float32 on the CPU, so resuming and sampling them give what they gave."""
    return meta["train"].get("precision", "auto" if device.type == "cuda" else "fp32")


@functools.cache
def cpu_has_bf16() -> bool:
    """Whether oneDNN runs bf16 matmuls natively on this CPU (without, bf16 is emulated and
    slower than float32)."""
    try:
        return bool(torch.backends.mkldnn.is_available()
                    and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch build without the query
        return False


def join_ranks(device: str | None = None) -> tuple[torch.device, int, int]:
    """This process's device, rank and world size. Under torchrun (WORLD_SIZE > 1) it joins the
    default process group: NCCL on cuda:LOCAL_RANK, gloo on the CPU. Training and sampling both
    start here."""
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return dev, 0, 1
    if dev.type == "cuda":
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return dev, dist.get_rank(), dist.get_world_size()


# --- the trainer ----------------------------------------------------------------------------------


class _LossModule(torch.nn.Module):
    """forward() = model.loss(), so DDP (which hooks forward) syncs the loss's gradients."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, *args: Any, **kw: Any) -> torch.Tensor | dict[str, torch.Tensor]:
        return self.model.loss(*args, **kw)


class Trainer:
    """Train a model on a PLINK cohort (``bfile``: its prefix) or a phased VCF (``bfile``: a
    .vcf/.vcf.gz path) into a run folder (module docstring)."""

    def __init__(
        self,
        bfile: str | os.PathLike,
        out: str | os.PathLike,
        cfg: TrainConfig | None = None,
        backbone: dict[str, Any] | None = None,
        model: dict[str, Any] | None = None,
        pheno: str | os.PathLike | None = None,
        pheno_names: list[str] | None = None,
        *,
        resume: bool = False,
        progress: bool = True,
    ) -> None:
        self.run = Path(out)
        self.progress = progress
        if resume:
            if not (self.run / "config.json").is_file():
                raise FileNotFoundError(f"--resume: no run to resume in {self.run}")
            self.meta = json.loads((self.run / "config.json").read_text())
            if cfg is not None:  # only the time budget and device may change on resume
                self.meta["train"]["max_minutes"] = cfg.max_minutes
                self.meta["train"]["device"] = cfg.device
            self.cfg = TrainConfig(**self.meta["train"])
        else:
            self.cfg = cfg = cfg or TrainConfig()
            if cfg.model not in MODELS:
                raise ValueError(f"model must be one of {', '.join(MODELS)}, got {cfg.model!r}")
            if cfg.select not in SELECT:
                raise ValueError(f"select must be one of {SELECT}, got {cfg.select!r}")
            if cfg.transition not in TRANSITIONS:
                raise ValueError(f"transition must be one of {TRANSITIONS}, got "
                                 f"{cfg.transition!r}")
            if cfg.precision not in PRECISIONS:
                raise ValueError(f"precision must be one of {PRECISIONS}, got "
                                 f"{cfg.precision!r}")
            if cfg.schedule not in SCHEDULES:
                raise ValueError(f"schedule must be one of {SCHEDULES}, got {cfg.schedule!r}")
            if cfg.config not in CONFIGS:
                raise ValueError(f"config must be one of {sorted(CONFIGS)}, got {cfg.config!r}")
            if cfg.batch_size < 1 or cfg.max_steps < 1 or not 0 < cfg.val_fraction < 1:
                raise ValueError("need batch_size >= 1, max_steps >= 1, 0 < val_fraction < 1")
            if cfg.ancestry < 0:
                raise ValueError(f"--ancestry takes K >= 1 principal components, got "
                                 f"{cfg.ancestry}")
            bcfg = dataclasses.replace(CONFIGS[cfg.config], **(backbone or {}))
            mcls = model_config_class(cfg.model)
            if mcls is None and model:
                raise ValueError(f"model {cfg.model!r} has no settings; got {sorted(model)}")
            mcfg = dataclasses.asdict(mcls(**(model or {}))) if mcls is not None else {}
            self.meta = {"train": dataclasses.asdict(cfg), "backbone": dataclasses.asdict(bcfg),
                         "model": mcfg, "fitted": {}, "traits": [], "bfile": os.fspath(bfile)}
        cfg = self.cfg
        self.dev, self.rank, self.world = join_ranks(cfg.device)
        cfg.precision = self.meta["train"]["precision"] = run_precision(self.meta, self.dev)
        self.main = self.rank == 0
        self.progress = progress and self.main

        cohort, people = read_training_cohort(bfile)
        phased = people is not None
        if not resume:
            self.meta["phased"] = phased
        elif self.meta.get("phased", False) != phased:
            raise ValueError(f"--resume: the run was trained on "
                             f"{'a phased VCF' if self.meta.get('phased') else 'a PLINK fileset'}"
                             f", {bfile} is not one")
        samples = people if phased else cohort.samples  # traits and the split are per person
        n = len(samples)
        cond = None
        if resume:
            user = [s for s in self.meta["traits"] if not s.get("ancestry")]
            if user:
                if pheno is None:
                    pheno = self.meta["pheno"]
                _, cond = traits_from_pheno(pheno, [s["name"] for s in user], samples)
                cond = self._restandardise(cond, user, samples, pheno)
        elif pheno_names:
            if pheno is None:
                raise ValueError("--pheno-name needs --pheno FILE")
            self.meta["traits"], cond = traits_from_pheno(pheno, pheno_names, samples)
            self.meta["pheno"] = os.fspath(pheno)
        if cond is not None and phased:
            cond = np.repeat(cond, 2, 0)  # a person's traits condition both haplotypes
        split_path = self.run / "split.json"
        if resume:
            split = json.loads(split_path.read_text())
            if split["n"] != n:
                raise ValueError(f"--resume: {bfile} has {n} individuals, the run was trained "
                                 f"on {split['n']}")
        else:
            n_val = max(2, round(cfg.val_fraction * n))
            if n - n_val < 2:
                raise ValueError(f"{n} individuals: too few for a train/validation split")
            perm = np.random.default_rng(cfg.seed).permutation(n)
            val, tr = np.sort(perm[:n_val]), np.sort(perm[n_val:])

            def rows(people_idx: np.ndarray) -> list[int]:  # a person's rows in the cohort
                r = np.stack([2 * people_idx, 2 * people_idx + 1], 1) if phased else people_idx
                return r.reshape(-1).tolist()

            split = {"seed": cfg.seed, "n": n, "train": rows(tr), "validation": rows(val),
                     "train_ids": [[samples.fid[i], samples.iid[i]] for i in tr],
                     "validation_ids": [[samples.fid[i], samples.iid[i]] for i in val]}
        self.train_idx = torch.tensor(split["train"], dtype=torch.int64)
        self.val_idx = torch.tensor(split["validation"], dtype=torch.int64)
        self.val = cohort[np.asarray(split["validation"])]
        self._ancestry = None
        if cfg.ancestry > 0:
            cond = self._with_ancestry(cohort, cond, resume)
        self.snps = cohort.snps
        self.packed = cohort.genotypes.to(self.dev)
        self.cond = None if cond is None else torch.from_numpy(cond).to(self.dev)
        self.meta["n_snps"] = cohort.n_snps

        data = None
        if not resume:
            data = TrainingData(cohort.genotypes[self.train_idx], cohort.n_snps,
                                None if cond is None else torch.from_numpy(cond)[self.train_idx])
        self.model = build_model(self.meta, self.snps, data).to(self.dev)
        self.ema = {k: v.detach().clone().float() if v.is_floating_point() else v.clone()
                    for k, v in self.model.state_dict().items()}
        self.groups = {g.name: g for g in self.model.optim_groups()}
        self.opts = {name: self._optimizer(g) for name, g in self.groups.items()}
        self.step, self.best_score = 0, float("inf")
        self._stop: str | None = None
        loss_module: torch.nn.Module = _LossModule(self.model)
        if self.world > 1 and self.groups:
            loss_module = torch.nn.parallel.DistributedDataParallel(
                loss_module, device_ids=[self.dev.index] if self.dev.type == "cuda" else None,
                find_unused_parameters=len(self.groups) > 1
                or getattr(self.model, "ddp_find_unused", False))
        self._fwd = torch.compile(loss_module) if cfg.compile else loss_module

        if resume:
            self._load("last")
        elif self.main:
            self.run.mkdir(parents=True, exist_ok=True)
            _write_json(split_path, split)
            _atomic(self.run / "snps.bim", lambda p: write_bim(p, self.snps))
            if self._ancestry is not None:
                from genofast.ancestry import ANCESTRY_FILE

                _atomic(self.run / ANCESTRY_FILE, self._ancestry.save)
            _write_json(self.run / "config.json", self.meta)

    def _optimizer(self, group: Any) -> torch.optim.Optimizer:
        """AdamW of one OptimGroup: weight decay on matrices only, the group's own settings."""
        wd = self.cfg.weight_decay if group.weight_decay is None else group.weight_decay
        decay = [p for p in group.params if p.dim() >= 2]
        no_decay = [p for p in group.params if p.dim() < 2]
        return torch.optim.AdamW(
            [{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}],
            lr=self.cfg.lr * group.lr_scale, betas=group.betas or (0.9, 0.99))

    def _with_ancestry(self, cohort: Cohort, cond: np.ndarray | None, resume: bool
                       ) -> np.ndarray:
        """``cond`` with the ancestry conditions appended (`genofast.ancestry`): every
        individual's top-K PC scores, standardised. The PCA and mixture are fitted on the
        training individuals (loaded from the run folder on resume)."""
        from genofast.ancestry import fit_ancestry, load_ancestry

        g = cohort.unpack()
        if resume:
            anc = load_ancestry(self.run)
            specs = [s for s in self.meta["traits"] if s.get("ancestry")]
        else:
            anc = self._ancestry = fit_ancestry(g[self.train_idx], self.cfg.ancestry,
                                                seed=self.cfg.seed, paired=self.meta["phased"])
            train = anc.pca.scores
            specs = [{"name": f"PC{i + 1}", "kind": "continuous",
                      "mean": float(train[:, i].mean()), "sd": float(train[:, i].std()) or 1.0,
                      "ancestry": True} for i in range(anc.k)]
            clash = {s["name"] for s in self.meta["traits"]} & {s["name"] for s in specs}
            if clash:
                raise ValueError(f"--ancestry adds the conditions PC1..PC{anc.k}; rename the "
                                 f"trait(s) {sorted(clash)}")
            self.meta["traits"] += specs
            self.meta["ancestry"] = {"k": anc.k, "components": len(anc.mixture.weights),
                                     "eigenvalues": anc.pca.eigenvalues.tolist()}
        mean = np.array([s["mean"] for s in specs])
        sd = np.array([s["sd"] for s in specs])
        z = ((anc.scores(g) - mean) / sd).astype(np.float32)
        return z if cond is None else np.concatenate([cond, z], 1)

    def _restandardise(self, cond: np.ndarray, specs: list[dict[str, Any]], samples: SampleTable,
                       pheno: Any) -> np.ndarray:
        """On resume, standardise with the stats saved in config.json (not recomputed)."""
        ph = read_pheno(pheno, samples, allow_unknown=True)
        for k, s in enumerate(specs):
            if s["kind"] == "continuous":
                cond[:, k] = (ph.column(s["name"]) - s["mean"]) / s["sd"]
        return cond

    # -- checkpoints --------------------------------------------------------------------------

    def save(self, which: str) -> None:
        """Write last/ or best/ atomically (file by file, state.json last); rank 0 only."""
        if not self.main:
            return
        d = self.run / which
        d.mkdir(parents=True, exist_ok=True)
        (d / CALIBRATION_FILE).unlink(missing_ok=True)  # fitted to the weights being replaced
        meta = {"step": str(self.step)}
        _atomic(d / "model.safetensors",
                lambda p: save_file(_tensors(self.model.state_dict()), p, metadata=meta))
        _atomic(d / "ema.safetensors", lambda p: save_file(_tensors(self.ema), p, metadata=meta))
        rng = {"cpu": torch.get_rng_state()}
        if self.dev.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.dev)
        state = {"optimizer": {k: o.state_dict() for k, o in self.opts.items()}, "rng": rng,
                 "step": torch.tensor(self.step)}
        _atomic(d / "trainer.pt", lambda p: torch.save(state, p))
        _write_json(d / "state.json", {"step": self.step, "best_score": self.best_score})

    def _load(self, which: str) -> None:
        d = self.run / which
        if not (d / "state.json").is_file():
            raise FileNotFoundError(f"--resume: no checkpoint in {d}")
        info = json.loads((d / "state.json").read_text())
        state = torch.load(d / "trainer.pt", map_location=self.dev, weights_only=True)
        if int(state["step"]) != info["step"]:
            raise ValueError(f"inconsistent checkpoint in {d} (interrupted while saving)")
        self.model.load_state_dict(load_file(d / "model.safetensors", device=str(self.dev)))
        self.ema = load_file(d / "ema.safetensors", device=str(self.dev))
        for k, o in self.opts.items():
            o.load_state_dict(state["optimizer"][k])
        torch.set_rng_state(state["rng"]["cpu"].cpu())
        if "cuda" in state["rng"] and self.dev.type == "cuda":
            torch.cuda.set_rng_state(state["rng"]["cuda"].cpu(), self.dev)
        self.step, self.best_score = info["step"], float(info["best_score"])

    # -- one step, evaluation --------------------------------------------------------------------

    def batch_rows(self, step: int) -> torch.Tensor:
        """This rank's training individuals of a step: its block of the step's slice of a
        per-epoch seeded permutation (module docstring)."""
        n = len(self.train_idx)
        b = min(self.cfg.batch_size, n // self.world)
        if b < 1:
            raise ValueError(f"{n} training individuals for {self.world} ranks")
        per_epoch = n // (b * self.world)
        epoch, k = divmod(step - 1, per_epoch)
        g = torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + epoch)
        start = (k * self.world + self.rank) * b
        return self.train_idx[torch.randperm(n, generator=g)[start:start + b]]

    def train_step(self) -> tuple[dict[str, float], float]:
        """One step: the model's loss(es), one AdamW step per returned group, the EMA update.
        Returns ({group: loss}, gradient norm of the last group stepped)."""
        self.step += 1
        cfg, model = self.cfg, self.model
        lr = lr_at(self.step, cfg)
        for name, opt in self.opts.items():
            for pg in opt.param_groups:
                pg["lr"] = lr * self.groups[name].lr_scale
        rows = self.batch_rows(self.step).to(self.dev)
        cond = None if self.cond is None else self.cond[rows]
        model.train()
        with autocast(self.dev, cfg.precision):
            out = self._fwd(self.packed[rows], rows, cond, seed=cfg.seed, offset=self.step)
        losses = out if isinstance(out, dict) else {"model": out}
        gnorm = torch.zeros(())
        for name, loss in losses.items():
            group = self.groups[name]
            for opt in self.opts.values():
                opt.zero_grad(set_to_none=True)
            loss.backward()
            clip = group.grad_clip if group.grad_clip is not None else cfg.grad_clip
            gnorm = torch.nn.utils.clip_grad_norm_(group.params, clip if group.clip else math.inf)
            self.opts[name].step()
        logged = {}
        for name, loss in losses.items():
            loss = loss.detach().clone()
            if self.world > 1:  # log the mean loss over the ranks
                dist.all_reduce(loss)
                loss /= self.world
            logged[name] = float(loss)
        decay = min(cfg.ema_decay, (1 + self.step) / (10 + self.step))
        with torch.no_grad():
            for k, v in model.state_dict().items():
                if v.is_floating_point():
                    self.ema[k].lerp_(v.float(), 1 - decay)
                else:
                    self.ema[k].copy_(v)
        return logged, float(gnorm)

    def ema_model(self) -> torch.nn.Module:
        m = copy.deepcopy(self.model)
        m.load_state_dict(self.ema)
        return m.eval()

    def evaluate(self) -> dict[str, Any]:
        """Sample a validation-sized cohort with the EMA weights and score it; add the EMA
        model's `validation_loss`."""
        from genofast.metrics.evaluate import evaluate

        n = min(self.cfg.eval_samples, self.val.n_individuals)
        model = self.ema_model()
        cond = None
        if self.cond is not None:  # the validation individuals' own trait values
            cond = self.cond[self.val_idx[:n].to(self.dev)]
        t0 = time.perf_counter()
        with autocast(self.dev, self.cfg.precision):
            x = model.sample(n, cond, steps=self.cfg.eval_steps, seed=self.cfg.seed + 7919,
                             row_offset=0)
        synth = Cohort(pack(x.cpu()), self.snps, SampleTable.default(n))
        families = ["frequency", "ld"] + (["knn"] if self.cfg.select == "knn_f1" else [])
        res = evaluate(self.val, synth, metrics=families, reference=False,
                       progress=False, device=self.dev)
        keys = ["allele_freq_r", "genotype_freq_r", "ld_r2_mae", "ld_decay_mae"]
        out = {k: res.get(k) for k in keys + (["precision", "recall"] if "knn" in families else [])}
        out["score"] = selection_score(res, self.cfg.select)
        out["val_loss"] = self.validation_loss(model)
        out["eval_seconds"] = round(time.perf_counter() - t0, 3)
        return out

    @torch.no_grad()
    def validation_loss(self, model: torch.nn.Module) -> float | None:
        """The model's training loss on every validation individual, with fixed noise so
        evaluations compare (for diffusion the held-out ELBO, nats per SNP: the number that says
        whether a bigger model or longer run helps, and whether the model overfits). None for
        models with no single loss (GANs) or nothing trained."""
        if not self.groups:
            return None
        rows_all = self.val_idx.to(self.dev)
        total = 0.0
        for start in range(0, len(rows_all), self.cfg.batch_size):
            rows = rows_all[start:start + self.cfg.batch_size]
            cond = None if self.cond is None else self.cond[rows]
            with autocast(self.dev, self.cfg.precision):
                out = model.loss(self.packed[rows], rows, cond, seed=self.cfg.seed + 104729,
                                 offset=start)
            if isinstance(out, dict):
                return None
            total += float(out) * len(rows)
        return total / len(rows_all)

    # -- the loop ----------------------------------------------------------------------------------

    def _on_signal(self, signum: int, frame: Any) -> None:
        self._stop = signal.Signals(signum).name

    def fit(self, stop_step: int | None = None) -> dict[str, Any]:
        """Train to max_steps (or ``stop_step``, or max_minutes, or SIGINT/SIGTERM), saving last/
        at the end and best/ at every improving evaluation. Returns a summary dict."""
        from tqdm.auto import tqdm

        cfg = self.cfg
        end = min(cfg.max_steps, stop_step or cfg.max_steps)
        if not self.groups:  # nothing to optimise (fitted when built): evaluate and save once
            end = self.step
        old = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                old[sig] = signal.signal(sig, self._on_signal)
            except ValueError:  # not the main thread: no handlers
                pass
        t0 = time.monotonic()
        reason = "max_steps" if end == cfg.max_steps else "stop_step"
        last_eval = self.step if self.step >= end else None
        if not self.groups:
            reason, last_eval = "fitted", None
        last_loss = float("nan")
        step0 = self.step
        bar = tqdm(total=end, initial=step0, disable=not self.progress, unit="step",
                   dynamic_ncols=True)
        if self.world > 1:
            dist.barrier()  # rank 0 has written the run folder
        try:
            with (self.run / "log.jsonl").open("a") if self.main else open(os.devnull, "w") as log:
                while self.step < end:
                    losses, gnorm = self.train_step()
                    last_loss = losses["model"] if "model" in losses else losses
                    bar.update(1)
                    if self.step % cfg.log_every == 0 or self.step == 1:
                        log.write(json.dumps({"step": self.step, "loss": last_loss,
                                              "grad_norm": gnorm, "lr": lr_at(self.step, cfg),
                                              "time": round(time.monotonic() - t0, 3)}) + "\n")
                        log.flush()
                        shown = " ".join(f"{v:.4f}" for v in losses.values())
                        bar.set_postfix(loss=shown, score=f"{self.best_score:.4f}")
                        if not bar.disable:
                            self._project_total(bar, t0, step0, end)
                    if self.step % cfg.eval_every == 0:
                        last_eval = self._eval_and_keep(log)
                    stop = self._stop_code(t0)
                    if stop:
                        reason = _STOPS[stop]
                        break
                # a final evaluation at the natural end, or whenever no best exists yet (not on
                # a signal; not past max_minutes when a best is already kept)
                no_best = not (self.run / "best" / "state.json").is_file()
                if (last_eval != self.step and (self.step > 0 or not self.groups)
                        and reason not in _STOPS[2:]
                        and (reason != "max_minutes" or no_best)):
                    last_eval = self._eval_and_keep(log)
                self.save("last")
            if self.world > 1:
                dist.barrier()
        finally:
            if not bar.disable and reason == "max_minutes":
                bar.total = bar.n  # the projection's end is now known
                bar.refresh()
            bar.close()
            for sig, handler in old.items():
                signal.signal(sig, handler)
        return {"step": self.step, "stopped": reason, "loss": last_loss,
                "best_score": self.best_score, "seconds": round(time.monotonic() - t0, 3)}

    def _project_total(self, bar: Any, t0: float, step0: int, end: int) -> None:
        """With max_minutes, show the step the time limit will stop at (at the steps/s so
        far) as the bar's total, so its remaining time is the real one."""
        minutes, elapsed = self.cfg.max_minutes, time.monotonic() - t0
        done = self.step - step0
        if minutes is None or elapsed <= 0 or done <= 0:
            return
        projected = self.step + int(done / elapsed * max(0.0, 60 * minutes - elapsed))
        if projected < end and projected != bar.total:
            bar.total = projected
            bar.refresh()

    def _stop_code(self, t0: float) -> int:
        """0 go on, else an index of _STOPS (max over the ranks, so all stop together)."""
        cfg, code = self.cfg, 0
        if cfg.max_minutes is not None and time.monotonic() - t0 > 60 * cfg.max_minutes:
            code = 1
        if self._stop:
            code = _STOPS.index(self._stop)
        if self.world > 1:
            flag = torch.tensor([code], device=self.dev)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            code = int(flag)
        return code

    def _eval_and_keep(self, log: Any) -> int:
        """Evaluate (rank 0 only), log, and save best/ when the score improved."""
        if not self.main:
            return self.step
        ev = self.evaluate()
        better = ev["score"] < self.best_score
        if better:
            self.best_score = ev["score"]
        log.write(json.dumps({"step": self.step, "eval": ev, "best": better}) + "\n")
        log.flush()
        if better or not (self.run / "best" / "state.json").is_file():
            self.save("best")
        return self.step


def train(bfile: str | os.PathLike, out: str | os.PathLike, cfg: TrainConfig | None = None,
          backbone: dict[str, Any] | None = None, *, resume: bool = False,
          progress: bool = True, stop_step: int | None = None, **kw: Any) -> dict[str, Any]:
    """Build a Trainer and run it; see `Trainer`."""
    return Trainer(bfile, out, cfg, backbone, resume=resume, progress=progress, **kw).fit(stop_step)
