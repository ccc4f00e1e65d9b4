"""Sparse autoencoders on single-cell models: activations, TopK SAE training, features, validation, dashboard.

Heavy dependencies (torch, transformers, safetensors) are imported inside the functions
that need them; importing this package is cheap.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ActivationCache",
    "TopKSAE",
    "TrainConfig",
    "build_dashboard",
    "cache_activations",
    "compute_features",
    "demo_sae",
    "load_sae",
    "make_config",
    "parse_source",
    "run",
    "save_sae",
    "train_sae",
    "validate_features",
]

_WHERE = {
    "ActivationCache": "activations",
    "cache_activations": "activations",
    "parse_source": "activations",
    "TopKSAE": "model",
    "load_sae": "model",
    "save_sae": "model",
    "TrainConfig": "train",
    "make_config": "train",
    "train_sae": "train",
    "compute_features": "features",
    "validate_features": "validate",
    "build_dashboard": "dashboard",
    "run": "pipeline",
    "demo_sae": "pipeline",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(f"scagent.sae.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'scagent.sae' has no attribute {name!r}")
