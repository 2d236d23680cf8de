"""Denoising diffusion models as scikit-learn tools for dynamical systems.

The estimators are imported lazily so that ``import skdiffusion`` (and
``skdiffusion.datasets``) stays fast and does not import torch until an
estimator that needs it is used.
"""

import importlib

__version__ = "0.1.0.dev0"

# public name -> submodule that defines it
_EXPORTS = {
    "DiffusionFeaturizer": "featurizers",
    "RFFFeaturizer": "featurizers",
    "ConvRegressor": "neural",
    "DenseRegressor": "neural",
    "FineTunedRegressor": "neural",
    "ResidualRegressor": "neural",
    "StreamingRidge": "linear_model",
    "StreamingRidgeCV": "linear_model",
    "SurrogateForecaster": "surrogate",
    "PeriodicPatches": "spatial",
    "SiteWiseRegressor": "spatial",
}
_SUBMODULES = [
    "assimilation",
    "datasets",
    "diffusion",
    "engine",
    "experiments",
    "featurizers",
    "linear_model",
    "metrics",
    "neural",
    "spatial",
    "surrogate",
]

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        module = importlib.import_module(f".{_EXPORTS[name]}", __name__)
        return getattr(module, name)
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'skdiffusion' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__) | set(_SUBMODULES))
