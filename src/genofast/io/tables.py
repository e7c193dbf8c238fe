"""PLINK's text tables: `.bim` (one SNP a line) and `.fam` (one individual a line), as numpy
columns in `SnpTable` and `SampleTable`, and the row selections that `read_plink` and the tables
share.

Reading tokenises plain-ASCII files with numpy (no Python string per token), writing lays the
columns' bytes side by side; anything unusual (non-ASCII ids, odd whitespace, signs, huge numbers)
goes through a plain `str.split` path with the same results and the same errors, which name the
file and the line.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

#: What ``snps=`` and ``samples=`` accept: a slice, an index array (ints, negatives count from the
#: end, repeats allowed) or a boolean mask over the file's rows.
Selection = slice | Sequence[int] | Sequence[bool] | np.ndarray | torch.Tensor | None
PathLike = str | os.PathLike

_MISSING_PHENO = {"-9", "na", "nan", "", "."}


# ---------------------------------------------------------------------------------------------
# selections
# ---------------------------------------------------------------------------------------------


def as_index(sel: Selection, n: int, what: str) -> np.ndarray | None:
    """Normalise a selection over ``n`` rows to an int64 index array, or None for "all rows"."""
    if sel is None:
        return None
    if isinstance(sel, slice):
        idx = np.arange(n, dtype=np.int64)[sel]
        return None if len(idx) == n and (n == 0 or (idx[0] == 0 and idx[-1] == n - 1)) else idx
    if isinstance(sel, torch.Tensor):
        sel = sel.detach().cpu().numpy()
    arr = np.asarray(sel)
    if arr.ndim != 1:
        raise ValueError(f"{what}: expected a slice, a 1-D index array or a boolean mask, "
                         f"got an array of shape {arr.shape}")
    if arr.dtype == np.bool_:
        if len(arr) != n:
            raise ValueError(f"{what}: boolean mask has {len(arr)} entries, expected {n}")
        return np.flatnonzero(arr).astype(np.int64)
    if arr.size == 0:
        return np.empty(0, dtype=np.int64)
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{what}: expected integer indices or a boolean mask, got {arr.dtype}")
    idx = arr.astype(np.int64)
    bad = (idx < -n) | (idx >= n)
    if bad.any():
        raise IndexError(f"{what}: index {int(idx[bad][0])} out of range for {n} rows")
    return np.where(idx < 0, idx + n, idx)


def _take(arr: np.ndarray, idx: np.ndarray | None) -> np.ndarray:
    return arr.copy() if idx is None else arr[idx]


# ---------------------------------------------------------------------------------------------
# tables
# ---------------------------------------------------------------------------------------------


@dataclass(eq=False)
class SnpTable:
    """The `.bim` columns as numpy arrays, one entry per SNP."""

    chromosome: np.ndarray  # str
    sid: np.ndarray  # str
    cm_position: np.ndarray  # float64
    bp_position: np.ndarray  # int64
    allele_1: np.ndarray  # str, the counted allele (code = copies of allele_1)
    allele_2: np.ndarray  # str

    def __post_init__(self) -> None:
        self.chromosome = np.asarray(self.chromosome, dtype=str)
        self.sid = np.asarray(self.sid, dtype=str)
        self.cm_position = np.asarray(self.cm_position, dtype=np.float64)
        self.bp_position = np.asarray(self.bp_position, dtype=np.int64)
        self.allele_1 = np.asarray(self.allele_1, dtype=str)
        self.allele_2 = np.asarray(self.allele_2, dtype=str)
        n = len(self.sid)
        for name in ("chromosome", "cm_position", "bp_position", "allele_1", "allele_2"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"SnpTable: column {name} has {len(getattr(self, name))} "
                                 f"entries, sid has {n}")

    def __len__(self) -> int:
        return len(self.sid)

    def __getitem__(self, sel: Selection) -> SnpTable:
        idx = as_index(sel, len(self), "SnpTable")
        return SnpTable(*(_take(getattr(self, c), idx) for c in self.columns()))

    @staticmethod
    def columns() -> tuple[str, ...]:
        return ("chromosome", "sid", "cm_position", "bp_position", "allele_1", "allele_2")

    @classmethod
    def synthetic(cls, n_snps: int, chromosome: str = "1") -> SnpTable:
        """A placeholder panel (``snp0``.., bp 1.., alleles A/G) for data without a `.bim`."""
        return cls(
            chromosome=np.full(n_snps, chromosome),
            sid=np.array([f"snp{j}" for j in range(n_snps)], dtype=str),
            cm_position=np.zeros(n_snps),
            bp_position=np.arange(1, n_snps + 1, dtype=np.int64),
            allele_1=np.full(n_snps, "A"),
            allele_2=np.full(n_snps, "G"),
        )

    def chromosome_names(self) -> list[str]:
        """Distinct chromosome names in order of first appearance."""
        _, first = np.unique(self.chromosome, return_index=True)
        return [str(self.chromosome[i]) for i in np.sort(first)]


@dataclass(eq=False)
class SampleTable:
    """The `.fam` columns as numpy arrays, one entry per individual.

    ``phenotype`` is float64 with NaN for missing (-9, NA, non-numeric, and 0 when the column is
    case/control-coded, PLINK 1's rule); ``phenotype_raw`` keeps the text so that a fileset written
    back carries the column unchanged.
    """

    fid: np.ndarray  # str
    iid: np.ndarray  # str
    father: np.ndarray  # str
    mother: np.ndarray  # str
    sex: np.ndarray  # int64: 1 male, 2 female, 0 unknown
    phenotype: np.ndarray  # float64, NaN missing
    phenotype_raw: np.ndarray | None = field(default=None)  # str, as in the file

    def __post_init__(self) -> None:
        self.fid = np.asarray(self.fid, dtype=str)
        self.iid = np.asarray(self.iid, dtype=str)
        self.father = np.asarray(self.father, dtype=str)
        self.mother = np.asarray(self.mother, dtype=str)
        self.sex = np.asarray(self.sex, dtype=np.int64)
        self.phenotype = np.asarray(self.phenotype, dtype=np.float64)
        if self.phenotype_raw is None:
            self.phenotype_raw = np.array(
                ["-9" if math.isnan(v) else repr(float(v)) for v in self.phenotype], dtype=str
            ).reshape(-1)
        else:
            self.phenotype_raw = np.asarray(self.phenotype_raw, dtype=str)
        n = len(self.iid)
        for name in ("fid", "father", "mother", "sex", "phenotype", "phenotype_raw"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"SampleTable: column {name} has {len(getattr(self, name))} "
                                 f"entries, iid has {n}")

    def __len__(self) -> int:
        return len(self.iid)

    def __getitem__(self, sel: Selection) -> SampleTable:
        idx = as_index(sel, len(self), "SampleTable")
        return SampleTable(*(_take(getattr(self, c), idx) for c in self.columns()))

    @staticmethod
    def columns() -> tuple[str, ...]:
        return ("fid", "iid", "father", "mother", "sex", "phenotype", "phenotype_raw")

    @classmethod
    def from_iids(cls, iids: Iterable[str], fid: Iterable[str] | None = None) -> SampleTable:
        """Unrelated individuals with unknown sex and phenotype; FID = IID unless given."""
        iid = np.asarray(list(iids), dtype=str).reshape(-1)
        n = len(iid)
        return cls(
            fid=iid.copy() if fid is None else np.asarray(list(fid), dtype=str),
            iid=iid,
            father=np.full(n, "0"),
            mother=np.full(n, "0"),
            sex=np.zeros(n, dtype=np.int64),
            phenotype=np.full(n, np.nan),
            phenotype_raw=np.full(n, "-9"),
        )

    @classmethod
    def default(cls, n: int) -> SampleTable:
        """``ind0``, ``ind1``, ... for synthetic cohorts."""
        return cls.from_iids(f"ind{i}" for i in range(n))


# ---------------------------------------------------------------------------------------------
# .bim / .fam
# ---------------------------------------------------------------------------------------------


def _read_table(path: PathLike, n_cols: int, kind: str) -> list[_Column]:
    """Whitespace table -> its ``n_cols`` columns; errors name the file and line.

    Plain-ASCII text (printable bytes, spaces, tabs, LF/CRLF line ends) is tokenised with numpy
    and never becomes Python strings; anything else goes through ``str.split`` (`_split_table`).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{kind} file not found: {path}")
    data = path.read_bytes()
    cols = _ascii_table(data, n_cols) if _plain_ascii(data) else None
    if cols is None:
        return [_Column(c) for c in _split_table(path.read_text(), path, n_cols, kind)]
    if isinstance(cols, str):  # some line has the wrong token count: `_split_table` names it
        _split_table(cols, path, n_cols, kind)
        raise AssertionError(f"{path}: no bad line found")  # pragma: no cover, unreachable
    return cols


_PLAIN_BYTES = bytes(range(32, 127)) + b"\t\n\r"


def _plain_ascii(data: bytes) -> bool:
    """True when ``data`` has only printable ASCII, spaces, tabs, LF and CR as part of CRLF or as
    the final byte: whitespace and line ends then mean the same to bytes and to ``str.split``."""
    if data.translate(None, _PLAIN_BYTES):
        return False
    return b"\r" not in data or data.count(b"\r") == data.count(b"\r\n") + data.endswith(b"\r")


def _split_table(text: str, path: Path, n_cols: int, kind: str) -> list[list[str]]:
    """The ``str.split`` tokeniser: ``n_cols`` lists of str, or the error naming the first line
    that has some tokens but not ``n_cols``."""
    for lineno, ln in enumerate(text.splitlines(), 1):
        k = len(ln.split())
        if k and k != n_cols:
            raise ValueError(f"{path}: line {lineno} has {k} columns, a {kind} line has {n_cols}")
    tokens = text.split()
    return [tokens[c::n_cols] for c in range(n_cols)]


def _ascii_table(data: bytes, n_cols: int) -> list[_Column] | str:
    """Tokenise plain-ASCII table bytes with numpy: one `_Column` per column, or the decoded text
    when some line does not have ``n_cols`` tokens (the caller reports it)."""
    buf = np.frombuffer(data, np.uint8)
    space = np.empty(len(buf) + 2, dtype=bool)
    space[0] = space[-1] = True
    np.less_equal(buf, 32, out=space[1:-1])
    edges = np.flatnonzero(space[1:] != space[:-1])  # token starts and ends (exclusive), in turn
    starts, ends = edges[0::2], edges[1::2]
    # tokens before each line end: every line must hold 0 or n_cols of them
    per_line = np.diff(np.searchsorted(starts, np.flatnonzero(buf == 10)), prepend=0,
                       append=len(starts))
    if len(starts) % n_cols or np.any((per_line != 0) & (per_line != n_cols)):
        return data.decode("ascii")
    starts, lengths = starts.reshape(-1, n_cols), (ends - starts).reshape(-1, n_cols)
    padded = np.concatenate([buf, np.zeros(int(lengths.max(initial=1)), np.uint8)])
    return [_Column(None, padded, starts[:, c], lengths[:, c]) for c in range(n_cols)]


@dataclass
class _Column:
    """One text column: a list of str (the ``str.split`` path), or ASCII tokens given by their
    ``starts`` and ``lengths`` in ``buf`` (the file's bytes, zero-padded past the end)."""

    tokens: list[str] | None
    buf: np.ndarray | None = None
    starts: np.ndarray | None = None
    lengths: np.ndarray | None = None

    def byte(self, j: int) -> np.ndarray:
        """uint8 [n]: each token's byte ``j`` (meaningful where ``lengths > j``)."""
        return self.buf[self.starts + j]

    def chars(self) -> np.ndarray:
        """uint8 [n, width]: the tokens left-aligned, zero-padded to the longest."""
        width = int(self.lengths.max(initial=1))
        pos = np.arange(width)
        chars = self.buf[self.starts[:, None] + pos]
        if len(self.lengths) and self.lengths.min() < width:
            chars *= pos < self.lengths[:, None]
        return chars

    def strings(self) -> np.ndarray:
        """The column as a numpy unicode array (``<U1`` when empty, as ``np.array([], str)``);
        ASCII bytes widen to UCS-4 code points with a plain integer cast."""
        if self.tokens is not None:
            return np.array(self.tokens, dtype=str) if self.tokens else np.empty(0, dtype=str)
        chars = self.chars()
        return chars.astype(np.uint32).view(f"U{chars.shape[1]}").reshape(-1)

    def as_list(self) -> list[str]:
        return self.tokens if self.tokens is not None else self.strings().tolist()

    def integers(self, path: Path, kind: str, name: str) -> np.ndarray:
        """int64 as ``int()`` reads each token; plain digit strings of up to 18 digits are parsed
        with numpy (Horner, digit by digit), anything else by `_convert`."""
        if self.tokens is None and self.lengths.max(initial=1) <= 18:
            out = np.zeros(len(self.starts), dtype=np.int64)
            for j in range(int(self.lengths.max(initial=1))):
                digit = self.byte(j) - np.uint8(48)  # wraps below '0': one bound checks both
                inside = self.lengths > j
                if np.any(inside & (digit > 9)):
                    break
                out = np.where(inside, out * 10 + digit, out)
            else:
                return out
        return _convert(self.as_list(), int, path, kind, name)

    def floats(self, path: Path, kind: str, name: str) -> np.ndarray:
        """float64 as ``float()`` reads each token: all ``0``/``0.0`` at once, other ASCII tokens
        through numpy's bytes -> float64 cast (same values), bad ones reported by `_convert`."""
        if self.tokens is None:
            lengths, first = self.lengths, self.byte(0) == ord("0")
            zero = first & ((lengths == 1) | ((lengths == 3) & (self.byte(1) == ord("."))
                                               & (self.byte(2) == ord("0"))))
            if zero.all():
                return np.zeros(len(lengths))
            chars = self.chars()
            try:
                return chars.view(f"S{chars.shape[1]}").reshape(-1).astype(np.float64)
            except ValueError:
                pass
        return _convert(self.as_list(), float, path, kind, name)


def _convert(col: list[str], dtype: type, path: Path, kind: str, name: str) -> np.ndarray:
    """A column of numbers; a bad value raises naming the file, line and column."""
    np_dtype = np.float64 if dtype is float else np.int64
    try:
        return np.fromiter(map(dtype, col), dtype=np_dtype, count=len(col))
    except ValueError:
        for i, v in enumerate(col):
            try:
                dtype(v)
            except ValueError:
                raise ValueError(f"{path}: {kind} line {i + 1}: {name} {v!r} is not "
                                 f"{'a number' if dtype is float else 'an integer'}") from None
        raise


def read_bim(path: PathLike) -> SnpTable:
    """Read a `.bim`: chromosome, SNP id, cM, bp, allele_1, allele_2 (6 whitespace columns)."""
    path = Path(path)
    chrom, sid, cm, bp, a1, a2 = _read_table(path, 6, ".bim")
    return SnpTable(
        chromosome=chrom.strings(),
        sid=sid.strings(),
        cm_position=cm.floats(path, ".bim", "cM position"),
        bp_position=bp.integers(path, ".bim", "bp position"),
        allele_1=a1.strings(),
        allele_2=a2.strings(),
    )


def parse_phenotype(raw: np.ndarray) -> np.ndarray:
    """`.fam` phenotype text -> float64, NaN for -9/NA/non-numeric; 0 too when case/control."""
    raw = np.asarray(raw, dtype=str)
    values, inverse = np.unique(raw, return_inverse=True)  # each distinct text parsed once
    parsed = np.full(len(values), np.nan)
    for i, v in enumerate(values.tolist()):
        if v.lower() in _MISSING_PHENO:
            continue
        try:
            parsed[i] = float(v)
        except ValueError:
            pass
    out = parsed[inverse.reshape(-1)]
    present = out[~np.isnan(out)]
    if len(present) and np.isin(present, (0.0, 1.0, 2.0)).all():
        out[out == 0.0] = np.nan  # PLINK 1: case/control column, 0 = missing
    return out


def read_fam(path: PathLike) -> SampleTable:
    """Read a `.fam`: FID, IID, father, mother, sex, phenotype (6 whitespace columns)."""
    path = Path(path)
    fid, iid, father, mother, sex, pheno = _read_table(path, 6, ".fam")
    raw = pheno.strings()
    return SampleTable(
        fid=fid.strings(),
        iid=iid.strings(),
        father=father.strings(),
        mother=mother.strings(),
        sex=sex.integers(path, ".fam", "sex"),
        phenotype=parse_phenotype(raw),
        phenotype_raw=raw,
    )


def _text_chars(col: np.ndarray) -> np.ndarray | None:
    """A str column as a zero-padded uint8 matrix [n, width] (UCS-4 code points narrowed); None
    when a value is not ASCII or holds a NUL (`_format_table` squeezes zeros out)."""
    col = np.ascontiguousarray(col, dtype=str)
    codes = col.view(np.uint32).reshape(len(col), col.dtype.itemsize // 4)
    if codes.size and (codes.max() > 127 or np.any((codes[:, :-1] == 0) & (codes[:, 1:] != 0))):
        return None
    return codes.astype(np.uint8)


def _int_chars(values: np.ndarray) -> np.ndarray:
    """``str(int(v))`` of each int64 as a uint8 matrix [n, width], right-aligned, zero-padded."""
    values = np.asarray(values, dtype=np.int64)
    if len(values) and values.min() == np.iinfo(np.int64).min:  # no abs(): numpy's own text
        text = values.astype(bytes)
        return text.view(np.uint8).reshape(len(text), text.dtype.itemsize)
    rest = np.abs(values)
    width = len(str(int(rest.max()))) if len(values) else 1
    chars = np.zeros((len(values), width + 1), dtype=np.uint8)
    for j in range(width, 0, -1):
        chars[:, j] = np.where((rest > 0) | (j == width), rest % 10 + 48, 0)
        rest //= 10
    chars[:, 0] = np.where(values < 0, ord("-"), 0)
    return chars


def _format_table(cols: Sequence[np.ndarray | None], sep: str) -> str | None:
    """Rows of the columns' text (uint8 matrices from `_text_chars`/`_int_chars`) joined by
    ``sep``, each line ended by a newline: the matrices side by side with separator columns, then
    the zero padding squeezed out. None when a column is None (not plain ASCII)."""
    if any(c is None for c in cols):
        return None
    n = len(cols[0])
    parts = []
    for k, chars in enumerate(cols):
        end = sep if k < len(cols) - 1 else "\n"
        parts += [chars, np.full((n, 1), ord(end), dtype=np.uint8)]
    table = np.hstack(parts)
    return table[table != 0].tobytes().decode("ascii")


def write_bim(path: PathLike, snps: SnpTable) -> None:
    """Write a `.bim` (tab separated, as PLINK does); cM as ``repr(float)``."""
    cm = snps.cm_position
    cm_text = (np.full(len(cm), "0.0") if not np.any(cm) and not np.signbit(cm).any()
               else np.array([repr(v) for v in cm.tolist()], dtype=str))
    text = _format_table([_text_chars(snps.chromosome), _text_chars(snps.sid),
                          _text_chars(cm_text), _int_chars(snps.bp_position),
                          _text_chars(snps.allele_1), _text_chars(snps.allele_2)], "\t")
    with open(path, "w") as f:
        if text is not None:
            f.write(text)
        else:
            f.writelines(
                f"{c}\t{s}\t{g}\t{b}\t{a1}\t{a2}\n"
                for c, s, g, b, a1, a2 in zip(snps.chromosome, snps.sid, cm_text,
                                              snps.bp_position, snps.allele_1, snps.allele_2,
                                              strict=True)
            )


def write_fam(path: PathLike, samples: SampleTable) -> None:
    """Write a `.fam` (space separated); the phenotype column is written as read."""
    text = _format_table([_text_chars(samples.fid), _text_chars(samples.iid),
                          _text_chars(samples.father), _text_chars(samples.mother),
                          _int_chars(samples.sex), _text_chars(samples.phenotype_raw)], " ")
    with open(path, "w") as f:
        if text is not None:
            f.write(text)
        else:
            f.writelines(
                f"{a} {b} {c} {d} {e} {p}\n"
                for a, b, c, d, e, p in zip(samples.fid, samples.iid, samples.father,
                                            samples.mother, samples.sex, samples.phenotype_raw,
                                            strict=True)
            )


# ---------------------------------------------------------------------------------------------
# cohort
