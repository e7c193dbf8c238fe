"""Streaming PLINK writer: batches of individuals go straight into the SNP-major `.bed`.

Each batch is packed into the `.bed` layout by `genofast.ops.pack_bed` / `packed_to_bed`
(Triton on CUDA tensors, the native core or the torch reference on CPU) and stored at its byte
offsets in a memory map of a temporary `.bed`. Once the pages this process maps pass
``flush_bytes`` (default 512 MiB) they are released (MADV_DONTNEED; the kernel writes them
back), so resident memory stays bounded whatever the number of individuals. Releasing costs
refaults, so a smaller budget trades write speed for memory. Only ``close()`` gives the files
their final names (`.bim`, `.fam`, then `.bed` last), so a fileset that looks complete is
complete; an exception inside ``with`` removes the temporaries.

Several processes (``distributed=True``, e.g. the ranks of ``torchrun``) can fill one fileset:
rank 0 creates the temporary `.bed` at full size and broadcasts its name, every rank maps it and
writes its own batches, and ``close()`` is collective: the ranks agree that every row was written
exactly once and that none failed, then rank 0 alone gives the files their final names. Batches
must then start (and end, but at the last row) on a multiple of 4 individuals, so no two ranks
share a byte. The ranks must see one coherent copy of the file (one machine's page cache).
"""

from __future__ import annotations

import mmap
import os
import secrets
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from genofast.io.plink import BED_MAGIC, HEADER_BYTES, MODE_SNP_MAJOR, Cohort, plink_paths
from genofast.io.tables import PathLike, SampleTable, SnpTable, write_bim, write_fam
from genofast.ops import pack_bed, packed_to_bed
from genofast.ops.codec import n_packed_bytes

_DEFAULT_FLUSH_BYTES = 512 << 20
_PAGES_TOUCHED_SLACK = 2 * mmap.PAGESIZE + (64 << 10)


def _mapped_file_bytes() -> int | None:
    """File-backed resident bytes of this process (Linux /proc/self/statm "shared"), or None."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[2]) * mmap.PAGESIZE
    except (OSError, IndexError, ValueError):
        return None


def _as_tensor(genotypes: Any) -> torch.Tensor:
    if isinstance(genotypes, torch.Tensor):
        return genotypes.detach()
    arr = np.asarray(genotypes)
    if not arr.flags.writeable or not arr.flags.c_contiguous:
        arr = np.array(arr, order="C")
    return torch.from_numpy(arr)


def shift_bed_bytes(bed: np.ndarray, shift: int, n_out: int) -> np.ndarray:
    """Move every row's 2-bit fields up by ``shift`` (0-3) individuals: the `.bed` bytes of a
    batch that starts ``shift`` individuals into a byte. Low fields of byte 0 become 0."""
    if shift == 0:
        return bed
    s = 2 * shift
    out = np.zeros((bed.shape[0], n_out), dtype=np.uint8)
    nb = bed.shape[1]
    out[:, :nb] = bed << np.uint8(s)
    out[:, 1:n_out] |= bed[:, : n_out - 1] >> np.uint8(8 - s)
    return out


class PlinkWriter:
    """Write a PLINK 1 fileset of ``n_individuals`` x ``len(snps)`` batch by batch.

    ``write(start_row, genotypes)`` stores rows ``start_row .. start_row + B - 1``; batches may
    come in any order and start at any row. Samples come from ``samples`` (a SampleTable), or
    ``iids`` (FID = IID, unknown parents, sex and phenotype), or default to ``ind0``, ``ind1``...

        with PlinkWriter("out/synth", snps, n) as w:
            for start, batch in batches:
                w.write(start, batch)

    The files are named ``PREFIX.bed/.bim/.fam`` only by ``close()`` (called by ``with``), and
    only when every row was written exactly once. ``flush_bytes`` bounds the file pages kept
    mapped in this process (see the module docstring). One writer per fileset and process: the
    temporary name is private to it.

    ``distributed=True`` (every rank of the initialised default ``torch.distributed`` process
    group constructs it with the same arguments; with no group or one process it is the plain
    writer): one fileset shared by the ranks. Each rank writes whole batches aligned to 4 rows,
    and every rank must reach ``close()`` or ``abort()`` (``with`` does), which are collective:
    ``close()`` returns on every rank once the fileset has its final names, and raises on every
    rank when a rank aborted or a row is missing or written twice; the temporaries are then
    removed. ``rows_written`` and ``missing_rows()`` count this process's rows. With NCCL each
    rank's CUDA device must be set (``torch.cuda.set_device``).
    """

    def __init__(
        self,
        prefix: PathLike,
        snps: SnpTable,
        n_individuals: int,
        iids: list[str] | np.ndarray | None = None,
        samples: SampleTable | None = None,
        *,
        flush_bytes: int = _DEFAULT_FLUSH_BYTES,
        distributed: bool = False,
    ) -> None:
        n_individuals = int(n_individuals)
        if n_individuals < 0:
            raise ValueError(f"PlinkWriter: n_individuals must be >= 0, got {n_individuals}")
        if samples is not None and iids is not None:
            raise ValueError("PlinkWriter: give either samples or iids, not both")
        if samples is None:
            samples = (SampleTable.default(n_individuals) if iids is None
                       else SampleTable.from_iids(iids))
        if len(samples) != n_individuals:
            raise ValueError(f"PlinkWriter: {len(samples)} samples (iids) for {n_individuals} "
                             f"individuals")
        self.snps = snps
        self.samples = samples
        self.n_individuals = n_individuals
        self.n_snps = len(snps)
        self.flush_bytes = int(flush_bytes)
        self.paths = plink_paths(prefix)
        parent = self.paths[0].parent
        if not parent.is_dir():
            raise FileNotFoundError(f"PlinkWriter: output folder does not exist: {parent}")
        self.rank, self.world = 0, 1
        if distributed and dist.is_available() and dist.is_initialized():
            self.rank, self.world = dist.get_rank(), dist.get_world_size()
        self._owner = self.rank == 0  # the process that created, and removes, the temporaries
        self._agreed = False  # distributed: the ranks have reduced their final status
        self._set_temp_paths(f"{os.getpid()}-{secrets.token_hex(4)}")

        self._written = np.zeros(n_individuals, dtype=bool)
        self._row_bytes = n_packed_bytes(n_individuals)
        self._since_flush = 0
        self._mapped_base = _mapped_file_bytes() or 0
        self._closed = False
        self._file = None
        self._map: mmap.mmap | None = None
        self._body: np.ndarray | None = None

        if self.world > 1:
            self._open_shared()
            return
        try:
            self._open(create=True)
        except BaseException:
            self.abort()
            raise

    def _set_temp_paths(self, token: str) -> None:
        self.temp_paths = tuple(p.with_name(f"{p.name}.{token}.tmp") for p in self.paths)

    def _open(self, create: bool) -> None:
        """Open the temporary `.bed` (``create``: write the header, size it) and map its body."""
        size = HEADER_BYTES + self.n_snps * self._row_bytes
        # owned until close/abort
        self._file = open(self.temp_paths[0], "w+b" if create else "r+b")  # noqa: SIM115
        if create:
            self._file.write(BED_MAGIC + bytes([MODE_SNP_MAJOR]))
            self._file.truncate(size)  # sparse: unwritten bytes read as 0
            self._file.flush()
        if size > HEADER_BYTES:
            self._map = mmap.mmap(self._file.fileno(), size)
            self._body = np.frombuffer(
                self._map, dtype=np.uint8, count=size - HEADER_BYTES, offset=HEADER_BYTES
            ).reshape(self.n_snps, self._row_bytes)

    def _open_shared(self) -> None:
        """Distributed: rank 0 creates the temporary `.bed` and broadcasts its name (or its
        error), the other ranks open it, and all agree that every rank has it mapped."""
        box: list[Any] = [self.temp_paths, None]
        err: BaseException | None = None
        if self._owner:
            try:
                self._open(create=True)
            except BaseException as e:
                self._drop()
                err, box[1] = e, f"{type(e).__name__}: {e}"
        dist.broadcast_object_list(box, src=0)
        if err is not None:
            raise err
        if box[1] is not None:
            raise ValueError(f"PlinkWriter: rank 0 could not create {self.paths[0]}: {box[1]}")
        self.temp_paths = tuple(box[0])
        if not self._owner:
            try:
                self._open(create=False)
            except BaseException as e:
                err = e
        (failed,) = self._all_sum([err is not None])
        if failed:
            self._drop()
            self._all_sum([0])  # no rank leaves before rank 0 has removed the temporaries
            if err is not None:
                raise err
            raise ValueError(f"PlinkWriter: {failed} rank(s) could not open {self.temp_paths[0]}")

    # -- writing --------------------------------------------------------------------------------

    def write(self, start_row: int, genotypes: Any) -> None:
        """Store a batch of individuals at rows ``start_row .. start_row + B - 1``.

        ``genotypes`` is a numpy array or torch tensor (CPU or CUDA, packed on its device), either
        ``int8 [B, M]`` with 0/1/2 copies of allele_1 and -1 missing (other signed integer dtypes
        are range-checked and cast), or packed ``uint8 [B, ceil(M/4)]`` (codec.py layout). The
        dtype tells them apart: uint8 is always packed. Raises ValueError for rows outside
        0..N-1, rows already written, or genotype values outside -1..2.
        """
        if self._closed:
            raise ValueError("PlinkWriter: write() after close()")
        t = _as_tensor(genotypes)
        if t.dim() != 2:
            raise ValueError(f"PlinkWriter.write: expected a 2-D batch [B, M], got shape "
                             f"{tuple(t.shape)}")
        start = int(start_row)
        b = int(t.shape[0])
        if start < 0 or start + b > self.n_individuals:
            raise ValueError(f"PlinkWriter.write: rows {start}..{start + b - 1} outside the "
                             f"{self.n_individuals} individuals of this file")
        if b == 0:
            return
        if self.world > 1 and (start % 4 or ((start + b) % 4 and start + b != self.n_individuals)):
            raise ValueError(f"PlinkWriter.write: rows {start}..{start + b - 1}: with several "
                             f"processes a batch must start and end on a multiple of 4 rows (or "
                             f"end at the last row), so that no two processes share a byte")
        dup = np.flatnonzero(self._written[start:start + b])
        if len(dup):
            raise ValueError(f"PlinkWriter.write: {len(dup)} rows already written, the first is "
                             f"row {start + int(dup[0])}")
        m = self.n_snps
        if t.dtype == torch.uint8:
            if t.shape[1] != n_packed_bytes(m):
                raise ValueError(
                    f"PlinkWriter.write: packed uint8 batch needs ceil({m}/4) = "
                    f"{n_packed_bytes(m)} bytes per row, got {t.shape[1]} (int8 for genotypes)"
                )
            bed = packed_to_bed(t, m) if m else None
        else:
            if t.shape[1] != m:
                raise ValueError(f"PlinkWriter.write: batch has {t.shape[1]} SNPs, the file "
                                 f"has {m}")
            t = _to_int8(t)
            bed = pack_bed(t) if m else None
        if bed is not None:
            self._store(start, b, bed.cpu().numpy())
        self._written[start:start + b] = True

    def _store(self, start: int, b: int, bed: np.ndarray) -> None:
        """Merge a `.bed`-layout batch [M, ceil(B/4)] into the map at individual ``start``.

        Bytes wholly inside the batch are copied; the shared first/last byte of an unaligned
        batch is merged under a mask. SNP rows go in blocks, and after each block the pages this
        process maps are checked: the kernel may map whole folios (tens of KiB) per touched byte,
        so even one batch could otherwise map most of the file.
        """
        body = self._body
        assert body is not None
        shift = start % 4
        b0 = start // 4
        n_out = n_packed_bytes(shift + b)
        bed = shift_bed_bytes(bed, shift, n_out)
        first = np.uint8((0xFF << (2 * shift)) & 0xFF)
        end = (start + b) % 4
        last = np.uint8(0xFF if end == 0 else (1 << (2 * end)) - 1)
        if n_out == 1:
            first = last = first & last
        e = b0 + n_out - 1
        block = max(1, self.flush_bytes // max(1, self._row_bytes))
        for j0 in range(0, self.n_snps, block):
            rows = body[j0:j0 + block]
            src = bed[j0:j0 + block]
            if first == 0xFF:
                rows[:, b0] = src[:, 0]
            else:
                rows[:, b0] = (rows[:, b0] & ~first) | (src[:, 0] & first)
            if n_out > 2:
                rows[:, b0 + 1:e] = src[:, 1:n_out - 1]
            if n_out > 1:
                if last == 0xFF:
                    rows[:, e] = src[:, n_out - 1]
                else:
                    rows[:, e] = (rows[:, e] & ~last) | (src[:, n_out - 1] & last)
            del rows, src
            self._account(len(bed[j0:j0 + block]), n_out)

    def _account(self, n_rows: int, n_out: int) -> None:
        """Release the mapped pages once they pass ``flush_bytes``: measured from
        /proc/self/statm where it exists, else estimated (a page or two plus 64 KiB of
        fault-around per SNP row)."""
        mapped = _mapped_file_bytes()
        if mapped is not None:
            self._since_flush = mapped - self._mapped_base
        else:
            self._since_flush += n_rows * min(self._row_bytes, n_out + _PAGES_TOUCHED_SLACK)
        if self._since_flush >= self.flush_bytes:
            self.release_pages()

    def release_pages(self) -> None:
        """Unmap the pages written so far from this process (MADV_DONTNEED), so its resident
        memory stays flat whatever N. Safe on a shared file mapping: the data stay in the page
        cache, dirty, and the kernel writes them back; ``close()`` syncs the file."""
        if self._map is not None and hasattr(mmap, "MADV_DONTNEED"):
            self._map.madvise(mmap.MADV_DONTNEED)
        self._since_flush = 0
        self._mapped_base = _mapped_file_bytes() or 0

    def flush(self) -> None:
        """Write dirty pages to the temporary `.bed` now and release them from this process."""
        if self._map is not None:
            self._map.flush()
        self.release_pages()

    # -- state ----------------------------------------------------------------------------------

    @property
    def rows_written(self) -> int:
        return int(self._written.sum())

    def missing_rows(self) -> np.ndarray:
        """Indices of rows not written yet."""
        return np.flatnonzero(~self._written)

    # -- closing --------------------------------------------------------------------------------

    def _release(self) -> None:
        self._body = None
        if self._map is not None:
            self._map.close()
            self._map = None
        if self._file is not None:
            self._file.close()
            self._file = None

    def _finalise(self) -> None:
        """Sync the `.bed`, write `.bim`/`.fam`, and rename the fileset (`.bed` last)."""
        if self._map is not None:
            self._map.flush()
        assert self._file is not None
        self._file.flush()
        os.fsync(self._file.fileno())
        self._release()
        bed_tmp, bim_tmp, fam_tmp = self.temp_paths
        write_bim(bim_tmp, self.snps)
        write_fam(fam_tmp, self.samples)
        bed, bim, fam = self.paths
        # an older .bed must not pair with the new .bim/.fam while we rename
        bed.unlink(missing_ok=True)
        os.replace(bim_tmp, bim)
        os.replace(fam_tmp, fam)
        os.replace(bed_tmp, bed)

    def close(self) -> None:
        """Check every row was written, write `.bim`/`.fam`, and rename the fileset to its final
        names (`.bed` last). On any failure the temporaries are removed and the error re-raised.
        Distributed: collective, see the class docstring."""
        if self._closed:
            return
        if self.world > 1:
            self._close_shared()
            return
        try:
            missing = self.missing_rows()
            if len(missing):
                raise ValueError(
                    f"PlinkWriter: {len(missing)} of {self.n_individuals} rows were never "
                    f"written, the first is row {int(missing[0])}; {self.paths[0]} not created"
                )
            self._finalise()
            self._closed = True
        except BaseException:
            self.abort()
            raise

    def _close_shared(self) -> None:
        """Distributed close: every rank syncs its pages, the ranks agree that none failed and
        that every row was written once, rank 0 finalises, and a last reduction tells every rank
        how that went (so that none exits, and has torchrun stop the others, before rank 0 is
        done)."""
        err: BaseException | None = None
        try:
            if self._map is not None:
                self._map.flush()
            if not self._owner:
                self._release()
        except BaseException as e:  # still take part in the reductions below
            err = e
        (failed,) = self._all_sum([err is not None])
        self._agreed = True
        problem = f"{failed} of {self.world} processes failed" if failed else None
        if problem is None:
            cover = self._all_sum_array(self._written.astype(np.uint8))  # writers of each row
            bad = np.flatnonzero(cover != 1)
            if len(bad):
                problem = (f"{len(bad)} of {self.n_individuals} rows were not written exactly "
                           f"once by the {self.world} processes, the first is row {int(bad[0])}")
        if problem is None and self._owner:
            try:
                self._finalise()
            except BaseException as e:
                err = e
        if problem is not None or err is not None:
            self._drop()
        (failed,) = self._all_sum([err is not None])
        if err is not None:
            raise err
        if problem is None and failed:
            problem = "rank 0 could not finish it"
        if problem is not None:
            raise ValueError(f"PlinkWriter: {problem}; {self.paths[0]} not created")
        self._closed = True

    def _drop(self) -> None:
        """Release the map and, in the process that created them, delete the temporaries."""
        self._release()
        if self._owner:
            for p in self.temp_paths:
                Path(p).unlink(missing_ok=True)
        self._closed = True

    def abort(self) -> None:
        """Drop the fileset: release the map and delete the temporaries. Idempotent.
        Distributed: collective (tells the ranks in ``close()`` that this one failed)."""
        try:
            if self.world > 1 and not self._closed and not self._agreed:
                self._agreed = True
                self._all_sum([1])  # the ranks in close() learn that this one failed
                self._drop()
                self._all_sum([0])  # and leave once rank 0 has removed the temporaries
        finally:
            self._drop()

    def _all_sum(self, values: list[int]) -> list[int]:
        """Sum small integers over the ranks."""
        return [int(v) for v in self._all_sum_array(np.array(values, dtype=np.int64))]

    def _all_sum_array(self, values: np.ndarray) -> np.ndarray:
        """Sum a numpy array over the ranks (on the current CUDA device under NCCL)."""
        dev = (torch.device("cuda", torch.cuda.current_device())
               if dist.get_backend() == "nccl" else torch.device("cpu"))
        t = torch.from_numpy(values).to(dev)
        dist.all_reduce(t)
        return t.cpu().numpy()

    def __enter__(self) -> PlinkWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def __del__(self) -> None:
        if not getattr(self, "_closed", True):
            try:
                self._drop()  # local: no collective from the garbage collector
            except Exception:
                pass


def _to_int8(t: torch.Tensor) -> torch.Tensor:
    """Signed integer genotypes -> int8, range-checked before the cast so nothing wraps."""
    if t.dtype == torch.int8:
        return t
    if t.dtype.is_floating_point or t.dtype == torch.bool or t.dtype.is_complex:
        raise TypeError(f"PlinkWriter.write: genotypes must be int8 (0/1/2, -1 missing) or "
                        f"packed uint8, got {t.dtype}")
    if t.numel():
        lo, hi = int(t.min()), int(t.max())
        if lo < -1 or hi > 2:
            bad = (t < -1) | (t > 2)
            row, col = (int(v) for v in bad.nonzero()[0])
            raise ValueError(f"genotypes: {int(bad.sum())} values outside 0/1/2 and -1 "
                             f"(missing); the first is {int(t[row, col])} at row {row}, SNP {col}")
    return t.to(torch.int8)


def write_plink(
    prefix: PathLike,
    genotypes: Any,
    snps: SnpTable | None = None,
    samples: SampleTable | None = None,
    *,
    batch_rows: int | None = None,
) -> None:
    """Write a whole in-memory cohort: a `Cohort` (its tables unless given), or ``int8 [N, M]`` /
    packed ``uint8 [N, ceil(M/4)]`` genotypes with ``snps`` (and optional ``samples``).

    Goes through PlinkWriter in batches of ``batch_rows`` individuals (default: ~64 MB).
    """
    if isinstance(genotypes, Cohort):
        snps = genotypes.snps if snps is None else snps
        samples = genotypes.samples if samples is None else samples
        genotypes = genotypes.genotypes
    if snps is None:
        raise ValueError("write_plink: snps (a SnpTable) is required for a bare genotype matrix")
    t = _as_tensor(genotypes)
    if t.dim() != 2:
        raise ValueError(f"write_plink: expected [N, M] genotypes, got shape {tuple(t.shape)}")
    n = int(t.shape[0])
    if batch_rows is None:
        batch_rows = max(4, (64 << 20) // max(1, int(t.shape[1])))
    batch_rows = max(4, batch_rows - batch_rows % 4)
    with PlinkWriter(prefix, snps, n, samples=samples) as w:
        for r in range(0, n, batch_rows):
            w.write(r, t[r:r + batch_rows])
