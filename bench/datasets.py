"""The standard benchmark dataset: a realistic Holstein cohort of 20,000 cows x 50,161 SNPs.

Simulated on demand by `genofast simulate cattle` (stdpopsim HolsteinFriesian_1M13 founders and a
dairy pedigree) on the real Holstein 50k panel (``../shared``, never copied into the repo), with
one trait ``fat`` (h2 0.4, 1,000 causal SNPs, a DGAT1-like QTL on BTA14 explaining 10 % of the
phenotypic variance). Files go to ``$GENOFAST_CACHE`` (default ``~/.cache/genofast/bench``) and
are reused when present: the PREFIX.json written last marks a complete fileset and records the
parameters, which must match. Importing this module does nothing heavy.

    from datasets import standard_cattle   # with bench/ on sys.path (pytest rootdir conftest)
    prefix = standard_cattle()             # Path: prefix.bed/.bim/.fam/.pheno/.json ...

Generating it takes some minutes (the coalescent of 29 autosomes; see docs/simulate.md).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PANEL_RELATIVE = Path("shared/data/real/holstein50k_summary/holstein50k_alt_allele_freq.tsv")

STANDARD = {
    "name": "holstein20k_v1",
    "n_individuals": 20_000,
    "seed": 20_260_001,
    "chromosomes": "1-29",
    "traits": ["name=fat,h2=0.4,n_causal=1000,qtl=14:0.1"],
}
N_SNPS = 50_161


def cache_dir() -> Path:
    """``$GENOFAST_CACHE`` or ``~/.cache/genofast/bench`` (created)."""
    root = os.environ.get("GENOFAST_CACHE")
    path = Path(root) if root else Path.home() / ".cache" / "genofast" / "bench"
    path.mkdir(parents=True, exist_ok=True)
    return path


def holstein_panel() -> Path | None:
    """The real Holstein 50k panel TSV (``$GENOFAST_HOLSTEIN_PANEL``, else ``../shared``)."""
    env = os.environ.get("GENOFAST_HOLSTEIN_PANEL")
    path = Path(env) if env else REPO.parent / PANEL_RELATIVE
    return path if path.is_file() else None


def _complete(prefix: Path) -> bool:
    meta_path = prefix.with_name(prefix.name + ".json")
    if not meta_path.is_file():
        return False
    try:
        meta = json.loads(meta_path.read_text())
    except ValueError:
        return False
    files = [prefix.with_name(name) for name in meta.get("files", {}).values()]
    return (meta.get("seed") == STANDARD["seed"]
            and meta.get("n_individuals") == STANDARD["n_individuals"]
            and meta.get("n_snps") == N_SNPS
            and bool(files) and all(f.is_file() for f in files))


def standard_cattle(cache: Path | None = None, *, workers: int | None = None,
                    progress: bool = True) -> Path:
    """PLINK prefix of the standard benchmark cohort, simulating it first if needed.

    Raises FileNotFoundError when the real Holstein panel is not available (benchmarks skip).
    Concurrent callers wait on a lock file rather than simulating twice.
    """
    root = cache_dir() if cache is None else Path(cache)
    root.mkdir(parents=True, exist_ok=True)
    prefix = root / STANDARD["name"]
    if _complete(prefix):
        return prefix
    panel = holstein_panel()
    if panel is None:
        raise FileNotFoundError("the real Holstein 50k panel is not available "
                                f"(../{PANEL_RELATIVE} or $GENOFAST_HOLSTEIN_PANEL)")
    import fcntl

    with open(root / f".{STANDARD['name']}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _complete(prefix):
            return prefix
        from genofast.simulate.cattle import simulate_cattle

        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
        try:
            res = simulate_cattle(tmp / STANDARD["name"], STANDARD["n_individuals"],
                                  chromosomes=STANDARD["chromosomes"], panel=panel,
                                  seed=STANDARD["seed"], traits=list(STANDARD["traits"]),
                                  workers=workers, progress=progress)
            names = list(res.files.values())
            # the .json last: its presence marks a complete fileset
            for p in sorted(names, key=lambda p: p.suffix == ".json"):
                os.replace(p, root / p.name)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return prefix


if __name__ == "__main__":
    print(standard_cattle())
