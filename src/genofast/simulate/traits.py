"""Additive polygenic traits with a chosen heritability, optionally with one major QTL.

y = g_poly + g_qtl + e. ``n_causal`` panel SNPs (default 1,000, or a tenth of the eligible SNPs
if fewer; MAF >= ``min_maf`` in the cohort) get normal effects per copy of allele_1; the
polygenic value is scaled so that its variance *in the simulated cohort* is ``h2 - qtl_share``.
The QTL (one SNP with MAF >= 0.1 nearest the requested position, for cattle chromosome 14 by
default at DGAT1, the classic major gene for milk fat content) gets variance ``qtl_share``, and
the residual e ~ N(0, 1 - h2). So var(y) ~ 1 and the realised heritability is h2 up to the
sampling noise of e. The trait is centred: y = intercept + sum of effects x genotypes + e, with
the intercept and effects saved.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

# Default QTL positions (1-based bp) by species label and chromosome: BTA14 DGAT1 on ARS-UCD1.2
# (the assembly of stdpopsim's BosTau genome) at about 0.61 Mb.
DEFAULT_QTL_POSITION = {("cattle", "14"): 611_000}
DEFAULT_N_CAUSAL = 1000


@dataclass
class TraitSpec:
    """One simulated trait (see the module docstring)."""

    name: str = "trait"
    h2: float = 0.3
    n_causal: int | None = None  # None: 1,000, or a tenth of the eligible SNPs if fewer
    qtl_chromosome: str | None = None
    qtl_position: int | None = None
    qtl_share: float = 0.0
    min_maf: float = 0.01

    def validate(self) -> None:
        if not self.name or any(ch.isspace() for ch in self.name):
            raise ValueError(f"trait name must be a non-empty word, got {self.name!r}")
        if self.name.upper() in ("FID", "IID"):
            raise ValueError(f"trait name {self.name!r} is reserved")
        if not 0.0 <= self.h2 <= 1.0:
            raise ValueError(f"trait {self.name}: h2 must be in 0-1, got {self.h2}")
        if not 0.0 <= self.qtl_share <= self.h2:
            raise ValueError(f"trait {self.name}: QTL share ({self.qtl_share}) must be in "
                             f"0-h2 ({self.h2})")
        if self.qtl_share > 0 and self.qtl_chromosome is None:
            raise ValueError(f"trait {self.name}: a QTL share needs a QTL chromosome")
        if self.n_causal is not None and self.n_causal < 0:
            raise ValueError(f"trait {self.name}: n_causal must be >= 0")
        if self.n_causal == 0 and self.h2 - self.qtl_share > 1e-12:
            raise ValueError(f"trait {self.name}: polygenic variance h2 - QTL share > 0 needs "
                             f"n_causal >= 1")
        if not 0.0 <= self.min_maf < 0.5:
            raise ValueError(f"trait {self.name}: min_maf must be in 0-0.5")

    def as_dict(self) -> dict:
        return asdict(self)


def parse_trait(spec: str, index: int = 0) -> TraitSpec:
    """``"name=fat,h2=0.4,n_causal=500,qtl=14:0.2"`` (or ``qtl=14:611000:0.2``) -> TraitSpec.

    Keys: name, h2, n_causal (or causal), qtl (CHR:SHARE or CHR:POS:SHARE), min_maf. Missing keys
    take the defaults; the default name is ``trait`` (``trait2``.. for later traits).
    """
    t = TraitSpec(name="trait" if index == 0 else f"trait{index + 1}")
    if spec.strip().lower() in ("", "default"):
        t.validate()
        return t
    for item in spec.split(","):
        if "=" not in item:
            raise ValueError(f"bad trait spec {spec!r}: {item!r} is not key=value "
                             f"(keys: name, h2, n_causal, qtl, min_maf)")
        key, val = (s.strip() for s in item.split("=", 1))
        key = key.lower()
        try:
            if key == "name":
                t.name = val
            elif key == "h2":
                t.h2 = float(val)
            elif key in ("n_causal", "causal", "ncausal"):
                t.n_causal = int(val)
            elif key == "min_maf":
                t.min_maf = float(val)
            elif key == "qtl":
                parts = val.split(":")
                if len(parts) == 2:
                    t.qtl_chromosome, t.qtl_share = parts[0], float(parts[1])
                elif len(parts) == 3:
                    t.qtl_chromosome = parts[0]
                    t.qtl_position, t.qtl_share = int(parts[1]), float(parts[2])
                else:
                    raise ValueError("expected CHR:SHARE or CHR:POS:SHARE")
            else:
                raise ValueError(f"unknown key {key!r} (keys: name, h2, n_causal, qtl, min_maf)")
        except ValueError as err:
            raise ValueError(f"bad trait spec {spec!r}: {key}: {err}") from None
    t.validate()
    return t


@dataclass
class TraitResult:
    """Simulated phenotypes [N, T] and, per trait, the causal SNPs and realised statistics."""

    names: list[str]
    values: np.ndarray
    causal: list[dict]  # rows: trait, snp index, kind, effect
    intercept: list[float]
    summary: list[dict]


def pick_causal(specs: list[TraitSpec], chromosome: np.ndarray, position: np.ndarray,
                freq: np.ndarray, label: str, rng: np.random.Generator) -> list[dict]:
    """Choose each trait's causal SNPs (indices into the panel) and raw effects."""
    maf = np.minimum(freq, 1.0 - freq)
    plans = []
    for t in specs:
        qtl = -1
        if t.qtl_share > 0:
            qtl = _qtl_snp(t, chromosome, position, maf, label)
        eligible = np.flatnonzero((maf >= t.min_maf) & (np.arange(len(maf)) != qtl))
        n_causal = t.n_causal
        if n_causal is None:
            n_causal = min(DEFAULT_N_CAUSAL, max(1, len(eligible) // 10))
        if n_causal > len(eligible):
            raise ValueError(f"trait {t.name}: {n_causal} causal SNPs asked, only "
                             f"{len(eligible)} panel SNPs have MAF >= {t.min_maf}")
        idx = np.sort(rng.choice(eligible, size=n_causal, replace=False))
        effects = rng.standard_normal(n_causal)
        sign = 1.0 if rng.random() < 0.5 else -1.0
        plans.append({"spec": t, "idx": idx, "effects": effects, "qtl": qtl, "qtl_sign": sign})
    return plans


def _qtl_snp(t: TraitSpec, chromosome: np.ndarray, position: np.ndarray, maf: np.ndarray,
             label: str) -> int:
    on = np.flatnonzero(chromosome == t.qtl_chromosome)
    if len(on) == 0:
        raise ValueError(f"trait {t.name}: QTL chromosome {t.qtl_chromosome} is not simulated")
    pos = t.qtl_position
    if pos is None:
        pos = DEFAULT_QTL_POSITION.get((label, str(t.qtl_chromosome)))
    if pos is None:
        pos = int(np.median(position[on]))
    order = on[np.argsort(np.abs(position[on] - pos), kind="stable")]
    for floor in (0.1, 0.05, 0.01):
        good = order[maf[order] >= floor]
        if len(good):
            return int(good[0])
    raise ValueError(f"trait {t.name}: no polymorphic SNP on chromosome {t.qtl_chromosome} "
                     f"for the QTL")


def simulate_phenotypes(plans: list[dict], causal_genotypes, n: int,
                        rng: np.random.Generator) -> TraitResult:
    """Phenotypes of ``n`` individuals from the plans of `pick_causal`.

    ``causal_genotypes(indices)`` returns int8 [n, len(indices)] genotypes (copies of allele_1)
    of the cohort for those panel SNPs.
    """
    names, cols, causal, intercepts, summary = [], [], [], [], []
    for plan in plans:
        t: TraitSpec = plan["spec"]
        idx, beta = plan["idx"], plan["effects"]
        g_poly = np.zeros(n)
        if len(idx):
            x = causal_genotypes(idx)
            for r in range(0, n, 8192):
                g_poly[r:r + 8192] = x[r:r + 8192].astype(np.float64) @ beta
            del x
        v_poly = t.h2 - t.qtl_share
        sd = g_poly.std()
        scale = np.sqrt(v_poly) / sd if sd > 0 and v_poly > 0 else 0.0
        beta = beta * scale
        g = g_poly * scale
        rows = [{"trait": t.name, "snp": int(j), "kind": "polygenic", "effect": float(b)}
                for j, b in zip(idx, beta, strict=True)]
        if plan["qtl"] >= 0:
            xq = causal_genotypes(np.array([plan["qtl"]]))[:, 0].astype(np.float64)
            sq = xq.std()
            a = plan["qtl_sign"] * np.sqrt(t.qtl_share) / sq if sq > 0 else 0.0
            g = g + a * xq
            rows.append({"trait": t.name, "snp": int(plan["qtl"]), "kind": "qtl",
                         "effect": float(a)})
        e = rng.standard_normal(n) * np.sqrt(max(0.0, 1.0 - t.h2))
        intercept = -float(g.mean())
        y = g + intercept + e
        names.append(t.name)
        cols.append(y)
        causal.extend(rows)
        intercepts.append(intercept)
        var_y = float(y.var())
        summary.append({
            **t.as_dict(),
            "n_causal": len(idx),
            "intercept": intercept,
            "realised_h2": float(g.var() / var_y) if var_y > 0 else 0.0,
            "phenotype_variance": var_y,
            "qtl_snp": int(plan["qtl"]) if plan["qtl"] >= 0 else None,
        })
    values = np.stack(cols, axis=1) if cols else np.zeros((0, 0))
    return TraitResult(names, values, causal, intercepts, summary)
