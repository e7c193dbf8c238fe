"""Generative models of genotype cohorts. Each is a small class (`genofast.models.base` says what
the trainer needs of it); training loops live in train.py.

``MODELS`` maps a model name (``genofast train --model NAME``) to the module that builds it.
Each module has ``MODEL_CONFIGS`` (model name -> its Config dataclass), ``PRESETS``
(``study:...`` name -> settings) and ``build(meta, snps, data)``. Modules are imported when first
asked for.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from genofast.models.backbone import (
    CONFIGS,
    BackboneConfig,
    PatchTransformer,
    Trait,
    n_params,
)
from genofast.models.diffusion import CategoricalDiffusion, genotype_frequencies
from genofast.models.independent import IndependentSNPs

MODELS: dict[str, str] = {
    "diffusion": "genofast.models.diffusion",
    "vae": "genofast.models.vae",
    "gan": "genofast.models.gan",
    "wgan": "genofast.models.gan",
    "pca-ddpm": "genofast.models.pca_ddpm",
    "independent": "genofast.models.independent",
}


def model_module(name: str) -> ModuleType:
    """The module that builds model ``name`` (ValueError listing the names otherwise)."""
    if name not in MODELS:
        raise ValueError(f"model must be one of {', '.join(MODELS)}; got {name!r}")
    return importlib.import_module(MODELS[name])


def model_config_class(name: str) -> type | None:
    """The Config dataclass of model ``name`` (None for a model without its own settings)."""
    return getattr(model_module(name), "MODEL_CONFIGS", {}).get(name)


def presets() -> dict[str, dict]:
    """Every named preset (``study:...``) of every model: {name: {"model": ..., "train": {...},
    "model_config": {...}, "backbone": {...}}}."""
    out: dict[str, dict] = {}
    for mod_name in dict.fromkeys(MODELS.values()):
        try:
            out.update(getattr(importlib.import_module(mod_name), "PRESETS", {}))
        except ModuleNotFoundError:
            continue
    return out


__all__ = [
    "CONFIGS",
    "MODELS",
    "BackboneConfig",
    "CategoricalDiffusion",
    "IndependentSNPs",
    "PatchTransformer",
    "Trait",
    "genotype_frequencies",
    "model_config_class",
    "model_module",
    "n_params",
    "presets",
]
