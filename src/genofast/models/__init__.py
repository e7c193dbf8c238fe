"""Generative models of genotype cohorts. Each is a small class; training loops live in train.py."""

from genofast.models.backbone import (
    CONFIGS,
    BackboneConfig,
    PatchTransformer,
    Trait,
    n_params,
)
from genofast.models.diffusion import CategoricalDiffusion, genotype_frequencies
from genofast.models.independent import IndependentSNPs

__all__ = [
    "CONFIGS",
    "BackboneConfig",
    "CategoricalDiffusion",
    "IndependentSNPs",
    "PatchTransformer",
    "Trait",
    "genotype_frequencies",
    "n_params",
]
