"""Per-SNP and per-individual statistics (genofast.metrics.counts) against independent references:
numpy on unpacked genotypes, `plink2 --freq counts / --geno-counts / --hardy / --het`, PLINK 1.9
`--het`, and scikit-allel's Hudson F_ST. Random data carries missing genotypes; the real-data
checks skip cleanly without ../shared."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from genofast.metrics import counts as C
from genofast.ops.codec import pack_reference

# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def packed_of(g: np.ndarray) -> np.ndarray:
    """int8 [N, M] (0/1/2, -1 missing) -> packed uint8 through the torch reference codec."""
    return pack_reference(torch.from_numpy(np.ascontiguousarray(g, dtype=np.int8))).numpy()


def random_genotypes(rng: np.random.Generator, n: int, m: int, missing: float = 0.03) -> np.ndarray:
    """Genotypes from per-SNP frequencies (some rare, one column all missing, one monomorphic,
    20 inbred individuals), with a fraction of missing calls."""
    p = rng.uniform(0.0, 1.0, m) ** 2
    g = (rng.random((n, m)) < p).astype(np.int8) + (rng.random((n, m)) < p).astype(np.int8)
    k = min(20, n)
    g[:k] = np.where(rng.random((k, m)) < 0.5, 2 * (g[:k] > 0), g[:k])
    g[rng.random((n, m)) < missing] = -1
    if m > 8:
        g[:, 7] = -1
        g[:, 8] = np.where(g[:, 8] < 0, -1, 0)
    return g


def reference_counts(g: np.ndarray) -> np.ndarray:
    return np.stack([(g == v).sum(0) for v in (0, 1, 2, -1)], axis=1)


def write_bed(prefix: Path, g: np.ndarray, chrom: np.ndarray | None = None) -> Path:
    """A PLINK fileset from int8 genotypes (allele_1 = "A" is counted) via bed-reader."""
    from bed_reader import to_bed

    n, m = g.shape
    chrom = np.ones(m, dtype=int) if chrom is None else chrom
    pos = np.arange(1, m + 1) * 1000
    val = np.where(g < 0, -127, g).astype(np.int8)
    to_bed(
        prefix.with_suffix(".bed"),
        val,
        properties={
            "chromosome": [str(c) for c in chrom],
            "bp_position": pos,
            "sid": [f"snp{j}" for j in range(m)],
            "allele_1": ["A"] * m,
            "allele_2": ["G"] * m,
            "iid": [f"i{i}" for i in range(n)],
            "fid": [f"f{i}" for i in range(n)],
        },
    )
    return prefix


def read_bed(prefix: Path) -> np.ndarray:
    """int8 [N, M] allele_1 counts (-1 missing) through bed-reader (independent of genofast.io)."""
    from bed_reader import open_bed

    with open_bed(str(prefix) + ".bed") as bed:
        v = bed.read(dtype="int8")
    return np.where(v == -127, -1, v).astype(np.int8)


def run_plink(binary: str, args: str, out: Path) -> None:
    cmd = [binary, *args.split(), "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def read_table(path: Path) -> dict[str, np.ndarray]:
    """Whitespace table with a header line (leading '#' dropped); numeric columns as float."""
    rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
    head = [h.lstrip("#") for h in rows[0]]
    cols: dict[str, np.ndarray] = {}
    for k, h in enumerate(head):
        vals = [r[k] for r in rows[1:]]
        try:
            cols[h] = np.array([float(v) for v in vals])
        except ValueError:
            cols[h] = np.array(vals)
    return cols


@pytest.fixture(scope="module")
def rand_cohort() -> np.ndarray:
    return random_genotypes(np.random.default_rng(11), 301, 523)


# ---------------------------------------------------------------------------------------------
# genotype counts
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "n,m",
    [(1, 1), (3, 5), (11, 31), (12, 33), (37, 129), (253, 64), (300, 1001), (517, 2050)],
)
def test_genotype_counts_match_numpy(n: int, m: int) -> None:
    """Odd shapes: fewer rows than one 12-row group, more than one 252-row flush, SNP counts that
    leave a partial byte and a partial 8-byte word."""
    g = np.random.default_rng(n * 7919 + m).integers(-1, 3, size=(n, m)).astype(np.int8)
    assert np.array_equal(C.genotype_counts(packed_of(g), m), reference_counts(g))


def test_genotype_counts_accepts_torch_and_checks_shape() -> None:
    g = np.random.default_rng(0).integers(-1, 3, size=(40, 77)).astype(np.int8)
    pk = packed_of(g)
    assert np.array_equal(C.genotype_counts(torch.from_numpy(pk), 77), reference_counts(g))
    with pytest.raises(ValueError):
        C.genotype_counts(pk, 90)
    with pytest.raises(TypeError):
        C.genotype_counts(pk.astype(np.int16), 77)
    assert C.genotype_counts(pk[:0], 77).sum() == 0


def test_frequencies_leave_missing_out() -> None:
    g = np.array([[0, -1, 2], [1, -1, 2], [-1, -1, 2], [2, -1, -1]], dtype=np.int8)
    c = C.genotype_counts(packed_of(g), 3)
    p = C.allele_frequencies(c)
    assert p[0] == pytest.approx(3 / 6)  # 3 called individuals, not 4
    assert np.isnan(p[1])  # nobody called
    assert p[2] == 1.0
    gf = C.genotype_frequencies(c)
    assert np.allclose(gf[0], [1 / 3, 1 / 3, 1 / 3])
    assert np.isnan(gf[1]).all()
    assert C.minor_allele_frequencies(c)[2] == 0.0


def test_counts_equal_plink2_random_with_missing(
    rand_cohort: np.ndarray, plink2: str, tmp_path: Path
) -> None:
    g = rand_cohort
    prefix = write_bed(tmp_path / "rand", g)
    run_plink(plink2, f"--bfile {prefix} --freq counts --geno-counts", tmp_path / "p2")
    c = C.genotype_counts(packed_of(g), g.shape[1])
    ac = read_table(tmp_path / "p2.acount")
    # plink2 takes .bim column 5 (allele_1, the counted allele) as ALT
    assert np.array_equal(ac["ALT_CTS"], c[:, 1] + 2 * c[:, 2])
    assert np.array_equal(ac["OBS_CT"], 2 * c[:, :3].sum(1))
    gc = read_table(tmp_path / "p2.gcount")
    keys = ["HOM_REF_CT", "HET_REF_ALT_CTS", "TWO_ALT_GENO_CTS", "MISSING_CT"]
    assert np.array_equal(np.stack([gc[k] for k in keys], 1), c)


@pytest.mark.parametrize("which", ["agbl4", "yelmen"])
def test_counts_equal_plink2_real(
    which: str, request: pytest.FixtureRequest, plink2: str, tmp_path: Path
) -> None:
    prefix = request.getfixturevalue(f"{which}_prefix")
    g = read_bed(prefix)
    c = C.genotype_counts(packed_of(g), g.shape[1])
    run_plink(plink2, f"--bfile {prefix} --freq counts", tmp_path / "p2")
    ac = read_table(tmp_path / "p2.acount")
    assert np.array_equal(ac["ALT_CTS"], c[:, 1] + 2 * c[:, 2])
    assert np.array_equal(ac["OBS_CT"], 2 * c[:, :3].sum(1))


# ---------------------------------------------------------------------------------------------
# Hardy-Weinberg
# ---------------------------------------------------------------------------------------------


def _hwe_cases() -> np.ndarray:
    """Genotype columns with chosen (n0, n1, n2) counts, including extreme deficits/excesses."""
    counts = [
        (100, 0, 100),
        (0, 200, 0),
        (180, 20, 0),
        (199, 0, 1),
        (1, 0, 199),
        (50, 100, 50),
        (10, 10, 180),
        (0, 1, 199),
        (120, 10, 70),
        (25, 150, 25),
        (0, 0, 200),
        (3, 194, 3),
        (60, 80, 60),
        (98, 2, 100),
        (140, 59, 1),
    ]
    cols = [np.repeat(np.array([0, 1, 2], dtype=np.int8), c) for c in counts]
    return np.stack(cols, axis=1)


def test_hwe_equals_plink2(rand_cohort: np.ndarray, plink2: str, tmp_path: Path) -> None:
    for name, g in (("rand", rand_cohort), ("cases", _hwe_cases())):
        prefix = write_bed(tmp_path / name, g)
        run_plink(plink2, f"--bfile {prefix} --hardy", tmp_path / f"{name}_p2")
        ref = read_table(tmp_path / f"{name}_p2.hardy")["P"]
        p = C.hwe_pvalues(C.genotype_counts(packed_of(g), g.shape[1]))
        ok = np.isfinite(p)
        # all-missing SNP: NaN here, 1 in plink2 (which reports every SNP)
        assert np.all(ref[~ok] == 1.0)
        # plink2 prints 6 significant digits
        np.testing.assert_allclose(p[ok], ref[ok], rtol=1e-4, atol=0)


def test_hwe_edge_cases() -> None:
    c = np.array([[0, 0, 0, 5], [10, 0, 0, 0], [25, 50, 25, 0], [50, 0, 50, 0]])
    p = C.hwe_pvalues(c)
    assert np.isnan(p[0]) and p[1] == 1.0 and p[2] == pytest.approx(1.0)
    assert 0 < p[3] < 1e-25


@pytest.mark.parametrize("which", ["agbl4", "yelmen"])
def test_hwe_equals_plink2_real(
    which: str, request: pytest.FixtureRequest, plink2: str, tmp_path: Path
) -> None:
    prefix = request.getfixturevalue(f"{which}_prefix")
    g = read_bed(prefix)
    run_plink(plink2, f"--bfile {prefix} --hardy", tmp_path / "p2")
    ref = read_table(tmp_path / "p2.hardy")["P"]
    p = C.hwe_pvalues(C.genotype_counts(packed_of(g), g.shape[1]))
    np.testing.assert_allclose(p, ref, rtol=1e-4, atol=0)


# ---------------------------------------------------------------------------------------------
# heterozygosity and F
# ---------------------------------------------------------------------------------------------


def _het_numpy(g: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    h2 = 2 * p * (1 - p)
    use = (g >= 0) & (h2 > 0)[None, :]
    called = use.sum(1)
    het = ((g == 1) & use).sum(1)
    exp = np.where(use, h2[None, :], 0.0).sum(1)
    return called, het, exp


def test_heterozygosity_matches_numpy_and_ref_freq(rand_cohort: np.ndarray) -> None:
    g = rand_cohort
    m = g.shape[1]
    pk = packed_of(g)
    p_own = C.allele_frequencies(C.genotype_counts(pk, m))
    h = C.heterozygosity(pk, m)
    called, het, exp = _het_numpy(g, np.nan_to_num(p_own))
    assert np.array_equal(h.n_called, called) and np.array_equal(h.observed_het, het)
    np.testing.assert_allclose(h.expected_het, exp, rtol=1e-12)
    np.testing.assert_allclose(h.f, 1 - het / exp, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(h.het_rate, het / called, rtol=1e-12)
    # another cohort's frequencies, with SNPs monomorphic there left out
    p_ref = np.random.default_rng(3).uniform(0, 1, m)
    p_ref[:25] = 0.0
    h = C.heterozygosity(torch.from_numpy(pk), m, p_ref)
    called, het, exp = _het_numpy(g, p_ref)
    assert np.array_equal(h.n_called, called) and np.array_equal(h.observed_het, het)
    np.testing.assert_allclose(h.expected_het, exp, rtol=1e-12)


def test_heterozygosity_all_missing_individual() -> None:
    g = np.random.default_rng(1).integers(0, 3, size=(5, 70)).astype(np.int8)
    g[2] = -1
    h = C.heterozygosity(packed_of(g), 70)
    assert h.n_called[2] == 0 and np.isnan(h.f[2]) and np.isnan(h.het_rate[2])
    assert np.all(h.n_called[[0, 1, 3, 4]] > 60)


def test_heterozygosity_equals_plink(
    rand_cohort: np.ndarray, plink2: str, plink19: str, tmp_path: Path
) -> None:
    """plink --het: O(HOM) = called - het, E(HOM) = called - expected het, F; both PLINKs leave
    monomorphic SNPs out, as here. plink2 prints 6 significant digits, PLINK 1.9 4."""
    g = rand_cohort
    prefix = write_bed(tmp_path / "rand", g)
    h = C.heterozygosity(packed_of(g), g.shape[1])
    run_plink(plink2, f"--bfile {prefix} --het", tmp_path / "p2")
    t2 = read_table(tmp_path / "p2.het")
    assert np.array_equal(t2["OBS_CT"], h.n_called)
    assert np.array_equal(t2["O(HOM)"], h.n_called - h.observed_het)
    np.testing.assert_allclose(t2["E(HOM)"], h.n_called - h.expected_het, rtol=2e-6)
    np.testing.assert_allclose(t2["F"], h.f, rtol=1e-5, atol=1e-6)
    run_plink(plink19, f"--bfile {prefix} --het --allow-no-sex", tmp_path / "p19")
    t1 = read_table(tmp_path / "p19.het")
    assert np.array_equal(t1["N(NM)"], h.n_called)
    np.testing.assert_allclose(t1["F"], h.f, rtol=1e-3, atol=1e-4)


def test_heterozygosity_equals_plink2_agbl4(
    agbl4_prefix: Path, plink2: str, tmp_path: Path
) -> None:
    g = read_bed(agbl4_prefix)
    h = C.heterozygosity(packed_of(g), g.shape[1])
    run_plink(plink2, f"--bfile {agbl4_prefix} --het", tmp_path / "p2")
    t2 = read_table(tmp_path / "p2.het")
    assert np.array_equal(t2["O(HOM)"], h.n_called - h.observed_het)
    np.testing.assert_allclose(t2["F"], h.f, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# F_ST, SFS, JS divergence, correlations
# ---------------------------------------------------------------------------------------------


def _allel_counts(g: np.ndarray) -> np.ndarray:
    """scikit-allel AlleleCountsArray layout [M, 2] (allele_2, allele_1 copies), from numpy."""
    called = (g >= 0).sum(0)
    alt = np.where(g >= 0, g, 0).sum(0)
    return np.stack([2 * called - alt, alt], axis=1)


def test_hudson_fst_equals_scikit_allel(rand_cohort: np.ndarray) -> None:
    allel = pytest.importorskip("allel")
    rng = np.random.default_rng(5)
    a = rand_cohort
    b = random_genotypes(rng, 157, a.shape[1], missing=0.05)
    ca = C.genotype_counts(packed_of(a), a.shape[1])
    cb = C.genotype_counts(packed_of(b), b.shape[1])
    num, den = C.hudson_fst_components(ca, cb)
    rnum, rden = allel.hudson_fst(_allel_counts(a), _allel_counts(b))
    ok = np.isfinite(rnum) & np.isfinite(rden)
    assert np.array_equal(ok, np.isfinite(num) & np.isfinite(den))
    np.testing.assert_allclose(num[ok], rnum[ok], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(den[ok], rden[ok], rtol=1e-10, atol=1e-12)
    assert C.hudson_fst(ca, cb) == pytest.approx(np.sum(rnum[ok]) / np.sum(rden[ok]), rel=1e-10)


def test_hudson_fst_real_halves(agbl4_prefix: Path) -> None:
    allel = pytest.importorskip("allel")
    g = read_bed(agbl4_prefix)
    a, b = g[:1252], g[1252:]
    ca = C.genotype_counts(packed_of(a), g.shape[1])
    cb = C.genotype_counts(packed_of(b), g.shape[1])
    rnum, rden = allel.hudson_fst(_allel_counts(a), _allel_counts(b))
    fst = C.hudson_fst(ca, cb)
    assert fst == pytest.approx(np.nansum(rnum) / np.nansum(rden), rel=1e-9)
    assert abs(fst) < 0.01  # two random halves of one population
    assert C.hudson_fst(ca, ca) < 0  # identical cohorts: only the sample-size correction


def test_sfs_and_js_divergence() -> None:
    from scipy.spatial.distance import jensenshannon

    rng = np.random.default_rng(2)
    p, q = rng.random(30), rng.random(30)
    assert C.js_divergence(p, q) == pytest.approx(jensenshannon(p, q, base=2) ** 2, rel=1e-9)
    assert C.js_divergence(p, p) == pytest.approx(0.0, abs=1e-12)
    assert C.js_divergence([1, 0], [0, 1]) == pytest.approx(1.0)
    g = random_genotypes(rng, 200, 400)
    c = C.genotype_counts(packed_of(g), 400)
    edges, frac = C.folded_sfs(c, n_bins=10)
    maf = C.minor_allele_frequencies(c)
    maf = maf[np.isfinite(maf)]
    assert edges[0] == 0 and edges[-1] == 0.5 and frac.sum() == pytest.approx(1.0)
    assert frac[0] == pytest.approx(np.mean(maf < 0.05))
    assert C.sfs_js_divergence(c, c) == pytest.approx(0.0, abs=1e-12)


def test_frequency_correlations() -> None:
    rng = np.random.default_rng(4)
    a = random_genotypes(rng, 300, 200, missing=0.0)
    b = random_genotypes(rng, 300, 200, missing=0.0)
    ca, cb = C.genotype_counts(packed_of(a), 200), C.genotype_counts(packed_of(b), 200)
    assert C.allele_freq_r(ca, ca) == pytest.approx(1.0)
    pa, pb = C.allele_frequencies(ca), C.allele_frequencies(cb)
    ok = np.isfinite(pa) & np.isfinite(pb)
    assert C.allele_freq_r(ca, cb) == pytest.approx(np.corrcoef(pa[ok], pb[ok])[0, 1])
    assert -1 <= C.genotype_freq_r(ca, cb) <= 1
