"""Phenotype and covariate tables in PLINK style, and their join to a cohort's samples.

Accepted files (whitespace separated, one individual per line):

* with a header ``FID IID name1 name2 ...`` (``#FID`` too, any case), the usual form;
* without a header, ``FID IID value...`` with columns named ``PHENO1``, ``PHENO2``, ... — accepted
  only when it is unambiguous: every field after the first two on the first line is a number or
  a missing marker. Otherwise the first line could be a header with unusual names or a row with
  categorical values, and the reader asks for a ``FID IID ...`` header instead.

Missing values: ``-9``, ``NA``, ``nan`` (any case), ``.`` and empty. A column whose present values
are all numbers becomes a float64 column of ``values`` (NaN missing); any other column is
categorical (for covariates like population) and kept as strings in ``categorical`` ("" missing).
The `.fam` sixth column is available through `fam_phenotype`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from genofast.io.tables import PathLike, SampleTable

MISSING = frozenset({"-9", "na", "nan", ".", ""})


def _is_missing(tok: str) -> bool:
    return tok.lower() in MISSING


def _is_number(tok: str) -> bool:
    try:
        float(tok)
    except ValueError:
        return False
    return True


@dataclass(eq=False)
class Phenotypes:
    """Per-individual traits: numeric columns in ``values`` [N, K] (float64, NaN missing) named
    by ``names``; non-numeric columns as str arrays in ``categorical`` ("" missing)."""

    fid: np.ndarray
    iid: np.ndarray
    names: list[str]
    values: np.ndarray
    categorical: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.iid)

    def column(self, name: str) -> np.ndarray:
        """One column by name (float64 if numeric, str if categorical)."""
        if name in self.categorical:
            return self.categorical[name]
        try:
            return self.values[:, self.names.index(name)]
        except ValueError:
            raise KeyError(f"no phenotype column {name!r}; have "
                           f"{', '.join(self.names + list(self.categorical))}") from None

    def subset(self, idx: np.ndarray) -> Phenotypes:
        return Phenotypes(self.fid[idx], self.iid[idx], list(self.names), self.values[idx],
                          {k: v[idx] for k, v in self.categorical.items()})


def _format_ids(pairs: list[tuple[str, str]], limit: int = 5) -> str:
    shown = ", ".join(f"{f} {i}" for f, i in pairs[:limit])
    more = f" (and {len(pairs) - limit} more)" if len(pairs) > limit else ""
    return shown + more


def read_pheno(
    path: PathLike,
    samples: SampleTable | None = None,
    *,
    allow_unknown: bool = False,
) -> Phenotypes:
    """Read a phenotype/covariate file; with ``samples``, join it to them on (FID, IID).

    Joined result: one row per sample in sample order, NaN/"" for samples absent from the file.
    Raises ValueError naming the ids for duplicated (FID, IID) in the file or in ``samples``, and
    for ids of the file that are not among ``samples`` (unless ``allow_unknown``).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"phenotype file not found: {path}")
    rows = [(i, ln.split()) for i, ln in enumerate(path.read_text().splitlines(), 1)]
    rows = [(i, toks) for i, toks in rows if toks]
    if not rows:
        raise ValueError(f"{path}: empty phenotype file")
    first_no, first = rows[0]
    head = [t.lstrip("#").upper() for t in first[:2]]
    if head == ["FID", "IID"]:
        names = first[2:]
        body = rows[1:]
        if len(set(names)) != len(names):
            raise ValueError(f"{path}: duplicated column names in the header: {' '.join(names)}")
    elif len(first) >= 3 and all(_is_missing(t) or _is_number(t) for t in first[2:]):
        names = [f"PHENO{k}" for k in range(1, len(first) - 1)]
        body = rows
    else:
        raise ValueError(
            f"{path}: line {first_no} is neither a 'FID IID name...' header nor a headerless row "
            f"of numbers; add a header line starting with FID IID"
        )
    if not names:
        raise ValueError(f"{path}: no phenotype columns after FID IID")
    width = len(names) + 2
    for lineno, toks in body:
        if len(toks) != width:
            raise ValueError(f"{path}: line {lineno} has {len(toks)} columns, expected {width} "
                             f"(FID IID {' '.join(names)})")
    table = np.array([toks for _, toks in body], dtype=str).reshape(len(body), width)
    fid, iid = table[:, 0], table[:, 1]

    keys = list(zip(fid.tolist(), iid.tolist(), strict=True))
    if len(set(keys)) != len(keys):
        seen: set[tuple[str, str]] = set()
        dups = [k for k in keys if k in seen or seen.add(k)]
        raise ValueError(f"{path}: duplicated (FID, IID): {_format_ids(list(dict.fromkeys(dups)))}")

    num_names: list[str] = []
    num_cols: list[np.ndarray] = []
    cats: dict[str, np.ndarray] = {}
    for k, name in enumerate(names):
        col = table[:, k + 2]
        miss = np.array([_is_missing(t) for t in col], dtype=bool)
        if all(_is_number(t) for t in col[~miss]):
            vals = np.full(len(col), np.nan)
            vals[~miss] = col[~miss].astype(np.float64)
            num_names.append(name)
            num_cols.append(vals)
        else:
            cats[name] = np.where(miss, "", col)
    values = np.stack(num_cols, axis=1) if num_cols else np.empty((len(body), 0))
    ph = Phenotypes(fid, iid, num_names, values, cats)
    return ph if samples is None else join(ph, samples, allow_unknown=allow_unknown, where=path)


def join(
    pheno: Phenotypes,
    samples: SampleTable,
    *,
    allow_unknown: bool = False,
    where: PathLike | str = "phenotypes",
) -> Phenotypes:
    """Align ``pheno`` to ``samples`` on (FID, IID): one row per sample, NaN/"" where absent."""
    skeys = list(zip(samples.fid.tolist(), samples.iid.tolist(), strict=True))
    pos = {k: i for i, k in enumerate(skeys)}
    if len(pos) != len(skeys):
        seen: set[tuple[str, str]] = set()
        dups = [k for k in skeys if k in seen or seen.add(k)]
        dups = list(dict.fromkeys(dups))
        raise ValueError(f"samples: duplicated (FID, IID): {_format_ids(dups)}")
    pkeys = list(zip(pheno.fid.tolist(), pheno.iid.tolist(), strict=True))
    unknown = [k for k in pkeys if k not in pos]
    if unknown and not allow_unknown:
        raise ValueError(f"{where}: {len(unknown)} (FID, IID) not among the {len(skeys)} "
                         f"samples: {_format_ids(unknown)}")
    src = np.array([i for i, k in enumerate(pkeys) if k in pos], dtype=np.int64)
    dst = np.array([pos[pkeys[i]] for i in src], dtype=np.int64)
    n = len(skeys)
    values = np.full((n, pheno.values.shape[1]), np.nan)
    values[dst] = pheno.values[src]
    cats = {}
    for name, col in pheno.categorical.items():
        out = np.full(n, "", dtype=col.dtype if col.dtype.kind == "U" else str)
        out[dst] = col[src]
        cats[name] = out
    return Phenotypes(samples.fid.copy(), samples.iid.copy(), list(pheno.names), values, cats)


def fam_phenotype(samples: SampleTable, name: str = "PHENO") -> Phenotypes:
    """The `.fam` sixth column as a one-column Phenotypes (NaN missing, as parsed by read_fam)."""
    return Phenotypes(samples.fid.copy(), samples.iid.copy(), [name],
                      samples.phenotype.reshape(-1, 1).copy())


def write_pheno(
    path: PathLike,
    fid: np.ndarray | list[str],
    iid: np.ndarray | list[str],
    names: list[str],
    values: np.ndarray,
    *,
    missing: str = "NA",
) -> None:
    """Write ``FID IID names...`` then one line per individual; NaN as ``missing``. ``values`` is
    [N, K] numeric (floats written in shortest round-trip form) or any array of strings."""
    values = np.asarray(values)
    if values.ndim == 1:
        values = values.reshape(-1, 1)
    fid, iid = list(map(str, fid)), list(map(str, iid))
    if values.shape != (len(iid), len(names)) or len(fid) != len(iid):
        raise ValueError(f"write_pheno: values {values.shape} do not match {len(iid)} ids x "
                         f"{len(names)} names")

    def fmt(v: object) -> str:
        if isinstance(v, (float, np.floating)):
            if np.isnan(v):
                return missing
            return str(int(v)) if float(v).is_integer() and abs(v) < 1e15 else repr(float(v))
        s = str(v)
        return s if s else missing

    with open(path, "w") as f:
        f.write(" ".join(["FID", "IID", *names]) + "\n")
        for a, b, row in zip(fid, iid, values.tolist(), strict=True):
            f.write(" ".join([a, b, *(fmt(v) for v in row)]) + "\n")
