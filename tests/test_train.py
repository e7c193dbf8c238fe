"""Trainer, checkpoints, resume and the train/sample commands on a tiny cohort (fast, CPU)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import two_chromosome_snps, write_phased_vcf

from genofast import read_plink, write_plink
from genofast.cli import main
from genofast.io import read_pheno, read_vcf
from genofast.sample import add_haplotypes
from genofast.train import (
    TrainConfig,
    Trainer,
    autocast,
    encode_cond,
    encode_cond_table,
    load_weights,
    parse_sets,
    resolve_settings,
    run_precision,
    train,
    uses_bf16,
)

TINY = {"patch_size": 8, "token_dim": 4, "width": 32, "depth": 2, "n_heads": 4,
        "time_freq_dim": 32}
TINY_SETS = [f"{k}={v}" for k, v in TINY.items()]
N, M = 64, 80


def _cfg(**kw) -> TrainConfig:
    base = {"batch_size": 16, "max_steps": 10, "warmup_steps": 2, "eval_every": 5,
            "eval_samples": 16, "eval_steps": 4, "log_every": 1, "val_fraction": 0.25,
            "device": "cpu"}
    return TrainConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """64 x 80 SNPs on 2 chromosomes with some LD (haplotypes copied from 4 founders)."""
    rng = np.random.default_rng(0)
    founders = rng.random((4, M)) < rng.uniform(0.1, 0.6, M)
    hap = founders[rng.integers(0, 4, (2 * N, 1)), np.arange(M)]
    flip = rng.random(hap.shape) < 0.05
    g = (hap ^ flip).reshape(N, 2, M).sum(1).astype(np.int8)
    snps = two_chromosome_snps(M)
    prefix = tmp_path_factory.mktemp("data") / "toy"
    write_plink(prefix, torch.from_numpy(g), snps)
    height = 170 + 10 * rng.standard_normal(N)
    fam = read_plink(prefix).samples
    lines = ["FID IID height case"] + [f"{f} {i} {h:.3f} {int(h > 170)}"
                                       for f, i, h in zip(fam.fid, fam.iid, height, strict=True)]
    (prefix.parent / "toy.pheno").write_text("\n".join(lines) + "\n")
    return prefix


@pytest.fixture(scope="module")
def phased(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A phased VCF of 32 people x 80 SNPs (haplotypes copied from 4 founders, 5 % flipped)
    and ``phased.pheno`` beside it (FID = IID = the VCF sample name, a height)."""
    rng = np.random.default_rng(2)
    founders = rng.random((4, M)) < rng.uniform(0.1, 0.6, M)
    hap = founders[rng.integers(0, 4, (64, 1)), np.arange(M)] ^ (rng.random((64, M)) < 0.05)
    path = tmp_path_factory.mktemp("phased") / "phased.vcf.gz"
    write_phased_vcf(path, hap.astype(np.uint8), two_chromosome_snps(M))
    rows = [f"p{i} p{i} {170 + 10 * rng.standard_normal():.3f}" for i in range(32)]
    (path.parent / "phased.pheno").write_text("FID IID height\n" + "\n".join(rows) + "\n")
    return path


def _losses(run: Path) -> list[float]:
    rows = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    return [r["loss"] for r in rows if "loss" in r]


def test_train_writes_checkpoints_and_reloads(cohort: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    summary = train(cohort, run, _cfg(), TINY, progress=False)
    assert summary["step"] == 10 and np.isfinite(summary["loss"])
    for name in ("config.json", "snps.bim", "split.json", "log.jsonl"):
        assert (run / name).is_file()
    for which in ("last", "best"):
        for name in ("model.safetensors", "ema.safetensors", "trainer.pt", "state.json"):
            assert (run / which / name).is_file()
    split = json.loads((run / "split.json").read_text())
    assert len(split["train"]) + len(split["validation"]) == N
    assert not set(split["train"]) & set(split["validation"])
    evals = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()
             if "eval" in json.loads(x)]
    assert [e["step"] for e in evals] == [5, 10]
    assert all(np.isfinite(e["eval"]["score"]) for e in evals)
    model, meta = load_weights(run, "last", ema=False)
    assert meta["backbone"]["width"] == 32 and model.n_snps == M
    # val_loss is the held-out loss of the EMA weights saved at that step, fixed noise
    ema, _ = load_weights(run, "last")
    packed = read_plink(cohort).genotypes
    val, bs, seed = torch.tensor(split["validation"]), _cfg().batch_size, _cfg().seed + 104729
    with torch.no_grad():
        want = sum(float(ema.loss(packed[val[s:s + bs]], val[s:s + bs], seed=seed, offset=s))
                   * len(val[s:s + bs]) for s in range(0, len(val), bs)) / len(val)
    assert evals[-1]["eval"]["val_loss"] == pytest.approx(want, rel=1e-5)
    assert not list(run.rglob("*.tmp"))


def test_max_minutes_stops_and_keeps_best(cohort: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    summary = train(cohort, run, _cfg(max_steps=100_000, max_minutes=0.02), TINY,
                    progress=False)
    assert summary["stopped"] == "max_minutes" and summary["step"] < 100_000
    assert (run / "best" / "ema.safetensors").is_file()
    assert np.isfinite(summary["best_score"])


def test_cli_train_sample_roundtrip(cohort: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    sets = TINY_SETS + ["max_steps=4", "eval_every=4", "eval_samples=16", "eval_steps=4",
                        "batch_size=16", "val_fraction=0.25", "warmup_steps=1"]
    argv = ["train", "--bfile", str(cohort), "--out", str(run), "--quiet", "--device", "cpu"]
    assert main(argv + [f"--set={s}" for s in sets]) == 0
    out_a, out_b = tmp_path / "a", tmp_path / "b"
    common = [str(run), "--n", "10", "--steps", "5", "--seed", "3", "--quiet"]
    assert main(["sample", *common, "--out", str(out_a), "--batch-size", "4"]) == 0
    assert main(["sample", *common, "--out", str(out_b), "--batch-size", "10"]) == 0
    a, b = read_plink(out_a), read_plink(out_b)
    assert (a.n_individuals, a.n_snps) == (10, M)
    g = a.unpack()
    assert bool(((g >= 0) & (g <= 2)).all())
    assert torch.equal(g, b.unpack())
    assert list(a.snps.sid) == list(read_plink(cohort).snps.sid)
    # corrector moves: batch-size independent too
    for out, bs in ((tmp_path / "c4", "4"), (tmp_path / "c10", "10")):
        assert main(["sample", *common, "--out", str(out), "--batch-size", bs,
                     "--correct", "2"]) == 0
    c = read_plink(tmp_path / "c4").unpack()
    assert torch.equal(c, read_plink(tmp_path / "c10").unpack()) and not torch.equal(c, g)
    assert main(["sample", *common, "--out", str(tmp_path / "p"), "--power", "3"]) == 0
    assert not torch.equal(read_plink(tmp_path / "p").unpack(), g)
    assert main(["sample", *common, "--out", str(tmp_path / "p"), "--power", "0"]) == 2


def test_conditional_train_and_sample(cohort: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    pheno = cohort.parent / "toy.pheno"
    Trainer(cohort, run, _cfg(max_steps=3, eval_every=3), TINY, pheno=pheno,
            pheno_names=["height", "case"], progress=False).fit()
    meta = json.loads((run / "config.json").read_text())
    kinds = {t["name"]: t["kind"] for t in meta["traits"]}
    assert kinds == {"height": "continuous", "case": "binary"}
    assert abs(meta["traits"][0]["mean"] - 170) < 5
    out = tmp_path / "syn"
    assert main(["sample", str(run), "--n", "8", "--out", str(out), "--steps", "3",
                 "--cond", "height=185", "--cond", "case=1", "--guidance", "1", "--quiet"]) == 0
    ph = read_pheno(str(out) + ".pheno")
    assert ph.names == ["height", "case"] and np.all(ph.values[:, 0] == 185)
    assert read_plink(out).n_individuals == 8
    assert main(["sample", str(run), "--n", "4", "--out", str(out) + "x",
                 "--cond", "weight=3", "--quiet"]) == 2
    # --pheno: one synthetic individual per row, conditioned on that row; the rows come back
    rows = tmp_path / "want.pheno"
    rows.write_text("FID IID height case\na a 160 0\nb b 181.5 1\nc c NA 1\n")
    assert main(["sample", str(run), "--pheno", str(rows), "--out", str(out) + "p",
                 "--steps", "3", "--quiet"]) == 0
    back = read_pheno(str(out) + "p.pheno")
    assert read_plink(str(out) + "p").n_individuals == 3
    np.testing.assert_array_equal(back.values, [[160, 0], [181.5, 1], [np.nan, 1]])
    assert main(["sample", str(run), "--pheno", str(rows), "--n", "5", "--out",
                 str(out) + "q", "--quiet"]) == 2
    rows.write_text("FID IID case\na a 2\n")
    assert main(["sample", str(run), "--pheno", str(rows), "--out", str(out) + "r",
                 "--quiet"]) == 2


def test_calibrate_is_kept_beside_its_checkpoint_and_applied(cohort: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture
                                                             ) -> None:
    run = tmp_path / "run"
    train(cohort, run, _cfg(max_steps=4, eval_every=4), TINY, progress=False)
    cal = run / "best" / "calibration.safetensors"
    assert main(["calibrate", str(run), "--n", "24", "--iters", "2", "--steps", "4",
                 "--batch-size", "10", "--quiet"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["step"] == 4 and len(summary["errors"]) == 2 and cal.is_file()
    model, meta = load_weights(run)
    assert meta["calibration"]["step"] == "4" and meta["calibration"]["steps"] == "4"
    assert float(model.tilt.abs().sum()) > 0
    assert float(load_weights(run, calibrated=False)[0].tilt.abs().sum()) == 0
    common = [str(run), "--n", "30", "--steps", "4", "--seed", "2", "--quiet"]
    assert main(["sample", *common, "--out", str(tmp_path / "a")]) == 0
    assert main(["sample", *common, "--out", str(tmp_path / "b"), "--no-calibration"]) == 0
    assert not torch.equal(read_plink(tmp_path / "a").unpack(), read_plink(tmp_path / "b").unpack())
    # a calibration that names another step is refused, and saving new weights removes it
    copy = tmp_path / "copy"
    train(cohort, copy, _cfg(max_steps=2, eval_every=2), TINY, progress=False)
    (copy / "best" / cal.name).write_bytes(cal.read_bytes())
    with pytest.raises(ValueError, match="another checkpoint"):
        load_weights(copy)
    assert main(["calibrate", str(run), "--checkpoint", "last", "--n", "8", "--iters", "1",
                 "--steps", "2", "--quiet"]) == 0
    assert (run / "last" / cal.name).is_file()
    train(cohort, run, _cfg(max_steps=6, eval_every=100), resume=True, progress=False)
    assert not (run / "last" / cal.name).exists()  # fitted to weights that are gone
    best_step = json.loads((run / "best" / "state.json").read_text())["step"]
    assert cal.is_file() == (best_step == 4)  # kept only while best/ holds the same weights
    load_weights(run)
    indep = tmp_path / "indep"
    train(cohort, indep, _cfg(model="independent"), progress=False)
    assert main(["calibrate", str(indep), "--quiet"]) == 2
    assert "diffusion runs" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--bfile", "{tmp}/nope"], "not found"),
    (["--bfile", "{cohort}", "--model", "gpt"], "model must be one of"),
    (["--bfile", "{cohort}", "--transition", "blur"], "transition must be one of"),
    (["--bfile", "{cohort}", "--set", "widht=3"], "unknown key 'widht'"),
    (["--bfile", "{cohort}", "--set", "lr=fast"], "expected a float"),
    (["--bfile", "{cohort}", "--config", "huge"], "not a backbone"),
    (["--bfile", "{cohort}", "--pheno-name", "height"], "needs --pheno"),
    (["--bfile", "{cohort}", "--set", "precision=fp16"], "precision must be one of"),
    (["--vcf", "{cohort}"], "expected a .vcf or .vcf.gz file"),
    (["--vcf", "{tmp}/nope.vcf.gz"], "VCF not found"),
])
def test_train_bad_inputs(cohort: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
                          argv: list[str], message: str) -> None:
    argv = [a.format(tmp=tmp_path, cohort=cohort) for a in argv]
    assert main(["train", *argv, "--out", str(tmp_path / "run"), "--quiet"]) == 2
    assert message in capsys.readouterr().err


def test_sample_bad_inputs(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["sample", str(tmp_path), "--n", "3", "--out", str(tmp_path / "x")]) == 2
    assert "not a run folder" in capsys.readouterr().err


def test_parse_sets_types() -> None:
    train_sets, back, model = parse_sets(["lr=0.01", "max_steps=7", "width=16",
                                          "compile=false", "max_minutes=1.5"])
    assert train_sets == {"lr": 0.01, "max_steps": 7, "compile": False, "max_minutes": 1.5}
    assert back == {"width": 16} and model == {}
    with pytest.raises(ValueError, match="unknown key 'widht'"):
        parse_sets(["widht=3"])
    # a model's own field wins over the trainer's and the backbone's; a prefix names the place
    assert parse_sets(["latent_dim=8"], "wgan")[2] == {"latent_dim": 8}
    assert parse_sets(["backbone.latent_dim=8"], "wgan")[1] == {"latent_dim": 8}
    assert parse_sets(["cond_drop=0.2"], "vae")[2] == {"cond_drop": 0.2}
    assert parse_sets(["cond_drop=0.2"])[0] == {"cond_drop": 0.2}
    with pytest.raises(ValueError, match="prefix"):
        parse_sets(["optim.lr=1"])


def test_resolve_settings_layers(tmp_path: Path) -> None:
    """defaults < --config (TOML) < --set < explicit flags; bad keys and files are named."""
    toml = tmp_path / "run.toml"
    toml.write_text('[train]\ntransition = "uniform"\nlr = 0.002\nbatch_size = 8\n'
                    '[backbone]\nwidth = 48\n')
    cfg, back, model = resolve_settings(str(toml), None, ["lr=0.003"], transition=None,
                                        max_minutes=2.0)
    assert (cfg.model, cfg.transition, cfg.lr, cfg.batch_size, cfg.max_minutes) == (
        "diffusion", "uniform", 0.003, 8, 2.0)
    assert back == {"width": 48} and model == {}
    cfg, _, _ = resolve_settings(str(toml), None, [], transition="marginal")
    assert cfg.transition == "marginal"
    assert resolve_settings("cattle-50k")[0].config == "cattle-50k"
    bad = tmp_path / "bad.toml"
    bad.write_text("[trian]\nlr = 1\n")
    with pytest.raises(ValueError, match="unknown table"):
        resolve_settings(str(bad))
    with pytest.raises(FileNotFoundError):
        resolve_settings(str(tmp_path / "missing.toml"))
    with pytest.raises(ValueError, match="not a backbone"):
        resolve_settings("huge")


def test_sigterm_saves_before_exit(cohort: Path, tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    run = tmp_path / "run"
    sets = TINY_SETS + ["max_steps=100000", "eval_every=100000", "batch_size=16",
                        "val_fraction=0.25", "log_every=1"]
    cmd = [sys.executable, "-m", "genofast.cli", "train", "--bfile", str(cohort), "--out",
           str(run), "--quiet", "--device", "cpu"] + [f"--set={s}" for s in sets]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:  # wait until training steps are being logged
            log = run / "log.jsonl"
            if log.is_file() and len(log.read_text().splitlines()) >= 3:
                break
            time.sleep(0.2)
        os.kill(proc.pid, signal.SIGTERM)
        rc = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert rc == 130
    state = json.loads((run / "last" / "state.json").read_text())
    assert state["step"] >= 3
    assert json.loads(proc.stdout.read().decode().strip().splitlines()[-1])["stopped"] == "SIGTERM"


def test_ddp_two_processes_gloo(cohort: Path, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    run = tmp_path / "run"
    sets = TINY_SETS + ["max_steps=6", "eval_every=3", "eval_samples=16", "eval_steps=4",
                        "batch_size=8", "val_fraction=0.25", "warmup_steps=1", "log_every=1"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "genofast.cli", "train", "--bfile", str(cohort), "--out", str(run), "--quiet",
           "--device", "cpu"] + [f"--set={s}" for s in sets]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((run / "last" / "state.json").read_text())["step"] == 6
    losses = _losses(run)
    assert len(losses) == 6 and all(np.isfinite(losses))  # rank 0 alone logs
    evals = [json.loads(x)["step"] for x in (run / "log.jsonl").read_text().splitlines()
             if "eval" in json.loads(x)]
    assert evals == [3, 6]
    assert load_weights(run, "best")[0].n_snps == M


@pytest.mark.parametrize("transition", ["uniform", "marginal"])
def test_other_transitions_train_and_sample(cohort: Path, tmp_path: Path,
                                            transition: str) -> None:
    run = tmp_path / "run"
    train(cohort, run, _cfg(transition=transition, max_steps=2, eval_every=2), TINY,
          progress=False)
    assert json.loads((run / "config.json").read_text())["train"]["transition"] == transition
    assert main(["sample", str(run), "--n", "6", "--out", str(tmp_path / "s"), "--steps", "3",
                 "--quiet"]) == 0
    g = read_plink(tmp_path / "s").unpack()
    assert g.shape == (6, M) and bool(((g >= 0) & (g <= 2)).all())


@pytest.mark.parametrize("model, settings", [
    ("vae", {"widths": "16,8", "latent": 4}),
    ("gan", {"latent_dim": 8}),
    ("wgan", {"latent_dim": 8, "n_critic": 2}),
    ("pca-ddpm", {"hidden": "32,32", "timesteps": 20, "time_dim": 16, "cond_dim": 8}),
    ("independent", {}),
])
def test_every_model_trains_on_the_trainer_and_samples(cohort: Path, tmp_path: Path, model: str,
                                                       settings: dict) -> None:
    """Each model of the reference study (and the baseline) through the shared trainer: a few
    steps, checkpoints, reload, and the CLI sampler writes valid genotypes."""
    run = tmp_path / "run"
    summary = train(cohort, run, _cfg(model=model, max_steps=6, eval_every=6), model=settings,
                    progress=False)
    meta = json.loads((run / "config.json").read_text())
    assert meta["train"]["model"] == model and meta["model"] == {**meta["model"], **settings}
    assert (run / "best" / "ema.safetensors").is_file()
    assert summary["step"] == (0 if model == "independent" else 6)
    if model != "independent":
        assert all(np.isfinite(x if isinstance(x, float) else list(x.values())).all()
                   for x in _losses(run))
    assert main(["sample", str(run), "--n", "7", "--out", str(tmp_path / "s"), "--quiet"]) == 0
    g = read_plink(tmp_path / "s").unpack()
    assert g.shape == (7, M) and bool(((g >= 0) & (g <= 2)).all())
    assert load_weights(run)[0].n_snps == M


@pytest.mark.parametrize("model, settings", [
    ("diffusion", {}),
    ("wgan", {"latent_dim": 8, "n_critic": 2}),
    ("vae", {"widths": "16,8", "latent": 4}),
    ("pca-ddpm", {"hidden": "32,32", "timesteps": 20, "time_dim": 16, "cond_dim": 8}),
])
def test_resume_equals_uninterrupted(cohort: Path, tmp_path: Path, model: str,
                                     settings: dict) -> None:
    """Stopped at step 5 and resumed, a run has the same losses and the same model and EMA
    weights as an uninterrupted one: optimisers (both GAN players'), BatchNorm statistics and
    per-step noise come back exactly."""
    full, split = tmp_path / "full", tmp_path / "split"
    cfg = _cfg(model=model, eval_every=100)
    backbone = TINY if model == "diffusion" else None
    train(cohort, full, cfg, backbone, model=settings, progress=False)
    train(cohort, split, cfg, backbone, model=settings, progress=False, stop_step=5)
    assert json.loads((split / "last" / "state.json").read_text())["step"] == 5
    train(cohort, split, _cfg(), resume=True, progress=False)
    assert _losses(split) == _losses(full)
    for ema in (False, True):
        a = load_weights(full, "last", ema=ema)[0].state_dict()
        b = load_weights(split, "last", ema=ema)[0].state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_ddp_two_processes_wgan(cohort: Path, tmp_path: Path) -> None:
    """Two players, parameters idle on alternate steps: DDP must still sync and finish."""
    import os
    import subprocess
    import sys

    run = tmp_path / "run"
    sets = ["max_steps=6", "eval_every=6", "eval_samples=16", "batch_size=8",
            "val_fraction=0.25", "log_every=1", "latent_dim=8", "n_critic=2"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "genofast.cli", "train", "--model", "wgan", "--bfile", str(cohort), "--out",
           str(run), "--quiet", "--device", "cpu"] + [f"--set={s}" for s in sets]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((run / "last" / "state.json").read_text())["step"] == 6
    assert load_weights(run, "best")[0].n_snps == M


def test_metric_kernels_leave_torch_thread_count_alone() -> None:
    """The trainer evaluates with numba kernels between torch steps; numba's OpenMP pool must
    not raise torch's thread count (it did: OMP_NUM_THREADS=1 training ran 4x slower, two
    threads fighting for one core, after the first evaluation)."""
    import os
    import subprocess
    import sys

    code = ("import genofast, torch\n"
            "from genofast.metrics.counts import genotype_counts\n"
            "from genofast.ops import pack\n"
            "x = torch.randint(0, 3, (256, 100), dtype=torch.int8)\n"
            "genotype_counts(pack(x), 100)\n"
            "print(torch.get_num_threads())")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_NUM_THREADS"}
    env["OMP_NUM_THREADS"] = "1"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["1"]


def test_encode_cond_row_and_table_agree(tmp_path: Path) -> None:
    """--cond values and a --pheno table encode alike (continuous standardised, binary 0/1,
    categorical level index, missing NaN) and reject the same bad values."""
    specs = [{"name": "height", "kind": "continuous", "mean": 170.0, "sd": 10.0},
             {"name": "case", "kind": "binary"},
             {"name": "breed", "kind": "categorical", "levels": ["HOL", "JER"]}]
    path = tmp_path / "t.pheno"
    path.write_text("FID IID height case breed\na a 185 1 JER\nb b NA 0 HOL\n")
    table = encode_cond_table(specs, read_pheno(path))
    np.testing.assert_array_equal(table, np.array([[1.5, 1, 1], [np.nan, 0, 0]], np.float32))
    np.testing.assert_array_equal(
        encode_cond(specs, {"height": "185", "case": "1", "breed": "JER"}), table[0])
    np.testing.assert_array_equal(encode_cond(specs, {"case": "0"}), [np.nan, 0, np.nan])
    for bad, match in (({"case": "2"}, "binary"), ({"breed": "ANG"}, "unknown level"),
                       ({"height": "tall"}, "expected a number"), ({"breed": ""}, "no value"),
                       ({"weight": "3"}, "unknown trait")):
        with pytest.raises(ValueError, match=match):
            encode_cond(specs, bad)
    for body, match in (("case\na a 2\n", "binary"), ("breed\na a ANG\n", "unknown level")):
        path.write_text("FID IID " + body)
        with pytest.raises(ValueError, match=match):
            encode_cond_table(specs, read_pheno(path))


def test_precision_picks_the_autocast() -> None:
    cpu = torch.device("cpu")
    a = torch.ones(2, 2)
    with autocast(cpu, "bf16"):
        assert (a @ a).dtype == torch.bfloat16
    with autocast(cpu, "fp32"):
        assert (a @ a).dtype == torch.float32
    assert uses_bf16(torch.device("cuda"), "auto") and not uses_bf16(torch.device("cuda"), "fp32")
    with pytest.raises(ValueError, match="precision must be one of"):
        autocast(cpu, "fp16")
    # runs saved before the setting: float32 on the CPU, bf16 on CUDA, as they were trained
    assert run_precision({"train": {}}, cpu) == "fp32"
    assert run_precision({"train": {}}, torch.device("cuda")) == "auto"
    assert run_precision({"train": {"precision": "bf16"}}, cpu) == "bf16"


def test_bf16_training_step_tracks_fp32(cohort: Path, tmp_path: Path) -> None:
    """Same init, batch and noise: the first steps' losses under bf16 autocast are within
    bfloat16 rounding of float32's, and the saved weights stay float32."""
    losses = {}
    for p in ("fp32", "bf16"):
        train(cohort, tmp_path / p, _cfg(precision=p, max_steps=3, eval_every=100), TINY,
              progress=False)
        losses[p] = _losses(tmp_path / p)
        w = load_weights(tmp_path / p, "last")[0].state_dict()
        assert all(v.dtype == torch.float32 for v in w.values() if v.is_floating_point())
        assert json.loads((tmp_path / p / "config.json").read_text())["train"]["precision"] == p
    assert losses["bf16"] != losses["fp32"]  # the autocast took effect
    np.testing.assert_allclose(losses["bf16"], losses["fp32"], rtol=2e-2)


def test_phased_vcf_trains_on_haplotypes_and_samples_people(
    phased: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """`train --vcf`: the split keeps a person's two haplotypes together, a person's traits
    condition both; `sample` writes people who are pairs of sampled haplotypes, the same cohort
    whatever the batch size, and with --vcf their haplotypes as a phased VCF (an unphased run
    refuses --vcf); a phased run does not resume on a PLINK fileset."""
    run = tmp_path / "run"
    sets = TINY_SETS + ["max_steps=4", "eval_every=4", "eval_samples=16", "eval_steps=4",
                        "batch_size=16", "val_fraction=0.25", "warmup_steps=1"]
    argv = ["train", "--vcf", str(phased), "--pheno", str(phased.parent / "phased.pheno"),
            "--pheno-name", "height", "--out", str(run), "--quiet", "--device", "cpu"]
    assert main(argv + [f"--set={s}" for s in sets]) == 0
    meta = json.loads((run / "config.json").read_text())
    assert meta["phased"] is True and meta["n_snps"] == M
    split = json.loads((run / "split.json").read_text())
    assert split["n"] == 32 and len(split["validation"]) == 2 * 8
    assert sorted(split["train"] + split["validation"]) == list(range(64))
    for rows, ids in ((split["train"], split["train_ids"]),
                      (split["validation"], split["validation_ids"])):
        rows = np.asarray(rows)
        assert (rows[0::2] % 2 == 0).all() and (rows[1::2] == rows[0::2] + 1).all()
        assert [i for _, i in ids] == [f"p{r // 2}" for r in rows[0::2]]

    common = [str(run), "--n", "10", "--steps", "5", "--seed", "3", "--quiet",
              "--cond", "height=180"]
    assert main(["sample", *common, "--out", str(tmp_path / "a"), "--batch-size", "4",
                 "--vcf"]) == 0
    assert main(["sample", *common, "--out", str(tmp_path / "b"), "--batch-size", "10"]) == 0
    a = read_plink(tmp_path / "a").unpack()
    assert a.shape == (10, M) and torch.equal(a, read_plink(tmp_path / "b").unpack())
    assert int(a.min()) >= 0 and int(a.max()) <= 2
    assert len(read_pheno(tmp_path / "a.pheno").iid) == 10
    model, meta = load_weights(run, "best")
    c = torch.from_numpy(encode_cond(meta["traits"], {"height": "180"})).expand(20, -1)
    with torch.no_grad(), autocast(torch.device("cpu"), run_precision(meta, torch.device("cpu"))):
        h = model.sample(20, c, steps=5, seed=3, row_offset=0)
    assert torch.equal(add_haplotypes(h), a)
    written = read_vcf(tmp_path / "a.vcf.gz")  # --vcf: the haplotypes behind the people
    assert torch.equal(written.haplotypes.unpack(), h.clamp(max=1))
    assert list(written.people.iid) == [f"syn{i}" for i in range(10)]
    assert sorted(p.name for p in tmp_path.glob("a.*")) == [
        "a.bed", "a.bim", "a.fam", "a.pheno", "a.vcf.gz"]
    unphased = tmp_path / "unphased"
    shutil.copytree(run, unphased)
    meta_path = unphased / "config.json"
    meta_path.write_text(json.dumps({**json.loads(meta_path.read_text()), "phased": False}))
    assert main(["sample", str(unphased), "--n", "4", "--out", str(tmp_path / "u"), "--vcf",
                 "--quiet"]) == 2
    assert "train on a phased VCF" in capsys.readouterr().err
    assert not list(tmp_path.glob("u.*"))
    g = tmp_path / "g"
    write_plink(g, a, read_plink(tmp_path / "a").snps)
    with pytest.raises(ValueError, match="trained on a phased VCF"):
        Trainer(g, run, resume=True, progress=False)


def test_phased_resume_equals_uninterrupted(phased: Path, tmp_path: Path) -> None:
    full, split = tmp_path / "full", tmp_path / "split"
    pheno = {"pheno": phased.parent / "phased.pheno", "pheno_names": ["height"]}
    train(phased, full, _cfg(eval_every=100), TINY, progress=False, **pheno)
    train(phased, split, _cfg(eval_every=100), TINY, progress=False, stop_step=5, **pheno)
    train(phased, split, _cfg(), resume=True, progress=False)
    assert _losses(split) == _losses(full)


def test_add_haplotypes_pairs_rows_and_reads_a_stray_2_as_alt() -> None:
    h = torch.tensor([[0, 1, 1, 2], [0, 0, 1, 1], [1, 2, 0, 0], [1, 0, 0, 1]], dtype=torch.int8)
    assert add_haplotypes(h).tolist() == [[0, 1, 2, 2], [2, 1, 0, 1]]
