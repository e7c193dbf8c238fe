"""PLINK .bed/.bim/.fam, phased VCF and phenotype files: packed read, streaming write, summaries."""

from genofast.io.pheno import Phenotypes, fam_phenotype, read_pheno, write_pheno
from genofast.io.plink import Cohort, read_plink
from genofast.io.tables import SampleTable, SnpTable, read_bim, read_fam, write_bim, write_fam
from genofast.io.vcf import PhasedCohort, bed_to_vcf, read_vcf, write_vcf
from genofast.io.writer import PlinkWriter, write_plink

__all__ = [
    "Cohort",
    "Phenotypes",
    "PhasedCohort",
    "PlinkWriter",
    "SampleTable",
    "SnpTable",
    "bed_to_vcf",
    "fam_phenotype",
    "read_bim",
    "read_fam",
    "read_pheno",
    "read_plink",
    "read_vcf",
    "write_bim",
    "write_fam",
    "write_pheno",
    "write_plink",
    "write_vcf",
]
