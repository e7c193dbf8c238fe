"""Unit tests of the simulation parts that need no coalescent: parsing, panel matching, pedigree
mosaics and genotype filling, traits."""

from __future__ import annotations

import numpy as np
import pytest

from genofast.simulate.panel import chip_panel, orient, read_panel, select_sites
from genofast.simulate.pedigree import (
    DairyPedigree,
    Genotyper,
    Mosaics,
    founder_bit_matrix,
    founder_weights,
    meiosis,
    simulate_dairy_pedigree,
)
from genofast.simulate.species import CATTLE, HUMAN, parse_chromosomes
from genofast.simulate.traits import TraitSpec, parse_trait, pick_causal, simulate_phenotypes


def test_parse_chromosomes():
    auto = CATTLE.autosomes
    assert parse_chromosomes("1-29", auto) == list(auto)
    assert parse_chromosomes("all", auto) == list(auto)
    assert parse_chromosomes("14,1-3,chr25,3", auto) == ["1", "2", "3", "14", "25"]
    assert parse_chromosomes(7, auto) == ["7"]
    assert parse_chromosomes([29, "28"], auto) == ["28", "29"]
    assert parse_chromosomes("1-22", HUMAN.autosomes) == list(HUMAN.autosomes)
    for bad in ("30", "0", "5-2", "1,,2", "X", "a-b", ""):
        with pytest.raises(ValueError):
            parse_chromosomes(bad, auto)


def test_parse_trait():
    t = parse_trait("name=fat,h2=0.4,n_causal=50,qtl=14:0.25")
    assert (t.name, t.h2, t.n_causal, t.qtl_chromosome, t.qtl_share) == ("fat", 0.4, 50, "14",
                                                                          0.25)
    t = parse_trait("qtl=14:611000:0.1", index=1)
    assert (t.name, t.qtl_position, t.qtl_share) == ("trait2", 611000, 0.1)
    assert parse_trait("default") == TraitSpec()
    for bad in ("h2=1.5", "foo", "colour=red", "qtl=14", "h2=0.2,qtl=14:0.3", "n_causal=-1",
                "h2=0.3,n_causal=0", "name=FID"):
        with pytest.raises(ValueError):
            parse_trait(bad)


def test_read_panel(tmp_path):
    lengths = {"1": 1_000_000, "2": 2_000_000}
    p = tmp_path / "panel.tsv"
    p.write_text("chromosome\tposition_bp\tfreq\n1\t500\t0.25\n2\t100\t0.9\n3\t5\t0.1\n")
    pan = read_panel(p, ["1", "2"], lengths)
    assert pan.counts() == {"1": 1, "2": 1}
    assert pan.target.tolist() == [0.25, 0.9]
    bad = {
        "1\t500\n": "3 \\(chromosome",
        "1\t500\t1.2\n": "outside 0-1",
        "1\t5000000\t0.2\n": "outside chromosome",
        "1\t5\t0.1\n1\tx5\t0.2\n": "not an integer",
        "1\t5\tabc\n": "not a number",
        "3\t5\t0.1\n": "no panel SNP",
    }
    for text, msg in bad.items():
        p.write_text(text)
        with pytest.raises(ValueError, match=msg):
            read_panel(p, ["1", "2"], lengths)
    with pytest.raises(FileNotFoundError):
        read_panel(tmp_path / "missing.tsv", ["1"], lengths)


def test_chip_panel_density_and_spectrum():
    rng = np.random.default_rng(0)
    lengths = {"1": 50_000_000, "2": 20_000_000}
    pan = chip_panel(["1", "2"], lengths, rng)
    assert pan.counts() == {"1": 1000, "2": 400}
    for c in ("1", "2"):
        pos = pan.position[pan.on(c)]
        assert pos.min() >= 1 and pos.max() <= lengths[c]
        assert len(np.unique(pos)) == len(pos)
    maf = np.minimum(pan.target, 1 - pan.target)
    assert maf.min() >= 0.0005 and maf.max() <= 0.5
    assert 0.2 < maf.mean() < 0.3  # chip-like: mostly common SNPs


def test_select_sites_unique_and_closest():
    site_pos = np.array([100, 200, 300, 400, 500, 10_000])
    count = np.array([10, 50, 90, 20, 50, 99])
    pick, est = select_sites(site_pos, count, 100, np.array([300, 310]), np.array([0.5, 0.5]),
                             window=250)
    assert pick[0] in (1, 4) and pick[1] in (1, 4) and pick[0] != pick[1]
    assert (est == 50).all()
    # either allele may be counted: a site at 0.9 matches a 0.1 target
    pick, _ = select_sites(site_pos, count, 100, np.array([300]), np.array([0.1]), window=50)
    assert pick[0] == 2
    flip, f = orient(np.array([90, 10]), 100, np.array([0.1, 0.1]))
    assert flip.tolist() == [True, False] and np.allclose(f, 0.1)
    # the window widens when the best site misses the target
    pick, _ = select_sites(site_pos, count, 100, np.array([9_000]), np.array([0.99]),
                           window=500, max_widen=4)
    assert pick[0] == 5 or site_pos[pick[0]] >= 9_000 - 2_000
    # cohort frequency from founder weights: haplotype 0 carried 3 times, haplotype 1 once
    haps = np.array([[1, 1], [0, 1]], dtype=np.int8)  # site 0 is fixed in the cohort
    w = np.array([[3, 1]], dtype=np.int32)
    pick, est = select_sites(np.array([10, 20]), np.array([1, 1]), 2, np.array([15]),
                             np.array([0.25]), 100, haps, w, 4)
    assert pick[0] == 1 and est[0] == 1


def _brute_alleles(m: Mosaics, chrom: int, positions: np.ndarray) -> np.ndarray:
    """Founder haplotype of every haplotype at every position, by direct lookup."""
    out = np.empty((m.n_haps, len(positions)), dtype=np.int64)
    off, st, fi = m.offsets[chrom], m.starts[chrom], m.founders[chrom]
    for h in range(m.n_haps):
        s = st[off[h]:off[h + 1]]
        f = fi[off[h]:off[h + 1]]
        assert s[0] == 0 and np.all(np.diff(s) > 0)
        assert np.all(f[1:] != f[:-1])  # merged
        out[h] = f[np.searchsorted(s, positions, side="right") - 1]
    return out


def test_meiosis_splices_parent_haplotypes():
    rng = np.random.default_rng(1)
    lengths, rates = [1_000_000, 500_000], [3e-6, 3e-6]  # ~3 and 1.5 crossovers per meiosis
    founders = Mosaics.founders_of(20, 2)
    parents = np.array([0, 3, 3, 9, 5])
    gam = meiosis(founders, parents, lengths, rates, rng)
    assert gam.n_haps == 5
    pos = np.arange(1, 1_000_001, 997)
    anc = _brute_alleles(gam, 0, pos)
    for i, p in enumerate(parents):
        assert set(np.unique(anc[i])) <= {2 * p, 2 * p + 1}
    assert gam.n_segments() > 2 * 5  # crossovers happened
    # a second generation still only carries its parents' founders
    gam2 = meiosis(gam, np.array([0, 1]), lengths, rates, rng)  # gametes of "individuals" 0, 1
    anc2 = _brute_alleles(gam2, 0, pos)
    assert set(np.unique(anc2[0])) <= set(np.unique(anc[[0, 1]]))


def test_pedigree_structure_weights_and_genotypes():
    rng = np.random.default_rng(2)
    lengths, rates = [2_000_000, 1_000_000], [1e-6, 1e-6]
    spec = DairyPedigree(n_generations=3, output_generations=2, n_sires=4, males_per_sire=3)
    ped = simulate_dairy_pedigree(spec, 30, 41, lengths, rates, rng)
    assert ped.cohort.n_haps == 82
    rows = ped.row[ped.row >= 0]
    assert sorted(rows.tolist()) == list(range(41))
    assert set(ped.generation[ped.row >= 0].tolist()) == {2, 3}
    assert (ped.sex[ped.row >= 0] == 2).all()
    by_id = dict(zip(ped.animal.tolist(), range(len(ped.animal)), strict=True))
    for a in ped.cohort_animals:
        i = by_id[int(a)]
        s, d = ped.sire[i], ped.dam[i]
        assert ped.sex[by_id[int(s)]] == 1 and ped.sex[by_id[int(d)]] == 2
        assert ped.generation[by_id[int(s)]] == ped.generation[i] - 1
    # few sires per generation
    gen3 = ped.generation == 3
    assert len(np.unique(ped.sire[gen3])) <= 4

    # founder weights = counts of founder haplotypes at each position
    pos = np.sort(rng.choice(np.arange(1, 2_000_001), 50, replace=False))
    anc = _brute_alleles(ped.cohort, 0, pos)
    w = founder_weights(ped.cohort, 0, pos, 60)
    for j in range(len(pos)):
        assert np.array_equal(w[j], np.bincount(anc[:, j], minlength=60))

    # genotypes from founder alleles, with allele flips
    pos1 = np.sort(rng.choice(np.arange(1, 1_000_001), 13, replace=False))
    m = len(pos) + len(pos1)
    founder_alleles = rng.integers(0, 2, size=(m, 60)).astype(np.uint8)  # SNP-major
    flip = rng.random(m) < 0.3
    bits = np.packbits(founder_alleles, axis=1, bitorder="little")
    fb = founder_bit_matrix(bits, 60, flip)
    g = Genotyper(ped.cohort, [pos, pos1], fb)
    got = np.concatenate([b for _, b in g.batches(7)])
    anc1 = _brute_alleles(ped.cohort, 1, pos1)
    allele = np.concatenate([founder_alleles[np.arange(len(pos))[None, :], anc],
                             founder_alleles[len(pos) + np.arange(len(pos1))[None, :], anc1]],
                            axis=1) ^ flip[None, :]
    expected = allele[0::2] + allele[1::2]
    assert got.dtype == np.int8 and np.array_equal(got, expected)


def test_traits_heritability_and_qtl():
    rng = np.random.default_rng(3)
    n, m = 4000, 300
    freq = rng.uniform(0.05, 0.95, m)
    geno = rng.binomial(2, freq, size=(n, m)).astype(np.int8)
    chrom = np.repeat(["1", "14"], m // 2)
    pos = np.tile(np.arange(1, m // 2 + 1) * 10_000, 2)
    specs = [parse_trait("name=a,h2=0.5,n_causal=100"),
             parse_trait("name=b,h2=0.6,n_causal=50,qtl=14:600000:0.3")]
    plans = pick_causal(specs, chrom, pos, freq, "cattle", rng)
    tr = simulate_phenotypes(plans, lambda idx: geno[:, idx], n, rng)
    assert tr.names == ["a", "b"] and tr.values.shape == (n, 2)
    for j, (t, s) in enumerate(zip(specs, tr.summary, strict=True)):
        rows = [r for r in tr.causal if r["trait"] == t.name]
        g = sum(r["effect"] * geno[:, r["snp"]] for r in rows) + s["intercept"]
        assert abs(g.var() / tr.values[:, j].var() - t.h2) < 0.05
        assert abs(tr.values[:, j].mean()) < 0.1
    qtl = [r for r in tr.causal if r["kind"] == "qtl"]
    assert len(qtl) == 1 and chrom[qtl[0]["snp"]] == "14"
    assert abs(pos[qtl[0]["snp"]] - 600_000) <= 20_000
    var_q = (qtl[0]["effect"] * geno[:, qtl[0]["snp"]]).var()
    assert abs(var_q / tr.values[:, 1].var() - 0.3) < 0.05
    with pytest.raises(ValueError, match="causal"):
        pick_causal([parse_trait("n_causal=10000")], chrom, pos, freq, "cattle", rng)
    plans = pick_causal([TraitSpec()], chrom, pos, freq, "cattle", rng)
    assert len(plans[0]["idx"]) == m // 10
