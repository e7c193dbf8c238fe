"""Generative models of genotype cohorts. Each is a small class; training loops live in train.py."""

from genofast.models.independent import IndependentSNPs

__all__ = ["IndependentSNPs"]
